//! Echo: every message goes back to its sender, unchanged.

use crate::http::{Request, Response, landing};
use crate::{ConnectionId, Context, Handler, Message};

/// Sends each message back to the connection it came from, as it came: text as text,
/// binary as binary, a fragmented message as one frame. This is the mode conformance
/// suites such as Autobahn test a server in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, conn: ConnectionId, message: Message<'_>) {
        // Fails only for a sender too slow to read its echoes, which the loop closes.
        let _ = ctx.send(conn, message);
    }

    fn on_http(&mut self, request: &Request) -> Response {
        landing::respond(request, "loopchat · echo")
    }
}
