use super::*;
use proptest::prelude::*;

/// A deterministic xorshift generator: the tests need varied bytes, not good ones.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Distinct sentences, so that a message's only repetition is the language's own.
const SENTENCES: [&str; 24] = [
    "Has anyone tried the new build on the staging server yet?",
    "I pushed a fix for the login timeout, it should be live in ten minutes.",
    "Lunch is at noon today, the usual place near the station.",
    "Can you review my pull request when you have a moment?",
    "The benchmark numbers look much better after the last change.",
    "I'll be out tomorrow afternoon, ping me by email if anything breaks.",
    "Does the meeting still start at three, or did it move?",
    "Thanks, that worked perfectly!",
    "We should write down why we picked this design before we forget.",
    "The deploy failed again because the disk on the runner was full.",
    "Good morning everyone, coffee is ready in the kitchen.",
    "I think the bug is in the reconnect logic, not in the parser.",
    "My train is delayed, so start without me and I will catch up.",
    "Who owns the billing service these days?",
    "Remember to rotate the certificates before Friday.",
    "Here is the link to the design document we discussed yesterday.",
    "That graph is strange: the latency doubles every night around two.",
    "Please don't merge anything into main until the release is tagged.",
    "Sure, I can take the on-call shift next weekend.",
    "The customer says the export button does nothing in Safari.",
    "Let's move this discussion to the planning channel.",
    "Nice work on the migration, nobody noticed a thing.",
    "Is it just me or is the wifi on the third floor down again?",
    "I'm rewriting the tests so they no longer depend on the clock.",
];

/// A chat event as loopchat broadcasts it, of about `len` bytes, whose text is
/// consecutive distinct sentences starting at one picked by `seed`.
fn chat_message(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut text = String::new();
    let mut next = rng.next() as usize;
    while text.len() + 100 < len {
        text.push_str(SENTENCES[next % SENTENCES.len()]);
        text.push(' ');
        next += 1;
    }
    let event = serde_json::json!({
        "type": "message",
        "id": 1000 + rng.next() % 9000,
        "room": "lobby",
        "from": format!("guest-{}", rng.next() % 500),
        "text": text.trim_end(),
        "time": 1_795_319_186_583u64 + rng.next() % 100_000,
    });
    serde_json::to_vec(&event).unwrap()
}

/// Inflates a whole message in one fragment.
fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut inflater = Inflater::new(limit, false);
    let mut out = Vec::new();
    inflater.feed(compressed, &mut out)?;
    inflater.finish(&mut out)?;
    assert!(!inflater.holds_state());
    Ok(out)
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

// RFC 7692 §7.2.3: the examples, byte for byte.

#[test]
fn hello_compresses_as_in_section_7_2_3_1() {
    for level in 1..=9 {
        let compressed = compress_message(b"Hello", 15, level);
        assert_eq!(compressed, hex("f2 48 cd c9 c9 07 00"), "level {level}");
    }
    assert_eq!(
        inflate(&hex("f2 48 cd c9 c9 07 00"), 100).unwrap(),
        b"Hello"
    );
}

#[test]
fn level_0_gives_the_stored_block_of_section_7_2_3_3() {
    let stored = hex("00 05 00 fa ff 48 65 6c 6c 6f 00");
    assert_eq!(compress_message(b"Hello", 15, 0), stored);
    assert_eq!(inflate(&stored, 100).unwrap(), b"Hello");
}

#[test]
fn a_shared_window_inflates_section_7_2_3_2() {
    let mut inflater = Inflater::new(100, true);
    let mut first = Vec::new();
    inflater
        .feed(&hex("f2 48 cd c9 c9 07 00"), &mut first)
        .unwrap();
    inflater.finish(&mut first).unwrap();
    assert!(
        inflater.holds_state(),
        "the window is kept for the next message"
    );
    let mut second = Vec::new();
    inflater.feed(&hex("f2 00 11 00 00"), &mut second).unwrap();
    inflater.finish(&mut second).unwrap();
    assert_eq!((&first[..], &second[..]), (&b"Hello"[..], &b"Hello"[..]));

    // Without the kept window the second message refers to nothing.
    assert_eq!(
        inflate(&hex("f2 00 11 00 00"), 100),
        Err(InflateError::Corrupt)
    );
}

#[test]
fn a_final_block_ends_the_stream_as_in_section_7_2_3_4() {
    let mut inflater = Inflater::new(100, true);
    for _ in 0..2 {
        // BFINAL set, then one octet of padding after the end of the stream.
        let mut out = Vec::new();
        inflater
            .feed(&hex("f3 48 cd c9 c9 07 00 00"), &mut out)
            .unwrap();
        inflater.finish(&mut out).unwrap();
        assert_eq!(out, b"Hello");
    }
}

#[test]
fn two_blocks_in_one_message_as_in_section_7_2_3_5() {
    let payload = hex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00");
    assert_eq!(inflate(&payload, 100).unwrap(), b"Hello");
}

#[test]
fn an_empty_message_is_one_octet_as_in_section_7_2_3_6() {
    assert_eq!(compress_message(b"", 15, DEFAULT_LEVEL), [0x00]);
    assert_eq!(inflate(&[0x00], 100).unwrap(), b"");
    // No bytes at all is taken as empty too, and leaves a kept window as it was.
    let mut inflater = Inflater::new(100, true);
    let mut out = Vec::new();
    inflater
        .feed(&hex("f2 48 cd c9 c9 07 00"), &mut out)
        .unwrap();
    inflater.finish(&mut out).unwrap();
    out.clear();
    inflater.finish(&mut out).unwrap();
    assert_eq!(out, b"");
    inflater.feed(&hex("f2 00 11 00 00"), &mut out).unwrap();
    inflater.finish(&mut out).unwrap();
    assert_eq!(out, b"Hello");
}

// Round trips.

#[test]
fn every_window_and_level_round_trips() {
    let mut rng = Rng(7);
    let payloads = [
        Vec::new(),
        b"x".to_vec(),
        chat_message(200, 1),
        chat_message(1024, 2),
        chat_message(70_000, 3),
        rng.bytes(1000),
        rng.bytes(70_000),
        vec![b'a'; 100_000],
    ];
    let mut compressor_out = Vec::new();
    for bits in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
        for level in 0..=9 {
            let mut compressor = Compressor::new(bits, level);
            for payload in &payloads {
                compressor_out.clear();
                compressor.compress(payload, &mut compressor_out);
                let back = inflate(&compressor_out, 1 << 20).unwrap();
                assert!(back == *payload, "bits {bits} level {level}");
            }
        }
    }
}

#[test]
fn a_reused_compressor_forgets_each_message() {
    let mut compressor = Compressor::new(15, DEFAULT_LEVEL);
    let (first, second) = (chat_message(1024, 4), chat_message(1024, 5));
    let mut out = Vec::new();
    compressor.compress(&first, &mut out);
    out.clear();
    compressor.compress(&second, &mut out);
    assert_eq!(out, compress_message(&second, 15, DEFAULT_LEVEL));
}

#[test]
fn a_message_split_at_every_byte_inflates_the_same() {
    let message = chat_message(300, 6);
    let compressed = compress_message(&message, 15, DEFAULT_LEVEL);
    for split in 0..=compressed.len() {
        let mut inflater = Inflater::new(1000, false);
        let mut out = Vec::new();
        inflater.feed(&compressed[..split], &mut out).unwrap();
        inflater.feed(&compressed[split..], &mut out).unwrap();
        inflater.finish(&mut out).unwrap();
        assert_eq!(out, message, "split at {split}");
    }
    // And one byte per frame.
    let mut inflater = Inflater::new(1000, false);
    let mut out = Vec::new();
    for byte in compressed.chunks(1) {
        inflater.feed(byte, &mut out).unwrap();
    }
    inflater.finish(&mut out).unwrap();
    assert_eq!(out, message);
}

#[test]
fn messages_sharing_a_window_inflate_in_turn() {
    // A peer that takes context over: one deflate stream, one sync flush per message.
    let mut deflate = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut inflater = Inflater::new(1 << 16, true);
    for seed in 0..5 {
        let message = chat_message(500, seed);
        let mut compressed = Vec::with_capacity(2000);
        deflate
            .compress_vec(&message, &mut compressed, FlushCompress::Sync)
            .unwrap();
        assert!(compressed.ends_with(&TRAILER));
        compressed.truncate(compressed.len() - 4);
        let mut out = Vec::new();
        inflater.feed(&compressed, &mut out).unwrap();
        inflater.finish(&mut out).unwrap();
        assert_eq!(out, message);
    }
}

#[test]
fn an_empty_message_between_others_with_the_window_kept_is_one_octet() {
    use crate::ws::deflate::negotiation::Direction;
    let direction = Direction {
        window_bits: 15,
        no_context_takeover: false,
    };
    let mut sender = MessageCompressor::new(direction, DEFAULT_LEVEL).unwrap();
    // A plain zlib stream on the other side, as a peer that keeps the window reads it.
    let mut inflate = Decompress::new_with_window_bits(false, 15);
    for message in [b"abc abc abc".as_slice(), b"", b"", b"abc abc abc"] {
        let compressed = sender.compress(message).to_vec();
        if message.is_empty() {
            assert_eq!(compressed, [0x00]);
        }
        let input = [compressed.as_slice(), &TRAILER].concat();
        let mut out = Vec::with_capacity(100);
        let before = inflate.total_in();
        inflate
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(inflate.total_in() - before, input.len() as u64);
        assert_eq!(out, message);
    }
}

// Window bits 8: zlib's 9 stays within 256 bytes.

/// Inflates with a window of 2^`bits` and one byte of output at a time, so a match
/// reaching further back than the window fails instead of reading earlier output.
fn inflates_within(compressed: &[u8], bits: u8) -> bool {
    let mut stream = zlib_rs::Inflate::new(false, bits);
    let input: Vec<u8> = compressed.iter().chain(&TRAILER).copied().collect();
    let mut byte = [0u8; 1];
    while (stream.total_in() as usize) < input.len() {
        let read = stream.total_in() as usize;
        let result = stream.decompress(&input[read..], &mut byte, zlib_rs::InflateFlush::NoFlush);
        match result {
            Ok(zlib_rs::Status::StreamEnd) => break,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

#[test]
fn window_bits_8_compress_within_256_bytes() {
    // Repeats 300 bytes apart: reachable with a 512-byte window, not a 256-byte one.
    let block = Rng(9).bytes(300);
    let data: Vec<u8> = block.iter().cycle().take(30_000).copied().collect();
    let eight = compress_message(&data, 8, 9);
    assert!(inflates_within(&eight, 8));
    // The check can fail: a 1024-byte window uses the repeats, which 256 bytes lack.
    let ten = compress_message(&data, 10, 9);
    assert!(ten.len() < eight.len() / 10);
    assert!(!inflates_within(&ten, 8));
}

// Limits and bad input.

#[test]
fn a_deflate_bomb_stops_at_the_limit() {
    let bomb = compress_message(&vec![0u8; 10 << 20], 15, 9);
    assert!(bomb.len() < 11_000, "{} bytes", bomb.len());
    let limit = 1 << 20;
    let mut inflater = Inflater::new(limit, false);
    let mut out = Vec::new();
    let result = bomb
        .chunks(4096)
        .try_for_each(|frame| inflater.feed(frame, &mut out));
    assert_eq!(result, Err(InflateError::TooBig { limit }));
    assert_eq!(out.len(), limit + 1, "stopped one byte past the limit");
    assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
    assert!(!inflater.holds_state(), "an error drops the state");
}

#[test]
fn the_limit_is_inclusive() {
    let message = chat_message(5000, 8);
    let compressed = compress_message(&message, 15, DEFAULT_LEVEL);
    assert_eq!(inflate(&compressed, message.len()).unwrap(), message);
    let limit = message.len() - 1;
    assert_eq!(
        inflate(&compressed, limit),
        Err(InflateError::TooBig { limit })
    );
}

#[test]
fn data_that_does_not_inflate_is_corrupt() {
    // BTYPE 11 is reserved (RFC 1951 §3.2.3).
    assert_eq!(inflate(&[0x06], 100), Err(InflateError::Corrupt));
    // A stored block whose NLEN is not LEN's complement.
    assert_eq!(
        inflate(&hex("00 05 00 00 00 48 65 6c 6c 6f"), 100),
        Err(InflateError::Corrupt)
    );
    assert_eq!(
        InflateError::Corrupt.close_code(),
        CloseCode::InvalidPayload
    );
    assert_eq!(
        InflateError::TooBig { limit: 1 }.close_code(),
        CloseCode::MessageTooBig
    );
}

#[test]
fn an_idle_inflater_holds_no_heap() {
    assert!(std::mem::size_of::<Inflater>() <= 24);
    let mut inflater = Inflater::new(1000, false);
    assert!(!inflater.holds_state());
    let mut out = Vec::new();
    inflater.feed(&hex("f2 48"), &mut out).unwrap();
    assert!(inflater.holds_state(), "state only while a message arrives");
    inflater.feed(&hex("cd c9 c9 07 00"), &mut out).unwrap();
    inflater.finish(&mut out).unwrap();
    assert!(!inflater.holds_state());
}

#[test]
fn a_chat_message_shrinks_by_a_third_or_more() {
    // Alone, without earlier messages as context: 1 KiB of text saves about 40%.
    let message = chat_message(1024, 10);
    let compressed = compress_message(&message, 15, DEFAULT_LEVEL);
    assert!(
        compressed.len() * 3 < message.len() * 2,
        "{}",
        compressed.len()
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        split in any::<prop::sample::Index>(),
        keep in any::<bool>(),
    ) {
        let split = split.index(data.len() + 1);
        let mut inflater = Inflater::new(2000, keep);
        let mut out = Vec::new();
        let result = inflater
            .feed(&data[..split], &mut out)
            .and_then(|()| inflater.feed(&data[split..], &mut out))
            .and_then(|()| inflater.finish(&mut out));
        prop_assert!(out.len() <= 2001);
        if result.is_ok() {
            prop_assert!(out.len() <= 2000);
        }
    }
}

/// Measures what the documentation reports. Run with
/// `cargo test --release --lib deflate::codec::tests::measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure() {
    use std::hint::black_box;
    use std::time::Instant;
    let message = chat_message(1024, 11);
    let runs = 20_000;
    println!("{} byte chat message", message.len());
    for level in [1, 2, 3, 4, 6, 9] {
        let mut compressor = Compressor::new(15, level);
        let mut out = Vec::new();
        let start = Instant::now();
        for _ in 0..runs {
            out.clear();
            compressor.compress(black_box(&message), &mut out);
        }
        let reused = start.elapsed() / runs;
        let start = Instant::now();
        for _ in 0..runs {
            black_box(compress_message(black_box(&message), 15, level));
        }
        let fresh = start.elapsed() / runs;
        let start = Instant::now();
        for _ in 0..runs {
            black_box(inflate(black_box(&out), 1 << 20).unwrap());
        }
        let inflated = start.elapsed() / runs;
        println!(
            "level {level}: {} bytes ({:.2}), reused {reused:?}, fresh {fresh:?}, inflate {inflated:?}",
            out.len(),
            out.len() as f64 / message.len() as f64
        );
    }
    for (bits, level) in [(8, 1), (8, 2), (8, 6), (12, 1), (12, 2), (15, 2)] {
        let mut compressor = Compressor::new(bits, level);
        let mut out = Vec::new();
        let start = Instant::now();
        for _ in 0..runs {
            out.clear();
            compressor.compress(black_box(&message), &mut out);
        }
        println!(
            "bits {bits} level {level}: {} bytes, reused {:?}",
            out.len(),
            start.elapsed() / runs
        );
    }
}
