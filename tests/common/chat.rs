//! A chat client on tungstenite for the tests of the chat shared by several instances or
//! workers: it reads and keeps every event, and waits for the one wanted within
//! [`WAIT`].

use loopchat::apps::chat::protocol::{ErrorCode, ServerEvent};
use serde_json::json;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// How long to wait for an event that must come.
pub const WAIT: Duration = Duration::from_secs(30);

/// A chat client on tungstenite that keeps every event it reads.
pub struct ChatClient {
    pub ws: WebSocket<TcpStream>,
    pub nick: String,
    pub seen: Vec<ServerEvent>,
}

impl ChatClient {
    /// Connects to an instance and reads its arrival: welcome, then the lobby's join,
    /// members and history.
    #[track_caller]
    pub fn arrive(addr: SocketAddr) -> ChatClient {
        ChatClient::arrive_at(addr, "/ws")
    }

    #[track_caller]
    pub fn arrive_at(addr: SocketAddr, path: &str) -> ChatClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{addr}{path}"), stream)
            .unwrap_or_else(|e| panic!("handshake: {e}"));
        let mut client = ChatClient {
            ws,
            nick: String::new(),
            seen: Vec::new(),
        };
        let welcome = client.expect(|e| matches!(e, ServerEvent::Welcome { .. }));
        let ServerEvent::Welcome { nick, .. } = welcome else {
            unreachable!()
        };
        client.nick = nick;
        client.expect(|e| matches!(e, ServerEvent::History { .. }));
        client
    }

    pub fn send(&mut self, request: serde_json::Value) {
        self.ws
            .send(Message::text(request.to_string()))
            .expect("send");
    }

    /// The next event, or None after `within`.
    pub fn next_within(&mut self, within: Duration) -> Option<ServerEvent> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let event: ServerEvent = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("not an event ({e}): {text}"));
                    self.seen.push(event.clone());
                    return Some(event);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("{}: read failed: {e}", self.nick),
            }
        }
        None
    }

    /// Reads until an event matches, and returns it; panics after [`WAIT`].
    #[track_caller]
    pub fn expect(&mut self, wanted: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
        self.expect_within(WAIT, wanted)
    }

    #[track_caller]
    pub fn expect_within(
        &mut self,
        within: Duration,
        wanted: impl Fn(&ServerEvent) -> bool,
    ) -> ServerEvent {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(event) = self.next_within(deadline - Instant::now())
                && wanted(&event)
            {
                return event;
            }
        }
        panic!(
            "{}: no such event within {within:?}; saw {:#?}",
            self.nick,
            self.seen.iter().rev().take(10).collect::<Vec<_>>()
        );
    }

    /// Reads until an error with this code.
    #[track_caller]
    pub fn expect_error(&mut self, code: ErrorCode) {
        self.expect(|e| matches!(e, ServerEvent::Error { code: c, .. } if *c == code));
    }

    /// The `history` of the lobby it got on arrival: its messages, and its `after`.
    pub fn arrival_history(&self) -> (Vec<ServerEvent>, Option<u64>) {
        self.seen
            .iter()
            .find_map(|e| match e {
                ServerEvent::History {
                    messages, after, ..
                } => Some((messages.clone(), *after)),
                _ => None,
            })
            .expect("a history on arrival")
    }

    #[track_caller]
    pub fn set_nick(&mut self, nick: &str) {
        self.send(json!({"type": "nick", "nick": nick}));
        self.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == nick));
        self.nick = nick.to_owned();
    }

    #[track_caller]
    pub fn say(&mut self, text: &str) -> u64 {
        self.send(json!({"type": "message", "text": text}));
        let me = self.nick.clone();
        match self.expect(
            |e| matches!(e, ServerEvent::Message { text: t, from, .. } if t == text && *from == me),
        ) {
            ServerEvent::Message { id, .. } => id,
            _ => unreachable!(),
        }
    }

    #[track_caller]
    pub fn hears(&mut self, from: &str, text: &str) -> u64 {
        match self.expect(
            |e| matches!(e, ServerEvent::Message { text: t, from: f, .. } if t == text && f == from),
        ) {
            ServerEvent::Message { id, .. } => id,
            _ => unreachable!(),
        }
    }

    /// Reads until `done` holds for everything seen so far; false if that takes longer
    /// than `within`.
    pub fn saw_within(&mut self, within: Duration, done: impl Fn(&[ServerEvent]) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.next_within(left).is_none() {
                return false;
            }
        }
        true
    }

    /// The members of a room, from `who`.
    #[track_caller]
    pub fn who(&mut self, room: &str) -> Vec<String> {
        self.send(json!({"type": "who", "room": room}));
        match self.expect(|e| matches!(e, ServerEvent::Members { room: r, .. } if r == room)) {
            ServerEvent::Members { members, .. } => members,
            _ => unreachable!(),
        }
    }
}

/// Every client says `per_client` messages in the room, all sent before any is read;
/// then each client must hear every one of them once, the ids contiguous, and all clients
/// in the one same order. The last client's arrival is waited for first, so that everyone
/// knows of everyone before counting.
#[track_caller]
pub fn everyone_hears_everything_once_in_one_order(clients: &mut [ChatClient], per_client: usize) {
    let last = clients.last().expect("clients").nick.clone();
    clients[0].expect(|e| matches!(e, ServerEvent::Join { nick, .. } if *nick == last));
    for round in 0..per_client {
        for client in clients.iter_mut() {
            let text = format!("{} {round}", client.nick);
            client.send(json!({"type": "message", "text": text}));
        }
    }
    let total = per_client * clients.len();
    let mut orders = Vec::new();
    for client in clients.iter_mut() {
        let mut ids = Vec::new();
        let mut texts = std::collections::BTreeSet::new();
        while ids.len() < total {
            let Some(event) = client.next_within(WAIT) else {
                panic!("{}: {} of {total} messages", client.nick, ids.len());
            };
            if let ServerEvent::Message { id, text, .. } = event {
                assert!(texts.insert(text.clone()), "{text} twice");
                ids.push(id);
            }
        }
        assert!(
            client
                .next_within(Duration::from_millis(300))
                .is_none_or(|e| !matches!(e, ServerEvent::Message { .. })),
            "{}: a message more than was said",
            client.nick
        );
        orders.push(ids);
    }
    let first = &orders[0];
    assert!(
        first.windows(2).all(|w| w[1] == w[0] + 1),
        "ids contiguous: {first:?}"
    );
    for order in &orders {
        assert_eq!(order, first, "every client saw the room's one order");
    }
}
