//! Keepalive over real sockets, with short intervals: a silent peer is pinged and then
//! dropped; a peer that answers the Pings, or keeps talking, stays. (The timing rules
//! themselves are unit-tested without sleeping in `src/ws/keepalive.rs`.)
//!
//! Every time asserted here is a lower bound (nothing happens *before* its deadline), or
//! one the test measures against its own clock, so a machine that leaves the test thread
//! waiting cannot fail it: the idle timeout is ten times the Ping interval, so a peer
//! that answers may be kept waiting 4.5 s before its answer is late.

mod common;

use common::{OP_PING, OP_PONG, OP_TEXT, RawClient, client_frame};
use loopchat::ServerConfig;
use loopchat::ws::KeepaliveConfig;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PING_INTERVAL: Duration = Duration::from_millis(500);
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

fn server() -> SocketAddr {
    let config = ServerConfig {
        keepalive: Some(KeepaliveConfig {
            ping_interval: PING_INTERVAL,
            idle_timeout: IDLE_TIMEOUT,
        }),
        ..ServerConfig::default()
    };
    common::start_with(config, loopchat::apps::Echo)
}

#[test]
fn a_silent_peer_is_pinged_then_dropped() {
    let addr = server();
    let start = Instant::now();
    let mut silent = RawClient::open(addr);
    let ping = silent.read_frame();
    assert_eq!(ping.opcode, OP_PING, "{ping:?}");
    let pinged_after = start.elapsed();
    assert!(
        pinged_after >= PING_INTERVAL,
        "pinged after {pinged_after:?}"
    );
    // No Pong: the connection ends, without a Close (the peer is presumed gone), and
    // within the read timeout: a server that never drops it fails here. Any further
    // Pings before that are fine.
    loop {
        let mut byte = [0; 1];
        match silent.stream.peek(&mut byte) {
            Ok(n) if n > 0 => {
                let frame = silent.read_frame();
                assert_eq!(frame.opcode, OP_PING, "{frame:?}");
            }
            _ => break,
        }
    }
    silent.expect_eof();
    let dropped_after = start.elapsed();
    assert!(
        dropped_after >= IDLE_TIMEOUT,
        "dropped after {dropped_after:?}, before the idle timeout"
    );
}

#[test]
fn a_peer_that_answers_pings_stays() {
    let addr = server();
    let start = Instant::now();
    let mut lively = RawClient::open(addr);
    // It says nothing but Pongs, for longer than the idle timeout: a server that does not
    // count a Pong as a sign of life drops it, and the read fails.
    let mut pings = 0;
    while start.elapsed() < IDLE_TIMEOUT + 2 * PING_INTERVAL {
        let ping = lively.read_frame();
        assert_eq!(ping.opcode, OP_PING, "{ping:?}");
        lively.send(&client_frame(true, OP_PONG, &ping.payload));
        pings += 1;
    }
    assert!(pings >= 3, "only {pings} pings in {:?}", start.elapsed());
    lively.send(&client_frame(true, OP_TEXT, b"still here"));
    // A Ping may come first.
    loop {
        let frame = lively.read_frame();
        if frame.opcode != OP_PING {
            assert_eq!(
                (frame.opcode, frame.payload.as_slice()),
                (OP_TEXT, &b"still here"[..])
            );
            break;
        }
    }
}

#[test]
fn a_peer_that_keeps_talking_is_never_pinged() {
    let addr = server();
    let mut talker = RawClient::open(addr);
    // Round trips, one after another, for longer than the idle timeout (a server that
    // does not count messages as signs of life drops the talker, and a read fails).
    // The server may ping only after a Ping interval in which it heard nothing; by this
    // test's clock, a Ping read at `now` means the talker sent nothing for that long
    // before it: the send before the last (the last one may not have been read yet)
    // was at least `PING_INTERVAL` before `now`. A server that pings talkers anyway
    // (every interval, say) fails that; a test thread the machine stalls for a whole
    // interval does not.
    let start = Instant::now();
    let mut sends: [Option<Instant>; 2] = [None, None]; // the send before the last, the last
    let mut round_trips = 0;
    while start.elapsed() < IDLE_TIMEOUT + 2 * PING_INTERVAL {
        sends = [sends[1], Some(Instant::now())];
        talker.send(&client_frame(true, OP_TEXT, b"tick"));
        loop {
            let frame = talker.read_frame();
            if frame.opcode == OP_TEXT {
                assert_eq!(frame.payload, b"tick");
                break;
            }
            assert_eq!(frame.opcode, OP_PING, "{frame:?}");
            let quiet = sends[0].map_or(start.elapsed(), |before_last| before_last.elapsed());
            assert!(
                quiet >= PING_INTERVAL,
                "pinged though the talker's send before last was only {quiet:?} ago"
            );
            talker.send(&client_frame(true, OP_PONG, &frame.payload));
        }
        round_trips += 1;
        std::thread::sleep(PING_INTERVAL / 10);
    }
    assert!(round_trips >= 10, "only {round_trips} round trips");
}
