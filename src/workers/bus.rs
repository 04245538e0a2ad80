//! Messages between workers: a channel into each worker, and its waker.
//!
//! [`bus`] makes one [`Endpoint`] per worker. A worker's handler keeps its endpoint; it
//! sends to another worker with [`Endpoint::send`] (the message goes into that worker's
//! channel, and its loop is woken), and in [`Handler::on_wake`](crate::Handler::on_wake)
//! takes everything sent to it with [`Endpoint::received`]. Nothing is shared but what
//! the messages carry: a frame sent to every worker is one [`crate::SharedFrame`], its
//! bytes counted by reference.
//!
//! A sender never blocks, as a loop must not. What keeps a channel short is that taking a
//! message costs a worker little (a broadcast is one entry in its broadcast log, whatever
//! the number of its clients) and that it takes all of them each time it wakes, the same
//! turn. What bounds it is the limit given to [`bus`], on the summed weight of what
//! waits for one worker (its bytes, for frames): a worker so far behind is sent no more
//! until it catches up; [`Endpoint::send`] says so and the sender decides what that means
//! (the broadcast mode drops the message for that worker's clients, and logs it).

use super::Wakers;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// What waits for that worker already weighs the bus's limit.
    Full,
    /// No such worker, or it is gone.
    Gone,
}

/// One worker's end of the bus.
pub struct Endpoint<M> {
    me: usize,
    senders: Vec<Sender<(M, usize)>>,
    inbox: Receiver<(M, usize)>,
    wakers: Wakers,
    /// The summed weight of what waits in each worker's channel.
    waiting: Arc<[AtomicUsize]>,
    /// The most weight that may wait for one worker.
    limit: usize,
    /// A message's weight.
    weigh: fn(&M) -> usize,
}

/// One endpoint for each worker of `wakers`, in order. At most `limit` of weight, each
/// message weighing what `weigh` says (its bytes, say), may wait for one worker; a message
/// heavier than that alone still goes to a worker nothing waits for.
pub fn bus<M: Send>(wakers: &Wakers, limit: usize, weigh: fn(&M) -> usize) -> Vec<Endpoint<M>> {
    type Channel<M> = (Sender<(M, usize)>, Receiver<(M, usize)>);
    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..wakers.len())
        .map(|_| -> Channel<M> { mpsc::channel() })
        .unzip();
    let waiting: Arc<[AtomicUsize]> = (0..wakers.len()).map(|_| AtomicUsize::new(0)).collect();
    inboxes
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| Endpoint {
            me,
            senders: senders.clone(),
            inbox,
            wakers: wakers.clone(),
            waiting: Arc::clone(&waiting),
            limit,
            weigh,
        })
        .collect()
}

impl<M> Endpoint<M> {
    /// This worker's index.
    pub fn me(&self) -> usize {
        self.me
    }

    /// How many workers the bus joins.
    pub fn count(&self) -> usize {
        self.senders.len()
    }

    /// Sends `message` to worker `to` and wakes it; not if what waits for it already
    /// weighs the limit, or if it is gone.
    pub fn send(&self, to: usize, message: M) -> Result<(), NotSent> {
        let (Some(sender), Some(waiting)) = (self.senders.get(to), self.waiting.get(to)) else {
            return Err(NotSent::Gone);
        };
        let weight = (self.weigh)(&message);
        let before = waiting.fetch_add(weight, Ordering::AcqRel);
        if before > 0 && before + weight > self.limit {
            waiting.fetch_sub(weight, Ordering::AcqRel);
            return Err(NotSent::Full);
        }
        if sender.send((message, weight)).is_err() {
            waiting.fetch_sub(weight, Ordering::AcqRel);
            return Err(NotSent::Gone);
        }
        self.wakers.wake(to);
        Ok(())
    }

    /// Sends a copy of `message` to every other worker; how many it was not sent to,
    /// their channels being full.
    pub fn send_to_others(&self, message: &M) -> usize
    where
        M: Clone,
    {
        (0..self.count())
            .filter(|&to| to != self.me)
            .filter(|&to| self.send(to, message.clone()) == Err(NotSent::Full))
            .count()
    }

    /// Everything sent to this worker that it has not taken yet.
    pub fn received(&self) -> impl Iterator<Item = M> + '_ {
        let waiting = &self.waiting[self.me];
        self.inbox.try_iter().map(move |(message, weight)| {
            waiting.fetch_sub(weight, Ordering::AcqRel);
            message
        })
    }
}

impl<M> std::fmt::Debug for Endpoint<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("me", &self.me)
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reaches_the_worker_it_is_sent_to_and_no_other() {
        let wakers = Wakers::new(3);
        let ends = bus::<u32>(&wakers, 100, |_| 1);
        assert_eq!(ends[0].send(2, 7), Ok(()));
        assert_eq!(ends[1].send_to_others(&9), 0);
        assert_eq!(ends[0].send(5, 1), Err(NotSent::Gone), "no worker 5");
        assert_eq!(ends[0].received().collect::<Vec<_>>(), [9]);
        assert_eq!(ends[1].received().count(), 0);
        assert_eq!(ends[2].received().collect::<Vec<_>>(), [7, 9]);
        assert_eq!(ends[2].received().count(), 0, "taken once");
    }

    #[test]
    fn a_worker_so_far_behind_is_sent_no_more_until_it_takes_some() {
        let wakers = Wakers::new(2);
        let ends = bus::<Vec<u8>>(&wakers, 1000, Vec::len);
        assert_eq!(
            ends[0].send(1, vec![0; 5000]),
            Ok(()),
            "alone, heavier than the limit"
        );
        assert_eq!(ends[0].send(1, vec![0; 1]), Err(NotSent::Full));
        assert_eq!(ends[1].received().count(), 1);
        for _ in 0..10 {
            assert_eq!(ends[0].send(1, vec![0; 100]), Ok(()));
        }
        assert_eq!(ends[0].send(1, vec![0; 1]), Err(NotSent::Full));
        assert_eq!(ends[0].send_to_others(&vec![0; 1]), 1);
        assert_eq!(ends[1].received().take(1).count(), 1);
        assert_eq!(ends[0].send(1, vec![0; 100]), Ok(()), "room again");
        assert_eq!(ends[0].send(1, vec![0; 1]), Err(NotSent::Full));
        assert_eq!(ends[1].received().count(), 10);
    }
}
