//! The server's protective policies over real sockets: the Origin allowlist.

mod common;

use common::{RawClient, upgrade_request};
use loopchat::ServerConfig;
use loopchat::http::OriginPolicy;

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
