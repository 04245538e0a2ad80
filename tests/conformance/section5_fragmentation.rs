//! Autobahn section 5: fragmentation (RFC 6455 §5.4). A fragmented message is echoed as
//! one frame; control frames may come between fragments and are answered at once;
//! control frames are never fragmented; a continuation needs a message to continue and a
//! new data frame may not start inside one. Each violation fails the connection with 1002.
//!
//! Many cases come three times, as in Autobahn: all bytes in one write, one write per
//! frame ("frame-wise chops"), and one write per byte ("octet-wise chops").

use crate::*;

const NON_CONTINUATION: &str = "non-continuation payload";
const HELLO: &str = "Hello, world!";

fn frag(opcode: u8, payload: &str) -> Out {
    frame(false, opcode, payload)
}

fn last(opcode: u8, payload: &str) -> Out {
    frame(true, opcode, payload)
}

/// The same frames sent with each of Autobahn's three choppings, as cases `ids[0..3]`.
fn three_chops(
    ids: [&str; 3],
    description: &str,
    frames: Vec<Out>,
    expected: Vec<Step>,
) -> Vec<Case> {
    [
        (Chop::All, "one chop"),
        (Chop::PerFrame, "frame-wise chops"),
        (Chop::Bytes(1), "octet-wise chops"),
    ]
    .into_iter()
    .zip(ids)
    .map(|((chop, how), id)| {
        case(
            id,
            format!("{description}; {how}"),
            steps![Step::Send(frames.clone(), chop), expected.clone()],
        )
    })
    .collect()
}

/// 5.19 and 5.20: five fragments with two Pings between, sent in three bursts with
/// pauses. With `read_pongs_early`, each Pong must arrive before the next burst is sent.
fn five_fragments_two_pings(id: &str, chop: Chop, read_pongs_early: bool) -> Case {
    let bursts = [
        vec![
            frag(OP_TEXT, "fragment1"),
            frag(OP_CONT, "fragment2"),
            ping("pongme 1!"),
        ],
        vec![
            frag(OP_CONT, "fragment3"),
            frag(OP_CONT, "fragment4"),
            ping("pongme 2!"),
        ],
        vec![last(OP_CONT, "fragment5")],
    ];
    let [first, second, third] = bursts;
    let message = "fragment1fragment2fragment3fragment4fragment5";
    let (description, steps) = if read_pongs_early {
        (
            "text in 5 fragments, 2 Pings between, frame-wise chops; each Pong before the next burst",
            steps![
                Step::Send(first, chop),
                expect_pong("pongme 1!"),
                pause(20),
                Step::Send(second, chop),
                expect_pong("pongme 2!"),
                pause(20),
                Step::Send(third, chop),
                expect_text(message),
                clean_close(),
            ],
        )
    } else {
        (
            "text in 5 fragments, 2 Pings between, sent in 3 bursts with pauses",
            steps![
                Step::Send(first, chop),
                pause(30),
                Step::Send(second, chop),
                pause(30),
                Step::Send(third, chop),
                expect_pong("pongme 1!"),
                expect_pong("pongme 2!"),
                expect_text(message),
                clean_close(),
            ],
        )
    };
    case(id, description, steps)
}

pub fn cases() -> Vec<Case> {
    let mut cases = vec![
        case(
            "5.1",
            "Ping in 2 fragments",
            steps![
                send([frag(OP_PING, "fragment1"), last(OP_CONT, "fragment2")]),
                fails_with(1002),
            ],
        ),
        case(
            "5.2",
            "Pong in 2 fragments",
            steps![
                send([frag(OP_PONG, "fragment1"), last(OP_CONT, "fragment2")]),
                fails_with(1002),
            ],
        ),
    ];
    cases.extend(three_chops(
        ["5.3", "5.4", "5.5"],
        "text in 2 fragments",
        vec![frag(OP_TEXT, "fragment1"), last(OP_CONT, "fragment2")],
        steps![expect_text("fragment1fragment2"), clean_close()],
    ));
    cases.extend(three_chops(
        ["5.6", "5.7", "5.8"],
        "text in 2 fragments, Ping with payload between",
        vec![
            frag(OP_TEXT, "fragment1"),
            ping("ping payload"),
            last(OP_CONT, "fragment2"),
        ],
        steps![
            expect_pong("ping payload"),
            expect_text("fragment1fragment2"),
            clean_close(),
        ],
    ));
    cases.extend(three_chops(
        ["5.9", "5.10", "5.11"],
        "continuation with FIN = 1 and nothing to continue, then a text message",
        vec![last(OP_CONT, NON_CONTINUATION), text(HELLO)],
        fails_with(1002),
    ));
    cases.extend(three_chops(
        ["5.12", "5.13", "5.14"],
        "continuation with FIN = 0 and nothing to continue, then a text message",
        vec![frag(OP_CONT, NON_CONTINUATION), text(HELLO)],
        fails_with(1002),
    ));
    let nothing_to_continue_then_message = |fin| {
        let frames = [
            frame(fin, OP_CONT, "fragment1"),
            frag(OP_TEXT, "fragment2"),
            last(OP_CONT, "fragment3"),
        ];
        [frames.clone(), frames].concat()
    };
    cases.extend([
        case(
            "5.15",
            "text in 2 fragments, then continuation FIN = 0 with nothing to continue, then text",
            steps![
                send([
                    frag(OP_TEXT, "fragment1"),
                    last(OP_CONT, "fragment2"),
                    frag(OP_CONT, "fragment3"),
                    last(OP_TEXT, "fragment4"),
                ]),
                expect_text("fragment1fragment2"),
                fails_with(1002),
            ],
        ),
        case(
            "5.16",
            "2x: continuation FIN = 0 with nothing to continue, then text in 2 fragments",
            steps![
                send(nothing_to_continue_then_message(false)),
                fails_with(1002)
            ],
        ),
        case(
            "5.17",
            "2x: continuation FIN = 1 with nothing to continue, then text in 2 fragments",
            steps![
                send(nothing_to_continue_then_message(true)),
                fails_with(1002)
            ],
        ),
        case(
            "5.18",
            "text in 2 fragments, both with opcode text",
            steps![
                send([frag(OP_TEXT, "fragment1"), last(OP_TEXT, "fragment2")]),
                fails_with(1002),
            ],
        ),
        five_fragments_two_pings("5.19", Chop::All, false),
        five_fragments_two_pings("5.20", Chop::PerFrame, true),
    ]);
    cases
}

#[test]
fn section5_fragmentation() {
    run_section("5 (fragmentation)", cases());
}
