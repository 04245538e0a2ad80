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

pub use snapshot::{HistogramSnapshot, Snapshot};

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

/// Decides what a request gets. `target` is the request target (path and query);
/// `authorization` the `Authorization` header, if any; `token` the one required, if any.
pub fn route(
    method: &str,
    target: &str,
    authorization: Option<&[u8]>,
    token: Option<&str>,
) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let page = match path {
        "/" | "/inspect" => Some(PageFile::Html),
        "/inspect.js" => Some(PageFile::Script),
        "/inspect.css" => Some(PageFile::Style),
        _ => None,
    };
    if let Some(token) = token.filter(|_| page.is_none()) {
        let bearer = authorization
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .is_some_and(|given| same_secret(given, token.as_bytes()));
        let in_query = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("token="))
            .any(|given| same_secret(given.as_bytes(), token.as_bytes()));
        if !bearer && !in_query {
            return Route::Unauthorized;
        }
    }
    if method != "GET" && method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    if let Some(file) = page {
        return Route::Page(file);
    }
    match path {
        "/metrics" => Route::Metrics,
        "/stats" => Route::Stats,
        "/inspect/ws" => Route::Feed,
        _ => Route::NotFound,
    }
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
            assert_eq!(route("GET", target, None, None), wanted, "{target}");
        }
        assert_eq!(
            route("POST", "/metrics", None, None),
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn a_token_is_required_in_the_header_or_the_query() {
        let token = Some("s3cret");
        assert_eq!(route("GET", "/metrics", None, token), Route::Unauthorized);
        assert_eq!(
            route("GET", "/metrics", Some(b"Bearer wrong!"), token),
            Route::Unauthorized
        );
        assert_eq!(
            route("GET", "/metrics", Some(b"Bearer s3cret"), token),
            Route::Metrics
        );
        assert_eq!(
            route("GET", "/inspect/ws?token=s3cret", None, token),
            Route::Feed
        );
        assert_eq!(
            route("GET", "/inspect/ws?token=s3cre", None, token),
            Route::Unauthorized
        );
        // Unauthorized before anything else is said about the request.
        assert_eq!(route("POST", "/nowhere", None, token), Route::Unauthorized);
        // The page's files hold no data: a browser fetches them without the query.
        assert_eq!(
            route("GET", "/inspect.js", None, token),
            Route::Page(PageFile::Script)
        );
        assert_eq!(
            route("GET", "/inspect", None, token),
            Route::Page(PageFile::Html)
        );
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
