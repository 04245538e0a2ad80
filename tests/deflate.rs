//! permessage-deflate (RFC 7692) over real sockets: the server agrees to it in the
//! handshake, inflates what a client compresses, compresses what it sends (above a
//! threshold), broadcasts compressed once to every client that negotiated it and plain to
//! the others, and answers a malformed offer with 400.

mod common;

use common::{RawClient, client_frame, echo_server, start};
use loopchat::ServerConfig;
use loopchat::apps::Broadcast;
use loopchat::ws::deflate::codec::Inflater;
use loopchat::ws::deflate::negotiation::DeflateConfig;

fn upgrade_offering(addr: &str, extensions: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_browsers_offer_is_accepted_and_compressed_messages_are_inflated() {
    let addr = echo_server();
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_offering(
        &addr.to_string(),
        "permessage-deflate; client_max_window_bits",
    ));
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover\r\n"
        ),
        "{head}"
    );
    // RFC 7692 §7.2.3.1's "Hello", compressed, with RSV1 set: echoed as plain text.
    let mut frame = client_frame(true, 0x1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    frame[0] |= 0x40;
    client.send(&frame);
    client.expect_frame(0x1, b"Hello");
}

#[test]
fn a_malformed_offer_is_a_bad_request_and_an_unacceptable_one_is_declined() {
    let addr = echo_server();
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_offering(
        &addr.to_string(),
        "permessage-deflate; x=\"unterminated",
    ));
    let (head, body) = client.read_http_response();
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("Sec-WebSocket-Extensions"));

    let mut client = RawClient::connect(addr);
    client.send(&upgrade_offering(
        &addr.to_string(),
        "permessage-deflate; server_max_window_bits=99",
    ));
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    // Without deflate, RSV1 is a protocol error (1002).
    let mut frame = client_frame(true, 0x1, b"x");
    frame[0] |= 0x40;
    client.send(&frame);
    client.expect_close(1002);
}

#[test]
fn a_server_with_deflate_off_ignores_offers() {
    let config = ServerConfig {
        deflate: DeflateConfig {
            enabled: false,
            ..DeflateConfig::default()
        },
        ..ServerConfig::default()
    };
    let addr = common::start_with(config, loopchat::apps::Echo);
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_offering(&addr.to_string(), "permessage-deflate"));
    let head = client.read_http_head();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
}

#[test]
fn what_the_server_sends_goes_compressed_above_the_threshold() {
    let addr = echo_server();
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_offering(&addr.to_string(), "permessage-deflate"));
    assert!(client.read_http_head().starts_with("HTTP/1.1 101"));
    // A long message comes back compressed (RSV1), and inflates to what was sent.
    let text = "all work and no play makes a dull chat; ".repeat(50);
    client.send(&client_frame(true, 0x1, text.as_bytes()));
    let frame = client.read_frame();
    assert_eq!((frame.fin, frame.rsv, frame.opcode), (true, 0b100, 0x1));
    assert!(
        frame.payload.len() < text.len() / 4,
        "{} bytes",
        frame.payload.len()
    );
    let mut inflater = Inflater::new(1 << 20, false);
    let mut out = Vec::new();
    inflater.feed(&frame.payload, &mut out).unwrap();
    inflater.finish(&mut out).unwrap();
    assert_eq!(out, text.as_bytes());
    // A short one comes back as it is.
    client.send(&client_frame(true, 0x1, b"short"));
    client.expect_frame(0x1, b"short");
}

/// Inflates one compressed message (the server takes no context over).
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut inflater = Inflater::new(1 << 20, false);
    let mut out = Vec::new();
    inflater.feed(payload, &mut out).unwrap();
    inflater.finish(&mut out).unwrap();
    out
}

#[test]
fn a_broadcast_goes_compressed_to_clients_that_negotiated_it_and_plain_to_the_others() {
    let addr = start(Broadcast);
    let join = |extensions: Option<&str>| {
        let mut client = RawClient::connect(addr);
        match extensions {
            Some(offer) => client.send(&upgrade_offering(&addr.to_string(), offer)),
            None => client.send(&common::upgrade_request(&addr.to_string(), "/")),
        }
        let head = client.read_http_head();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(head.contains("permessage-deflate"), extensions.is_some());
        client
    };
    let mut sender = join(Some("permessage-deflate"));
    let mut deflating = [
        join(Some("permessage-deflate; client_max_window_bits")),
        join(Some("permessage-deflate")),
    ];
    let mut plain = join(None);

    // A chat-like message of about 1 KiB, then one below the threshold.
    let long: String = (0..12)
        .map(|i| format!(r#"{{"from":"user{i}","text":"see you at the station at {i} o'clock"}}"#))
        .collect::<Vec<_>>()
        .join(",");
    sender.send(&client_frame(true, 0x1, long.as_bytes()));
    sender.send(&client_frame(true, 0x1, b"short"));

    let mut compressed = Vec::new();
    for client in &mut deflating {
        let frame = client.read_frame();
        assert_eq!((frame.fin, frame.rsv, frame.opcode), (true, 0b100, 0x1));
        assert!(
            frame.payload.len() < long.len() / 2,
            "{}",
            frame.payload.len()
        );
        assert_eq!(inflate(&frame.payload), long.as_bytes());
        compressed.push(frame.payload);
        client.expect_frame(0x1, b"short");
    }
    assert_eq!(
        compressed[0], compressed[1],
        "the same compressed bytes for both"
    );
    let frame = plain.read_frame();
    assert_eq!((frame.rsv, frame.payload), (0, long.into_bytes()));
    plain.expect_frame(0x1, b"short");
}

/// docs/PROTOCOL.md's table of offers and answers: every row sent to a real server.
#[test]
fn the_offers_and_answers_in_protocol_md_are_what_the_server_says() {
    let doc = include_str!("../docs/PROTOCOL.md");
    let begin = doc
        .find("<!-- deflate-answers:")
        .expect("the table's start marker");
    let end = doc
        .find("<!-- deflate-answers:end -->")
        .expect("the table's end marker");
    let code = |cell: &str| cell.trim().trim_matches('`').to_owned();
    let rows: Vec<(String, String)> = doc[begin..end]
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            (code(&cells[0][1..]), code(cells[1]))
        })
        .collect();
    assert!(rows.len() >= 10, "{} rows", rows.len());
    let addr = echo_server();
    for (offer, expected) in rows {
        let mut client = RawClient::connect(addr);
        client.send(&upgrade_offering(&addr.to_string(), &offer));
        let head = client.read_http_head();
        let answer = head
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Extensions: "))
            .map(str::to_owned);
        match expected.as_str() {
            "400" => assert!(head.starts_with("HTTP/1.1 400"), "{offer}: {head}"),
            "none" => {
                assert!(head.starts_with("HTTP/1.1 101"), "{offer}: {head}");
                assert_eq!(answer, None, "{offer}");
            }
            _ => {
                assert!(head.starts_with("HTTP/1.1 101"), "{offer}: {head}");
                assert_eq!(answer.as_deref(), Some(expected.as_str()), "{offer}");
            }
        }
    }
}

#[test]
fn a_client_that_limits_the_servers_window_gets_plain_messages_and_may_still_compress() {
    let addr = echo_server();
    let mut client = RawClient::connect(addr);
    client.send(&upgrade_offering(
        &addr.to_string(),
        "permessage-deflate; server_max_window_bits=8",
    ));
    let head = client.read_http_head();
    assert!(head.contains("server_max_window_bits=8"), "{head}");
    let text = "all work and no play makes a dull chat; ".repeat(50);
    let compressed = loopchat::ws::deflate::codec::compress_message(text.as_bytes(), 15, 6);
    let mut frame = client_frame(true, 0x1, &compressed);
    frame[0] |= 0x40;
    client.send(&frame);
    let echoed = client.read_frame();
    assert_eq!((echoed.rsv, echoed.payload), (0, text.into_bytes()));
}
