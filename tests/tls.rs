//! `loopchat serve --tls-cert --tls-key`: https:// and wss:// on the main port, rustls
//! driven by the loop itself. Certificates are made here, at test time, by a test CA
//! (rcgen); clients are independent: rustls's own blocking stream, with tungstenite on
//! top for WebSocket.

mod common;

use common::process::ServerProcess;
use common::tls::TestCerts as Certs;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

fn serve(certs: &Certs, extra: &[&str]) -> ServerProcess {
    let mut args = vec![
        "--tls-cert",
        certs.cert_pem.to_str().unwrap(),
        "--tls-key",
        certs.key_pem.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(&args)
}

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `addr`, handshake done, as host "localhost".
fn tls_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A WebSocket over TLS to `addr`.
fn wss(addr: SocketAddr, config: Arc<ClientConfig>) -> WebSocket<TlsStream> {
    let stream = tls_connect(addr, config).expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws", addr.port());
    let (socket, response) = tungstenite::client(url.as_str(), stream).expect("upgrade");
    assert_eq!(response.status(), 101);
    socket
}

/// The next data message, skipping control frames.
fn next_data(socket: &mut WebSocket<TlsStream>) -> Message {
    loop {
        match socket.read().expect("read") {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

fn wait_for_log(server: &ServerProcess, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn wss_echoes_small_and_large_messages_and_negotiates_http_1_1() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "echo"]);
    let stream = tls_connect(server.addr, certs.client()).unwrap();
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    drop(stream);

    let mut socket = wss(server.addr, certs.client());
    socket.send(Message::text("hello over TLS")).unwrap();
    assert_eq!(next_data(&mut socket), Message::text("hello over TLS"));
    // Larger than rustls's 64 KiB buffer and than a TLS record, both ways.
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    socket.send(Message::binary(big.clone())).unwrap();
    assert_eq!(next_data(&mut socket), Message::binary(big));
    socket.close(None).unwrap();
}

#[test]
fn https_serves_the_chat_page_and_broadcasts_go_over_tls() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "broadcast"]);
    let mut page = tls_connect(server.addr, certs.client()).unwrap();
    page.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    // The server ends with close_notify, so this is a clean end of stream.
    page.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("<html"), "{response}");

    let mut a = wss(server.addr, certs.client());
    let mut b = wss(server.addr, certs.client());
    // b is open once a broadcast from a reaches it; a sends until one does.
    a.send(Message::text("first")).unwrap();
    b.send(Message::text("from b")).unwrap();
    assert_eq!(next_data(&mut a), Message::text("from b"));
    a.send(Message::text("from a")).unwrap();
    let got = next_data(&mut b);
    assert!(
        got == Message::text("from a") || got == Message::text("first"),
        "{got:?}"
    );
}

#[test]
fn plain_http_garbage_and_a_silent_client_on_the_tls_port_disturb_no_one() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "echo", "--handshake-timeout", "3"]);
    let mut good = wss(server.addr, certs.client());

    // Plain HTTP: not TLS. The server answers what TLS allows (an alert, or nothing)
    // and ends the connection.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut plain);
    // Nothing, or a TLS alert record (content type 21): never plaintext.
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "answered with something other than an alert: {answer:?}"
    );
    // Garbage, as if a ClientHello were corrupt.
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .unwrap();
    let answer = read_until_closed(&mut garbage);
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
    // Silent: connects and sends no ClientHello. The handshake deadline covers TLS: it
    // is dropped after three seconds.
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let n = silent.read(&mut [0u8; 64]).unwrap_or(0);
    assert_eq!(n, 0, "the silent client got bytes");
    assert!(started.elapsed() < Duration::from_secs(25));

    // Meanwhile the good client was never disturbed.
    good.send(Message::text("still here")).unwrap();
    assert_eq!(next_data(&mut good), Message::text("still here"));
}

/// Reads until the server ends the connection (a reset counts), within the stream's
/// read timeout; panics if it does not end.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server did not end the connection: {e} (after {got:?})"),
        }
    }
}

#[test]
fn a_client_hello_past_16_kib_is_dropped_before_the_handshake_deadline() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "echo", "--handshake-timeout", "600"]);
    let mut huge = TcpStream::connect(server.addr).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A ClientHello announcing 60,000 bytes, sent as two 16,000-byte records: rustls
    // would wait for the rest, holding it; the loop stops at 16 KiB.
    let mut first = vec![0x16, 0x03, 0x01];
    first.extend_from_slice(&16_000u16.to_be_bytes());
    first.extend_from_slice(&[1, 0, 0xea, 0x60]);
    first.resize(5 + 16_000, 0);
    let mut second = vec![0x16, 0x03, 0x01];
    second.extend_from_slice(&16_000u16.to_be_bytes());
    second.resize(5 + 16_000, 0);
    huge.write_all(&first).unwrap();
    let _ = huge.write_all(&second);
    read_until_closed(&mut huge);
    // A real client is served as ever.
    let mut good = wss(server.addr, certs.client());
    good.send(Message::text("fine")).unwrap();
    assert_eq!(next_data(&mut good), Message::text("fine"));
}

#[test]
fn a_client_that_finishes_first_gets_its_answer_then_close_notify() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--handshake-timeout", "1"]);
    // A kept-alive request, answered in full; then the client's end of TCP (no
    // close_notify), with nothing left to send it: the server ends with close_notify and
    // FIN, which read_to_end requires.
    let mut page = tls_connect(server.addr, certs.client()).unwrap();
    page.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    page.flush().unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let whole = loop {
        let n = page.read(&mut chunk).expect("the answer");
        assert!(n > 0, "ended before the answer was whole");
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a Content-Length");
            if response.len() >= end + 4 + length {
                break response.len() == end + 4 + length;
            }
        }
    };
    assert!(whole && response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    page.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    page.read_to_end(&mut rest)
        .expect("close_notify after the client's FIN");
    assert!(rest.is_empty());

    // A request not finished in time: 408 through TLS, then close_notify.
    let mut slow = tls_connect(server.addr, certs.client()).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: loc").unwrap();
    slow.flush().unwrap();
    let mut response = Vec::new();
    slow.read_to_end(&mut response)
        .expect("the 408, then close_notify");
    assert!(
        response.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections_and_refuses_a_bad_one() {
    let first = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&first, &["--mode", "echo"]);
    let mut old = wss(server.addr, first.client());

    // The files are replaced by a certificate from another CA, then SIGHUP.
    let second = Certs::new(&["127.0.0.1", "localhost"]);
    second.write_server(&first.cert_pem, &first.key_pem);
    server.signal("HUP");
    wait_for_log(&server, "certificate and key reloaded");
    let mut new = wss(server.addr, second.client());
    new.send(Message::text("new certificate")).unwrap();
    assert_eq!(next_data(&mut new), Message::text("new certificate"));
    assert!(
        tls_connect(server.addr, first.client()).is_err(),
        "the old certificate is still served"
    );
    // The connection made before the reload goes on.
    old.send(Message::text("old connection")).unwrap();
    assert_eq!(next_data(&mut old), Message::text("old connection"));

    // A bad file: refused, with a log line, and the certificate in use kept.
    std::fs::write(&first.key_pem, "not a key\n").unwrap();
    server.signal("HUP");
    wait_for_log(&server, "reload refused");
    let mut after = wss(server.addr, second.client());
    after.send(Message::text("kept")).unwrap();
    assert_eq!(next_data(&mut after), Message::text("kept"));
}

#[test]
fn with_workers_each_serves_tls_and_sighup_reloads_every_one() {
    let first = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&first, &["--mode", "echo", "--workers", "4"]);
    // Sixteen connections land on the four workers: each speaks TLS.
    let mut old: Vec<_> = (0..16).map(|_| wss(server.addr, first.client())).collect();
    for socket in &mut old {
        socket.send(Message::text("before")).unwrap();
        assert_eq!(next_data(socket), Message::text("before"));
    }
    let second = Certs::new(&["127.0.0.1", "localhost"]);
    second.write_server(&first.cert_pem, &first.key_pem);
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .log_text()
        .matches("certificate and key reloaded")
        .count()
        < 4
    {
        assert!(
            Instant::now() < deadline,
            "not every worker reloaded:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every new connection, on whichever worker, gets the new certificate.
    for _ in 0..16 {
        let mut new = wss(server.addr, second.client());
        new.send(Message::text("after")).unwrap();
        assert_eq!(next_data(&mut new), Message::text("after"));
        assert!(
            tls_connect(server.addr, first.client()).is_err(),
            "a worker still serves the old certificate"
        );
    }
    for socket in &mut old {
        socket.send(Message::text("still here")).unwrap();
        assert_eq!(next_data(socket), Message::text("still here"));
    }
}

#[test]
fn a_flood_of_handshakes_all_complete_and_an_open_connection_is_served_meanwhile() {
    // More ClientHellos at once than a turn reads (32): the rest wait on the ready list
    // for the next turns, and none may be forgotten there.
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "echo"]);
    let mut open = wss(server.addr, certs.client());
    let name = ServerName::try_from("localhost").unwrap();
    let mut flood: Vec<TlsStream> = (0..150)
        .map(|_| {
            let tcp = TcpStream::connect(server.addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let conn = ClientConnection::new(certs.client(), name.clone()).unwrap();
            let mut stream = StreamOwned::new(conn, tcp);
            // The ClientHello only: the handshake is finished below.
            stream.conn.write_tls(&mut stream.sock).unwrap();
            stream
        })
        .collect();
    open.send(Message::text("meanwhile")).unwrap();
    assert_eq!(next_data(&mut open), Message::text("meanwhile"));
    for (i, stream) in flood.iter_mut().enumerate() {
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .unwrap_or_else(|e| panic!("handshake {i}: {e}"));
        }
    }
    // Each is a working connection: an HTTP request over it is answered.
    for stream in &mut flood {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut head = [0; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
}

#[test]
fn a_bad_certificate_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(&empty)
        .arg("--tls-key")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("will not start: TLS:") && stderr.contains("no certificate"),
        "{stderr}"
    );
}

#[test]
fn sigterm_closes_wss_clients_with_1001() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let mut server = serve(&certs, &["--mode", "echo"]);
    let mut socket = wss(server.addr, certs.client());
    socket.send(Message::text("before")).unwrap();
    assert_eq!(next_data(&mut socket), Message::text("before"));
    server.signal("TERM");
    let code = loop {
        match socket.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(e) => panic!("no Close: {e}"),
        }
    };
    assert_eq!(code, Some(1001));
    // Answer it, as a client does; the server then ends, every connection closed.
    let _ = socket.flush();
    drop(socket);
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert!(
        server.log_text().contains("every connection closed"),
        "{}",
        server.log_text()
    );
}

#[test]
fn loopchat_bench_and_client_speak_wss_to_loopchat() {
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "echo"]);
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let ca = certs.ca_pem.to_str().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args([
            "bench",
            "echo",
            "--url",
            &url,
            "--ca-file",
            ca,
            "--clients",
            "20",
        ])
        .args([
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
            "--drain",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["tls"], true, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert!(
        report["round_trips_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );

    // The terminal client: a line out, its echo back, through TLS both ways.
    let mut client = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["client", &url, "--ca-file", ca, "--linger", "2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello through wss\n")
        .unwrap();
    let output = client.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("hello through wss"),
        "status {}, stdout {stdout}, stderr {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_full_tls_server_refuses_without_plaintext() {
    // Past --max-connections a plain server answers 503 in plaintext; a TLS client could
    // not read that, so on the TLS port the refusal is the end of the connection.
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let server = serve(&certs, &["--mode", "echo", "--max-connections", "1"]);
    let mut first = wss(server.addr, certs.client());
    let mut second = TcpStream::connect(server.addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let answer = read_until_closed(&mut second);
    assert!(answer.is_empty(), "refused with {answer:?}");
    first.send(Message::text("still served")).unwrap();
    assert_eq!(next_data(&mut first), Message::text("still served"));
}
