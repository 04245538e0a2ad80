//! `--public DIR`: a folder served over HTTP by the chat, on the same port as its
//! WebSocket, through the real event loop with keep-alive.

mod common;

use common::{RawClient, upgrade_request};
use loopchat::apps::{Chat, ChatConfig};
use loopchat::http::static_files::StaticFiles;
use std::fs;

fn site() -> (tempfile::TempDir, std::net::SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public");
    fs::create_dir_all(public.join("img")).unwrap();
    fs::write(dir.path().join("secret.txt"), "SECRET-do-not-serve").unwrap();
    fs::write(public.join("index.html"), "<h1>my chat</h1>").unwrap();
    fs::write(public.join("app.js"), "console.log('hi')").unwrap();
    fs::write(public.join("img/dot.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let chat =
        Chat::new(ChatConfig::default()).with_public_files(StaticFiles::new(&public).unwrap());
    let addr = common::start(chat);
    (dir, addr)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn files_are_served_on_one_kept_alive_connection() {
    let (_dir, addr) = site();
    let mut client = RawClient::connect(addr);
    let files: [(&str, &str, &[u8]); 3] = [
        ("/", "text/html", b"<h1>my chat</h1>"),
        ("/app.js", "javascript", b"console.log('hi')"),
        ("/img/dot.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ];
    for (path, content_type, body) in files {
        client.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let (head, got) = client.read_http_response();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        assert!(
            header(&head, "content-type")
                .unwrap()
                .contains(content_type),
            "{path}: {head}"
        );
        assert_eq!(header(&head, "connection"), Some("keep-alive"));
        assert_eq!(got, body, "{path}");
    }
    // HEAD: same headers, no body; then a conditional GET gets 304 with no body.
    client.send(b"HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_http_head();
    assert_eq!(header(&head, "content-length"), Some("17"));
    let last_modified = header(&head, "last-modified").unwrap().to_owned();
    client.send(format!("GET /app.js HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {last_modified}\r\nConnection: close\r\n\r\n").as_bytes());
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 304 "), "{head}");
    assert_eq!(header(&head, "content-length"), None);
    client.expect_eof();
}

#[test]
fn nothing_outside_the_folder_is_reachable() {
    let (_dir, addr) = site();
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "//etc/passwd",
        "/img/../../secret.txt",
    ] {
        let mut client = RawClient::connect(addr);
        client.send(
            format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let (head, body) = client.read_http_response();
        assert!(head.starts_with("HTTP/1.1 404 "), "{target}: {head}");
        assert!(
            !String::from_utf8_lossy(&body).contains("SECRET"),
            "{target}"
        );
        client.expect_eof();
    }
    let mut client = RawClient::connect(addr);
    client.send(b"DELETE /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (head, _) = client.read_http_response();
    assert!(
        head.starts_with("HTTP/1.1 405 ") && head.contains("Allow: GET, HEAD"),
        "{head}"
    );
}

#[test]
fn the_websocket_still_answers_beside_the_files() {
    let (_dir, addr) = site();
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_request("x", "/ws"));
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let welcome = client.read_frame();
    assert!(String::from_utf8_lossy(&welcome.payload).contains(r#""type":"welcome""#));
}
