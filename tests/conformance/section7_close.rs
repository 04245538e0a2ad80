//! Autobahn section 7: the closing handshake (RFC 6455 §5.5.1, §7). The server answers a
//! client's Close with a Close echoing its code (an empty Close with an empty Close),
//! then closes TCP first, and ignores whatever the client sends after its Close. A Close
//! payload of one byte, longer than 125 bytes, with a code that may not be sent (§7.4.1,
//! §7.4.2, the IANA registry), fails with 1002; a reason that is not UTF-8 with 1007.

use crate::*;

const HELLO: &str = "Hello World!";
/// κόσμε, a UTF-16 surrogate (invalid in UTF-8), then "edited".
const INVALID_UTF8: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

pub fn cases() -> Vec<Case> {
    let reason_123 = "*".repeat(123);
    let reason_124 = "*".repeat(124);
    let mut cases = vec![
        case(
            "7.1.1",
            "text message, then Close: echo, then Close 1000 echoed",
            steps![
                send([text(HELLO), close(1000, b"")]),
                expect_text(HELLO),
                closes_with(1000),
            ],
        ),
        case(
            "7.1.2",
            "two Closes: the second is ignored",
            steps![
                send([close(1000, b""), close(1000, b"")]),
                closes_with(1000)
            ],
        ),
        case(
            "7.1.3",
            "Close, then Ping: the Ping is not answered",
            steps![send([close(1000, b""), ping(HELLO)]), closes_with(1000)],
        ),
        case(
            "7.1.4",
            "Close, then text message: the message is not echoed",
            steps![send([close(1000, b""), text(HELLO)]), closes_with(1000)],
        ),
        case(
            "7.1.5",
            "first fragment, Close, last fragment: nothing echoed",
            steps![
                send([
                    frame(false, OP_TEXT, "fragment1"),
                    close(1000, b""),
                    frame(true, OP_CONT, "fragment2"),
                ]),
                closes_with(1000),
            ],
        ),
        case(
            "7.1.6",
            "256 KiB text message, then Close, then Ping: echo, Close, Ping not answered",
            steps![
                send([text(Data::text(256 * KIB)), close(1000, b""), ping(HELLO)]),
                expect_text(Data::text(256 * KIB)),
                closes_with(1000),
            ],
        ),
        case(
            "7.3.1",
            "Close with payload of length 0: empty Close echoed",
            steps![send([close_empty()]), closes_empty()],
        ),
        case(
            "7.3.2",
            "Close with payload of length 1",
            steps![send([close_payload("a")]), fails_with(1002)],
        ),
        case(
            "7.3.3",
            "Close with code 1000 only",
            steps![send([close(1000, b"")]), closes_with(1000)],
        ),
        case(
            "7.3.4",
            "Close with code 1000 and a reason",
            steps![send([close(1000, b"Hello World!")]), closes_with(1000)],
        ),
        case(
            "7.3.5",
            "Close with code 1000 and a 123-byte reason (125-byte payload, the maximum)",
            steps![
                send([close(1000, reason_123.as_bytes())]),
                closes_with(1000)
            ],
        ),
        case(
            "7.3.6",
            "Close with code 1000 and a 124-byte reason: control frame too long",
            steps![send([close(1000, reason_124.as_bytes())]), fails_with(1002)],
        ),
        case(
            "7.5.1",
            "Close with code 1000 and a reason that is not UTF-8",
            steps![send([close(1000, INVALID_UTF8)]), fails_with(1007)],
        ),
    ];
    let valid = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ];
    for (i, code) in valid.into_iter().enumerate() {
        cases.push(case(
            format!("7.7.{}", i + 1),
            format!("Close with valid code {code}: echoed"),
            steps![send([close(code, b"")]), closes_with(code)],
        ));
    }
    let invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999];
    for (i, code) in invalid.into_iter().enumerate() {
        cases.push(case(
            format!("7.9.{}", i + 1),
            format!("Close with invalid code {code}"),
            steps![send([close(code, b"")]), fails_with(1002)],
        ));
    }
    for (i, code) in [5000, 65535].into_iter().enumerate() {
        cases.push(case(
            format!("7.13.{}", i + 1),
            format!("Close with code {code}, outside the defined ranges"),
            steps![send([close(code, b"")]), fails_with(1002)],
        ));
    }
    cases
}

#[test]
fn section7_close() {
    run_section("7 (close handling)", cases());
}
