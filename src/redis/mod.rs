//! A Redis client protocol, sans I/O: [`Link`] is one connection's RESP3 conversation as
//! pure code over bytes.
//!
//! Like `quinn-proto` and Python's `h11`, a link owns no socket and reads no clock. The
//! caller, loopchat's `mio` loop, moves the bytes: it passes what it reads to
//! [`Link::feed`], writes [`Link::output`] and reports what the kernel took with
//! [`Link::consume_output`], and drains [`Link::poll_event`]. Keeping the loop's one
//! thread in charge of every socket means Redis connections are polled with the
//! WebSocket ones, with no second runtime and no threads; and the protocol is tested
//! with byte literals, then once against a real `redis-server` over a blocking socket,
//! the same code either way. Timeouts are the caller's policy: it sees
//! [`Link::pending_replies`] and keeps the time.
//!
//! RESP3 itself (the frame types, their encoding and decoding) is the `redis-protocol`
//! crate's; this module decides what the frames mean:
//!
//! - [`url`]: [`RedisUrl`], `redis://[[user]:password@]host[:port][/db]`, which never
//!   prints its password.
//! - [`value`]: [`Value`], the owned reply the rest of the program handles.
//! - `reader`: bytes in, whole frames out, in linear time however a reply is split,
//!   within [`MAX_REPLY_BYTES`] and [`MAX_NESTING`].
//! - [`event`]: [`Event`], what a link reports, and [`LinkError`], why one died.
//! - [`link`]: [`Link`], the handshake, commands matched to replies in order, and
//!   pub/sub over RESP3 pushes (its documentation records what redis-server 7.0.15 sends).
//!
//! ```
//! use loopchat::redis::{Event, Link, RedisUrl, Value};
//!
//! let url: RedisUrl = "redis://127.0.0.1:6379".parse().unwrap();
//! let mut link: Link<&str> = Link::new(&url);
//! link.command("greeting", &[b"GET", b"greeting"]);
//! // The loop writes this to the socket: the handshake, then the command.
//! assert_eq!(
//!     link.output(),
//!     b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$3\r\nGET\r\n$8\r\ngreeting\r\n"
//! );
//! link.consume_output(link.output().len());
//! // And passes on what it reads: HELLO's map, then GET's reply.
//! link.feed(b"%1\r\n$5\r\nproto\r\n:3\r\n$5\r\nhello\r\n");
//! assert_eq!(link.poll_event(), Some(Event::Ready));
//! let reply = Event::Reply { tag: "greeting", value: Value::Bytes(b"hello".to_vec()) };
//! assert_eq!(link.poll_event(), Some(reply));
//! ```

pub mod event;
pub mod link;
mod reader;
pub mod url;
pub mod value;

pub use event::{Channel, Event, LinkError};
pub use link::Link;
pub use reader::{MAX_NESTING, MAX_REPLY_BYTES};
pub use url::{RedisUrl, UrlError};
pub use value::Value;

/// The Redis Cluster hash slot (0 to 16383) of a key, or of a sharded channel's name:
/// CRC16 of the key modulo 16384, where a key with a non-empty `{hash tag}` hashes only
/// the tag, so `{user:7}.name` and `{user:7}.rooms` share a slot.
pub fn key_slot(key: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(key)
}

#[cfg(test)]
mod tests {
    use super::key_slot;

    #[test]
    fn key_slots_as_the_cluster_spec_computes_them() {
        // The CRC16 (XMODEM) check value of "123456789" is 0x31C3.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // The first '{' and the first '}' after it; an empty tag hashes the whole key.
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert!(key_slot(b"") < 16384);
        for n in 0..10_000u32 {
            assert!(key_slot(n.to_string().as_bytes()) < 16384);
        }
    }
}
