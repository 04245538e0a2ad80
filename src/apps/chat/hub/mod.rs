//! What makes several instances of the chat one chat: a hub that orders every change and
//! announces it to every instance.
//!
//! - [`redis`](self::redis): instances in any number of processes and machines, joined by
//!   Redis (`--redis`). The chat's shared state lives in Redis, changed by the functions
//!   of `functions.lua`.
//! - `workers`, `sequencer` and `store`: the workers of one process (`--workers N`),
//!   joined in process. A thread of its own, the sequencer, holds the same state
//!   (`store.rs`, `functions.lua` in Rust), takes the same calls over a channel, and
//!   announces to the workers over channels, waking each with its waker.
//!
//! [`Hub`] is either, behind one interface: the chat calls a function, subscribes to a
//! room, and takes [`HubEvent`]s, without knowing which it talks to. `keys.rs` names the
//! keys and channels both use.

pub mod keys;
pub mod redis;
mod sequencer;
mod store;
mod workers;

use crate::admin::LinkReport;
use crate::redis::Value;
use crate::{Context, LinkEvent, LinkId, SharedFrame};
use redis::RedisHub;
pub use store::{ChatStore, Publication};
pub use workers::{HubLink, WorkersHub, hub_for_workers};

/// What the hub tells the chat.
#[derive(Debug)]
pub enum HubEvent<T> {
    /// Every node is connected and has the functions: the chat registers its members and
    /// loads the directory and its rooms now.
    Up,
    /// Redis is gone (or stopped answering): the chat is split. These calls were sent and
    /// will never be answered.
    Down {
        /// The unanswered calls.
        unanswered: Vec<T>,
    },
    /// The answer to a call.
    Reply(T, Value),
    /// A line on the presence channel (see `functions.lua`).
    Presence(String),
    /// A message or image in a room, as the event's JSON.
    Said {
        /// The room.
        room: String,
        /// The event.
        json: String,
        /// The event framed for WebSocket clients, when the hub framed it once for
        /// every worker (the in-process hub does; Redis sends JSON).
        frame: Option<SharedFrame>,
    },
    /// A private message for a member here: "TO TAB FROM TAB json".
    Inbox(String),
}

/// The hub the chat talks to.
pub enum Hub<T> {
    /// Redis, shared with other processes. (Boxed: it is the bigger, and there is one
    /// per chat.)
    Redis(Box<RedisHub<T>>),
    /// The other workers of this process.
    Workers(WorkersHub<T>),
}

impl<T: std::fmt::Debug> Hub<T> {
    /// Connects (or, in process, says it is up).
    pub fn start(&mut self, ctx: &mut Context<'_>) {
        match self {
            Hub::Redis(hub) => hub.start(ctx),
            Hub::Workers(hub) => hub.start(),
        }
    }

    /// Whether calls are answered: the chat is whole.
    pub fn is_up(&self) -> bool {
        match self {
            Hub::Redis(hub) => hub.is_up(),
            Hub::Workers(hub) => hub.is_up(),
        }
    }

    /// The link to report on the admin port: Redis's. The in-process hub is no link to
    /// another server.
    pub fn report(&self) -> Option<LinkReport> {
        match self {
            Hub::Redis(hub) => Some(hub.report()),
            Hub::Workers(_) => None,
        }
    }

    /// The command that publishes: PUBLISH, or SPUBLISH on a Redis Cluster.
    pub fn publish_command(&self) -> &'static str {
        match self {
            Hub::Redis(hub) => hub.publish_command(),
            Hub::Workers(_) => "publish",
        }
    }

    /// Whether there are events for the chat.
    pub fn has_events(&self) -> bool {
        match self {
            Hub::Redis(hub) => hub.has_events(),
            Hub::Workers(hub) => hub.has_events(),
        }
    }

    /// The next event for the chat.
    pub fn poll(&mut self) -> Option<HubEvent<T>> {
        match self {
            Hub::Redis(hub) => hub.poll(),
            Hub::Workers(hub) => hub.poll(),
        }
    }

    /// Calls one of the chat's functions (see `functions.lua`) with `key` and `args`.
    pub fn call(&mut self, tag: T, function: &str, key: &str, args: &[&[u8]]) {
        match self {
            Hub::Redis(hub) => hub.call(tag, function, key, args),
            Hub::Workers(hub) => hub.call(tag, function, key, args),
        }
    }

    /// What came back cannot be right: Redis is connected to again. In process, where
    /// it cannot happen short of a bug, it is logged.
    pub fn reconnect(&mut self, ctx: &mut Context<'_>, why: String) {
        match self {
            Hub::Redis(hub) => hub.reconnect(ctx, why),
            Hub::Workers(_) => log::error!("the workers' hub: {why}"),
        }
    }

    /// Starts listening to a room.
    pub fn subscribe_room(&mut self, room: &str) {
        match self {
            Hub::Redis(hub) => hub.subscribe_room(room),
            Hub::Workers(hub) => hub.subscribe_room(room),
        }
    }

    /// Stops listening to a room.
    pub fn unsubscribe_room(&mut self, room: &str) {
        match self {
            Hub::Redis(hub) => hub.unsubscribe_room(room),
            Hub::Workers(hub) => hub.unsubscribe_room(room),
        }
    }

    /// Sends what was queued. Call after every batch of calls.
    pub fn flush(&mut self, ctx: &mut Context<'_>) {
        match self {
            Hub::Redis(hub) => hub.flush(ctx),
            Hub::Workers(hub) => hub.flush(),
        }
    }

    /// Something happened on a link (Redis's only).
    pub fn on_link(&mut self, ctx: &mut Context<'_>, link: LinkId, event: LinkEvent<'_>) {
        if let Hub::Redis(hub) = self {
            hub.on_link(ctx, link, event);
        }
    }

    /// The alarm rang (Redis's only).
    pub fn on_alarm(&mut self, ctx: &mut Context<'_>) {
        if let Hub::Redis(hub) = self {
            hub.on_alarm(ctx);
        }
    }

    /// The loop was woken: what the in-process hub sent is taken.
    pub fn on_wake(&mut self) {
        if let Hub::Workers(hub) = self {
            hub.take_deliveries();
        }
    }
}
