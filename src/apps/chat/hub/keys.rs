//! The names of the chat's keys and channels in Redis (`functions.lua` derives the rest).
//!
//! Everything about members (the directory) shares the hash tag `{lc}`, so that on a
//! Redis Cluster it lives on one shard and one function can change it atomically; each
//! room's id counter, history and channel share the tag `{r:ROOM}`, so rooms spread over
//! the shards and a message costs one shard one function call.

use super::super::directory::MemberKey;

/// The directory's version counter: the key every directory function is called with.
pub const DIRECTORY: &str = "lc:{lc}:ver";

/// The private-message id counter.
pub const PRIVATE_IDS: &str = "lc:{lc}:pmid";

/// Where every directory change is announced.
pub const PRESENCE: &str = "lc:{lc}:presence";

/// A room's id counter (the key `lc_say` and `lc_history` are called with).
pub fn room_seq(room: &str) -> String {
    format!("lc:{{r:{room}}}:seq")
}

/// A room's channel.
pub fn room_channel(room: &str) -> String {
    format!("lc:{{r:{room}}}:say")
}

/// The room a channel is for.
pub fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("lc:{r:")?.strip_suffix("}:say")
}

/// An instance's inbox, where private messages for its members arrive.
pub fn inbox(instance: u64) -> String {
    format!("lc:{{lc}}:inbox:{instance:016x}")
}

/// The inbox of the instance a member is on.
pub fn inbox_of(member: MemberKey) -> String {
    inbox(member.instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::key_slot;

    #[test]
    fn a_rooms_keys_share_a_slot_and_the_directory_has_one() {
        assert_eq!(
            key_slot(room_seq("lobby").as_bytes()),
            key_slot(room_channel("lobby").as_bytes())
        );
        assert_eq!(
            key_slot(DIRECTORY.as_bytes()),
            key_slot(PRESENCE.as_bytes())
        );
        assert_eq!(
            key_slot(DIRECTORY.as_bytes()),
            key_slot(inbox(7).as_bytes())
        );
        assert_eq!(room_of_channel(&room_channel("rust")), Some("rust"));
        assert_eq!(room_of_channel(PRESENCE), None);
    }
}
