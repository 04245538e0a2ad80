//! loopchat: a WebSocket server on one hand-driven `mio` event loop.
//!
//! One thread, one `mio::Poll`, every connection in a `slab` whose key is the connection's
//! token. Bytes read from a socket go to that connection's state machine: an HTTP/1.1
//! request head first, then RFC 6455 frames. Output is queued per connection and written
//! once per loop turn without blocking. Concurrency without threads, as in Node.
//!
//! # Layout
//!
//! - [`ws`]: the WebSocket protocol after the handshake, as pure code over byte buffers:
//!   frame headers, masking, UTF-8 checking, close codes, and [`ws::WebSocket`], the state
//!   machine for either role (the server's, or a client's). No sockets, no clock: it is
//!   tested with plain byte slices.
//! - [`http`]: the HTTP/1.1 side, also pure: parsing a request head within limits
//!   (with `httparse`), the opening handshake in both roles, responses, and the small
//!   page served to a plain GET.
//! - [`event_loop`]: the loop itself ([`Server`]): the turn, the broadcast log, the
//!   output queues, the policies (accepting, keepalive, slow consumers, shutdown), the
//!   per-connection session logic that feeds bytes to the protocol code, and the
//!   [`Handler`] trait through which an application plugs in, with the links an application
//!   opens itself (to Redis) on the same poll. Its module documentation
//!   lists its files from the bottom up.
//! - [`line`](mod@line): the line protocol of the raw TCP port, also pure.
//! - [`images`]: image types by their first bytes (the chat's accepted images, which
//!   the loop also does not compress again).
//! - [`rate`]: the token bucket behind the per-connection and per-member rate limits.
//! - [`redis`]: a Redis client protocol, sans I/O like [`ws`]: [`redis::Link`] is one
//!   connection's RESP3 conversation (the handshake, commands matched to replies, pub/sub
//!   pushes) over bytes the loop moves, with `redis-protocol` for the RESP3 frames.
//!   [`redis::RedisUrl`] parses `redis://` URLs and never prints their password.
//! - [`workers`]: every core: N loops on N threads sharing one port (`SO_REUSEPORT`),
//!   and the bus over which they pass messages, each worker woken by its [`Waker`].
//! - [`apps`]: applications: [`apps::Chat`], [`apps::Echo`] and [`apps::Broadcast`].
//!
//! The `loopchat` program (`src/bin/loopchat/`) is not part of the library: the command
//! line (`loopchat serve`), the terminal client (`loopchat client`, on the client-role
//! codec) and the load generator (`loopchat bench`). It and its dependencies come with
//! the default `cli` feature; a program that embeds the library sets
//! `default-features = false` and builds without clap, core_affinity, hdrhistogram,
//! plotters, rlimit or env_logger.
//!
//! # An application in a screenful
//!
//! ```no_run
//! use loopchat::{ConnectionId, Context, Handler, Message, Server, ServerConfig};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
//!         // Fails only for a sender too slow to read its echoes, which the loop closes.
//!         let _ = ctx.send(conn, message);
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     Server::bind(ServerConfig::default(), Echo)?.run()
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod apps;
pub mod event_loop;
pub mod http;
pub mod images;
pub mod line;
pub mod rate;
pub mod redis;
pub mod tls;
pub mod workers;
pub mod ws;

pub use event_loop::{
    ConnectionId, Context, Handler, LinkEvent, LinkId, SendError, Server, ServerConfig,
    SharedFrame, Transport, Waker,
};
pub use ws::{CloseCode, Message};
