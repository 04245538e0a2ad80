//! Where a Redis server is and how to log in to it:
//! `redis://[[user]:password@]host[:port][/db]`.
//!
//! The password is the one secret loopchat holds, and URLs end up in logs and error
//! messages, so neither [`Display`](fmt::Display) nor [`Debug`](fmt::Debug) ever shows it:
//! both print `***` in its place.

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

/// The port a URL without one means: Redis's own default.
pub const DEFAULT_PORT: u16 = 6379;

/// A parsed `redis://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// A host name or an IP address (an IPv6 address without its brackets).
    pub host: String,
    /// The TCP port; 6379 ([`DEFAULT_PORT`]) when the URL names none.
    pub port: u16,
    /// The logical database to `SELECT`; 0, which needs no `SELECT`, when the URL names
    /// none.
    pub db: u32,
    /// The ACL user to log in as. `None` with a password means the user `default`, as in
    /// Redis's one-argument `AUTH password`.
    pub username: Option<String>,
    /// The password. Never printed: see the module documentation.
    pub password: Option<String>,
}

/// Why a string is not a `redis://` URL. None of the messages repeats the URL's user
/// information, so they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `redis://`: `rediss://` (TLS) and `unix://` are not supported.
    #[error("unsupported URL scheme {0:?}: expected redis://")]
    Scheme(String),
    /// `redis://` with nothing, or only user information, after it.
    #[error("the URL names no host")]
    MissingHost,
    /// An IPv6 address opened with `[` but never closed.
    #[error("unclosed '[' in the URL's host")]
    UnclosedBracket,
    /// The port is not a number from 1 to 65535.
    #[error("bad port {0:?}: expected a number from 1 to 65535")]
    Port(String),
    /// The path is not a database number.
    #[error("bad database {0:?}: expected /0, /1, ...")]
    Db(String),
    /// The user or the password is not UTF-8 once its `%XX` escapes are decoded.
    #[error("the URL's user or password is not UTF-8 after percent-decoding")]
    NotUtf8,
}

impl RedisUrl {
    /// Parses `redis://[[user]:password@]host[:port][/db]`. The user and the password may
    /// be percent-encoded (`%40` for `@`, `%3A` for `:`); a query string or fragment is
    /// refused, as a database path that is not a number.
    pub fn parse(url: &str) -> Result<RedisUrl, UrlError> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("redis") => rest,
            Some((scheme, _)) => return Err(UrlError::Scheme(scheme.to_owned())),
            None => return Err(UrlError::Scheme(String::new())),
        };
        // The user information ends at the last '@', so a password with an unencoded
        // '@' or '/' (RFC 3986 wants them percent-encoded) still parses.
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority)?;
        let db = match path {
            "" => 0,
            db => db
                .parse::<u32>()
                .ok()
                .filter(|_| db.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| UrlError::Db(db.to_owned()))?,
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (info, None),
                };
                (
                    Some(decode(user)?).filter(|user| !user.is_empty()),
                    password.map(decode).transpose()?,
                )
            }
        };
        Ok(RedisUrl {
            host,
            port,
            db,
            username,
            password,
        })
    }

    /// This URL, with the password from the environment variable `var` if the URL has
    /// none and the variable is set (to something non-empty, in UTF-8). Keeps secrets out
    /// of command lines, where `ps` shows them: `--redis redis://cache:6379` and
    /// `REDIS_PASSWORD=...`.
    pub fn with_password_from_env(self, var: &str) -> RedisUrl {
        self.with_fallback_password(std::env::var(var).ok())
    }

    /// The testable half of [`RedisUrl::with_password_from_env`].
    fn with_fallback_password(mut self, password: Option<String>) -> RedisUrl {
        if self.password.is_none() {
            self.password = password.filter(|password| !password.is_empty());
        }
        self
    }

    /// The user that `HELLO ... AUTH` logs in as: the URL's, or `default`.
    pub fn auth_user(&self) -> &str {
        self.username.as_deref().unwrap_or("default")
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let close = bracketed.find(']').ok_or(UrlError::UnclosedBracket)?;
        let after = &bracketed[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(UrlError::Port(after.to_owned())),
        };
        (&bracketed[..close], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| UrlError::Port(port.to_owned()))?,
    };
    Ok((host.to_owned(), port))
}

fn decode(part: &str) -> Result<String, UrlError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| UrlError::NotUtf8)
}

impl FromStr for RedisUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<RedisUrl, UrlError> {
        RedisUrl::parse(url)
    }
}

/// `redis://user:***@host:port/db`: every part but the password, which shows as `***`.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis://")?;
        match (&self.username, &self.password) {
            (None, None) => {}
            (Some(user), None) => write!(f, "{user}@")?,
            (user, Some(_)) => write!(f, "{}:***@", user.as_deref().unwrap_or(""))?,
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        write!(f, ":{}/{}", self.port, self.db)
    }
}

/// As the derived `Debug`, but with `***` for the password.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RedisUrl {
        RedisUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn defaults_are_port_6379_and_db_0() {
        let u = url("redis://cache");
        assert_eq!((u.host.as_str(), u.port, u.db), ("cache", 6379, 0));
        assert_eq!((u.username, u.password), (None, None));
        assert_eq!(url("redis://cache/").db, 0);
    }

    #[test]
    fn every_part() {
        let u = url("redis://ann:s3cret@10.0.0.7:7000/5");
        assert_eq!(u.host, "10.0.0.7");
        assert_eq!(u.port, 7000);
        assert_eq!(u.db, 5);
        assert_eq!(u.username.as_deref(), Some("ann"));
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert_eq!(u.auth_user(), "ann");
    }

    #[test]
    fn a_password_without_a_user_logs_in_as_default() {
        let u = url("redis://:pw@h:1");
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.auth_user(), "default");
    }

    #[test]
    fn a_user_without_a_password() {
        let u = url("redis://ann@h");
        assert_eq!(u.username.as_deref(), Some("ann"));
        assert_eq!(u.password, None);
        assert_eq!(u.to_string(), "redis://ann@h:6379/0");
    }

    #[test]
    fn user_and_password_are_percent_decoded() {
        let u = url("redis://us%3Aer:p%40ss%2Fw%3Ard@h");
        assert_eq!(u.username.as_deref(), Some("us:er"));
        assert_eq!(u.password.as_deref(), Some("p@ss/w:rd"));
        // An unencoded '@' in the password still works: the host follows the last one.
        assert_eq!(url("redis://:a@b@h").password.as_deref(), Some("a@b"));
        assert_eq!(
            RedisUrl::parse("redis://:%ff@h"),
            Err(UrlError::NotUtf8),
            "invalid UTF-8"
        );
    }

    #[test]
    fn ipv6_hosts_in_brackets() {
        let u = url("redis://[::1]:6380/2");
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 6380, 2));
        assert_eq!(url("redis://[::1]").port, 6379);
        assert_eq!(u.to_string(), "redis://[::1]:6380/2");
        assert_eq!(
            RedisUrl::parse("redis://[::1"),
            Err(UrlError::UnclosedBracket)
        );
        assert_eq!(
            RedisUrl::parse("redis://[::1]x"),
            Err(UrlError::Port("x".into()))
        );
    }

    #[test]
    fn the_scheme_must_be_redis() {
        assert_eq!(url("REDIS://h").host, "h");
        for (bad, scheme) in [
            ("rediss://h", "rediss"),
            ("http://h", "http"),
            ("unix:///tmp/r.sock", "unix"),
            ("h:6379", ""),
        ] {
            assert_eq!(RedisUrl::parse(bad), Err(UrlError::Scheme(scheme.into())));
        }
    }

    #[test]
    fn bad_ports_hosts_and_databases() {
        for (bad, error) in [
            ("redis://h:0", UrlError::Port("0".into())),
            ("redis://h:65536", UrlError::Port("65536".into())),
            ("redis://h:+1", UrlError::Port("+1".into())),
            ("redis://h:", UrlError::Port("".into())),
            ("redis://h:x", UrlError::Port("x".into())),
            ("redis://", UrlError::MissingHost),
            ("redis://:pw@", UrlError::MissingHost),
            ("redis://:6379", UrlError::MissingHost),
            ("redis://h/x", UrlError::Db("x".into())),
            ("redis://h/-1", UrlError::Db("-1".into())),
            ("redis://h/+1", UrlError::Db("+1".into())),
            ("redis://h/1/2", UrlError::Db("1/2".into())),
            ("redis://h/0?timeout=1", UrlError::Db("0?timeout=1".into())),
            ("redis://h/99999999999", UrlError::Db("99999999999".into())),
        ] {
            assert_eq!(RedisUrl::parse(bad), Err(error.clone()), "{bad}");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn errors_never_repeat_the_password() {
        for bad in [
            "redis://u:hunter2@h:x",
            "redis://u:hunter2@h/x",
            "redis://u:hunter2@",
        ] {
            let error = RedisUrl::parse(bad).unwrap_err();
            assert!(!format!("{error} {error:?}").contains("hunter2"), "{bad}");
        }
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let u = url("redis://ann:hunter2@h:7000/3");
        assert_eq!(u.to_string(), "redis://ann:***@h:7000/3");
        let debug = format!("{u:?} {u:#?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        assert_eq!(
            url("redis://:hunter2@h").to_string(),
            "redis://:***@h:6379/0"
        );
        assert_eq!(url("redis://h").to_string(), "redis://h:6379/0");
    }

    #[test]
    fn the_environment_fills_in_only_a_missing_password() {
        let from_env = url("redis://h").with_fallback_password(Some("envpw".into()));
        assert_eq!(from_env.password.as_deref(), Some("envpw"));
        let own = url("redis://:mine@h").with_fallback_password(Some("envpw".into()));
        assert_eq!(own.password.as_deref(), Some("mine"));
        let empty = url("redis://h").with_fallback_password(Some(String::new()));
        assert_eq!(empty.password, None);
        let unset = url("redis://h").with_password_from_env("LOOPCHAT_TEST_UNSET_VARIABLE");
        assert_eq!(unset.password, None);
        // PATH is set wherever cargo runs; reading it shows the variable is really read.
        let path = url("redis://h").with_password_from_env("PATH");
        assert_eq!(path.password, std::env::var("PATH").ok());
    }

    #[test]
    fn display_parses_back_but_for_the_password() {
        let u = url("redis://ann:pw@[fe80::1]:7/1");
        let mut again = url(&u.to_string());
        assert_eq!(again.password.as_deref(), Some("***"));
        again.password = u.password.clone();
        assert_eq!(again, u);
    }
}
