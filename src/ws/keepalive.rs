//! Telling a live peer from a dead one: Pings after a silence, and giving up after a
//! longer one.
//!
//! A TCP connection whose peer vanished (a laptop closed, a phone out of range, a NAT
//! that forgot the mapping) looks exactly like a quiet one: nothing arrives, and nothing
//! fails until something is sent. So after `ping_interval` with nothing heard, a Ping is
//! sent; any bytes from the peer (its Pong, or anything else) count as a sign of life. If
//! `idle_timeout` passes with nothing heard at all, the peer is taken to be gone.
//!
//! Pure code: the caller passes the time in, so the behaviour is tested with made-up
//! instants and no sleeping. The caller records what it hears ([`Keepalive::heard`], a
//! single store per read) and asks what to do only when the deadline that
//! [`Keepalive::poll`] returned comes, so a quiet server does no work per connection
//! between deadlines.

use std::time::{Duration, Instant};

/// When to ping and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Silence after which a Ping is sent.
    pub ping_interval: Duration,
    /// Silence after which the peer is given up on. At least `ping_interval`; a longer
    /// value gives the peer that much time to answer the Ping.
    pub idle_timeout: Duration,
}

/// What the caller should do now, and when to ask again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing yet; ask again at this instant.
    Wait(Instant),
    /// Send a Ping now; ask again at this instant.
    Ping(Instant),
    /// The peer has been silent for the whole idle timeout: drop it.
    GiveUp,
}

/// The keepalive state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// When the peer was last heard from (or the connection opened).
    last_heard: Instant,
    /// Whether a Ping was sent since then.
    pinged: bool,
}

impl Keepalive {
    /// A connection that opened at `now`.
    pub fn new(now: Instant) -> Keepalive {
        Keepalive {
            last_heard: now,
            pinged: false,
        }
    }

    /// Records that bytes arrived from the peer at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged = false;
    }

    /// When the peer was last heard from.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// What to do at `now`. Call it at the instant it last asked for (or later); calling
    /// it earlier is harmless and just returns the same deadline.
    pub fn poll(&mut self, now: Instant, config: &KeepaliveConfig) -> KeepaliveAction {
        let idle_timeout = config.idle_timeout.max(config.ping_interval);
        let give_up_at = self.last_heard + idle_timeout;
        if now >= give_up_at {
            return KeepaliveAction::GiveUp;
        }
        if self.pinged {
            return KeepaliveAction::Wait(give_up_at);
        }
        let ping_at = self.last_heard + config.ping_interval;
        if now >= ping_at {
            self.pinged = true;
            // After the Ping, wait for the answer until the idle timeout; if the Ping went
            // out at the idle timeout itself, give the peer one more interval.
            return KeepaliveAction::Ping(give_up_at.max(now + Duration::from_millis(1)));
        }
        KeepaliveAction::Wait(ping_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KeepaliveConfig {
        KeepaliveConfig {
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_silent_peer_is_pinged_then_given_up_on() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut keepalive = Keepalive::new(t0);
        assert_eq!(
            keepalive.poll(s(0), &config()),
            KeepaliveAction::Wait(s(30))
        );
        assert_eq!(
            keepalive.poll(s(29), &config()),
            KeepaliveAction::Wait(s(30))
        );
        assert_eq!(
            keepalive.poll(s(30), &config()),
            KeepaliveAction::Ping(s(60))
        );
        // One Ping per silence, however often it is asked.
        assert_eq!(
            keepalive.poll(s(45), &config()),
            KeepaliveAction::Wait(s(60))
        );
        assert_eq!(keepalive.poll(s(60), &config()), KeepaliveAction::GiveUp);
    }

    #[test]
    fn a_peer_that_answers_stays() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut keepalive = Keepalive::new(t0);
        for round in 0..10u64 {
            let base = round * 31;
            assert_eq!(
                keepalive.poll(s(base + 30), &config()),
                KeepaliveAction::Ping(s(base + 60))
            );
            keepalive.heard(s(base + 31)); // the Pong
            assert_eq!(
                keepalive.poll(s(base + 60), &config()),
                KeepaliveAction::Wait(s(base + 61))
            );
        }
    }

    #[test]
    fn traffic_postpones_the_ping() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut keepalive = Keepalive::new(t0);
        keepalive.heard(s(20));
        assert_eq!(
            keepalive.poll(s(30), &config()),
            KeepaliveAction::Wait(s(50))
        );
        assert_eq!(
            keepalive.poll(s(50), &config()),
            KeepaliveAction::Ping(s(80))
        );
        keepalive.heard(s(79));
        assert_eq!(
            keepalive.poll(s(80), &config()),
            KeepaliveAction::Wait(s(109))
        );
    }

    #[test]
    fn a_timeout_shorter_than_the_interval_is_the_interval() {
        let t0 = Instant::now();
        let config = KeepaliveConfig {
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        };
        let mut keepalive = Keepalive::new(t0);
        assert_eq!(
            keepalive.poll(t0 + Duration::from_secs(5), &config),
            KeepaliveAction::Wait(t0 + Duration::from_secs(10))
        );
        assert_eq!(
            keepalive.poll(t0 + Duration::from_secs(10), &config),
            KeepaliveAction::GiveUp
        );
    }
}
