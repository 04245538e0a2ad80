//! The chat's shared state for workers in one process: what `functions.lua` keeps in
//! Redis, kept in memory by the hub thread (`sequencer.rs`), changed by the same calls
//! with the same arguments, answering with the same replies and announcing the same
//! lines. So the chat's code above the hub (`sharing.rs`, `updates.rs`) is the same
//! whether its instances are processes joined by Redis or workers joined by this.
//!
//! Pure: calls in, a reply and publications out, the time passed in. Each call is applied
//! whole before the next, as a Redis function is, so every worker sees every change once,
//! in the one order the hub made them.
//!
//! Kept out: instance heartbeats (`lc_beat`). Workers live and die with their process
//! (a worker that panics aborts it), so no worker is ever taken for dead.

use super::keys;
use crate::redis::Value;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Rooms whose last message is older than their expiry are looked for this often.
const SWEEP_EVERY_MS: u64 = 60_000;

/// A message to a channel, for every worker that listens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The channel, named as in Redis (`keys.rs`).
    pub channel: String,
    /// What is published.
    pub payload: String,
}

/// A member: its nickname, that nickname lowercased (the key of uniqueness), its rooms.
#[derive(Debug, Clone)]
struct Member {
    nick: String,
    lower: String,
    rooms: Vec<String>,
}

impl Member {
    /// As `lc_snapshot` gives it: "nick TAB lower TAB room,room".
    fn value(&self) -> String {
        format!("{}\t{}\t{}", self.nick, self.lower, self.rooms.join(","))
    }
}

/// A room's id counter and history.
#[derive(Debug, Default)]
struct RoomLog {
    seq: u64,
    history: VecDeque<String>,
    bytes: usize,
    /// When it is forgotten if nothing more is said (milliseconds since the epoch).
    expires_at: u64,
}

/// The chat's state, shared by every worker.
#[derive(Debug, Default)]
pub struct ChatStore {
    /// Member key ("INSTANCE:CONN:SERIAL") to member.
    members: HashMap<String, Member>,
    /// Lowercased nickname to the member holding it.
    nicks: HashMap<String, String>,
    /// Each instance's members.
    by_instance: HashMap<String, BTreeSet<String>>,
    /// The directory's version: one more for every presence line.
    version: u64,
    guests: u64,
    private_ids: u64,
    rooms: HashMap<String, RoomLog>,
    next_sweep: u64,
}

/// The instance part of a member key.
fn instance_of(member: &str) -> &str {
    member.split(':').next().unwrap_or_default()
}

fn text(arg: Option<&Vec<u8>>) -> &str {
    arg.and_then(|a| std::str::from_utf8(a).ok())
        .unwrap_or_default()
}

fn number(arg: Option<&Vec<u8>>) -> u64 {
    text(arg).parse().unwrap_or(0)
}

fn bytes(s: impl Into<String>) -> Value {
    Value::Bytes(s.into().into_bytes())
}

impl ChatStore {
    /// An empty chat.
    pub fn new() -> ChatStore {
        ChatStore::default()
    }

    /// Calls one of the chat's functions, as `FCALL function 1 key args...` would in
    /// Redis, at `now_ms`: its reply, and what it published, in order.
    pub fn call(
        &mut self,
        now_ms: u64,
        function: &str,
        key: &str,
        args: &[Vec<u8>],
    ) -> (Value, Vec<Publication>) {
        self.sweep(now_ms);
        let mut published = Vec::new();
        let arg = |i: usize| text(args.get(i));
        let reply = match function {
            "lc_arrive" => {
                let member = arg(1).to_owned();
                let nick = self.fresh_guest(&member);
                self.members.insert(
                    member.clone(),
                    Member {
                        nick: nick.clone(),
                        lower: nick.clone(),
                        rooms: Vec::new(),
                    },
                );
                self.by_instance
                    .entry(instance_of(&member).to_owned())
                    .or_default()
                    .insert(member.clone());
                self.announce(&mut published, format!("A\t{member}\t{nick}\t"));
                bytes(nick)
            }
            "lc_nick" => Value::Int(self.nick(&mut published, arg(1), arg(2), arg(3))),
            "lc_join" => {
                let (member, room) = (arg(1), arg(2));
                match self.members.get_mut(member) {
                    None => Value::Int(-1),
                    Some(m) => {
                        m.rooms.retain(|r| r != room);
                        m.rooms.push(room.to_owned());
                        self.announce(&mut published, format!("J\t{member}\t{room}"));
                        Value::Int(1)
                    }
                }
            }
            "lc_leave" => {
                let (member, room) = (arg(1), arg(2));
                match self.members.get_mut(member) {
                    None => Value::Int(-1),
                    Some(m) if !m.rooms.iter().any(|r| r == room) => Value::Int(0),
                    Some(m) => {
                        m.rooms.retain(|r| r != room);
                        self.announce(&mut published, format!("L\t{member}\t{room}"));
                        Value::Int(1)
                    }
                }
            }
            "lc_depart" => Value::Int(self.depart(&mut published, arg(1))),
            "lc_beat" => Value::Array(vec![Value::Int(0), Value::Int(0)]),
            "lc_restore" => self.restore(&mut published, args),
            "lc_snapshot" => {
                let mut out = vec![Value::Int(self.version as i64)];
                for (member, m) in &self.members {
                    out.push(bytes(member.as_str()));
                    out.push(bytes(m.value()));
                }
                Value::Array(out)
            }
            "lc_say" => self.say(&mut published, now_ms, key, args),
            "lc_history" => {
                let room = self.live_room(key, now_ms);
                let mut out = vec![Value::Int(room.map_or(0, |r| r.seq) as i64)];
                if let Some(room) = room {
                    out.extend(room.history.iter().map(|json| bytes(json.as_str())));
                }
                Value::Array(out)
            }
            "lc_pm" => {
                let (inbox_to, inbox_from, to, from) = (arg(1), arg(2), arg(3), arg(4));
                if !self.members.contains_key(to) {
                    Value::Int(0)
                } else {
                    self.private_ids += 1;
                    let id = self.private_ids;
                    let payload = format!("{to}\t{from}\t{}{id}{}", arg(5), arg(6));
                    published.push(Publication {
                        channel: inbox_to.to_owned(),
                        payload: payload.clone(),
                    });
                    if inbox_from != inbox_to {
                        published.push(Publication {
                            channel: inbox_from.to_owned(),
                            payload,
                        });
                    }
                    Value::Int(id as i64)
                }
            }
            _ => Value::Error(format!("ERR Function not found: {function}")),
        };
        (reply, published)
    }

    /// Forgets a room's id counter and history (`key` is its counter's key): no worker
    /// holds the room any more, so no one is in it, and a chat alone forgets an empty
    /// room too. Without this, rooms emptied one after another would keep their history
    /// in the process's memory for the whole expiry.
    pub fn forget_room(&mut self, key: &str) {
        self.rooms.remove(key);
    }

    /// How many members, and rooms with a history, the store holds.
    #[cfg(test)]
    pub fn size(&self) -> (usize, usize) {
        (self.members.len(), self.rooms.len())
    }

    fn announce(&mut self, published: &mut Vec<Publication>, line: String) {
        self.version += 1;
        published.push(Publication {
            channel: keys::PRESENCE.to_owned(),
            payload: format!("{}\t{line}", self.version),
        });
    }

    fn fresh_guest(&mut self, member: &str) -> String {
        loop {
            self.guests += 1;
            let nick = format!("guest-{}", self.guests);
            if !self.nicks.contains_key(&nick) {
                self.nicks.insert(nick.clone(), member.to_owned());
                return nick;
            }
        }
    }

    /// `lc_nick`: 1 done, 0 taken, -1 no such member.
    fn nick(
        &mut self,
        published: &mut Vec<Publication>,
        member: &str,
        nick: &str,
        lower: &str,
    ) -> i64 {
        let Some(old_lower) = self.members.get(member).map(|m| m.lower.clone()) else {
            return -1;
        };
        if self.nicks.get(lower).is_some_and(|owner| owner != member) {
            return 0;
        }
        if old_lower != lower && self.nicks.get(&old_lower).is_some_and(|o| o == member) {
            self.nicks.remove(&old_lower);
        }
        self.nicks.insert(lower.to_owned(), member.to_owned());
        if let Some(m) = self.members.get_mut(member) {
            m.nick = nick.to_owned();
            m.lower = lower.to_owned();
        }
        self.announce(published, format!("N\t{member}\t{nick}"));
        1
    }

    /// Removes a member everywhere, freeing its nickname if it holds it: 1, or 0 if it
    /// was not a member.
    fn depart(&mut self, published: &mut Vec<Publication>, member: &str) -> i64 {
        let Some(m) = self.members.remove(member) else {
            return 0;
        };
        if self
            .nicks
            .get(&m.lower)
            .is_some_and(|owner| owner == member)
        {
            self.nicks.remove(&m.lower);
        }
        let instance = instance_of(member);
        if let Some(set) = self.by_instance.get_mut(instance) {
            set.remove(member);
            if set.is_empty() {
                self.by_instance.remove(instance);
            }
        }
        self.announce(published, format!("D\t{member}"));
        1
    }

    /// `lc_restore`: an instance's members are exactly these (member, nick, lowercased
    /// nick, rooms). Returns the renamed, as member, nick, ...
    fn restore(&mut self, published: &mut Vec<Publication>, args: &[Vec<u8>]) -> Value {
        let instance = text(args.get(1)).to_owned();
        let count = number(args.get(3)) as usize;
        let field = |i: usize, f: usize| text(args.get(4 + 4 * i + f)).to_owned();
        let wanted: BTreeSet<String> = (0..count).map(|i| field(i, 0)).collect();
        let gone: Vec<String> = self
            .by_instance
            .get(&instance)
            .map(|set| set.difference(&wanted).cloned().collect())
            .unwrap_or_default();
        for member in gone {
            self.depart(published, &member);
        }
        let mut renamed = Vec::new();
        for i in 0..count {
            let (member, mut nick, mut lower, rooms) =
                (field(i, 0), field(i, 1), field(i, 2), field(i, 3));
            if let Some(old) = self.members.get(&member).map(|m| m.lower.clone())
                && old != lower
                && self.nicks.get(&old).is_some_and(|o| *o == member)
            {
                self.nicks.remove(&old);
            }
            if self.nicks.get(&lower).is_some_and(|owner| *owner != member) {
                nick = self.fresh_guest(&member);
                lower = nick.clone();
                renamed.push(bytes(member.as_str()));
                renamed.push(bytes(nick.as_str()));
            } else {
                self.nicks.insert(lower.clone(), member.clone());
            }
            let list: Vec<String> = rooms
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            self.members.insert(
                member.clone(),
                Member {
                    nick: nick.clone(),
                    lower,
                    rooms: list,
                },
            );
            self.by_instance
                .entry(instance.clone())
                .or_default()
                .insert(member.clone());
            self.announce(published, format!("A\t{member}\t{nick}\t{rooms}"));
        }
        Value::Array(renamed)
    }

    /// `lc_say`: the room's next id, the message kept in its history (at most `max_len`
    /// entries and `max_bytes` bytes) and published. A room new to the store starts
    /// counting at its creation time in milliseconds times 1,000, as in Redis.
    fn say(
        &mut self,
        published: &mut Vec<Publication>,
        now_ms: u64,
        key: &str,
        args: &[Vec<u8>],
    ) -> Value {
        let (channel, head, tail) = (text(args.get(1)), text(args.get(2)), text(args.get(3)));
        let (max_len, max_bytes, expire) = (
            number(args.get(4)) as usize,
            number(args.get(5)) as usize,
            number(args.get(6)),
        );
        if self.live_room(key, now_ms).is_none() {
            self.rooms.insert(key.to_owned(), RoomLog::default());
        }
        let Some(room) = self.rooms.get_mut(key) else {
            return Value::Error("ERR no room".into());
        };
        room.seq = if room.seq == 0 {
            now_ms * 1000 + 1
        } else {
            room.seq + 1
        };
        let json = format!("{head}{}{tail}", room.seq);
        room.bytes += json.len();
        room.history.push_back(json.clone());
        while room.history.len() > max_len || room.bytes > max_bytes {
            let Some(old) = room.history.pop_front() else {
                break;
            };
            room.bytes -= old.len();
        }
        room.expires_at = now_ms.saturating_add(expire);
        published.push(Publication {
            channel: channel.to_owned(),
            payload: json,
        });
        Value::Int(room.seq as i64)
    }

    /// The room with id counter `key`, unless its time ran out.
    fn live_room(&mut self, key: &str, now_ms: u64) -> Option<&RoomLog> {
        if self.rooms.get(key).is_some_and(|r| r.expires_at <= now_ms) {
            self.rooms.remove(key);
        }
        self.rooms.get(key)
    }

    /// Forgets the rooms whose time ran out, once a minute.
    fn sweep(&mut self, now_ms: u64) {
        if now_ms < self.next_sweep {
            return;
        }
        self.next_sweep = now_ms + SWEEP_EVERY_MS;
        self.rooms.retain(|_, room| room.expires_at > now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn call(
        store: &mut ChatStore,
        function: &str,
        key: &str,
        list: &[&str],
    ) -> (Value, Vec<Publication>) {
        store.call(1_000, function, key, &args(list))
    }

    const A: &str = "000000000000000a:1:1";
    const B: &str = "000000000000000b:1:2";

    #[test]
    fn nicknames_are_unique_whatever_their_case_and_freed_on_departure() {
        let mut store = ChatStore::new();
        let (nick, published) = call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", A]);
        assert_eq!(nick.as_str(), Some("guest-1"));
        assert_eq!(published[0].channel, keys::PRESENCE);
        assert_eq!(published[0].payload, format!("1\tA\t{A}\tguest-1\t"));
        call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", B]);
        let taken = call(
            &mut store,
            "lc_nick",
            keys::DIRECTORY,
            &["publish", A, "Ada", "ada"],
        );
        assert_eq!(taken.0, Value::Int(1));
        let refused = call(
            &mut store,
            "lc_nick",
            keys::DIRECTORY,
            &["publish", B, "ADA", "ada"],
        );
        assert_eq!(refused, (Value::Int(0), vec![]));
        let (gone, published) = call(&mut store, "lc_depart", keys::DIRECTORY, &["publish", A]);
        assert_eq!(gone, Value::Int(1));
        assert_eq!(published[0].payload, format!("4\tD\t{A}"));
        let free = call(
            &mut store,
            "lc_nick",
            keys::DIRECTORY,
            &["publish", B, "ADA", "ada"],
        );
        assert_eq!(free.0, Value::Int(1));
        assert_eq!(
            call(
                &mut store,
                "lc_nick",
                keys::DIRECTORY,
                &["publish", A, "x", "x"]
            )
            .0,
            Value::Int(-1)
        );
    }

    #[test]
    fn a_room_counts_from_its_creation_time_and_keeps_a_bounded_history() {
        let mut store = ChatStore::new();
        let seq = keys::room_seq("lobby");
        let channel = keys::room_channel("lobby");
        let say = |store: &mut ChatStore, text: &str| {
            let head = format!("{{\"text\":\"{text}\",\"id\":");
            store.call(
                5,
                "lc_say",
                &seq,
                &args(&["publish", &channel, &head, "}", "2", "1000", "60000"]),
            )
        };
        let (id, published) = say(&mut store, "a");
        assert_eq!(id, Value::Int(5001));
        assert_eq!(
            published,
            vec![Publication {
                channel: channel.clone(),
                payload: "{\"text\":\"a\",\"id\":5001}".into()
            }]
        );
        say(&mut store, "b");
        say(&mut store, "c");
        let (history, _) = store.call(6, "lc_history", &seq, &[]);
        let items = history.into_array().unwrap();
        assert_eq!(items[0], Value::Int(5003));
        let texts: Vec<&str> = items[1..].iter().filter_map(Value::as_str).collect();
        assert_eq!(
            texts,
            [
                "{\"text\":\"b\",\"id\":5002}",
                "{\"text\":\"c\",\"id\":5003}"
            ]
        );
        // After its expiry, the room is forgotten and counts again from the time.
        let (history, _) = store.call(70_000, "lc_history", &seq, &[]);
        assert_eq!(history.into_array().unwrap(), [Value::Int(0)]);
    }

    #[test]
    fn a_private_message_goes_to_both_inboxes_once_each_and_not_to_a_stranger() {
        let mut store = ChatStore::new();
        call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", A]);
        call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", B]);
        let (ia, ib) = (keys::inbox(0xa), keys::inbox(0xb));
        let (id, published) = call(
            &mut store,
            "lc_pm",
            keys::PRIVATE_IDS,
            &["publish", &ib, &ia, B, A, "{\"id\":", "}"],
        );
        assert_eq!(id, Value::Int(1));
        let channels: Vec<&str> = published.iter().map(|p| p.channel.as_str()).collect();
        assert_eq!(channels, [ib.as_str(), ia.as_str()]);
        assert_eq!(published[0].payload, format!("{B}\t{A}\t{{\"id\":1}}"));
        let (same, published) = call(
            &mut store,
            "lc_pm",
            keys::PRIVATE_IDS,
            &["publish", &ia, &ia, A, A, "", ""],
        );
        assert_eq!((same, published.len()), (Value::Int(2), 1));
        let stranger = call(
            &mut store,
            "lc_pm",
            keys::PRIVATE_IDS,
            &["publish", &ia, &ia, "0:0:0", A, "", ""],
        );
        assert_eq!(stranger, (Value::Int(0), vec![]));
    }

    #[test]
    fn a_restore_keeps_the_instance_to_the_members_it_names_and_renames_a_taken_nick() {
        let mut store = ChatStore::new();
        call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", A]);
        call(
            &mut store,
            "lc_nick",
            keys::DIRECTORY,
            &["publish", A, "Ada", "ada"],
        );
        let a2 = "000000000000000a:2:3";
        call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", a2]);
        // Instance b says it has B, called "ada" too, in rust and lobby.
        let (renamed, published) = call(
            &mut store,
            "lc_restore",
            keys::DIRECTORY,
            &[
                "publish",
                "000000000000000b",
                "10000",
                "1",
                B,
                "Ada",
                "ada",
                "rust,lobby",
            ],
        );
        assert_eq!(renamed, Value::Array(vec![bytes(B), bytes("guest-3")]));
        assert_eq!(
            published.last().unwrap().payload,
            format!("4\tA\t{B}\tguest-3\trust,lobby")
        );
        // Instance a now has only A: a2 departs.
        let (_, published) = call(
            &mut store,
            "lc_restore",
            keys::DIRECTORY,
            &[
                "publish",
                "000000000000000a",
                "10000",
                "1",
                A,
                "Ada",
                "ada",
                "",
            ],
        );
        assert_eq!(published[0].payload, format!("5\tD\t{a2}"));
        let (snapshot, _) = call(&mut store, "lc_snapshot", keys::DIRECTORY, &[]);
        let items = snapshot.into_array().unwrap();
        assert_eq!(items[0], Value::Int(6));
        assert_eq!(items.len(), 1 + 2 * 2);
        assert_eq!(store.size(), (2, 0));
    }

    #[test]
    fn joining_makes_a_room_the_last_and_leaving_needs_membership() {
        let mut store = ChatStore::new();
        call(&mut store, "lc_arrive", keys::DIRECTORY, &["publish", A]);
        for room in ["lobby", "rust", "lobby"] {
            assert_eq!(
                call(
                    &mut store,
                    "lc_join",
                    keys::DIRECTORY,
                    &["publish", A, room]
                )
                .0,
                Value::Int(1)
            );
        }
        assert_eq!(
            call(
                &mut store,
                "lc_leave",
                keys::DIRECTORY,
                &["publish", A, "go"]
            )
            .0,
            Value::Int(0)
        );
        assert_eq!(
            call(
                &mut store,
                "lc_leave",
                keys::DIRECTORY,
                &["publish", A, "rust"]
            )
            .0,
            Value::Int(1)
        );
        let (snapshot, _) = call(&mut store, "lc_snapshot", keys::DIRECTORY, &[]);
        assert_eq!(
            snapshot.into_array().unwrap()[2].as_str(),
            Some("guest-1\tguest-1\tlobby")
        );
        assert!(
            call(&mut store, "lc_nope", keys::DIRECTORY, &[])
                .0
                .is_error()
        );
    }
}
