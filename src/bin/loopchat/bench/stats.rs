//! Delivery accounting: which messages reached whom, once, in order, and how fast.
//!
//! Every sender numbers its messages 0, 1, 2, ...; every receiver keeps, per sender, the
//! next sequence number it expects. In the normal case (a server relays each sender's
//! messages over one TCP connection, so in order) that single number is all there is:
//! 4 bytes per (sender, receiver) pair, so 10 senders and 100,000 receivers cost 4 MB.
//! When a number is skipped, the skipped range is remembered as a gap; a later arrival
//! from inside a gap is a late (out-of-order) delivery, anything else below the expected
//! number is a duplicate. What is never received is lost:
//!
//! lost = expected deliveries − unique deliveries, where a message is expected by every
//! client connected when sending began, other than its sender, and also by its sender
//! when the server delivers to senders too (a chat does; a relay does not). A client the
//! server disconnects stays expected: what it missed is lost.
//!
//! Latency goes into an HDR histogram (nanoseconds, 3 significant digits) for messages
//! sent inside the measured window, whenever they arrive; the delivery rate counts the
//! arrivals inside the window.

use super::payload::Marker;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;

/// Who should receive a sender's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipients {
    /// Every other client (a broadcast relay, a chat room). The sender's own copy, if the
    /// server sends one, is counted apart.
    Others,
    /// The sender only (an echo server).
    Sender,
}

/// What one marker turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A first delivery of this message to this receiver.
    New {
        /// The sender's slot.
        sender: usize,
        /// The message's sequence number.
        seq: u32,
    },
    /// A message this receiver already had.
    Duplicate,
    /// A marker of another run (replayed history, another generator).
    Foreign,
    /// A marker of this run that cannot be right: an unknown sender, a sequence number
    /// not sent yet, or a receiver that should not get it.
    Unexpected,
}

/// Counters over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Messages sent, over warm-up and the measured window.
    pub sent: u64,
    /// Deliveries expected: each message times its expected recipients (sender copies not
    /// included).
    pub expected: u64,
    /// Unique deliveries to expected recipients (sender copies not included).
    pub delivered: u64,
    /// Unique copies of a sender's own messages received by the sender, in
    /// [`Recipients::Others`] mode.
    pub self_copies: u64,
    /// Deliveries of a message the receiver already had.
    pub duplicated: u64,
    /// Deliveries that arrived after a later message from the same sender.
    pub out_of_order: u64,
    /// Unique deliveries (sender copies not included) that arrived inside the measured
    /// window.
    pub measured: u64,
    /// Markers from another run.
    pub foreign: u64,
    /// Markers of this run that cannot be right (see [`Delivery::Unexpected`]).
    pub unexpected: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The largest.
    pub max: f64,
    /// How many values the figures summarise.
    pub count: u64,
}

impl Latency {
    /// The summary of a histogram of nanoseconds.
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50: us(histogram.value_at_quantile(0.5)),
            p90: us(histogram.value_at_quantile(0.9)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            count: histogram.len(),
        }
    }
}

/// A histogram of nanoseconds from 1 ns to an hour, to 3 significant digits.
pub fn nanosecond_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// The most gap ranges remembered per (sender, receiver) pair. A server that reorders
/// worse than this has its oldest gaps forgotten: messages from them that arrive later are
/// then counted as duplicates, and stay counted as lost.
const MAX_GAPS_PER_PAIR: usize = 1024;

/// The accounting for one run.
#[derive(Debug)]
pub struct Tracker {
    /// This run's id, as in the markers.
    run: u32,
    /// Who should receive each message.
    recipients: Recipients,
    /// Number of clients (receivers are numbered 0 to clients - 1).
    clients: usize,
    /// The client index of each sender slot.
    sender_client: Vec<usize>,
    /// Messages sent per sender slot.
    sent: Vec<u32>,
    /// Whether each client was connected when sending began, and so expects messages.
    expects: Vec<bool>,
    /// How many clients expect messages.
    expecting: u64,
    /// The next sequence number expected, per pair (see [`Tracker::pair`]).
    next: Vec<u32>,
    /// Missing sequence numbers below `next`, for the few pairs that have any.
    gaps: HashMap<usize, Vec<Range<u32>>>,
    /// The measured window, in nanoseconds since the epoch.
    window: Range<u64>,
    /// Latency of deliveries of messages sent inside the window.
    latency: Histogram<u64>,
    counts: Counts,
}

impl Tracker {
    /// Accounting for `run`, in which `sender_client[slot]` is the client that sends as
    /// `slot`, and `expects[client]` says which clients are connected at the start.
    pub fn new(
        run: u32,
        recipients: Recipients,
        sender_client: Vec<usize>,
        expects: Vec<bool>,
    ) -> Tracker {
        let clients = expects.len();
        let pairs = match recipients {
            Recipients::Others => sender_client.len() * clients,
            Recipients::Sender => sender_client.len(),
        };
        Tracker {
            run,
            recipients,
            clients,
            sent: vec![0; sender_client.len()],
            sender_client,
            expecting: expects.iter().filter(|&&e| e).count() as u64,
            expects,
            next: vec![0; pairs],
            gaps: HashMap::new(),
            window: 0..0,
            latency: nanosecond_histogram(),
            counts: Counts::default(),
        }
    }

    /// Sets the measured window, in nanoseconds since the epoch.
    pub fn set_window(&mut self, window: Range<u64>) {
        self.window = window;
    }

    /// The number of the next message of `sender`.
    pub fn next_seq(&self, sender: usize) -> u32 {
        self.sent[sender]
    }

    /// Records that `sender` sent its next message.
    pub fn on_sent(&mut self, sender: usize) {
        self.sent[sender] += 1;
        self.counts.sent += 1;
        self.counts.expected += match self.recipients {
            Recipients::Sender => 1,
            Recipients::Others => {
                let sender_expects = self.expects[self.sender_client[sender]];
                self.expecting - u64::from(sender_expects)
            }
        };
    }

    /// The pair index of (`sender`, `receiver`), if the receiver may get its messages.
    fn pair(&self, sender: usize, receiver: usize) -> Option<usize> {
        match self.recipients {
            Recipients::Others => Some(sender * self.clients + receiver),
            Recipients::Sender => (self.sender_client[sender] == receiver).then_some(sender),
        }
    }

    /// Accounts for one marker received by `receiver` at `at_ns`.
    pub fn record(&mut self, receiver: usize, marker: &Marker, at_ns: u64) -> Delivery {
        if marker.run != self.run {
            self.counts.foreign += 1;
            return Delivery::Foreign;
        }
        let sender = marker.sender as usize;
        let seq = marker.seq;
        let pair = match (self.sent.get(sender), self.expects.get(receiver)) {
            (Some(&sent), Some(true)) if seq < sent => self.pair(sender, receiver),
            _ => None,
        };
        let Some(pair) = pair else {
            self.counts.unexpected += 1;
            return Delivery::Unexpected;
        };

        let next = self.next[pair];
        if seq == next {
            self.next[pair] = seq + 1;
        } else if seq > next {
            // Skipped next..seq: remember the gap; those messages are late or lost.
            let gaps = self.gaps.entry(pair).or_default();
            if gaps.len() == MAX_GAPS_PER_PAIR {
                gaps.remove(0);
            }
            gaps.push(next..seq);
            self.next[pair] = seq + 1;
        } else if self.fill_gap(pair, seq) {
            self.counts.out_of_order += 1;
        } else {
            self.counts.duplicated += 1;
            return Delivery::Duplicate;
        }

        let own_copy =
            self.recipients == Recipients::Others && self.sender_client[sender] == receiver;
        if own_copy {
            self.counts.self_copies += 1;
        } else {
            self.counts.delivered += 1;
            if self.window.contains(&at_ns) {
                self.counts.measured += 1;
            }
            if self.window.contains(&marker.sent_ns) {
                self.latency
                    .saturating_record(at_ns.saturating_sub(marker.sent_ns).max(1));
            }
        }
        Delivery::New { sender, seq }
    }

    /// Removes `seq` from the pair's gaps; false if it was in none (a duplicate).
    fn fill_gap(&mut self, pair: usize, seq: u32) -> bool {
        let Some(gaps) = self.gaps.get_mut(&pair) else {
            return false;
        };
        let Some(at) = gaps.iter().position(|gap| gap.contains(&seq)) else {
            return false;
        };
        let gap = gaps[at].clone();
        match (gap.start == seq, gap.end == seq + 1) {
            (true, true) => {
                gaps.remove(at);
            }
            (true, false) => gaps[at].start = seq + 1,
            (false, true) => gaps[at].end = seq,
            (false, false) => {
                gaps[at].end = seq;
                gaps.insert(at + 1, seq + 1..gap.end);
            }
        }
        if gaps.is_empty() {
            self.gaps.remove(&pair);
        }
        true
    }

    /// Whether senders' own copies are expected: if `forced`, or if any arrived.
    pub fn self_delivery(&self, forced: bool) -> bool {
        self.recipients == Recipients::Others && (forced || self.counts.self_copies > 0)
    }

    /// Whether every expected delivery has arrived (with `self_delivery`, the senders'
    /// own copies too), so a drain can end early.
    pub fn complete(&self, self_delivery: bool) -> bool {
        self.counts.delivered >= self.counts.expected
            && (!self_delivery || self.counts.self_copies >= self.counts.sent)
    }

    /// Expected deliveries that did not arrive, the senders' own copies included when
    /// `self_delivery`.
    pub fn lost(&self, self_delivery: bool) -> u64 {
        let others = self.counts.expected.saturating_sub(self.counts.delivered);
        let own = if self_delivery {
            self.counts.sent.saturating_sub(self.counts.self_copies)
        } else {
            0
        };
        others + own
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The latency figures of messages sent in the window.
    pub fn latency(&self) -> Latency {
        Latency::of(&self.latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: u32 = 0x1234;

    fn marker(sender: u32, seq: u32, sent_ns: u64) -> Marker {
        Marker {
            run: RUN,
            sender,
            seq,
            sent_ns,
        }
    }

    /// Three clients; client 0 sends as slot 0.
    fn broadcast() -> Tracker {
        Tracker::new(RUN, Recipients::Others, vec![0], vec![true; 3])
    }

    #[test]
    fn in_order_deliveries_to_every_other_client() {
        let mut t = broadcast();
        for _ in 0..5 {
            t.on_sent(0);
        }
        assert_eq!(t.counts().expected, 10);
        for receiver in [1, 2] {
            for seq in 0..5 {
                let got = t.record(receiver, &marker(0, seq, 0), 10);
                assert_eq!(got, Delivery::New { sender: 0, seq });
            }
        }
        assert!(t.complete(t.self_delivery(false)));
        assert_eq!(t.lost(false), 0);
        let c = t.counts();
        assert_eq!((c.delivered, c.duplicated, c.out_of_order), (10, 0, 0));
    }

    #[test]
    fn loss_duplicates_and_reordering_are_told_apart() {
        let mut t = broadcast();
        for _ in 0..6 {
            t.on_sent(0);
        }
        // Receiver 1: 0, 2, 1 (late), 1 again (duplicate), 5; 3 and 4 never come.
        for seq in [0, 2, 1, 1, 5] {
            t.record(1, &marker(0, seq, 0), 0);
        }
        // Receiver 2 gets everything once.
        for seq in 0..6 {
            t.record(2, &marker(0, seq, 0), 0);
        }
        let c = t.counts();
        assert_eq!(c.delivered, 4 + 6);
        assert_eq!(c.out_of_order, 1);
        assert_eq!(c.duplicated, 1);
        assert_eq!(t.lost(false), 2);
        assert!(!t.complete(false));
        // 4 arrives late after all, from the middle of the gap 3..5.
        assert_eq!(
            t.record(1, &marker(0, 4, 0), 0),
            Delivery::New { sender: 0, seq: 4 }
        );
        assert_eq!(t.record(1, &marker(0, 4, 0), 0), Delivery::Duplicate);
        assert_eq!(t.lost(false), 1);
        assert_eq!(t.counts().out_of_order, 2);
        t.record(1, &marker(0, 3, 0), 0);
        assert_eq!(t.lost(false), 0);
        assert!(t.complete(false));
    }

    #[test]
    fn own_copies_are_counted_apart_and_detected() {
        let mut t = broadcast();
        t.on_sent(0);
        t.on_sent(0);
        for receiver in [1, 2] {
            t.record(receiver, &marker(0, 0, 0), 0);
            t.record(receiver, &marker(0, 1, 0), 0);
        }
        assert!(!t.self_delivery(false));
        assert!(t.complete(false));
        // The sender gets its first message back: the server delivers to senders too,
        // so the second copy is now expected.
        t.record(0, &marker(0, 0, 0), 0);
        assert!(t.self_delivery(false));
        assert_eq!((t.counts().self_copies, t.counts().duplicated), (1, 0));
        assert!(!t.complete(true));
        assert_eq!(t.lost(true), 1);
        t.record(0, &marker(0, 1, 0), 0);
        assert_eq!(t.lost(true), 0);
        assert_eq!(t.counts().delivered, 4);
    }

    #[test]
    fn echo_expects_the_sender_only() {
        // Two clients, each its own sender.
        let mut t = Tracker::new(RUN, Recipients::Sender, vec![0, 1], vec![true; 2]);
        t.on_sent(0);
        t.on_sent(1);
        assert_eq!(t.counts().expected, 2);
        assert_eq!(
            t.record(0, &marker(0, 0, 0), 0),
            Delivery::New { sender: 0, seq: 0 }
        );
        assert_eq!(t.record(0, &marker(1, 0, 0), 0), Delivery::Unexpected);
        assert_eq!(t.lost(false), 1);
        assert_eq!(t.counts().self_copies, 0);
    }

    #[test]
    fn foreign_and_impossible_markers() {
        let mut t = broadcast();
        t.on_sent(0);
        let other_run = Marker {
            run: RUN + 1,
            ..marker(0, 0, 0)
        };
        assert_eq!(t.record(1, &other_run, 0), Delivery::Foreign);
        assert_eq!(t.record(1, &marker(0, 1, 0), 0), Delivery::Unexpected); // not sent yet
        assert_eq!(t.record(1, &marker(5, 0, 0), 0), Delivery::Unexpected); // no such sender
        assert_eq!(t.record(9, &marker(0, 0, 0), 0), Delivery::Unexpected); // no such client
        assert_eq!((t.counts().foreign, t.counts().unexpected), (1, 3));
        assert_eq!(t.counts().delivered, 0);
    }

    #[test]
    fn clients_absent_at_the_start_expect_nothing() {
        let mut t = Tracker::new(RUN, Recipients::Others, vec![0], vec![true, true, false]);
        t.on_sent(0);
        assert_eq!(t.counts().expected, 1);
        assert_eq!(t.record(2, &marker(0, 0, 0), 0), Delivery::Unexpected);
    }

    #[test]
    fn window_selects_latency_by_send_time_and_rate_by_arrival() {
        let mut t = broadcast();
        t.set_window(1_000..2_000);
        for _ in 0..3 {
            t.on_sent(0);
        }
        t.record(1, &marker(0, 0, 500), 1_100); // sent before, arrived inside
        t.record(1, &marker(0, 1, 1_500), 1_600); // sent and arrived inside: 100 ns
        t.record(1, &marker(0, 2, 1_900), 2_400); // sent inside, arrived after: 500 ns
        let latency = t.latency();
        assert_eq!(latency.count, 2);
        assert!((latency.max - 0.5).abs() < 0.001, "{latency:?}");
        assert_eq!(t.counts().measured, 2);
    }
}
