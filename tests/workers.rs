//! Every core: `loopchat serve --workers 4` (four event loops on four threads, one port) on
//! this machine, whatever its number of cores, with independent clients: tungstenite
//! chat clients and the load generator.
//!
//! Checked: the chat is one chat across workers (unique nicknames without regard to case,
//! even when eight clients ask for the same one at once; who is in a room; notices;
//! private messages; the history a newcomer gets; a departure frees a nickname);
//! exactly-once delivery, in the room's one order by hand, and by the load generator's
//! loss and per-sender order accounting in chat and broadcast modes; the connections
//! really spread over the workers; the admin port's figures of each worker; SIGTERM
//! closes every client of every worker with 1001 and exits 0, also when it comes while
//! the workers start, and a second one stops them at once; a second server cannot share
//! the port; and a worker that panics takes the process down.

mod common;

use common::chat::{ChatClient, WAIT, everyone_hears_everything_once_in_one_order};
use common::process::ServerProcess;
use common::{IO_TIMEOUT, RawClient};
use loopchat::apps::chat::protocol::{ErrorCode, LeaveReason, ServerEvent};
use loopchat::workers::{Wakers, Workers};
use loopchat::{ConnectionId, Context, Handler, Message, ServerConfig};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKERS: &str = "4";

/// How many connections each worker accepted, from the account each gives as it shuts
/// down (`shut down: ...; Stats { accepted: N, ... }`).
fn accepted_per_worker(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("shut down:"))
        .filter_map(|line| {
            let rest = &line[line.find("accepted: ")? + "accepted: ".len()..];
            rest.split(',').next()?.trim().parse().ok()
        })
        .collect()
}

/// Stops the server with SIGTERM and checks that all four workers stopped, that it
/// exited 0, and that more than one worker had clients: what was checked did cross
/// workers.
fn stop_and_check_spread(mut server: ServerProcess) {
    server.signal("TERM");
    let status = server.wait_exit(WAIT);
    let log = server.log_text();
    assert!(status.success(), "{status}; log:\n{log}");
    let accepted = accepted_per_worker(&log);
    assert_eq!(accepted.len(), 4, "one account per worker; log:\n{log}");
    let busy = accepted.iter().filter(|&&n| n > 0).count();
    assert!(busy >= 2, "clients on one worker only: {accepted:?}");
}

#[test]
fn the_chat_is_one_chat_across_workers() {
    let server = ServerProcess::start(&["--workers", WORKERS]);
    let mut clients: Vec<ChatClient> = (0..8).map(|_| ChatClient::arrive(server.addr)).collect();
    let guests: BTreeSet<String> = clients.iter().map(|c| c.nick.clone()).collect();
    assert_eq!(guests.len(), 8, "guest names are unique: {guests:?}");

    // Eight clients, on whichever workers the kernel put them, ask for one nickname in
    // eight spellings at once: exactly one gets it.
    for (i, client) in clients.iter_mut().enumerate() {
        let nick = if i % 2 == 0 { "ada" } else { "ADA" };
        client.send(json!({"type": "nick", "nick": nick}));
    }
    let mut winners = Vec::new();
    for (i, client) in clients.iter_mut().enumerate() {
        let me = client.nick.clone();
        let answer = client.expect(|e| {
            matches!(e, ServerEvent::Nick { old, .. } if *old == me)
                || matches!(
                    e,
                    ServerEvent::Error {
                        code: ErrorCode::NickTaken,
                        ..
                    }
                )
        });
        if let ServerEvent::Nick { new, .. } = answer {
            client.nick = new;
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one took the nickname");
    let ada = winners[0];

    // Everyone is in the lobby, as everyone sees it.
    let mut everyone: Vec<String> = clients.iter().map(|c| c.nick.clone()).collect();
    everyone.sort_by_key(|n| n.to_lowercase());
    for client in &mut clients {
        let mut members = client.who("lobby");
        members.sort_by_key(|n| n.to_lowercase());
        assert_eq!(members, everyone, "{}", client.nick);
    }

    // A message reaches everyone with one id; a private message its recipient only.
    let id = clients[ada].say("hello, workers");
    let ada_nick = clients[ada].nick.clone();
    for (i, client) in clients.iter_mut().enumerate() {
        if i != ada {
            assert_eq!(client.hears(&ada_nick, "hello, workers"), id);
        }
    }
    let other = (ada + 5) % 8;
    let other_nick = clients[other].nick.clone();
    clients[ada].send(json!({"type": "private", "to": other_nick.to_uppercase(), "text": "psst"}));
    let got =
        clients[other].expect(|e| matches!(e, ServerEvent::Private { text, .. } if text == "psst"));
    let sent =
        clients[ada].expect(|e| matches!(e, ServerEvent::Private { text, .. } if text == "psst"));
    assert_eq!(got, sent);

    // A join in another room is heard by those in it, on any worker.
    clients[other].send(json!({"type": "join", "room": "rust"}));
    clients[other].expect(|e| matches!(e, ServerEvent::History { room, .. } if room == "rust"));
    clients[ada].send(json!({"type": "join", "room": "rust"}));
    clients[other].expect(
        |e| matches!(e, ServerEvent::Join { room, nick, .. } if room == "rust" && *nick == ada_nick),
    );

    // A newcomer gets the history said on whichever worker.
    let newcomer = ChatClient::arrive(server.addr);
    let (history, _) = newcomer.arrival_history();
    assert!(
        matches!(history.last(), Some(ServerEvent::Message { text, id: i, .. }) if text == "hello, workers" && *i == id),
        "{history:?}"
    );

    // A departure is a leave everywhere, and frees the nickname.
    let gone = clients.remove(ada);
    drop(gone);
    for client in &mut clients {
        client.expect(|e| {
            matches!(e, ServerEvent::Leave { nick, reason: LeaveReason::Disconnected, room, .. }
                if *nick == ada_nick && room == "lobby")
        });
    }
    clients[0].set_nick("Ada");
    drop(clients);
    drop(newcomer);
    stop_and_check_spread(server);
}

#[test]
fn every_message_reaches_everyone_once_in_one_order_across_workers() {
    let server = ServerProcess::start(&["--workers", WORKERS]);
    let mut clients: Vec<ChatClient> = (0..8).map(|_| ChatClient::arrive(server.addr)).collect();
    everyone_hears_everything_once_in_one_order(&mut clients, 20);
    drop(clients);
    stop_and_check_spread(server);
}

/// Runs `loopchat bench broadcast` with 100 clients, 10 senders, for 2 s, and `args`,
/// and checks its loss and order accounting: every expected delivery arrived, once, in
/// order, and every client closed cleanly.
fn bench_is_clean(url: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["bench", "broadcast", "--url", url, "--json"])
        .args([
            "--clients",
            "100",
            "--senders",
            "10",
            "--duration",
            "2",
            "--warmup",
            "0.5",
        ])
        .args(args)
        .output()
        .expect("run loopchat bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["lost"], 0, "{report:#}");
    assert_eq!(report["duplicated"], 0, "{report:#}");
    assert_eq!(report["out_of_order"], 0, "{report:#}");
    assert_eq!(report["delivered"], report["expected"], "{report:#}");
    assert!(report["expected"].as_u64().unwrap() > 0, "{report:#}");
    let connections = &report["connections"];
    assert_eq!(
        connections["closed_cleanly"], connections["opened"],
        "{report:#}"
    );
    report
}

#[test]
fn the_load_generator_counts_nothing_lost_across_workers() {
    // The chat: every member hears every message, its own included, in the room's order.
    let chat = ServerProcess::start(&["--workers", WORKERS]);
    let url = format!("ws://{}/ws", chat.addr);
    bench_is_clean(
        &url,
        &[
            "--rate",
            "5",
            "--payload",
            "chat-json",
            "--size",
            "200",
            "--self-delivery",
        ],
    );
    stop_and_check_spread(chat);

    // The raw relay, flat out: every other client hears every message.
    let relay = ServerProcess::start(&["--workers", WORKERS, "--mode", "broadcast"]);
    let url = format!("ws://{}/ws", relay.addr);
    bench_is_clean(&url, &[]);
    stop_and_check_spread(relay);
}

#[test]
fn sigterm_closes_every_client_of_every_worker_with_1001_and_exits_0() {
    let mut server = ServerProcess::start(&["--workers", WORKERS, "--mode", "echo"]);
    let mut clients: Vec<RawClient> = (0..16).map(|_| RawClient::open(server.addr)).collect();
    // Each is open: its echo comes back.
    for client in &mut clients {
        client.send(&common::client_frame(true, 0x1, b"here"));
        client.expect_frame(0x1, b"here");
    }
    server.signal("TERM");
    for client in &mut clients {
        client.expect_close(1001);
        client.send(&common::client_frame(
            true,
            0x8,
            &common::close_payload(1001, ""),
        ));
        client.expect_eof();
    }
    let status = server.wait_exit(WAIT);
    let log = server.log_text();
    assert!(status.success(), "{status}; log:\n{log}");
    let accepted = accepted_per_worker(&log);
    assert_eq!(accepted.iter().sum::<u64>(), 16, "{log}");
    assert!(
        accepted.iter().filter(|&&n| n > 0).count() >= 2,
        "{accepted:?}"
    );
}

/// A handler whose worker panics on the message `panic`.
struct PanicsOnRequest;

impl Handler for PanicsOnRequest {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        if let Message::Text("panic") = message {
            panic!("asked to panic");
        }
        let _ = ctx.send(conn, message);
    }
}

/// The environment variable that makes the test below run, in a child process, the
/// workers that will panic.
const PANICKING_CHILD: &str = "LOOPCHAT_TEST_PANICKING_WORKERS";

#[test]
fn a_worker_that_panics_takes_the_process_down() {
    if std::env::var_os(PANICKING_CHILD).is_some() {
        // The child: two workers; say where they listen; wait for them.
        let config = ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        };
        let wakers = Wakers::new(2);
        let workers = Workers::start(
            config,
            vec![PanicsOnRequest, PanicsOnRequest],
            &wakers,
            false,
        )
        .expect("start the workers");
        eprintln!("listening on {}", workers.local_addr());
        let result = workers.wait();
        eprintln!("the workers stopped: {result:?}");
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("this test program"))
        .args([
            "--exact",
            "a_worker_that_panics_takes_the_process_down",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANICKING_CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run this test program again");
    let lines = common::lines_of(child.stderr.take().expect("stderr"));
    let listening = common::expect_line(&lines, "saying where the workers listen", |l| {
        l.starts_with("listening on ")
    });
    let addr: SocketAddr = listening["listening on ".len()..]
        .parse()
        .expect("an address");
    // Another client, on whichever worker, is served before the panic.
    let mut bystander = RawClient::open(addr);
    bystander.send(&common::client_frame(true, 0x1, b"still here"));
    bystander.expect_frame(0x1, b"still here");
    let mut client = RawClient::open(addr);
    client.send(&common::client_frame(true, 0x1, b"panic"));
    let status = exit_within(&mut child, WAIT);
    let mut log = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(!status.success(), "{status}; log:\n{log}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "aborted: {status}; log:\n{log}");
    assert!(log.contains("asked to panic"), "the panic's message: {log}");
    assert!(
        !log.contains("the workers stopped"),
        "no worker went on: {log}"
    );
    // Every client's connection is gone with the process, the bystander's too.
    bystander.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0; 16];
    let read = std::io::Read::read(&mut bystander.stream, &mut buf);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[test]
fn the_admin_port_gives_every_workers_figures() {
    let server = ServerProcess::start(&[
        "--workers",
        WORKERS,
        "--mode",
        "echo",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    let admin = server.admin_addr();
    let mut clients: Vec<RawClient> = (0..12).map(|_| RawClient::open(server.addr)).collect();
    for client in &mut clients {
        client.send(&common::client_frame(true, 0x1, b"count me"));
        client.expect_frame(0x1, b"count me");
    }
    // Each worker posts its figures after a turn, at most four times a second: wait for
    // the board to show all twelve.
    let deadline = Instant::now() + WAIT;
    let workers = loop {
        let (status, _, body) = common::http_get(admin, "/stats", "");
        assert_eq!(status, 200, "{body}");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let workers = stats["workers"].as_array().expect("workers").clone();
        let connections: u64 = workers
            .iter()
            .map(|w| w["connections"].as_u64().unwrap())
            .sum();
        let echoed: u64 = workers
            .iter()
            .map(|w| w["totals"]["messages_in"].as_u64().unwrap())
            .sum();
        if connections == 12 && echoed == 12 {
            break workers;
        }
        assert!(
            Instant::now() < deadline,
            "the workers' figures never added up to 12 clients: {workers:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(workers.len(), 4);
    let busy = workers
        .iter()
        .filter(|w| w["connections"].as_u64() > Some(0))
        .count();
    assert!(busy >= 2, "{workers:#?}");
    let (_, _, metrics) = common::http_get(admin, "/metrics", "");
    let sum: f64 = (0..4)
        .map(|i| {
            let name = format!("loopchat_worker_connections{{worker=\"{i}\"}} ");
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&name)?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        })
        .sum();
    assert_eq!(sum, 12.0, "{metrics}");
    drop(clients);
}

/// Waits for a child to exit, at most `within`; panics (killing it) if it does not.
fn exit_within(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_while_the_workers_start_still_stops_them_all() {
    use std::os::unix::process::ExitStatusExt;
    // A signal that comes while eight workers start one after another: before the
    // process takes its signals it is killed by it; after, every worker must stop, never
    // some of them only, which would leave the process running. The last time waits for
    // the server to say it listens, so that at least once the signal is handed on.
    for delay_ms in (0..20).map(Some).chain([None]) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loopchat"))
            .args([
                "serve",
                "--workers",
                "8",
                "--mode",
                "echo",
                "--addr",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run loopchat serve");
        let lines = common::lines_of(child.stderr.take().expect("stderr"));
        match delay_ms {
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
            None => {
                common::expect_line(&lines, "saying where it listens", |l| {
                    l.contains("open http://")
                });
            }
        }
        let pid = child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = exit_within(&mut child, WAIT);
        match delay_ms {
            Some(_) => assert!(
                status.success() || status.signal() == Some(15),
                "after {delay_ms:?} ms: {status}"
            ),
            None => assert!(status.success(), "after it listened: {status}"),
        }
    }
}

#[test]
fn a_second_sigterm_stops_every_worker_at_once() {
    let mut server = ServerProcess::start(&[
        "--workers",
        WORKERS,
        "--mode",
        "echo",
        "--close-timeout",
        "120",
    ]);
    // Clients that never answer the server's Close: the graceful shutdown would wait for
    // them until the close timeout, two minutes.
    let clients: Vec<RawClient> = (0..8).map(|_| RawClient::open(server.addr)).collect();
    server.signal("TERM");
    // The first is handed on (the thread that does it says so) before the second comes:
    // two at once would be one.
    let deadline = Instant::now() + WAIT;
    while !server.log_text().contains("shutting down every worker") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal("TERM");
    // Within WAIT, far short of the close timeout the graceful shutdown would wait for.
    let status = server.wait_exit(WAIT);
    assert!(status.success(), "{status}; log:\n{}", server.log_text());
    assert!(
        server.log_text().contains("second signal"),
        "{}",
        server.log_text()
    );
    drop(clients);
}

#[test]
fn a_second_server_cannot_share_the_workers_port() {
    let server = ServerProcess::start(&["--workers", "2", "--mode", "echo"]);
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["serve", "--workers", "2", "--mode", "echo", "--addr"])
        .arg(server.addr.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run a second loopchat serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is taken by another server"), "{stderr}");
    // The first still serves, alone.
    let mut client = RawClient::open(server.addr);
    client.send(&common::client_frame(true, 0x1, b"mine"));
    client.expect_frame(0x1, b"mine");
}
