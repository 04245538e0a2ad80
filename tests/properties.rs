//! Properties of the sans-IO protocol code, checked on random input with proptest.
//!
//! - Whatever one role encodes, the other role decodes: the same messages (text with any
//!   Unicode, binary, empty, up to 200 KiB, in one frame or cut into fragments) and the
//!   same Pings and Pongs, in order, however the byte stream is cut into reads, one byte
//!   at a time included. Both directions.
//! - The closing handshake completes from either side with any code that may be sent and
//!   any reason (cut to 123 bytes at a character boundary), with messages still flowing
//!   while it is under way.
//! - A valid request head is "incomplete" at every prefix, parses to what was written
//!   once whole, and gives the same verdict whatever its reads, under any limits.
//! - The client's request and the server's 101 agree, however either arrives.
//!
//! Each property runs 128 cases by default (`PROPTEST_CASES=N` to change that), which keeps
//! the file to a few seconds in a debug build. A failing case is shrunk, and its seed kept
//! in `tests/properties.proptest-regressions`, which proptest replays first from then on:
//! commit that file with the fix.

use loopchat::http::request::completes_a_line;
use loopchat::http::{
    ClientHandshake, HeadLimits, HttpError, Request, RequestKind, accept_key, classify,
    parse_request,
};
use loopchat::ws::frame::{MAX_CONTROL_PAYLOAD, encode_frame};
use loopchat::ws::{
    CloseCode, CloseFrame, ControlPayload, Event, Message, Opcode, ProtocolError, Role, State,
    WebSocket, WriteError,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// 128 cases, unless `PROPTEST_CASES` says otherwise. A value that is not a number, or
/// 0, fails the test that reads it, naming the variable: a run of no case must not pass.
fn config() -> Config {
    let cases = match std::env::var("PROPTEST_CASES") {
        Err(_) => 128,
        Ok(value) => match value.trim().parse::<u32>() {
            Ok(0) => panic!("PROPTEST_CASES=0 selects no case: nothing would be tested"),
            Ok(cases) => cases,
            Err(e) => panic!("PROPTEST_CASES={value:?} is not a number of cases: {e}"),
        },
    };
    Config {
        cases,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// Random bytes and text, cheaply
// ---------------------------------------------------------------------------------------

/// xorshift64*: big payloads are made from a seed rather than drawn byte by byte, which
/// would make proptest keep a value tree per byte. The seed and the length still shrink.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Text of about `len` bytes, mixing characters of every UTF-8 width.
fn random_text(seed: u64, len: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut text = String::with_capacity(len + 4);
    while text.len() < len {
        let range = match rng.below(8) {
            0..=3 => 0x20..0x7f,
            4 => 0x80..0x800,
            5 | 6 => 0x800..0x1_0000,
            _ => 0x1_0000..0x11_0000,
        };
        // Surrogates are not characters: `from_u32` refuses them, and we draw again.
        if let Some(c) =
            char::from_u32(range.start + rng.below(u64::from(range.end - range.start)) as u32)
        {
            text.push(c);
        }
    }
    text
}

// ---------------------------------------------------------------------------------------
// Reads: how a byte stream is cut
// ---------------------------------------------------------------------------------------

/// How a stream arrives from the socket.
#[derive(Debug, Clone)]
enum Reads {
    /// All at once.
    Whole,
    /// One byte per read.
    Bytewise,
    /// Reads of 1 to `max` bytes, their lengths drawn from `seed`.
    Random { seed: u64, max: usize },
    /// Cut at these points, given as fractions of the stream (`u32::MAX` is the end).
    /// Equal points make empty reads.
    At(Vec<u32>),
}

fn reads() -> impl Strategy<Value = Reads> {
    let max = prop_oneof![Just(3), Just(20), Just(200), Just(5_000), Just(100_000)];
    prop_oneof![
        1 => Just(Reads::Whole),
        1 => Just(Reads::Bytewise),
        3 => (any::<u64>(), max).prop_map(|(seed, max)| Reads::Random { seed, max }),
        2 => prop::collection::vec(any::<u32>(), 1..=24).prop_map(Reads::At),
    ]
}

impl Reads {
    fn cut<'a>(&self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        match self {
            Reads::Whole => vec![bytes],
            Reads::Bytewise => bytes.chunks(1).collect(),
            Reads::Random { seed, max } => {
                let mut rng = Rng::new(*seed);
                let mut pieces = Vec::new();
                let mut rest = bytes;
                while !rest.is_empty() {
                    let len = (1 + rng.below(*max as u64) as usize).min(rest.len());
                    let (piece, after) = rest.split_at(len);
                    pieces.push(piece);
                    rest = after;
                }
                pieces
            }
            Reads::At(fractions) => {
                let mut points: Vec<usize> = fractions
                    .iter()
                    .map(|&f| (u64::from(f) * bytes.len() as u64 / u64::from(u32::MAX)) as usize)
                    .collect();
                points.sort_unstable();
                let mut pieces = Vec::new();
                let mut start = 0;
                for point in points.into_iter().chain([bytes.len()]) {
                    pieces.push(&bytes[start..point]);
                    start = point;
                }
                pieces
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// What is sent
// ---------------------------------------------------------------------------------------

/// A data message.
#[derive(Debug, Clone)]
enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Text(text) => text.as_bytes(),
            Payload::Binary(bytes) => bytes,
        }
    }

    fn event(&self) -> Event {
        match self {
            Payload::Text(text) => Event::Text(text.clone()),
            Payload::Binary(bytes) => Event::Binary(bytes.clone()),
        }
    }
}

/// A Ping or a Pong.
#[derive(Debug, Clone)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

impl Control {
    fn event(&self) -> Event {
        match self {
            Control::Ping(p) => Event::Ping(ControlPayload::new(p).expect("125 bytes at most")),
            Control::Pong(p) => Event::Pong(ControlPayload::new(p).expect("125 bytes at most")),
        }
    }
}

/// One thing on the wire.
#[derive(Debug, Clone)]
enum Item {
    /// A message in one frame (`cuts` empty, written with `WebSocket::write_message`), or
    /// cut into fragments at `cuts` (fractions of its length, `u16::MAX` the end; equal
    /// cuts make empty fragments), each cut possibly followed by a control frame.
    Message {
        payload: Payload,
        cuts: Vec<(u16, Option<Control>)>,
    },
    /// A Ping or Pong between messages.
    Control(Control),
}

/// Message lengths: mostly small, with the edges of the length encodings, and now and
/// then large (up to 200 KiB).
fn message_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0..=130usize,
        2 => prop::sample::select(vec![125, 126, 127, 65_535, 65_536, 65_537]),
        2 => 131..=70_000usize,
        1 => 100_000..=200_000usize,
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        // Small text from proptest's own characters (it favours awkward ones).
        2 => prop::collection::vec(any::<char>(), 0..=40)
            .prop_map(|chars| Payload::Text(chars.into_iter().collect())),
        3 => (message_len(), any::<u64>())
            .prop_map(|(len, seed)| Payload::Text(random_text(seed, len))),
        3 => (message_len(), any::<u64>())
            .prop_map(|(len, seed)| Payload::Binary(random_bytes(seed, len))),
    ]
}

fn control() -> impl Strategy<Value = Control> {
    let payload = prop::collection::vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD);
    prop_oneof![
        payload.clone().prop_map(Control::Ping),
        payload.prop_map(Control::Pong),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    let cuts = prop::collection::vec(
        (any::<u16>(), prop::option::weighted(0.3, control())),
        0..=6,
    );
    prop_oneof![
        4 => (payload(), prop_oneof![Just(Vec::new()), cuts])
            .prop_map(|(payload, cuts)| Item::Message { payload, cuts }),
        1 => control().prop_map(Item::Control),
    ]
}

/// Masking keys for the fragments we frame ourselves, in the client role.
fn mask_keys(seed: u64) -> impl FnMut() -> [u8; 4] {
    let mut rng = Rng::new(seed);
    move || (rng.next() as u32).to_ne_bytes()
}

fn send_control(sender: &mut WebSocket, control: &Control, out: &mut Vec<u8>) {
    match control {
        Control::Ping(p) => sender.write_ping(p, out),
        Control::Pong(p) => sender.write_pong(p, out),
    }
    .expect("a control frame");
}

/// Encodes `items` as `sender` would send them, and returns the bytes and the events the
/// receiver must report. `WebSocket` writes whole messages only, so fragments are framed
/// with `frame::encode_frame`, masked when the sender is a client.
fn encode(sender: &mut WebSocket, items: &[Item], mask_seed: u64) -> (Vec<u8>, Vec<Event>) {
    let mut next_key = mask_keys(mask_seed);
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Control(control) => {
                send_control(sender, control, &mut out);
                expected.push(control.event());
            }
            Item::Message { payload, cuts } if cuts.is_empty() => {
                let message = match payload {
                    Payload::Text(text) => Message::Text(text),
                    Payload::Binary(bytes) => Message::Binary(bytes),
                };
                sender.write_message(message, &mut out).expect("a message");
                expected.push(payload.event());
            }
            Item::Message { payload, cuts } => {
                let bytes = payload.bytes();
                let mut cuts = cuts.clone();
                cuts.sort_by_key(|(at, _)| *at);
                let mut opcode = match payload {
                    Payload::Text(_) => Opcode::Text,
                    Payload::Binary(_) => Opcode::Binary,
                };
                let mut start = 0;
                for (at, control) in &cuts {
                    let end = usize::from(*at) * bytes.len() / usize::from(u16::MAX);
                    let mask = (sender.role() == Role::Client).then(&mut next_key);
                    encode_frame(&mut out, opcode, false, &bytes[start..end], mask);
                    opcode = Opcode::Continuation;
                    start = end;
                    if let Some(control) = control {
                        send_control(sender, control, &mut out);
                        expected.push(control.event());
                    }
                }
                let mask = (sender.role() == Role::Client).then(&mut next_key);
                encode_frame(&mut out, opcode, true, &bytes[start..], mask);
                expected.push(payload.event());
            }
        }
    }
    (out, expected)
}

/// Feeds `bytes` to `receiver` in `reads` and returns the events; fails on a protocol
/// error. Message buffers go back to the codec, as the event loop gives them back.
fn receive(receiver: &mut WebSocket, bytes: &[u8], reads: &Reads) -> Vec<Event> {
    let mut events = Vec::new();
    for mut input in reads.cut(bytes) {
        loop {
            match receiver.read(&mut input) {
                Ok(Some(event)) => {
                    events.push(event.clone());
                    match event {
                        Event::Text(text) => receiver.recycle(text.into_bytes()),
                        Event::Binary(bytes) => receiver.recycle(bytes),
                        _ => {}
                    }
                }
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with {} bytes left", input.len());
                    break;
                }
                Err(error) => panic!("protocol error on valid input: {error}"),
            }
        }
    }
    events
}

/// A short description of an event, for failure messages about 200 KiB payloads.
fn describe(event: &Event) -> String {
    let head = |bytes: &[u8]| {
        format!(
            "{} bytes {:02x?}",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        )
    };
    match event {
        Event::Text(text) => format!("Text({})", head(text.as_bytes())),
        Event::Binary(bytes) => format!("Binary({})", head(bytes)),
        Event::Ping(p) => format!("Ping({})", head(p)),
        Event::Pong(p) => format!("Pong({})", head(p)),
        Event::Close(close) => format!("Close({close:?})"),
    }
}

fn assert_same_events(got: &[Event], expected: &[Event]) -> Result<(), TestCaseError> {
    if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
        return Err(TestCaseError::fail(format!(
            "event {i} of {}: got {:?}, expected {:?}",
            expected.len(),
            got.get(i).map(describe),
            expected.get(i).map(describe),
        )));
    }
    Ok(())
}

fn other(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

const LIMIT: usize = 16 << 20;

proptest! {
    #![proptest_config(config())]

    /// Messages and control frames survive the trip from either role to the other, in
    /// order, whatever the reads.
    #[test]
    fn what_one_role_encodes_the_other_decodes(
        sender_role in prop_oneof![Just(Role::Client), Just(Role::Server)],
        items in prop::collection::vec(item(), 1..=8),
        reads in reads(),
        mask_seed in any::<u64>(),
    ) {
        let mut sender = WebSocket::new(sender_role, LIMIT);
        let (bytes, expected) = encode(&mut sender, &items, mask_seed);
        let mut receiver = WebSocket::new(other(sender_role), LIMIT);
        let events = receive(&mut receiver, &bytes, &reads);
        assert_same_events(&events, &expected)?;
        prop_assert_eq!(receiver.state(), State::Open);
    }

    /// A Close with any code that may be sent and any reason completes the handshake from
    /// either side; messages sent before it arrive first; messages the responder sent
    /// before the Close reached it are still read by the initiator; the responder's state
    /// machine answers the Close by itself, echoing its code.
    #[test]
    fn the_closing_handshake_completes_from_either_side(
        initiator_role in prop_oneof![Just(Role::Client), Just(Role::Server)],
        close in prop::option::weighted(0.9, (close_code(), close_reason())),
        before in prop::collection::vec(small_payload(), 0..=3),
        after in prop::collection::vec(small_payload(), 0..=3),
        reads_there in reads(),
        reads_back in reads(),
    ) {
        let mut initiator = WebSocket::new(initiator_role, LIMIT);
        let mut responder = WebSocket::new(other(initiator_role), LIMIT);
        let close = close.as_ref().map(|(code, reason)| (CloseCode::from(*code), reason.as_str()));
        let expected_close = close.map(|(code, reason)| CloseFrame {
            code,
            reason: cut_at_char_boundary(reason, 123).to_owned(),
        });

        let mut there = Vec::new();
        for payload in &before {
            initiator.write_message(message(payload), &mut there).expect("open");
        }
        initiator.write_close(close, &mut there).expect("the first Close");
        prop_assert_eq!(initiator.state(), State::CloseSent);
        prop_assert_eq!(
            initiator.write_message(Message::Text("late"), &mut Vec::new()),
            Err(WriteError::Closed)
        );
        // Messages the responder sends while the Close is on its way.
        let mut back = Vec::new();
        for payload in &after {
            responder.write_message(message(payload), &mut back).expect("still open for sending");
        }
        let mut expected: Vec<Event> = before.iter().map(Payload::event).collect();
        expected.push(Event::Close(expected_close.clone()));
        assert_same_events(&receive(&mut responder, &there, &reads_there), &expected)?;
        prop_assert_eq!(responder.state(), State::Closed);
        responder.drain_replies(&mut back);

        let mut expected: Vec<Event> = after.iter().map(Payload::event).collect();
        let echo = expected_close.map(|f| CloseFrame { code: f.code, reason: String::new() });
        expected.push(Event::Close(echo));
        assert_same_events(&receive(&mut initiator, &back, &reads_back), &expected)?;
        prop_assert_eq!(initiator.state(), State::Closed);

        // Both are done: nothing more is sent, and what still arrives is ignored.
        for endpoint in [&mut initiator, &mut responder] {
            prop_assert_eq!(endpoint.write_close(None, &mut Vec::new()), Err(WriteError::Closed));
            prop_assert_eq!(endpoint.write_ping(b"", &mut Vec::new()), Err(WriteError::Closed));
            let mut input: &[u8] = &back;
            prop_assert_eq!(endpoint.read(&mut input), Ok(None));
            prop_assert!(input.is_empty());
        }
    }
}

fn small_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        ".{0,20}".prop_map(Payload::Text),
        prop::collection::vec(any::<u8>(), 0..=200).prop_map(Payload::Binary),
    ]
}

fn message(payload: &Payload) -> Message<'_> {
    match payload {
        Payload::Text(text) => Message::Text(text),
        Payload::Binary(bytes) => Message::Binary(bytes),
    }
}

/// Every code RFC 6455 lets an endpoint send.
fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014
        ]),
        3000..=4999u16,
    ]
}

/// Reasons up to about 200 bytes, so that some must be cut to fit in a Close frame.
fn close_reason() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,30}",
        (0..=200usize, any::<u64>()).prop_map(|(len, seed)| random_text(seed, len)),
    ]
}

fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    let end = (0..=max.min(text.len()))
        .rev()
        .find(|&end| text.is_char_boundary(end))
        .unwrap_or(0);
    &text[..end]
}

// ---------------------------------------------------------------------------------------
// HTTP request heads
// ---------------------------------------------------------------------------------------

/// A valid request head, and what it must parse to.
#[derive(Debug, Clone)]
struct Head {
    bytes: Vec<u8>,
    request: Request,
}

fn token(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[A-Za-z0-9!#$%&'*+.^_`|~-]{{1,{max}}}")).expect("a regex")
}

fn head() -> impl Strategy<Value = Head> {
    let method = prop_oneof![
        prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
            .prop_map(String::from),
        token(12),
    ];
    let target = prop_oneof![
        Just("*".to_owned()),
        "/[A-Za-z0-9._~!$&'()*+,;=:@/%-]{0,40}(\\?[A-Za-z0-9=&%._-]{0,30})?",
        "/[^ \\x00-\\x20\\x7f]{0,20}",
    ];
    // Field values: visible ASCII and obs-text, with inner spaces and tabs; no leading or
    // trailing whitespace, which the parser drops.
    let value = prop::collection::vec(
        prop_oneof![8 => 0x21..=0x7eu8, 1 => Just(b' '), 1 => Just(b'\t'), 1 => 0x80..=0xffu8],
        0..=40,
    )
    .prop_map(|value| value.trim_ascii().to_vec());
    let headers = prop::collection::vec((token(20), value), 0..=20);
    let line_end = prop_oneof![4 => Just("\r\n"), 1 => Just("\n")];
    (method, target, 0..=1u8, headers, line_end).prop_map(
        |(method, target, minor_version, headers, eol)| {
            let mut bytes = format!("{method} {target} HTTP/1.{minor_version}{eol}").into_bytes();
            for (name, value) in &headers {
                bytes.extend_from_slice(name.as_bytes());
                bytes.extend_from_slice(b": ");
                bytes.extend_from_slice(value);
                bytes.extend_from_slice(eol.as_bytes());
            }
            bytes.extend_from_slice(eol.as_bytes());
            Head {
                bytes,
                request: Request {
                    method,
                    target,
                    minor_version,
                    headers,
                },
            }
        },
    )
}

/// The event loop's way with a head (`Session::receive_head`): append each read to a
/// buffer that stops at `max_head_bytes`, and parse after the first read and whenever a
/// line is completed or the buffer is full. Returns the first verdict, if any.
fn parse_in_reads(
    bytes: &[u8],
    reads: &Reads,
    limits: &HeadLimits,
) -> Result<Option<(Request, usize)>, HttpError> {
    let mut buf = Vec::new();
    for piece in reads.cut(bytes) {
        let old_len = buf.len();
        let take = piece
            .len()
            .min(limits.max_head_bytes.saturating_sub(old_len));
        buf.extend_from_slice(&piece[..take]);
        let worth_parsing =
            old_len == 0 || completes_a_line(&buf, old_len) || buf.len() >= limits.max_head_bytes;
        if worth_parsing && let Some(verdict) = parse_request(&buf, limits).transpose() {
            return verdict.map(Some);
        }
    }
    Ok(None)
}

proptest! {
    #![proptest_config(config())]

    /// A valid head is incomplete at every prefix, and whole (followed by the first bytes
    /// of whatever comes next) parses to exactly what was written.
    #[test]
    fn a_valid_head_is_incomplete_until_its_last_byte(
        head in head(),
        after in prop::collection::vec(any::<u8>(), 0..=16),
    ) {
        let limits = HeadLimits::default();
        let len = head.bytes.len();
        for prefix in 0..len {
            let verdict = parse_request(&head.bytes[..prefix], &limits);
            prop_assert_eq!(verdict, Ok(None), "prefix {}", prefix);
        }
        let whole = [head.bytes.as_slice(), &after].concat();
        prop_assert_eq!(parse_request(&whole, &limits), Ok(Some((head.request, len))));
    }

    /// Read as the event loop reads it, a head gets the verdict it gets whole, whatever the
    /// reads and the limits: the request if it fits, 431 if it does not.
    #[test]
    fn a_head_gets_the_same_verdict_whatever_its_reads(
        head in head(),
        reads in reads(),
        max_head_bytes in prop_oneof![Just(8 * 1024), 1..=1500usize],
        max_headers in prop_oneof![Just(64), 0..=24usize],
    ) {
        let limits = HeadLimits { max_head_bytes, max_headers };
        let len = head.bytes.len();
        let whole = parse_in_reads(&head.bytes, &Reads::Whole, &limits);
        prop_assert_eq!(parse_in_reads(&head.bytes, &reads, &limits), whole.clone());
        let fields = head.request.headers.len();
        match whole {
            Ok(Some(parsed)) => {
                prop_assert!(len <= max_head_bytes && fields <= max_headers);
                prop_assert_eq!(parsed, (head.request, len));
            }
            Err(HttpError::HeadTooLarge(_)) => prop_assert!(len > max_head_bytes),
            Err(HttpError::TooManyHeaders(_)) => prop_assert!(fields > max_headers),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// The client's upgrade request is a valid upgrade to the server, however it arrives,
    /// and the server's 101 satisfies the client, however it arrives, leaving the frames
    /// behind it alone.
    #[test]
    fn client_and_server_agree_on_the_handshake_in_any_reads(
        host in "[a-z0-9.-]{1,30}(:[0-9]{1,5})?",
        path in "/[A-Za-z0-9/._~-]{0,30}",
        request_reads in reads(),
        response_reads in reads(),
        frames in prop::collection::vec(any::<u8>(), 0..=16),
    ) {
        let client = ClientHandshake::new(&host, &path);
        let limits = HeadLimits::default();
        let (request, len) = parse_in_reads(client.request(), &request_reads, &limits)
            .expect("parsed")
            .expect("complete");
        prop_assert_eq!(len, client.request().len());
        prop_assert_eq!(&request.target, &path);
        let key = request.header("sec-websocket-key").expect("a key").to_vec();
        let Ok(RequestKind::Upgrade(upgrade)) = classify(&request) else {
            return Err(TestCaseError::fail(format!("refused: {:?}", classify(&request))));
        };
        prop_assert_eq!(&upgrade.accept, &accept_key(&key));

        // The client appends each read and checks the response so far (`client::session`).
        let response = upgrade.response();
        let stream = [response.as_slice(), &frames].concat();
        let mut buf = Vec::new();
        let mut verdict = None;
        for piece in response_reads.cut(&stream) {
            buf.extend_from_slice(piece);
            if let Some(upgraded) = client.read_response(&buf).expect("accepted") {
                verdict = Some(upgraded.head_len);
                break;
            }
            prop_assert!(buf.len() < response.len(), "complete but not accepted");
        }
        prop_assert_eq!(verdict, Some(response.len()));
    }
}

// ---------------------------------------------------------------------------------------
// Every cut into two and into three reads
// ---------------------------------------------------------------------------------------

/// Feeds `pieces` to a fresh endpoint of `role`, one read each, and returns its events,
/// ending with the first error. `Ok(None)` must come only once a read is used up.
fn decode_reads(role: Role, pieces: &[&[u8]]) -> Vec<Result<Event, ProtocolError>> {
    let mut ws = WebSocket::new(role, 1 << 20);
    let mut results = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        loop {
            match ws.read(&mut input) {
                Ok(Some(event)) => results.push(Ok(event)),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with {} bytes left", input.len());
                    break;
                }
                Err(error) => {
                    results.push(Err(error));
                    return results;
                }
            }
        }
    }
    results
}

/// A frame as `role`'s peer sends it: masked towards a server, plain towards a client.
fn wire_frame(to: Role, opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mask = (to == Role::Server).then_some([0x37, 0xfa, 0x21, 0x3d]);
    encode_frame(&mut out, opcode, fin, payload, mask);
    out
}

/// Streams that exercise every state of the decoder: a text message fragmented inside a
/// two-byte character with a Ping between its fragments, a 16-bit length, a Pong, a
/// Close; and streams that end in each kind of failure, found mid-frame.
fn streams(to: Role) -> Vec<(&'static str, Vec<u8>)> {
    let f = |opcode, fin, payload: &[u8]| wire_frame(to, opcode, fin, payload);
    let close = [&1000u16.to_be_bytes()[..], b"bye"].concat();
    let valid = [
        f(Opcode::Text, false, b"caf\xc3"),
        f(Opcode::Ping, true, b"ping"),
        f(Opcode::Continuation, true, b"\xa9!"),
        f(Opcode::Binary, true, &[7; 130]),
        f(Opcode::Pong, true, b""),
        f(Opcode::Close, true, &close),
    ]
    .concat();
    let not_utf8 = [
        f(Opcode::Text, true, b"fine"),
        f(Opcode::Text, true, b"ok \xe2\x82 then more"),
    ]
    .concat();
    let mut reserved_opcode = f(Opcode::Text, true, b"fine");
    reserved_opcode.extend(f(Opcode::Binary, true, b"x"));
    let at = reserved_opcode.len() - f(Opcode::Binary, true, b"x").len();
    reserved_opcode[at] = 0x83;
    let wrong_masking = [
        f(Opcode::Text, true, b"fine"),
        wire_frame(other(to), Opcode::Text, true, b"masked the wrong way"),
    ]
    .concat();
    vec![
        ("valid", valid),
        ("not UTF-8", not_utf8),
        ("reserved opcode", reserved_opcode),
        ("wrong masking", wrong_masking),
    ]
}

/// Each stream gives the same events (and the same error) read whole as cut into two
/// reads at every point and into three reads at every pair of points, in both roles.
/// (The unit tests in `src/ws/protocol/tests.rs` cut their inputs into pieces of one
/// size, every size up to 64; the properties above cut them at random.)
#[test]
fn every_cut_into_two_or_three_reads_decodes_as_the_whole() {
    for role in [Role::Server, Role::Client] {
        for (name, stream) in streams(role) {
            let whole = decode_reads(role, &[&stream]);
            assert!(whole.len() >= 2, "{name}: {whole:?}");
            if name == "valid" {
                assert!(whole.iter().all(Result::is_ok), "{name}: {whole:?}");
            } else {
                assert!(
                    whole.last().is_some_and(Result::is_err),
                    "{name}: {whole:?}"
                );
            }
            let n = stream.len();
            for first in 0..=n {
                for second in first..=n {
                    let pieces = [&stream[..first], &stream[first..second], &stream[second..]];
                    assert_eq!(
                        decode_reads(role, &pieces),
                        whole,
                        "{role:?}, {name}: cut at {first} and {second}"
                    );
                }
            }
        }
    }
}
