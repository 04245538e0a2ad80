//! Autobahn section 6: UTF-8 handling (RFC 6455 §5.6, §8.1; RFC 3629). Valid text,
//! however it is fragmented, is echoed byte for byte; a text message that is not valid
//! UTF-8 fails the connection with 1007.
//!
//! - 6.1–6.3: empty and fragmented texts, the "Hello-µ@ßöäüàá-UTF-8!!" and κόσμε samples
//!   split at every byte, and an invalid text whole and split at every byte.
//! - 6.4: fail fast. The client sends a valid first part, then the part that makes the
//!   text invalid, and must read the server's 1007 Close *before* it sends the rest:
//!   across fragments (6.4.1, 6.4.2) and inside one frame whose payload arrives in pieces
//!   (6.4.3, 6.4.4).
//! - 6.5–6.23: Autobahn's sequences, after Markus Kuhn's UTF-8 decoder stress test, each
//!   sent as one single-frame text message.

use crate::*;

const HELLO_UTF8: &str = "Hello-µ@ßöäüàá-UTF-8!!";
const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
/// κόσμε, a UTF-16 surrogate (U+D800 encoded as UTF-8, which is invalid), then "edited".
const KOSME_SURROGATE_EDITED: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

/// A single-frame text message: echoed if valid, else 1007.
fn sequence_row(id: String, group: &str, valid: bool, payload: Vec<u8>) -> Case {
    let verdict = if valid { "valid" } else { "invalid" };
    let description = format!("{group}: {verdict} {}", payload.escape_ascii());
    let expected = if valid {
        steps![expect_text(payload.clone()), clean_close()]
    } else {
        fails_with(1007)
    };
    case(id, description, steps![send([text(payload)]), expected])
}

fn encode(code_point: u32) -> Vec<u8> {
    char::from_u32(code_point)
        .expect("a scalar value")
        .to_string()
        .into_bytes()
}

/// A byte sequence and whether it is valid UTF-8.
type Sequence = (bool, Vec<u8>);

/// Autobahn's groups 6.5 to 6.23: (group title, sequences).
fn sequence_groups() -> Vec<(&'static str, Vec<Sequence>)> {
    let ok = |bytes: &[u8]| (true, bytes.to_vec());
    let bad = |bytes: &[u8]| (false, bytes.to_vec());
    let missing_last_byte: [&[u8]; 10] = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ];
    // Every lead byte of a range, each followed by a space (ranges as in Autobahn, upper
    // bound excluded).
    let lonely = |from: u8, to: u8| (false, (from..to).flat_map(|b| [b, b' ']).collect());
    let mut noncharacters = vec![ok(b"\xef\xbf\xbe"), ok(b"\xef\xbf\xbf")];
    for plane in 1..=16u32 {
        noncharacters.push((true, encode(plane << 16 | 0xfffe)));
        noncharacters.push((true, encode(plane << 16 | 0xffff)));
    }
    vec![
        (
            "some valid UTF-8 sequences",
            vec![
                ok(b"hello\x24world"),
                ok(b"hello\xc2\xa2world"),
                ok(b"hello\xe2\x82\xacworld"),
                ok(b"hello\xf0\xa4\xad\xa2world"),
                ok(KOSME),
            ],
        ),
        (
            "every prefix of a valid text with multi-byte characters",
            (1..=KOSME.len())
                .map(|n| {
                    let prefix = &KOSME[..n];
                    (std::str::from_utf8(prefix).is_ok(), prefix.to_vec())
                })
                .collect(),
        ),
        (
            "first possible sequence of a certain length",
            vec![
                ok(b"\x00"),
                ok(b"\xc2\x80"),
                ok(b"\xe0\xa0\x80"),
                ok(b"\xf0\x90\x80\x80"),
            ],
        ),
        (
            "first possible sequence of length 5/6 (above U+10FFFF)",
            vec![
                bad(b"\xf8\x88\x80\x80\x80"),
                bad(b"\xfc\x84\x80\x80\x80\x80"),
            ],
        ),
        (
            "last possible sequence of a certain length",
            vec![
                ok(b"\x7f"),
                ok(b"\xdf\xbf"),
                ok(b"\xef\xbf\xbf"),
                ok(b"\xf4\x8f\xbf\xbf"),
            ],
        ),
        (
            "last possible sequence of length 4/5/6 (above U+10FFFF)",
            vec![
                bad(b"\xf7\xbf\xbf\xbf"),
                bad(b"\xfb\xbf\xbf\xbf\xbf"),
                bad(b"\xfd\xbf\xbf\xbf\xbf\xbf"),
            ],
        ),
        (
            "other boundary conditions",
            vec![
                ok(b"\xed\x9f\xbf"),
                ok(b"\xee\x80\x80"),
                ok(b"\xef\xbf\xbd"),
                ok(b"\xf4\x8f\xbf\xbf"),
                bad(b"\xf4\x90\x80\x80"),
            ],
        ),
        (
            "unexpected continuation bytes",
            vec![
                bad(b"\x80"),
                bad(b"\xbf"),
                bad(b"\x80\xbf"),
                bad(b"\x80\xbf\x80"),
                bad(b"\x80\xbf\x80\xbf"),
                bad(b"\x80\xbf\x80\xbf\x80"),
                bad(b"\x80\xbf\x80\xbf\x80\xbf"),
                (false, (0x80..0xbf).collect()),
            ],
        ),
        (
            "lonely start characters",
            vec![
                lonely(0xc0, 0xdf),
                lonely(0xe0, 0xef),
                lonely(0xf0, 0xf7),
                lonely(0xf8, 0xfb),
                lonely(0xfc, 0xfd),
            ],
        ),
        (
            "sequences with the last continuation byte missing",
            missing_last_byte.iter().map(|b| bad(b)).collect(),
        ),
        (
            "concatenation of incomplete sequences",
            vec![(false, missing_last_byte.concat())],
        ),
        (
            "impossible bytes",
            vec![bad(b"\xfe"), bad(b"\xff"), bad(b"\xfe\xfe\xff\xff")],
        ),
        (
            "overlong ASCII character",
            vec![
                bad(b"\xc0\xaf"),
                bad(b"\xe0\x80\xaf"),
                bad(b"\xf0\x80\x80\xaf"),
                bad(b"\xf8\x80\x80\x80\xaf"),
                bad(b"\xfc\x80\x80\x80\x80\xaf"),
            ],
        ),
        (
            "maximum overlong sequences",
            vec![
                bad(b"\xc1\xbf"),
                bad(b"\xe0\x9f\xbf"),
                bad(b"\xf0\x8f\xbf\xbf"),
                bad(b"\xf8\x87\xbf\xbf\xbf"),
                bad(b"\xfc\x83\xbf\xbf\xbf\xbf"),
            ],
        ),
        (
            "overlong NUL",
            vec![
                bad(b"\xc0\x80"),
                bad(b"\xe0\x80\x80"),
                bad(b"\xf0\x80\x80\x80"),
                bad(b"\xf8\x80\x80\x80\x80"),
                bad(b"\xfc\x80\x80\x80\x80\x80"),
            ],
        ),
        (
            "single UTF-16 surrogates",
            vec![
                bad(b"\xed\xa0\x80"),
                bad(b"\xed\xad\xbf"),
                bad(b"\xed\xae\x80"),
                bad(b"\xed\xaf\xbf"),
                bad(b"\xed\xb0\x80"),
                bad(b"\xed\xbe\x80"),
                bad(b"\xed\xbf\xbf"),
            ],
        ),
        (
            "paired UTF-16 surrogates",
            vec![
                bad(b"\xed\xa0\x80\xed\xb0\x80"),
                bad(b"\xed\xa0\x80\xed\xbf\xbf"),
                bad(b"\xed\xad\xbf\xed\xb0\x80"),
                bad(b"\xed\xad\xbf\xed\xbf\xbf"),
                bad(b"\xed\xae\x80\xed\xb0\x80"),
                bad(b"\xed\xae\x80\xed\xbf\xbf"),
                bad(b"\xed\xaf\xbf\xed\xb0\x80"),
                bad(b"\xed\xaf\xbf\xed\xbf\xbf"),
            ],
        ),
        ("non-character code points (valid UTF-8)", noncharacters),
        (
            "Unicode specials",
            vec![
                ok(b"\xef\xbf\xb9"),
                ok(b"\xef\xbf\xba"),
                ok(b"\xef\xbf\xbb"),
                ok(b"\xef\xbf\xbc"),
                ok(b"\xef\xbf\xbd"),
                ok(b"\xef\xbf\xbe"),
                ok(b"\xef\xbf\xbf"),
            ],
        ),
    ]
}

/// 6.4.1 and 6.4.2: three fragments; the 1007 must come after the second, before the third.
fn fail_fast_fragments(id: &str, parts: [&[u8]; 3]) -> Case {
    case(
        id,
        format!(
            "fail fast: text in 3 fragments \"{}\" | \"{}\" | \"{}\"; 1007 before the 3rd is sent",
            parts[0].escape_ascii(),
            parts[1].escape_ascii(),
            parts[2].escape_ascii()
        ),
        steps![
            send([frame(false, OP_TEXT, parts[0])]),
            pause(20),
            send([frame(false, OP_CONT, parts[1])]),
            Step::Expect(Reply::Close(1007)),
            send([frame(true, OP_CONT, parts[2])]),
            Step::Expect(Reply::Eof),
        ],
    )
}

/// 6.4.3 and 6.4.4: one frame whose payload is written in three pieces; the 1007 must come
/// after the second piece, before the third.
fn fail_fast_chops(id: &str, parts: [&[u8]; 3]) -> Case {
    let payload = parts.concat();
    let whole = common::frame_bytes(0x80 | OP_TEXT, &payload, Some(common::MASK));
    let header_len = whole.len() - payload.len();
    let first_end = header_len + parts[0].len();
    let second_end = first_end + parts[1].len();
    case(
        id,
        format!(
            "fail fast: one text frame written in 3 pieces \"{}\" | \"{}\" | \"{}\"; 1007 before the 3rd is sent",
            parts[0].escape_ascii(),
            parts[1].escape_ascii(),
            parts[2].escape_ascii()
        ),
        steps![
            send([raw(whole[..first_end].to_vec())]),
            pause(20),
            send([raw(whole[first_end..second_end].to_vec())]),
            Step::Expect(Reply::Close(1007)),
            send([raw(whole[second_end..].to_vec())]),
            Step::Expect(Reply::Eof),
        ],
    )
}

pub fn cases() -> Vec<Case> {
    let (hello_a, hello_b) = HELLO_UTF8.split_at("Hello-µ@ßöä".len());
    let kosme_f4: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4";
    let mut cases = vec![
        case(
            "6.1.1",
            "text message of length 0",
            steps![send([text("")]), expect_text(""), clean_close()],
        ),
        case(
            "6.1.2",
            "text in 3 fragments, each of length 0",
            steps![
                send([
                    frame(false, OP_TEXT, ""),
                    frame(false, OP_CONT, ""),
                    frame(true, OP_CONT, ""),
                ]),
                expect_text(""),
                clean_close(),
            ],
        ),
        case(
            "6.1.3",
            "text in 3 fragments, first and last of length 0, middle not",
            steps![
                send([
                    frame(false, OP_TEXT, ""),
                    frame(false, OP_CONT, "middle frame payload"),
                    frame(true, OP_CONT, ""),
                ]),
                expect_text("middle frame payload"),
                clean_close(),
            ],
        ),
        case(
            "6.2.1",
            "valid UTF-8 text in one fragment",
            steps![
                send([text(HELLO_UTF8)]),
                expect_text(HELLO_UTF8),
                clean_close()
            ],
        ),
        case(
            "6.2.2",
            "valid UTF-8 text in 2 fragments, split on a code point boundary",
            steps![
                send([
                    frame(false, OP_TEXT, hello_a),
                    frame(true, OP_CONT, hello_b)
                ]),
                expect_text(HELLO_UTF8),
                clean_close(),
            ],
        ),
        case(
            "6.2.3",
            "valid UTF-8 text in fragments of 1 byte (split inside characters)",
            steps![
                send([fragmented(OP_TEXT, Data::from(HELLO_UTF8), 1)]),
                expect_text(HELLO_UTF8),
                clean_close(),
            ],
        ),
        case(
            "6.2.4",
            "valid UTF-8 text κόσμε in fragments of 1 byte (split inside characters)",
            steps![
                send([fragmented(OP_TEXT, Data::from(KOSME), 1)]),
                expect_text(KOSME),
                clean_close(),
            ],
        ),
        case(
            "6.3.1",
            "invalid UTF-8 text (surrogate) in one fragment",
            steps![send([text(KOSME_SURROGATE_EDITED)]), fails_with(1007)],
        ),
        case(
            "6.3.2",
            "invalid UTF-8 text (surrogate) in fragments of 1 byte",
            steps![
                send([fragmented(OP_TEXT, Data::from(KOSME_SURROGATE_EDITED), 1)]),
                fails_with(1007),
            ],
        ),
        fail_fast_fragments("6.4.1", [KOSME, b"\xf4\x90\x80\x80", b"edited"]),
        fail_fast_fragments("6.4.2", [kosme_f4, b"\x90", b"\x80\x80edited"]),
        fail_fast_chops("6.4.3", [KOSME, b"\xf4\x90\x80\x80", b"edited"]),
        fail_fast_chops("6.4.4", [kosme_f4, b"\x90", b"\x80\x80edited"]),
    ];
    for (g, (group, sequences)) in sequence_groups().into_iter().enumerate() {
        for (i, (valid, bytes)) in sequences.into_iter().enumerate() {
            cases.push(sequence_row(
                format!("6.{}.{}", g + 5, i + 1),
                group,
                valid,
                bytes,
            ));
        }
    }
    cases
}

#[test]
fn section6_utf8() {
    run_section("6 (UTF-8)", cases());
}

/// The table's verdicts agree with the standard library's validator.
#[test]
fn section6_table_verdicts_match_std() {
    for (group, sequences) in sequence_groups() {
        for (valid, bytes) in sequences {
            assert_eq!(
                std::str::from_utf8(&bytes).is_ok(),
                valid,
                "{group}: {}",
                bytes.escape_ascii()
            );
        }
    }
}
