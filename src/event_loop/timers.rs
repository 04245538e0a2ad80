//! Deadlines: a min-heap of (instant, target) with lazy cancellation.
//!
//! Each connection has at most one deadline at a time: the end of its handshake (or of a
//! kept-alive HTTP connection's wait for its next request), the keepalive's next check
//! while it is an open WebSocket, or the end of its closing handshake. The listeners'
//! accept retries are deadlines too, under the listeners' tokens. Setting a new deadline
//! pushes a heap entry, O(log n); the old entry is not searched for and removed but left
//! to expire, and is recognised as stale when it pops: the connection's serial no longer
//! matches (the slot was reused), or its current deadline is later. Before the loop
//! sleeps, stale entries at the front are dropped the same way
//! (`Connections::next_deadline`), so a deadline that moved (every handshake's, once the
//! connection is upgraded) never wakes the loop for nothing. So nothing ever scans all
//! connections, and the loop sleeps exactly until the earliest deadline in force.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer entry points at: a slab key and the serial of the connection that held
/// that key when the timer was set, or a listener's token (serial
/// [`TimerTarget::NOT_A_CONNECTION`]) for an accept retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerTarget {
    /// The connection's slab key (its token).
    pub key: usize,
    /// The connection's serial number, unique for the life of the server.
    pub serial: u64,
}

impl TimerTarget {
    /// The serial of a target that is not a connection (a listener's accept retry).
    /// Connections are numbered from 1.
    pub const NOT_A_CONNECTION: u64 = 0;
}

/// Pending deadlines, earliest first.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerTarget)>>,
}

impl TimerQueue {
    /// Adds a deadline.
    pub fn schedule(&mut self, at: Instant, target: TimerTarget) {
        self.heap.push(Reverse((at, target)));
    }

    /// The earliest entry, stale or not.
    pub fn peek(&self) -> Option<(Instant, TimerTarget)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    /// Removes the earliest entry.
    pub fn pop(&mut self) {
        self.heap.pop();
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerTarget> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((_, target))| target)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_due_entries_in_deadline_order() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let target = |key| TimerTarget {
            key,
            serial: key as u64,
        };
        let mut timers = TimerQueue::default();
        timers.schedule(at(30), target(3));
        timers.schedule(at(10), target(1));
        timers.schedule(at(20), target(2));
        assert_eq!(timers.peek().map(|(at, _)| at), Some(at(10)));
        assert_eq!(timers.pop_due(at(5)), None);
        assert_eq!(timers.pop_due(at(25)), Some(target(1)));
        assert_eq!(timers.pop_due(at(25)), Some(target(2)));
        assert_eq!(timers.pop_due(at(25)), None);
        assert_eq!(timers.peek(), Some((at(30), target(3))));
    }
}
