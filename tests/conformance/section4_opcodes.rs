//! Autobahn section 4: reserved opcodes (RFC 6455 §5.2). Non-control opcodes 3–7
//! (4.1.x) and control opcodes 11–15 (4.2.x) are reserved: a frame with one fails the
//! connection with 1002. A valid message before it is echoed; the Ping after it is not
//! answered.

use crate::*;

const HELLO: &str = "Hello, world!";
const RESERVED_PAYLOAD: &str = "reserved opcode payload";

/// A lone frame with a reserved opcode.
fn alone(id: &str, opcode: u8, with_payload: bool) -> Case {
    let payload = if with_payload { RESERVED_PAYLOAD } else { "" };
    let description = if with_payload {
        format!("frame with reserved opcode {opcode} and non-empty payload")
    } else {
        format!("frame with reserved opcode {opcode}")
    };
    case(
        id,
        description,
        steps![send([raw_frame(0x80 | opcode, payload)]), fails_with(1002)],
    )
}

/// A text message, a frame with a reserved opcode, then a Ping.
fn after_text(id: &str, opcode: u8, with_payload: bool) -> Case {
    let payload = if with_payload { RESERVED_PAYLOAD } else { "" };
    let description = format!(
        "text message, then reserved opcode {opcode}{}, then Ping",
        if with_payload { " with payload" } else { "" }
    );
    case(
        id,
        description,
        steps![
            send([text(HELLO), raw_frame(0x80 | opcode, payload), ping(HELLO)]),
            expect_text(HELLO),
            fails_with(1002),
        ],
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        alone("4.1.1", 3, false),
        alone("4.1.2", 4, true),
        after_text("4.1.3", 5, false),
        after_text("4.1.4", 6, true),
        after_text("4.1.5", 7, true),
        alone("4.2.1", 11, false),
        alone("4.2.2", 12, true),
        after_text("4.2.3", 13, false),
        after_text("4.2.4", 14, true),
        after_text("4.2.5", 15, true),
    ]
}

#[test]
fn section4_opcodes() {
    run_section("4 (reserved opcodes)", cases());
}
