//! Autobahn section 2: Pings and Pongs (RFC 6455 §5.5.2, §5.5.3). A Ping is answered by a
//! Pong with the identical payload; a control frame's payload is at most 125 bytes, so a
//! 126-byte Ping fails the connection with 1002; an unsolicited Pong is not answered.

use crate::*;

const PONG_ME: &str = "unsolicited pong payload";

/// The ten pings of 2.10 and 2.11, and their pongs.
fn ten_pings() -> (Vec<Out>, Vec<Step>) {
    (0..10)
        .map(|i| {
            let payload = format!("payload-{i}");
            (ping(payload.as_str()), expect_pong(payload.as_str()))
        })
        .unzip()
}

pub fn cases() -> Vec<Case> {
    let (pings, pongs) = ten_pings();
    vec![
        case(
            "2.1",
            "Ping without payload",
            steps![send([ping("")]), expect_pong(""), clean_close()],
        ),
        case(
            "2.2",
            "Ping with small text payload",
            steps![
                send([ping("Hello, world!")]),
                expect_pong("Hello, world!"),
                clean_close(),
            ],
        ),
        case(
            "2.3",
            "Ping with small binary (non UTF-8) payload",
            steps![
                send([ping(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")]),
                expect_pong(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
                clean_close(),
            ],
        ),
        case(
            "2.4",
            "Ping with binary payload of 125 bytes",
            steps![
                send([ping(Data::repeat(0xfe, 125))]),
                expect_pong(Data::repeat(0xfe, 125)),
                clean_close(),
            ],
        ),
        case(
            "2.5",
            "Ping with binary payload of 126 bytes: control frame too long",
            steps![send([ping(Data::repeat(0xfe, 126))]), fails_with(1002)],
        ),
        case(
            "2.6",
            "Ping with binary payload of 125 bytes, sent in octet-wise chops",
            steps![
                send_octets([ping(Data::repeat(0xfe, 125))]),
                expect_pong(Data::repeat(0xfe, 125)),
                clean_close(),
            ],
        ),
        case(
            "2.7",
            "Unsolicited Pong without payload: no answer",
            steps![send([pong("")]), expect_silence(50), clean_close()],
        ),
        case(
            "2.8",
            "Unsolicited Pong with payload: no answer",
            steps![send([pong(PONG_ME)]), expect_silence(50), clean_close()],
        ),
        case(
            "2.9",
            "Unsolicited Pong with payload, then Ping with payload: only the Ping's Pong",
            steps![
                send([pong(PONG_ME), ping("ping payload")]),
                expect_pong("ping payload"),
                clean_close(),
            ],
        ),
        case(
            "2.10",
            "10 Pings with payload: 10 Pongs in order",
            steps![send(pings.clone()), pongs.clone(), clean_close()],
        ),
        case(
            "2.11",
            "10 Pings with payload, sent in octet-wise chops: 10 Pongs in order",
            steps![send_octets(pings), pongs, clean_close()],
        ),
    ]
}

#[test]
fn section2_pings() {
    run_section("2 (pings/pongs)", cases());
}
