//! Autobahn section 9: limits and performance, here checked for correctness only (no
//! wall-clock assertions). Large messages, single-frame and fragmented, and a single frame
//! written in small chops, must be echoed byte for byte; many small messages in flight
//! must all come back in order.
//!
//! The default `max_message_size` is 16 MiB, so 16 MiB messages (9.1.6, 9.2.6) must be
//! accepted. 9.9.x are additions to Autobahn's list: messages over the limit, on a server
//! started with a smaller `max_message_size` and on the default one, must get 1009.
//!
//! Payloads are generated: text mixes 1- to 4-byte characters, so chop and fragment
//! boundaries fall inside characters; binary takes most byte values.

use crate::*;

/// The payload of a message of this kind.
fn payload(opcode: u8, len: usize, seed: usize) -> Data {
    if opcode == OP_TEXT {
        Data::Text { len, seed }
    } else {
        Data::Binary { len, seed }
    }
}

fn kind(opcode: u8) -> &'static str {
    if opcode == OP_TEXT { "text" } else { "binary" }
}

fn size_name(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// 9.1.x and 9.2.x: one single-frame message of each size.
fn single_messages(group: &str, opcode: u8) -> Vec<Case> {
    [64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB]
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            let data = payload(opcode, len, 0);
            case(
                format!("{group}.{}", i + 1),
                format!("{} message of {}", kind(opcode), size_name(len)),
                steps![
                    send([frame(true, opcode, data.clone())]),
                    expect_message(opcode, data),
                    clean_close(),
                ],
            )
        })
        .collect()
}

/// 9.3.x and 9.4.x: a 4 MiB message in fragments of 64 B to 4 MiB.
fn fragmented_messages(group: &str, opcode: u8) -> Vec<Case> {
    let len = 4 * MIB;
    [
        64,
        256,
        KIB,
        4 * KIB,
        16 * KIB,
        64 * KIB,
        256 * KIB,
        MIB,
        4 * MIB,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, size)| {
        let data = payload(opcode, len, 1);
        case(
            format!("{group}.{}", i + 1),
            format!(
                "{} message of {} in fragments of {}",
                kind(opcode),
                size_name(len),
                size_name(size)
            ),
            steps![
                send([fragmented(opcode, data.clone(), size)]),
                expect_message(opcode, data),
                clean_close(),
            ],
        )
    })
    .collect()
}

/// 9.5.x and 9.6.x: a 1 MiB single-frame message written in chops of 64 B to 2 KiB.
fn chopped_messages(group: &str, opcode: u8) -> Vec<Case> {
    let len = MIB;
    [64, 128, 256, 512, 1024, 2048]
        .into_iter()
        .enumerate()
        .map(|(i, chop)| {
            let data = payload(opcode, len, 2);
            case(
                format!("{group}.{}", i + 1),
                format!(
                    "{} message of {} written in chops of {chop} B",
                    kind(opcode),
                    size_name(len)
                ),
                steps![
                    send_chopped([frame(true, opcode, data.clone())], chop),
                    expect_message(opcode, data),
                    clean_close(),
                ],
            )
        })
        .collect()
}

/// 9.7.x and 9.8.x: 1000 messages of 0 B to 4 KiB, all written before any echo is read.
/// (Autobahn waits for each echo before sending the next; sending them all at once is the
/// harder test of the same thing: many frames per read, many replies per write.)
fn many_messages(group: &str, opcode: u8) -> Vec<Case> {
    const COUNT: usize = 1000;
    [0, 16, 64, 256, 1024, 4096]
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            let (messages, echoes): (Vec<Out>, Vec<Step>) = (0..COUNT)
                .map(|seed| {
                    let data = payload(opcode, len, seed);
                    (
                        frame(true, opcode, data.clone()),
                        expect_message(opcode, data),
                    )
                })
                .unzip();
            case(
                format!("{group}.{}", i + 1),
                format!(
                    "{COUNT} {} messages of {} in flight, echoed in order",
                    kind(opcode),
                    size_name(len)
                ),
                steps![send(messages), echoes, clean_close()],
            )
        })
        .collect()
}

/// The limit of the small server of 9.9.x.
const SMALL_LIMIT: usize = 64 * KIB;

fn over_the_limit() -> Vec<Case> {
    let small = Srv::EchoMaxMessage(SMALL_LIMIT);
    vec![
        case(
            "9.9.1",
            "limit 64 KiB: text message of exactly 64 KiB is echoed",
            steps![
                send([text(Data::text(SMALL_LIMIT))]),
                expect_text(Data::text(SMALL_LIMIT)),
                clean_close(),
            ],
        )
        .on(small),
        case(
            "9.9.2",
            "limit 64 KiB: binary message of 64 KiB + 1",
            steps![
                send([binary(Data::binary(SMALL_LIMIT + 1))]),
                fails_with(1009)
            ],
        )
        .on(small),
        case(
            "9.9.3",
            "limit 64 KiB: text message of 64 KiB in 4 fragments is echoed",
            steps![
                send([fragmented(
                    OP_TEXT,
                    Data::text(SMALL_LIMIT),
                    SMALL_LIMIT / 4
                )]),
                expect_text(Data::text(SMALL_LIMIT)),
                clean_close(),
            ],
        )
        .on(small),
        case(
            "9.9.4",
            "limit 64 KiB: text message of 64 KiB + 1 in fragments of 16 KiB",
            steps![
                send([fragmented(OP_TEXT, Data::text(SMALL_LIMIT + 1), 16 * KIB)]),
                fails_with(1009),
            ],
        )
        .on(small),
        case(
            "9.9.5",
            "default limit 16 MiB: binary message of 16 MiB + 1",
            steps![send([binary(Data::binary(16 * MIB + 1))]), fails_with(1009)],
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    [
        single_messages("9.1", OP_TEXT),
        single_messages("9.2", OP_BINARY),
        fragmented_messages("9.3", OP_TEXT),
        fragmented_messages("9.4", OP_BINARY),
        chopped_messages("9.5", OP_TEXT),
        chopped_messages("9.6", OP_BINARY),
        many_messages("9.7", OP_TEXT),
        many_messages("9.8", OP_BINARY),
        over_the_limit(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn section9_limits() {
    run_section("9 (limits)", cases());
}
