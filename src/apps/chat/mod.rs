//! The chat: nicknames, rooms, messages, private messages, images and recent history,
//! for browsers, terminal clients and `nc` users at once.
//!
//! - [`protocol`]: the JSON messages both ways (documented in `docs/PROTOCOL.md`), and the
//!   human form of each for the line port and the terminal client.
//! - `state`: members, rooms, history, rate limits. Plain data.
//! - `images`: which images are accepted, judged by their first bytes.
//! - `page`: the web page, embedded in the binary.
//!
//! Every event is serialized at most once per transport however many receive it: to JSON
//! and framed once into a [`SharedFrame`] for the WebSocket clients, and rendered once as a
//! line for the line-port clients, each only if someone of that kind is listening.

mod images;
mod page;
pub mod protocol;
mod state;

use crate::http::static_files::StaticFiles;
use crate::http::{Request, Response};
use crate::{CloseCode, ConnectionId, Context, Handler, Message, SharedFrame, Transport};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use protocol::{ClientRequest, Command, ErrorCode, LeaveReason, Limits, RoomInfo, ServerEvent};
use state::{ChatState, HistoryEntry, Member, TokenBucket, clean_text, valid_nick, valid_room};
use std::time::{SystemTime, UNIX_EPOCH};

/// The chat's settings, each with its default.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// The room everyone joins on arrival, which always exists. Default `lobby`.
    pub default_room: String,
    /// How many recent messages a room keeps for newcomers. Default 50.
    pub history_len: usize,
    /// The most bytes a room's history may hold (images count in full). Default 8 MiB.
    pub history_bytes: usize,
    /// The longest text message, in bytes. Default 4 KiB.
    pub max_text_bytes: usize,
    /// The largest image, in bytes before base64. Default 2 MiB; keep the server's
    /// `max_message_size` above a third more than this, for the base64 envelope.
    pub max_image_bytes: usize,
    /// The longest nickname, in characters. Default 24.
    pub max_nick_chars: usize,
    /// The longest room name, in characters. Default 32.
    pub max_room_chars: usize,
    /// The most rooms at once. Default 1000.
    pub max_rooms: usize,
    /// The most rooms one client may be in. Default 20.
    pub max_rooms_per_member: usize,
    /// Requests each client may make per second, sustained. Default 20.
    pub rate_per_second: f64,
    /// Requests each client may make in a burst. Default 60.
    pub rate_burst: u32,
    /// Requests refused in a row, past the burst, before a client is disconnected with
    /// close code 1008. Default 100. The first refusal is answered with a
    /// `rate_limited` error, which is the warning.
    pub rate_strikes: u32,
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig {
            default_room: "lobby".into(),
            history_len: 50,
            history_bytes: 8 * 1024 * 1024,
            max_text_bytes: 4 * 1024,
            max_image_bytes: 2 * 1024 * 1024,
            max_nick_chars: 24,
            max_room_chars: 32,
            max_rooms: 1000,
            max_rooms_per_member: 20,
            rate_per_second: 20.0,
            rate_burst: 60,
            rate_strikes: 100,
        }
    }
}

/// The chat application.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    state: ChatState,
    /// A folder to serve instead of the built-in page (`--public DIR`).
    public: Option<StaticFiles>,
    /// `name/version`, announced in `welcome`.
    server_name: String,
}

impl Chat {
    /// A chat with these settings, serving the built-in page.
    pub fn new(config: ChatConfig) -> Chat {
        let mut state = ChatState::default();
        state
            .rooms
            .insert(config.default_room.clone(), Default::default());
        Chat {
            config,
            state,
            public: None,
            server_name: format!("loopchat {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Serves the files of a folder over HTTP instead of the built-in page.
    pub fn with_public_files(mut self, files: StaticFiles) -> Chat {
        self.public = Some(files);
        self
    }

    fn limits(&self) -> Limits {
        Limits {
            max_text_bytes: self.config.max_text_bytes,
            max_image_bytes: self.config.max_image_bytes,
            image_types: images::ACCEPTED.iter().map(|t| t.to_string()).collect(),
            max_nick_chars: self.config.max_nick_chars,
            max_room_chars: self.config.max_room_chars,
            history: self.config.history_len,
        }
    }

    /// Carries out one request from `conn`.
    fn handle(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, request: ClientRequest) {
        let result = match request {
            ClientRequest::Nick { nick } => self.change_nick(ctx, conn, &nick),
            ClientRequest::Join { room } => self.join(ctx, conn, &room),
            ClientRequest::Leave { room } => self.leave(ctx, conn, &room),
            ClientRequest::Message { room, text } => self.say(ctx, conn, room.as_deref(), &text),
            ClientRequest::Private { to, text } => self.whisper(ctx, conn, &to, &text),
            ClientRequest::Image { room, to, data } => {
                let data = strip_data_url(&data);
                match BASE64.decode(data) {
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
                let rooms = self
                    .state
                    .rooms
                    .iter()
                    .map(|(name, room)| RoomInfo {
                        name: name.clone(),
                        members: room.members.len(),
                    })
                    .collect();
                self.tell(ctx, conn, &ServerEvent::Rooms { rooms });
                Ok(())
            }
        };
        if let Err((code, message)) = result {
            self.tell(ctx, conn, &ServerEvent::error(code, message));
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
        match self.state.find_nick(wanted) {
            Some(owner) if owner != conn => {
                return Err((
                    ErrorCode::NickTaken,
                    format!("the nickname {wanted} is taken"),
                ));
            }
            _ => {}
        }
        let Some(member) = self.state.members.get_mut(&conn) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut member.nick, wanted.to_owned());
        let unchanged = old == wanted;
        self.state.nicks.remove(&old.to_lowercase());
        self.state.nicks.insert(wanted.to_lowercase(), conn);
        let event = ServerEvent::Nick {
            old,
            new: wanted.to_owned(),
            time: now_ms(),
        };
        // Asking for the nickname one has is answered, so a client waiting for its
        // answer is not left waiting, but it is news to no one else.
        let recipients = if unchanged {
            std::collections::BTreeSet::from([conn])
        } else {
            self.state.neighbours(conn)
        };
        publish(ctx, recipients, &event);
        Ok(())
    }

    fn join(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, room: &str) -> Outcome {
        let room = self.room_name(room)?;
        let Some(member) = self.state.members.get_mut(&conn) else {
            return Ok(());
        };
        if !member.is_in(&room) {
            if member.rooms.len() >= self.config.max_rooms_per_member {
                return Err((
                    ErrorCode::TooManyRooms,
                    format!(
                        "you are in {} rooms already; leave one first",
                        member.rooms.len()
                    ),
                ));
            }
            if !self.state.rooms.contains_key(&room)
                && self.state.rooms.len() >= self.config.max_rooms
            {
                return Err((
                    ErrorCode::TooManyRooms,
                    "the server has as many rooms as it allows".into(),
                ));
            }
            member.activate(&room);
            let nick = member.nick.clone();
            let members = &mut self.state.rooms.entry(room.clone()).or_default().members;
            members.insert(conn);
            let event = ServerEvent::Join {
                room: room.clone(),
                nick,
                time: now_ms(),
            };
            publish(ctx, members.iter().copied(), &event);
        } else {
            member.activate(&room);
        }
        self.send_members(ctx, conn, &room);
        if let Some(history) = self.state.rooms.get(&room) {
            let text = match ctx.transport(conn) {
                Some(Transport::WebSocket) => history.history_json(&room),
                Some(Transport::Line) => history.history_lines(&room),
                None => return Ok(()),
            };
            // See `tell` for why a failed send needs nothing more.
            let _ = ctx.send(conn, Message::Text(&text));
        }
        Ok(())
    }

    fn leave(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, room: &str) -> Outcome {
        let room = match room.trim() {
            "" => self.active_room(conn)?,
            named => self.room_name(named)?,
        };
        let Some(member) = self.state.members.get_mut(&conn) else {
            return Ok(());
        };
        if !member.is_in(&room) {
            return Err((ErrorCode::NotInRoom, format!("you are not in #{room}")));
        }
        member.rooms.retain(|r| *r != room);
        let event = ServerEvent::Leave {
            room: room.clone(),
            nick: member.nick.clone(),
            reason: LeaveReason::Left,
            time: now_ms(),
        };
        let mut recipients = self.remove_from_room(conn, &room);
        recipients.push(conn);
        publish(ctx, recipients, &event);
        Ok(())
    }

    /// Takes `conn` out of `room`, deletes the room if it is now empty (unless it is the
    /// default room), and returns who is left in it.
    fn remove_from_room(&mut self, conn: ConnectionId, room: &str) -> Vec<ConnectionId> {
        let Some(state) = self.state.rooms.get_mut(room) else {
            return Vec::new();
        };
        state.members.remove(&conn);
        let left: Vec<ConnectionId> = state.members.iter().copied().collect();
        if left.is_empty() && room != self.config.default_room {
            self.state.rooms.remove(room);
        }
        left
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
        let id = self.state.next_id();
        let from = self.nick(conn);
        let event = ServerEvent::Message {
            id,
            room: room.clone(),
            from,
            text,
            time: now_ms(),
        };
        self.post_to_room(ctx, &room, event);
        Ok(())
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
        let id = self.state.next_id();
        let to = self.nick(recipient);
        let event = ServerEvent::Private {
            id,
            from: self.nick(conn),
            to,
            text,
            time: now_ms(),
        };
        publish(ctx, dedup([conn, recipient]), &event);
        Ok(())
    }

    /// Shares an image in a room or privately. `base64` is the image as the client sent
    /// it, if it did, so that it need not be encoded again.
    fn share_image(
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
        let data = base64.map_or_else(|| BASE64.encode(bytes), str::to_owned);
        let (id, from, time) = (self.state.next_id(), self.nick(conn), now_ms());
        let image = |room, to| ServerEvent::Image {
            id,
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
                let event = image(None, Some(self.nick(recipient)));
                publish(ctx, dedup([conn, recipient]), &event);
            }
            None => {
                let room = self.member_room(conn, room)?;
                self.post_to_room(ctx, &room.clone(), image(Some(room), None));
            }
        }
        Ok(())
    }

    fn who(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, room: Option<&str>) -> Outcome {
        let room = match room {
            Some(room) => self.room_name(room)?,
            None => self.active_room(conn)?,
        };
        if !self.state.rooms.contains_key(&room) {
            return Err((ErrorCode::RoomInvalid, format!("there is no room #{room}")));
        }
        self.send_members(ctx, conn, &room);
        Ok(())
    }

    fn send_members(&self, ctx: &mut Context<'_>, conn: ConnectionId, room: &str) {
        let Some(state) = self.state.rooms.get(room) else {
            return;
        };
        let mut members: Vec<String> = state.members.iter().map(|id| self.nick(*id)).collect();
        members.sort_by_key(|nick| nick.to_lowercase());
        self.tell(
            ctx,
            conn,
            &ServerEvent::Members {
                room: room.to_owned(),
                members,
            },
        );
    }

    /// Sends a room event to everyone in the room and remembers it for newcomers.
    fn post_to_room(&mut self, ctx: &mut Context<'_>, room: &str, event: ServerEvent) {
        let (max_len, max_bytes) = (self.config.history_len, self.config.history_bytes);
        let Some(state) = self.state.rooms.get_mut(room) else {
            return;
        };
        let encoded = publish(ctx, state.members.iter().copied(), &event);
        let json = encoded.json.unwrap_or_else(|| event.to_json());
        let line = encoded.line.unwrap_or_else(|| event.render_line());
        state.remember(HistoryEntry { json, line }, max_len, max_bytes);
    }

    /// Sends one event to one client. A send fails only for a client that is gone (the
    /// chat hears `on_close`), one too slow for its queue (the loop closes it, and the
    /// chat hears `on_close`), or, under the drop policy, a message dropped and counted:
    /// nothing for the chat to do in any case.
    fn tell(&self, ctx: &mut Context<'_>, conn: ConnectionId, event: &ServerEvent) {
        let text = match ctx.transport(conn) {
            Some(Transport::WebSocket) => event.to_json(),
            Some(Transport::Line) => event.render_line(),
            None => return,
        };
        let _ = ctx.send(conn, Message::Text(&text));
    }

    fn nick(&self, conn: ConnectionId) -> String {
        self.state
            .members
            .get(&conn)
            .map(|m| m.nick.clone())
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
        self.state
            .members
            .get(&conn)
            .and_then(Member::active_room)
            .map(str::to_owned)
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
        match self.state.members.get(&conn) {
            Some(member) if member.is_in(&room) => Ok(room),
            _ => Err((
                ErrorCode::NotInRoom,
                format!("you are not in #{room}; join it first"),
            )),
        }
    }

    fn recipient(&self, nick: &str) -> Result<ConnectionId, (ErrorCode, String)> {
        self.state.find_nick(nick.trim()).ok_or_else(|| {
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

    /// Charges one request to `conn`'s bucket. A refused request earns a `rate_limited`
    /// error the first time in a row; past `rate_strikes` in a row, the client is
    /// disconnected with 1008.
    fn within_rate(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) -> bool {
        let (rate, burst, strikes) = (
            self.config.rate_per_second,
            self.config.rate_burst,
            self.config.rate_strikes,
        );
        let Some(member) = self.state.members.get_mut(&conn) else {
            return false;
        };
        if member.bucket.allow(ctx.now(), rate, burst) {
            return true;
        }
        match member.bucket.refused {
            1 => {
                let message =
                    format!("slow down: at most {rate} requests a second; this one was dropped");
                self.tell(
                    ctx,
                    conn,
                    &ServerEvent::error(ErrorCode::RateLimited, message),
                );
            }
            n if n >= strikes => ctx.close(conn, CloseCode::PolicyViolation, "rate limit exceeded"),
            _ => {}
        }
        false
    }

    /// A line from the line port: a command, or text for the active room.
    fn handle_line(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, line: &str) {
        match protocol::parse_command(line) {
            Ok(Command::Request(request)) => self.handle(ctx, conn, request),
            Ok(Command::Help) => {
                let _ = ctx.send(conn, Message::Text(&format!("* {}", protocol::HELP)));
            }
            Ok(Command::Quit) => ctx.close(conn, CloseCode::Normal, "bye"),
            Ok(Command::Image(_)) => {
                let error = ServerEvent::error(
                    ErrorCode::BadRequest,
                    "images cannot be sent from the line port",
                );
                self.tell(ctx, conn, &error);
            }
            Ok(Command::Nothing) => {}
            Err(usage) => self.tell(ctx, conn, &ServerEvent::error(ErrorCode::BadRequest, usage)),
        }
    }
}

/// What a request handler returns: nothing, or an error to report to the client.
type Outcome = Result<(), (ErrorCode, String)>;

/// The encodings `publish` made, for reuse (the history keeps them).
struct Encoded {
    json: Option<String>,
    line: Option<String>,
}

/// Sends `event` to each recipient in the form its transport needs, encoding it at most
/// once per transport and sharing the bytes among all recipients of that transport.
fn publish(
    ctx: &mut Context<'_>,
    recipients: impl IntoIterator<Item = ConnectionId>,
    event: &ServerEvent,
) -> Encoded {
    let mut json = None;
    let mut line = None;
    let mut frame: Option<SharedFrame> = None;
    let mut line_frame: Option<SharedFrame> = None;
    for conn in recipients {
        match ctx.transport(conn) {
            Some(Transport::WebSocket) => {
                let frame = frame.get_or_insert_with(|| {
                    SharedFrame::new(Message::Text(json.get_or_insert_with(|| event.to_json())))
                });
                // As in `Chat::tell`, a failed send needs nothing more.
                let _ = ctx.send_shared(conn, frame);
            }
            Some(Transport::Line) => {
                let frame = line_frame.get_or_insert_with(|| {
                    SharedFrame::line(line.get_or_insert_with(|| event.render_line()))
                });
                let _ = ctx.send_shared(conn, frame);
            }
            None => {}
        }
    }
    Encoded { json, line }
}

/// The recipients of a private message: both ends, once each if they are the same.
fn dedup(pair: [ConnectionId; 2]) -> Vec<ConnectionId> {
    if pair[0] == pair[1] {
        vec![pair[0]]
    } else {
        pair.to_vec()
    }
}

/// Accepts `data:image/png;base64,...` as well as bare base64.
fn strip_data_url(data: &str) -> &str {
    match data.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, payload)| payload),
        None => data,
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Handler for Chat {
    fn accept_upgrade(&mut self, request: &Request) -> Result<(), Response> {
        match request.path() {
            "/" | "/ws" => Ok(()),
            path => Err(Response::text(
                404,
                format!("no WebSocket at {path}; use /ws\n"),
            )),
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, _request: Option<&Request>) {
        let nick = self.state.guest_nick();
        self.state.nicks.insert(nick.to_lowercase(), conn);
        let bucket = TokenBucket::new(self.config.rate_burst, ctx.now());
        self.state.members.insert(
            conn,
            Member {
                nick: nick.clone(),
                rooms: Vec::new(),
                bucket,
            },
        );
        let welcome = ServerEvent::Welcome {
            nick,
            server: self.server_name.clone(),
            limits: self.limits(),
        };
        self.tell(ctx, conn, &welcome);
        let room = self.config.default_room.clone();
        if let Err((code, message)) = self.join(ctx, conn, &room) {
            self.tell(ctx, conn, &ServerEvent::error(code, message));
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        if !self.within_rate(ctx, conn) {
            return;
        }
        match (message, ctx.transport(conn)) {
            (Message::Text(line), Some(Transport::Line)) => self.handle_line(ctx, conn, line),
            (Message::Text(text), _) if text.trim_start().starts_with('{') => {
                match serde_json::from_str::<ClientRequest>(text) {
                    Ok(request) => self.handle(ctx, conn, request),
                    Err(e) => {
                        let code = if e.is_data() {
                            ErrorCode::BadRequest
                        } else {
                            ErrorCode::BadJson
                        };
                        self.tell(ctx, conn, &ServerEvent::error(code, e.to_string()));
                    }
                }
            }
            // Bare text, as from `ws.send("hi")` in a console: a message to the active room.
            (Message::Text(text), _) => {
                let request = ClientRequest::Message {
                    room: None,
                    text: text.to_owned(),
                };
                self.handle(ctx, conn, request);
            }
            // A binary frame is an image for the active room.
            (Message::Binary(bytes), _) => {
                if let Err((code, message)) = self.share_image(ctx, conn, None, None, bytes, None) {
                    self.tell(ctx, conn, &ServerEvent::error(code, message));
                }
            }
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) {
        let Some(member) = self.state.members.remove(&conn) else {
            return;
        };
        self.state.nicks.remove(&member.nick.to_lowercase());
        for room in &member.rooms {
            let event = ServerEvent::Leave {
                room: room.clone(),
                nick: member.nick.clone(),
                reason: LeaveReason::Disconnected,
                time: now_ms(),
            };
            let recipients = self.remove_from_room(conn, room);
            publish(ctx, recipients, &event);
        }
    }

    fn on_http(&mut self, request: &Request) -> Response {
        match &self.public {
            Some(files) => files.respond(request),
            None => page::respond(request),
        }
    }
}
