//! The Broadcast app with 1,000 WebSocket clients over loopback.
//!
//! Every client sends a few text messages carrying its id and a sequence number; the test
//! checks that each message reaches every *other* client exactly once, never its sender,
//! and that each sender's messages arrive in order at every receiver. Then every client
//! closes cleanly: its Close is echoed and the server closes TCP.
//!
//! The clients are this file's own: 1,000 non-blocking sockets on one `mio::Poll` in the
//! test thread, with a handshake, masking and frame parsing written here from RFC 6455,
//! independent of the crate's codec. (SHA-1 and base64 come from their crates, to check
//! `Sec-WebSocket-Accept`.)

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sha1::{Digest, Sha1};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How many clients connect.
const CLIENTS: usize = 1000;

/// How many messages each client sends. Every client is a sender, so the server makes
/// `CLIENTS * MESSAGES_PER_CLIENT * (CLIENTS - 1)` deliveries: about 3 million.
const MESSAGES_PER_CLIENT: u32 = 3;

/// The whole test must finish within this. Generous: the test binary is a debug build and
/// the machine may be busy. Not a speed check; a guard against hanging.
const OVERALL_DEADLINE: Duration = Duration::from_secs(120);

/// The text of a message: fixed width, so it parses without allocating.
fn message_text(sender: usize, seq: u32) -> String {
    format!("from {sender:04} seq {seq:04}")
}

/// Parses what [`message_text`] wrote.
fn parse_message(payload: &[u8]) -> Option<(usize, u32)> {
    fn number(digits: &[u8]) -> Option<u32> {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    }
    if payload.len() != 18 || &payload[..5] != b"from " || &payload[9..14] != b" seq " {
        return None;
    }
    Some((number(&payload[5..9])? as usize, number(&payload[14..18])?))
}

/// Where one client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Upgrade request sent; waiting for the 101.
    Upgrading,
    /// WebSocket open.
    Open,
    /// Our Close is sent; waiting for the server's.
    CloseSent,
    /// The server's Close arrived; waiting for it to close TCP.
    CloseReceived,
    /// The server closed TCP after its Close: a clean end.
    Done,
}

/// One client: a non-blocking socket, its buffers, and what it has received.
struct Client {
    id: usize,
    stream: TcpStream,
    phase: Phase,
    /// Bytes to write, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes read and not yet parsed.
    input: Vec<u8>,
    /// The `Sec-WebSocket-Accept` the server must answer with.
    expected_accept: String,
    /// For each sender, the sequence number expected next from it.
    next_seq: Vec<u32>,
    /// Data messages received.
    received: usize,
    /// The code of the server's Close.
    close_code: Option<u16>,
    /// State of the mask-key generator (xorshift; masks need not be secure here).
    mask_state: u32,
}

impl Client {
    fn new(id: usize, stream: TcpStream, host: &str) -> Client {
        // A distinct 16-byte nonce per client (RFC 6455 §4.1).
        let nonce: Vec<u8> = (0..16u8)
            .map(|i| (id as u8).wrapping_mul(31) ^ ((id >> 8) as u8) ^ i.wrapping_mul(17))
            .collect();
        let key = BASE64.encode(&nonce);
        let mut sha1 = Sha1::new();
        sha1.update(key.as_bytes());
        sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        let expected_accept = BASE64.encode(sha1.finalize());
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        Client {
            id,
            stream,
            phase: Phase::Upgrading,
            out: request.into_bytes(),
            out_pos: 0,
            input: Vec::new(),
            expected_accept,
            next_seq: vec![0; CLIENTS],
            received: 0,
            close_code: None,
            mask_state: (0x9e37_79b9 ^ (id as u32).wrapping_mul(0x85eb_ca6b)) | 1,
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_be_bytes()
    }

    /// Queues a masked, final frame (payload under 126 bytes, all this test sends).
    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        assert!(payload.len() < 126);
        let mask = self.next_mask();
        self.out.push(0x80 | opcode);
        self.out.push(0x80 | payload.len() as u8);
        self.out.extend_from_slice(&mask);
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }

    /// Writes queued bytes until done or `WouldBlock`.
    fn flush(&mut self) {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => panic!("client {}: socket takes no more bytes", self.id),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("client {}: write failed in {:?}: {e}", self.id, self.phase),
            }
        }
        self.out.clear();
        self.out_pos = 0;
    }

    /// Reads until `WouldBlock` or EOF, and acts on every complete frame.
    fn read(&mut self, chunk: &mut [u8]) {
        loop {
            match self.stream.read(chunk) {
                Ok(0) => {
                    self.parse();
                    assert!(
                        self.input.is_empty(),
                        "client {}: {} unparsed bytes at EOF",
                        self.id,
                        self.input.len()
                    );
                    assert_eq!(
                        self.phase,
                        Phase::CloseReceived,
                        "client {}: the server closed TCP without a closing handshake",
                        self.id
                    );
                    self.phase = Phase::Done;
                    return;
                }
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("client {}: read failed in {:?}: {e}", self.id, self.phase),
            }
        }
        self.parse();
    }

    /// Consumes the complete HTTP head and frames at the front of `input`.
    fn parse(&mut self) {
        let mut at = 0;
        if self.phase == Phase::Upgrading {
            let Some(end) = self.input.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = std::str::from_utf8(&self.input[..end + 4]).expect("head is UTF-8");
            assert!(
                head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                "client {}: {head}",
                self.id
            );
            let accept = format!("\r\nSec-WebSocket-Accept: {}\r\n", self.expected_accept);
            assert!(head.contains(&accept), "client {}: {head}", self.id);
            self.phase = Phase::Open;
            at = end + 4;
        }
        while let Some((b0, payload, len)) = frame_at(&self.input[at..]) {
            let payload = payload.to_vec();
            at += len;
            self.on_frame(b0, &payload);
        }
        self.input.drain(..at);
    }

    fn on_frame(&mut self, b0: u8, payload: &[u8]) {
        let id = self.id;
        assert_eq!(b0 & 0xf0, 0x80, "client {id}: FIN clear or RSV set");
        assert!(
            matches!(self.phase, Phase::Open | Phase::CloseSent),
            "client {id}: frame {b0:#x} in {:?}",
            self.phase
        );
        match b0 & 0x0f {
            0x1 => {
                let text = std::str::from_utf8(payload).expect("text is UTF-8");
                let (sender, seq) = parse_message(payload)
                    .unwrap_or_else(|| panic!("client {id}: unexpected message {text:?}"));
                assert_ne!(sender, id, "client {id} got its own message back: {text:?}");
                assert!(sender < CLIENTS, "client {id}: {text:?}");
                assert_eq!(
                    seq, self.next_seq[sender],
                    "client {id}: from sender {sender}, seq {seq} arrived when {} was next \
                     (a loss, a duplicate, or a reordering)",
                    self.next_seq[sender]
                );
                assert!(seq < MESSAGES_PER_CLIENT, "client {id}: {text:?}");
                self.next_seq[sender] += 1;
                self.received += 1;
            }
            0x8 => {
                assert_eq!(
                    self.phase,
                    Phase::CloseSent,
                    "client {id}: unsolicited Close"
                );
                assert!(payload.len() >= 2, "client {id}: Close without a code");
                self.close_code = Some(u16::from_be_bytes([payload[0], payload[1]]));
                self.phase = Phase::CloseReceived;
            }
            opcode => panic!("client {id}: unexpected opcode {opcode:#x}"),
        }
    }
}

/// The frame at the front of `buf`, if complete: its first byte, its payload, and its
/// length on the wire. Server frames must not be masked.
fn frame_at(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frame is masked");
    let (len, at) = match buf[1] & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let mut be = [0; 8];
            be.copy_from_slice(buf.get(2..10)?);
            (u64::from_be_bytes(be) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?;
    Some((buf[0], payload, at + len))
}

/// All the clients and the poll that drives them.
struct Swarm {
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    chunk: Vec<u8>,
    deadline: Instant,
}

impl Swarm {
    /// Connects every client and sends its upgrade request (responses are read later).
    fn connect(addr: SocketAddr, deadline: Instant) -> Swarm {
        let poll = Poll::new().unwrap();
        let host = addr.to_string();
        let mut clients = Vec::with_capacity(CLIENTS);
        for id in 0..CLIENTS {
            let stream = std::net::TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("client {id}: connect failed: {e}"));
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            let mut stream = TcpStream::from_std(stream);
            poll.registry()
                .register(
                    &mut stream,
                    Token(id),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .unwrap();
            let mut client = Client::new(id, stream, &host);
            client.flush();
            clients.push(client);
        }
        Swarm {
            poll,
            events: Events::with_capacity(1024),
            clients,
            chunk: vec![0; 64 * 1024],
            deadline,
        }
    }

    /// Drives every socket until `done` holds for every client. Fails the test with
    /// `what` and a count of the clients not done if the overall deadline passes.
    fn drive_until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        loop {
            let pending = self.clients.iter().filter(|c| !done(c)).count();
            if pending == 0 {
                return;
            }
            let now = Instant::now();
            if now >= self.deadline {
                let sample: Vec<String> = self
                    .clients
                    .iter()
                    .filter(|c| !done(c))
                    .take(5)
                    .map(|c| {
                        format!(
                            "client {} in {:?} with {} messages received",
                            c.id, c.phase, c.received
                        )
                    })
                    .collect();
                panic!(
                    "{what}: {pending} of {CLIENTS} clients still not done after {OVERALL_DEADLINE:?}; \
                     for example {sample:?}"
                );
            }
            let wait = (self.deadline - now).min(Duration::from_millis(200));
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("poll failed: {e}"),
            }
            for event in self.events.iter() {
                let client = &mut self.clients[event.token().0];
                if event.is_writable() {
                    client.flush();
                }
                if client.phase != Phase::Done
                    && (event.is_readable() || event.is_read_closed() || event.is_error())
                {
                    client.read(&mut self.chunk);
                }
            }
        }
    }
}

#[test]
fn every_message_reaches_every_other_client_once_and_in_order() {
    let started = Instant::now();
    let deadline = started + OVERALL_DEADLINE;
    let addr = common::start(loopchat::apps::Broadcast);
    // Both ends of 1,000 connections live in this process: 2,000 descriptors at least.
    // `common::start` raised the soft limit to the hard one; check it is enough.
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert!(
        soft >= 2 * CLIENTS as u64 + 100,
        "open-file limit {soft} is too low for {CLIENTS} clients and their server ends"
    );

    // 1. Connect and upgrade. Once a client has its 101 the server has opened it, so
    // after this every client is a recipient of every broadcast.
    let mut swarm = Swarm::connect(addr, deadline);
    swarm.drive_until("upgrading", |c| c.phase != Phase::Upgrading);
    let upgraded = started.elapsed();

    // 2. Every client sends its messages, interleaved across clients.
    for seq in 0..MESSAGES_PER_CLIENT {
        for client in &mut swarm.clients {
            let text = message_text(client.id, seq);
            client.queue_frame(0x1, text.as_bytes());
        }
    }
    for client in &mut swarm.clients {
        client.flush();
    }
    let expected = (CLIENTS - 1) * MESSAGES_PER_CLIENT as usize;
    swarm.drive_until("delivering", |c| c.received == expected);
    let delivered = started.elapsed();

    // Every receiver has exactly every message of every other sender, and none of its
    // own. (Duplicates and reordering were caught as they arrived.)
    for client in &swarm.clients {
        for (sender, &next) in client.next_seq.iter().enumerate() {
            let want = if sender == client.id {
                0
            } else {
                MESSAGES_PER_CLIENT
            };
            assert_eq!(
                next, want,
                "client {} got {next} messages from {sender}",
                client.id
            );
        }
    }

    // 3. Every client closes: our Close, the server's echo, then the server's FIN.
    // Anything else arriving now (a late duplicate) fails the sequence check.
    for client in &mut swarm.clients {
        client.queue_frame(0x8, &1000u16.to_be_bytes());
        client.phase = Phase::CloseSent;
        client.flush();
    }
    swarm.drive_until("closing", |c| c.phase == Phase::Done);
    for client in &swarm.clients {
        assert_eq!(client.close_code, Some(1000), "client {}", client.id);
        assert_eq!(client.received, expected, "client {}", client.id);
    }
    eprintln!(
        "{CLIENTS} clients: upgraded after {upgraded:?}, {} deliveries done after \
         {delivered:?}, all closed after {:?}",
        CLIENTS * expected,
        started.elapsed()
    );
}
