//! Who is in the chat: every member on every instance, their nicknames and rooms.
//!
//! With one process, this is simply the chat's members. With `--redis`, every instance
//! keeps a copy of the whole chat's directory, loaded from Redis when it connects and then
//! kept current by the presence channel, on which every change is published in the order
//! Redis made it. `who`, `rooms`, the member list a newcomer gets, the nickname check and
//! the routing of a private message are then answered from memory, without a round trip.
//! The copy costs about a hundred bytes per member of the whole chat on each instance:
//! `docs/SCALING.md` counts what that means at a million.

use super::protocol::RoomInfo;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// A member anywhere: the instance it is connected to, and its connection there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberKey {
    /// The instance's id (random, chosen at start).
    pub instance: u64,
    /// The connection's slab key on that instance.
    pub conn: usize,
    /// The connection's serial on that instance: slab keys are reused at once, and a
    /// message or a change meant for a member that just left must not reach the next
    /// connection given its key.
    pub serial: u64,
}

impl fmt::Display for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}:{}:{}", self.instance, self.conn, self.serial)
    }
}

impl FromStr for MemberKey {
    type Err = ();

    fn from_str(s: &str) -> Result<MemberKey, ()> {
        let mut parts = s.splitn(3, ':');
        let (Some(instance), Some(conn), Some(serial)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        Ok(MemberKey {
            instance: u64::from_str_radix(instance, 16).map_err(|_| ())?,
            conn: conn.parse().map_err(|_| ())?,
            serial: serial.parse().map_err(|_| ())?,
        })
    }
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The nickname, as its owner spelled it.
    pub nick: String,
    /// Its rooms, in the order joined: the last is its active room.
    pub rooms: Vec<String>,
}

impl Entry {
    /// Whether it is in `room`.
    pub fn is_in(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r == room)
    }
}

/// The chat's members and rooms.
#[derive(Debug, Default)]
pub struct Directory {
    members: HashMap<MemberKey, Entry>,
    /// Nicknames lowercased (they are unique without regard to case), to their owners.
    nicks: HashMap<String, MemberKey>,
    /// Rooms that have members, and who.
    rooms: BTreeMap<String, BTreeSet<MemberKey>>,
}

impl Directory {
    /// A member's entry.
    pub fn get(&self, member: MemberKey) -> Option<&Entry> {
        self.members.get(&member)
    }

    /// How many members the chat has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Who holds `nick`, compared without case.
    pub fn find_nick(&self, nick: &str) -> Option<MemberKey> {
        self.nicks.get(&nick.to_lowercase()).copied()
    }

    /// Adds a member (or, if known, replaces its nickname and rooms).
    pub fn insert(&mut self, member: MemberKey, entry: Entry) {
        self.remove(member);
        self.nicks.insert(entry.nick.to_lowercase(), member);
        for room in &entry.rooms {
            self.rooms.entry(room.clone()).or_default().insert(member);
        }
        self.members.insert(member, entry);
    }

    /// Removes a member, returning what it was.
    pub fn remove(&mut self, member: MemberKey) -> Option<Entry> {
        let entry = self.members.remove(&member)?;
        let lower = entry.nick.to_lowercase();
        if self.nicks.get(&lower) == Some(&member) {
            self.nicks.remove(&lower);
        }
        for room in &entry.rooms {
            self.leave_room_index(member, room);
        }
        Some(entry)
    }

    /// Puts a member in a room, making it its active room. True if it was not in it.
    pub fn join(&mut self, member: MemberKey, room: &str) -> bool {
        let Some(entry) = self.members.get_mut(&member) else {
            return false;
        };
        let new = !entry.is_in(room);
        entry.rooms.retain(|r| r != room);
        entry.rooms.push(room.to_owned());
        self.rooms
            .entry(room.to_owned())
            .or_default()
            .insert(member);
        new
    }

    /// Takes a member out of a room. True if it was in it.
    pub fn leave(&mut self, member: MemberKey, room: &str) -> bool {
        let Some(entry) = self.members.get_mut(&member) else {
            return false;
        };
        if !entry.is_in(room) {
            return false;
        }
        entry.rooms.retain(|r| r != room);
        self.leave_room_index(member, room);
        true
    }

    /// Gives a member a new nickname; returns the old one.
    pub fn rename(&mut self, member: MemberKey, nick: &str) -> Option<String> {
        let entry = self.members.get_mut(&member)?;
        let old = std::mem::replace(&mut entry.nick, nick.to_owned());
        let lower = old.to_lowercase();
        if self.nicks.get(&lower) == Some(&member) {
            self.nicks.remove(&lower);
        }
        self.nicks.insert(nick.to_lowercase(), member);
        Some(old)
    }

    /// Who is in a room.
    pub fn room(&self, room: &str) -> impl Iterator<Item = MemberKey> + '_ {
        self.rooms.get(room).into_iter().flatten().copied()
    }

    /// Whether a room has members.
    pub fn room_exists(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// How many rooms have members.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The nicknames in a room, sorted without regard to case.
    pub fn nicks_in(&self, room: &str) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .room(room)
            .filter_map(|m| self.members.get(&m))
            .map(|e| e.nick.clone())
            .collect();
        nicks.sort_by_key(|nick| nick.to_lowercase());
        nicks
    }

    /// Every room with members, and `always` (the default room) even if empty, sorted.
    pub fn room_list(&self, always: &str) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(name, members)| RoomInfo {
                name: name.clone(),
                members: members.len(),
            })
            .collect();
        if !self.rooms.contains_key(always) {
            rooms.push(RoomInfo {
                name: always.to_owned(),
                members: 0,
            });
            rooms.sort_by(|a, b| a.name.cmp(&b.name));
        }
        rooms
    }

    /// Every member of one instance.
    pub fn of_instance(&self, instance: u64) -> Vec<MemberKey> {
        self.members
            .keys()
            .filter(|m| m.instance == instance)
            .copied()
            .collect()
    }

    fn leave_room_index(&mut self, member: MemberKey, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&member);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(instance: u64, conn: usize) -> MemberKey {
        MemberKey {
            instance,
            conn,
            serial: conn as u64 + 100,
        }
    }

    #[test]
    fn member_keys_round_trip() {
        let k = key(0xdead_beef, 42);
        assert_eq!(k.to_string(), "00000000deadbeef:42:142");
        assert_eq!(k.to_string().parse::<MemberKey>(), Ok(k));
        assert!("x:1".parse::<MemberKey>().is_err());
        assert!("1".parse::<MemberKey>().is_err());
    }

    #[test]
    fn nicks_rooms_and_removal() {
        let mut d = Directory::default();
        let entry = |nick: &str, rooms: &[&str]| Entry {
            nick: nick.into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
        };
        d.insert(key(1, 1), entry("Ada", &["lobby"]));
        d.insert(key(2, 1), entry("bob", &["lobby", "rust"]));
        assert_eq!(d.find_nick("ADA"), Some(key(1, 1)));
        assert_eq!(d.nicks_in("lobby"), ["Ada", "bob"]);
        assert!(d.join(key(1, 1), "rust"));
        assert!(!d.join(key(1, 1), "rust"));
        assert_eq!(d.get(key(1, 1)).unwrap().rooms, ["lobby", "rust"]);
        assert_eq!(d.rename(key(2, 1), "Bo").as_deref(), Some("bob"));
        assert_eq!(d.find_nick("bob"), None);
        assert_eq!(d.find_nick("bo"), Some(key(2, 1)));
        d.remove(key(2, 1));
        assert_eq!(d.len(), 1);
        assert_eq!(d.nicks_in("rust"), ["Ada"]);
        assert!(d.leave(key(1, 1), "rust"));
        assert!(!d.room_exists("rust"));
        let names: Vec<_> = d.room_list("lobby").into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["lobby"]);
    }
}
