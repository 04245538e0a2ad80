//! The chat shared by several instances: what the chat sends through its hub, and what it
//! makes of what comes back. The hub is Redis (`--redis`: instances in any number of
//! processes) or the in-process hub of a process's workers (`--workers N`); the chat
//! talks to both the same way (`hub/mod.rs`).
//!
//! - Every change of the shared chat is one call of a function in `hub/functions.lua`
//!   (in process, the same function in `hub/store.rs`), which changes the shared state and
//!   announces the change atomically. The announcement comes back to every instance (this
//!   one too) on the presence channel, a room's channel, or an instance's inbox, and is
//!   applied with `updates.rs`. The caller's own answer (a nickname taken, say) comes as
//!   the call's reply. A connection's next request waits for that reply, so it gets its
//!   answers in the order it asked.
//! - On connecting (and on reconnecting after a split) the instance registers its members
//!   again (`lc_restore`), loads the directory (`lc_snapshot`) and the history of each
//!   room it holds (`lc_history`), and listens to their channels. On one connection to a
//!   node, a function's announcements reach its subscribers before its reply, and a
//!   subscription made before a call covers everything published after it: so a history
//!   loaded after subscribing, merged with the messages that arrive meanwhile by id, has
//!   no gap and no duplicate. The in-process hub keeps the same order.
//! - When Redis goes away the chat is split: everyone is told, the instance goes on alone
//!   (messages said meanwhile reach only its members and carry id 0), and the hub
//!   reconnects with backoff. The in-process hub never goes away.

use super::directory::{Directory, Entry, MemberKey};
use super::hub::redis::RedisHub;
use super::hub::{Hub, HubEvent, HubLink, WorkersHub, keys};
use super::protocol::{ErrorCode, ServerEvent};
use super::state::{HistoryEntry, Input, Room};
use super::updates::{Update, event_id};
use super::{Chat, now_ms};
use crate::admin::LinkReport;
use crate::redis::{RedisUrl, Value};
use crate::{CloseCode, ConnectionId, Context, LinkEvent, LinkId};
use log::{info, warn};
use std::net::SocketAddr;
use std::time::Duration;

/// What a call to Redis was for. A connection's calls carry its serial, so that an answer
/// for a connection that left is not given to a new one with the same id.
#[derive(Debug)]
pub enum Tag {
    /// A new connection's guest nickname.
    Arrive(ConnectionId, u64),
    /// A nickname change.
    Nick(ConnectionId, u64, String),
    /// A join of a room.
    Join(ConnectionId, u64, String),
    /// A private message, to this nickname.
    Private(ConnectionId, u64, String),
    /// Any other request of a connection, answered only if it fails.
    Done(ConnectionId, u64),
    /// A connection closed.
    Depart,
    /// The members registered again after connecting.
    Restore,
    /// The directory.
    Snapshot,
    /// A room's history.
    History(String),
}

/// The chat's side of its hub.
pub struct SharedChat {
    pub(super) hub: Hub<Tag>,
    /// The directory is loaded and the presence channel is being applied.
    synced: bool,
    /// The version of the directory applied last.
    version: u64,
    /// Whether the members here were told the chat is whole (or never told it is split).
    whole: bool,
    /// The first connection to Redis succeeded or failed: until then arrivals wait.
    settled: bool,
    /// Milliseconds an instance may be silent before it is taken for dead.
    timeout_ms: String,
    instance: u64,
}

impl SharedChat {
    /// Through Redis; not yet connected.
    pub fn new(url: RedisUrl, addr: SocketAddr, instance: u64, timeout: Duration) -> SharedChat {
        let hub = Hub::Redis(Box::new(RedisHub::new(url, addr, instance, timeout)));
        SharedChat::with(hub, instance, timeout)
    }

    /// Through the in-process hub of a process's workers. (No instance is ever taken
    /// for dead there, so the timeout only fills `lc_restore`'s argument.)
    pub fn in_process(link: HubLink, instance: u64) -> SharedChat {
        let hub = Hub::Workers(WorkersHub::new(link, instance));
        SharedChat::with(hub, instance, Duration::from_secs(10))
    }

    fn with(hub: Hub<Tag>, instance: u64, timeout: Duration) -> SharedChat {
        SharedChat {
            hub,
            synced: false,
            version: 0,
            whole: true,
            settled: false,
            timeout_ms: timeout.as_millis().to_string(),
            instance,
        }
    }

    /// Connects.
    pub fn start(&mut self, ctx: &mut Context<'_>) {
        self.hub.start(ctx);
    }

    /// Whether the first connection to Redis succeeded or failed.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// Whether calls go to Redis now.
    pub fn is_up(&self) -> bool {
        self.hub.is_up()
    }

    /// Where the link to Redis stands, for the admin port (the in-process hub is no
    /// link).
    pub fn report(&self) -> Option<LinkReport> {
        self.hub.report()
    }

    /// Writes what was queued.
    pub fn flush(&mut self, ctx: &mut Context<'_>) {
        self.hub.flush(ctx);
    }

    /// Whether the hub has something to tell.
    pub fn has_events(&self) -> bool {
        self.hub.has_events()
    }

    /// Something happened on a link.
    pub fn on_link(&mut self, ctx: &mut Context<'_>, link: LinkId, event: LinkEvent<'_>) {
        self.hub.on_link(ctx, link, event);
    }

    /// The alarm rang.
    pub fn on_alarm(&mut self, ctx: &mut Context<'_>) {
        self.hub.on_alarm(ctx);
    }

    /// The loop was woken: the in-process hub may have sent something.
    pub fn on_wake(&mut self) {
        self.hub.on_wake();
    }
}

impl Chat {
    /// Calls a function in Redis.
    pub(super) fn call(&mut self, tag: Tag, function: &str, key: &str, args: &[&[u8]]) {
        if let Some(sharing) = &mut self.sharing {
            let publish = sharing.hub.publish_command();
            let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
            // The directory's functions announce what they change: they take the
            // publish command first.
            if key == keys::DIRECTORY {
                all.push(publish.as_bytes());
            }
            all.extend_from_slice(args);
            sharing.hub.call(tag, function, key, &all);
        }
    }

    /// Calls a function for a connection's request: its next request waits for the reply.
    pub(super) fn call_for(
        &mut self,
        conn: ConnectionId,
        tag: Tag,
        function: &str,
        key: &str,
        args: &[&[u8]],
    ) {
        self.call(tag, function, key, args);
        if let Some(local) = self.locals.get_mut(&conn) {
            local.busy = true;
        }
    }

    /// A connection's serial.
    pub(super) fn serial(&self, conn: ConnectionId) -> u64 {
        self.locals.get(&conn).map_or(0, |l| l.serial)
    }

    /// PUBLISH, or SPUBLISH on a cluster.
    pub(super) fn publish_command(&self) -> &'static str {
        self.sharing
            .as_ref()
            .map_or("publish", |r| r.hub.publish_command())
    }

    /// Makes sure this instance holds a room: listens to its channel and loads its history.
    pub(super) fn hold_room(&mut self, room: &str) {
        if self.rooms.contains_key(room) {
            return;
        }
        self.rooms.insert(room.to_owned(), Room::loading());
        self.load_room(room);
    }

    fn load_room(&mut self, room: &str) {
        if let Some(sharing) = &mut self.sharing {
            sharing.hub.subscribe_room(room);
        }
        self.call(
            Tag::History(room.to_owned()),
            "lc_history",
            &keys::room_seq(room),
            &[],
        );
    }

    /// Acts on everything the hub has to tell.
    pub(super) fn take_hub_events(&mut self, ctx: &mut Context<'_>) {
        while let Some(event) = self.sharing.as_mut().and_then(|r| r.hub.poll()) {
            match event {
                HubEvent::Up => {
                    self.hub_up();
                    self.settle(ctx);
                }
                HubEvent::Down { unanswered } => {
                    self.hub_down(ctx, unanswered);
                    self.settle(ctx);
                }
                HubEvent::Reply(tag, value) => self.reply(ctx, tag, value),
                HubEvent::Presence(line) => self.presence(ctx, &line),
                HubEvent::Said { room, json, frame } => match serde_json::from_str(&json) {
                    Ok(event) => self.apply(
                        ctx,
                        super::updates::Update::Said {
                            room,
                            event,
                            json: Some(json),
                            frame,
                        },
                    ),
                    Err(e) => warn!("redis: a message in #{room} is not an event: {e}"),
                },
                HubEvent::Inbox(payload) => self.inbox(ctx, &payload),
            }
        }
    }

    /// The first connection to Redis succeeded or failed: the connections that arrived
    /// meanwhile go on arriving.
    fn settle(&mut self, ctx: &mut Context<'_>) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        if std::mem::replace(&mut sharing.settled, true) {
            return;
        }
        let waiting: Vec<ConnectionId> = self
            .locals
            .iter()
            .filter(|(_, l)| matches!(l.waiting.front(), Some(Input::Arrive)))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in waiting {
            self.done(ctx, conn);
        }
    }

    /// Connected: register the members here again, load the directory and the rooms.
    fn hub_up(&mut self) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        sharing.synced = false;
        let instance = format!("{:016x}", sharing.instance);
        let ttl = sharing.timeout_ms.clone();
        let members: Vec<(String, Entry)> = self
            .directory
            .of_instance(self.instance)
            .into_iter()
            .filter(|m| self.local(*m).is_some())
            .filter_map(|m| Some((m.to_string(), self.directory.get(m)?.clone())))
            .collect();
        let count = members.len().to_string();
        // lc_restore wants member, nick, lowercased nick, rooms for each.
        let mut fields: Vec<String> = Vec::with_capacity(members.len() * 4);
        for (member, entry) in members {
            let lower = entry.nick.to_lowercase();
            fields.extend([member, entry.nick, lower, entry.rooms.join(",")]);
        }
        let mut args: Vec<&[u8]> = vec![instance.as_bytes(), ttl.as_bytes(), count.as_bytes()];
        args.extend(fields.iter().map(|f| f.as_bytes()));
        self.call(Tag::Restore, "lc_restore", keys::DIRECTORY, &args);
        self.call(Tag::Snapshot, "lc_snapshot", keys::DIRECTORY, &[]);
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            if let Some(state) = self.rooms.get_mut(&room) {
                state.loading.get_or_insert_with(Vec::new);
            }
            self.load_room(&room);
        }
    }

    /// Redis is gone: the chat is split. Requests under way are finished here as far as
    /// they can be, and everyone is told.
    fn hub_down(&mut self, ctx: &mut Context<'_>, unanswered: Vec<Tag>) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        sharing.synced = false;
        let tell = std::mem::replace(&mut sharing.whole, false);
        if tell {
            self.tell_everyone(ctx, &ServerEvent::Split { time: now_ms() });
        }
        // Rooms that were loading keep the history they had.
        let loading: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.loading.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for room in loading {
            let entries = self.rooms.get_mut(&room).map(Room::take_history);
            let last = self.rooms.get(&room).map_or(0, |r| r.last_id);
            self.room_loaded(ctx, &room, entries.unwrap_or_default(), last);
        }
        for tag in unanswered {
            match tag {
                Tag::Arrive(conn, serial) if self.serial(conn) == serial => {
                    let nick = self.guest_nick();
                    let member = self.me(conn);
                    self.apply(
                        ctx,
                        Update::Arrived {
                            member,
                            nick: nick.clone(),
                            rooms: Vec::new(),
                        },
                    );
                    self.welcome(ctx, conn, nick);
                    self.done(ctx, conn);
                }
                Tag::Join(conn, serial, room) => {
                    if let Some(state) = self.rooms.get_mut(&room) {
                        state.joins_under_way = state.joins_under_way.saturating_sub(1);
                    }
                    if self.serial(conn) == serial {
                        // Carried out here, unless Redis did it and said so already.
                        let member = self.me(conn);
                        if !self.directory.get(member).is_some_and(|e| e.is_in(&room)) {
                            self.apply(ctx, Update::Joined { member, room });
                        }
                        self.done(ctx, conn);
                    } else {
                        self.release_room(&room);
                    }
                }
                Tag::Nick(conn, serial, _)
                | Tag::Private(conn, serial, _)
                | Tag::Done(conn, serial)
                    if self.serial(conn) == serial =>
                {
                    let error = ServerEvent::error(
                        ErrorCode::ChatSplit,
                        "the chat split while your request was under way; it may not have been carried out",
                    );
                    self.tell(ctx, conn, &error);
                    self.done(ctx, conn);
                }
                _ => {}
            }
        }
    }

    fn reply(&mut self, ctx: &mut Context<'_>, tag: Tag, value: Value) {
        if let Value::Error(e) = &value {
            warn!("redis: {tag:?} failed: {e}");
            match &tag {
                // Without its registration or its directory the instance is not whole:
                // start again.
                Tag::Restore | Tag::Snapshot => {
                    if let Some(sharing) = &mut self.sharing {
                        sharing.hub.reconnect(ctx, format!("{tag:?} failed: {e}"));
                    }
                    return;
                }
                Tag::Nick(conn, serial, _)
                | Tag::Join(conn, serial, _)
                | Tag::Private(conn, serial, _)
                | Tag::Done(conn, serial)
                    if self.serial(*conn) == *serial =>
                {
                    let error = ServerEvent::error(
                        ErrorCode::Unavailable,
                        format!("the chat could not do that now ({e}); try again"),
                    );
                    self.tell(ctx, *conn, &error);
                }
                _ => {}
            }
        }
        match tag {
            Tag::Arrive(conn, serial) if self.serial(conn) == serial => {
                match value.as_str().map(str::to_owned) {
                    Some(nick) => {
                        self.welcome(ctx, conn, nick);
                        self.done(ctx, conn);
                    }
                    None => ctx.close(conn, CloseCode::InternalError, "the chat is unavailable"),
                }
            }
            Tag::Nick(conn, serial, wanted) if self.serial(conn) == serial => {
                if value.as_int() == Some(0) {
                    let error = ServerEvent::error(
                        ErrorCode::NickTaken,
                        format!("the nickname {wanted} is taken"),
                    );
                    self.tell(ctx, conn, &error);
                }
                self.done(ctx, conn);
            }
            Tag::Join(conn, serial, room) => {
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.joins_under_way = state.joins_under_way.saturating_sub(1);
                }
                self.release_room(&room);
                if self.serial(conn) == serial {
                    self.done(ctx, conn);
                }
            }
            Tag::Private(conn, serial, to) if self.serial(conn) == serial => {
                if value.as_int() == Some(0) {
                    let error = ServerEvent::error(
                        ErrorCode::UnknownUser,
                        format!("no one is called {to}"),
                    );
                    self.tell(ctx, conn, &error);
                }
                self.done(ctx, conn);
            }
            Tag::Done(conn, serial) if self.serial(conn) == serial => self.done(ctx, conn),
            Tag::Restore => {
                let renamed = value.into_array().unwrap_or_default();
                for pair in renamed.chunks(2) {
                    let (Some(member), Some(nick)) = (
                        pair.first().and_then(Value::as_str),
                        pair.get(1).and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    if let Ok(member) = member.parse::<MemberKey>() {
                        let nick = nick.to_owned();
                        self.apply(ctx, Update::Renamed { member, nick });
                    }
                }
            }
            Tag::Snapshot => self.snapshot(ctx, value),
            Tag::History(room) => {
                let mut items = value.into_array().unwrap_or_default().into_iter();
                let last_id = items.next().and_then(|v| v.as_int()).unwrap_or(0) as u64;
                let entries = items
                    .filter_map(|v| {
                        let json = v.as_str()?.to_owned();
                        let event: ServerEvent = serde_json::from_str(&json).ok()?;
                        Some(HistoryEntry {
                            id: event_id(&event),
                            line: event.render_line(),
                            json,
                        })
                    })
                    .collect();
                self.room_loaded(ctx, &room, entries, last_id);
                self.release_room(&room);
            }
            _ => {}
        }
    }

    /// The whole directory: it replaces the copy here; presence lines after it apply.
    fn snapshot(&mut self, ctx: &mut Context<'_>, value: Value) {
        let mut items = value.into_array().unwrap_or_default().into_iter();
        let version = items.next().and_then(|v| v.as_int()).unwrap_or(0) as u64;
        let mut directory = Directory::default();
        while let (Some(member), Some(entry)) = (items.next(), items.next()) {
            let (Some(member), Some(entry)) = (member.as_str(), entry.as_str()) else {
                continue;
            };
            let Ok(member) = member.parse::<MemberKey>() else {
                continue;
            };
            let mut fields = entry.split('\t');
            let (Some(nick), _, Some(rooms)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let rooms = rooms
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            directory.insert(
                member,
                Entry {
                    nick: nick.to_owned(),
                    rooms: rooms.collect(),
                },
            );
        }
        self.directory = directory;
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        sharing.synced = true;
        sharing.version = version;
        info!(
            "redis: the chat is whole: {} members on every instance",
            self.directory.len()
        );
        if !std::mem::replace(&mut sharing.whole, true) {
            self.tell_everyone(ctx, &ServerEvent::Whole { time: now_ms() });
            let locals: Vec<ConnectionId> = self.locals.keys().copied().collect();
            for conn in locals {
                let rooms = self
                    .directory
                    .get(self.me(conn))
                    .map(|e| e.rooms.clone())
                    .unwrap_or_default();
                for room in rooms {
                    self.send_members(ctx, conn, &room);
                }
            }
        }
    }

    /// A line on the presence channel: "VERSION TAB KIND TAB MEMBER ...".
    fn presence(&mut self, ctx: &mut Context<'_>, line: &str) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        let mut fields = line.split('\t');
        let Some(version) = fields.next().and_then(|v| v.parse::<u64>().ok()) else {
            return;
        };
        if !sharing.synced || version <= sharing.version {
            return; // the snapshot has it
        }
        sharing.version = version;
        let (Some(kind), Some(member)) = (
            fields.next(),
            fields.next().and_then(|m| m.parse::<MemberKey>().ok()),
        ) else {
            return;
        };
        let arg = fields.next().unwrap_or_default().to_owned();
        let update = match kind {
            "A" => Update::Arrived {
                member,
                nick: arg,
                rooms: fields
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
            "J" => Update::Joined { member, room: arg },
            "L" => Update::Left { member, room: arg },
            "N" => Update::Renamed { member, nick: arg },
            // One of ours, still connected: another instance took this one for dead (a
            // stall past the timeout). Its next beat finds out and registers it again;
            // meanwhile it is kept here.
            "D" if self.local(member).is_some() => return,
            "D" => Update::Departed { member },
            _ => return,
        };
        self.apply(ctx, update);
    }

    /// A private message for someone here: "TO TAB FROM TAB json".
    fn inbox(&mut self, ctx: &mut Context<'_>, payload: &str) {
        let mut parts = payload.splitn(3, '\t');
        let (Some(to), Some(from), Some(json)) = (
            parts.next().and_then(|m| m.parse::<MemberKey>().ok()),
            parts.next().and_then(|m| m.parse::<MemberKey>().ok()),
            parts.next(),
        ) else {
            return;
        };
        let Ok(event) = serde_json::from_str::<ServerEvent>(json) else {
            return;
        };
        let update = Update::Private {
            to,
            from,
            event,
            json: Some(json.to_owned()),
        };
        self.apply(ctx, update);
    }
}
