//! The `loopchat` command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use log::{debug, info};
use loopchat::apps::{Broadcast, Echo};
use loopchat::{Handler, Server, ServerConfig};
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "loopchat",
    version,
    about = "A WebSocket server on one hand-driven mio event loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Logs go to stderr; set RUST_LOG=debug to see every connection.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on. Use 0.0.0.0 to accept connections from other
    /// machines, port 0 for any free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,

    /// What the server does with each message.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    mode: Mode,

    /// The largest message accepted, in bytes, summed over its fragments. A bigger one is
    /// refused with close code 1009 as soon as its frame header announces it.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_message_size)]
    max_message_size: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Send every message back to its sender (the conformance testee).
    Echo,
    /// Relay every message to every other client, unchanged (for benchmarks).
    Broadcast,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let Command::Serve(args) = Cli::parse().command;
    let config = ServerConfig {
        addr: args.addr,
        max_message_size: args.max_message_size,
        ..ServerConfig::default()
    };
    match args.mode {
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
    info!("loopchat listening on http://{local} and ws://{local}/ in {mode} mode");
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loopchat: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
