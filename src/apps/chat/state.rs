//! The chat's memory: who is connected under which nickname, which rooms exist, who is in
//! each, and each room's recent messages. Plain data with no I/O; the handler in `mod.rs`
//! decides what to change and whom to tell.

use crate::ConnectionId;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

pub use crate::rate::TokenBucket;

/// One connected client.
#[derive(Debug)]
pub struct Member {
    /// The nickname, as the client spelled it.
    pub nick: String,
    /// The rooms it is in, in the order joined; the last is the active room, where bare
    /// text and binary images go.
    pub rooms: Vec<String>,
    /// Its request budget.
    pub bucket: TokenBucket,
}

impl Member {
    /// The room where requests that name none go: the most recently joined one.
    pub fn active_room(&self) -> Option<&str> {
        self.rooms.last().map(String::as_str)
    }

    /// Whether it is in `room`.
    pub fn is_in(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r == room)
    }

    /// Makes `room` the active room, adding it if new.
    pub fn activate(&mut self, room: &str) {
        self.rooms.retain(|r| r != room);
        self.rooms.push(room.to_owned());
    }
}

/// A message kept for newcomers, encoded once for each transport.
#[derive(Debug)]
pub struct HistoryEntry {
    /// The `message` or `image` event as JSON.
    pub json: String,
    /// The same event as a line for people.
    pub line: String,
}

/// A room.
#[derive(Debug, Default)]
pub struct Room {
    /// Who is in it, in a stable order.
    pub members: BTreeSet<ConnectionId>,
    /// Recent messages, oldest first.
    history: VecDeque<HistoryEntry>,
    /// Bytes held by `history` (its JSON), bounded so that images cannot pile up.
    history_bytes: usize,
}

impl Room {
    /// Remembers a message, forgetting the oldest while there are more than `max_len`
    /// or they take more than `max_bytes`.
    pub fn remember(&mut self, entry: HistoryEntry, max_len: usize, max_bytes: usize) {
        self.history_bytes += entry.json.len();
        self.history.push_back(entry);
        while self.history.len() > max_len || self.history_bytes > max_bytes {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= old.json.len();
        }
    }

    /// The `history` event for this room, as JSON. Assembled from the stored JSON of each
    /// message, so nothing is serialized again.
    pub fn history_json(&self, name: &str) -> String {
        let mut json = String::with_capacity(self.history_bytes + name.len() + 48);
        json.push_str(r#"{"type":"history","room":"#);
        json.push_str(&serde_json::to_string(name).unwrap_or_default());
        json.push_str(r#","messages":["#);
        for (i, entry) in self.history.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&entry.json);
        }
        json.push_str("]}");
        json
    }

    /// The history as lines for people.
    pub fn history_lines(&self, name: &str) -> String {
        let mut text = format!("* recent messages in #{name}: {}", self.history.len());
        for entry in &self.history {
            text.push_str("\n  ");
            text.push_str(&entry.line);
        }
        text
    }
}

/// Everything the chat remembers.
#[derive(Debug, Default)]
pub struct ChatState {
    /// Connected clients.
    pub members: HashMap<ConnectionId, Member>,
    /// Nicknames in use, lowercased (nicknames are unique without regard to case), to
    /// their owners.
    pub nicks: HashMap<String, ConnectionId>,
    /// Rooms with at least one member, and the default room always.
    pub rooms: BTreeMap<String, Room>,
    /// The number for the next `guest-N` nickname.
    next_guest: u64,
    /// The id of the next message.
    next_id: u64,
}

impl ChatState {
    /// A fresh `guest-N` nickname that no one holds.
    pub fn guest_nick(&mut self) -> String {
        loop {
            self.next_guest += 1;
            let nick = format!("guest-{}", self.next_guest);
            if !self.nicks.contains_key(&nick) {
                return nick;
            }
        }
    }

    /// The next message id.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Who holds `nick`, compared without case.
    pub fn find_nick(&self, nick: &str) -> Option<ConnectionId> {
        self.nicks.get(&nick.to_lowercase()).copied()
    }

    /// Everyone who shares a room with `conn`, and `conn` itself, each once.
    pub fn neighbours(&self, conn: ConnectionId) -> BTreeSet<ConnectionId> {
        let mut all = BTreeSet::from([conn]);
        if let Some(member) = self.members.get(&conn) {
            for room in &member.rooms {
                if let Some(room) = self.rooms.get(room) {
                    all.extend(room.members.iter().copied());
                }
            }
        }
        all
    }
}

/// Normalises and checks a nickname: 1 to `max` characters, letters, digits, `-`, `_`
/// and `.`. Returns it trimmed.
pub fn valid_nick(nick: &str, max: usize) -> Option<&str> {
    let nick = nick.trim();
    let ok = !nick.is_empty()
        && nick.chars().count() <= max
        && nick
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then_some(nick)
}

/// Normalises and checks a room name: a leading `#` is dropped, letters are lowercased;
/// 1 to `max` characters, letters, digits, `-` and `_`.
pub fn valid_room(room: &str, max: usize) -> Option<String> {
    let room = room.trim().trim_start_matches('#').to_lowercase();
    let ok = !room.is_empty()
        && room.chars().count() <= max
        && room
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'));
    ok.then_some(room)
}

/// Removes control characters other than newline and tab, so that no one can send
/// terminal escape sequences to the people on the line port or in a terminal.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(valid_nick(" ada ", 24), Some("ada"));
        assert_eq!(valid_nick("Zoë_1.b-c", 24), Some("Zoë_1.b-c"));
        for bad in ["", "a b", "<script>", "x".repeat(25).as_str(), "tab\there"] {
            assert_eq!(valid_nick(bad, 24), None, "{bad}");
        }
        assert_eq!(valid_room("#Rust", 32).as_deref(), Some("rust"));
        assert_eq!(valid_room("a/b", 32), None);
        assert_eq!(valid_room("#", 32), None);
    }

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(
            clean_text("red\u{1b}[31m alert\r\nline two\u{7}"),
            "red[31m alert\nline two"
        );
    }

    #[test]
    fn history_is_bounded_by_count_and_bytes() {
        let mut room = Room::default();
        for i in 0..10 {
            room.remember(
                HistoryEntry {
                    json: format!("{{\"n\":{i}}}"),
                    line: format!("{i}"),
                },
                3,
                1000,
            );
        }
        assert_eq!(
            room.history_json("a"),
            r#"{"type":"history","room":"a","messages":[{"n":7},{"n":8},{"n":9}]}"#
        );
        room.remember(
            HistoryEntry {
                // 7 + 7 + 995 bytes: over 1000 until only the big one is left.
                json: "x".repeat(995),
                line: String::new(),
            },
            3,
            1000,
        );
        assert_eq!(room.history.len(), 1, "the big entry pushed the others out");
    }
}
