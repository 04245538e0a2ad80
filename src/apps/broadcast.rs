//! Broadcast: every message goes to every other client, unchanged.

use crate::http::{Request, Response, landing};
use crate::workers::bus::Endpoint;
use crate::{ConnectionId, Context, Handler, Message, SharedFrame};

/// Relays each message to every other open connection, as it came. The frame is encoded
/// once and shared by all recipients. No rooms, no names, no envelope: the raw fan-out
/// that benchmarks measure.
#[derive(Debug, Default, Clone, Copy)]
pub struct Broadcast;

impl Handler for Broadcast {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        ctx.broadcast(message, Some(conn));
    }

    fn on_http(&mut self, request: &Request) -> Response {
        landing::respond(request, "loopchat · broadcast")
    }
}

/// The most bytes of frames that may wait for one worker (see `crate::workers::bus`):
/// past this, a worker is too far behind, and what would be relayed to it is dropped for
/// its clients, and logged. As much as one client's output queue may hold by default.
pub const RELAYED_BYTES_LIMIT: usize = 64 * 1024 * 1024;

/// [`Broadcast`] as one of several workers (`crate::workers`): a message also goes to the
/// clients of every other worker. Its frame is encoded once, by the worker that received
/// it, and the same bytes are handed to the others over the bus: each publishes them to
/// its own clients as it publishes its own broadcasts.
#[derive(Debug)]
pub struct BroadcastWorker {
    peers: Endpoint<SharedFrame>,
    /// Messages not handed to a worker because too much was waiting for it (see
    /// [`RELAYED_BYTES_LIMIT`]): its clients missed them.
    dropped: u64,
}

impl BroadcastWorker {
    /// The worker at this end of the bus, made with [`RELAYED_BYTES_LIMIT`] and
    /// [`SharedFrame::len`] as its limit and weight.
    pub fn new(peers: Endpoint<SharedFrame>) -> BroadcastWorker {
        BroadcastWorker { peers, dropped: 0 }
    }
}

impl Handler for BroadcastWorker {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        let frame = SharedFrame::new(message);
        ctx.broadcast_shared(&frame, Some(conn));
        let missed = self.peers.send_to_others(&frame) as u64;
        if missed > 0 {
            // Logged at the first and then at every power of two, not at every message.
            let before = self.dropped;
            self.dropped += missed;
            if before == 0 || before.ilog2() != self.dropped.ilog2() {
                log::warn!(
                    "worker {}: {} messages not relayed to workers too far behind",
                    self.peers.me(),
                    self.dropped
                );
            }
        }
    }

    fn on_wake(&mut self, ctx: &mut Context<'_>) {
        for frame in self.peers.received() {
            ctx.broadcast_shared(&frame, None);
        }
    }

    fn on_http(&mut self, request: &Request) -> Response {
        landing::respond(request, "loopchat · broadcast")
    }
}
