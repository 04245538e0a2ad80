//! Writes the seed inputs under `corpus/<target>/seed-*`, each a short prefix (see the
//! layouts in `src/lib.rs`) and real bytes built with loopchat's own encoders:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus
//! ```
//!
//! The files are committed; this is how they were made, and how to remake them after a
//! layout changes. Only `seed-*` files are tracked: what libFuzzer adds to `corpus/` is
//! ignored by git (`corpus/.gitignore`). `seed-client-request` differs at each run: the
//! client picks a random key.

use loopchat::http::ClientHandshake;
use loopchat::ws::Opcode;
use loopchat::ws::frame::encode_frame;
use std::fs;
use std::path::Path;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// One frame; masked with `KEY` when `masked`.
fn frame(masked: bool, opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, fin, payload, masked.then_some(KEY));
    out
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason.as_bytes()].concat()
}

/// Named inputs for one target.
type Seeds = Vec<(&'static str, Vec<u8>)>;

/// The frame seeds for one role: `masked` is what that role expects to receive. The first
/// prefix byte is the settings (5: a 64 KiB limit, 7: 16 MiB, 2: 125 bytes; +8: our Close
/// was sent first), then the read lengths.
fn frame_seeds(masked: bool) -> Seeds {
    let f = |opcode, fin, payload: &[u8]| frame(masked, opcode, fin, payload);
    let hello = f(Opcode::Text, true, b"Hello");
    // "é" is two bytes; the fragments cut it in the middle, with a Ping between them.
    let fragmented = [
        f(Opcode::Text, false, b"caf\xc3"),
        f(Opcode::Ping, true, b"ping"),
        f(Opcode::Continuation, true, b"\xa9!"),
    ]
    .concat();
    // A 64-bit length (65536) with only the first 16 bytes of its payload.
    let mut long_header = f(Opcode::Binary, true, &[0; 16]);
    let length = [if masked { 0xff } else { 0x7f }, 0, 0, 0, 0, 0, 1, 0, 0];
    long_header.splice(1..2, length);
    let pong_then_close = [
        f(Opcode::Pong, true, b""),
        f(Opcode::Close, true, &close_payload(1000, "bye")),
    ]
    .concat();
    let text_then_close = [
        f(Opcode::Text, true, b"late"),
        f(Opcode::Close, true, &close_payload(1001, "")),
    ]
    .concat();
    vec![
        ("text", seed(&[5, 0], &hello)),
        ("text-bytewise", seed(&[5, 1, 1], &hello)),
        (
            "binary-16-bit-length",
            seed(&[5, 2, 3, 40], &f(Opcode::Binary, true, &[7; 200])),
        ),
        ("binary-64-bit-length", seed(&[7, 0], &long_header)),
        ("fragmented-with-ping", seed(&[5, 3, 1, 7, 2], &fragmented)),
        ("pong-then-close", seed(&[5, 0], &pong_then_close)),
        ("close-first", seed(&[5 | 8, 1, 4], &text_then_close)),
        (
            "invalid-utf8",
            seed(&[5, 0], &f(Opcode::Text, true, b"ok\xff")),
        ),
        (
            "too-big",
            seed(&[2, 0], &f(Opcode::Binary, true, &[1; 126])),
        ),
        (
            "wrong-masking",
            seed(&[5, 0], &frame(!masked, Opcode::Text, true, b"Hello")),
        ),
    ]
}

/// A seed: the layout's prefix, then the bytes.
fn seed(prefix: &[u8], bytes: &[u8]) -> Vec<u8> {
    [prefix, bytes].concat()
}

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let client = ClientHandshake::new("127.0.0.1:8080", "/ws");
    let upgrade_then_frame = seed(UPGRADE, &frame(true, Opcode::Text, true, b"Hi"));
    let version_8 = String::from_utf8_lossy(UPGRADE).replace("Version: 13", "Version: 8");
    let plain_get: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let post: &[u8] = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    let accepted: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: $ACCEPT\r\n\r\n";
    let wrong_accept: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let refused: &[u8] = b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\
        Content-Length: 0\r\n\r\n";
    let not_upgraded: &[u8] = b"HTTP/1.1 101 OK\r\nConnection: keep-alive\r\n\r\n";
    let frame_after = frame(false, Opcode::Text, true, b"Hi");

    let seeds: Vec<(&str, Seeds)> = vec![
        (
            "http_request_head",
            vec![
                ("upgrade", seed(&[0, 64, 0], UPGRADE)),
                (
                    "upgrade-then-frame",
                    seed(&[0xff, 0xff, 0xff], &upgrade_then_frame),
                ),
                ("client-request", seed(&[0, 30, 0x44], client.request())),
                ("plain-get", seed(&[0, 17, 0x3f], plain_get)),
                ("http-1-0", seed(&[0, 0, 0], b"GET / HTTP/1.0\r\n\r\n")),
                ("post-with-body", seed(&[0, 9, 0xe8], post)),
                ("version-8", seed(&[0, 100, 0], version_8.as_bytes())),
                (
                    "tls-hello",
                    seed(&[0, 1, 0], b"\x16\x03\x01\x02\x00\x01\x00"),
                ),
            ],
        ),
        ("ws_server_decoder", frame_seeds(true)),
        ("ws_client_decoder", frame_seeds(false)),
        (
            "client_handshake_response",
            vec![
                ("accepted", seed(&[0, 20], accepted)),
                (
                    "accepted-then-frame",
                    seed(&[0, 0], &seed(accepted, &frame_after)),
                ),
                ("wrong-accept", seed(&[0, 90], wrong_accept)),
                ("refused", seed(&[0, 12], refused)),
                ("not-upgraded", seed(&[0, 0], not_upgraded)),
            ],
        ),
        (
            "line_reader",
            vec![
                ("lines", seed(&[10, 0], b"hello\r\nw\xc3\xb6rld\n\nlast")),
                (
                    "too-long",
                    seed(&[4, 2, 1, 3], b"1234\r\n12345678901234567890\nok\n12345"),
                ),
                (
                    "not-utf8",
                    seed(&[255, 1, 2], b"a\xffb\r\n\xc3\n\xe2\x82\xac\r\r\n"),
                ),
                // The crash fuzzing found (RESULTS.md, fixed in 47230d5): lines of at
                // most 1 byte, reads of 3; the second read starts at the `c` after a
                // stray 0xFF that put the line over its limit, and once reported
                // `TooLong` without consuming it. Also a unit test in src/line.rs.
                (
                    "regression-stray-ff-at-limit",
                    seed(&[1, 1, 3], b"ab\xffc\nk\n"),
                ),
            ],
        ),
    ];

    for (target, inputs) in seeds {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in inputs {
            fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{}", dir.display());
    }
    Ok(())
}
