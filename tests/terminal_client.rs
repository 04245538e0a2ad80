//! The terminal client (`loopchat client`), run as the real binary over pipes, against a
//! chat server started in this process; beside it the other kinds of chat users: a raw
//! TCP line client and an independent WebSocket client (tungstenite). Also the client
//! against a scripted fake server, for what a real server does not do on demand (Pings,
//! protocol errors, dropping the connection), and the line port against hostile input.
//!
//! Every wait is bounded by [`common::IO_TIMEOUT`]; child processes are killed when a
//! test ends, however it ends.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::IO_TIMEOUT;
use loopchat::ServerConfig;
use loopchat::apps::{Chat, ChatConfig};
use loopchat::ws::deflate::codec::{Inflater, MessageCompressor};
use loopchat::ws::deflate::negotiation::Direction;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// A 1×1 PNG, 68 bytes, with valid chunk checksums.
const TINY_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// A free loopback address: bind port 0, note the port, let it go. (Another process
/// could take it in between; on a test machine that is vanishingly rare.)
fn free_local_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// A chat server with a line port. Returns the WebSocket URL and the line port address.
fn chat_server(config: ChatConfig) -> (String, SocketAddr) {
    let line_addr = free_local_addr();
    let server_config = ServerConfig {
        line_addr: Some(line_addr),
        ..Default::default()
    };
    let addr = common::start_with(server_config, Chat::new(config));
    (format!("ws://{addr}/ws"), line_addr)
}

/// The remaining time until `deadline`, at least a millisecond (a zero read timeout is
/// an error).
fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

// ---------------------------------------------------------------------------------------
// The terminal client, as a child process
// ---------------------------------------------------------------------------------------

/// `loopchat client` running with piped stdin, stdout and stderr. Killed on drop.
struct TerminalClient {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Every stdout line read so far, for failure messages.
    seen: Vec<String>,
}

/// Reads `source` line by line into a channel, in a thread that ends with the stream.
fn lines_of(source: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
                    if tx.send(text).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

impl TerminalClient {
    /// Starts `loopchat client URL ARGS...`; `name` is for messages only.
    fn spawn(name: &str, url: &str, args: &[&str]) -> TerminalClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loopchat"))
            .arg("client")
            .arg(url)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loopchat client");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        TerminalClient {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Types a line.
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the client's stdin");
        stdin.flush().expect("flush the client's stdin");
    }

    /// Ends the client's input (as Ctrl-D, or the end of a pipe).
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads stdout until a line satisfies `wanted`, and returns it.
    fn expect_line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.stdout.recv_timeout(remaining(deadline)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "{}: no line {what} on stdout ({e:?}); saw {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Reads stdout until this exact line.
    fn expect_line(&mut self, wanted: &str) {
        self.expect_line_where(&format!("{wanted:?}"), |line| line == wanted);
    }

    /// Waits for the process to exit, killing it if it does not; returns its status,
    /// the rest of its stdout and all of its stderr.
    fn wait_exit(&mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + IO_TIMEOUT;
        let status = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{}: did not exit within {IO_TIMEOUT:?}; stdout {:#?}, stderr {:?}",
                        self.name,
                        self.seen,
                        drain(&self.stderr, deadline + IO_TIMEOUT)
                    );
                }
                None => thread::sleep(Duration::from_millis(10)),
            }
        };
        let stdout = drain(&self.stdout, deadline + IO_TIMEOUT);
        let stderr = drain(&self.stderr, deadline + IO_TIMEOUT).join("\n");
        (status, stdout, stderr)
    }
}

/// Everything left in a line channel until its thread ends (bounded by `deadline`).
fn drain(lines: &Receiver<String>, deadline: Instant) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        match lines.recv_timeout(remaining(deadline)) {
            Ok(line) => all.push(line),
            Err(RecvTimeoutError::Disconnected) => return all,
            Err(RecvTimeoutError::Timeout) => panic!("output did not end; got {all:?}"),
        }
    }
}

impl Drop for TerminalClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The other users: a raw TCP line client, and tungstenite
// ---------------------------------------------------------------------------------------

/// A client of the line port, as `nc` would be.
struct LineClient {
    name: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    seen: Vec<String>,
}

impl LineClient {
    fn connect(name: &str, addr: SocketAddr) -> LineClient {
        let stream = TcpStream::connect(addr).expect("connect to the line port");
        LineClient {
            name: name.to_owned(),
            writer: stream.try_clone().expect("clone stream"),
            reader: BufReader::new(stream),
            seen: Vec::new(),
        }
    }

    /// Connects and takes a nickname, waiting for the server to confirm it.
    fn with_nick(nick: &str, addr: SocketAddr) -> LineClient {
        let mut client = LineClient::connect(nick, addr);
        client.send(format!("/nick {nick}\n").as_bytes());
        let suffix = format!(" is now {nick}");
        client.expect_line_where("confirming the nick", |line| line.ends_with(&suffix));
        client
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .expect("write to the line port");
    }

    /// The next line, as bytes, or `None` at end of stream.
    fn read_raw_line(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            self.reader
                .get_ref()
                .set_read_timeout(Some(remaining(deadline)))
                .expect("set timeout");
            // On a timeout, what was read so far stays in `line`.
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) if line.is_empty() => return None,
                Ok(_) if line.ends_with(b"\n") => {
                    line.pop();
                    return Some(line);
                }
                Ok(_) => return Some(line),
                Err(e) if Instant::now() < deadline && is_timeout(&e) => continue,
                Err(e) => panic!(
                    "{}: reading a line failed ({e}); saw {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    fn expect_line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let Some(bytes) = self.read_raw_line(deadline) else {
                panic!(
                    "{}: EOF before a line {what}; saw {:#?}",
                    self.name, self.seen
                );
            };
            let line = String::from_utf8_lossy(&bytes).into_owned();
            self.seen.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    fn expect_line(&mut self, wanted: &str) {
        self.expect_line_where(&format!("{wanted:?}"), |line| line == wanted);
    }

    /// Reads until the server closes the connection.
    fn expect_eof(&mut self) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while let Some(bytes) = self.read_raw_line(deadline) {
            self.seen.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A WebSocket client that is not ours: tungstenite, speaking the JSON protocol.
struct WsClient {
    name: String,
    ws: WebSocket<TcpStream>,
    seen: Vec<Value>,
}

impl WsClient {
    /// Connects and takes a nickname, waiting for the server to confirm it.
    fn with_nick(nick: &str, url: &str) -> WsClient {
        let addr = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("ws:// URL");
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        let (ws, response) = tungstenite::client(url, stream).expect("handshake");
        assert_eq!(response.status(), 101);
        let mut client = WsClient {
            name: nick.to_owned(),
            ws,
            seen: Vec::new(),
        };
        client.send(json!({"type": "nick", "nick": nick}));
        client.expect_event("confirming the nick", |e| {
            e["type"] == "nick" && e["new"] == nick
        });
        client
    }

    fn send(&mut self, request: Value) {
        self.ws
            .send(Message::text(request.to_string()))
            .expect("send");
    }

    fn expect_event(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            self.ws
                .get_ref()
                .set_read_timeout(Some(remaining(deadline)))
                .expect("set timeout");
            let event = match self.ws.read() {
                Ok(Message::Text(text)) => {
                    serde_json::from_str::<Value>(&text).expect("events are JSON")
                }
                Ok(_) => continue,
                Err(e) => panic!("{}: no event {what} ({e}); saw {:#?}", self.name, self.seen),
            };
            self.seen.push(event.clone());
            if wanted(&event) {
                return event;
            }
        }
    }

    /// Waits for a room message from `from` with `text`.
    fn expect_message(&mut self, room: &str, from: &str, text: &str) -> Value {
        self.expect_event(&format!("{from}: {text}"), |e| {
            e["type"] == "message" && e["room"] == room && e["from"] == from && e["text"] == text
        })
    }
}

// ---------------------------------------------------------------------------------------
// 1. Four kinds of user in one room
// ---------------------------------------------------------------------------------------

#[test]
fn terminal_line_and_websocket_users_hear_each_other() {
    let (url, line_addr) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut cy = LineClient::with_nick("cy", line_addr);
    dee.expect_event("cy arriving", |e| e["type"] == "nick" && e["new"] == "cy");

    // bob types interactively: his stdin stays open.
    let mut bob = TerminalClient::spawn("bob", &url, &["--nick", "bob"]);
    bob.expect_line_where("confirming the nick", |l| l.ends_with(" is now bob"));
    dee.expect_event("bob arriving", |e| e["type"] == "nick" && e["new"] == "bob");

    // ada is a script: one line, then end of input; --linger keeps her listening.
    let mut ada = TerminalClient::spawn("ada", &url, &["--nick", "ada", "--linger", "60"]);
    ada.send("hello from ada");
    ada.close_stdin();
    dee.expect_event("ada arriving", |e| e["type"] == "nick" && e["new"] == "ada");

    let said_by_ada = "[#lobby] ada: hello from ada";
    dee.expect_message("lobby", "ada", "hello from ada");
    cy.expect_line(said_by_ada);
    bob.expect_line(said_by_ada);
    ada.expect_line(said_by_ada);

    bob.send("hi from bob");
    let said_by_bob = "[#lobby] bob: hi from bob";
    ada.expect_line(said_by_bob); // after her input ended: lingering
    bob.expect_line(said_by_bob);
    cy.expect_line(said_by_bob);
    dee.expect_message("lobby", "bob", "hi from bob");

    cy.send(b"hey from cy\n");
    let said_by_cy = "[#lobby] cy: hey from cy";
    ada.expect_line(said_by_cy);
    bob.expect_line(said_by_cy);
    cy.expect_line(said_by_cy);
    dee.expect_message("lobby", "cy", "hey from cy");

    dee.send(json!({"type": "message", "text": "yo from dee"}));
    let said_by_dee = "[#lobby] dee: yo from dee";
    ada.expect_line(said_by_dee);
    bob.expect_line(said_by_dee);
    cy.expect_line(said_by_dee);
    dee.expect_message("lobby", "dee", "yo from dee");

    // bob's input ends; with no --linger he closes at once, cleanly.
    bob.close_stdin();
    let (status, _, stderr) = bob.wait_exit();
    assert!(status.success(), "bob: {status}, stderr {stderr:?}");
    assert!(stderr.is_empty(), "bob's stderr: {stderr:?}");
    cy.expect_line("* bob disconnected from #lobby");
    ada.expect_line("* bob disconnected from #lobby");
    dee.expect_event("bob leaving", |e| {
        e["type"] == "leave" && e["nick"] == "bob" && e["reason"] == "disconnected"
    });
    // ada is still lingering; dropping her kills the process.
}

// ---------------------------------------------------------------------------------------
// 2. Commands: /join, /who, /rooms, /msg, /image, /help, /leave, and their errors (/nick
//    and /quit are in section 3)
// ---------------------------------------------------------------------------------------

#[test]
fn commands_reach_the_server_as_json_requests() {
    let (url, _) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    dee.send(json!({"type": "join", "room": "rust"}));
    dee.expect_event("joining #rust", |e| {
        e["type"] == "join" && e["room"] == "rust" && e["nick"] == "dee"
    });

    let png = BASE64.decode(TINY_PNG_BASE64).expect("valid base64");
    let mut png_file = tempfile::Builder::new()
        .suffix(".png")
        .tempfile()
        .expect("temp file");
    png_file.write_all(&png).expect("write PNG");
    let mut not_an_image = tempfile::NamedTempFile::new().expect("temp file");
    not_an_image
        .write_all(b"<svg>not accepted</svg>")
        .expect("write");

    let mut ada = TerminalClient::spawn("ada", &url, &["--nick", "ada"]);
    ada.expect_line_where("confirming the nick", |l| l.ends_with(" is now ada"));

    ada.send("/join #rust");
    dee.expect_event("ada joining #rust", |e| {
        e["type"] == "join" && e["room"] == "rust" && e["nick"] == "ada"
    });
    ada.expect_line("* ada joined #rust");
    ada.expect_line("* in #rust: ada, dee");

    ada.send("/who");
    ada.expect_line("* in #rust: ada, dee");
    ada.send("/who lobby");
    ada.expect_line("* in #lobby: ada, dee");
    ada.send("/rooms");
    ada.expect_line("* rooms: #lobby (2), #rust (2)");

    ada.send("/msg dee psst");
    dee.expect_event("a private message", |e| {
        e["type"] == "private" && e["from"] == "ada" && e["to"] == "dee" && e["text"] == "psst"
    });
    ada.expect_line("[private] ada -> dee: psst");

    let path = png_file.path().to_str().expect("UTF-8 temp path");
    ada.send(&format!("/image {path}"));
    let image = dee.expect_event("the image", |e| e["type"] == "image");
    assert_eq!(image["room"], "rust", "{image}");
    assert_eq!(image["from"], "ada", "{image}");
    assert_eq!(image["mime"], "image/png", "{image}");
    assert_eq!(image["size"], png.len(), "{image}");
    assert_eq!(image["data"], TINY_PNG_BASE64, "{image}");
    ada.expect_line(&format!(
        "[#rust] ada sent an image (image/png, {} B)",
        png.len()
    ));

    // The server judges the type by the bytes, and says no.
    let path = not_an_image.path().to_str().expect("UTF-8 temp path");
    ada.send(&format!("/image {path}"));
    ada.expect_line_where("refusing the file", |l| l.starts_with("! image_invalid: "));
    // A file that is not there is the client's own business: a notice on stderr.
    ada.send("/image /nonexistent/loopchat-test.png");
    // Usage errors, too, stay local.
    ada.send("/msg dee");
    ada.send("/help");
    ada.expect_line_where("the help", |l| l.starts_with("* commands: /nick NAME"));

    ada.send("hello #rust");
    dee.expect_message("rust", "ada", "hello #rust");
    ada.expect_line("[#rust] ada: hello #rust");

    // `/leave ROOM` leaves that room; `/leave` the active one.
    ada.send("/leave #lobby");
    dee.expect_event("ada leaving #lobby", |e| {
        e["type"] == "leave" && e["room"] == "lobby" && e["nick"] == "ada" && e["reason"] == "left"
    });
    ada.send("/leave");
    dee.expect_event("ada leaving", |e| {
        e["type"] == "leave" && e["room"] == "rust" && e["reason"] == "left"
    });

    ada.close_stdin();
    let (status, _, stderr) = ada.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
    assert!(
        stderr.contains("cannot read /nonexistent/loopchat-test.png"),
        "{stderr:?}"
    );
    assert!(stderr.contains("usage: /msg USER TEXT"), "{stderr:?}");
}

// ---------------------------------------------------------------------------------------
// 3. The client's own behaviour
// ---------------------------------------------------------------------------------------

#[test]
fn piped_input_is_all_sent_before_the_close() {
    let (url, _) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut ada = TerminalClient::spawn("ada", &url, &[]);
    // The whole script at once, then end of input: as `printf ... | loopchat client`.
    let mut script = String::from("/nick ada\n");
    for i in 0..40 {
        script.push_str(&format!("line {i}\n"));
    }
    let mut stdin = ada.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).expect("write script");
    drop(stdin);

    dee.expect_event("ada arriving", |e| e["type"] == "nick" && e["new"] == "ada");
    for i in 0..40 {
        // In order, and every one before ada's connection closes.
        let event = dee.expect_event("a message from ada", |e| {
            e["type"] == "message" && e["from"] == "ada"
        });
        assert_eq!(event["text"], format!("line {i}"));
    }
    dee.expect_event("ada leaving", |e| {
        e["type"] == "leave" && e["nick"] == "ada"
    });

    let (status, stdout, stderr) = ada.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
    assert!(stderr.is_empty(), "{stderr:?}");
    // Events that arrived while the Close was under way were still printed.
    assert!(
        stdout
            .iter()
            .chain(&ada.seen)
            .any(|l| l == "[#lobby] ada: line 39"),
        "{stdout:#?}"
    );
}

#[test]
fn lingering_keeps_the_connection_after_input_ends() {
    let (url, _) = chat_server(ChatConfig::default());
    let started = Instant::now();
    let mut ada = TerminalClient::spawn("ada", &url, &["--linger", "1.5"]);
    ada.close_stdin();
    ada.expect_line_where("the welcome", |l| l.starts_with("* welcome to loopchat"));
    let (status, _, stderr) = ada.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
    // A lower bound, not a speed: it must not have closed before the linger was over.
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn quit_closes_cleanly_and_ignores_what_follows() {
    let (url, _) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut ada = TerminalClient::spawn("ada", &url, &["--nick", "ada"]);
    ada.send("before");
    ada.send("/quit");
    // Written before the client can have read /quit; it must not be sent.
    let _ = writeln!(ada.stdin.as_mut().expect("stdin"), "after");
    dee.expect_message("lobby", "ada", "before");
    dee.expect_event("ada leaving", |e| {
        e["type"] == "leave" && e["nick"] == "ada"
    });
    let (status, _, stderr) = ada.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
    assert!(
        !dee.seen.iter().any(|e| e["text"] == "after"),
        "{:#?}",
        dee.seen
    );
}

#[test]
fn a_refused_nickname_ends_the_session_before_anything_is_said() {
    let (url, _) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("ada", &url);
    let mut imposter = TerminalClient::spawn("imposter", &url, &["--nick", "ADA"]);
    // Typed at once, before the server can have answered the nickname.
    imposter.send("hello, I am ada");
    imposter.expect_line_where("the refusal", |l| l.starts_with("! nick_taken:"));
    let (status, _, stderr) = imposter.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(
        stderr.contains("--nick ADA refused: the nickname ADA is taken"),
        "{stderr:?}"
    );
    // The guest it was came and went without a word.
    dee.expect_event("the guest leaving", |e| {
        e["type"] == "leave" && e["nick"].as_str().is_some_and(|n| n.starts_with("guest-"))
    });
    assert!(
        !dee.seen.iter().any(|e| e["type"] == "message"),
        "{:#?}",
        dee.seen
    );
}

#[test]
fn lines_typed_before_the_nickname_is_granted_go_out_under_it() {
    let (url, _) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut ada = TerminalClient::spawn("ada", &url, &["--nick", "ada"]);
    ada.send("first words");
    ada.close_stdin();
    let said = dee.expect_event("ada's words", |e| e["type"] == "message");
    assert_eq!(said["from"], "ada", "{said}");
    assert_eq!(said["text"], "first words", "{said}");
    let (status, _, stderr) = ada.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
}

#[test]
fn a_refused_connection_exits_1_with_a_message() {
    let addr = free_local_addr(); // nobody listens there now
    let mut client = TerminalClient::spawn("refused", &format!("ws://{addr}/ws"), &[]);
    let (status, stdout, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert!(
        stderr.contains(&format!("cannot connect to {addr}")) && stderr.contains("refused"),
        "{stderr:?}"
    );
}

#[test]
fn wss_without_trust_and_other_bad_urls_are_refused_clearly() {
    // Refused before connecting (nothing listens on port 1): the options are named.
    let mut client = TerminalClient::spawn("wss", "wss://127.0.0.1:1/ws", &[]);
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(
        stderr.contains("wss://") && stderr.contains("--ca-file") && stderr.contains("--insecure"),
        "{stderr:?}"
    );

    let mut client = TerminalClient::spawn("http", "http://127.0.0.1:1/", &[]);
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(stderr.contains("ws://"), "{stderr:?}");
}

#[test]
fn a_refused_handshake_is_reported() {
    let (url, _) = chat_server(ChatConfig::default());
    let url = url.replace("/ws", "/nowhere");
    let mut client = TerminalClient::spawn("404", &url, &[]);
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    // With the server's reason phrase and its own explanation from the body.
    assert!(
        stderr.contains(
            "the WebSocket handshake failed: the server answered 404 Not Found instead of \
             101 Switching Protocols: no WebSocket at /nowhere; use /ws"
        ),
        "{stderr:?}"
    );
}

#[test]
fn the_server_closing_with_an_error_code_is_reported_and_exits_1() {
    // Two requests allowed, then refusals; the third refusal in a row is a disconnect.
    let config = ChatConfig {
        rate_per_second: 0.001,
        rate_burst: 2,
        rate_strikes: 3,
        ..ChatConfig::default()
    };
    let (url, _) = chat_server(config);
    let mut ada = TerminalClient::spawn("ada", &url, &[]);
    // stdin stays open: the server, not the end of input, ends this session.
    for i in 0..5 {
        ada.send(&format!("message {i}"));
    }
    ada.expect_line_where("the warning", |l| l.starts_with("! rate_limited: "));
    let (status, _, stderr) = ada.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(
        stderr.contains("the server closed the connection with code 1008")
            && stderr.contains("rate limit exceeded"),
        "{stderr:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 3b. Against a scripted server: Pings, the server's Close, protocol errors, drops
// ---------------------------------------------------------------------------------------

/// A one-connection fake server: accepts the terminal client and answers its handshake.
struct FakeServer {
    stream: TcpStream,
}

impl FakeServer {
    /// Starts a client against a fresh listener and completes its handshake, checking
    /// the request line and Host header. `first_frames` go out in the same write as the
    /// 101, as a server may send them.
    fn accept(args: &[&str], first_frames: &[u8]) -> (FakeServer, TerminalClient) {
        let (mut server, client, head) = FakeServer::connect(args);
        server.answer(&head, None, first_frames);
        (server, client)
    }

    /// Answers the request `head` with a 101, with this `Sec-WebSocket-Extensions` value
    /// if any, followed by `first_frames` in the same write.
    fn answer(&mut self, head: &str, extensions: Option<&str>, first_frames: &[u8]) {
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("a key");
        let extensions = extensions
            .map(|value| format!("Sec-WebSocket-Extensions: {value}\r\n"))
            .unwrap_or_default();
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
            loopchat::http::accept_key(key.trim().as_bytes())
        )
        .into_bytes();
        response.extend_from_slice(first_frames);
        self.stream.write_all(&response).expect("write 101");
    }

    /// Starts a client against a fresh listener and reads its request head, leaving the
    /// answer to the caller.
    fn connect(args: &[&str]) -> (FakeServer, TerminalClient, String) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TerminalClient::spawn("client", &format!("ws://{addr}/chat?x=1"), args);
        listener.set_nonblocking(true).expect("nonblocking");
        let deadline = Instant::now() + IO_TIMEOUT;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("the client did not connect: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        let mut server = FakeServer { stream };
        let head = server.read_head();
        assert!(head.starts_with("GET /chat?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nHost: {addr}\r\n")), "{head}");
        (server, client, head)
    }

    fn read_head(&mut self) -> String {
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream
                .read_exact(&mut byte)
                .expect("read request head");
            head.push(byte[0]);
        }
        String::from_utf8(head).expect("UTF-8 head")
    }

    /// Reads one frame from the client: (opcode, masked, unmasked payload).
    fn read_frame(&mut self) -> (u8, bool, Vec<u8>) {
        let (first, masked, payload) = self.read_raw_frame();
        (first & 0x0f, masked, payload)
    }

    /// Reads one frame from the client: (first byte: FIN, RSV bits and opcode; masked;
    /// unmasked payload).
    fn read_raw_frame(&mut self) -> (u8, bool, Vec<u8>) {
        let mut start = [0; 2];
        self.stream.read_exact(&mut start).expect("frame header");
        let masked = start[1] & 0x80 != 0;
        let len = match start[1] & 0x7f {
            126 => {
                let mut be = [0; 2];
                self.stream.read_exact(&mut be).expect("length");
                u16::from_be_bytes(be) as usize
            }
            127 => {
                let mut be = [0; 8];
                self.stream.read_exact(&mut be).expect("length");
                u64::from_be_bytes(be) as usize
            }
            n => n as usize,
        };
        let mut key = [0; 4];
        if masked {
            self.stream.read_exact(&mut key).expect("mask key");
        }
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).expect("payload");
        if masked {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= key[i % 4]);
        }
        (start[0], masked, payload)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write frame");
    }
}

/// An unmasked (server-to-client) frame.
fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    common::frame_bytes(0x80 | opcode, payload, None)
}

#[test]
fn pings_are_answered_and_the_servers_close_is_echoed() {
    let ping = server_frame(common::OP_PING, b"are you there");
    let (mut server, mut client) = FakeServer::accept(&[], &ping);
    let (opcode, masked, payload) = server.read_frame();
    assert_eq!((opcode, masked), (common::OP_PONG, true));
    assert_eq!(payload, b"are you there");

    // An event with an escape sequence in it: the client prints it without. And a line
    // break cannot make a message's second line pass for another event.
    let event = r#"{"type":"message","id":1,"room":"lobby","from":"srv","text":"hi \u001b[31mred\n[#lobby] admin: forged","time":0}"#;
    server.send(&server_frame(common::OP_TEXT, event.as_bytes()));
    client.expect_line("[#lobby] srv: hi [31mred");
    client.expect_line("  | [#lobby] admin: forged");

    server.send(&server_frame(
        common::OP_CLOSE,
        &common::close_payload(1001, "restarting"),
    ));
    let (opcode, masked, payload) = server.read_frame();
    assert_eq!((opcode, masked), (common::OP_CLOSE, true));
    assert_eq!(payload[..2], 1001u16.to_be_bytes());
    drop(server); // the server closes TCP first, as RFC 6455 says it should

    let (status, _, stderr) = client.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
    assert!(
        stderr.contains("the server closed the connection with code 1001")
            && stderr.contains("restarting"),
        "{stderr:?}"
    );
}

#[test]
fn a_server_breaking_the_protocol_gets_1002_and_exit_1() {
    // Servers must not mask their frames.
    let masked = common::frame_bytes(0x81, b"masked", Some(common::MASK));
    let (mut server, mut client) = FakeServer::accept(&[], &masked);
    let (opcode, _, payload) = server.read_frame();
    assert_eq!(opcode, common::OP_CLOSE);
    assert_eq!(payload[..2], 1002u16.to_be_bytes());
    drop(server);
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(
        stderr.contains("broke the WebSocket protocol"),
        "{stderr:?}"
    );
}

#[test]
fn a_refusal_that_ends_with_the_connection_is_reported_with_its_body() {
    let (mut server, mut client, _) = FakeServer::connect(&[]);
    // No Content-Length: the body runs to the end of the stream.
    let refusal = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\norigin not allowed\n";
    server
        .stream
        .write_all(refusal.as_bytes())
        .expect("write 403");
    drop(server);
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(
        stderr.contains("403 Forbidden instead of 101 Switching Protocols: origin not allowed"),
        "{stderr:?}"
    );
}

#[test]
fn a_dropped_connection_is_reported() {
    let (server, mut client) = FakeServer::accept(&[], &[]);
    drop(server);
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(stderr.contains("connection lost"), "{stderr:?}");
}

#[test]
fn a_close_the_server_never_answers_times_out() {
    let (mut server, mut client) = FakeServer::accept(&[], &[]);
    client.send("last words");
    client.close_stdin();
    let (opcode, _, payload) = server.read_frame();
    assert_eq!(
        (opcode, payload.as_slice()),
        (
            common::OP_TEXT,
            &br#"{"type":"message","text":"last words"}"#[..]
        )
    );
    let (opcode, _, payload) = server.read_frame();
    assert_eq!(opcode, common::OP_CLOSE);
    assert_eq!(payload[..2], 1000u16.to_be_bytes());
    // No answer, and the connection stays open: the client gives up on its own.
    let (status, _, stderr) = client.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr {stderr:?}");
    assert!(stderr.contains("did not answer our Close"), "{stderr:?}");
    drop(server);
}

// ---------------------------------------------------------------------------------------
// 4. The line port against long lines, garbage and half-closed connections
// ---------------------------------------------------------------------------------------

#[test]
fn a_long_line_is_refused_and_the_connection_goes_on() {
    let (url, line_addr) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut long = LineClient::with_nick("longliner", line_addr);

    let mut line = vec![b'x'; 9000];
    line.push(b'\n');
    long.send(&line);
    long.expect_line("! line too long: at most 8192 bytes; it was dropped");
    // Also one that arrives in pieces, with no newline for a while.
    for _ in 0..3 {
        long.send(&[b'y'; 4000]);
    }
    long.send(b"\n");
    long.expect_line("! line too long: at most 8192 bytes; it was dropped");

    long.send(b"still here\n");
    long.expect_line("[#lobby] longliner: still here");
    dee.expect_message("lobby", "longliner", "still here");
    assert!(
        !dee.seen
            .iter()
            .any(|e| e.to_string().contains("xxxxxxxx") || e.to_string().contains("yyyyyyyy")),
        "{:#?}",
        dee.seen
    );
}

/// Deterministic noise: xorshift64.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Whether text is safe for a terminal: no control characters but tabs.
fn terminal_safe(text: &str) -> bool {
    text.chars().all(|c| !c.is_control() || c == '\t')
}

#[test]
fn garbage_on_the_line_port_reaches_no_one_as_control_characters() {
    let (url, line_addr) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut observer = LineClient::with_nick("watcher", line_addr);
    let mut terminal = TerminalClient::spawn("term", &url, &["--nick", "term"]);
    terminal.expect_line_where("confirming the nick", |l| l.ends_with(" is now term"));
    let mut garbler = LineClient::with_nick("garbler", line_addr);

    let mut garbage =
        b"plain \x1b[31mred\x1b[0m \x1b]0;title\x07 nul\0 ff\xff bell\x07 bs\x08\x08 \
        cr\rover c1\xc2\x9b2J del\x7f\n"
            .to_vec();
    garbage.extend(noise(3000, 0x2545_f491_4f6c_dd1d));
    garbage.extend_from_slice(b"\n\x1b[2J\x1b[H\x00\xff\xfe\n");
    // Lines starting with `/` would be commands; none of the noise is meant as one.
    let garbage: Vec<u8> = garbage
        .split(|&b| b == b'\n')
        .map(|line| match line.first() {
            Some(b'/') => [b"x".as_slice(), line].concat(),
            _ => line.to_vec(),
        })
        .collect::<Vec<_>>()
        .join(&b'\n');
    garbler.send(&garbage);
    garbler.send(b"\nend of garbage\n");

    let marker = "[#lobby] garbler: end of garbage";
    observer.expect_line(marker);
    for line in &observer.seen {
        assert!(terminal_safe(line), "line port passed on {line:?}");
    }
    dee.expect_message("lobby", "garbler", "end of garbage");
    let texts: Vec<&str> = dee.seen.iter().filter_map(|e| e["text"].as_str()).collect();
    for text in &texts {
        assert!(terminal_safe(text), "WebSocket passed on {text:?}");
    }
    assert!(
        texts
            .iter()
            .any(|t| t.contains("plain [31mred[0m ]0;title nul ff\u{fffd}")),
        "the first line should arrive, cleaned: {texts:#?}"
    );
    terminal.expect_line(marker);
    for line in &terminal.seen {
        assert!(terminal_safe(line), "terminal printed {line:?}");
    }

    // Nothing crashed: the garbler still talks, and newcomers get in.
    garbler.send(b"still fine\n");
    observer.expect_line("[#lobby] garbler: still fine");
    let mut newcomer = LineClient::with_nick("newcomer", line_addr);
    newcomer.send(b"hello\n");
    dee.expect_message("lobby", "newcomer", "hello");
}

#[test]
fn a_half_line_before_the_senders_fin_is_still_delivered() {
    let (url, line_addr) = chat_server(ChatConfig::default());
    let mut dee = WsClient::with_nick("dee", &url);
    let mut observer = LineClient::with_nick("watcher", line_addr);
    let mut halfy = LineClient::with_nick("halfy", line_addr);

    halfy.send(b"half a line");
    halfy
        .writer
        .shutdown(Shutdown::Write)
        .expect("shut down the write side");

    let said = "[#lobby] halfy: half a line";
    observer.expect_line(said);
    dee.expect_message("lobby", "halfy", "half a line");
    // The sender, still reading, hears its own message, then the server closes.
    halfy.expect_line(said);
    halfy.expect_eof();
    observer.expect_line("* halfy disconnected from #lobby");
}

#[test]
fn with_nick_a_server_that_never_answers_gets_the_lines_after_5_s() {
    // A server that does not speak the chat (an echo server, say) never grants the name:
    // the typed line waits, then goes out after 5 s (not before: a lower bound, which
    // a busy machine cannot break; the read timeout bounds it from above).
    // Before the client can have started its 5 s.
    let started = Instant::now();
    let (mut server, mut client) = FakeServer::accept(&["--nick", "ada"], &[]);
    let (opcode, masked, nick) = server.read_frame();
    assert_eq!((opcode, masked), (0x1, true));
    let nick: Value = serde_json::from_slice(&nick).expect("JSON");
    assert_eq!(
        (&nick["type"], &nick["nick"]),
        (&json!("nick"), &json!("ada"))
    );
    client.send("hello anyway");
    let (opcode, _, line) = server.read_frame();
    let waited = started.elapsed();
    assert_eq!(opcode, 0x1);
    let line: Value = serde_json::from_slice(&line).expect("JSON");
    assert_eq!(
        (&line["type"], &line["text"]),
        (&json!("message"), &json!("hello anyway"))
    );
    assert!(
        waited >= Duration::from_secs(5),
        "the line went out {waited:?} after the client started, before its 5 s wait"
    );
}

// ---------------------------------------------------------------------------------------
// 5. permessage-deflate: offered by default, checked, used both ways
// ---------------------------------------------------------------------------------------

/// A chat message's text of `len` bytes or so: English-like, and so compressible.
fn long_text(len: usize) -> String {
    let sentence = "the deploy went fine and the graphs look calm, so I am going to lunch now. ";
    sentence.repeat(len / sentence.len() + 1)[..len]
        .trim_end()
        .to_owned()
}

/// What the terminal client sends when `text` (with nothing to escape) is typed.
fn said(text: &str) -> Vec<u8> {
    format!(r#"{{"type":"message","text":"{text}"}}"#).into_bytes()
}

/// Inflates one compressed message with `inflater` (which may keep a window).
fn inflate_with(inflater: &mut Inflater, compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    inflater.feed(compressed, &mut out).expect("inflates");
    inflater.finish(&mut out).expect("inflates");
    out
}

/// A compressed text frame from the server.
fn compressed_server_frame(compressed: &[u8]) -> Vec<u8> {
    common::frame_bytes(0xc0 | common::OP_TEXT, compressed, None)
}

#[test]
fn deflate_is_offered_and_used_both_ways_keeping_context_when_allowed() {
    let (mut server, mut client, head) = FakeServer::connect(&[]);
    assert!(
        head.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ),
        "{head}"
    );
    // The answer Node's ws gives by default: context taken over both ways.
    server.answer(&head, Some("permessage-deflate"), &[]);

    // The server compresses with context too: its second message refers to its first,
    // which the client must still hold.
    let event = r#"{"type":"message","id":1,"room":"lobby","from":"srv","text":"the same long-ish message, said twice by the server to test the window","time":0}"#;
    let keep = Direction {
        window_bits: 15,
        no_context_takeover: false,
    };
    let mut compressor = MessageCompressor::new(keep, 6).unwrap();
    let first = compressed_server_frame(compressor.compress(event.as_bytes()));
    let second = compressed_server_frame(compressor.compress(event.as_bytes()));
    assert!(second.len() < first.len() / 2);
    server.send(&[first, second].concat());
    let shown =
        "[#lobby] srv: the same long-ish message, said twice by the server to test the window";
    client.expect_line(shown);
    client.expect_line(shown);

    // Long lines go compressed (RSV1), keeping context: the same line again is a few
    // bytes. A short one goes as it is.
    let text = long_text(600);
    client.send(&text);
    client.send(&text);
    client.send("hi");
    let mut inflater = Inflater::new(1 << 20, true);
    let mut sizes = Vec::new();
    for _ in 0..2 {
        let (first, masked, payload) = server.read_raw_frame();
        assert_eq!((first, masked), (0xc1, true), "FIN, RSV1, text; masked");
        sizes.push(payload.len());
        assert_eq!(inflate_with(&mut inflater, &payload), said(&text));
    }
    assert!(sizes[0] < said(&text).len() / 4, "{sizes:?}");
    assert!(sizes[1] < sizes[0] / 2, "no context kept: {sizes:?}");
    let (first, _, payload) = server.read_raw_frame();
    assert_eq!((first, payload), (0x81, said("hi")));

    client.close_stdin();
    let (opcode, _, _) = server.read_frame();
    assert_eq!(opcode, common::OP_CLOSE);
    server.send(&server_frame(
        common::OP_CLOSE,
        &common::close_payload(1000, ""),
    ));
    drop(server);
    let (status, _, stderr) = client.wait_exit();
    assert!(status.success(), "{status}, stderr {stderr:?}");
}

#[test]
fn deflate_keeps_to_what_the_server_asked() {
    let text = long_text(400);
    // client_no_context_takeover: each message inflates on its own.
    let (mut server, mut client, head) = FakeServer::connect(&[]);
    server.answer(
        &head,
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        &[],
    );
    client.send(&text);
    client.send(&text);
    for _ in 0..2 {
        let (first, _, payload) = server.read_raw_frame();
        assert_eq!(first, 0xc1);
        assert_eq!(
            inflate_with(&mut Inflater::new(1 << 20, false), &payload),
            said(&text)
        );
    }
    drop(client);

    // client_max_window_bits=8, which zlib cannot keep to: the client agrees and sends
    // uncompressed (RFC 7692 §6 lets each message choose).
    let (mut server, mut client, head) = FakeServer::connect(&[]);
    server.answer(
        &head,
        Some("permessage-deflate; client_max_window_bits=8"),
        &[],
    );
    client.send(&text);
    let (first, _, payload) = server.read_raw_frame();
    assert_eq!((first, payload), (0x81, said(&text)));
    drop(client);

    // --deflate off: no offer, and nothing compressed.
    let (mut server, mut client, head) = FakeServer::connect(&["--deflate", "off"]);
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    server.answer(&head, None, &[]);
    client.send(&text);
    let (first, _, payload) = server.read_raw_frame();
    assert_eq!((first, payload), (0x81, said(&text)));
}

#[test]
fn an_extension_answer_the_client_cannot_accept_fails_the_connection() {
    let cases = [
        // Not offered (RFC 6455 §4.1).
        (
            &["--deflate", "off"][..],
            "permessage-deflate",
            "the server accepted the extension permessage-deflate, which we did not offer",
        ),
        (&[][..], "x-webkit-deflate-frame", "which we did not offer"),
        // Offered, but the answer breaks RFC 7692 §7.1.
        (
            &[][..],
            "permessage-deflate; server_max_window_bits=99",
            "invalid permessage-deflate response: server_max_window_bits=99",
        ),
        (
            &[][..],
            "permessage-deflate; client_max_window_bits",
            "client_max_window_bits needs a value",
        ),
    ];
    for (args, answer, reason) in cases {
        let (mut server, mut client, head) = FakeServer::connect(args);
        server.answer(&head, Some(answer), &[]);
        let (status, _, stderr) = client.wait_exit();
        assert_eq!(status.code(), Some(1), "{answer}: stderr {stderr:?}");
        assert!(
            stderr.contains("the WebSocket handshake failed: the server's Sec-WebSocket-Extensions is not acceptable")
                && stderr.contains(reason),
            "{answer}: {stderr:?}"
        );
    }
}

/// A TCP proxy for one connection that counts the bytes each way: what the client's
/// choices cost on the wire, seen from outside it.
struct CountingProxy {
    addr: SocketAddr,
    /// (client to server, server to client), once both directions have ended.
    counts: Receiver<(u64, u64)>,
}

impl CountingProxy {
    fn to(upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, counts) = mpsc::channel();
        thread::spawn(move || {
            let (client, _) = listener.accept().expect("accept");
            let server = TcpStream::connect(upstream).expect("connect upstream");
            let pump = |mut from: TcpStream, mut to: TcpStream| {
                thread::spawn(move || {
                    let mut total = 0;
                    let mut buf = [0; 16 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                                total += n as u64;
                            }
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                    total
                })
            };
            let up = pump(client.try_clone().unwrap(), server.try_clone().unwrap());
            let down = pump(server, client);
            let _ = tx.send((up.join().unwrap(), down.join().unwrap()));
        });
        CountingProxy { addr, counts }
    }

    fn counts(&self) -> (u64, u64) {
        self.counts
            .recv_timeout(IO_TIMEOUT)
            .expect("the proxied connection ended")
    }
}

#[test]
fn a_long_message_round_trips_through_a_real_server_compressed() {
    let server = common::process::ServerProcess::start(&[]);
    let text = long_text(3000);
    let shown = format!("[#lobby] ada: {text}");
    let mut up = Vec::new();
    for deflate in ["off", "on"] {
        let proxy = CountingProxy::to(server.addr);
        let url = format!("ws://{}/ws", proxy.addr);
        let mut ada = TerminalClient::spawn(
            "ada",
            &url,
            &["--nick", "ada", "--linger", "60", "--deflate", deflate],
        );
        ada.send(&text);
        ada.expect_line(&shown);
        ada.send("/quit");
        let (status, _, stderr) = ada.wait_exit();
        assert!(
            status.success(),
            "--deflate {deflate}: {status}, {stderr:?}"
        );
        up.push(proxy.counts().0);
    }
    // The same session, with the message compressed on the way up: a 3 KB message of
    // chat text costs a few hundred bytes.
    let (off, on) = (up[0], up[1]);
    assert!(off > text.len() as u64, "{off}");
    assert!(
        on + 2000 < off,
        "client to server: {on} bytes with deflate, {off} without"
    );
}
