//! Shared by the integration tests: start a real server on an ephemeral loopback port, and
//! talk to it over a raw TCP socket with a frame writer and reader written here from RFC
//! 6455, independent of the crate's own codec, so the tests check the server against the
//! RFC and not against itself.
#![allow(dead_code)] // each test crate uses a different part of this module

/// Running the headless-Chromium scripts of `tests/browser/`.
pub mod browser;

/// A chat client that keeps every event it reads.
pub mod chat;

/// Node's `ws` as an independent server, for the client-role tests.
pub mod node_ws;

/// The `loopchat` program as a child process (built with the `cli` feature only).
#[cfg(feature = "cli")]
pub mod process;

/// Real `redis-server` processes, single or as a cluster, for the tests of scale-out
/// over Redis.
pub mod redis;

/// Test certificates (a CA, and a server certificate it signed) made with rcgen.
pub mod tls;

use loopchat::{Handler, Server, ServerConfig};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any single read in a test may wait. Generous: tests must not be flaky on a
/// loaded CI machine, and a passing test never waits this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads `source` line by line into a channel, in a thread that ends with the stream.
pub fn lines_of(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in io::BufRead::lines(io::BufReader::new(source)) {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line satisfying `wanted` (at most [`IO_TIMEOUT`]); panics with what came.
pub fn expect_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no line {what} ({e:?}); saw {seen:#?}"),
        }
    }
}

/// One HTTP/1.1 request, `Connection: close`; the status, the head and the body.
pub fn http_get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().expect("a status");
    (status, head.to_owned(), body.to_owned())
}

/// Starts a server with `handler` on 127.0.0.1, any free port, in a background thread,
/// and returns its address. The server runs until the test process exits.
pub fn start<H: Handler + Send + 'static>(handler: H) -> SocketAddr {
    start_with(ServerConfig::default(), handler)
}

/// Like [`start`] with a custom configuration; its `addr` is replaced by 127.0.0.1:0.
pub fn start_with<H: Handler + Send + 'static>(config: ServerConfig, handler: H) -> SocketAddr {
    // Tests open many sockets in one process; the default soft limit of 1024 is too low.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let config = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut server = Server::bind(config, handler).expect("bind");
        tx.send(server.local_addr().expect("local addr"))
            .expect("send addr");
        server.run().expect("server loop");
    });
    rx.recv().expect("server started")
}

/// The echo server, started once per test.
pub fn echo_server() -> SocketAddr {
    start(loopchat::apps::Echo)
}

/// A frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a Close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// The mask key the raw client uses. Fixed, so test failures are reproducible.
pub const MASK: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];

/// Builds a frame byte by byte as RFC 6455 §5.2 lays it out. `first_byte` is FIN, RSV
/// and opcode together, so tests can set any combination, valid or not.
pub fn frame_bytes(first_byte: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A client-to-server frame: masked with [`MASK`].
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_bytes(if fin { 0x80 } else { 0 } | opcode, payload, Some(MASK))
}

/// A Close frame payload: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// What a [`RawClient`] talks over: TCP, or TLS over TCP (rustls's own blocking
/// stream, independent of the server's use of it).
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, handshake done.
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl ClientStream {
    /// The plain TCP stream of a client that did not use TLS.
    pub fn into_tcp(self) -> TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(_) => panic!("a TLS client has no plain stream to give"),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(tls) => &tls.sock,
        }
    }

    /// The TCP socket's read timeout.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    /// Shuts down the TCP socket (with TLS, without a close_notify: as a client that
    /// just goes).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp().shutdown(how)
    }
}

/// The TCP socket underneath, for the tests that work on it directly (peek, clone,
/// non-blocking): all of them plain.
impl std::ops::Deref for ClientStream {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        self.tcp()
    }
}

impl std::ops::DerefMut for ClientStream {
    fn deref_mut(&mut self) -> &mut TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(tls) => &mut tls.sock,
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.read(buf),
            // The end of TCP without a close_notify is the end of the stream here too.
            ClientStream::Tls(tls) => match tls.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.write(buf),
            ClientStream::Tls(tls) => {
                let n = tls.write(buf)?;
                // Each write goes out at once, as a plain socket's does.
                tls.flush()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(tcp) => tcp.flush(),
            ClientStream::Tls(tls) => tls.flush(),
        }
    }
}

/// A raw connection to the server: TCP, or TLS over it.
pub struct RawClient {
    pub stream: ClientStream,
    /// Bytes read but not yet consumed.
    buffer: Vec<u8>,
}

impl RawClient {
    /// Connects without sending anything.
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient {
            stream: ClientStream::Plain(stream),
            buffer: Vec::new(),
        }
    }

    /// Connects over TLS, as "localhost", trusting what `config` trusts; the TLS
    /// handshake is done before it returns.
    pub fn connect_tls(
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> RawClient {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).expect("a TLS client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        RawClient {
            stream: ClientStream::Tls(Box::new(tls)),
            buffer: Vec::new(),
        }
    }

    /// Connects and completes a WebSocket handshake on `/`, checking the 101.
    pub fn open(addr: SocketAddr) -> RawClient {
        RawClient::open_with(addr, &[]).0
    }

    /// Like [`RawClient::open`], with `headers` added to the request (e.g. a
    /// `Sec-WebSocket-Extensions` offer). Returns the response head too.
    pub fn open_with(addr: SocketAddr, headers: &[(&str, &str)]) -> (RawClient, String) {
        RawClient::connect(addr).upgrade(addr, headers)
    }

    /// Completes a WebSocket handshake on `/` over this connection, with `headers`
    /// added to the request, checking the 101. Returns the response head too.
    pub fn upgrade(self, addr: SocketAddr, headers: &[(&str, &str)]) -> (RawClient, String) {
        let mut client = self;
        client.send(&upgrade_request_with(&addr.to_string(), "/", headers));
        let head = client.read_http_head();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        // RFC 6455 §1.3's example key, so the accept value is known.
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        (client, head)
    }

    /// Writes bytes, all of them.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes bytes; returns false if the server has already closed (a reset or broken
    /// pipe), which some tests expect.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Writes bytes in pieces of `piece` with a flush between, to exercise reassembly.
    pub fn send_in_pieces(&mut self, bytes: &[u8], piece: usize, pause: Duration) {
        for chunk in bytes.chunks(piece) {
            self.send(chunk);
            if !pause.is_zero() {
                thread::sleep(pause);
            }
        }
    }

    /// Reads until `buffer` holds at least `n` bytes. Panics on EOF or timeout.
    fn fill(&mut self, n: usize) {
        let mut chunk = [0; 64 * 1024];
        while self.buffer.len() < n {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed with {} of {n} bytes", self.buffer.len()),
                Ok(k) => self.buffer.extend_from_slice(&chunk[..k]),
                Err(e) => panic!("read failed with {} of {n} bytes: {e}", self.buffer.len()),
            }
        }
    }

    /// Reads an HTTP response head (up to and including the blank line).
    pub fn read_http_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buffer.drain(..end + 4).collect();
                return String::from_utf8(head).expect("head is UTF-8");
            }
            let have = self.buffer.len();
            self.fill(have + 1);
        }
    }

    /// Reads a whole HTTP response (head and a body of `Content-Length` bytes).
    pub fn read_http_response(&mut self) -> (String, Vec<u8>) {
        let head = self.read_http_head();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        self.fill(length);
        let body = self.buffer.drain(..length).collect();
        (head, body)
    }

    /// Reads one frame.
    pub fn read_frame(&mut self) -> Frame {
        self.fill(2);
        let (b0, b1) = (self.buffer[0], self.buffer[1]);
        let masked = b1 & 0x80 != 0;
        let (len, mut at) = match b1 & 0x7f {
            126 => {
                self.fill(4);
                (
                    u16::from_be_bytes([self.buffer[2], self.buffer[3]]) as usize,
                    4,
                )
            }
            127 => {
                self.fill(10);
                let mut be = [0; 8];
                be.copy_from_slice(&self.buffer[2..10]);
                (u64::from_be_bytes(be) as usize, 10)
            }
            n => (n as usize, 2),
        };
        let key = if masked {
            self.fill(at + 4);
            let key = [
                self.buffer[at],
                self.buffer[at + 1],
                self.buffer[at + 2],
                self.buffer[at + 3],
            ];
            at += 4;
            Some(key)
        } else {
            None
        };
        self.fill(at + len);
        let mut payload: Vec<u8> = self.buffer.drain(..at + len).skip(at).collect();
        if let Some(key) = key {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= key[i % 4]);
        }
        Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            opcode: b0 & 0x0f,
            masked,
            payload,
        }
    }

    /// Reads one frame and checks it is a final, unmasked frame with this opcode and
    /// payload.
    pub fn expect_frame(&mut self, opcode: u8, payload: &[u8]) {
        let frame = self.read_frame();
        assert_eq!(
            (frame.fin, frame.rsv, frame.opcode, frame.masked),
            (true, 0, opcode, false),
            "{frame:?}"
        );
        assert!(
            frame.payload == payload,
            "payload of {} bytes differs from the {} expected",
            frame.payload.len(),
            payload.len()
        );
    }

    /// Reads one frame and checks it is a Close with `code`; returns its reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        let frame = self.read_frame();
        assert_eq!(frame.opcode, OP_CLOSE, "expected a Close, got {frame:?}");
        assert_eq!(frame.close_code(), Some(code), "close frame {frame:?}");
        String::from_utf8(frame.payload[2..].to_vec()).expect("close reason is UTF-8")
    }

    /// Checks that the server closes the TCP connection (after any unread bytes are
    /// consumed, which must be none) within the timeout. A reset counts as closed.
    pub fn expect_eof(&mut self) {
        assert!(
            self.buffer.is_empty(),
            "unread bytes before EOF: {:?}",
            self.buffer
        );
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut chunk = [0; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => panic!("expected EOF, got {:?}", &chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                Err(e) if Instant::now() < deadline && e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("expected EOF, got error {e}"),
            }
        }
    }

    /// Sends our Close with `code` and checks the server echoes it and closes TCP: a
    /// clean closing handshake begun by the client.
    pub fn close_cleanly(&mut self, code: u16) {
        self.send(&client_frame(true, OP_CLOSE, &code.to_be_bytes()));
        self.expect_close(code);
        self.expect_eof();
    }

    /// Shuts down our write side (sends FIN) but keeps reading.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Waits `duration` for a byte from the server, keeping it for the next read:
    /// `Ok(None)` if none came, `Err(UnexpectedEof)` at the end of the stream.
    pub fn byte_within(&mut self, duration: Duration) -> io::Result<Option<u8>> {
        if let Some(&byte) = self.buffer.first() {
            return Ok(Some(byte));
        }
        self.stream.set_read_timeout(Some(duration))?;
        let mut byte = [0; 1];
        let result = self.stream.read(&mut byte);
        self.stream.set_read_timeout(Some(IO_TIMEOUT))?;
        match result {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {
                self.buffer.push(byte[0]);
                Ok(Some(byte[0]))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A valid upgrade request for `path`, with RFC 6455's example key.
pub fn upgrade_request(host: &str, path: &str) -> Vec<u8> {
    upgrade_request_with(host, path, &[])
}

/// Like [`upgrade_request`], with `headers` (name, value) added after the standard ones.
pub fn upgrade_request_with(host: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// The values of every header named `name` (case-insensitive) in a response head, in
/// order, trimmed.
pub fn header_values(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(field, _)| field.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
        .collect()
}
