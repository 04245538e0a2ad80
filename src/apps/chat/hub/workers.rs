//! A worker's side of the in-process hub (`sequencer.rs`): the same calls, subscriptions
//! and events as [`RedisHub`](super::redis::RedisHub), over channels instead of a TCP
//! link. A turn's calls go to the hub together when the chat flushes; what the hub sends
//! back is taken when the loop is woken.
//!
//! It is up from the start and never goes down: the hub thread lives as long as the
//! process (a panic there aborts it, as a worker's does).

use super::HubEvent;
use super::keys;
use super::sequencer::{Batch, Delivery, Request, Sequencer};
use crate::workers::{Wakers, spawn_vital};
use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};

/// One worker's link to the hub thread, made by [`hub_for_workers`] and given to that
/// worker's chat ([`Chat::with_hub`](crate::apps::Chat::with_hub)).
pub struct HubLink {
    worker: usize,
    to_hub: Sender<Batch>,
    from_hub: Receiver<Vec<Delivery>>,
}

impl std::fmt::Debug for HubLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubLink")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

/// Starts the hub thread for the workers of `wakers`, whose chats have `default_room`,
/// and gives one link for each worker, in order.
pub fn hub_for_workers(wakers: &Wakers, default_room: &str) -> io::Result<Vec<HubLink>> {
    let (to_hub, inbox) = mpsc::channel();
    let (outboxes, links): (Vec<_>, Vec<_>) = (0..wakers.len())
        .map(|worker| {
            let (outbox, from_hub) = mpsc::channel();
            let link = HubLink {
                worker,
                to_hub: to_hub.clone(),
                from_hub,
            };
            (outbox, link)
        })
        .unzip();
    let sequencer = Sequencer::new(inbox, outboxes, wakers.clone(), default_room.to_owned());
    spawn_vital("lc-chat-hub".into(), move || sequencer.run())?;
    Ok(links)
}

/// A worker's hub.
pub struct WorkersHub<T> {
    link: HubLink,
    /// This instance's inbox channel, where private messages for its members come.
    inbox: String,
    /// The tags of the calls sent, oldest first: replies come in the same order.
    pending: VecDeque<T>,
    /// Requests made since the last flush.
    queued: Vec<Request>,
    /// Rooms whose channel this worker listens to.
    rooms: BTreeSet<String>,
    events: VecDeque<HubEvent<T>>,
    up: bool,
}

impl<T> WorkersHub<T> {
    /// The hub of the worker at `link`, for the chat instance `instance`.
    pub fn new(link: HubLink, instance: u64) -> WorkersHub<T> {
        WorkersHub {
            link,
            inbox: keys::inbox(instance),
            pending: VecDeque::new(),
            queued: Vec::new(),
            rooms: BTreeSet::new(),
            events: VecDeque::new(),
            up: false,
        }
    }

    /// Listens to the presence channel and this instance's inbox, and tells the chat it
    /// is up: it then registers its members and loads the directory, as after connecting
    /// to Redis.
    pub fn start(&mut self) {
        self.up = true;
        self.queued
            .push(Request::Subscribe(keys::PRESENCE.to_owned()));
        self.queued.push(Request::Subscribe(self.inbox.clone()));
        for room in &self.rooms {
            self.queued
                .push(Request::Subscribe(keys::room_channel(room)));
        }
        self.events.push_back(HubEvent::Up);
    }

    /// Up once started.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether there are events for the chat.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event for the chat.
    pub fn poll(&mut self) -> Option<HubEvent<T>> {
        self.events.pop_front()
    }

    /// Calls one of the chat's functions; sent with the turn's other requests.
    pub fn call(&mut self, tag: T, function: &str, key: &str, args: &[&[u8]]) {
        self.pending.push_back(tag);
        self.queued.push(Request::Call {
            function: function.to_owned(),
            key: key.to_owned(),
            args: args.iter().map(|a| a.to_vec()).collect(),
        });
    }

    /// Starts listening to a room's channel.
    pub fn subscribe_room(&mut self, room: &str) {
        if self.rooms.insert(room.to_owned()) && self.up {
            self.queued
                .push(Request::Subscribe(keys::room_channel(room)));
        }
    }

    /// Stops listening to a room's channel.
    pub fn unsubscribe_room(&mut self, room: &str) {
        if self.rooms.remove(room) && self.up {
            self.queued
                .push(Request::Unsubscribe(keys::room_channel(room)));
        }
    }

    /// Sends the requests made since the last flush, as one batch.
    pub fn flush(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let batch = Batch {
            worker: self.link.worker,
            requests: std::mem::take(&mut self.queued),
        };
        if self.link.to_hub.send(batch).is_err() {
            // Only if the hub thread is gone, which aborts the process.
            log::error!("the workers' hub is gone");
        }
    }

    /// Takes what the hub sent: replies, matched to the calls in order, and messages.
    pub fn take_deliveries(&mut self) {
        while let Ok(deliveries) = self.link.from_hub.try_recv() {
            for delivery in deliveries {
                match delivery {
                    Delivery::Reply(value) => match self.pending.pop_front() {
                        Some(tag) => self.events.push_back(HubEvent::Reply(tag, value)),
                        None => log::error!("the workers' hub answered a call never made"),
                    },
                    Delivery::Message {
                        channel,
                        payload,
                        frame,
                    } => self.message(&channel, &payload, frame),
                }
            }
        }
    }

    fn message(&mut self, channel: &str, payload: &str, frame: Option<crate::SharedFrame>) {
        if channel == keys::PRESENCE {
            self.events
                .push_back(HubEvent::Presence(payload.to_owned()));
        } else if let Some(room) = keys::room_of_channel(channel) {
            if self.rooms.contains(room) {
                self.events.push_back(HubEvent::Said {
                    room: room.to_owned(),
                    json: payload.to_owned(),
                    frame,
                });
            }
        } else if channel == self.inbox {
            self.events.push_back(HubEvent::Inbox(payload.to_owned()));
        }
    }
}
