//! The loop's trace (`loopchat serve --trace`): one line per turn saying what the loop
//! did, read from a real server's standard error while a real client talks to it; and
//! `--trace-every`, which logs only every Nth turn.

mod common;

use common::process::ServerProcess;
use std::time::{Duration, Instant};
use tungstenite::{Message, connect};

/// Waits, within a generous deadline, for a trace line that satisfies `wanted`.
fn wait_for_line(server: &ServerProcess, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = server.log_text();
        if let Some(line) = log
            .lines()
            .find(|line| line.contains("loopchat::trace") && wanted(line))
        {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no such trace line in:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number before `what` in a trace line: `3 events` gives 3 for "events".
fn count(line: &str, what: &str) -> u64 {
    let words: Vec<&str> = line
        .split([' ', ',', ';', '('])
        .filter(|w| !w.is_empty())
        .collect();
    let at = words
        .iter()
        .position(|w| *w == what)
        .unwrap_or_else(|| panic!("no {what} in {line}"));
    words[at - 1].parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The turn's number: `turn 12: ...` gives 12.
fn turn_number(line: &str) -> u64 {
    line.split("turn ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no turn number in {line}"))
}

#[test]
fn each_turn_is_one_line_saying_what_the_loop_did() {
    let server = ServerProcess::start(&["--mode", "echo", "--trace"]);
    let (mut socket, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    socket.send(Message::text("hello, loop")).expect("send");
    assert_eq!(socket.read().expect("echo"), Message::text("hello, loop"));

    // The turn that accepted the client, and the one that read the message and wrote
    // its echo (possibly the same turn).
    let accepted = wait_for_line(&server, |line| count(line, "accepts") == 1);
    assert!(count(&accepted, "events") >= 1, "{accepted}");
    let echoed = wait_for_line(&server, |line| count(line, "messages") == 1);
    assert!(count(&echoed, "reads") >= 1, "{echoed}");
    assert!(count(&echoed, "deliveries") >= 1, "{echoed}");
    assert!(count(&echoed, "writes") >= 1, "{echoed}");
    for phase in ["poll wait", "dispatch", "timers", "flush"] {
        assert!(echoed.contains(&format!("{phase} ")), "{echoed}");
    }
    // Turns are numbered one by one.
    let numbers: Vec<u64> = server
        .log_text()
        .lines()
        .filter(|line| line.contains("loopchat::trace"))
        .map(turn_number)
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
}

#[test]
fn every_nth_turn_is_logged_with_trace_every() {
    let server = ServerProcess::start(&["--mode", "echo", "--trace", "--trace-every", "3"]);
    let (mut socket, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    for i in 0..20 {
        socket
            .send(Message::text(format!("message {i}")))
            .expect("send");
        socket.read().expect("echo");
    }
    let line = wait_for_line(&server, |_| true);
    let logged: Vec<String> = server
        .log_text()
        .lines()
        .filter(|line| line.contains("loopchat::trace"))
        .map(str::to_owned)
        .collect();
    assert!(!logged.is_empty(), "{line}");
    for line in &logged {
        assert_eq!(turn_number(line) % 3, 0, "{line}");
    }
}

#[test]
fn without_trace_nothing_is_logged_per_turn() {
    let server = ServerProcess::start(&["--mode", "echo"]);
    let (mut socket, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    socket.send(Message::text("quiet")).expect("send");
    socket.read().expect("echo");
    assert!(!server.log_text().contains("loopchat::trace"));
}

#[test]
fn a_deadline_that_moved_does_not_wake_the_loop() {
    // The handshake's deadline (1 s here) is replaced when the client is upgraded, and
    // with pings off an open WebSocket has no deadline at all: nothing may wake an idle
    // loop. Before the loop dropped stale timer entries before sleeping, it woke once,
    // a second after each accept, to find nothing due: a turn with no events.
    let server = ServerProcess::start(&[
        "--mode",
        "echo",
        "--trace",
        "--handshake-timeout",
        "1",
        "--ping-interval",
        "0",
    ]);
    let (mut socket, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    socket.send(Message::text("first")).expect("send");
    socket.read().expect("echo");
    // Idle for well past the old deadline: this wait is the observation, not a hope.
    std::thread::sleep(Duration::from_millis(2500));
    socket.send(Message::text("second")).expect("send");
    assert_eq!(socket.read().expect("echo"), Message::text("second"));
    // Both messages' turns are in the log, so the idle time between them is too.
    let traced = || -> Vec<String> {
        server
            .log_text()
            .lines()
            .filter(|line| line.contains("loopchat::trace"))
            .map(str::to_owned)
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while traced()
        .iter()
        .filter(|l| count(l, "messages") == 1)
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", traced());
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle: Vec<String> = traced()
        .into_iter()
        .filter(|line| count(line, "events") == 0)
        .collect();
    assert!(idle.is_empty(), "turns woken for nothing: {idle:?}");
}

/// Bytes read in a turn: `3 reads (1024 B)` gives 1024.
fn bytes_read(line: &str) -> u64 {
    line.split(" reads (")
        .nth(1)
        .and_then(|rest| rest.split(" B)").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bytes read in {line}"))
}

#[test]
fn a_fast_sender_reads_at_most_one_budget_a_turn() {
    // One client sends 4 MiB at once. The loop reads a connection in 64 KiB reads until
    // its budget (256 KiB a turn, so at most 320 KiB with the read that passes it) is
    // spent, then puts it on the ready list for the next turn; it once read a second
    // budget in the same turn, in the "read again" step.
    let server = ServerProcess::start(&["--mode", "echo", "--trace"]);
    let (mut socket, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    let message = vec![7u8; 4 * 1024 * 1024];
    socket.send(Message::binary(message.clone())).expect("send");
    assert_eq!(socket.read().expect("echo"), Message::binary(message));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let traced = loop {
        let traced: Vec<String> = server
            .log_text()
            .lines()
            .filter(|line| line.contains("loopchat::trace"))
            .map(str::to_owned)
            .collect();
        if traced.iter().any(|l| count(l, "deliveries") >= 1) {
            break traced;
        }
        assert!(std::time::Instant::now() < deadline, "{traced:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let total: u64 = traced.iter().map(|l| bytes_read(l)).sum();
    assert!(total >= 4 * 1024 * 1024, "read {total} bytes in all");
    for line in &traced {
        assert!(
            bytes_read(line) <= 320 * 1024,
            "more than one budget: {line}"
        );
    }
}
