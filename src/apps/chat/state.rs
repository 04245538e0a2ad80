//! What this instance holds of the chat: its own connections (their request budgets and
//! the requests waiting for Redis), and the rooms they are in, each with its recent
//! messages. Plain data with no I/O. Who is in the chat, on every instance, is in
//! `directory.rs`.

use crate::ConnectionId;
use std::collections::{BTreeSet, HashMap, VecDeque};

pub use crate::rate::TokenBucket;

/// The most requests a connection may have waiting while its last one is with Redis.
/// Past it a request is refused as too fast (the rate limit lets a burst of 60 through,
/// and a round trip to Redis is well under a millisecond, so only a client flooding a
/// stalled Redis gets here).
pub const MAX_WAITING: usize = 64;

/// Something a connection sent, kept until its earlier request is answered.
#[derive(Debug)]
pub enum Input {
    /// A text message or a line.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// Arriving, while the first connection to Redis is being made.
    Arrive,
    /// Joining the default room on arrival.
    JoinDefault,
}

/// One connection of this instance, as the chat sees it.
#[derive(Debug)]
pub struct Local {
    /// Its request budget.
    pub bucket: TokenBucket,
    /// Tells this connection from a later one given the same id, for answers from Redis
    /// that arrive after it left.
    pub serial: u64,
    /// A request of its own is with Redis: later ones wait, so that it gets its answers
    /// in the order it asked.
    pub busy: bool,
    /// What waits for that answer.
    pub waiting: VecDeque<Input>,
    /// The last message id it saw in each room, from its `after` list on connecting: a
    /// join of one of these rooms resumes after it.
    pub resume: HashMap<String, u64>,
    /// The `after` of each join under way.
    pub joining: HashMap<String, Option<u64>>,
}

impl Local {
    /// A new connection with a full budget.
    pub fn new(bucket: TokenBucket, serial: u64, resume: HashMap<String, u64>) -> Local {
        Local {
            bucket,
            serial,
            busy: false,
            waiting: VecDeque::new(),
            resume,
            joining: HashMap::new(),
        }
    }
}

/// A message kept for newcomers, encoded once for each transport.
#[derive(Debug)]
pub struct HistoryEntry {
    /// Its id, for `after`.
    pub id: u64,
    /// The `message` or `image` event as JSON.
    pub json: String,
    /// The same event as a line for people.
    pub line: String,
}

/// A room as this instance holds it: the rooms its connections are in (and the default
/// room, always).
#[derive(Debug, Default)]
pub struct Room {
    /// The connections here that get its messages, in a stable order.
    pub members: BTreeSet<ConnectionId>,
    /// Connections that joined it and wait for its history (with Redis, while it loads),
    /// with their `after`.
    pub waiting: Vec<(ConnectionId, Option<u64>)>,
    /// With Redis: its history is being loaded; messages that arrive meanwhile wait here.
    pub loading: Option<Vec<HistoryEntry>>,
    /// Joins of this room under way (with Redis): it is kept while any is.
    pub joins_under_way: usize,
    /// Recent messages, oldest first.
    history: VecDeque<HistoryEntry>,
    /// Bytes held by `history` (its JSON), bounded so that images cannot pile up.
    history_bytes: usize,
    /// Every message up to this id is no longer kept.
    forgotten_through: u64,
    /// The highest id seen.
    pub last_id: u64,
}

impl Room {
    /// A room whose history is being loaded (from Redis).
    pub fn loading() -> Room {
        Room {
            loading: Some(Vec::new()),
            ..Room::default()
        }
    }

    /// Whether nothing here needs the room any more.
    pub fn unused(&self) -> bool {
        self.members.is_empty() && self.waiting.is_empty() && self.joins_under_way == 0
    }

    /// Remembers a message, forgetting the oldest while there are more than `max_len`
    /// or they take more than `max_bytes`.
    pub fn remember(&mut self, entry: HistoryEntry, max_len: usize, max_bytes: usize) {
        self.last_id = self.last_id.max(entry.id);
        self.history_bytes += entry.json.len();
        self.history.push_back(entry);
        while self.history.len() > max_len || self.history_bytes > max_bytes {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.forgotten_through = old.id;
            self.history_bytes -= old.json.len();
        }
    }

    /// Replaces the history with one loaded from Redis: `entries` oldest first, and
    /// `last_id` the room's latest id (messages up to it that are not in `entries` are
    /// no longer kept). Returns the entries with ids above the ones held before, which
    /// the members here have not seen (said while the chat was split). On a first load
    /// there are no members yet to send them to: newcomers wait for the load.
    pub fn reload(
        &mut self,
        entries: Vec<HistoryEntry>,
        last_id: u64,
        max_len: usize,
        max_bytes: usize,
    ) -> Vec<usize> {
        let seen = self.last_id;
        self.history.clear();
        self.history_bytes = 0;
        self.forgotten_through = entries.first().map_or(last_id, |e| e.id.saturating_sub(1));
        self.last_id = 0;
        for entry in entries {
            self.remember(entry, max_len, max_bytes);
        }
        self.last_id = self.last_id.max(last_id);
        self.history
            .iter()
            .enumerate()
            .filter(|(_, e)| e.id > seen)
            .map(|(i, _)| i)
            .collect()
    }

    /// Takes the history out (to put it back with [`Room::reload`]).
    pub fn take_history(&mut self) -> Vec<HistoryEntry> {
        self.history_bytes = 0;
        self.history.drain(..).collect()
    }

    /// An entry of the history, by position.
    pub fn entry(&self, index: usize) -> Option<&HistoryEntry> {
        self.history.get(index)
    }

    /// The entries after `after` (all if `None`), and whether some after it are no
    /// longer kept.
    fn since(&self, after: Option<u64>) -> (impl Iterator<Item = &HistoryEntry>, bool) {
        let after_id = after.unwrap_or(0);
        let truncated = after.is_some() && after_id < self.forgotten_through;
        let entries = self
            .history
            .iter()
            .filter(move |e| after.is_none() || e.id > after_id);
        (entries, truncated)
    }

    /// The `history` event for this room, as JSON. Assembled from the stored JSON of each
    /// message, so nothing is serialized again.
    pub fn history_json(&self, name: &str, after: Option<u64>) -> String {
        let (entries, truncated) = self.since(after);
        let mut json = String::with_capacity(self.history_bytes + name.len() + 64);
        json.push_str(r#"{"type":"history","room":"#);
        json.push_str(&serde_json::to_string(name).unwrap_or_default());
        json.push_str(r#","messages":["#);
        for (i, entry) in entries.enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&entry.json);
        }
        json.push(']');
        if let Some(after) = after {
            json.push_str(&format!(r#","after":{after}"#));
        }
        if truncated {
            json.push_str(r#","truncated":true"#);
        }
        json.push('}');
        json
    }

    /// The history as lines for people.
    pub fn history_lines(&self, name: &str, after: Option<u64>) -> String {
        let (entries, truncated) = self.since(after);
        let entries: Vec<&HistoryEntry> = entries.collect();
        let mut text = format!("* recent messages in #{name}: {}", entries.len());
        if truncated {
            text.push_str(" (some you missed are no longer kept)");
        }
        for entry in entries {
            text.push_str("\n  ");
            text.push_str(&entry.line);
        }
        text
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
                    id: i,
                    json: format!("{{\"n\":{i}}}"),
                    line: format!("{i}"),
                },
                3,
                1000,
            );
        }
        assert_eq!(
            room.history_json("a", None),
            r#"{"type":"history","room":"a","messages":[{"n":7},{"n":8},{"n":9}]}"#
        );
        assert_eq!(
            room.history_json("a", Some(8)),
            r#"{"type":"history","room":"a","messages":[{"n":9}],"after":8}"#
        );
        assert_eq!(
            room.history_json("a", Some(5)),
            r#"{"type":"history","room":"a","messages":[{"n":7},{"n":8},{"n":9}],"after":5,"truncated":true}"#,
            "6 is forgotten"
        );
        assert!(!room.history_json("a", Some(6)).contains("truncated"));
        room.remember(
            HistoryEntry {
                id: 10,
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
