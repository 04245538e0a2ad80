//! Micro-benchmarks of the code every message goes through: `cargo bench --bench codec`.
//!
//! - `frame_header`: parsing a client frame header (masked, as every client frame is)
//!   with a 7-bit, a 16-bit and a 64-bit length.
//! - `unmask`: [`apply_mask`], a machine word at a time, against the obvious byte-at-a-time
//!   loop, at 64 B, 1 KiB and 64 KiB.
//! - `utf8`: the streaming [`Utf8Validator`] against `std::str::from_utf8` (which it
//!   delegates to), on ASCII and on multi-byte text, and fed in small pieces.
//! - `handshake`: parsing a browser's upgrade request, classifying it and writing the 101.
//! - `broadcast`: what a relay does once per message, whatever the number of
//!   recipients: encoding one [`SharedFrame`]. What it costs per recipient (the broadcast
//!   log, the vectored writes) lies inside the loop, which is measured whole, over real
//!   sockets, by `loopchat bench broadcast` and `benches/compare.sh`: the library does not
//!   make its internals public for a benchmark to reach them.
//!
//! Throughputs are reported per byte or per element (one delivery), so `cargo bench`
//! prints both the time per operation and its rate. The whole suite runs in about a
//! minute: a short warm-up and two seconds of measurement per benchmark. For a quick look,
//! `cargo bench --bench codec -- --quick`; for one group, name it:
//! `cargo bench --bench codec -- unmask`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use loopchat::http::{HeadLimits, RequestKind, classify, parse_request};
use loopchat::ws::frame::FrameHeader;
use loopchat::ws::mask::apply_mask;
use loopchat::ws::utf8::Utf8Validator;
use loopchat::{Message, SharedFrame};
use std::hint::black_box;
use std::time::Duration;

/// The masking key of RFC 6455 §5.7's examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_header");
    // FIN + text, MASK + 64: the common chat message.
    let small = [0x81, 0x80 | 64, 0x37, 0xfa, 0x21, 0x3d];
    // FIN + binary, MASK + 126, then a 16-bit length (1 KiB).
    let medium = [0x82, 0x80 | 126, 0x04, 0x00, 0x37, 0xfa, 0x21, 0x3d];
    // FIN + binary, MASK + 127, then a 64-bit length (1 MiB).
    let large = [
        0x82,
        0x80 | 127,
        0,
        0,
        0,
        0,
        0,
        0x10,
        0,
        0,
        0x37,
        0xfa,
        0x21,
        0x3d,
    ];
    for (name, bytes) in [
        ("7-bit length", &small[..]),
        ("16-bit length", &medium[..]),
        ("64-bit length", &large[..]),
    ] {
        group.bench_with_input(BenchmarkId::new("parse masked", name), bytes, |b, bytes| {
            b.iter(|| FrameHeader::parse(black_box(bytes)))
        });
    }
    group.finish();
}

/// The definition of masking, one byte at a time: what `apply_mask` is measured against.
fn mask_bytewise(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= key[(i + offset) % 4];
    }
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for len in [64, 1024, 64 * 1024] {
        let mut data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("apply_mask", len), |b| {
            b.iter(|| apply_mask(black_box(&mut data), KEY, black_box(0)))
        });
        group.bench_function(BenchmarkId::new("bytewise", len), |b| {
            b.iter(|| mask_bytewise(black_box(&mut data), KEY, black_box(0)))
        });
    }
    group.finish();
}

/// 4 KiB of text built from `unit`, repeated.
fn text_of(unit: &str) -> Vec<u8> {
    unit.repeat(4096 / unit.len()).into_bytes()
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let ascii = text_of("The quick brown fox jumps over the lazy dog. 0123456789 ");
    // Two-, three- and four-byte characters, and some ASCII between them.
    let multibyte = text_of("κόσμε, 中文字符, 😀🎉, Grüße; ");
    for (name, text) in [("ascii", &ascii), ("multibyte", &multibyte)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("Utf8Validator", name), text, |b, text| {
            let mut validator = Utf8Validator::default();
            b.iter(|| {
                validator.feed(black_box(text)).unwrap();
                validator.finish().unwrap();
            })
        });
        group.bench_with_input(BenchmarkId::new("std from_utf8", name), text, |b, text| {
            b.iter(|| std::str::from_utf8(black_box(text)).unwrap().len())
        });
    }
    // Pieces of 61 bytes cut most characters in two: the cost of carrying a partial
    // character from one read to the next.
    group.throughput(Throughput::Bytes(multibyte.len() as u64));
    group.bench_function(
        BenchmarkId::new("Utf8Validator in 61-byte pieces", "multibyte"),
        |b| {
            let mut validator = Utf8Validator::default();
            b.iter(|| {
                for piece in black_box(&multibyte).chunks(61) {
                    validator.feed(piece).unwrap();
                }
                validator.finish().unwrap();
            })
        },
    );
    group.finish();
}

/// What Chromium sends to open `new WebSocket("ws://127.0.0.1:8080/ws")`.
const BROWSER_UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let limits = HeadLimits::default();
    group.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(BROWSER_UPGRADE), &limits))
    });
    let (request, _) = parse_request(BROWSER_UPGRADE, &limits)
        .unwrap()
        .expect("a complete head");
    group.bench_function("classify + response", |b| {
        b.iter(|| match classify(black_box(&request)) {
            Ok(RequestKind::Upgrade(upgrade)) => upgrade.response(),
            other => panic!("not an upgrade: {other:?}"),
        })
    });
    group.bench_function("parse + classify + response", |b| {
        b.iter(|| {
            let (request, _) = parse_request(black_box(BROWSER_UPGRADE), &limits)
                .unwrap()
                .expect("a complete head");
            match classify(&request) {
                Ok(RequestKind::Upgrade(upgrade)) => upgrade.response(),
                other => panic!("not an upgrade: {other:?}"),
            }
        })
    });
    group.finish();
}

fn broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    for size in [64, 1024, 64 * 1024] {
        let payload = "x".repeat(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("encode a shared frame", size),
            &payload,
            |b, payload| b.iter(|| SharedFrame::new(Message::Text(black_box(payload)))),
        );
    }
    group.finish();
}

criterion_group! {
    name = codec;
    // About 2.5 s per benchmark: the suite takes about a minute.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = frame_header, unmask, utf8, handshake, broadcast
}
criterion_main!(codec);
