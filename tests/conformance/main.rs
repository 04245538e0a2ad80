//! A conformance suite for the echo server, organised like the Autobahn TestSuite's
//! fuzzingclient (sections 1–7, 9, 10, and 12 and 13 for permessage-deflate) and written
//! from RFC 6455 and RFC 7692.
//!
//! Every case is one row of a table: its Autobahn case id, a short description, and a
//! script of [`Step`]s: what the client sends (frames, how the bytes are chopped into
//! writes, pauses) and the exact replies it must read back (echoed frames with their
//! opcode and payload, Pongs, a Close with its code, then the server closing TCP). One
//! runner, [`run_section`], plays every row of a section over a real TCP connection to a
//! real server (started by `tests/common`), and reports every failing row by its case id.
//!
//! Frames are written and read by `tests/common`'s raw client, which is independent of the
//! crate's own codec, so the server is checked against the RFC and not against itself. The
//! same holds for permessage-deflate: a case that offers it ([`Case::offering`]) checks the
//! server's answer and compresses and inflates with `permessage_deflate.rs`, the client's
//! own, never `loopchat::ws::deflate`.
//!
//! To run a subset, set `CONFORMANCE_CASES` to a comma-separated list of case id
//! prefixes: `CONFORMANCE_CASES=5.1,6.4 cargo test --test conformance -- --nocapture`.
//! Sections 12 and 13 send a sample of Autobahn's messages by default, all of them with
//! `CONFORMANCE_DEFLATE_FULL=1` (see `echo_runs.rs`).

#[path = "../common/mod.rs"]
mod common;

/// Builds a case's script from steps and lists of steps:
/// `steps![send([...]), expect_text("hi"), fails_with(1002)]`.
macro_rules! steps {
    ($($step:expr),* $(,)?) => {{
        let mut steps: Vec<$crate::Step> = Vec::new();
        $( $crate::AddSteps::add_to($step, &mut steps); )*
        steps
    }};
}

mod corpora;
mod echo_runs;
mod permessage_deflate;
mod section10_autofragmentation;
mod section12_deflate;
mod section13_deflate_offers;
mod section1_framing;
mod section2_pings;
mod section3_reserved_bits;
mod section4_opcodes;
mod section5_fragmentation;
mod section6_utf8;
mod section7_close;
mod section9_limits;

use common::process::ServerProcess;
use common::{MASK, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, RawClient, frame_bytes};
pub use common::{OP_BINARY, OP_TEXT};
pub use corpora::Corpus;
pub use echo_runs::EchoRun;
use loopchat::ServerConfig;
use permessage_deflate::ClientDeflate;
pub use permessage_deflate::{Offer, Offering};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Table types
// ---------------------------------------------------------------------------------------

/// One conformance case: a row of a section's table.
pub struct Case {
    /// The Autobahn case id, e.g. "5.15".
    pub id: String,
    /// What the case does, in a few words.
    pub description: String,
    /// The server the case runs against.
    pub server: Srv,
    /// What the client sends and what it must read back, in order.
    pub steps: Vec<Step>,
    /// The permessage-deflate offers of the opening handshake; `None`: no
    /// `Sec-WebSocket-Extensions` header, and the answer must have none either.
    pub offering: Option<Offering>,
}

/// A row against the default echo server.
pub fn case(id: impl Into<String>, description: impl Into<String>, steps: Vec<Step>) -> Case {
    Case {
        id: id.into(),
        description: description.into(),
        server: Srv::Echo,
        steps,
        offering: None,
    }
}

impl Case {
    /// The same row against another server.
    pub fn on(self, server: Srv) -> Case {
        Case { server, ..self }
    }

    /// The same row with permessage-deflate offered in the handshake.
    pub fn offering(self, offering: Offering) -> Case {
        Case {
            offering: Some(offering),
            ..self
        }
    }
}

/// Which server a case talks to. Each section starts its own servers, once each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Srv {
    /// `common::echo_server()`: the echo app with the default configuration.
    Echo,
    /// The echo app with `max_message_size` set to this many bytes.
    EchoMaxMessage(usize),
}

/// Payload bytes, or a recipe for them: large payloads are generated only while their
/// case runs, so a table of 16 MiB messages costs nothing to build.
#[derive(Clone)]
pub enum Data {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len` bytes of valid UTF-8 mixing ASCII, 2-, 3- and 4-byte characters, so that
    /// chunk and fragment boundaries fall inside characters. `seed` varies the start.
    Text { len: usize, seed: usize },
    /// `len` bytes of a pattern that takes most byte values and does not repeat with the
    /// mask's period. `seed` varies the start.
    Binary { len: usize, seed: usize },
}

/// The repeating unit of [`Data::Text`].
const TEXT_UNIT: &str = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞😀 loopchat ";

impl Data {
    /// Generated text of `len` bytes.
    pub fn text(len: usize) -> Data {
        Data::Text { len, seed: 0 }
    }

    /// Generated binary of `len` bytes.
    pub fn binary(len: usize) -> Data {
        Data::Binary { len, seed: 0 }
    }

    /// The same byte repeated.
    pub fn repeat(byte: u8, len: usize) -> Data {
        Data::Bytes(vec![byte; len])
    }

    /// The bytes.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match *self {
            Data::Bytes(ref bytes) => Cow::Borrowed(bytes),
            Data::Text { len, seed } => {
                let mut text = format!("#{seed}:");
                let unit = TEXT_UNIT.repeat(64);
                while text.len() < len {
                    text.push_str(&unit);
                }
                let mut cut = len;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                while text.len() < len {
                    text.push('*');
                }
                Cow::Owned(text.into_bytes())
            }
            Data::Binary { len, seed } => {
                let block: Vec<u8> = (0..251 * 4)
                    .map(|i| ((i + seed * 7919) * 31 % 251) as u8)
                    .collect();
                Cow::Owned(block.iter().copied().cycle().take(len).collect())
            }
        }
    }

    fn len(&self) -> usize {
        match *self {
            Data::Bytes(ref bytes) => bytes.len(),
            Data::Text { len, .. } | Data::Binary { len, .. } => len,
        }
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Data {
        Data::Bytes(text.as_bytes().to_vec())
    }
}

impl From<String> for Data {
    fn from(text: String) -> Data {
        Data::Bytes(text.into_bytes())
    }
}

impl From<&[u8]> for Data {
    fn from(bytes: &[u8]) -> Data {
        Data::Bytes(bytes.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Data {
    fn from(bytes: &[u8; N]) -> Data {
        Data::Bytes(bytes.to_vec())
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Data {
        Data::Bytes(bytes)
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Bytes(bytes) => write!(f, "{}", preview(bytes)),
            Data::Text { len, seed } => write!(f, "{len} bytes of generated text (seed {seed})"),
            Data::Binary { len, seed } => {
                write!(f, "{len} bytes of generated binary (seed {seed})")
            }
        }
    }
}

/// Something the client sends. Every frame is masked with `common::MASK`.
#[derive(Clone, Debug)]
pub enum Out {
    /// One frame. `first_byte` is FIN, RSV and opcode together, valid or not.
    Frame { first_byte: u8, payload: Data },
    /// A data message cut into frames of `size` payload bytes (the last may be shorter):
    /// the first with `opcode`, the rest continuations, FIN on the last only.
    Fragmented {
        opcode: u8,
        payload: Data,
        size: usize,
    },
    /// Bytes as they are, e.g. a piece of a frame.
    Raw(Vec<u8>),
}

impl Out {
    /// The bytes on the wire, frame by frame.
    fn encode(&self) -> Vec<Vec<u8>> {
        match self {
            Out::Frame {
                first_byte,
                payload,
            } => vec![frame_bytes(*first_byte, &payload.bytes(), Some(MASK))],
            Out::Fragmented {
                opcode,
                payload,
                size,
            } => {
                let bytes = payload.bytes();
                if bytes.is_empty() {
                    return vec![frame_bytes(0x80 | opcode, &[], Some(MASK))];
                }
                let count = bytes.len().div_ceil(*size);
                bytes
                    .chunks(*size)
                    .enumerate()
                    .map(|(i, chunk)| {
                        let fin = if i + 1 == count { 0x80 } else { 0 };
                        let op = if i == 0 { *opcode } else { OP_CONT };
                        frame_bytes(fin | op, chunk, Some(MASK))
                    })
                    .collect()
            }
            Out::Raw(bytes) => vec![bytes.clone()],
        }
    }
}

/// How the bytes of one [`Step::Send`] are cut into writes. The socket has `TCP_NODELAY`
/// set, so each write leaves as its own segment.
#[derive(Clone, Copy, Debug)]
pub enum Chop {
    /// All in one write.
    All,
    /// One write per frame (Autobahn's "frame-wise chops").
    PerFrame,
    /// Writes of this many bytes (1: Autobahn's "octet-wise chops").
    Bytes(usize),
}

/// What the client must read next.
#[derive(Clone, Debug)]
pub enum Reply {
    /// One frame: FIN set, RSV clear, unmasked, this opcode, exactly this payload. With
    /// deflate agreed, RSV1 may be set too, and the payload is then compared inflated.
    Frame(u8, Data),
    /// A Close (FIN, RSV clear, unmasked) with this code and a UTF-8 reason of any
    /// length that fits.
    Close(u16),
    /// A Close with an empty payload.
    CloseEmpty,
    /// The server closes the TCP connection (EOF, or a reset) with nothing more sent.
    Eof,
}

/// One step of a case's script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write frames, chopped as told. A write the server refuses (reset, broken pipe) is
    /// not an error in itself: the server may close after failing the connection. The
    /// later expectations decide; nothing more is written after a failed write.
    Send(Vec<Out>, Chop),
    /// Wait a little.
    Pause(Duration),
    /// Read and check one reply.
    Expect(Reply),
    /// Nothing at all may arrive for this long.
    ExpectSilence(Duration),
    /// Sections 12 and 13: messages from a corpus, each sent (compressed if deflate was
    /// agreed) and its echo read and checked before the next is sent.
    Echo(EchoRun),
}

/// What `steps!` accepts: a step, or a list of steps.
pub trait AddSteps {
    fn add_to(self, steps: &mut Vec<Step>);
}

impl AddSteps for Step {
    fn add_to(self, steps: &mut Vec<Step>) {
        steps.push(self);
    }
}

impl AddSteps for Vec<Step> {
    fn add_to(self, steps: &mut Vec<Step>) {
        steps.extend(self);
    }
}

// ---------------------------------------------------------------------------------------
// Row vocabulary: what the client sends
// ---------------------------------------------------------------------------------------

/// One masked frame with FIN as given.
pub fn frame(fin: bool, opcode: u8, payload: impl Into<Data>) -> Out {
    raw_frame(if fin { 0x80 } else { 0 } | opcode, payload)
}

/// One masked frame with any first byte (FIN | RSV << 4 | opcode).
pub fn raw_frame(first_byte: u8, payload: impl Into<Data>) -> Out {
    Out::Frame {
        first_byte,
        payload: payload.into(),
    }
}

/// A single-frame text message.
pub fn text(payload: impl Into<Data>) -> Out {
    frame(true, OP_TEXT, payload)
}

/// A single-frame binary message.
pub fn binary(payload: impl Into<Data>) -> Out {
    frame(true, OP_BINARY, payload)
}

/// A Ping.
pub fn ping(payload: impl Into<Data>) -> Out {
    frame(true, OP_PING, payload)
}

/// A Pong.
pub fn pong(payload: impl Into<Data>) -> Out {
    frame(true, OP_PONG, payload)
}

/// A Close with a code and a reason given as raw bytes (so it may be invalid UTF-8).
pub fn close(code: u16, reason: &[u8]) -> Out {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(true, OP_CLOSE, payload)
}

/// A Close with an empty payload.
pub fn close_empty() -> Out {
    frame(true, OP_CLOSE, Vec::new())
}

/// A Close with any payload.
pub fn close_payload(payload: impl Into<Data>) -> Out {
    frame(true, OP_CLOSE, payload)
}

/// A data message cut into frames of `size` payload bytes.
pub fn fragmented(opcode: u8, payload: Data, size: usize) -> Out {
    Out::Fragmented {
        opcode,
        payload,
        size,
    }
}

/// Bytes as they are.
pub fn raw(bytes: Vec<u8>) -> Out {
    Out::Raw(bytes)
}

/// Send in one write.
pub fn send(outs: impl IntoIterator<Item = Out>) -> Step {
    Step::Send(outs.into_iter().collect(), Chop::All)
}

/// Send one byte per write.
pub fn send_octets(outs: impl IntoIterator<Item = Out>) -> Step {
    Step::Send(outs.into_iter().collect(), Chop::Bytes(1))
}

/// Send in writes of `size` bytes.
pub fn send_chopped(outs: impl IntoIterator<Item = Out>, size: usize) -> Step {
    Step::Send(outs.into_iter().collect(), Chop::Bytes(size))
}

/// Wait `ms` milliseconds.
pub fn pause(ms: u64) -> Step {
    Step::Pause(Duration::from_millis(ms))
}

// ---------------------------------------------------------------------------------------
// Row vocabulary: what the client must read back
// ---------------------------------------------------------------------------------------

/// A text message echoed as one frame.
pub fn expect_text(payload: impl Into<Data>) -> Step {
    Step::Expect(Reply::Frame(OP_TEXT, payload.into()))
}

/// A message of either kind echoed as one frame.
pub fn expect_message(opcode: u8, payload: impl Into<Data>) -> Step {
    Step::Expect(Reply::Frame(opcode, payload.into()))
}

/// A Pong with exactly this payload.
pub fn expect_pong(payload: impl Into<Data>) -> Step {
    Step::Expect(Reply::Frame(OP_PONG, payload.into()))
}

/// Nothing arrives for `ms` milliseconds.
pub fn expect_silence(ms: u64) -> Step {
    Step::ExpectSilence(Duration::from_millis(ms))
}

/// The server fails the connection: its Close with `code`, then TCP closed, nothing else.
pub fn fails_with(code: u16) -> Vec<Step> {
    vec![Step::Expect(Reply::Close(code)), Step::Expect(Reply::Eof)]
}

/// The server answers a Close we sent: its Close with `code`, then TCP closed.
pub fn closes_with(code: u16) -> Vec<Step> {
    fails_with(code)
}

/// The server answers our empty Close with an empty Close, then closes TCP.
pub fn closes_empty() -> Vec<Step> {
    vec![Step::Expect(Reply::CloseEmpty), Step::Expect(Reply::Eof)]
}

/// A clean closing handshake begun by the client with 1000, as Autobahn ends a case
/// that passed: our Close, its echo, then TCP closed by the server.
pub fn clean_close() -> Vec<Step> {
    steps![send([close(1000, b"")]), closes_with(1000)]
}

// ---------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------

/// Where a run's servers are: in this process, or the `loopchat` binary as a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    /// `apps::Echo` on the library's `Server`, in a thread of the test process.
    InProcess,
    /// `loopchat serve --mode echo`, a child process, stopped by its PID at the end.
    Binary,
    /// The same over TLS (`--tls-cert`, `--tls-key`, a certificate made for the run by a
    /// test CA), every case played over rustls.
    BinaryTls,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::InProcess => "in process",
            Target::Binary => "against the binary",
            Target::BinaryTls => "against the binary over TLS",
        })
    }
}

/// A server a section's cases run against. An in-process one runs until the test
/// process exits; a child process is stopped when the section is done (or killed if the
/// section panics).
enum Running {
    InProcess(SocketAddr),
    Binary(ServerProcess),
}

impl Running {
    fn start(target: Target, server: Srv, tls: Option<&common::tls::TestCerts>) -> Running {
        match target {
            Target::InProcess => Running::InProcess(start_in_process(server)),
            Target::Binary | Target::BinaryTls => Running::Binary(start_binary(server, tls)),
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Running::InProcess(addr) => *addr,
            Running::Binary(binary) => binary.addr,
        }
    }
}

fn start_in_process(server: Srv) -> SocketAddr {
    match server {
        Srv::Echo => common::echo_server(),
        Srv::EchoMaxMessage(max_message_size) => common::start_with(
            ServerConfig {
                max_message_size,
                ..ServerConfig::default()
            },
            loopchat::apps::Echo,
        ),
    }
}

/// `loopchat serve --mode echo --addr 127.0.0.1:0`, with `--max-message-size` for
/// [`Srv::EchoMaxMessage`], and TLS with `tls`'s certificate: the echo server as a user
/// runs it.
fn start_binary(server: Srv, tls: Option<&common::tls::TestCerts>) -> ServerProcess {
    let max = match server {
        Srv::EchoMaxMessage(max) => Some(max.to_string()),
        Srv::Echo => None,
    };
    let mut args = vec!["--mode", "echo"];
    if let Some(max) = &max {
        args.extend(["--max-message-size", max]);
    }
    if let Some(certs) = tls {
        args.extend([
            "--tls-cert",
            certs.cert_pem.to_str().unwrap(),
            "--tls-key",
            certs.key_pem.to_str().unwrap(),
        ]);
    }
    ServerProcess::start(&args)
}

/// Sends SIGTERM to its PID and checks that it exits with status 0 (it has no connection
/// left: every case ends with the server closing TCP).
fn stop_binary(mut binary: ServerProcess) {
    binary.signal("TERM");
    let status = binary.wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "loopchat serve (PID {}) exited with {status}; its log:\n{}",
        binary.pid(),
        binary.log_text()
    );
}

/// Checks the table itself: ids unique, every script ends with the server closing TCP
/// (so no case can pass while the connection is left in an unknown state).
fn check_table(section: &str, cases: &[Case]) {
    let mut ids = HashSet::new();
    for case in cases {
        assert!(
            ids.insert(&case.id),
            "{section}: duplicate case id {}",
            case.id
        );
        assert!(
            matches!(case.steps.last(), Some(Step::Expect(Reply::Eof))),
            "{section}: case {} does not end by expecting the server to close TCP",
            case.id
        );
    }
}

/// The `CONFORMANCE_CASES` filter: its id prefixes, or `None` when it is not set (or
/// blank), which selects every case.
fn filter() -> Option<Vec<String>> {
    let value = std::env::var("CONFORMANCE_CASES").ok()?;
    let prefixes: Vec<String> = value
        .split(',')
        .map(|prefix| prefix.trim().to_owned())
        .filter(|prefix| !prefix.is_empty())
        .collect();
    (!prefixes.is_empty()).then_some(prefixes)
}

/// Whether id prefix `prefix` selects case `id`: the id itself, or ids under it.
fn matches_prefix(id: &str, prefix: &str) -> bool {
    id == prefix || id.starts_with(&format!("{prefix}."))
}

/// Every section's table, for the filter check and the count.
fn all_sections() -> Vec<(&'static str, Vec<Case>)> {
    vec![
        ("1", section1_framing::cases()),
        ("2", section2_pings::cases()),
        ("3", section3_reserved_bits::cases()),
        ("4", section4_opcodes::cases()),
        ("5", section5_fragmentation::cases()),
        ("6", section6_utf8::cases()),
        ("7", section7_close::cases()),
        ("9", section9_limits::cases()),
        ("10", section10_autofragmentation::cases()),
        ("12", section12_deflate::cases()),
        ("13", section13_deflate_offers::cases()),
    ]
}

/// Fails, naming `CONFORMANCE_CASES`, if any of its prefixes selects no case in any
/// section: a typo must not make a run of nothing that passes.
fn check_filter(prefixes: &[String]) {
    let sections = all_sections();
    for prefix in prefixes {
        let selects = sections
            .iter()
            .flat_map(|(_, cases)| cases)
            .any(|case| matches_prefix(&case.id, prefix));
        assert!(
            selects,
            "CONFORMANCE_CASES={:?}: {prefix:?} selects no case in any section",
            std::env::var("CONFORMANCE_CASES").unwrap_or_default()
        );
    }
}

/// Plays every row of a section, first against the in-process server and then against
/// the binary, and fails, naming each failing case id and where it failed, if any row
/// fails in either. Prints a one-line summary per section (visible with `--nocapture`).
pub fn run_section(section: &str, cases: Vec<Case>) {
    check_table(section, &cases);
    let prefixes = filter();
    if let Some(prefixes) = &prefixes {
        check_filter(prefixes);
    }
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|case| {
            prefixes.as_ref().is_none_or(|prefixes| {
                prefixes
                    .iter()
                    .any(|prefix| matches_prefix(&case.id, prefix))
            })
        })
        .collect();
    if selected.is_empty() {
        // Only with a filter (a table is never empty: `the_tables_hold_553_cases`), and
        // the filter selects cases elsewhere (`check_filter`).
        println!("conformance section {section}: CONFORMANCE_CASES selects none of its cases");
        return;
    }
    // The two runs go side by side, each over its own connections to its own servers.
    let selected = &selected;
    let runs: Vec<(String, Vec<String>)> = thread::scope(|scope| {
        let runs: Vec<_> = [Target::InProcess, Target::Binary, Target::BinaryTls]
            .map(|target| scope.spawn(move || run_cases(target, selected)))
            .into_iter()
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a conformance run"))
            .collect()
    });
    let summary: Vec<String> = runs.iter().map(|(line, _)| line.clone()).collect();
    let failures: Vec<String> = runs.into_iter().flat_map(|(_, failed)| failed).collect();
    println!("conformance section {section}: {}", summary.join(", "));
    assert!(
        failures.is_empty(),
        "section {section}: {} failures ({}):\n{}",
        failures.len(),
        summary.join(", "),
        failures.join("\n")
    );
}

/// Plays `cases` against servers of `target`, started as the cases need them and (for
/// the binary) stopped at the end. Returns the summary (`N of M cases passed ...`) and a
/// line per failing case.
fn run_cases(target: Target, cases: &[&Case]) -> (String, Vec<String>) {
    let mut servers: HashMap<Srv, Running> = HashMap::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    let certs = (target == Target::BinaryTls)
        .then(|| common::tls::TestCerts::new(&["127.0.0.1", "localhost"]));
    let client = certs.as_ref().map(common::tls::TestCerts::client);
    for case in cases {
        ran += 1;
        let addr = servers
            .entry(case.server)
            .or_insert_with(|| Running::start(target, case.server, certs.as_ref()))
            .addr();
        if let Err(why) = run_case(case, addr, client.as_ref()) {
            failures.push(format!(
                "case {} ({}) against {:?}, {target}: {why}",
                case.id, case.description, case.server
            ));
        }
    }
    assert_eq!(ran, cases.len(), "every selected case ran {target}");
    for (_, server) in servers {
        if let Running::Binary(binary) = server {
            stop_binary(binary);
        }
    }
    let summary = format!("{} of {ran} cases passed {target}", ran - failures.len());
    (summary, failures)
}

/// Plays one row over a new connection (over TLS with a `tls` client configuration). On
/// failure says which step failed and why.
fn run_case(
    case: &Case,
    addr: SocketAddr,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let mut at = String::from("opening handshake");
    let mut write_error = None;
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let (mut client, mut deflate) = open(addr, case.offering.as_ref(), tls);
        for (i, step) in case.steps.iter().enumerate() {
            at = format!(
                "step {} of {}: {}",
                i + 1,
                case.steps.len(),
                describe_step(step)
            );
            play(&mut client, &mut deflate, step, &mut write_error);
        }
    }));
    result.map_err(|payload| {
        let why = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(panic without a message)");
        let write_note = write_error
            .map(|e| format!(" (an earlier write had failed: {e})"))
            .unwrap_or_default();
        format!("at {at}: {why}{write_note}")
    })
}

/// Opens a connection for a case: the upgrade request with the case's offers, if any,
/// the 101 checked, and the server's `Sec-WebSocket-Extensions` checked against the
/// offers (none at all when nothing was offered). Returns the client's deflate, set as
/// agreed, if the server accepted an offer.
fn open(
    addr: SocketAddr,
    offering: Option<&Offering>,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> (RawClient, Option<ClientDeflate>) {
    let headers: Vec<String> = offering.map(Offering::headers).unwrap_or_default();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|value| ("Sec-WebSocket-Extensions", value.as_str()))
        .collect();
    let connection = match tls {
        Some(config) => RawClient::connect_tls(addr, std::sync::Arc::clone(config)),
        None => RawClient::connect(addr),
    };
    let (client, head) = connection.upgrade(addr, &headers);
    let answer = common::header_values(&head, "Sec-WebSocket-Extensions");
    let offers = offering.map_or(&[][..], |offering| &offering.offers[..]);
    let agreement = permessage_deflate::check_response(offers, &answer)
        .unwrap_or_else(|why| panic!("invalid Sec-WebSocket-Extensions answer: {why}; {head:?}"));
    if let Some(offering) = offering {
        assert!(
            agreement.is_some() || !offering.must_accept,
            "the server declined the {offering}"
        );
    }
    (client, agreement.map(ClientDeflate::new))
}

fn play(
    client: &mut RawClient,
    deflate: &mut Option<ClientDeflate>,
    step: &Step,
    write_error: &mut Option<String>,
) {
    match step {
        Step::Send(outs, chop) => {
            if write_error.is_some() {
                return;
            }
            let frames: Vec<Vec<u8>> = outs.iter().flat_map(Out::encode).collect();
            let all;
            let writes: Vec<&[u8]> = match chop {
                Chop::PerFrame => frames.iter().map(Vec::as_slice).collect(),
                Chop::All => {
                    all = frames.concat();
                    vec![&all[..]]
                }
                Chop::Bytes(size) => {
                    all = frames.concat();
                    all.chunks(*size).collect()
                }
            };
            for bytes in writes {
                if let Err(e) = write_all(client, bytes) {
                    *write_error = Some(e.to_string());
                    return;
                }
            }
        }
        Step::Pause(duration) => thread::sleep(*duration),
        Step::Expect(Reply::Eof) => client.expect_eof(),
        Step::Expect(reply) => {
            let mut frame = client.read_frame();
            if let (Reply::Frame(..), Some(deflate)) = (reply, deflate.as_mut()) {
                inflate_if_compressed(deflate, &mut frame);
            }
            if let Err(why) = check_frame(reply, &frame) {
                panic!("got {}: {why}", describe_frame(&frame));
            }
        }
        Step::ExpectSilence(duration) => match client.byte_within(*duration) {
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                panic!("expected silence, but the server closed the connection")
            }
            Ok(Some(byte)) => panic!("expected silence, but the server sent {byte:#04x}…"),
            Err(e) => panic!("expected silence, got error {e}"),
        },
        Step::Echo(run) => run.play(client, deflate),
    }
}

/// A whole data message in one frame with RSV1 set, with deflate agreed: its payload
/// inflated and RSV1 cleared, so that `check_frame` compares what the server meant.
/// Anything else is left as it is, for `check_frame` to judge.
fn inflate_if_compressed(deflate: &mut ClientDeflate, frame: &mut common::Frame) {
    if frame.rsv == 0b100 && frame.fin && matches!(frame.opcode, OP_TEXT | OP_BINARY) {
        let compressed = frame.payload.len();
        frame.payload = deflate
            .inflate(&frame.payload, 64 * MIB)
            .unwrap_or_else(|why| panic!("a compressed frame of {compressed} bytes {why}"));
        frame.rsv = 0;
    }
}

fn write_all(client: &mut RawClient, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    client.stream.write_all(bytes)
}

/// Checks a frame against what was expected.
fn check_frame(reply: &Reply, frame: &common::Frame) -> Result<(), String> {
    if !frame.fin || frame.rsv != 0 || frame.masked {
        return Err("a server frame must have FIN set, RSV clear and no mask".into());
    }
    match reply {
        Reply::Frame(opcode, payload) => {
            if frame.opcode != *opcode {
                return Err(format!(
                    "opcode {} instead of {}",
                    opcode_name(frame.opcode),
                    opcode_name(*opcode)
                ));
            }
            let expected = payload.bytes();
            if frame.payload[..] != expected[..] {
                let at = frame
                    .payload
                    .iter()
                    .zip(expected.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(frame.payload.len().min(expected.len()));
                return Err(format!(
                    "payload differs: {} bytes instead of {}, first difference at byte {at}",
                    frame.payload.len(),
                    expected.len()
                ));
            }
            Ok(())
        }
        Reply::Close(code) => {
            if frame.opcode != OP_CLOSE {
                return Err("not a Close".into());
            }
            if frame.close_code() != Some(*code) {
                return Err(format!(
                    "close code {:?} instead of {code}",
                    frame.close_code()
                ));
            }
            if frame.payload.len() > 125 {
                return Err("close payload longer than 125 bytes".into());
            }
            std::str::from_utf8(&frame.payload[2..])
                .map(|_| ())
                .map_err(|_| "close reason is not UTF-8".into())
        }
        Reply::CloseEmpty => match (frame.opcode, frame.payload.len()) {
            (OP_CLOSE, 0) => Ok(()),
            (OP_CLOSE, _) => Err("the Close is not empty".into()),
            _ => Err("not a Close".into()),
        },
        Reply::Eof => unreachable!("EOF is not a frame"),
    }
}

fn opcode_name(opcode: u8) -> String {
    match opcode {
        OP_CONT => "Continuation".into(),
        OP_TEXT => "Text".into(),
        OP_BINARY => "Binary".into(),
        OP_CLOSE => "Close".into(),
        OP_PING => "Ping".into(),
        OP_PONG => "Pong".into(),
        other => format!("reserved {other:#x}"),
    }
}

/// At most 60 bytes of a payload, escaped, with its length.
fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(60)];
    let more = if bytes.len() > shown.len() { "…" } else { "" };
    format!("{} bytes \"{}{more}\"", bytes.len(), shown.escape_ascii())
}

fn describe_frame(frame: &common::Frame) -> String {
    let mut text = format!(
        "{} frame (FIN {}, RSV {}, masked {}) with {}",
        opcode_name(frame.opcode),
        u8::from(frame.fin),
        frame.rsv,
        frame.masked,
        preview(&frame.payload)
    );
    if let Some(code) = frame.close_code() {
        text.push_str(&format!(
            " = code {code}, reason {:?}",
            String::from_utf8_lossy(&frame.payload[2..])
        ));
    }
    text
}

fn describe_reply(reply: &Reply) -> String {
    match reply {
        Reply::Frame(opcode, payload) => {
            format!("a {} frame with {payload:?}", opcode_name(*opcode))
        }
        Reply::Close(code) => format!("a Close with code {code}"),
        Reply::CloseEmpty => "an empty Close".into(),
        Reply::Eof => "the server to close TCP".into(),
    }
}

fn describe_step(step: &Step) -> String {
    match step {
        Step::Send(outs, chop) => {
            let bytes: usize = outs
                .iter()
                .map(|out| match out {
                    Out::Frame { payload, .. } | Out::Fragmented { payload, .. } => payload.len(),
                    Out::Raw(bytes) => bytes.len(),
                })
                .sum();
            format!(
                "send {} item(s), {bytes} payload bytes, {chop:?}",
                outs.len()
            )
        }
        Step::Pause(duration) => format!("pause {duration:?}"),
        Step::Expect(reply) => format!("expect {}", describe_reply(reply)),
        Step::ExpectSilence(duration) => format!("expect silence for {duration:?}"),
        Step::Echo(run) => format!("echo {}", run.describe()),
    }
}

// ---------------------------------------------------------------------------------------
// Self-checks of the suite's own helpers
// ---------------------------------------------------------------------------------------

#[test]
fn generated_payloads_have_the_asked_length_and_text_is_utf8() {
    for len in [0, 1, 2, 3, 5, 16, 64, 125, 1000, 65536, 65537] {
        for seed in [0, 7, 999] {
            let text = Data::Text { len, seed }.bytes().into_owned();
            assert_eq!(text.len(), len);
            assert!(std::str::from_utf8(&text).is_ok(), "len {len}");
            assert_eq!(Data::Binary { len, seed }.bytes().len(), len);
        }
    }
    // Different seeds give different messages, so an echo out of order is noticed.
    assert_ne!(
        Data::Text { len: 16, seed: 1 }.bytes(),
        Data::Text { len: 16, seed: 2 }.bytes()
    );
    assert_ne!(
        Data::Binary { len: 16, seed: 1 }.bytes(),
        Data::Binary { len: 16, seed: 2 }.bytes()
    );
}

#[test]
fn fragmenting_covers_the_payload_once_with_fin_on_the_last_frame() {
    let frames = fragmented(OP_TEXT, Data::from("abcdefg"), 3).encode();
    let first_bytes: Vec<u8> = frames.iter().map(|f| f[0]).collect();
    assert_eq!(first_bytes, [OP_TEXT, OP_CONT, 0x80 | OP_CONT]);
    let frames = fragmented(OP_BINARY, Data::from(""), 3).encode();
    assert_eq!(frames, [frame_bytes(0x80 | OP_BINARY, &[], Some(MASK))]);
}

/// The tables hold the 553 cases the README and docs/CONFORMANCE.md count, section by
/// section; `run_section` runs every one of them in process and against the binary.
#[test]
fn the_tables_hold_553_cases() {
    let counts: Vec<(&str, usize)> = all_sections()
        .iter()
        .map(|(section, cases)| (*section, cases.len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("1", 16),
            ("2", 11),
            ("3", 7),
            ("4", 10),
            ("5", 20),
            ("6", 145),
            ("7", 37),
            ("9", 59),
            ("10", 1),
            ("12", 90 + 20),
            ("13", 126 + 11)
        ]
    );
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), 553);
}
