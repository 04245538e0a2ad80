//! Broadcast: every message goes to every other client, unchanged.

use crate::http::{Request, Response, landing};
use crate::{ConnectionId, Context, Handler, Message};

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
