//! loopchat's client role with permessage-deflate against an independent implementation:
//! an echo server on Node's `ws` (`tests/browser/ws_echo_server.mjs`), which compresses
//! every message and keeps its compression context from message to message, as it does
//! by default. `loopchat bench echo --deflate` and the terminal client must both read
//! what it sends (inflating with the server's window kept) and send what it can read.
//!
//! Node.js 20 and the npm package `ws` (`npm ci --prefix tests/browser`, which
//! `scripts/test` runs) are required: a missing one fails the test with how to install
//! it, never skips it.

mod common;

use common::IO_TIMEOUT;
use common::node_ws::NodeWs;
use common::{expect_line, lines_of};
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

/// The Node `ws` echo server.
struct NodeEcho(NodeWs);

impl NodeEcho {
    fn start() -> NodeEcho {
        NodeEcho(NodeWs::start::<&str>(&[]))
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.0.port)
    }

    /// The Sec-WebSocket-Extensions it answered the next handshake with.
    fn next_answer(&self) -> String {
        self.0.next("answer")
    }
}

#[test]
fn bench_echo_with_deflate_round_trips_through_node_ws() {
    let node = NodeEcho::start();
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["bench", "echo", "--url", &node.url(), "--clients", "4"])
        .args(["--duration", "0.5", "--warmup", "0.2", "--drain", "3"])
        .args([
            "--size",
            "1024",
            "--payload",
            "chat-json",
            "--deflate",
            "--json",
        ])
        .output()
        .expect("run loopchat bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    // ws keeps its context: nothing in its answer tells the client it may forget.
    for _ in 0..4 {
        let answer = node.next_answer();
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
        assert!(!answer.contains("server_no_context_takeover"), "{answer}");
    }
    assert_eq!(report["deflate_negotiated"], true, "{report}");
    assert_eq!(report["connections"]["deflate_negotiated"], 4, "{report}");
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent > 0, "{report}");
    assert_eq!(report["delivered"], report["expected"], "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["connections"]["closed_cleanly"], 4, "{report}");
    // Both ways compressed: each 1 KiB message costs well under 1 KiB on the wire.
    let received = report["wire_bytes_received_per_delivery"].as_f64().unwrap();
    let sent = report["wire_bytes_sent_per_message"].as_f64().unwrap();
    assert!(received < 0.75 * 1024.0 && sent < 0.75 * 1024.0, "{report}");
}

#[test]
fn the_terminal_client_and_node_ws_understand_each_others_compression() {
    let node = NodeEcho::start();
    let mut client = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["client", &node.url(), "--linger", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loopchat client");
    let mut stdin = client.stdin.take().expect("stdin");
    let stdout = lines_of(client.stdout.take().expect("stdout"));
    let stderr = lines_of(client.stderr.take().expect("stderr"));
    let answer = node.next_answer();
    assert!(answer.starts_with("permessage-deflate"), "{answer}");

    // The echo comes back as the client sent it: the request's JSON, shown as it is
    // (it is no chat event). Long lines go compressed, each later one referring back to
    // the earlier ones on both sides; a short one goes as it is.
    let long = "Is the build green again? I think the flaky test was the one with the clock. "
        .repeat(8)
        .trim_end()
        .to_owned();
    let lines = [
        long.clone(),
        long.clone(),
        "short".to_owned(),
        format!("{long} once more"),
    ];
    for line in &lines {
        writeln!(stdin, "{line}").expect("type a line");
        let echoed = format!(r#"{{"type":"message","text":"{line}"}}"#);
        expect_line(&stdout, &format!("{:.40}...", echoed), |l| l == echoed);
    }
    writeln!(stdin, "/quit").expect("type /quit");
    let deadline = Instant::now() + IO_TIMEOUT;
    let status = loop {
        if let Some(status) = client.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the client did not exit");
        thread::sleep(std::time::Duration::from_millis(10));
    };
    let notices: Vec<String> = stderr.try_iter().collect();
    assert!(status.success(), "{status}; stderr {notices:?}");
}
