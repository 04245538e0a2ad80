//! The admin port (`loopchat serve --admin-addr`) of a real server: `/metrics` in the
//! Prometheus text format, `/stats` as JSON, both counting what real clients just did;
//! the live page's WebSocket pushing snapshots; the bearer token; the refusal to expose
//! it beyond loopback without one; and that neither port serves the other's paths.

mod common;

use common::process::ServerProcess;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use tungstenite::{Message, connect};

const DEADLINE: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request, `Connection: close`; the status, the head and the body.
fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().expect("a status");
    (status, head.to_owned(), body.to_owned())
}

/// The value of metric line `name` (exactly, labels included) in an exposition.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn metrics_and_stats_count_what_clients_did() {
    let server = ServerProcess::start(&["--mode", "broadcast", "--admin-addr", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    let (mut feed, _) = connect(format!("ws://{admin}/inspect/ws")).expect("the feed");
    let url = format!("ws://{}/ws", server.addr);
    let mut clients: Vec<_> = (0..3).map(|_| connect(&url).expect("connect").0).collect();
    clients[0].send(Message::text("hello, everyone")).unwrap();
    for client in &mut clients[1..] {
        assert_eq!(client.read().unwrap(), Message::text("hello, everyone"));
    }
    // The broadcast went to the clients only: the feed gets snapshots, and snapshots
    // count clients, not itself.
    for _ in 0..3 {
        let Message::Text(text) = feed.read().expect("a snapshot") else {
            panic!("not text")
        };
        let snapshot: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    }

    let (status, head, text) = get(admin, "/metrics", "");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        metric(&text, "loopchat_accepted_connections_total"),
        3.0,
        "clients only"
    );
    assert!(metric(&text, "loopchat_received_messages_total") >= 1.0);
    assert!(metric(&text, "loopchat_broadcasts_total") >= 1.0);
    assert!(metric(&text, "loopchat_deliveries_total") >= 2.0);
    assert!(metric(&text, "loopchat_loop_turns_total") >= 1.0);
    assert_eq!(
        metric(&text, "loopchat_connections{phase=\"websocket\"}"),
        3.0
    );
    for name in [
        "loopchat_loop_events_per_wakeup_count",
        "loopchat_loop_frames_per_write_count",
        "loopchat_loop_phase_seconds_count{phase=\"flush\"}",
        "loopchat_queued_outbound_bytes",
        "loopchat_sent_bytes_total",
    ] {
        metric(&text, name);
    }

    let (status, head, body) = get(admin, "/stats", "");
    assert_eq!(status, 200, "{head}");
    let stats: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(stats["server"]["mode"], "broadcast");
    assert_eq!(stats["connections"]["by_phase"]["websocket"], 3);
    assert!(
        stats["totals"]["deliveries"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert!(
        stats["totals"]["bytes_out"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(
        stats["histograms"]["phase_seconds"]["poll_wait"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Each port serves its own paths only.
    assert_eq!(get(admin, "/ws", "").0, 404);
    let (_, _, public) = get(server.addr, "/metrics", "");
    assert!(!public.contains("loopchat_loop_turns"), "{public}");
}

#[test]
fn the_live_page_is_fed_snapshots_and_no_broadcasts() {
    let server = ServerProcess::start(&["--mode", "chat", "--admin-addr", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    let (status, head, page) = get(admin, "/inspect", "");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Security-Policy: default-src 'self'"),
        "{head}"
    );
    assert!(page.contains("inspect.js"), "{page}");

    let (mut feed, _) = connect(format!("ws://{admin}/inspect/ws")).expect("the feed");
    let (mut chat, _) = connect(format!("ws://{}/ws", server.addr)).expect("a chat client");
    chat.send(Message::text(
        r#"{"type":"message","text":"hi from the chat"}"#,
    ))
    .unwrap();
    // Snapshots keep coming, several a second; the chat's rooms are in them, and nothing
    // of the chat itself is.
    let started = Instant::now();
    let mut seen = 0;
    let mut lobby = false;
    let mut uptimes = Vec::new();
    while seen < 8 || !lobby {
        assert!(
            started.elapsed() < DEADLINE,
            "{seen} snapshots, lobby {lobby}"
        );
        let Message::Text(text) = feed.read().expect("a snapshot") else {
            continue;
        };
        let snapshot: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        seen += 1;
        uptimes.push(snapshot["server"]["uptime_seconds"].as_f64().unwrap());
        lobby |= snapshot["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|room| room["name"] == "lobby" && room["members"] == 1);
        assert!(snapshot["recent_turns"].is_array());
        assert_eq!(
            snapshot["connections"]["by_phase"]["admin"], 1,
            "{snapshot}"
        );
    }
    // Every 250 ms by the server's clock (the loop may be late on a loaded machine, never
    // early); the first comes at once.
    for pair in uptimes.windows(2).skip(1) {
        assert!(pair[1] - pair[0] >= 0.249, "{uptimes:?}");
    }
}

#[test]
fn a_token_is_required_when_set() {
    let server = ServerProcess::start_with(
        &[],
        &["--mode", "echo", "--admin-addr", "127.0.0.1:0"],
        &[("LOOPCHAT_ADMIN_TOKEN", "s3cret")],
    );
    let admin = server.admin_addr();
    let (status, head, _) = get(admin, "/metrics", "");
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("WWW-Authenticate: Bearer"), "{head}");
    assert_eq!(
        get(admin, "/metrics", "Authorization: Bearer wrong\r\n").0,
        401
    );
    assert_eq!(
        get(admin, "/metrics", "Authorization: Bearer s3cret\r\n").0,
        200
    );
    assert_eq!(get(admin, "/stats?token=s3cret", "").0, 200);
    assert_eq!(get(admin, "/stats", "").0, 401);
    assert_eq!(
        get(admin, "/inspect.js", "").0,
        200,
        "the page's files hold no data"
    );
    assert!(connect(format!("ws://{admin}/inspect/ws")).is_err());
    assert!(connect(format!("ws://{admin}/inspect/ws?token=s3cret")).is_ok());
    assert!(
        !server.log_text().contains("s3cret"),
        "the token was logged"
    );
}

#[test]
fn an_admin_port_beyond_loopback_needs_a_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "0.0.0.0:0",
        ])
        .env_remove("LOOPCHAT_ADMIN_TOKEN")
        .output()
        .expect("run loopchat");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-token"), "{stderr}");
}

#[test]
fn sigterm_still_stops_a_server_with_an_admin_port() {
    // The admin listener once shared the signals' token, and SIGTERM went unheard.
    let mut server = ServerProcess::start(&["--mode", "echo", "--admin-addr", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    let (_feed, _) = connect(format!("ws://{admin}/inspect/ws")).expect("the feed");
    server.signal("TERM");
    assert!(
        server.wait_exit(DEADLINE).success(),
        "{}",
        server.log_text()
    );
}

#[test]
fn the_compression_ratio_is_counted_once_per_message() {
    let server = ServerProcess::start(&["--mode", "broadcast", "--admin-addr", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    // Two clients that negotiated permessage-deflate, and a sender.
    let offer = [("Sec-WebSocket-Extensions", "permessage-deflate")];
    let mut receivers: Vec<_> = (0..2)
        .map(|_| common::RawClient::open_with(server.addr, &offer))
        .collect();
    for (_, head) in &receivers {
        assert!(head.contains("permessage-deflate"), "{head}");
    }
    let (mut sender, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    let text =
        r#"{"type":"message","room":"lobby","text":"compressed once, for everyone"}"#.repeat(6);
    sender.send(Message::text(text.clone())).unwrap();
    for (receiver, _) in &mut receivers {
        let frame = receiver.read_frame();
        assert_eq!(frame.rsv, 0b100, "compressed");
    }
    let (_, _, body) = get(admin, "/stats", "");
    let stats: Value = serde_json::from_str(&body).expect("JSON");
    let totals = &stats["totals"];
    assert_eq!(totals["deflated_messages"], 1, "{totals}");
    assert_eq!(totals["deflate_bytes_in"], text.len(), "{totals}");
    assert!(
        totals["deflate_bytes_out"].as_u64().unwrap() < text.len() as u64 / 2,
        "{totals}"
    );
    let (_, _, metrics) = get(admin, "/metrics", "");
    assert_eq!(metric(&metrics, "loopchat_deflated_messages_total"), 1.0);
}

#[test]
fn refusals_are_counted_by_reason_and_the_admin_port_still_answers_a_full_server() {
    let server = ServerProcess::start(&[
        "--mode",
        "echo",
        "--max-connections",
        "2",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    let admin = server.admin_addr();
    // The operator's page takes none of the clients' places.
    let (_feed, _) = connect(format!("ws://{admin}/inspect/ws")).expect("the feed");
    let url = format!("ws://{}/ws", server.addr);
    let _clients: Vec<_> = (0..2).map(|_| connect(&url).expect("connect").0).collect();
    assert!(connect(&url).is_err(), "a third client is refused");
    // The admin port has its own allowance: a full server still tells its operator why.
    let (status, _, text) = get(admin, "/metrics", "");
    assert_eq!(status, 200);
    assert_eq!(
        metric(&text, "loopchat_refused_connections_total{reason=\"full\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "loopchat_refused_connections_total{reason=\"out_of_descriptors\"}"
        ),
        0.0
    );
}
