use super::*;
use crate::redis::{MAX_NESTING, MAX_REPLY_BYTES};

/// A command as Redis reads it: an array of blob strings.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

fn url(s: &str) -> RedisUrl {
    s.parse().unwrap()
}

/// What a 7.0 server answers `HELLO 3`, shortened.
const HELLO_REPLY: &[u8] = b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n";

fn bytes(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

fn events<T>(link: &mut Link<T>) -> Vec<Event<T>> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

/// A link past its handshake, its output written.
fn ready_link() -> Link<u32> {
    let mut link = Link::new(&url("redis://h"));
    link.consume_output(link.output_len());
    link.feed(HELLO_REPLY);
    assert_eq!(events(&mut link), [Event::Ready]);
    link
}

fn reply(tag: u32, value: Value) -> Event<u32> {
    Event::Reply { tag, value }
}

fn subscribed(kind: Channel, channel: &str) -> Event<u32> {
    Event::Subscribed {
        kind,
        channel: channel.into(),
    }
}

fn unsubscribed(kind: Channel, channel: &str) -> Event<u32> {
    Event::Unsubscribed {
        kind,
        channel: channel.into(),
    }
}

fn message(kind: Channel, channel: &str, payload: &str) -> Event<u32> {
    Event::Message {
        kind,
        channel: channel.into(),
        payload: payload.into(),
    }
}

/// A push as Redis 7.0 sends it: `>3`, the kind, the channel, then a count or payload.
fn push(kind: &str, channel: &str, last: &str) -> Vec<u8> {
    let mut out = format!(
        ">3\r\n${}\r\n{kind}\r\n${}\r\n{channel}\r\n",
        kind.len(),
        channel.len()
    )
    .into_bytes();
    out.extend_from_slice(last.as_bytes());
    out
}

// ---- The handshake ------------------------------------------------------------------

#[test]
fn the_handshake_is_hello_3_then_select() {
    let link: Link<()> = Link::new(&url("redis://h"));
    assert_eq!(link.output(), cmd(&["HELLO", "3"]));
    assert!(!link.is_ready() && !link.is_failed());

    let link: Link<()> = Link::new(&url("redis://:pw@h/4"));
    let mut expected = cmd(&["HELLO", "3", "AUTH", "default", "pw"]);
    expected.extend(cmd(&["SELECT", "4"]));
    assert_eq!(link.output(), expected);

    let link: Link<()> = Link::with_client_name(&url("redis://ann:p%20w@h"), "loopchat-1");
    let expected = cmd(&["HELLO", "3", "AUTH", "ann", "p w", "SETNAME", "loopchat-1"]);
    assert_eq!(link.output(), expected);
    assert_eq!(
        link.pending_replies(),
        0,
        "the handshake is not the caller's"
    );
}

#[test]
fn ready_after_every_handshake_reply() {
    let mut link: Link<u32> = Link::new(&url("redis://h/2"));
    link.feed(HELLO_REPLY);
    assert_eq!(events(&mut link), []);
    assert!(!link.is_ready());
    link.feed(b"+OK\r\n");
    assert_eq!(events(&mut link), [Event::Ready]);
    assert!(link.is_ready());
}

#[test]
fn commands_before_ready_follow_the_handshake() {
    let mut link: Link<u32> = Link::new(&url("redis://h/1"));
    link.command(7, &[b"GET", b"k"]);
    let mut expected = cmd(&["HELLO", "3"]);
    expected.extend(cmd(&["SELECT", "1"]));
    expected.extend(cmd(&["GET", "k"]));
    assert_eq!(link.output(), expected);
    assert_eq!(link.pending_replies(), 1);
    // All three replies in one read.
    link.feed(&[HELLO_REPLY, b"+OK\r\n$1\r\nv\r\n"].concat());
    assert_eq!(events(&mut link), [Event::Ready, reply(7, bytes("v"))]);
    assert_eq!(link.pending_replies(), 0);
}

#[test]
fn a_wrong_password_fails_the_link() {
    let mut link: Link<u32> = Link::new(&url("redis://:wrong@h/3"));
    link.command(1, &[b"PING"]);
    link.feed(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    let error = LinkError::Refused {
        command: "HELLO",
        message: "WRONGPASS invalid username-password pair or user is disabled.".into(),
    };
    assert_eq!(events(&mut link), [Event::Failed(error)]);
    assert!(link.is_failed());
    assert!(!link.wants_write(), "a dead link sends nothing");
    // The pipelined commands' NOAUTH errors are not read; the caller's tag comes back.
    link.feed(b"-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n");
    assert_eq!(events(&mut link), []);
    assert_eq!(link.fail_pending(), [1]);
}

#[test]
fn a_server_without_resp3_fails_the_link() {
    for refusal in [
        &b"-ERR unknown command 'HELLO'\r\n"[..],
        b"-NOPROTO unsupported protocol version\r\n",
    ] {
        let mut link: Link<u32> = Link::new(&url("redis://h"));
        link.feed(refusal);
        assert!(matches!(
            &events(&mut link)[..],
            [Event::Failed(LinkError::Refused {
                command: "HELLO",
                ..
            })]
        ));
    }
}

#[test]
fn a_refused_select_fails_the_link() {
    let mut link: Link<u32> = Link::new(&url("redis://h/99"));
    link.feed(HELLO_REPLY);
    link.feed(b"-ERR DB index is out of range\r\n");
    let error = LinkError::Refused {
        command: "SELECT",
        message: "ERR DB index is out of range".into(),
    };
    assert_eq!(events(&mut link), [Event::Failed(error)]);
}

// ---- Commands and replies -----------------------------------------------------------

#[test]
fn pipelined_replies_are_matched_in_order() {
    let mut link = ready_link();
    link.command(1, &[b"SET", b"k", b"v"]);
    link.command(2, &[b"GET", b"k"]);
    link.command(3, &[b"INCR", b"k"]);
    link.command(4, &[b"GET", b"missing"]);
    assert_eq!(
        link.output(),
        [
            cmd(&["SET", "k", "v"]),
            cmd(&["GET", "k"]),
            cmd(&["INCR", "k"]),
            cmd(&["GET", "missing"])
        ]
        .concat()
    );
    assert_eq!(link.pending_replies(), 4);
    link.feed(b"+OK\r\n$1\r\nv\r\n-ERR value is not an integer or out of range\r\n_\r\n");
    assert_eq!(
        events(&mut link),
        [
            reply(1, bytes("OK")),
            reply(2, bytes("v")),
            reply(
                3,
                Value::Error("ERR value is not an integer or out of range".into())
            ),
            reply(4, Value::Nil),
        ]
    );
    assert_eq!(link.pending_replies(), 0);
    assert!(link.is_ready(), "an error reply is not a failure");
}

#[test]
fn a_command_without_arguments_is_answered_at_once() {
    let mut link = ready_link();
    link.command(1, &[]);
    assert!(!link.wants_write());
    assert!(matches!(
        &events(&mut link)[..],
        [Event::Reply {
            tag: 1,
            value: Value::Error(_)
        }]
    ));
    assert_eq!(link.pending_replies(), 0);
}

#[test]
fn output_is_consumed_as_the_kernel_takes_it() {
    let mut link = ready_link();
    assert!(!link.wants_write());
    link.command(1, &[b"PING"]);
    let all = link.output().to_vec();
    assert_eq!(link.output_len(), all.len());
    link.consume_output(5);
    assert_eq!(link.output(), &all[5..]);
    assert_eq!(link.output_len(), all.len() - 5);
    link.command(2, &[b"PING"]);
    assert_eq!(link.output(), [&all[5..], &all[..]].concat());
    link.consume_output(usize::MAX);
    assert!(!link.wants_write());
    assert_eq!(link.output(), b"");
}

// ---- Pub/sub ------------------------------------------------------------------------

#[test]
fn subscribing_takes_no_reply_slot() {
    let mut link = ready_link();
    link.subscribe(Channel::Plain, &[b"a", b"b"]);
    link.subscribe(Channel::Sharded, &[b"s"]);
    link.command(1, &[b"PING"]);
    assert_eq!(
        link.output(),
        [
            cmd(&["SUBSCRIBE", "a", "b"]),
            cmd(&["SSUBSCRIBE", "s"]),
            cmd(&["PING"])
        ]
        .concat()
    );
    assert_eq!(link.pending_replies(), 1);
    link.feed(&push("subscribe", "a", ":1\r\n"));
    link.feed(&push("subscribe", "b", ":2\r\n"));
    link.feed(&push("ssubscribe", "s", ":1\r\n"));
    link.feed(b"+PONG\r\n");
    assert_eq!(
        events(&mut link),
        [
            subscribed(Channel::Plain, "a"),
            subscribed(Channel::Plain, "b"),
            subscribed(Channel::Sharded, "s"),
            reply(1, bytes("PONG")),
        ]
    );
}

#[test]
fn messages_interleave_with_replies() {
    let mut link = ready_link();
    link.subscribe(Channel::Plain, &[b"room"]);
    link.command(1, &[b"GET", b"a"]);
    link.command(2, &[b"GET", b"b"]);
    let mut input = push("subscribe", "room", ":1\r\n");
    input.extend(push("message", "room", "$2\r\nhi\r\n"));
    input.extend(b"$1\r\nA\r\n");
    input.extend(push("smessage", "{s}x", "$0\r\n\r\n"));
    input.extend(push("message", "room", "$3\r\nbye\r\n"));
    input.extend(b"$1\r\nB\r\n");
    link.feed(&input);
    assert_eq!(
        events(&mut link),
        [
            subscribed(Channel::Plain, "room"),
            message(Channel::Plain, "room", "hi"),
            reply(1, bytes("A")),
            message(Channel::Sharded, "{s}x", ""),
            message(Channel::Plain, "room", "bye"),
            reply(2, bytes("B")),
        ]
    );
}

/// A refused subscription answers in order, with an error and no push, and the
/// replies after it still go to the right commands.
#[test]
fn a_refused_subscription_is_an_event_in_order() {
    let mut link = ready_link();
    link.command(1, &[b"PING"]);
    link.subscribe(Channel::Sharded, &[b"a", b"b"]);
    link.command(2, &[b"PING"]);
    link.feed(b"+PONG\r\n");
    link.feed(
        b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n",
    );
    link.feed(b"+PONG\r\n");
    assert_eq!(
        events(&mut link),
        [
            reply(1, bytes("PONG")),
            Event::SubscriptionRefused {
                kind: Channel::Sharded,
                channels: vec![b"a".to_vec(), b"b".to_vec()],
                error: "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
            },
            reply(2, bytes("PONG")),
        ]
    );
    assert!(link.is_ready());
}

#[test]
fn subscribing_with_no_channel_sends_nothing() {
    let mut link = ready_link();
    link.subscribe(Channel::Plain, &[]);
    assert!(!link.wants_write());
}

#[test]
fn unsubscribing_from_all_with_none_reports_nothing() {
    let mut link = ready_link();
    link.unsubscribe(Channel::Plain, &[]);
    link.unsubscribe(Channel::Sharded, &[]);
    link.command(1, &[b"PING"]);
    assert_eq!(
        link.output(),
        [
            cmd(&["UNSUBSCRIBE"]),
            cmd(&["SUNSUBSCRIBE"]),
            cmd(&["PING"])
        ]
        .concat()
    );
    // As 7.0.15 answers: a push with a null channel and a count of 0.
    link.feed(b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    link.feed(b">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n+PONG\r\n");
    assert_eq!(events(&mut link), [reply(1, bytes("PONG"))]);
}

#[test]
fn unsubscribing_from_all_reports_each_channel() {
    let mut link = ready_link();
    link.unsubscribe(Channel::Plain, &[]);
    link.command(1, &[b"PING"]);
    link.feed(&push("unsubscribe", "b", ":1\r\n"));
    link.feed(&push("unsubscribe", "a", ":0\r\n"));
    link.feed(b"+PONG\r\n");
    assert_eq!(
        events(&mut link),
        [
            unsubscribed(Channel::Plain, "b"),
            unsubscribed(Channel::Plain, "a"),
            reply(1, bytes("PONG")),
        ]
    );
}

/// `SUBSCRIBE a b` then `SUBSCRIBE b`: the first command's confirmation of `b` is not
/// taken for the second's, so if the second were refused its error would still be
/// recognised as such.
#[test]
fn confirmations_are_counted_per_command() {
    let mut link = ready_link();
    link.subscribe(Channel::Plain, &[b"a", b"b"]);
    link.subscribe(Channel::Plain, &[b"b"]);
    link.command(1, &[b"PING"]);
    link.feed(&push("subscribe", "a", ":1\r\n"));
    link.feed(&push("subscribe", "b", ":2\r\n"));
    link.feed(b"-NOPERM no\r\n");
    link.feed(b"+PONG\r\n");
    assert_eq!(
        events(&mut link),
        [
            subscribed(Channel::Plain, "a"),
            subscribed(Channel::Plain, "b"),
            Event::SubscriptionRefused {
                kind: Channel::Plain,
                channels: vec![b"b".to_vec()],
                error: "NOPERM no".into(),
            },
            reply(1, bytes("PONG")),
        ]
    );
}

/// In a cluster, a node that loses a slot drops its sharded subscriptions unasked.
#[test]
fn an_unasked_sunsubscribe_is_reported() {
    let mut link = ready_link();
    link.subscribe(Channel::Sharded, &[b"x"]);
    link.command(1, &[b"PING"]);
    link.feed(&push("sunsubscribe", "moved", ":0\r\n"));
    link.feed(&push("ssubscribe", "x", ":1\r\n"));
    link.feed(b"+PONG\r\n");
    assert_eq!(
        events(&mut link),
        [
            unsubscribed(Channel::Sharded, "moved"),
            subscribed(Channel::Sharded, "x"),
            reply(1, bytes("PONG")),
        ]
    );
}

#[test]
fn other_pushes_are_passed_on() {
    let mut link = ready_link();
    link.feed(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n");
    link.feed(b">4\r\n$8\r\npmessage\r\n$2\r\nr*\r\n$2\r\nr1\r\n$1\r\nm\r\n");
    link.feed(b">2\r\n$7\r\nmessage\r\n$1\r\nc\r\n"); // a message of the wrong shape
    link.feed(b">0\r\n");
    let pushes = events(&mut link);
    assert_eq!(pushes.len(), 4);
    assert!(
        pushes
            .iter()
            .all(|e| matches!(e, Event::Push(Value::Array(_))))
    );
    assert_eq!(
        pushes[0],
        Event::Push(Value::Array(vec![
            bytes("invalidate"),
            Value::Array(vec![bytes("key")])
        ]))
    );
}

#[test]
fn a_plain_reply_to_a_subscription_is_a_protocol_error() {
    let mut link = ready_link();
    link.subscribe(Channel::Plain, &[b"a"]);
    link.feed(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"); // RESP2's form
    assert_eq!(
        events(&mut link),
        [Event::Failed(LinkError::UnexpectedReply)]
    );
}

// ---- Splits, garbage, bounds --------------------------------------------------------

/// One conversation, fed whole, split in two at every byte, and a byte at a time: the
/// same events every time.
#[test]
fn replies_split_at_every_byte_boundary() {
    let setup = || {
        let mut link: Link<u32> = Link::new(&url("redis://:pw@h/1"));
        link.subscribe(Channel::Plain, &[b"c"]);
        link.command(1, &[b"HGETALL", b"h"]);
        link.command(2, &[b"GET", b"big"]);
        link
    };
    let mut input = HELLO_REPLY.to_vec();
    input.extend(b"+OK\r\n");
    input.extend(push("subscribe", "c", ":1\r\n"));
    input.extend(b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n,2.5\r\n");
    input.extend(push("message", "c", "$5\r\nhello\r\n"));
    input.extend(b"$300\r\n");
    input.extend([b'x'; 300]);
    input.extend(b"\r\n");

    let mut whole = setup();
    whole.feed(&input);
    let expected = events(&mut whole);
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert_eq!(expected[0], Event::Ready);

    for split in 0..=input.len() {
        let mut link = setup();
        link.feed(&input[..split]);
        link.feed(&input[split..]);
        assert_eq!(events(&mut link), expected, "split at {split}");
    }
    let mut link = setup();
    for byte in input.chunks(1) {
        link.feed(byte);
    }
    assert_eq!(events(&mut link), expected);
}

#[test]
fn garbage_fails_the_link_for_good() {
    let mut link = ready_link();
    link.command(1, &[b"GET", b"k"]);
    link.command(2, &[b"GET", b"k"]);
    link.feed(b"$1\r\nv\r\nHTTP/1.1 400 Bad Request\r\n");
    let got = events(&mut link);
    assert_eq!(got[0], reply(1, bytes("v")));
    assert!(
        matches!(got[1], Event::Failed(LinkError::Malformed(_))),
        "{got:?}"
    );
    assert_eq!(got.len(), 2);
    assert!(link.is_failed() && !link.is_ready());
    // Whatever follows is ignored, and commands are not sent but come back.
    link.feed(b"$1\r\nv\r\n");
    link.command(3, &[b"PING"]);
    link.subscribe(Channel::Plain, &[b"c"]);
    assert_eq!(events(&mut link), []);
    assert!(!link.wants_write());
    assert_eq!(link.fail_pending(), [2, 3]);
}

#[test]
fn a_reply_nobody_asked_for_fails_the_link() {
    let mut link = ready_link();
    link.feed(b"+OK\r\n");
    assert_eq!(
        events(&mut link),
        [Event::Failed(LinkError::UnexpectedReply)]
    );
}

#[test]
fn replies_are_bounded() {
    let mut link = ready_link();
    link.command(1, &[b"GET", b"huge"]);
    link.feed(format!("${}\r\n", MAX_REPLY_BYTES + 1).as_bytes());
    assert_eq!(
        events(&mut link),
        [Event::Failed(LinkError::TooLarge {
            limit: MAX_REPLY_BYTES
        })]
    );
    let mut link = ready_link();
    link.command(1, &[b"EVAL", b"..."]);
    link.feed(&b"*1\r\n".repeat(MAX_NESTING + 1));
    assert_eq!(events(&mut link), [Event::Failed(LinkError::TooDeep)]);
}

#[test]
fn fail_pending_returns_the_callers_tags_in_order() {
    let mut link = Link::new(&url("redis://h"));
    link.command(1, &[b"GET", b"a"]);
    link.subscribe(Channel::Plain, &[b"c"]);
    link.command(2, &[b"GET", b"b"]);
    link.command(3, &[b"GET", b"c"]);
    link.feed(HELLO_REPLY);
    link.feed(b"$1\r\nA\r\n");
    assert_eq!(events(&mut link), [Event::Ready, reply(1, bytes("A"))]);
    assert_eq!(link.pending_replies(), 2);
    assert_eq!(link.fail_pending(), [2, 3]);
    assert_eq!(link.pending_replies(), 0);
    assert!(link.is_failed());
    assert!(!link.wants_write());
    // Given up, the link reads nothing more (and reports no failure: the caller knows).
    link.feed(b"$1\r\nB\r\n");
    assert_eq!(events(&mut link), []);
}

#[test]
fn debug_shows_sizes_not_bytes() {
    let mut link: Link<u32> = Link::new(&url("redis://:secret@h"));
    link.command(1, &[b"SET", b"k", b"secret-value"]);
    let debug = format!("{link:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("pending_replies: 1"), "{debug}");
}
