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
//! A chat server (`loopchat serve` in chat mode) limits each client to 20 messages a
//! second (bursts of 60): benchmark it with `--rate` below that, such as `--rate 10`.
//! The main target is `loopchat serve --mode broadcast`.

pub mod args;
pub mod fleet;
pub mod frames;
pub mod load;
pub mod payload;
pub mod plot;
pub mod proc;
pub mod report;
pub mod stats;

pub use args::{BenchCommand, Scenario};
pub use report::Report;

use crate::client::{UrlError, WsUrl};
use args::{BroadcastLoad, CommonArgs, ConnectionsArgs, SweepArgs};
use fleet::{Fleet, FleetCounts, Quiet, Target, Until};
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
    /// The URL is not a usable `ws://` URL.
    #[error(transparent)]
    Url(#[from] UrlError),
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
                let report = Report {
                    scenario: scenario_name(&command.scenario).into(),
                    label: common.label,
                    url: scenario_url(&command.scenario).into(),
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
            &LoadSpec::broadcast(&a.url, a.clients, &a.load, &a.common),
            progress(),
        ),
        Scenario::Echo(a) => run_load(
            &LoadSpec {
                scenario: "echo",
                url: &a.url,
                clients: a.clients,
                senders: a.clients,
                recipients: Recipients::Sender,
                pacing: Pacing::Window(a.window),
                size: a.size,
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

fn scenario_name(scenario: &Scenario) -> &'static str {
    match scenario {
        Scenario::Broadcast(_) => "broadcast",
        Scenario::Echo(_) => "echo",
        Scenario::Connections(_) => "connections",
        Scenario::Sweep(_) => "sweep",
    }
}

fn scenario_url(scenario: &Scenario) -> &str {
    match scenario {
        Scenario::Broadcast(a) => &a.url,
        Scenario::Echo(a) => &a.url,
        Scenario::Connections(a) => &a.url,
        Scenario::Sweep(a) => &a.url,
    }
}

/// Everything [`run_load`] needs: the broadcast and echo scenarios, and each sweep step.
struct LoadSpec<'a> {
    scenario: &'static str,
    url: &'a str,
    clients: usize,
    /// Senders asked for (echo: every client).
    senders: usize,
    recipients: Recipients,
    pacing: Pacing,
    size: usize,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    self_delivery: bool,
    common: &'a CommonArgs,
}

impl<'a> LoadSpec<'a> {
    fn broadcast(
        url: &'a str,
        clients: usize,
        load: &BroadcastLoad,
        common: &'a CommonArgs,
    ) -> LoadSpec<'a> {
        LoadSpec {
            scenario: "broadcast",
            url,
            clients,
            senders: load.senders as usize,
            recipients: Recipients::Others,
            pacing: load.pacing(),
            size: load.size,
            warmup: load.warmup,
            duration: load.duration,
            drain: load.drain,
            self_delivery: load.self_delivery,
            common,
        }
    }
}

/// Resolves the URL's host.
fn resolve(url: &str) -> Result<Target, BenchError> {
    let ws = WsUrl::parse(url)?;
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
    Ok(Target { ws, addr })
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
    fn read(server_pid: Option<u32>, notes: &mut Vec<String>) -> Clocks {
        let server_cpu_s = server_pid.and_then(|pid| match proc::process_cpu_seconds(pid) {
            Ok(cpu) => Some(cpu),
            Err(e) => {
                notes.push(format!("cannot read the CPU time of process {pid}: {e}"));
                None
            }
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

fn usage(
    before: &Clocks,
    after: &Clocks,
    server_pid: Option<u32>,
    deliveries: Option<u64>,
    notes: &mut Vec<String>,
) -> Usage {
    let wall = after.at.saturating_duration_since(before.at).as_secs_f64();
    // CPU clocks count hundredths of a second: keep the difference to that.
    let elapsed = |(b, a): (f64, f64)| ((a - b) * 100.0).round() / 100.0;
    let bench_cpu_s = before.bench_cpu_s.zip(after.bench_cpu_s).map(elapsed);
    let server = server_pid.map(|pid| {
        let cpu_s = before.server_cpu_s.zip(after.server_cpu_s).map(elapsed);
        let memory = proc::memory(pid)
            .map_err(|e| notes.push(format!("cannot read the memory of process {pid}: {e}")))
            .ok();
        ServerFigures {
            pid,
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
        ..ConnectionFigures::default()
    }
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
    let target = resolve(spec.url)?;
    let mut notes = Vec::new();
    raise_open_files(spec.clients, &mut notes);
    let pid = spec.common.server_pid;
    let epoch = Instant::now();
    let concurrency = spec.common.connect_concurrency as usize;
    let mut fleet = Fleet::new(target, spec.clients, concurrency, epoch, progress)?;
    connect(&mut fleet)?;

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
            // Spread evenly over the connected clients; each one's watcher is the next.
            (0..count)
                .map(|k| {
                    let at = k * open.len() / count;
                    (open[at], open[(at + 1) % open.len()])
                })
                .unzip()
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
    };
    let mut load = Load::new(plan, &fleet, epoch, spec.self_delivery);

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let measure_to = measure_from + spec.duration;
    let window = fleet.ns(measure_from)..fleet.ns(measure_to);
    load.start(fleet.ns(start), fleet.ns(measure_to), window);
    load.set_phase("warm-up", measure_from);
    fleet.run(measure_from, Until::Deadline, &mut load)?;

    let before = Clocks::read(pid, &mut notes);
    load.set_phase("measure", measure_to);
    fleet.run(measure_to, Until::Deadline, &mut load)?;
    let after = Clocks::read(pid, &mut notes);
    let measured = load.tracker().counts().measured;
    let usage = usage(&before, &after, pid, Some(measured), &mut notes);

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
        url: spec.url.into(),
        clients: Some(spec.clients),
        senders: Some(sender_count),
        size: Some(spec.size),
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
        bench_cpu_s: usage.bench_cpu_s,
        bench_cpu_pct: usage.bench_cpu_pct,
        server: usage.server,
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

/// The connections scenario: connect all, hold, measure memory, close all cleanly.
fn connections(args: &ConnectionsArgs, progress: Progress) -> Result<Report, BenchError> {
    if args.clients == 0 {
        return Err(BenchError::Invalid("--clients must be at least 1".into()));
    }
    let target = resolve(&args.url)?;
    let mut notes = Vec::new();
    raise_open_files(args.clients, &mut notes);
    let pid = args.common.server_pid;
    let concurrency = args.common.connect_concurrency as usize;
    let mut fleet = Fleet::new(target, args.clients, concurrency, Instant::now(), progress)?;

    let rss_before = pid
        .and_then(|pid| proc::memory(pid).ok())
        .map(|m| m.rss_kib);
    let before = Clocks::read(pid, &mut notes);
    connect(&mut fleet)?;
    fleet.run(Instant::now() + args.hold, Until::Deadline, &mut Quiet)?;
    let after = Clocks::read(pid, &mut notes);
    let usage = usage(&before, &after, pid, None, &mut notes);
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
        url: args.url.clone(),
        clients: Some(args.clients),
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
        let spec = LoadSpec::broadcast(&args.url, clients, &args.load, &args.common);
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
            Err(e) => notes.push(format!("{clients} clients: {e}")),
        }
    }
    let plotted: Vec<plot::SweepPoint> = points.iter().map(plot::SweepPoint::of).collect();
    let pacing = match args.load.pacing() {
        Pacing::Window(w) => format!("window {w}"),
        Pacing::Rate(r) => format!("{r} msg/s per sender"),
    };
    let title = format!(
        "{}: broadcast, {} senders, {} B, {pacing}",
        args.common.label.as_deref().unwrap_or(&args.url),
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
        url: args.url.clone(),
        senders: Some(args.load.senders as usize),
        size: Some(args.load.size),
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
