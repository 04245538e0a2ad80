//! One client connection: its socket, where it stands, and its queued output.

use super::outbound::OutboundQueue;
use super::shared_frame::{Lane, Transport};
use crate::line::LineReader;
use crate::rate::TokenBucket;
use crate::ws::{Keepalive, State, WebSocket};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a connection stands. A connection moves forward only:
/// `Http` → `WebSocket` → `Lingering`, or `Http` → `Lingering` (after a response, unless
/// the connection is kept alive for the next request, which starts `Http` afresh), or, on
/// the line port, `Line` → `Lingering`.
#[derive(Debug)]
// The WebSocket variant is the largest by far, and that is fine: connections live in a
// slab, whose slots are as large as the largest variant anyway. Boxing it would add an
// allocation per connection and save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Phase {
    /// Reading an HTTP request head: the first on a new connection, or the next on one
    /// kept alive. The bytes are kept until the head is complete; the buffer is bounded
    /// by the head limit.
    Http(Vec<u8>),
    /// The upgrade is done and frames flow. The codec's [`State`] says how far the
    /// closing handshake has got.
    WebSocket(WebSocket),
    /// A connection on the line port: text lines both ways, open until either side
    /// closes.
    Line(LineReader),
    /// Nothing more will be said: the last bytes (a Close, an HTTP response) are flushed,
    /// then our side of the TCP connection is shut down (the server closes first, as RFC
    /// 6455 §7.1.1 asks), and input is read and discarded until the peer's FIN or the
    /// close deadline. Reading to the end, rather than closing at once, keeps the kernel
    /// from answering unread input with a reset that could destroy our last bytes before
    /// the peer reads them. It remembers what the connection spoke, so that the admin
    /// port can count closing connections by transport.
    Lingering(Protocol),
}

/// What a connection speaks on the wire; once it lingers, what it spoke. Only the admin
/// port's counts ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1: a request being read (a WebSocket handshake not yet answered, or a
    /// plain request), or a plain response being flushed.
    Http,
    /// WebSocket frames, after the upgrade.
    WebSocket,
    /// Text lines, on the line port.
    Line,
}

impl Protocol {
    /// Its name in `/stats` and `/metrics`: `http`, `websocket`, `line`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::WebSocket => "websocket",
            Protocol::Line => "line",
        }
    }
}

impl Phase {
    /// What the connection speaks (or spoke, while it lingers).
    pub fn protocol(&self) -> Protocol {
        match self {
            Phase::Http(_) => Protocol::Http,
            Phase::WebSocket(_) => Protocol::WebSocket,
            Phase::Line(_) => Protocol::Line,
            Phase::Lingering(spoke) => *spoke,
        }
    }
}

/// A connection in the slab. Its key there is its `mio::Token`.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The socket, registered with the poll under the connection's token.
    pub stream: TcpStream,
    /// Its TLS session, on a server with TLS (see `wire.rs`): everything read and
    /// written above it is plaintext.
    pub tls: Option<Box<super::wire::TlsSession>>,
    /// The peer's address, for logs.
    pub peer: SocketAddr,
    /// A number unique to this connection for the life of the server. Slab keys are
    /// reused; timers carry the serial so that a timer set for an old connection does not
    /// fire on a new one in the same slot.
    pub serial: u64,
    /// Where the connection stands.
    pub phase: Phase,
    /// Output not yet accepted by the kernel.
    pub out: OutboundQueue,
    /// When the connection's one deadline falls: the end of the handshake (or of a
    /// kept-alive connection's wait for its next request), the keepalive's next check
    /// while it is an open WebSocket, or the end of the closing handshake.
    pub deadline: Option<Instant>,
    /// Whether WRITABLE interest is registered: only while output remains after a short
    /// write, so an idle connection costs no writable wake-ups.
    pub writable_registered: bool,
    /// Whether the connection is on the loop's list of connections to flush this turn.
    pub flush_scheduled: bool,
    /// Whether the connection is on the loop's list to read again next turn, because it
    /// used its read budget before the socket ran dry.
    pub read_scheduled: bool,
    /// Whether our write side has been shut down.
    pub shutdown_sent: bool,
    /// Whether an HTTP response was sent and the connection kept open for another
    /// request: then an idle timeout closes it quietly instead of with 408.
    pub kept_alive: bool,
    /// Whether the peer has shut down its write side (we read end of stream). The
    /// connection is removed as soon as its queued output is written.
    pub read_closed: bool,
    /// Whether the application has been told the connection opened and not yet told it
    /// closed. Guarantees exactly one `on_close` for each `on_open`.
    pub in_app: bool,
    /// Whether it came in on the admin port: never the application's, never given
    /// broadcasts (see `admin.rs`).
    pub admin: bool,
    /// The number of the first broadcast in the [broadcast log](super::broadcast_log)
    /// this connection has not taken: every earlier broadcast meant for it (of its
    /// transport, and not made with it as the exception) is in `out` or written.
    /// Meaningful while the connection is open.
    pub next_broadcast: u64,
    /// When the peer was last heard from and whether it was pinged since, while the
    /// connection is an open WebSocket and keepalive is on.
    pub keepalive: Option<Keepalive>,
    /// The connection's message budget, made at its first message when the server limits
    /// message rates ([`ServerConfig::message_rate`](super::ServerConfig::message_rate)).
    pub rate: Option<TokenBucket>,
}

impl Connection {
    /// A freshly accepted connection, in `phase`, with a `deadline` for it if it has one.
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        serial: u64,
        phase: Phase,
        deadline: Option<Instant>,
    ) -> Connection {
        Connection {
            stream,
            tls: None,
            peer,
            serial,
            phase,
            out: OutboundQueue::default(),
            deadline,
            writable_registered: false,
            flush_scheduled: false,
            read_scheduled: false,
            shutdown_sent: false,
            read_closed: false,
            kept_alive: false,
            in_app: false,
            admin: false,
            next_broadcast: 0,
            keepalive: None,
            rate: None,
        }
    }

    /// Puts this connection (whose key is `key`) on the flush list, unless it is there.
    pub fn schedule_flush(&mut self, key: usize, to_flush: &mut Vec<usize>) {
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            to_flush.push(key);
        }
    }

    /// How the connection talks, while it is open for application messages.
    pub fn transport(&self) -> Option<Transport> {
        match &self.phase {
            Phase::WebSocket(ws) if ws.state() == State::Open => Some(Transport::WebSocket),
            Phase::Line(_) => Some(Transport::Line),
            _ => None,
        }
    }

    /// How messages to it are encoded, while it is open for application messages: which
    /// lane of the broadcast log it reads.
    pub fn lane(&self) -> Option<Lane> {
        if self.admin {
            return None;
        }
        match &self.phase {
            Phase::WebSocket(ws) if ws.state() == State::Open => Some(if ws.sends_compressed() {
                Lane::Deflate
            } else {
                Lane::WebSocket
            }),
            Phase::Line(_) => Some(Lane::Line),
            _ => None,
        }
    }

    /// Whether messages to it may go compressed (permessage-deflate negotiated).
    pub fn sends_compressed(&self) -> bool {
        matches!(&self.phase, Phase::WebSocket(ws) if ws.sends_compressed())
    }

    /// Whether the connection is open for application messages.
    pub fn is_open(&self) -> bool {
        self.transport().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection costs a slab slot of this size, idle or not: the bulk of the
    /// server's memory per idle connection (measured by `loopchat bench connections`).
    /// Growing it is a decision, not an accident: this fails first. (Last grown by 8
    /// bytes, the pointer to a connection's TLS session: one pointer on every
    /// connection, so that a server without TLS pays only that.)
    #[test]
    fn a_slab_slot_stays_small() {
        let (connection, websocket) = (size_of::<Connection>(), size_of::<WebSocket>());
        assert!(websocket <= 248, "WebSocket has {websocket} bytes");
        assert!(connection <= 448, "Connection has {connection} bytes");
    }
}
