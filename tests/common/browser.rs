//! Running the headless-Chromium scripts of `tests/browser/`: the prerequisites (each
//! missing one fails the test with how to install it, never skips it), `target/browser/`
//! for their logs and screenshots, and a `node` child that is waited for with a bound
//! and asked to stop (so that it closes Chromium and removes its profile) when it hangs.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Debian's Chromium, the browser every script drives.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The scripts stop themselves after 300 s and close the browser within 10 more; this is
/// only the backstop for a script that hangs anyway.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);

/// What is missing to run a browser test, each with how to install it.
pub fn missing_prerequisites(root: &Path) -> Vec<String> {
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

/// Checks the prerequisites and makes `target/browser`, with none of `screenshots` left
/// from an earlier run (so that an old one cannot pass for this run's).
pub fn prepare(root: &Path, screenshots: &[&str]) -> PathBuf {
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

pub fn assert_screenshots(out_dir: &Path, screenshots: &[&str]) {
    for screenshot in screenshots {
        let path = out_dir.join(screenshot);
        assert!(
            fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "no screenshot at {}",
            path.display()
        );
    }
}

/// Held by each test of a test program while its Chromium runs, so that two never run
/// at once: two browsers side by side on a loaded 2-core machine is how steps time out.
static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes [`ONE_BROWSER_AT_A_TIME`], even if another test panicked holding it.
pub fn one_browser_at_a_time() -> MutexGuard<'static, ()> {
    ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for `child` until `timeout`; then asks it to stop (SIGTERM, so it closes the
/// browser and removes its profile), and kills it if it still runs 15 s later. Returns
/// its status, or `None` on a timeout.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

/// Starts `node tests/browser/SCRIPT.mjs ARGS... OUT_DIR`, its stdout and stderr into
/// one file (so the lines keep their order), `OUT_DIR/SCRIPT.log`.
pub fn start_script(root: &Path, script: &str, args: &[&str], out_dir: &Path) -> (Child, PathBuf) {
    start_script_with(root, script, args, out_dir, &[])
}

/// Like [`start_script`], with these environment variables set for the script.
pub fn start_script_with(
    root: &Path,
    script: &str,
    args: &[&str],
    out_dir: &Path,
    env: &[(&str, &Path)],
) -> (Child, PathBuf) {
    let log_path = out_dir.join(format!("{script}.log"));
    let log = File::create(&log_path).expect("create the log");
    let child = Command::new("node")
        .arg(root.join(format!("tests/browser/{script}.mjs")))
        .args(args)
        .arg(out_dir)
        .envs(env.iter().copied())
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start node");
    (child, log_path)
}

/// Waits for a script (up to [`SCRIPT_TIMEOUT`]) and panics with its output unless it
/// passed.
pub fn finish_script(mut child: Child, log_path: &Path) {
    let status = wait_with_timeout(&mut child, SCRIPT_TIMEOUT);
    report(status, log_path);
}

/// Prints the script's log, and panics with it unless `status` (from
/// [`wait_with_timeout`]) is a success.
pub fn report(status: Option<ExitStatus>, log_path: &Path) {
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
            SCRIPT_TIMEOUT.as_secs(),
        ),
    }
}
