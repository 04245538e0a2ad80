//! `Context::broadcast` publishes in O(1) and each recipient writes the frame at the end
//! of the loop turn; these tests pin down what that must not change: a connection's
//! output keeps the order in which the handler produced it (a broadcast, then a direct
//! send, then a Close), a recipient that stops reading is closed as too slow without
//! holding up the others, and a recipient whose socket takes only part of a turn's
//! broadcasts gets the rest later, whole and in order.

mod common;

use common::{OP_CLOSE, OP_TEXT, RawClient, client_frame};
use loopchat::{CloseCode, ConnectionId, Context, Handler, Message, ServerConfig};
use std::time::Duration;

/// `order`: broadcast `first`, send `second` to every other connection, broadcast
/// `third`. `bye`: broadcast `bye`, then close every other connection with 1000. Any
/// other message is broadcast as it is.
struct Ordered;

impl Handler for Ordered {
    fn on_message(&mut self, ctx: &mut Context<'_>, from: ConnectionId, message: Message<'_>) {
        let others: Vec<ConnectionId> = ctx.open_connections().filter(|&c| c != from).collect();
        match message {
            Message::Text("order") => {
                ctx.broadcast(Message::Text("first"), Some(from));
                for &other in &others {
                    ctx.send(other, Message::Text("second"))
                        .expect("room for one message");
                }
                ctx.broadcast(Message::Text("third"), Some(from));
            }
            Message::Text("bye") => {
                ctx.broadcast(Message::Text("bye"), Some(from));
                for &other in &others {
                    ctx.close(other, CloseCode::Normal, "done");
                }
            }
            other => ctx.broadcast(other, Some(from)),
        }
    }
}

/// How many 32 KiB messages a sender may be ahead of the reader that paces it: far below
/// the 256 KiB output limit of the tests that stall a client.
const AHEAD: usize = 4;

fn text(payload: &str) -> Vec<u8> {
    client_frame(true, OP_TEXT, payload.as_bytes())
}

#[test]
fn broadcasts_and_direct_sends_arrive_in_the_order_they_were_made() {
    let addr = common::start(Ordered);
    let mut sender = RawClient::open(addr);
    let mut others: Vec<RawClient> = (0..5).map(|_| RawClient::open(addr)).collect();
    for round in 0..20 {
        sender.send(&text("order"));
        for (i, other) in others.iter_mut().enumerate() {
            for expected in ["first", "second", "third"] {
                let frame = other.read_frame();
                assert_eq!(
                    (
                        frame.opcode,
                        String::from_utf8_lossy(&frame.payload).as_ref()
                    ),
                    (OP_TEXT, expected),
                    "client {i}, round {round}"
                );
            }
        }
    }
}

#[test]
fn a_broadcast_before_a_close_is_delivered_before_the_close() {
    let addr = common::start(Ordered);
    let mut sender = RawClient::open(addr);
    let mut others: Vec<RawClient> = (0..5).map(|_| RawClient::open(addr)).collect();
    sender.send(&text("bye"));
    for other in &mut others {
        other.expect_frame(OP_TEXT, b"bye");
        let close = other.read_frame();
        assert_eq!(close.opcode, OP_CLOSE);
        assert_eq!(close.close_code(), Some(1000));
    }
    // The sender was not closed and is still served.
    let mut late = RawClient::open(addr);
    sender.send(&text("still here"));
    late.expect_frame(OP_TEXT, b"still here");
}

#[test]
fn a_recipient_that_never_reads_is_closed_and_the_others_get_everything() {
    const LIMIT: usize = 256 * 1024;
    const MESSAGES: usize = 2_000;
    let config = ServerConfig {
        max_outbound_bytes: LIMIT,
        close_timeout: Duration::from_secs(600),
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, Ordered);
    let mut sender = RawClient::open(addr);
    let mut stalled = RawClient::open(addr);
    let mut reader = RawClient::open(addr);
    let payload = "x".repeat(32 * 1024);
    // Sent from another thread, so that the sender's socket never fills while this one
    // reads.
    // It keeps at most a few messages ahead of the reader, so that the reader, however
    // slowly this thread is scheduled, is never a slow consumer itself.
    let frame = text(&payload);
    let (read, reads) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            if i >= AHEAD {
                reads.recv().expect("the reader goes on");
            }
            sender.send(&frame);
        }
        sender
    });
    for i in 0..MESSAGES {
        let frame = reader.read_frame();
        assert_eq!(frame.opcode, OP_TEXT, "message {i}");
        assert_eq!(frame.payload.len(), payload.len(), "message {i}");
        let _ = read.send(());
    }
    let _sender = writer.join().expect("the sender was served");

    // 64 MiB was broadcast; the stalled client's socket buffers hold far less than that
    // (loopback receive buffers may grow to 32 MiB here), so the server must have given
    // up on it. Reading at last, it finds whole messages, in order, fewer than were
    // sent, then the server's Close 1008; a server that stopped sending to it without a
    // Close, or sent everything, fails here. The close timeout is longer than the test,
    // so the Close waits for it behind the queued frames instead of being dropped.
    let mut got = 0;
    let close = loop {
        let frame = stalled.read_frame();
        if frame.opcode != OP_TEXT {
            break frame;
        }
        assert_eq!(frame.payload.len(), payload.len(), "message {got}");
        got += 1;
    };
    assert_eq!(close.opcode, OP_CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(1008), "{close:?}");
    assert_eq!(&close.payload[2..], b"too slow: output queue full");
    assert!(got < MESSAGES, "the stalled client got all {got} messages");
    stalled.send(&client_frame(true, OP_CLOSE, &1008u16.to_be_bytes()));
    stalled.expect_eof();
}

#[test]
fn a_recipient_that_reads_late_gets_every_broadcast_whole_and_in_order() {
    const MESSAGES: usize = 2_000;
    let addr = common::start(Ordered);
    let mut sender = RawClient::open(addr);
    let mut late = RawClient::open(addr);
    let writer = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            // Sizes that cut frames at every offset when a socket buffer fills.
            let payload = format!("{i:05}:{}", "y".repeat(i % 997));
            sender.send(&text(&payload));
        }
        sender
    });
    // Every broadcast is made before `late` reads any: what its socket buffers could not
    // take waits in the server's queue for it.
    let _sender = writer.join().expect("the sender was served");
    for i in 0..MESSAGES {
        let frame = late.read_frame();
        let expected = format!("{i:05}:{}", "y".repeat(i % 997));
        assert_eq!(frame.opcode, OP_TEXT);
        assert_eq!(
            String::from_utf8_lossy(&frame.payload),
            expected,
            "message {i}"
        );
    }
}

#[test]
fn with_the_drop_policy_a_recipient_that_never_reads_loses_messages_but_stays() {
    const LIMIT: usize = 256 * 1024;
    const MESSAGES: usize = 2_000;
    let config = ServerConfig {
        max_outbound_bytes: LIMIT,
        slow_consumer: loopchat::event_loop::SlowConsumer::Drop,
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, Ordered);
    let mut sender = RawClient::open(addr);
    let mut stalled = RawClient::open(addr);
    let mut reader = RawClient::open(addr);
    // Paced by the reader, as above: only the stalled client falls behind.
    let (read, reads) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            if i >= AHEAD {
                reads.recv().expect("the reader goes on");
            }
            sender.send(&text(&format!("{i:05}:{}", "z".repeat(32 * 1024))));
        }
        sender
    });
    for i in 0..MESSAGES {
        let frame = reader.read_frame();
        assert_eq!(&frame.payload[..5], format!("{i:05}").as_bytes());
        let _ = read.send(());
    }
    let mut sender = writer.join().expect("the sender was served");
    sender.send(&text("end"));
    reader.expect_frame(OP_TEXT, b"end");

    // The stalled client was not closed: it reads what was kept, in order, then "end".
    let mut received = 0;
    let mut last = None;
    loop {
        let frame = stalled.read_frame();
        assert_eq!(frame.opcode, OP_TEXT, "no Close expected: {frame:?}");
        if frame.payload == b"end" {
            break;
        }
        let seq: usize = String::from_utf8_lossy(&frame.payload[..5])
            .parse()
            .unwrap();
        assert!(last.is_none_or(|last| seq > last), "{seq} after {last:?}");
        assert_eq!(frame.payload.len(), 6 + 32 * 1024, "a whole message");
        last = Some(seq);
        received += 1;
    }
    assert!(
        received < MESSAGES,
        "all {received} messages kept: nothing was dropped"
    );
}

#[test]
fn with_the_drop_policy_a_pong_is_never_dropped() {
    const LIMIT: usize = 64 * 1024;
    const MESSAGES: usize = 2_000;
    const PINGS: u32 = 3_000;
    let config = ServerConfig {
        max_outbound_bytes: LIMIT,
        slow_consumer: loopchat::event_loop::SlowConsumer::Drop,
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, Ordered);
    let mut sender = RawClient::open(addr);
    let mut stalled = RawClient::open(addr);
    let mut reader = RawClient::open(addr);
    // 64 MB of broadcasts, far more than the kernel buffers between the server and the
    // stalled client: its queue in the server fills up.
    for i in 0..MESSAGES {
        sender.send(&text(&format!("{i:05}:{}", "z".repeat(32 * 1024))));
        let frame = reader.read_frame();
        assert_eq!(&frame.payload[..5], format!("{i:05}").as_bytes());
    }
    // Then small broadcasts, which fill its queue to within a few bytes of the limit,
    // each followed by one of its Pings.
    for ping in 0..PINGS {
        sender.send(&text(&format!("small {ping}:{}", "s".repeat(200))));
        reader.read_frame();
        stalled.send(&client_frame(true, common::OP_PING, &ping.to_be_bytes()));
    }
    // The stalled client reads at last: some broadcasts were shed, but every Ping was
    // answered, in order, and the connection is still open.
    let mut last_pong = None;
    while last_pong != Some(PINGS - 1) {
        let frame = stalled.read_frame();
        match frame.opcode {
            OP_TEXT => {}
            common::OP_PONG => {
                let pong = u32::from_be_bytes(frame.payload[..].try_into().unwrap());
                assert_eq!(pong, last_pong.map_or(0, |last| last + 1), "a Pong missing");
                last_pong = Some(pong);
            }
            other => panic!("opcode {other} while waiting for Pong {}", PINGS - 1),
        }
    }
    sender.send(&text("end"));
    reader.expect_frame(OP_TEXT, b"end");
    loop {
        let frame = stalled.read_frame();
        assert_eq!(frame.opcode, OP_TEXT, "still open: {frame:?}");
        if frame.payload == b"end" {
            break;
        }
    }
}

/// Publishes each text message twice, once per transport, to everyone but its sender.
struct BothTransports;

impl Handler for BothTransports {
    fn on_message(&mut self, ctx: &mut Context<'_>, from: ConnectionId, message: Message<'_>) {
        if let Message::Text(text) = message {
            ctx.broadcast_shared(&loopchat::SharedFrame::new(message), Some(from));
            ctx.broadcast_shared(&loopchat::SharedFrame::line(text), Some(from));
        }
    }
}

#[test]
fn a_broadcast_for_line_clients_reaches_them_and_no_websocket_client() {
    use std::io::{BufRead, BufReader, Write};
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        line_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut server = loopchat::Server::bind(config, BothTransports).unwrap();
        tx.send((server.local_addr().unwrap(), server.line_addr().unwrap()))
            .unwrap();
        server.run()
    });
    let (addr, line_addr) = rx.recv().unwrap();
    let mut websocket = RawClient::open(addr);
    let mut lines: Vec<_> = (0..3)
        .map(|_| {
            let stream = std::net::TcpStream::connect(line_addr).unwrap();
            stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
            BufReader::new(stream)
        })
        .collect();
    // The line clients must be registered before the first broadcast: one round trip.
    lines[0].get_mut().write_all(b"hello\n").unwrap();
    websocket.expect_frame(OP_TEXT, b"hello");
    for other in &mut lines[1..] {
        let mut line = String::new();
        other.read_line(&mut line).unwrap();
        assert_eq!(line, "hello\n");
    }
    for i in 0..100 {
        websocket.send(&text(&format!("message {i}")));
    }
    for (n, reader) in lines.iter_mut().enumerate() {
        for i in 0..100 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, format!("message {i}\n"), "line client {n}");
        }
    }
    lines[1].get_mut().write_all(b"last\n").unwrap();
    // The WebSocket client gets the WebSocket copy only: its next frame is "last".
    websocket.expect_frame(OP_TEXT, b"last");
}
