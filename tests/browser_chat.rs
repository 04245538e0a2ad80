//! The chat against real browsers: Debian's Chromium, driven by playwright-core from
//! `tests/browser/chat.mjs`, opens the chat page as three people in separate browser
//! contexts (two on a desktop, one on a phone) who pick nicknames, chat in a room, send
//! and see an image, write privately (with unread markers), join and leave rooms, send a
//! message that looks like HTML (shown as text), and reconnect; the phone layout must not
//! scroll sideways. Screenshots go to `target/browser/chat-desktop.png` and
//! `chat-phone.png`.
//!
//! A second test puts two browser pages (`tests/browser/together.mjs`), the terminal
//! client (`loopchat client`, through pipes) and a raw TCP user of the line port in the
//! same room, and has each hear the others; its screenshot is `target/browser/together.png`.
//!
//! Needs, and fails (never skips) without: `/usr/bin/chromium` (`apt-get install -y
//! chromium`), Node.js 20 or newer as `node`, and `npm ci --prefix tests/browser`.

mod common;

use common::browser::{
    SCRIPT_TIMEOUT, assert_screenshots, finish_script, one_browser_at_a_time, prepare, start_script,
};
use loopchat::apps::{Chat, ChatConfig};
use loopchat::{Server, ServerConfig};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;

#[test]
fn chromium_chats_with_the_chat_server() {
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["chat-desktop.png", "chat-phone.png"];
    let out_dir = prepare(root, &screenshots);
    let addr = common::start(Chat::new(ChatConfig::default()));
    let (child, log) = start_script(root, "chat", &[&format!("http://{addr}")], &out_dir);
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
}

#[test]
fn chromium_chats_over_https_and_wss() {
    // The same script, the page served over https:// and its WebSocket over wss://, with
    // a certificate made here by a test CA.
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["chat-desktop.png", "chat-phone.png"];
    let out_dir = prepare(root, &screenshots).join("tls");
    std::fs::create_dir_all(&out_dir).unwrap();
    let certs = common::tls::TestCerts::new(&["127.0.0.1", "localhost"]);
    let config = loopchat::ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: Some(loopchat::tls::TlsFiles {
            cert: certs.cert_pem.clone(),
            key: certs.key_pem.clone(),
        }),
        ..loopchat::ServerConfig::default()
    };
    let addr = common::start_with(config, Chat::new(ChatConfig::default()));
    let env = [
        ("LOOPCHAT_TEST_TLS_CERT", certs.cert_pem.as_path()),
        ("NODE_EXTRA_CA_CERTS", certs.ca_pem.as_path()),
    ];
    let base = format!("https://localhost:{}", addr.port());
    let (child, log) = common::browser::start_script_with(root, "chat", &[&base], &out_dir, &env);
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(
        output.contains("wss://"),
        "the page did not use wss://:\n{output}"
    );
}

/// What tess and ned say, and what they wait for; in step with tests/browser/together.mjs.
const GREETING: &str = "[#lobby] ann: Hello tess and ned, this is ann in a browser.";
const FROM_TESS: &str = "hi ann, tess here on the terminal client";
const FROM_NED: &str = "ned on netcat says hi";
const BEN_IMAGE: &str = "[#lobby] ben sent an image (image/png, ";
const LAST: &str = "[#lobby] ben: Got both of your messages, tess and ned.";

/// The lines read from `source`, one by one, through a channel (a thread reads).
fn lines_of(source: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads `lines` until one starts with `wanted`, or panics at `deadline` with what was
/// read, the browser script's log so far and `who`.
fn wait_for(lines: &Receiver<String>, who: &str, wanted: &str, deadline: Instant, log: &Path) {
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(wanted) => return,
            Ok(line) => seen.push(line),
            Err(e) => panic!(
                "{who} never saw {wanted:?} ({e}); it saw {seen:#?}\nthe browser script's \
                 log so far:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

/// The "done when": two browser pages, a terminal client and a netcat user chat
/// with each other in the same room.
#[test]
fn two_pages_a_terminal_client_and_a_netcat_user_chat_together() {
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["together.png"];
    let out_dir = prepare(root, &screenshots);
    let config = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        line_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::default()
    };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut server = Server::bind(config, Chat::new(ChatConfig::default())).expect("bind");
        let addrs = (server.local_addr(), server.line_addr());
        tx.send(addrs).expect("send the addresses");
        server.run()
    });
    let (addr, line_addr) = match rx.recv().expect("the server started") {
        (Ok(addr), Some(line_addr)) => (addr, line_addr),
        other => panic!("no addresses: {other:?}"),
    };
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let no_log = out_dir.join("together.log");

    // tess: the terminal client, through pipes.
    let mut tess = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["client", &format!("ws://{addr}/ws"), "--nick", "tess"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the terminal client");
    let mut tess_in = tess.stdin.take().expect("stdin");
    let tess_out = lines_of(tess.stdout.take().expect("stdout"));
    wait_for(
        &tess_out,
        "tess",
        "* guest-1 is now tess",
        deadline,
        &no_log,
    );

    // ned: a raw TCP connection to the line port, as `nc 127.0.0.1 PORT` would be.
    let mut ned = TcpStream::connect(line_addr).expect("connect to the line port");
    let ned_out = lines_of(ned.try_clone().expect("clone"));
    ned.write_all(b"/nick ned\n").expect("write");
    wait_for(&ned_out, "ned", "* guest-2 is now ned", deadline, &no_log);
    wait_for(&tess_out, "tess", "* guest-2 is now ned", deadline, &no_log);

    let (child, log) = start_script(root, "together", &[&format!("http://{addr}")], &out_dir);
    wait_for(&tess_out, "tess", GREETING, deadline, &log);
    wait_for(&ned_out, "ned", GREETING, deadline, &log);
    writeln!(tess_in, "{FROM_TESS}").expect("tess types");
    writeln!(ned, "{FROM_NED}").expect("ned types");
    wait_for(
        &tess_out,
        "tess",
        &format!("[#lobby] ned: {FROM_NED}"),
        deadline,
        &log,
    );
    wait_for(
        &ned_out,
        "ned",
        &format!("[#lobby] tess: {FROM_TESS}"),
        deadline,
        &log,
    );
    for (who, lines) in [("tess", &tess_out), ("ned", &ned_out)] {
        wait_for(lines, who, BEN_IMAGE, deadline, &log);
        wait_for(lines, who, LAST, deadline, &log);
    }
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);

    writeln!(tess_in, "/quit").expect("tess quits");
    let status = tess.wait().expect("wait for the terminal client");
    assert!(status.success(), "the terminal client exited with {status}");
    ned.write_all(b"/quit\n").expect("ned quits");
}
