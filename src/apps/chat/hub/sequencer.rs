//! The hub thread of a process's workers: it owns the chat's shared state (`store.rs`)
//! and is the one place where changes are ordered, as Redis is for instances.
//!
//! It sleeps on its channel. A worker's calls of one turn arrive together, as one batch
//! (the in-process form of Redis's pipelining); the thread takes every batch waiting,
//! applies each call in order, and then sends each worker, in one message and with one
//! wake-up, everything for it: the replies to its calls, in the order it made them, and
//! what was published on the channels it listens to, in the order it was published. A
//! publication reaches a worker before the reply to the call that made it, as on one
//! connection to Redis.
//!
//! A message said in a room is framed here once, as a WebSocket text frame, and that one
//! [`SharedFrame`] goes to every worker listening to the room: each hands the same bytes
//! to its clients.

use super::store::{ChatStore, Publication};
use crate::redis::Value;
use crate::workers::Wakers;
use crate::{Message, SharedFrame};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

/// The most batches (each a worker's calls of one callback) applied before what they
/// gave is sent.
const MAX_BATCHES_PER_ROUND: usize = 256;

/// What a worker asks of the hub.
#[derive(Debug)]
pub enum Request {
    /// A call of one of the chat's functions.
    Call {
        function: String,
        key: String,
        args: Vec<Vec<u8>>,
    },
    /// Listen to a channel.
    Subscribe(String),
    /// Stop listening to a channel.
    Unsubscribe(String),
}

/// A worker's requests of one turn.
#[derive(Debug)]
pub struct Batch {
    pub worker: usize,
    pub requests: Vec<Request>,
}

/// What the hub sends a worker.
#[derive(Debug)]
pub enum Delivery {
    /// The reply to the worker's oldest call not yet answered.
    Reply(Value),
    /// Something published on a channel the worker listens to.
    Message {
        channel: Arc<str>,
        payload: Arc<str>,
        /// For a room's message, the message framed once for everyone.
        frame: Option<SharedFrame>,
    },
}

/// The hub's end of the channels.
pub struct Sequencer {
    store: ChatStore,
    inbox: Receiver<Batch>,
    outboxes: Vec<Sender<Vec<Delivery>>>,
    wakers: Wakers,
    /// Channel to the workers listening to it.
    subscribers: HashMap<String, BTreeSet<usize>>,
    /// The room everyone joins on arrival, whose history is kept even when it empties.
    default_room: String,
}

impl Sequencer {
    /// A hub taking batches from `inbox` and answering worker `i` on `outboxes[i]`.
    pub fn new(
        inbox: Receiver<Batch>,
        outboxes: Vec<Sender<Vec<Delivery>>>,
        wakers: Wakers,
        default_room: String,
    ) -> Sequencer {
        Sequencer {
            store: ChatStore::new(),
            inbox,
            outboxes,
            wakers,
            subscribers: HashMap::new(),
            default_room,
        }
    }

    /// Runs until every worker has gone (their ends of the channel are dropped).
    pub fn run(mut self) {
        while let Ok(first) = self.inbox.recv() {
            let mut out: Vec<Vec<Delivery>> = self.outboxes.iter().map(|_| Vec::new()).collect();
            self.apply(first, &mut out);
            // Batches waiting are taken together, but not without end: under steady
            // input, replies must not wait for ever more calls.
            for _ in 1..MAX_BATCHES_PER_ROUND {
                let Ok(batch) = self.inbox.try_recv() else {
                    break;
                };
                self.apply(batch, &mut out);
            }
            for (worker, deliveries) in out.into_iter().enumerate() {
                if deliveries.is_empty() {
                    continue;
                }
                if let Some(outbox) = self.outboxes.get(worker)
                    && outbox.send(deliveries).is_ok()
                {
                    self.wakers.wake(worker);
                }
            }
        }
    }

    fn apply(&mut self, batch: Batch, out: &mut [Vec<Delivery>]) {
        // Milliseconds since the Unix epoch, as Redis's `TIME` gives the functions.
        let now = super::super::now_ms();
        for request in batch.requests {
            match request {
                Request::Subscribe(channel) => {
                    self.subscribers
                        .entry(channel)
                        .or_default()
                        .insert(batch.worker);
                }
                Request::Unsubscribe(channel) => {
                    let Some(workers) = self.subscribers.get_mut(&channel) else {
                        continue;
                    };
                    workers.remove(&batch.worker);
                    if !workers.is_empty() {
                        continue;
                    }
                    self.subscribers.remove(&channel);
                    // A worker listens to a room while it holds it: with none, the room
                    // is empty everywhere, and goes as an empty room of a chat alone
                    // goes (the default room stays, with its history).
                    if let Some(room) = super::keys::room_of_channel(&channel)
                        && room != self.default_room
                    {
                        self.store.forget_room(&super::keys::room_seq(room));
                    }
                }
                Request::Call {
                    function,
                    key,
                    args,
                } => {
                    let (reply, published) = self.store.call(now, &function, &key, &args);
                    for publication in published {
                        self.publish(publication, out);
                    }
                    if let Some(deliveries) = out.get_mut(batch.worker) {
                        deliveries.push(Delivery::Reply(reply));
                    }
                }
            }
        }
    }

    fn publish(&self, publication: Publication, out: &mut [Vec<Delivery>]) {
        let Some(workers) = self.subscribers.get(&publication.channel) else {
            return;
        };
        let frame = super::keys::room_of_channel(&publication.channel)
            .map(|_| SharedFrame::new(Message::Text(&publication.payload)));
        let channel: Arc<str> = publication.channel.into();
        let payload: Arc<str> = publication.payload.into();
        for &worker in workers {
            if let Some(deliveries) = out.get_mut(worker) {
                deliveries.push(Delivery::Message {
                    channel: Arc::clone(&channel),
                    payload: Arc::clone(&payload),
                    frame: frame.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::chat::hub::keys;
    use std::sync::mpsc;

    fn call(function: &str, key: &str, args: &[&str]) -> Request {
        Request::Call {
            function: function.into(),
            key: key.into(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        }
    }

    fn say(room: &str) -> Request {
        let channel = keys::room_channel(room);
        call(
            "lc_say",
            &keys::room_seq(room),
            &[
                "publish", &channel, "{\"id\":", "}", "50", "1000000", "60000",
            ],
        )
    }

    /// The history's length of a room, as `lc_history` answers worker `worker`.
    fn history_len(hub: &mut Sequencer, worker: usize, room: &str) -> usize {
        let mut out: Vec<Vec<Delivery>> = vec![Vec::new(), Vec::new()];
        let requests = vec![call("lc_history", &keys::room_seq(room), &[])];
        hub.apply(Batch { worker, requests }, &mut out);
        match out[worker].pop() {
            Some(Delivery::Reply(Value::Array(items))) => items.len() - 1,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_room_no_worker_holds_is_forgotten_but_the_default_room_is_kept() {
        let (_to_hub, inbox) = mpsc::channel();
        let (a, _) = mpsc::channel();
        let (b, _) = mpsc::channel();
        let mut hub = Sequencer::new(inbox, vec![a, b], Wakers::new(2), "lobby".into());
        let mut out: Vec<Vec<Delivery>> = vec![Vec::new(), Vec::new()];
        let requests = vec![
            Request::Subscribe(keys::room_channel("rust")),
            Request::Subscribe(keys::room_channel("lobby")),
            say("rust"),
            say("lobby"),
        ];
        hub.apply(
            Batch {
                worker: 0,
                requests,
            },
            &mut out,
        );
        // Worker 0 hears its own messages, before each reply; worker 1 listens to nothing.
        assert!(matches!(
            &out[0][0],
            Delivery::Message { frame: Some(_), .. }
        ));
        assert!(matches!(&out[0][1], Delivery::Reply(Value::Int(_))));
        assert!(out[1].is_empty());
        let requests = vec![Request::Subscribe(keys::room_channel("rust"))];
        hub.apply(
            Batch {
                worker: 1,
                requests,
            },
            &mut out,
        );
        let requests = vec![Request::Unsubscribe(keys::room_channel("rust"))];
        hub.apply(
            Batch {
                worker: 0,
                requests,
            },
            &mut out,
        );
        assert_eq!(
            history_len(&mut hub, 1, "rust"),
            1,
            "worker 1 still holds it"
        );
        let requests = vec![
            Request::Unsubscribe(keys::room_channel("rust")),
            Request::Unsubscribe(keys::room_channel("lobby")),
        ];
        hub.apply(
            Batch {
                worker: 1,
                requests,
            },
            &mut out,
        );
        hub.apply(
            Batch {
                worker: 0,
                requests: vec![Request::Unsubscribe(keys::room_channel("lobby"))],
            },
            &mut out,
        );
        assert_eq!(
            history_len(&mut hub, 0, "rust"),
            0,
            "no one holds it: forgotten"
        );
        assert_eq!(
            history_len(&mut hub, 0, "lobby"),
            1,
            "the default room keeps its history"
        );
    }
}
