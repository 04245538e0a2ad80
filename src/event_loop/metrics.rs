//! What the loop measures about its own work, turn by turn: the figures behind the admin
//! port's `/metrics`, `/stats` and `/inspect`, and behind the trace
//! (`RUST_LOG=loopchat::trace=trace`). A leaf, like `stats.rs`.
//!
//! Counting is plain arithmetic on fields the loop owns (one thread: no atomics, no
//! locks), done where the work is done: a read adds to `bytes_in`, a write to `writes`.
//! Each turn is then summed up once, at its end, as a [`Turn`]: the counters' growth over
//! the turn, and the time spent in each phase, which costs four clock reads a turn. The
//! histograms and the last [`RECENT_TURNS`] turns are kept for whoever asks.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// How many recent turns are kept for the live view.
pub const RECENT_TURNS: usize = 1024;

/// What the loop has done since it started: counters that only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Loop turns: wake-ups from `poll` (a turn runs even when `poll` returns no event,
    /// for a deadline).
    pub turns: u64,
    /// Readiness events taken from `poll`.
    pub events: u64,
    /// Connections accepted.
    pub accepts: u64,
    /// `read` calls that returned bytes.
    pub reads: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Data messages (and lines) received from clients and given to the application.
    pub messages_in: u64,
    /// Broadcasts published to the broadcast log.
    pub broadcasts: u64,
    /// Frames (messages, lines) handed to clients: queued for one, or taken from the
    /// broadcast log by one. A broadcast to a thousand clients is a thousand.
    pub deliveries: u64,
    /// `write`/`writev` calls of the flush.
    pub writes: u64,
    /// Bytes the flush wrote to clients.
    pub bytes_out: u64,
}

impl Totals {
    /// What grew from `before` to `self`.
    fn since(&self, before: &Totals) -> Totals {
        Totals {
            turns: self.turns - before.turns,
            events: self.events - before.events,
            accepts: self.accepts - before.accepts,
            reads: self.reads - before.reads,
            bytes_in: self.bytes_in - before.bytes_in,
            messages_in: self.messages_in - before.messages_in,
            broadcasts: self.broadcasts - before.broadcasts,
            deliveries: self.deliveries - before.deliveries,
            writes: self.writes - before.writes,
            bytes_out: self.bytes_out - before.bytes_out,
        }
    }
}

/// The phases of a turn, in order (see the module documentation of `event_loop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asleep in `poll`, waiting for readiness or the next deadline.
    PollWait,
    /// Acting on the events: accepting, reading, parsing, the application's handler;
    /// and reading again the connections left on the ready list.
    Dispatch,
    /// Deadlines that came due.
    Timers,
    /// Writing every connection's output and the broadcasts it has not taken.
    Flush,
}

impl Phase {
    /// Every phase, in turn order.
    pub const ALL: [Phase; 4] = [
        Phase::PollWait,
        Phase::Dispatch,
        Phase::Timers,
        Phase::Flush,
    ];

    /// The phase's name in metrics and traces.
    pub fn name(self) -> &'static str {
        match self {
            Phase::PollWait => "poll_wait",
            Phase::Dispatch => "dispatch",
            Phase::Timers => "timers",
            Phase::Flush => "flush",
        }
    }
}

/// One turn of the loop, summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Turn {
    /// The turn's number, from 1.
    pub seq: u64,
    /// What the counters grew by during the turn (`turns` is 1).
    #[serde(flatten)]
    pub counts: Totals,
    /// Time in each phase, in [`Phase::ALL`] order.
    #[serde(skip)]
    pub phases: [Duration; 4],
}

impl Turn {
    /// The time spent in `phase`.
    pub fn time_in(&self, phase: Phase) -> Duration {
        self.phases[phase as usize]
    }

    /// One line for the trace: what the loop did, and how long each phase took.
    pub fn trace_line(&self) -> String {
        let c = &self.counts;
        let micros = |phase| self.time_in(phase).as_secs_f64() * 1e6;
        format!(
            "turn {}: {} events, {} accepts, {} reads ({} B), {} messages in, {} broadcasts, \
             {} deliveries, {} writes ({} B); poll wait {:.0} µs, dispatch {:.1} µs, \
             timers {:.1} µs, flush {:.1} µs",
            self.seq,
            c.events,
            c.accepts,
            c.reads,
            c.bytes_in,
            c.messages_in,
            c.broadcasts,
            c.deliveries,
            c.writes,
            c.bytes_out,
            micros(Phase::PollWait),
            micros(Phase::Dispatch),
            micros(Phase::Timers),
            micros(Phase::Flush),
        )
    }
}

/// A histogram with fixed bucket bounds, Prometheus's way: a value is counted in the
/// first bucket whose upper bound is at least the value, or in the last, open one.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the count above the last bound. Not cumulative.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds, in increasing order.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one value.
    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// The buckets' upper bounds.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// The count of each bucket (not cumulative), the open one last.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The sum of every value counted.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Powers of two, for counts per turn or per write.
const COUNT_BOUNDS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// From a microsecond to ten seconds, for the phases of a turn.
const SECONDS_BOUNDS: &[f64] = &[
    1e-6, 4e-6, 16e-6, 64e-6, 256e-6, 1e-3, 4e-3, 16e-3, 64e-3, 256e-3, 1.0, 10.0,
];

/// Everything the loop measures about itself.
#[derive(Debug, Clone)]
pub struct LoopMetrics {
    /// The counters, kept up to date as the work is done.
    pub totals: Totals,
    /// The counters when the current turn began.
    turn_began: Totals,
    /// Readiness events per wake-up.
    pub events_per_wakeup: Histogram,
    /// Seconds per turn in each phase, in [`Phase::ALL`] order.
    pub phase_seconds: [Histogram; 4],
    /// `write` calls per turn, for the turns that wrote.
    pub writes_per_turn: Histogram,
    /// Deliveries per `write` call, for the turns that wrote: corking at work, when a
    /// write carries many frames.
    pub frames_per_write: Histogram,
    /// The last turns, oldest first.
    recent: VecDeque<Turn>,
}

impl Default for LoopMetrics {
    fn default() -> LoopMetrics {
        LoopMetrics {
            totals: Totals::default(),
            turn_began: Totals::default(),
            events_per_wakeup: Histogram::new(COUNT_BOUNDS),
            phase_seconds: std::array::from_fn(|_| Histogram::new(SECONDS_BOUNDS)),
            writes_per_turn: Histogram::new(COUNT_BOUNDS),
            frames_per_write: Histogram::new(COUNT_BOUNDS),
            recent: VecDeque::with_capacity(RECENT_TURNS),
        }
    }
}

impl LoopMetrics {
    /// Ends a turn that spent `phases` in each phase, and returns its summary.
    pub fn end_turn(&mut self, phases: [Duration; 4]) -> Turn {
        self.totals.turns += 1;
        let counts = self.totals.since(&self.turn_began);
        self.turn_began = self.totals;
        let turn = Turn {
            seq: self.totals.turns,
            counts,
            phases,
        };
        self.events_per_wakeup.observe(counts.events as f64);
        for (histogram, time) in self.phase_seconds.iter_mut().zip(phases) {
            histogram.observe(time.as_secs_f64());
        }
        if counts.writes > 0 {
            self.writes_per_turn.observe(counts.writes as f64);
            self.frames_per_write
                .observe(counts.deliveries as f64 / counts.writes as f64);
        }
        if self.recent.len() == RECENT_TURNS {
            self.recent.pop_front();
        }
        self.recent.push_back(turn);
        turn
    }

    /// The last turns kept, oldest first, from the one numbered `after + 1` on.
    pub fn turns_after(&self, after: u64) -> impl Iterator<Item = &Turn> {
        self.recent.iter().filter(move |turn| turn.seq > after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_its_bucket() {
        let mut h = Histogram::new(&[1.0, 4.0]);
        for value in [0.0, 1.0, 2.0, 4.0, 5.0, 100.0] {
            h.observe(value);
        }
        assert_eq!(h.counts(), [2, 2, 2]);
        assert_eq!((h.count(), h.sum()), (6, 112.0));
    }

    #[test]
    fn a_turn_is_what_the_counters_grew_by() {
        let mut metrics = LoopMetrics::default();
        metrics.totals.events += 3;
        metrics.totals.deliveries += 40;
        metrics.totals.writes += 4;
        let phases = [
            Duration::from_millis(2),
            Duration::from_micros(30),
            Duration::ZERO,
            Duration::from_micros(50),
        ];
        let turn = metrics.end_turn(phases);
        assert_eq!(
            (turn.seq, turn.counts.events, turn.counts.deliveries),
            (1, 3, 40)
        );
        assert_eq!(metrics.frames_per_write.sum(), 10.0);
        metrics.totals.events += 1;
        let turn = metrics.end_turn([Duration::ZERO; 4]);
        assert_eq!(
            (turn.seq, turn.counts.events, turn.counts.writes),
            (2, 1, 0)
        );
        assert_eq!(
            metrics.frames_per_write.count(),
            1,
            "a turn that wrote nothing"
        );
        assert_eq!(metrics.turns_after(1).count(), 1);
        assert!(turn.trace_line().starts_with("turn 2: 1 events, 0 accepts"));
        for _ in 0..RECENT_TURNS + 5 {
            metrics.end_turn([Duration::ZERO; 4]);
        }
        assert_eq!(metrics.turns_after(0).count(), RECENT_TURNS);
    }
}
