//! Messages between workers: a channel into each worker, and its waker.
//!
//! [`bus`] makes one [`Endpoint`] per worker. A worker's handler keeps its endpoint; it
//! sends to another worker with [`Endpoint::send`] (the message goes into that worker's
//! channel, and its loop is woken), and in [`Handler::on_wake`](crate::Handler::on_wake)
//! takes everything sent to it with [`Endpoint::received`]. Nothing is shared but what
//! the messages carry: a frame sent to every worker is one [`crate::SharedFrame`], its
//! bytes counted by reference.
//!
//! Channels are unbounded: a message is never refused and the sender never blocks, as a
//! loop must not. What keeps them short is that taking a message costs a worker little
//! (a broadcast is one entry in its broadcast log, whatever the number of its clients)
//! and that it takes all of them each time it wakes, the same turn.

use super::Wakers;
use std::sync::mpsc::{self, Receiver, Sender};

/// One worker's end of the bus.
pub struct Endpoint<M> {
    me: usize,
    senders: Vec<Sender<M>>,
    inbox: Receiver<M>,
    wakers: Wakers,
}

/// One endpoint for each worker of `wakers`, in order.
pub fn bus<M: Send>(wakers: &Wakers) -> Vec<Endpoint<M>> {
    let (senders, inboxes): (Vec<Sender<M>>, Vec<Receiver<M>>) =
        (0..wakers.len()).map(|_| mpsc::channel()).unzip();
    inboxes
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| Endpoint {
            me,
            senders: senders.clone(),
            inbox,
            wakers: wakers.clone(),
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

    /// Sends `message` to worker `to` and wakes it. False if that worker is gone.
    pub fn send(&self, to: usize, message: M) -> bool {
        let Some(sender) = self.senders.get(to) else {
            return false;
        };
        if sender.send(message).is_err() {
            return false;
        }
        self.wakers.wake(to);
        true
    }

    /// Sends a copy of `message` to every other worker.
    pub fn send_to_others(&self, message: &M)
    where
        M: Clone,
    {
        for to in (0..self.count()).filter(|&to| to != self.me) {
            self.send(to, message.clone());
        }
    }

    /// Everything sent to this worker that it has not taken yet.
    pub fn received(&self) -> impl Iterator<Item = M> + '_ {
        self.inbox.try_iter()
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
        let ends = bus::<u32>(&wakers);
        assert!(ends[0].send(2, 7));
        ends[1].send_to_others(&9);
        assert!(!ends[0].send(5, 1), "no worker 5");
        assert_eq!(ends[0].received().collect::<Vec<_>>(), [9]);
        assert_eq!(ends[1].received().count(), 0);
        assert_eq!(ends[2].received().collect::<Vec<_>>(), [7, 9]);
        assert_eq!(ends[2].received().count(), 0, "taken once");
    }
}
