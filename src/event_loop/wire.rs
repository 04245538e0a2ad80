//! What a connection's bytes cross: its socket, or TLS over its socket.
//!
//! [`Wire`] reads and writes a connection's *plaintext*, so that everything above it
//! (the HTTP and WebSocket state machines, the output queue and its vectored writes,
//! the slow-consumer policy) is the same with TLS or without. With TLS it drives the
//! connection's `rustls::ServerConnection`, itself sans-IO, by hand:
//!
//! - **Reading** takes what rustls has already decrypted; when it has none, one
//!   `read_tls` from the socket and `process_new_packets`, and again, until the socket
//!   would block. So "read until `WouldBlock`" still means the socket is drained, as
//!   edge-triggered readiness requires.
//! - **Writing** hands plaintext to rustls (`writer()`), which encrypts it into TLS
//!   records, and writes the records with `write_tls` (itself a vectored write) until
//!   the socket would block. rustls holds at most its buffer limit (64 KiB) of records
//!   not yet written; when that is full a write takes nothing and says `WouldBlock`, so
//!   the output queue keeps what the kernel has not taken, as it does without TLS, and
//!   the slow-consumer limit still sees it.
//! - **Pending records**: rustls may hold records after the queue is empty (the
//!   handshake's, or the tail of a write). [`Wire::pending`] says so; the flush then
//!   keeps WRITABLE interest, and [`Wire::flush_tls`] writes them first on the next
//!   flush.
//!
//! What TLS costs the corked path: a broadcast's frame is still laid out once, but its
//! bytes are encrypted for each recipient (each has its own keys), so the "write" of a
//! turn's frames to a client becomes one encryption of them and one `writev` of the
//! records. The frames of a turn still go together, in as few records as they fill.

use mio::net::TcpStream;
use rustls::ServerConnection;
use std::io::{self, ErrorKind, IoSlice, Read, Write};

/// The most bytes of TLS a client may send before its handshake is done. rustls itself
/// would buffer up to 64 KiB of an unfinished handshake message; a real ClientHello is
/// under 2 KiB, and without TLS a request head may have 8 KiB. Past this the connection
/// is dropped, so that many slow, huge ClientHellos cannot hold 64 KiB each until their
/// handshake deadline.
pub const MAX_HANDSHAKE_BYTES: u32 = 16 * 1024;

/// A connection's TLS: rustls's session, and what the loop keeps beside it. Boxed in
/// the connection, so that a connection without TLS pays one pointer.
pub(crate) struct TlsSession {
    /// rustls's state machine.
    pub conn: ServerConnection,
    /// Bytes of TLS read before the handshake was done.
    handshake_bytes: u32,
}

impl TlsSession {
    /// A session just begun.
    pub fn new(conn: ServerConnection) -> TlsSession {
        TlsSession {
            conn,
            handshake_bytes: 0,
        }
    }
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("handshake_bytes", &self.handshake_bytes)
            .finish()
    }
}

/// A connection's socket, with its TLS session if it has one.
pub(crate) struct Wire<'a> {
    stream: &'a mut TcpStream,
    tls: Option<&'a mut TlsSession>,
}

impl<'a> Wire<'a> {
    /// The wire of a connection.
    pub fn new(stream: &'a mut TcpStream, tls: Option<&'a mut TlsSession>) -> Wire<'a> {
        Wire { stream, tls }
    }

    /// Whether TLS records are waiting to be written (never without TLS).
    pub fn pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.conn.wants_write())
    }

    /// Writes the TLS records rustls holds, until there are none or the socket would
    /// block (`Ok` either way: [`Wire::pending`] tells which).
    pub fn flush_tls(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_deref_mut().map(|t| &mut t.conn) else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(self.stream) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for Wire<'_> {
    /// Plaintext: `Ok(0)` at the end of the stream (with TLS, the peer's close_notify or
    /// the end of TCP, with or without close_notify: HTTP heads and WebSocket frames say
    /// where they end, so a cut-off stream cannot pass for a whole one), `WouldBlock`
    /// once the socket has nothing more.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(TlsSession {
            conn: tls,
            handshake_bytes,
        }) = self.tls.as_deref_mut()
        else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // rustls says this on every read after TCP ended without close_notify.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let handshaking = tls.is_handshaking();
            match tls.read_tls(self.stream) {
                Ok(0) => return Ok(0),
                Ok(n) => {
                    if handshaking {
                        *handshake_bytes = handshake_bytes.saturating_add(n as u32);
                        if *handshake_bytes > MAX_HANDSHAKE_BYTES {
                            return Err(io::Error::new(
                                ErrorKind::InvalidData,
                                "TLS handshake larger than 16 KiB",
                            ));
                        }
                    }
                    if let Err(error) = tls.process_new_packets() {
                        // rustls has queued the alert that says why: send it if the
                        // socket takes it, then give up on the connection.
                        let _ = tls.write_tls(self.stream);
                        return Err(io::Error::new(ErrorKind::InvalidData, error));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Plaintext in; with TLS, as much as rustls's buffer takes, encrypted and written
    /// as far as the socket takes it.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.stream.write_vectored(bufs);
        }
        // Records already waiting go first, so that the buffer has room.
        self.flush_tls()?;
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(0);
        };
        let taken = tls.conn.writer().write_vectored(bufs)?;
        self.flush_tls()?;
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls's buffer is full of records the socket has not taken.
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}
