//! Each request, checked, and turned into a change of the chat: applied here at once
//! without Redis ([`Chat::apply`]), or sent to Redis, which orders it and announces it to
//! every instance (`sharing.rs`). While the chat is split, changes that need every
//! instance (a new nickname, a private message to someone elsewhere) are refused, and the
//! rest are applied here.

use super::directory::MemberKey;
use super::hub::keys;
use super::protocol::{ClientRequest, ErrorCode, ServerEvent};
use super::sharing::Tag;
use super::state::{Input, clean_text, valid_nick, valid_room};
use super::updates::Update;
use super::{BASE64_ENGINE, Chat, Outcome, now_ms, strip_data_url};
use crate::{ConnectionId, Context, images};
use base64::Engine;

impl Chat {
    /// Carries out one request from `conn`.
    pub(super) fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        request: ClientRequest,
    ) {
        let result = match request {
            ClientRequest::Nick { nick } => self.change_nick(ctx, conn, &nick),
            ClientRequest::Join { room, after } => self.join(ctx, conn, &room, after),
            ClientRequest::Leave { room } => self.leave(ctx, conn, &room),
            ClientRequest::Message { room, text } => self.say(ctx, conn, room.as_deref(), &text),
            ClientRequest::Private { to, text } => self.whisper(ctx, conn, &to, &text),
            ClientRequest::Image { room, to, data } => {
                let data = strip_data_url(&data);
                match BASE64_ENGINE.decode(data) {
                    Ok(bytes) => self.share_image(
                        ctx,
                        conn,
                        room.as_deref(),
                        to.as_deref(),
                        &bytes,
                        Some(data),
                    ),
                    Err(_) => Err((
                        ErrorCode::ImageInvalid,
                        "the image data is not base64".into(),
                    )),
                }
            }
            ClientRequest::Who { room } => self.who(ctx, conn, room.as_deref()),
            ClientRequest::Rooms => {
                let rooms = self.directory.room_list(&self.config.default_room);
                self.tell(ctx, conn, &ServerEvent::Rooms { rooms });
                Ok(())
            }
        };
        if let Err((code, message)) = result {
            self.tell(ctx, conn, &ServerEvent::error(code, message));
        }
    }

    /// A new connection: a guest nickname, the welcome, and the default room.
    pub(super) fn arrive(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) {
        let me = self.me(conn);
        if self.sharing.as_ref().is_some_and(|r| !r.settled()) {
            // The first connection to Redis is under way: a guest name given now could
            // be given elsewhere too. Wait for it (or for it to fail).
            if let Some(local) = self.locals.get_mut(&conn) {
                local.busy = true;
                local.waiting.push_back(Input::Arrive);
            }
            return;
        }
        if self.shared() {
            let serial = self.serial(conn);
            let member = me.to_string();
            self.call(
                Tag::Arrive(conn, serial),
                "lc_arrive",
                keys::DIRECTORY,
                &[member.as_bytes()],
            );
            if let Some(local) = self.locals.get_mut(&conn) {
                local.busy = true;
                local.waiting.push_back(Input::JoinDefault);
            }
            return;
        }
        let nick = self.guest_nick();
        self.apply(
            ctx,
            Update::Arrived {
                member: me,
                nick: nick.clone(),
                rooms: Vec::new(),
            },
        );
        self.welcome(ctx, conn, nick);
        self.take_input(ctx, conn, Input::JoinDefault);
    }

    /// The first message on a connection.
    pub(super) fn welcome(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, nick: String) {
        let welcome = ServerEvent::Welcome {
            nick,
            server: self.server_name.clone(),
            limits: self.limits(),
        };
        self.tell(ctx, conn, &welcome);
        if self.split() {
            self.tell(ctx, conn, &ServerEvent::Split { time: now_ms() });
        }
    }

    /// A connection closed: its member leaves every room, everywhere.
    pub(super) fn depart(&mut self, ctx: &mut Context<'_>, me: MemberKey) {
        if self.shared() {
            let member = me.to_string();
            self.call(
                Tag::Depart,
                "lc_depart",
                keys::DIRECTORY,
                &[member.as_bytes()],
            );
        } else {
            self.apply(ctx, Update::Departed { member: me });
        }
    }

    fn change_nick(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, wanted: &str) -> Outcome {
        let max = self.config.max_nick_chars;
        let Some(wanted) = valid_nick(wanted, max) else {
            return Err((
                ErrorCode::NickInvalid,
                format!("a nickname is 1 to {max} letters, digits, '-', '_' or '.'"),
            ));
        };
        let me = self.me(conn);
        match self.directory.find_nick(wanted) {
            Some(owner) if owner != me => {
                return Err((
                    ErrorCode::NickTaken,
                    format!("the nickname {wanted} is taken"),
                ));
            }
            _ => {}
        }
        let Some(old) = self.directory.get(me).map(|e| e.nick.clone()) else {
            return Ok(());
        };
        if old == wanted {
            // Asking for the nickname one has is answered, so a client waiting for its
            // answer is not left waiting, but it is news to no one else.
            let event = ServerEvent::Nick {
                old,
                new: wanted.to_owned(),
                time: now_ms(),
            };
            self.tell(ctx, conn, &event);
            return Ok(());
        }
        if self.split() {
            return Err((
                ErrorCode::ChatSplit,
                "the chat is split; nicknames can change once it is whole again".into(),
            ));
        }
        if self.shared() {
            let (member, lower) = (me.to_string(), wanted.to_lowercase());
            let serial = self.serial(conn);
            let args: [&[u8]; 3] = [member.as_bytes(), wanted.as_bytes(), lower.as_bytes()];
            self.call_for(
                conn,
                Tag::Nick(conn, serial, wanted.to_owned()),
                "lc_nick",
                keys::DIRECTORY,
                &args,
            );
            return Ok(());
        }
        self.apply(
            ctx,
            Update::Renamed {
                member: me,
                nick: wanted.to_owned(),
            },
        );
        Ok(())
    }

    /// Joins a room, or makes a room one is in the active one; either way the member list
    /// and the history (after `after`) follow.
    pub(super) fn join(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        room: &str,
        after: Option<u64>,
    ) -> Outcome {
        let room = self.room_name(room)?;
        let me = self.me(conn);
        let Some(entry) = self.directory.get(me) else {
            return Ok(());
        };
        if entry.is_in(&room) {
            self.directory.join(me, &room);
            self.send_members(ctx, conn, &room);
            let after = after.or_else(|| self.locals.get_mut(&conn)?.resume.remove(&room));
            self.welcome_to_room(ctx, conn, &room, after);
            return Ok(());
        }
        if entry.rooms.len() >= self.config.max_rooms_per_member {
            return Err((
                ErrorCode::TooManyRooms,
                format!(
                    "you are in {} rooms already; leave one first",
                    entry.rooms.len()
                ),
            ));
        }
        if !self.directory.room_exists(&room)
            && self.directory.room_count() >= self.config.max_rooms
        {
            return Err((
                ErrorCode::TooManyRooms,
                "the server has as many rooms as it allows".into(),
            ));
        }
        if let Some(local) = self.locals.get_mut(&conn) {
            local.joining.insert(room.clone(), after);
        }
        if self.shared() {
            self.hold_room(&room);
            if let Some(state) = self.rooms.get_mut(&room) {
                state.joins_under_way += 1;
            }
            let member = me.to_string();
            let serial = self.serial(conn);
            let args: [&[u8]; 2] = [member.as_bytes(), room.as_bytes()];
            self.call_for(
                conn,
                Tag::Join(conn, serial, room.clone()),
                "lc_join",
                keys::DIRECTORY,
                &args,
            );
            return Ok(());
        }
        self.apply(ctx, Update::Joined { member: me, room });
        Ok(())
    }

    fn leave(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, room: &str) -> Outcome {
        let room = match room.trim() {
            "" => self.active_room(conn)?,
            named => self.room_name(named)?,
        };
        let me = self.me(conn);
        if !self.directory.get(me).is_some_and(|e| e.is_in(&room)) {
            return Err((ErrorCode::NotInRoom, format!("you are not in #{room}")));
        }
        if self.shared() {
            let member = me.to_string();
            let serial = self.serial(conn);
            let args: [&[u8]; 2] = [member.as_bytes(), room.as_bytes()];
            self.call_for(
                conn,
                Tag::Done(conn, serial),
                "lc_leave",
                keys::DIRECTORY,
                &args,
            );
            return Ok(());
        }
        self.apply(ctx, Update::Left { member: me, room });
        Ok(())
    }

    fn say(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        room: Option<&str>,
        text: &str,
    ) -> Outcome {
        let room = self.member_room(conn, room)?;
        let text = self.check_text(text)?;
        let event = ServerEvent::Message {
            id: 0,
            room: room.clone(),
            from: self.nick(conn),
            text,
            time: now_ms(),
        };
        self.post_to_room(ctx, conn, room, event);
        Ok(())
    }

    /// Sends a room event to everyone in the room, everywhere, and keeps it in the room's
    /// history: with a new id from the room's count.
    fn post_to_room(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        room: String,
        mut event: ServerEvent,
    ) {
        if self.shared() {
            let json = event.to_json();
            let Some((head, tail)) = split_at_id(&json) else {
                return;
            };
            let (max_len, max_bytes) = (
                self.config.history_len.to_string(),
                self.config.history_bytes.to_string(),
            );
            let channel = keys::room_channel(&room);
            let publish = self.publish_command();
            let serial = self.serial(conn);
            let args: [&[u8]; 7] = [
                publish.as_bytes(),
                channel.as_bytes(),
                head.as_bytes(),
                tail.as_bytes(),
                max_len.as_bytes(),
                max_bytes.as_bytes(),
                HISTORY_EXPIRY_MS.as_bytes(),
            ];
            self.call_for(
                conn,
                Tag::Done(conn, serial),
                "lc_say",
                &keys::room_seq(&room),
                &args,
            );
            return;
        }
        if !self.split() {
            self.next_id += 1;
            set_id(&mut event, self.next_id);
        }
        self.apply(
            ctx,
            Update::Said {
                room,
                event,
                json: None,
                frame: None,
            },
        );
    }

    fn whisper(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        to: &str,
        text: &str,
    ) -> Outcome {
        let recipient = self.recipient(to)?;
        let text = self.check_text(text)?;
        let event = ServerEvent::Private {
            id: 0,
            from: self.nick(conn),
            to: self.nick_of(recipient),
            text,
            time: now_ms(),
        };
        self.send_private(ctx, conn, recipient, event)
    }

    /// Sends a private event to its recipient, wherever it is, and to its sender.
    fn send_private(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        recipient: MemberKey,
        mut event: ServerEvent,
    ) -> Outcome {
        let me = self.me(conn);
        if self.shared() {
            let json = event.to_json();
            let Some((head, tail)) = split_at_id(&json) else {
                return Ok(());
            };
            let (to_inbox, from_inbox) = (keys::inbox_of(recipient), keys::inbox_of(me));
            let (to, from) = (recipient.to_string(), me.to_string());
            let publish = self.publish_command();
            let serial = self.serial(conn);
            let args: [&[u8]; 7] = [
                publish.as_bytes(),
                to_inbox.as_bytes(),
                from_inbox.as_bytes(),
                to.as_bytes(),
                from.as_bytes(),
                head.as_bytes(),
                tail.as_bytes(),
            ];
            let to = self.nick_of(recipient);
            self.call_for(
                conn,
                Tag::Private(conn, serial, to),
                "lc_pm",
                keys::PRIVATE_IDS,
                &args,
            );
            return Ok(());
        }
        if self.split() {
            if self.local(recipient).is_none() {
                return Err((
                    ErrorCode::ChatSplit,
                    "the chat is split and they are on another server; try again once it is whole"
                        .into(),
                ));
            }
        } else {
            self.next_id += 1;
            set_id(&mut event, self.next_id);
        }
        let update = Update::Private {
            to: recipient,
            from: me,
            event,
            json: None,
        };
        self.apply(ctx, update);
        Ok(())
    }

    /// Shares an image in a room or privately. `base64` is the image as the client sent
    /// it, if it did, so that it need not be encoded again.
    pub(super) fn share_image(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnectionId,
        room: Option<&str>,
        to: Option<&str>,
        bytes: &[u8],
        base64: Option<&str>,
    ) -> Outcome {
        let max = self.config.max_image_bytes;
        if bytes.len() > max {
            return Err((
                ErrorCode::ImageTooLarge,
                format!(
                    "an image may have at most {max} bytes; this one has {}",
                    bytes.len()
                ),
            ));
        }
        let Some(mime) = images::detect(bytes) else {
            return Err((
                ErrorCode::ImageInvalid,
                format!("images must be one of {}", images::ACCEPTED.join(", ")),
            ));
        };
        let data = base64.map_or_else(|| BASE64_ENGINE.encode(bytes), str::to_owned);
        let (from, time) = (self.nick(conn), now_ms());
        let image = |room, to| ServerEvent::Image {
            id: 0,
            room,
            to,
            from,
            mime: mime.into(),
            size: bytes.len(),
            data,
            time,
        };
        match to {
            Some(to) => {
                let recipient = self.recipient(to)?;
                let event = image(None, Some(self.nick_of(recipient)));
                self.send_private(ctx, conn, recipient, event)?;
            }
            None => {
                let room = self.member_room(conn, room)?;
                self.post_to_room(ctx, conn, room.clone(), image(Some(room), None));
            }
        }
        Ok(())
    }

    fn who(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, room: Option<&str>) -> Outcome {
        let room = match room {
            Some(room) => self.room_name(room)?,
            None => self.active_room(conn)?,
        };
        if !self.directory.room_exists(&room) && room != self.config.default_room {
            return Err((ErrorCode::RoomInvalid, format!("there is no room #{room}")));
        }
        self.send_members(ctx, conn, &room);
        Ok(())
    }

    pub(super) fn send_members(&self, ctx: &mut Context<'_>, conn: ConnectionId, room: &str) {
        let event = ServerEvent::Members {
            room: room.to_owned(),
            members: self.directory.nicks_in(room),
        };
        self.tell(ctx, conn, &event);
    }

    fn nick(&self, conn: ConnectionId) -> String {
        self.nick_of(self.me(conn))
    }

    fn nick_of(&self, member: MemberKey) -> String {
        self.directory
            .get(member)
            .map(|e| e.nick.clone())
            .unwrap_or_default()
    }

    fn room_name(&self, room: &str) -> Result<String, (ErrorCode, String)> {
        let max = self.config.max_room_chars;
        valid_room(room, max).ok_or_else(|| {
            (
                ErrorCode::RoomInvalid,
                format!("a room name is 1 to {max} letters, digits, '-' or '_'"),
            )
        })
    }

    fn active_room(&self, conn: ConnectionId) -> Result<String, (ErrorCode, String)> {
        self.directory
            .get(self.me(conn))
            .and_then(|e| e.rooms.last())
            .cloned()
            .ok_or_else(|| {
                (
                    ErrorCode::NotInRoom,
                    "you are in no room; join one first".into(),
                )
            })
    }

    /// The room a request is for (named, or else the active one), which `conn` must be in.
    fn member_room(
        &self,
        conn: ConnectionId,
        room: Option<&str>,
    ) -> Result<String, (ErrorCode, String)> {
        let room = match room {
            Some(room) => self.room_name(room)?,
            None => self.active_room(conn)?,
        };
        match self.directory.get(self.me(conn)) {
            Some(entry) if entry.is_in(&room) => Ok(room),
            _ => Err((
                ErrorCode::NotInRoom,
                format!("you are not in #{room}; join it first"),
            )),
        }
    }

    fn recipient(&self, nick: &str) -> Result<MemberKey, (ErrorCode, String)> {
        self.directory.find_nick(nick.trim()).ok_or_else(|| {
            (
                ErrorCode::UnknownUser,
                format!("no one is called {}", nick.trim()),
            )
        })
    }

    fn check_text(&self, text: &str) -> Result<String, (ErrorCode, String)> {
        let max = self.config.max_text_bytes;
        if text.len() > max {
            return Err((
                ErrorCode::MessageTooLarge,
                format!(
                    "a message may have at most {max} bytes; this one has {}",
                    text.len()
                ),
            ));
        }
        let text = clean_text(text);
        if text.trim().is_empty() {
            return Err((ErrorCode::EmptyMessage, "the message is empty".into()));
        }
        Ok(text)
    }
}

/// How long Redis keeps a room's history after its last message: a week.
const HISTORY_EXPIRY_MS: &str = "604800000";

/// Cuts an event's JSON around its `"id":0`, for Redis to put the room's next id between.
fn split_at_id(json: &str) -> Option<(&str, &str)> {
    const ID: &str = "\"id\":0";
    let at = json.find(ID)?;
    Some((&json[..at + ID.len() - 1], &json[at + ID.len()..]))
}

fn set_id(event: &mut ServerEvent, new: u64) {
    if let ServerEvent::Message { id, .. }
    | ServerEvent::Private { id, .. }
    | ServerEvent::Image { id, .. } = event
    {
        *id = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_cut_out_of_the_json() {
        let event = ServerEvent::Message {
            id: 0,
            room: "lobby".into(),
            from: "a".into(),
            text: "\"id\":0".into(),
            time: 1,
        };
        let json = event.to_json();
        let (head, tail) = split_at_id(&json).unwrap();
        assert_eq!(head, r#"{"type":"message","id":"#);
        let whole = format!("{head}41{tail}");
        let parsed: ServerEvent = serde_json::from_str(&whole).unwrap();
        let mut expected = event;
        set_id(&mut expected, 41);
        assert_eq!(parsed, expected);
    }
}
