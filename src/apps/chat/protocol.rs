//! The chat protocol: what clients send, what the server sends, as JSON text frames.
//!
//! Every message is a JSON object whose `type` names it. `docs/PROTOCOL.md` documents each
//! one with an example; these types are the definition. Both directions derive `Serialize`
//! and `Deserialize`, so the server, the terminal client and the tests share them.
//!
//! The same module renders server events as human lines (`render_line`) and parses
//! human commands (`parse_command`), for the raw TCP port and the terminal client.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A request from a client (a JSON text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientRequest {
    /// Take or change nickname.
    Nick {
        /// The nickname wanted.
        nick: String,
    },
    /// Join a room (creating it if needed); it becomes the active room.
    Join {
        /// The room.
        room: String,
        /// The id of the last message of this room the client saw, when it comes back:
        /// the `history` it gets then holds only the messages after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: String,
    },
    /// Say something in a room.
    Message {
        /// The room; the active room if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The text.
        text: String,
    },
    /// Say something to one user only.
    Private {
        /// The recipient's nickname.
        to: String,
        /// The text.
        text: String,
    },
    /// Send an image to a room, or privately to one user.
    Image {
        /// The room; the active room if neither `room` nor `to` is given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// A recipient's nickname, for a private image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The image file, base64-encoded. Its type is read from its first bytes.
        data: String,
    },
    /// Ask who is in a room.
    Who {
        /// The room; the active room if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// Ask which rooms exist.
    Rooms,
}

/// Something the server tells a client (a JSON text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// The first message on a new connection.
    Welcome {
        /// The nickname given to this connection until it picks one.
        nick: String,
        /// The server's name and version.
        server: String,
        /// The limits this server enforces.
        limits: Limits,
    },
    /// Someone joined a room (sent to everyone in it, the newcomer included).
    Join {
        /// The room.
        room: String,
        /// Who joined.
        nick: String,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// Someone left a room (sent to everyone in it, and to the one who left).
    Leave {
        /// The room.
        room: String,
        /// Who left.
        nick: String,
        /// Why: they asked to, or their connection closed.
        reason: LeaveReason,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// Someone changed nickname (sent to everyone sharing a room with them, and to them).
    Nick {
        /// The nickname before.
        old: String,
        /// The nickname now.
        new: String,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// A message in a room (sent to everyone in it, the sender included).
    Message {
        /// Unique, increasing message id.
        id: u64,
        /// The room.
        room: String,
        /// The sender's nickname.
        from: String,
        /// The text.
        text: String,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// A private message (sent to the recipient and the sender).
    Private {
        /// Unique, increasing message id.
        id: u64,
        /// The sender's nickname.
        from: String,
        /// The recipient's nickname.
        to: String,
        /// The text.
        text: String,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// An image, in a room or private.
    Image {
        /// Unique, increasing message id.
        id: u64,
        /// The room, for a room image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The recipient, for a private image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The sender's nickname.
        from: String,
        /// The image type, as found in its first bytes: `image/png`, `image/jpeg`,
        /// `image/gif` or `image/webp`.
        mime: String,
        /// Size of the image in bytes.
        size: usize,
        /// The image, base64-encoded.
        data: String,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// Who is in a room: sent on joining, and in answer to `who`.
    Members {
        /// The room.
        room: String,
        /// Nicknames, sorted.
        members: Vec<String>,
    },
    /// The recent messages of a room, oldest first: sent on joining.
    History {
        /// The room.
        room: String,
        /// `message` and `image` events, as they were sent.
        messages: Vec<ServerEvent>,
        /// The `after` of the join, if it gave one: `messages` are those after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// Set when messages after `after` are no longer kept: the client missed some
        /// that no one can give it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// The chat is split: this server lost its link to the other servers (Redis). Rooms
    /// go on working among the people on this server; see `docs/PROTOCOL.md`.
    Split {
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// The chat is whole again after a `split`.
    Whole {
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
    },
    /// The rooms that exist, in answer to `rooms`.
    Rooms {
        /// Each room with its number of members, sorted by name.
        rooms: Vec<RoomInfo>,
    },
    /// A request failed. Nothing else happened.
    Error {
        /// What kind of failure, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
}

/// Why someone left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They sent `leave`.
    Left,
    /// Their connection closed, cleanly or not.
    Disconnected,
}

/// A room and how many are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    pub name: String,
    /// How many are in it.
    pub members: usize,
}

/// The limits a server enforces, announced in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The longest text message, in bytes of UTF-8.
    pub max_text_bytes: usize,
    /// The largest image, in bytes (before base64).
    pub max_image_bytes: usize,
    /// The image types accepted.
    pub image_types: Vec<String>,
    /// The longest nickname, in characters.
    pub max_nick_chars: usize,
    /// The longest room name, in characters.
    pub max_room_chars: usize,
    /// How many recent messages a room replays to a newcomer.
    pub history: usize,
}

/// The kinds of failure an `error` event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame began with `{` but is not valid JSON.
    BadJson,
    /// Valid JSON, but not a request this server knows (unknown type, missing field).
    BadRequest,
    /// Someone else has that nickname.
    NickTaken,
    /// The nickname is empty, too long, or has characters other than letters, digits,
    /// `-`, `_` and `.`.
    NickInvalid,
    /// The room name is empty, too long, or has characters other than letters, digits,
    /// `-` and `_`.
    RoomInvalid,
    /// The request names a room the client is not in.
    NotInRoom,
    /// The client is in as many rooms as allowed.
    TooManyRooms,
    /// No one has that nickname.
    UnknownUser,
    /// The text is empty.
    EmptyMessage,
    /// The text is longer than `max_text_bytes`.
    MessageTooLarge,
    /// The image is larger than `max_image_bytes`.
    ImageTooLarge,
    /// The image is not base64, or not one of the accepted types.
    ImageInvalid,
    /// Too many requests too fast; this one was dropped.
    RateLimited,
    /// The chat is split (see the `split` event) and this request needs the whole chat:
    /// a nickname change, or a private message to someone on another server. Or the
    /// split came while the request was under way, and it may not have been carried out.
    ChatSplit,
    /// Redis refused or failed the request (out of memory, say): nothing happened; try
    /// again later.
    Unavailable,
}

impl ServerEvent {
    /// An error event.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerEvent {
        ServerEvent::Error {
            code,
            message: message.into(),
        }
    }

    /// The event as a JSON string.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs to a string cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The event as one or more lines of text for people (without a final newline):
    /// what the raw TCP port sends and the terminal client prints.
    pub fn render_line(&self) -> String {
        match self {
            ServerEvent::Welcome { nick, server, .. } => {
                format!("* welcome to {server}; you are {nick} (type /help for commands)")
            }
            ServerEvent::Join { room, nick, .. } => format!("* {nick} joined #{room}"),
            ServerEvent::Leave {
                room,
                nick,
                reason: LeaveReason::Left,
                ..
            } => format!("* {nick} left #{room}"),
            ServerEvent::Leave {
                room,
                nick,
                reason: LeaveReason::Disconnected,
                ..
            } => {
                format!("* {nick} disconnected from #{room}")
            }
            ServerEvent::Nick { old, new, .. } if old == new => format!("* you are {new} already"),
            ServerEvent::Nick { old, new, .. } => format!("* {old} is now {new}"),
            ServerEvent::Message {
                room, from, text, ..
            } => format!("[#{room}] {from}: {}", line_body(text)),
            ServerEvent::Private { from, to, text, .. } => {
                format!("[private] {from} -> {to}: {}", line_body(text))
            }
            ServerEvent::Image {
                room,
                to,
                from,
                mime,
                size,
                ..
            } => {
                let place = match (room, to) {
                    (Some(room), _) => format!("#{room}"),
                    (None, Some(to)) => format!("private to {to}"),
                    (None, None) => "?".to_owned(),
                };
                format!(
                    "[{place}] {from} sent an image ({mime}, {})",
                    human_size(*size)
                )
            }
            ServerEvent::Split { .. } => {
                "! the chat is split: only people on this server hear you until it is whole"
                    .to_owned()
            }
            ServerEvent::Whole { .. } => "* the chat is whole again".to_owned(),
            ServerEvent::Members { room, members } => {
                format!("* in #{room}: {}", members.join(", "))
            }
            ServerEvent::History {
                room,
                messages,
                truncated,
                ..
            } => {
                let mut text = format!("* recent messages in #{room}: {}", messages.len());
                if *truncated {
                    text.push_str(" (some you missed are no longer kept)");
                }
                for message in messages {
                    let _ = write!(text, "\n  {}", message.render_line());
                }
                text
            }
            ServerEvent::Rooms { rooms } => {
                let list: Vec<String> = rooms
                    .iter()
                    .map(|r| format!("#{} ({})", r.name, r.members))
                    .collect();
                format!("* rooms: {}", list.join(", "))
            }
            ServerEvent::Error { code, message } => {
                let code = serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("! {code}: {message}")
            }
        }
    }
}

/// What follows a line break inside a message when it is shown as lines: an indent and a
/// bar, so that no further line of a message can pass for an event of its own.
pub const CONTINUATION: &str = "\n  | ";

/// A message's text made safe to show as lines: every line break (`\n`, `\r\n` or a lone
/// `\r`) becomes [`CONTINUATION`], and other control characters but tabs are dropped, so
/// that a message can neither forge a line (`hi\n[#lobby] admin: ...`) nor drive a
/// terminal with escape sequences.
fn line_body(text: &str) -> String {
    let mut body = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => body.push_str(CONTINUATION),
            '\t' => body.push(c),
            c if c.is_control() => {}
            c => body.push(c),
        }
    }
    body
}

/// "12.3 KiB" and the like.
fn human_size(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// What a line typed by a person means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A request to send to the server.
    Request(ClientRequest),
    /// `/image PATH`: send the file at PATH (the terminal client reads it).
    Image(String),
    /// `/help`: show the commands.
    Help,
    /// `/quit`: close the connection.
    Quit,
    /// A blank line: nothing to do.
    Nothing,
}

/// The commands, for `/help`.
pub const HELP: &str = "commands: /nick NAME, /join ROOM, /leave [ROOM], /msg USER TEXT, /who [ROOM], \
/rooms, /image PATH, /quit, /help; anything else is said in your active room";

/// Parses a line typed by a person: a `/command`, or text to say in the active room. A
/// line that starts with `//` says the rest, starting with `/`.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Command::Nothing);
    }
    let Some(command) = line.strip_prefix('/').filter(|rest| !rest.starts_with('/')) else {
        let text = line.strip_prefix('/').unwrap_or(line);
        return Ok(Command::Request(ClientRequest::Message {
            room: None,
            text: text.to_owned(),
        }));
    };
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let rest = rest.trim();
    let room = |rest: &str| (!rest.is_empty()).then(|| rest.trim_start_matches('#').to_owned());
    let request = match name.to_ascii_lowercase().as_str() {
        "nick" if !rest.is_empty() => ClientRequest::Nick {
            nick: rest.to_owned(),
        },
        "join" if !rest.is_empty() => ClientRequest::Join {
            room: rest.trim_start_matches('#').to_owned(),
            after: None,
        },
        "leave" | "part" => ClientRequest::Leave {
            room: room(rest).unwrap_or_default(),
        },
        "msg" | "private" => {
            let (to, text) = rest.split_once(' ').ok_or("usage: /msg USER TEXT")?;
            ClientRequest::Private {
                to: to.to_owned(),
                text: text.trim().to_owned(),
            }
        }
        "who" | "names" => ClientRequest::Who { room: room(rest) },
        "rooms" | "list" => ClientRequest::Rooms,
        "image" if !rest.is_empty() => return Ok(Command::Image(rest.to_owned())),
        "help" => return Ok(Command::Help),
        "quit" | "exit" => return Ok(Command::Quit),
        "nick" => return Err("usage: /nick NAME".into()),
        "join" => return Err("usage: /join ROOM".into()),
        "image" => return Err("usage: /image PATH".into()),
        other => return Err(format!("unknown command /{other}; {HELP}")),
    };
    Ok(Command::Request(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn further_lines_of_a_message_are_marked() {
        let message = |text: &str| ServerEvent::Message {
            id: 1,
            room: "lobby".into(),
            from: "mallory".into(),
            text: text.into(),
            time: 0,
        };
        assert_eq!(
            message("one line").render_line(),
            "[#lobby] mallory: one line"
        );
        let forged = message("hi\n[#lobby] admin: run this");
        let shown = forged.render_line();
        assert_eq!(shown, "[#lobby] mallory: hi\n  | [#lobby] admin: run this");
        assert_eq!(
            message("a\r\nb\rc\u{1b}[2J").render_line(),
            "[#lobby] mallory: a\n  | b\n  | c[2J"
        );
        let history = ServerEvent::History {
            room: "lobby".into(),
            messages: vec![message("fine"), forged],
            after: None,
            truncated: false,
        };
        let shown = history.render_line();
        assert_eq!(
            shown,
            "* recent messages in #lobby: 2\n  [#lobby] mallory: fine\n  \
             [#lobby] mallory: hi\n  | [#lobby] admin: run this"
        );
    }

    #[test]
    fn a_split_and_its_end_are_shown_to_people() {
        let split = ServerEvent::Split { time: 1 };
        assert_eq!(split.to_json(), r#"{"type":"split","time":1}"#);
        assert!(split.render_line().starts_with("! the chat is split"));
        let whole = ServerEvent::Whole { time: 2 };
        assert_eq!(whole.to_json(), r#"{"type":"whole","time":2}"#);
        assert_eq!(whole.render_line(), "* the chat is whole again");
    }

    #[test]
    fn requests_parse_from_the_documented_json() {
        let cases = [
            (
                r#"{"type":"nick","nick":"ada"}"#,
                ClientRequest::Nick { nick: "ada".into() },
            ),
            (
                r#"{"type":"join","room":"rust"}"#,
                ClientRequest::Join {
                    room: "rust".into(),
                    after: None,
                },
            ),
            (
                r#"{"type":"message","text":"hi"}"#,
                ClientRequest::Message {
                    room: None,
                    text: "hi".into(),
                },
            ),
            (
                r#"{"type":"message","room":"rust","text":"hi","extra":1}"#,
                ClientRequest::Message {
                    room: Some("rust".into()),
                    text: "hi".into(),
                },
            ),
            (r#"{"type":"rooms"}"#, ClientRequest::Rooms),
            (r#"{"type":"who"}"#, ClientRequest::Who { room: None }),
        ];
        for (json, expected) in cases {
            assert_eq!(
                serde_json::from_str::<ClientRequest>(json).unwrap(),
                expected,
                "{json}"
            );
        }
        assert!(serde_json::from_str::<ClientRequest>(r#"{"type":"dance"}"#).is_err());
    }

    #[test]
    fn events_serialize_with_their_type_tag() {
        let event = ServerEvent::Message {
            id: 7,
            room: "lobby".into(),
            from: "ada".into(),
            text: "hi".into(),
            time: 1,
        };
        assert_eq!(
            event.to_json(),
            r#"{"type":"message","id":7,"room":"lobby","from":"ada","text":"hi","time":1}"#
        );
        let error = ServerEvent::error(ErrorCode::NickTaken, "taken");
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","code":"nick_taken","message":"taken"}"#
        );
        assert_eq!(
            serde_json::from_str::<ServerEvent>(&event.to_json()).unwrap(),
            event
        );
    }

    #[test]
    fn commands() {
        let request = |line| match parse_command(line) {
            Ok(Command::Request(request)) => request,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            request("hello"),
            ClientRequest::Message {
                room: None,
                text: "hello".into()
            }
        );
        assert_eq!(
            request("//slash"),
            ClientRequest::Message {
                room: None,
                text: "/slash".into()
            }
        );
        assert_eq!(
            request("/nick ada"),
            ClientRequest::Nick { nick: "ada".into() }
        );
        assert_eq!(
            request("/join #rust"),
            ClientRequest::Join {
                room: "rust".into(),
                after: None,
            }
        );
        assert_eq!(
            request("/msg bob hi there"),
            ClientRequest::Private {
                to: "bob".into(),
                text: "hi there".into()
            }
        );
        assert_eq!(request("/who"), ClientRequest::Who { room: None });
        assert_eq!(
            parse_command("/image cat.png"),
            Ok(Command::Image("cat.png".into()))
        );
        assert_eq!(parse_command("/quit"), Ok(Command::Quit));
        assert_eq!(parse_command("  "), Ok(Command::Nothing));
        assert!(parse_command("/msg bob").is_err());
        assert!(parse_command("/dance").is_err());
    }

    #[test]
    fn lines_for_people() {
        let image = ServerEvent::Image {
            id: 1,
            room: Some("lobby".into()),
            to: None,
            from: "ada".into(),
            mime: "image/png".into(),
            size: 12_600,
            data: String::new(),
            time: 0,
        };
        assert_eq!(
            image.render_line(),
            "[#lobby] ada sent an image (image/png, 12.3 KiB)"
        );
        let error = ServerEvent::error(ErrorCode::UnknownUser, "no one called bob");
        assert_eq!(error.render_line(), "! unknown_user: no one called bob");
        let nick = |old: &str, new: &str| ServerEvent::Nick {
            old: old.into(),
            new: new.into(),
            time: 0,
        };
        assert_eq!(nick("guest-1", "ada").render_line(), "* guest-1 is now ada");
        assert_eq!(nick("ada", "ada").render_line(), "* you are ada already");
    }
}
