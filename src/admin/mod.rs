//! The admin port's answers, sans I/O: which request gets what, the bearer token, and
//! the figures in the forms a reader wants them (Prometheus text, JSON).
//!
//! The admin port is a listener of its own (`loopchat serve --admin-addr`), served by
//! the same loop as the clients (see `event_loop/admin.rs`), and never by the
//! application: a client of the public port cannot reach these paths, and a client of
//! the admin port cannot reach the chat. It serves:
//!
//! - `/metrics`: the Prometheus text exposition ([`prometheus`]), written by the
//!   `prometheus-client` crate;
//! - `/stats`: the same figures as one JSON object ([`Snapshot`]);
//! - `/inspect` (and `/`): a live page that shows the loop working, fed by a WebSocket at
//!   `/inspect/ws` that pushes a [`Snapshot`] several times a second.
//!
//! Where a token is set, every request for figures (`/metrics`, `/stats`, `/inspect/ws`)
//! must carry it, as `Authorization: Bearer TOKEN` or as `?token=TOKEN` (a browser cannot
//! set headers on a WebSocket: the page passes on the token of its own address). The
//! page's three files hold no data and are served without it, since a browser fetches a
//! page's script and style without the page's query. A server bound to an address other
//! than loopback must have a token ([`check_exposure`]).

pub mod prometheus;
pub mod snapshot;

pub use snapshot::{HistogramSnapshot, LinkReport, LinkState, Snapshot};

use std::net::SocketAddr;

/// What the admin port was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`.
    Metrics,
    /// `GET /stats`.
    Stats,
    /// A file of the live page.
    Page(PageFile),
    /// The live page's WebSocket, `/inspect/ws` (an upgrade request).
    Feed,
    /// A path the admin port does not serve: 404.
    NotFound,
    /// A method other than GET or HEAD: 405.
    MethodNotAllowed,
    /// A token is required and the request did not carry the right one: 401.
    Unauthorized,
    /// Refused whatever the token: 403, with the reason.
    Forbidden(&'static str),
}

/// The files of the live page, embedded in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFile {
    /// `/inspect` (and `/`).
    Html,
    /// `/inspect.js`.
    Script,
    /// `/inspect.css`.
    Style,
}

impl PageFile {
    /// The file's content type and bytes.
    pub fn content(self) -> (&'static str, &'static str) {
        match self {
            PageFile::Html => (
                "text/html; charset=utf-8",
                include_str!("page/inspect.html"),
            ),
            PageFile::Script => (
                "text/javascript; charset=utf-8",
                include_str!("page/inspect.js"),
            ),
            PageFile::Style => ("text/css; charset=utf-8", include_str!("page/inspect.css")),
        }
    }
}

/// The Content-Security-Policy of the page: its own files and its WebSocket only.
pub const PAGE_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:";

/// What of a request decides its answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdminRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The request target: path and query.
    pub target: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a [u8]>,
    /// The `Host` header, if any.
    pub host: Option<&'a [u8]>,
    /// The `Origin` header, if any (browsers send it with every WebSocket).
    pub origin: Option<&'a [u8]>,
}

/// Decides what a request gets, given the token required, if any.
///
/// Beyond the token, two rules keep web pages the operator visits from reading the
/// port through the operator's browser: without a token, the `Host` must name loopback
/// (`127.0.0.1`, `[::1]`, `localhost`), which defeats DNS rebinding; and the live page's
/// WebSocket must come from a page of this port itself (`Origin` absent, or the same
/// host), since browsers let any page open a WebSocket anywhere.
pub fn route(request: &AdminRequest<'_>, token: Option<&str>) -> Route {
    let target = request.target;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let page = match path {
        "/" | "/inspect" => Some(PageFile::Html),
        "/inspect.js" => Some(PageFile::Script),
        "/inspect.css" => Some(PageFile::Style),
        _ => None,
    };
    if let Some(token) = token.filter(|_| page.is_none()) {
        let bearer = request
            .authorization
            .and_then(|value| {
                value
                    .get(..7)
                    .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
                    .map(|_| &value[7..])
            })
            .is_some_and(|given| same_secret(given, token.as_bytes()));
        let in_query = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("token="))
            .any(|given| same_secret(&form_decode(given), token.as_bytes()));
        if !bearer && !in_query {
            return Route::Unauthorized;
        }
    }
    if token.is_none() && !request.host.is_some_and(names_loopback) {
        return Route::Forbidden(
            "without a token this admin port answers only to Host: 127.0.0.1, [::1] or localhost",
        );
    }
    if request.method != "GET" && request.method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    if let Some(file) = page {
        return Route::Page(file);
    }
    match path {
        "/metrics" => Route::Metrics,
        "/stats" => Route::Stats,
        "/inspect/ws" if !same_origin(request.origin, request.host) => {
            Route::Forbidden("the live page's WebSocket is for the page of this port only")
        }
        "/inspect/ws" => Route::Feed,
        _ => Route::NotFound,
    }
}

/// A query value decoded as a form does it: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> Vec<u8> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

/// Whether a `Host` header names a loopback address (any port).
fn names_loopback(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether an `Origin` is absent (not a browser) or is this port's own page.
fn same_origin(origin: Option<&[u8]>, host: Option<&[u8]>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some(host) = host else {
        return false;
    };
    [b"http://".as_slice(), b"https://"].iter().any(|scheme| {
        origin.len() == scheme.len() + host.len()
            && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
            && origin[scheme.len()..].eq_ignore_ascii_case(host)
    })
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(given: &[u8], wanted: &[u8]) -> bool {
    given.len() == wanted.len()
        && given
            .iter()
            .zip(wanted)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Why an admin port may not be opened as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExposureError {
    /// Bound to an address other than loopback, with no token.
    #[error(
        "the admin port {0} is not on loopback: give it a bearer token (--admin-token or \
         LOOPCHAT_ADMIN_TOKEN), or bind it to 127.0.0.1"
    )]
    NoToken(SocketAddr),
    /// An empty token would let anyone in.
    #[error("the admin token is empty")]
    EmptyToken,
}

/// Refuses an admin port that anyone on the network could read without a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), ExposureError> {
    match token {
        Some("") => Err(ExposureError::EmptyToken),
        Some(_) => Ok(()),
        None if addr.ip().is_loopback() => Ok(()),
        None => Err(ExposureError::NoToken(addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_has_its_route() {
        for (target, wanted) in [
            ("/metrics", Route::Metrics),
            ("/stats", Route::Stats),
            ("/", Route::Page(PageFile::Html)),
            ("/inspect?x=1", Route::Page(PageFile::Html)),
            ("/inspect.js", Route::Page(PageFile::Script)),
            ("/inspect.css", Route::Page(PageFile::Style)),
            ("/inspect/ws", Route::Feed),
            ("/chat", Route::NotFound),
        ] {
            assert_eq!(route(&get(target), None), wanted, "{target}");
        }
        let post = AdminRequest {
            method: "POST",
            ..get("/metrics")
        };
        assert_eq!(route(&post, None), Route::MethodNotAllowed);
    }

    /// A GET of `target` from a command-line tool on this machine.
    fn get(target: &str) -> AdminRequest<'_> {
        AdminRequest {
            method: "GET",
            target,
            host: Some(b"127.0.0.1:9090"),
            ..AdminRequest::default()
        }
    }

    #[test]
    fn a_token_is_required_in_the_header_or_the_query() {
        let token = Some("s3cret");
        let with = |authorization: &'static [u8]| AdminRequest {
            authorization: Some(authorization),
            ..get("/metrics")
        };
        assert_eq!(route(&get("/metrics"), token), Route::Unauthorized);
        assert_eq!(route(&with(b"Bearer wrong!"), token), Route::Unauthorized);
        assert_eq!(route(&with(b"Bearer s3cret"), token), Route::Metrics);
        assert_eq!(
            route(&with(b"bearer s3cret"), token),
            Route::Metrics,
            "any case"
        );
        assert_eq!(route(&get("/inspect/ws?token=s3cret"), token), Route::Feed);
        assert_eq!(
            route(&get("/inspect/ws?token=s3cre"), token),
            Route::Unauthorized
        );
        // Unauthorized before anything else is said about the request.
        let post = AdminRequest {
            method: "POST",
            ..get("/nowhere")
        };
        assert_eq!(route(&post, token), Route::Unauthorized);
        // The page's files hold no data: a browser fetches them without the query.
        assert_eq!(
            route(&get("/inspect.js"), token),
            Route::Page(PageFile::Script)
        );
        assert_eq!(route(&get("/inspect"), token), Route::Page(PageFile::Html));
        // A token in the query is read as the page writes it: percent-encoded.
        let awkward = Some("ab+c/d=%&x");
        assert_eq!(
            route(&get("/stats?token=ab%2Bc%2Fd%3D%25%26x"), awkward),
            Route::Stats
        );
        // With a token, any Host: the operator chose to expose it.
        let remote = AdminRequest {
            host: Some(b"metrics.example:9090"),
            ..get("/stats?token=s3cret")
        };
        assert_eq!(route(&remote, token), Route::Stats);
    }

    #[test]
    fn without_a_token_only_loopback_hosts_and_only_the_page_itself_may_ask() {
        for host in [
            &b"localhost:9090"[..],
            b"127.0.0.1",
            b"[::1]:9090",
            b"LOCALHOST",
        ] {
            let request = AdminRequest {
                host: Some(host),
                ..get("/stats")
            };
            assert_eq!(route(&request, None), Route::Stats);
        }
        for host in [
            None,
            Some(&b"evil.example:9090"[..]),
            Some(b"127.0.0.1.evil.example"),
        ] {
            let request = AdminRequest {
                host,
                ..get("/stats")
            };
            assert!(
                matches!(route(&request, None), Route::Forbidden(_)),
                "{host:?}"
            );
        }
        let from = |origin: &'static [u8]| AdminRequest {
            origin: Some(origin),
            ..get("/inspect/ws")
        };
        assert_eq!(route(&from(b"http://127.0.0.1:9090"), None), Route::Feed);
        assert!(matches!(
            route(&from(b"https://evil.example"), None),
            Route::Forbidden(_)
        ));
        assert!(matches!(
            route(&from(b"http://127.0.0.1:8080"), None),
            Route::Forbidden(_)
        ));
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        let public: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let local6: SocketAddr = "[::1]:9090".parse().unwrap();
        assert_eq!(
            check_exposure(public, None),
            Err(ExposureError::NoToken(public))
        );
        assert_eq!(check_exposure(public, Some("t")), Ok(()));
        assert_eq!(check_exposure(local, None), Ok(()));
        assert_eq!(check_exposure(local6, None), Ok(()));
        assert_eq!(
            check_exposure(local, Some("")),
            Err(ExposureError::EmptyToken)
        );
    }
}
