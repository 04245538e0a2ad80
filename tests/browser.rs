//! The echo server against a real browser: Debian's Chromium, driven by playwright-core
//! from `tests/browser/echo.mjs`, loads the page, uses its console, and runs a plain
//! `new WebSocket()` through text, binary, 1 MiB, 100 in a row and a clean close.
//!
//! Needs, and fails (never skips) without: `/usr/bin/chromium` (`apt-get install -y
//! chromium`), Node.js 20 or newer as `node`, and `npm ci --prefix tests/browser`.

mod common;

use common::browser::{assert_screenshots, finish_script, prepare, start_script};
use std::path::Path;

#[test]
fn chromium_talks_to_the_echo_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["echo-page.png"];
    let out_dir = prepare(root, &screenshots);
    let addr = common::echo_server();
    let (child, log) = start_script(root, "echo", &[&format!("http://{addr}")], &out_dir);
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
}
