//! The chat's links to Redis, which make several instances one chat (`--redis`).
//!
//! The hub owns the connections: one to a single Redis server, or one to each master of a
//! Redis Cluster. They are links of the event loop (`Context::connect`), driven by
//! [`crate::redis::Link`], the sans-IO RESP3 state machine: the hub feeds it what arrives
//! and writes what it has queued, so commands of one loop turn go out pipelined in one
//! write and replies come back matched in order. No thread, no blocking client.
//!
//! What the hub does itself: connect (with backoff after a failure), find a cluster's
//! masters, load the chat's functions (`functions.lua`) into each, keep the subscriptions
//! (the presence channel, this instance's inbox, and each room with members here), beat
//! the instance's heartbeat, and notice that Redis is gone (a link closes, or stops
//! answering). What the chat means by its calls and by what arrives is the chat's
//! business (`super::super::sharing`): the hub hands it [`HubEvent`]s.

use super::{HubEvent, keys};
use crate::admin::{LinkReport, LinkState};
use crate::redis::{Channel, Event as LinkEvent, Link, RedisUrl, Value, key_slot};
use crate::{Context, LinkEvent as LoopLinkEvent, LinkId};
use log::{info, warn};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The chat's Redis functions, loaded into every node on connecting.
const FUNCTIONS: &str = include_str!("functions.lua");

/// The first wait before reconnecting; it doubles after each failure, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long the links must have stayed up for the next failure to start the backoff
/// again from [`FIRST_BACKOFF`].
const STABLE: Duration = Duration::from_secs(10);

/// Bytes queued for a node that it has not taken: past this, Redis is too slow or gone,
/// and the link is dropped rather than buffering without bound.
const MAX_QUEUED: usize = 64 * 1024 * 1024;

/// Cluster hash slots.
const SLOTS: usize = 16384;

/// What a reply is for.
#[derive(Debug)]
enum Tag<T> {
    Chat(T),
    Functions,
    Beat,
    ClusterSlots,
}

/// One Redis server: the only one, or a cluster master.
struct Node<T> {
    addr: SocketAddr,
    link: Option<LinkId>,
    proto: Link<Tag<T>>,
    /// Handshake done and functions loaded.
    ready: bool,
    /// When something last arrived.
    last_heard: Instant,
}

/// Where the hub is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected; the next attempt at `retry_at`.
    Down,
    /// Connecting to the seed (asking a cluster for its masters), or to every master.
    Connecting,
    /// Every node is ready.
    Up,
}

/// The chat's connections to Redis.
pub struct RedisHub<T> {
    url: RedisUrl,
    seed: SocketAddr,
    instance: u64,
    /// An instance silent this long is dead; a Redis silent this long is gone.
    timeout: Duration,
    cluster: bool,
    nodes: Vec<Node<T>>,
    /// On a cluster, the node serving each slot.
    slots: Vec<usize>,
    state: State,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// When `Connecting` must have become `Up`.
    connect_deadline: Option<Instant>,
    next_beat: Option<Instant>,
    /// Rooms whose channel this instance listens to.
    rooms: BTreeSet<String>,
    events: VecDeque<HubEvent<T>>,
    /// When every node last became ready.
    up_since: Option<Instant>,
    /// A call answered MOVED, given back with the unanswered ones.
    moved: Vec<T>,
    /// Unsubscriptions sent and not yet confirmed, by channel: their confirmations are
    /// expected even if the room was taken up again meanwhile.
    unsubscribing: HashMap<Vec<u8>, usize>,
    /// Attempts to connect, the first included, for the admin port.
    attempts: u64,
    /// Times Redis was lost while up, for the admin port.
    lost: u64,
}

impl<T: std::fmt::Debug> RedisHub<T> {
    /// A hub for `url` (resolved to `seed`), for instance `instance`. Nothing happens until
    /// [`RedisHub::start`].
    pub fn new(url: RedisUrl, seed: SocketAddr, instance: u64, timeout: Duration) -> Self {
        RedisHub {
            url,
            seed,
            instance,
            timeout,
            cluster: false,
            nodes: Vec::new(),
            slots: Vec::new(),
            state: State::Down,
            backoff: FIRST_BACKOFF,
            retry_at: None,
            connect_deadline: None,
            next_beat: None,
            rooms: BTreeSet::new(),
            events: VecDeque::new(),
            up_since: None,
            moved: Vec::new(),
            unsubscribing: HashMap::new(),
            attempts: 0,
            lost: 0,
        }
    }

    /// Connects for the first time.
    pub fn start(&mut self, ctx: &mut Context<'_>) {
        self.connect(ctx);
    }

    /// Whether every node is ready: calls are answered, the chat is whole (once the chat
    /// has restored itself).
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Where the hub stands, for the admin port: one report for all its connections,
    /// since they are up, or down, together.
    pub fn report(&self) -> LinkReport {
        LinkReport {
            name: "redis".to_owned(),
            peer: self.url.to_string(),
            state: match self.state {
                State::Down => LinkState::Down,
                State::Connecting => LinkState::Connecting,
                State::Up => LinkState::Up,
            },
            nodes: self.nodes.len() as u64,
            pending_replies: self
                .nodes
                .iter()
                .map(|n| n.proto.pending_replies() as u64)
                .sum(),
            reconnects: self.attempts.saturating_sub(1),
            lost: self.lost,
        }
    }

    /// The command that publishes: PUBLISH, or SPUBLISH on a cluster.
    pub fn publish_command(&self) -> &'static str {
        if self.cluster { "spublish" } else { "publish" }
    }

    /// Whether there are events for the chat.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event for the chat.
    pub fn poll(&mut self) -> Option<HubEvent<T>> {
        self.events.pop_front()
    }

    /// Calls one of the chat's functions, on the node that serves `key`. Only while up.
    pub fn call(&mut self, tag: T, function: &str, key: &str, args: &[&[u8]]) {
        let node = self.node_for(key);
        let mut command: Vec<&[u8]> = vec![b"FCALL", function.as_bytes(), b"1", key.as_bytes()];
        command.extend_from_slice(args);
        if let Some(node) = self.nodes.get_mut(node) {
            node.proto.command(Tag::Chat(tag), &command);
        }
    }

    /// Drops the links and connects again: what came back cannot be right (a directory
    /// that failed to load, say).
    pub fn reconnect(&mut self, ctx: &mut Context<'_>, why: String) {
        self.down(ctx, why);
    }

    /// Starts listening to a room's channel (again after every reconnect, until
    /// [`RedisHub::unsubscribe_room`]).
    pub fn subscribe_room(&mut self, room: &str) {
        if self.rooms.insert(room.to_owned()) && self.is_up() {
            self.subscribe(&keys::room_channel(room));
        }
    }

    /// Stops listening to a room's channel.
    pub fn unsubscribe_room(&mut self, room: &str) {
        if self.rooms.remove(room) && self.is_up() {
            let channel = keys::room_channel(room);
            let kind = self.channel_kind();
            let node = self.node_for(&channel);
            if let Some(node) = self.nodes.get_mut(node) {
                node.proto.unsubscribe(kind, &[channel.as_bytes()]);
                *self.unsubscribing.entry(channel.into_bytes()).or_default() += 1;
            }
        }
    }

    /// Writes what the nodes have queued to their links. Call after every batch of calls.
    pub fn flush(&mut self, ctx: &mut Context<'_>) {
        let mut too_slow = false;
        for node in &mut self.nodes {
            let Some(link) = node.link else { continue };
            let output = node.proto.output();
            if output.is_empty() {
                continue;
            }
            let len = output.len();
            ctx.link_write(link, output);
            node.proto.consume_output(len);
            too_slow |= ctx.link_queued(link).unwrap_or(0) > MAX_QUEUED;
        }
        if too_slow {
            self.down(ctx, "Redis does not take what is sent to it".into());
        }
        self.set_alarm(ctx);
    }

    /// Something happened on one of the hub's links. False if the link is not the hub's.
    pub fn on_link(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        event: LoopLinkEvent<'_>,
    ) -> bool {
        let Some(index) = self.nodes.iter().position(|n| n.link == Some(link)) else {
            return false;
        };
        match event {
            LoopLinkEvent::Connected => {}
            LoopLinkEvent::Data(bytes) => {
                let node = &mut self.nodes[index];
                node.last_heard = ctx.now();
                node.proto.feed(bytes);
                self.take_link_events(ctx, index);
            }
            LoopLinkEvent::Closed(why) => {
                self.nodes[index].link = None;
                self.down(ctx, format!("{}: {why}", self.nodes[index].addr));
            }
        }
        self.flush(ctx);
        true
    }

    /// The alarm rang: reconnect, beat, or find that Redis stopped answering.
    pub fn on_alarm(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        match self.state {
            State::Down if self.retry_at.is_some_and(|at| at <= now) => self.connect(ctx),
            State::Connecting if self.connect_deadline.is_some_and(|at| at <= now) => {
                self.down(ctx, "could not connect in time".into());
            }
            State::Up => {
                let silent = self
                    .nodes
                    .iter()
                    .any(|n| n.proto.pending_replies() > 0 && now - n.last_heard > self.timeout);
                if silent {
                    self.down(ctx, "Redis stopped answering".into());
                } else if self.next_beat.is_some_and(|at| at <= now) {
                    self.beat(now);
                }
            }
            _ => {}
        }
        self.flush(ctx);
    }

    fn channel_kind(&self) -> Channel {
        if self.cluster {
            Channel::Sharded
        } else {
            Channel::Plain
        }
    }

    fn node_for(&self, key: &str) -> usize {
        if self.cluster {
            self.slots
                .get(key_slot(key.as_bytes()) as usize)
                .copied()
                .unwrap_or(0)
        } else {
            0
        }
    }

    fn subscribe(&mut self, channel: &str) {
        let kind = self.channel_kind();
        let node = self.node_for(channel);
        if let Some(node) = self.nodes.get_mut(node) {
            node.proto.subscribe(kind, &[channel.as_bytes()]);
        }
    }

    fn beat(&mut self, now: Instant) {
        let node = self.node_for(keys::DIRECTORY);
        let instance = format!("{:016x}", self.instance);
        let ttl = self.timeout.as_millis().to_string();
        let publish = self.publish_command();
        if let Some(node) = self.nodes.get_mut(node) {
            node.proto.command(
                Tag::Beat,
                &[
                    b"FCALL",
                    b"lc_beat",
                    b"1",
                    keys::DIRECTORY.as_bytes(),
                    publish.as_bytes(),
                    instance.as_bytes(),
                    ttl.as_bytes(),
                ],
            );
        }
        self.next_beat = Some(now + self.timeout / 3);
    }

    /// Starts connecting to the seed: the only server, or the cluster's entry point.
    fn connect(&mut self, ctx: &mut Context<'_>) {
        self.retry_at = None;
        self.nodes.clear();
        self.slots.clear();
        self.unsubscribing.clear();
        self.cluster = false;
        self.state = State::Connecting;
        self.attempts += 1;
        self.connect_deadline = Some(ctx.now() + self.timeout);
        if let Err(e) = self.add_node(ctx, self.seed) {
            self.down(ctx, format!("connect failed: {e}"));
        }
    }

    fn add_node(&mut self, ctx: &mut Context<'_>, addr: SocketAddr) -> std::io::Result<()> {
        let link = ctx.connect(addr)?;
        self.nodes.push(Node {
            addr,
            link: Some(link),
            proto: Link::new(&self.url),
            ready: false,
            last_heard: ctx.now(),
        });
        Ok(())
    }

    fn take_link_events(&mut self, ctx: &mut Context<'_>, index: usize) {
        while let Some(event) = self.nodes.get_mut(index).and_then(|n| n.proto.poll_event()) {
            match event {
                LinkEvent::Ready => self.node_connected(index),
                LinkEvent::Failed(why) => {
                    let addr = self.nodes[index].addr;
                    return self.down(ctx, format!("{addr}: {why}"));
                }
                LinkEvent::Reply { tag, value } => self.reply(ctx, index, tag, value),
                LinkEvent::Message {
                    channel, payload, ..
                } => self.message(channel, payload),
                // The server dropped a subscription we did not give up: on a cluster, its
                // slot moved to another master. Reconnecting finds the new layout.
                LinkEvent::Unsubscribed { channel, .. } if self.confirms_unsubscribe(&channel) => {}
                LinkEvent::Unsubscribed { channel, .. } if self.still_wanted(&channel) => {
                    let addr = self.nodes[index].addr;
                    return self.down(ctx, format!("{addr} dropped a subscription (slot moved?)"));
                }
                LinkEvent::SubscriptionRefused { error, .. } => {
                    let addr = self.nodes[index].addr;
                    return self.down(ctx, format!("{addr} refused a subscription: {error}"));
                }
                _ => {}
            }
            if self.state == State::Down {
                return;
            }
        }
    }

    /// A node finished its handshake: on the seed, ask whether it is a cluster; on every
    /// node, load the functions.
    fn node_connected(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        if index == 0 && !self.cluster && self.slots.is_empty() {
            node.proto
                .command(Tag::ClusterSlots, &[b"CLUSTER", b"SLOTS"]);
        }
        node.proto.command(
            Tag::Functions,
            &[b"FUNCTION", b"LOAD", b"REPLACE", FUNCTIONS.as_bytes()],
        );
    }

    /// Whether an unsubscription of ours is confirmed (and no longer expected).
    fn confirms_unsubscribe(&mut self, channel: &[u8]) -> bool {
        let Some(count) = self.unsubscribing.get_mut(channel) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            self.unsubscribing.remove(channel);
        }
        true
    }

    /// Whether a channel is one this instance listens to.
    fn still_wanted(&self, channel: &[u8]) -> bool {
        let Ok(channel) = std::str::from_utf8(channel) else {
            return false;
        };
        channel == keys::PRESENCE
            || channel == keys::inbox(self.instance)
            || keys::room_of_channel(channel).is_some_and(|room| self.rooms.contains(room))
    }

    fn reply(&mut self, ctx: &mut Context<'_>, index: usize, tag: Tag<T>, value: Value) {
        if let Value::Error(e) = &value
            && (e.starts_with("MOVED") || e.starts_with("ASK"))
        {
            // The cluster's slots moved: what was sent to this node is answered nowhere.
            // Start again from the seed, which finds the new layout; the calls under way
            // are given back as unanswered, this one with them.
            let addr = self.nodes[index].addr;
            if let Tag::Chat(tag) = tag {
                self.moved.push(tag);
            }
            return self.down(ctx, format!("{addr}: {e}"));
        }
        match tag {
            Tag::Chat(tag) => self.events.push_back(HubEvent::Reply(tag, value)),
            Tag::Beat => match value {
                Value::Error(e) => warn!("redis: heartbeat failed: {e}"),
                // The beat found this instance gone from the live ones: another took it for
                // dead (the loop stalled past the timeout, or Redis's clock jumped) and
                // removed its members everywhere. Connecting again registers them again.
                Value::Array(items) if items.first().and_then(Value::as_int) == Some(1) => {
                    self.down(ctx, "this instance was taken for dead".into());
                }
                _ => {}
            },
            Tag::ClusterSlots => self.cluster_slots(ctx, value),
            Tag::Functions => {
                // A seed that serves no slot (a cluster replica) need not have them.
                let serves = !self.cluster || self.slots.contains(&index);
                if let Value::Error(e) = value
                    && serves
                {
                    return self.down(ctx, format!("loading the chat's functions failed: {e}"));
                }
                self.nodes[index].ready = true;
                self.maybe_up(ctx);
            }
        }
    }

    /// The answer to CLUSTER SLOTS: an error on a single server; on a cluster, the masters
    /// and their slots, and a link to each master but the seed.
    fn cluster_slots(&mut self, ctx: &mut Context<'_>, value: Value) {
        let Value::Array(ranges) = value else {
            return; // not a cluster
        };
        let mut slots = vec![usize::MAX; SLOTS];
        for range in ranges {
            let Some(range) = range.into_array() else {
                continue;
            };
            let (Some(start), Some(end)) = (
                range.first().and_then(Value::as_int),
                range.get(1).and_then(Value::as_int),
            ) else {
                continue;
            };
            let Some(master) = range.get(2).cloned().and_then(Value::into_array) else {
                continue;
            };
            let (Some(ip), Some(port)) = (
                master.first().and_then(Value::as_str),
                master.get(1).and_then(Value::as_int),
            ) else {
                continue;
            };
            let ip = if ip.is_empty() {
                self.seed.ip().to_string()
            } else {
                ip.to_owned()
            };
            let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() else {
                continue;
            };
            let index = match self.nodes.iter().position(|n| n.addr == addr) {
                Some(i) => i,
                None if addr == self.seed => 0,
                None => {
                    if let Err(e) = self.add_node(ctx, addr) {
                        return self.down(ctx, format!("connect to {addr} failed: {e}"));
                    }
                    self.nodes.len() - 1
                }
            };
            let (start, end) = (start.max(0) as usize, (end.max(0) as usize).min(SLOTS - 1));
            if let Some(range) = slots.get_mut(start..=end) {
                range.fill(index);
            }
        }
        if slots.contains(&usize::MAX) {
            return self.down(ctx, "the cluster does not serve every slot".into());
        }
        // The seed may be a replica or not a master at all: if no slot is its, it is
        // still used for nothing but this question.
        self.cluster = true;
        self.slots = slots;
        info!("redis: a cluster of {} masters", self.nodes.len());
    }

    /// Every node ready: subscribe, beat, and tell the chat.
    fn maybe_up(&mut self, ctx: &mut Context<'_>) {
        if self.state != State::Connecting || !self.nodes.iter().all(|n| n.ready) {
            return;
        }
        self.state = State::Up;
        self.up_since = Some(ctx.now());
        self.connect_deadline = None;
        info!(
            "redis: connected to {} ({} node{})",
            self.url,
            self.nodes.len(),
            if self.nodes.len() == 1 { "" } else { "s" }
        );
        self.subscribe(keys::PRESENCE);
        self.subscribe(&keys::inbox(self.instance));
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        for room in rooms {
            self.subscribe(&keys::room_channel(&room));
        }
        // The chat's restore registers the instance; the first beat follows a third of the
        // timeout later.
        self.next_beat = Some(ctx.now() + self.timeout / 3);
        self.events.push_back(HubEvent::Up);
    }

    fn message(&mut self, channel: Vec<u8>, payload: Vec<u8>) {
        let (Ok(channel), Ok(payload)) = (String::from_utf8(channel), String::from_utf8(payload))
        else {
            return;
        };
        if channel == keys::PRESENCE {
            self.events.push_back(HubEvent::Presence(payload));
        } else if let Some(room) = keys::room_of_channel(&channel) {
            self.events.push_back(HubEvent::Said {
                room: room.to_owned(),
                json: payload,
                frame: None,
            });
        } else if channel == keys::inbox(self.instance) {
            self.events.push_back(HubEvent::Inbox(payload));
        }
    }

    /// Redis is gone: drop every link, give back the unanswered calls, and try again
    /// after the backoff.
    fn down(&mut self, ctx: &mut Context<'_>, why: String) {
        if self.state == State::Down {
            return;
        }
        let was_up = self.state == State::Up;
        self.lost += u64::from(was_up);
        // A link that stayed up a while starts the backoff again; one that fails right
        // after connecting (a cluster in the middle of moving a slot, say) keeps it growing.
        if self
            .up_since
            .take()
            .is_some_and(|since| ctx.now() - since >= STABLE)
        {
            self.backoff = FIRST_BACKOFF;
        }
        let mut unanswered = std::mem::take(&mut self.moved);
        for mut node in self.nodes.drain(..) {
            if let Some(link) = node.link.take() {
                ctx.close_link(link);
            }
            // Replies already read and not yet handed over are answers all the same: the
            // chat gets them before it hears of the split (messages and presence lines
            // are not needed: the reload after reconnecting covers them).
            while let Some(event) = node.proto.poll_event() {
                if let LinkEvent::Reply {
                    tag: Tag::Chat(tag),
                    value,
                } = event
                {
                    self.events.push_back(HubEvent::Reply(tag, value));
                }
            }
            unanswered.extend(
                node.proto
                    .fail_pending()
                    .into_iter()
                    .filter_map(|t| match t {
                        Tag::Chat(t) => Some(t),
                        _ => None,
                    }),
            );
        }
        self.state = State::Down;
        self.next_beat = None;
        self.connect_deadline = None;
        self.retry_at = Some(ctx.now() + self.backoff);
        warn!(
            "redis: {why}; {} in {} ms",
            if was_up {
                "the chat is split; reconnecting"
            } else {
                "retrying"
            },
            self.backoff.as_millis()
        );
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.events.push_back(HubEvent::Down { unanswered });
        self.set_alarm(ctx);
    }

    fn set_alarm(&self, ctx: &mut Context<'_>) {
        let next = match self.state {
            State::Down => self.retry_at,
            State::Connecting => self.connect_deadline,
            State::Up => {
                // Look for silence a little after it could first be seen.
                let check = ctx.now() + self.timeout / 3;
                Some(self.next_beat.map_or(check, |b| b.min(check)))
            }
        };
        if let Some(at) = next {
            ctx.set_alarm(at);
        }
    }
}
