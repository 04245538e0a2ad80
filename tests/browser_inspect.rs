//! The admin port's live page (`/inspect`) in a real browser: Debian's Chromium, driven
//! by playwright-core from `tests/browser/inspect.mjs`, opens the page of a real
//! `loopchat serve --admin-addr` (with a bearer token) while chat clients are connected,
//! and checks what it shows against the snapshots the server sent: live status, turns per
//! second, the strip of recent turns, connections by phase, the rooms, the histograms;
//! pause and resume; the phone layout (no sideways scroll); a reconnect; the Redis card,
//! hidden without `--redis` and showing the link up with it (a real `redis-server`); the
//! workers card, with `--workers 4`, showing each worker's clients as the snapshots say.
//! Screenshots go to `target/browser/inspect.png` and `inspect-phone.png`, with Redis to
//! `target/browser/redis/`, and with workers to `target/browser/workers/`.
//!
//! Needs, and fails (never skips) without: `/usr/bin/chromium`, Node.js 20 or newer, and
//! `npm ci --prefix tests/browser`.

mod common;

use common::browser::{
    assert_screenshots, finish_script, one_browser_at_a_time, prepare, start_script,
};
use common::process::ServerProcess;
use common::redis::RedisServer;
use std::path::Path;

use tungstenite::{Message, connect};

#[test]
fn chromium_watches_the_loop_on_the_live_page() {
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["inspect.png", "inspect-phone.png"];
    let out_dir = prepare(root, &screenshots);
    let server = ServerProcess::start_with(
        &[],
        &["--mode", "chat", "--admin-addr", "127.0.0.1:0"],
        &[("LOOPCHAT_ADMIN_TOKEN", "watch-it")],
    );
    let admin = server.admin_addr();
    // Two chat clients, in #lobby and #design, talking while the page watches.
    let url = format!("ws://{}/ws", server.addr);
    let mut clients: Vec<_> = (0..2).map(|_| connect(&url).expect("connect").0).collect();
    clients[1]
        .send(Message::text(r#"{"type":"join","room":"design"}"#))
        .unwrap();
    clients[0]
        .send(Message::text(
            r#"{"type":"message","text":"the page is watching"}"#,
        ))
        .unwrap();
    let page = format!("http://{admin}/inspect?token=watch-it");
    let (child, log) = start_script(
        root,
        "inspect",
        &[&page, "--expect-rooms", "lobby,design"],
        &out_dir,
    );
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
    drop(clients);
}

#[test]
fn chromium_shows_the_link_to_redis_on_the_live_page() {
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["inspect.png", "inspect-phone.png"];
    let out_dir = prepare(root, &[]).join("redis");
    std::fs::create_dir_all(&out_dir).expect("create target/browser/redis");
    for screenshot in screenshots {
        let _ = std::fs::remove_file(out_dir.join(screenshot));
    }
    let redis = RedisServer::start();
    let server = ServerProcess::start(&[
        "--mode",
        "chat",
        "--redis",
        &redis.url(),
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    let admin = server.admin_addr();
    let (mut client, _) = connect(format!("ws://{}/ws", server.addr)).expect("connect");
    client
        .send(Message::text(r#"{"type":"message","text":"over Redis"}"#))
        .unwrap();
    let page = format!("http://{admin}/inspect");
    let (child, log) = start_script(
        root,
        "inspect",
        &[&page, "--expect-rooms", "lobby", "--expect-links", "redis"],
        &out_dir,
    );
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
    drop(client);
}

#[test]
fn chromium_shows_each_worker_on_the_live_page() {
    let _browser = one_browser_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = ["inspect.png", "inspect-phone.png"];
    let out_dir = prepare(root, &[]).join("workers");
    std::fs::create_dir_all(&out_dir).expect("create target/browser/workers");
    for screenshot in screenshots {
        let _ = std::fs::remove_file(out_dir.join(screenshot));
    }
    let server = ServerProcess::start(&[
        "--mode",
        "chat",
        "--workers",
        "4",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    let admin = server.admin_addr();
    let url = format!("ws://{}/ws", server.addr);
    let mut clients: Vec<_> = (0..6).map(|_| connect(&url).expect("connect").0).collect();
    clients[0]
        .send(Message::text(
            r#"{"type":"message","text":"on every worker"}"#,
        ))
        .unwrap();
    let page = format!("http://{admin}/inspect");
    let (child, log) = start_script(root, "inspect", &[&page, "--expect-workers", "4"], &out_dir);
    finish_script(child, &log);
    assert_screenshots(&out_dir, &screenshots);
    drop(clients);
}
