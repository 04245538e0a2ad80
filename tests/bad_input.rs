//! Hostile and broken clients over real loopback sockets.
//!
//! Every test sends something wrong (bytes that are not HTTP, an upgrade the RFC forbids,
//! frames that break RFC 6455, a client that stalls, vanishes or never reads), checks the
//! exact answer on the wire, and then proves the server still serves everyone else: a
//! client connected before the bad one still echoes, and a fresh client completes a
//! handshake, an echo round trip and a clean close.
//!
//! Talks to the server through `common::RawClient`, which frames bytes itself from the
//! RFC and never uses the crate's codec.

mod common;

use common::{
    IO_TIMEOUT, MASK, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, RawClient, client_frame,
    close_payload, frame_bytes, upgrade_request,
};
use loopchat::ServerConfig;
use loopchat::apps::Echo;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A valid upgrade request, as a string to edit, from RFC 6455 §1.3 / §4.1.
const GOOD_UPGRADE: &str = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// The valid upgrade request with one textual edit, checking the edit took effect.
fn upgrade_edited(from: &str, to: &str) -> Vec<u8> {
    assert!(GOOD_UPGRADE.contains(from), "{from:?} not in the request");
    GOOD_UPGRADE.replacen(from, to, 1).into_bytes()
}

/// Sends one text message and checks it comes back unchanged.
fn echo_round_trip(client: &mut RawClient, text: &str) {
    client.send(&client_frame(true, OP_TEXT, text.as_bytes()));
    client.expect_frame(OP_TEXT, text.as_bytes());
}

/// The proof that one bad client hurt no one: `earlier` (connected before the bad client)
/// still echoes, and a brand-new client opens, echoes and closes cleanly.
fn assert_still_serves(addr: SocketAddr, earlier: &mut RawClient) {
    echo_round_trip(earlier, "earlier client still served");
    let mut fresh = RawClient::open(addr);
    echo_round_trip(&mut fresh, "fresh client served");
    fresh.close_cleanly(1000);
}

/// Sends `request` on a new connection, reads the whole response, checks the server then
/// closes the connection, and returns the head and the body (as text).
fn http_exchange(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut client = RawClient::connect(addr);
    client.send(request);
    let (head, body) = client.read_http_response();
    client.expect_eof();
    let body = String::from_utf8(body).expect("body is UTF-8");
    (head, body)
}

/// Checks a refusal: status line, `Connection: close`, a plain-text body, and that the
/// body names the reason (contains `reason`, compared without case).
fn assert_refusal(head: &str, body: &str, status_line: &str, reason: &str) {
    assert!(
        head.starts_with(&format!("{status_line}\r\n")),
        "expected {status_line:?}, got:\n{head}{body}"
    );
    assert!(
        head.contains("\r\nConnection: close\r\n"),
        "a refusal must say Connection: close:\n{head}"
    );
    assert!(
        head.contains("\r\nContent-Type: text/plain"),
        "a refusal explains itself in plain text:\n{head}"
    );
    assert!(
        body.to_ascii_lowercase()
            .contains(&reason.to_ascii_lowercase()),
        "the body should name the reason ({reason:?}), got {body:?}"
    );
}

/// A refused request, end to end: a client is connected before, the bad request gets
/// `status_line` with a body naming `reason` and the connection closed, and everyone is
/// still served afterwards. Returns the head for further checks.
fn refused(request: &[u8], status_line: &str, reason: &str) -> String {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let (head, body) = http_exchange(addr, request);
    assert_refusal(&head, &body, status_line, reason);
    assert_still_serves(addr, &mut earlier);
    head
}

/// Opens a WebSocket, sends `bytes`, and checks the server fails the connection with a
/// Close carrying `code`, then closes TCP.
fn expect_failure(addr: SocketAddr, bytes: &[u8], code: u16) {
    let mut client = RawClient::open(addr);
    client.send(bytes);
    client.expect_close(code);
    client.expect_eof();
}

/// Reads everything the server sends until it closes the connection; the server must
/// close within [`IO_TIMEOUT`]. Returns the bytes read, and whether the end was a reset
/// rather than an orderly EOF.
fn read_to_close(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut all = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (all, false),
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (all, true),
            Err(e) => panic!(
                "the server did not close the connection ({} bytes read): {e}",
                all.len()
            ),
        }
    }
}

/// A frame parsed out of a byte stream received from the server.
#[derive(Debug)]
struct WireFrame {
    opcode: u8,
    close_code: Option<u16>,
}

/// Splits server output into frames (server frames are unmasked). Stops at a truncated
/// frame, which a reset can leave at the end.
fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let (b0, b1) = (bytes[0], bytes[1]);
        let (len, mut at) = match b1 & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => {
                let mut be = [0; 8];
                be.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(be) as usize, 10)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        let masked = b1 & 0x80 != 0;
        if masked {
            at += 4;
        }
        if bytes.len() < at + len {
            break;
        }
        let payload = &bytes[at..at + len];
        let opcode = b0 & 0x0f;
        frames.push(WireFrame {
            opcode,
            close_code: (opcode == OP_CLOSE && len >= 2)
                .then(|| u16::from_be_bytes([payload[0], payload[1]])),
        });
        bytes = &bytes[at + len..];
    }
    frames
}

/// Checks that a connection ends: EOF (or a reset), optionally after one Close frame with
/// a code allowed on the wire. What a server does when the peer's TCP stream ends in the
/// middle of a frame is its choice; what it must not do is hang or send anything else.
fn expect_close_or_eof(stream: &mut TcpStream) {
    let (bytes, _reset) = read_to_close(stream);
    if bytes.is_empty() {
        return;
    }
    let frames = parse_frames(&bytes);
    assert!(
        frames.len() == 1 && frames[0].opcode == OP_CLOSE,
        "expected nothing or one Close before EOF, got {frames:?} ({} bytes)",
        bytes.len()
    );
    if let Some(code) = frames[0].close_code {
        assert!(
            !matches!(code, 1005 | 1006 | 1015),
            "close code {code} may not be sent"
        );
    }
}

/// Reads the server's response to a client whose request head is never complete: it
/// must be a 408 whose body names the reason, followed by EOF.
fn expect_408_then_eof(client: &mut RawClient) {
    let (head, body) = client.read_http_response();
    let body = String::from_utf8(body).unwrap();
    assert_refusal(&head, &body, "HTTP/1.1 408 Request Timeout", "in time");
    client.expect_eof();
}

/// A TLS 1.2/1.3 ClientHello for `localhost`, as a browser pointed at `https://` (or
/// `wss://`) would send it to a plain-text port. Built field by field; every length and
/// value is chosen so that the record holds no line feed, as many real ones do not.
fn tls_client_hello() -> Vec<u8> {
    fn with_u16_len(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }
    let mut hello = vec![0x03, 0x03]; // legacy_version TLS 1.2
    hello.extend((0..32u8).map(|i| 0x40 + i)); // random
    hello.push(32); // legacy_session_id
    hello.extend((0..32u8).map(|i| 0x80 + i));
    hello.extend(with_u16_len(&[
        0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x30,
    ]));
    hello.extend([0x01, 0x00]); // compression: null
    let mut extensions = Vec::new();
    // server_name: localhost
    let name = b"localhost";
    let mut sni_entry = vec![0x00];
    sni_entry.extend(with_u16_len(name));
    let sni_list = with_u16_len(&sni_entry);
    extensions.extend([0x00, 0x00]);
    extensions.extend(with_u16_len(&sni_list));
    // supported_versions: TLS 1.3, 1.2
    extensions.extend([0x00, 0x2b]);
    extensions.extend(with_u16_len(&[0x04, 0x03, 0x04, 0x03, 0x03]));
    extensions.extend([0x00, 0x0b]); // ec_point_formats: uncompressed
    extensions.extend(with_u16_len(&[0x01, 0x00]));
    extensions.extend([0x00, 0x17]); // extended_master_secret
    extensions.extend([0x00, 0x00]);
    extensions.extend([0xff, 0x01]); // renegotiation_info
    extensions.extend(with_u16_len(&[0x00]));
    hello.extend(with_u16_len(&extensions));

    let mut handshake = vec![0x01, 0x00]; // ClientHello, 24-bit length
    handshake.extend(with_u16_len(&hello));
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record, TLS 1.0 framing
    record.extend(with_u16_len(&handshake));
    record
}

// ---------------------------------------------------------------------------------------
// HTTP: refusals
// ---------------------------------------------------------------------------------------

#[test]
fn tls_client_hello_is_refused_with_400_without_waiting_for_a_line_break() {
    let hello = tls_client_hello();
    assert!(
        !hello.contains(&b'\n'),
        "the test's ClientHello is meant to hold no line feed"
    );
    // With the default 10 s handshake deadline, an answer is expected long before it:
    // the first byte (0x16) already rules out HTTP. A server that waits for a line break
    // that never comes answers 408 at the deadline instead.
    refused(&hello, "HTTP/1.1 400 Bad Request", "malformed request");
}

#[test]
fn binary_garbage_is_refused_with_400() {
    let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1];
    garbage.extend((0..=255u8).rev());
    garbage.extend_from_slice(b"\r\n\r\n");
    refused(&garbage, "HTTP/1.1 400 Bad Request", "malformed request");
}

#[test]
fn malformed_request_line_is_refused_with_400() {
    for request in [
        &b"GET / HTTP/1.1 trailing junk\r\nHost: x\r\n\r\n"[..],
        b"GET\x00/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTQ/1.1\r\nHost: x\r\n\r\n",
        b"/ GET\r\n\r\n",
    ] {
        refused(request, "HTTP/1.1 400 Bad Request", "malformed request");
    }
}

#[test]
fn websocket_version_8_is_refused_with_426_naming_version_13() {
    let head = refused(
        &upgrade_edited("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        "HTTP/1.1 426 Upgrade Required",
        "version 13",
    );
    // RFC 6455 §4.4: the refusal lists the versions the server speaks.
    assert!(
        head.contains("\r\nSec-WebSocket-Version: 13\r\n"),
        "426 must carry Sec-WebSocket-Version: 13:\n{head}"
    );
}

#[test]
fn missing_websocket_key_is_refused_with_400() {
    refused(
        &upgrade_edited("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        "HTTP/1.1 400 Bad Request",
        "Sec-WebSocket-Key",
    );
}

#[test]
fn websocket_key_that_is_not_16_bytes_is_refused_with_400() {
    for key in [
        "dGhlIHNhbXBsZQ==",         // 10 bytes
        "dGhlIHNhbXBsZSBub25jZSE=", // 17 bytes
        "not base64 at all!!!!!==", // not base64
        "",                         // empty
    ] {
        refused(
            &upgrade_edited("dGhlIHNhbXBsZSBub25jZQ==", key),
            "HTTP/1.1 400 Bad Request",
            "Sec-WebSocket-Key",
        );
    }
}

#[test]
fn missing_host_is_refused_with_400() {
    refused(
        &upgrade_edited("Host: 127.0.0.1\r\n", ""),
        "HTTP/1.1 400 Bad Request",
        "Host",
    );
}

#[test]
fn upgrade_to_h2c_is_refused_with_400() {
    refused(
        &upgrade_edited("Upgrade: websocket", "Upgrade: h2c"),
        "HTTP/1.1 400 Bad Request",
        "websocket",
    );
}

#[test]
fn connection_header_without_upgrade_token_is_refused_with_400() {
    refused(
        &upgrade_edited("Connection: Upgrade", "Connection: keep-alive"),
        "HTTP/1.1 400 Bad Request",
        "Connection",
    );
}

#[test]
fn post_upgrade_is_refused_with_405_allowing_get() {
    let head = refused(
        &upgrade_edited("GET / ", "POST / "),
        "HTTP/1.1 405 Method Not Allowed",
        "POST",
    );
    assert!(
        head.contains("\r\nAllow: GET\r\n"),
        "405 must say Allow: GET:\n{head}"
    );
}

#[test]
fn http_1_0_upgrade_is_refused_with_400() {
    refused(
        &upgrade_edited("HTTP/1.1", "HTTP/1.0"),
        "HTTP/1.1 400 Bad Request",
        "HTTP/1.1",
    );
}

#[test]
fn oversized_request_head_is_refused_with_431() {
    // One header line of 9 KiB: the head passes 8 KiB before it ends.
    let long = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    refused(
        long.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "8192 bytes",
    );
    // Many ordinary lines adding up to more than 8 KiB, in an upgrade request.
    let mut many_lines = GOOD_UPGRADE.trim_end_matches("\r\n").to_owned();
    for i in 0..40 {
        many_lines.push_str(&format!("\r\nX-Pad-{i}: {}", "b".repeat(250)));
    }
    many_lines.push_str("\r\n\r\n");
    assert!(many_lines.len() > 8 * 1024);
    refused(
        many_lines.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "8192 bytes",
    );
}

#[test]
fn more_than_64_header_fields_are_refused_with_431() {
    let mut request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_owned();
    for i in 0..64 {
        request.push_str(&format!("X-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    assert!(
        request.len() < 8 * 1024,
        "small enough to hit the count only"
    );
    refused(
        request.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "64 header fields",
    );
}

#[test]
fn plain_get_of_root_serves_the_html_page_and_closes() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let (head, body) = http_exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(body.contains("<title>loopchat"), "{body}");
    assert!(body.contains("new WebSocket("), "the page offers a console");
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn plain_get_of_unknown_path_gets_404_naming_the_path() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let (head, body) = http_exchange(
        addr,
        b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_refusal(&head, &body, "HTTP/1.1 404 Not Found", "/nope");
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn plain_post_of_root_gets_405_allowing_get_and_head() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let (head, body) = http_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_refusal(&head, &body, "HTTP/1.1 405 Method Not Allowed", "POST");
    assert!(head.contains("\r\nAllow: GET, HEAD\r\n"), "{head}");
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn head_of_root_sends_headers_with_length_and_no_body() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let (_, get_body) = http_exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );

    let mut client = RawClient::connect(addr);
    client.send(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/html"), "{head}");
    // The length of the body a GET would get, which is not sent.
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", get_body.len())),
        "HEAD must announce the GET body's length ({}):\n{head}",
        get_body.len()
    );
    client.expect_eof(); // and no body bytes before it
    assert_still_serves(addr, &mut earlier);
}

// ---------------------------------------------------------------------------------------
// Handshake robustness
// ---------------------------------------------------------------------------------------

#[test]
fn request_sent_one_byte_at_a_time_is_upgraded() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let mut client = RawClient::connect(addr);
    client.send_in_pieces(
        &upgrade_request(&addr.to_string(), "/"),
        1,
        Duration::from_millis(1),
    );
    let head = client.read_http_head();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    // A frame dribbled the same way is reassembled too.
    client.send_in_pieces(
        &client_frame(true, OP_TEXT, b"one byte at a time"),
        1,
        Duration::from_millis(1),
    );
    client.expect_frame(OP_TEXT, b"one byte at a time");
    client.close_cleanly(1000);
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn request_and_first_frames_in_one_write_are_all_served() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let mut client = RawClient::connect(addr);
    let mut bytes = upgrade_request(&addr.to_string(), "/");
    bytes.extend(client_frame(true, OP_TEXT, b"first"));
    bytes.extend(client_frame(true, OP_BINARY, &[0, 1, 2, 3]));
    client.send(&bytes);
    let head = client.read_http_head();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    client.expect_frame(OP_TEXT, b"first");
    client.expect_frame(OP_BINARY, &[0, 1, 2, 3]);
    client.close_cleanly(1000);
    assert_still_serves(addr, &mut earlier);
}

/// The handshake deadline of [`impatient_server`]: short, but far longer than the
/// dribbling client takes to send its 60 bytes (about 120 ms), even on a loaded machine.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// A server with a short handshake deadline.
fn impatient_server() -> SocketAddr {
    common::start_with(
        ServerConfig {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            ..ServerConfig::default()
        },
        Echo,
    )
}

/// Runs echo round trips on `client` in a thread until `stop` is set; returns how many.
fn chat_until(mut client: RawClient, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut rounds = 0;
        while !stop.load(Ordering::Relaxed) || rounds < 3 {
            echo_round_trip(
                &mut client,
                &format!("chatting while others stall {rounds}"),
            );
            rounds += 1;
            thread::sleep(Duration::from_millis(5));
        }
        client.close_cleanly(1000);
        rounds
    })
}

#[test]
fn silent_client_is_closed_with_408_at_the_handshake_deadline_while_others_chat() {
    let addr = impatient_server();
    let mut earlier = RawClient::open(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let chatter = chat_until(RawClient::open(addr), Arc::clone(&stop));

    let started = Instant::now();
    let mut silent = RawClient::connect(addr);
    expect_408_then_eof(&mut silent);
    // Not before the deadline: the server's clock for it starts after our connect did.
    assert!(
        started.elapsed() >= HANDSHAKE_TIMEOUT,
        "closed after {:?}, before the {HANDSHAKE_TIMEOUT:?} deadline",
        started.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    let rounds = chatter.join().expect("the chatting client was served");
    assert!(rounds >= 3);
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn dribbling_client_that_never_finishes_its_head_is_closed_with_408() {
    let addr = impatient_server();
    let mut earlier = RawClient::open(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let chatter = chat_until(RawClient::open(addr), Arc::clone(&stop));

    let mut slow = RawClient::connect(addr);
    // A few lines of a valid request, then nothing more: the deadline is for the whole
    // head, not for each byte.
    let request = upgrade_request(&addr.to_string(), "/");
    let started = Instant::now();
    slow.send_in_pieces(&request[..60], 1, Duration::from_millis(2));
    let dribbled = started.elapsed();
    expect_408_then_eof(&mut slow);
    // Not a test of speed: a dribble that outlasted the deadline would only prove less.
    eprintln!("dribbled 60 bytes in {dribbled:?}; the deadline is {HANDSHAKE_TIMEOUT:?}");
    stop.store(true, Ordering::Relaxed);
    chatter.join().expect("the chatting client was served");
    assert_still_serves(addr, &mut earlier);
}

// ---------------------------------------------------------------------------------------
// Frames that break RFC 6455
// ---------------------------------------------------------------------------------------

#[test]
fn unmasked_client_frame_gets_close_1002_then_eof() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    expect_failure(addr, &frame_bytes(0x81, b"not masked", None), 1002);
    // Even an unmasked control frame.
    expect_failure(addr, &frame_bytes(0x89, b"ping", None), 1002);
    assert_still_serves(addr, &mut earlier);
}

/// An echo server refusing messages over 1000 bytes.
fn small_message_server() -> SocketAddr {
    common::start_with(
        ServerConfig {
            max_message_size: 1000,
            ..ServerConfig::default()
        },
        Echo,
    )
}

/// The header (and mask key) of a masked frame announcing `len` bytes, without payload.
fn masked_header_only(first_byte: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first_byte];
    match len {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

#[test]
fn message_at_the_size_limit_is_echoed() {
    let addr = small_message_server();
    let mut client = RawClient::open(addr);
    let exact = vec![b'x'; 1000];
    client.send(&client_frame(true, OP_BINARY, &exact));
    client.expect_frame(OP_BINARY, &exact);
    // Fragments adding up to exactly the limit.
    client.send(&client_frame(false, OP_TEXT, &exact[..400]));
    client.send(&client_frame(false, OP_CONT, &exact[400..999]));
    client.send(&client_frame(true, OP_CONT, &exact[999..]));
    client.expect_frame(OP_TEXT, &exact);
    client.close_cleanly(1000);
}

#[test]
fn oversized_message_gets_close_1009_from_its_frame_header_alone() {
    let addr = small_message_server();
    let mut earlier = RawClient::open(addr);
    // Only the header is sent: the payload never comes, so the Close can only be the
    // answer to the header. 16-bit and 64-bit length forms; one byte over, and far over.
    for header in [
        masked_header_only(0x82, 1001),
        masked_header_only(0x81, 2000),
        masked_header_only(0x82, 1 << 40),
        masked_header_only(0x02, 70_000), // first fragment alone too big
    ] {
        expect_failure(addr, &header, 1009);
    }
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn fragments_summing_over_the_limit_get_close_1009_from_the_last_header_alone() {
    let addr = small_message_server();
    let mut earlier = RawClient::open(addr);

    // 600 bytes, then the header of 500 more.
    let mut bytes = client_frame(false, OP_TEXT, &[b'a'; 600]);
    bytes.extend(masked_header_only(0x80, 500));
    expect_failure(addr, &bytes, 1009);

    // 999 bytes, then the header of 2 more, with a Ping in between that is answered.
    let mut client = RawClient::open(addr);
    client.send(&client_frame(false, OP_BINARY, &[7; 999]));
    client.send(&client_frame(true, OP_PING, b"between"));
    client.expect_frame(common::OP_PONG, b"between");
    client.send(&masked_header_only(0x80, 2));
    client.expect_close(1009);
    client.expect_eof();

    // Ten whole fragments of 100, then the header of the eleventh.
    let mut bytes = client_frame(false, OP_BINARY, &[1; 100]);
    for _ in 0..9 {
        bytes.extend(client_frame(false, OP_CONT, &[1; 100]));
    }
    bytes.extend(masked_header_only(0x00, 100));
    expect_failure(addr, &bytes, 1009);

    assert_still_serves(addr, &mut earlier);
}

#[test]
fn invalid_utf8_text_gets_close_1007() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    // A byte that never occurs in UTF-8.
    expect_failure(addr, &client_frame(true, OP_TEXT, b"abc\xffdef"), 1007);
    // An encoded surrogate (U+D800).
    expect_failure(addr, &client_frame(true, OP_TEXT, b"\xed\xa0\x80"), 1007);
    // An overlong encoding of '/'.
    expect_failure(addr, &client_frame(true, OP_TEXT, b"\xc0\xaf"), 1007);
    // A sequence cut off at the end of the message.
    expect_failure(
        addr,
        &client_frame(true, OP_TEXT, &"κόσμε".as_bytes()[..3]),
        1007,
    );
    // Valid first fragment, invalid second.
    let mut bytes = client_frame(false, OP_TEXT, "κό".as_bytes());
    bytes.extend(client_frame(true, OP_CONT, b"\xff"));
    expect_failure(addr, &bytes, 1007);
    // A Close whose reason is not UTF-8.
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(b"\xff\xfe");
    expect_failure(addr, &client_frame(true, OP_CLOSE, &payload), 1007);
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn close_codes_not_allowed_on_the_wire_get_close_1002() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut client = RawClient::open(addr);
        client.send(&client_frame(true, OP_CLOSE, &close_payload(code, "bad")));
        let frame = client.read_frame();
        assert_eq!(
            (frame.opcode, frame.close_code()),
            (OP_CLOSE, Some(1002)),
            "close code {code} should be answered with 1002, got {frame:?}"
        );
        client.expect_eof();
    }
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn close_codes_allowed_on_the_wire_are_echoed() {
    let addr = common::echo_server();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        let mut client = RawClient::open(addr);
        client.close_cleanly(code);
    }
    // An empty Close is answered with an empty Close (or one without a code).
    let mut client = RawClient::open(addr);
    client.send(&client_frame(true, OP_CLOSE, b""));
    let frame = client.read_frame();
    assert_eq!(frame.opcode, OP_CLOSE, "{frame:?}");
    assert!(frame.payload.is_empty() || frame.close_code() == Some(1000));
    client.expect_eof();
}

#[test]
fn one_byte_close_payload_gets_close_1002() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    expect_failure(addr, &client_frame(true, OP_CLOSE, &[0x03]), 1002);
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn reserved_opcodes_get_close_1002() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    for opcode in [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        expect_failure(addr, &client_frame(true, opcode, b"?"), 1002);
    }
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn other_framing_violations_get_close_1002() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    // RSV bits without an extension.
    for rsv in [0x40, 0x20, 0x10] {
        expect_failure(
            addr,
            &frame_bytes(0x80 | rsv | OP_TEXT, b"rsv", Some(MASK)),
            1002,
        );
    }
    // A fragmented Ping.
    expect_failure(addr, &client_frame(false, OP_PING, b"frag"), 1002);
    // A Ping longer than 125 bytes.
    expect_failure(addr, &client_frame(true, OP_PING, &[0; 126]), 1002);
    // A continuation with nothing to continue.
    expect_failure(addr, &client_frame(true, OP_CONT, b"orphan"), 1002);
    // A new message inside a fragmented one.
    let mut bytes = client_frame(false, OP_TEXT, b"start");
    bytes.extend(client_frame(true, OP_TEXT, b"again"));
    expect_failure(addr, &bytes, 1002);
    // A length in a longer form than needed (5 bytes in the 16-bit form).
    let mut bytes = vec![0x81, 0x80 | 126, 0, 5];
    bytes.extend_from_slice(&MASK);
    bytes.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    expect_failure(addr, &bytes, 1002);
    assert_still_serves(addr, &mut earlier);
}

// ---------------------------------------------------------------------------------------
// Abrupt disconnects
// ---------------------------------------------------------------------------------------

/// Runs `vanish` (which connects a client and abandons it) several times, and then checks
/// that a client connected before all of it and a fresh one are still served.
fn survives_repeatedly(vanish: impl Fn(SocketAddr)) {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    for round in 0..20 {
        vanish(addr);
        if round % 5 == 0 {
            echo_round_trip(&mut earlier, &format!("between vanishings {round}"));
        }
    }
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn client_vanishing_mid_handshake_leaves_others_unaffected() {
    survives_repeatedly(|addr| {
        let mut client = RawClient::connect(addr);
        client.send(&upgrade_request(&addr.to_string(), "/")[..40]);
        drop(client);
    });
    // And one that vanishes before saying anything.
    survives_repeatedly(|addr| drop(RawClient::connect(addr)));
}

#[test]
fn client_vanishing_mid_frame_leaves_others_unaffected() {
    survives_repeatedly(|addr| {
        let mut client = RawClient::open(addr);
        let frame = client_frame(true, OP_BINARY, &[9; 300]);
        client.send(&frame[..frame.len() / 2]);
        drop(client);
    });
    // Half a header, too.
    survives_repeatedly(|addr| {
        let mut client = RawClient::open(addr);
        client.send(&client_frame(true, OP_BINARY, &[9; 300])[..3]);
        drop(client);
    });
}

#[test]
fn half_a_frame_then_fin_gets_the_connection_closed() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    for cut in [1, 3, 8, 150] {
        let mut client = RawClient::open(addr);
        let frame = client_frame(true, OP_BINARY, &[9; 300]);
        client.send(&frame[..cut]);
        client.shutdown_write();
        // The rest of the frame can never come: the server must close, not wait.
        expect_close_or_eof(&mut client.stream);
    }
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn client_dropping_an_open_connection_without_a_close_leaves_others_unaffected() {
    survives_repeatedly(|addr| {
        let mut client = RawClient::open(addr);
        echo_round_trip(&mut client, "about to vanish");
        drop(client);
    });
}

#[test]
fn client_resetting_an_open_connection_leaves_others_unaffected() {
    // Closing a socket with unread bytes in its receive buffer makes the kernel send a
    // reset (RST) instead of a FIN (RFC 2525 §2.17): no SO_LINGER needed.
    survives_repeatedly(|addr| {
        let mut client = RawClient::open(addr);
        client.send(&client_frame(true, OP_TEXT, &[b'r'; 2000]));
        let mut byte = [0; 1];
        // Wait for the echo to arrive without reading it.
        assert_eq!(client.stream.peek(&mut byte).expect("echo arrives"), 1);
        // And more the server may still be writing while the reset arrives.
        for _ in 0..10 {
            client.send(&client_frame(true, OP_BINARY, &[b'r'; 4000]));
        }
        drop(client);
    });
}

// ---------------------------------------------------------------------------------------
// Slow consumer
// ---------------------------------------------------------------------------------------

/// The most bytes the kernel can hold between the server and a client that never reads:
/// the server's send buffer and the client's receive buffer, each at the most TCP lets it
/// grow to (`tcp_wmem` and `tcp_rmem`, third field; 4 MiB and 32 MiB on the machine these
/// tests were written on). A server that has written more to such a client than this
/// plus its output limit has queued the rest itself, or dropped it.
fn kernel_buffer_bound() -> usize {
    let max_of = |name: &str| -> usize {
        let path = format!("/proc/sys/net/ipv4/{name}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.split_whitespace()
            .nth(2)
            .and_then(|max| max.parse().ok())
            .unwrap_or_else(|| panic!("{path}: no maximum in {text:?}"))
    };
    max_of("tcp_rmem") + max_of("tcp_wmem")
}

/// Writes `bytes` over and over, never reading, until `total` bytes are written. Every
/// write must go through: the server must go on reading a client it has closed (it
/// reads on until the client's Close), so a write that waits [`IO_TIMEOUT`] fails the
/// test, as does a reset.
fn write_without_reading(client: &RawClient, bytes: &[u8], total: usize) -> usize {
    let mut writer = client.stream.try_clone().unwrap();
    writer.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut sent = 0;
    while sent < total {
        if let Err(e) = writer.write_all(bytes) {
            panic!("writing failed after {sent} bytes (the server stopped reading): {e}");
        }
        sent += bytes.len();
    }
    sent
}

/// Reads what a client that did not read was sent: frames with `opcode`, each with a
/// payload of `len` bytes, then a Close with 1008 ("too slow: output queue full"), which
/// must arrive within [`IO_TIMEOUT`] per read. Answers the Close and checks the server
/// then closes TCP. Returns how many frames came before the Close.
fn expect_frames_then_close_1008(client: &mut RawClient, opcode: u8, len: usize) -> usize {
    let mut frames = 0;
    loop {
        let frame = client.read_frame();
        if frame.opcode == OP_CLOSE {
            assert_eq!(frame.close_code(), Some(1008), "{frame:?}");
            assert_eq!(&frame.payload[2..], b"too slow: output queue full");
            break;
        }
        assert_eq!(
            (frame.fin, frame.masked, frame.opcode, frame.payload.len()),
            (true, false, opcode, len),
            "frame {frames} before the Close"
        );
        frames += 1;
    }
    client.send(&client_frame(true, OP_CLOSE, &1008u16.to_be_bytes()));
    client.expect_eof();
    frames
}

#[test]
fn client_that_sends_but_never_reads_is_closed_with_1008_while_others_keep_working() {
    const LIMIT: usize = 64 * 1024;
    let addr = common::start_with(
        ServerConfig {
            max_outbound_bytes: LIMIT,
            // Longer than the test: the Close waits, queued behind the echoes the client
            // has not read, until the client reads; a close timeout would drop it unsent.
            close_timeout: Duration::from_secs(600),
            ..ServerConfig::default()
        },
        Echo,
    );
    let mut earlier = RawClient::open(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let chatter = chat_until(RawClient::open(addr), Arc::clone(&stop));

    // More than the kernel can hold for it and the output limit together: unless the
    // server closes it, the server must queue (or lose) echoes past the limit.
    let mut hog = RawClient::open(addr);
    let message = client_frame(true, OP_BINARY, &[0x5a; 16 * 1024]);
    let total = kernel_buffer_bound() + LIMIT + 2 * 1024 * 1024;
    let sent = write_without_reading(&hog, &message, total);

    // Now it reads: whole echoes, fewer than were sent, then the server's Close 1008. A
    // server that stopped echoing without a Close, or closed with another code, fails.
    let echoes = expect_frames_then_close_1008(&mut hog, OP_BINARY, 16 * 1024);
    assert!(
        echoes < sent / message.len(),
        "all {echoes} echoes arrived: the client was never found slow"
    );
    eprintln!(
        "slow consumer: sent {} messages, got {echoes} echoes back, then Close 1008",
        sent / message.len()
    );

    stop.store(true, Ordering::Relaxed);
    chatter.join().expect("the other client kept being served");
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn client_that_reads_its_echoes_is_not_closed_as_slow_for_a_burst_the_kernel_absorbs() {
    // The limit is on output the server has *queued* because the client does not read
    // it. This client reads everything at once; its burst of 8 × 16 KiB (twice the
    // limit) fits easily in loopback socket buffers, so nothing needs to wait in the
    // server's queue and no 1008 is due.
    let addr = common::start_with(
        ServerConfig {
            max_outbound_bytes: 64 * 1024,
            ..ServerConfig::default()
        },
        Echo,
    );
    let mut client = RawClient::open(addr);
    let payload = vec![0x33; 16 * 1024];
    let burst: Vec<u8> = (0..8)
        .flat_map(|_| client_frame(true, OP_BINARY, &payload))
        .collect();
    client.send(&burst);
    for i in 0..8 {
        let frame = client.read_frame();
        assert_eq!(
            (frame.opcode, frame.payload.len()),
            (OP_BINARY, payload.len()),
            "echo {i} of 8: got {:?} (close code {:?}) instead",
            frame.opcode,
            frame.close_code()
        );
    }
    client.close_cleanly(1000);
}

// ---------------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------------

#[test]
fn close_then_immediate_write_shutdown_still_gets_the_close_echo_before_eof() {
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    for _ in 0..20 {
        let mut client = RawClient::open(addr);
        client.send(&client_frame(
            true,
            OP_CLOSE,
            &close_payload(1001, "leaving"),
        ));
        client.shutdown_write();
        client.expect_close(1001);
        client.expect_eof();
    }
    // With a message still unanswered in front of the Close: both come back, in order.
    let mut client = RawClient::open(addr);
    let mut bytes = client_frame(true, OP_TEXT, b"last words");
    bytes.extend(client_frame(true, OP_CLOSE, &close_payload(1000, "")));
    client.send(&bytes);
    client.stream.shutdown(Shutdown::Write).unwrap();
    client.expect_frame(OP_TEXT, b"last words");
    client.expect_close(1000);
    client.expect_eof();
    assert_still_serves(addr, &mut earlier);
}

// ---------------------------------------------------------------------------------------
// Output limits: Pongs, large messages, half-closed peers
// ---------------------------------------------------------------------------------------

#[test]
fn client_that_pings_but_never_reads_is_closed_before_its_pongs_pile_up() {
    // Pongs are output like any other: a client that pings and never reads must hit the
    // same queue limit as one that sends messages, not grow the server's memory.
    const LIMIT: usize = 64 * 1024;
    let addr = common::start_with(
        ServerConfig {
            max_outbound_bytes: LIMIT,
            // Longer than the test, as above: the Close must wait for the client.
            close_timeout: Duration::from_secs(600),
            ..ServerConfig::default()
        },
        Echo,
    );
    let mut earlier = RawClient::open(addr);
    let mut hog = RawClient::open(addr);
    let pings: Vec<u8> = (0..64)
        .flat_map(|_| client_frame(true, OP_PING, &[0x70; 125]))
        .collect();
    // Pongs are 127 bytes for a Ping's 131: more Pings than this cannot all be answered
    // within the kernel's buffers and the limit.
    let total = (kernel_buffer_bound() + LIMIT) / 127 * 131 + 2 * 1024 * 1024;
    let sent = write_without_reading(&hog, &pings, total);
    let pongs = expect_frames_then_close_1008(&mut hog, common::OP_PONG, 125);
    assert!(
        pongs < sent / 131,
        "every one of the {pongs} Pings was answered"
    );
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn a_message_larger_than_the_output_limit_still_reaches_a_client_that_reads() {
    // The output limit bounds a backlog; it must not forbid a single message that the
    // message size limit allows. An empty queue takes any one message.
    let addr = common::start_with(
        ServerConfig {
            max_outbound_bytes: 64 * 1024,
            max_message_size: 1024 * 1024,
            ..ServerConfig::default()
        },
        Echo,
    );
    let mut client = RawClient::open(addr);
    let payload: Vec<u8> = (0..512 * 1024).map(|i| (i % 253) as u8).collect();
    client.send(&client_frame(true, OP_BINARY, &payload));
    client.expect_frame(OP_BINARY, &payload);
    client.close_cleanly(1000);
}

#[test]
fn a_client_that_half_closes_still_receives_its_whole_echo() {
    // The peer's FIN ends its session, but what was queued for it (an 8 MiB echo, far
    // more than one flush writes) is delivered before the server closes.
    let addr = common::echo_server();
    let mut earlier = RawClient::open(addr);
    let mut client = RawClient::open(addr);
    let payload: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    client.send(&client_frame(true, OP_BINARY, &payload));
    client.shutdown_write();
    client.expect_frame(OP_BINARY, &payload);
    client.expect_eof();
    assert_still_serves(addr, &mut earlier);
}

#[test]
fn plain_http_1_1_without_host_is_refused_with_400() {
    refused(
        b"GET / HTTP/1.1\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        "Host",
    );
    refused(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        "Host",
    );
}

#[test]
fn an_upgrade_to_another_protocol_is_ignored_and_the_page_served() {
    // RFC 9110 §7.8: a server may ignore an Upgrade it does not speak (curl --http2
    // sends `Upgrade: h2c`). Only an upgrade naming websocket, or carrying a WebSocket
    // key, is a WebSocket attempt.
    let addr = common::echo_server();
    let (head, body) = http_exchange(
        addr,
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.contains("<html"), "{body}");
}

// ---------------------------------------------------------------------------------------
// HTTP keep-alive
// ---------------------------------------------------------------------------------------

#[test]
fn plain_http_1_1_is_kept_alive_for_more_requests_pipelined_or_not() {
    let addr = common::echo_server();
    let mut client = RawClient::connect(addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = client.read_http_response();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: keep-alive\r\n"), "{head}");
    assert!(!body.is_empty());

    // The next request on the same connection.
    client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, _) = client.read_http_response();
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: keep-alive\r\n"), "{head}");

    // Two pipelined in one write, the second asking to close: both answered, in order.
    client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let head = client.read_http_head(); // HEAD: no body follows
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (head, _) = client.read_http_response();
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    client.expect_eof();
}

#[test]
fn an_upgrade_may_follow_a_plain_request_on_a_kept_alive_connection() {
    let addr = common::echo_server();
    let mut client = RawClient::connect(addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, _) = client.read_http_response();
    assert!(head.contains("\r\nConnection: keep-alive\r\n"), "{head}");
    client.send(&common::upgrade_request("x", "/"));
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo_round_trip(&mut client, "after a page load");
    client.close_cleanly(1000);
}

#[test]
fn http_1_0_closes_unless_it_asks_for_keep_alive() {
    let addr = common::echo_server();
    let (head, _) = http_exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");

    let mut client = RawClient::connect(addr);
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let (head, _) = client.read_http_response();
    assert!(head.contains("\r\nConnection: keep-alive\r\n"), "{head}");
    client.send(b"GET / HTTP/1.0\r\n\r\n");
    let (head, _) = client.read_http_response();
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    client.expect_eof();
}

#[test]
fn a_request_with_a_body_is_answered_and_the_connection_closed() {
    // The server reads no request bodies; it must not mistake one for the next request.
    let addr = common::echo_server();
    let (head, _) = http_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
}

#[test]
fn an_idle_kept_alive_connection_is_closed_quietly_at_the_deadline() {
    let addr = impatient_server();
    let mut client = RawClient::connect(addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, _) = client.read_http_response();
    assert!(head.contains("\r\nConnection: keep-alive\r\n"), "{head}");
    // No 408: the client did nothing wrong by not sending another request.
    client.expect_eof();
}
