//! The `loopchat` command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use log::{debug, info};
use loopchat::apps::{Broadcast, Chat, ChatConfig, Echo};
use loopchat::http::static_files::StaticFiles;
use loopchat::{Handler, Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    Bench(loopchat::bench::BenchCommand),
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
}

#[derive(Clone, Copy, ValueEnum)]
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
    /// The server's WebSocket URL.
    #[arg(default_value = "ws://127.0.0.1:8080/ws")]
    url: String,

    /// The nickname to take on arrival.
    #[arg(long)]
    nick: Option<String>,

    /// After standard input ends, keep receiving and printing for this many seconds
    /// before closing (for scripts that want to hear what others say). Fractions allowed.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "0",
        value_parser = loopchat::client::parse_seconds
    )]
    linger: std::time::Duration,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Serve(args) => serve_mode(args),
        Command::Client(args) => loopchat::client::run(&loopchat::client::ClientConfig {
            url: args.url,
            nick: args.nick,
            linger: args.linger,
        }),
        Command::Bench(command) => loopchat::bench::main(command),
    }
}

fn serve_mode(args: ServeArgs) -> ExitCode {
    let config = ServerConfig {
        addr: args.addr,
        max_message_size: args.max_message_size,
        line_addr: args.tcp_addr,
        ..ServerConfig::default()
    };
    let chat_only = |what: &str| {
        eprintln!("loopchat: {what} is for chat mode");
        ExitCode::FAILURE
    };
    match args.mode {
        Mode::Chat => {
            let mut chat = Chat::new(ChatConfig::default());
            if let Some(dir) = &args.public {
                match StaticFiles::new(dir) {
                    Ok(files) => chat = chat.with_public_files(files),
                    Err(e) => {
                        eprintln!("loopchat: cannot serve {}: {e}", dir.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
            serve(config, chat, "chat")
        }
        _ if args.tcp_addr.is_some() => chat_only("--tcp-addr"),
        _ if args.public.is_some() => chat_only("--public"),
        Mode::Echo => serve(config, Echo, "echo"),
        Mode::Broadcast => serve(config, Broadcast, "broadcast"),
    }
}

fn serve(config: ServerConfig, handler: impl Handler, mode: &str) -> ExitCode {
    // Each connection is a file descriptor; the usual soft limit of 1024 would cap the
    // server far below what it can serve. Raise it to the hard limit.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => debug!("open file limit: {limit}"),
        Err(e) => debug!("could not raise the open file limit: {e}"),
    }
    let addr = config.addr;
    let mut server = match Server::bind(config, handler) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("loopchat: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = server.local_addr().unwrap_or(addr);
    info!("loopchat {mode} server: open http://{local}/ (WebSocket at ws://{local}/ws)");
    if let Some(line) = server.line_addr() {
        info!("line port for nc/telnet on {line}");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loopchat: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
