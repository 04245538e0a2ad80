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

use loopchat::apps::{Chat, ChatConfig};
use loopchat::{Server, ServerConfig};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The script stops itself after 300 s and closes the browser within 10 more; this is
/// only the backstop for a script that hangs anyway.
const TIMEOUT: Duration = Duration::from_secs(420);

/// What is missing to run the browser test, each with how to install it.
fn missing_prerequisites(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).is_file() {
        missing.push(format!(
            "{CHROMIUM} not found: install Debian's Chromium with \
             `apt-get update && apt-get install -y chromium`"
        ));
    }
    match Command::new("node").arg("--version").output() {
        Err(e) => missing.push(format!(
            "`node` not found ({e}): install Node.js 20 or newer so that `node` is on PATH"
        )),
        Ok(out) => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let major = version
                .strip_prefix('v')
                .and_then(|v| v.split('.').next())
                .and_then(|m| m.parse::<u32>().ok());
            if !out.status.success() || major.is_none_or(|m| m < 20) {
                missing.push(format!(
                    "`node --version` says {version:?}: playwright-core needs Node.js 20 or newer"
                ));
            }
        }
    }
    let playwright = root.join("tests/browser/node_modules/playwright-core/package.json");
    if !playwright.is_file() {
        missing.push(format!(
            "{} not found: install the script's dependencies with `npm ci --prefix tests/browser`",
            playwright.display()
        ));
    }
    missing
}

/// Waits for `child` until `timeout`; then asks it to stop (SIGTERM, so it closes the
/// browser and removes its profile), and kills it if it still runs 15 s later. Returns
/// its status, or `None` on a timeout.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait for node") {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let grace = Instant::now() + Duration::from_secs(15);
    while Instant::now() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Starts `node tests/browser/SCRIPT.mjs http://ADDR OUT_DIR`, its stdout and stderr
/// into one file (so the lines keep their order), `OUT_DIR/SCRIPT.log`.
fn start_script(root: &Path, script: &str, addr: SocketAddr, out_dir: &Path) -> (Child, PathBuf) {
    let log_path = out_dir.join(format!("{script}.log"));
    let log = File::create(&log_path).expect("create the log");
    let child = Command::new("node")
        .arg(root.join(format!("tests/browser/{script}.mjs")))
        .arg(format!("http://{addr}"))
        .arg(out_dir)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start node");
    (child, log_path)
}

/// Waits for the script started by [`start_script`] (up to [`TIMEOUT`]) and panics with
/// its output unless it passed.
fn finish_script(mut child: Child, log_path: &Path) {
    let status = wait_with_timeout(&mut child, TIMEOUT);
    let output = fs::read_to_string(log_path).unwrap_or_else(|e| format!("(no log: {e})"));
    println!("{output}");
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "{} failed ({status}); its output:\n{output}",
            log_path.display()
        ),
        None => panic!(
            "{} did not finish within {} s; its output:\n{output}",
            log_path.display(),
            TIMEOUT.as_secs(),
        ),
    }
}

/// Checks the prerequisites and makes `target/browser`, with none of `screenshots` left
/// from an earlier run (so that an old one cannot pass for this run's).
fn prepare(root: &Path, screenshots: &[&str]) -> PathBuf {
    let missing = missing_prerequisites(root);
    assert!(
        missing.is_empty(),
        "the browser test cannot run; missing:\n  - {}",
        missing.join("\n  - ")
    );
    let out_dir = root.join("target/browser");
    fs::create_dir_all(&out_dir).expect("create target/browser");
    for screenshot in screenshots {
        let _ = fs::remove_file(out_dir.join(screenshot));
    }
    out_dir
}

fn assert_screenshots(out_dir: &Path, screenshots: &[&str]) {
    for screenshot in screenshots {
        let path = out_dir.join(screenshot);
        assert!(
            fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "no screenshot at {}",
            path.display()
        );
    }
}

/// Held by each test while its Chromium runs, so that the two never run at once: two
/// browsers side by side on a loaded 2-core machine is how steps time out.
static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes [`ONE_BROWSER_AT_A_TIME`], even if the other test panicked holding it.
fn one_browser_at_a_time() -> MutexGuard<'static, ()> {
    ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn chromium_chats_with_the_chat_server() {
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["chat-desktop.png", "chat-phone.png"];
    let out_dir = prepare(root, &screenshots);
    let addr = common::start(Chat::new(ChatConfig::default()));
    let (child, log) = start_script(root, "chat", addr, &out_dir);
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
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
    let deadline = Instant::now() + TIMEOUT;
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

    let (child, log) = start_script(root, "together", addr, &out_dir);
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
