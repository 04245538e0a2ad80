//! The terminal client: `loopchat client ws://HOST:PORT/PATH [--nick NAME] [--linger S]`.
//!
//! Lines typed (or piped) on standard input are sent to the chat; what the server says is
//! printed on standard output as it arrives, in the same human form the line port uses
//! ([`ServerEvent::render_line`](loopchat::apps::chat::protocol::ServerEvent::render_line)).
//! Input goes through [`parse_command`](loopchat::apps::chat::protocol::parse_command), so
//! `/join rust`, `/msg ada hi`, `/who`, `/image cat.png`, `/help` and `/quit` work as in
//! the web page.
//!
//! # Design
//!
//! The client speaks WebSocket with the crate's own sans-IO code in the client role: the
//! opening handshake is [`ClientHandshake`](loopchat::http::ClientHandshake) and the frames
//! are [`WebSocket`](loopchat::ws::WebSocket) with [`Role::Client`](loopchat::ws::Role), which
//! masks what it sends. Around it, the same shape as the server, scaled down:
//!
//! - [`session`]: a small event loop on `mio`. The main thread owns the socket
//!   (non-blocking, registered with a `Poll`), the WebSocket state and the output queue,
//!   and does all the socket I/O: read until it would block, queue frames, write until it
//!   would block, with `WRITABLE` interest registered only while output remains.
//! - [`input`]: a thread that blocks reading standard input a line at a time and passes
//!   each line over a channel, waking the poll with a `mio::Waker`. So messages from
//!   others print while you type, and the loop never blocks on the keyboard.
//! - `console`: standard output for the chat, one event per line group, flushed at once;
//!   standard error for notices about the client itself (could not connect, the server
//!   closed the connection with code X).
//! - [`url`]: `ws://` and `wss://` URLs.
//! - [`tls`]: `wss://`: rustls driven sans-IO on the same socket, trusting `--ca-file`'s
//!   roots or, with `--insecure`, any certificate. The load generator uses it too.
//!
//! permessage-deflate (`--deflate on`, the default): the handshake offers it as a browser
//! does (`permessage-deflate; client_max_window_bits`) and fails on an answer RFC 7692
//! does not allow. If the server agrees, the [`WebSocket`](loopchat::ws::WebSocket)
//! inflates what arrives, and what we send from 128 bytes up is compressed by a
//! [`MessageCompressor`](loopchat::ws::deflate::codec::MessageCompressor) that keeps its
//! window from one message to the next unless the server said
//! `client_no_context_takeover` (loopchat's server does; Node's `ws` does not).
//!
//! Connecting is the only blocking network step, bounded by a timeout, before the loop
//! starts. Everything typed is sent in order, and the Close after it: with input from a
//! pipe, `printf '/nick ada\nhello\n' | loopchat client URL` sends both lines, then closes
//! cleanly. `--linger SECONDS` keeps the connection open that long after input ends, to
//! print what others say meanwhile.
//!
//! # Exit status
//!
//! 0 after a clean closing handshake: begun by the client (end of input, `/quit`) and
//! answered with 1000 or 1001 (or an empty Close), or begun by the server with code 1000
//! (normal) or 1001 (going away). 1 for everything else: a bad URL, a wss:// URL without --ca-file or --insecure, a failed TLS handshake, a refused connection
//! or handshake, a lost connection, a protocol error, or a server's Close with any other
//! code, or with none when the server closes first (say, a 1008 for going over the rate
//! limit). What went wrong is said on standard error. Ctrl-C ends the process at once;
//! the server sees the connection drop.

mod console;
pub mod input;
pub mod session;
pub mod tls;
pub mod url;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use thiserror::Error;

use loopchat::http::ClientHandshakeError;
use loopchat::ws::{CloseCode, ProtocolError};
pub use session::{Ending, Session};
pub use tls::{TlsArgs, TlsError};
pub use url::{UrlError, WsUrl};

/// What the client is asked to do: the command line's options.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's WebSocket URL, `ws://HOST[:PORT][/PATH]` or `wss://...`.
    pub url: String,
    /// How a `wss://` server's certificate is checked.
    pub tls: TlsArgs,
    /// The nickname to ask for as soon as the connection is open.
    pub nick: Option<String>,
    /// How long to keep receiving after standard input ends, before closing.
    pub linger: Duration,
    /// Whether to offer permessage-deflate (RFC 7692) as a browser does. If the server
    /// agrees, what arrives compressed is inflated and what we send from
    /// [`session::COMPRESS_MIN_BYTES`] up goes compressed.
    pub deflate: bool,
}

/// Why a session failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The URL cannot be used.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `wss://`: no way to check the certificate, or the TLS handshake failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The server closed the connection before the TLS handshake was done.
    #[error("the server closed the connection during the TLS handshake")]
    ClosedDuringTlsHandshake,
    /// The TLS handshake was not done in time.
    #[error("the TLS handshake did not finish within {0:?}")]
    TlsHandshakeTimeout(Duration),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// The host name resolved to no address at all.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The host name.
        host: String,
    },
    /// No address of the server accepted a connection.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The server, as the URL names it.
        address: String,
        /// Why the last address tried failed (such as "connection refused").
        source: io::Error,
    },
    /// The poll, the waker or the socket's options could not be set up.
    #[error("cannot set up the connection: {0}")]
    Setup(io::Error),
    /// Waiting for events failed.
    #[error("the event loop failed: {0}")]
    Poll(io::Error),
    /// The server's answer to the upgrade request is not a valid 101.
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(#[from] ClientHandshakeError),
    /// The server did not answer the upgrade request in time.
    #[error("the server did not answer the WebSocket handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// The server closed the connection before answering the upgrade request.
    #[error("the server closed the connection during the WebSocket handshake")]
    ClosedDuringHandshake,
    /// Reading or writing the socket failed (a reset, say).
    #[error("connection lost: {0}")]
    ConnectionLost(io::Error),
    /// The server closed TCP without a Close frame.
    #[error("connection lost: the server closed it without a closing handshake")]
    NoClosingHandshake,
    /// The server closed TCP instead of answering our Close.
    #[error("the server closed the connection without answering our Close")]
    CloseNotAnswered,
    /// The server did not answer our Close in time.
    #[error("the server did not answer our Close within {0:?}")]
    CloseTimeout(Duration),
    /// The server broke RFC 6455; the connection was failed with the error's close code.
    #[error("the server broke the WebSocket protocol: {0}")]
    Protocol(ProtocolError),
    /// The server refused the nickname given with `--nick` (taken, or not valid); the
    /// client closed rather than chat under another name.
    #[error("--nick {nick} refused: {message}")]
    NickRefused {
        /// The nickname asked for.
        nick: String,
        /// The server's reason.
        message: String,
    },
}

/// Connects, chats until the session ends, and returns how it ended.
pub fn chat(config: &ClientConfig) -> Result<Ending, ClientError> {
    let url = WsUrl::parse(&config.url)?;
    let session = Session::connect(&url, config)?;
    let lines =
        input::spawn_reader(|| io::stdin().lock(), session.waker()).map_err(ClientError::Setup)?;
    session.run(lines)
}

/// Runs the terminal client and turns the result into the process's exit status,
/// reporting on standard error why the session ended if that is worth saying.
pub fn run(config: &ClientConfig) -> ExitCode {
    let console = console::Console::default();
    let (what, frame) = match chat(config) {
        // The usual answer to our Close: an echo of our 1000, or an empty Close.
        Ok(Ending::ClosedByClient(None)) => return ExitCode::SUCCESS,
        Ok(Ending::ClosedByClient(Some(frame))) if is_normal(frame.code) => {
            return ExitCode::SUCCESS;
        }
        Ok(Ending::ClosedByClient(frame)) => ("answered our Close", frame),
        Ok(Ending::ClosedByServer(frame)) => ("closed the connection", frame),
        Err(error) => {
            console.notice(&error.to_string());
            return ExitCode::FAILURE;
        }
    };
    let (code, reason) = match &frame {
        Some(frame) => (frame.code, frame.reason.as_str()),
        None => (CloseCode::NoStatus, ""),
    };
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    console.notice(&format!("the server {what} with code {code}{reason}"));
    if is_normal(code) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether a close code means all is well: 1000 (normal) or 1001 (going away).
fn is_normal(code: CloseCode) -> bool {
    matches!(code, CloseCode::Normal | CloseCode::GoingAway)
}

/// Parses a number of seconds, fractions allowed (`2`, `0.5`), as the command line's
/// `--linger` takes it.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds (such as 5 or 0.5)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds(" 0.5 "), Ok(Duration::from_millis(500)));
        for bad in ["", "-1", "soon", "NaN", "inf", "1e300"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
