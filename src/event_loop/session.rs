//! What the bytes read from a connection mean: an HTTP request head, then WebSocket
//! frames, or lines on the line port. The loop in `mod.rs` moves bytes; this file gives
//! them to the sans-IO protocol code and acts on what comes back: queue a response, open
//! a session, call the handler, queue the replies the protocol owes the peer, complete a
//! closing handshake.

use super::admin::{self, AdminState, Answer, AppReport};
use super::config::ServerConfig;
use super::connection::{Connection, Phase};
use super::connections::Connections;
use super::handler::{ConnectionId, Context, Handler, deliver_closes};
use crate::http::{
    HttpError, Request, RequestKind, Response, Upgrade, classify, parse_request,
    request::completes_a_line,
};
use crate::line::LineEvent;
use crate::rate::TokenBucket;
use crate::ws::deflate::negotiation::{Negotiation, negotiate};
use crate::ws::{CloseCode, Event, Keepalive, Message, Role, State, WebSocket};
use log::debug;

/// The session layer, for the length of one call from the loop: the connections (whose
/// sessions begin and end here), the application's handler, and the settings, borrowed
/// from the server.
pub(crate) struct Sessions<'a, H> {
    pub conns: &'a mut Connections,
    pub handler: &'a mut H,
    pub config: &'a ServerConfig,
    /// The admin port, if there is one: its connections' requests go there.
    pub admin: Option<&'a mut AdminState>,
}

impl<H: Handler> Sessions<'_, H> {
    /// Gives the handler the `on_close` of every session that ended since the last call.
    fn deliver_closes(&mut self) {
        deliver_closes(self.handler, self.conns);
    }

    /// Starts the session of a connection just accepted on the line port.
    pub fn open_line(&mut self, key: usize) {
        self.conns.begin_session(key);
        self.handler
            .on_open(&mut Context::new(self.conns), ConnectionId(key), None);
        self.deliver_closes();
    }

    /// Feeds bytes just read from connection `key` to whatever it is in the middle of.
    pub fn receive(&mut self, key: usize, mut input: &[u8]) {
        while !input.is_empty() {
            let Some(conn) = self.conns.slab.get(key) else {
                return;
            };
            match conn.phase {
                Phase::Http(_) => input = self.receive_head(key, input),
                Phase::WebSocket(_) => return self.receive_frames(key, input),
                Phase::Line(_) => return self.receive_lines(key, input),
                // Nothing more is expected; input is read only to reach the peer's FIN.
                Phase::Lingering(_) => return,
            }
        }
    }

    /// Adds bytes to the request head and acts on it once complete. Returns the bytes
    /// that follow the head if it opened a WebSocket (a client may send its first frames
    /// without waiting for the 101) or was answered with the connection kept alive (the
    /// next request may already be there), and nothing otherwise.
    fn receive_head<'a>(&mut self, key: usize, input: &'a [u8]) -> &'a [u8] {
        let limits = self.config.head_limits;
        let Some(Connection {
            phase: Phase::Http(head),
            ..
        }) = self.conns.slab.get_mut(key)
        else {
            return &[];
        };
        let old_len = head.len();
        let take = input
            .len()
            .min(limits.max_head_bytes.saturating_sub(old_len));
        head.extend_from_slice(&input[..take]);
        // Parse the first bytes at once (so a TLS handshake or binary noise is refused
        // immediately), then again whenever a line is completed or the head is full;
        // parsing on every byte would let a client that dribbles its head cost a parse
        // per byte.
        let worth_parsing =
            old_len == 0 || completes_a_line(head, old_len) || head.len() >= limits.max_head_bytes;
        if !worth_parsing {
            return &[];
        }
        let (request, head_len) = match parse_request(head, &limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return &[],
            Err(error) => {
                self.refuse(key, &error);
                return &[];
            }
        };
        let after_head = &input[head_len.saturating_sub(old_len).min(input.len())..];
        if self.conns.slab.get(key).is_some_and(|c| c.admin) {
            return self.receive_admin_head(key, &request, after_head);
        }
        match classify(&request) {
            Ok(RequestKind::Upgrade(_)) if let Err(why) = self.config.origins.check(&request) => {
                debug!("#{key}: upgrade refused: {why}");
                self.respond_and_linger(key, &Response::text(403, format!("{why}\n")), false);
                &[]
            }
            Ok(RequestKind::Upgrade(upgrade)) => match self.handler.accept_upgrade(&request) {
                Ok(()) => {
                    let offers = request.headers_named("sec-websocket-extensions");
                    match negotiate(offers, &self.config.deflate) {
                        Ok(negotiation) => {
                            self.open(key, &upgrade, &request, negotiation);
                            after_head
                        }
                        // A header that breaks the grammar (RFC 6455 §9.1) is a bad
                        // request; an offer we cannot take is only declined.
                        Err(malformed) => {
                            let why = format!("malformed Sec-WebSocket-Extensions: {malformed}\n");
                            self.respond_and_linger(key, &Response::text(400, why), false);
                            &[]
                        }
                    }
                }
                Err(response) => {
                    self.respond_and_linger(key, &response, false);
                    &[]
                }
            },
            Ok(RequestKind::Plain) => {
                let response = self.handler.on_http(&request);
                let keep_alive = request.wants_keep_alive() && !request.has_body();
                if self.respond_plain(key, &response, request.method == "HEAD", keep_alive) {
                    after_head
                } else {
                    &[]
                }
            }
            Err(error) => {
                self.refuse(key, &error);
                &[]
            }
        }
    }

    /// Answers a request on the admin port (see `admin.rs`): never the application's.
    fn receive_admin_head<'a>(
        &mut self,
        key: usize,
        request: &Request,
        after_head: &'a [u8],
    ) -> &'a [u8] {
        let Some(state) = self.admin.as_deref_mut() else {
            self.conns.linger(key);
            return &[];
        };
        let upgrade = match classify(request) {
            Ok(RequestKind::Upgrade(upgrade)) => Some(upgrade),
            _ => None,
        };
        let handler = &*self.handler;
        let app = || AppReport {
            rooms: handler.rooms(),
            links: handler.links(),
        };
        match admin::answer(state, self.conns, request, upgrade, app) {
            Answer::OpenFeed(upgrade) => {
                admin::open_feed(state, self.conns, key, &upgrade, self.config);
                after_head
            }
            Answer::Respond(response) => {
                let keep_alive = request.wants_keep_alive() && !request.has_body();
                if self.respond_plain(key, &response, request.method == "HEAD", keep_alive) {
                    after_head
                } else {
                    &[]
                }
            }
        }
    }

    /// Completes the upgrade: queues the 101 and starts the application's session.
    fn open(&mut self, key: usize, upgrade: &Upgrade, request: &Request, deflate: Negotiation) {
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        let ws = WebSocket::new(Role::Server, self.config.max_message_size);
        let ws = match deflate {
            Negotiation::Accept(accepted) => {
                conn.out
                    .push_bytes(&upgrade.response_with_extensions(Some(&accepted.response_header)));
                ws.with_deflate(accepted.negotiated)
            }
            Negotiation::Decline(_) => {
                conn.out.push_bytes(&upgrade.response());
                ws
            }
        };
        conn.phase = Phase::WebSocket(ws);
        debug!("{}: #{key} upgraded to WebSocket", conn.peer);
        // From now on the deadline is the keepalive's (see `keepalive.rs`).
        let now = self.conns.now;
        conn.keepalive = self.config.keepalive.map(|_| Keepalive::new(now));
        let first_check = self.config.keepalive.map(|k| now + k.ping_interval);
        // Broadcasts made earlier in this turn were not meant for it.
        self.conns.begin_session(key);
        self.conns.set_deadline(key, first_check);
        self.conns.schedule_flush(key);
        self.handler.on_open(
            &mut Context::new(self.conns),
            ConnectionId(key),
            Some(request),
        );
        self.deliver_closes();
    }

    /// Answers a request we refuse, and closes.
    fn refuse(&mut self, key: usize, error: &HttpError) {
        if let Some(conn) = self.conns.slab.get(key) {
            debug!(
                "{}: #{key} refused with {}: {error}",
                conn.peer,
                error.status()
            );
        }
        self.respond_and_linger(key, &error.response(), false);
    }

    /// Answers a plain HTTP request, keeping the connection for the next request if the
    /// client asked for that (and is reading its responses: one that pipelines requests
    /// without reading the answers is cut off at the output limit). Returns whether it
    /// was kept alive.
    fn respond_plain(
        &mut self,
        key: usize,
        response: &Response,
        head_only: bool,
        keep_alive: bool,
    ) -> bool {
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return false;
        };
        let keep_alive = keep_alive && conn.out.len() < self.config.max_outbound_bytes;
        if !keep_alive {
            self.respond_and_linger(key, response, head_only);
            return false;
        }
        conn.out.push_bytes(&response.encode(head_only, true));
        conn.phase = Phase::Http(Vec::new());
        conn.kept_alive = true;
        self.conns
            .set_deadline(key, Some(self.conns.now + self.config.handshake_timeout));
        self.conns.schedule_flush(key);
        true
    }

    /// Queues a response and moves to lingering: flush, FIN, drain, drop.
    fn respond_and_linger(&mut self, key: usize, response: &Response, head_only: bool) {
        if let Some(conn) = self.conns.slab.get_mut(key) {
            conn.out.push_bytes(&response.encode(head_only, false));
        }
        self.conns.linger(key);
    }

    /// Splits a line-port connection's input into lines and gives each to the handler.
    fn receive_lines(&mut self, key: usize, mut input: &[u8]) {
        while let Some(Connection {
            phase: Phase::Line(reader),
            ..
        }) = self.conns.slab.get_mut(key)
        {
            let Some(event) = reader.read(&mut input) else {
                return;
            };
            self.deliver_line(key, event);
        }
    }

    /// Delivers the line a line-port peer left unfinished when it closed its side.
    pub fn finish_lines(&mut self, key: usize) {
        if let Some(Connection {
            phase: Phase::Line(reader),
            ..
        }) = self.conns.slab.get_mut(key)
            && let Some(event) = reader.finish()
        {
            self.deliver_line(key, event);
        }
    }

    fn deliver_line(&mut self, key: usize, event: LineEvent) {
        match event {
            LineEvent::Line(text) => {
                if !self.within_message_rate(key) {
                    return;
                }
                self.conns.metrics.totals.messages_in += 1;
                self.handler.on_message(
                    &mut Context::new(self.conns),
                    ConnectionId(key),
                    Message::Text(&text),
                );
                self.deliver_closes();
            }
            LineEvent::TooLong => {
                let notice = format!(
                    "! line too long: at most {} bytes; it was dropped",
                    self.config.max_line_bytes
                );
                // Not sent only if the queue is full, and then the client hears of it.
                let _ = self.conns.send(key, Message::Text(&notice));
            }
        }
    }

    /// Charges one message to connection `key`'s budget when the server limits message
    /// rates. Over the limit, the connection is closed with 1008 (a line client is told
    /// why in a line first), counted, and the message is not delivered.
    fn within_message_rate(&mut self, key: usize) -> bool {
        let Some(rate) = self.config.message_rate else {
            return true;
        };
        let now = self.conns.now;
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return false;
        };
        let bucket = conn
            .rate
            .get_or_insert_with(|| TokenBucket::new(rate.burst, now));
        if bucket.allow_at(now, rate) {
            return true;
        }
        debug!("{}: #{key} over the message rate; closing", conn.peer);
        self.conns.stats.rate_closed += 1;
        let reason = "message rate exceeded";
        self.conns.close(key, CloseCode::PolicyViolation, reason);
        false
    }

    /// Decodes frames and acts on each event.
    fn receive_frames(&mut self, key: usize, mut input: &[u8]) {
        loop {
            // Whatever this connection writes next (a Pong, a Close) comes after the
            // broadcasts it has not taken yet.
            self.conns.catch_up(key);
            let Some(Connection {
                phase: Phase::WebSocket(ws),
                admin,
                ..
            }) = self.conns.slab.get_mut(key)
            else {
                return;
            };
            let result = ws.read(&mut input);
            // Only a Text or Binary event finds the connection open and owes nothing. The
            // admin port's connections are never the application's.
            let (open, owes) = (ws.state() == State::Open && !*admin, ws.has_replies());
            if owes {
                // A Pong, or the Close that answers the peer's Close or reports its error.
                self.conns.queue_replies(key);
            }
            let event = match result {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(error) => {
                    // The connection failed (RFC 6455 §7.1.7): our Close with the error's
                    // code is queued; close TCP after it. More input is discarded.
                    if let Some(conn) = self.conns.slab.get(key) {
                        debug!("{}: #{key} failed: {error}", conn.peer);
                    }
                    return self.conns.linger(key);
                }
            };
            match event {
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Close(frame) => {
                    if let Some(conn) = self.conns.slab.get(key) {
                        debug!("{}: #{key} closing handshake done ({frame:?})", conn.peer);
                    }
                    return self.conns.linger(key);
                }
                Event::Text(_) | Event::Binary(_) => {
                    // Once we have sent our Close, the application is done with this
                    // connection; messages still in flight are dropped.
                    if open
                        && self.within_message_rate(key)
                        && let Some(message) = event.as_message()
                    {
                        self.conns.metrics.totals.messages_in += 1;
                        self.handler.on_message(
                            &mut Context::new(self.conns),
                            ConnectionId(key),
                            message,
                        );
                        self.deliver_closes();
                    }
                    let buffer = match event {
                        Event::Text(text) => text.into_bytes(),
                        Event::Binary(bytes) => bytes,
                        _ => continue,
                    };
                    if let Some(Connection {
                        phase: Phase::WebSocket(ws),
                        ..
                    }) = self.conns.slab.get_mut(key)
                    {
                        ws.recycle(buffer);
                    }
                }
            }
        }
    }
}
