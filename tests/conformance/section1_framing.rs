//! Autobahn section 1: framing. Text (1.1.x) and binary (1.2.x) messages of every
//! length-encoding boundary (RFC 6455 §5.2: 7-bit up to 125, 16-bit from 126 to 65535,
//! 64-bit from 65536), echoed as single frames with the same opcode and payload. As in
//! Autobahn, text payloads are `*` repeated and binary payloads `0xfe` repeated.

use crate::*;

/// One message of `len` bytes, echoed; then a clean close.
fn echo_row(id: &str, opcode: u8, len: usize, chop: Option<usize>) -> Case {
    let (kind, byte) = if opcode == OP_TEXT {
        ("text", b'*')
    } else {
        ("binary", 0xfe)
    };
    let payload = Data::repeat(byte, len);
    let message = frame(true, opcode, payload.clone());
    let (description, sent) = match chop {
        None => (format!("{kind} message of {len} bytes"), send([message])),
        Some(size) => (
            format!("{kind} message of {len} bytes, sent in chops of {size} bytes"),
            send_chopped([message], size),
        ),
    };
    case(
        id,
        description,
        steps![sent, expect_message(opcode, payload), clean_close()],
    )
}

pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (group, opcode) in [("1.1", OP_TEXT), ("1.2", OP_BINARY)] {
        for (i, len) in [0, 125, 126, 127, 128, 65535, 65536]
            .into_iter()
            .enumerate()
        {
            cases.push(echo_row(&format!("{group}.{}", i + 1), opcode, len, None));
        }
        cases.push(echo_row(&format!("{group}.8"), opcode, 65536, Some(997)));
    }
    cases
}

#[test]
fn section1_framing() {
    run_section("1 (framing)", cases());
}
