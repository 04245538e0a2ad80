//! One client connection: its socket, where it stands, and its queued output.

use super::batch::TurnBatch;
use super::config::SlowConsumer;
use super::handler::Transport;
use super::outbound::{OutboundQueue, SharedFrame};
use super::timers::{TimerQueue, TimerTarget};
use crate::line::LineReader;
use crate::rate::TokenBucket;
use crate::ws::frame::encoded_len;
use crate::ws::{CloseCode, Keepalive, Message, SendError, State, WebSocket};
use mio::net::TcpStream;
use slab::Slab;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    /// the peer reads them.
    Lingering,
}

/// What a frame asks room for in a connection's output queue (see
/// [`Connections::make_room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// A message: under [`SlowConsumer::Drop`] it may be dropped.
    Data,
    /// A Ping or Pong: never dropped; broadcasts make way for it.
    Control,
}

/// What the loop counts, for operators and tests ([`Server::stats`](super::Server::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted, on either port.
    pub accepted: u64,
    /// Connections refused with 503: the server was full, or out of file descriptors.
    pub refused_full: u64,
    /// Clients closed with 1008 for letting their output queue fill (under
    /// [`SlowConsumer::Drop`], only those whose own Pongs filled it).
    pub slow_closed: u64,
    /// Messages not queued for a full client, or shed from its queue
    /// ([`SlowConsumer::Drop`]).
    pub dropped_messages: u64,
    /// WebSocket clients dropped after the idle timeout, their Ping unanswered.
    pub idle_dropped: u64,
    /// Connections closed with 1008 for sending messages faster than
    /// [`ServerConfig::message_rate`](super::ServerConfig::message_rate) allows. (A
    /// handler's own limits, such as the chat's, close through
    /// [`Context::close`](super::Context::close) and are not counted here.)
    pub rate_closed: u64,
    /// Connections dropped because the peer did not finish the closing handshake (or,
    /// on the line port, take its last output) within the close timeout.
    pub close_timed_out: u64,
}

/// A connection in the slab. Its key there is its `mio::Token`.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The socket, registered with the poll under the connection's token.
    pub stream: TcpStream,
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
    /// When the current phase times out: the handshake, or the closing handshake.
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
    /// The sequence number of the first broadcast ([`Connections::published`]) this
    /// connection has not taken: every earlier broadcast meant for it (of its transport,
    /// and not made with it as the exception) is in `out` or written. Meaningful while
    /// the connection is open.
    pub published_seen: u64,
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
            published_seen: 0,
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

    /// Whether the connection is open for application messages.
    pub fn is_open(&self) -> bool {
        self.transport().is_some()
    }
}

/// Every connection, and the bookkeeping that handlers' actions feed: which connections
/// have output to flush, which sessions ended (to tell the handler), and deadlines.
///
/// Handlers reach this through [`Context`](super::Context). A send queues bytes and marks
/// the connection for flushing at the end of the loop turn; the one exception is a send
/// that would take a queue past its limit, which first offers the queue to the kernel
/// (see [`Connections::make_room`]). Either way nothing blocks, and no handler is
/// re-entered: closes are reported through [`Connections::closed`].
#[derive(Debug)]
pub(crate) struct Connections {
    /// The connections; the key of each is its token.
    pub slab: Slab<Connection>,
    /// Keys of connections with output to write this turn. Each appears once (see
    /// [`Connection::flush_scheduled`]).
    pub to_flush: Vec<usize>,
    /// Broadcasts not yet handed to every recipient, each with the connection it skips:
    /// publishing costs one push here, whatever the number of recipients. At the end of
    /// the turn each open connection writes the ones it has not seen straight from this
    /// list, after its own queue, in one vectored write ([`unseen_frames`]); only what
    /// the kernel does not take is queued on the connection. Before anything else is
    /// queued on a connection, or it stops being open, the broadcasts it has not seen
    /// are queued first ([`Self::catch_up`]), so its output keeps the order in which it
    /// was produced. Broadcasts made while the turn's flush is under way (see
    /// `Server::flush_all`) stay on the list into the next turn for the connections
    /// flushed before they were made.
    pub published: Vec<(SharedFrame, Option<usize>)>,
    /// The sequence number of `published[0]`: broadcasts are numbered from 0 for the
    /// life of the server, so that a connection's [`Connection::published_seen`] stays
    /// right when the front of the list is dropped.
    pub published_base: u64,
    /// `published` copied end to end before the flush, for fewer, longer slices.
    pub batch: TurnBatch,
    /// Sessions that ended and whose `on_close` the handler has not yet been given.
    /// Delivered by the loop after the current handler call returns.
    pub closed: Vec<usize>,
    /// Handshake and closing deadlines.
    pub timers: TimerQueue,
    /// How long to wait for the peer's half of the closing handshake.
    pub close_timeout: Duration,
    /// The most output bytes one connection may have queued.
    pub max_outbound_bytes: usize,
    /// What to do with a connection over `max_outbound_bytes`.
    pub slow_consumer: SlowConsumer,
    /// Counters.
    pub stats: Stats,
    /// The time at the start of this loop turn.
    pub now: Instant,
}

impl Connections {
    /// Puts the connection on this turn's flush list, once.
    pub fn schedule_flush(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            conn.schedule_flush(key, &mut self.to_flush);
        }
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

    /// Queues a data message for one connection. Returns false, sending nothing, if the
    /// connection is not open, or if its queue is full and it is closed as too slow (see
    /// [`Self::make_room`]).
    pub fn send(&mut self, key: usize, message: Message<'_>) -> bool {
        match (self.slab.get(key).and_then(Connection::transport), message) {
            (Some(Transport::WebSocket), _) => {
                let len = encoded_len(message.payload().len(), false);
                self.send_encoded(key, len, Room::Data, |ws, buffer| {
                    ws.write_message(message, buffer)
                })
            }
            (Some(Transport::Line), Message::Text(text)) => {
                if !self.make_room(key, text.len() + 1, Room::Data) {
                    return false;
                }
                let Some(conn) = self.slab.get_mut(key) else {
                    return false;
                };
                conn.out.encode_with(|buffer| {
                    buffer.extend_from_slice(text.as_bytes());
                    buffer.push(b'\n');
                });
                conn.schedule_flush(key, &mut self.to_flush);
                true
            }
            // Lines carry text only; a closed connection carries nothing.
            (Some(Transport::Line), Message::Binary(_)) | (None, _) => false,
        }
    }

    /// Queues the Pong that answers a Ping. A client that pings and never reads must not
    /// grow its queue past the limit either; but under [`SlowConsumer::Drop`] broadcasts
    /// are shed to make room for it first, since a dropped Pong would make a client that
    /// keeps its connection alive with Pings think the server is gone.
    pub fn pong(&mut self, key: usize, payload: &[u8]) -> bool {
        let len = encoded_len(payload.len(), false);
        self.send_encoded(key, len, Room::Control, |ws, buffer| {
            ws.write_pong(payload, buffer)
        })
    }

    /// Queues a Ping (with an empty payload), under the same rules as a Pong.
    pub fn ping(&mut self, key: usize) -> bool {
        let len = encoded_len(0, false);
        self.send_encoded(key, len, Room::Control, |ws, buffer| {
            ws.write_ping(&[], buffer)
        })
    }

    /// Queues a shared frame for one connection, with the same rules as [`Self::send`].
    pub fn send_shared(&mut self, key: usize, frame: &SharedFrame) -> bool {
        let matches = self.slab.get(key).and_then(Connection::transport) == Some(frame.transport());
        if !matches || !self.make_room(key, frame.len(), Room::Data) {
            return false;
        }
        let Some(conn) = self.slab.get_mut(key) else {
            return false;
        };
        conn.out.push_shared(frame);
        conn.schedule_flush(key, &mut self.to_flush);
        true
    }

    /// Makes room for `len` bytes, then lets `encode` write a frame into the tail of the
    /// connection's queue.
    fn send_encoded(
        &mut self,
        key: usize,
        len: usize,
        room: Room,
        encode: impl FnOnce(&mut WebSocket, &mut Vec<u8>) -> Result<(), SendError>,
    ) -> bool {
        if !self.make_room(key, len, room) {
            return false;
        }
        let Some(Connection {
            phase: Phase::WebSocket(ws),
            out,
            flush_scheduled,
            ..
        }) = self.slab.get_mut(key)
        else {
            return false;
        };
        let sent = out.encode_with(|buffer| encode(ws, buffer)).is_ok();
        if sent && !std::mem::replace(flush_scheduled, true) {
            self.to_flush.push(key);
        }
        sent
    }

    /// Publishes a shared frame to every open connection of the frame's transport but
    /// `except`. The hot path of a broadcast server, and O(1): the frame joins this
    /// turn's list, and each recipient writes it at the end of the turn (see
    /// [`Self::published`]). Connections that open later in the turn do not get it.
    pub fn broadcast(&mut self, frame: &SharedFrame, except: Option<usize>) {
        self.published.push((frame.clone(), except));
    }

    /// Where connection `key`'s unseen broadcasts start in [`Self::published`], and its
    /// transport; `None` if it is not open.
    pub fn unseen_from(&self, key: usize) -> Option<(usize, Transport)> {
        let conn = self.slab.get(key)?;
        let transport = conn.transport()?;
        let seen = conn.published_seen.saturating_sub(self.published_base) as usize;
        Some((seen.min(self.published.len()), transport))
    }

    /// The sequence number the next broadcast will get.
    pub fn published_end(&self) -> u64 {
        self.published_base + self.published.len() as u64
    }

    /// Records that connection `key` has every broadcast so far.
    pub fn mark_caught_up(&mut self, key: usize) {
        let seen = self.published_end();
        if let Some(conn) = self.slab.get_mut(key) {
            conn.published_seen = seen;
        }
    }

    /// Queues on connection `key` the broadcasts of this turn it has not seen, so that
    /// whatever is queued next comes after them. Called before anything else is queued
    /// and before the connection stops being open; cheap when there is nothing to do.
    pub fn catch_up(&mut self, key: usize) {
        if let Some((start, transport)) = self.unseen_from(key)
            && start < self.published.len()
            && let Some(conn) = self.slab.get_mut(key)
        {
            let mut queued = false;
            for (_, frame) in unseen_frames(&self.published, Some((start, transport)), key) {
                conn.out.push_shared(frame);
                queued = true;
            }
            if queued {
                conn.schedule_flush(key, &mut self.to_flush);
            }
        }
        self.mark_caught_up(key);
    }

    /// Checks that the connection is open and can queue `len` more bytes.
    ///
    /// Output is normally written at the end of the loop turn, so the queue also holds
    /// what was produced this turn and not yet offered to the kernel. Before calling a
    /// client slow, then, the queue is offered to the kernel now (the one write that
    /// happens during a handler call); if the kernel takes it all, any one message fits,
    /// however large. Only if the queue is still over the limit is the client really
    /// behind. It is closed, so that it costs no more memory and no one else waits for it;
    /// or, under [`SlowConsumer::Drop`], the message is dropped and counted. A control
    /// frame is not dropped: broadcasts are shed from the back of the queue to make room
    /// for it, and only if that is not enough (the queue is full of the client's own
    /// Pongs: it pings and never reads) is the client closed, whatever the policy.
    fn make_room(&mut self, key: usize, len: usize, room: Room) -> bool {
        self.catch_up(key);
        let Some(conn) = self.slab.get_mut(key) else {
            return false;
        };
        if !conn.is_open() {
            return false;
        }
        if conn.out.len() + len <= self.max_outbound_bytes {
            return true;
        }
        // A write error is left for the end-of-turn flush, which removes the connection.
        let _ = conn.out.write_until_blocked(&mut conn.stream, usize::MAX);
        if conn.out.is_empty() || conn.out.len() + len <= self.max_outbound_bytes {
            return true;
        }
        if self.slow_consumer == SlowConsumer::Drop {
            if room == Room::Data {
                self.stats.dropped_messages += 1;
                return false;
            }
            let limit = self.max_outbound_bytes.saturating_sub(len);
            self.stats.dropped_messages += conn.out.shed_shared_from_back(limit) as u64;
            if conn.out.len() + len <= self.max_outbound_bytes {
                return true;
            }
        }
        self.stats.slow_closed += 1;
        log::info!(
            "{}: output queue over {} bytes; closing",
            conn.peer,
            self.max_outbound_bytes
        );
        self.close(
            key,
            CloseCode::PolicyViolation,
            "too slow: output queue full",
        );
        false
    }

    /// Starts the closing handshake from our side: queues a Close and gives the peer
    /// until the close deadline to answer. Does nothing unless the connection is open. A
    /// code that may not be sent (1005, 1006, 1015, or outside the allowed ranges) is
    /// replaced by 1011, internal error: it is the application's mistake. A line
    /// connection has no Close frame: a last line takes its place (when the output queue
    /// has room for it), `* REASON` for a normal close (`/quit`) and `! REASON; closing`
    /// for any other, what is queued is written, then TCP is closed.
    pub fn close(&mut self, key: usize, code: CloseCode, reason: &str) {
        if matches!(self.slab.get(key).map(|c| &c.phase), Some(Phase::Line(_))) {
            self.catch_up(key);
            let max = self.max_outbound_bytes;
            // Not through `make_room`: a full queue is what may have brought us here,
            // and there is no one to close for it but this connection.
            if let Some(conn) = self.slab.get_mut(key)
                && !reason.is_empty()
            {
                let notice = if code == CloseCode::Normal {
                    format!("* {reason}\n")
                } else {
                    format!("! {reason}; closing\n")
                };
                if conn.out.len() + notice.len() <= max {
                    conn.out.push_bytes(notice.as_bytes());
                }
            }
            return self.linger(key);
        }
        self.catch_up(key);
        let code = if code.is_allowed_on_wire() {
            code
        } else {
            CloseCode::InternalError
        };
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        let Connection {
            phase: Phase::WebSocket(ws),
            out,
            ..
        } = conn
        else {
            return;
        };
        if ws.state() != State::Open {
            return;
        }
        // The state is Open, so writing the Close cannot fail.
        let _ = out.encode_with(|buffer| ws.write_close(Some((code, reason)), buffer));
        self.set_deadline(key, Some(self.now + self.close_timeout));
        self.schedule_flush(key);
        self.end_session(key);
    }

    /// Moves the connection to [`Phase::Lingering`]: flush, shut down, drain, drop.
    pub fn linger(&mut self, key: usize) {
        self.catch_up(key);
        self.end_session(key);
        if let Some(conn) = self.slab.get_mut(key) {
            conn.phase = Phase::Lingering;
        }
        self.set_deadline(key, Some(self.now + self.close_timeout));
        self.schedule_flush(key);
    }
}

/// The broadcasts in `published` that connection `key` has yet to write, given where
/// its unseen ones start and its transport ([`Connections::unseen_from`]): those for its
/// transport that do not skip it, each with its index in `published`. None for a
/// connection that is not open (`None`).
pub(crate) fn unseen_frames(
    published: &[(SharedFrame, Option<usize>)],
    from: Option<(usize, Transport)>,
    key: usize,
) -> impl Iterator<Item = (usize, &SharedFrame)> + Clone {
    let (start, transport) = from.unwrap_or((published.len(), Transport::WebSocket));
    published
        .iter()
        .enumerate()
        .skip(start)
        .filter(move |(_, (frame, except))| *except != Some(key) && frame.transport() == transport)
        .map(|(index, (frame, _))| (index, frame))
}
