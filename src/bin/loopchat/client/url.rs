//! `ws://host:port/path` and `wss://host:port/path` URLs, parsed just far enough to
//! connect (with TLS for `wss`, see [`super::tls`]) and to write the handshake's request
//! line and `Host` header.
//!
//! RFC 6455 §3 defines the grammar. Fragments are not allowed (§3), nor are user names (no
//! WebSocket server asks for them in the URL); the query, if any, stays part of the path.

use thiserror::Error;

/// The default port of `ws://` URLs.
pub const DEFAULT_PORT: u16 = 80;
/// The default port of `wss://` URLs.
pub const DEFAULT_TLS_PORT: u16 = 443;

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: the connection speaks TLS, and the server's certificate must name
    /// [`host`](WsUrl::host).
    pub tls: bool,
    /// The host, without the brackets of an IPv6 literal: what to resolve.
    pub host: String,
    /// The port: [`DEFAULT_PORT`] (or [`DEFAULT_TLS_PORT`]) if the URL names none.
    pub port: u16,
    /// The path and query for the request line, starting with `/`.
    pub path: String,
    /// The value of the `Host` header: the URL's authority as written.
    pub authority: String,
}

/// Why a string is not a usable WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    /// Some other scheme, such as `http://`.
    #[error("unsupported URL scheme {0:?}: the URL must start with ws:// or wss://")]
    UnsupportedScheme(String),
    /// No `scheme://` at all.
    #[error("{0:?} is not a URL: expected ws://HOST[:PORT][/PATH] or wss://...")]
    NoScheme(String),
    /// Nothing between `ws://` and the path.
    #[error("the URL names no host")]
    MissingHost,
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port {0:?}: expected a number from 1 to 65535")]
    InvalidPort(String),
    /// `user@host`.
    #[error("user names in the URL are not supported")]
    UserInfo,
    /// `#fragment`, which RFC 6455 §3 forbids in WebSocket URLs.
    #[error("WebSocket URLs may not have a #fragment")]
    Fragment,
    /// Whitespace or control characters, which cannot go in a request line.
    #[error("the URL contains whitespace or control characters")]
    InvalidCharacter,
    /// An IPv6 literal without its closing `]`, or with something other than a port
    /// after it.
    #[error("malformed IPv6 address in the URL")]
    MalformedIpv6,
}

impl WsUrl {
    /// Parses a `ws://HOST[:PORT][/PATH][?QUERY]` URL, or the same with `wss://`. The
    /// scheme is case-insensitive.
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        let url = url.trim();
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::InvalidCharacter);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::NoScheme(url.to_owned()));
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(UrlError::UnsupportedScheme(scheme.to_owned())),
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let path = match path {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let port = match port {
            None if tls => DEFAULT_TLS_PORT,
            None => DEFAULT_PORT,
            Some(digits) => digits
                .parse::<u16>()
                .ok()
                .filter(|&port| port != 0 && digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| UrlError::InvalidPort(digits.to_owned()))?,
        };
        Ok(WsUrl {
            tls,
            host: host.to_owned(),
            port,
            path,
            authority: authority.to_owned(),
        })
    }
}

/// Splits `host[:port]` or `[ipv6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(UrlError::MalformedIpv6)?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(UrlError::MalformedIpv6),
            },
        };
    }
    match authority.split_once(':') {
        Some((_, port)) if port.contains(':') => Err(UrlError::MalformedIpv6),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, path: &str, authority: &str) -> WsUrl {
        WsUrl {
            tls: false,
            host: host.into(),
            port,
            path: path.into(),
            authority: authority.into(),
        }
    }

    #[test]
    fn valid_urls() {
        let cases = [
            (
                "ws://127.0.0.1:8080/ws",
                url("127.0.0.1", 8080, "/ws", "127.0.0.1:8080"),
            ),
            (
                "ws://example.com",
                url("example.com", 80, "/", "example.com"),
            ),
            (
                "WS://example.com/",
                url("example.com", 80, "/", "example.com"),
            ),
            (
                "ws://example.com:9000/chat?room=rust",
                url("example.com", 9000, "/chat?room=rust", "example.com:9000"),
            ),
            (
                "ws://example.com?x=1",
                url("example.com", 80, "/?x=1", "example.com"),
            ),
            ("ws://[::1]:8080/ws", url("::1", 8080, "/ws", "[::1]:8080")),
            ("ws://[::1]", url("::1", 80, "/", "[::1]")),
            (
                " ws://localhost:1/ ",
                url("localhost", 1, "/", "localhost:1"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(WsUrl::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn wss_urls_speak_tls_on_port_443_by_default() {
        let secure = |host, port, path, authority| WsUrl {
            tls: true,
            ..url(host, port, path, authority)
        };
        let cases = [
            (
                "wss://example.com/ws",
                secure("example.com", 443, "/ws", "example.com"),
            ),
            (
                "WSS://127.0.0.1:8443/chat",
                secure("127.0.0.1", 8443, "/chat", "127.0.0.1:8443"),
            ),
            ("wss://[::1]", secure("::1", 443, "/", "[::1]")),
        ];
        for (text, expected) in cases {
            assert_eq!(WsUrl::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn invalid_urls() {
        let cases = [
            (
                "http://example.com/",
                UrlError::UnsupportedScheme("http".into()),
            ),
            (
                "127.0.0.1:8080",
                UrlError::NoScheme("127.0.0.1:8080".into()),
            ),
            ("ws:///ws", UrlError::MissingHost),
            ("ws://:8080/ws", UrlError::MissingHost),
            ("ws://host:/ws", UrlError::InvalidPort("".into())),
            ("ws://host:0/ws", UrlError::InvalidPort("0".into())),
            ("ws://host:65536/ws", UrlError::InvalidPort("65536".into())),
            ("ws://host:+80/ws", UrlError::InvalidPort("+80".into())),
            ("ws://host:http/ws", UrlError::InvalidPort("http".into())),
            ("ws://user@host/ws", UrlError::UserInfo),
            ("ws://host/ws#top", UrlError::Fragment),
            ("ws://host/a b", UrlError::InvalidCharacter),
            ("ws://host/a\r\nX: y", UrlError::InvalidCharacter),
            ("ws://[::1/ws", UrlError::MalformedIpv6),
            ("ws://[::1]x/ws", UrlError::MalformedIpv6),
            ("ws://::1:80/ws", UrlError::MalformedIpv6),
        ];
        for (text, expected) in cases {
            assert_eq!(WsUrl::parse(text), Err(expected), "{text}");
        }
    }
}
