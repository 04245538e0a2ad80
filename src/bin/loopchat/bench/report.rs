//! What a run found, for people (a table) and for scripts (one JSON object), and the
//! progress line in between.
//!
//! The JSON field names are an interface: `benches/compare.sh` reads them. Every field is
//! always present; one that does not apply to the scenario is `null`.

use super::stats::Latency;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The result of one scenario (or, in `points`, of each step of a sweep).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `broadcast`, `echo`, `connections` or `sweep`.
    pub scenario: String,
    /// `--label`, to tell runs apart (the server's name, say).
    pub label: Option<String>,
    /// The server's URL; with several servers, their URLs joined by commas, as `--url`
    /// takes them.
    pub url: String,
    /// Each server's URL, in order: client `i` connected to `urls[i mod n]`.
    pub urls: Vec<String>,
    /// Clients asked for.
    pub clients: Option<usize>,
    /// Sending clients (echo: every client).
    pub senders: Option<usize>,
    /// Message size in bytes.
    pub size: Option<usize>,
    /// What the messages say: `filler` or `chat-json` (`--payload`).
    pub payload: Option<String>,
    /// Whether the clients spoke TLS (`wss://` URLs). Then the wire bytes are TLS bytes.
    pub tls: bool,
    /// Whether every client offered permessage-deflate (`--deflate`).
    pub deflate_offered: bool,
    /// Whether the server agreed to it on every connection that opened (a run with
    /// `--deflate` stops with an error otherwise); false when it was not offered.
    pub deflate_negotiated: bool,
    /// Messages in flight per sender, in window mode.
    pub window: Option<u32>,
    /// Messages per second per sender, in rate mode.
    pub rate: Option<f64>,
    /// The measured window, in seconds.
    pub duration_s: Option<f64>,
    /// Messages sent (warm-up and measured window).
    pub sent: Option<u64>,
    /// Unique deliveries to expected recipients by the end of the drain (senders' own
    /// copies not included).
    pub delivered: Option<u64>,
    /// Deliveries expected: each message times the clients it should reach (senders'
    /// own copies not included).
    pub expected: Option<u64>,
    /// Deliveries arriving inside the measured window, per second.
    pub deliveries_per_s: Option<f64>,
    /// Echo: round trips completed inside the measured window, per second.
    pub round_trips_per_s: Option<f64>,
    /// Expected deliveries that never arrived (senders' own copies included when the
    /// server delivers them).
    pub lost: Option<u64>,
    /// Deliveries of a message the client already had.
    pub duplicated: Option<u64>,
    /// Deliveries that arrived after a later message of the same sender.
    pub out_of_order: Option<u64>,
    /// Whether the server delivers a message to its sender too (seen, or `--self-delivery`).
    pub self_delivery: Option<bool>,
    /// Senders' own copies received.
    pub self_deliveries: Option<u64>,
    /// Latency of messages sent in the measured window, in microseconds.
    pub latency_us: Option<Latency>,
    /// Rate mode: how late the generator queued each message after its scheduled time,
    /// in microseconds (included in `latency_us`).
    pub send_lag_us: Option<Latency>,
    /// Bytes read from the clients' sockets during the measured window: exactly what
    /// crossed the wire to them (frame headers, compressed payloads, control frames).
    pub wire_bytes_received: Option<u64>,
    /// Bytes written to the clients' sockets during the measured window.
    pub wire_bytes_sent: Option<u64>,
    /// `wire_bytes_received` divided by the deliveries in the window (echo: round trips):
    /// what one delivery costs on the wire, to compare with `size`.
    pub wire_bytes_received_per_delivery: Option<f64>,
    /// `wire_bytes_sent` divided by the messages sent in the window.
    pub wire_bytes_sent_per_message: Option<f64>,
    /// CPU time the generator's thread used during the measured window.
    pub bench_cpu_s: Option<f64>,
    /// The same, as a percentage of one core.
    pub bench_cpu_pct: Option<f64>,
    /// The server's figures, with `--server-pid`; with several servers, summed.
    pub server: Option<ServerFigures>,
    /// The server's own counters over the measured window, with `--server-stats`.
    pub server_counters: Option<ServerCounters>,
    /// What became of the connections.
    pub connections: Option<ConnectionFigures>,
    /// Less common counters that explain odd results.
    pub details: Option<Details>,
    /// Sweep: one broadcast report per client count.
    pub points: Option<Vec<Report>>,
    /// Sweep: where the plot was written.
    pub svg: Option<String>,
    /// Why the benchmark could not run (then most other fields are `null`).
    pub error: Option<String>,
}

/// The server process, measured from `/proc` (see [`super::proc`]); with several
/// servers (`--server-pid A,B`), every figure is the sum over them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFigures {
    /// Its process id (the first one's, with several).
    pub pid: u32,
    /// Every process id measured.
    pub pids: Vec<u32>,
    /// CPU seconds (user + system, all threads) during the measured window; during
    /// connecting and holding for the connections scenario.
    pub cpu_s: Option<f64>,
    /// `cpu_s` divided by the deliveries in the window, in nanoseconds.
    pub cpu_ns_per_delivery: Option<f64>,
    /// Resident memory at the end of the window (`VmRSS`), KiB.
    pub rss_kib: Option<u64>,
    /// The largest resident memory of the server's life so far (`VmHWM`), KiB; with
    /// several servers, the sum of each one's peak.
    pub peak_rss_kib: Option<u64>,
}

/// A loopchat server's counters over the measured window, from its admin port's
/// `/stats` (see [`super::server_stats`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCounters {
    /// Loop turns.
    pub turns: u64,
    /// Readiness events.
    pub events: u64,
    /// Frames queued for clients, each broadcast counted once per recipient.
    pub deliveries: u64,
    /// Writes to clients that took bytes.
    pub writes: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// `deliveries` ÷ `writes`.
    pub frames_per_write: Option<f64>,
    /// `deliveries` ÷ `turns`.
    pub deliveries_per_turn: Option<f64>,
}

/// Connections: how many opened, how fast, what they cost the server, how they ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionFigures {
    /// Handshakes that succeeded.
    pub opened: usize,
    /// Attempts that failed (reasons in `failures`).
    pub failed: usize,
    /// Successful handshakes per second, from the first attempt to the last success.
    pub handshakes_per_s: f64,
    /// The server's resident memory before the first connection, KiB.
    pub rss_before_kib: Option<u64>,
    /// ... and with every connection open and idle for `--hold` seconds, KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) / opened, in bytes.
    pub bytes_per_idle_connection: Option<f64>,
    /// Connections we closed that got the server's Close and then its FIN.
    pub closed_cleanly: usize,
    /// Connections we closed that did not end that way.
    pub close_failed: usize,
    /// Open connections lost before we closed them (reasons in `drops`).
    pub dropped: usize,
    /// Connections whose server agreed to permessage-deflate.
    pub deflate_negotiated: usize,
    /// Why attempts failed, with counts.
    pub failures: BTreeMap<String, usize>,
    /// Why open connections were lost, or did not close cleanly, with counts.
    pub drops: BTreeMap<String, usize>,
}

/// Counters that are usually zero.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Details {
    /// Seconds of load before the measured window.
    pub warmup_s: f64,
    /// Seconds allowed for the rest to arrive after sending stopped.
    pub drain_s: f64,
    /// Whether everything expected had arrived before the drain ran out.
    pub drain_complete: bool,
    /// Deliveries (senders' own copies not included) that arrived inside the window.
    pub measured_deliveries: u64,
    /// Window mode: windows reset because the watcher heard nothing for a second.
    pub window_stalls: u64,
    /// Rate mode: sends skipped because the connection's output queue was full.
    pub sends_skipped: u64,
    /// Markers of other runs (a chat's history, another generator).
    pub foreign_markers: u64,
    /// Markers of this run that could not be right.
    pub unexpected_markers: u64,
    /// Things the reader should know (a lowered sender count, an unreadable /proc file).
    pub notes: Vec<String>,
}

impl Report {
    /// The report as a human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<26} {value}");
        };
        let title = match &self.label {
            Some(label) => format!("{} ({label})", self.scenario),
            None => self.scenario.clone(),
        };
        row("scenario", title);
        match self.urls.as_slice() {
            [] | [_] => row("url", self.url.clone()),
            urls => row(
                &format!("urls ({} servers)", urls.len()),
                format!("{} (client i on URL i mod {})", urls.join(", "), urls.len()),
            ),
        }
        let setup = [
            self.clients.map(|v| format!("{v} clients")),
            self.senders.map(|v| format!("{v} senders")),
            self.size.map(|v| format!("{v} B messages")),
            self.payload.as_ref().map(|v| format!("payload {v}")),
            self.window.map(|v| format!("window {v}")),
            self.rate.map(|v| format!("{v} msg/s per sender")),
            self.duration_s.map(|v| format!("{v} s measured")),
        ];
        let setup: Vec<String> = setup.into_iter().flatten().collect();
        if !setup.is_empty() {
            row("setup", setup.join(", "));
        }
        row("tls", (if self.tls { "yes" } else { "no" }).to_owned());
        if self.error.is_none() {
            let opened = self
                .connections
                .as_ref()
                .map(|c| (c.deflate_negotiated, c.opened));
            let deflate = match (self.deflate_offered, self.deflate_negotiated, opened) {
                (false, _, _) => "no (not offered)".to_owned(),
                (true, yes, Some((agreed, opened))) => {
                    let word = if yes { "yes" } else { "no" };
                    format!("{word} ({agreed} of {opened} connections)")
                }
                (true, yes, None) => (if yes { "yes" } else { "no" }).to_owned(),
            };
            row("deflate negotiated", deflate);
        }
        if let Some(v) = self.deliveries_per_s {
            row("deliveries/s", format!("{v:.0}"));
        }
        if let Some(v) = self.round_trips_per_s {
            row("round trips/s", format!("{v:.0}"));
        }
        if let Some(l) = &self.latency_us {
            row(
                "latency µs",
                format!(
                    "p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}  ({} samples)",
                    l.p50, l.p90, l.p99, l.p999, l.max, l.count
                ),
            );
        }
        if let Some(l) = &self.send_lag_us {
            row(
                "send lag µs (in latency)",
                format!("p50 {:.0}  p99 {:.0}  max {:.0}", l.p50, l.p99, l.max),
            );
        }
        if let (Some(sent), Some(delivered), Some(expected)) =
            (self.sent, self.delivered, self.expected)
        {
            row(
                "sent / delivered",
                format!("{sent} sent, {delivered} of {expected} expected deliveries"),
            );
        }
        if let (Some(lost), Some(dup), Some(ooo)) = (self.lost, self.duplicated, self.out_of_order)
        {
            row(
                "lost / dup / out of order",
                format!("{lost} / {dup} / {ooo}"),
            );
        }
        if let (Some(on), Some(n)) = (self.self_delivery, self.self_deliveries) {
            let what = if on { "yes" } else { "no" };
            row("sender gets own copy", format!("{what} ({n} received)"));
        }
        if let (Some(received), Some(sent)) = (self.wire_bytes_received, self.wire_bytes_sent) {
            let per = |v: Option<f64>, what: &str| {
                v.map_or(String::new(), |v| format!(", {v:.0} B per {what}"))
            };
            row(
                "wire bytes received",
                format!(
                    "{received}{}",
                    per(self.wire_bytes_received_per_delivery, "delivery")
                ),
            );
            row(
                "wire bytes sent",
                format!("{sent}{}", per(self.wire_bytes_sent_per_message, "message")),
            );
        }
        if let (Some(cpu), Some(pct)) = (self.bench_cpu_s, self.bench_cpu_pct) {
            row(
                "generator CPU",
                format!("{cpu:.2} s ({pct:.0}% of one core)"),
            );
        }
        if let Some(s) = &self.server {
            let cpu = s.cpu_s.map_or("?".into(), |v| format!("{v:.2} s"));
            let per = s
                .cpu_ns_per_delivery
                .map_or(String::new(), |v| format!(", {v:.0} ns per delivery"));
            let pids: Vec<String> = s.pids.iter().map(u32::to_string).collect();
            row(
                &format!("server {} CPU", pids.join("+")),
                format!("{cpu}{per}"),
            );
            let kib =
                |v: Option<u64>| v.map_or("?".into(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
            row(
                "server memory",
                format!("RSS {}, peak {}", kib(s.rss_kib), kib(s.peak_rss_kib)),
            );
        }
        if let Some(k) = &self.server_counters {
            let ratio = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.1}"));
            row(
                "server loop",
                format!(
                    "{} turns, {} writes: {} frames per write, {} deliveries per turn",
                    k.turns,
                    k.writes,
                    ratio(k.frames_per_write),
                    ratio(k.deliveries_per_turn)
                ),
            );
        }
        if let Some(c) = &self.connections {
            row(
                "connections",
                format!(
                    "{} opened, {} failed, {:.0} handshakes/s, {} dropped",
                    c.opened, c.failed, c.handshakes_per_s, c.dropped
                ),
            );
            if let (Some(before), Some(after)) = (c.rss_before_kib, c.rss_after_kib) {
                let per = c.bytes_per_idle_connection.map_or(String::new(), |v| {
                    format!(" = {v:.0} B per idle connection")
                });
                row(
                    "server RSS",
                    format!("{before} KiB before, {after} KiB after{per}"),
                );
            }
            row(
                "closed cleanly",
                format!(
                    "{} of {}",
                    c.closed_cleanly,
                    c.closed_cleanly + c.close_failed
                ),
            );
            for (reason, n) in c.failures.iter().chain(&c.drops) {
                row("  ", format!("{n} × {reason}"));
            }
        }
        if let Some(d) = &self.details {
            let unusual = [
                (d.window_stalls, "window stalls"),
                (d.sends_skipped, "sends skipped (output full)"),
                (d.foreign_markers, "markers of other runs"),
                (
                    d.unexpected_markers,
                    "unexpected markers (does the server do what the scenario expects?)",
                ),
            ];
            for (n, what) in unusual {
                if n > 0 {
                    row("note", format!("{n} {what}"));
                }
            }
            if !d.drain_complete {
                row(
                    "note",
                    format!("drain of {} s ran out before everything arrived", d.drain_s),
                );
            }
            for note in &d.notes {
                row("note", note.clone());
            }
        }
        if let Some(points) = &self.points {
            let _ = writeln!(
                out,
                "\n  {:>8} {:>14} {:>10} {:>10} {:>8} {:>8}",
                "clients", "deliveries/s", "p50 µs", "p99 µs", "lost", "gen CPU"
            );
            for p in points {
                let l = p.latency_us.unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:>8} {:>14.0} {:>10.0} {:>10.0} {:>8} {:>7.0}%",
                    p.clients.unwrap_or(0),
                    p.deliveries_per_s.unwrap_or(0.0),
                    l.p50,
                    l.p99,
                    p.lost.unwrap_or(0),
                    p.bench_cpu_pct.unwrap_or(0.0)
                );
            }
        }
        if let Some(svg) = &self.svg {
            let _ = writeln!(out, "\n  plot written to {svg}");
        }
        out
    }
}

/// A single status line on standard error, rewritten in place, shown only when standard
/// error is a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    next: Option<Instant>,
    width: usize,
}

/// How often the line is rewritten.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Progress {
    /// A progress line if standard error is a terminal, none otherwise.
    pub fn on_terminal() -> Progress {
        Progress::new(std::io::stderr().is_terminal())
    }

    /// A progress line if `enabled`.
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            next: None,
            width: 0,
        }
    }

    /// Whether it is time for a new line.
    pub fn due(&self, now: Instant) -> bool {
        self.enabled && self.next.is_none_or(|next| now >= next)
    }

    /// Rewrites the line.
    pub fn show(&mut self, now: Instant, line: &str) {
        let width = line.chars().count();
        let pad = self.width.saturating_sub(width);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line}{:pad$}", "");
        let _ = stderr.flush();
        self.width = width;
        self.next = Some(now + PROGRESS_EVERY);
    }

    /// Erases the line.
    pub fn clear(&mut self) {
        if self.width > 0 {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r{:w$}\r", "", w = self.width);
            let _ = stderr.flush();
            self.width = 0;
        }
        self.next = None;
    }
}
