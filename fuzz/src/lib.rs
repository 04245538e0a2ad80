//! The checks behind loopchat's fuzz targets.
//!
//! Each libFuzzer target in `fuzz_targets/` is one line that calls a function here, and the
//! stable replay test (`tests/replay.rs`) calls the same functions on every saved input, so
//! a crash found on nightly can be replayed, and kept as a regression, without libFuzzer.
//!
//! # Input layout
//!
//! A target's input is plain bytes: a few leading bytes that say how to feed the rest
//! (which limits, where reads are cut), then the bytes a peer would send. Plain bytes rather
//! than an `arbitrary`-derived struct, so that a seed is a short prefix followed by a real
//! request or frame, and a crashing input can be read with `xxd`:
//!
//! | target | layout |
//! |---|---|
//! | `http_request_head` | `[split: u16 BE][limits: u8][head ...]` |
//! | `ws_server_decoder` | `[settings: u8][n: u8][n read lengths][stream ...]` |
//! | `ws_client_decoder` | the same |
//! | `client_handshake_response` | `[split: u16 BE][response ...]`, with `$ACCEPT` replaced |
//! | `line_reader` | `[max line bytes: u8][n: u8][n read lengths][stream ...]` (Telnet commands included) |
//! | `redis_link` | `[settings: u8][script: u8][n: u8][n read lengths][stream ...]` |
//! | `redis_url` | the URL, as UTF-8 |
//!
//! # What is checked
//!
//! Never panicking is the least of it. Every target but `redis_url` also feeds its input a
//! second way (cut into reads, or as a prefix) and asserts the answer does not depend on
//! how the bytes arrived, and checks what the code promises in its docs: `Ok(None)` only
//! once the input is used up, no event after an error or a Close, the states the closing
//! handshake goes through, and, for the codec, that what an endpoint writes back the other
//! role reads. For the Redis link, a model of what its caller knows (`LinkModel`): answers
//! in the order commands were queued, with their tags; nothing after `Failed`; the pending
//! count and the output exactly what was queued and not yet answered or written.

use loopchat::http::{
    ClientHandshake, HeadLimits, HttpError, MAX_REFUSAL_BODY, Request, RequestKind, accept_key,
    classify, parse_request,
};
use loopchat::line::{LineEvent, LineReader};
use loopchat::redis::{self, Channel, Link, LinkError, MAX_REPLY_BYTES, RedisUrl, Value};
use loopchat::ws::deflate::negotiation::Negotiated;
use loopchat::ws::{
    CloseCode, CloseFrame, Event, Message, ProtocolError, Role, State, WebSocket, WriteError,
};

/// How a stream is cut into reads: `[n][n lengths]` at the front of an input. The reads
/// take the lengths in turn, starting again from the first when they run out; a length of
/// 0 is an empty read, which the readers must take in their stride. No lengths, or only
/// zeros, means the whole stream in one read.
#[derive(Debug, Clone, Copy)]
pub struct Reads<'a> {
    /// The read lengths, at most 16.
    lengths: &'a [u8],
}

impl<'a> Reads<'a> {
    /// Splits the cut plan off the front of `data`; returns it and the rest.
    pub fn take(data: &'a [u8]) -> (Reads<'a>, &'a [u8]) {
        let Some((&count, rest)) = data.split_first() else {
            return (Reads { lengths: &[] }, &[]);
        };
        let (lengths, rest) = rest.split_at((usize::from(count) % 17).min(rest.len()));
        (Reads { lengths }, rest)
    }

    /// `stream` cut into reads. Always ends with an empty read: a socket's last word.
    pub fn pieces(self, stream: &'a [u8]) -> Vec<&'a [u8]> {
        if self.lengths.iter().all(|&len| len == 0) {
            return vec![stream, &[]];
        }
        let mut pieces = Vec::new();
        let mut rest = stream;
        for &len in self.lengths.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(usize::from(len).min(rest.len()));
            pieces.push(piece);
            rest = after;
        }
        pieces.push(&[]);
        pieces
    }
}

// ---------------------------------------------------------------------------------------
// HTTP request head
// ---------------------------------------------------------------------------------------

/// `http_request_head`: `[split: u16 BE][limits: u8][head ...]`.
///
/// The head is parsed under the default limits and under small ones chosen by the `limits`
/// byte (`max_head_bytes` 1 to 497, `max_headers` 0 to 7); whatever is parsed is then
/// classified. A prefix of the head, cut at `split`, must either be incomplete or give
/// exactly the answer the whole gives: the parser is re-run on a growing buffer as bytes
/// arrive, so a verdict it reaches early must be the one it would reach later.
pub fn check_request_head(data: &[u8]) {
    let [hi, lo, limits, head @ ..] = data else {
        return;
    };
    let split = usize::from(u16::from_be_bytes([*hi, *lo]));
    let small = HeadLimits {
        max_head_bytes: 1 + usize::from(limits & 0x1f) * 16,
        max_headers: usize::from(limits >> 5),
    };
    for limits in [HeadLimits::default(), small] {
        check_head_under(head, split, &limits);
    }
}

fn check_head_under(head: &[u8], split: usize, limits: &HeadLimits) {
    // The event loop keeps at most `max_head_bytes` of a head (`Session::receive_head`), so
    // the parser never sees more. Without this cap a prefix could be refused as too large
    // (431) where the whole, with a bad byte past the limit, is refused as malformed (400):
    // both refusals, but not the same answer.
    let buf = &head[..head.len().min(limits.max_head_bytes)];
    let whole = parse_request(buf, limits);
    let cut = split % (buf.len() + 1);
    let prefix = parse_request(&buf[..cut], limits);
    if prefix != Ok(None) {
        assert_eq!(prefix, whole, "a prefix of {cut} bytes decided otherwise");
    }
    match &whole {
        Ok(Some((request, len))) => {
            assert!(*len <= buf.len() && *len <= limits.max_head_bytes);
            assert!(request.headers.len() <= limits.max_headers);
            assert_eq!(
                parse_request(&buf[..*len], limits),
                whole,
                "the head alone, without what follows it"
            );
            if cut >= *len {
                assert_eq!(prefix, whole, "a prefix holding the whole head");
            }
            check_request(request);
        }
        Ok(None) => assert!(buf.len() < limits.max_head_bytes, "incomplete at the limit"),
        Err(error) => check_refusal(error, &[400, 431]),
    }
}

/// A parsed request: its accessors and `classify` must cope with anything the parser lets
/// through, and an accepted upgrade must be one RFC 6455 allows.
fn check_request(request: &Request) {
    let _ = (
        request.path(),
        request.has_body(),
        request.wants_keep_alive(),
    );
    match classify(request) {
        Ok(RequestKind::Upgrade(upgrade)) => {
            assert_eq!(request.method, "GET");
            assert!(request.minor_version >= 1);
            assert_eq!(request.headers_named("host").count(), 1);
            let key = request.header("sec-websocket-key").expect("a key");
            assert_eq!(upgrade.accept, accept_key(key.trim_ascii()));
            let response = upgrade.response();
            assert!(response.starts_with(b"HTTP/1.1 101 "));
            assert!(response.ends_with(b"\r\n\r\n"));
            assert_eq!(response.windows(4).filter(|w| w == b"\r\n\r\n").count(), 1);
        }
        Ok(RequestKind::Plain) => {}
        Err(error) => check_refusal(&error, &[400, 405, 426]),
    }
}

fn check_refusal(error: &HttpError, statuses: &[u16]) {
    assert!(statuses.contains(&error.status()), "{error:?}");
    let response = error.response().encode(false, false);
    assert!(response.starts_with(format!("HTTP/1.1 {} ", error.status()).as_bytes()));
}

// ---------------------------------------------------------------------------------------
// WebSocket decoder
// ---------------------------------------------------------------------------------------

/// Message size limits the `settings` byte chooses from (its low three bits): the edges of
/// the length encodings, and the server's default.
const MESSAGE_LIMITS: [usize; 8] = [0, 1, 125, 126, 1000, 65_535, 65_536, 16 << 20];

/// Bit 3 of `settings`: the endpoint has sent its Close before the stream arrives, so it
/// decodes in the `CloseSent` state.
const CLOSE_FIRST: u8 = 0x08;

/// Bits 4 and 5 of `settings`: permessage-deflate was negotiated (so RSV1 on a data
/// message means compressed, and what it carries is inflated within the limit), and the
/// peer takes its context over from message to message.
const DEFLATE: u8 = 0x10;
const DEFLATE_KEEPS_CONTEXT: u8 = 0x20;

/// What an endpoint made of a stream.
#[derive(Debug)]
struct Transcript {
    /// The events in order, ending with the error if the peer broke the protocol.
    events: Vec<Result<Event, ProtocolError>>,
    /// The state once the stream was used up.
    state: State,
    /// What the endpoint wrote back: messages echoed as the echo server does, and the
    /// replies the state machine owes (a Pong for a Ping, a Close for a Close or for the
    /// error), drained after every read.
    answer: Vec<u8>,
    /// The events the other role must find in `answer`.
    expected_answer: Vec<Event>,
}

/// `ws_server_decoder`, `ws_client_decoder`: `[settings][n][n read lengths][stream ...]`.
///
/// Decodes the stream whole and cut into the chosen reads; the two transcripts must be the
/// same, event for event, error for error. Within each, every call to `read` is checked
/// against its contract, and the endpoint answers as the echo server does; the other role
/// must then read back exactly the answers.
pub fn check_websocket_decoder(role: Role, data: &[u8]) {
    let Some((&settings, rest)) = data.split_first() else {
        return;
    };
    let (reads, stream) = Reads::take(rest);
    let limit = MESSAGE_LIMITS[usize::from(settings & 7)];
    let close_first = settings & CLOSE_FIRST != 0;
    let deflate = (settings & DEFLATE != 0).then(|| Negotiated {
        server_no_context_takeover: settings & DEFLATE_KEEPS_CONTEXT == 0,
        client_no_context_takeover: settings & DEFLATE_KEEPS_CONTEXT == 0,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    });

    let whole = decode(role, limit, close_first, deflate, &[stream]);
    let split = decode(role, limit, close_first, deflate, &reads.pieces(stream));
    // The answers are masked with random keys in the client role, so compare the rest.
    if deflate.is_some() && refused_compressed(&whole) && refused_compressed(&split) {
        // A compressed message that both inflates past the limit and is corrupt near the
        // same point: zlib decides how far it decodes in one call from the input it has,
        // so which of the two it meets first can depend on the reads. Either way the
        // message is refused and the connection failed; everything before must agree.
        let (w, s) = (whole.events.len() - 1, split.events.len() - 1);
        assert_eq!(
            split.events[..s],
            whole.events[..w],
            "cut into reads vs whole"
        );
        assert_eq!(split.state, whole.state);
    } else {
        assert_eq!(split.events, whole.events, "cut into reads vs whole");
        assert_eq!(split.state, whole.state);
        assert_eq!(split.expected_answer, whole.expected_answer);
    }

    let other = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut peer = WebSocket::new(other, usize::MAX);
    let mut input = whole.answer.as_slice();
    let mut read_back = Vec::new();
    while let Some(event) = peer.read(&mut input).expect("our own answer is valid") {
        read_back.push(event);
    }
    assert_eq!(read_back, whole.expected_answer, "the answer read back");
}

/// Whether a transcript ends with a compressed message refused: too big once inflated, or
/// not inflating.
fn refused_compressed(transcript: &Transcript) -> bool {
    matches!(
        transcript.events.last(),
        Some(Err(
            ProtocolError::InflatedTooBig { .. } | ProtocolError::BadCompressedData
        ))
    )
}

/// Feeds `pieces` to a fresh endpoint, checking each call to `read`, and answers each event.
fn decode(
    role: Role,
    limit: usize,
    close_first: bool,
    deflate: Option<Negotiated>,
    pieces: &[&[u8]],
) -> Transcript {
    let mut ws = WebSocket::new(role, limit);
    if let Some(negotiated) = deflate {
        ws = ws.with_deflate(negotiated);
    }
    let mut transcript = Transcript {
        events: Vec::new(),
        state: ws.state(),
        answer: Vec::new(),
        expected_answer: Vec::new(),
    };
    if close_first {
        ws.write_close(Some((CloseCode::GoingAway, "bye")), &mut transcript.answer)
            .expect("the first Close");
        assert_eq!(ws.state(), State::CloseSent);
        transcript
            .expected_answer
            .push(Event::Close(Some(CloseFrame {
                code: CloseCode::GoingAway,
                reason: "bye".into(),
            })));
    }
    let mut ended = false;
    for piece in pieces {
        let mut input = *piece;
        loop {
            let before = ws.state();
            let left = input.len();
            let result = ws.read(&mut input);
            match &result {
                Ok(None) => assert!(input.is_empty(), "Ok(None) with {} bytes left", input.len()),
                Ok(Some(_)) => assert!(input.len() < left, "an event from no input"),
                Err(_) => assert!(input.is_empty(), "input kept after an error"),
            }
            if ended || !before.can_receive() {
                assert_eq!(result, Ok(None), "an event after the end, in {before:?}");
                assert_eq!(ws.state(), before);
            }
            let replies_before = transcript.answer.len();
            ws.drain_replies(&mut transcript.answer);
            assert!(!ws.has_replies());
            let replied = transcript.answer.len() > replies_before;
            match &result {
                Ok(Some(Event::Ping(payload))) if before == State::Open => {
                    assert!(replied, "a Ping unanswered");
                    transcript.expected_answer.push(Event::Pong(*payload));
                }
                Ok(Some(Event::Close(frame))) if before == State::Open => {
                    assert!(replied, "a Close unanswered");
                    let echo = frame.as_ref().map(|f| CloseFrame {
                        code: f.code,
                        reason: String::new(),
                    });
                    transcript.expected_answer.push(Event::Close(echo));
                }
                Err(error) if before == State::Open => {
                    assert!(replied, "a protocol error without our Close");
                    let mut reason = error.to_string();
                    reason.truncate(123);
                    transcript
                        .expected_answer
                        .push(Event::Close(Some(CloseFrame {
                            code: error.close_code(),
                            reason,
                        })));
                }
                _ => assert!(
                    !replied,
                    "a reply owed to nothing, in {before:?}: {result:?}"
                ),
            }
            match result {
                Ok(None) => break,
                Ok(Some(event)) => {
                    if let Some(message) = event.as_message() {
                        assert!(message.payload().len() <= limit, "a message over the limit");
                    }
                    if let Event::Close(_) = event {
                        assert_eq!(ws.state(), State::Closed);
                        ended = true;
                    } else {
                        assert_eq!(ws.state(), before);
                    }
                    answer(&mut ws, &event, &mut transcript);
                    transcript.events.push(Ok(event.clone()));
                    if let Event::Text(text) = event {
                        ws.recycle(text.into_bytes());
                    } else if let Event::Binary(bytes) = event {
                        ws.recycle(bytes);
                    }
                }
                Err(error) => {
                    assert_eq!(ws.state(), State::Closed);
                    assert!(error.close_code().is_allowed_on_wire());
                    ended = true;
                    let refused = ws.write_close(Some((error.close_code(), "")), &mut Vec::new());
                    assert_eq!(refused, Err(WriteError::Closed), "exactly one Close");
                    transcript.events.push(Err(error));
                }
            }
        }
    }
    transcript.state = ws.state();
    transcript
}

/// Answers an event as the echo server would: echo a message. (Pings and Closes are
/// answered by the state machine itself, among its replies.)
fn answer(ws: &mut WebSocket, event: &Event, transcript: &mut Transcript) {
    let out = &mut transcript.answer;
    let can_send = ws.state().can_send();
    let (sent, echo) = match event {
        Event::Text(text) => (
            ws.write_message(Message::Text(text), out),
            Event::Text(text.clone()),
        ),
        Event::Binary(bytes) => (
            ws.write_message(Message::Binary(bytes), out),
            Event::Binary(bytes.clone()),
        ),
        Event::Ping(_) | Event::Pong(_) => return,
        Event::Close(frame) => {
            if let Some(frame) = frame {
                assert!(frame.code.is_allowed_on_wire(), "{frame:?}");
                assert!(frame.reason.len() <= 123);
            }
            let close = frame.as_ref().map(|f| (f.code, f.reason.as_str()));
            let refused = ws.write_close(close, out);
            assert_eq!(refused, Err(WriteError::Closed), "exactly one Close");
            return;
        }
    };
    match sent {
        Ok(()) => transcript.expected_answer.push(echo),
        Err(error) => {
            assert!(!can_send, "{error:?}");
            assert_eq!(error, WriteError::Closed);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client handshake response
// ---------------------------------------------------------------------------------------

/// Stands for the right `Sec-WebSocket-Accept` in `client_handshake_response` inputs: the
/// key is random per handshake, so the fuzzer could never guess the answer that proves it
/// was read; with the stand-in, the seeds reach the code after that check too.
pub const ACCEPT_PLACEHOLDER: &[u8] = b"$ACCEPT";

/// `client_handshake_response`: `[split: u16 BE][response ...]`.
///
/// The response is checked whole and as a prefix cut at `split`: a prefix is either
/// incomplete or decided exactly as the whole is. An accepted head must be accepted alone.
/// Each input is checked twice: by a handshake that offers nothing (any extension in the
/// answer is refused) and by one that offers permessage-deflate as a browser does (the
/// answer's parameters are checked).
pub fn check_handshake_response(data: &[u8]) {
    let [hi, lo, response @ ..] = data else {
        return;
    };
    check_response_against(ClientHandshake::new("fuzz.example:8080", "/ws"), *hi, *lo, response);
    let offering = ClientHandshake::with_deflate(
        "fuzz.example:8080",
        "/ws",
        loopchat::ws::deflate::negotiation::DeflateOffer::client_default(),
    );
    check_response_against(offering, *hi, *lo, response);
}

fn check_response_against(handshake: ClientHandshake, hi: u8, lo: u8, response: &[u8]) {
    let response = replace_all(
        response,
        ACCEPT_PLACEHOLDER,
        expected_accept(&handshake).as_bytes(),
    );
    let whole = handshake.read_response(&response);
    // Knowing the stream has ended changes only what was undecided.
    let at_end = handshake.read_response_at_end(&response);
    if whole != Ok(None) {
        assert_eq!(at_end, whole, "the end of the stream changed a decision");
    }
    let cut = usize::from(u16::from_be_bytes([hi, lo])) % (response.len() + 1);
    let prefix = handshake.read_response(&response[..cut]);
    if prefix != Ok(None) {
        assert_eq!(prefix, whole, "a prefix of {cut} bytes decided otherwise");
    }
    match &whole {
        Ok(Some(upgraded)) => {
            let len = upgraded.head_len;
            assert!(len <= response.len());
            assert_eq!(handshake.read_response(&response[..len]), whole);
            if cut >= len {
                assert_eq!(prefix, whole, "a prefix holding the whole head");
            }
        }
        // An incomplete head, or a refusal whose body (up to MAX_REFUSAL_BODY) is due.
        Ok(None) => {
            assert!(response.len() < HeadLimits::default().max_head_bytes + MAX_REFUSAL_BODY)
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// The `Sec-WebSocket-Accept` a server must send for this handshake, computed from the
/// request as a server would.
fn expected_accept(handshake: &ClientHandshake) -> String {
    let (request, _) = parse_request(handshake.request(), &HeadLimits::default())
        .expect("our own request parses")
        .expect("our own request is complete");
    let key = request.header("sec-websocket-key").expect("our key");
    accept_key(key)
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Line reader
// ---------------------------------------------------------------------------------------

/// `line_reader`: `[max line bytes: u8][n][n read lengths][stream ...]`.
///
/// Reads the stream whole and cut into the chosen reads, then `finish`es; both must give
/// exactly what a plain model of the line protocol gives (`expected_lines`).
pub fn check_line_reader(data: &[u8]) {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max);
    let (reads, stream) = Reads::take(rest);
    let whole = read_lines(max, &[stream]);
    let split = read_lines(max, &reads.pieces(stream));
    assert_eq!(split, whole, "cut into reads vs whole");
    assert_eq!(
        whole,
        expected_lines(max, &without_telnet(stream)),
        "the model"
    );
}

/// Telnet's IAC, and the command bytes the model needs (RFC 854).
const IAC: u8 = 0xFF;
const SB: u8 = 250;
const SE: u8 = 240;
/// The longest subnegotiation the reader skips (`line::MAX_SUBNEGOTIATION`): past it,
/// bytes are text again.
const MAX_SUBNEGOTIATION: usize = 1024;

/// The stream with Telnet commands taken out, as a specification written over the whole
/// stream at once: `IAC IAC` is a 0xFF; `IAC` and a byte below 240 is a stray 0xFF (kept)
/// and that byte is read as usual; `IAC WILL|WONT|DO|DONT` takes one option byte; `IAC SB`
/// runs to `IAC SE` (with `IAC IAC` inside it) or for `MAX_SUBNEGOTIATION` bytes;
/// any other `IAC X` is two bytes of command. A last `IAC` with nothing after it is a
/// stray 0xFF; any other command cut off by the end is dropped.
fn without_telnet(stream: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(stream.len());
    let mut i = 0;
    while i < stream.len() {
        if stream[i] != IAC {
            text.push(stream[i]);
            i += 1;
            continue;
        }
        i = match stream.get(i + 1) {
            None => {
                text.push(IAC);
                stream.len()
            }
            Some(&IAC) => {
                text.push(IAC);
                i + 2
            }
            Some(&command) if command < SE => {
                text.push(IAC);
                i + 1
            }
            Some(251..=254) => i + 3,
            Some(&SB) => {
                let (mut j, mut skipped) = (i + 2, 0);
                loop {
                    if j >= stream.len() || skipped >= MAX_SUBNEGOTIATION {
                        break j;
                    }
                    if stream[j] != IAC {
                        (j, skipped) = (j + 1, skipped + 1);
                    } else if stream.get(j + 1) == Some(&SE) {
                        break j + 2;
                    } else {
                        (j, skipped) = (j + 2, skipped + 2);
                    }
                }
            }
            Some(_) => i + 2,
        };
    }
    text
}

fn read_lines(max: usize, pieces: &[&[u8]]) -> Vec<LineEvent> {
    let mut reader = LineReader::new(max);
    let mut events = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        loop {
            let left = input.len();
            match reader.read(&mut input) {
                Some(event) => {
                    assert!(input.len() < left, "an event from no input");
                    events.push(event);
                }
                None => {
                    assert!(input.is_empty(), "None with {} bytes left", input.len());
                    break;
                }
            }
        }
    }
    events.extend(reader.finish());
    assert_eq!(reader.finish(), None, "finish twice");
    events
}

/// The line protocol as a specification: split at `\n`; drop one `\r` before it; a line
/// (or the unterminated rest) longer than `max` bytes is `TooLong`, once; otherwise it is
/// its text with bytes that are not UTF-8 replaced.
fn expected_lines(max: usize, stream: &[u8]) -> Vec<LineEvent> {
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|rest| rest.is_empty()) {
        lines.pop(); // the stream ended with `\n`, or was empty
    }
    lines
        .into_iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > max {
                LineEvent::TooLong
            } else {
                LineEvent::Line(String::from_utf8_lossy(line).into_owned())
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Redis link
// ---------------------------------------------------------------------------------------

/// What redis-server 7.0.15 answers to `HELLO 3`: the reply a `redis_link` input may have
/// fed first (settings bit 0), so that the fuzzer's bytes start at the first command's
/// reply.
pub const HELLO_REPLY: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n\
    $6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
    $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

/// The URLs a `redis_link` input chooses from (`settings >> 1 & 3`), so that the handshake
/// is `HELLO` alone, with `AUTH`, followed by `SELECT`, or both.
const LINK_URLS: [&str; 4] = [
    "redis://127.0.0.1:6379",
    "redis://ann:s3cret@127.0.0.1:6379",
    "redis://127.0.0.1:6379/3",
    "redis://:pw@[::1]:7000/15",
];

/// `redis_link` settings: the handshake's replies are fed before the input.
const READY_FIRST: u8 = 0x01;
/// The link is named (`HELLO ... SETNAME fuzz`).
const CLIENT_NAME: u8 = 0x08;
/// With `READY_FIRST`, the script is queued once the link is ready, not before.
const QUEUE_AFTER_READY: u8 = 0x10;
/// One step of the script is also queued after each of the first 16 reads.
const QUEUE_MID_STREAM: u8 = 0x20;

/// Something the caller asks of a link.
#[derive(Debug, Clone, Copy)]
enum Step {
    Command(&'static [&'static [u8]]),
    Subscribe(Channel, &'static [&'static [u8]]),
    Unsubscribe(Channel, &'static [&'static [u8]]),
}

/// What a `redis_link` input may queue, bit `i` of its script byte choosing step `i`: a
/// command, a subscription that names a channel twice, a sharded one, unsubscribing from
/// one channel and from all, in the order a chat instance might send them.
const SCRIPT: [Step; 8] = [
    Step::Command(&[b"GET", b"greeting"]),
    Step::Subscribe(Channel::Plain, &[b"a", b"b", b"a"]),
    Step::Command(&[b"PING"]),
    Step::Subscribe(Channel::Sharded, &[b"s"]),
    Step::Unsubscribe(Channel::Plain, &[b"a"]),
    Step::Unsubscribe(Channel::Plain, &[]),
    Step::Command(&[b"INCR", b"n"]),
    Step::Unsubscribe(Channel::Sharded, &[]),
];

/// `redis_link`: `[settings: u8][script: u8][n][n read lengths][stream ...]`.
///
/// A `Link` to one of `LINK_URLS` queues the steps of `SCRIPT` the script byte chooses,
/// then reads the stream as a server's bytes, cut into the chosen reads; after each read
/// its events are drained and checked against `LinkModel`, and the output it has not
/// written is given to the kernel, as much as the read was long. The same input read
/// whole must give the same events (unless steps are queued between reads, which read
/// whole would not see). Finally the link is given up: the tags it returns must be those
/// never answered.
pub fn check_redis_link(data: &[u8]) {
    let [settings, script, rest @ ..] = data else {
        return;
    };
    let (reads, stream) = Reads::take(rest);
    let url = RedisUrl::parse(LINK_URLS[usize::from(settings >> 1 & 3)]).expect("our URL");
    let cut = run_link(&url, *settings, *script, &reads.pieces(stream));
    if settings & QUEUE_MID_STREAM == 0 {
        let whole = run_link(&url, *settings, *script, &[stream, &[]]);
        assert_eq!(cut, whole, "cut into reads vs whole");
    }
}

/// Runs one link through an input; returns its events, as text (a `Value::Double` may be
/// NaN, which is not equal to itself).
fn run_link(url: &RedisUrl, settings: u8, script: u8, pieces: &[&[u8]]) -> Vec<String> {
    let name = (settings & CLIENT_NAME != 0).then_some("fuzz");
    let mut link: Link<u32> = match name {
        Some(name) => Link::with_client_name(url, name),
        None => Link::new(url),
    };
    let mut model = LinkModel::new(url, name);
    model.check(&link);
    let ready_first = settings & READY_FIRST != 0;
    let queue_first = !(ready_first && settings & QUEUE_AFTER_READY != 0);
    let queue_script = |model: &mut LinkModel, link: &mut Link<u32>| {
        for (i, &step) in SCRIPT.iter().enumerate() {
            if script & (1 << i) != 0 {
                model.step(link, step);
            }
        }
    };
    if queue_first {
        queue_script(&mut model, &mut link);
    }
    if ready_first {
        let select: &[u8] = if url.db != 0 { b"+OK\r\n" } else { b"" };
        model.feed(&mut link, &[HELLO_REPLY, select].concat());
        assert!(model.ready && link.is_ready(), "the handshake's replies");
    }
    if !queue_first {
        queue_script(&mut model, &mut link);
    }
    for (i, piece) in pieces.iter().enumerate() {
        model.feed(&mut link, piece);
        link.consume_output(piece.len());
        model.consume_output(piece.len());
        model.check(&link);
        if settings & QUEUE_MID_STREAM != 0 && i < 16 {
            model.step(&mut link, SCRIPT[i % SCRIPT.len()]);
        }
    }
    model.give_up(&mut link);
    model.events
}

/// What the caller of a link can know, kept beside the link to check it against.
struct LinkModel {
    /// The caller's commands and subscription commands, in the order they were queued.
    queued: Vec<Queued>,
    /// The bytes the link owes the socket: every command's RESP encoding, less what has
    /// been written (nothing once the link failed).
    output: Vec<u8>,
    /// The tag of the next command: tags are 0, 1, 2, ... in order.
    next_tag: u32,
    /// How many commands were answered. Redis answers in order, so the tags answered are
    /// exactly `0..replied`.
    replied: u32,
    /// Where in `queued` the latest in-order answer (a reply or a refusal) belongs.
    answered: Option<usize>,
    /// `Event::Ready` was reported.
    ready: bool,
    /// `Event::Failed` was reported.
    failed: bool,
    /// Every event, as text.
    events: Vec<String>,
}

/// A command that will be answered in order.
enum Queued {
    Command(u32),
    Subscription {
        kind: Channel,
        channels: Vec<Vec<u8>>,
    },
}

impl LinkModel {
    /// A model whose output is the handshake a link to `url` starts with.
    fn new(url: &RedisUrl, name: Option<&str>) -> LinkModel {
        let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if let Some(password) = &url.password {
            hello.extend([b"AUTH", url.auth_user().as_bytes(), password.as_bytes()]);
        }
        if let Some(name) = name {
            hello.extend([&b"SETNAME"[..], name.as_bytes()]);
        }
        let mut output = Vec::new();
        encode_command(&mut output, &hello);
        let db = url.db.to_string();
        if url.db != 0 {
            encode_command(&mut output, &[b"SELECT", db.as_bytes()]);
        }
        LinkModel {
            queued: Vec::new(),
            output,
            next_tag: 0,
            replied: 0,
            answered: None,
            ready: false,
            failed: false,
            events: Vec::new(),
        }
    }

    /// Asks the link for `step`; whatever it sends must be exactly that command.
    fn step(&mut self, link: &mut Link<u32>, step: Step) {
        let (kind, subscribing, channels) = match step {
            Step::Command(args) => {
                link.command(self.next_tag, args);
                self.queued.push(Queued::Command(self.next_tag));
                self.next_tag += 1;
                if !self.failed {
                    encode_command(&mut self.output, args);
                }
                return self.check(link);
            }
            Step::Subscribe(kind, channels) => {
                link.subscribe(kind, channels);
                (kind, true, channels)
            }
            Step::Unsubscribe(kind, channels) => {
                link.unsubscribe(kind, channels);
                (kind, false, channels)
            }
        };
        // A failed link sends nothing, and neither does subscribing to no channel.
        let sent = !self.failed && (!subscribing || !channels.is_empty());
        if sent {
            let command: &[u8] = match (kind, subscribing) {
                (Channel::Plain, true) => b"SUBSCRIBE",
                (Channel::Sharded, true) => b"SSUBSCRIBE",
                (Channel::Plain, false) => b"UNSUBSCRIBE",
                (Channel::Sharded, false) => b"SUNSUBSCRIBE",
            };
            encode_command(&mut self.output, &[&[command], channels].concat());
            self.queued.push(Queued::Subscription {
                kind,
                channels: channels.iter().map(|c| c.to_vec()).collect(),
            });
        }
        self.check(link);
    }

    /// Feeds the link and checks every event it reports.
    fn feed(&mut self, link: &mut Link<u32>, bytes: &[u8]) {
        link.feed(bytes);
        while let Some(event) = link.poll_event() {
            assert!(!self.failed, "an event after Failed: {event:?}");
            self.events.push(format!("{event:?}"));
            self.event(event);
        }
        self.check(link);
    }

    fn event(&mut self, event: redis::Event<u32>) {
        match event {
            redis::Event::Ready => {
                assert!(!self.ready, "Ready twice");
                self.ready = true;
            }
            redis::Event::Failed(error) => {
                self.failed = true;
                self.output.clear();
                match &error {
                    LinkError::Refused { command, .. } => {
                        assert!(!self.ready, "the handshake refused after Ready");
                        assert!(["HELLO", "SELECT"].contains(command), "{command}");
                    }
                    LinkError::TooLarge { limit } => assert_eq!(*limit, MAX_REPLY_BYTES),
                    _ => {}
                }
                assert!(!error.to_string().is_empty());
            }
            redis::Event::Reply { tag, .. } => {
                assert!(self.ready, "a reply before Ready");
                assert_eq!(tag, self.replied, "replies out of order");
                self.replied += 1;
                let at = self
                    .queued
                    .iter()
                    .position(|queued| matches!(queued, Queued::Command(queued) if *queued == tag));
                self.answer(at.expect("a command with that tag"));
            }
            redis::Event::SubscriptionRefused { kind, channels, .. } => {
                assert!(self.ready, "a refusal before Ready");
                // The earliest unanswered subscription command it can be: any later one
                // would leave fewer places for the answers after it.
                let after = self.answered.map_or(0, |at| at + 1);
                let at = self.queued[after..].iter().position(|queued| {
                    matches!(queued, Queued::Subscription { kind: k, channels: c }
                        if *k == kind && *c == channels)
                });
                self.answer(after + at.expect("a refusal of no command queued"));
            }
            redis::Event::Push(value) => {
                assert!(matches!(value, Value::Array(_)), "{value:?}");
            }
            // Pushes: not answers, so in no order (a cluster node sends `sunsubscribe`
            // unasked when a slot moves).
            redis::Event::Message { .. }
            | redis::Event::Subscribed { .. }
            | redis::Event::Unsubscribed { .. } => {}
        }
    }

    /// An in-order answer to `queued[at]`: it must come after the answers to every
    /// command queued before.
    fn answer(&mut self, at: usize) {
        assert!(
            self.answered.is_none_or(|before| at > before),
            "answers out of order: {at} after {:?}",
            self.answered
        );
        self.answered = Some(at);
    }

    fn consume_output(&mut self, n: usize) {
        self.output.drain(..n.min(self.output.len()));
    }

    /// What the link says of itself agrees with the model.
    fn check(&self, link: &Link<u32>) {
        assert_eq!(link.output(), self.output, "the output");
        assert_eq!(link.output_len(), self.output.len());
        assert_eq!(link.wants_write(), !self.output.is_empty());
        assert_eq!(
            link.pending_replies(),
            (self.next_tag - self.replied) as usize,
            "pending replies"
        );
        assert_eq!(link.is_failed(), self.failed);
        assert_eq!(link.is_ready(), self.ready && !self.failed);
    }

    /// Gives the link up: the tags it returns are those never answered, and then it is
    /// inert.
    fn give_up(&mut self, link: &mut Link<u32>) {
        let lost = link.fail_pending();
        assert_eq!(lost, (self.replied..self.next_tag).collect::<Vec<_>>());
        assert!(link.is_failed() && !link.is_ready());
        assert_eq!((link.pending_replies(), link.output()), (0, &[][..]));
        link.feed(b"+OK\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert!(link.poll_event().is_none(), "an event after giving up");
        // A command on a given-up link is not sent, and is handed back.
        link.command(u32::MAX, &[b"PING"]);
        assert_eq!((link.pending_replies(), link.output()), (1, &[][..]));
        assert_eq!(link.fail_pending(), [u32::MAX]);
    }
}

/// A command as RESP: an array of blob strings.
fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

// ---------------------------------------------------------------------------------------
// Redis URL
// ---------------------------------------------------------------------------------------

/// Stands for a password in `redis_url`'s check of error messages: no `:`, `@`, `/` or
/// `%`, so it changes nothing about how the URL around it parses.
const PASSWORD_MARK: &str = "pass\u{7f}word";

/// `redis_url`: the input as text (inputs that are not UTF-8 are skipped).
///
/// `RedisUrl::parse` never panics. A parsed URL prints (`Display`, `Debug`) the same
/// whatever its password, and its `Display` parses back to the same URL, with `***` for
/// the password. The input with its password (what is between the first `:` and the last
/// `@` after `://`) replaced by `PASSWORD_MARK`, if it is refused, is refused without
/// the mark in the message.
pub fn check_redis_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RedisUrl::parse(text) {
        Ok(url) => check_parsed_url(&url),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    if let Some(marked) = with_password(text, PASSWORD_MARK)
        && marked.matches(PASSWORD_MARK).count() == 1
        && let Err(error) = RedisUrl::parse(&marked)
    {
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(PASSWORD_MARK), "{shown}");
    }
}

fn check_parsed_url(url: &RedisUrl) {
    let shown = |url: &RedisUrl| format!("{url} {url:?} {url:#?}");
    if url.password.is_some() {
        let mut other = url.clone();
        other.password = Some(PASSWORD_MARK.into());
        assert_eq!(shown(url), shown(&other), "the password shows");
    }
    // Display is for logs, and prints the user and the host as they are, unencoded. So a
    // host the parser let through with a bracket in it (`redis://[[x]` is the host `[x`,
    // no host at all), or a user with a `:` or a `%` in it once decoded (`us%3Aer` prints
    // as `us:er`, read back as the user `us` with the password `er:***`), need not read
    // back as it was.
    let user = url.username.as_deref().unwrap_or("");
    if url.host.contains(['[', ']']) || user.contains([':', '%']) {
        return;
    }
    let again = RedisUrl::parse(&url.to_string())
        .unwrap_or_else(|error| panic!("{url} does not parse back: {error}"));
    assert_eq!(
        (&again.host, again.port, again.db, &again.username),
        (&url.host, url.port, url.db, &url.username)
    );
    assert_eq!(
        again.password.as_deref(),
        url.password.as_ref().map(|_| "***")
    );
}

/// `text` with its password, if it has one, replaced by `password`.
fn with_password(text: &str, password: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let userinfo = &rest[..rest.rfind('@')?];
    let colon = userinfo.find(':')?;
    Some(format!(
        "{scheme}://{}:{password}{}",
        &userinfo[..colon],
        &rest[userinfo.len()..]
    ))
}
