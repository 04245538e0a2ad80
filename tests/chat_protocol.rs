//! The chat protocol over real sockets: every request and event type, every error code,
//! the session sequence on arrival, disconnects, rate limiting, upgrade routing and the
//! page, and fan-out to 50 clients. The clients are tungstenite's, and each text frame is
//! parsed into `ServerEvent` and checked to re-serialize to the same JSON, so a field that
//! is missing, extra or of the wrong shape fails the test.
//!
//! Each test starts its own server, so guest numbers (`guest-1`, `guest-2`, ...) and the
//! order of events are known. After each request the test reads what it caused at the
//! sender before the next request; the server is one thread, so by then every other
//! client's events from that request are queued too, and `quiet()` (a `rooms` request
//! whose answer must be the next event) proves a client was sent nothing else.
//!
//! Set `CHAT_TRACE=1` to print every frame sent and received.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use loopchat::ServerConfig;
use loopchat::apps::chat::protocol::LeaveReason::{self, Disconnected, Left};
use loopchat::apps::chat::protocol::{ErrorCode as E, Limits, ServerEvent};
use loopchat::apps::{Chat, ChatConfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// The longest any single read waits.
const WAIT: Duration = common::IO_TIMEOUT;

/// Default limits, but a rate no test reaches unless it means to.
fn config() -> ChatConfig {
    ChatConfig {
        rate_per_second: 1e6,
        rate_burst: 1_000_000,
        rate_strikes: 1_000_000,
        ..ChatConfig::default()
    }
}

fn start(config: ChatConfig) -> SocketAddr {
    common::start(Chat::new(config))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn trace() -> bool {
    std::env::var_os("CHAT_TRACE").is_some()
}

/// Parses a frame strictly: it must be a `ServerEvent`, and serializing that back must
/// give the same JSON (no unknown fields, no `null` where a field should be absent).
fn parse(text: &str) -> ServerEvent {
    let event: ServerEvent =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not a ServerEvent ({e}): {text}"));
    let raw: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        raw,
        "the frame has a shape the protocol does not define: {text}"
    );
    event
}

/// Checks every `time` in the event is a plausible current Unix time in milliseconds,
/// then sets it to 0, so that whole events can be compared with `assert_eq!`.
fn untimed(mut event: ServerEvent) -> ServerEvent {
    match &mut event {
        ServerEvent::Join { time, .. }
        | ServerEvent::Leave { time, .. }
        | ServerEvent::Nick { time, .. }
        | ServerEvent::Message { time, .. }
        | ServerEvent::Private { time, .. }
        | ServerEvent::Image { time, .. } => {
            let now = now_ms();
            assert!(
                (now - 600_000..=now + 60_000).contains(time),
                "time {time} is not near now ({now})"
            );
            *time = 0;
        }
        ServerEvent::History { messages, .. } => {
            *messages = messages.drain(..).map(untimed).collect();
        }
        _ => {}
    }
    event
}

/// A chat client on tungstenite.
struct Client {
    ws: WebSocket<TcpStream>,
    /// Its nickname as the server announced it (kept up to date by the tests that
    /// change it), also a label in failure messages.
    nick: String,
    /// The `history` it was sent on arrival.
    history: Vec<ServerEvent>,
}

impl Client {
    /// Connects and completes the WebSocket handshake on `path`; reads nothing.
    #[track_caller]
    fn open(addr: SocketAddr, path: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let (ws, response) = match tungstenite::client(format!("ws://{addr}{path}"), stream) {
            Ok(done) => done,
            Err(HandshakeError::Failure(e)) => panic!("handshake on {path} failed: {e}"),
            Err(HandshakeError::Interrupted(_)) => panic!("handshake on {path} timed out"),
        };
        assert_eq!(response.status(), 101);
        Client {
            ws,
            nick: format!("(new on {path})"),
            history: Vec::new(),
        }
    }

    /// Connects on `/ws` and reads the arrival sequence: `welcome`, `join` of the lobby,
    /// `members` with itself in it, `history` of the lobby.
    #[track_caller]
    fn arrive(addr: SocketAddr) -> Client {
        let mut client = Client::open(addr, "/ws");
        let ServerEvent::Welcome { nick, .. } = client.next() else {
            panic!("the first event is not welcome");
        };
        client.nick = nick.clone();
        client.expect_eq(join("lobby", &nick));
        client.expect(|e| {
            matches!(e, ServerEvent::Members { room, members }
                if room == "lobby" && members.contains(&nick))
        });
        let ServerEvent::History { room, messages, .. } = client.next() else {
            panic!("{nick}: no history after members");
        };
        assert_eq!(room, "lobby");
        client.history = messages;
        client
    }

    fn send_frame(&mut self, message: Message) {
        if trace() {
            eprintln!("{} -> {message}", self.nick);
        }
        self.ws.send(message).expect("send");
    }

    /// Sends a request (any JSON value, so tests can send malformed ones too).
    fn send(&mut self, request: Value) {
        self.send_frame(Message::text(request.to_string()));
    }

    fn send_text(&mut self, text: &str) {
        self.send_frame(Message::text(text));
    }

    fn send_binary(&mut self, bytes: &[u8]) {
        self.send_frame(Message::binary(bytes.to_vec()));
    }

    /// The next frame, which must be a text frame holding a `ServerEvent`: its JSON and
    /// the event as received.
    #[track_caller]
    fn next_raw(&mut self) -> (String, ServerEvent) {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    if trace() {
                        eprintln!("{} <- {text}", self.nick);
                    }
                    return (text.to_string(), parse(&text));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!("{}: expected an event, got {other:?}", self.nick),
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    panic!("{}: no event within {WAIT:?}", self.nick)
                }
                Err(e) => panic!("{}: expected an event, got error {e}", self.nick),
            }
        }
    }

    /// The next event, its times checked and zeroed.
    #[track_caller]
    fn next(&mut self) -> ServerEvent {
        untimed(self.next_raw().1)
    }

    /// The next event, which must satisfy `check`.
    #[track_caller]
    fn expect(&mut self, check: impl FnOnce(&ServerEvent) -> bool) -> ServerEvent {
        let event = self.next();
        assert!(check(&event), "{}: unexpected {event:?}", self.nick);
        event
    }

    /// The next event, which must equal `expected` (with its times zeroed).
    #[track_caller]
    fn expect_eq(&mut self, expected: ServerEvent) {
        let event = self.next();
        assert_eq!(event, expected, "{}: unexpected event", self.nick);
    }

    /// The next event, which must be an error with `code` and some message.
    #[track_caller]
    fn expect_error(&mut self, code: E) -> String {
        match self.next() {
            ServerEvent::Error { code: got, message } if got == code && !message.is_empty() => {
                message
            }
            other => panic!("{}: expected error {code:?}, got {other:?}", self.nick),
        }
    }

    /// Sends a request and expects exactly one error with `code` in answer.
    #[track_caller]
    fn refused(&mut self, request: Value, code: E) {
        self.send(request);
        self.expect_error(code);
    }

    /// Everything sent to this client so far: sends `rooms` and collects events until
    /// the answer. The server answers in order, so nothing sent earlier comes after it.
    #[track_caller]
    fn drain(&mut self) -> Vec<ServerEvent> {
        self.send(json!({"type": "rooms"}));
        let mut events = Vec::new();
        loop {
            match self.next() {
                ServerEvent::Rooms { .. } => return events,
                event => events.push(event),
            }
        }
    }

    /// Checks nothing was sent to this client since its last read.
    #[track_caller]
    fn quiet(&mut self) {
        let events = self.drain();
        assert!(events.is_empty(), "{}: unexpected {events:?}", self.nick);
    }

    /// Sends `request` and expects exactly `events` next.
    #[track_caller]
    fn ask_eq(&mut self, request: Value, events: Vec<ServerEvent>) {
        let n = events.len();
        assert_eq!(self.ask(request, n), events, "{}", self.nick);
    }

    /// Sends `request` and returns the next `n` events, its effect on the sender.
    #[track_caller]
    fn ask(&mut self, request: Value, n: usize) -> Vec<ServerEvent> {
        self.send(request);
        (0..n).map(|_| self.next()).collect()
    }

    /// Reads until the server's Close, which must carry `code`; returns its reason.
    #[track_caller]
    fn expect_close(&mut self, code: u16) -> String {
        match self.ws.read() {
            Ok(Message::Close(Some(frame))) => {
                if trace() {
                    eprintln!("{} <- Close {frame}", self.nick);
                }
                assert_eq!(u16::from(frame.code), code, "{}: {frame:?}", self.nick);
                frame.reason.to_string()
            }
            other => panic!("{}: expected a Close with {code}, got {other:?}", self.nick),
        }
    }

    /// Closes cleanly with 1000 and checks the server echoes it and ends the connection.
    #[track_caller]
    fn close(mut self) {
        let normal = CloseCode::Normal;
        let frame = CloseFrame {
            code: normal,
            reason: "".into(),
        };
        self.ws.close(Some(frame)).expect("close");
        // Events already on their way may come before the echo.
        loop {
            match self.ws.read() {
                Ok(Message::Text(_)) => {}
                Ok(Message::Close(Some(frame))) if frame.code == normal => break,
                other => panic!("{}: expected Close 1000 back, got {other:?}", self.nick),
            }
        }
        match self.ws.read() {
            Err(tungstenite::Error::ConnectionClosed) => {}
            other => panic!("{}: after the Close: {other:?}", self.nick),
        }
    }
}

/// An event from its JSON (with `time` 0 where it has one).
fn event(json: Value) -> ServerEvent {
    serde_json::from_value(json).unwrap()
}

fn join(room: &str, nick: &str) -> ServerEvent {
    event(json!({"type": "join", "room": room, "nick": nick, "time": 0}))
}

fn leave(room: &str, nick: &str, reason: LeaveReason) -> ServerEvent {
    event(json!({"type": "leave", "room": room, "nick": nick, "reason": reason, "time": 0}))
}

fn members(room: &str, nicks: &[&str]) -> ServerEvent {
    event(json!({"type": "members", "room": room, "members": nicks}))
}

fn history(room: &str, messages: Vec<ServerEvent>) -> ServerEvent {
    event(json!({"type": "history", "room": room, "messages": messages}))
}

fn message(id: u64, room: &str, from: &str, text: &str) -> ServerEvent {
    event(json!({"type": "message", "id": id, "room": room, "from": from, "text": text, "time": 0}))
}

fn nick_change(old: &str, new: &str) -> ServerEvent {
    event(json!({"type": "nick", "old": old, "new": new, "time": 0}))
}

fn rooms(list: &[(&str, usize)]) -> ServerEvent {
    let rooms: Vec<Value> = list
        .iter()
        .map(|(n, m)| json!({"name": n, "members": m}))
        .collect();
    event(json!({"type": "rooms", "rooms": rooms}))
}

fn id_of(event: &ServerEvent) -> u64 {
    match event {
        ServerEvent::Message { id, .. }
        | ServerEvent::Private { id, .. }
        | ServerEvent::Image { id, .. } => *id,
        other => panic!("no id in {other:?}"),
    }
}

fn join_req(room: &str) -> Value {
    json!({"type": "join", "room": room})
}

fn leave_req(room: &str) -> Value {
    json!({"type": "leave", "room": room})
}

/// Checks each client was sent nothing since its last read.
fn quiet(clients: &mut [&mut Client]) {
    for client in clients {
        client.quiet();
    }
}

/// Reads whatever each client was sent so far, in turn.
fn settle(clients: &mut [&mut Client]) {
    for client in clients {
        client.drain();
    }
}

/// The three events a client gets on joining a room it was not in.
fn joined(room: &str, nick: &str, room_members: &[&str]) -> Vec<ServerEvent> {
    vec![
        join(room, nick),
        members(room, room_members),
        history(room, vec![]),
    ]
}

#[test]
fn arrival_sequence_and_history_by_count() {
    let config = ChatConfig {
        history_len: 3,
        max_text_bytes: 100,
        max_image_bytes: 1000,
        max_nick_chars: 10,
        max_room_chars: 12,
        ..config()
    };
    let addr = start(config);
    let mut a = Client::open(addr, "/ws");
    let image_types = ["image/png", "image/jpeg", "image/gif", "image/webp"];
    a.expect_eq(ServerEvent::Welcome {
        nick: "guest-1".into(),
        server: format!("loopchat {}", env!("CARGO_PKG_VERSION")),
        limits: Limits {
            max_text_bytes: 100,
            max_image_bytes: 1000,
            image_types: image_types.map(String::from).to_vec(),
            max_nick_chars: 10,
            max_room_chars: 12,
            history: 3,
        },
    });
    a.nick = "guest-1".into();
    for event in joined("lobby", "guest-1", &["guest-1"]) {
        a.expect_eq(event);
    }

    let mut b = Client::arrive(addr);
    assert_eq!(b.nick, "guest-2");
    assert_eq!(b.history, vec![]);
    a.expect_eq(join("lobby", "guest-2"));

    let mut sent = Vec::new();
    for i in 1..=5 {
        a.send(json!({"type": "message", "text": format!("m{i}")}));
        let event = a.next();
        b.expect_eq(event.clone());
        sent.push(event);
    }
    let mut c = Client::open(addr, "/ws");
    c.expect(|e| matches!(e, ServerEvent::Welcome { nick, .. } if nick == "guest-3"));
    c.nick = "guest-3".into();
    c.expect_eq(join("lobby", "guest-3"));
    c.expect_eq(members("lobby", &["guest-1", "guest-2", "guest-3"]));
    // The last three, oldest first, exactly as they were sent.
    c.expect_eq(history("lobby", sent[2..].to_vec()));
    a.expect_eq(join("lobby", "guest-3"));
    b.expect_eq(join("lobby", "guest-3"));
    quiet(&mut [&mut a, &mut b, &mut c]);
}

#[test]
fn history_is_bounded_by_bytes() {
    let addr = start(ChatConfig {
        history_bytes: 1000,
        ..config()
    });
    let mut a = Client::arrive(addr);
    let mut sent = Vec::new();
    for i in 0..6 {
        let text = format!("{i}{}", "x".repeat(250));
        a.send(json!({"type": "message", "text": text}));
        let (raw, event) = a.next_raw();
        sent.push((raw.len(), untimed(event)));
    }
    // The newest messages whose JSON fits in 1000 bytes together.
    let mut kept = Vec::new();
    let mut bytes = 0;
    for (len, event) in sent.iter().rev() {
        if bytes + len > 1000 {
            break;
        }
        bytes += len;
        kept.insert(0, event.clone());
    }
    assert!((1..6).contains(&kept.len()), "{} kept", kept.len());
    let b = Client::arrive(addr);
    assert_eq!(b.history, kept);
}

#[test]
fn nick_changes_reach_neighbours_only() {
    let addr = start(config());
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    let mut s = Client::arrive(addr);
    a.expect_eq(join("lobby", "guest-2"));
    a.expect_eq(join("lobby", "guest-3"));
    b.expect_eq(join("lobby", "guest-3"));
    // s moves to a room of its own; a and b also share a second room.
    s.ask(join_req("other"), 3);
    s.ask(leave_req("lobby"), 1);
    for client in [&mut a, &mut b] {
        client.expect_eq(leave("lobby", "guest-3", Left));
    }
    a.ask(join_req("both"), 3);
    b.ask(join_req("both"), 3);
    a.expect_eq(join("both", "guest-2"));

    a.send(json!({"type": "nick", "nick": "Ada"}));
    a.expect_eq(nick_change("guest-1", "Ada"));
    b.expect_eq(nick_change("guest-1", "Ada")); // once, though they share two rooms
    b.quiet();
    s.quiet();

    // Taken, without regard to case.
    for taken in ["ada", "ADA", " Ada "] {
        b.refused(json!({"type": "nick", "nick": taken}), E::NickTaken);
    }
    // Invalid: empty, blank, 25 characters, space, markup, tab, slash.
    let long = "x".repeat(25);
    for bad in [
        "",
        "   ",
        long.as_str(),
        "a b",
        "<script>",
        "tab\there",
        "a/b",
    ] {
        b.refused(json!({"type": "nick", "nick": bad}), E::NickInvalid);
    }
    // 24 characters, letters of any script, digits, '-', '_', '.'; trimmed.
    let longest = "Zoë_1.b-c".to_owned() + &"z".repeat(15);
    b.send(json!({"type": "nick", "nick": format!(" {longest} ")}));
    b.expect_eq(nick_change("guest-2", &longest));
    a.expect_eq(nick_change("guest-2", &longest));
    b.send(json!({"type": "nick", "nick": "bob"}));
    b.expect_eq(nick_change(&longest, "bob"));
    a.expect_eq(nick_change(&longest, "bob"));
    // The nickname one has, asked for again: answered to the asker alone. A change of
    // case is a change, and everyone hears it.
    b.send(json!({"type": "nick", "nick": "bob"}));
    b.expect_eq(nick_change("bob", "bob"));
    a.quiet();
    b.send(json!({"type": "nick", "nick": "Bob"}));
    b.expect_eq(nick_change("bob", "Bob"));
    a.expect_eq(nick_change("bob", "Bob"));
    b.send(json!({"type": "nick", "nick": "bob"}));
    b.expect_eq(nick_change("Bob", "bob"));
    a.expect_eq(nick_change("Bob", "bob"));
    // Members show the new names, sorted without regard to case.
    a.send(json!({"type": "who"}));
    a.expect_eq(members("both", &["Ada", "bob"]));
    quiet(&mut [&mut a, &mut b, &mut s]);
}

#[test]
fn a_nickname_is_freed_on_disconnect() {
    let addr = start(config());
    let a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    a.close();
    b.expect_eq(leave("lobby", "guest-1", Disconnected));
    b.send(json!({"type": "nick", "nick": "GUEST-1"}));
    b.expect_eq(nick_change("guest-2", "GUEST-1"));
    // A guest name someone took is skipped for newcomers.
    b.send(json!({"type": "nick", "nick": "guest-3"}));
    b.expect_eq(nick_change("GUEST-1", "guest-3"));
    let c = Client::arrive(addr);
    assert_eq!(c.nick, "guest-4");
    b.expect_eq(join("lobby", "guest-4"));
    // b's old names are free again: guest-2 can be taken.
    b.send(json!({"type": "nick", "nick": "guest-2"}));
    b.expect_eq(nick_change("guest-3", "guest-2"));
}

#[test]
fn joining_and_leaving_rooms() {
    let addr = start(ChatConfig {
        max_rooms_per_member: 3,
        max_rooms: 4,
        max_room_chars: 12,
        ..config()
    });
    let (g1, g2, g3) = ("guest-1", "guest-2", "guest-3");
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    a.expect_eq(join("lobby", g2));

    // `#Rust` is the room `rust`; it is created; only its members hear of joins.
    a.ask_eq(join_req("#Rust"), joined("rust", g1, &[g1]));
    b.quiet();
    b.ask_eq(join_req("RUST"), joined("rust", g2, &[g1, g2]));
    a.expect_eq(join("rust", g2));
    b.send(json!({"type": "rooms"}));
    b.expect_eq(rooms(&[("lobby", 2), ("rust", 2)]));
    // Joining a room one is in: members and history again, no notice.
    b.ask_eq(
        join_req("rust"),
        vec![members("rust", &[g1, g2]), history("rust", vec![])],
    );
    a.quiet();

    // Per member: a is in lobby, rust and go, the most allowed.
    a.ask(join_req("go"), 3);
    a.refused(join_req("c"), E::TooManyRooms);
    // Server-wide: lobby, rust, go, zig are as many rooms as allowed.
    let mut c = Client::arrive(addr);
    a.expect_eq(join("lobby", g3));
    b.expect_eq(join("lobby", g3));
    c.ask(join_req("zig"), 3);
    c.refused(join_req("ada"), E::TooManyRooms);
    c.ask_eq(join_req("go"), joined("go", g3, &[g1, g3]));
    a.expect_eq(join("go", g3));
    for bad in ["", "#", "a/b", "two words", "abcdefghijklm", "<b>", "a.b"] {
        c.refused(join_req(bad), E::RoomInvalid);
    }

    // Leaving: the notice goes to those left and to the leaver.
    b.send(leave_req("#Rust"));
    b.expect_eq(leave("rust", g2, Left));
    a.expect_eq(leave("rust", g2, Left));
    c.quiet();
    b.refused(leave_req("rust"), E::NotInRoom);
    b.refused(leave_req("zig"), E::NotInRoom);
    b.refused(leave_req("nowhere"), E::NotInRoom);
    b.refused(leave_req("a/b"), E::RoomInvalid);
    // The last one out deletes the room.
    a.send(leave_req("rust"));
    a.expect_eq(leave("rust", g1, Left));
    a.send(json!({"type": "rooms"}));
    a.expect_eq(rooms(&[("go", 2), ("lobby", 3), ("zig", 1)]));
    // Which made room for a fourth: a 12-character name, then `leave` of the active room.
    b.ask_eq(join_req("#ABCDEFGHIJKL"), joined("abcdefghijkl", g2, &[g2]));
    b.send(leave_req(""));
    b.expect_eq(leave("abcdefghijkl", g2, Left));
    b.send(json!({"type": "rooms"}));
    b.expect_eq(rooms(&[("go", 2), ("lobby", 3), ("zig", 1)]));

    // a joined lobby, then go: go is active. Joining lobby again makes it active.
    a.send(json!({"type": "message", "text": "to go"}));
    let id = id_of(&a.expect(|e| matches!(e, ServerEvent::Message { room, .. } if room == "go")));
    c.expect_eq(message(id, "go", g1, "to go"));
    a.ask_eq(
        join_req("lobby"),
        vec![members("lobby", &[g1, g2, g3]), history("lobby", vec![])],
    );
    a.send(json!({"type": "message", "text": "to lobby"}));
    let id = id_of(&a.next());
    b.expect_eq(message(id, "lobby", g1, "to lobby"));
    c.expect_eq(message(id, "lobby", g1, "to lobby"));
    // Leaving the active room makes the one joined before it active.
    a.ask(leave_req("lobby"), 1);
    a.send(json!({"type": "message", "text": "go again"}));
    let id = id_of(&a.next());
    c.expect_eq(leave("lobby", g1, Left));
    c.expect_eq(message(id, "go", g1, "go again"));
    b.expect_eq(leave("lobby", g1, Left));

    // The default room is never deleted, even empty.
    b.ask(leave_req("lobby"), 1);
    c.expect_eq(leave("lobby", g2, Left));
    c.ask(leave_req("lobby"), 1);
    b.send(json!({"type": "rooms"}));
    b.expect_eq(rooms(&[("go", 2), ("lobby", 0), ("zig", 1)]));
    // In no room at all, requests that need an active room fail.
    b.refused(json!({"type": "message", "text": "hello?"}), E::NotInRoom);
    b.refused(leave_req(""), E::NotInRoom);
    b.refused(json!({"type": "who"}), E::NotInRoom);
    b.send_binary(&png(20));
    b.expect_error(E::NotInRoom);
    // Back in the empty default room, which has kept its history.
    assert_eq!(
        b.ask(join_req("lobby"), 3),
        vec![
            join("lobby", g2),
            members("lobby", &[g2]),
            history("lobby", vec![message(id - 1, "lobby", g1, "to lobby")])
        ]
    );
    quiet(&mut [&mut a, &mut b, &mut c]);
}

#[test]
fn messages_to_rooms() {
    let addr = start(ChatConfig {
        max_text_bytes: 64,
        ..config()
    });
    let (g1, g2) = ("guest-1", "guest-2");
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    let mut s = Client::arrive(addr);
    a.expect_eq(join("lobby", g2));
    s.ask(join_req("other"), 3);
    s.ask(leave_req("lobby"), 1);
    for client in [&mut a, &mut b] {
        client.expect_eq(join("lobby", "guest-3"));
        client.expect_eq(leave("lobby", "guest-3", Left));
    }

    let before = now_ms();
    a.send(json!({"type": "message", "text": "hello"}));
    let (_, first) = a.next_raw();
    let ServerEvent::Message { id: id1, time, .. } = first else {
        panic!("{first:?}")
    };
    assert!(time >= before && time <= now_ms(), "time {time}");
    assert_eq!(untimed(first), message(id1, "lobby", g1, "hello"));
    b.expect_eq(message(id1, "lobby", g1, "hello"));
    a.send(json!({"type": "message", "room": "lobby", "text": "second"}));
    let id2 = id_of(&a.next());
    assert!(id2 > id1);
    b.expect_eq(message(id2, "lobby", g1, "second"));
    s.quiet();

    // A named room must be one the sender is in.
    b.ask(join_req("side"), 3);
    for (room, code) in [
        ("side", E::NotInRoom),
        ("a/b", E::RoomInvalid),
        ("", E::RoomInvalid),
    ] {
        a.refused(json!({"type": "message", "room": room, "text": "hi"}), code);
    }
    a.ask(join_req("#Side"), 3);
    b.expect_eq(join("side", g1));
    a.send(json!({"type": "message", "room": "#SIDE", "text": "in side"}));
    let id3 = id_of(&a.next());
    assert!(id3 > id2);
    b.expect_eq(message(id3, "side", g1, "in side"));

    // Empty, blank, or nothing but control characters.
    for empty in ["", "   ", "\u{1b}\u{7}\r"] {
        a.refused(json!({"type": "message", "text": empty}), E::EmptyMessage);
    }
    // The limit is in bytes: 32 two-byte characters pass, one byte more does not.
    let max = "é".repeat(32);
    a.send(json!({"type": "message", "text": max}));
    let id4 = id_of(&a.next());
    b.expect_eq(message(id4, "side", g1, &max));
    let over = format!("{max}a");
    a.refused(json!({"type": "message", "text": over}), E::MessageTooLarge);
    // Control characters other than newline and tab are removed.
    a.send(json!({"type": "message", "text": "red\u{1b}[31m alert\r\nline\ttwo\u{7f}"}));
    let id5 = id_of(&a.next());
    assert!(id5 > id4);
    b.expect_eq(message(id5, "side", g1, "red[31m alert\nline\ttwo"));
    b.send(json!({"type": "message", "room": "lobby", "text": "from b"}));
    let id6 = id_of(&b.next());
    a.expect_eq(message(id6, "lobby", g2, "from b"));
    quiet(&mut [&mut a, &mut b, &mut s]);
}

#[test]
fn private_messages() {
    let addr = start(ChatConfig {
        max_text_bytes: 64,
        ..config()
    });
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    let mut c = Client::arrive(addr);
    settle(&mut [&mut a, &mut b, &mut c]);
    a.ask(json!({"type": "nick", "nick": "Ada"}), 1);
    b.ask(json!({"type": "nick", "nick": "bob"}), 2);
    // b shares no room with a.
    b.ask(join_req("other"), 3);
    b.ask(leave_req("lobby"), 1);
    settle(&mut [&mut a, &mut b, &mut c]);

    a.send(json!({"type": "private", "to": "BOB", "text": "psst"}));
    let event = a.next();
    let ServerEvent::Private { id, .. } = event else {
        panic!("{event:?}")
    };
    let expected = ServerEvent::Private {
        id,
        from: "Ada".into(),
        to: "bob".into(),
        text: "psst".into(),
        time: 0,
    };
    assert_eq!(event, expected);
    b.expect_eq(expected);
    c.quiet();

    for (to, text, code) in [
        ("nobody", "hi".to_owned(), E::UnknownUser),
        ("", "hi".to_owned(), E::UnknownUser),
        ("bob", " ".to_owned(), E::EmptyMessage),
        ("bob", "x".repeat(65), E::MessageTooLarge),
    ] {
        a.refused(json!({"type": "private", "to": to, "text": text}), code);
    }
    // To oneself: once.
    a.send(json!({"type": "private", "to": "ada", "text": "note\u{1b} to self"}));
    a.expect(|e| {
        matches!(e, ServerEvent::Private { id: n, from, to, text, .. }
            if *n > id && from == "Ada" && to == "Ada" && text == "note to self")
    });
    b.send(json!({"type": "private", "to": "Ada", "text": "x".repeat(64)}));
    let reply = b.next();
    a.expect_eq(reply);
    // Nicknames never have spaces around them (they are trimmed when taken), so spaces
    // around a recipient's name are not part of it.
    a.send(json!({"type": "private", "to": " bob ", "text": "spaced"}));
    let event = a.next();
    assert!(
        matches!(&event, ServerEvent::Private { to, .. } if to == "bob"),
        "{event:?}"
    );
    b.expect_eq(event);
    quiet(&mut [&mut a, &mut b, &mut c]);
}

fn with_head(head: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = head.to_vec();
    bytes.resize(size, 0x5a);
    bytes
}

fn png(size: usize) -> Vec<u8> {
    with_head(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", size)
}

#[test]
fn images() {
    let addr = start(ChatConfig {
        max_image_bytes: 100,
        ..config()
    });
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    let mut c = Client::arrive(addr);
    c.ask(join_req("elsewhere"), 3);
    c.ask(leave_req("lobby"), 1);
    settle(&mut [&mut a, &mut b]);
    // The next event must be this image from guest-1, with a greater id than the last.
    let mut last_id = 0;
    let mut expect_image = |client: &mut Client,
                            room: Option<&str>,
                            to: Option<&str>,
                            mime,
                            bytes: &[u8]| {
        let got = client.next();
        let id = id_of(&got);
        assert!(id > last_id, "{got:?}");
        last_id = id;
        let (size, data) = (bytes.len(), BASE64.encode(bytes));
        let expected = json!({"type": "image", "id": id, "room": room, "to": to, "from": "guest-1",
            "mime": mime, "size": size, "data": data, "time": 0});
        assert_eq!(got, event(expected));
        got
    };
    let mut in_lobby = Vec::new();
    let jpeg = with_head(b"\xff\xd8\xff\xe0\0\x10JFIF", 30);
    let webp = with_head(b"RIFF\x24\0\0\0WEBPVP8 ", 30);
    let cases = [
        (png(40), "image/png", ""),
        (jpeg, "image/jpeg", ""),
        (with_head(b"GIF87a\x01\0", 20), "image/gif", ""),
        (with_head(b"GIF89a\x01\0", 20), "image/gif", ""),
        (webp, "image/webp", ""),
        (png(100), "image/png", "data:image/png;base64,"),
        (
            png(12),
            "image/png",
            "data:application/octet-stream;base64,",
        ),
    ];
    for (bytes, mime, prefix) in cases {
        let data = format!("{prefix}{}", BASE64.encode(&bytes));
        a.send(json!({"type": "image", "data": data}));
        let got = expect_image(&mut a, Some("lobby"), None, mime, &bytes);
        b.expect_eq(got.clone());
        in_lobby.push(got);
    }
    c.quiet();

    let data = BASE64.encode(png(101));
    a.refused(json!({"type": "image", "data": data}), E::ImageTooLarge);
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let refused: [&[u8]; 4] = [b"<html><script>alert(1)</script>", svg, b"", b"\x89PN"];
    for bytes in refused {
        let data = BASE64.encode(bytes);
        a.refused(json!({"type": "image", "data": data}), E::ImageInvalid);
        let url = format!("data:image/png;base64,{data}");
        a.refused(json!({"type": "image", "data": url}), E::ImageInvalid);
    }
    for bad in ["not base64!", "iVBORw0KGgo", "iVBO\nRw0K"] {
        a.refused(json!({"type": "image", "data": bad}), E::ImageInvalid);
    }
    let data = BASE64.encode(png(50));
    a.send(json!({"type": "image", "room": "elsewhere", "data": data}));
    a.expect_error(E::NotInRoom);

    // Private: to the sender and the recipient only.
    a.send(json!({"type": "image", "to": "GUEST-3", "data": data}));
    let got = expect_image(&mut a, None, Some("guest-3"), "image/png", &png(50));
    c.expect_eq(got);
    b.quiet();
    a.send(json!({"type": "image", "to": "nobody", "data": data}));
    a.expect_error(E::UnknownUser);

    // A binary frame is an image for the active room.
    a.ask(join_req("pics"), 3);
    let gif = with_head(b"GIF89a\x02\0\x02\0", 33);
    a.send_binary(&gif);
    expect_image(&mut a, Some("pics"), None, "image/gif", &gif);
    a.ask(leave_req("pics"), 1);
    a.send_binary(&png(100));
    let got = expect_image(&mut a, Some("lobby"), None, "image/png", &png(100));
    b.expect_eq(got.clone());
    in_lobby.push(got);
    a.send_binary(b"<html>");
    a.expect_error(E::ImageInvalid);
    a.send_binary(&png(101));
    a.expect_error(E::ImageTooLarge);
    quiet(&mut [&mut a, &mut b, &mut c]);

    // Room images are in the history, in order; the private one is not.
    let d = Client::arrive(addr);
    assert_eq!(d.history, in_lobby);
}

#[test]
fn who_and_rooms() {
    let addr = start(config());
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    let mut c = Client::arrive(addr);
    settle(&mut [&mut a, &mut b, &mut c]);
    a.ask(json!({"type": "nick", "nick": "carol"}), 1);
    b.ask(json!({"type": "nick", "nick": "Bob"}), 2);
    c.ask(json!({"type": "nick", "nick": "ada"}), 3);
    settle(&mut [&mut a, &mut b, &mut c]);
    a.send(json!({"type": "who"}));
    a.expect_eq(members("lobby", &["ada", "Bob", "carol"]));
    b.ask(join_req("zeta"), 3);
    b.ask(join_req("alpha"), 3);
    // Any existing room may be asked about, member or not.
    a.send(json!({"type": "who", "room": "#Zeta"}));
    a.expect_eq(members("zeta", &["Bob"]));
    a.refused(json!({"type": "who", "room": "nowhere"}), E::RoomInvalid);
    a.refused(json!({"type": "who", "room": "a/b"}), E::RoomInvalid);
    // Without a room: the active one.
    b.send(json!({"type": "who"}));
    b.expect_eq(members("alpha", &["Bob"]));
    c.send(json!({"type": "rooms"}));
    c.expect_eq(rooms(&[("alpha", 1), ("lobby", 3), ("zeta", 1)]));
    quiet(&mut [&mut a, &mut b, &mut c]);
}

#[test]
fn bare_text_bad_json_and_bad_requests() {
    let addr = start(config());
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    a.expect_eq(join("lobby", "guest-2"));
    a.send_text("hello there");
    let id = id_of(&a.next());
    b.expect_eq(message(id, "lobby", "guest-1", "hello there"));
    a.send_text("[1, 2] is not an object");
    let id = id_of(&a.next());
    b.expect_eq(message(id, "lobby", "guest-1", "[1, 2] is not an object"));
    a.send_text("");
    a.expect_error(E::EmptyMessage);

    for bad_json in [
        "{",
        "{not json",
        "  {\"type\":",
        "{\"type\":\"rooms\"} trailing",
    ] {
        a.send_text(bad_json);
        a.expect_error(E::BadJson);
    }
    let bad_requests = [
        json!({}),
        json!({"type": "dance"}),
        json!({"type": "Message", "text": "hi"}),
        json!({"type": "message"}),
        json!({"type": "message", "text": 5}),
        json!({"type": "nick"}),
        json!({"type": "nick", "nick": null}),
        json!({"type": "private", "text": "hi"}),
        json!({"type": "image"}),
        json!({"text": "hi"}),
    ];
    for request in bad_requests {
        a.refused(request, E::BadRequest);
    }
    // Still usable, and unknown fields are ignored.
    a.send(json!({"type": "message", "text": "still here", "extra": [1]}));
    let id = id_of(&a.next());
    b.expect_eq(message(id, "lobby", "guest-1", "still here"));
    quiet(&mut [&mut a, &mut b]);
}

#[test]
fn disconnects_leave_every_room() {
    let addr = start(config());
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    let mut c = Client::arrive(addr);
    settle(&mut [&mut a, &mut b, &mut c]);
    for client in [&mut a, &mut b, &mut c] {
        client.ask(join_req("extra"), 3);
    }
    c.ask(join_req("solo"), 3);
    settle(&mut [&mut a, &mut b, &mut c]);
    let leaves = |client: &mut Client, nick: &str| {
        let mut got = (0..2).map(|_| client.next()).collect::<Vec<_>>();
        got.sort_by_key(|e| format!("{e:?}"));
        let expected = ["extra", "lobby"].map(|room| leave(room, nick, Disconnected));
        assert_eq!(got, expected, "{}", client.nick);
    };
    // Cleanly: Close 1000, echoed.
    a.close();
    leaves(&mut b, "guest-1");
    leaves(&mut c, "guest-1");
    // Abruptly: the socket is dropped with no Close. c was alone in solo, which goes.
    drop(c);
    leaves(&mut b, "guest-3");
    b.send(json!({"type": "rooms"}));
    b.expect_eq(rooms(&[("extra", 1), ("lobby", 1)]));
    // Both nicknames are free.
    let d = Client::arrive(addr);
    assert_eq!(d.nick, "guest-4");
    b.expect_eq(join("lobby", "guest-4"));
    b.ask(json!({"type": "nick", "nick": "guest-1"}), 1);
    b.ask(json!({"type": "nick", "nick": "guest-3"}), 1);
}

#[test]
fn rate_limit_warns_once_then_closes_with_1008() {
    let addr = start(ChatConfig {
        rate_per_second: 1.0,
        rate_burst: 3,
        rate_strikes: 10,
        ..ChatConfig::default()
    });
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    a.expect_eq(join("lobby", "guest-2"));
    // A burst of 8: 3 answered, the 4th warned about, the rest dropped silently.
    for _ in 0..8 {
        a.ws.write(Message::text(r#"{"type":"rooms"}"#)).unwrap();
    }
    a.ws.flush().unwrap();
    for _ in 0..3 {
        a.expect_eq(rooms(&[("lobby", 2)]));
    }
    a.expect_error(E::RateLimited);
    // A second later there is a token again, and nothing came between.
    thread::sleep(Duration::from_millis(1200));
    a.send(json!({"type": "who"}));
    a.expect_eq(members("lobby", &["guest-1", "guest-2"]));
    // A flood: one warning, then, at 10 refused in a row, Close 1008.
    for _ in 0..30 {
        a.ws.write(Message::text(r#"{"type":"rooms"}"#)).unwrap();
    }
    a.ws.flush().unwrap();
    let mut answered = 0;
    loop {
        match a.next() {
            // The bucket refills as time passes; on a slow machine a token may be there.
            ServerEvent::Rooms { .. } if answered < 2 => answered += 1,
            ServerEvent::Error {
                code: E::RateLimited,
                ..
            } => break,
            other => panic!("expected rate_limited, got {other:?}"),
        }
    }
    assert_eq!(a.expect_close(1008), "rate limit exceeded");
    b.expect_eq(leave("lobby", "guest-1", Disconnected));
}

/// A GET over plain TCP: status, headers (names lowercased) and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, BTreeMap<String, String>, String) {
    let mut raw = common::RawClient::connect(addr);
    raw.send(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, body) = raw.read_http_response();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, String::from_utf8(body).unwrap())
}

#[test]
fn upgrade_routing_and_the_page() {
    let addr = start(config());
    for path in ["/ws", "/", "/ws?from=test"] {
        let mut client = Client::open(addr, path);
        client.expect(|e| matches!(e, ServerEvent::Welcome { .. }));
    }
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client(format!("ws://{addr}/other"), stream) {
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 404);
        }
        Err(e) => panic!("expected a 404, got {e:?}"),
        Ok(_) => panic!("a WebSocket was accepted on /other"),
    }

    let pages = [
        ("/", "text/html; charset=utf-8", "src=\"/chat.js\""),
        ("/chat.js", "text/javascript; charset=utf-8", ""),
        ("/chat.css", "text/css; charset=utf-8", ""),
        ("/favicon.svg", "image/svg+xml", "<svg"),
    ];
    for (path, content_type, contains) in pages {
        let (status, headers, body) = http_get(addr, path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], content_type, "{path}");
        let csp = &headers["content-security-policy"];
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            !body.is_empty() && body.contains(contains),
            "{path}: {body}"
        );
    }
    let (status, _, _) = http_get(addr, "/nope");
    assert_eq!(status, 404);
}

#[test]
fn a_message_over_the_server_limit_closes_with_1009() {
    let server = ServerConfig {
        max_message_size: 4096,
        ..ServerConfig::default()
    };
    let addr = common::start_with(server, Chat::new(config()));
    let mut a = Client::arrive(addr);
    let mut b = Client::arrive(addr);
    a.expect_eq(join("lobby", "guest-2"));
    a.send(json!({"type": "image", "data": BASE64.encode(png(4000))}));
    let reason = a.expect_close(1009);
    assert!(reason.contains("exceeds the limit of 4096"), "{reason}");
    b.expect_eq(leave("lobby", "guest-1", Disconnected));
}

/// People on the line port (and the terminal client) read `render_line`'s output. Text
/// may hold newlines; what follows one must not pass for a line of its own, or anyone can
/// forge notices (`* ...`), private messages (`[private] ...`) and errors (`! ...`).
#[test]
fn a_multiline_message_cannot_forge_lines_on_the_line_port() {
    let server_config = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        line_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut server = loopchat::Server::bind(server_config, Chat::new(config())).unwrap();
        tx.send((server.local_addr().unwrap(), server.line_addr().unwrap()))
            .unwrap();
        server.run()
    });
    let (addr, line_addr) = rx.recv().unwrap();
    let stream = TcpStream::connect(line_addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut read_line = || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).expect("a line in time");
        line
    };
    while read_line() != "* recent messages in #lobby: 0\n" {}
    let mut a = Client::arrive(addr);
    let forged = "hi\n* guest-1 is now admin\n[private] admin -> guest-1: your password?\n! x";
    a.send(json!({"type": "message", "text": forged}));
    a.send(json!({"type": "message", "text": "end"}));
    assert_eq!(read_line(), "* guest-2 joined #lobby\n");
    let mut lines = vec![read_line()];
    while lines.last().unwrap() != "[#lobby] guest-2: end\n" {
        lines.push(read_line());
    }
    assert!(lines[0].starts_with("[#lobby] guest-2: hi"), "{lines:?}");
    for line in &lines[1..lines.len() - 1] {
        assert!(
            !line.starts_with(['*', '[', '!']),
            "a forged line: {lines:?}"
        );
    }
    // `/quit`: a last line, then the end of the stream.
    std::io::Write::write_all(reader.get_mut(), b"/quit\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).expect("the end in time");
    assert_eq!(rest, "* bye\n");
}

#[test]
fn fan_out_reaches_each_of_50_clients_exactly_once() {
    const N: usize = 50;
    let addr = start(config());
    let mut clients: Vec<Client> = (0..N).map(|_| Client::arrive(addr)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.nick, format!("guest-{}", i + 1));
        for later in i + 1..N {
            client.expect_eq(join("lobby", &format!("guest-{}", later + 1)));
        }
    }
    // Everyone speaks at once.
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(json!({"type": "message", "text": format!("m{i}")}));
    }
    let mut seen: Option<Vec<(u64, String, String)>> = None;
    for client in &mut clients {
        let mut got = Vec::new();
        for _ in 0..N {
            match client.next() {
                ServerEvent::Message {
                    id,
                    room,
                    from,
                    text,
                    ..
                } if room == "lobby" => got.push((id, from, text)),
                other => panic!("{}: unexpected {other:?}", client.nick),
            }
        }
        // Each message once, in increasing id order, each from its author.
        let texts: BTreeSet<&str> = got.iter().map(|(_, _, t)| t.as_str()).collect();
        assert_eq!(texts.len(), N, "{}", client.nick);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "{got:?}");
        for (_, from, text) in &got {
            let i: usize = text[1..].parse().unwrap();
            assert_eq!(*from, format!("guest-{}", i + 1));
        }
        // The same message has the same id everywhere.
        match &seen {
            None => seen = Some(got),
            Some(first) => assert_eq!(&got, first, "{}", client.nick),
        }
    }
    for client in &mut clients {
        client.quiet();
    }
}
