//! `loopchat bench` against real servers on loopback: the relay, the echo server, the chat
//! (markers inside its JSON envelope, senders getting their own copies), a server that
//! loses messages, a server that is not there, several servers at once (`--url A,B`),
//! and the binary's JSON contract.
//!
//! The load generator is a program, not library API: each test runs the `loopchat`
//! binary with `--json` and reads the one JSON object it prints, as a script would. Runs
//! are short (a second of load or less) and every phase of the tool is bounded, so each
//! test takes a few seconds at most.

mod common;

use common::process::ServerProcess;
use common::start;
use loopchat::apps::{Broadcast, Chat, ChatConfig, Echo};
use loopchat::{ConnectionId, Context, Handler, Message};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;

/// The fields of `loopchat bench --json` these tests read (the last test checks that
/// every documented field is there).
#[derive(Debug, Deserialize)]
struct Report {
    urls: Vec<String>,
    size: Option<usize>,
    payload: Option<String>,
    deflate_offered: bool,
    deflate_negotiated: bool,
    wire_bytes_received: Option<u64>,
    wire_bytes_sent: Option<u64>,
    wire_bytes_received_per_delivery: Option<f64>,
    wire_bytes_sent_per_message: Option<f64>,
    sent: Option<u64>,
    delivered: Option<u64>,
    expected: Option<u64>,
    deliveries_per_s: Option<f64>,
    round_trips_per_s: Option<f64>,
    lost: Option<u64>,
    duplicated: Option<u64>,
    out_of_order: Option<u64>,
    self_delivery: Option<bool>,
    self_deliveries: Option<u64>,
    senders: Option<usize>,
    window: Option<u32>,
    rate: Option<f64>,
    latency_us: Option<Latency>,
    send_lag_us: Option<Latency>,
    bench_cpu_s: Option<f64>,
    bench_cpu_pct: Option<f64>,
    server: Option<ServerFigures>,
    server_counters: Option<ServerCounters>,
    connections: Option<ConnectionFigures>,
    details: Option<Details>,
    points: Option<Vec<Report>>,
}

#[derive(Debug, Deserialize)]
struct ServerCounters {
    turns: u64,
    deliveries: u64,
    writes: u64,
    frames_per_write: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Latency {
    p50: f64,
    max: f64,
    count: u64,
}

#[derive(Debug, Deserialize)]
struct ServerFigures {
    pids: Vec<u32>,
    cpu_s: Option<f64>,
    peak_rss_kib: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ConnectionFigures {
    opened: usize,
    failed: usize,
    handshakes_per_s: f64,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    bytes_per_idle_connection: Option<f64>,
    closed_cleanly: usize,
    close_failed: usize,
    dropped: usize,
    deflate_negotiated: usize,
    failures: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
struct Details {
    drain_complete: bool,
    window_stalls: u64,
    foreign_markers: u64,
    unexpected_markers: u64,
    notes: Vec<String>,
}

/// Runs `loopchat bench ARGS --json`: its report, or, when it exits with status 1, the
/// error its JSON object gives.
fn bench(args: &[&str]) -> Result<Report, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run loopchat bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}\nstderr: {stderr}"));
    match output.status.code() {
        Some(0) => Ok(serde_json::from_value(json).expect("the report's fields")),
        Some(1) => Err(json["error"].as_str().expect("an error").to_owned()),
        other => panic!("exit status {other:?}: {stdout}\nstderr: {stderr}"),
    }
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// The figures every clean run must show: everything expected arrived once, in order,
/// and every connection opened and closed cleanly.
fn assert_clean(report: &Report, clients: usize) {
    let (sent, delivered, expected) = (
        report.sent.unwrap(),
        report.delivered.unwrap(),
        report.expected.unwrap(),
    );
    assert!(sent > 0, "nothing sent: {report:#?}");
    assert_eq!(delivered, expected, "{report:#?}");
    assert_eq!(report.lost, Some(0), "{report:#?}");
    assert_eq!(report.duplicated, Some(0), "{report:#?}");
    assert_eq!(report.out_of_order, Some(0), "{report:#?}");
    assert!(report.deliveries_per_s.unwrap() > 0.0, "{report:#?}");
    let latency = report.latency_us.unwrap();
    assert!(latency.count > 0 && latency.p50 > 0.0 && latency.p50 <= latency.max);
    let connections = report.connections.as_ref().unwrap();
    assert_eq!(
        (connections.opened, connections.failed, connections.dropped),
        (clients, 0, 0),
        "{connections:#?}"
    );
    assert_eq!(connections.closed_cleanly, clients, "{connections:#?}");
    assert!(report.details.as_ref().unwrap().drain_complete);
    assert!(report.bench_cpu_s.is_some() && report.bench_cpu_pct.is_some());
}

#[test]
fn broadcast_relay_delivers_every_message_to_every_other_client_once() {
    let addr = start(Broadcast);
    let report = bench(&[
        "broadcast",
        "--url",
        &url(addr),
        "--clients",
        "20",
        "--senders",
        "3",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--drain",
        "3",
    ])
    .unwrap();
    assert_clean(&report, 20);
    // Each message reaches the 19 others, and the relay never returns it to its sender.
    assert_eq!(report.expected, Some(report.sent.unwrap() * 19));
    assert_eq!(report.self_delivery, Some(false));
    assert_eq!(report.self_deliveries, Some(0));
    assert_eq!((report.window, report.rate), (Some(8), None));
    assert!(report.server.is_none());
}

#[test]
fn broadcast_at_a_fixed_rate_keeps_the_schedule() {
    let addr = start(Broadcast);
    let report = bench(&[
        "broadcast",
        "--url",
        &url(addr),
        "--clients",
        "10",
        "--senders",
        "2",
        "--rate",
        "100",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--drain",
        "3",
    ])
    .unwrap();
    assert_clean(&report, 10);
    // 2 senders × 100 messages a second × 1.2 s: 240 slots on the schedule, give or take
    // the last tick. Never more: a generator that did not keep to the schedule (sending
    // as fast as it can, say) sends thousands. Fewer only if the machine kept the
    // generator waiting past the end of the run, when the slots still due are not sent
    // (it catches up on late slots while the run lasts); half of them missing means it
    // does not catch up.
    let sent = report.sent.unwrap();
    assert!((120..=242).contains(&sent), "sent {sent}");
    assert!(report.send_lag_us.is_some());
    assert_eq!(report.rate, Some(100.0));
}

#[test]
fn echo_round_trips() {
    let addr = start(Echo);
    let report = bench(&[
        "echo",
        "--url",
        &url(addr),
        "--clients",
        "10",
        "--window",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.2",
    ])
    .unwrap();
    assert_clean(&report, 10);
    assert_eq!(report.expected, report.sent);
    assert!(report.round_trips_per_s.unwrap() > 0.0);
    assert_eq!(report.round_trips_per_s, report.deliveries_per_s);
    assert_eq!(report.senders, Some(10));
}

#[test]
fn connections_open_and_all_close_cleanly() {
    let addr = start(Broadcast);
    let pid = std::process::id().to_string();
    let report = bench(&[
        "connections",
        "--url",
        &url(addr),
        "--clients",
        "200",
        "--hold",
        "0.2",
        "--connect-concurrency",
        "64",
        "--server-pid",
        &pid,
    ])
    .unwrap();
    let c = report.connections.unwrap();
    assert_eq!((c.opened, c.failed, c.dropped), (200, 0, 0), "{c:#?}");
    assert_eq!((c.closed_cleanly, c.close_failed), (200, 0), "{c:#?}");
    assert!(c.handshakes_per_s > 0.0);
    // The "server" here is this test process: its figures are read, whatever they are.
    assert!(c.rss_before_kib.is_some() && c.rss_after_kib.is_some());
    assert!(c.bytes_per_idle_connection.is_some());
    let server = report.server.unwrap();
    assert!(server.cpu_s.is_some() && server.peak_rss_kib.is_some());
}

#[test]
fn chat_mode_markers_inside_the_json_envelope_and_own_copies() {
    // The chat relays bare text wrapped in JSON to the whole room, sender included, and
    // sends each newcomer welcome, join and member events first. 5 messages a second per
    // sender stays far below its rate limit (20 a second).
    let addr = start(Chat::new(ChatConfig::default()));
    let report = bench(&[
        "broadcast",
        "--url",
        &url(addr),
        "--clients",
        "12",
        "--senders",
        "3",
        "--rate",
        "5",
        "--duration",
        "1",
        "--warmup",
        "0.4",
        "--drain",
        "3",
    ])
    .unwrap();
    assert_clean(&report, 12);
    assert_eq!(report.self_delivery, Some(true), "{report:#?}");
    assert_eq!(report.self_deliveries, report.sent);
    assert_eq!(report.expected, Some(report.sent.unwrap() * 11));
    let details = report.details.unwrap();
    assert_eq!(
        (details.foreign_markers, details.unexpected_markers),
        (0, 0)
    );
}

/// Relays like the broadcast server but loses every tenth message.
struct DropEveryTenth {
    seen: u64,
}

impl Handler for DropEveryTenth {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        self.seen += 1;
        if !self.seen.is_multiple_of(10) {
            ctx.broadcast(message, Some(conn));
        }
    }
}

#[test]
fn a_server_that_loses_messages_is_caught() {
    let addr = start(DropEveryTenth { seen: 0 });
    let report = bench(&[
        "broadcast",
        "--url",
        &url(addr),
        "--clients",
        "8",
        "--senders",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--drain",
        "0.5",
    ])
    .unwrap();
    let (sent, delivered, expected, lost) = (
        report.sent.unwrap(),
        report.delivered.unwrap(),
        report.expected.unwrap(),
        report.lost.unwrap(),
    );
    // A tenth of the messages never reach any of the 7 others.
    assert!(lost > 0, "{report:#?}");
    assert_eq!(delivered + lost, expected);
    assert!(
        lost.is_multiple_of(7),
        "whole messages are lost: {report:#?}"
    );
    assert!(
        lost / 7 >= sent / 10 - 1 && lost / 7 <= sent / 10 + 1,
        "{report:#?}"
    );
    assert_eq!(report.duplicated, Some(0));
    assert!(!report.details.unwrap().drain_complete);
}

/// Two `loopchat serve --mode broadcast` processes. They do not relay to each other,
/// which is what makes them useful here: a bench that spreads its clients over both
/// must count, as lost, every message that stays on its sender's server.
fn two_relays() -> (ServerProcess, ServerProcess) {
    (
        ServerProcess::start(&["--mode", "broadcast"]),
        ServerProcess::start(&["--mode", "broadcast"]),
    )
}

#[test]
fn one_server_named_twice_is_one_server() {
    let (a, _b) = two_relays();
    let a_url = url(a.addr);
    let report = bench(&[
        "broadcast",
        "--url",
        &format!("{a_url},{a_url}"),
        "--clients",
        "10",
        "--senders",
        "4",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--drain",
        "3",
    ])
    .unwrap();
    assert_eq!(report.urls, [a_url.clone(), a_url]);
    // Every client is on the one relay: each message reaches the 9 others, and every
    // window moves (the watchers, on the "other" server, are on this one too).
    assert_clean(&report, 10);
    assert_eq!(report.expected, Some(report.sent.unwrap() * 9));
    assert_eq!(report.details.unwrap().window_stalls, 0);
}

#[test]
fn clients_on_two_servers_expect_every_message() {
    let (a, b) = two_relays();
    let pids = format!("{},{}", a.pid(), b.pid());
    // Fixed rate: with a window, each sender would wait on its watcher, the next client,
    // which is on the other relay and never hears from it.
    let report = bench(&[
        "broadcast",
        "--url",
        &url(a.addr),
        "--url",
        &url(b.addr),
        "--clients",
        "8",
        "--senders",
        "4",
        "--rate",
        "40",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--drain",
        "0.5",
        "--server-pid",
        &pids,
    ])
    .unwrap();
    assert_eq!(report.urls, [url(a.addr), url(b.addr)]);
    let (sent, delivered, expected, lost) = (
        report.sent.unwrap(),
        report.delivered.unwrap(),
        report.expected.unwrap(),
        report.lost.unwrap(),
    );
    assert!(sent > 0, "{report:#?}");
    // Four clients on each relay. A message is expected by the 7 other clients, wherever
    // they are; its relay passes it to the 3 others on its side, and the 4 clients on the
    // other relay never get it: lost, counted as such.
    assert_eq!(expected, sent * 7, "{report:#?}");
    assert_eq!(delivered, sent * 3, "{report:#?}");
    assert_eq!(lost, sent * 4, "{report:#?}");
    assert_eq!((report.duplicated, report.out_of_order), (Some(0), Some(0)));
    assert!(!report.details.as_ref().unwrap().drain_complete);
    let connections = report.connections.as_ref().unwrap();
    assert_eq!((connections.opened, connections.failed), (8, 0));
    assert_eq!(connections.closed_cleanly, 8, "{connections:#?}");
    let server = report.server.as_ref().unwrap();
    assert_eq!(server.pids, [a.pid(), b.pid()]);
    assert!(server.cpu_s.is_some() && server.peak_rss_kib.is_some());

    // The connections scenario spreads its clients too, and sums the servers' memory.
    let report = bench(&[
        "connections",
        "--url",
        &format!("{},{}", url(a.addr), url(b.addr)),
        "--clients",
        "10",
        "--hold",
        "0",
        "--server-pid",
        &pids,
    ])
    .unwrap();
    let c = report.connections.unwrap();
    assert_eq!(
        (c.opened, c.failed, c.closed_cleanly),
        (10, 0, 10),
        "{c:#?}"
    );
    assert!(c.rss_before_kib.is_some() && c.rss_after_kib.is_some());
    assert_eq!(report.server.unwrap().pids, [a.pid(), b.pid()]);
}

#[test]
fn no_server_is_reported_not_waited_for() {
    // A port nobody listens on any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = bench(&[
        "connections",
        "--url",
        &url(addr),
        "--clients",
        "5",
        "--hold",
        "0",
    ])
    .unwrap();
    let c = report.connections.unwrap();
    assert_eq!((c.opened, c.failed), (0, 5));
    assert_eq!(
        c.failures.get("connect: connection refused"),
        Some(&5),
        "{c:#?}"
    );

    let error = bench(&[
        "broadcast",
        "--url",
        &url(addr),
        "--clients",
        "5",
        "--senders",
        "1",
    ])
    .unwrap_err();
    assert!(error.contains("only 0 clients connected"), "{error}");
}

#[test]
fn sweep_plots_each_client_count() {
    let addr = start(Broadcast);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    let report = bench(&[
        "sweep",
        "--url",
        &url(addr),
        "--clients-list",
        "4,8",
        "--senders",
        "2",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--drain",
        "2",
        "--svg",
        svg.to_str().unwrap(),
    ])
    .unwrap();
    let points = report.points.unwrap();
    assert_eq!(points.len(), 2);
    for (point, clients) in points.iter().zip([4, 8]) {
        assert_clean(point, clients);
    }
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn the_binary_prints_one_json_object_with_the_documented_fields() {
    let addr = start(Broadcast);
    let pid = std::process::id().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args([
            "bench",
            "broadcast",
            "--url",
            &url(addr),
            "--clients",
            "6",
            "--senders",
            "2",
            "--duration",
            "0.3",
            "--warmup",
            "0",
            "--drain",
            "2",
            "--json",
            "--server-pid",
            &pid,
            "--label",
            "relay",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "scenario",
        "label",
        "url",
        "urls",
        "clients",
        "senders",
        "size",
        "window",
        "rate",
        "duration_s",
        "sent",
        "delivered",
        "payload",
        "deflate_offered",
        "deflate_negotiated",
        "wire_bytes_received",
        "wire_bytes_sent",
        "wire_bytes_received_per_delivery",
        "wire_bytes_sent_per_message",
        "deliveries_per_s",
        "round_trips_per_s",
        "lost",
        "duplicated",
        "out_of_order",
        "latency_us",
        "bench_cpu_s",
        "bench_cpu_pct",
        "server",
        "connections",
        "points",
    ] {
        assert!(json.get(key).is_some(), "no {key} in {json}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            json["latency_us"][key].is_number(),
            "latency_us.{key} in {json}"
        );
    }
    for key in [
        "pid",
        "pids",
        "cpu_s",
        "cpu_ns_per_delivery",
        "rss_kib",
        "peak_rss_kib",
    ] {
        assert!(json["server"].get(key).is_some(), "server.{key} in {json}");
    }
    for key in [
        "opened",
        "failed",
        "handshakes_per_s",
        "rss_before_kib",
        "rss_after_kib",
        "bytes_per_idle_connection",
        "closed_cleanly",
        "deflate_negotiated",
    ] {
        assert!(
            json["connections"].get(key).is_some(),
            "connections.{key} in {json}"
        );
    }
    assert_eq!(json["scenario"], "broadcast");
    assert_eq!(json["label"], "relay");
    assert_eq!(json["lost"], 0);
    assert_eq!(json["delivered"], json["expected"]);

    // A failure is still one JSON object, with the reason, and exit status 1.
    let nobody = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args([
            "bench",
            "echo",
            "--url",
            &url(nobody),
            "--clients",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("connected"),
        "{json}"
    );
}

// ---------------------------------------------------------------------------------------
// permessage-deflate, chat-like payloads, bytes on the wire
// ---------------------------------------------------------------------------------------

/// Runs `loopchat bench SCENARIO` against `url` with a short load and `extra` options.
fn short_run(scenario: &str, url: &str, clients: &str, extra: &[&str]) -> Result<Report, String> {
    let mut args = vec![
        scenario,
        "--url",
        url,
        "--clients",
        clients,
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--drain",
        "3",
    ];
    args.extend_from_slice(extra);
    bench(&args)
}

#[test]
fn echo_with_deflate_costs_fewer_bytes_on_the_wire_both_ways() {
    // A real `loopchat serve`, which compresses what it sends to clients that agreed.
    let server = ServerProcess::start(&["--mode", "echo"]);
    let url = url(server.addr);
    let chat = ["--size", "1024", "--payload", "chat-json", "--window", "4"];
    let plain = short_run("echo", &url, "4", &chat).unwrap();
    let deflated = short_run("echo", &url, "4", &[&chat[..], &["--deflate"]].concat()).unwrap();
    for report in [&plain, &deflated] {
        assert_clean(report, 4);
        assert_eq!(report.payload.as_deref(), Some("chat-json"));
        assert!(report.wire_bytes_received.unwrap() > 0 && report.wire_bytes_sent.unwrap() > 0);
    }
    assert!(!plain.deflate_offered && !plain.deflate_negotiated);
    assert!(deflated.deflate_offered && deflated.deflate_negotiated);
    assert_eq!(deflated.connections.as_ref().unwrap().deflate_negotiated, 4);
    assert_eq!(plain.connections.as_ref().unwrap().deflate_negotiated, 0);
    // Uncompressed, a delivery costs its 1024 bytes and a frame header; compressed,
    // chat-like text costs about half.
    let per = |r: &Report| {
        (
            r.wire_bytes_received_per_delivery.unwrap(),
            r.wire_bytes_sent_per_message.unwrap(),
        )
    };
    let (received, sent) = per(&plain);
    assert!((1024.0..1040.0).contains(&received), "{plain:#?}");
    assert!((1024.0..1040.0).contains(&sent), "{plain:#?}");
    let (received, sent) = per(&deflated);
    assert!(received < 0.75 * 1024.0, "{deflated:#?}");
    assert!(sent < 0.75 * 1024.0, "{deflated:#?}");
}

#[test]
fn broadcast_with_deflate_and_chat_json_loses_nothing() {
    let server = ServerProcess::start(&["--mode", "broadcast"]);
    let report = short_run(
        "broadcast",
        &url(server.addr),
        "10",
        &[
            "--senders",
            "2",
            "--size",
            "1024",
            "--payload",
            "chat-json",
            "--deflate",
        ],
    )
    .unwrap();
    assert_clean(&report, 10);
    assert_eq!(report.expected, Some(report.sent.unwrap() * 9));
    assert!(report.deflate_negotiated);
    assert_eq!(report.size, Some(1024));
    // What the senders send goes compressed, and so does what the relay sends on (once
    // per broadcast, for every recipient).
    let sent = report.wire_bytes_sent_per_message.unwrap();
    assert!(sent < 0.75 * 1024.0, "{report:#?}");
    let received = report.wire_bytes_received_per_delivery.unwrap();
    assert!(received < 0.75 * 1024.0, "{report:#?}");
}

#[test]
fn server_stats_gives_the_loops_counters_over_the_window() {
    let server = ServerProcess::start(&["--mode", "broadcast", "--admin-addr", "127.0.0.1:0"]);
    let stats = format!("http://{}/stats", server.admin_addr());
    let report = short_run(
        "broadcast",
        &url(server.addr),
        "20",
        &["--senders", "4", "--server-stats", &stats],
    )
    .unwrap();
    assert_clean(&report, 20);
    let counters = report.server_counters.as_ref().expect("server_counters");
    // The server's count of deliveries in the window and the generator's can differ by
    // the frames in flight at its edges, but they are the same run's.
    let delivered = report.delivered.unwrap();
    assert!(
        counters.deliveries > 0 && counters.deliveries <= delivered,
        "{report:#?}"
    );
    assert!(counters.turns > 0 && counters.writes > 0, "{report:#?}");
    let per_write = counters.frames_per_write.unwrap();
    assert!(per_write >= 1.0, "{report:#?}");
    let ratio = counters.deliveries as f64 / counters.writes as f64;
    assert!((per_write - ratio).abs() < 1e-9, "{report:#?}");

    // Without an admin port there is nothing to read: a note, and no counters.
    let plain = ServerProcess::start(&["--mode", "broadcast"]);
    let missing = format!("http://{}/stats", plain.addr);
    let report = short_run(
        "broadcast",
        &url(plain.addr),
        "4",
        &["--senders", "2", "--server-stats", &missing],
    )
    .unwrap();
    assert!(report.server_counters.is_none());
    let notes = &report.details.as_ref().unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("--server-stats")),
        "{notes:?}"
    );
}

#[test]
fn a_deflate_benchmark_refuses_a_server_that_declines() {
    let server = ServerProcess::start(&["--mode", "echo", "--deflate", "off"]);
    let url = url(server.addr);
    let echo = [
        "echo",
        "--url",
        &url,
        "--clients",
        "3",
        "--duration",
        "0.2",
        "--deflate",
    ];
    let connections = [
        "connections",
        "--url",
        &url,
        "--clients",
        "3",
        "--hold",
        "0",
        "--deflate",
    ];
    for args in [&echo[..], &connections[..]] {
        let error = bench(args).unwrap_err();
        assert!(
            error.contains("the server declined permessage-deflate on 3 of 3 connections"),
            "{args:?}: {error}"
        );
    }
    // Without --deflate the same server is fine, and the report says deflate was off.
    let report = short_run("echo", &url, "2", &[]).unwrap();
    assert!(!report.deflate_offered && !report.deflate_negotiated);
    assert_eq!(report.payload.as_deref(), Some("filler"));
}

#[test]
fn chat_json_needs_room_for_its_envelope() {
    let addr = start(Echo);
    let error = short_run(
        "echo",
        &url(addr),
        "1",
        &["--payload", "chat-json", "--size", "100"],
    )
    .unwrap_err();
    assert!(error.contains("at least 128"), "{error}");
}
