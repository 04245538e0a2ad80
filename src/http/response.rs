//! Writing an HTTP/1.1 response.

/// A response to write: status, headers, body. `Content-Length` and `Connection` are
/// added when it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields other than `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    /// The body. For a HEAD request it is measured for `Content-Length` but not sent.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// Adds a header field.
    pub fn header(&mut self, name: &'static str, value: impl Into<String>) -> &mut Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire. `head_only` leaves out the body (the answer to HEAD);
    /// `keep_alive` says whether the connection stays open afterwards.
    pub fn encode(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
        use std::fmt::Write;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        // A 304 has no body, and RFC 9110 §8.6 lets it carry a Content-Length only equal
        // to the full resource's; 1xx and 204 carry none at all.
        if !matches!(self.status, 100..=199 | 204 | 304) {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        let _ = write!(head, "Connection: {connection}\r\n\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The standard reason phrase for the statuses this server sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_length_and_connection() {
        let mut response = Response::text(404, "nothing here\n");
        response.header("X-Test", "1");
        let bytes = response.encode(false, false);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Test: 1\r\n\
             Content-Length: 13\r\nConnection: close\r\n\r\nnothing here\n"
        );
        let head = String::from_utf8(response.encode(true, true)).unwrap();
        assert!(head.ends_with("Content-Length: 13\r\nConnection: keep-alive\r\n\r\n"));
        let not_modified = String::from_utf8(Response::text(304, "").encode(false, true)).unwrap();
        assert!(!not_modified.contains("Content-Length"), "{not_modified}");
    }
}
