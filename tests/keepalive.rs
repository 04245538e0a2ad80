//! Keepalive over real sockets, with short intervals: a silent peer is pinged and then
//! dropped; a peer that answers the Pings, or keeps talking, stays. (The timing rules
//! themselves are unit-tested without sleeping in `src/ws/keepalive.rs`.)

mod common;

use common::{OP_PING, OP_PONG, OP_TEXT, RawClient, client_frame};
use loopchat::ServerConfig;
use loopchat::ws::KeepaliveConfig;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PING_INTERVAL: Duration = Duration::from_millis(200);
const IDLE_TIMEOUT: Duration = Duration::from_millis(600);

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
    // No Pong: the connection ends, without a Close (the peer is presumed gone).
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
    let mut lively = RawClient::open(addr);
    let until = Instant::now() + 4 * IDLE_TIMEOUT;
    let mut pings = 0;
    while Instant::now() < until {
        let ping = lively.read_frame();
        assert_eq!(ping.opcode, OP_PING, "{ping:?}");
        lively.send(&client_frame(true, OP_PONG, &ping.payload));
        pings += 1;
    }
    assert!(pings >= 3, "only {pings} pings in {:?}", 4 * IDLE_TIMEOUT);
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
    let until = Instant::now() + 3 * IDLE_TIMEOUT;
    while Instant::now() < until {
        talker.send(&client_frame(true, OP_TEXT, b"tick"));
        talker.expect_frame(OP_TEXT, b"tick");
        std::thread::sleep(PING_INTERVAL / 4);
    }
}
