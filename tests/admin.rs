//! The admin port (`loopchat serve --admin-addr`) of a real server: `/metrics` in the
//! Prometheus text format, `/stats` as JSON, both counting what real clients just did;
//! the live page's WebSocket pushing snapshots; the bearer token; the refusal to expose
//! it beyond loopback without one; and that neither port serves the other's paths.
//! Connections are counted by transport and phase; the chat's link to Redis (a real
//! `redis-server`, killed and started again) is reported up, down, and up again.

mod common;

use common::http_get as get;

use common::process::ServerProcess;
use common::redis::RedisServer;
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use tungstenite::{Message, connect};

const DEADLINE: Duration = Duration::from_secs(30);

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
        metric(
            &text,
            "loopchat_connections{transport=\"websocket\",phase=\"open\"}"
        ),
        3.0
    );
    // The feed is the admin port's own, and broadcast mode keeps no link.
    assert_eq!(
        metric(
            &text,
            "loopchat_connections{transport=\"admin\",phase=\"open\"}"
        ),
        1.0
    );
    assert!(!text.contains("loopchat_link"), "{text}");
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
    assert_eq!(
        stats["connections"]["by_transport"]["websocket"]["open"], 3,
        "{stats}"
    );
    assert_eq!(stats["links"], serde_json::json!([]), "{stats}");
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

/// Asks for `/stats` until `done` holds for it, within the deadline; the last one.
fn stats_until(admin: SocketAddr, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, head, body) = get(admin, "/stats", "");
        assert_eq!(status, 200, "{head}");
        let stats: Value = serde_json::from_str(&body).expect("JSON");
        if done(&stats) {
            return stats;
        }
        assert!(started.elapsed() < DEADLINE, "never {what}: {stats}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_are_counted_by_transport_and_phase() {
    let server = ServerProcess::start(&[
        "--mode",
        "chat",
        "--tcp-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    let admin = server.admin_addr();
    let line_addr: SocketAddr = {
        let started = Instant::now();
        loop {
            let log = server.log_text();
            if let Some(addr) = log
                .lines()
                .find_map(|l| l.split("line port for nc/telnet on ").nth(1)?.parse().ok())
            {
                break addr;
            }
            assert!(started.elapsed() < DEADLINE, "no line port in:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (_chat, _) = connect(format!("ws://{}/ws", server.addr)).expect("a chat client");
    let _nc = TcpStream::connect(line_addr).expect("a line client");
    // A connection that has said nothing yet is reading its HTTP request.
    let _silent = TcpStream::connect(server.addr).expect("a silent connection");
    let stats = stats_until(admin, "one of each", |stats| {
        let t = &stats["connections"]["by_transport"];
        t["websocket"]["open"] == 1 && t["line"]["open"] == 1 && t["http"]["handshake"] == 1
    });
    let t = &stats["connections"]["by_transport"];
    assert_eq!(t["websocket"]["closing"], 0, "{stats}");
    // The request for /stats itself is the admin port's.
    assert_eq!(t["admin"]["handshake"], 1, "{stats}");
    assert_eq!(stats["connections"]["open"], 4, "{stats}");
    let (_, _, text) = get(admin, "/metrics", "");
    for (labels, value) in [
        ("transport=\"websocket\",phase=\"open\"", 1.0),
        ("transport=\"websocket\",phase=\"closing\"", 0.0),
        ("transport=\"line\",phase=\"open\"", 1.0),
        ("transport=\"line\",phase=\"closing\"", 0.0),
        ("transport=\"http\",phase=\"handshake\"", 1.0),
        ("transport=\"http\",phase=\"closing\"", 0.0),
        ("transport=\"admin\",phase=\"handshake\"", 1.0),
    ] {
        let name = format!("loopchat_connections{{{labels}}}");
        assert_eq!(metric(&text, &name), value, "{name}");
    }
    // Every pair a connection can be in is written, zero or not (the admin port's
    // earlier requests may still be closing).
    for phase in ["open", "closing"] {
        metric(
            &text,
            &format!("loopchat_connections{{transport=\"admin\",phase=\"{phase}\"}}"),
        );
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("loopchat_connections{"))
            .count(),
        9,
        "{text}"
    );
}

/// The chat's link to Redis in `/metrics` and `/stats`: `up`, or not and why.
fn redis_link(admin: SocketAddr) -> (f64, Value) {
    let (_, _, text) = get(admin, "/metrics", "");
    let up = metric(&text, "loopchat_link_up{link=\"redis\"}");
    let state = ["connecting", "up", "down"]
        .into_iter()
        .filter(|s| {
            metric(
                &text,
                &format!("loopchat_link_state{{link=\"redis\",state=\"{s}\"}}"),
            ) == 1.0
        })
        .collect::<Vec<_>>();
    assert_eq!(state.len(), 1, "one state at a time:\n{text}");
    let (_, _, body) = get(admin, "/stats", "");
    let stats: Value = serde_json::from_str(&body).expect("JSON");
    let links = stats["links"].as_array().expect("links").clone();
    assert_eq!(links.len(), 1, "{stats}");
    (up, links[0].clone())
}

/// Waits until the link's state in `/stats` is `state` and `/metrics` agrees.
fn redis_link_until(admin: SocketAddr, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let (up, link) = redis_link(admin);
        if link["state"] == state && (up == 1.0) == (state == "up") {
            return link;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the link is never {state}: {link}, up {up}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_link_to_redis_is_reported_up_down_and_up_again() {
    let mut redis = RedisServer::start();
    let server = ServerProcess::start(&[
        "--mode",
        "chat",
        "--redis",
        &redis.url(),
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    let admin = server.admin_addr();
    let link = redis_link_until(admin, "up");
    assert_eq!(link["name"], "redis", "{link}");
    assert_eq!(link["peer"], format!("{}/0", redis.url()), "{link}");
    assert_eq!(link["nodes"], 1, "{link}");
    assert_eq!(link["lost"], 0, "{link}");
    assert!(link["pending_replies"].is_u64(), "{link}");

    // Redis dies without a word: the link is lost, and the chat split.
    redis.kill();
    let started = Instant::now();
    let link = loop {
        let (up, link) = redis_link(admin);
        if up == 0.0 && link["lost"] == 1 {
            break link;
        }
        assert!(started.elapsed() < DEADLINE, "never lost: {link}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(link["state"], "up", "{link}");
    let (_, _, text) = get(admin, "/metrics", "");
    assert_eq!(
        metric(&text, "loopchat_link_lost_total{link=\"redis\"}"),
        1.0
    );

    // Back on the same port: the link comes back by itself, after trying again.
    redis.restart();
    let link = redis_link_until(admin, "up");
    assert!(link["reconnects"].as_u64().unwrap() >= 1, "{link}");
    assert_eq!(link["lost"], 1, "{link}");
    let (_, _, text) = get(admin, "/metrics", "");
    assert!(metric(&text, "loopchat_link_reconnects_total{link=\"redis\"}") >= 1.0);
    assert_eq!(metric(&text, "loopchat_link_nodes{link=\"redis\"}"), 1.0);
}
