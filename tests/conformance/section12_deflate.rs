//! Autobahn section 12: permessage-deflate (RFC 7692) with Autobahn's default offer,
//! `permessage-deflate; client_no_context_takeover; client_max_window_bits`. For each of
//! five corpora (12.1 JSON, 12.2 a bitmap, 12.3 German prose, 12.4 HTML, 12.5 a PDF;
//! generated, see `corpora.rs`), 18 cases of messages from 16 bytes to 128 KiB, in one
//! frame or auto-fragmented at 256 to 32768 bytes: each message is sent compressed and
//! its echo, compressed or not, must inflate to exactly what was sent (`echo_runs.rs`).
//!
//! 12.9.x are not Autobahn's (its section 12 ends at 12.5): single compressed frames
//! built by hand, as the other sections' rows are. The examples of RFC 7692 §7.2.3 and
//! other valid edges must be echoed; RSV1 where it does not belong must get 1002, data
//! that does not inflate or inflates to invalid UTF-8 1007, and a message that inflates
//! past `max_message_size` 1009.

use crate::echo_runs::autobahn_cases;
use crate::permessage_deflate::compress_message;
use crate::*;

/// "Hello" compressed, as in RFC 7692 §7.2.3.1.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// A compressed data frame (RSV1 and FIN set) with this payload.
fn compressed(opcode: u8, payload: impl Into<Data>) -> Out {
    raw_frame(0xc0 | opcode, payload)
}

/// A compressed message cut into frames of `size` payload bytes: RSV1 on the first only.
fn compressed_fragments(opcode: u8, payload: &[u8], size: usize) -> Vec<Out> {
    let count = payload.len().div_ceil(size);
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let fin = if i + 1 == count { 0x80 } else { 0 };
            let first = if i == 0 { 0x40 | opcode } else { OP_CONT };
            raw_frame(fin | first, chunk.to_vec())
        })
        .collect()
}

/// A case of 12.9.x: on a connection that offered plain `permessage-deflate`, which the
/// server must accept.
fn deflate_case(id: &str, description: &str, steps: Vec<Step>) -> Case {
    case(id, description, steps).offering(Offering::accepted([Offer::bare()]))
}

/// 12.9.x: compressed frames built by hand.
fn handmade_cases() -> Vec<Case> {
    let json = Corpus::Json.message(300, 0);
    let big = Corpus::Json.message(16 * KIB, 3);
    let big_compressed = compress_message(&big, 15);
    // The first 64 bytes in 1-byte fragments, a Ping after the third, then the rest.
    let mut one_byte_fragments = compressed_fragments(OP_TEXT, &big_compressed[..64], 1);
    one_byte_fragments.pop();
    one_byte_fragments.push(frame(false, OP_CONT, big_compressed[63..64].to_vec()));
    one_byte_fragments.insert(3, ping("between"));
    one_byte_fragments.push(frame(true, OP_CONT, big_compressed[64..].to_vec()));
    let limit = 64 * KIB;
    let bomb = compress_message(&vec![0; 10 * MIB], 15);
    vec![
        deflate_case(
            "12.9.1",
            "RFC 7692 §7.2.3.1: \"Hello\" compressed in one frame",
            steps![
                send([compressed(OP_TEXT, &HELLO)]),
                expect_text("Hello"),
                clean_close()
            ],
        ),
        deflate_case(
            "12.9.2",
            "§7.2.3.1: \"Hello\" compressed in two fragments, RSV1 on the first only",
            steps![
                send([
                    raw_frame(0x40 | OP_TEXT, &HELLO[..3]),
                    frame(true, OP_CONT, &HELLO[3..])
                ]),
                expect_text("Hello"),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.3",
            "§7.2.3.3: \"Hello\" in a stored (uncompressed) DEFLATE block",
            steps![
                send([compressed(
                    OP_TEXT,
                    &[
                        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00
                    ]
                )]),
                expect_text("Hello"),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.4",
            "§7.2.3.4: \"Hello\" ending with a final block (BFINAL), twice",
            steps![
                send([
                    compressed(OP_TEXT, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
                    compressed(OP_TEXT, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
                ]),
                expect_text("Hello"),
                expect_text("Hello"),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.5",
            "§7.2.3.5: \"Hello\" in two DEFLATE blocks",
            steps![
                send([compressed(
                    OP_TEXT,
                    &[
                        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07,
                        0x00
                    ]
                )]),
                expect_text("Hello"),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.6",
            "§7.2.3.6: an empty text and an empty binary message, each one byte compressed",
            steps![
                send([compressed(OP_TEXT, &[0x00]), compressed(OP_BINARY, &[0x00])]),
                expect_text(""),
                expect_message(OP_BINARY, ""),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.7",
            "compressed and uncompressed messages alternate (RSV1 is per message)",
            steps![
                send([
                    compressed(OP_TEXT, compress_message(&json, 15)),
                    text(json.clone()),
                    compressed(OP_BINARY, compress_message(&json, 15)),
                    binary(json.clone()),
                ]),
                expect_text(json.clone()),
                expect_text(json.clone()),
                expect_message(OP_BINARY, json.clone()),
                expect_message(OP_BINARY, json),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.8",
            "16 KiB of JSON compressed in one frame, sent one byte per write",
            steps![
                send_octets([compressed(OP_TEXT, big_compressed.clone())]),
                expect_text(big.clone()),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.9",
            "16 KiB of JSON compressed, in 1-byte fragments then the rest, a Ping among them",
            steps![
                send(one_byte_fragments),
                expect_pong("between"),
                expect_text(big),
                clean_close(),
            ],
        ),
        deflate_case(
            "12.9.10",
            "RSV1 on a continuation frame",
            steps![
                send([
                    raw_frame(0x40 | OP_TEXT, &HELLO[..3]),
                    raw_frame(0xc0, &HELLO[3..])
                ]),
                fails_with(1002),
            ],
        ),
        deflate_case(
            "12.9.11",
            "RSV1 on a Ping",
            steps![send([raw_frame(0xc0 | OP_PING, "ping")]), fails_with(1002)],
        ),
        deflate_case(
            "12.9.12",
            "RSV1 on a Pong",
            steps![send([raw_frame(0xc0 | OP_PONG, "pong")]), fails_with(1002)],
        ),
        deflate_case(
            "12.9.13",
            "RSV1 on a Close",
            steps![
                send([raw_frame(0xc0 | OP_CLOSE, 1000u16.to_be_bytes().to_vec())]),
                fails_with(1002),
            ],
        ),
        deflate_case(
            "12.9.14",
            "RSV2 on a data frame (deflate takes RSV1 only)",
            steps![send([raw_frame(0xa0 | OP_TEXT, &HELLO)]), fails_with(1002)],
        ),
        deflate_case(
            "12.9.15",
            "compressed data that does not inflate (a reserved block type)",
            steps![
                send([compressed(OP_TEXT, &[0xff, 0xff, 0xff, 0x00])]),
                fails_with(1007),
            ],
        ),
        deflate_case(
            "12.9.16",
            "compressed text that inflates to invalid UTF-8",
            steps![
                send([compressed(
                    OP_TEXT,
                    compress_message(b"valid, then \xff\xfe", 15)
                )]),
                fails_with(1007),
            ],
        ),
        deflate_case(
            "12.9.17",
            "a message that inflates to exactly max_message_size (64 KiB) is echoed",
            steps![
                send([compressed(OP_BINARY, compress_message(&vec![7; limit], 15))]),
                expect_message(OP_BINARY, vec![7; limit]),
                clean_close(),
            ],
        )
        .on(Srv::EchoMaxMessage(limit)),
        deflate_case(
            "12.9.18",
            "a bomb: 10 KiB that inflate to 10 MiB, past max_message_size (64 KiB)",
            steps![
                send([compressed(OP_BINARY, bomb.clone())]),
                fails_with(1009)
            ],
        )
        .on(Srv::EchoMaxMessage(limit)),
        deflate_case(
            "12.9.19",
            "the same bomb in fragments of 1000 bytes",
            steps![
                send(compressed_fragments(OP_BINARY, &bomb, 1000)),
                fails_with(1009),
            ],
        )
        .on(Srv::EchoMaxMessage(limit)),
        case(
            "12.9.20",
            "RSV1 on a data frame with no deflate offered",
            steps![send([compressed(OP_TEXT, &HELLO)]), fails_with(1002)],
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    let offering = Offering::accepted([Offer::autobahn(false, 0)]);
    let mut cases = Vec::new();
    for (i, corpus) in Corpus::ALL.into_iter().enumerate() {
        cases.extend(autobahn_cases(&format!("12.{}", i + 1), corpus, &offering));
    }
    cases.extend(handmade_cases());
    cases
}

#[test]
fn section12_deflate() {
    run_section("12 (permessage-deflate, corpora)", cases());
}
