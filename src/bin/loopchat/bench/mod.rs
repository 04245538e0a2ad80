//! `loopchat bench`: a load generator for any WebSocket server, on one thread.
//!
//! It must cost the server's opponent little, so that the figures are the server's and
//! not the generator's. It reports its own CPU time next to the server's to show it.
//!
//! # Design
//!
//! - **One thread, one `mio::Poll`** ([`fleet`]): every client connection is a
//!   non-blocking socket in one `Vec`, its index the poll token. The loop has the
//!   server's shape: poll, dispatch by token, timers, let the [`load`] queue messages,
//!   flush once per connection per turn.
//! - **The crate's own client role**: the opening handshake is
//!   [`ClientHandshake`](loopchat::http::ClientHandshake); frames are encoded with
//!   [`encode_frame`](loopchat::ws::frame::encode_frame) and masked with
//!   [`apply_mask`](loopchat::ws::mask::apply_mask); frame headers are parsed with
//!   [`FrameHeader::parse`](loopchat::ws::frame::FrameHeader::parse). Incoming frames go
//!   through a lean reader ([`frames`]) rather than the full
//!   [`WebSocket`](loopchat::ws::WebSocket) state machine: a frame that arrived whole is
//!   read in place, with no copy and no UTF-8 pass (about five times cheaper per small
//!   message than the codec; see [`frames`]).
//! - **Pre-encoded, masked frames** ([`payload`]): each sender's message is encoded once;
//!   a send rewrites the 21 bytes of sequence number and time in place, masked with the
//!   connection's fixed key at the right offset, and appends the frame to the
//!   connection's queue.
//! - **Batched I/O**: reads go into one shared 256 KiB buffer; output is queued and
//!   written once per loop turn.
//! - **Markers** ([`payload`]): each message is printable text carrying
//!   `~lcb1:run:sender:seq:time~`, found anywhere in what arrives, so a server may wrap it
//!   (the chat's JSON envelope) and may send other messages (the chat's events), which
//!   are ignored.
//! - **Accounting** ([`stats`]): per (sender, receiver), the next sequence number
//!   expected and any gaps: lost, duplicated and out-of-order deliveries, and latency in
//!   an HDR histogram.
//! - **permessage-deflate** (`--deflate`): every client offers it as a browser does; the
//!   frame reader inflates what arrives with RSV1 (one inflater per connection, keeping
//!   the server's window if it did not say `server_no_context_takeover`), and senders
//!   compress each message on its own (see [`load`]). A server that declines on any
//!   connection stops the run with an error: the report says `deflate negotiated: yes`
//!   or the run did not happen.
//! - **Payloads** (`--payload`): the marker padded with filler (the default, and the
//!   zero-copy, pre-encoded fast path), or chat-like JSON with new sentences in every
//!   message ([`payload::ChatJson`]), which compresses as chat does.
//! - **TLS** (`wss://` URLs, with `--ca-file` or `--insecure`): one rustls client
//!   configuration for the run, shared by every connection; each connection's rustls
//!   state decrypts what the fleet's one large read brought and encrypts its queue as it
//!   is flushed (see [`fleet`] and [`crate::client::tls`]). The report says `tls: yes`.
//! - **Bytes on the wire**: the fleet counts what it reads from and writes to its
//!   sockets (TLS records included, with TLS); the report gives, for the measured window, the bytes received per delivery
//!   and sent per message, to set beside the message size.
//! - **Bounded phases**: connect (10 s per attempt; abandoned after 15 s without a
//!   success), warm-up, measure, drain (ends early when everything has arrived), close
//!   (10 s). Nothing waits without a deadline; a client that fails is counted with its
//!   reason, never a panic.
//!
//! # Scenarios
//!
//! - **broadcast**: C clients, S senders. Expected recipients of a message: every client
//!   connected when sending began, except its sender; also the sender if the server
//!   delivers to senders (a chat does), which is detected from what senders receive or
//!   forced with `--self-delivery`; those copies are counted apart, never as duplicates.
//!   Pacing and its window semantics are described in [`load`].
//! - **echo**: the same machinery with each client its own sender and only recipient.
//! - **connections**: connect, hold, measure the server's memory, close cleanly.
//! - **sweep**: broadcast at several C, plotted ([`plot`]).
//!
//! # Several servers
//!
//! `--url A,B` (or `--url A --url B`) spreads the clients over several instances of one
//! service, such as `loopchat serve` instances that relay to each other through Redis:
//! client `i` connects to server `i mod n`. The accounting does not change: a message is
//! expected by every client, whichever server it is on, so what one instance fails to
//! pass on to another shows up as lost. Senders are spread so that each server has
//! some when S ≥ n ([`spread_senders`]); a sender's watcher is the next client after it,
//! so on the next server: the window, and so the latency, measure the way across
//! instances. `--server-pid` takes the servers' process ids the same way, and their CPU
//! time and memory are summed.
//!
//! A chat server (`loopchat serve` in chat mode) limits each client to 20 messages a
//! second (bursts of 60): benchmark it with `--rate` below that, such as `--rate 10`.
//! The main target is `loopchat serve --mode broadcast`.

pub mod args;
pub mod fleet;
pub mod frames;
pub mod inflate_cache;
pub mod load;
pub mod payload;
pub mod plot;
pub mod proc;
pub mod report;
pub mod server_stats;
pub mod stats;

pub use args::{BenchCommand, PayloadKind, Scenario};
pub use report::Report;

use crate::client::{TlsArgs, TlsError, UrlError, WsUrl, tls};
use args::{BroadcastLoad, CommonArgs, ConnectionsArgs, SweepArgs};
use fleet::{Fleet, FleetCounts, Quiet, Target, TlsTarget, Until};
use load::{Load, LoadPlan, Pacing};
use loopchat::ws::mask::MaskKeys;
use report::{ConnectionFigures, Details, Progress, ServerFigures};
use stats::Recipients;
use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The longest the connect phase may take, whatever happens.
const CONNECT_PHASE_LIMIT: Duration = Duration::from_secs(600);
/// Sockets the process needs beyond the clients' (standard streams, poll, files).
const SPARE_FILES: usize = 64;
/// The pause between the steps of a sweep, for the server to finish closing.
const SWEEP_PAUSE: Duration = Duration::from_millis(500);

/// Why a benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The URL is not a usable `ws://` or `wss://` URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `wss://` URLs without a way to check the certificate, or a bad `--ca-file`.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The host did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// An option's value cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The poll could not be created, or waiting on it failed.
    #[error("the event loop failed: {0}")]
    Poll(#[from] io::Error),
    /// Too few clients connected to run the scenario.
    #[error("only {opened} clients connected, {needed} needed{why}")]
    TooFewClients {
        /// How many did.
        opened: usize,
        /// How many the scenario needs.
        needed: usize,
        /// The failure reasons, if any.
        why: String,
    },
    /// The sweep's plot could not be written.
    #[error("{0}")]
    Plot(String),
    /// `--deflate`, and the server declined permessage-deflate.
    #[error(
        "--deflate: the server declined permessage-deflate on {declined} of {opened} \
         connections; not running a compressed benchmark over uncompressed traffic"
    )]
    DeflateDeclined {
        /// Connections that opened without it.
        declined: usize,
        /// Connections that opened.
        opened: usize,
    },
}

/// Runs the command and prints its report: one JSON object with `--json`, a table
/// otherwise. Exit status 1 if the benchmark could not run.
pub fn main(command: BenchCommand) -> ExitCode {
    let common = command.scenario.common().clone();
    match run(&command) {
        Ok(report) => {
            print_report(&report, common.json);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("loopchat bench: {error}");
            if common.json {
                let urls = command.scenario.urls();
                let report = Report {
                    scenario: scenario_name(&command.scenario).into(),
                    label: common.label,
                    url: urls.join(","),
                    urls: urls.to_vec(),
                    tls: speaks_tls(urls),
                    deflate_offered: common.deflate,
                    error: Some(error.to_string()),
                    ..Report::default()
                };
                print_report(&report, true);
            }
            ExitCode::FAILURE
        }
    }
}

fn print_report(report: &Report, json: bool) {
    if json {
        match serde_json::to_string(report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("loopchat bench: cannot encode the report: {e}"),
        }
    } else {
        print!("{}", report.table());
    }
}

/// Runs the command and returns its report. A progress line is shown on standard error
/// if it is a terminal.
pub fn run(command: &BenchCommand) -> Result<Report, BenchError> {
    let progress = Progress::on_terminal;
    match &command.scenario {
        Scenario::Broadcast(a) => run_load(
            &LoadSpec::broadcast(&a.urls, a.clients, &a.load, &a.common),
            progress(),
        ),
        Scenario::Echo(a) => run_load(
            &LoadSpec {
                scenario: "echo",
                urls: &a.urls,
                clients: a.clients,
                senders: a.clients,
                recipients: Recipients::Sender,
                pacing: Pacing::Window(a.window),
                size: a.size,
                payload: a.payload,
                warmup: a.warmup,
                duration: a.duration,
                drain: a.drain,
                self_delivery: false,
                common: &a.common,
            },
            progress(),
        ),
        Scenario::Connections(a) => connections(a, progress()),
        Scenario::Sweep(a) => sweep(a, progress),
    }
}

/// `--payload`'s value as the command line writes it.
fn payload_name(payload: PayloadKind) -> &'static str {
    match payload {
        PayloadKind::Filler => "filler",
        PayloadKind::ChatJson => "chat-json",
    }
}

fn scenario_name(scenario: &Scenario) -> &'static str {
    match scenario {
        Scenario::Broadcast(_) => "broadcast",
        Scenario::Echo(_) => "echo",
        Scenario::Connections(_) => "connections",
        Scenario::Sweep(_) => "sweep",
    }
}

/// Everything [`run_load`] needs: the broadcast and echo scenarios, and each sweep step.
struct LoadSpec<'a> {
    scenario: &'static str,
    /// The servers; client `i` connects to `urls[i % urls.len()]`.
    urls: &'a [String],
    clients: usize,
    /// Senders asked for (echo: every client).
    senders: usize,
    recipients: Recipients,
    pacing: Pacing,
    size: usize,
    payload: PayloadKind,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    self_delivery: bool,
    common: &'a CommonArgs,
}

impl<'a> LoadSpec<'a> {
    fn broadcast(
        urls: &'a [String],
        clients: usize,
        load: &BroadcastLoad,
        common: &'a CommonArgs,
    ) -> LoadSpec<'a> {
        LoadSpec {
            scenario: "broadcast",
            urls,
            clients,
            senders: load.senders as usize,
            recipients: Recipients::Others,
            pacing: load.pacing(),
            size: load.size,
            payload: load.payload,
            warmup: load.warmup,
            duration: load.duration,
            drain: load.drain,
            self_delivery: load.self_delivery,
            common,
        }
    }
}

/// Resolves each URL's host, and with `wss://` URLs makes the one TLS configuration
/// every connection shares. The URLs must agree on the scheme, so that the report's
/// `tls` says what every connection did.
fn resolve_all(urls: &[String], tls_args: &TlsArgs) -> Result<Vec<Target>, BenchError> {
    let Some(first) = urls.first() else {
        return Err(BenchError::Invalid("--url is empty".into()));
    };
    let parsed = urls
        .iter()
        .map(|url| WsUrl::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.iter().any(|url| url.tls != parsed[0].tls) {
        return Err(BenchError::Invalid(
            "--url mixes ws:// and wss://: give URLs of one scheme".into(),
        ));
    }
    let config = if parsed[0].tls {
        Some(tls_args.client_config(first)?)
    } else {
        None
    };
    parsed
        .into_iter()
        .map(|ws| {
            let tls = match &config {
                Some(config) => Some(TlsTarget {
                    config: config.clone(),
                    name: tls::server_name(&ws.host)?,
                }),
                None => None,
            };
            resolve(ws, tls)
        })
        .collect()
}

/// Whether the URLs are `wss://` ones, for a report (resolve_all refuses a mix).
fn speaks_tls(urls: &[String]) -> bool {
    urls.iter()
        .any(|url| WsUrl::parse(url).is_ok_and(|url| url.tls))
}

/// Resolves the URL's host.
fn resolve(ws: WsUrl, tls: Option<TlsTarget>) -> Result<Target, BenchError> {
    let addr = (ws.host.as_str(), ws.port)
        .to_socket_addrs()
        .map_err(|source| BenchError::Resolve {
            host: ws.host.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| BenchError::Resolve {
            host: ws.host.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "no address"),
        })?;
    Ok(Target { ws, addr, tls })
}

/// Raises the open-file limit to the hard limit; returns the limit, and a note if it is
/// below what `clients` connections need.
fn raise_open_files(clients: usize, notes: &mut Vec<String>) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024) as usize;
    if clients + SPARE_FILES > limit {
        notes.push(format!(
            "the open-file limit ({limit}) is below {clients} clients; connections past it fail"
        ));
    }
    limit
}

/// A random run id.
fn run_id() -> u32 {
    u32::from_ne_bytes(MaskKeys::from_os_seed().next_key())
}

/// CPU clocks at one moment: the generator's thread, and the server if watched.
struct Clocks {
    at: Instant,
    bench_cpu_s: Option<f64>,
    server_cpu_s: Option<f64>,
}

impl Clocks {
    /// Reads the clocks; `server_cpu_s` is the sum over `server_pids`, `None` if there
    /// are none or one cannot be read.
    fn read(server_pids: &[u32], notes: &mut Vec<String>) -> Clocks {
        let server_cpu_s = sum_over(server_pids, |pid| {
            proc::process_cpu_seconds(pid)
                .map_err(|e| notes.push(format!("cannot read the CPU time of process {pid}: {e}")))
                .ok()
        });
        Clocks {
            at: Instant::now(),
            bench_cpu_s: proc::own_thread_cpu_seconds().ok(),
            server_cpu_s,
        }
    }
}

/// Generator and server CPU between two readings, and the server's memory now.
struct Usage {
    bench_cpu_s: Option<f64>,
    bench_cpu_pct: Option<f64>,
    server: Option<ServerFigures>,
}

/// The sum of `read` over the servers' process ids, if there are some and every one is
/// read.
fn sum_over<T: std::iter::Sum<T>>(pids: &[u32], read: impl FnMut(u32) -> Option<T>) -> Option<T> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().copied().map(read).sum()
}

/// The servers' memory now, summed.
fn server_memory(pids: &[u32], notes: &mut Vec<String>) -> Option<proc::Memory> {
    let memories: Option<Vec<proc::Memory>> = pids
        .iter()
        .map(|&pid| {
            proc::memory(pid)
                .map_err(|e| notes.push(format!("cannot read the memory of process {pid}: {e}")))
                .ok()
        })
        .collect();
    memories.filter(|m| !m.is_empty()).map(|m| proc::Memory {
        rss_kib: m.iter().map(|m| m.rss_kib).sum(),
        peak_kib: m.iter().map(|m| m.peak_kib).sum(),
    })
}

fn usage(
    before: &Clocks,
    after: &Clocks,
    server_pids: &[u32],
    deliveries: Option<u64>,
    notes: &mut Vec<String>,
) -> Usage {
    let wall = after.at.saturating_duration_since(before.at).as_secs_f64();
    // CPU clocks count hundredths of a second: keep the difference to that.
    let elapsed = |(b, a): (f64, f64)| ((a - b) * 100.0).round() / 100.0;
    let bench_cpu_s = before.bench_cpu_s.zip(after.bench_cpu_s).map(elapsed);
    let server = (!server_pids.is_empty()).then(|| {
        let cpu_s = before.server_cpu_s.zip(after.server_cpu_s).map(elapsed);
        let memory = server_memory(server_pids, notes);
        ServerFigures {
            pid: server_pids[0],
            pids: server_pids.to_vec(),
            cpu_s,
            cpu_ns_per_delivery: cpu_s
                .zip(deliveries.filter(|&d| d > 0))
                .map(|(cpu, d)| cpu * 1e9 / d as f64),
            rss_kib: memory.map(|m| m.rss_kib),
            peak_rss_kib: memory.map(|m| m.peak_kib),
        }
    });
    Usage {
        bench_cpu_s,
        bench_cpu_pct: bench_cpu_s
            .filter(|_| wall > 0.0)
            .map(|cpu| cpu / wall * 100.0),
        server,
    }
}

/// The connection figures from the fleet's counts.
fn connection_figures(fleet: &Fleet) -> ConnectionFigures {
    let FleetCounts {
        opened,
        failed,
        failures,
        dropped,
        drops,
        closed_cleanly,
        close_failed,
        deflate_negotiated,
    } = fleet.counts().clone();
    ConnectionFigures {
        opened,
        failed,
        handshakes_per_s: fleet.handshakes_per_s(),
        closed_cleanly,
        close_failed,
        dropped,
        failures,
        drops,
        deflate_negotiated,
        ..ConnectionFigures::default()
    }
}

/// With `--deflate`: every connection that opened must have agreed to permessage-deflate,
/// or the run would measure uncompressed traffic under a compressed label.
fn check_deflate(fleet: &Fleet, offered: bool) -> Result<(), BenchError> {
    let counts = fleet.counts();
    if offered && counts.deflate_negotiated < counts.opened {
        return Err(BenchError::DeflateDeclined {
            declined: counts.opened - counts.deflate_negotiated,
            opened: counts.opened,
        });
    }
    Ok(())
}

/// Connects every client of the fleet (each attempt bounded, see [`fleet`]).
fn connect(fleet: &mut Fleet) -> Result<(), BenchError> {
    fleet.run(
        Instant::now() + CONNECT_PHASE_LIMIT,
        Until::Connected,
        &mut Quiet,
    )?;
    Ok(())
}

fn failure_summary(counts: &FleetCounts) -> String {
    let reasons: Vec<String> = counts
        .failures
        .iter()
        .map(|(reason, n)| format!("{n} × {reason}"))
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join("; "))
    }
}

/// The broadcast and echo scenarios: connect, warm up, measure, drain, close.
fn run_load(spec: &LoadSpec<'_>, progress: Progress) -> Result<Report, BenchError> {
    let needed = match spec.recipients {
        Recipients::Others => 2,
        Recipients::Sender => 1,
    };
    if spec.size < payload::MARKER_LEN {
        return Err(BenchError::Invalid(format!(
            "--size must be at least {} bytes, the marker's length",
            payload::MARKER_LEN
        )));
    }
    if spec.payload == PayloadKind::ChatJson && spec.size < payload::MIN_CHAT_JSON_SIZE {
        return Err(BenchError::Invalid(format!(
            "--payload chat-json needs --size of at least {} bytes",
            payload::MIN_CHAT_JSON_SIZE
        )));
    }
    if spec.clients < needed {
        return Err(BenchError::Invalid(format!(
            "--clients must be at least {needed}"
        )));
    }
    if spec.senders > spec.clients {
        return Err(BenchError::Invalid(format!(
            "--senders ({}) cannot exceed --clients ({})",
            spec.senders, spec.clients
        )));
    }
    let targets = resolve_all(spec.urls, &spec.common.tls)?;
    let tls = targets[0].tls.is_some();
    let mut notes = Vec::new();
    raise_open_files(spec.clients, &mut notes);
    let pids = &spec.common.server_pids;
    let epoch = Instant::now();
    let concurrency = spec.common.connect_concurrency as usize;
    let deflate = spec.common.deflate;
    let mut fleet = Fleet::new(targets, spec.clients, concurrency, epoch, progress, deflate)?;
    connect(&mut fleet)?;
    check_deflate(&fleet, deflate)?;

    let open: Vec<usize> = (0..fleet.len()).filter(|&i| fleet.is_open(i)).collect();
    if open.len() < needed {
        return Err(BenchError::TooFewClients {
            opened: open.len(),
            needed,
            why: failure_summary(fleet.counts()),
        });
    }
    let (senders, watchers): (Vec<usize>, Vec<usize>) = match spec.recipients {
        Recipients::Sender => (open.clone(), open.clone()),
        Recipients::Others => {
            let count = spec.senders.min(open.len());
            if count < spec.senders {
                notes.push(format!(
                    "only {} clients connected: {count} senders instead of {}",
                    open.len(),
                    spec.senders
                ));
            }
            spread_senders(&open, count, fleet.servers())
        }
    };
    let sender_count = senders.len();
    let plan = LoadPlan {
        run: run_id(),
        recipients: spec.recipients,
        senders,
        watchers,
        pacing: spec.pacing,
        size: spec.size,
        payload: spec.payload,
    };
    let mut load = Load::new(plan, &fleet, epoch, spec.self_delivery);

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let measure_to = measure_from + spec.duration;
    let window = fleet.ns(measure_from)..fleet.ns(measure_to);
    load.start(fleet.ns(start), fleet.ns(measure_to), window);
    load.set_phase("warm-up", measure_from);
    fleet.run(measure_from, Until::Deadline, &mut load)?;

    let stats_url = spec.common.server_stats.as_deref();
    let counters_before = stats_url.map(server_stats::read);
    let before = Clocks::read(pids, &mut notes);
    let (wire_before, sent_before) = (fleet.wire_bytes(), load.tracker().counts().sent);
    load.set_phase("measure", measure_to);
    fleet.run(measure_to, Until::Deadline, &mut load)?;
    let after = Clocks::read(pids, &mut notes);
    let counters_after = stats_url.map(server_stats::read);
    let server_counters = match (counters_before, counters_after) {
        (Some(Ok(b)), Some(Ok(a))) => Some(server_stats::window(b, a)),
        (Some(Err(e)), _) | (_, Some(Err(e))) => {
            notes.push(format!("--server-stats: {e}"));
            None
        }
        _ => None,
    };
    let (wire_after, sent_after) = (fleet.wire_bytes(), load.tracker().counts().sent);
    let measured = load.tracker().counts().measured;
    let wire_received = wire_after.0 - wire_before.0;
    let wire_sent = wire_after.1 - wire_before.1;
    let per = |bytes: u64, count: u64| (count > 0).then(|| bytes as f64 / count as f64);
    let usage = usage(&before, &after, pids, Some(measured), &mut notes);

    load.drain();
    let drain_end = Instant::now() + spec.drain;
    load.set_phase("drain", drain_end);
    fleet.run(drain_end, Until::Deadline, &mut load)?;
    let self_delivery = load.self_delivery();
    let drain_complete = load.tracker().complete(self_delivery);
    fleet.close_all()?;

    let counts = load.tracker().counts();
    let load_counts = load.counts();
    let seconds = spec.duration.as_secs_f64();
    let per_second = (seconds > 0.0).then(|| counts.measured as f64 / seconds);
    let (window, rate) = match spec.pacing {
        Pacing::Window(w) => (Some(w), None),
        Pacing::Rate(r) => (None, Some(r)),
    };
    let echo = spec.recipients == Recipients::Sender;
    Ok(Report {
        scenario: spec.scenario.into(),
        label: spec.common.label.clone(),
        url: spec.urls.join(","),
        urls: spec.urls.to_vec(),
        clients: Some(spec.clients),
        senders: Some(sender_count),
        size: Some(spec.size),
        payload: Some(payload_name(spec.payload).into()),
        tls,
        deflate_offered: deflate,
        deflate_negotiated: deflate,
        window,
        rate,
        duration_s: Some(seconds),
        sent: Some(counts.sent),
        delivered: Some(counts.delivered),
        expected: Some(counts.expected),
        deliveries_per_s: per_second,
        round_trips_per_s: if echo { per_second } else { None },
        lost: Some(load.tracker().lost(self_delivery)),
        duplicated: Some(counts.duplicated),
        out_of_order: Some(counts.out_of_order),
        self_delivery: (!echo).then_some(self_delivery),
        self_deliveries: (!echo).then_some(counts.self_copies),
        latency_us: Some(load.tracker().latency()),
        send_lag_us: load.send_lag(),
        wire_bytes_received: Some(wire_received),
        wire_bytes_sent: Some(wire_sent),
        wire_bytes_received_per_delivery: per(wire_received, measured),
        wire_bytes_sent_per_message: per(wire_sent, sent_after - sent_before),
        bench_cpu_s: usage.bench_cpu_s,
        bench_cpu_pct: usage.bench_cpu_pct,
        server: usage.server,
        server_counters,
        connections: Some(connection_figures(&fleet)),
        details: Some(Details {
            warmup_s: spec.warmup.as_secs_f64(),
            drain_s: spec.drain.as_secs_f64(),
            drain_complete,
            measured_deliveries: counts.measured,
            window_stalls: load_counts.window_stalls,
            sends_skipped: load_counts.sends_skipped,
            foreign_markers: counts.foreign,
            unexpected_markers: counts.unexpected,
            notes,
        }),
        points: None,
        svg: None,
        error: None,
    })
}

/// Picks `count` senders (at most `open.len()`) among the connected clients `open`, and
/// each one's watcher: the next connected client after it.
///
/// Client `i` is on server `i mod servers`. Senders are dealt to the servers in turn, so
/// that each server with connected clients gets some when `count` ≥ `servers` (a server
/// with fewer connected clients than its share passes the rest on), and on each server
/// they are spread evenly over its clients. With one server that is an even spread over
/// all of them. The watcher, the next client, is then on the next server: a window
/// measures the way from one instance to another.
fn spread_senders(open: &[usize], count: usize, servers: usize) -> (Vec<usize>, Vec<usize>) {
    let servers = servers.max(1);
    let count = count.min(open.len());
    // Positions in `open`, by server.
    let mut on_server: Vec<Vec<usize>> = vec![Vec::new(); servers];
    for (at, &client) in open.iter().enumerate() {
        on_server[client % servers].push(at);
    }
    // Each server's share of the senders, dealt one at a time.
    let mut shares = vec![0; servers];
    let mut dealt = 0;
    while dealt < count {
        for (share, positions) in shares.iter_mut().zip(&on_server) {
            if dealt < count && *share < positions.len() {
                *share += 1;
                dealt += 1;
            }
        }
    }
    // In turn by server, so that sender slots alternate between servers.
    let most = shares.iter().copied().max().unwrap_or(0);
    (0..most)
        .flat_map(|k| {
            let (shares, on_server) = (&shares, &on_server);
            (0..servers)
                .filter(move |&server| k < shares[server])
                .map(move |server| {
                    let positions = &on_server[server];
                    positions[k * positions.len() / shares[server]]
                })
        })
        .map(|at| (open[at], open[(at + 1) % open.len()]))
        .unzip()
}

/// The connections scenario: connect all, hold, measure memory, close all cleanly.
fn connections(args: &ConnectionsArgs, progress: Progress) -> Result<Report, BenchError> {
    if args.clients == 0 {
        return Err(BenchError::Invalid("--clients must be at least 1".into()));
    }
    let targets = resolve_all(&args.urls, &args.common.tls)?;
    let tls = targets[0].tls.is_some();
    let mut notes = Vec::new();
    raise_open_files(args.clients, &mut notes);
    let pids = &args.common.server_pids;
    let concurrency = args.common.connect_concurrency as usize;
    let deflate = args.common.deflate;
    let mut fleet = Fleet::new(
        targets,
        args.clients,
        concurrency,
        Instant::now(),
        progress,
        deflate,
    )?;

    let rss_before = server_memory(pids, &mut notes).map(|m| m.rss_kib);
    let before = Clocks::read(pids, &mut notes);
    connect(&mut fleet)?;
    check_deflate(&fleet, deflate)?;
    fleet.run(Instant::now() + args.hold, Until::Deadline, &mut Quiet)?;
    let after = Clocks::read(pids, &mut notes);
    let usage = usage(&before, &after, pids, None, &mut notes);
    let rss_after = usage.server.as_ref().and_then(|s| s.rss_kib);
    fleet.close_all()?;

    let mut figures = connection_figures(&fleet);
    figures.rss_before_kib = rss_before;
    figures.rss_after_kib = rss_after;
    figures.bytes_per_idle_connection = rss_before
        .zip(rss_after)
        .filter(|_| figures.opened > 0)
        .map(|(b, a)| (a as f64 - b as f64) * 1024.0 / figures.opened as f64);
    Ok(Report {
        scenario: "connections".into(),
        label: args.common.label.clone(),
        url: args.urls.join(","),
        urls: args.urls.clone(),
        clients: Some(args.clients),
        tls,
        deflate_offered: deflate,
        deflate_negotiated: deflate,
        bench_cpu_s: usage.bench_cpu_s,
        bench_cpu_pct: usage.bench_cpu_pct,
        server: usage.server,
        connections: Some(figures),
        details: Some(Details {
            drain_complete: true,
            notes,
            ..Details::default()
        }),
        ..Report::default()
    })
}

/// The sweep: broadcast at each client count, then the plot.
fn sweep(args: &SweepArgs, progress: fn() -> Progress) -> Result<Report, BenchError> {
    if args.clients_list.is_empty() {
        return Err(BenchError::Invalid("--clients-list is empty".into()));
    }
    let mut notes = Vec::new();
    let limit = raise_open_files(0, &mut notes);
    let mut points = Vec::new();
    for (k, &clients) in args.clients_list.iter().enumerate() {
        if clients + SPARE_FILES > limit {
            notes.push(format!(
                "skipped {clients} clients: the open-file limit is {limit}"
            ));
            continue;
        }
        if k > 0 {
            std::thread::sleep(SWEEP_PAUSE);
        }
        let spec = LoadSpec::broadcast(&args.urls, clients, &args.load, &args.common);
        match run_load(&spec, progress()) {
            Ok(report) => {
                if args.common.json {
                    // Nothing on stdout but the final object; the table is for people.
                } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    eprintln!(
                        "{clients} clients: {:.0} deliveries/s, p99 {:.0} µs",
                        report.deliveries_per_s.unwrap_or(0.0),
                        report.latency_us.map_or(0.0, |l| l.p99)
                    );
                }
                points.push(report);
            }
            // A server that declines deflate declines it at every client count, and
            // wss:// URLs that cannot be trusted cannot be at any.
            Err(e @ (BenchError::DeflateDeclined { .. } | BenchError::Tls(_))) => return Err(e),
            Err(e) => notes.push(format!("{clients} clients: {e}")),
        }
    }
    let plotted: Vec<plot::SweepPoint> = points.iter().map(plot::SweepPoint::of).collect();
    let pacing = match args.load.pacing() {
        Pacing::Window(w) => format!("window {w}"),
        Pacing::Rate(r) => format!("{r} msg/s per sender"),
    };
    let urls = args.urls.join(", ");
    let title = format!(
        "{}: broadcast, {} senders, {} B, {pacing}",
        args.common.label.as_deref().unwrap_or(&urls),
        args.load.senders,
        args.load.size
    );
    plot::write_svg(&args.svg, &title, &plotted).map_err(BenchError::Plot)?;
    let (window, rate) = match args.load.pacing() {
        Pacing::Window(w) => (Some(w), None),
        Pacing::Rate(r) => (None, Some(r)),
    };
    Ok(Report {
        scenario: "sweep".into(),
        label: args.common.label.clone(),
        url: args.urls.join(","),
        urls: args.urls.clone(),
        senders: Some(args.load.senders as usize),
        size: Some(args.load.size),
        payload: Some(payload_name(args.load.payload).into()),
        tls: speaks_tls(&args.urls),
        deflate_offered: args.common.deflate,
        deflate_negotiated: args.common.deflate && !points.is_empty(),
        window,
        rate,
        duration_s: Some(args.load.duration.as_secs_f64()),
        details: Some(Details {
            warmup_s: args.load.warmup.as_secs_f64(),
            drain_s: args.load.drain.as_secs_f64(),
            drain_complete: points
                .iter()
                .all(|p| p.details.as_ref().is_some_and(|d| d.drain_complete)),
            notes,
            ..Details::default()
        }),
        points: Some(points),
        svg: Some(args.svg.display().to_string()),
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::spread_senders;

    #[test]
    fn one_server_spreads_senders_evenly_and_watches_the_next() {
        let open: Vec<usize> = (0..10).collect();
        let (senders, watchers) = spread_senders(&open, 5, 1);
        assert_eq!(senders, [0, 2, 4, 6, 8]);
        assert_eq!(watchers, [1, 3, 5, 7, 9]);
        let (senders, watchers) = spread_senders(&open, 1, 1);
        assert_eq!((senders, watchers), (vec![0], vec![1]));
        // The last client's watcher wraps around to the first.
        let (senders, watchers) = spread_senders(&[3, 7], 2, 1);
        assert_eq!((senders, watchers), (vec![3, 7], vec![7, 3]));
    }

    #[test]
    fn several_servers_each_get_senders_watched_on_another() {
        // 1,000 clients on 2 servers, 10 senders: 5 on each, alternating, each watched by
        // the next client, which is on the other server.
        let open: Vec<usize> = (0..1000).collect();
        let (senders, watchers) = spread_senders(&open, 10, 2);
        assert_eq!(senders.len(), 10);
        for (k, (&s, &w)) in senders.iter().zip(&watchers).enumerate() {
            assert_eq!(s % 2, k % 2, "slot {k} alternates servers: {senders:?}");
            assert_eq!(w, s + 1);
            assert_ne!(w % 2, s % 2);
        }
        let mut distinct = senders.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);

        // Three servers, S = 3: one sender on each.
        let (senders, _) = spread_senders(&open[..9], 3, 3);
        let mut servers: Vec<usize> = senders.iter().map(|s| s % 3).collect();
        servers.sort();
        assert_eq!(servers, [0, 1, 2]);
    }

    #[test]
    fn a_server_short_of_clients_passes_its_share_on() {
        // Server 0 has one connected client (0), server 1 has five (1, 3, 5, 7, 9).
        let open = [0, 1, 3, 5, 7, 9];
        let (senders, watchers) = spread_senders(&open, 4, 2);
        assert_eq!(senders.iter().filter(|&&s| s % 2 == 0).count(), 1);
        let mut distinct = senders.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{senders:?}");
        for (s, w) in senders.iter().zip(&watchers) {
            let at = open.iter().position(|c| c == s).unwrap();
            assert_eq!(*w, open[(at + 1) % open.len()]);
        }
        // As many senders as clients: every client sends.
        let (mut senders, _) = spread_senders(&open, 6, 2);
        senders.sort();
        assert_eq!(senders, open);
    }
}
