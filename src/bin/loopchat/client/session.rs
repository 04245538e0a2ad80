//! The client's event loop: one connection, one `mio::Poll`, and the lines from the
//! keyboard thread.
//!
//! A [`Session`] owns the socket (non-blocking, registered with the poll under
//! [`SOCKET`]), a [`Waker`] under [`WAKER`] that the keyboard thread uses to interrupt
//! the wait, the WebSocket state machine, and the queue of bytes to send. Each turn of
//! the loop:
//!
//! 1. waits in `poll` for the socket, the waker, or the next deadline;
//! 2. reads the socket until it would block, decoding the handshake response and then
//!    frames, printing events, answering Pings and Closes;
//! 3. fires the deadline if it is due (handshake, linger, close);
//! 4. takes the lines that are waiting, turning each into frames appended to the queue,
//!    and writes the queue until the socket would block. `WRITABLE` interest is
//!    registered only while bytes remain queued, so an idle client sleeps in `poll`.
//!
//! Everything the user types is appended to the same queue, in order, and the Close that
//! ends the session is appended after the last of it: a script whose input ends at once
//! still has every line sent, then the Close. Lines typed while the handshake is under
//! way wait in the channel until it completes (RFC 6455 §4.1: nothing may be sent before
//! the server's answer), and with `--nick` until the server has granted the name: a
//! refusal closes the session before any of them is said.
//!
//! With a `wss://` URL the session also holds a rustls client connection, and TLS is a
//! transform between the socket and the rest (see [`super::tls`]): what a read brings is
//! decrypted before it is decoded, and the output queue is encrypted as it is written.
//! The loop's shape does not change; a flush also writes what rustls has to say on its
//! own (the handshake, alerts), and the handshake deadline covers the TLS handshake too.
//!
//! The closing handshake: on `/quit`, or at end of input (after the linger time), the
//! client sends Close 1000 and keeps reading, printing whatever arrives, until the
//! server's Close; if the server closes first, its Close is echoed. Either way the client
//! then waits, briefly, for the server to close TCP (RFC 6455 §7.1.1: the server closes
//! first), and the session ends.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use rustls::ClientConnection;

use super::console::Console;
use super::input::Input;
use super::tls::{self, Decrypt, Plaintext, TlsError};
use super::url::WsUrl;
use super::{ClientConfig, ClientError};
use loopchat::apps::chat::protocol::{
    ClientRequest, Command, ErrorCode, HELP, ServerEvent, parse_command,
};
use loopchat::http::ClientHandshake;
use loopchat::ws::deflate::codec::{DEFAULT_LEVEL, MessageCompressor};
use loopchat::ws::deflate::negotiation::DeflateOffer;
use loopchat::ws::{CloseCode, CloseFrame, Event, Message, Role, State, WebSocket};

/// The poll token of the connection's socket.
pub const SOCKET: Token = Token(0);
/// The poll token of the waker that the keyboard thread calls.
pub const WAKER: Token = Token(1);

/// The largest message accepted from the server. A room's history, replayed on joining,
/// can hold several megabytes of images in base64; this leaves room for it.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// How long connecting to one address may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server has to answer the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server has to answer our Close, and then to close TCP.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long typed lines wait for the server's answer to `--nick`. A chat server answers
/// at once; a server that is not one (an echo server) never does, and the lines then go
/// out after this, under whatever name the server gave.
pub const NICK_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Past this many bytes queued for sending, no more lines are taken from the keyboard
/// thread until the network has taken some (which makes that thread stop reading).
const OUTBOUND_HIGH_WATER: usize = 1024 * 1024;
/// The size of one read from the socket.
const READ_CHUNK: usize = 64 * 1024;
/// The reason sent with our Close.
const CLOSE_REASON: &str = "bye";
/// With permessage-deflate, messages shorter than this go uncompressed: deflate's block
/// header and the lost trailer eat most of what a short message could save. The
/// server's default threshold (`--deflate-min-bytes`) is the same.
pub const COMPRESS_MIN_BYTES: usize = 128;

/// How a session ended, when it ended with a closing handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// We closed (end of input, or `/quit`) and the server answered with this Close
    /// (normally an echo of our 1000; `None`: a Close with no code).
    ClosedByClient(Option<CloseFrame>),
    /// The server closed first, with this Close frame (`None`: a Close with no code).
    ClosedByServer(Option<CloseFrame>),
}

/// Where the connection stands.
#[derive(Debug)]
enum Phase {
    /// The upgrade request is sent or queued; the response is being collected.
    Handshaking {
        handshake: ClientHandshake,
        response: Vec<u8>,
    },
    /// The handshake succeeded: frames both ways.
    Open(WebSocket),
}

/// What the single deadline of a session is for. There is never more than one: each
/// phase waits for one thing at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// The server must have answered the upgrade request.
    Handshake,
    /// The server should have answered `--nick`; typed lines stop waiting for it.
    NickAnswer,
    /// Input has ended and the linger time is over: send our Close.
    Linger,
    /// The server must have answered our Close.
    CloseReply,
    /// The closing handshake is done; the server should have closed TCP. We stop waiting.
    Disconnect,
}

/// Bytes waiting to be written to the socket.
#[derive(Debug, Default)]
struct Outbound {
    bytes: Vec<u8>,
    /// How many bytes at the front of `bytes` are already written.
    written: usize,
}

impl Outbound {
    /// Bytes still to write.
    fn pending(&self) -> usize {
        self.bytes.len() - self.written
    }

    /// The buffer to append frames to.
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Encrypts what rustls takes and writes its records until it has none left or the
    /// socket would block.
    fn encrypt_to(&mut self, tls: &mut ClientConnection, sink: &mut impl Write) -> io::Result<()> {
        let sent = tls::send(tls, &self.bytes[self.written..], sink)?;
        self.written += sent.taken;
        if self.written == self.bytes.len() {
            self.bytes.clear();
            self.written = 0;
        }
        Ok(())
    }

    /// Writes until everything is written or the socket would block.
    fn write_to(&mut self, sink: &mut impl Write) -> io::Result<()> {
        while self.written < self.bytes.len() {
            match sink.write(&self.bytes[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.written == self.bytes.len() {
            self.bytes.clear();
            self.written = 0;
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.written = 0;
    }
}

/// One connection to a chat server, from connecting to the end of the closing handshake.
#[derive(Debug)]
pub struct Session {
    poll: Poll,
    waker: Arc<Waker>,
    stream: TcpStream,
    /// With `wss://`: TLS over `stream`, which carries only what this writes and reads.
    tls: Option<ClientConnection>,
    /// The URL's host, to name the server in TLS errors.
    host: String,
    phase: Phase,
    outbound: Outbound,
    /// Whether the socket is registered for `WRITABLE` as well as `READABLE`.
    writable_registered: bool,
    /// The nickname to ask for once the handshake is done.
    nick: Option<String>,
    /// The nickname asked for, while its answer is awaited. Typed lines wait meanwhile,
    /// so that nothing is said under the guest name, or at all if the name is refused.
    awaiting_nick: Option<String>,
    /// The name the server gave on arrival (its `welcome`): the grant of `--nick` is the
    /// `nick` event from this name to the one asked for, not someone else's rename.
    guest_nick: Option<String>,
    /// The server refused `--nick`: the nickname and the server's message. The session
    /// closes, and ends in [`ClientError::NickRefused`].
    nick_refused: Option<(String, String)>,
    /// How long to keep listening after input ends.
    linger: Duration,
    deadline: Option<(Instant, Deadline)>,
    /// No more lines are taken: input ended, `/quit` was typed, or the connection is
    /// closing.
    input_done: bool,
    /// The server closed its side of TCP.
    peer_closed: bool,
    /// How the session ends, once that is known; the loop ends when the server has
    /// closed TCP too, or [`Deadline::Disconnect`] passed.
    outcome: Option<Result<Ending, ClientError>>,
    /// The server took too long to close TCP after the closing handshake.
    disconnect_overdue: bool,
    /// The server's image size limit, from its `welcome`.
    max_image_bytes: Option<usize>,
    /// Compresses what we send, once permessage-deflate is agreed (and zlib can keep to
    /// the window the server asked for). Kept here rather than in the [`WebSocket`],
    /// which the server holds per connection and keeps small: a compressor that keeps
    /// its context is a few hundred KiB, right for one client connection.
    compressor: Option<MessageCompressor>,
    console: Console,
    /// What one read takes from the socket (ciphertext, with TLS).
    read_buf: Vec<u8>,
    /// With TLS, the plaintext decrypted from `read_buf`, a piece at a time.
    plain_buf: Vec<u8>,
}

impl Session {
    /// Connects to the server named by `url` and queues the upgrade request. Connecting
    /// is the one step that blocks (up to [`CONNECT_TIMEOUT`] per address): until it is
    /// done, there is nothing else for the client to do.
    pub fn connect(url: &WsUrl, config: &ClientConfig) -> Result<Session, ClientError> {
        // A wss:// URL that cannot be checked fails before anything is sent.
        let tls_setup = if url.tls {
            let name = tls::server_name(&url.host)?;
            Some((config.tls.client_config(&config.url)?, name))
        } else {
            None
        };
        let addresses: Vec<_> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|source| ClientError::Resolve {
                host: url.host.clone(),
                source,
            })?
            .collect();
        let mut last_error = None;
        let mut connected = None;
        for address in &addresses {
            match std::net::TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let stream = match (connected, last_error) {
            (Some(stream), _) => stream,
            (None, Some(source)) => {
                return Err(ClientError::Connect {
                    address: url.authority.clone(),
                    source,
                });
            }
            (None, None) => {
                return Err(ClientError::NoAddress {
                    host: url.host.clone(),
                });
            }
        };
        stream.set_nonblocking(true).map_err(ClientError::Setup)?;
        // Chat lines are small and latency is what matters.
        stream.set_nodelay(true).map_err(ClientError::Setup)?;
        let mut stream = TcpStream::from_std(stream);

        let poll = Poll::new().map_err(ClientError::Setup)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ClientError::Setup)?);
        poll.registry()
            .register(&mut stream, SOCKET, Interest::READABLE)
            .map_err(ClientError::Setup)?;

        // The offer a browser makes, so the server answers as it would answer a browser.
        let handshake = if config.deflate {
            ClientHandshake::with_deflate(&url.authority, &url.path, DeflateOffer::client_default())
        } else {
            ClientHandshake::new(&url.authority, &url.path)
        };
        // rustls holds the request until its handshake is done.
        let mut outbound = Outbound::default();
        outbound.buffer().extend_from_slice(handshake.request());
        Ok(Session {
            poll,
            waker,
            stream,
            tls: tls_setup.map(|(config, name)| tls::connect(&config, name)),
            host: url.host.clone(),
            phase: Phase::Handshaking {
                handshake,
                response: Vec::new(),
            },
            outbound,
            writable_registered: false,
            nick: config.nick.clone(),
            awaiting_nick: None,
            guest_nick: None,
            nick_refused: None,
            linger: config.linger,
            deadline: Some((Instant::now() + HANDSHAKE_TIMEOUT, Deadline::Handshake)),
            input_done: false,
            peer_closed: false,
            outcome: None,
            disconnect_overdue: false,
            max_image_bytes: None,
            compressor: None,
            console: Console::default(),
            read_buf: vec![0; READ_CHUNK],
            plain_buf: if url.tls {
                vec![0; READ_CHUNK]
            } else {
                Vec::new()
            },
        })
    }

    /// The waker to give the thread that feeds [`run`](Session::run) its input.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Runs the loop until the session ends: with a closing handshake (`Ok`), or with
    /// an error (the connection failed, or the server broke the protocol).
    pub fn run(mut self, input: Receiver<Input>) -> Result<Ending, ClientError> {
        let mut events = Events::with_capacity(16);
        self.flush()?;
        loop {
            if let Some(outcome) = self.finished() {
                return outcome;
            }
            let timeout = self
                .deadline
                .map(|(at, _)| at.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                // A signal cut the wait short: nothing happened, go round again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
                Err(e) => return Err(ClientError::Poll(e)),
            }
            for event in events.iter() {
                let socket_event = event.token() == SOCKET
                    && (event.is_readable() || event.is_read_closed() || event.is_error());
                if socket_event {
                    self.read_socket()?;
                }
                // Writable events need no handling of their own: the flush below writes
                // whatever is queued. Waker events only end the wait.
            }
            self.check_deadline()?;
            // Taking lines and writing alternate: when the queue is over the high-water
            // mark, lines are taken again as soon as a write brings it back under, since
            // the keyboard thread, blocked on a full channel, would not wake us again.
            while self.take_input(&input) {
                self.flush()?;
            }
            self.flush()?;
        }
    }

    /// The result, once the session is over.
    fn finished(&mut self) -> Option<Result<Ending, ClientError>> {
        let done = self.outcome.is_some() && (self.peer_closed || self.disconnect_overdue);
        if !done {
            return None;
        }
        match (self.outcome.take(), self.nick_refused.take()) {
            // A clean close after a refused nickname is still a failure: the user
            // asked to chat as someone and did not.
            (Some(Ok(_)), Some((nick, message))) => {
                Some(Err(ClientError::NickRefused { nick, message }))
            }
            (outcome, _) => outcome,
        }
    }

    /// Reads the socket until it would block or the server closes it.
    fn read_socket(&mut self) -> Result<(), ClientError> {
        let mut buf = std::mem::take(&mut self.read_buf);
        let result = loop {
            if self.peer_closed {
                break Ok(());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => break self.on_peer_closed(),
                Ok(n) if self.tls.is_some() => {
                    if let Err(e) = self.receive_tls(&buf[..n]) {
                        break Err(e);
                    }
                }
                Ok(n) => {
                    if let Err(e) = self.receive(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // After the closing handshake a reset is as good as a close.
                Err(_) if self.outcome.is_some() => break self.on_peer_closed(),
                Err(e) => {
                    break Err(self
                        .refusal_so_far()
                        .unwrap_or(ClientError::ConnectionLost(e)));
                }
            }
        };
        self.read_buf = buf;
        result
    }

    /// Ciphertext from the server: each piece of plaintext in it goes to
    /// [`receive`](Session::receive); the end of TLS is the end of the connection.
    fn receive_tls(&mut self, ciphertext: &[u8]) -> Result<(), ClientError> {
        let mut plain = std::mem::take(&mut self.plain_buf);
        let mut decrypt = Decrypt::new(ciphertext);
        let result = loop {
            let Some(tls) = self.tls.as_mut() else {
                break Ok(());
            };
            match decrypt.next(tls, &mut plain) {
                Ok(Plaintext::Bytes(n)) => {
                    if let Err(e) = self.receive(&plain[..n]) {
                        break Err(e);
                    }
                }
                Ok(Plaintext::Used) => break Ok(()),
                Ok(Plaintext::Closed) => break self.on_peer_closed(),
                Err(error) => {
                    // rustls has queued an alert that says why: one try to send it.
                    let _ = tls::send(tls, &[], &mut self.stream);
                    break Err(ClientError::Tls(TlsError::Failed {
                        host: self.host.clone(),
                        error,
                    }));
                }
            }
        };
        self.plain_buf = plain;
        result
    }

    /// The server closed TCP. Fine after a closing handshake; otherwise the connection
    /// was lost.
    fn on_peer_closed(&mut self) -> Result<(), ClientError> {
        self.peer_closed = true;
        if self.outcome.is_some() {
            // The closing handshake is done; an echo of the server's Close queued in this
            // turn is still written before the loop ends.
            return Ok(());
        }
        if self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) {
            return Err(ClientError::ClosedDuringTlsHandshake);
        }
        match &self.phase {
            // A refusal whose body ends with the connection (no Content-Length) is
            // reported now, with what came.
            Phase::Handshaking { .. } => Err(self
                .refusal_so_far()
                .unwrap_or(ClientError::ClosedDuringHandshake)),
            Phase::Open(ws) if ws.state() == State::CloseSent => Err(ClientError::CloseNotAnswered),
            Phase::Open(_) => Err(ClientError::NoClosingHandshake),
        }
    }

    /// While handshaking: the server's refusal, if its head is in, with as much of its
    /// body as came. For when no more will come (the stream ended or failed, or the
    /// deadline passed) and the refusal says more than "connection lost" would.
    fn refusal_so_far(&self) -> Option<ClientError> {
        let Phase::Handshaking {
            handshake,
            response,
        } = &self.phase
        else {
            return None;
        };
        handshake
            .read_response_at_end(response)
            .err()
            .map(Into::into)
    }

    /// Bytes from the server: the handshake response, then frames.
    fn receive(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let Phase::Handshaking {
            handshake,
            response,
        } = &mut self.phase
        else {
            self.receive_frames(bytes);
            return Ok(());
        };
        response.extend_from_slice(bytes);
        let Some(upgraded) = handshake.read_response(response)? else {
            return Ok(());
        };
        // Frames may follow the response head in the same read.
        let after_head = response.split_off(upgraded.head_len);
        let ws = WebSocket::new(Role::Client, MAX_MESSAGE_SIZE);
        self.phase = Phase::Open(match upgraded.deflate {
            // Inflates what arrives, keeping the server's window between messages unless
            // it said server_no_context_takeover (Node's ws keeps it by default).
            Some(agreed) => {
                self.compressor =
                    MessageCompressor::new(agreed.outgoing(Role::Client), DEFAULT_LEVEL);
                ws.with_deflate(agreed)
            }
            None => ws,
        });
        self.deadline = None;
        if let Some(nick) = self.nick.take() {
            self.awaiting_nick = Some(nick.trim().to_owned());
            self.deadline = Some((Instant::now() + NICK_ANSWER_TIMEOUT, Deadline::NickAnswer));
            self.send_request(&ClientRequest::Nick { nick });
        }
        self.receive_frames(&after_head);
        Ok(())
    }

    /// Decodes frames and acts on each event.
    fn receive_frames(&mut self, mut input: &[u8]) {
        loop {
            let Phase::Open(ws) = &mut self.phase else {
                return;
            };
            let we_closed = ws.state() == State::CloseSent;
            let result = ws.read(&mut input);
            // What the protocol owes the server: a Pong, or the Close that answers its
            // Close or reports its protocol error (RFC 6455 §7.1.7).
            ws.drain_replies(self.outbound.buffer());
            match result {
                Ok(Some(event)) => self.on_event(event, we_closed),
                Ok(None) => return,
                Err(error) => return self.conclude(Err(ClientError::Protocol(error))),
            }
        }
    }

    /// Acts on one event from the server; `we_closed` says whether our Close was sent
    /// before it came.
    fn on_event(&mut self, event: Event, we_closed: bool) {
        let Phase::Open(ws) = &mut self.phase else {
            return;
        };
        match event {
            Event::Text(text) => {
                let shown = match serde_json::from_str::<ServerEvent>(&text) {
                    Ok(event) => {
                        if let ServerEvent::Welcome { limits, nick, .. } = &event {
                            self.max_image_bytes = Some(limits.max_image_bytes);
                            self.guest_nick = Some(nick.clone());
                        }
                        let shown = self.console.event(&event);
                        self.check_nick_answer(&event);
                        shown
                    }
                    // Not an event this client knows (a newer server?): show it as is.
                    Err(_) => self.console.print(&text),
                };
                if let Phase::Open(ws) = &mut self.phase {
                    ws.recycle(text.into_bytes());
                }
                if !shown {
                    // Standard output is gone: nobody is reading the chat any more.
                    self.input_done = true;
                    self.begin_close();
                }
            }
            Event::Binary(bytes) => {
                let text = format!("* (a binary message of {} bytes)", bytes.len());
                ws.recycle(bytes);
                self.console.print(&text);
            }
            // Answered among the replies.
            Event::Ping(_) | Event::Pong(_) => {}
            Event::Close(frame) => {
                if we_closed {
                    // The answer to our Close (or the server's own, crossing ours).
                    self.conclude(Ok(Ending::ClosedByClient(frame)));
                } else {
                    // The server closes first; its echo is among the replies.
                    self.conclude(Ok(Ending::ClosedByServer(frame)));
                }
            }
        }
    }

    /// While `--nick` awaits its answer: the `nick` event that grants it lets typed lines
    /// go; a refusal (taken, invalid) ends the session, since the user asked to chat as
    /// that name. The server compares nicknames without regard to case, and so does this.
    fn check_nick_answer(&mut self, event: &ServerEvent) {
        let Some(wanted) = &self.awaiting_nick else {
            return;
        };
        let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        match event {
            ServerEvent::Nick { old, new, .. }
                if same(new, wanted) && self.guest_nick.as_deref().is_none_or(|g| same(old, g)) =>
            {
                self.stop_awaiting_nick();
            }
            ServerEvent::Error {
                code: ErrorCode::NickTaken | ErrorCode::NickInvalid,
                message,
            } => {
                self.nick_refused = Some((wanted.clone(), message.clone()));
                self.stop_awaiting_nick();
                self.input_done = true;
                self.begin_close();
            }
            _ => {}
        }
    }

    /// Typed lines may go: `--nick` was answered, or its answer is not coming.
    fn stop_awaiting_nick(&mut self) {
        self.awaiting_nick = None;
        if matches!(self.deadline, Some((_, Deadline::NickAnswer))) {
            self.deadline = None;
        }
    }

    /// Records how the session ends (the first verdict stands) and starts waiting for the
    /// server to close TCP.
    fn conclude(&mut self, outcome: Result<Ending, ClientError>) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
        self.input_done = true;
        self.deadline = Some((Instant::now() + CLOSE_TIMEOUT, Deadline::Disconnect));
    }

    /// Fires the deadline, if it has passed.
    fn check_deadline(&mut self) -> Result<(), ClientError> {
        let Some((at, deadline)) = self.deadline else {
            return Ok(());
        };
        if Instant::now() < at {
            return Ok(());
        }
        self.deadline = None;
        match deadline {
            // A refusal whose body is still coming is reported as what it is.
            Deadline::Handshake if self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) => {
                Err(ClientError::TlsHandshakeTimeout(HANDSHAKE_TIMEOUT))
            }
            Deadline::Handshake => Err(self
                .refusal_so_far()
                .unwrap_or(ClientError::HandshakeTimeout(HANDSHAKE_TIMEOUT))),
            Deadline::NickAnswer => {
                if let Some(nick) = self.awaiting_nick.take() {
                    self.console.notice(&format!(
                        "no answer to the nickname {nick} within {NICK_ANSWER_TIMEOUT:?}; \
                         sending anyway"
                    ));
                }
                Ok(())
            }
            Deadline::Linger => {
                self.begin_close();
                Ok(())
            }
            Deadline::CloseReply => Err(ClientError::CloseTimeout(CLOSE_TIMEOUT)),
            Deadline::Disconnect => {
                self.disconnect_overdue = true;
                Ok(())
            }
        }
    }

    /// Takes the lines waiting in `input`, unless input is over, the connection is not
    /// open, `--nick` awaits its answer, or the output queue is full. Returns whether it
    /// took any.
    fn take_input(&mut self, input: &Receiver<Input>) -> bool {
        let mut took_any = false;
        loop {
            let open = matches!(&self.phase, Phase::Open(ws) if ws.state() == State::Open);
            let held = self.awaiting_nick.is_some();
            if self.input_done || !open || held || self.outbound.pending() >= OUTBOUND_HIGH_WATER {
                return took_any;
            }
            let report = match input.try_recv() {
                Ok(report) => report,
                Err(TryRecvError::Empty) => return took_any,
                // The reading thread is gone without a word: treat it as the end.
                Err(TryRecvError::Disconnected) => Input::End,
            };
            took_any = true;
            match report {
                Input::Line(line) => self.on_line(&line),
                Input::End => self.end_of_input(),
                Input::Failed(e) => {
                    self.console
                        .notice(&format!("cannot read standard input: {e}"));
                    self.end_of_input();
                }
            }
        }
    }

    /// Input has ended: close now, or after the linger time.
    fn end_of_input(&mut self) {
        self.input_done = true;
        if self.linger.is_zero() {
            self.begin_close();
        } else {
            self.deadline = Some((Instant::now() + self.linger, Deadline::Linger));
        }
    }

    /// Acts on one line of input.
    fn on_line(&mut self, line: &str) {
        match parse_command(line) {
            Ok(Command::Request(request)) => self.send_request(&request),
            Ok(Command::Image(path)) => self.send_image(&path),
            Ok(Command::Help) => {
                self.console.print(&format!("* {HELP}"));
            }
            Ok(Command::Quit) => {
                self.input_done = true;
                self.begin_close();
            }
            Ok(Command::Nothing) => {}
            Err(usage) => self.console.notice(&usage),
        }
    }

    /// Queues a request as a JSON text frame.
    fn send_request(&mut self, request: &ClientRequest) {
        let Phase::Open(ws) = &mut self.phase else {
            return;
        };
        let json = match serde_json::to_string(request) {
            Ok(json) => json,
            Err(e) => return self.console.notice(&format!("cannot encode request: {e}")),
        };
        let message = Message::Text(&json);
        let out = self.outbound.buffer();
        let written = match &mut self.compressor {
            Some(compressor) if json.len() >= COMPRESS_MIN_BYTES => {
                ws.write_compressed(message, compressor, out)
            }
            _ => ws.write_message(message, out),
        };
        if let Err(e) = written {
            self.console.notice(&format!("not sent: {e}"));
        }
    }

    /// `/image PATH`: reads the file and sends it, base64-encoded, to the active room.
    /// The server judges the type by the file's first bytes; its size limit, announced
    /// in `welcome`, is checked here first so a large file is not read for nothing.
    fn send_image(&mut self, path: &str) {
        if let (Ok(metadata), Some(max)) = (std::fs::metadata(path), self.max_image_bytes)
            && metadata.len() > max as u64
        {
            let size = metadata.len();
            let notice = format!("{path} has {size} bytes; the server takes at most {max}");
            return self.console.notice(&notice);
        }
        match std::fs::read(path) {
            Ok(bytes) => self.send_request(&ClientRequest::Image {
                room: None,
                to: None,
                data: BASE64.encode(bytes),
            }),
            Err(e) => self.console.notice(&format!("cannot read {path}: {e}")),
        }
    }

    /// Starts the closing handshake: Close 1000, after everything queued before it.
    fn begin_close(&mut self) {
        if let Phase::Open(ws) = &mut self.phase
            && ws.state() == State::Open
            && ws
                .write_close(
                    Some((CloseCode::Normal, CLOSE_REASON)),
                    self.outbound.buffer(),
                )
                .is_ok()
        {
            self.deadline = Some((Instant::now() + CLOSE_TIMEOUT, Deadline::CloseReply));
        }
    }

    /// Writes what is queued until the socket would block, and registers interest in
    /// `WRITABLE` exactly while something remains (in the queue, or in rustls).
    fn flush(&mut self) -> Result<(), ClientError> {
        let written = match &mut self.tls {
            Some(tls) => self.outbound.encrypt_to(tls, &mut self.stream),
            None => self.outbound.write_to(&mut self.stream),
        };
        if let Err(e) = written {
            if self.outcome.is_none() {
                return Err(ClientError::ConnectionLost(e));
            }
            // The server is gone after the closing handshake: nothing left to say.
            self.outbound.clear();
            self.peer_closed = true;
        }
        let want_writable =
            self.outbound.pending() > 0 || self.tls.as_ref().is_some_and(|tls| tls.wants_write());
        if want_writable != self.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.poll
                .registry()
                .reregister(&mut self.stream, SOCKET, interest)
                .map_err(ClientError::Poll)?;
            self.writable_registered = want_writable;
        }
        Ok(())
    }
}
