//! The chat: nicknames, rooms, messages, private messages, images and recent history,
//! for browsers, terminal clients and `nc` users at once.
//!
//! - [`protocol`]: the JSON messages both ways (documented in `docs/PROTOCOL.md`), and the
//!   human form of each for the line port and the terminal client.
//! - `state`: members, rooms, history, rate limits. Plain data.
//! - `page`: the web page, embedded in the binary.
//!
//! - `directory`: who is in the chat, on every instance; `state`: what this instance
//!   holds (its connections, and its rooms with their history).
//! - `requests`: what each request asks, checked; `updates`: a change of the shared chat
//!   (a join, a message, ...) carried out here: the notices and deliveries it means.
//! - `hub` and `sharing`: with `--redis` (or several workers, through their hub thread),
//!   changes go to the hub, which orders them and announces them to every instance; each
//!   instance applies what it hears with the same `updates` code. A chat alone applies
//!   changes at once.
//!
//! Every event is serialized at most once per transport however many receive it: to JSON
//! and framed once into a [`SharedFrame`] for the WebSocket clients, and rendered once as a
//! line for the line-port clients, each only if someone of that kind is listening. A
//! message from Redis arrives as JSON and is framed once, the same way.

mod directory;
mod hub;
mod page;
pub mod protocol;
mod requests;
mod sharing;
mod state;
mod updates;

use crate::admin::LinkReport;
use crate::http::static_files::StaticFiles;
use crate::http::{Request, Response};
use crate::images;
use crate::redis::RedisUrl;
use crate::{
    CloseCode, ConnectionId, Context, Handler, LinkEvent, LinkId, Message, SharedFrame, Transport,
};
use base64::engine::general_purpose::STANDARD as BASE64_ENGINE;
use directory::{Directory, MemberKey};
pub use hub::{ChatStore, HubLink, Publication, hub_for_workers};
use protocol::{Command, ErrorCode, Limits, ServerEvent};
use sharing::SharedChat;
use state::{Input, Local, MAX_WAITING, Room, TokenBucket};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
pub struct Chat {
    config: ChatConfig,
    /// A folder to serve instead of the built-in page (`--public DIR`).
    public: Option<StaticFiles>,
    /// `name/version`, announced in `welcome`.
    server_name: String,
    /// This instance's id: random, so that instances sharing a Redis tell their members
    /// apart.
    instance: u64,
    /// Everyone in the chat, here and on other instances.
    directory: Directory,
    /// This instance's connections.
    locals: HashMap<ConnectionId, Local>,
    /// The rooms this instance holds.
    rooms: BTreeMap<String, Room>,
    /// The number for the next `guest-N` nickname given here (without Redis, or while
    /// the chat is split).
    next_guest: u64,
    /// The id of the next message (without Redis; with it, each room counts in Redis).
    next_id: u64,
    next_serial: u64,
    /// The link to Redis, with `--redis`.
    sharing: Option<SharedChat>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("config", &self.config)
            .field("instance", &format_args!("{:016x}", self.instance))
            .field("members", &self.directory.len())
            .field("sharing", &self.sharing.is_some())
            .finish_non_exhaustive()
    }
}

impl Chat {
    /// A chat with these settings, serving the built-in page.
    pub fn new(config: ChatConfig) -> Chat {
        let mut rooms = BTreeMap::new();
        rooms.insert(config.default_room.clone(), Room::default());
        Chat {
            config,
            public: None,
            server_name: format!("loopchat {}", env!("CARGO_PKG_VERSION")),
            instance: random_u64(),
            directory: Directory::default(),
            locals: HashMap::new(),
            rooms,
            next_guest: 0,
            next_id: 0,
            next_serial: 0,
            sharing: None,
        }
    }

    /// Serves the files of a folder over HTTP instead of the built-in page.
    pub fn with_public_files(mut self, files: StaticFiles) -> Chat {
        self.public = Some(files);
        self
    }

    /// Makes this instance one of several sharing the chat through Redis at `url`
    /// (resolved to `addr`). An instance silent for `timeout` is taken for dead: its
    /// members are removed everywhere; a Redis that does not answer within it is taken
    /// for gone: the chat is split until it is back.
    pub fn with_redis(mut self, url: RedisUrl, addr: SocketAddr, timeout: Duration) -> Chat {
        self.sharing = Some(SharedChat::new(url, addr, self.instance, timeout));
        self
    }

    /// Makes this chat one worker's of several in one process, sharing the chat through
    /// their in-process hub (see [`hub_for_workers`]).
    pub fn with_hub(mut self, link: HubLink) -> Chat {
        self.sharing = Some(SharedChat::in_process(link, self.instance));
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

    /// A connection here, as a member of the chat.
    fn me(&self, conn: ConnectionId) -> MemberKey {
        MemberKey {
            instance: self.instance,
            conn: conn.index(),
            serial: self.locals.get(&conn).map_or(0, |l| l.serial),
        }
    }

    /// The connection here of a member, if it is here (the same connection, not a later
    /// one given the same key).
    fn local(&self, member: MemberKey) -> Option<ConnectionId> {
        let conn = ConnectionId::from_index(member.conn);
        let here = member.instance == self.instance
            && self
                .locals
                .get(&conn)
                .is_some_and(|l| l.serial == member.serial);
        here.then_some(conn)
    }

    /// Whether changes go through Redis now (it is configured and connected).
    fn shared(&self) -> bool {
        self.sharing.as_ref().is_some_and(SharedChat::is_up)
    }

    /// Whether Redis is configured but not connected: the chat is split.
    fn split(&self) -> bool {
        self.sharing.as_ref().is_some_and(|r| !r.is_up())
    }

    /// A fresh `guest-N` nickname no one here knows of.
    fn guest_nick(&mut self) -> String {
        loop {
            self.next_guest += 1;
            let nick = format!("guest-{}", self.next_guest);
            if self.directory.find_nick(&nick).is_none() {
                return nick;
            }
        }
    }

    /// What `conn` sent, now or after the answer to its earlier request.
    fn take_input(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, input: Input) {
        let Some(local) = self.locals.get_mut(&conn) else {
            return;
        };
        if local.busy {
            if local.waiting.len() >= MAX_WAITING {
                let error = ServerEvent::error(
                    ErrorCode::RateLimited,
                    "too many requests waiting for the chat; this one was dropped",
                );
                self.tell(ctx, conn, &error);
            } else {
                local.waiting.push_back(input);
            }
            return;
        }
        match input {
            Input::Arrive => self.arrive(ctx, conn),
            Input::JoinDefault => {
                let room = self.config.default_room.clone();
                let after = self
                    .locals
                    .get(&conn)
                    .and_then(|l| l.resume.get(&room).copied());
                if let Err((code, message)) = self.join(ctx, conn, &room, after) {
                    self.tell(ctx, conn, &ServerEvent::error(code, message));
                }
            }
            Input::Text(text) => self.handle_text(ctx, conn, &text),
            Input::Binary(bytes) => {
                if let Err((code, message)) = self.share_image(ctx, conn, None, None, &bytes, None)
                {
                    self.tell(ctx, conn, &ServerEvent::error(code, message));
                }
            }
        }
    }

    /// The answer to `conn`'s request came: what waited for it goes on, until a request
    /// must wait again.
    fn done(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) {
        let Some(local) = self.locals.get_mut(&conn) else {
            return;
        };
        local.busy = false;
        while let Some(local) = self.locals.get_mut(&conn)
            && !local.busy
            && let Some(input) = local.waiting.pop_front()
        {
            self.take_input(ctx, conn, input);
        }
    }

    /// A text message or line from `conn`.
    fn handle_text(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, text: &str) {
        match ctx.transport(conn) {
            Some(Transport::Line) => self.handle_line(ctx, conn, text),
            _ if text.trim_start().starts_with('{') => {
                match serde_json::from_str::<protocol::ClientRequest>(text) {
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
            _ => {
                let request = protocol::ClientRequest::Message {
                    room: None,
                    text: text.to_owned(),
                };
                self.handle(ctx, conn, request);
            }
        }
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

    /// Charges one request to `conn`'s bucket. A refused request earns a `rate_limited`
    /// error the first time in a row; past `rate_strikes` in a row, the client is
    /// disconnected with 1008.
    fn within_rate(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) -> bool {
        let (rate, burst, strikes) = (
            self.config.rate_per_second,
            self.config.rate_burst,
            self.config.rate_strikes,
        );
        let Some(local) = self.locals.get_mut(&conn) else {
            return false;
        };
        if local.bucket.allow(ctx.now(), rate, burst) {
            return true;
        }
        match local.bucket.refused {
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

    /// Tells every connection here.
    fn tell_everyone(&self, ctx: &mut Context<'_>, event: &ServerEvent) {
        let all: Vec<ConnectionId> = self.locals.keys().copied().collect();
        publish(ctx, all, event);
    }

    /// Lets the hub write what was queued and set its alarm; and acts on what that
    /// raised (a Redis that takes no more is gone: the split is told at once).
    fn flush_hub(&mut self, ctx: &mut Context<'_>) {
        for _ in 0..4 {
            let Some(sharing) = &mut self.sharing else {
                return;
            };
            sharing.flush(ctx);
            if !sharing.has_events() {
                return;
            }
            self.take_hub_events(ctx);
        }
    }
}

/// What a request handler returns: nothing, or an error to report to the client.
type Outcome = Result<(), (ErrorCode, String)>;

/// The encodings `publish` made, for reuse (the history keeps them); or given to it, made
/// already.
struct Encoded {
    json: Option<String>,
    line: Option<String>,
    /// The event framed for WebSocket clients (by the workers' hub, once for all).
    frame: Option<SharedFrame>,
}

/// Sends `event` to each recipient in the form its transport needs, encoding it at most
/// once per transport and sharing the bytes among all recipients of that transport.
fn publish(
    ctx: &mut Context<'_>,
    recipients: impl IntoIterator<Item = ConnectionId>,
    event: &ServerEvent,
) -> Encoded {
    publish_encoded(
        ctx,
        recipients,
        Encoded {
            json: None,
            line: None,
            frame: None,
        },
        event,
    )
}

/// [`publish`], with encodings already made (a message from Redis comes as JSON).
fn publish_encoded(
    ctx: &mut Context<'_>,
    recipients: impl IntoIterator<Item = ConnectionId>,
    mut encoded: Encoded,
    event: &ServerEvent,
) -> Encoded {
    let mut frame: Option<SharedFrame> = encoded.frame.take();
    let mut line_frame: Option<SharedFrame> = None;
    for conn in recipients {
        match ctx.transport(conn) {
            Some(Transport::WebSocket) => {
                let frame = frame.get_or_insert_with(|| {
                    let json = encoded.json.get_or_insert_with(|| event.to_json());
                    SharedFrame::new(Message::Text(json))
                });
                // As in `Chat::tell`, a failed send needs nothing more.
                let _ = ctx.send_shared(conn, frame);
            }
            Some(Transport::Line) => {
                let frame = line_frame.get_or_insert_with(|| {
                    SharedFrame::line(encoded.line.get_or_insert_with(|| event.render_line()))
                });
                let _ = ctx.send_shared(conn, frame);
            }
            None => {}
        }
    }
    encoded
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

/// A random number, for the instance's id: from the standard library's randomly keyed
/// hasher, with the time and process id mixed in.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The `after` list of a connecting client's URL: `?after=lobby:41,rust:17` (the id of
/// the last message it saw in each room).
fn resume_list(request: Option<&Request>) -> HashMap<String, u64> {
    let Some(query) = request
        .and_then(|r| r.target.split_once('?'))
        .map(|(_, q)| q)
    else {
        return HashMap::new();
    };
    // Decoded before it is split: `URLSearchParams` and `encodeURIComponent` encode the
    // commas and colons too.
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("after="))
        .filter_map(|list| {
            percent_encoding::percent_decode_str(list)
                .decode_utf8()
                .ok()
        })
        .flat_map(|list| {
            list.split(',')
                .filter_map(|item| {
                    let (room, id) = item.rsplit_once(':')?;
                    let room = state::valid_room(room, 64)?;
                    Some((room, id.parse().ok()?))
                })
                .collect::<Vec<(String, u64)>>()
        })
        .take(64)
        .collect()
}

impl Handler for Chat {
    /// The rooms this instance holds, and how many of its own connections are in each
    /// (with Redis, members on other instances are theirs to count).
    fn rooms(&self) -> Vec<(String, usize)> {
        self.rooms
            .iter()
            .map(|(name, room)| (name.clone(), room.members.len()))
            .collect()
    }

    /// With `--redis`, the link to Redis.
    fn links(&self) -> Vec<LinkReport> {
        self.sharing.iter().filter_map(SharedChat::report).collect()
    }

    fn accept_upgrade(&mut self, request: &Request) -> Result<(), Response> {
        match request.path() {
            "/" | "/ws" => Ok(()),
            path => Err(Response::text(
                404,
                format!("no WebSocket at {path}; use /ws\n"),
            )),
        }
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        if let Some(sharing) = &mut self.sharing {
            sharing.start(ctx);
        }
        self.flush_hub(ctx);
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, request: Option<&Request>) {
        self.next_serial += 1;
        let bucket = TokenBucket::new(self.config.rate_burst, ctx.now());
        let local = Local::new(bucket, self.next_serial, resume_list(request));
        self.locals.insert(conn, local);
        self.arrive(ctx, conn);
        self.flush_hub(ctx);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        if !self.within_rate(ctx, conn) {
            return;
        }
        let input = match message {
            Message::Text(text) => Input::Text(text.to_owned()),
            // A binary frame is an image for the active room.
            Message::Binary(bytes) => Input::Binary(bytes.to_vec()),
        };
        self.take_input(ctx, conn, input);
        self.flush_hub(ctx);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) {
        let me = self.me(conn);
        if self.locals.remove(&conn).is_none() {
            return;
        }
        for room in self.rooms.values_mut() {
            room.members.remove(&conn);
            room.waiting.retain(|(c, _)| *c != conn);
        }
        self.depart(ctx, me);
        self.flush_hub(ctx);
    }

    fn on_link(&mut self, ctx: &mut Context<'_>, link: LinkId, event: LinkEvent<'_>) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        sharing.on_link(ctx, link, event);
        self.take_hub_events(ctx);
        self.flush_hub(ctx);
    }

    fn on_alarm(&mut self, ctx: &mut Context<'_>) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        sharing.on_alarm(ctx);
        self.take_hub_events(ctx);
        self.flush_hub(ctx);
    }

    fn on_wake(&mut self, ctx: &mut Context<'_>) {
        let Some(sharing) = &mut self.sharing else {
            return;
        };
        sharing.on_wake();
        self.take_hub_events(ctx);
        self.flush_hub(ctx);
    }

    fn on_http(&mut self, request: &Request) -> Response {
        match &self.public {
            Some(files) => files.respond(request),
            None => page::respond(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{HeadLimits, parse_request};

    fn resume_of(target: &str) -> HashMap<String, u64> {
        let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let (request, _) = parse_request(head.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        resume_list(Some(&request))
    }

    #[test]
    fn the_after_list_is_read_encoded_or_not() {
        let expected = HashMap::from([("lobby".to_owned(), 41), ("rust".to_owned(), 17)]);
        assert_eq!(resume_of("/ws?after=lobby:41,rust:17"), expected);
        assert_eq!(resume_of("/ws?x=1&after=lobby%3A41%2Crust%3A17"), expected);
        assert_eq!(resume_of("/ws?after=lobby%3A41,%23Rust:17"), expected);
        assert!(resume_of("/ws?after=lobby:x,:3,a/b:4").is_empty());
        assert!(resume_of("/ws").is_empty());
    }
}
