//! The `loopchat` program: `loopchat serve` (the server, on the library), `loopchat
//! client` (the terminal client) and `loopchat bench` (the load generator).
//!
//! The terminal client and the load generator are programs, not library API: they live
//! here, beside the command line, and use the library only through its public API (the
//! client-role codec, the chat protocol's types). Their dependencies (clap, hdrhistogram,
//! plotters, rlimit, env_logger, and core_affinity for `loopchat lab`) are the `cli` feature's, so a program that embeds the
//! library with default features off builds none of them.

mod bench;
mod client;
mod lab;

use clap::{Args, Parser, Subcommand, ValueEnum};
use client::parse_seconds;
use log::{debug, info};
use loopchat::apps::chat::hub_for_workers;
use loopchat::apps::{Broadcast, BroadcastWorker, Chat, ChatConfig, Echo, RELAYED_BYTES_LIMIT};
use loopchat::event_loop::SlowConsumer;
use loopchat::http::OriginPolicy;
use loopchat::http::static_files::StaticFiles;
use loopchat::rate::Rate;
use loopchat::redis::RedisUrl;
use loopchat::workers::bus::bus;
use loopchat::workers::{Wakers, Workers};
use loopchat::ws::KeepaliveConfig;
use loopchat::{Handler, Server, ServerConfig, SharedFrame};
use std::net::SocketAddr;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loopchat",
    version,
    about = "A chat server on one hand-driven mio event loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Logs go to stderr; set RUST_LOG=debug to see every connection.
    Serve(ServeArgs),
    /// Chat from the terminal: lines you type are sent, messages from others are printed
    /// as they arrive. Works with stdin as a pipe, for scripts.
    Client(ClientArgs),
    /// Load-test any WebSocket server from one thread: broadcast, echo, connections,
    /// sweep. Prints a table, or one JSON object with --json.
    Bench(bench::BenchCommand),
    /// The experiments behind docs/REPORT.md: the floor of loopback writes, and the
    /// report's figures drawn from the raw results in the repository.
    #[command(subcommand)]
    Lab(lab::LabCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port for HTTP and WebSocket. Use 0.0.0.0 to accept connections from
    /// other machines, port 0 for any free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,

    /// What the server does with each message.
    #[arg(long, value_enum, default_value_t = Mode::Chat)]
    mode: Mode,

    /// The largest message accepted, in bytes, summed over its fragments. A bigger one is
    /// refused with close code 1009 as soon as its frame header announces it.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_message_size)]
    max_message_size: usize,

    /// Also serve the chat as text lines on this address, for `nc` and `telnet` users
    /// (chat mode). They share rooms with the WebSocket users.
    #[arg(long, value_name = "ADDR")]
    tcp_addr: Option<SocketAddr>,

    /// Serve the files of this folder over HTTP instead of the built-in page (chat
    /// mode). The WebSocket stays at /ws (and /).
    #[arg(long, value_name = "DIR")]
    public: Option<PathBuf>,

    /// permessage-deflate (RFC 7692): accept it when a client offers it (every browser
    /// does), with no context takeover either way. Messages both ways may then go
    /// compressed; a message sent to many is compressed once.
    #[arg(long, value_enum, default_value = "on")]
    deflate: Switch,

    /// With --deflate on: messages shorter than this many bytes go uncompressed.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().deflate_min_bytes)]
    deflate_min_bytes: usize,

    /// Share the chat with every other instance started with the same Redis (chat mode):
    /// redis://[USER:PASSWORD@]HOST[:PORT][/DB]. A Redis Cluster is found out and used
    /// with sharded pub/sub. The password may come from LOOPCHAT_REDIS_PASSWORD instead;
    /// it is never logged.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// With --redis: an instance silent this long is taken for dead (its members are
    /// removed everywhere), and a Redis that does not answer this long is taken for gone
    /// (the chat is split until it is back). Heartbeats go every third of it.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_redis_timeout)]
    redis_timeout: std::time::Duration,

    /// Serve metrics (/metrics, Prometheus), statistics (/stats, JSON) and a live view of
    /// the loop (/inspect) on this address, never on the public port. An address other
    /// than loopback needs --admin-token.
    #[arg(long, value_name = "ADDR")]
    admin_addr: Option<SocketAddr>,

    /// The bearer token the admin port requires (Authorization: Bearer TOKEN, or
    /// ?token=TOKEN for the live page). May come from LOOPCHAT_ADMIN_TOKEN instead.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LOOPCHAT_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    /// Log one line per loop turn (what it did, and the time in each phase) on standard
    /// error: the same as RUST_LOG=loopchat::trace=trace added to the other logging.
    #[arg(long)]
    trace: bool,

    /// With --trace (or RUST_LOG=loopchat::trace=trace): log every Nth turn only, for a
    /// busy server.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    trace_every: u64,

    /// Serve https:// and wss:// on --addr with this certificate chain (PEM: the
    /// certificate, then any intermediates). Needs --tls-key. SIGHUP loads both files
    /// again without dropping a connection; a file that cannot be used is refused and
    /// the one in use kept.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Event loops to run, each on a thread of its own with its own connections, all on
    /// --addr (SO_REUSEPORT: the kernel spreads new connections among them). 0 means one
    /// per core. The chat stays one chat across them; the broadcast mode relays to the
    /// clients of every one. At most 1024.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=1024))]
    workers: u16,

    #[command(flatten)]
    limits: LimitArgs,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

/// A --redis-timeout: 1 to 3600 seconds, fractions allowed.
fn parse_redis_timeout(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("not a number of seconds: {text}"))?;
    if !(1.0..=3600.0).contains(&seconds) {
        return Err("--redis-timeout is 1 to 3600 seconds".into());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// The protective policies. Each is on by default; see the README's table.
#[derive(Args)]
#[command(next_help_heading = "Limits and timeouts")]
struct LimitArgs {
    /// The most connections at once, in any phase. Beyond it a new connection gets HTTP
    /// 503 and is closed.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,

    /// Seconds a new connection has to send its HTTP request head (and a kept-alive one
    /// its next request) before it is answered 408 and closed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    handshake_timeout: Duration,

    /// Seconds to wait for the peer's reply to our Close (and for TCP to close after
    /// it) before dropping the connection. Also the graceful shutdown's deadline.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    close_timeout: Duration,

    /// Seconds without hearing from a WebSocket client before the server pings it.
    /// 0 turns pings and the idle timeout off.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    ping_interval: Duration,

    /// Seconds without hearing anything (a Pong will do) before a WebSocket client is
    /// dropped as dead.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    idle_timeout: Duration,

    /// The most output queued for one client, in bytes, broadcast frames counted in full
    /// for each recipient. A client that reads slower than its traffic arrives hits it.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_outbound_bytes)]
    max_outbound_bytes: usize,

    /// What happens to a client whose output queue is full: closed with 1008, or kept
    /// while the messages that do not fit are dropped (and counted).
    #[arg(long, value_enum, default_value_t = SlowConsumerArg::Close)]
    slow_consumer: SlowConsumerArg,

    /// A web page origin allowed to open a WebSocket, such as https://chat.example.com.
    /// Repeat for more; `self` allows pages served by this server's host. Without any,
    /// every origin may connect. Others get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,

    /// Messages per second one connection may send, as RATE or RATE/BURST (burst
    /// defaults to twice the rate). Over it: close 1008. Off by default; the chat mode
    /// has its own per-member limit (20/s, burst 60, a warning first).
    #[arg(long, value_name = "RATE[/BURST]", value_parser = Rate::parse)]
    message_rate: Option<Rate>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SlowConsumerArg {
    /// Close the connection with 1008 ("too slow: output queue full").
    Close,
    /// Keep the connection and drop what does not fit.
    Drop,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// The chat: nicknames, rooms, private messages, images, history, and a web page.
    Chat,
    /// Send every message back to its sender (the conformance testee).
    Echo,
    /// Relay every message to every other client, unchanged (for benchmarks).
    Broadcast,
}

#[derive(Args)]
struct ClientArgs {
    /// The server's WebSocket URL: ws://HOST[:PORT][/PATH], or wss:// for TLS (with
    /// --ca-file or --insecure).
    #[arg(default_value = "ws://127.0.0.1:8080/ws")]
    url: String,

    #[command(flatten)]
    tls: client::TlsArgs,

    /// The nickname to take on arrival. What you type waits until the server grants it;
    /// if it is taken or not valid, the client closes and exits 1.
    #[arg(long)]
    nick: Option<String>,

    /// After standard input ends, keep receiving and printing for this many seconds
    /// before closing (for scripts that want to hear what others say). Fractions allowed.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "0",
        value_parser = parse_seconds
    )]
    linger: std::time::Duration,

    /// permessage-deflate (RFC 7692): offer it as a browser does. If the server agrees,
    /// compressed messages from it are inflated, and what you send from 128 bytes up
    /// goes compressed.
    #[arg(long, value_enum, default_value = "on")]
    deflate: Switch,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Command::Serve(ServeArgs { trace: true, .. }) = &cli.command {
        logger.filter_module("loopchat::trace", log::LevelFilter::Trace);
    }
    logger.init();
    match cli.command {
        Command::Serve(args) => serve_mode(args),
        Command::Client(args) => client::run(&client::ClientConfig {
            url: args.url,
            tls: args.tls,
            nick: args.nick,
            linger: args.linger,
            deflate: args.deflate == Switch::On,
        }),
        Command::Bench(command) => bench::main(command),
        Command::Lab(command) => lab::main(command),
    }
}

fn serve_mode(args: ServeArgs) -> ExitCode {
    let limits = args.limits;
    if !limits.ping_interval.is_zero() && limits.idle_timeout <= limits.ping_interval {
        eprintln!("loopchat: --idle-timeout must be longer than --ping-interval");
        return ExitCode::FAILURE;
    }
    let config = ServerConfig {
        addr: args.addr,
        max_message_size: args.max_message_size,
        line_addr: args.tcp_addr,
        max_connections: limits.max_connections,
        handshake_timeout: limits.handshake_timeout,
        close_timeout: limits.close_timeout,
        keepalive: (!limits.ping_interval.is_zero()).then_some(KeepaliveConfig {
            ping_interval: limits.ping_interval,
            idle_timeout: limits.idle_timeout,
        }),
        max_outbound_bytes: limits.max_outbound_bytes,
        slow_consumer: match limits.slow_consumer {
            SlowConsumerArg::Close => SlowConsumer::Close,
            SlowConsumerArg::Drop => SlowConsumer::Drop,
        },
        origins: OriginPolicy::from_list(&limits.allowed_origins),
        message_rate: limits.message_rate,
        deflate: loopchat::ws::deflate::negotiation::DeflateConfig {
            enabled: args.deflate == Switch::On,
            ..Default::default()
        },
        deflate_min_bytes: args.deflate_min_bytes,
        trace_every: args.trace_every,
        admin: args
            .admin_addr
            .map(|addr| loopchat::event_loop::AdminConfig {
                addr,
                token: args.admin_token.clone(),
                label: format!("{:?}", args.mode).to_lowercase(),
            }),
        tls: args
            .tls_cert
            .clone()
            .zip(args.tls_key.clone())
            .map(|(cert, key)| loopchat::tls::TlsFiles { cert, key }),
        ..ServerConfig::default()
    };
    if let Some(files) = &config.tls
        && let Err(why) = loopchat::tls::server_config(files)
    {
        eprintln!("loopchat: will not start: TLS: {why}");
        return ExitCode::FAILURE;
    }
    if let Some(admin) = &config.admin
        && let Err(why) = loopchat::admin::check_exposure(admin.addr, admin.token.as_deref())
    {
        eprintln!("loopchat: will not start: {why}");
        return ExitCode::FAILURE;
    }
    let chat_only = |what: &str| {
        eprintln!("loopchat: {what} is for chat mode");
        ExitCode::FAILURE
    };
    let workers = match args.workers {
        0 => loopchat::workers::per_core(),
        n => usize::from(n),
    };
    let wakers = Wakers::new(workers);
    match args.mode {
        Mode::Chat => {
            let redis = match args.redis.as_deref().map(redis_address).transpose() {
                Ok(redis) => redis,
                Err(e) => {
                    eprintln!("loopchat: --redis: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let public = match args.public.as_deref().map(StaticFiles::new).transpose() {
                Ok(public) => public,
                Err(e) => {
                    let dir = args.public.as_deref().unwrap_or(std::path::Path::new(""));
                    eprintln!("loopchat: cannot serve {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
            };
            // Several workers without Redis share the chat through a hub thread; with
            // Redis, each worker is one more instance on it.
            let chat_config = ChatConfig::default();
            let mut links = match (workers, &redis) {
                (1, _) | (_, Some(_)) => Vec::new(),
                _ => match hub_for_workers(&wakers, &chat_config.default_room) {
                    Ok(links) => links,
                    Err(e) => {
                        eprintln!("loopchat: cannot start the chat's hub thread: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            }
            .into_iter();
            let chats = (0..workers).map(|_| {
                let mut chat = Chat::new(chat_config.clone());
                if let Some((url, addr)) = &redis {
                    chat = chat.with_redis(url.clone(), *addr, args.redis_timeout);
                } else if let Some(link) = links.next() {
                    chat = chat.with_hub(link);
                }
                if let Some(files) = &public {
                    chat = chat.with_public_files(files.clone());
                }
                chat
            });
            serve(config, chats.collect(), &wakers, "chat")
        }
        _ if args.tcp_addr.is_some() => chat_only("--tcp-addr"),
        _ if args.redis.is_some() => chat_only("--redis"),
        _ if args.public.is_some() => chat_only("--public"),
        Mode::Echo => serve(config, vec![Echo; workers], &wakers, "echo"),
        Mode::Broadcast if workers == 1 => serve(config, vec![Broadcast], &wakers, "broadcast"),
        Mode::Broadcast => {
            let ends = bus(&wakers, RELAYED_BYTES_LIMIT, SharedFrame::len);
            let relays = ends.into_iter().map(BroadcastWorker::new);
            serve(config, relays.collect(), &wakers, "broadcast")
        }
    }
}

/// Parses a --redis URL (with the password from LOOPCHAT_REDIS_PASSWORD if it has none)
/// and resolves its host, once, before the loop starts: the loop never blocks on DNS.
fn redis_address(url: &str) -> Result<(RedisUrl, SocketAddr), String> {
    let url = RedisUrl::parse(url)
        .map_err(|e| e.to_string())?
        .with_password_from_env("LOOPCHAT_REDIS_PASSWORD");
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", url.host))?;
    info!("sharing the chat through {url}");
    Ok((url, addr))
}

/// Runs the server: one loop on this thread, or one worker per handler.
fn serve<H: Handler + Send + 'static>(
    config: ServerConfig,
    handlers: Vec<H>,
    wakers: &Wakers,
    mode: &str,
) -> ExitCode {
    // Each connection is a file descriptor; the usual soft limit of 1024 would cap the
    // server far below what it can serve. Raise it to the hard limit.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => debug!("open file limit: {limit}"),
        Err(e) => debug!("could not raise the open file limit: {e}"),
    }
    let addr = config.addr;
    let tls = config.tls.is_some();
    let count = handlers.len();
    let mut handlers = handlers;
    let (mut server, workers) = if count == 1 {
        let Some(handler) = handlers.pop() else {
            return ExitCode::FAILURE;
        };
        match Server::bind(config, handler).and_then(|mut server| {
            server.shut_down_on_signals()?;
            Ok(server)
        }) {
            Ok(server) => (Some(server), None),
            Err(e) => {
                eprintln!("loopchat: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match Workers::start(config, handlers, wakers, true) {
            Ok(workers) => (None, Some(workers)),
            Err(e) => {
                eprintln!("loopchat: cannot start {count} workers on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let (local, line, admin) = match (&server, &workers) {
        (Some(server), _) => (
            server.local_addr().unwrap_or(addr),
            server.line_addr(),
            server.admin_addr(),
        ),
        (_, Some(workers)) => (
            workers.local_addr(),
            workers.line_addr(),
            workers.admin_addr(),
        ),
        _ => return ExitCode::FAILURE,
    };
    let (http, ws) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    info!("loopchat {mode} server: open {http}://{local}/ (WebSocket at {ws}://{local}/ws)");
    if count > 1 {
        info!("{count} workers, each an event loop on a thread of its own, sharing the port");
    }
    if tls {
        info!("TLS: SIGHUP reloads the certificate and key");
    }
    if let Some(line) = line {
        info!("line port for nc/telnet on {line}");
    }
    if let Some(admin) = admin {
        info!(
            "admin port: http://{admin}/metrics, /stats, and the live view at http://{admin}/inspect"
        );
        if count > 1 {
            info!(
                "the admin port is worker 0's: /metrics and /stats add every worker's own figures"
            );
        }
    }
    let ran = match (&mut server, workers) {
        (Some(server), _) => server.run(),
        (_, Some(workers)) => workers.wait(),
        _ => Ok(()),
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loopchat: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
