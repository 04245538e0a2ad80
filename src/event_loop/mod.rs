//! The event loop: one thread, one `mio::Poll`, every connection.
//!
//! This file is the turn of the loop and nothing else, as Redis's `aeProcessEvents` and
//! `beforeSleep` are. Each turn does the same five things, in this order:
//!
//! 1. **Sleep** in `poll` until a socket is ready or the earliest deadline comes (not at
//!    all if work was left over from the last turn).
//! 2. **Dispatch** each readiness event by token: a listener's token means accept; the
//!    signal pipe's means shut down; the waker's means another thread has messages for
//!    the handler ([`Handler::on_wake`]); a link's (see `links.rs`) means the handler hears
//!    what arrived on it; any other token is a slab key, and the connection is read (and,
//!    if it was writable, put on the flush list).
//! 3. **Read again** the connections (and links) that stopped at their read budget last
//!    turn, and those in their TLS handshake past the turn's handshakes.
//! 4. **Run due timers**: deadlines of handshakes, keepalives and closing handshakes,
//!    accept retries, and the handler's alarm.
//! 5. **Flush** the handler's links, then every connection that has output queued, and every open connection that
//!    has not taken every broadcast: vectored writes of up to 512 chunks each, until the socket
//!    would block or the connection's write budget is spent. A long round (thousands of
//!    connections) polls without waiting every 64 writes and handles what arrived, so
//!    input is not left waiting for the whole round, and broadcasts made meanwhile go
//!    out in the same round to the connections not yet written.
//!
//! Connections end in one place, `Server::remove`: they leave the slab, their socket is
//! deregistered and closed, and the handler hears `on_close` if it had heard `on_open`.
//!
//! Two rules of `mio` shape the code. Readiness is edge-triggered: after a wake-up we
//! must read (or accept) until `WouldBlock`, or we may never hear of the remaining bytes
//! again. The one exception is deliberate: a connection that reaches its per-turn read
//! budget is put on a ready list and read again next turn, so one fast sender cannot
//! starve the rest. And wake-ups can be spurious: every handler copes with `WouldBlock`.
//!
//! A handler's send only queues bytes and marks the connection (unless it would take the
//! queue past its limit: then the queue is offered to the kernel first, see
//! `slow_consumer.rs`); the flush at the end of the turn writes each marked connection
//! once, everything queued for it together ("corking"). WRITABLE interest is registered
//! only when the kernel did not take it all, and dropped again once the queue is empty.
//! A broadcast does not even mark its recipients: it is published once to the broadcast
//! log (`broadcast_log.rs`), and each open connection takes what it has not taken in its
//! flush.
//!
//! # The files of the loop
//!
//! From the bottom up; each imports only files above it in this list (`cargo test
//! --test module_graph` checks that there is no cycle):
//!
//! - `shared_frame.rs`, `stats.rs`, `metrics.rs`, `timers.rs`, `wire.rs`, `waker.rs`,
//!   `board.rs`, `config.rs`, `links.rs`: leaves. What every layer shares
//!   ([`Transport`], [`SharedFrame`]), the counts, what the loop measures of each turn
//!   ([`LoopMetrics`]), the deadline heap, a connection's socket or TLS over it, what
//!   wakes the loop from another thread ([`Waker`]), where workers post their figures
//!   ([`Board`]), the settings, and the application's own TCP links (to Redis, say),
//!   read and written by the same turn as the clients.
//! - `broadcast_log.rs`: the O(1) broadcast, whole: publish, what a connection has not
//!   taken as slices ready for `writev`, retire.
//! - `outbound.rs`: one connection's queued output and its vectored writes.
//! - `connection.rs`: one connection: its socket, its phase, its queue.
//! - `slow_consumer.rs`: what happens when a queue is full.
//! - `connections.rs`: every connection and the loop's bookkeeping; send, broadcast,
//!   close, linger.
//! - `accept.rs`, `keepalive.rs`, `shutdown.rs`, `admin.rs`: policies: the listeners, the
//!   spare descriptor and its 503, accept backoff; pinging quiet peers; graceful
//!   shutdown; the admin port's answers and the live page's feed.
//! - `handler.rs`: the application API, [`Handler`] and [`Context`].
//! - `session.rs`: what the bytes read mean in each phase, and the handler's calls.
//! - `mod.rs`: the turn.

mod accept;
mod admin;
mod board;
mod broadcast_log;
mod config;
mod connection;
mod connections;
mod handler;
mod keepalive;
mod links;
mod metrics;
mod outbound;
mod session;
mod shared_frame;
mod shutdown;
mod slow_consumer;
mod stats;
mod timers;
mod waker;
mod wire;

pub use board::Board;
pub use config::{AdminConfig, ServerConfig, SlowConsumer};
pub use connections::SendError;
pub use handler::{ConnectionId, Context, Handler};
pub use links::{LinkEvent, LinkId};
pub use metrics::{Histogram, LoopMetrics, Phase as TurnPhase, Totals, Turn};
pub use shared_frame::{SharedFrame, Transport};
pub use stats::Stats;
pub use waker::{Remote, Waker};

use crate::http::Response;
use accept::{Acceptor, Listener};
use admin::AdminState;
use connection::Phase;
use connections::Connections;
use handler::deliver_closes;
use links::{LinkRead, Links, Readiness};
use log::debug;
use mio::{Events, Interest, Poll, Token};
use outbound::{Counted, Drain};
use session::Sessions;
use shutdown::{SIGNALS, Shutdown, SignalAction};
use slow_consumer::Verdict;
use std::io::{self, Read};
use std::net::{Shutdown as TcpShutdown, SocketAddr};
use std::time::{Duration, Instant};
use waker::WAKE;
use wire::Wire;

/// Bytes read from a socket per `read` call. One buffer serves every connection: bytes
/// are decoded straight out of it, so an idle connection holds no read buffer at all.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes one connection may read per loop turn before the others get their turn.
const READ_BUDGET: usize = 256 * 1024;

/// Bytes one connection may write per loop turn before the others get their turn.
const WRITE_BUDGET: usize = 1024 * 1024;

/// How many connections a flush round writes between two looks for new input (see
/// `Server::flush_all`): at a few microseconds a write, a look every few hundred
/// microseconds, which costs one `epoll_wait` that finds nothing when all is quiet.
const POLL_DURING_FLUSH: usize = 64;

/// Readiness events taken from the kernel per `poll`.
const EVENTS_CAPACITY: usize = 1024;

/// Connections in their TLS handshake that one turn reads. Reading a ClientHello costs a
/// key exchange and a signature, some hundreds of microseconds: past this many, a
/// connection in its handshake waits on the ready list for the next turn, as one past its
/// read budget does, so that a flood of ClientHellos delays everyone else by a few
/// milliseconds a turn, not by the whole flood.
const HANDSHAKES_PER_TURN: usize = 32;

/// A WebSocket server: the listeners, the connections, and the application's handler.
pub struct Server<H: Handler> {
    poll: Poll,
    /// The listeners and the accepting policy.
    acceptor: Acceptor,
    handler: H,
    config: ServerConfig,
    conns: Connections,
    /// The shared read buffer (see [`READ_CHUNK`]).
    read_buf: Box<[u8]>,
    /// Connections to read again next turn: they used their budget before `WouldBlock`
    /// (or, in their TLS handshake, the turn's handshakes were spent).
    ready: Vec<usize>,
    /// Connections in their TLS handshake read this turn (see [`HANDSHAKES_PER_TURN`]).
    handshakes: usize,
    /// Links to read again next turn, for the same reason.
    ready_links: Vec<LinkId>,
    /// An empty list kept to swap with `ready` or the flush list while one is walked, so
    /// that neither is reallocated every turn.
    scratch: Vec<usize>,
    /// Readiness events taken in the middle of a flush round (see `Server::flush_all`).
    flush_events: Events,
    /// Signals, and the graceful shutdown once it has begun.
    shutdown: Shutdown,
    /// The admin port's state, if it has one.
    admin: Option<AdminState>,
    /// What other threads wake the loop with (see `waker.rs`).
    waker: Waker,
    /// What other threads ask of the loop (shut down, stop, reload).
    remote: Remote,
    /// With several workers, where this loop posts its figures (see `board.rs`).
    board: Option<Posting>,
}

/// A worker's posting of its figures on the board.
struct Posting {
    board: Board,
    worker: usize,
    /// When it may post next.
    next: Instant,
    /// A turn since the last post has not been posted.
    due: bool,
}

impl<H: Handler> Server<H> {
    /// Binds the listening sockets and prepares the loop. Nothing is accepted until
    /// [`Server::run`].
    pub fn bind(config: ServerConfig, handler: H) -> io::Result<Server<H>> {
        if let Some(admin) = &config.admin {
            crate::admin::check_exposure(admin.addr, admin.token.as_deref())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let admin = config
            .admin
            .as_ref()
            .map(|admin| AdminState::new(admin, Instant::now()));
        // A certificate that cannot be used stops the start, before anything listens.
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::server_config(files).map_err(io::Error::other)?),
            None => None,
        };
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let acceptor = Acceptor::bind(&config, poll.registry())?;
        let links = Links::new(poll.registry().try_clone()?);
        let mut conns = Connections::new(&config, links);
        conns.tls = tls;
        Ok(Server {
            poll,
            acceptor,
            handler,
            conns,
            config,
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            ready: Vec::new(),
            handshakes: 0,
            ready_links: Vec::new(),
            scratch: Vec::new(),
            flush_events: Events::with_capacity(EVENTS_CAPACITY),
            shutdown: Shutdown::default(),
            admin,
            remote: Remote::new(waker.clone()),
            waker,
            board: None,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }

    /// The address of the admin port, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.acceptor.admin_addr()
    }

    /// The address of the line port, if there is one.
    pub fn line_addr(&self) -> Option<SocketAddr> {
        self.acceptor.line_addr()
    }

    /// What wakes this loop from another thread: its handler then hears
    /// [`Handler::on_wake`]. For loops that pass messages (see `crate::workers`).
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Makes this loop worker `worker` of several: it posts its figures on `board`
    /// (after a turn, at most four times a second), and, if it serves the admin port,
    /// `/stats` and `/metrics` give every worker's figures from the board. See
    /// `crate::workers`, which does this for each worker.
    pub fn post_figures_on(&mut self, board: Board, worker: usize) {
        if let Some(admin) = &mut self.admin {
            admin.board = Some((board.clone(), worker));
        }
        self.board = Some(Posting {
            board,
            worker,
            next: Instant::now(),
            due: true,
        });
    }

    /// Asks this loop, from another thread, to shut down, stop or reload its TLS
    /// certificate: what `crate::workers` does for each worker when a signal comes.
    pub fn remote(&self) -> Remote {
        self.remote.clone()
    }

    /// The application handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// What the loop has counted so far.
    pub fn stats(&self) -> Stats {
        self.conns.stats
    }

    /// What the loop has measured of its turns: counters, histograms, the last turns.
    pub fn metrics(&self) -> &LoopMetrics {
        &self.conns.metrics
    }

    /// How many connections exist, in any phase.
    pub fn connection_count(&self) -> usize {
        self.conns.slab.len()
    }

    /// Makes SIGINT and SIGTERM begin a graceful shutdown ([`Server::shut_down`]); a
    /// second signal during it ends `run` at once. On a server with TLS, SIGHUP reloads
    /// the certificate and key ([`Server::reload_tls`]). For a program that owns the
    /// process: signal handlers are process-wide.
    pub fn shut_down_on_signals(&mut self) -> io::Result<()> {
        let reload = self.config.tls.is_some();
        self.shutdown
            .listen_for_signals(self.poll.registry(), reload)
    }

    /// Begins a graceful shutdown: stops accepting, sends every WebSocket client a Close
    /// with 1001 (going away), tells line clients `! server shutting down; closing` after
    /// what is queued for them and lets that drain, and drops connections still in their
    /// HTTP request. [`Server::run`] returns once every connection is gone, or after the
    /// close timeout. See `shutdown.rs`.
    pub fn shut_down(&mut self) {
        if !self.shutdown.begin(&self.conns) {
            return;
        }
        self.acceptor.stop(self.poll.registry());
        // In slab order, each removal telling the handler at once, so that what it says
        // in `on_close` reaches the connections closed after it.
        let keys: Vec<usize> = self.conns.slab.iter().map(|(key, _)| key).collect();
        for key in keys {
            if shutdown::close_for_shutdown(&mut self.conns, key) {
                self.remove(key, "server shutting down");
            }
        }
        self.deliver_closes();
    }

    /// Loads the TLS certificate and key again (SIGHUP): new connections get the new
    /// ones, open connections keep theirs. A file that cannot be used is refused, with a
    /// log line saying why, and the configuration in use is kept.
    pub fn reload_tls(&mut self) {
        let Some(files) = &self.config.tls else {
            return;
        };
        match crate::tls::server_config(files) {
            Ok(tls) => {
                self.conns.tls = Some(tls);
                log::info!(
                    "TLS: certificate and key reloaded from {}",
                    files.cert.display()
                );
            }
            Err(e) => log::warn!("TLS: reload refused, the certificate in use is kept: {e}"),
        }
    }

    /// Runs the loop. Returns `Ok` after a graceful shutdown ([`Server::shut_down`]),
    /// and an error only if polling itself fails.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        self.conns.now = Instant::now();
        self.handler.on_start(&mut Context::new(&mut self.conns));
        self.deliver_closes();
        loop {
            self.turn(&mut events)?;
            if self.shutdown.is_over(&self.conns) {
                // What the handler said on its links as its clients left goes out, as far
                // as the kernel takes it without waiting.
                self.flush_links();
                self.shutdown
                    .account(self.conns.stats, self.conns.slab.len());
                return Ok(());
            }
        }
    }

    /// One turn of the loop (see the module documentation).
    fn turn(&mut self, events: &mut Events) -> io::Result<()> {
        // 1. Sleep.
        let timeout = self.poll_timeout();
        let slept_at = Instant::now();
        if let Err(error) = self.poll.poll(events, timeout) {
            // A signal interrupted the wait: not an error, just an early wake-up.
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(error)
            };
        }
        self.conns.now = Instant::now();
        let woke_at = self.conns.now;
        self.handshakes = 0;
        // The connections that stopped at their read budget last turn. Taken now, so
        // that one stopping at its budget in this turn's dispatch waits for the next turn
        // rather than reading a second budget in step 3.
        let mut again = std::mem::replace(&mut self.ready, std::mem::take(&mut self.scratch));

        // 2. Dispatch.
        for event in events.iter() {
            self.conns.metrics.totals.events += 1;
            if self.dispatch(event) {
                self.ready.append(&mut again);
                return Ok(());
            }
        }

        // 3. Read again.
        for &key in &again {
            if let Some(conn) = self.conns.slab.get_mut(key)
                && std::mem::take(&mut conn.read_scheduled)
            {
                self.read_ready(key);
            }
        }
        again.clear();
        self.scratch = again;
        for link in std::mem::take(&mut self.ready_links) {
            self.link_ready(link, false);
        }

        // 4. Run due timers; 5. flush.
        let timers_at = Instant::now();
        self.run_due_timers();
        let flush_at = Instant::now();
        self.flush_all();
        let done_at = Instant::now();
        let turn = self.conns.metrics.end_turn([
            woke_at - slept_at,
            timers_at - woke_at,
            flush_at - timers_at,
            done_at - flush_at,
        ]);
        if turn.seq.is_multiple_of(self.config.trace_every.max(1)) {
            log::trace!(target: "loopchat::trace", "{}", turn.trace_line());
        }
        self.post_figures();
        // The live pages' snapshots are made after the turn is summed up, so that
        // reporting is not counted as work; they are written in the next turn, which
        // comes at once (see `poll_timeout`).
        if let Some(state) = &mut self.admin {
            let handler = &self.handler;
            let app = || admin::AppReport {
                rooms: handler.rooms(),
                links: handler.links(),
            };
            admin::feed(state, &mut self.conns, app);
        }
        Ok(())
    }

    /// Posts the loop's figures on the workers' board, if it has one and may post now;
    /// else leaves them due, for the wake-up at the next time it may.
    fn post_figures(&mut self) {
        let Some(posting) = &mut self.board else {
            return;
        };
        let now = self.conns.now;
        if now < posting.next {
            posting.due = true;
            return;
        }
        posting.board.post(
            posting.worker,
            admin::client_connections(&self.conns),
            admin::totals(&self.conns),
            now,
        );
        posting.next = now + board::POST_INTERVAL;
        posting.due = false;
    }

    /// How long `poll` may sleep: not at all if work is waiting, else until the earliest
    /// deadline (the shutdown's included), else indefinitely.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.ready.is_empty()
            || !self.ready_links.is_empty()
            || !self.conns.to_flush.is_empty()
            || self.conns.links.want_flush()
        {
            return Some(Duration::ZERO);
        }
        let next = [
            self.conns.next_deadline(),
            self.shutdown.deadline(),
            self.conns.alarm,
            self.admin.as_ref().and_then(AdminState::deadline),
            self.board.as_ref().filter(|p| p.due).map(|p| p.next),
        ]
        .into_iter()
        .flatten()
        .min();
        next.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Acts on one readiness event. Returns true if a second signal asks to stop now.
    fn dispatch(&mut self, event: &mio::event::Event) -> bool {
        if let Some(listener) = Acceptor::listener_of(event.token()) {
            self.accept_all(listener);
            return false;
        }
        if let Some(link) = Links::of_token(event.token()) {
            self.link_ready(link, event.is_writable());
            return false;
        }
        match event.token() {
            WAKE => {
                // Cleared before the handler drains its channels: a message sent after
                // that wakes the loop again.
                self.waker.heard();
                let asked = self.remote.take();
                if asked.reload_tls() {
                    self.reload_tls();
                }
                if asked.stop_now() {
                    log::warn!("asked to stop now");
                    self.shutdown.stop_now(&self.conns);
                    self.acceptor.stop(self.poll.registry());
                    return true;
                }
                if asked.shut_down() {
                    self.shut_down();
                }
                self.handler.on_wake(&mut Context::new(&mut self.conns));
                self.deliver_closes();
            }
            SIGNALS => match self.shutdown.signals_arrived(&self.conns) {
                SignalAction::None => {}
                SignalAction::Begin => self.shut_down(),
                SignalAction::Reload => self.reload_tls(),
                SignalAction::StopNow => {
                    self.acceptor.stop(self.poll.registry());
                    return true;
                }
            },
            Token(key) => {
                // A connection waiting on the ready list is read in step 3, once: reading
                // it here too would give it two budgets in one turn.
                let waiting = self.conns.slab.get(key).is_some_and(|c| c.read_scheduled);
                if (event.is_readable() || event.is_read_closed() || event.is_error()) && !waiting {
                    self.read_ready(key);
                }
                if event.is_writable() {
                    self.conns.schedule_flush(key);
                }
            }
        }
        false
    }

    /// A link is ready: tells the handler it connected, or failed, and gives it what
    /// arrived, reading until the kernel has no more, or until the link's read budget
    /// (as a client's) is spent: then it is read again next turn.
    fn link_ready(&mut self, link: LinkId, writable: bool) {
        match self.conns.links.ready(link, writable) {
            Readiness::Nothing => {}
            Readiness::Connected => self.tell_link(link, LinkEvent::Connected),
            Readiness::Closed(why) => return self.tell_link(link, LinkEvent::Closed(why)),
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET;
        loop {
            if budget == 0 {
                if !self.ready_links.contains(&link) {
                    self.ready_links.push(link);
                }
                break;
            }
            match self.conns.links.read(link, &mut buf) {
                LinkRead::Bytes(n) => {
                    budget = budget.saturating_sub(n);
                    self.tell_link(link, LinkEvent::Data(&buf[..n]));
                }
                LinkRead::Drained | LinkRead::Gone(None) => break,
                LinkRead::Gone(Some(why)) => {
                    self.tell_link(link, LinkEvent::Closed(why));
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    fn tell_link(&mut self, link: LinkId, event: LinkEvent<'_>) {
        self.handler
            .on_link(&mut Context::new(&mut self.conns), link, event);
        self.deliver_closes();
    }

    /// Writes what the handler queued on its links; tells it of those that failed.
    fn flush_links(&mut self) {
        for (link, why) in self.conns.links.flush() {
            self.tell_link(link, LinkEvent::Closed(why));
        }
    }

    /// Takes on every client waiting on `transport`'s listener (see `accept.rs`): a
    /// WebSocket client starts reading its request head, a line client's session starts
    /// at once.
    fn accept_all(&mut self, listener: Listener) {
        while let Some((stream, peer)) = self.acceptor.accept(listener, &mut self.conns) {
            let registry = self.poll.registry();
            let transport = listener.transport();
            let admin = listener == Listener::Admin;
            let admitted = self
                .conns
                .admit(stream, peer, transport, admin, &self.config, registry);
            if let Some(key) = admitted
                && listener == Listener::Line
            {
                self.sessions().open_line(key);
            }
        }
    }

    /// The session layer, for one call (see `session.rs`).
    fn sessions(&mut self) -> Sessions<'_, H> {
        Sessions {
            conns: &mut self.conns,
            handler: &mut self.handler,
            config: &self.config,
            admin: self.admin.as_mut(),
        }
    }

    /// Reads a connection until `WouldBlock`, end of stream, an error, or its budget.
    fn read_ready(&mut self, key: usize) {
        if let Some(conn) = self.conns.slab.get_mut(key)
            && conn.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
        {
            if self.handshakes >= HANDSHAKES_PER_TURN {
                // Its bytes stay in the socket; the ready list brings it back next turn.
                if !std::mem::replace(&mut conn.read_scheduled, true) {
                    self.ready.push(key);
                }
                return;
            }
            self.handshakes += 1;
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET;
        while let Some(conn) = self.conns.slab.get_mut(key) {
            let tls_buffers = &mut self.conns.tls_buffers;
            match Wire::new(&mut conn.stream, conn.tls.as_deref_mut(), tls_buffers)
                .read(&mut buf[..])
            {
                Ok(0) => {
                    self.peer_finished(key);
                    break;
                }
                Ok(n) => {
                    if let Some(keepalive) = &mut conn.keepalive {
                        keepalive.heard(self.conns.now);
                    }
                    if !conn.admin {
                        // The loop's figures are the clients'; the admin port's own
                        // traffic would muddle what it reports.
                        let totals = &mut self.conns.metrics.totals;
                        totals.reads += 1;
                        totals.bytes_in += n as u64;
                    }
                    self.sessions().receive(key, &buf[..n]);
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
        // TLS may have records left that no output asked for (the handshake's, or an
        // answer to a key update), which the socket did not take: the flush keeps
        // WRITABLE interest for them.
        if let Some(conn) = self.conns.slab.get(key)
            && conn.tls.as_ref().is_some_and(|tls| tls.pending())
        {
            self.conns.schedule_flush(key);
        }
        self.deliver_closes();
    }

    /// The peer shut down its side: whatever it had to say, it said. Its session ends;
    /// output still queued (an echo of its last message, say) is written before the
    /// connection is removed, within the close deadline.
    fn peer_finished(&mut self, key: usize) {
        // A line client's last words may lack a final newline (`printf hi | nc`).
        self.sessions().finish_lines(key);
        self.conns.catch_up(key);
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        conn.read_closed = true;
        // With TLS the connection lingers even with nothing queued: its unsent records
        // go out, then close_notify, then FIN.
        if conn.out.is_empty() && conn.tls.is_none() {
            return self.remove(key, "peer closed the connection");
        }
        if !matches!(conn.phase, Phase::Lingering(_)) {
            self.conns.linger(key);
        }
    }

    /// Acts on every deadline that has passed: an accept retry, or a connection's one
    /// deadline, whose meaning depends on its phase.
    fn run_due_timers(&mut self) {
        let now = self.conns.now;
        if self.conns.alarm.is_some_and(|at| at <= now) {
            self.conns.alarm = None;
            self.handler.on_alarm(&mut Context::new(&mut self.conns));
            self.deliver_closes();
        }
        while let Some(target) = self.conns.timers.pop_due(now) {
            if let Some(listener) = Acceptor::listener_of(Token(target.key)) {
                self.acceptor.retry_due(listener);
                self.accept_all(listener);
                continue;
            }
            let key = target.key;
            let Some(conn) = self.conns.slab.get_mut(key) else {
                continue;
            };
            let due = conn.serial == target.serial && conn.deadline.is_some_and(|at| at <= now);
            if !due {
                continue; // stale: the slot was reused, or the deadline moved
            }
            conn.deadline = None;
            match &conn.phase {
                Phase::WebSocket(ws) if ws.state().can_send() && conn.keepalive.is_some() => {
                    let config = self.config.keepalive.as_ref();
                    if let Some(why) =
                        config.and_then(|c| keepalive::on_deadline(&mut self.conns, c, key))
                    {
                        self.remove(key, &why);
                    }
                }
                // A kept-alive connection with no request begun: just close it.
                Phase::Http(head) if head.is_empty() && conn.out.is_empty() && conn.kept_alive => {
                    self.remove(key, "idle keep-alive connection");
                }
                Phase::Http(_) => {
                    let response = Response::text(408, "no complete request in time\n");
                    match conn.tls.as_deref() {
                        // Through TLS once its handshake is done: the answer is queued,
                        // then close_notify and FIN follow it, as the connection lingers.
                        Some(tls) if !tls.is_handshaking() => {
                            conn.out.push_bytes(&response.encode(false, false));
                            self.conns.linger(key);
                        }
                        // A TLS handshake not done in time: no one to answer.
                        Some(_) => self.remove(key, "TLS handshake timed out"),
                        None => {
                            accept::refuse_now(&mut conn.stream, &response);
                            self.remove(key, "request timed out");
                        }
                    }
                }
                _ => {
                    self.conns.stats.close_timed_out += 1;
                    self.remove(key, "closing handshake timed out");
                }
            }
        }
        self.deliver_closes();
    }

    /// Writes every connection on the flush list, and every open connection if anything
    /// was broadcast; then retires the broadcasts every open connection has taken.
    ///
    /// A round of writes to thousands of connections takes milliseconds (a write to a
    /// socket costs microseconds of CPU). Every [`POLL_DURING_FLUSH`] connections the
    /// round looks for input without waiting, and handles it: messages broadcast then
    /// reach the connections the round has yet to write in the same write as the rest,
    /// instead of waiting for the round to end and the next to come round to them. The
    /// connections already written get them next turn.
    fn flush_all(&mut self) {
        // The application's links first: its requests to a broker go out before the
        // long round of client writes.
        self.flush_links();
        // Every open connection takes, in this round, every broadcast made before it.
        let round_end = self.conns.log.end();
        let Connections {
            slab,
            to_flush,
            log,
            ..
        } = &mut self.conns;
        if !log.is_empty() {
            for (key, conn) in slab.iter_mut() {
                if conn.is_open() && conn.next_broadcast < round_end {
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
        // Every open connection has taken what was published before the round (those
        // that opened during it did not want it). What was published since stays for
        // the connections written before it was made: they are scheduled for next turn.
        let Connections {
            slab,
            to_flush,
            log,
            ..
        } = &mut self.conns;
        log.retire(round_end);
        let end = log.end();
        if end > round_end {
            for (key, conn) in slab.iter_mut() {
                if conn.is_open() && conn.next_broadcast < end {
                    conn.schedule_flush(key, to_flush);
                }
            }
        }
    }

    /// Handles whatever input has arrived, without waiting: the middle of a long flush
    /// round (see [`Server::flush_all`]).
    fn poll_during_flush(&mut self) {
        let mut events = std::mem::replace(&mut self.flush_events, Events::with_capacity(0));
        if self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() && !events.is_empty() {
            self.conns.now = Instant::now();
            for event in events.iter() {
                self.conns.metrics.totals.events += 1;
                self.dispatch(event);
            }
        }
        self.flush_events = events;
    }

    /// Writes as much of a connection's queue, and of the broadcasts it has not taken, as
    /// the kernel takes, up to the write budget; applies the slow-consumer policy to what
    /// is left, and sets WRITABLE interest to match.
    fn flush(&mut self, key: usize) {
        let Connections {
            slab,
            log,
            to_flush,
            stats,
            metrics,
            output_limit,
            tls_buffers,
            ..
        } = &mut self.conns;
        let end = log.end();
        let Some(conn) = slab.get_mut(key) else {
            return;
        };
        conn.flush_scheduled = false;
        let lane = conn.lane();
        let mut wire = Wire::new(&mut conn.stream, conn.tls.as_deref_mut(), tls_buffers);
        // TLS records left from the last flush go before anything new.
        if let Err(e) = wire.flush_tls() {
            return self.remove(key, &format!("write failed: {e}"));
        }
        let mut socket = Counted::new(&mut wire);
        let drained = match lane {
            Some(lane) => {
                let untaken = log.untaken(conn.next_broadcast, lane, key);
                metrics.totals.deliveries += untaken.count() as u64;
                conn.next_broadcast = end;
                conn.out
                    .write_with_broadcasts(&mut socket, untaken, WRITE_BUDGET)
            }
            None => conn.out.write_until_blocked(&mut socket, WRITE_BUDGET),
        };
        if !conn.admin {
            metrics.totals.writes += socket.calls;
            metrics.totals.bytes_out += socket.bytes;
        }
        let tls_pending = wire.pending();
        match drained {
            Ok(Drain::Empty | Drain::Blocked) => {}
            // Still writable: come back next turn, after the others have had theirs.
            Ok(Drain::BudgetSpent) => conn.schedule_flush(key, to_flush),
            Err(e) => return self.remove(key, &format!("write failed: {e}")),
        }
        // Broadcasts it could not take may have put it over its limit.
        if conn.is_open() && output_limit.after_flush(&mut conn.out, stats) == Verdict::TooSlow {
            self.conns.close_too_slow(key);
        }
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        let lingering = conn.out.is_empty() && matches!(conn.phase, Phase::Lingering(_));
        let mut tls_pending = tls_pending;
        if lingering && !conn.shutdown_sent && conn.tls.is_some() {
            // Everything is said: TLS says so first (close_notify), then TCP.
            let tls = conn.tls.as_deref_mut();
            let mut wire = Wire::new(&mut conn.stream, tls, &mut self.conns.tls_buffers);
            match wire.close_notify() {
                Ok(()) => tls_pending = wire.pending(),
                Err(e) => return self.remove(key, &format!("write failed: {e}")),
            }
        }
        if conn.out.is_empty() && !tls_pending && conn.read_closed {
            return self.remove(key, "peer closed the connection; output written");
        }
        let want_writable = !conn.out.is_empty() || tls_pending;
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
        if lingering && !tls_pending && !conn.shutdown_sent {
            // Everything is said: send our FIN. Errors only mean the peer is gone already.
            let _ = conn.stream.shutdown(TcpShutdown::Write);
            conn.shutdown_sent = true;
        }
    }

    /// Removes a connection: the one place where connections end.
    fn remove(&mut self, key: usize, why: &str) {
        self.conns.end_session(key);
        let Some(mut conn) = self.conns.slab.try_remove(key) else {
            return;
        };
        if conn.admin {
            self.conns.admin_connections -= 1;
        }
        debug!("{}: #{key} removed: {why}", conn.peer);
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            debug!("{}: deregister failed: {e}", conn.peer);
        }
        drop(conn); // closes the socket
        self.deliver_closes();
    }

    /// Gives the handler the `on_close` of every session that ended since the last call.
    fn deliver_closes(&mut self) {
        deliver_closes(&mut self.handler, &mut self.conns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop's own tokens (listeners, signals) are all different, and none is a slab
    /// key or a link's: a shared token sends one source's events to another's handling
    /// (the admin listener once had the signals' token, and SIGTERM went unheard).
    #[test]
    fn the_loops_tokens_are_all_different() {
        let mut tokens: Vec<usize> = Acceptor::tokens().iter().map(|t| t.0).collect();
        tokens.push(SIGNALS.0);
        tokens.push(WAKE.0);
        let count = tokens.len();
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), count, "{tokens:?}");
        assert!(tokens.iter().all(|&t| t > usize::MAX / 2 + (1 << 20)));
        for token in tokens {
            assert!(Links::of_token(Token(token)).is_none(), "{token}");
        }
    }
}
