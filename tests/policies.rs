//! The server's protective policies over real sockets: the Origin allowlist and the
//! per-connection message rate.

mod common;

use common::{RawClient, upgrade_request};
use loopchat::ServerConfig;
use loopchat::http::OriginPolicy;
use loopchat::rate::Rate;

/// An upgrade request with an `Origin` header.
fn upgrade_from(host: &str, origin: &str) -> Vec<u8> {
    let request = String::from_utf8(upgrade_request(host, "/ws")).unwrap();
    request
        .replacen("\r\n\r\n", &format!("\r\nOrigin: {origin}\r\n\r\n"), 1)
        .into_bytes()
}

#[test]
fn origins_not_on_the_allowlist_get_403() {
    let config = ServerConfig {
        origins: OriginPolicy::from_list(&["https://chat.example".into()]),
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, loopchat::apps::Echo);
    let host = addr.to_string();

    let mut evil = RawClient::connect(addr);
    evil.send(&upgrade_from(&host, "https://evil.example"));
    let (head, body) = evil.read_http_response();
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert!(
        String::from_utf8_lossy(&body).contains("https://evil.example"),
        "the reason names the origin: {body:?}"
    );
    evil.expect_eof();

    for allowed in ["https://chat.example", &format!("http://{host}")] {
        let mut client = RawClient::connect(addr);
        client.send(&upgrade_from(&host, allowed));
        let head = client.read_http_head();
        assert!(head.starts_with("HTTP/1.1 101 "), "{allowed}: {head}");
    }
    // A program that is not a browser sends no Origin and is let in.
    let mut program = RawClient::connect(addr);
    program.send(&upgrade_request(&host, "/ws"));
    assert!(program.read_http_head().starts_with("HTTP/1.1 101 "));
}

#[test]
fn by_default_any_origin_may_connect() {
    let addr = common::start(loopchat::apps::Echo);
    let mut console = RawClient::connect(addr);
    console.send(&upgrade_from(
        &addr.to_string(),
        "https://some-other-site.example",
    ));
    assert!(console.read_http_head().starts_with("HTTP/1.1 101 "));
}

#[test]
fn a_client_over_the_message_rate_is_closed_with_1008_and_others_go_on() {
    let config = ServerConfig {
        // Five at once, then one every 10 s: the test's burst of 20 cannot pass.
        message_rate: Some(Rate {
            per_second: 0.1,
            burst: 5,
        }),
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, loopchat::apps::Echo);

    let mut flooder = RawClient::open(addr);
    let mut calm = RawClient::open(addr);
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.extend(common::client_frame(true, 0x1, format!("m{i}").as_bytes()));
    }
    flooder.send(&burst);
    // The budget is delivered, in order; then the Close, and nothing after it.
    for i in 0..5 {
        flooder.expect_frame(0x1, format!("m{i}").as_bytes());
    }
    let reason = flooder.expect_close(1008);
    assert_eq!(reason, "message rate exceeded");
    // Answering the Close completes the handshake; the server then closes TCP.
    flooder.send(&common::client_frame(true, 0x8, &1008u16.to_be_bytes()));
    flooder.expect_eof();

    calm.send(&common::client_frame(true, 0x1, b"still here"));
    calm.expect_frame(0x1, b"still here");
}

#[test]
fn a_line_client_over_the_message_rate_is_told_and_closed() {
    use std::io::{BufRead, BufReader, Write};
    let config = ServerConfig {
        message_rate: Some(Rate {
            per_second: 0.1,
            burst: 3,
        }),
        line_addr: Some("127.0.0.1:0".parse().unwrap()),
        addr: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut server = loopchat::Server::bind(config, loopchat::apps::Echo).unwrap();
        tx.send(server.line_addr().unwrap()).unwrap();
        server.run()
    });
    let line_addr = rx.recv().unwrap();

    let mut stream = std::net::TcpStream::connect(line_addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"a\nb\nc\nd\ne\n").unwrap();
    let lines: Vec<String> = BufReader::new(stream)
        .lines()
        .map(|line| line.unwrap())
        .collect();
    assert_eq!(lines, ["a", "b", "c", "! message rate exceeded; closing"]);
}

/// Echoes text; works on binary (a checksum, many times over, as an application that
/// parses what it gets would) and sends nothing back, so a client can write binary
/// frames faster than the server gets through them. Records, at each text message, how
/// many binary ones it has handled so far.
struct EchoText {
    checksum: u64,
    binary: u64,
    binary_at_text: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl loopchat::Handler for EchoText {
    fn on_message(
        &mut self,
        ctx: &mut loopchat::Context<'_>,
        conn: loopchat::ConnectionId,
        message: loopchat::Message<'_>,
    ) {
        match message {
            loopchat::Message::Text(_) => {
                self.binary_at_text.lock().unwrap().push(self.binary);
                ctx.send(conn, message).expect("room for an echo");
            }
            loopchat::Message::Binary(bytes) => {
                self.binary += 1;
                for round in 0..8u64 {
                    for chunk in bytes.chunks(8) {
                        let word = chunk
                            .iter()
                            .fold(round, |w, &b| w.rotate_left(8) ^ u64::from(b));
                        self.checksum = self.checksum.wrapping_mul(31).wrapping_add(word);
                    }
                }
            }
        }
    }
}

#[test]
fn a_client_that_floods_the_server_cannot_starve_the_others() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let binary_at_text = Arc::new(Mutex::new(Vec::new()));
    let addr = common::start(EchoText {
        checksum: 0,
        binary: 0,
        binary_at_text: Arc::clone(&binary_at_text),
    });
    let flooder = RawClient::open(addr);
    let mut calm = RawClient::open(addr);

    // The flooder writes 64 KiB frames as fast as loopback takes them, from its own
    // thread, for as long as the calm client talks: faster than the server handles
    // them, so its socket never runs dry, and reading it until WouldBlock would go on
    // and on. The read budget (256 KiB a turn) hands the turn on to the others.
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = {
        let stop = Arc::clone(&stop);
        let mut stream = flooder.stream;
        std::thread::spawn(move || {
            let mut burst = Vec::new();
            for _ in 0..16 {
                burst.extend(common::client_frame(true, 0x2, &[7; 64 * 1024]));
            }
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = stream.write_all(&burst) {
                    panic!("the flooder was cut off: {e}");
                }
            }
        })
    };
    // The flood is under way before the calm client starts: the handler has handled
    // some of it (waited for, not slept on).
    let deadline = std::time::Instant::now() + common::IO_TIMEOUT;
    calm.send(&common::client_frame(true, 0x1, b"flood started?"));
    loop {
        calm.expect_frame(0x1, b"flood started?");
        if binary_at_text
            .lock()
            .unwrap()
            .last()
            .is_some_and(|&n| n > 0)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server handled none of the flooder's frames"
        );
        calm.send(&common::client_frame(true, 0x1, b"flood started?"));
    }
    binary_at_text.lock().unwrap().clear();

    // Each round trip must complete within the read timeout (20 s) while the flood goes
    // on. Without the read budget the loop reads the flooder until its socket is empty,
    // which it never is: the calm client's message waits until the read times out.
    const ROUND_TRIPS: usize = 21;
    for i in 0..ROUND_TRIPS {
        let words = format!("round trip {i}");
        calm.send(&common::client_frame(true, 0x1, words.as_bytes()));
        calm.expect_frame(0x1, words.as_bytes());
    }
    stop.store(true, Ordering::Relaxed);
    flooding.join().expect("the flooder thread");

    // And the flood really went on all along: the server handled flood frames between
    // the first round trip and the last.
    let counts = binary_at_text.lock().unwrap().clone();
    assert_eq!(counts.len(), ROUND_TRIPS);
    assert!(
        counts[ROUND_TRIPS - 1] > counts[0],
        "no flood frame was handled during the round trips: {counts:?}"
    );
    // Between two of the calm client's messages the server handles the flood frames it
    // reads in the turns this thread takes to read the echo and send again: with a
    // budget of 256 KiB a turn (four of these frames), 8 or so when this thread is
    // prompt, more when the machine keeps it waiting. The smallest of the 20 gaps needs
    // only one prompt round trip; a loop that read far more than its budget in a turn
    // (16 frames, 1 MiB, or more) could not get it under 64.
    let mut gaps: Vec<u64> = counts.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    eprintln!("flood frames (64 KiB each) between two round trips of another client: {gaps:?}");
    assert!(
        gaps[0] <= 64,
        "the server handled at least {} flood frames (64 KiB each) between any two round \
         trips of another client: {gaps:?}",
        gaps[0]
    );
}

#[test]
fn past_the_connection_limit_a_client_gets_503_then_close() {
    let config = ServerConfig {
        max_connections: 3,
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, loopchat::apps::Echo);
    let mut open: Vec<RawClient> = (0..3).map(|_| RawClient::open(addr)).collect();
    for client in &mut open {
        client.send(&common::client_frame(true, 0x1, b"in"));
        client.expect_frame(0x1, b"in");
    }

    // The fourth is answered 503 and closed, whether or not it sent its request yet.
    let mut extra = RawClient::connect(addr);
    extra.send(&upgrade_request(&addr.to_string(), "/"));
    let (head, _body) = extra.read_http_response();
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    extra.expect_eof();

    // Those in are served as before; once one leaves, a newcomer is let in. (The server
    // notices the leaving client when it reads its close; until then it still counts.)
    open[0].send(&common::client_frame(true, 0x1, b"still in"));
    open[0].expect_frame(0x1, b"still in");
    open.pop().expect("three").close_cleanly(1000);
    let deadline = std::time::Instant::now() + common::IO_TIMEOUT;
    let mut newcomer = loop {
        let mut client = RawClient::connect(addr);
        client.send(&upgrade_request(&addr.to_string(), "/"));
        let head = client.read_http_head();
        if head.starts_with("HTTP/1.1 101 ") {
            break client;
        }
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            std::time::Instant::now() < deadline,
            "still 503 after a client left"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    newcomer.send(&common::client_frame(true, 0x1, b"let in"));
    newcomer.expect_frame(0x1, b"let in");
}
