//! Every core: N event loops on N threads, sharing one port and nothing else.
//!
//! Each worker is exactly the loop of one server ([`Server`]): its own poll, slab, timers
//! and handler, on its own thread. They share the port through `SO_REUSEPORT`
//! ([`ServerConfig::reuse_port`]): each worker has a listening socket of its own on the
//! same address, and the kernel hands each new connection to one of them by a hash of its
//! addresses. So there is no acceptor thread to hand sockets over and no lock on accept;
//! the price is that the spread is by hash, not by load: a worker gets about 1/N of the
//! connections whatever it is doing, and a connection stays on the worker that accepted
//! it for its whole life.
//!
//! Workers share nothing but messages. An application that must be one across workers
//! (the chat: one directory, one order of messages; the broadcast mode: every client
//! hears every message) passes messages over channels, and wakes the worker it wrote to
//! with that worker's [`Waker`]: see [`bus`]. A frame encoded once is shared by every
//! worker ([`crate::SharedFrame`] may cross threads).
//!
//! - **Start.** [`Workers::start`] binds worker 0 first (so that port 0 means one port,
//!   the one worker 0 got), then the others on the same addresses. Only worker 0 serves
//!   the admin port; its `/stats` and `/metrics` also give each worker's own figures, as
//!   each posts them on a [`Board`] at most four times a second. `max_connections` is
//!   shared out: each worker takes its part, rounded up. No worker runs until every one
//!   is bound; if one cannot bind, none runs.
//! - **Stop.** With signals asked for, the process takes SIGINT and SIGTERM once every
//!   worker is bound and before any runs, and a thread hands each on to every worker
//!   through its [`Remote`]; each shuts down gracefully: Close 1001 to its WebSocket
//!   clients, and so on (see [`Server::shut_down`]). A second signal stops them at once.
//!   [`Workers::wait`] returns once every worker has.
//! - **Failure.** A worker that panics takes the process down at once, loudly (the panic
//!   message, a log line, and `abort`): a chat with a silent hole in it (the clients of
//!   one worker gone, the others none the wiser) is worse than no chat.

pub mod bus;

use crate::event_loop::{Board, Remote};
use crate::{Handler, Server, ServerConfig};
use log::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};

pub use crate::event_loop::Waker;

/// How many workers "one per core" means here: the cores this process may run on.
pub fn per_core() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The wakers of every worker, by index, filled in as each is bound. Shared by whatever
/// sends messages to the workers (see [`bus`]).
#[derive(Clone, Debug)]
pub struct Wakers {
    slots: Arc<[OnceLock<Waker>]>,
}

impl Wakers {
    /// Room for the wakers of `count` workers.
    pub fn new(count: usize) -> Wakers {
        Wakers {
            slots: (0..count).map(|_| OnceLock::new()).collect(),
        }
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Wakes worker `index` (see [`Waker::wake`]). Every worker is bound before any
    /// runs, so by the time a message can be sent, every waker is here.
    pub fn wake(&self, index: usize) {
        if let Some(waker) = self.slots.get(index).and_then(OnceLock::get) {
            waker.wake();
        }
    }

    fn set(&self, index: usize, waker: Waker) {
        if let Some(slot) = self.slots.get(index) {
            let _ = slot.set(waker);
        }
    }
}

/// Runs a closure on a named thread that takes the whole process down if it panics: a
/// worker, or a thread that workers depend on.
pub fn spawn_vital<T: Send + 'static>(
    name: String,
    body: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    thread::Builder::new().name(name.clone()).spawn(move || {
        let _guard = AbortOnPanic(name);
        body()
    })
}

/// Aborts the process when dropped during a panic (the panic's message is printed by
/// then).
struct AbortOnPanic(String);

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            error!(
                "{} panicked: stopping the whole process rather than going on without it",
                self.0
            );
            std::process::abort();
        }
    }
}

/// Where the workers listen, once bound.
#[derive(Debug, Clone, Copy)]
struct Addresses {
    main: SocketAddr,
    line: Option<SocketAddr>,
    admin: Option<SocketAddr>,
}

/// What a worker says once it is bound: where it listens, and its remote control.
struct Bound {
    addresses: Addresses,
    remote: Remote,
}

/// Running workers.
#[derive(Debug)]
pub struct Workers {
    addresses: Addresses,
    threads: Vec<JoinHandle<()>>,
    /// Each worker's result as it stops.
    finished: Receiver<(usize, io::Result<()>)>,
}

impl Workers {
    /// Binds one server per handler, on the addresses of `config` (see the module
    /// documentation), and runs each on a thread of its own. `wakers` must have room for
    /// as many workers as there are handlers; each worker's waker is put in it before
    /// any worker runs. With `signals`, SIGINT and SIGTERM shut every worker down
    /// gracefully, a second one stops them at once, and SIGHUP reloads TLS, as
    /// [`Server::shut_down_on_signals`] does for one: the signals are taken for the
    /// process once every worker is bound and before any runs, and handed on to each
    /// worker by a thread of their own. Fails, with no worker left running and the
    /// signals left alone, if any worker cannot bind.
    pub fn start<H: Handler + Send + 'static>(
        config: ServerConfig,
        handlers: Vec<H>,
        wakers: &Wakers,
        signals: bool,
    ) -> io::Result<Workers> {
        let count = handlers.len();
        if count == 0 || wakers.len() != count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "one handler and one waker slot per worker, and at least one worker",
            ));
        }
        if count > 1 {
            // SO_REUSEPORT would let the workers share the port with another process of
            // the same user already on it (another loopchat with workers, say), and the
            // kernel would split new connections between two servers. Refused instead, as
            // one loop's bind is. (Two servers started at the same instant could both
            // pass this look and then share the port: it narrows the window, no more.)
            for addr in [Some(config.addr), config.line_addr].into_iter().flatten() {
                port_is_free(addr)?;
            }
        }
        let (finished_tx, finished) = mpsc::channel();
        let board = Board::new(count);
        let mut remotes = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        let mut gates = Vec::with_capacity(count);
        let mut addresses: Option<Addresses> = None;
        for (index, handler) in handlers.into_iter().enumerate() {
            let mut config = config.clone();
            config.reuse_port = count > 1;
            config.max_connections = config.max_connections.div_ceil(count);
            if let Some(bound) = addresses {
                // The others listen where worker 0 does: the same port, even for port 0.
                config.addr = bound.main;
                config.line_addr = bound.line;
                config.admin = None;
            }
            let (bound_tx, bound_rx) = mpsc::channel();
            let (gate_tx, gate_rx) = mpsc::channel::<bool>();
            let finished_tx = finished_tx.clone();
            let wakers = wakers.clone();
            let board = board.clone();
            let spawned = spawn_vital(format!("lc-worker-{index}"), move || {
                worker(
                    index,
                    config,
                    handler,
                    Worker {
                        wakers,
                        board,
                        bound: bound_tx,
                        gate: gate_rx,
                        finished: finished_tx,
                    },
                )
            });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => return Err(abandon(&gates, threads, e)),
            }
            gates.push(gate_tx);
            match bound_rx.recv() {
                Ok(Ok(bound)) => {
                    addresses.get_or_insert(bound.addresses);
                    remotes.push(bound.remote);
                }
                Ok(Err(e)) => return Err(abandon(&gates, threads, e)),
                Err(_) => {
                    let e = io::Error::other("a worker ended before binding");
                    return Err(abandon(&gates, threads, e));
                }
            }
        }
        let Some(addresses) = addresses else {
            return Err(io::Error::other("no worker bound"));
        };
        // Every worker is bound and none runs yet. The process's signals are taken now,
        // for all of them at once, and handed on to each by a thread of their own: a
        // signal that came while the workers started one by one would otherwise reach
        // only those that had started, and the others would never stop. A signal before
        // this point ends the process (no worker has run); after it, one waits in
        // `signals` until the thread takes it. Taken only once the start cannot fail any
        // more but for the thread itself: a program whose start failed keeps its
        // signals' default actions.
        if signals {
            let mut wanted = vec![SIGINT, SIGTERM];
            if config.tls.is_some() {
                wanted.push(SIGHUP);
            }
            let handed_on = Signals::new(wanted).and_then(|signals| {
                spawn_vital("lc-signals".into(), move || {
                    hand_on_signals(signals, remotes)
                })
            });
            if let Err(e) = handed_on {
                return Err(abandon(&gates, threads, e));
            }
        }
        for gate in &gates {
            let _ = gate.send(true);
        }
        Ok(Workers {
            addresses,
            threads,
            finished,
        })
    }

    /// The address the workers listen on (the port found, after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addresses.main
    }

    /// The line port's address, if there is one.
    pub fn line_addr(&self) -> Option<SocketAddr> {
        self.addresses.line
    }

    /// The admin port's address (served by worker 0), if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.addresses.admin
    }

    /// How many workers there are.
    pub fn count(&self) -> usize {
        self.threads.len()
    }

    /// Waits for every worker to stop (a graceful shutdown). Returns the first error a
    /// worker's loop ended with, as soon as there is one; the other workers are then left
    /// running, for the program to exit.
    pub fn wait(self) -> io::Result<()> {
        for _ in 0..self.threads.len() {
            match self.finished.recv() {
                Ok((_, Ok(()))) => {}
                Ok((index, Err(e))) => {
                    return Err(io::Error::new(e.kind(), format!("worker {index}: {e}")));
                }
                // A worker's thread ended without a word: it panicked, and the process
                // is being aborted.
                Err(_) => return Err(io::Error::other("a worker ended without a result")),
            }
        }
        for thread in self.threads {
            let _ = thread.join();
        }
        Ok(())
    }
}

/// What a worker's thread is given besides its server.
struct Worker {
    wakers: Wakers,
    board: Board,
    bound: Sender<io::Result<Bound>>,
    gate: Receiver<bool>,
    finished: Sender<(usize, io::Result<()>)>,
}

/// One worker's thread: bind, say so, wait for the others, run.
fn worker<H: Handler>(index: usize, config: ServerConfig, handler: H, worker: Worker) {
    let bound = Server::bind(config, handler).and_then(|mut server| {
        server.post_figures_on(worker.board.clone(), index);
        let addresses = Addresses {
            main: server.local_addr()?,
            line: server.line_addr(),
            admin: server.admin_addr(),
        };
        Ok((server, addresses))
    });
    let mut server = match bound {
        Ok((server, addresses)) => {
            worker.wakers.set(index, server.waker());
            let remote = server.remote();
            let _ = worker.bound.send(Ok(Bound { addresses, remote }));
            server
        }
        Err(e) => {
            let _ = worker.bound.send(Err(e));
            return;
        }
    };
    if worker.gate.recv() != Ok(true) {
        return;
    }
    let result = server.run();
    let _ = worker.finished.send((index, result));
}

/// Lets the workers started so far end without running, and waits for their threads:
/// `start` failed with `error`, which is given back.
fn abandon(gates: &[Sender<bool>], threads: Vec<JoinHandle<()>>, error: io::Error) -> io::Error {
    for gate in gates {
        let _ = gate.send(false);
    }
    for thread in threads {
        let _ = thread.join();
    }
    error
}

/// Hands the process's signals on to every worker: the first SIGINT or SIGTERM begins a
/// graceful shutdown of each, another stops them all at once, SIGHUP reloads TLS.
fn hand_on_signals(mut signals: Signals, remotes: Vec<Remote>) {
    let mut stops = 0;
    for signal in signals.forever() {
        match signal {
            SIGHUP => remotes.iter().for_each(Remote::reload_tls),
            _ => {
                stops += 1;
                if stops == 1 {
                    info!("shutting down every worker");
                    remotes.iter().for_each(Remote::shut_down);
                } else {
                    warn!("second signal: stopping every worker now");
                    remotes.iter().for_each(Remote::stop_now);
                }
            }
        }
    }
}

/// Whether nothing listens on `addr` yet: a bind without `SO_REUSEPORT` (with
/// `SO_REUSEADDR`, as the listeners, so that connections of a server that just exited do
/// not count) succeeds. Port 0 is always free.
fn port_is_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    probe.set_reuse_address(true)?;
    probe
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("{addr} is taken by another server: {e}")))
}
