//! An echo server in one screen: the whole application is the `on_message` below.
//!
//! ```text
//! cargo run --example echo_server            # listens on 127.0.0.1:8080
//! cargo run --example echo_server -- 0.0.0.0:9001
//! ```
//!
//! Then, in a browser console or `node`: `ws = new WebSocket("ws://127.0.0.1:8080")`,
//! `ws.onmessage = (m) => console.log(m.data)`, `ws.send("hello")`.

use loopchat::{ConnectionId, Context, Handler, Message, Server, ServerConfig};

/// The application. The loop owns the sockets, parses HTTP and frames, answers pings and
/// closes; the handler only sees whole messages.
struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        // `send` only queues the frame; the loop writes it when this turn ends.
        // Fails only for a sender too slow to read its echoes, which the loop closes.
        let _ = ctx.send(conn, message);
    }
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut config = ServerConfig::default();
    if let Some(addr) = std::env::args().nth(1) {
        config.addr = addr.parse().expect("usage: echo_server [ADDR:PORT]");
    }
    let mut server = Server::bind(config, Echo)?;
    log::info!("echo server on ws://{}/", server.local_addr()?);
    server.run()
}
