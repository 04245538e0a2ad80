//! The command line of `loopchat bench`, which is also the library's configuration:
//! [`super::run`] takes a parsed [`BenchCommand`], so tests go through the same parsing
//! as the binary.

use super::load::Pacing;
use crate::client::{TlsArgs, parse_seconds};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// The default server URL.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:8080/ws";

/// `loopchat bench SCENARIO [OPTIONS]`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "bench",
    about = "Load generator for any WebSocket server: broadcast, echo, connections, sweep"
)]
pub struct BenchCommand {
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The four scenarios.
#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// C clients, S of them sending B-byte text messages that the server relays to the
    /// others: deliveries/s, end-to-end latency, lost, duplicated and out-of-order
    /// deliveries. For `loopchat serve --mode broadcast`, Node's ws, Bun's pub/sub, or the
    /// chat at a low --rate (its limit is 20 messages/s per client).
    Broadcast(BroadcastArgs),
    /// C clients with W messages each in flight to an echo server: round trips/s and
    /// latency.
    Echo(EchoArgs),
    /// Open C connections as fast as allowed: handshakes/s, the server's memory per idle
    /// connection (with --server-pid), then a clean close of each.
    Connections(ConnectionsArgs),
    /// The broadcast scenario at several client counts, plotted as deliveries/s and p99
    /// latency against clients (SVG).
    Sweep(SweepArgs),
}

/// Options every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The server's process id: report its CPU time (and CPU per delivery) and memory
    /// from /proc. Several servers (comma-separated, or the option repeated): their
    /// figures are summed.
    #[arg(
        long = "server-pid",
        value_name = "PID[,PID...]",
        value_delimiter = ','
    )]
    pub server_pids: Vec<u32>,

    /// Print one JSON object on stdout at the end instead of a table.
    #[arg(long)]
    pub json: bool,

    /// The most connection attempts (TCP connect plus handshake) under way at once.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// A name for this run in the report (the server's, say).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,

    /// Every client offers permessage-deflate (RFC 7692) as a browser does
    /// (`permessage-deflate; client_max_window_bits`), inflates what arrives compressed
    /// and compresses every message it sends. The run stops with an error if the server
    /// declines on any connection: a compressed benchmark of uncompressed traffic would
    /// mislead.
    #[arg(long)]
    pub deflate: bool,

    /// A loopchat server's admin `/stats` (`http://127.0.0.1:9090/stats`, started with
    /// `--admin-addr`): its counters are read as the measured window opens and closes,
    /// and the differences reported: the loop's turns, writes, and frames per write.
    #[arg(long, value_name = "URL")]
    pub server_stats: Option<String>,

    /// How wss:// servers' certificates are checked: --ca-file FILE or --insecure.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// What a message's bytes are, around its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PayloadKind {
    /// The marker, then the same letters and digits over and over: cheap to make, and
    /// compresses about 20 times, unlike any real chat.
    Filler,
    /// A chat event as JSON, `{"type":"message","room":"lobby","from":...,"text":...}`,
    /// whose text is the marker then English-like sentences drawn afresh for every
    /// message from a built-in vocabulary of words and phrases: compresses about as
    /// real chat does (about 2 times with deflate and no context). --size must be at
    /// least 128.
    ChatJson,
}

/// How broadcast senders send; shared by `broadcast` and `sweep`.
#[derive(Args, Debug, Clone)]
pub struct BroadcastLoad {
    /// How many of the clients send.
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub senders: u32,

    /// Message size in bytes (at least 46, the marker's length).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// What the messages say: the marker padded with filler, or chat-like JSON.
    #[arg(long, value_enum, default_value_t = PayloadKind::Filler)]
    pub payload: PayloadKind,

    /// Each sender keeps at most W messages in flight: sent, and not yet received by its
    /// watcher (the next client after it, so on the next server when --url names
    /// several). The default, with W = 8, when --rate is not given.
    #[arg(long, value_name = "W", conflicts_with = "rate", value_parser = clap::value_parser!(u32).range(1..))]
    pub window: Option<u32>,

    /// Each sender sends this many messages a second on a fixed schedule; latency is
    /// counted from the scheduled time.
    #[arg(long, value_name = "MSGS_PER_SEC_PER_SENDER", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Seconds measured (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub duration: Duration,

    /// Seconds of load before measuring starts.
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_seconds)]
    pub warmup: Duration,

    /// After sending stops, at most this many seconds for the rest to arrive (less if
    /// everything has).
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = parse_seconds)]
    pub drain: Duration,

    /// Expect each sender to receive its own messages too (a chat does). Without this
    /// flag it is detected from what senders receive.
    #[arg(long)]
    pub self_delivery: bool,
}

impl BroadcastLoad {
    /// The pacing asked for: a rate, or a window (8 by default).
    pub fn pacing(&self) -> Pacing {
        match (self.rate, self.window) {
            (Some(rate), _) => Pacing::Rate(rate),
            (None, window) => Pacing::Window(window.unwrap_or(8)),
        }
    }
}

/// `loopchat bench broadcast`.
#[derive(Args, Debug, Clone)]
pub struct BroadcastArgs {
    /// The server's WebSocket URL; several servers, comma-separated or the option
    /// repeated, share the clients (client i connects to URL i mod n).
    #[arg(long = "url", value_name = "URL[,URL...]", value_delimiter = ',', default_value = DEFAULT_URL)]
    pub urls: Vec<String>,

    /// How many clients connect (at least 2).
    #[arg(long, value_name = "C", default_value_t = 1000)]
    pub clients: usize,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: BroadcastLoad,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `loopchat bench echo`.
#[derive(Args, Debug, Clone)]
pub struct EchoArgs {
    /// The server's WebSocket URL; several servers, comma-separated or the option
    /// repeated, share the clients (client i connects to URL i mod n).
    #[arg(long = "url", value_name = "URL[,URL...]", value_delimiter = ',', default_value = DEFAULT_URL)]
    pub urls: Vec<String>,

    /// How many clients connect; each one sends.
    #[arg(long, value_name = "C", default_value_t = 100)]
    pub clients: usize,

    /// Messages in flight per client.
    #[arg(long, value_name = "W", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,

    /// Message size in bytes (at least 46).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// What the messages say: the marker padded with filler, or chat-like JSON.
    #[arg(long, value_enum, default_value_t = PayloadKind::Filler)]
    pub payload: PayloadKind,

    /// Seconds measured.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub duration: Duration,

    /// Seconds of load before measuring starts.
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_seconds)]
    pub warmup: Duration,

    /// After sending stops, at most this many seconds for the last echoes.
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = parse_seconds)]
    pub drain: Duration,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `loopchat bench connections`.
#[derive(Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// The server's WebSocket URL; several servers, comma-separated or the option
    /// repeated, share the clients (client i connects to URL i mod n).
    #[arg(long = "url", value_name = "URL[,URL...]", value_delimiter = ',', default_value = DEFAULT_URL)]
    pub urls: Vec<String>,

    /// How many connections to open.
    #[arg(long, value_name = "C", default_value_t = 10_000)]
    pub clients: usize,

    /// Seconds to keep every connection open and idle before measuring the server's
    /// memory and closing them.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_seconds)]
    pub hold: Duration,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `loopchat bench sweep`.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// The server's WebSocket URL; several servers, comma-separated or the option
    /// repeated, share the clients (client i connects to URL i mod n).
    #[arg(long = "url", value_name = "URL[,URL...]", value_delimiter = ',', default_value = DEFAULT_URL)]
    pub urls: Vec<String>,

    /// The client counts to run the broadcast scenario at, in order.
    #[arg(
        long,
        value_name = "C,C,...",
        value_delimiter = ',',
        default_value = "100,1000,10000"
    )]
    pub clients_list: Vec<usize>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: BroadcastLoad,

    /// Where to write the plot.
    #[arg(long, value_name = "FILE", default_value = "docs/bench/sweep.svg")]
    pub svg: PathBuf,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

impl Scenario {
    /// The options every scenario has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Scenario::Broadcast(a) => &a.common,
            Scenario::Echo(a) => &a.common,
            Scenario::Connections(a) => &a.common,
            Scenario::Sweep(a) => &a.common,
        }
    }

    /// The servers' URLs, in the order given.
    pub fn urls(&self) -> &[String] {
        match self {
            Scenario::Broadcast(a) => &a.urls,
            Scenario::Echo(a) => &a.urls,
            Scenario::Connections(a) => &a.urls,
            Scenario::Sweep(a) => &a.urls,
        }
    }
}

/// A rate: a positive, finite number of messages a second.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1e7)
        .ok_or_else(|| format!("{text:?} is not a rate (messages a second, such as 10 or 0.5)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchCommand, clap::Error> {
        BenchCommand::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documented_command_line() {
        let Scenario::Broadcast(b) = parse(&["broadcast"]).unwrap().scenario else {
            panic!()
        };
        assert_eq!(
            (b.urls.as_slice(), b.clients),
            (&[DEFAULT_URL.to_owned()][..], 1000)
        );
        assert_eq!((b.load.senders, b.load.size), (10, 64));
        assert_eq!(b.load.pacing(), Pacing::Window(8));
        assert_eq!(b.load.duration, Duration::from_secs(10));
        assert_eq!(b.load.warmup, Duration::from_secs(1));
        assert_eq!(b.load.drain, Duration::from_secs(3));
        assert_eq!(b.common.connect_concurrency, 256);
        assert!(!b.common.json && b.common.server_pids.is_empty());
        assert!(!b.common.deflate);
        assert_eq!(b.load.payload, PayloadKind::Filler);

        let Scenario::Sweep(s) = parse(&["sweep", "--rate", "50"]).unwrap().scenario else {
            panic!()
        };
        assert_eq!(s.clients_list, [100, 1000, 10_000]);
        assert_eq!(s.load.pacing(), Pacing::Rate(50.0));
        assert_eq!(s.svg, PathBuf::from("docs/bench/sweep.svg"));

        let Scenario::Connections(c) = parse(&["connections"]).unwrap().scenario else {
            panic!()
        };
        assert_eq!((c.clients, c.hold), (10_000, Duration::from_secs(2)));
        let Scenario::Echo(e) = parse(&["echo"]).unwrap().scenario else {
            panic!()
        };
        assert_eq!((e.clients, e.window, e.size), (100, 8, 64));
    }

    #[test]
    fn every_option_parses() {
        let command = parse(&[
            "sweep",
            "--url",
            "ws://10.0.0.2:9000/ws",
            "--clients-list",
            "10,20",
            "--senders",
            "3",
            "--size",
            "128",
            "--window",
            "4",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--drain",
            "1",
            "--self-delivery",
            "--svg",
            "/tmp/x.svg",
            "--server-pid",
            "42",
            "--json",
            "--connect-concurrency",
            "16",
            "--label",
            "node",
            "--deflate",
            "--payload",
            "chat-json",
        ])
        .unwrap();
        let Scenario::Sweep(s) = &command.scenario else {
            panic!()
        };
        assert_eq!(s.clients_list, [10, 20]);
        assert_eq!(s.load.pacing(), Pacing::Window(4));
        assert_eq!(s.load.duration, Duration::from_millis(500));
        assert!(s.load.self_delivery);
        let common = command.scenario.common();
        assert_eq!(common.server_pids, [42]);
        assert_eq!(common.label.as_deref(), Some("node"));
        assert!(common.json && common.deflate);
        assert_eq!(s.load.payload, PayloadKind::ChatJson);
        for scenario in ["broadcast", "echo", "connections"] {
            let command = parse(&[scenario, "--deflate"]).unwrap();
            assert!(command.scenario.common().deflate, "{scenario}");
        }
        let Scenario::Echo(e) = parse(&["echo", "--payload", "chat-json"]).unwrap().scenario else {
            panic!()
        };
        assert_eq!(e.payload, PayloadKind::ChatJson);
    }

    #[test]
    fn several_servers_by_comma_or_repetition() {
        let Scenario::Broadcast(b) = parse(&[
            "broadcast",
            "--url",
            "ws://a:1/ws,ws://b:2/ws",
            "--url",
            "ws://c:3/ws",
            "--server-pid",
            "10,11",
            "--server-pid",
            "12",
        ])
        .unwrap()
        .scenario
        else {
            panic!()
        };
        assert_eq!(b.urls, ["ws://a:1/ws", "ws://b:2/ws", "ws://c:3/ws"]);
        assert_eq!(b.common.server_pids, [10, 11, 12]);
        for scenario in ["echo", "connections", "sweep"] {
            let command = parse(&[scenario, "--url", "ws://a:1/ws,ws://b:2/ws"]).unwrap();
            assert_eq!(command.scenario.urls(), ["ws://a:1/ws", "ws://b:2/ws"]);
        }
    }

    #[test]
    fn bad_options_are_refused() {
        for args in [
            &["broadcast", "--window", "8", "--rate", "10"][..],
            &["broadcast", "--rate", "0"],
            &["broadcast", "--rate", "-5"],
            &["broadcast", "--window", "0"],
            &["broadcast", "--senders", "0"],
            &["broadcast", "--duration", "soon"],
            &["connections", "--connect-concurrency", "0"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
