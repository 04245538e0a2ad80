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

/// [`Broadcast`] as one of several workers (`crate::workers`): a message also goes to the
/// clients of every other worker. Its frame is encoded once, by the worker that received
/// it, and the same bytes are handed to the others over the bus: each publishes them to
/// its own clients as it publishes its own broadcasts.
#[derive(Debug)]
pub struct BroadcastWorker {
    peers: Endpoint<SharedFrame>,
}

impl BroadcastWorker {
    /// The worker at this end of the bus.
    pub fn new(peers: Endpoint<SharedFrame>) -> BroadcastWorker {
        BroadcastWorker { peers }
    }
}

impl Handler for BroadcastWorker {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        let frame = SharedFrame::new(message);
        ctx.broadcast_shared(&frame, Some(conn));
        self.peers.send_to_others(&frame);
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
