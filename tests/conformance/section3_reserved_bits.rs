//! Autobahn section 3: reserved bits (RFC 6455 §5.2). With no extension negotiated, a frame
//! with any of RSV1–3 set fails the connection with 1002. A valid message before the bad
//! frame is echoed; nothing after it (here, a Ping) is answered.
//!
//! As in Autobahn, "RSV = n" is the 3-bit value RSV1·4 + RSV2·2 + RSV3, placed in bits 4–6
//! of the first byte.

use crate::*;

const HELLO: &str = "Hello, world!";

/// The first byte of a final frame with this RSV value and opcode.
fn with_rsv(rsv: u8, opcode: u8) -> u8 {
    0x80 | (rsv << 4) | opcode
}

/// A valid text message, the same with `rsv` set, then a Ping; sent with `chop`.
fn text_bad_text_ping(rsv: u8, chop: Chop) -> Vec<Step> {
    steps![
        Step::Send(
            vec![
                text(HELLO),
                raw_frame(with_rsv(rsv, OP_TEXT), HELLO),
                ping(HELLO),
            ],
            chop,
        ),
        expect_text(HELLO),
        fails_with(1002),
    ]
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "3.1",
            "small text message with RSV = 1",
            steps![
                send([raw_frame(with_rsv(1, OP_TEXT), HELLO)]),
                fails_with(1002)
            ],
        ),
        case(
            "3.2",
            "text message, then again with RSV = 2, then Ping",
            text_bad_text_ping(2, Chop::All),
        ),
        case(
            "3.3",
            "text message, then again with RSV = 3, then Ping; frame-wise chops",
            text_bad_text_ping(3, Chop::PerFrame),
        ),
        case(
            "3.4",
            "text message, then again with RSV = 4, then Ping; octet-wise chops",
            text_bad_text_ping(4, Chop::Bytes(1)),
        ),
        case(
            "3.5",
            "small binary message with RSV = 5",
            steps![
                send([raw_frame(
                    with_rsv(5, OP_BINARY),
                    b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
                )]),
                fails_with(1002),
            ],
        ),
        case(
            "3.6",
            "Ping with RSV = 6",
            steps![
                send([raw_frame(with_rsv(6, OP_PING), HELLO)]),
                fails_with(1002)
            ],
        ),
        case(
            "3.7",
            "Close with RSV = 7",
            steps![
                send([raw_frame(
                    with_rsv(7, OP_CLOSE),
                    1000u16.to_be_bytes().to_vec()
                )]),
                fails_with(1002),
            ],
        ),
    ]
}

#[test]
fn section3_reserved_bits() {
    run_section("3 (reserved bits)", cases());
}
