//! Accepting: the listeners, and what the server does when it cannot take a client on.
//!
//! - **Backlog.** Listeners ask the kernel for a backlog of [`LISTEN_BACKLOG`]: the
//!   standard library and mio ask for 128, and a burst of a few hundred clients
//!   connecting at once (a page reload after a restart, a load generator) overflows
//!   that; each dropped SYN is retried by the client only after a second.
//! - **Full.** Past [`ServerConfig::max_connections`] a client is answered 503 at once
//!   and let go, without a slab slot or a turn of the loop.
//! - **Out of descriptors.** When the process has no descriptor left (EMFILE), `accept`
//!   fails and the client would wait in the backlog for as long as every descriptor
//!   stays in use. A descriptor is kept in reserve for that moment: it is given up for
//!   long enough to accept the client and answer it 503, then taken back.
//! - **Other errors** (out of memory, say) leave the backlog for later: accepting pauses
//!   for [`ACCEPT_BACKOFF`] instead of spinning the loop on a listener that stays ready.

use super::config::ServerConfig;
use super::connections::Connections;
use super::shared_frame::Transport;
use super::timers::TimerTarget;
use crate::http::Response;
use log::{debug, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

/// The WebSocket listener's token. Connection tokens are slab keys, which never reach
/// this value.
const LISTENER: Token = Token(usize::MAX);

/// The line port's listener's token.
const LINE_LISTENER: Token = Token(usize::MAX - 1);

/// The admin port's listener's token. (`usize::MAX - 2` is the signals', in
/// `shutdown.rs`, and `usize::MAX - 4` the waker's, in `waker.rs`; links count up from
/// `usize::MAX / 2`.)
const ADMIN_LISTENER: Token = Token(usize::MAX - 3);

/// Which listener a client came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The public port: HTTP and WebSocket, for the application.
    WebSocket,
    /// The line port (`ServerConfig::line_addr`).
    Line,
    /// The admin port (`ServerConfig::admin`): metrics and the live view, never the
    /// application.
    Admin,
}

impl Listener {
    /// How its clients talk: the admin port speaks HTTP and WebSocket too.
    pub fn transport(self) -> Transport {
        match self {
            Listener::WebSocket | Listener::Admin => Transport::WebSocket,
            Listener::Line => Transport::Line,
        }
    }

    fn index(self) -> usize {
        match self {
            Listener::WebSocket => 0,
            Listener::Line => 1,
            Listener::Admin => 2,
        }
    }

    fn token(self) -> Token {
        match self {
            Listener::WebSocket => LISTENER,
            Listener::Line => LINE_LISTENER,
            Listener::Admin => ADMIN_LISTENER,
        }
    }
}

/// The most connections the admin port holds at once, on top of `max_connections`.
const MAX_ADMIN_CONNECTIONS: usize = 16;

/// How many connections the kernel may hold for us, handshake done, before we accept
/// them (capped by `net.core.somaxconn`, 4096 on current Linux).
const LISTEN_BACKLOG: i32 = 4096;

/// How long to wait before accepting again after `accept` failed for lack of resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The listening sockets and the accepting policy.
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// The WebSocket (and HTTP) listener.
    websocket: TcpListener,
    /// The line port's listener, if `ServerConfig::line_addr` asked for one.
    line: Option<TcpListener>,
    /// The admin port's listener, if `ServerConfig::admin` asked for one.
    admin: Option<TcpListener>,
    /// The descriptor kept in reserve for refusing clients when the process has no other
    /// (see [`spare_descriptor`]).
    spare_fd: Option<File>,
    /// Whether clients are being refused for want of descriptors: logged once when it
    /// starts, cleared by the next successful accept.
    out_of_fds: bool,
    /// For each listener (WebSocket, line, admin), whether a retry after an accept error
    /// is already scheduled: readiness events in the meantime must not add more timers.
    retry_scheduled: [bool; 3],
    /// Set once the server stops accepting, for good (a graceful shutdown).
    stopped: bool,
    /// Whether the main port speaks TLS: then a client refused there gets no plaintext
    /// 503, which it could not read, only the end of the connection.
    tls: bool,
    /// The most connections at once.
    max_connections: usize,
}

impl Acceptor {
    /// Binds the listeners `config` asks for and registers them with `registry`.
    pub fn bind(config: &ServerConfig, registry: &Registry) -> io::Result<Acceptor> {
        let mut websocket = listen(config.addr, config.reuse_port)?;
        registry.register(&mut websocket, LISTENER, Interest::READABLE)?;
        let line = match config.line_addr {
            Some(addr) => {
                let mut listener = listen(addr, config.reuse_port)?;
                registry.register(&mut listener, LINE_LISTENER, Interest::READABLE)?;
                Some(listener)
            }
            None => None,
        };
        let admin = match &config.admin {
            Some(admin) => {
                let mut listener = listen(admin.addr, false)?;
                registry.register(&mut listener, ADMIN_LISTENER, Interest::READABLE)?;
                Some(listener)
            }
            None => None,
        };
        Ok(Acceptor {
            websocket,
            line,
            admin,
            spare_fd: spare_descriptor(),
            out_of_fds: false,
            retry_scheduled: [false; 3],
            stopped: false,
            tls: config.tls.is_some(),
            max_connections: config.max_connections,
        })
    }

    /// The WebSocket listener's address (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.websocket.local_addr()
    }

    /// The line port's address, if there is one.
    pub fn line_addr(&self) -> Option<SocketAddr> {
        self.line.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The admin port's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Every listener's token, for the check that no two of the loop's tokens are alike.
    #[cfg(test)]
    pub fn tokens() -> [Token; 3] {
        [LISTENER, LINE_LISTENER, ADMIN_LISTENER]
    }

    /// The listener a token stands for, if it is a listener's.
    pub fn listener_of(token: Token) -> Option<Listener> {
        match token {
            LISTENER => Some(Listener::WebSocket),
            LINE_LISTENER => Some(Listener::Line),
            ADMIN_LISTENER => Some(Listener::Admin),
            _ => None,
        }
    }

    /// The socket of `listener`, if it is open.
    fn socket(&self, listener: Listener) -> Option<&TcpListener> {
        match listener {
            Listener::WebSocket => Some(&self.websocket),
            Listener::Line => self.line.as_ref(),
            Listener::Admin => self.admin.as_ref(),
        }
    }

    /// Stops accepting for good: the listeners leave the poll, and retry timers already
    /// set find nothing to do. Clients in the backlog are refused by the kernel when the
    /// server exits.
    pub fn stop(&mut self, registry: &Registry) {
        self.stopped = true;
        let _ = registry.deregister(&mut self.websocket);
        for listener in [&mut self.line, &mut self.admin].into_iter().flatten() {
            let _ = registry.deregister(listener);
        }
    }

    /// The retry timer of `listener` fired: it may be accepted from again.
    pub fn retry_due(&mut self, listener: Listener) {
        self.retry_scheduled[listener.index()] = false;
    }

    /// The next client on `listener` to take on, or `None` once it would
    /// block, or after an error that pauses accepting. Clients the server cannot take
    /// (it is full, or out of descriptors) are answered 503 and let go on the way, and
    /// counted in `conns.stats`.
    pub fn accept(
        &mut self,
        transport: Listener,
        conns: &mut Connections,
    ) -> Option<(TcpStream, SocketAddr)> {
        if self.stopped {
            return None;
        }
        if self.spare_fd.is_none() {
            // Lost when descriptors ran out while it was given up: take it back as soon
            // as one is free again.
            self.spare_fd = spare_descriptor();
        }
        loop {
            let listener = self.socket(transport)?;
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    self.out_of_fds = false;
                    if transport == Listener::Admin {
                        // The admin port has its own small allowance, so that a full
                        // server still answers its operator, and the operator's tools
                        // never take the clients' places.
                        if conns.admin_connections < MAX_ADMIN_CONNECTIONS {
                            return Some((stream, peer));
                        }
                        refuse_now(
                            &mut stream,
                            &Response::text(503, "too many admin connections\n"),
                        );
                        continue;
                    }
                    if conns.slab.len() - conns.admin_connections < self.max_connections {
                        return Some((stream, peer));
                    }
                    debug!("{peer}: refused, {} connections already", conns.slab.len());
                    self.refuse(
                        transport,
                        &mut stream,
                        &Response::text(503, "server full, try again later\n"),
                    );
                    conns.stats.refused_full += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if retry_at_once(&e) => {}
                Err(e) if out_of_descriptors(&e) && self.spare_fd.is_some() => {
                    if let Err(e) = self.refuse_with_spare(transport, conns) {
                        return self.accept_later(transport, conns, &e);
                    }
                }
                Err(e) => return self.accept_later(transport, conns, &e),
            }
        }
    }

    /// Refuses a client on `listener`: with `response` ([`refuse_now`]), or on the TLS
    /// port by ending the connection, since a TLS client cannot read plaintext.
    fn refuse(&self, listener: Listener, stream: &mut TcpStream, response: &Response) {
        if self.tls && listener == Listener::WebSocket {
            let _ = stream.shutdown(Shutdown::Both);
        } else {
            refuse_now(stream, response);
        }
    }

    /// Out of descriptors: gives up the spare one for long enough to take the next client
    /// and answer it 503, then takes it back. (Linux reports EMFILE before it looks at
    /// the backlog, so there may be no client; that is fine.)
    fn refuse_with_spare(
        &mut self,
        transport: Listener,
        conns: &mut Connections,
    ) -> io::Result<()> {
        self.spare_fd = None;
        let listener = self.socket(transport).ok_or(io::ErrorKind::NotFound)?;
        let result = match listener.accept() {
            Ok((mut stream, peer)) => {
                if !std::mem::replace(&mut self.out_of_fds, true) {
                    warn!("out of file descriptors: refusing new clients with 503");
                }
                debug!("{peer}: refused, out of file descriptors");
                self.refuse(
                    transport,
                    &mut stream,
                    &Response::text(503, "server out of file descriptors, try again later\n"),
                );
                conns.stats.refused_full += 1;
                conns.stats.refused_no_descriptors += 1;
                Ok(())
            }
            Err(e) if retry_at_once(&e) => Ok(()),
            // `WouldBlock` (the backlog is empty: wait for the next readiness event), or an
            // error that pauses accepting.
            Err(e) => Err(e),
        };
        self.spare_fd = spare_descriptor();
        result
    }

    /// After an `accept` error such as running out of file descriptors with no spare, or
    /// of memory: the pending connections stay in the backlog, and accepting starts again
    /// after a pause instead of spinning. Returns `None`, for [`Self::accept`].
    fn accept_later(
        &mut self,
        transport: Listener,
        conns: &mut Connections,
        error: &io::Error,
    ) -> Option<(TcpStream, SocketAddr)> {
        if error.kind() == io::ErrorKind::WouldBlock {
            return None;
        }
        if std::mem::replace(&mut self.retry_scheduled[transport.index()], true) {
            return None; // one retry is enough
        }
        warn!("accept failed: {error}; retrying in {ACCEPT_BACKOFF:?}");
        let target = TimerTarget {
            key: transport.token().0,
            serial: TimerTarget::NOT_A_CONNECTION,
        };
        conns.timers.schedule(conns.now + ACCEPT_BACKOFF, target);
        None
    }
}

/// A non-blocking listening socket on `addr`, with `SO_REUSEADDR` (so that a restarted
/// server can bind at once) and a [`LISTEN_BACKLOG`] long backlog.
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Whether an `accept` error only concerns the one client (it gave up in the backlog) or
/// the call (a signal): the next `accept` may succeed.
fn retry_at_once(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    )
}

/// Whether `accept` failed for want of a file descriptor, the process's (EMFILE) or the
/// system's (ENFILE).
fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// A descriptor held in reserve (`/dev/null`, opened for reading), freed for a moment
/// when the process runs out, so that a client beyond the limit can be accepted and
/// answered 503 instead of waiting unanswered. `None` if it cannot be opened.
fn spare_descriptor() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Writes a short response to a connection we will not keep, without waiting, and shuts
/// it down: a client that is not taken on (503), or whose request did not come in time
/// (408). Best effort: the socket's send buffer is empty, so a small response fits. What
/// the client already sent is read and discarded first: closing a socket with unread
/// input makes the kernel send a reset, which may reach the client before it has read the
/// answer.
pub(crate) fn refuse_now(stream: &mut TcpStream, response: &Response) {
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
