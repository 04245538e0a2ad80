//! Every connection, and the bookkeeping that the application's actions feed: which
//! connections have output to write this turn, the broadcast log, which sessions ended
//! (to tell the handler), deadlines, and counts.
//!
//! Handlers reach this through [`Context`](super::Context). A send queues bytes and marks
//! the connection for flushing at the end of the loop turn; the one exception is a send
//! that would take a queue past its limit, which first offers the queue to the kernel
//! (see [`slow_consumer`](super::slow_consumer)). A broadcast marks no one: it is
//! published to the [broadcast log](super::broadcast_log). Either way nothing blocks,
//! and no handler is re-entered: closes are reported through [`Connections::closed`].

use super::broadcast_log::BroadcastLog;
use super::config::ServerConfig;
use super::connection::{Connection, Phase};
use super::links::Links;
use super::metrics::LoopMetrics;
use super::outbound::Counted;
use super::shared_frame::{SharedFrame, Transport};
use super::slow_consumer::{OutputLimit, Room, Verdict};
use super::stats::Stats;
use super::timers::{TimerQueue, TimerTarget};
use super::wire::{TlsBuffers, TlsSession, Wire};
use crate::line::LineReader;
use crate::ws::frame::encoded_len;
use crate::ws::{CloseCode, Message, State, WebSocket};
use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a message was not sent ([`Context::send`](super::Context::send) and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// The connection is not open for messages: still in its handshake, closing, or
    /// gone. Nothing was queued.
    #[error("the connection is not open")]
    NotOpen,
    /// The connection's transport cannot carry it: binary data for a line-port client,
    /// or a [`SharedFrame`] encoded for the other transport.
    #[error("the connection's transport cannot carry this message")]
    WrongTransport,
    /// The connection's output queue is full, and under
    /// [`SlowConsumer::Drop`](super::SlowConsumer::Drop) the message was dropped (and
    /// counted in [`Stats::dropped_messages`]). The connection stays open.
    #[error("the output queue is full; the message was dropped")]
    Dropped,
    /// The connection's output queue is full: it is being closed with 1008 as too slow.
    #[error("the output queue is full; the connection is closed as too slow")]
    TooSlow,
}

/// Every connection and the loop's shared bookkeeping.
#[derive(Debug)]
pub(crate) struct Connections {
    /// The connections; the key of each is its token.
    pub slab: Slab<Connection>,
    /// Keys of connections with output to write this turn. Each appears once (see
    /// [`Connection::flush_scheduled`]).
    pub to_flush: Vec<usize>,
    /// The broadcasts not yet taken by every open connection.
    pub log: BroadcastLog,
    /// Sessions that ended and whose `on_close` the handler has not yet been given.
    /// Delivered by the loop after the current handler call returns.
    pub closed: Vec<usize>,
    /// Every connection's deadline, and the accept retries.
    pub timers: TimerQueue,
    /// How long to wait for the peer's half of the closing handshake.
    pub close_timeout: Duration,
    /// The limit on each connection's queued output, and the slow-consumer policy.
    pub output_limit: OutputLimit,
    /// Counters.
    pub stats: Stats,
    /// What the loop measures of its turns.
    pub metrics: LoopMetrics,
    /// The time at the start of this loop turn.
    pub now: Instant,
    /// Messages shorter than this go uncompressed (`ServerConfig::deflate_min_bytes`).
    pub deflate_min_bytes: usize,
    /// The application's own TCP connections (see `links.rs`).
    pub links: Links,
    /// When the application asked to be woken ([`Handler::on_alarm`](super::Handler::on_alarm)).
    pub alarm: Option<Instant>,
    /// How many of the connections came in on the admin port, which has its own
    /// allowance (see `accept.rs`).
    pub admin_connections: usize,
    /// The serial number for the next connection.
    next_serial: u64,
    /// The TLS configuration new connections on the main port start with, on a server
    /// with TLS; replaced on a reload, which leaves open connections as they are.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The buffers every TLS connection's writes share (see `wire.rs`); never grown on
    /// a server without TLS.
    pub tls_buffers: TlsBuffers,
}

impl Connections {
    /// No connections yet, under `config`'s limits; the application's links are `links`.
    pub fn new(config: &ServerConfig, links: Links) -> Connections {
        Connections {
            slab: Slab::new(),
            to_flush: Vec::new(),
            log: BroadcastLog::new(config.deflate_min_bytes),
            closed: Vec::new(),
            timers: TimerQueue::default(),
            close_timeout: config.close_timeout,
            output_limit: OutputLimit {
                max_bytes: config.max_outbound_bytes,
                policy: config.slow_consumer,
            },
            stats: Stats::default(),
            metrics: LoopMetrics::default(),
            now: Instant::now(),
            links,
            alarm: None,
            deflate_min_bytes: config.deflate_min_bytes,
            admin_connections: 0,
            next_serial: TimerTarget::NOT_A_CONNECTION + 1,
            tls: None,
            tls_buffers: TlsBuffers::default(),
        }
    }

    /// Takes on a client just accepted over `transport`: registers its socket under its
    /// slab key, and starts it reading its request head within the handshake deadline,
    /// or, on the line port, in the line phase (the caller opens its session). Returns
    /// its key, or `None` if it could not be registered (it is dropped).
    pub fn admit(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        transport: Transport,
        admin: bool,
        config: &ServerConfig,
        registry: &Registry,
    ) -> Option<usize> {
        // Frames are small and latency matters more than packet count; the vectored
        // flush already batches what can be batched.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("{peer}: set_nodelay failed: {e}");
        }
        let tls = match &self.tls {
            Some(tls) if transport == Transport::WebSocket && !admin => {
                match rustls::server::UnbufferedServerConnection::new(Arc::clone(tls)) {
                    Ok(session) => Some(Box::new(TlsSession::new(session))),
                    Err(e) => {
                        warn!("{peer}: cannot start TLS: {e}");
                        return None;
                    }
                }
            }
            _ => None,
        };
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        if let Err(e) = registry.register(&mut stream, Token(key), Interest::READABLE) {
            warn!("{peer}: register failed: {e}");
            return None;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        if admin {
            self.admin_connections += 1;
        } else {
            self.stats.accepted += 1;
            self.metrics.totals.accepts += 1;
        }
        debug!(
            "{peer}: accepted as #{key} ({transport:?}{})",
            if admin { ", admin" } else { "" }
        );
        match transport {
            Transport::WebSocket => {
                let deadline = self.now + config.handshake_timeout;
                let phase = Phase::Http(Vec::new());
                let conn =
                    entry.insert(Connection::new(stream, peer, serial, phase, Some(deadline)));
                conn.admin = admin;
                conn.tls = tls;
                self.timers.schedule(deadline, TimerTarget { key, serial });
            }
            Transport::Line => {
                let phase = Phase::Line(LineReader::new(config.max_line_bytes));
                entry.insert(Connection::new(stream, peer, serial, phase, None));
            }
        }
        Some(key)
    }

    /// Puts the connection on this turn's flush list, once.
    pub fn schedule_flush(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            conn.schedule_flush(key, &mut self.to_flush);
        }
    }

    /// The earliest deadline in force, after dropping the stale entries in front of it:
    /// those of connections gone (their slot empty or reused) and those whose
    /// connection's deadline has since moved. Without this, the poll would wake for each
    /// stale entry (one per handshake: its deadline moves when it is upgraded) only to
    /// find nothing due. Listeners' retries are never stale.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some((at, target)) = self.timers.peek() {
            if target.serial == TimerTarget::NOT_A_CONNECTION {
                return Some(at);
            }
            let live = self
                .slab
                .get(target.key)
                .is_some_and(|conn| conn.serial == target.serial && conn.deadline == Some(at));
            if live {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Sets (or with `None`, clears) the connection's deadline.
    pub fn set_deadline(&mut self, key: usize, deadline: Option<Instant>) {
        if let Some(conn) = self.slab.get_mut(key) {
            conn.deadline = deadline;
            if let Some(at) = deadline {
                self.timers.schedule(
                    at,
                    TimerTarget {
                        key,
                        serial: conn.serial,
                    },
                );
            }
        }
    }

    /// Starts the application's session on connection `key`: from now on it is told of
    /// the session's end exactly once, and it takes only broadcasts made from now on.
    pub fn begin_session(&mut self, key: usize) {
        let next = self.log.end();
        if let Some(conn) = self.slab.get_mut(key) {
            conn.in_app = true;
            conn.next_broadcast = next;
        }
    }

    /// Records that the application's session on this connection is over, if it had one
    /// and has not been told yet.
    pub fn end_session(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key)
            && conn.in_app
        {
            conn.in_app = false;
            self.closed.push(key);
        }
    }

    /// Queues a data message for one connection.
    pub fn send(&mut self, key: usize, message: Message<'_>) -> Result<(), SendError> {
        match (self.transport_of(key)?, message) {
            // Compressed, if it negotiated that and the message is long enough.
            (Transport::WebSocket, _) if self.compresses(key, message.payload().len()) => {
                self.send_shared(key, &SharedFrame::new(message))
            }
            (Transport::WebSocket, _) => {
                let len = encoded_len(message.payload().len(), false);
                self.send_encoded(key, len, Room::Data, |ws, buffer| {
                    ws.write_message(message, buffer)
                })?;
                self.metrics.totals.deliveries += 1;
                Ok(())
            }
            (Transport::Line, Message::Text(text)) => {
                self.make_room(key, text.len() + 1, Room::Data)?;
                let conn = self.slab.get_mut(key).ok_or(SendError::NotOpen)?;
                conn.out.encode_with(|buffer| {
                    buffer.extend_from_slice(text.as_bytes());
                    buffer.push(b'\n');
                });
                conn.schedule_flush(key, &mut self.to_flush);
                self.metrics.totals.deliveries += 1;
                Ok(())
            }
            // Lines carry text only.
            (Transport::Line, Message::Binary(_)) => Err(SendError::WrongTransport),
        }
    }

    /// Queues a shared frame for one connection, with the same rules as [`Self::send`].
    pub fn send_shared(&mut self, key: usize, frame: &SharedFrame) -> Result<(), SendError> {
        let conn = self.slab.get(key).ok_or(SendError::NotOpen)?;
        if conn.transport().ok_or(SendError::NotOpen)? != frame.transport() {
            return Err(SendError::WrongTransport);
        }
        // A recipient that negotiated permessage-deflate gets the compressed frame, made
        // once for all of them the first time one needs it.
        let deflated = conn
            .sends_compressed()
            .then(|| frame.deflated_from(self.deflate_min_bytes))
            .flatten();
        let frame = deflated.as_ref().unwrap_or(frame);
        self.make_room(key, frame.len(), Room::Data)?;
        let conn = self.slab.get_mut(key).ok_or(SendError::NotOpen)?;
        conn.out.push_shared(frame);
        conn.schedule_flush(key, &mut self.to_flush);
        self.metrics.totals.deliveries += 1;
        Ok(())
    }

    /// Queues a Ping (with an empty payload), under the rules of a control frame: never
    /// dropped (see [`slow_consumer`](super::slow_consumer)).
    pub fn ping(&mut self, key: usize) -> Result<(), SendError> {
        let len = encoded_len(0, false);
        self.send_encoded(key, len, Room::Control, |ws, buffer| {
            ws.write_ping(&[], buffer)
        })
    }

    /// Queues what the protocol owes the peer of WebSocket connection `key` (see
    /// [`WebSocket::drain_replies`]): a Pong, under the rules of a control frame, or the
    /// Close that answers the peer's or reports its error, always, since it is the last
    /// frame the connection sends.
    pub fn queue_replies(&mut self, key: usize) {
        let Some(Connection {
            phase: Phase::WebSocket(ws),
            ..
        }) = self.slab.get(key)
        else {
            return;
        };
        if !ws.has_replies() {
            return;
        }
        if ws.state() == State::Open
            && self
                .make_room(key, ws.replies_len(), Room::Control)
                .is_err()
        {
            return; // too slow: closed, and the Pong dropped with our Close
        }
        let Some(Connection {
            phase: Phase::WebSocket(ws),
            out,
            ..
        }) = self.slab.get_mut(key)
        else {
            return;
        };
        out.encode_with(|buffer| ws.drain_replies(buffer));
        self.schedule_flush(key);
    }

    /// Publishes a shared frame to every open connection of the frame's transport but
    /// `except`: the hot path of a broadcast server, and O(1). Each recipient takes it at
    /// the end of the turn (see [`BroadcastLog`]). Connections that open later in the
    /// turn do not get it.
    pub fn broadcast(&mut self, frame: &SharedFrame, except: Option<usize>) {
        self.log.publish(frame, except);
        self.metrics.totals.broadcasts += 1;
    }

    /// Whether a message of `len` bytes goes compressed to connection `key`.
    fn compresses(&self, key: usize, len: usize) -> bool {
        len >= self.deflate_min_bytes
            && self.slab.get(key).is_some_and(Connection::sends_compressed)
    }

    /// How connection `key` talks, if it is open for messages.
    fn transport_of(&self, key: usize) -> Result<Transport, SendError> {
        self.slab
            .get(key)
            .and_then(Connection::transport)
            .ok_or(SendError::NotOpen)
    }

    /// Makes room for `len` bytes, then lets `encode` write a frame into the tail of the
    /// connection's queue.
    fn send_encoded<E>(
        &mut self,
        key: usize,
        len: usize,
        room: Room,
        encode: impl FnOnce(&mut WebSocket, &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), SendError> {
        self.make_room(key, len, room)?;
        let Some(Connection {
            phase: Phase::WebSocket(ws),
            out,
            flush_scheduled,
            ..
        }) = self.slab.get_mut(key)
        else {
            return Err(SendError::NotOpen);
        };
        out.encode_with(|buffer| encode(ws, buffer))
            .map_err(|_| SendError::NotOpen)?;
        if !std::mem::replace(flush_scheduled, true) {
            self.to_flush.push(key);
        }
        Ok(())
    }

    /// Queues on connection `key` the broadcasts it has not taken, so that whatever is
    /// queued next comes after them. Called before anything else is queued and before
    /// the connection stops being open; cheap when there is nothing to do.
    pub fn catch_up(&mut self, key: usize) {
        let end = self.log.end();
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        if conn.admin {
            return; // takes no broadcasts
        }
        if conn.next_broadcast < end
            && let Some(lane) = conn.lane()
        {
            let queued = conn.out.len();
            for frame in self.log.untaken_frames(conn.next_broadcast, lane, key) {
                conn.out.push_shared(frame);
                self.metrics.totals.deliveries += 1;
            }
            if conn.out.len() > queued {
                conn.schedule_flush(key, &mut self.to_flush);
            }
        }
        conn.next_broadcast = end;
    }

    /// Checks that the connection is open and can queue `len` more bytes, under the
    /// slow-consumer policy; closes it with 1008 if it is too slow.
    fn make_room(&mut self, key: usize, len: usize, room: Room) -> Result<(), SendError> {
        self.catch_up(key);
        let conn = self.slab.get_mut(key).ok_or(SendError::NotOpen)?;
        if !conn.is_open() {
            return Err(SendError::NotOpen);
        }
        let mut wire = Wire::new(
            &mut conn.stream,
            conn.tls.as_deref_mut(),
            &mut self.tls_buffers,
        );
        let mut socket = Counted::new(&mut wire);
        let verdict =
            self.output_limit
                .make_room(&mut conn.out, &mut socket, len, room, &mut self.stats);
        if !conn.admin {
            self.metrics.totals.writes += socket.calls;
            self.metrics.totals.bytes_out += socket.bytes;
        }
        match verdict {
            Verdict::Fits => Ok(()),
            Verdict::Dropped => Err(SendError::Dropped),
            Verdict::TooSlow => {
                self.close_too_slow(key);
                Err(SendError::TooSlow)
            }
        }
    }

    /// Closes a client the slow-consumer policy found too slow (already counted).
    pub fn close_too_slow(&mut self, key: usize) {
        if let Some(conn) = self.slab.get(key) {
            let max = self.output_limit.max_bytes;
            info!("{}: output queue over {max} bytes; closing", conn.peer);
        }
        self.close(
            key,
            CloseCode::PolicyViolation,
            "too slow: output queue full",
        );
    }

    /// Starts the closing handshake from our side: queues a Close and gives the peer
    /// until the close deadline to answer. Does nothing unless the connection is open. A
    /// code that may not be sent (1005, 1006, 1015, or outside the allowed ranges) is
    /// replaced by 1011, internal error: it is the application's mistake. A line
    /// connection has no Close frame: a last line takes its place (when the output queue
    /// has room for it), `* REASON` for a normal close (`/quit`) and `! REASON; closing`
    /// for any other, what is queued is written, then TCP is closed.
    pub fn close(&mut self, key: usize, code: CloseCode, reason: &str) {
        self.catch_up(key);
        let max = self.output_limit.max_bytes;
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        match &mut conn.phase {
            Phase::Line(_) => {
                // Not through `make_room`: a full queue is what may have brought us here,
                // and there is no one to close for it but this connection.
                if !reason.is_empty() {
                    let notice = if code == CloseCode::Normal {
                        format!("* {reason}\n")
                    } else {
                        format!("! {reason}; closing\n")
                    };
                    if conn.out.len() + notice.len() <= max {
                        conn.out.push_bytes(notice.as_bytes());
                    }
                }
                self.linger(key);
            }
            Phase::WebSocket(ws) if ws.state() == State::Open => {
                let code = if code.is_allowed_on_wire() {
                    code
                } else {
                    CloseCode::InternalError
                };
                // The state is Open and the code allowed, so writing the Close cannot fail.
                let _ = conn
                    .out
                    .encode_with(|buffer| ws.write_close(Some((code, reason)), buffer));
                self.set_deadline(key, Some(self.now + self.close_timeout));
                self.schedule_flush(key);
                self.end_session(key);
            }
            _ => {}
        }
    }

    /// Moves the connection to [`Phase::Lingering`]: flush, shut down, drain, drop.
    pub fn linger(&mut self, key: usize) {
        self.catch_up(key);
        self.end_session(key);
        if let Some(conn) = self.slab.get_mut(key) {
            conn.phase = Phase::Lingering(conn.phase.protocol());
        }
        self.set_deadline(key, Some(self.now + self.close_timeout));
        self.schedule_flush(key);
    }
}
