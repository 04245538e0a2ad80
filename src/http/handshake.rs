//! The WebSocket opening handshake (RFC 6455 §4), in both roles.
//!
//! Server side: [`classify`] looks at a parsed request and says whether it is a valid
//! upgrade (answer it with [`Upgrade::response`]), a plain HTTP request (serve a page), or
//! a broken upgrade (answer with the [`HttpError`]'s response).
//!
//! Client side: [`ClientHandshake`] writes the request and checks the server's answer,
//! including that `Sec-WebSocket-Accept` proves the server read our key. A refusal (any
//! status but 101) is reported with its reason phrase and the start of its body, which
//! is where a server says why (`no WebSocket at /chat; use /ws`). The request may offer
//! permessage-deflate ([`ClientHandshake::with_deflate`]); the answer's
//! `Sec-WebSocket-Extensions` is checked either way, since RFC 6455 §4.1 has a client
//! fail the connection when the server names an extension it did not offer, and
//! RFC 7692 §7.1 when the server's parameters break the offer. A valid 101 yields
//! [`Upgraded`]: where the frames begin and what was agreed.

use super::error::HttpError;
use super::request::{HeadLimits, Request};
use crate::ws::deflate::negotiation::{DeflateOffer, Negotiated, ResponseError, parse_extensions};
use crate::ws::mask::MaskKeys;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};
use thiserror::Error;

/// The GUID that RFC 6455 §1.3 appends to the client's key.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// What a request asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// A valid WebSocket upgrade.
    Upgrade(Upgrade),
    /// An ordinary HTTP request, with no sign of wanting a WebSocket.
    Plain,
}

/// A valid upgrade request, reduced to what the server needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The `Sec-WebSocket-Accept` value to send back.
    pub accept: String,
    /// The `Origin` header, which browsers always send, if present.
    pub origin: Option<String>,
}

impl Upgrade {
    /// The 101 response that completes the handshake.
    pub fn response(&self) -> Vec<u8> {
        self.response_with_extensions(None)
    }

    /// The 101 response, with the `Sec-WebSocket-Extensions` value agreed, if any.
    pub fn response_with_extensions(&self, extensions: Option<&str>) -> Vec<u8> {
        let extensions = extensions
            .map(|value| format!("Sec-WebSocket-Extensions: {value}\r\n"))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
            self.accept
        )
        .into_bytes()
    }
}

/// Decides what `request` is. A request counts as a WebSocket upgrade attempt if its
/// `Upgrade` header names websocket or it carries a `Sec-WebSocket-Key`; an attempt must
/// then satisfy RFC 6455 §4.2.1 in full or be refused with the precise reason. Any other
/// request is plain HTTP, an `Upgrade` to another protocol (such as curl's `h2c`) being
/// ignored as RFC 9110 §7.8 allows; HTTP/1.1 still requires exactly one `Host`.
pub fn classify(request: &Request) -> Result<RequestKind, HttpError> {
    let attempt = names_websocket(request) || request.header("sec-websocket-key").is_some();
    let host_count = request.headers_named("host").count();
    if !attempt {
        // RFC 9112 §3.2: HTTP/1.1 requests carry one Host; no version may carry two.
        if host_count > 1 || (request.minor_version >= 1 && host_count == 0) {
            return Err(HttpError::BadHost);
        }
        return Ok(RequestKind::Plain);
    }
    if request.method != "GET" {
        return Err(HttpError::MethodNotAllowed {
            method: request.method.clone(),
            allowed: "GET",
        });
    }
    if request.minor_version < 1 {
        return Err(HttpError::UpgradeNeedsHttp11);
    }
    if host_count != 1 {
        return Err(HttpError::BadHost);
    }
    if !names_websocket(request) {
        return Err(HttpError::NotWebSocketUpgrade);
    }
    if !request.has_token("connection", "upgrade") {
        return Err(HttpError::MissingConnectionUpgrade);
    }
    if request
        .header("sec-websocket-version")
        .map(<[u8]>::trim_ascii)
        != Some(b"13")
    {
        return Err(HttpError::UnsupportedVersion);
    }
    let mut keys = request.headers_named("sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HttpError::BadKey);
    };
    let key = key.trim_ascii();
    if BASE64.decode(key).map(|nonce| nonce.len()) != Ok(16) {
        return Err(HttpError::BadKey);
    }
    let origin = request
        .header("origin")
        .map(|o| String::from_utf8_lossy(o).into_owned());
    Ok(RequestKind::Upgrade(Upgrade {
        accept: accept_key(key),
        origin,
    }))
}

/// Whether the `Upgrade` header lists websocket among its protocols.
fn names_websocket(request: &Request) -> bool {
    request
        .headers_named("upgrade")
        .flat_map(|value| value.split(|&b| b == b','))
        // A protocol may carry a version after a slash ("websocket/13" is not a thing, but
        // the grammar allows it); compare the name only.
        .any(|p| {
            p.trim_ascii()
                .split(|&b| b == b'/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(b"websocket"))
        })
}

/// Why a server's answer to our upgrade request was not a valid 101.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientHandshakeError {
    /// Not a parseable HTTP response, or one larger than the head limit.
    #[error("malformed handshake response: {0}")]
    Malformed(String),
    /// Any status other than 101.
    #[error(
        "the server answered {status}{} instead of 101 Switching Protocols{}",
        prefixed(" ", reason),
        prefixed(": ", body)
    )]
    Refused {
        /// The status the server sent.
        status: u16,
        /// Its reason phrase (`Not Found`), printable characters only; may be empty.
        reason: String,
        /// The start of the body (at most [`MAX_REFUSAL_BODY`] bytes), on one line,
        /// printable characters only; empty if there was none.
        body: String,
    },
    /// A 101 without `Upgrade: websocket` and `Connection: upgrade`.
    #[error("the 101 response lacks Upgrade: websocket or Connection: upgrade")]
    NotUpgraded,
    /// A `Sec-WebSocket-Accept` that does not match our key.
    #[error("Sec-WebSocket-Accept does not match the key we sent")]
    WrongAccept,
    /// A `Sec-WebSocket-Extensions` the client must fail the connection over: an
    /// extension we did not offer (RFC 6455 §4.1), or a permessage-deflate answer that
    /// breaks our offer or RFC 7692 §7.1.
    #[error("the server's Sec-WebSocket-Extensions is not acceptable: {0}")]
    Extensions(#[from] ResponseError),
}

/// How much of a refusal's body is waited for and reported: enough for a server's
/// explanation, not a whole error page.
pub const MAX_REFUSAL_BODY: usize = 1024;

/// `text` after `prefix`, or nothing if `text` is empty.
fn prefixed(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{prefix}{text}")
    }
}

/// `bytes` as one line of printable text: lossy UTF-8, control characters and runs of
/// white space each made one space, trimmed. What a server sends is shown to a person on
/// a terminal, so it must not carry escape sequences.
fn one_printable_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let spaced = text.replace(|c: char| c.is_control() || c.is_whitespace(), " ");
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The client's half of the handshake: a fresh random key, the request that carries it
/// (with a permessage-deflate offer, or none), and the check of the server's answer.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    /// The `Sec-WebSocket-Accept` that proves the server read our key.
    expected_accept: String,
    /// The request head, ready to send.
    request: Vec<u8>,
    /// The permessage-deflate offer the request makes, if any: the answer is checked
    /// against it.
    deflate: Option<DeflateOffer>,
}

/// A server's valid 101 to a [`ClientHandshake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    /// The length of the response head: frames may follow it in the same read.
    pub head_len: usize,
    /// The permessage-deflate parameters in effect; `None` if we did not offer it or the
    /// server declined (then messages go uncompressed both ways).
    pub deflate: Option<Negotiated>,
}

impl ClientHandshake {
    /// A handshake for `path` (such as `/ws`) on `host` (such as `127.0.0.1:8080`),
    /// offering no extension.
    pub fn new(host: &str, path: &str) -> ClientHandshake {
        ClientHandshake::build(host, path, None)
    }

    /// A handshake that offers permessage-deflate as `offer` says (a browser's offer is
    /// [`DeflateOffer::client_default`]). Whether the server agreed, and to what, comes
    /// with the 101 ([`Upgraded::deflate`]).
    pub fn with_deflate(host: &str, path: &str, offer: DeflateOffer) -> ClientHandshake {
        ClientHandshake::build(host, path, Some(offer))
    }

    fn build(host: &str, path: &str, deflate: Option<DeflateOffer>) -> ClientHandshake {
        let mut keys = MaskKeys::from_os_seed();
        let nonce: Vec<u8> = (0..4).flat_map(|_| keys.next_key()).collect();
        let key = BASE64.encode(nonce);
        let extensions = deflate
            .map(|offer| format!("Sec-WebSocket-Extensions: {offer}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
        )
        .into_bytes();
        ClientHandshake {
            expected_accept: accept_key(key.as_bytes()),
            request,
            deflate,
        }
    }

    /// The permessage-deflate offer this handshake makes, if any.
    pub fn deflate_offer(&self) -> Option<&DeflateOffer> {
        self.deflate.as_ref()
    }

    /// The request bytes to send.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Checks the response at the start of `buf`. Returns [`Upgraded`] (the length of the
    /// response head, as frames may follow it in `buf`, and what was agreed) once the head
    /// is complete and valid, `Ok(None)` while it is incomplete. A refusal is decided once its body is in, up to
    /// [`MAX_REFUSAL_BODY`] bytes of it (for a body without a `Content-Length`, that many
    /// or the end of the stream: see [`read_response_at_end`](Self::read_response_at_end)).
    pub fn read_response(&self, buf: &[u8]) -> Result<Option<Upgraded>, ClientHandshakeError> {
        self.check_response(buf, false)
    }

    /// As [`read_response`](Self::read_response), when the server has closed the
    /// connection and `buf` is all there will be: a refusal whose body is cut short is
    /// reported with what came. `Ok(None)`: the head itself is incomplete.
    pub fn read_response_at_end(
        &self,
        buf: &[u8],
    ) -> Result<Option<Upgraded>, ClientHandshakeError> {
        self.check_response(buf, true)
    }

    fn check_response(
        &self,
        buf: &[u8],
        at_end: bool,
    ) -> Result<Option<Upgraded>, ClientHandshakeError> {
        let limits = HeadLimits::default();
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut fields);
        // The limit applies to the head however it arrives: whole in one read, or cut
        // anywhere (found by the `client_handshake_response` fuzz target).
        let too_large = || ClientHandshakeError::Malformed("head too large".into());
        let head_len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) if len > limits.max_head_bytes => {
                return Err(too_large());
            }
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() < limits.max_head_bytes => return Ok(None),
            Ok(httparse::Status::Partial) => return Err(too_large()),
            Err(e) => return Err(ClientHandshakeError::Malformed(e.to_string())),
        };
        let status = response.code.unwrap_or_default();
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        if status != 101 {
            // RFC 9112 §6.3: no body for 1xx, 204 and 304; a chunked body is not
            // worth decoding for an excerpt; otherwise `Content-Length` bytes, or all
            // until the end of the stream.
            let chunked = header("transfer-encoding").is_some();
            let length = match status {
                100..=199 | 204 | 304 => Some(0),
                _ if chunked => Some(0),
                _ => header("content-length")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.trim().parse::<usize>().ok()),
            };
            let wanted = length.unwrap_or(usize::MAX).min(MAX_REFUSAL_BODY);
            let body = &buf[head_len..];
            if body.len() < wanted && !at_end {
                return Ok(None);
            }
            return Err(ClientHandshakeError::Refused {
                status,
                reason: one_printable_line(response.reason.unwrap_or_default().as_bytes()),
                body: one_printable_line(&body[..body.len().min(wanted)]),
            });
        }
        let has_token = |name: &str, token: &[u8]| {
            header(name).is_some_and(|v| {
                v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            })
        };
        if !has_token("upgrade", b"websocket") || !has_token("connection", b"upgrade") {
            return Err(ClientHandshakeError::NotUpgraded);
        }
        if header("sec-websocket-accept").map(<[u8]>::trim_ascii)
            != Some(self.expected_accept.as_bytes())
        {
            return Err(ClientHandshakeError::WrongAccept);
        }
        let extensions = response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(|h| h.value);
        let deflate = match &self.deflate {
            Some(offer) => offer.check_response(extensions)?,
            None => {
                refuse_any_extension(extensions)?;
                None
            }
        };
        Ok(Some(Upgraded { head_len, deflate }))
    }
}

/// The check of `Sec-WebSocket-Extensions` when we offered nothing: any extension named
/// is one we did not offer (RFC 6455 §4.1). An empty header names none.
fn refuse_any_extension<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), ResponseError> {
    for value in headers {
        if let Some(extension) = parse_extensions(value)?.first() {
            return Err(ResponseError::NotOffered(extension.name.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_request;

    #[test]
    fn a_response_head_over_the_limit_is_refused_however_it_arrives() {
        let client = ClientHandshake::new("127.0.0.1:9", "/ws");
        let (request, _) = parse_request(client.request(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        let Ok(RequestKind::Upgrade(upgrade)) = classify(&request) else {
            panic!("refused")
        };
        let response = upgrade.response();
        let mut big = response[..response.len() - 2].to_vec();
        big.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "a".repeat(9000)).as_bytes());
        let whole = client.read_response(&big);
        assert_eq!(
            client.read_response(&big[..8200]),
            whole,
            "the verdict depends on the reads"
        );
        assert!(whole.is_err(), "a head over the limit was accepted");
    }

    fn request(text: &str) -> Request {
        parse_request(text.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap()
            .0
    }

    const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_example_accept_key() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_valid_upgrade_gets_a_101() {
        let Ok(RequestKind::Upgrade(upgrade)) = classify(&request(GOOD)) else {
            panic!("not an upgrade")
        };
        assert_eq!(upgrade.origin.as_deref(), Some("http://example.com"));
        let response = String::from_utf8(upgrade.response()).unwrap();
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(response.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn header_tokens_are_lists_and_case_insensitive() {
        let text = GOOD
            .replace("Upgrade: websocket", "upgrade: WebSocket")
            .replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE");
        assert!(matches!(
            classify(&request(&text)),
            Ok(RequestKind::Upgrade(_))
        ));
    }

    #[test]
    fn a_request_without_upgrade_headers_is_plain() {
        let plain = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(classify(&request(plain)), Ok(RequestKind::Plain));
        // An upgrade to another protocol is ignored (curl --http2 sends this).
        let h2c = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(classify(&request(h2c)), Ok(RequestKind::Plain));
        // HTTP/1.0 needs no Host.
        assert_eq!(
            classify(&request("GET / HTTP/1.0\r\n\r\n")),
            Ok(RequestKind::Plain)
        );
    }

    #[test]
    fn plain_http_1_1_needs_exactly_one_host() {
        let none = "GET / HTTP/1.1\r\n\r\n";
        let two = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
        assert_eq!(classify(&request(none)), Err(HttpError::BadHost));
        assert_eq!(classify(&request(two)), Err(HttpError::BadHost));
    }

    #[test]
    fn broken_upgrades_get_precise_errors() {
        let cases: Vec<(String, HttpError)> = vec![
            (
                GOOD.replace("GET", "POST"),
                HttpError::MethodNotAllowed {
                    method: "POST".into(),
                    allowed: "GET",
                },
            ),
            (
                GOOD.replace("HTTP/1.1", "HTTP/1.0"),
                HttpError::UpgradeNeedsHttp11,
            ),
            (
                GOOD.replace("Host: server.example.com\r\n", ""),
                HttpError::BadHost,
            ),
            (
                GOOD.replace("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n"),
                HttpError::BadHost,
            ),
            (
                GOOD.replace("Upgrade: websocket", "Upgrade: h2c"),
                HttpError::NotWebSocketUpgrade,
            ),
            (
                GOOD.replace("Connection: Upgrade", "Connection: keep-alive"),
                HttpError::MissingConnectionUpgrade,
            ),
            (
                GOOD.replace("Version: 13", "Version: 8"),
                HttpError::UnsupportedVersion,
            ),
            (
                GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
                HttpError::UnsupportedVersion,
            ),
            (
                GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                HttpError::BadKey,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                HttpError::BadKey,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
                HttpError::BadKey,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(classify(&request(&text)), Err(expected), "{text}");
        }
        let mut duplicate_key = GOOD.to_owned();
        duplicate_key.insert_str(
            GOOD.len() - 2,
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
        assert_eq!(classify(&request(&duplicate_key)), Err(HttpError::BadKey));
    }

    #[test]
    fn error_responses_carry_status_reason_and_required_headers() {
        let version = String::from_utf8(
            HttpError::UnsupportedVersion
                .response()
                .encode(false, false),
        )
        .unwrap();
        assert!(version.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(version.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(version.ends_with("this server speaks version 13\n"));
        let method = HttpError::MethodNotAllowed {
            method: "PUT".into(),
            allowed: "GET",
        };
        let method = String::from_utf8(method.response().encode(false, false)).unwrap();
        assert!(
            method.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")
                && method.contains("\r\nAllow: GET\r\n")
        );
        assert_eq!(HttpError::HeadTooLarge(1).status(), 431);
    }

    #[test]
    fn client_and_server_handshakes_agree() {
        let client = ClientHandshake::new("127.0.0.1:9", "/ws");
        let (parsed, len) = parse_request(client.request(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(len, client.request().len());
        let Ok(RequestKind::Upgrade(upgrade)) = classify(&parsed) else {
            panic!("client request refused")
        };
        let response = upgrade.response();
        for prefix in 0..response.len() {
            assert_eq!(client.read_response(&response[..prefix]), Ok(None));
        }
        let upgraded = Upgraded {
            head_len: response.len(),
            deflate: None,
        };
        assert_eq!(client.read_response(&response), Ok(Some(upgraded)));

        let other = ClientHandshake::new("127.0.0.1:9", "/ws");
        assert_eq!(
            other.read_response(&response),
            Err(ClientHandshakeError::WrongAccept)
        );
        let refused = HttpError::UnsupportedVersion
            .response()
            .encode(false, false);
        let Err(ClientHandshakeError::Refused {
            status: 426,
            reason,
            ..
        }) = client.read_response(&refused)
        else {
            panic!("426 not reported")
        };
        assert_eq!(reason, "Upgrade Required");
    }

    #[test]
    fn a_refusal_is_reported_with_its_reason_and_the_start_of_its_body() {
        let client = ClientHandshake::new("127.0.0.1:9", "/ws");
        let refused = |status: u16, reason: &str, body: &str| {
            Err(ClientHandshakeError::Refused {
                status,
                reason: reason.into(),
                body: body.into(),
            })
        };
        let head = "HTTP/1.1 404 Not Found\r\nContent-Length: 34\r\n\r\n";
        let whole = format!("{head}no WebSocket at /other; use /ws\n\x1b[");
        // The body is waited for, however the response is cut.
        for cut in 0..whole.len() {
            assert_eq!(
                client.read_response(&whole.as_bytes()[..cut]),
                Ok(None),
                "{cut}"
            );
        }
        let expected = refused(404, "Not Found", "no WebSocket at /other; use /ws [");
        assert_eq!(client.read_response(whole.as_bytes()), expected);
        assert_eq!(
            expected.unwrap_err().to_string(),
            "the server answered 404 Not Found instead of 101 Switching Protocols: \
             no WebSocket at /other; use /ws ["
        );
        // Cut short by the end of the stream: what came is reported.
        let short = &whole.as_bytes()[..head.len() + 12];
        assert_eq!(
            client.read_response_at_end(short),
            refused(404, "Not Found", "no WebSocket")
        );
        // No Content-Length: up to the end of the stream, or MAX_REFUSAL_BODY bytes.
        let no_length = format!("HTTP/1.1 503 Busy\r\n\r\n{}", "z".repeat(2000));
        let bytes = no_length.as_bytes();
        let head_len = bytes.len() - 2000;
        assert_eq!(client.read_response(&bytes[..head_len + 10]), Ok(None));
        assert_eq!(
            client.read_response_at_end(&bytes[..head_len + 10]),
            refused(503, "Busy", &"z".repeat(10))
        );
        let capped = refused(503, "Busy", &"z".repeat(MAX_REFUSAL_BODY));
        assert_eq!(
            client.read_response(&bytes[..head_len + MAX_REFUSAL_BODY]),
            capped
        );
        assert_eq!(client.read_response(bytes), capped);
        // Bodiless statuses and chunked bodies are decided at the head.
        for head in [
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(
                client.read_response(head.as_bytes()),
                Err(ClientHandshakeError::Refused { body, .. }) if body.is_empty()
            ));
        }
        // No reason phrase, no body: the message stays clean.
        let bare = client.read_response(b"HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            bare.unwrap_err().to_string(),
            "the server answered 500 instead of 101 Switching Protocols"
        );
    }

    /// A 101 for `client`'s request carrying these `Sec-WebSocket-Extensions` headers, one
    /// field each.
    fn answer_with_extensions(client: &ClientHandshake, extensions: &[&str]) -> Vec<u8> {
        let (request, _) = parse_request(client.request(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        let Ok(RequestKind::Upgrade(upgrade)) = classify(&request) else {
            panic!("refused")
        };
        let mut response = upgrade.response();
        response.truncate(response.len() - 2);
        for value in extensions {
            response.extend_from_slice(format!("Sec-WebSocket-Extensions: {value}\r\n").as_bytes());
        }
        response.extend_from_slice(b"\r\n");
        response
    }

    #[test]
    fn the_offer_is_in_the_request_only_when_made() {
        let plain = ClientHandshake::new("h:1", "/ws");
        let text = String::from_utf8(plain.request().to_vec()).unwrap();
        assert!(!text.contains("Sec-WebSocket-Extensions"), "{text}");
        assert_eq!(plain.deflate_offer(), None);

        let offering = ClientHandshake::with_deflate("h:1", "/ws", DeflateOffer::client_default());
        let text = String::from_utf8(offering.request().to_vec()).unwrap();
        assert!(
            text.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
        // The server reads the offer as a browser's.
        let (request, _) = parse_request(offering.request(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert!(matches!(classify(&request), Ok(RequestKind::Upgrade(_))));
        assert_eq!(
            request.header("sec-websocket-extensions"),
            Some(&b"permessage-deflate; client_max_window_bits"[..])
        );
    }

    /// Each line: the `Sec-WebSocket-Extensions` fields of a 101, and the client's
    /// verdict when it offered a browser's permessage-deflate (`Ok(None)`: declined).
    #[test]
    fn the_answer_to_a_deflate_offer_is_checked() {
        use crate::ws::deflate::negotiation::{ParamError, ParamName};
        let negotiated = |server_nct, client_nct, server_bits, client_bits| Negotiated {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        type Verdict = Result<Option<Negotiated>, ResponseError>;
        let cases: Vec<(&[&str], Verdict)> = vec![
            (&[], Ok(None)),
            (&[""], Ok(None)),
            (
                &["permessage-deflate"],
                Ok(Some(negotiated(false, false, 15, 15))),
            ),
            (
                &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
                Ok(Some(negotiated(true, true, 15, 15))),
            ),
            (
                &["permessage-deflate; server_max_window_bits=10; client_max_window_bits=8"],
                Ok(Some(negotiated(false, false, 10, 8))),
            ),
            (
                &["x-webkit-deflate-frame"],
                Err(ResponseError::NotOffered("x-webkit-deflate-frame".into())),
            ),
            (
                &["permessage-deflate", "permessage-deflate"],
                Err(ResponseError::Repeated),
            ),
            (
                &["permessage-deflate, permessage-deflate"],
                Err(ResponseError::Repeated),
            ),
            (
                &["permessage-deflate; server_max_window_bits=99"],
                Err(ResponseError::Invalid(ParamError::BadWindowBits {
                    param: ParamName::ServerMaxWindowBits,
                    value: "99".into(),
                })),
            ),
            (
                &["permessage-deflate; client_max_window_bits"],
                Err(ResponseError::Invalid(ParamError::MissingValue(
                    ParamName::ClientMaxWindowBits,
                ))),
            ),
            (
                &["permessage-deflate; mystery"],
                Err(ResponseError::Invalid(ParamError::Unknown(
                    "mystery".into(),
                ))),
            ),
        ];
        let client = ClientHandshake::with_deflate("h:1", "/ws", DeflateOffer::client_default());
        for (extensions, expected) in cases {
            let response = answer_with_extensions(&client, extensions);
            let verdict = client
                .read_response(&response)
                .map(|u| u.map(|u| u.deflate));
            let expected = expected.map(Some).map_err(ClientHandshakeError::Extensions);
            assert_eq!(verdict, expected, "{extensions:?}");
        }
        // A header that breaks the grammar fails the connection too.
        let response = answer_with_extensions(&client, &["permessage-deflate;;"]);
        assert!(
            matches!(
                client.read_response(&response),
                Err(ClientHandshakeError::Extensions(ResponseError::Malformed(
                    _
                )))
            ),
            "{:?}",
            client.read_response(&response)
        );
    }

    #[test]
    fn without_an_offer_any_extension_fails_the_connection() {
        let client = ClientHandshake::new("h:1", "/ws");
        for extensions in [&["permessage-deflate"][..], &["", "foo; bar=1"]] {
            let response = answer_with_extensions(&client, extensions);
            let Err(error) = client.read_response(&response) else {
                panic!("{extensions:?} accepted")
            };
            let name = extensions.last().unwrap().split(';').next().unwrap();
            assert_eq!(
                error,
                ClientHandshakeError::Extensions(ResponseError::NotOffered(name.into()))
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "the server's Sec-WebSocket-Extensions is not acceptable: the server \
                     accepted the extension {name}, which we did not offer"
                )
            );
        }
        // An empty header names no extension.
        let response = answer_with_extensions(&client, &[""]);
        assert!(matches!(client.read_response(&response), Ok(Some(u)) if u.deflate.is_none()));
    }

    #[test]
    fn the_client_accepts_what_our_server_answers_and_both_agree() {
        use crate::ws::deflate::negotiation::{DeflateConfig, Negotiation, negotiate};
        let client = ClientHandshake::with_deflate("h:1", "/ws", DeflateOffer::client_default());
        let (request, _) = parse_request(client.request(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        let Ok(RequestKind::Upgrade(upgrade)) = classify(&request) else {
            panic!("refused")
        };
        let offers = request.headers_named("sec-websocket-extensions");
        let Ok(Negotiation::Accept(accepted)) = negotiate(offers, &DeflateConfig::default()) else {
            panic!("declined")
        };
        let response = upgrade.response_with_extensions(Some(&accepted.response_header));
        let upgraded = client.read_response(&response).unwrap().unwrap();
        assert_eq!(upgraded.head_len, response.len());
        assert_eq!(upgraded.deflate, Some(accepted.negotiated));
    }
}
