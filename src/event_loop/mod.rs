//! The event loop: one thread, one `mio::Poll`, every connection.
//!
//! Each turn of the loop does the same five things, in this order:
//!
//! 1. **Sleep** in `poll` until a socket is ready or the earliest deadline comes (not at
//!    all if work was left over from the last turn).
//! 2. **Dispatch** each readiness event by token: the listener's token means accept;
//!    any other token is a slab key, and the connection is read.
//! 3. **Read again** the connections that stopped at their read budget last turn.
//! 4. **Run due timers**: handshake and closing deadlines.
//! 5. **Flush** every connection that has output queued, and every open connection if
//!    something was broadcast: vectored writes of up to 512 chunks each, until the socket
//!    would block or the connection's write budget is spent. A long round (thousands of
//!    connections) polls without waiting every 64 writes and handles what arrived, so
//!    input is not left waiting for the whole round, and broadcasts made meanwhile go
//!    out in the same round to the connections not yet written.
//!
//! Two rules of `mio` shape the code. Readiness is edge-triggered: after a wake-up we
//! must read (or accept) until `WouldBlock`, or we may never hear of the remaining bytes
//! again. The one exception is deliberate: a connection that reaches its per-turn read
//! budget is put on a ready list and read again next turn, so one fast sender cannot
//! starve the rest. And wake-ups can be spurious: every handler copes with `WouldBlock`.
//!
//! A handler's send only queues bytes and marks the connection; the flush at the end of
//! the turn writes each marked connection once, everything queued for it together
//! ("corking"). The one exception: a send that would take a queue past its limit first
//! offers the queue to the kernel, so that only a client that is really behind is called
//! slow. WRITABLE interest is registered only when the kernel did not take it all, and
//! dropped again once the queue is empty.
//!
//! A broadcast does not even mark its recipients: it is encoded once and joins the
//! list of broadcasts, one push whatever the number of recipients. Broadcasts are
//! numbered for the life of the server, and each connection knows the number of the
//! first it has not taken. Before the flush the turn's small frames are copied end to
//! end into one buffer per transport (`batch.rs`), so that each open connection offers
//! the kernel its own queue followed by the broadcasts it has not taken as one or two
//! long slices, in one vectored write; only what the kernel does not take is queued on
//! the connection, by reference. Broadcasts made during a round stay on the list into
//! the next turn for the connections written before they were made. A connection's
//! output keeps the order in which it was produced: anything sent to it directly, or
//! its Close, first queues the broadcasts it has not yet taken.
//!
//! A connection is removed in exactly one place, `Server::remove`: it leaves the slab,
//! its socket is deregistered and closed, and the handler hears `on_close` if it had
//! heard `on_open`.

mod batch;
mod config;
mod connection;
mod handler;
mod outbound;
mod session;
mod timers;

pub use config::{ServerConfig, SlowConsumer};
pub use connection::Stats;
pub use handler::{ConnectionId, Context, Handler, Transport};
pub use outbound::{Drain, OutboundQueue, SharedFrame};

use crate::http::Response;
use crate::line::LineReader;
use crate::ws::{CloseCode, KeepaliveAction, State};
use batch::TurnBatch;
use connection::{Connection, Connections, Phase};
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};
use timers::{TimerQueue, TimerTarget};

/// The listener's token. Connection tokens are slab keys, which never reach this value.
const LISTENER: Token = Token(usize::MAX);

/// The line port's listener's token.
const LINE_LISTENER: Token = Token(usize::MAX - 1);

/// The token of the signal pipe ([`Server::shut_down_on_signals`]).
const SIGNALS: Token = Token(usize::MAX - 2);

/// Bytes read from a socket per `read` call. One buffer serves every connection: bytes
/// are decoded straight out of it, so an idle connection holds no read buffer at all.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes one connection may read per loop turn before the others get their turn.
const READ_BUDGET: usize = 256 * 1024;

/// Bytes one connection may write per loop turn before the others get their turn.
const WRITE_BUDGET: usize = 1024 * 1024;

/// How long to wait before accepting again after `accept` failed for lack of resources
/// (no free file descriptors, say): retrying at once would spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How many connections a flush round writes between two looks for new input (see
/// `Server::flush_all`): at a few microseconds a write, a look every few hundred
/// microseconds, which costs one `epoll_wait` that finds nothing when all is quiet.
const POLL_DURING_FLUSH: usize = 64;

/// Readiness events taken from the kernel per `poll`.
const EVENTS_CAPACITY: usize = 1024;

/// A WebSocket server: the listener, the connections, and the application's handler.
pub struct Server<H: Handler> {
    poll: Poll,
    listener: TcpListener,
    /// The line port's listener, if `ServerConfig::line_addr` asked for one.
    line_listener: Option<TcpListener>,
    handler: H,
    config: ServerConfig,
    conns: Connections,
    /// The shared read buffer (see [`READ_CHUNK`]).
    read_buf: Box<[u8]>,
    /// Connections to read again next turn: they used their budget before `WouldBlock`.
    ready: Vec<usize>,
    /// An empty list kept to swap with `ready` or the flush list while one is walked, so
    /// that neither is reallocated every turn.
    scratch: Vec<usize>,
    /// Readiness events taken in the middle of a flush round (see `Server::flush_all`).
    flush_events: Events,
    /// A descriptor kept in reserve for refusing clients when the process has no other
    /// (see [`spare_descriptor`]).
    spare_fd: Option<std::fs::File>,
    /// Whether clients are being refused for want of descriptors: logged once when it
    /// starts, cleared by the next successful accept.
    out_of_fds: bool,
    /// For each listener (WebSocket, line), whether a retry after an accept error is
    /// already scheduled: readiness events in the meantime must not add more timers.
    accept_retry: [bool; 2],
    /// The serial number for the next connection.
    next_serial: u64,
    /// SIGINT and SIGTERM, once [`Server::shut_down_on_signals`] asked for them.
    signals: Option<Signals>,
    /// Set when a graceful shutdown began: by then every connection is closing, and
    /// `run` returns once they are all gone or at this instant, whichever is first.
    shutdown_deadline: Option<Instant>,
    /// [`Stats::close_timed_out`] when the shutdown began, so that its last log line can
    /// say how many connections it dropped.
    timed_out_before_shutdown: u64,
}

/// How many connections the kernel may hold for us, handshake done, before we accept
/// them (capped by `net.core.somaxconn`, 4096 on current Linux). The standard library
/// and mio ask for 128: a burst of a few hundred clients connecting at once (a page
/// reload after a restart, a load generator) overflows that, and each dropped SYN is
/// retried by the client only after a second.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listening socket on `addr`, with `SO_REUSEADDR` (so that a restarted
/// server can bind at once) and a [`LISTEN_BACKLOG`] long backlog.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

impl<H: Handler> Server<H> {
    /// Binds the listening socket and prepares the loop. Nothing is accepted until
    /// [`Server::run`].
    pub fn bind(config: ServerConfig, handler: H) -> io::Result<Server<H>> {
        let poll = Poll::new()?;
        let mut listener = listen(config.addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let line_listener = match config.line_addr {
            Some(addr) => {
                let mut listener = listen(addr)?;
                poll.registry()
                    .register(&mut listener, LINE_LISTENER, Interest::READABLE)?;
                Some(listener)
            }
            None => None,
        };
        let conns = Connections {
            slab: Slab::new(),
            to_flush: Vec::new(),
            published: Vec::new(),
            batch: TurnBatch::default(),
            published_base: 0,
            closed: Vec::new(),
            timers: TimerQueue::default(),
            close_timeout: config.close_timeout,
            max_outbound_bytes: config.max_outbound_bytes,
            slow_consumer: config.slow_consumer,
            stats: Stats::default(),
            now: Instant::now(),
        };
        Ok(Server {
            poll,
            listener,
            line_listener,
            handler,
            config,
            conns,
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            ready: Vec::new(),
            scratch: Vec::new(),
            flush_events: Events::with_capacity(EVENTS_CAPACITY),
            spare_fd: spare_descriptor(),
            out_of_fds: false,
            accept_retry: [false; 2],
            next_serial: 0,
            signals: None,
            shutdown_deadline: None,
            timed_out_before_shutdown: 0,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the line port, if there is one.
    pub fn line_addr(&self) -> Option<SocketAddr> {
        self.line_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The application handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// What the loop has counted so far.
    pub fn stats(&self) -> Stats {
        self.conns.stats
    }

    /// How many connections exist, in any phase.
    pub fn connection_count(&self) -> usize {
        self.conns.slab.len()
    }

    /// Makes SIGINT and SIGTERM begin a graceful shutdown ([`Server::shut_down`]); a
    /// second signal during it ends `run` at once. For a program that owns the process:
    /// signal handlers are process-wide.
    pub fn shut_down_on_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Begins a graceful shutdown: stops accepting, sends every WebSocket client a Close
    /// with 1001 (going away), tells line clients `! server shutting down; closing` after
    /// what is queued for them and lets that drain, and drops
    /// connections still in their HTTP request. [`Server::run`] returns once every
    /// connection is gone, or after the close timeout.
    pub fn shut_down(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!(
            "shutting down: closing {} connections",
            self.conns.slab.len()
        );
        let _ = self.poll.registry().deregister(&mut self.listener);
        if let Some(listener) = &mut self.line_listener {
            let _ = self.poll.registry().deregister(listener);
        }
        self.shutdown_deadline = Some(self.conns.now + self.config.close_timeout);
        self.timed_out_before_shutdown = self.conns.stats.close_timed_out;
        let keys: Vec<usize> = self.conns.slab.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(conn) = self.conns.slab.get(key) else {
                continue;
            };
            match &conn.phase {
                Phase::WebSocket(_) | Phase::Line(_) => {
                    self.conns
                        .close(key, CloseCode::GoingAway, "server shutting down");
                }
                Phase::Http(_) if conn.out.is_empty() => {
                    self.remove(key, "server shutting down");
                }
                Phase::Http(_) | Phase::Lingering => {}
            }
        }
        self.deliver_closes();
    }

    /// Runs the loop. Returns `Ok` after a graceful shutdown ([`Server::shut_down`]),
    /// and an error only if polling itself fails.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            self.turn(&mut events)?;
            if let Some(deadline) = self.shutdown_deadline
                && (self.conns.slab.is_empty() || self.conns.now >= deadline)
            {
                // Those dropped at their own close deadline, and those still here at
                // the shutdown's (or at a second signal).
                let stats = self.conns.stats;
                let late = stats.close_timed_out - self.timed_out_before_shutdown
                    + self.conns.slab.len() as u64;
                if late == 0 {
                    log::info!("shut down: every connection closed; {stats:?}");
                } else {
                    let noun = if late == 1 {
                        "connection"
                    } else {
                        "connections"
                    };
                    log::info!("shut down: {late} {noun} did not close in time; {stats:?}");
                }
                return Ok(());
            }
        }
    }

    /// One turn of the loop (see the module documentation).
    fn turn(&mut self, events: &mut Events) -> io::Result<()> {
        let timeout = self.poll_timeout();
        if let Err(error) = self.poll.poll(events, timeout) {
            // A signal interrupted the wait: not an error, just an early wake-up.
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(error)
            };
        }
        self.conns.now = Instant::now();

        for event in events.iter() {
            if self.dispatch(event) {
                return Ok(());
            }
        }
        let mut again = std::mem::replace(&mut self.ready, std::mem::take(&mut self.scratch));
        for &key in &again {
            if let Some(conn) = self.conns.slab.get_mut(key)
                && std::mem::take(&mut conn.read_scheduled)
            {
                self.read_ready(key);
            }
        }
        again.clear();
        self.scratch = again;
        self.run_due_timers();
        self.flush_all();
        Ok(())
    }

    /// Acts on one readiness event. Returns true if a second signal asks to stop now.
    fn dispatch(&mut self, event: &mio::event::Event) -> bool {
        match event.token() {
            SIGNALS => return self.signals_arrived(),
            LISTENER => self.accept_all(Transport::WebSocket),
            LINE_LISTENER => self.accept_all(Transport::Line),
            Token(key) => {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_ready(key);
                }
                if event.is_writable() {
                    self.conns.schedule_flush(key);
                }
            }
        }
        false
    }

    /// Takes the signals that arrived: the first SIGINT or SIGTERM begins a graceful
    /// shutdown; one during the shutdown asks to stop now, and so returns true.
    fn signals_arrived(&mut self) -> bool {
        let Some(signals) = &mut self.signals else {
            return false;
        };
        let count = signals.pending().count();
        if count == 0 {
            return false;
        }
        if self.shutdown_deadline.is_some() || count > 1 {
            log::warn!("second signal: stopping now");
            if self.shutdown_deadline.is_none() {
                self.timed_out_before_shutdown = self.conns.stats.close_timed_out;
            }
            self.shutdown_deadline = Some(self.conns.now);
            return true;
        }
        self.shut_down();
        false
    }

    /// How long `poll` may sleep: not at all if work is waiting, else until the earliest
    /// deadline (the shutdown's included), else indefinitely.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() || !self.conns.to_flush.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.conns.timers.next_deadline(), self.shutdown_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Accepts connections on the listener for `transport` until `WouldBlock`.
    fn accept_all(&mut self, transport: Transport) {
        if self.shutdown_deadline.is_some() {
            return; // a retry timer from before the shutdown
        }
        let token = match transport {
            Transport::WebSocket => LISTENER,
            Transport::Line => LINE_LISTENER,
        };
        if self.spare_fd.is_none() {
            // Lost when descriptors ran out while it was given up: take it back as soon
            // as one is free again.
            self.spare_fd = spare_descriptor();
        }
        loop {
            let listener = match transport {
                Transport::WebSocket => Some(&self.listener),
                Transport::Line => self.line_listener.as_ref(),
            };
            let Some(listener) = listener else { return };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.out_of_fds = false;
                    self.admit(stream, peer, transport);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) if out_of_descriptors(&e) && self.spare_fd.is_some() => {
                    // Give up the spare descriptor for long enough to take the client
                    // and tell it, rather than leave it waiting in the backlog for as
                    // long as every descriptor stays in use. (Linux reports EMFILE
                    // before it looks at the backlog, so it may be empty.)
                    self.spare_fd = None;
                    match listener.accept() {
                        Ok((mut stream, peer)) => {
                            if !std::mem::replace(&mut self.out_of_fds, true) {
                                warn!("out of file descriptors: refusing new clients with 503");
                            }
                            debug!("{peer}: refused, out of file descriptors");
                            refuse_now(
                                &mut stream,
                                &Response::text(
                                    503,
                                    "server out of file descriptors, try again later\n",
                                ),
                            );
                            self.conns.stats.refused_full += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            self.spare_fd = spare_descriptor();
                            return;
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                            ) => {}
                        Err(e) => {
                            self.spare_fd = spare_descriptor();
                            return self.accept_later(token, &e);
                        }
                    }
                    self.spare_fd = spare_descriptor();
                }
                Err(e) => return self.accept_later(token, &e),
            }
        }
    }

    /// After an `accept` error such as running out of file descriptors with no spare, or
    /// of memory: the pending connections stay in the backlog, and accepting starts again
    /// after a pause instead of spinning.
    fn accept_later(&mut self, token: Token, error: &io::Error) {
        let retry = &mut self.accept_retry[usize::from(token == LINE_LISTENER)];
        if std::mem::replace(retry, true) {
            return; // one retry is enough
        }
        warn!("accept failed: {error}; retrying in {ACCEPT_BACKOFF:?}");
        let at = self.conns.now + ACCEPT_BACKOFF;
        self.conns.timers.schedule(
            at,
            TimerTarget {
                key: token.0,
                serial: 0,
            },
        );
    }

    /// Registers a new connection, or turns it away if the server is full. A WebSocket
    /// connection starts by reading its request head, within the handshake deadline; a
    /// line connection's session starts at once.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, transport: Transport) {
        if self.conns.slab.len() >= self.config.max_connections {
            debug!(
                "{peer}: refused, {} connections already",
                self.conns.slab.len()
            );
            refuse_now(
                &mut stream,
                &Response::text(503, "server full, try again later\n"),
            );
            self.conns.stats.refused_full += 1;
            return;
        }
        // Frames are small and latency matters more than packet count; the vectored
        // flush already batches what can be batched.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("{peer}: set_nodelay failed: {e}");
        }
        let entry = self.conns.slab.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            warn!("{peer}: register failed: {e}");
            return;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.conns.stats.accepted += 1;
        debug!("{peer}: accepted as #{key} ({transport:?})");
        match transport {
            Transport::WebSocket => {
                let deadline = self.conns.now + self.config.handshake_timeout;
                entry.insert(Connection::new(
                    stream,
                    peer,
                    serial,
                    Phase::Http(Vec::new()),
                    Some(deadline),
                ));
                self.conns
                    .timers
                    .schedule(deadline, TimerTarget { key, serial });
            }
            Transport::Line => {
                let phase = Phase::Line(LineReader::new(self.config.max_line_bytes));
                entry
                    .insert(Connection::new(stream, peer, serial, phase, None))
                    .in_app = true;
                self.conns.mark_caught_up(key);
                self.handler
                    .on_open(&mut Context::new(&mut self.conns), ConnectionId(key), None);
                self.deliver_closes();
            }
        }
    }

    /// Reads a connection until `WouldBlock`, end of stream, an error, or its budget.
    fn read_ready(&mut self, key: usize) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET;
        while let Some(conn) = self.conns.slab.get_mut(key) {
            match conn.stream.read(&mut buf[..]) {
                Ok(0) => {
                    self.peer_finished(key);
                    break;
                }
                Ok(n) => {
                    if let Some(keepalive) = &mut conn.keepalive {
                        keepalive.heard(self.conns.now);
                    }
                    self.receive(key, &buf[..n]);
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        if let Some(conn) = self.conns.slab.get_mut(key)
                            && !std::mem::replace(&mut conn.read_scheduled, true)
                        {
                            self.ready.push(key);
                        }
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.remove(key, &format!("read failed: {e}"));
                    break;
                }
            }
        }
        self.read_buf = buf;
        self.deliver_closes();
    }

    /// The peer shut down its side: whatever it had to say, it said. Its session ends;
    /// output still queued (an echo of its last message, say) is written before the
    /// connection is removed, within the close deadline.
    fn peer_finished(&mut self, key: usize) {
        // A line client's last words may lack a final newline (`printf hi | nc`).
        self.finish_lines(key);
        self.conns.catch_up(key);
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        conn.read_closed = true;
        if conn.out.is_empty() {
            return self.remove(key, "peer closed the connection");
        }
        if !matches!(conn.phase, Phase::Lingering) {
            self.conns.linger(key);
        }
    }

    /// Writes every connection on the flush list, and every open connection if anything
    /// was broadcast; then drops the broadcasts every open connection has.
    ///
    /// A round of writes to thousands of connections takes milliseconds (a write to a
    /// socket costs microseconds of CPU). Every [`POLL_DURING_FLUSH`] connections the
    /// round looks for input without waiting, and handles it: messages broadcast then
    /// reach the connections the round has yet to write in the same write as the rest,
    /// instead of waiting for the round to end and the next to come round to them. The
    /// connections already written get them next turn.
    fn flush_all(&mut self) {
        let published = self.conns.published.len();
        if published > 0 {
            self.conns.batch.seal(&self.conns.published);
            let Connections { slab, to_flush, .. } = &mut self.conns;
            for (key, conn) in slab.iter_mut() {
                if conn.is_open() {
                    conn.schedule_flush(key, to_flush);
                }
            }
        }
        let keys = std::mem::replace(&mut self.conns.to_flush, std::mem::take(&mut self.scratch));
        for (done, &key) in keys.iter().enumerate() {
            if done > 0 && done % POLL_DURING_FLUSH == 0 {
                self.poll_during_flush();
            }
            self.flush(key);
        }
        self.scratch = keys;
        self.scratch.clear();
        self.deliver_closes();
        // Every open connection was written, or caught up, up to `published` at least:
        // those broadcasts can go. The ones made since stay for whoever has not had them.
        let Connections {
            slab,
            published: list,
            published_base,
            to_flush,
            batch,
            ..
        } = &mut self.conns;
        list.drain(..published);
        *published_base += published as u64;
        batch.finish_turn();
        if !list.is_empty() {
            let end = *published_base + list.len() as u64;
            for (key, conn) in slab.iter_mut() {
                if conn.is_open() && conn.published_seen < end {
                    conn.schedule_flush(key, to_flush);
                }
            }
        }
    }

    /// Handles whatever input has arrived, without waiting: the middle of a long flush
    /// round (see [`Server::flush_all`]). Broadcasts it causes join the turn's batch.
    fn poll_during_flush(&mut self) {
        let mut events = std::mem::replace(&mut self.flush_events, Events::with_capacity(0));
        if self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() && !events.is_empty() {
            self.conns.now = Instant::now();
            for event in events.iter() {
                self.dispatch(event);
            }
            if !self.conns.published.is_empty() {
                self.conns.batch.seal(&self.conns.published);
            }
        }
        self.flush_events = events;
    }

    /// Writes as much of a connection's queue as the kernel takes, up to the write
    /// budget, and sets WRITABLE interest to match what is left.
    fn flush(&mut self, key: usize) {
        let unseen = self.conns.unseen_from(key);
        let published_end = self.conns.published_end();
        let (max_out, policy) = (self.conns.max_outbound_bytes, self.conns.slow_consumer);
        let Connections {
            slab,
            published,
            batch,
            to_flush,
            stats,
            ..
        } = &mut self.conns;
        let Some(conn) = slab.get_mut(key) else {
            return;
        };
        conn.flush_scheduled = false;
        let pending = connection::unseen_frames(published, unseen, key).map(|(_, frame)| frame);
        let (start, transport) = unseen.unwrap_or((published.len(), Transport::WebSocket));
        let drained = conn.out.write_with_pending(
            &mut conn.stream,
            pending,
            batch.unseen_bytes(published, start, transport, key),
            WRITE_BUDGET,
        );
        conn.published_seen = published_end;
        match drained {
            Ok(Drain::Empty | Drain::Blocked) => {}
            // Still writable: come back next turn, after the others have had theirs.
            Ok(Drain::BudgetSpent) => conn.schedule_flush(key, to_flush),
            Err(e) => return self.remove(key, &format!("write failed: {e}")),
        }
        if conn.out.len() > max_out && conn.is_open() {
            // This turn's broadcasts, which it could not take, put it over the limit.
            match policy {
                SlowConsumer::Drop => {
                    let dropped = conn.out.shed_shared_from_back(max_out);
                    stats.dropped_messages += dropped as u64;
                }
                SlowConsumer::Close => {
                    info!("{}: output queue over {max_out} bytes; closing", conn.peer);
                    stats.slow_closed += 1;
                    self.conns.close(
                        key,
                        CloseCode::PolicyViolation,
                        "too slow: output queue full",
                    );
                }
            }
        }
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        if conn.out.is_empty() && conn.read_closed {
            return self.remove(key, "peer closed the connection; output written");
        }

        let want_writable = !conn.out.is_empty();
        if want_writable != conn.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(key), interest)
            {
                return self.remove(key, &format!("reregister failed: {e}"));
            }
            conn.writable_registered = want_writable;
        }
        if conn.out.is_empty() && matches!(conn.phase, Phase::Lingering) && !conn.shutdown_sent {
            // Everything is said: send our FIN. Errors only mean the peer is gone already.
            let _ = conn.stream.shutdown(Shutdown::Write);
            conn.shutdown_sent = true;
        }
    }

    /// Acts on every deadline that has passed.
    fn run_due_timers(&mut self) {
        let now = self.conns.now;
        while let Some(target) = self.conns.timers.pop_due(now) {
            if target.key == LISTENER.0 {
                self.accept_retry[0] = false;
                self.accept_all(Transport::WebSocket);
                continue;
            }
            if target.key == LINE_LISTENER.0 {
                self.accept_retry[1] = false;
                self.accept_all(Transport::Line);
                continue;
            }
            let Some(conn) = self.conns.slab.get_mut(target.key) else {
                continue;
            };
            let due = conn.serial == target.serial && conn.deadline.is_some_and(|at| at <= now);
            if !due {
                continue; // stale: the slot was reused, or the deadline moved
            }
            conn.deadline = None;
            match &conn.phase {
                Phase::WebSocket(ws) if ws.state() == State::Open && conn.keepalive.is_some() => {
                    self.keep_alive(target.key);
                }
                // A kept-alive connection with no request begun: just close it.
                Phase::Http(head) if head.is_empty() && conn.out.is_empty() && conn.kept_alive => {
                    self.remove(target.key, "idle keep-alive connection");
                }
                Phase::Http(_) => {
                    refuse_now(
                        &mut conn.stream,
                        &Response::text(408, "no complete request in time\n"),
                    );
                    self.remove(target.key, "request timed out");
                }
                _ => {
                    self.conns.stats.close_timed_out += 1;
                    self.remove(target.key, "closing handshake timed out");
                }
            }
        }
        self.deliver_closes();
    }

    /// Acts on an open WebSocket's keepalive deadline: ping it, wait on, or drop it
    /// after the idle timeout. The client then sees the connection end without a Close
    /// (1006 in a browser): a peer that has not answered for that long is not expected
    /// to read one.
    fn keep_alive(&mut self, key: usize) {
        let (Some(config), Some(conn)) = (self.config.keepalive, self.conns.slab.get_mut(key))
        else {
            return;
        };
        let Some(keepalive) = &mut conn.keepalive else {
            return;
        };
        match keepalive.poll(self.conns.now, &config) {
            KeepaliveAction::Wait(at) => self.conns.set_deadline(key, Some(at)),
            KeepaliveAction::Ping(at) => {
                debug!(
                    "{}: #{key} quiet for {:?}; ping",
                    conn.peer, config.ping_interval
                );
                self.conns.ping(key);
                self.conns.set_deadline(key, Some(at));
            }
            KeepaliveAction::GiveUp => {
                self.conns.stats.idle_dropped += 1;
                let why = format!("nothing heard for {:?}", config.idle_timeout);
                self.remove(key, &why);
            }
        }
    }

    /// Removes a connection: the one place where connections end.
    fn remove(&mut self, key: usize, why: &str) {
        self.conns.end_session(key);
        let Some(mut conn) = self.conns.slab.try_remove(key) else {
            return;
        };
        debug!("{}: #{key} removed: {why}", conn.peer);
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            debug!("{}: deregister failed: {e}", conn.peer);
        }
        drop(conn); // closes the socket
        self.deliver_closes();
    }

    /// Gives the handler the `on_close` of every session that ended since the last call.
    /// Handlers may close other connections from `on_close`; those are delivered too.
    fn deliver_closes(&mut self) {
        while !self.conns.closed.is_empty() {
            for key in std::mem::take(&mut self.conns.closed) {
                self.handler
                    .on_close(&mut Context::new(&mut self.conns), ConnectionId(key));
            }
        }
    }
}

/// Writes a short response to a connection we will not keep, without waiting, and shuts
/// it down. Best effort: the socket's send buffer is empty, so a small response fits.
/// Whether `accept` failed for want of a file descriptor, the process's (EMFILE) or the
/// system's (ENFILE).
fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// A descriptor held in reserve (`/dev/null`, opened for reading), freed for a moment
/// when the process runs out, so that a client beyond the limit can be accepted and
/// answered 503 instead of waiting unanswered. `None` if it cannot be opened.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Answers a client that is not taken on (503: full, or out of descriptors) and lets it
/// go, without a slab slot or a turn of the loop. What it already sent is read and
/// discarded first: closing a socket with unread input makes the kernel send a reset,
/// which may reach the client before it has read the answer.
fn refuse_now(stream: &mut TcpStream, response: &Response) {
    let _ = stream.write(&response.encode(false, false));
    let _ = stream.shutdown(Shutdown::Write);
    let mut discard = [0; 4096];
    for _ in 0..4 {
        match stream.read(&mut discard) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}
