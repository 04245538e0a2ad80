//! The board where each worker's loop posts its figures for the admin port, which worker
//! 0 serves (see `crate::workers`).
//!
//! A worker posts after a turn, at most every [`POST_INTERVAL`]: a lock taken four times
//! a second, never on the path of a message. A turn that comes sooner leaves its figures
//! for the next post, which the loop wakes for (`Server::poll_timeout`), so the board is
//! never more than an interval behind a worker that did something; an idle worker posts
//! nothing, and its last figures stay true.

use crate::admin::snapshot::{Totals, WorkerFigures};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a busy worker posts its figures.
pub const POST_INTERVAL: Duration = Duration::from_millis(250);

/// Each worker's last figures, by index. Cheap to clone; shared by the workers.
#[derive(Clone, Debug)]
pub struct Board {
    slots: Arc<[Mutex<Option<Posted>>]>,
}

#[derive(Debug, Clone, Copy)]
struct Posted {
    connections: u64,
    totals: Totals,
    at: Instant,
}

impl Board {
    /// A board for `workers` workers, none posted yet.
    pub fn new(workers: usize) -> Board {
        Board {
            slots: (0..workers).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Posts worker `worker`'s figures.
    pub(crate) fn post(&self, worker: usize, connections: u64, totals: Totals, now: Instant) {
        if let Some(slot) = self.slots.get(worker) {
            // A worker that panicked while holding the lock aborted the process.
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(Posted {
                connections,
                totals,
                at: now,
            });
        }
    }

    /// Every worker's last figures, in order (zeros for one that has not posted yet).
    pub(crate) fn read(&self, now: Instant) -> Vec<WorkerFigures> {
        self.slots
            .iter()
            .enumerate()
            .map(|(worker, slot)| {
                let posted = *slot.lock().unwrap_or_else(|e| e.into_inner());
                WorkerFigures {
                    worker,
                    connections: posted.map_or(0, |p| p.connections),
                    totals: posted.map(|p| p.totals).unwrap_or_default(),
                    reported_seconds_ago: posted
                        .map_or(0.0, |p| now.saturating_duration_since(p.at).as_secs_f64()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_reads_back_what_it_posted_last() {
        let board = Board::new(3);
        let now = Instant::now();
        let totals = Totals {
            deliveries: 7,
            ..Totals::default()
        };
        board.post(1, 4, Totals::default(), now);
        board.post(1, 5, totals, now);
        board.post(9, 1, totals, now);
        let read = board.read(now + Duration::from_secs(2));
        assert_eq!(read.len(), 3);
        assert_eq!((read[1].connections, read[1].totals.deliveries), (5, 7));
        assert_eq!(read[1].reported_seconds_ago, 2.0);
        assert_eq!((read[0].connections, read[2].worker), (0, 2));
    }
}
