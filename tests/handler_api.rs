//! The `Handler` interface, with handlers written here: upgrade filtering, the request
//! given to `on_open`, closes begun by the application, and the pairing of `on_open` with
//! `on_close` whatever way a connection ends.

mod common;

use common::{OP_PING, OP_TEXT, RawClient, client_frame, frame_bytes, upgrade_request};
use loopchat::http::{Request, Response};
use loopchat::{CloseCode, ConnectionId, Context, Handler, Message};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the test handler saw: every open and close, in order.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<String>,
}

/// A handler driven by commands: `close-normal` closes with 1000 (and then tries to send,
/// recording what `send` said), `close-1005` asks for a close code that may not be sent;
/// anything else is echoed. It greets each connection with its request target, refuses
/// upgrades on `/private`, and records opens and closes.
struct Commanded {
    seen: Arc<Mutex<Seen>>,
}

impl Handler for Commanded {
    fn accept_upgrade(&mut self, request: &Request) -> Result<(), Response> {
        if request.path() == "/private" {
            return Err(Response::text(403, "not for you\n"));
        }
        Ok(())
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, request: Option<&Request>) {
        self.seen
            .lock()
            .unwrap()
            .events
            .push(format!("open {conn}"));
        let target = request.map_or("(line port)", |r| r.target.as_str());
        ctx.send(conn, Message::Text(&format!("hello {target}")))
            .expect("an open connection with an empty queue takes a message");
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        match message {
            Message::Text("close-normal") => {
                ctx.close(conn, CloseCode::Normal, "as asked");
                let result = ctx.send(conn, Message::Text("after the close"));
                let event = format!("send after close {conn}: {result:?}");
                self.seen.lock().unwrap().events.push(event);
            }
            Message::Text("close-1005") => ctx.close(conn, CloseCode::NoStatus, ""),
            other => ctx.send(conn, other).expect("room for an echo"),
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, conn: ConnectionId) {
        self.seen
            .lock()
            .unwrap()
            .events
            .push(format!("close {conn}"));
    }
}

fn start() -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let addr = common::start(Commanded {
        seen: Arc::clone(&seen),
    });
    (addr, seen)
}

fn open_at(addr: std::net::SocketAddr, target: &str) -> RawClient {
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_request(&addr.to_string(), target));
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    client.expect_frame(OP_TEXT, format!("hello {target}").as_bytes());
    client
}

#[test]
fn accept_upgrade_can_refuse_and_on_open_sees_the_request() {
    let (addr, _) = start();
    let mut refused = RawClient::connect(addr);
    refused.send(&upgrade_request(&addr.to_string(), "/private"));
    let (head, body) = refused.read_http_response();
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert_eq!(body, b"not for you\n");
    refused.expect_eof();

    let mut client = open_at(addr, "/room?nick=ada");
    client.close_cleanly(1000);
}

#[test]
fn an_application_close_is_sent_once_even_if_the_peer_then_breaks_the_protocol() {
    let (addr, _) = start();
    let mut client = open_at(addr, "/");
    client.send(&client_frame(true, OP_TEXT, b"close-normal"));
    let reason = client.expect_close(1000);
    assert_eq!(reason, "as asked");
    // Instead of answering with its Close, the client sends an unmasked frame: a
    // protocol error, but the server has already sent its one Close and says no more.
    client.send(&frame_bytes(0x80 | OP_TEXT, b"unmasked", None));
    client.expect_eof();
}

#[test]
fn an_application_close_completes_when_the_peer_answers() {
    let (addr, seen) = start();
    let mut client = open_at(addr, "/");
    client.send(&client_frame(true, OP_TEXT, b"close-normal"));
    client.expect_close(1000);
    let sent = seen.lock().unwrap().events.clone();
    assert!(
        sent.iter()
            .any(|e| e.starts_with("send after close") && e.ends_with(": Err(NotOpen)")),
        "a send after the close is refused as NotOpen: {sent:?}"
    );
    // Pings after the server's Close go unanswered; our Close completes the handshake.
    client.send(&client_frame(true, OP_PING, b"late"));
    client.send(&client_frame(
        true,
        common::OP_CLOSE,
        &1000u16.to_be_bytes(),
    ));
    client.expect_eof();
}

#[test]
fn a_close_code_that_may_not_be_sent_becomes_1011() {
    let (addr, _) = start();
    let mut client = open_at(addr, "/");
    client.send(&client_frame(true, OP_TEXT, b"close-1005"));
    client.expect_close(1011);
}

#[test]
fn every_opened_session_is_closed_exactly_once() {
    let (addr, seen) = start();
    // Four ways to end: a clean close by the client, a close by the application, a
    // protocol error, and a dropped socket.
    let mut clean = open_at(addr, "/");
    clean.close_cleanly(1000);

    let mut by_app = open_at(addr, "/");
    by_app.send(&client_frame(true, OP_TEXT, b"close-normal"));
    by_app.expect_close(1000);
    by_app.send(&client_frame(
        true,
        common::OP_CLOSE,
        &1000u16.to_be_bytes(),
    ));
    by_app.expect_eof();

    let mut broken = open_at(addr, "/");
    broken.send(&frame_bytes(0x80 | OP_TEXT, b"unmasked", None));
    broken.expect_close(1002);
    broken.expect_eof();

    drop(open_at(addr, "/"));

    // The dropped socket is noticed when the server reads its FIN; wait for it.
    let deadline = Instant::now() + common::IO_TIMEOUT;
    loop {
        let events = seen.lock().unwrap().events.clone();
        let opens = events.iter().filter(|e| e.starts_with("open")).count();
        let closes = events.iter().filter(|e| e.starts_with("close ")).count();
        if closes == 4 {
            assert_eq!(opens, 4, "{events:?}");
            for open in events.iter().filter(|e| e.starts_with("open")) {
                let id = open.trim_start_matches("open ");
                let matching = events
                    .iter()
                    .filter(|e| **e == format!("close {id}"))
                    .count();
                assert!(matching >= 1, "{open} never closed: {events:?}");
            }
            break;
        }
        assert!(closes < 4, "more closes than opens: {events:?}");
        assert!(Instant::now() < deadline, "closes missing: {events:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
