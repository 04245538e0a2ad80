//! What a [`Link`](super::Link) reports: [`Event`], and [`LinkError`] for why a link died.

use super::Value;

/// Which pub/sub namespace a channel lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `SUBSCRIBE` / `PUBLISH`: in a cluster, every message goes to every node.
    Plain,
    /// `SSUBSCRIBE` / `SPUBLISH` (Redis 7): a channel lives in the hash slot of its name,
    /// like a key, and its messages stay on the nodes that serve that slot.
    Sharded,
}

impl Channel {
    /// The command that subscribes in this namespace.
    pub(crate) fn subscribe_command(self) -> &'static [u8] {
        match self {
            Channel::Plain => b"SUBSCRIBE",
            Channel::Sharded => b"SSUBSCRIBE",
        }
    }

    /// The command that unsubscribes in this namespace.
    pub(crate) fn unsubscribe_command(self) -> &'static [u8] {
        match self {
            Channel::Plain => b"UNSUBSCRIBE",
            Channel::Sharded => b"SUNSUBSCRIBE",
        }
    }
}

/// Something that happened on a link, in the order the server's bytes said it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<T> {
    /// The handshake (`HELLO 3`, with `AUTH` if the URL has a password, then `SELECT` if
    /// its database is not 0) succeeded. Commands queued before it were sent right
    /// behind the handshake and are answered as usual.
    Ready,
    /// The link is dead: nothing more is read, sent or reported. The caller closes the
    /// socket and takes back unanswered tags with [`Link::fail_pending`](super::Link::fail_pending).
    Failed(LinkError),
    /// The reply to the command sent with `tag`. An error reply (`WRONGTYPE`, `MOVED`)
    /// is a [`Value::Error`] here: it ends that command, not the link.
    Reply {
        /// The tag the command was sent with.
        tag: T,
        /// The reply.
        value: Value,
    },
    /// A message published to a channel this link subscribes to (a `message` or, for
    /// sharded channels, `smessage` push).
    Message {
        /// The namespace it was published in.
        kind: Channel,
        /// The channel.
        channel: Vec<u8>,
        /// What was published.
        payload: Vec<u8>,
    },
    /// The server confirmed a subscription, one event per channel.
    Subscribed {
        /// The namespace.
        kind: Channel,
        /// The channel.
        channel: Vec<u8>,
    },
    /// The link no longer receives a channel's messages, one event per channel. Either
    /// the caller unsubscribed, or, for a sharded channel in a cluster, the server
    /// dropped the subscription on its own because the channel's hash slot moved to
    /// another node (or the node stopped serving it): then the caller resubscribes where
    /// `CLUSTER SHARDS` says the slot now lives.
    Unsubscribed {
        /// The namespace.
        kind: Channel,
        /// The channel.
        channel: Vec<u8>,
    },
    /// The server refused a `SUBSCRIBE`, `SSUBSCRIBE`, `UNSUBSCRIBE` or `SUNSUBSCRIBE`
    /// as a whole: `NOPERM` (the ACL user may not use one of the channels), and in a
    /// cluster, for sharded channels, `MOVED` (the slot is served elsewhere), `CROSSSLOT`
    /// (the channels are in different slots) or `CLUSTERDOWN`. No channel of the command
    /// changed state.
    SubscriptionRefused {
        /// The namespace of the command.
        kind: Channel,
        /// The channels the command named (none for "unsubscribe from all").
        channels: Vec<Vec<u8>>,
        /// The server's error, as `NOPERM this user has no permissions ...`.
        error: String,
    },
    /// A push the link does not interpret: a client-side-caching `invalidate`, or a
    /// pattern subscription's messages. The first element names its kind.
    Push(Value),
}

/// Why a link died. Each is final: the link reports it once, as [`Event::Failed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The server refused a handshake command: `WRONGPASS` for bad credentials,
    /// `NOPROTO` or an unknown `HELLO` from a server without RESP3 (Redis before 6),
    /// `ERR DB index is out of range` from `SELECT`.
    #[error("the server refused {command}: {message}")]
    Refused {
        /// `HELLO` or `SELECT`.
        command: &'static str,
        /// The server's error reply.
        message: String,
    },
    /// Bytes that are not RESP3, or RESP3 this link does not accept (streamed strings,
    /// which Redis never sends).
    #[error("the server sent bytes that are not a RESP3 reply: {0}")]
    Malformed(String),
    /// A reply nested deeper than [`MAX_NESTING`](super::MAX_NESTING).
    #[error("a reply nests deeper than {} levels", super::MAX_NESTING)]
    TooDeep,
    /// A reply longer than the link accepts ([`MAX_REPLY_BYTES`](super::MAX_REPLY_BYTES)).
    #[error("a reply is longer than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A reply arrived when no command was waiting for one, or a subscription command
    /// was answered with something other than pushes or an error: the two ends disagree
    /// about the conversation (a `MONITOR`, `CLIENT REPLY` or `RESET` sent with
    /// [`Link::command`](super::Link::command), or a server that is not Redis 6 or later).
    #[error("a reply arrived with no command waiting for it")]
    UnexpectedReply,
}
