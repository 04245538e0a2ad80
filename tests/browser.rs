//! The echo server against a real browser: Debian's Chromium, driven by playwright-core
//! from `tests/browser/echo.mjs`, loads the page, uses its console, and runs a plain
//! `new WebSocket()` through text, binary, 1 MiB, 100 in a row and a clean close.
//!
//! Needs, and fails (never skips) without: `/usr/bin/chromium` (`apt-get install -y
//! chromium`), Node.js 20 or newer as `node`, and `npm ci --prefix tests/browser`.

mod common;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
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

#[test]
fn chromium_talks_to_the_echo_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_prerequisites(root);
    assert!(
        missing.is_empty(),
        "the browser test cannot run; missing:\n  - {}",
        missing.join("\n  - ")
    );

    let addr = common::echo_server();
    let out_dir = root.join("target/browser");
    fs::create_dir_all(&out_dir).expect("create target/browser");
    let screenshot = out_dir.join("echo-page.png");
    let _ = fs::remove_file(&screenshot); // so an old one can't pass for this run's
    // stdout and stderr into one file, so the lines keep their order.
    let log_path = out_dir.join("echo.log");
    let log = File::create(&log_path).expect("create the log");
    let mut child = Command::new("node")
        .arg(root.join("tests/browser/echo.mjs"))
        .arg(format!("http://{addr}"))
        .arg(&out_dir)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start node");
    let status = wait_with_timeout(&mut child, TIMEOUT);
    let output = fs::read_to_string(&log_path).unwrap_or_else(|e| format!("(no log: {e})"));
    println!("{output}");
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "tests/browser/echo.mjs failed ({status}); its output ({}):\n{output}",
            log_path.display()
        ),
        None => panic!(
            "tests/browser/echo.mjs did not finish within {} s; its output ({}):\n{output}",
            TIMEOUT.as_secs(),
            log_path.display()
        ),
    }
    assert!(
        fs::metadata(&screenshot).is_ok_and(|m| m.len() > 0),
        "no screenshot at {}",
        screenshot.display()
    );
}
