//! What a connection's bytes cross: its socket, or TLS over its socket.
//!
//! [`Wire`] reads and writes a connection's *plaintext*, so that everything above it
//! (the HTTP and WebSocket state machines, the output queue and its vectored writes,
//! the slow-consumer policy) is the same with TLS or without. With TLS it drives the
//! connection's `rustls::server::UnbufferedServerConnection` by hand. rustls's
//! unbuffered API keeps no buffer of records: it works on bytes the loop hands it, and
//! says what it needs next ([`ConnectionState`]). (Its buffered `ServerConnection`,
//! used before, kept a 4 KiB buffer for incoming records on every connection, idle or
//! not, which no public call empties.) So a TLS connection, like a plain one, keeps
//! bytes of its own only while they are in transit, and an idle one keeps none:
//!
//! - **Reading** reads the socket into the loop's one shared read buffer, after the
//!   bytes the connection held from its last read (a record not all here yet), and
//!   rustls decrypts the records there, in place. Each record's plaintext (which
//!   rustls 0.23 hands over in a short-lived copy) is copied to the front of the same
//!   buffer, over records already processed (a record's plaintext is shorter than the
//!   record), and the caller decodes it from there, as it decodes a plain connection's
//!   bytes. Whatever is left, at most one partial record (or, in a handshake, the
//!   records of a handshake message not yet whole), is the connection's to hold until
//!   the next read, as a plain connection holds a partial frame. One socket read per
//!   call, and the call says `WouldBlock` only once the socket does, so "read until
//!   `WouldBlock`" still means the socket is drained, as edge-triggered readiness
//!   requires.
//! - **Writing** gathers up to 64 KiB of the plaintext offered (a turn's frames, from
//!   many slices) into a buffer the loop's connections share, encrypts it as records
//!   into another, and writes those. What the socket does not take is kept by the
//!   connection (its *unsent records*, which cannot be encrypted again: each record
//!   takes the next sequence number); while it has any, a write takes nothing and says
//!   `WouldBlock`. So the output queue keeps what the kernel has not taken, as it does
//!   without TLS, and the slow-consumer limit still sees it; the connection holds at
//!   most one write's records (64 KiB of plaintext) beyond it.
//! - **Records rustls makes itself** (the handshake's, alerts, an answer to a key
//!   update, close_notify) go to the unsent records and out with them, in order.
//!   [`Wire::pending`] says whether any are left; the flush then keeps WRITABLE
//!   interest, and [`Wire::flush_tls`] writes them first on the next flush.
//!
//! What TLS costs the corked path: a broadcast's frame is still laid out once, but its
//! bytes are encrypted for each recipient (each has its own keys), so the "write" of a
//! turn's frames to a client becomes one encryption of them and one `write` of the
//! records. The frames of a turn still go together, in as few records as they fill.

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use std::io::{self, ErrorKind, IoSlice, Read, Write};

/// The most bytes of TLS a client may send before its handshake is done. A real
/// ClientHello is under 2 KiB, and without TLS a request head may have 8 KiB; rustls
/// would accept a handshake message of up to 64 KiB, which the connection would hold
/// until the message is whole. Past this the connection is dropped, so that many slow,
/// huge ClientHellos cannot hold 64 KiB each until their handshake deadline.
pub const MAX_HANDSHAKE_BYTES: u32 = 16 * 1024;

/// The largest TLS record on the wire: a 5-byte header and at most 16 KiB of plaintext
/// with 2 KiB of expansion (RFC 5246 §6.2.3; TLS 1.3 allows less). After its handshake,
/// a connection holds at most one record not all here yet; a peer that makes it hold
/// more (a handshake message spread over records, after the handshake) is dropped.
const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;

/// The most plaintext one write encrypts: four full records. rustls's buffered API held
/// up to 64 KiB of records too; beyond the output queue, this is what a connection may
/// hold of records the socket has not taken.
const MAX_WRITE: usize = 64 * 1024;

/// A connection's TLS: rustls's session, and the bytes in transit it cannot drop.
/// Boxed in the connection, so that a connection without TLS pays one pointer.
pub(crate) struct TlsSession {
    /// rustls's state machine. It keeps no buffer of its own for what it receives.
    conn: UnbufferedServerConnection,
    /// Records received but not yet processed: a record not all here yet, or, during a
    /// handshake, the records of a handshake message not yet whole (rustls processes
    /// them in place and needs them given back unchanged with the rest). Empty,
    /// without an allocation, when the connection is idle.
    received: Vec<u8>,
    /// Records made but not yet taken by the socket: the tail of a write, or what
    /// rustls made on its own. Empty, without an allocation, once written.
    unsent: Vec<u8>,
    /// Bytes of TLS read before the handshake was done.
    handshake_bytes: u32,
    /// Whether the peer's close_notify has arrived: nothing more will be read.
    peer_closed: bool,
    /// Whether our close_notify has been made.
    close_notify_sent: bool,
}

impl TlsSession {
    /// A session just begun.
    pub fn new(conn: UnbufferedServerConnection) -> TlsSession {
        TlsSession {
            conn,
            received: Vec::new(),
            unsent: Vec::new(),
            handshake_bytes: 0,
            peer_closed: false,
            close_notify_sent: false,
        }
    }

    /// Whether the TLS handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether records are waiting for the socket to take them.
    pub fn pending(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Makes close_notify, the alert that says we will send nothing more, and puts it
    /// after the unsent records (once; and not before the handshake is done, when there
    /// is no one to tell).
    fn close_notify(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.close_notify_sent, true) {
            return Ok(());
        }
        let mut unsent = std::mem::take(&mut self.unsent);
        let from = unsent.len();
        let made = self.seal(None, &mut unsent, from);
        unsent.truncate(from + *made.as_ref().unwrap_or(&0));
        self.unsent = unsent;
        made.map(drop)
    }

    /// Writes the unsent records until there are none or the socket would block.
    fn send_unsent(&mut self, socket: &mut impl Write) -> io::Result<()> {
        let written = write_until_blocked(socket, &self.unsent)?;
        if written == self.unsent.len() {
            self.unsent = Vec::new();
        } else {
            self.unsent.drain(..written);
        }
        Ok(())
    }

    /// Reads into `buf` (see the module documentation): the plaintext of every whole
    /// record that one socket read completed, `Ok(0)` at the end, `WouldBlock` when the
    /// socket has nothing more.
    fn read(&mut self, socket: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<usize> {
        if self.peer_closed {
            return Ok(0);
        }
        // What was held from the last read goes first; then the socket's bytes.
        let mut end = self.received.len();
        buf[..end].copy_from_slice(&self.received);
        self.received = Vec::new();
        let (mut start, mut plain) = (0, 0);
        let outcome = loop {
            let handshaking = self.is_handshaking();
            let room = if handshaking {
                // No more than the handshake may have, so that a client's first
                // application data read with its Finished is not counted as handshake.
                let left = (MAX_HANDSHAKE_BYTES - self.handshake_bytes) as usize;
                if left == 0 {
                    break Err(io::Error::new(
                        ErrorKind::InvalidData,
                        "TLS handshake larger than 16 KiB",
                    ));
                }
                left.min(buf.len() - end)
            } else if end - start > MAX_RECORD {
                break Err(io::Error::new(
                    ErrorKind::InvalidData,
                    "TLS: more than a record held back",
                ));
            } else {
                buf.len() - end
            };
            match socket.read(&mut buf[end..end + room]) {
                // The end of TCP, with or without close_notify: HTTP heads and
                // WebSocket frames say where they end, so a cut-off stream cannot pass
                // for a whole one.
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if handshaking {
                        self.handshake_bytes += n as u32;
                    }
                    end += n;
                }
                Err(e) => break Err(e),
            }
            if let Err(e) = self.process(buf, &mut start, end, &mut plain) {
                break Err(e);
            }
            if plain > 0 || self.peer_closed {
                break Ok(());
            }
            // Nothing for the caller yet: what is held moves to the front, and the
            // socket is read again.
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        };
        if start < end && !self.peer_closed {
            self.received = buf[start..end].to_vec();
        }
        // The handshake's records, or an answer, go out now.
        let sent = self.send_unsent(socket);
        outcome?;
        sent?;
        Ok(plain)
    }

    /// Writes plaintext (see the module documentation): takes up to 64 KiB of `bufs`,
    /// gathered in `buffers`, and writes its records as far as the socket takes them,
    /// keeping the rest as unsent. While records of an earlier write are unsent, takes
    /// nothing and says `WouldBlock`.
    fn write(
        &mut self,
        socket: &mut impl Write,
        bufs: &[IoSlice<'_>],
        buffers: &mut TlsBuffers,
    ) -> io::Result<usize> {
        // Records already waiting go first.
        self.send_unsent(socket)?;
        if self.pending() {
            return Err(ErrorKind::WouldBlock.into());
        }
        let TlsBuffers { plaintext, records } = buffers;
        let data: &[u8] = match bufs {
            [] => return Ok(0),
            // One slice, or a long first one, is encrypted where it is.
            [one, ..] if one.len() >= MAX_WRITE || bufs.len() == 1 => {
                &one[..one.len().min(MAX_WRITE)]
            }
            _ => {
                plaintext.clear();
                for buf in bufs {
                    let take = buf.len().min(MAX_WRITE - plaintext.len());
                    plaintext.extend_from_slice(&buf[..take]);
                    if plaintext.len() == MAX_WRITE {
                        break;
                    }
                }
                plaintext
            }
        };
        if data.is_empty() {
            return Ok(0);
        }
        let made = self.seal(Some(data), records, 0)?;
        let written = write_until_blocked(socket, &records[..made])?;
        if written < made {
            self.unsent.extend_from_slice(&records[written..made]);
        }
        Ok(data.len())
    }

    /// Lets rustls process the records in `buf[*start..end]`, until it needs more:
    /// plaintext goes to `buf[*plain..]`, over the records processed, and `*start`
    /// moves past what rustls is done with. Records rustls makes go to the unsent ones.
    fn process(
        &mut self,
        buf: &mut [u8],
        start: &mut usize,
        end: usize,
        plain: &mut usize,
    ) -> io::Result<()> {
        loop {
            let (done, incoming) = buf[..end].split_at_mut(*start);
            let UnbufferedStatus { mut discard, state } = self.conn.process_tls_records(incoming);
            let state = match state {
                Ok(state) => state,
                Err(error) => return Err(self.fail(error)),
            };
            let more = match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    // A record's plaintext fits over the records before it, once they
                    // are discarded: if it does not fit yet, it is taken next time
                    // round, after `discard` has moved `start` past its record.
                    let mut copied = false;
                    while let Some(len) = traffic.peek_len().map(|len| len.get())
                        && *plain + len <= done.len()
                    {
                        let record = match traffic.next_record() {
                            Some(Ok(record)) => record,
                            Some(Err(e)) => return Err(io::Error::new(ErrorKind::InvalidData, e)),
                            None => break,
                        };
                        done[*plain..*plain + len].copy_from_slice(record.payload);
                        *plain += len;
                        discard += record.discard;
                        copied = true;
                    }
                    if !copied && discard == 0 {
                        return Err(io::Error::other("TLS: no room for a record's plaintext"));
                    }
                    true
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append_records(&mut self.unsent, |room| encode.encode(room))?;
                    true
                }
                // The records are among the unsent ones, which go out in order.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    true
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    false
                }
                ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => false,
                // Early data is not enabled (`ServerConfig::max_early_data_size` is 0).
                _ => return Err(io::Error::other("TLS: an unexpected state")),
            };
            *start += discard;
            if !more {
                return Ok(());
            }
        }
    }

    /// After rustls has refused the peer's input with `error`: takes the alert it made
    /// to say why, to be sent if the socket takes it, and returns the error.
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        // While rustls has records to send it hands them out before it looks at any
        // input, so no input is given: the refused records must not be processed again.
        while self.conn.wants_write() {
            let Ok(ConnectionState::EncodeTlsData(mut encode)) =
                self.conn.process_tls_records(&mut []).state
            else {
                break;
            };
            if append_records(&mut self.unsent, |room| encode.encode(room)).is_err() {
                break;
            }
        }
        io::Error::new(ErrorKind::InvalidData, error)
    }

    /// Encrypts `data` (or, with `None`, a close_notify) as records written to
    /// `out[from..]`, after any record rustls has waiting (a key update), growing `out`
    /// if it is too short. Returns the bytes written.
    fn seal(&mut self, data: Option<&[u8]>, out: &mut Vec<u8>, from: usize) -> io::Result<usize> {
        let mut at = from;
        loop {
            // rustls deframes nothing here: what is held is not a whole record.
            let status = self.conn.process_tls_records(&mut self.received);
            debug_assert_eq!(status.discard, 0);
            let state = status
                .state
                .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            match (state, data) {
                (ConnectionState::WriteTraffic(mut traffic), Some(data)) => {
                    at += write_records(out, at, |room| traffic.encrypt(data, room))?;
                    return Ok(at - from);
                }
                (ConnectionState::WriteTraffic(mut traffic), None) => {
                    at += write_records(out, at, |room| traffic.queue_close_notify(room))?;
                    return Ok(at - from);
                }
                (ConnectionState::EncodeTlsData(mut encode), _) => {
                    at += write_records(out, at, |room| encode.encode(room))?;
                }
                (ConnectionState::TransmitTlsData(transmit), _) => transmit.done(),
                (ConnectionState::PeerClosed, _) => self.peer_closed = true,
                // Before the handshake is done, or after close_notify, there is no one
                // to tell.
                (_, None) => return Ok(at - from),
                (_, Some(_)) => {
                    return Err(io::Error::other(
                        "TLS: application data before the handshake is done or after close_notify",
                    ));
                }
            }
        }
    }
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("received", &self.received.len())
            .field("unsent", &self.unsent.len())
            .field("handshake_bytes", &self.handshake_bytes)
            .field("peer_closed", &self.peer_closed)
            .field("close_notify_sent", &self.close_notify_sent)
            .finish()
    }
}

/// What a buffer too short for rustls's records says it needs.
trait NeedsRoom: std::error::Error + Send + Sync + 'static {
    /// The bytes the records need, if that is what is wrong.
    fn required_size(&self) -> Option<usize>;
}

impl NeedsRoom for EncodeError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(e) => Some(e.required_size),
            _ => None,
        }
    }
}

impl NeedsRoom for EncryptError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(e) => Some(e.required_size),
            _ => None,
        }
    }
}

/// Lets `write` put records in `out[from..]`, lengthening `out` if rustls says it is
/// too short (nothing is written then, and it is asked again). Returns their length.
fn write_records<E: NeedsRoom>(
    out: &mut Vec<u8>,
    from: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<usize> {
    let error = match write(&mut out[from..]) {
        Ok(n) => return Ok(n),
        Err(e) => e,
    };
    let Some(required) = error.required_size() else {
        return Err(io::Error::other(error));
    };
    out.resize(from + required, 0);
    write(&mut out[from..]).map_err(io::Error::other)
}

/// Appends records to `out` (see [`write_records`]).
fn append_records<E: NeedsRoom>(
    out: &mut Vec<u8>,
    write: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<()> {
    let from = out.len();
    let written = write_records(out, from, write);
    out.truncate(from + *written.as_ref().unwrap_or(&0));
    written.map(drop)
}

/// Writes `bytes` until they are all written or the socket would block; returns how
/// many were written.
fn write_until_blocked(socket: &mut impl Write, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(&bytes[written..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// The buffers a loop's TLS connections share for their writes, so that no connection
/// keeps one: the plaintext of a write, gathered from its slices, and its records.
/// Each grows to the largest write (64 KiB and a little) and stays.
#[derive(Debug, Default)]
pub(crate) struct TlsBuffers {
    /// The plaintext of one write, gathered so that it is encrypted as one (a turn's
    /// frames in as few records as they fill).
    plaintext: Vec<u8>,
    /// Its records. All its bytes are in use as room: its length is its size.
    records: Vec<u8>,
}

/// A connection's socket, with its TLS session if it has one.
pub(crate) struct Wire<'a> {
    stream: &'a mut TcpStream,
    tls: Option<&'a mut TlsSession>,
    buffers: &'a mut TlsBuffers,
}

impl<'a> Wire<'a> {
    /// The wire of a connection; `buffers` are the loop's.
    pub fn new(
        stream: &'a mut TcpStream,
        tls: Option<&'a mut TlsSession>,
        buffers: &'a mut TlsBuffers,
    ) -> Wire<'a> {
        Wire {
            stream,
            tls,
            buffers,
        }
    }

    /// Whether TLS records are waiting to be written (never without TLS).
    pub fn pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.pending())
    }

    /// With TLS, says that we will send nothing more: close_notify (once), after the
    /// records waiting, written with them as far as the socket takes them. Without TLS,
    /// nothing.
    pub fn close_notify(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.close_notify()?;
        }
        self.flush_tls()
    }

    /// Writes the TLS records the connection holds, until there are none or the socket
    /// would block (`Ok` either way: [`Wire::pending`] tells which).
    pub fn flush_tls(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => tls.send_unsent(self.stream),
            None => Ok(()),
        }
    }
}

impl Read for Wire<'_> {
    /// Plaintext: `Ok(0)` at the end of the stream (with TLS, the peer's close_notify or
    /// the end of TCP, with or without close_notify), `WouldBlock` once the socket has
    /// nothing more. With TLS, `buf` must have room for the records held and more: the
    /// loop's read buffer (64 KiB) has.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            Some(tls) => tls.read(self.stream, buf),
            None => self.stream.read(buf),
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Plaintext in; with TLS, up to 64 KiB of it, encrypted and written as far as the
    /// socket takes it. While records of an earlier write are unsent, nothing is taken.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            Some(tls) => tls.write(self.stream, bufs, self.buffers),
            None => self.stream.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig};
    use std::collections::VecDeque;
    use std::sync::Arc;

    /// A socket in memory. A read gives at most `chunk` bytes of what the client sent,
    /// then `WouldBlock` (or the end, once `ended`); writes take at most `room` bytes in
    /// all, then `WouldBlock` until `room` is raised.
    struct Socket {
        inbound: VecDeque<u8>,
        chunk: usize,
        ended: bool,
        outbound: Vec<u8>,
        room: usize,
    }

    impl Read for Socket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.inbound.is_empty() {
                return if self.ended {
                    Ok(0)
                } else {
                    Err(ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.chunk).min(self.inbound.len());
            for (to, from) in buf.iter_mut().zip(self.inbound.drain(..n)) {
                *to = from;
            }
            Ok(n)
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.outbound.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A server configuration with a certificate for `localhost` from a CA made here,
    /// and a rustls client trusting that CA, speaking TLS 1.2 or 1.3.
    fn configs(tls12: bool) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let version = if tls12 {
            &rustls::version::TLS12
        } else {
            &rustls::version::TLS13
        };
        let client = ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// A server session and a rustls client joined by a [`Socket`].
    struct Pair {
        server: TlsSession,
        client: ClientConnection,
        socket: Socket,
        buffers: TlsBuffers,
    }

    impl Pair {
        /// A pair whose handshake is done, the server reading `chunk` bytes at most.
        fn new(tls12: bool, chunk: usize) -> Pair {
            let (server, client) = configs(tls12);
            let mut pair = Pair {
                server: TlsSession::new(UnbufferedServerConnection::new(server).unwrap()),
                client: ClientConnection::new(client, ServerName::try_from("localhost").unwrap())
                    .unwrap(),
                socket: Socket {
                    inbound: VecDeque::new(),
                    chunk,
                    ended: false,
                    outbound: Vec::new(),
                    room: usize::MAX,
                },
                buffers: TlsBuffers::default(),
            };
            for _ in 0..10 {
                pair.client_sends(b"");
                assert_eq!(pair.server_reads().unwrap(), (Vec::new(), false));
                assert_eq!(pair.client_receives(), (Vec::new(), false));
                if !pair.client.is_handshaking() && !pair.server.is_handshaking() {
                    return pair;
                }
            }
            panic!("the handshake did not finish");
        }

        /// The client sends `data`, and whatever records it has, to the server's socket.
        fn client_sends(&mut self, data: &[u8]) {
            self.client.writer().write_all(data).unwrap();
            let mut records = Vec::new();
            while self.client.wants_write() {
                self.client.write_tls(&mut records).unwrap();
            }
            self.socket.inbound.extend(records);
        }

        /// The server reads until its socket would block: the plaintext, and whether it
        /// read the end.
        fn server_reads(&mut self) -> io::Result<(Vec<u8>, bool)> {
            let mut buf = vec![0; 64 * 1024];
            let mut got = Vec::new();
            loop {
                match self.server.read(&mut self.socket, &mut buf) {
                    Ok(0) => return Ok((got, true)),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok((got, false)),
                    Err(e) => return Err(e),
                }
            }
        }

        /// The client takes what the server wrote: the plaintext, and whether it read
        /// the server's close_notify.
        fn client_receives(&mut self) -> (Vec<u8>, bool) {
            let records = std::mem::take(&mut self.socket.outbound);
            let mut records = &records[..];
            let mut got = Vec::new();
            let mut chunk = [0; 4096];
            loop {
                loop {
                    match self.client.reader().read(&mut chunk) {
                        Ok(0) => return (got, true),
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("the client's read: {e}"),
                    }
                }
                if records.is_empty() {
                    return (got, false);
                }
                self.client.read_tls(&mut records).unwrap();
                self.client.process_new_packets().unwrap();
            }
        }

        /// The server writes `data` in slices of `slice` bytes, as the output queue does,
        /// the socket taking `room` bytes each time it is writable, until all is
        /// written; returns how many times the socket blocked.
        fn server_writes(&mut self, data: &[u8], slice: usize, room: usize) -> usize {
            let mut taken = 0;
            let mut blocked = 0;
            self.socket.room = room;
            while taken < data.len() || self.server.pending() {
                let slices: Vec<IoSlice> = data[taken..].chunks(slice).map(IoSlice::new).collect();
                match self
                    .server
                    .write(&mut self.socket, &slices, &mut self.buffers)
                {
                    Ok(n) => taken += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        // Never more than one write's records beyond the queue.
                        assert!(self.server.unsent.len() <= MAX_WRITE + 4 * 64);
                        blocked += 1;
                        self.socket.room = room;
                    }
                    Err(e) => panic!("the server's write: {e}"),
                }
                if taken == data.len() && self.server.pending() {
                    self.socket.room = room;
                    self.server.send_unsent(&mut self.socket).unwrap();
                }
            }
            blocked
        }

        /// Whether the server's session holds no buffer: what an idle connection costs.
        fn holds_nothing(&self) -> bool {
            self.server.received.capacity() == 0 && self.server.unsent.capacity() == 0
        }
    }

    /// `len` bytes that differ from one position to the next.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[test]
    fn records_cut_anywhere_are_read_whole_and_an_idle_session_holds_nothing() {
        for tls12 in [false, true] {
            for chunk in [1, 2, 5, 100, 4096, 16 * 1024 + 5, 64 * 1024] {
                let mut pair = Pair::new(tls12, chunk);
                assert!(pair.holds_nothing());
                let mut sent = Vec::new();
                for (seed, len) in [1, 300, 16 * 1024, 40_000].into_iter().enumerate() {
                    let message = bytes(len, seed as u8);
                    pair.client_sends(&message);
                    sent.extend_from_slice(&message);
                }
                let (got, ended) = pair.server_reads().unwrap();
                assert!(!ended);
                assert!(
                    got == sent,
                    "TLS 1.2: {tls12}, chunk {chunk}: {}",
                    got.len()
                );
                assert!(pair.holds_nothing(), "TLS 1.2: {tls12}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn writes_past_a_full_socket_arrive_whole_and_in_order() {
        for tls12 in [false, true] {
            let mut pair = Pair::new(tls12, 4096);
            let data = bytes(300_000, 7);
            // Frames of 64 bytes, the socket taking 1,000 bytes at a time: unsent
            // records, held and written first.
            let blocked = pair.server_writes(&data, 64, 1000);
            assert!(blocked > 100, "{blocked}");
            let (got, closed) = pair.client_receives();
            assert!(got == data && !closed, "TLS 1.2: {tls12}: {}", got.len());
            assert!(pair.holds_nothing());
            // One large slice, taken 64 KiB at a time.
            assert_eq!(pair.server_writes(&data, data.len(), usize::MAX), 0);
            assert!(pair.client_receives().0 == data);
            assert!(pair.holds_nothing());
        }
    }

    #[test]
    fn close_notify_either_way_and_the_end_of_tcp_read_as_the_end() {
        // Ours, after what was written, then nothing more is sent.
        let mut pair = Pair::new(false, 4096);
        pair.server_writes(b"last words", 64, usize::MAX);
        pair.server.close_notify().unwrap();
        pair.server.close_notify().unwrap();
        pair.server.send_unsent(&mut pair.socket).unwrap();
        assert_eq!(pair.client_receives(), (b"last words".to_vec(), true));
        // The client's, after its last bytes.
        let mut pair = Pair::new(true, 4096);
        pair.client_sends(b"bye");
        pair.client.send_close_notify();
        pair.client_sends(b"");
        assert_eq!(pair.server_reads().unwrap(), (b"bye".to_vec(), true));
        assert_eq!(pair.server_reads().unwrap(), (Vec::new(), true));
        // TCP's end without close_notify, in the middle of a record.
        let mut pair = Pair::new(false, 4096);
        pair.client_sends(&bytes(1000, 3));
        pair.socket.inbound.truncate(500);
        pair.socket.ended = true;
        assert_eq!(pair.server_reads().unwrap(), (Vec::new(), true));
    }

    #[test]
    fn input_that_is_not_tls_gets_an_alert_and_an_error() {
        let (server, _) = configs(false);
        let mut session = TlsSession::new(UnbufferedServerConnection::new(server).unwrap());
        let mut socket = Socket {
            inbound: b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
                .iter()
                .copied()
                .collect(),
            chunk: 4096,
            ended: false,
            outbound: Vec::new(),
            room: usize::MAX,
        };
        let error = session.read(&mut socket, &mut [0; 64 * 1024]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidData);
        // An alert record (content type 21), and nothing else.
        assert_eq!(socket.outbound[0], 0x15, "{:?}", socket.outbound);
        assert_eq!(socket.outbound.len(), 7, "{:?}", socket.outbound);
    }
}
