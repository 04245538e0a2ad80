//! Scale-out in a real browser: two `loopchat serve --redis` instances, A and B, share a
//! real `redis-server`, and Debian's Chromium, driven by playwright-core from
//! `tests/browser/scaleout.mjs`, opens the chat page on each: ann's page on A, listing
//! both servers (`?ws=ws://A/ws,ws://B/ws`), ben's on B. They chat both ways in #lobby
//! and #rust; then this test kills A with SIGKILL. While ann's page is cut off, ben says
//! three things in #lobby and one in #rust; ann's page reconnects to B with the last id
//! it saw in each room, gets exactly the messages it missed as history, shows each
//! message once and in order, and gets her nickname back once the instances have dropped
//! A's members. The screenshot is `target/browser/scaleout.png`.
//!
//! The kill is a handshake over the script's pipes: it prints `KILL A` and waits for
//! `KILLED A` on its stdin, which this test writes once A has exited.
//!
//! Needs, and fails (never skips) without: `/usr/bin/chromium`, Node.js 20 or newer as
//! `node`, `npm ci --prefix tests/browser`, and `redis-server` with `redis-cli` (see
//! `tests/common/redis.rs`).

mod common;

use common::browser::{SCRIPT_TIMEOUT, assert_screenshots, prepare, report, wait_with_timeout};
use common::process::ServerProcess;
use common::redis::RedisServer;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a killed instance may take to be reaped, and the script to exit once it has
/// closed its stdout.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn a_page_whose_instance_dies_resumes_on_the_other_and_shows_what_it_missed_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["scaleout.png"];
    let out_dir = prepare(root, &screenshots);
    let redis = RedisServer::start();
    let url = redis.url();
    let mut a = ServerProcess::start(&["--redis", &url]);
    let b = ServerProcess::start(&["--redis", &url]);

    // stdout is read here (for the handshake) and copied into the log, beside stderr.
    let log_path = out_dir.join("scaleout.log");
    let log = File::create(&log_path).expect("create the log");
    let mut child = Command::new("node")
        .arg(root.join("tests/browser/scaleout.mjs"))
        .arg(format!("http://{}", a.addr))
        .arg(format!("http://{}", b.addr))
        .arg(&out_dir)
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.try_clone().expect("clone the log"))
        .spawn()
        .expect("start node");
    let mut to_script = child.stdin.take().expect("stdin is piped");
    let from_script = child.stdout.take().expect("stdout is piped");
    let (lines_tx, lines) = mpsc::channel();
    let copier = thread::spawn(move || {
        let mut log = log;
        for line in BufReader::new(from_script).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // The script asks for the kill once ann and ben have chatted; it may also fail
    // before, and then stdout closes (the channel disconnects) and its log says why.
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let asked = loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line == "KILL A" => break true,
            Ok(_) => {}
            Err(_) => break false,
        }
    };
    if asked {
        a.signal("KILL");
        a.wait_exit(EXIT_TIMEOUT);
        // The script may have failed meanwhile; then nobody reads this, and that is fine.
        let _ = writeln!(to_script, "KILLED A");
    }
    // Until the script closes its stdout: it has finished (or the deadline has passed,
    // and the wait below stops it).
    while lines
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
    {}
    let status = wait_with_timeout(&mut child, EXIT_TIMEOUT);
    drop(to_script);
    copier.join().expect("the stdout copier");
    if status.as_ref().is_some_and(|s| s.success()) {
        assert!(asked, "the script passed without asking for the kill");
    } else {
        eprintln!("instance A's log:\n{}", a.log_text());
        eprintln!("instance B's log:\n{}", b.log_text());
    }
    report(status, &log_path);
    assert_screenshots(&out_dir, &screenshots);
}
