//! A broadcast relay in one screen: every message goes to every other client.
//!
//! ```text
//! cargo run --example broadcast_server       # listens on 127.0.0.1:8080
//! ```
//!
//! Open two browser consoles on the page at http://127.0.0.1:8080 and type in one: the
//! other sees it. Joins and leaves are announced to everyone else.

use loopchat::http::Request;
use loopchat::{ConnectionId, Context, Handler, Message, Server, ServerConfig};

struct Relay;

impl Handler for Relay {
    fn on_open(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, _request: Option<&Request>) {
        let notice = format!("{conn} joined");
        ctx.broadcast(Message::Text(&notice), Some(conn));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, from: ConnectionId, message: Message<'_>) {
        // Encoded once; every recipient's queue shares the same bytes.
        ctx.broadcast(message, Some(from));
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnectionId) {
        let notice = format!("{conn} left");
        ctx.broadcast(Message::Text(&notice), Some(conn));
    }
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut config = ServerConfig::default();
    if let Some(addr) = std::env::args().nth(1) {
        config.addr = addr.parse().expect("usage: broadcast_server [ADDR:PORT]");
    }
    let mut server = Server::bind(config, Relay)?;
    log::info!("broadcast server on ws://{}/", server.local_addr()?);
    server.run()
}
