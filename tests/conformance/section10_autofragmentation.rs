//! Autobahn section 10: auto-fragmentation. A 64 KiB text message that the client cuts
//! into 1300-byte fragments (as a client with an auto-fragment size would) is echoed as
//! one message: the server reassembles it and sends it back as one frame.

use crate::*;

pub fn cases() -> Vec<Case> {
    vec![case(
        "10.1.1",
        "text message of 65536 bytes auto-fragmented into 1300-byte fragments",
        steps![
            send([fragmented(OP_TEXT, Data::text(65536), 1300)]),
            expect_text(Data::text(65536)),
            clean_close(),
        ],
    )]
}

#[test]
fn section10_autofragmentation() {
    run_section("10 (auto-fragmentation)", cases());
}
