//! The chat server, as `loopchat serve` runs it, on the library's public API.
//!
//! ```text
//! cargo run --example chat_server                 # http://127.0.0.1:8080, nc 127.0.0.1 8081
//! ```
//!
//! The whole program is three steps: settings for the loop, the chat application (a
//! `Handler`), and `run`. The loop owns the sockets, HTTP, WebSocket and the line port;
//! the chat (src/apps/chat/) only sees sessions opening and closing and messages arriving,
//! and answers through a `Context` that queues its output.

use loopchat::apps::{Chat, ChatConfig};
use loopchat::{Server, ServerConfig};

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // 1. The loop: where to listen, and the line port for nc and telnet users.
    let config = ServerConfig {
        addr: ([127, 0, 0, 1], 8080).into(),
        line_addr: Some(([127, 0, 0, 1], 8081).into()),
        ..ServerConfig::default()
    };

    // 2. The application: nicknames, rooms, history, images, with default limits.
    let chat = Chat::new(ChatConfig::default());

    // 3. Run: one thread, one mio::Poll, every connection.
    let mut server = Server::bind(config, chat)?;
    log::info!(
        "chat on http://{}/ and nc {}",
        server.local_addr()?,
        server.line_addr().map_or("-".into(), |a| a.to_string())
    );
    server.run()
}
