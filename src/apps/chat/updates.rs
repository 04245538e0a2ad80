//! Changes of the shared chat, carried out on this instance: who is told what, and what the
//! rooms held here remember.
//!
//! Without Redis, a request that changes the chat is applied here at once. With Redis, it
//! is sent there; Redis orders it among everyone's and announces it to every instance
//! (this one included), and each applies it with this same code. So a join on instance A
//! and a message on instance B reach the members on both in the one order Redis gave
//! them, and the directory on every instance goes through the same states.

use super::directory::{Entry, MemberKey};
use super::protocol::{LeaveReason, ServerEvent};
use super::state::{HistoryEntry, Room};
use super::{Chat, Encoded, now_ms, publish, publish_encoded};
use crate::{ConnectionId, Context, Message, Transport};

/// A change of the shared chat.
#[derive(Debug)]
pub enum Update {
    /// A member arrived (or, when an instance reconnects to Redis, is registered again,
    /// with its rooms).
    Arrived {
        member: MemberKey,
        nick: String,
        rooms: Vec<String>,
    },
    /// A member joined a room (or, already in it, made it its active room).
    Joined { member: MemberKey, room: String },
    /// A member left a room.
    Left { member: MemberKey, room: String },
    /// A member changed nickname.
    Renamed { member: MemberKey, nick: String },
    /// A member's connection closed (or its instance died).
    Departed { member: MemberKey },
    /// A message or image in a room. Its `id` is 0 if it was said during a split: then it
    /// is not kept.
    Said {
        room: String,
        event: ServerEvent,
        json: Option<String>,
        /// The event framed already, by the workers' hub.
        frame: Option<crate::SharedFrame>,
    },
    /// A private message or image.
    Private {
        to: MemberKey,
        from: MemberKey,
        event: ServerEvent,
        json: Option<String>,
    },
}

impl Chat {
    /// Carries out one change here.
    pub(super) fn apply(&mut self, ctx: &mut Context<'_>, update: Update) {
        match update {
            Update::Arrived {
                member,
                nick,
                rooms,
            } => {
                for room in &rooms {
                    if let Some(state) = self.rooms.get(room) {
                        let event = ServerEvent::Join {
                            room: room.clone(),
                            nick: nick.clone(),
                            time: now_ms(),
                        };
                        let known = self.directory.get(member).is_some_and(|e| e.is_in(room));
                        if !known {
                            publish(ctx, state.members.iter().copied(), &event);
                        }
                    }
                }
                self.directory.insert(member, Entry { nick, rooms });
            }
            Update::Joined { member, room } => self.joined(ctx, member, &room),
            Update::Left { member, room } => {
                if !self.directory.leave(member, &room) {
                    return;
                }
                let Some(nick) = self.directory.get(member).map(|e| e.nick.clone()) else {
                    return;
                };
                let event = ServerEvent::Leave {
                    room: room.clone(),
                    nick,
                    reason: LeaveReason::Left,
                    time: now_ms(),
                };
                let local = self.local(member);
                if let Some(state) = self.rooms.get_mut(&room) {
                    // The one who left hears it too, last of all.
                    let mut recipients: Vec<ConnectionId> = state.members.iter().copied().collect();
                    if let Some(conn) = local {
                        state.members.remove(&conn);
                        state.waiting.retain(|(c, _)| *c != conn);
                        recipients.retain(|c| *c != conn);
                        recipients.push(conn);
                    }
                    publish(ctx, recipients, &event);
                }
                self.release_room(&room);
            }
            Update::Renamed { member, nick } => {
                let Some(old) = self.directory.rename(member, &nick) else {
                    return;
                };
                let event = ServerEvent::Nick {
                    old,
                    new: nick,
                    time: now_ms(),
                };
                let recipients = self.neighbours(member);
                publish(ctx, recipients, &event);
            }
            Update::Departed { member } => {
                let Some(entry) = self.directory.remove(member) else {
                    return;
                };
                for room in &entry.rooms {
                    let event = ServerEvent::Leave {
                        room: room.clone(),
                        nick: entry.nick.clone(),
                        reason: LeaveReason::Disconnected,
                        time: now_ms(),
                    };
                    if let Some(state) = self.rooms.get(room) {
                        publish(ctx, state.members.iter().copied(), &event);
                    }
                    self.release_room(room);
                }
            }
            Update::Said {
                room,
                event,
                json,
                frame,
            } => self.said(
                ctx,
                &room,
                event,
                Encoded {
                    json,
                    line: None,
                    frame,
                },
            ),
            Update::Private {
                to,
                from,
                event,
                json,
            } => {
                let mut recipients: Vec<ConnectionId> = Vec::with_capacity(2);
                for member in [from, to] {
                    if let Some(conn) = self.local(member)
                        && !recipients.contains(&conn)
                    {
                        recipients.push(conn);
                    }
                }
                let encoded = Encoded {
                    json,
                    line: None,
                    frame: None,
                };
                publish_encoded(ctx, recipients, encoded, &event);
            }
        }
    }

    /// A member joined a room: everyone here in it hears so; if the member is here, it
    /// gets the member list and the history (once the room is loaded), and then the
    /// room's messages.
    fn joined(&mut self, ctx: &mut Context<'_>, member: MemberKey, room: &str) {
        let new = self.directory.join(member, room);
        let local = self.local(member);
        let Some(nick) = self.directory.get(member).map(|e| e.nick.clone()) else {
            return;
        };
        let event = ServerEvent::Join {
            room: room.to_owned(),
            nick,
            time: now_ms(),
        };
        let Some(conn) = local else {
            if new && let Some(state) = self.rooms.get(room) {
                publish(ctx, state.members.iter().copied(), &event);
            }
            return;
        };
        let state = self.rooms.entry(room.to_owned()).or_default();
        if new {
            let recipients = state.members.iter().copied().chain([conn]);
            publish(ctx, recipients, &event);
        }
        let after = self.locals.get_mut(&conn).and_then(|l| {
            let asked = l.joining.remove(room).flatten();
            let resumed = l.resume.remove(room);
            asked.or(resumed)
        });
        self.send_members(ctx, conn, room);
        self.welcome_to_room(ctx, conn, room, after);
    }

    /// Gives a member here a room's history (after `after`) and from then on its
    /// messages; or, while the room loads, puts it on the room's waiting list.
    pub(super) fn welcome_to_room(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        room: &str,
        after: Option<u64>,
    ) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        if state.loading.is_some() {
            state.waiting.push((conn, after));
            return;
        }
        send_history(ctx, conn, room, state, after);
        state.members.insert(conn);
    }

    /// A message or image in a room: to everyone here in it, and into its history.
    fn said(&mut self, ctx: &mut Context<'_>, room: &str, event: ServerEvent, encoded: Encoded) {
        let (max_len, max_bytes) = (self.config.history_len, self.config.history_bytes);
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let id = event_id(&event);
        if let Some(buffer) = &mut state.loading {
            // The history being loaded may hold it already; it is sorted out then.
            let json = encoded.json.unwrap_or_else(|| event.to_json());
            let line = event.render_line();
            buffer.push(HistoryEntry { id, json, line });
            return;
        }
        if id != 0 && id <= state.last_id {
            return; // had it already (from a history loaded meanwhile)
        }
        let encoded = publish_encoded(ctx, state.members.iter().copied(), encoded, &event);
        if id != 0 {
            let json = encoded.json.unwrap_or_else(|| event.to_json());
            let line = encoded.line.unwrap_or_else(|| event.render_line());
            state.remember(HistoryEntry { id, json, line }, max_len, max_bytes);
        }
    }

    /// A room's history has loaded (from Redis): the messages the members here have not
    /// seen, and those that came meanwhile, go to them; those waiting get the history.
    pub(super) fn room_loaded(
        &mut self,
        ctx: &mut Context<'_>,
        room: &str,
        entries: Vec<HistoryEntry>,
        last_id: u64,
    ) {
        let (max_len, max_bytes) = (self.config.history_len, self.config.history_bytes);
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let arrived = state.loading.take().unwrap_or_default();
        let unseen = state.reload(entries, last_id, max_len, max_bytes);
        let members: Vec<ConnectionId> = state.members.iter().copied().collect();
        for index in unseen {
            if let Some(entry) = state.entry(index) {
                send_entry(ctx, &members, entry);
            }
        }
        for entry in arrived {
            if entry.id == 0 || entry.id > state.last_id {
                send_entry(ctx, &members, &entry);
                if entry.id != 0 {
                    state.remember(entry, max_len, max_bytes);
                }
            }
        }
        for (conn, after) in std::mem::take(&mut state.waiting) {
            send_history(ctx, conn, room, state, after);
            state.members.insert(conn);
        }
    }

    /// Members here who share a room with `member`, and `member` if it is here.
    fn neighbours(&self, member: MemberKey) -> Vec<ConnectionId> {
        let mut all: Vec<ConnectionId> = self.local(member).into_iter().collect();
        if let Some(entry) = self.directory.get(member) {
            for room in &entry.rooms {
                if let Some(state) = self.rooms.get(room) {
                    all.extend(state.members.iter().copied());
                }
            }
        }
        all.sort();
        all.dedup();
        all
    }

    /// Drops a room no one here needs any more: without Redis, a room with no members
    /// (and not the default room) is gone with its history; with Redis, this instance
    /// stops listening to it and forgets its copy of the history.
    pub(super) fn release_room(&mut self, room: &str) {
        let Some(state) = self.rooms.get(room) else {
            return;
        };
        if !state.unused() {
            return;
        }
        match &mut self.sharing {
            None if room != self.config.default_room && !self.directory.room_exists(room) => {
                self.rooms.remove(room);
            }
            None => {}
            Some(sharing) => {
                self.rooms.remove(room);
                sharing.hub.unsubscribe_room(room);
            }
        }
    }
}

/// The id of a message, private message or image (0 for other events).
pub(super) fn event_id(event: &ServerEvent) -> u64 {
    match event {
        ServerEvent::Message { id, .. }
        | ServerEvent::Private { id, .. }
        | ServerEvent::Image { id, .. } => *id,
        _ => 0,
    }
}

/// Sends a room's history (after `after`) to one connection.
fn send_history(
    ctx: &mut Context<'_>,
    conn: ConnectionId,
    room: &str,
    state: &Room,
    after: Option<u64>,
) {
    let text = match ctx.transport(conn) {
        Some(Transport::WebSocket) => state.history_json(room, after),
        Some(Transport::Line) => state.history_lines(room, after),
        None => return,
    };
    // See `Chat::tell` for why a failed send needs nothing more.
    let _ = ctx.send(conn, Message::Text(&text));
}

/// Sends one kept message to some connections.
fn send_entry(ctx: &mut Context<'_>, recipients: &[ConnectionId], entry: &HistoryEntry) {
    let mut json_frame = None;
    let mut line_frame = None;
    for &conn in recipients {
        let frame = match ctx.transport(conn) {
            Some(Transport::WebSocket) => json_frame
                .get_or_insert_with(|| crate::SharedFrame::new(Message::Text(&entry.json))),
            Some(Transport::Line) => {
                line_frame.get_or_insert_with(|| crate::SharedFrame::line(&entry.line))
            }
            None => continue,
        };
        let _ = ctx.send_shared(conn, frame);
    }
}
