//! [`Link`] against a real `redis-server`, which each test starts on a free loopback port
//! and kills when it ends. The link is driven over a plain blocking `TcpStream`, the
//! simplest loop there is: write the output, read, feed, poll. Every wait has a deadline;
//! nothing sleeps and hopes.
//!
//! The tests need `redis-server` (Redis 7, for sharded pub/sub): on Debian, the package
//! `redis-server`. Without it they fail and say so; they never skip.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::redis::Driven;
use loopchat::redis::{Channel, Event, Link, LinkError, RedisUrl, Value};

/// How long anything may take: starting a server, or any one answer. Generous, for a
/// loaded machine; a passing test takes a fraction of it.
const DEADLINE: Duration = Duration::from_secs(20);

/// A `redis-server` child process on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
    /// Holds the log file and is deleted with it.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` with `extra` arguments after the test's own: loopback only,
    /// no persistence, never port 6379.
    fn start(extra: &[&str]) -> RedisServer {
        // A port is free when the kernel hands it out for port 0; another process could
        // take it before the server binds it, so a server that exits at once is retried.
        for _ in 0..5 {
            let port = {
                let probe = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
                probe.local_addr().expect("local address").port()
            };
            assert_ne!(port, 6379);
            let dir = tempfile::tempdir().expect("a temporary directory");
            let log = dir.path().join("redis.log");
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = match command.spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                    "redis-server is not installed: these tests need it \
                     (on Debian: apt-get install redis-server)"
                ),
                Err(e) => panic!("cannot run redis-server: {e}"),
            };
            let mut server = RedisServer { child, port, dir };
            if server.wait_until_answering() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port in 5 attempts");
    }

    /// Waits until the server answers a `PING` (with `-NOAUTH` if it wants a password:
    /// it answers all the same). False if it exited, as when its port was taken.
    fn wait_until_answering(&mut self) -> bool {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream.set_read_timeout(Some(DEADLINE)).unwrap();
                let mut answer = [0; 1];
                if stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut answer).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20)); // polling for the port, bounded
        }
        panic!(
            "redis-server answered nothing in {DEADLINE:?}: {}",
            self.log()
        );
    }

    fn url(&self) -> RedisUrl {
        format!("redis://127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// The URL with a password, and a user if `user` is not empty.
    fn url_as(&self, user: &str, password: &str) -> RedisUrl {
        RedisUrl {
            username: Some(user.to_owned()).filter(|u| !u.is_empty()),
            password: Some(password.to_owned()),
            ..self.url()
        }
    }

    /// The URL with a database.
    fn url_db(&self, db: u32) -> RedisUrl {
        RedisUrl { db, ..self.url() }
    }

    fn log(&self) -> String {
        let path: PathBuf = self.dir.path().join("redis.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bytes(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

#[test]
fn hello_then_commands() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let mut redis = Driven::with_link(&url, Link::with_client_name(&url, "loopchat-test"));
    assert_eq!(redis.next_event(), Event::Ready);
    assert!(redis.link.is_ready());

    assert_eq!(redis.call(&[b"SET", b"greeting", b"hello"]), bytes("OK"));
    assert_eq!(redis.call(&[b"GET", b"greeting"]), bytes("hello"));
    assert_eq!(redis.call(&[b"GET", b"missing"]), Value::Nil);
    assert_eq!(redis.call(&[b"INCR", b"n"]), Value::Int(1));
    let error = redis.call(&[b"INCR", b"greeting"]);
    assert_eq!(
        error,
        Value::Error("ERR value is not an integer or out of range".into())
    );
    assert_eq!(redis.call(&[b"CLIENT", b"GETNAME"]), bytes("loopchat-test"));
    // RESP3 types: a map (in the server's order), a double, a set.
    redis.call(&[b"HSET", b"h", b"a", b"1", b"b", b"2"]);
    assert_eq!(
        redis.call(&[b"HGETALL", b"h"]),
        Value::Array(vec![bytes("a"), bytes("1"), bytes("b"), bytes("2")])
    );
    redis.call(&[b"ZADD", b"z", b"1.5", b"m"]);
    assert_eq!(redis.call(&[b"ZSCORE", b"z", b"m"]), Value::Double(1.5));
    redis.call(&[b"SADD", b"s", b"x"]);
    assert_eq!(
        redis.call(&[b"SMEMBERS", b"s"]),
        Value::Array(vec![bytes("x")])
    );
    assert_eq!(redis.link.pending_replies(), 0);
}

#[test]
fn a_thousand_pipelined_commands_before_ready() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let mut redis = Driven::connect(&url);
    // Queued before the handshake has even been written: sent right behind it.
    for tag in 1..=1000 {
        redis.link.command(tag, &[b"INCR", b"counter"]);
    }
    assert_eq!(redis.link.pending_replies(), 1000);
    assert_eq!(redis.next_event(), Event::Ready);
    for tag in 1..=1000 {
        let expected = Event::Reply {
            tag,
            value: Value::Int(i64::from(tag)),
        };
        assert_eq!(redis.next_event(), expected);
    }
    assert_eq!(redis.link.pending_replies(), 0);
}

#[test]
fn subscribe_on_one_link_publish_on_another() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let mut subscriber = Driven::ready(&url);
    let mut publisher = Driven::ready(&url);

    subscriber
        .link
        .subscribe(Channel::Plain, &[b"room", b"other"]);
    subscriber.link.subscribe(Channel::Sharded, &[b"{shard}1"]);
    for (kind, channel) in [
        (Channel::Plain, "room"),
        (Channel::Plain, "other"),
        (Channel::Sharded, "{shard}1"),
    ] {
        let confirmed = Event::Subscribed {
            kind,
            channel: channel.into(),
        };
        assert_eq!(subscriber.next_event(), confirmed);
    }
    assert_eq!(subscriber.link.pending_replies(), 0);

    assert_eq!(publisher.call(&[b"PUBLISH", b"room", b"hi"]), Value::Int(1));
    assert_eq!(
        publisher.call(&[b"SPUBLISH", b"{shard}1", b"sharded hi"]),
        Value::Int(1)
    );
    assert_eq!(
        subscriber.next_event(),
        Event::Message {
            kind: Channel::Plain,
            channel: b"room".to_vec(),
            payload: b"hi".to_vec()
        }
    );
    assert_eq!(
        subscriber.next_event(),
        Event::Message {
            kind: Channel::Sharded,
            channel: b"{shard}1".to_vec(),
            payload: b"sharded hi".to_vec()
        }
    );

    // A subscribed RESP3 connection still answers ordinary commands, in order.
    assert_eq!(subscriber.call(&[b"PING"]), bytes("PONG"));

    subscriber.link.unsubscribe(Channel::Plain, &[b"room"]);
    let dropped = Event::Unsubscribed {
        kind: Channel::Plain,
        channel: b"room".to_vec(),
    };
    assert_eq!(subscriber.next_event(), dropped);
    assert_eq!(publisher.call(&[b"PUBLISH", b"room", b"x"]), Value::Int(0));

    // Unsubscribing from all: one event per channel; then, with none left, nothing.
    subscriber.link.unsubscribe(Channel::Sharded, &[]);
    let dropped = Event::Unsubscribed {
        kind: Channel::Sharded,
        channel: b"{shard}1".to_vec(),
    };
    assert_eq!(subscriber.next_event(), dropped);
    subscriber.link.unsubscribe(Channel::Sharded, &[]);
    assert_eq!(subscriber.call(&[b"PING"]), bytes("PONG"));
}

/// An ACL user without channel permissions: the server refuses the whole command with an
/// in-order `-NOPERM` and no push; the link reports it and carries on.
#[test]
fn a_refused_subscription() {
    let server = RedisServer::start(&[]);
    let admin_url = server.url();
    let mut admin = Driven::ready(&admin_url);
    let acl: [&[u8]; 8] = [
        b"ACL",
        b"SETUSER",
        b"quiet",
        b"on",
        b">pw",
        b"resetchannels",
        b"+@all",
        b"~*",
    ];
    assert_eq!(admin.call(&acl), bytes("OK"));

    let mut quiet = Driven::ready(&server.url_as("quiet", "pw"));
    quiet.link.subscribe(Channel::Sharded, &[b"a", b"b"]);
    quiet.link.command(1, &[b"PING"]);
    assert!(matches!(
        quiet.next_event(),
        Event::SubscriptionRefused { kind: Channel::Sharded, channels, error }
            if channels == [b"a".to_vec(), b"b".to_vec()] && error.starts_with("NOPERM")
    ));
    assert_eq!(
        quiet.next_event(),
        Event::Reply {
            tag: 1,
            value: bytes("PONG")
        }
    );
    assert!(quiet.link.is_ready());
}

#[test]
fn a_password_protected_server() {
    let server = RedisServer::start(&["--requirepass", "s3cret"]);

    let mut right = Driven::ready(&server.url_as("", "s3cret"));
    assert_eq!(right.call(&[b"PING"]), bytes("PONG"));

    // As `default`, named.
    let mut named = Driven::ready(&server.url_as("default", "s3cret"));
    assert_eq!(named.call(&[b"PING"]), bytes("PONG"));

    let mut wrong = Driven::connect(&server.url_as("", "wrong"));
    wrong.link.command(1, &[b"SET", b"k", b"v"]);
    match wrong.next_event() {
        Event::Failed(LinkError::Refused { command, message }) => {
            assert_eq!(command, "HELLO");
            assert!(message.starts_with("WRONGPASS"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(wrong.link.fail_pending(), [1]);
    // The pipelined SET was refused with NOAUTH, not run.
    assert_eq!(right.call(&[b"EXISTS", b"k"]), Value::Int(0));

    let mut none = Driven::connect(&server.url());
    assert!(matches!(
        none.next_event(),
        Event::Failed(LinkError::Refused { command: "HELLO", message }) if message.starts_with("NOAUTH")
    ));
}

#[test]
fn select_a_database() {
    let server = RedisServer::start(&[]);
    let mut db3 = Driven::ready(&server.url_db(3));
    assert_eq!(db3.call(&[b"SET", b"k", b"in 3"]), bytes("OK"));
    let mut db0 = Driven::ready(&server.url());
    assert_eq!(db0.call(&[b"GET", b"k"]), Value::Nil);
    let mut db3_again = Driven::ready(&server.url_db(3));
    assert_eq!(db3_again.call(&[b"GET", b"k"]), bytes("in 3"));

    let mut out_of_range = Driven::connect(&server.url_db(99));
    assert_eq!(
        out_of_range.next_event(),
        Event::Failed(LinkError::Refused {
            command: "SELECT",
            message: "ERR DB index is out of range".into()
        })
    );
}

/// 8 MiB replies arrive in many reads of at most 64 KiB; each byte is walked once, so
/// they take milliseconds, not the seconds re-decoding from the start on every read
/// would take for the array.
#[test]
fn eight_mib_replies_in_pieces() {
    let server = RedisServer::start(&[]);
    let mut redis = Driven::ready(&server.url());

    let value: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(redis.call(&[b"SET", b"big", &value]), bytes("OK"));
    let reads_before = redis.reads;
    let started = Instant::now();
    let reply = redis.call(&[b"GET", b"big"]);
    let elapsed = started.elapsed();
    assert!(
        reply.as_bytes() == Some(&value[..]),
        "the 8 MiB value differs"
    );
    let reads = redis.reads - reads_before;
    assert!(reads >= 128, "{reads} reads");
    assert!(
        elapsed < Duration::from_secs(5),
        "{elapsed:?} in {reads} reads"
    );

    // And an array of 250,000 elements of 32 bytes (8 MiB of RESP).
    let element = [b'e'; 32];
    let mut rpush: Vec<&[u8]> = vec![b"RPUSH", b"list"];
    rpush.extend(std::iter::repeat_n(&element[..], 250_000));
    assert_eq!(redis.call(&rpush), Value::Int(250_000));
    let started = Instant::now();
    let reply = redis.call(&[b"LRANGE", b"list", b"0", b"-1"]);
    let elapsed = started.elapsed();
    let elements = reply.into_array().expect("an array");
    assert_eq!(elements.len(), 250_000);
    assert!(elements.iter().all(|e| e.as_bytes() == Some(&element[..])));
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}
