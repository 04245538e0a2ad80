//! Reading an HTTP/1.1 request head (RFC 9112 §2–§5), with `httparse` doing the parsing.
//!
//! The head is read into a bounded buffer; `parse_request` is called each time a line is
//! completed and says "incomplete" until the blank line that ends the head has arrived.
//! Everything after the head (the first WebSocket frames, if the client did not wait for
//! the 101) is left for the caller.

use super::error::HttpError;

/// Bounds on a request head. Past either, the request is refused with 431.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// The largest head in bytes, request line and headers included. Default 8 KiB, as
    /// in nginx and Node; browsers send well under 2 KiB for a WebSocket upgrade.
    pub max_head_bytes: usize,
    /// The most header fields. Default 64.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> HeadLimits {
        HeadLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
        }
    }
}

/// A parsed request head. Owns its strings: a head is parsed once per connection, and
/// owning them frees the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, such as `GET`, case-sensitive as the RFC says.
    pub method: String,
    /// The request target as sent, such as `/ws?room=lobby`.
    pub target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// The header fields in the order sent; names keep their case, compare them with
    /// [`Request::header`].
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// The value of the one header field called `name` (any case). `None` if absent;
    /// if it was sent more than once, the first.
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }

    /// Every value of the header fields called `name` (any case), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether any `name` field holds `token` in its comma-separated list, compared
    /// without case (`Connection: keep-alive, Upgrade` holds `upgrade`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .flat_map(|value| value.split(|&b| b == b','))
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The path of the target, without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// Whether the request says a body follows (`Content-Length` above zero, or any
    /// `Transfer-Encoding`). This server reads no request bodies, so such a request is
    /// answered and the connection closed rather than kept alive.
    pub fn has_body(&self) -> bool {
        let length = self.header("content-length").map(|v| v.trim_ascii());
        self.header("transfer-encoding").is_some() || length.is_some_and(|v| v != b"0")
    }

    /// Whether the client wants the connection kept open after the response: the
    /// default in HTTP/1.1 unless it says `Connection: close`, and the opposite in 1.0.
    pub fn wants_keep_alive(&self) -> bool {
        match self.minor_version {
            0 => self.has_token("connection", "keep-alive"),
            _ => !self.has_token("connection", "close"),
        }
    }
}

/// Parses the request head at the start of `buf`. Returns the request and the head's
/// length, or `Ok(None)` while the head is incomplete and within the limits.
pub fn parse_request(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(Request, usize)>, HttpError> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut fields);
    let status = match parsed.parse(buf) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders(limits.max_headers));
        }
        Err(error) => return Err(HttpError::Malformed(error)),
    };
    let httparse::Status::Complete(head_len) = status else {
        if buf.len() >= limits.max_head_bytes {
            return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
        }
        return Ok(None);
    };
    if head_len > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
    }
    // httparse fills method, path and version whenever it returns Complete.
    let (Some(method), Some(target), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Err(HttpError::Malformed(httparse::Error::Token));
    };
    let request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        minor_version,
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_owned()))
            .collect(),
    };
    Ok(Some((request, head_len)))
}

/// Whether a head that has grown from `old_len` to `buf.len()` bytes may now be complete:
/// true if the new bytes finish a line. Parsing only then keeps a client that sends its
/// head one byte at a time from costing a parse per byte.
pub fn completes_a_line(buf: &[u8], old_len: usize) -> bool {
    buf[old_len.min(buf.len())..].contains(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn parses_a_whole_head_and_reports_its_length() {
        let mut buf = UPGRADE.to_vec();
        buf.extend_from_slice(&[0x81, 0x80]); // the first frame, right behind the head
        let (request, len) = parse_request(&buf, &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(len, UPGRADE.len());
        assert_eq!(
            (
                request.method.as_str(),
                request.target.as_str(),
                request.minor_version
            ),
            ("GET", "/chat?x=1", 1)
        );
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.header("HOST"), Some(&b"example.com"[..]));
        assert!(request.has_token("connection", "upgrade"));
        assert!(!request.has_token("connection", "close"));
        assert!(request.wants_keep_alive());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for prefix in 0..UPGRADE.len() {
            assert_eq!(
                parse_request(&UPGRADE[..prefix], &HeadLimits::default()),
                Ok(None),
                "prefix {prefix}"
            );
        }
    }

    #[test]
    fn limits() {
        let limits = HeadLimits {
            max_head_bytes: 64,
            max_headers: 2,
        };
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 64]].concat();
        assert_eq!(
            parse_request(&long, &limits),
            Err(HttpError::HeadTooLarge(64))
        );
        let many = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            parse_request(many, &limits),
            Err(HttpError::TooManyHeaders(2))
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for garbage in [
            &b"\x16\x03\x01\x02\x00\x01\x00"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET\x00/ HTTP/1.1\r\n",
        ] {
            assert!(
                matches!(
                    parse_request(garbage, &HeadLimits::default()),
                    Err(HttpError::Malformed(_))
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn line_completion() {
        assert!(!completes_a_line(b"GET / HT", 3));
        assert!(completes_a_line(b"GET / HTTP/1.1\r\n", 14));
        assert!(!completes_a_line(b"GET / HTTP/1.1\r\nHo", 16));
    }
}
