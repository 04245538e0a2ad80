//! `--server-stats URL`: a loopchat server's own counters over the measured window, read
//! from its admin port's `/stats` (`loopchat serve --admin-addr`) just before the window
//! opens and just after it closes, beside the CPU time read from `/proc` at the same
//! moments. Their differences say what the loop did for the window's deliveries: how
//! many turns and writes, and so how many frames each write carried, which is what
//! decides a broadcast's CPU per delivery (docs/REPORT.md, "Corking").
//!
//! A plain blocking HTTP/1.1 GET with `Connection: close`, twice a run, at the window's
//! edges: it costs the generator a millisecond where nothing is measured yet or any
//! more. A token, if the admin port wants one, goes in the URL (`?token=...`).

use super::report::ServerCounters;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a read of `/stats` may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The server's totals at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    turns: u64,
    events: u64,
    deliveries: u64,
    writes: u64,
    bytes_out: u64,
}

/// Reads the totals from `url` (`http://HOST:PORT/stats[?token=...]`).
pub fn read(url: &str) -> Result<Totals, String> {
    totals(&fetch(url)?)
}

/// The differences between two readings.
pub fn window(before: Totals, after: Totals) -> ServerCounters {
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let deliveries = d(after.deliveries, before.deliveries);
    let writes = d(after.writes, before.writes);
    let turns = d(after.turns, before.turns);
    ServerCounters {
        turns,
        events: d(after.events, before.events),
        deliveries,
        writes,
        bytes_out: d(after.bytes_out, before.bytes_out),
        frames_per_write: (writes > 0).then(|| deliveries as f64 / writes as f64),
        deliveries_per_turn: (turns > 0).then(|| deliveries as f64 / turns as f64),
    }
}

fn totals(stats: &Value) -> Result<Totals, String> {
    let field = |name: &str| {
        stats
            .get("totals")
            .and_then(|t| t.get(name))
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("/stats has no totals.{name}"))
    };
    Ok(Totals {
        turns: field("turns")?,
        events: field("events")?,
        deliveries: field("deliveries")?,
        writes: field("writes")?,
        bytes_out: field("bytes_out")?,
    })
}

/// GETs `url` and parses its body as JSON.
fn fetch(url: &str) -> Result<Value, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{url}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("{url}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("{url}: {e}"))?;
    body_json(&response).map_err(|e| format!("{url}: {e}"))
}

/// The JSON body of a whole `200 OK` response.
fn body_json(response: &[u8]) -> Result<Value, String> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete response head")?;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {status:?}"));
    }
    serde_json::from_slice(&response[head_end + 4..]).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_difference_of_two_readings() {
        let before = Totals {
            turns: 10,
            events: 20,
            deliveries: 1_000,
            writes: 100,
            bytes_out: 66_000,
        };
        let after = Totals {
            turns: 110,
            events: 220,
            deliveries: 61_000,
            writes: 1_100,
            bytes_out: 4_026_000,
        };
        let w = window(before, after);
        assert_eq!((w.turns, w.deliveries, w.writes), (100, 60_000, 1_000));
        assert_eq!(w.frames_per_write, Some(60.0));
        assert_eq!(w.deliveries_per_turn, Some(600.0));
        let none = window(before, before);
        assert_eq!(
            (none.frames_per_write, none.deliveries_per_turn),
            (None, None)
        );
    }

    #[test]
    fn a_response_is_read_or_refused_with_its_reason() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"totals\":{\"turns\":1,\"events\":2,\"deliveries\":3,\"writes\":4,\"bytes_out\":5}}";
        let t = totals(&body_json(ok).unwrap()).unwrap();
        assert_eq!((t.turns, t.writes, t.bytes_out), (1, 4, 5));
        let refused = b"HTTP/1.1 403 Forbidden\r\n\r\nno";
        assert!(body_json(refused).unwrap_err().contains("403"));
        assert!(body_json(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(totals(&serde_json::json!({"totals": {}})).is_err());
        assert!(fetch("https://x/stats").is_err());
    }
}
