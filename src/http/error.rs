//! Why a request is refused, and the response that says so.

use super::response::Response;
use thiserror::Error;

/// A request we will not serve. Each variant knows its status code and writes a response
/// whose body names the reason, so a developer pointing `curl` or a half-written client at
/// the server learns what to fix. After the response the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    /// Not HTTP at all, or a request line or header field httparse rejects.
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// The head did not end within the byte limit.
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// More header fields than the limit.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// A WebSocket upgrade over HTTP/1.0 (RFC 6455 §4.1 requires 1.1).
    #[error("a WebSocket upgrade needs HTTP/1.1")]
    UpgradeNeedsHttp11,
    /// A method this resource does not serve; the string lists the ones it does.
    #[error("method {method} not allowed here (allowed: {allowed})")]
    MethodNotAllowed {
        /// The method the client sent.
        method: String,
        /// The `Allow` header's value.
        allowed: &'static str,
    },
    /// No `Host` header, or more than one (RFC 9112 §3.2).
    #[error("exactly one Host header is required")]
    BadHost,
    /// A request that looks like a WebSocket upgrade without `Upgrade: websocket`.
    #[error("the Upgrade header must name websocket")]
    NotWebSocketUpgrade,
    /// `Upgrade: websocket` without `upgrade` among the `Connection` tokens.
    #[error("the Connection header must include the token upgrade")]
    MissingConnectionUpgrade,
    /// A `Sec-WebSocket-Version` other than 13.
    #[error("unsupported WebSocket version; this server speaks version 13")]
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key`, more than one, or one that is not 16 bytes in base64.
    #[error("Sec-WebSocket-Key must be one base64-encoded 16-byte value")]
    BadKey,
    /// Nothing is served at this path.
    #[error("nothing here: {0}")]
    NotFound(String),
}

impl HttpError {
    /// The status code this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge(_) | HttpError::TooManyHeaders(_) => 431,
            HttpError::MethodNotAllowed { .. } => 405,
            HttpError::UnsupportedVersion => 426,
            HttpError::NotFound(_) => 404,
            _ => 400,
        }
    }

    /// The whole response: status, the headers the status calls for, and the reason as
    /// a plain-text body. Always `Connection: close`.
    pub fn response(&self) -> Response {
        let mut response = Response::text(self.status(), format!("{self}\n"));
        match self {
            HttpError::MethodNotAllowed { allowed, .. } => response.header("Allow", *allowed),
            // RFC 6455 §4.4: tell the client which versions we speak.
            HttpError::UnsupportedVersion => response
                .header("Sec-WebSocket-Version", "13")
                .header("Upgrade", "websocket"),
            _ => &mut response,
        };
        response
    }
}
