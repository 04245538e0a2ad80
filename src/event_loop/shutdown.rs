//! Graceful shutdown: stop accepting, close every connection properly, and give an
//! account.
//!
//! When it begins (a call to `Server::shut_down`, or SIGINT or SIGTERM once
//! `Server::shut_down_on_signals` asked for them), every WebSocket client gets a Close
//! with 1001 (going away), line clients get `! server shutting down; closing` after what
//! is queued for them, an HTTP response being sent is finished and its connection then
//! closed, and connections still in their HTTP request are dropped. The loop
//! goes on turning until every connection is gone or the close timeout has passed, and
//! then `Server::run` returns, after one log line that says how it ended. A second signal
//! ends it at once.

use super::connection::Phase;
use super::connections::Connections;
use super::stats::Stats;
use crate::ws::CloseCode;
use log::{info, warn};
use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::io;
use std::time::Instant;

/// The token of the signal pipe.
pub(crate) const SIGNALS: Token = Token(usize::MAX - 2);

/// What the signals that arrived ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalAction {
    /// Nothing (a spurious wake-up).
    None,
    /// Begin a graceful shutdown.
    Begin,
    /// A second signal: stop now.
    StopNow,
    /// SIGHUP: load the TLS certificate and key again.
    Reload,
}

/// Where the shutdown stands.
#[derive(Default)]
pub(crate) struct Shutdown {
    /// SIGINT and SIGTERM, once asked for.
    signals: Option<Signals>,
    /// Set when the shutdown began: `run` returns once every connection is gone or at
    /// this instant, whichever is first.
    deadline: Option<Instant>,
    /// [`Stats::close_timed_out`] when the shutdown began, so that the last log line can
    /// say how many connections it dropped.
    timed_out_before: u64,
}

impl Shutdown {
    /// Makes SIGINT and SIGTERM arrive as readiness events under [`SIGNALS`], and SIGHUP
    /// too if `reload` (a server with TLS: SIGHUP reloads its certificate). Without it,
    /// SIGHUP keeps its default action.
    pub fn listen_for_signals(&mut self, registry: &Registry, reload: bool) -> io::Result<()> {
        let mut signals = if reload {
            Signals::new([SIGINT, SIGTERM, SIGHUP])?
        } else {
            Signals::new([SIGINT, SIGTERM])?
        };
        registry.register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Takes the signals that arrived: the first SIGINT or SIGTERM begins a graceful
    /// shutdown; one during the shutdown (or two at once) asks to stop now. SIGHUP alone
    /// asks for a reload.
    pub fn signals_arrived(&mut self, conns: &Connections) -> SignalAction {
        let Some(signals) = &mut self.signals else {
            return SignalAction::None;
        };
        let (mut count, mut reload) = (0, false);
        for signal in signals.pending() {
            if signal == SIGHUP {
                reload = true;
            } else {
                count += 1;
            }
        }
        if count == 0 {
            return if reload {
                SignalAction::Reload
            } else {
                SignalAction::None
            };
        }
        if self.deadline.is_none() && count == 1 {
            return SignalAction::Begin;
        }
        warn!("second signal: stopping now");
        self.stop_now(conns);
        SignalAction::StopNow
    }

    /// When the shutdown gives up on the connections still there.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Begins the shutdown, unless it has begun: sets its deadline. Returns whether it
    /// began now. The caller then stops accepting and closes every connection
    /// ([`close_for_shutdown`]).
    pub fn begin(&mut self, conns: &Connections) -> bool {
        if self.deadline.is_some() {
            return false;
        }
        info!("shutting down: closing {} connections", conns.slab.len());
        self.deadline = Some(conns.now + conns.close_timeout);
        self.timed_out_before = conns.stats.close_timed_out;
        true
    }

    /// Ends the shutdown now, begun or not: the loop returns at the end of this turn.
    pub fn stop_now(&mut self, conns: &Connections) {
        if self.deadline.is_none() {
            self.timed_out_before = conns.stats.close_timed_out;
        }
        self.deadline = Some(conns.now);
    }

    /// Whether the shutdown is over: every connection is gone, or the deadline passed.
    pub fn is_over(&self, conns: &Connections) -> bool {
        self.deadline
            .is_some_and(|deadline| conns.slab.is_empty() || conns.now >= deadline)
    }

    /// Logs how the shutdown ended: whether every connection closed, or how many did not
    /// in time (those dropped at their own close deadline, and those still there at the
    /// shutdown's), with the loop's counts.
    pub fn account(&self, stats: Stats, remaining: usize) {
        let late = stats.close_timed_out - self.timed_out_before + remaining as u64;
        if late == 0 {
            info!("shut down: every connection closed; {stats:?}");
        } else {
            let noun = if late == 1 {
                "connection"
            } else {
                "connections"
            };
            info!("shut down: {late} {noun} did not close in time; {stats:?}");
        }
    }
}

/// Starts closing connection `key` for the shutdown: a WebSocket client gets a Close with
/// 1001, a line client its last line after what is queued for it, and an HTTP connection
/// in the middle of sending a response (a large file, say) the rest of it, then the end
/// of the connection (it lingers, as after `Connection: close`): left as it was, kept
/// alive, it would hold the shutdown to its deadline. Returns true for a connection to
/// drop at once: one in its HTTP request, with nothing to say to it.
pub(crate) fn close_for_shutdown(conns: &mut Connections, key: usize) -> bool {
    let Some(conn) = conns.slab.get(key) else {
        return false;
    };
    match &conn.phase {
        Phase::WebSocket(_) | Phase::Line(_) => {
            conns.close(key, CloseCode::GoingAway, "server shutting down");
            false
        }
        Phase::Http(_) if conn.out.is_empty() => true,
        Phase::Http(_) => {
            conns.linger(key);
            false
        }
        Phase::Lingering(_) => false,
    }
}
