//! `wss://` in loopchat's client role: the terminal client and `loopchat bench` against
//! an independent TLS WebSocket server, Node's `https` with the `ws` package
//! (`tests/browser/ws_echo_server.mjs --tls-cert --tls-key`, an echo server, or with
//! `--relay` a broadcast relay), serving a certificate made at test time by a CA also
//! made at test time ([`common::tls::TestCerts`]).
//!
//! What is checked: the round trip trusting the CA (`--ca-file`), and trusting anything
//! (`--insecure`, with its warning); a certificate from another CA, or for another name,
//! refused in one line with exit status 1; the load generator's echo, broadcast and
//! connections scenarios over TLS, with nothing lost, `tls: true` in the report, and
//! the TLS bytes counted on the wire.
//!
//! Node.js 20 and the npm package `ws` (`npm ci --prefix tests/browser`, which
//! `scripts/test` runs) are required: a missing one fails the test with how to install
//! it, never skips it. Every wait is bounded by [`common::IO_TIMEOUT`].

mod common;

use common::IO_TIMEOUT;
use common::node_ws::NodeWs;
use common::tls::TestCerts;
use common::{expect_line, lines_of};
use std::io::Write;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

/// A Node `ws` server over TLS.
struct NodeWss(NodeWs);

impl NodeWss {
    /// An echo server serving `certs`' server certificate.
    fn echo(certs: &TestCerts) -> NodeWss {
        NodeWss::start(certs, &[])
    }

    /// A relay: each message goes to every other client.
    fn relay(certs: &TestCerts) -> NodeWss {
        NodeWss::start(certs, &["--relay"])
    }

    fn start(certs: &TestCerts, args: &[&str]) -> NodeWss {
        let mut all = vec![
            "--tls-cert".as_ref(),
            certs.cert_pem.as_os_str(),
            "--tls-key".as_ref(),
            certs.key_pem.as_os_str(),
        ];
        all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
        NodeWss(NodeWs::start(&all))
    }

    /// Its URL, naming it by `host` (`127.0.0.1` or `localhost`).
    fn url(&self, host: &str) -> String {
        format!("wss://{host}:{}/", self.0.port)
    }

    /// Waits for Node to report the next TLS handshake: `sni=NAME alpn=PROTOCOL`.
    fn next_handshake(&self) -> String {
        self.0.next("tls")
    }

    /// Waits for Node to report a failed TLS handshake (the alert our client sent).
    fn expect_tls_error(&self) -> String {
        format!("tls-error {}", self.0.next("tls-error"))
    }
}

/// `loopchat client URL ARGS --linger 60`, through pipes.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Client {
    fn spawn(url: &str, args: &[&str]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loopchat"))
            .args(["client", url, "--linger", "60"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loopchat client");
        Client {
            stdin: child.stdin.take(),
            stdout: lines_of(child.stdout.take().expect("stdout")),
            stderr: lines_of(child.stderr.take().expect("stderr")),
            child,
        }
    }

    /// Types `line` and waits for the echo server to send it back (the request's JSON,
    /// shown as it is, since it is no chat event).
    fn round_trip(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("type a line");
        let echoed = format!(r#"{{"type":"message","text":"{line}"}}"#);
        expect_line(&self.stdout, &echoed, |l| l == echoed);
    }

    /// Waits for the process to exit (killing it after [`IO_TIMEOUT`]); returns its
    /// status and its standard error.
    fn wait_exit(&mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + IO_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr: Vec<String> = self.stderr.try_iter().collect();
                panic!("the client did not exit within {IO_TIMEOUT:?}; stderr {stderr:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The stream ends with the process: read it to its end.
        let stderr = self.stderr.iter().collect();
        (status, stderr)
    }
}

/// Runs the client until it fails, with no input; returns its status and standard error.
fn client_failure(url: &str, args: &[&str]) -> (ExitStatus, Vec<String>) {
    let mut client = Client::spawn(url, args);
    client.wait_exit()
}

#[test]
fn the_terminal_client_chats_over_wss_trusting_the_ca_file() {
    let certs = TestCerts::new(&["127.0.0.1", "localhost"]);
    let node = NodeWss::echo(&certs);
    let ca = certs.ca_pem.to_str().unwrap();
    // By IP address (checked against the certificate, not sent with SNI) and by name
    // (sent with SNI and checked). ALPN says http/1.1 either way.
    for (host, sni) in [("127.0.0.1", "none"), ("localhost", "localhost")] {
        let mut client = Client::spawn(&node.url(host), &["--ca-file", ca]);
        client.round_trip("hello over TLS");
        assert_eq!(node.next_handshake(), format!("sni={sni} alpn=http/1.1"));
        // Long enough to go compressed: permessage-deflate inside TLS.
        client.round_trip(&"all of this goes encrypted, and compressed first. ".repeat(6));
        writeln!(client.stdin.as_mut().unwrap(), "/quit").unwrap();
        let (status, stderr) = client.wait_exit();
        assert!(status.success(), "{host}: {status}; stderr {stderr:?}");
        assert!(stderr.is_empty(), "{host}: {stderr:?}");
    }
}

#[test]
fn insecure_accepts_a_certificate_it_cannot_check_and_says_so() {
    let certs = TestCerts::new(&["127.0.0.1"]);
    let node = NodeWss::echo(&certs);
    // Nothing trusts this CA, and by the name `localhost` the certificate (for
    // 127.0.0.1 only) names the wrong host: accepted all the same.
    for host in ["localhost", "127.0.0.1"] {
        let mut client = Client::spawn(&node.url(host), &["--insecure"]);
        client.round_trip("nobody checked who I am talking to");
        writeln!(client.stdin.as_mut().unwrap(), "/quit").unwrap();
        let (status, stderr) = client.wait_exit();
        assert!(status.success(), "{host}: {status}; stderr {stderr:?}");
        assert_eq!(stderr.len(), 1, "{host}: {stderr:?}");
        assert!(
            stderr[0].starts_with("warning: --insecure: the server's certificate is not checked"),
            "{host}: {stderr:?}"
        );
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused_in_one_line() {
    let certs = TestCerts::new(&["127.0.0.1", "localhost"]);
    let node = NodeWss::echo(&certs);
    let other = certs.other_ca_pem();
    let (status, stderr) = client_failure(
        &node.url("127.0.0.1"),
        &["--ca-file", other.to_str().unwrap()],
    );
    assert_eq!(status.code(), Some(1), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(
        stderr[0].contains("TLS with 127.0.0.1")
            && stderr[0].contains("UnknownIssuer")
            && stderr[0].contains("not signed by a CA in --ca-file"),
        "{stderr:?}"
    );
    // The client told the server why, with an alert.
    let error = node.expect_tls_error();
    assert!(error.contains("UNKNOWN_CA"), "{error}");
}

#[test]
fn a_certificate_for_another_name_is_refused_in_one_line() {
    let certs = TestCerts::new(&["chat.example"]);
    let node = NodeWss::echo(&certs);
    let ca = certs.ca_pem.to_str().unwrap();
    let (status, stderr) = client_failure(&node.url("127.0.0.1"), &["--ca-file", ca]);
    assert_eq!(status.code(), Some(1), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(
        stderr[0].contains("TLS with 127.0.0.1")
            && stderr[0].contains("not valid for name \"127.0.0.1\"")
            && stderr[0].contains("does not name the URL's host"),
        "{stderr:?}"
    );
}

#[test]
fn wss_without_a_way_to_check_the_certificate_is_refused_before_connecting() {
    let certs = TestCerts::new(&["127.0.0.1"]);
    let node = NodeWss::echo(&certs);
    let (status, stderr) = client_failure(&node.url("127.0.0.1"), &[]);
    assert_eq!(status.code(), Some(1), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(
        stderr[0].contains("--ca-file") && stderr[0].contains("--insecure"),
        "{stderr:?}"
    );
    // Both at once is refused by the command line.
    let ca = certs.ca_pem.to_str().unwrap();
    let (status, stderr) = client_failure(&node.url("127.0.0.1"), &["--ca-file", ca, "--insecure"]);
    assert_eq!(status.code(), Some(2), "{stderr:?}");
    assert!(
        stderr.join("\n").contains("cannot be used with"),
        "{stderr:?}"
    );
}

/// `loopchat bench ARGS --json`, and its report.
fn bench(args: &[&str]) -> (Output, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run loopchat bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// The run succeeded, and every expected delivery arrived, once and in order.
fn assert_nothing_lost(output: &Output, report: &serde_json::Value, clients: u64) {
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["tls"], true, "{report}");
    assert!(report["sent"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["delivered"], report["expected"], "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["out_of_order"], 0, "{report}");
    assert_eq!(report["connections"]["opened"], clients, "{report}");
    assert_eq!(report["connections"]["closed_cleanly"], clients, "{report}");
}

#[test]
fn bench_echo_over_wss_loses_nothing_and_counts_tls_bytes() {
    let certs = TestCerts::new(&["127.0.0.1", "localhost"]);
    let node = NodeWss::echo(&certs);
    let url = node.url("127.0.0.1");
    let ca = certs.ca_pem.to_str().unwrap();
    let (output, report) = bench(&[
        "echo",
        "--url",
        &url,
        "--ca-file",
        ca,
        "--clients",
        "4",
        "--size",
        "64",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--drain",
        "5",
    ]);
    assert_nothing_lost(&output, &report, 4);
    // A 64-byte message is a 66-byte frame from the server; on the wire over TLS each
    // delivery costs more than that (every record adds a header and a tag).
    let received = report["wire_bytes_received_per_delivery"].as_f64().unwrap();
    assert!(received > 66.0, "{report}");
    let sent = report["wire_bytes_sent_per_message"].as_f64().unwrap();
    assert!(sent > 70.0, "{report}"); // our frames are masked: 70 bytes before TLS
}

#[test]
fn bench_broadcast_and_connections_over_wss() {
    let certs = TestCerts::new(&["127.0.0.1"]);
    let node = NodeWss::relay(&certs);
    let url = node.url("127.0.0.1");
    let (output, report) = bench(&[
        "broadcast",
        "--url",
        &url,
        "--insecure",
        "--clients",
        "6",
        "--senders",
        "2",
        "--window",
        "4",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--drain",
        "5",
    ]);
    assert_nothing_lost(&output, &report, 6);
    assert_eq!(report["self_delivery"], false, "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: --insecure"), "{stderr}");

    let (output, report) = bench(&[
        "connections",
        "--url",
        &url,
        "--insecure",
        "--clients",
        "20",
        "--hold",
        "0.2",
    ]);
    assert!(output.status.success(), "{report}");
    assert_eq!(report["tls"], true, "{report}");
    assert_eq!(report["connections"]["opened"], 20, "{report}");
    assert_eq!(report["connections"]["closed_cleanly"], 20, "{report}");
}

#[test]
fn bench_refuses_an_untrusted_server_and_a_mix_of_schemes() {
    let certs = TestCerts::new(&["127.0.0.1"]);
    let node = NodeWss::echo(&certs);
    let url = node.url("127.0.0.1");
    let other = certs.other_ca_pem();
    let (output, report) = bench(&[
        "echo",
        "--url",
        &url,
        "--ca-file",
        other.to_str().unwrap(),
        "--clients",
        "2",
        "--duration",
        "0.2",
    ]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert_eq!(report["tls"], true, "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("only 0 clients connected") && error.contains("UnknownIssuer"),
        "{error}"
    );

    let (output, report) = bench(&["echo", "--url", &url, "--clients", "2"]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("--ca-file") && error.contains("--insecure"),
        "{error}"
    );

    let plain = format!("ws://127.0.0.1:{}/", node.0.port);
    let (output, report) = bench(&["echo", "--url", &url, "--url", &plain, "--insecure"]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("mixes ws:// and wss://"),
        "{report}"
    );
}
