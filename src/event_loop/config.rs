//! The server's settings, each with its default and what it trades.

use crate::http::{HeadLimits, OriginPolicy};
use crate::rate::Rate;
use crate::ws::KeepaliveConfig;
use crate::ws::deflate::negotiation::DeflateConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// What to do with a client whose output queue is full (see
/// [`ServerConfig::max_outbound_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowConsumer {
    /// Close it with 1008 ("too slow: output queue full"). The default: a client that
    /// misses messages without knowing is worse off than one told to reconnect.
    #[default]
    Close,
    /// Keep it, and drop the messages that do not fit (counted in
    /// [`Stats::dropped_messages`](super::Stats::dropped_messages)). Frames the server
    /// owes by protocol (Pong, Close) are never dropped.
    Drop,
}

/// Settings for [`Server`](super::Server). `ServerConfig::default()` gives the values the
/// command line uses when no option is given.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Default `127.0.0.1:8080`; use port 0 for any free port.
    pub addr: SocketAddr,
    /// The largest WebSocket message accepted, summed over its fragments. Default 16 MiB.
    /// A bigger message is refused with close code 1009 as soon as its frame header says
    /// so, before it is buffered. Memory per connection can reach this much while a
    /// message is assembled.
    pub max_message_size: usize,
    /// Limits on the HTTP request head: 8 KiB and 64 header fields by default. Past
    /// them the request is refused with 431.
    pub head_limits: HeadLimits,
    /// How long a new connection has to send its request head, and how long a kept-alive
    /// HTTP connection may wait for its next request. Default 10 s. Guards against
    /// clients that connect and say nothing, or dribble a byte at a time.
    pub handshake_timeout: Duration,
    /// How long to wait for the peer's side of a closing handshake, or for it to close
    /// TCP after ours, before dropping the connection. Default 5 s.
    pub close_timeout: Duration,
    /// The most output one connection may have queued, in bytes. Default 64 MiB (four
    /// maximum-size messages). When a send would pass it, the queue is first offered to
    /// the kernel; if it is still over, the client reads slower than its traffic arrives
    /// and is closed with 1008, so it cannot grow the server's memory without bound or
    /// hold up anyone else. A broadcast frame counts in full for each recipient, though
    /// its bytes are stored once.
    pub max_outbound_bytes: usize,
    /// What happens to a client over `max_outbound_bytes`. Default: closed with 1008.
    pub slow_consumer: SlowConsumer,
    /// The most connections at once, open or handshaking. Default 100 000. Beyond it, new
    /// connections are answered with 503 and closed. The process's open-file limit must
    /// allow this many sockets; the `loopchat` binary raises its soft limit to the hard
    /// limit at start.
    pub max_connections: usize,
    /// Where to listen for the line port (`nc`, `telnet`), if anywhere. Default none.
    pub line_addr: Option<SocketAddr>,
    /// The longest line accepted on the line port, in bytes. Default 8 KiB. A longer line
    /// is dropped, and its sender told so in a line of its own.
    pub max_line_bytes: usize,
    /// Pings and the idle timeout for open WebSocket connections, or `None` for neither.
    /// Default: a Ping after 30 s without hearing from the client, and the connection
    /// dropped after 60 s without hearing anything (its Pong would do). A peer that
    /// vanished without closing is otherwise never noticed. Line-port connections have no
    /// Ping and are not timed out.
    pub keepalive: Option<KeepaliveConfig>,
    /// Which web pages may open a WebSocket, by their `Origin` header. Default any.
    /// Refused upgrades get 403; requests without `Origin` (programs other than
    /// browsers) are always allowed. See [`OriginPolicy`].
    pub origins: OriginPolicy,
    /// How many messages (WebSocket messages, or lines on the line port) one connection
    /// may send per second, with a burst allowance, or `None` for no limit at the loop.
    /// Default none: the chat application keeps its own, gentler per-member limit (a
    /// warning first), and the echo and broadcast modes exist for conformance tests and
    /// benchmarks, whose clients send as fast as they can on purpose. Over the limit the
    /// connection is closed with 1008 ("message rate exceeded").
    pub message_rate: Option<Rate>,
    /// permessage-deflate (RFC 7692): what the server agrees to when a client offers it.
    /// Default: accepted, with neither side taking context over from message to message
    /// (so an idle connection holds no zlib state). Compressed messages from clients are
    /// inflated within `max_message_size`; what the server sends them goes compressed
    /// (see `deflate_min_bytes`): a message sent to many, or broadcast, is compressed once
    /// and the compressed bytes are shared by all of them.
    pub deflate: DeflateConfig,
    /// Messages shorter than this many bytes go uncompressed even to clients that
    /// negotiated permessage-deflate: compressing them saves little and costs CPU.
    /// Default 128.
    pub deflate_min_bytes: usize,
    /// The trace (`RUST_LOG=loopchat::trace=trace`, or `loopchat serve --trace`) logs one
    /// line for every this many turns: 1 logs them all; a busy server turns thousands of
    /// times a second. Default 1.
    pub trace_every: u64,
    /// The admin port: metrics, statistics and the live view of the loop, on an address
    /// of its own, served by the same loop (see `crate::admin`). Default: none.
    pub admin: Option<AdminConfig>,
    /// TLS on the main port (`https://` and `wss://`): the certificate chain and key to
    /// load at start, and again on SIGHUP when the server listens for signals. Default:
    /// none (plain HTTP and `ws://`). The line port and the admin port stay plain.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Whether other sockets may listen on the same main and line-port addresses
    /// (`SO_REUSEPORT`), the kernel spreading new connections among them by a hash of
    /// their addresses: how the loops of several workers share one port (see
    /// `crate::workers`). Default false: a second server on the port is refused.
    pub reuse_port: bool,
}

/// Where the admin port listens, and the bearer token it requires, if any. An address
/// other than loopback requires a token: [`Server::bind`](super::Server::bind) refuses it
/// without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The bearer token every request must carry, if any.
    pub token: Option<String>,
    /// What the server calls itself on the live page (`chat`, `echo`, ...).
    pub label: String,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_message_size: 16 * 1024 * 1024,
            head_limits: HeadLimits::default(),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            max_outbound_bytes: 64 * 1024 * 1024,
            slow_consumer: SlowConsumer::Close,
            max_connections: 100_000,
            line_addr: None,
            max_line_bytes: 8 * 1024,
            keepalive: Some(KeepaliveConfig {
                ping_interval: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
            }),
            origins: OriginPolicy::Any,
            message_rate: None,
            deflate: DeflateConfig::default(),
            deflate_min_bytes: 128,
            trace_every: 1,
            admin: None,
            tls: None,
            reuse_port: false,
        }
    }
}
