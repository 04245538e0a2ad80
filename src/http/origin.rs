//! Which web pages may open a WebSocket to this server.
//!
//! A browser lets any page open a WebSocket to any server, and sends the page's origin
//! in the `Origin` header; cookies go along too. Without a check, a page on another site
//! could talk to the chat as the visitor (cross-site WebSocket hijacking). Programs that
//! are not browsers send no `Origin`, and there is nothing to protect them from, so a
//! request without one is always allowed.
//!
//! The default allows any origin, so that `new WebSocket("ws://127.0.0.1:8080")` works
//! from a browser console on any page, as a developer expects; a deployment names its
//! origins (`--allowed-origin`), and then pages from anywhere else get 403.

use super::request::Request;

/// The origins allowed to open a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// Any page. The default.
    #[default]
    Any,
    /// Pages served by this server: the `Origin` names the host (and port) the request
    /// was sent to, its `Host`.
    SameHost,
    /// Pages served by this server, and these origins, such as
    /// `https://chat.example.com` (compared without case, and without a trailing `/`).
    List(Vec<String>),
}

impl OriginPolicy {
    /// The policy for a list of allowed origins from the command line: none, or `*`
    /// anywhere, means any; `self` alone means the same host only; otherwise the same
    /// host and those.
    pub fn from_list(origins: &[String]) -> OriginPolicy {
        let listed: Vec<String> = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| o != "self")
            .collect();
        if origins.is_empty() || listed.iter().any(|o| o == "*") {
            OriginPolicy::Any
        } else if listed.is_empty() {
            OriginPolicy::SameHost
        } else {
            OriginPolicy::List(listed)
        }
    }

    /// Checks the request's `Origin`; on refusal, says why (for a 403).
    pub fn check(&self, request: &Request) -> Result<(), String> {
        let mut origins = request.headers_named("origin");
        let Some(origin) = origins.next() else {
            return Ok(()); // not a browser
        };
        if origins.next().is_some() {
            return Err("more than one Origin header".into());
        }
        let origin = String::from_utf8_lossy(origin.trim_ascii()).to_ascii_lowercase();
        let allowed = match self {
            OriginPolicy::Any => true,
            OriginPolicy::SameHost => same_host(&origin, request),
            OriginPolicy::List(list) => same_host(&origin, request) || list.contains(&origin),
        };
        if allowed {
            Ok(())
        } else {
            Err(format!("origin {origin} is not allowed here"))
        }
    }
}

/// Whether `origin` (lowercased, like `http://host:port`) names the request's `Host`.
fn same_host(origin: &str, request: &Request) -> bool {
    let Some(host) = request.header("host") else {
        return false;
    };
    let host = String::from_utf8_lossy(host.trim_ascii()).to_ascii_lowercase();
    let (authority, default_port) = if let Some(rest) = origin.strip_prefix("http://") {
        (rest, ":80")
    } else if let Some(rest) = origin.strip_prefix("https://") {
        (rest, ":443")
    } else {
        return false; // `null` (a file, a sandboxed frame) and anything odd
    };
    let without_port = |s: &'_ str| s.strip_suffix(default_port).unwrap_or(s).to_owned();
    without_port(authority) == without_port(&host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, origins: &[&str]) -> Request {
        let mut headers = vec![("Host".to_owned(), host.as_bytes().to_vec())];
        for origin in origins {
            headers.push(("Origin".to_owned(), origin.as_bytes().to_vec()));
        }
        Request {
            method: "GET".into(),
            target: "/ws".into(),
            minor_version: 1,
            headers,
        }
    }

    #[test]
    fn same_host_allows_the_servers_own_pages_and_non_browsers() {
        let policy = OriginPolicy::SameHost;
        let host = "127.0.0.1:8080";
        assert!(policy.check(&request(host, &[])).is_ok());
        assert!(
            policy
                .check(&request(host, &["http://127.0.0.1:8080"]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request(host, &["HTTP://127.0.0.1:8080"]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request("chat.example", &["https://chat.example:443"]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request("chat.example:80", &["http://chat.example"]))
                .is_ok()
        );
        for refused in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "null",
            "http://127.0.0.1:8080.evil.example",
        ] {
            let answer = policy.check(&request(host, &[refused]));
            assert!(answer.is_err(), "{refused} was allowed");
        }
        assert!(
            policy
                .check(&request(
                    host,
                    &["http://127.0.0.1:8080", "http://127.0.0.1:8080"]
                ))
                .is_err()
        );
    }

    #[test]
    fn a_list_adds_origins_and_a_star_allows_any() {
        let policy = OriginPolicy::from_list(&["https://Chat.Example.com/".into()]);
        assert!(
            policy
                .check(&request("10.0.0.1:8080", &["https://chat.example.com"]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request("10.0.0.1:8080", &["http://10.0.0.1:8080"]))
                .is_ok()
        );
        assert!(
            policy
                .check(&request("10.0.0.1:8080", &["https://other.example"]))
                .is_err()
        );
        let any = OriginPolicy::from_list(&["https://a.example".into(), "*".into()]);
        assert_eq!(any, OriginPolicy::Any);
        assert!(any.check(&request("x", &["null"])).is_ok());
        assert_eq!(OriginPolicy::from_list(&[]), OriginPolicy::Any);
        assert_eq!(
            OriginPolicy::from_list(&["self".into()]),
            OriginPolicy::SameHost
        );
    }
}
