//! Links: TCP connections the application opens itself (to a Redis server, say), driven by
//! the same `poll` as the clients.
//!
//! A client connection speaks HTTP and WebSocket and the loop understands it; a link
//! carries bytes the loop does not interpret. The application writes bytes to it through
//! [`Context::link_write`](super::Context::link_write) and hears what comes back in
//! [`Handler::on_link`](super::Handler::on_link), so the protocol on top (RESP, for Redis)
//! stays a sans-IO state machine in the application. As with clients, output is queued and
//! written at the end of the turn, together (a turn's commands go out in one write), and
//! WRITABLE interest is kept only while a queue is not empty.
//!
//! Links have tokens of their own, far above any slab key of a client, so that one
//! `dispatch` tells them apart by number.

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;

/// The token of link 0; link `k` has token `LINK_TOKENS + k`. Client tokens are slab keys,
/// which never come near; the listeners and the signal pipe sit at `usize::MAX` and just
/// below it.
const LINK_TOKENS: usize = usize::MAX / 2;

/// The most links at once: far more than an application needs (one per Redis node).
const MAX_LINKS: usize = 1024;

/// Names a link. Keys are reused once a link is gone; [`LinkEvent::Closed`] (or the
/// application's own [`Context::close_link`](super::Context::close_link)) is the last the
/// application hears of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub(crate) usize);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// What happened on a link, as told to [`Handler::on_link`](super::Handler::on_link).
#[derive(Debug)]
pub enum LinkEvent<'a> {
    /// The TCP connection is established. Bytes written before this were queued and go
    /// out now.
    Connected,
    /// Bytes arrived. A link is read until the kernel has no more, so several of these
    /// may come in one turn.
    Data(&'a [u8]),
    /// The link is gone: the connection failed or was refused, the peer closed it, or a
    /// read or write failed. Its id may be reused.
    Closed(String),
}

/// What one read from a link gave.
pub(crate) enum LinkRead {
    /// This many bytes, at the start of the buffer.
    Bytes(usize),
    /// Nothing more for now (`WouldBlock`), or not connected yet.
    Drained,
    /// The link is gone (and removed), with why; `None` if it was gone already.
    Gone(Option<String>),
}

/// One link.
#[derive(Debug)]
struct Link {
    stream: TcpStream,
    /// Bytes queued and not yet written; `written` of them already went out.
    out: Vec<u8>,
    written: usize,
    connected: bool,
    writable_registered: bool,
}

/// Every link, and the list of those with output to write.
#[derive(Debug)]
pub(crate) struct Links {
    registry: Registry,
    slab: Slab<Link>,
    to_flush: Vec<usize>,
}

/// What `Links::ready` found, for the loop to tell the handler.
pub(crate) enum Readiness {
    /// Nothing to tell (a spurious wake-up, or not yet connected).
    Nothing,
    /// It just connected; and it may be readable too.
    Connected,
    /// It is gone.
    Closed(String),
}

impl Links {
    /// No links; new ones are registered with `registry`.
    pub fn new(registry: Registry) -> Links {
        Links {
            registry,
            slab: Slab::new(),
            to_flush: Vec::new(),
        }
    }

    /// The link behind a token, if the token is a link's.
    pub fn of_token(token: Token) -> Option<LinkId> {
        let key = token.0.checked_sub(LINK_TOKENS)?;
        (key < MAX_LINKS).then_some(LinkId(key))
    }

    /// Starts connecting to `addr` without waiting: the application hears
    /// [`LinkEvent::Connected`] or [`LinkEvent::Closed`] later.
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<LinkId> {
        if self.slab.len() >= MAX_LINKS {
            return Err(io::Error::other("too many links"));
        }
        let mut stream = TcpStream::connect(addr)?;
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        self.registry.register(
            &mut stream,
            Token(LINK_TOKENS + key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(Link {
            stream,
            out: Vec::new(),
            written: 0,
            connected: false,
            writable_registered: true,
        });
        Ok(LinkId(key))
    }

    /// Queues bytes; they are written at the end of the turn. False if there is no such
    /// link.
    pub fn write(&mut self, link: LinkId, bytes: &[u8]) -> bool {
        let Some(l) = self.slab.get_mut(link.0) else {
            return false;
        };
        if l.out.len() == l.written && l.connected {
            self.to_flush.push(link.0);
        }
        l.out.extend_from_slice(bytes);
        true
    }

    /// Bytes queued on a link and not yet taken by the kernel.
    pub fn queued(&self, link: LinkId) -> Option<usize> {
        self.slab.get(link.0).map(|l| l.out.len() - l.written)
    }

    /// Closes a link at once, dropping what it had queued.
    pub fn close(&mut self, link: LinkId) {
        if let Some(mut l) = self.slab.try_remove(link.0) {
            let _ = self.registry.deregister(&mut l.stream);
        }
    }

    /// A readiness event for a link: finds out whether it connected or failed.
    pub fn ready(&mut self, link: LinkId, writable: bool) -> Readiness {
        let Some(l) = self.slab.get_mut(link.0) else {
            return Readiness::Nothing;
        };
        if l.connected {
            if writable && l.out.len() > l.written {
                self.to_flush.push(link.0);
            }
            return Readiness::Nothing;
        }
        // Not yet connected: an error, or the handshake done, or neither yet (mio's
        // documented way: `take_error`, then `peer_addr`).
        match l.stream.take_error() {
            Ok(Some(e)) | Err(e) => return self.fail(link, format!("connect failed: {e}")),
            Ok(None) => {}
        }
        match l.stream.peer_addr() {
            Ok(_) => {
                l.connected = true;
                let _ = l.stream.set_nodelay(true);
                self.to_flush.push(link.0);
                Readiness::Connected
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Readiness::Nothing,
            Err(e) => self.fail(link, format!("connect failed: {e}")),
        }
    }

    /// Reads once from a link into `buf`.
    pub fn read(&mut self, link: LinkId, buf: &mut [u8]) -> LinkRead {
        loop {
            let Some(l) = self.slab.get_mut(link.0) else {
                return LinkRead::Gone(None);
            };
            if !l.connected {
                return LinkRead::Drained;
            }
            match io::Read::read(&mut l.stream, buf) {
                Ok(0) => return self.gone(link, "closed by the peer".into()),
                Ok(n) => return LinkRead::Bytes(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return LinkRead::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.gone(link, format!("read failed: {e}")),
            }
        }
    }

    /// Writes every link with output queued, as much as the kernel takes. Returns the
    /// links that failed, with why (they are removed).
    pub fn flush(&mut self) -> Vec<(LinkId, String)> {
        let mut failed = Vec::new();
        for key in std::mem::take(&mut self.to_flush) {
            let Some(l) = self.slab.get_mut(key) else {
                continue;
            };
            if let Err(e) = write_out(l) {
                failed.push((LinkId(key), format!("write failed: {e}")));
                continue;
            }
            let want_writable = l.out.len() > l.written;
            if want_writable != l.writable_registered {
                let interest = if want_writable {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                if let Err(e) =
                    self.registry
                        .reregister(&mut l.stream, Token(LINK_TOKENS + key), interest)
                {
                    failed.push((LinkId(key), format!("reregister failed: {e}")));
                    continue;
                }
                l.writable_registered = want_writable;
            }
        }
        for (link, _) in &failed {
            self.close(*link);
        }
        failed
    }

    /// Whether any link has output to write this turn.
    pub fn want_flush(&self) -> bool {
        !self.to_flush.is_empty()
    }

    fn fail(&mut self, link: LinkId, why: String) -> Readiness {
        self.close(link);
        Readiness::Closed(why)
    }

    fn gone(&mut self, link: LinkId, why: String) -> LinkRead {
        self.close(link);
        LinkRead::Gone(Some(why))
    }
}

/// Writes a link's queue until it is empty or the kernel would block.
fn write_out(l: &mut Link) -> io::Result<()> {
    while l.written < l.out.len() {
        match l.stream.write(&l.out[l.written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => l.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if l.written == l.out.len() {
        l.out.clear();
        l.written = 0;
        // A burst (a resync of thousands of members) should not pin its memory forever.
        if l.out.capacity() > 1 << 20 {
            l.out.shrink_to(64 * 1024);
        }
    } else if l.written > l.out.len() / 2 {
        l.out.drain(..l.written);
        l.written = 0;
    }
    Ok(())
}
