//! The generator's event loop: thousands of client connections on one `mio::Poll`.
//!
//! A [`Fleet`] owns every connection (a `Vec` whose index is the connection's token), one
//! read buffer that all of them share, and the list of connections with output waiting.
//! [`Fleet::run`] is the whole loop, in the shape of the server's:
//!
//! 1. fail overdue connection attempts and start new ones, up to the concurrency limit;
//! 2. let the [`Driver`] queue its messages (pre-encoded frames appended to each
//!    sender's queue);
//! 3. flush: write each connection's queue until it is empty or the kernel takes no
//!    more, registering `WRITABLE` interest only while a queue is not empty;
//! 4. sleep in `poll` until a socket is ready, an attempt times out, the driver wants to
//!    send (a fixed-rate schedule), or the phase ends;
//! 5. dispatch each event by token: finish a TCP connect and queue the upgrade request;
//!    read (one large read into the shared buffer, then the next only if it came back
//!    full), check the 101, decode frames, hand each message to the driver, queue a Pong
//!    for a Ping, take note of a Close.
//!
//! The clients may be spread over several servers (`--url A,B`, instances of one service
//! that relay to each other): client `i` connects to server `i mod n`. Past the connect
//! and the handshake's `Host`, nothing here depends on which server a connection is on.
//!
//! Every connection moves through [`ClientState`]; every way out of it is counted in
//! [`FleetCounts`] with a reason, never a panic, and every wait has a deadline.
//!
//! With `--deflate` every handshake offers permessage-deflate as a browser does; a
//! connection whose server agrees reads with an inflating [`FrameReader`], and its
//! parameters are kept for the load, which compresses what it sends. The fleet counts
//! the bytes it reads from and writes to its sockets ([`Fleet::wire_bytes`]): exactly
//! what crossed them, handshakes and control frames included.
//!
//! With `wss://` targets every connection also has a rustls client connection (boxed:
//! it is large, and `ws://` connections pay one pointer), made from the one
//! configuration the targets share, as soon as TCP connects. The socket I/O does not
//! change: the same one large read into the shared buffer, then [`Decrypt`] turns that
//! ciphertext into plaintext in a second shared buffer, piece by piece, for the same
//! handshake and frame code; a flush hands the queue to rustls and writes its records
//! ([`tls::send`]). What is counted on the wire is then the TLS bytes. The connect
//! deadline covers the TLS handshake too.

use super::frames::{FrameReader, Incoming};
use super::report::Progress;
use crate::client::tls::{self, Decrypt, Plaintext};
use crate::client::{TlsError, WsUrl};
use loopchat::http::ClientHandshake;
use loopchat::ws::deflate::negotiation::{DeflateOffer, Negotiated};
use loopchat::ws::frame::{Opcode, encode_frame};
use loopchat::ws::mask::MaskKeys;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one connection attempt (TCP connect, TLS handshake with `wss://`, and
/// WebSocket handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// When no connection has succeeded for this long, the remaining attempts are abandoned
/// (a server that stopped accepting would otherwise be waited for attempt after attempt).
pub const CONNECT_STALL: Duration = Duration::from_secs(15);
/// How long the server has to answer our Close and then close TCP.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The size of the shared read buffer: one read takes up to this much from a socket.
const READ_CHUNK: usize = 256 * 1024;
/// Largest message the frame reader assembles (a chat history can be a few MiB).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Where a connection stands.
#[derive(Debug)]
pub enum ClientState {
    /// Not started yet.
    Waiting,
    /// TCP connect under way, since then.
    Connecting(Instant),
    /// The upgrade request is queued or sent; the response is being collected.
    Handshaking {
        /// When the attempt began.
        since: Instant,
        /// Our key, and the check of the server's answer.
        handshake: Box<ClientHandshake>,
        /// The response so far.
        response: Vec<u8>,
    },
    /// Frames flow both ways.
    Open,
    /// We sent our Close; waiting for the server's Close (`got_close`), then its FIN.
    Closing {
        /// Whether the server's Close has arrived.
        got_close: bool,
    },
    /// The server sent a Close first, which we echoed; waiting for its FIN.
    ClosedByServer,
    /// Over; the socket is closed.
    Done,
}

impl ClientState {
    /// When the connection attempt under way began, if one is.
    fn attempt_since(&self) -> Option<Instant> {
        match self {
            ClientState::Connecting(since) | ClientState::Handshaking { since, .. } => Some(*since),
            _ => None,
        }
    }
}

/// One client connection.
#[derive(Debug)]
struct Client {
    /// The socket, until the connection is over.
    stream: Option<TcpStream>,
    state: ClientState,
    /// Bytes queued for the socket; `out[written..]` is still to be written.
    out: Vec<u8>,
    written: usize,
    /// Whether the client is in the fleet's list of connections to flush.
    dirty: bool,
    /// Whether `WRITABLE` interest is registered.
    writable: bool,
    /// Decodes what the server sends, once open.
    reader: FrameReader,
    /// The masking key of every frame this connection sends (see
    /// [`FrameTemplate`](super::payload::FrameTemplate) for why one key is enough).
    mask: [u8; 4],
    /// permessage-deflate as the server agreed to it, once open; `None` if not.
    deflate: Option<Negotiated>,
    /// With `wss://`: TLS over `stream`, from the TCP connect to the end.
    tls: Option<Box<ClientConnection>>,
}

/// What a load driver does with the fleet: reacts to messages and queues its own.
pub trait Driver {
    /// A data message arrived for `client`, read at `at_ns` (nanoseconds since the
    /// fleet's epoch).
    fn on_message(&mut self, client: usize, message: &[u8], at_ns: u64);

    /// `client` can no longer send or receive messages (the server closed it, or it
    /// broke).
    fn on_lost(&mut self, client: usize) {
        let _ = client;
    }

    /// Once per loop turn, before the flush: queue messages with [`Fleet::outbox`].
    fn produce(&mut self, fleet: &mut Fleet, now: Instant) {
        let _ = (fleet, now);
    }

    /// When `produce` next has work even if no socket is ready.
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }

    /// Whether the driver's phase is over before its deadline (a drain that has received
    /// everything).
    fn finished(&self) -> bool {
        false
    }

    /// The progress line to show, if a terminal is watching.
    fn status(&mut self, fleet: &Fleet, now: Instant) -> String {
        let _ = now;
        fleet.status()
    }
}

/// A driver that ignores every message: for connecting, holding and closing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Driver for Quiet {
    fn on_message(&mut self, _client: usize, _message: &[u8], _at_ns: u64) {}
}

/// When [`Fleet::run`] returns, besides at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Only at the deadline, or when the driver says it is finished.
    Deadline,
    /// When no connection attempt is pending.
    Connected,
    /// When every connection is over.
    AllDone,
}

/// What became of the connections, with reasons.
#[derive(Debug, Clone, Default)]
pub struct FleetCounts {
    /// Connections whose handshake succeeded.
    pub opened: usize,
    /// Connections that never opened.
    pub failed: usize,
    /// Why they failed, and how many for each reason.
    pub failures: BTreeMap<String, usize>,
    /// Open connections lost before we began to close them (a Close from the server, a
    /// reset, EOF, a protocol error).
    pub dropped: usize,
    /// Why, and how many for each reason.
    pub drops: BTreeMap<String, usize>,
    /// Connections we closed whose server answered with a Close and then closed TCP.
    pub closed_cleanly: usize,
    /// Connections we closed that did not end that way.
    pub close_failed: usize,
    /// Connections whose server agreed to permessage-deflate.
    pub deflate_negotiated: usize,
}

/// A server a fleet connects to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL's parsed form: the request path and the `Host` header.
    pub ws: WsUrl,
    /// The resolved address.
    pub addr: SocketAddr,
    /// With `wss://`: how to speak TLS to it.
    pub tls: Option<TlsTarget>,
}

/// TLS to one server.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    /// The configuration every connection of the run shares (trust, ALPN, session cache).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry, sent with SNI if it is a DNS name.
    pub name: ServerName<'static>,
}

/// The connections, the poll, and the loop.
pub struct Fleet {
    poll: Poll,
    events: Events,
    /// The servers; client `i` connects to `targets[i % targets.len()]`.
    targets: Vec<Target>,
    clients: Vec<Client>,
    /// Shared by every read.
    read_buf: Vec<u8>,
    /// With TLS, the plaintext decrypted from `read_buf`; shared too.
    plain_buf: Vec<u8>,
    /// Clients with output to flush this turn.
    dirty: Vec<usize>,
    /// Clients whose connection attempt is under way.
    attempts: Vec<usize>,
    /// The next client to start.
    next_start: usize,
    /// The most attempts under way at once.
    concurrency: usize,
    /// Timestamps in markers are nanoseconds since this instant.
    epoch: Instant,
    /// When the first attempt began, and when the latest success came.
    first_attempt: Option<Instant>,
    last_open: Option<Instant>,
    counts: FleetCounts,
    progress: Progress,
    /// The offer every handshake makes, with `--deflate`.
    deflate_offer: Option<DeflateOffer>,
    /// Bytes read from every socket so far, and written to them.
    bytes_read: u64,
    bytes_written: u64,
}

impl Fleet {
    /// A fleet of `clients` connections spread over `targets` (client `i` connects to
    /// target `i mod n`), none started yet, at most `concurrency` attempts at once.
    /// `progress` shows a status line on a terminal. With `deflate`, every handshake
    /// offers permessage-deflate as a browser does.
    pub fn new(
        targets: Vec<Target>,
        clients: usize,
        concurrency: usize,
        epoch: Instant,
        progress: Progress,
        deflate: bool,
    ) -> io::Result<Fleet> {
        let mut keys = MaskKeys::from_os_seed();
        let clients = (0..clients)
            .map(|_| Client {
                stream: None,
                state: ClientState::Waiting,
                out: Vec::new(),
                written: 0,
                dirty: false,
                writable: false,
                reader: FrameReader::new(MAX_MESSAGE),
                mask: keys.next_key(),
                deflate: None,
                tls: None,
            })
            .collect();
        assert!(!targets.is_empty(), "a fleet needs a server");
        let tls = targets.iter().any(|t| t.tls.is_some());
        Ok(Fleet {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            targets,
            clients,
            read_buf: vec![0; READ_CHUNK],
            plain_buf: if tls { vec![0; READ_CHUNK] } else { Vec::new() },
            dirty: Vec::new(),
            attempts: Vec::new(),
            next_start: 0,
            concurrency: concurrency.max(1),
            epoch,
            first_attempt: None,
            last_open: None,
            counts: FleetCounts::default(),
            progress,
            deflate_offer: deflate.then(DeflateOffer::client_default),
            bytes_read: 0,
            bytes_written: 0,
        })
    }

    /// Bytes read from all the sockets so far, and written to them: what crossed the
    /// wire, TLS records (with TLS), handshakes, frame headers and control frames
    /// included.
    pub fn wire_bytes(&self) -> (u64, u64) {
        (self.bytes_read, self.bytes_written)
    }

    /// permessage-deflate as `client`'s server agreed to it, if it did.
    pub fn deflate(&self, client: usize) -> Option<Negotiated> {
        self.clients[client].deflate
    }

    /// Nanoseconds from the epoch to `at`.
    pub fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The number of clients, started or not.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// The number of servers the clients are spread over.
    pub fn servers(&self) -> usize {
        self.targets.len()
    }

    /// The server `client` connects to.
    fn target(&self, client: usize) -> &Target {
        &self.targets[client % self.targets.len()]
    }

    /// Whether `client` is open for messages.
    pub fn is_open(&self, client: usize) -> bool {
        matches!(self.clients[client].state, ClientState::Open)
    }

    /// The masking key of `client`'s frames.
    pub fn mask(&self, client: usize) -> [u8; 4] {
        self.clients[client].mask
    }

    /// What became of the connections so far.
    pub fn counts(&self) -> &FleetCounts {
        &self.counts
    }

    /// Connections opened per second: successes over the time from the first attempt to
    /// the last success.
    pub fn handshakes_per_s(&self) -> f64 {
        match (self.first_attempt, self.last_open) {
            (Some(first), Some(last)) if last > first => {
                self.counts.opened as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Bytes queued for `client` and not yet written.
    pub fn backlog(&self, client: usize) -> usize {
        let c = &self.clients[client];
        c.out.len() - c.written
    }

    /// The output queue of an open `client`, to append whole frames to; it is flushed at
    /// the end of the turn. `None` if the client is not open.
    pub fn outbox(&mut self, client: usize) -> Option<&mut Vec<u8>> {
        let c = &mut self.clients[client];
        if !matches!(c.state, ClientState::Open) {
            return None;
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(client);
        }
        Some(&mut c.out)
    }

    /// The loop. Runs until `until` passes, the driver is finished, or `stop` holds.
    pub fn run(&mut self, until: Instant, stop: Until, driver: &mut impl Driver) -> io::Result<()> {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let result = self.turns(until, stop, driver, &mut events);
        self.events = events;
        self.progress.clear();
        result
    }

    fn turns(
        &mut self,
        until: Instant,
        stop: Until,
        driver: &mut impl Driver,
        events: &mut Events,
    ) -> io::Result<()> {
        loop {
            // Attempts: fail the overdue, start the next.
            let now = Instant::now();
            self.expire_attempts(now);
            self.start_attempts(now);
            // The driver queues its messages; everything queued is written before sleeping.
            driver.produce(self, now);
            self.flush(driver);
            if self.progress.due(now) {
                let line = driver.status(self, now);
                self.progress.show(now, &line);
            }
            if now >= until || driver.finished() || self.reached(stop) {
                return Ok(());
            }
            // Sleep until a socket is ready or something is due.
            let wake = [
                Some(until),
                driver.next_wakeup(),
                self.next_attempt_deadline(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(until);
            match self
                .poll
                .poll(events, Some(wake.saturating_duration_since(now)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // Dispatch by token.
            for event in events.iter() {
                let client = event.token().0;
                let closed = event.is_read_closed() || event.is_error();
                let readable = event.is_readable() || closed;
                self.on_event(client, readable, closed, event.is_writable(), driver);
            }
        }
    }

    /// Whether the stop condition holds.
    fn reached(&self, stop: Until) -> bool {
        match stop {
            Until::Deadline => false,
            Until::Connected => self.attempts.is_empty() && self.next_start == self.clients.len(),
            Until::AllDone => self
                .clients
                .iter()
                .all(|c| matches!(c.state, ClientState::Done | ClientState::Waiting)),
        }
    }

    /// A one-line summary of the connections.
    pub fn status(&self) -> String {
        let c = &self.counts;
        format!(
            "open {}/{} failed {} dropped {}",
            c.opened - c.dropped.min(c.opened),
            self.clients.len(),
            c.failed,
            c.dropped
        )
    }

    // ---- connecting ----

    /// Starts attempts until the concurrency limit is reached or every client has begun.
    fn start_attempts(&mut self, now: Instant) {
        if self.next_start < self.clients.len() {
            let stalled_since = self.last_open.or(self.first_attempt).unwrap_or(now);
            if now.saturating_duration_since(stalled_since) > CONNECT_STALL {
                // Abandon the rest: the server has not let anyone in for a long while.
                while self.next_start < self.clients.len() {
                    self.next_start += 1;
                    self.fail(
                        self.next_start - 1,
                        "abandoned: no connection succeeded for 15 s",
                    );
                }
                return;
            }
        }
        while self.attempts.len() < self.concurrency && self.next_start < self.clients.len() {
            let i = self.next_start;
            self.next_start += 1;
            self.first_attempt.get_or_insert(now);
            match TcpStream::connect(self.target(i).addr) {
                Ok(mut stream) => {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self
                        .poll
                        .registry()
                        .register(&mut stream, Token(i), interest)
                    {
                        self.fail(i, &format!("cannot register the socket: {e}"));
                        continue;
                    }
                    let c = &mut self.clients[i];
                    c.stream = Some(stream);
                    c.writable = true;
                    c.state = ClientState::Connecting(now);
                    self.attempts.push(i);
                }
                Err(e) => self.fail(i, &format!("connect: {}", io_reason(&e))),
            }
        }
    }

    /// The earliest deadline of an attempt under way.
    fn next_attempt_deadline(&self) -> Option<Instant> {
        self.attempts
            .iter()
            .filter_map(|&i| self.clients[i].state.attempt_since())
            .min()
            .map(|since| since + CONNECT_TIMEOUT)
    }

    /// Fails overdue attempts and forgets finished ones.
    fn expire_attempts(&mut self, now: Instant) {
        let mut k = 0;
        while k < self.attempts.len() {
            let i = self.attempts[k];
            let Some(since) = self.clients[i].state.attempt_since() else {
                self.attempts.swap_remove(k);
                continue;
            };
            if now.saturating_duration_since(since) >= CONNECT_TIMEOUT {
                let c = &self.clients[i];
                let what = match c.state {
                    ClientState::Connecting(_) => "TCP connect",
                    _ if c.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) => "TLS handshake",
                    _ => "WebSocket handshake",
                };
                self.fail(
                    i,
                    &format!("{what} timed out ({} s)", CONNECT_TIMEOUT.as_secs()),
                );
                self.attempts.swap_remove(k);
                continue;
            }
            k += 1;
        }
    }

    /// A connecting socket reported an event: connected, failed, or nothing yet.
    fn on_connect_event(&mut self, i: usize) {
        let Some(stream) = &self.clients[i].stream else {
            return;
        };
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => return self.fail(i, &format!("connect: {}", io_reason(&e))),
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => {}
            // Not connected yet: a spurious event.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return self.fail(i, &format!("connect: {}", io_reason(&e))),
        }
        let _ = stream.set_nodelay(true);
        let target = self.target(i);
        let handshake = match self.deflate_offer {
            Some(offer) => {
                ClientHandshake::with_deflate(&target.ws.authority, &target.ws.path, offer)
            }
            None => ClientHandshake::new(&target.ws.authority, &target.ws.path),
        };
        // rustls holds the upgrade request until its own handshake is done.
        let tls = target
            .tls
            .as_ref()
            .map(|t| Box::new(tls::connect(&t.config, t.name.clone())));
        let c = &mut self.clients[i];
        c.tls = tls;
        let since = match c.state {
            ClientState::Connecting(since) => since,
            _ => Instant::now(),
        };
        c.out.extend_from_slice(handshake.request());
        c.state = ClientState::Handshaking {
            since,
            handshake: Box::new(handshake),
            response: Vec::new(),
        };
        self.mark_dirty(i);
    }

    /// Records a failed attempt and closes its socket.
    fn fail(&mut self, i: usize, reason: &str) {
        self.counts.failed += 1;
        *self.counts.failures.entry(reason.to_owned()).or_default() += 1;
        self.finish(i);
    }

    // ---- reading ----

    fn on_event(
        &mut self,
        i: usize,
        readable: bool,
        closed: bool,
        writable: bool,
        driver: &mut impl Driver,
    ) {
        let Some(c) = self.clients.get(i) else {
            return;
        };
        match c.state {
            ClientState::Waiting | ClientState::Done => {}
            ClientState::Connecting(_) => self.on_connect_event(i),
            _ => {
                if writable {
                    self.mark_dirty(i);
                }
                if readable {
                    self.read(i, closed, driver);
                }
            }
        }
    }

    /// Reads the socket until it is drained.
    ///
    /// mio's rule is to read until `WouldBlock`. A read that returns less than the buffer
    /// means the kernel's receive queue was emptied, and with edge-triggered epoll any
    /// byte arriving afterwards raises a new event, so the extra read that would only say
    /// `WouldBlock` is skipped: that halves the read calls when every client receives a
    /// little each turn. The exception is a peer's FIN that arrived before this event was
    /// reported (`closed`): it raises no new event, so then the socket is read until it
    /// says EOF or `WouldBlock`.
    fn read(&mut self, i: usize, closed: bool, driver: &mut impl Driver) {
        loop {
            let Some(stream) = self.clients[i].stream.as_mut() else {
                return;
            };
            match stream.read(&mut self.read_buf) {
                Ok(0) => {
                    return self.on_eof(i, driver, "the server closed TCP without a Close frame");
                }
                Ok(n) => {
                    self.bytes_read += n as u64;
                    let at_ns = self.ns(Instant::now());
                    let buf = std::mem::take(&mut self.read_buf);
                    if self.clients[i].tls.is_some() {
                        self.receive_tls(i, &buf[..n], at_ns, driver);
                    } else {
                        self.receive(i, &buf[..n], at_ns, driver);
                    }
                    self.read_buf = buf;
                    if n < self.read_buf.len() && !closed {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.on_eof(i, driver, &io_reason(&e)),
            }
        }
    }

    /// TLS records from the server: each piece of plaintext in them goes to
    /// [`receive`](Fleet::receive). Whatever rustls then has to send (the handshake's
    /// next flight, an alert) goes out with the turn's flush.
    fn receive_tls(&mut self, i: usize, ciphertext: &[u8], at_ns: u64, driver: &mut impl Driver) {
        let mut plain = std::mem::take(&mut self.plain_buf);
        let mut decrypt = Decrypt::new(ciphertext);
        // Until the connection is over (finish drops its socket and rustls state).
        loop {
            let c = &mut self.clients[i];
            let (Some(tls), Some(stream)) = (c.tls.as_deref_mut(), c.stream.as_mut()) else {
                break;
            };
            match decrypt.next(tls, &mut plain) {
                Ok(Plaintext::Bytes(n)) => self.receive(i, &plain[..n], at_ns, driver),
                Ok(Plaintext::Used) => {
                    if tls.wants_write() {
                        self.mark_dirty(i);
                    }
                    break;
                }
                Ok(Plaintext::Closed) => {
                    self.on_eof(i, driver, "the server ended TLS without a Close frame");
                    break;
                }
                Err(error) => {
                    // rustls has queued an alert that says why: one try to send it.
                    let _ = tls::send(tls, &[], stream);
                    let host = self.target(i).ws.host.clone();
                    let reason = TlsError::Failed { host, error }.to_string();
                    match self.clients[i].state {
                        ClientState::Handshaking { .. } => self.fail(i, &reason),
                        _ => self.lose(i, driver, &reason),
                    }
                    break;
                }
            }
        }
        self.plain_buf = plain;
    }

    /// Bytes from the server: the handshake response, then frames.
    fn receive(&mut self, i: usize, bytes: &[u8], at_ns: u64, driver: &mut impl Driver) {
        let c = &mut self.clients[i];
        if let ClientState::Handshaking {
            handshake,
            response,
            ..
        } = &mut c.state
        {
            response.extend_from_slice(bytes);
            match handshake.read_response(response) {
                Ok(None) => {}
                Ok(Some(upgraded)) => {
                    let rest = response.split_off(upgraded.head_len);
                    c.state = ClientState::Open;
                    c.deflate = upgraded.deflate;
                    if let Some(agreed) = upgraded.deflate {
                        c.reader = FrameReader::new(MAX_MESSAGE).with_deflate(agreed);
                        self.counts.deflate_negotiated += 1;
                    }
                    self.counts.opened += 1;
                    self.last_open = Some(Instant::now());
                    self.frames(i, &rest, at_ns, driver);
                }
                Err(e) => self.fail(i, &format!("handshake: {e}")),
            }
            return;
        }
        self.frames(i, bytes, at_ns, driver);
    }

    /// Decodes frames: messages go to the driver, Pings get a Pong, a Close moves the
    /// connection towards its end.
    fn frames(&mut self, i: usize, bytes: &[u8], at_ns: u64, driver: &mut impl Driver) {
        let c = &mut self.clients[i];
        let open = matches!(c.state, ClientState::Open);
        let mask = c.mask;
        let (reader, out) = (&mut c.reader, &mut c.out);
        let mut close: Option<Option<u16>> = None;
        let mut pong = false;
        let result = reader.feed(bytes, &mut |incoming| {
            if close.is_some() {
                return; // nothing counts after a Close
            }
            match incoming {
                Incoming::Message(message) => driver.on_message(i, message, at_ns),
                Incoming::Ping(payload) if open => {
                    encode_frame(out, Opcode::Pong, true, payload, Some(mask));
                    pong = true;
                }
                Incoming::Ping(_) | Incoming::Pong => {}
                Incoming::Close(payload) => {
                    close = Some(payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])));
                }
            }
        });
        if pong {
            self.mark_dirty(i);
        }
        if let Err(e) = result {
            return self.lose(i, driver, &format!("protocol error: {e}"));
        }
        let Some(code) = close else {
            return;
        };
        let c = &mut self.clients[i];
        match c.state {
            ClientState::Open => {
                // The server closes first: echo its code (RFC 6455 §5.5.1), wait for FIN.
                let payload = code.map(u16::to_be_bytes);
                let payload = payload.as_ref().map_or(&[][..], |p| &p[..]);
                encode_frame(&mut c.out, Opcode::Close, true, payload, Some(mask));
                c.state = ClientState::ClosedByServer;
                self.mark_dirty(i);
                let code = code.map_or("none".to_owned(), |code| code.to_string());
                self.count_drop(&format!("the server sent Close (code {code})"));
                driver.on_lost(i);
            }
            ClientState::Closing { .. } => c.state = ClientState::Closing { got_close: true },
            _ => {}
        }
    }

    /// The connection ended (EOF, or an error that means the same); what that means
    /// depends on where it stood.
    fn on_eof(&mut self, i: usize, driver: &mut impl Driver, reason: &str) {
        match self.clients[i].state {
            ClientState::Connecting(_) | ClientState::Handshaking { .. } => {
                return self.fail(i, &format!("closed during the handshake: {reason}"));
            }
            ClientState::Open => return self.lose(i, driver, reason),
            ClientState::Closing { got_close: true } => self.counts.closed_cleanly += 1,
            ClientState::Closing { got_close: false } => {
                self.counts.close_failed += 1;
                *self
                    .counts
                    .drops
                    .entry(format!("no Close in answer to ours: {reason}"))
                    .or_default() += 1;
            }
            ClientState::ClosedByServer | ClientState::Waiting | ClientState::Done => {}
        }
        self.finish(i);
    }

    /// The connection broke (a reset, a protocol error): counted as dropped if it was
    /// open, as not closed cleanly if we were closing it.
    fn lose(&mut self, i: usize, driver: &mut impl Driver, reason: &str) {
        match self.clients[i].state {
            ClientState::Open => {
                self.count_drop(reason);
                driver.on_lost(i);
            }
            ClientState::Closing { .. } => {
                self.counts.close_failed += 1;
                let reason = format!("while closing: {reason}");
                *self.counts.drops.entry(reason).or_default() += 1;
            }
            _ => {}
        }
        self.finish(i);
    }

    fn count_drop(&mut self, reason: &str) {
        self.counts.dropped += 1;
        *self.counts.drops.entry(reason.to_owned()).or_default() += 1;
    }

    /// Closes the socket; the connection is over.
    fn finish(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if let Some(mut stream) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        c.state = ClientState::Done;
        c.tls = None;
        c.out = Vec::new();
        c.written = 0;
        c.reader = FrameReader::default();
    }

    // ---- writing ----

    fn mark_dirty(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(i);
        }
    }

    /// Writes every queued output, once per connection per turn.
    fn flush(&mut self, driver: &mut impl Driver) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &i in &dirty {
            self.clients[i].dirty = false;
            self.write(i, driver);
        }
        dirty.clear();
        // Keep the allocation unless writing marked clients dirty again (it does not).
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Writes `i`'s queue until it is empty or the socket is full, and sets `WRITABLE`
    /// interest to match.
    fn write(&mut self, i: usize, driver: &mut impl Driver) {
        let c = &mut self.clients[i];
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        if let Some(tls) = c.tls.as_deref_mut() {
            match tls::send(tls, &c.out[c.written..], stream) {
                Ok(sent) => {
                    c.written += sent.taken;
                    self.bytes_written += sent.written as u64;
                }
                Err(e) => return self.on_eof(i, driver, &io_reason(&e)),
            }
        }
        while c.tls.is_none() && c.written < c.out.len() {
            match stream.write(&c.out[c.written..]) {
                Ok(0) => return self.on_eof(i, driver, "the socket accepts no more bytes"),
                Ok(n) => {
                    c.written += n;
                    self.bytes_written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.on_eof(i, driver, &io_reason(&e)),
            }
        }
        if c.written == c.out.len() {
            c.out.clear();
            c.written = 0;
        } else if c.written >= 1 << 20 {
            c.out.drain(..c.written);
            c.written = 0;
        }
        // With TLS, records rustls could not write yet count as queued output.
        let want = c.written < c.out.len() || c.tls.as_ref().is_some_and(|t| t.wants_write());
        if want != c.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Some(stream) = c.stream.as_mut()
                && self
                    .poll
                    .registry()
                    .reregister(stream, Token(i), interest)
                    .is_ok()
            {
                c.writable = want;
            }
        }
    }

    // ---- closing ----

    /// Sends our Close (1000) on every open connection; [`Until::AllDone`] then waits for
    /// the answers. Connections the server already closed keep waiting for its FIN.
    pub fn begin_close(&mut self) {
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            if matches!(c.state, ClientState::Open) {
                let payload = [0x03, 0xe8, b'b', b'y', b'e'];
                encode_frame(&mut c.out, Opcode::Close, true, &payload, Some(c.mask));
                c.state = ClientState::Closing { got_close: false };
                self.mark_dirty(i);
            }
        }
    }

    /// Closes every connection: our Close, then up to [`CLOSE_TIMEOUT`] for the server's
    /// Close and FIN. Those that did not finish in time are counted as not closed
    /// cleanly and dropped.
    pub fn close_all(&mut self) -> io::Result<()> {
        self.begin_close();
        self.run(Instant::now() + CLOSE_TIMEOUT, Until::AllDone, &mut Quiet)?;
        for i in 0..self.clients.len() {
            match self.clients[i].state {
                ClientState::Closing { got_close } => {
                    self.counts.close_failed += 1;
                    let reason = if got_close {
                        "the server sent Close but did not close TCP in time"
                    } else {
                        "no Close from the server in time"
                    };
                    *self.counts.drops.entry(reason.to_owned()).or_default() += 1;
                    self.finish(i);
                }
                ClientState::Waiting | ClientState::Done => {}
                _ => self.finish(i),
            }
        }
        Ok(())
    }
}

/// A short reason for an I/O error: its kind's description where that says it well.
fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        io::ErrorKind::AddrNotAvailable => {
            "no local address available (out of ephemeral ports?)".into()
        }
        _ => e.to_string(),
    }
}
