//! Graceful shutdown on SIGTERM: every client gets a Close with 1001, and the server
//! stops once they have all answered. This test binary raises SIGTERM at itself, so it
//! holds this one test only: signal handlers are process-wide.

mod common;

use common::{OP_CLOSE, OP_TEXT, RawClient, client_frame};
use loopchat::{Server, ServerConfig};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn sigterm_closes_every_client_with_1001_and_run_returns() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let config = ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            close_timeout: Duration::from_secs(10),
            ..ServerConfig::default()
        };
        let mut server = Server::bind(config, loopchat::apps::Echo).expect("bind");
        server.shut_down_on_signals().expect("signals");
        tx.send(server.local_addr().expect("address")).unwrap();
        let started = Instant::now();
        let result = server.run();
        (result.map_err(|e| e.to_string()), started.elapsed())
    });
    let addr = rx.recv().expect("the server started");
    let mut clients: Vec<RawClient> = (0..100).map(|_| RawClient::open(addr)).collect();
    // Every client is really open: each gets its echo.
    for client in &mut clients {
        client.send(&client_frame(true, OP_TEXT, b"before"));
        client.expect_frame(OP_TEXT, b"before");
    }

    signal_hook::low_level::raise(signal_hook::consts::SIGTERM).expect("raise SIGTERM");

    for (i, mut client) in clients.into_iter().enumerate() {
        let close = client.read_frame();
        assert_eq!(close.opcode, OP_CLOSE, "client {i}: {close:?}");
        assert_eq!(close.close_code(), Some(1001), "client {i}");
        // Answer, see the server close TCP first, and close ours.
        client.send(&client_frame(true, OP_CLOSE, &1001u16.to_be_bytes()));
        client.expect_eof();
    }
    let (result, ran_for) = server.join().expect("the server thread");
    assert_eq!(result, Ok(()));
    assert!(
        ran_for < Duration::from_secs(10),
        "run returned only at the deadline ({ran_for:?}), not when the clients had closed"
    );
}
