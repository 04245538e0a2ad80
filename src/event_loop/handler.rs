//! How an application plugs into the loop: the [`Handler`] trait and its [`Context`].
//!
//! The loop owns the sockets and speaks HTTP and WebSocket; the handler only hears about
//! sessions and messages, and answers through the context. A minimal handler:
//!
//! ```
//! use loopchat::{ConnectionId, Context, Handler, Message};
//!
//! struct Shout;
//!
//! impl Handler for Shout {
//!     fn on_message(&mut self, ctx: &mut Context<'_>, from: ConnectionId, message: Message<'_>) {
//!         if let Message::Text(text) = message {
//!             ctx.broadcast(Message::Text(&text.to_uppercase()), Some(from));
//!         }
//!     }
//! }
//! ```
//!
//! Context methods queue: output is written when the current loop turn ends (or, for a
//! send that would overflow a queue, offered to the kernel at once without blocking), and
//! a close is carried out by the loop, which calls `on_close` after the current callback
//! has returned. A handler is therefore never re-entered and never blocks.

use super::connection::Connection;
use super::connections::{Connections, SendError};
use super::links::{LinkEvent, LinkId};
use super::shared_frame::{SharedFrame, Transport};
use crate::admin::LinkReport;
use crate::http::{Request, Response};
use crate::ws::{CloseCode, Message};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// Names a connection. It is the connection's slab key, which is also its `mio::Token`.
///
/// Keys are reused after a connection is gone, so a handler that stores ids (in a room,
/// say) must drop them in `on_close`; the loop guarantees `on_close` comes before the key
/// can be given to a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub(crate) usize);

impl ConnectionId {
    /// The slab key (and token number) behind the id.
    pub fn index(self) -> usize {
        self.0
    }

    /// The id with this slab key: for an application that named a connection by its key
    /// outside the process (to Redis, say) and hears of it back.
    pub fn from_index(index: usize) -> ConnectionId {
        ConnectionId(index)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An application served by the loop. Only `on_message` is required.
pub trait Handler {
    /// Decides whether to accept a valid WebSocket upgrade request: route by path, check
    /// the `Origin` header against an allowlist, and so on. `Err` refuses it with that
    /// response (the connection is then closed). The default accepts every upgrade.
    fn accept_upgrade(&mut self, request: &Request) -> Result<(), Response> {
        let _ = request;
        Ok(())
    }

    /// A session began: a WebSocket handshake completed, with `request` the upgrade
    /// request (for its path, query string and headers), or a client connected to the
    /// line port (`request` is `None`). The connection can send and receive.
    fn on_open(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, request: Option<&Request>) {
        let _ = (ctx, conn, request);
    }

    /// A complete message arrived: a WebSocket message (text already checked to be
    /// UTF-8), or a line from the line port (as text, without its line ending).
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>);

    /// The session ended: a closing handshake began (from either side), the peer broke the
    /// protocol, or the connection dropped. Called exactly once per `on_open`. Messages
    /// can no longer be sent to `conn`.
    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) {
        let _ = (ctx, conn);
    }

    /// The loop is about to run its first turn: a handler that needs links (to a broker,
    /// say) opens them here, and sets its first alarm.
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// Something happened on a link the handler opened with [`Context::connect`].
    fn on_link(&mut self, ctx: &mut Context<'_>, link: LinkId, event: LinkEvent<'_>) {
        let _ = (ctx, link, event);
    }

    /// Another thread woke the loop with its [`Waker`](super::Waker) (see
    /// [`Server::waker`](super::Server::waker)): the handler takes what waits for it in
    /// its channels, all of it, since wake-ups sent while it was waiting were merged into
    /// this one.
    fn on_wake(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// The time set with [`Context::set_alarm`] has come. The alarm is then unset; set it
    /// again for the next.
    fn on_alarm(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// A plain HTTP request (not an upgrade) arrived. The default serves a small page at
    /// `/` that says what this server is and offers a WebSocket console.
    fn on_http(&mut self, request: &Request) -> Response {
        crate::http::landing::respond(request, "loopchat")
    }

    /// The application's rooms (or groups) and how many members each has, for the admin
    /// port's live page and `/stats`. The default has none.
    fn rooms(&self) -> Vec<(String, usize)> {
        Vec::new()
    }

    /// The links the application keeps to other servers and where each stands (the
    /// chat's to Redis), for the admin port's `/metrics`, `/stats` and live page. The
    /// default has none.
    fn links(&self) -> Vec<LinkReport> {
        Vec::new()
    }
}

/// What a handler can do: send, broadcast, close, and look at connections.
pub struct Context<'a> {
    conns: &'a mut Connections,
}

impl<'a> Context<'a> {
    pub(crate) fn new(conns: &'a mut Connections) -> Context<'a> {
        Context { conns }
    }

    /// Sends a message to one connection. Fails, without queueing the message, if the
    /// connection is not open (closing or gone: [`SendError::NotOpen`]), if its transport
    /// cannot carry the message (binary to a line client: [`SendError::WrongTransport`]),
    /// or if its output queue is full: then it is closed with 1008 as too slow
    /// ([`SendError::TooSlow`]), or, under
    /// [`SlowConsumer::Drop`](super::SlowConsumer::Drop), the message is dropped and
    /// counted ([`SendError::Dropped`]).
    pub fn send(&mut self, to: ConnectionId, message: Message<'_>) -> Result<(), SendError> {
        self.app_connection(to).ok_or(SendError::NotOpen)?;
        self.conns.send(to.0, message)
    }

    /// The connection, if it is the application's: the admin port's connections are
    /// not, and the application can neither see nor reach them.
    fn app_connection(&self, conn: ConnectionId) -> Option<&Connection> {
        self.conns.slab.get(conn.0).filter(|c| !c.admin)
    }

    /// Sends an already encoded frame; see [`SharedFrame`]. Same rules as [`Self::send`];
    /// [`SendError::WrongTransport`] if the frame was encoded for the other transport.
    pub fn send_shared(&mut self, to: ConnectionId, frame: &SharedFrame) -> Result<(), SendError> {
        self.app_connection(to).ok_or(SendError::NotOpen)?;
        self.conns.send_shared(to.0, frame)
    }

    /// Sends a message to every open WebSocket connection except `except`. The frame is
    /// encoded once and its bytes shared by all recipients; publishing it costs the same
    /// whatever their number, and each writes it at the end of the loop turn, together
    /// with everything else it has to write. Connections that open later in the turn do
    /// not get it. A recipient that cannot keep up is treated as with [`Self::send`].
    pub fn broadcast(&mut self, message: Message<'_>, except: Option<ConnectionId>) {
        self.conns
            .broadcast(&SharedFrame::new(message), except.map(|id| id.0));
    }

    /// Like [`Self::broadcast`] with a frame already encoded, for either transport: a
    /// [`SharedFrame::line`] goes to every line client, a [`SharedFrame::new`] to every
    /// WebSocket client. An application that talks to both publishes one of each.
    pub fn broadcast_shared(&mut self, frame: &SharedFrame, except: Option<ConnectionId>) {
        self.conns.broadcast(frame, except.map(|id| id.0));
    }

    /// Starts closing a connection with the given code and reason (at most 123 bytes;
    /// longer is cut). The peer has until the close timeout to answer. `on_close` follows
    /// once the current callback returns.
    pub fn close(&mut self, conn: ConnectionId, code: CloseCode, reason: &str) {
        if self.app_connection(conn).is_some() {
            self.conns.close(conn.0, code, reason);
        }
    }

    /// How the connection talks, while it is open for messages.
    pub fn transport(&self, conn: ConnectionId) -> Option<Transport> {
        self.app_connection(conn).and_then(Connection::transport)
    }

    /// Whether the connection is open for messages.
    pub fn is_open(&self, conn: ConnectionId) -> bool {
        self.app_connection(conn).is_some_and(Connection::is_open)
    }

    /// The peer's address, while the connection exists.
    pub fn peer_addr(&self, conn: ConnectionId) -> Option<SocketAddr> {
        self.app_connection(conn).map(|c| c.peer)
    }

    /// Every connection open for messages.
    pub fn open_connections(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.conns
            .slab
            .iter()
            .filter(|(_, c)| c.is_open() && !c.admin)
            .map(|(key, _)| ConnectionId(key))
    }

    /// The time at the start of the current loop turn.
    pub fn now(&self) -> Instant {
        self.conns.now
    }

    /// Opens a TCP connection to `addr` without waiting, driven by the same loop:
    /// [`Handler::on_link`] hears that it connected (or failed), and what arrives on it.
    /// Errors only if the socket cannot even be made.
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<LinkId> {
        self.conns.links.connect(addr)
    }

    /// Queues bytes on a link, written at the end of the turn with everything else queued
    /// on it (before it connects, they wait for it). False if the link is gone.
    pub fn link_write(&mut self, link: LinkId, bytes: &[u8]) -> bool {
        self.conns.links.write(link, bytes)
    }

    /// Bytes queued on a link that the kernel has not taken yet: an application bounds
    /// what it queues for a peer that is slow or away.
    pub fn link_queued(&self, link: LinkId) -> Option<usize> {
        self.conns.links.queued(link)
    }

    /// Closes a link at once, dropping anything queued on it. No [`LinkEvent::Closed`]
    /// follows.
    pub fn close_link(&mut self, link: LinkId) {
        self.conns.links.close(link);
    }

    /// Asks for [`Handler::on_alarm`] at `at` (or at the first turn after it), replacing
    /// any alarm set before.
    pub fn set_alarm(&mut self, at: Instant) {
        self.conns.alarm = Some(at);
    }
}

/// Gives `handler` the `on_close` of every session that ended since the last call. A
/// handler may close other connections from `on_close`; those are delivered too. The loop
/// calls this after every handler call, so `on_close` never re-enters the handler.
pub(crate) fn deliver_closes<H: Handler>(handler: &mut H, conns: &mut Connections) {
    while !conns.closed.is_empty() {
        for key in std::mem::take(&mut conns.closed) {
            handler.on_close(&mut Context::new(conns), ConnectionId(key));
        }
    }
}
