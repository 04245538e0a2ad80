//! The in-process hub's store (`ChatStore`, the chat's Redis functions in Rust, which the
//! workers of one process share) against the functions themselves
//! (`src/apps/chat/hub/functions.lua`) in a real `redis-server`: the same calls, in the
//! same order, must give the same replies and publish the same lines on the same channels.
//!
//! Ids of room messages start from the clock (milliseconds × 1,000 + 1, taken by Redis's
//! `TIME` and by the store's caller), so each room's ids are compared from its first;
//! everything else must be equal as it is.

mod common;

use common::redis::{Driven, RedisServer};
use loopchat::apps::chat::{ChatStore, Publication};
use loopchat::redis::{Channel, Event, RedisUrl, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

const DIRECTORY: &str = "lc:{lc}:ver";
const PRIVATE_IDS: &str = "lc:{lc}:pmid";
const PRESENCE: &str = "lc:{lc}:presence";

fn seq(room: &str) -> String {
    format!("lc:{{r:{room}}}:seq")
}

fn channel(room: &str) -> String {
    format!("lc:{{r:{room}}}:say")
}

fn inbox(instance: &str) -> String {
    format!("lc:{{lc}}:inbox:{instance}")
}

const A: &str = "000000000000000a:1:1";
const B: &str = "000000000000000b:2:2";
const C: &str = "000000000000000c:3:3";

/// The calls, as `FCALL function 1 key args...`.
fn calls() -> Vec<(&'static str, String, Vec<String>)> {
    let p = |args: &[&str]| -> Vec<String> {
        std::iter::once("publish")
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let say = |room: &str, text: &str, max_len: &str| {
        (
            "lc_say",
            seq(room),
            p(&[
                &channel(room),
                &format!("{{\"text\":\"{text}\",\"id\":"),
                "}",
                max_len,
                "1000000",
                "600000",
            ]),
        )
    };
    let d = || DIRECTORY.to_owned();
    vec![
        ("lc_arrive", d(), p(&[A])),
        ("lc_arrive", d(), p(&[B])),
        ("lc_arrive", d(), p(&[C])),
        ("lc_nick", d(), p(&[A, "Ada", "ada"])),
        ("lc_nick", d(), p(&[B, "ADA", "ada"])),
        ("lc_nick", d(), p(&["0:0:0", "x", "x"])),
        ("lc_nick", d(), p(&[A, "Ada2", "ada2"])),
        ("lc_nick", d(), p(&[B, "ada", "ada"])),
        ("lc_join", d(), p(&[A, "lobby"])),
        ("lc_join", d(), p(&[B, "rust"])),
        ("lc_join", d(), p(&[A, "rust"])),
        ("lc_join", d(), p(&[A, "lobby"])),
        ("lc_leave", d(), p(&[A, "rust"])),
        ("lc_leave", d(), p(&[A, "nowhere"])),
        ("lc_join", d(), p(&["0:0:0", "lobby"])),
        say("lobby", "one", "2"),
        say("lobby", "two", "2"),
        say("lobby", "three", "2"),
        say("rust", "hello", "50"),
        ("lc_history", seq("lobby"), vec![]),
        ("lc_history", seq("rust"), vec![]),
        ("lc_history", seq("empty"), vec![]),
        (
            "lc_pm",
            PRIVATE_IDS.to_owned(),
            p(&[
                &inbox("000000000000000a"),
                &inbox("000000000000000b"),
                A,
                B,
                "{\"id\":",
                "}",
            ]),
        ),
        (
            "lc_pm",
            PRIVATE_IDS.to_owned(),
            p(&[
                &inbox("000000000000000a"),
                &inbox("000000000000000a"),
                A,
                A,
                "{\"id\":",
                "}",
            ]),
        ),
        (
            "lc_pm",
            PRIVATE_IDS.to_owned(),
            p(&[&inbox("0"), &inbox("000000000000000a"), "0:0:0", A, "", ""]),
        ),
        // Instance b comes back with B, whose nickname A took meanwhile, and a member
        // new to the store; instance c with nobody (C departs).
        (
            "lc_restore",
            d(),
            p(&[
                "000000000000000b",
                "10000",
                "2",
                B,
                "Ada2",
                "ada2",
                "rust",
                "000000000000000b:9:9",
                "bo",
                "bo",
                "lobby,rust",
            ]),
        ),
        ("lc_restore", d(), p(&["000000000000000c", "10000", "0"])),
        ("lc_snapshot", d(), vec![]),
        ("lc_depart", d(), p(&[B])),
        ("lc_depart", d(), p(&[B])),
        ("lc_snapshot", d(), vec![]),
        ("lc_nope", d(), vec![]),
    ]
}

/// A value with every room-message id made relative to its room's first (`first`), and
/// a snapshot's pairs put in order (Redis gives a hash's fields in its own order).
fn normal(function: &str, value: Value, first: &BTreeMap<String, i64>, key: &str) -> Value {
    match (function, value) {
        ("lc_say", Value::Int(id)) => Value::Int(id - first[key] + 1),
        ("lc_history", Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match (i, v) {
                    (0, Value::Int(0)) => Value::Int(0),
                    (0, Value::Int(id)) => Value::Int(id - first[key] + 1),
                    (_, Value::Bytes(json)) => Value::Bytes(
                        relative(&String::from_utf8(json).unwrap(), first).into_bytes(),
                    ),
                    (_, v) => v,
                })
                .collect(),
        ),
        ("lc_snapshot", Value::Array(mut items)) => {
            let rest: BTreeSet<(Vec<u8>, Vec<u8>)> = items
                .split_off(1)
                .chunks(2)
                .map(|pair| {
                    let bytes = |v: &Value| v.as_bytes().unwrap().to_vec();
                    (bytes(&pair[0]), bytes(&pair[1]))
                })
                .collect();
            items.extend(
                rest.into_iter()
                    .flat_map(|(k, v)| [Value::Bytes(k), Value::Bytes(v)]),
            );
            Value::Array(items)
        }
        // Error texts are Redis's own; that it is an error is what must agree.
        (_, Value::Error(_)) => Value::Error(String::new()),
        (_, v) => v,
    }
}

/// A message's JSON with its id made relative to its room's first.
fn relative(json: &str, first: &BTreeMap<String, i64>) -> String {
    let Some((head, rest)) = json.rsplit_once("\"id\":") else {
        return json.to_owned();
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let id: i64 = digits.parse().unwrap();
    let base = first
        .values()
        .copied()
        .filter(|&f| f <= id)
        .max()
        .expect("a room's first id");
    format!("{head}\"id\":{}{}", id - base + 1, &rest[digits.len()..])
}

/// The publications Redis made, as the subscriber heard them, until `count` of them.
fn heard(subscriber: &mut Driven, count: usize) -> Vec<Publication> {
    let mut out = Vec::new();
    while out.len() < count {
        match subscriber.next_event() {
            Event::Message {
                channel, payload, ..
            } => out.push(Publication {
                channel: String::from_utf8(channel).unwrap(),
                payload: String::from_utf8(payload).unwrap(),
            }),
            Event::Subscribed { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    out
}

#[test]
fn the_store_answers_and_publishes_as_the_redis_functions_do() {
    let server = RedisServer::start();
    let url: RedisUrl = server.url().parse().unwrap();
    let functions = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/apps/chat/hub/functions.lua"),
    )
    .unwrap();
    let mut redis = Driven::ready(&url);
    let loaded = redis.call(&[b"FUNCTION", b"LOAD", b"REPLACE", functions.as_bytes()]);
    assert_eq!(loaded.as_str(), Some("loopchat"), "{loaded:?}");
    let mut subscriber = Driven::ready(&url);
    let channels: Vec<String> = [PRESENCE.to_owned(), channel("lobby"), channel("rust")]
        .into_iter()
        .chain(["0", "000000000000000a", "000000000000000b"].map(inbox))
        .collect();
    let names: Vec<&[u8]> = channels.iter().map(|c| c.as_bytes()).collect();
    subscriber.link.subscribe(Channel::Plain, &names);
    let mut confirmed = 0;
    while confirmed < channels.len() {
        if let Event::Subscribed { .. } = subscriber.next_event() {
            confirmed += 1;
        }
    }

    let mut store = ChatStore::new();
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let (mut redis_first, mut store_first) = (BTreeMap::new(), BTreeMap::new());
    for (function, key, args) in calls() {
        let mut command: Vec<&[u8]> = vec![b"FCALL", function.as_bytes(), b"1", key.as_bytes()];
        command.extend(args.iter().map(|a| a.as_bytes()));
        let from_redis = redis.call(&command);
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let (from_store, published) = store.call(now_ms(), function, &key, &args);
        if function == "lc_say" {
            redis_first
                .entry(key.clone())
                .or_insert(from_redis.as_int().unwrap());
            store_first
                .entry(key.clone())
                .or_insert(from_store.as_int().unwrap());
        }
        let (r, s) = (
            normal(function, from_redis, &redis_first, &key),
            normal(function, from_store, &store_first, &key),
        );
        assert_eq!(r, s, "{function} {key} {args:?}");
        let from_redis = heard(&mut subscriber, published.len());
        let norm = |list: Vec<Publication>, first: &BTreeMap<String, i64>| -> Vec<Publication> {
            list.into_iter()
                .map(|p| Publication {
                    payload: if p.channel.ends_with("}:say") {
                        relative(&p.payload, first)
                    } else {
                        p.payload
                    },
                    channel: p.channel,
                })
                .collect()
        };
        assert_eq!(
            norm(from_redis, &redis_first),
            norm(published, &store_first),
            "what {function} published"
        );
    }
    // And nothing more was published by Redis than by the store.
    redis.call(&[b"PUBLISH", PRESENCE.as_bytes(), b"end"]);
    let last = heard(&mut subscriber, 1);
    assert_eq!(last[0].payload, "end", "Redis published more: {last:?}");
}
