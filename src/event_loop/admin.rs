//! The admin port, in the loop: its requests answered from what the loop knows, and the
//! live page's WebSockets fed a snapshot several times a second.
//!
//! Admin connections are accepted on their own listener and marked
//! ([`Connection::admin`]); from then on they share everything with clients (the slab,
//! the read and write paths, the deadlines) but two things: the application never hears
//! of them, and they take no broadcasts (they read no lane of the broadcast log). A
//! request is answered by `crate::admin::route`; `/metrics` and `/stats` are made from a
//! [`Snapshot`] taken on the spot. The page's WebSocket (`/inspect/ws`) is a feed: at
//! each [`PUSH_INTERVAL`], at the end of a turn, every feed is sent a snapshot with the
//! turns since its previous one.

use super::board::Board;
use super::config::{AdminConfig, ServerConfig};
use super::connection::{Connection, Phase};
use super::connections::Connections;
use super::metrics::{Histogram, LoopMetrics, Phase as TurnPhase, Turn};
use crate::admin::snapshot::{
    ConnectionCounts, Consumer, HistogramSnapshot, Histograms, RoomCount, ServerInfo,
    TRANSPORT_PHASES, Totals, TurnSnapshot, WorkerFigures,
};
use crate::admin::{AdminRequest, LinkReport, Route, Snapshot, prometheus, route};
use crate::http::{Request, Response, Upgrade};
use crate::ws::{Keepalive, Message, Role, State, WebSocket};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the live page's WebSockets are sent a snapshot.
pub const PUSH_INTERVAL: Duration = Duration::from_millis(250);

/// The most turns a snapshot of the feed carries: the newest.
const FEED_TURNS: usize = 128;

/// The most connections `slowest_consumers` lists.
const SLOWEST: usize = 10;

/// The admin port's state in the loop.
#[derive(Debug)]
pub(crate) struct AdminState {
    /// With several workers, the board where each posts its figures, and this loop's
    /// index among them.
    pub board: Option<(Board, usize)>,
    /// The bearer token required, if any.
    token: Option<String>,
    /// What the server calls itself (`chat`, `echo`, ...), for the page.
    mode: String,
    /// When the server started.
    started: Instant,
    /// The live page's WebSockets: connection key, its serial (a key is reused once its
    /// connection is gone), and the last turn it was sent.
    feeds: Vec<(usize, u64, u64)>,
    /// When the feeds are next sent a snapshot.
    next_push: Instant,
}

/// What the application says of itself, asked at each snapshot: its rooms and its links
/// (`Handler::rooms` and `Handler::links`, asked by the files above this one).
#[derive(Debug, Clone, Default)]
pub(crate) struct AppReport {
    /// Each room's name and member count.
    pub rooms: Vec<(String, usize)>,
    /// Where each of its links to other servers stands.
    pub links: Vec<LinkReport>,
}

/// What an admin request is answered with.
pub(crate) enum Answer {
    /// A plain HTTP response.
    Respond(Response),
    /// The upgrade to the live page's WebSocket.
    OpenFeed(Upgrade),
}

impl AdminState {
    /// The state for an admin port as `config` says, started now.
    pub fn new(config: &AdminConfig, now: Instant) -> AdminState {
        AdminState {
            board: None,
            token: config.token.clone(),
            mode: config.label.clone(),
            started: now,
            feeds: Vec::new(),
            next_push: now,
        }
    }

    /// When the loop must wake to feed the live pages, if any is open.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.feeds.is_empty()).then_some(self.next_push)
    }
}

/// Answers a request on the admin port. `upgrade` is the request's WebSocket upgrade, if
/// it is one; `app` asks the application for its report.
pub(crate) fn answer(
    state: &AdminState,
    conns: &Connections,
    request: &Request,
    upgrade: Option<Upgrade>,
    app: impl FnOnce() -> AppReport,
) -> Answer {
    let decided = route(
        &AdminRequest {
            method: &request.method,
            target: &request.target,
            authorization: request.header("authorization"),
            host: request.header("host"),
            origin: request.header("origin"),
        },
        state.token.as_deref(),
    );
    let mut response = match decided {
        Route::Metrics => Response::new(
            200,
            prometheus::CONTENT_TYPE,
            prometheus::render(&snapshot(state, conns, &app(), None)),
        ),
        Route::Stats => Response::new(
            200,
            "application/json",
            snapshot(state, conns, &app(), None).to_json() + "\n",
        ),
        Route::Page(file) => {
            let (content_type, body) = file.content();
            let mut response = Response::new(200, content_type, body);
            response.header("Content-Security-Policy", crate::admin::PAGE_POLICY);
            response.header("X-Content-Type-Options", "nosniff");
            response
        }
        Route::Feed => match upgrade {
            Some(upgrade) => return Answer::OpenFeed(upgrade),
            None => {
                let mut response = Response::text(426, "this is a WebSocket: /inspect/ws\n");
                response.header("Upgrade", "websocket");
                response
            }
        },
        Route::Forbidden(why) => Response::text(403, format!("{why}\n")),
        Route::NotFound => Response::text(
            404,
            "the admin port serves /metrics, /stats, /inspect and /inspect/ws\n",
        ),
        Route::MethodNotAllowed => {
            let mut response = Response::text(405, "GET or HEAD only\n");
            response.header("Allow", "GET, HEAD");
            response
        }
        Route::Unauthorized => {
            let mut response = Response::text(
                401,
                "a bearer token is required: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
            );
            response.header("WWW-Authenticate", "Bearer");
            response
        }
    };
    response.header("Cache-Control", "no-store");
    Answer::Respond(response)
}

/// Makes connection `key` a live page's WebSocket: queues the 101 and adds it to the
/// feeds, which are sent their first snapshot at the end of this turn.
pub(crate) fn open_feed(
    state: &mut AdminState,
    conns: &mut Connections,
    key: usize,
    upgrade: &Upgrade,
    config: &ServerConfig,
) {
    let turns = conns.metrics.totals.turns;
    let now = conns.now;
    let Some(conn) = conns.slab.get_mut(key) else {
        return;
    };
    conn.out.push_bytes(&upgrade.response());
    conn.phase = Phase::WebSocket(WebSocket::new(Role::Server, config.max_message_size));
    // It takes no broadcasts: its cursor is past any there will be.
    conn.next_broadcast = u64::MAX;
    // Pinged when quiet and dropped when gone, like any client: a page that vanished
    // without a word must not keep its snapshots piling up.
    conn.keepalive = config.keepalive.map(|_| Keepalive::new(now));
    let serial = conn.serial;
    conns.set_deadline(key, config.keepalive.map(|k| now + k.ping_interval));
    conns.schedule_flush(key);
    state.feeds.push((key, serial, turns.saturating_sub(64)));
    state.next_push = conns.now;
}

/// Sends each live page its snapshot, if it is time; forgets the pages gone.
pub(crate) fn feed(
    state: &mut AdminState,
    conns: &mut Connections,
    app: impl FnOnce() -> AppReport,
) {
    if state.feeds.is_empty() || conns.now < state.next_push {
        return;
    }
    state.next_push = conns.now + PUSH_INTERVAL;
    let mut feeds = std::mem::take(&mut state.feeds);
    feeds.retain(|&(key, serial, _)| {
        conns.slab.get(key).is_some_and(|c: &Connection| {
            c.serial == serial
                && matches!(&c.phase, Phase::WebSocket(ws) if ws.state() == State::Open)
        })
    });
    let app = app();
    let last = conns.metrics.totals.turns;
    // Pages fed at the same pushes have seen the same turns: one snapshot serves them.
    let mut made: Vec<(u64, String)> = Vec::new();
    for (key, _, sent) in &mut feeds {
        let json = match made.iter().find(|(since, _)| since == sent) {
            Some((_, json)) => json.clone(),
            None => {
                let json = snapshot(state, conns, &app, Some(*sent)).to_json();
                made.push((*sent, json.clone()));
                json
            }
        };
        *sent = last;
        // A page too slow to take its snapshots is closed like any slow client.
        if conns.send(*key, Message::Text(&json)).is_ok() {
            // Deliveries count the application's messages, not the loop's reports.
            conns.metrics.totals.deliveries -= 1;
        }
    }
    state.feeds = feeds;
}

/// The server's figures now; with the turns after `since_turn`, for a feed.
pub(crate) fn snapshot(
    state: &AdminState,
    conns: &Connections,
    app: &AppReport,
    since_turn: Option<u64>,
) -> Snapshot {
    let mode = state.mode.clone();
    let uptime = conns
        .now
        .saturating_duration_since(state.started)
        .as_secs_f64();
    let metrics = &conns.metrics;
    let mut by_phase: BTreeMap<&'static str, u64> =
        ["handshake", "websocket", "line", "closing", "admin"]
            .map(|p| (p, 0))
            .into();
    let mut by_transport: BTreeMap<&'static str, BTreeMap<&'static str, u64>> = TRANSPORT_PHASES
        .iter()
        .map(|(transport, phases)| (*transport, phases.iter().map(|p| (*p, 0)).collect()))
        .collect();
    let mut queued = 0;
    let mut consumers = Vec::new();
    for (key, conn) in &conns.slab {
        let phase = match &conn.phase {
            _ if conn.admin => "admin",
            Phase::Http(_) => "handshake",
            Phase::WebSocket(ws) if ws.state() == State::Open => "websocket",
            Phase::Line(_) => "line",
            _ => "closing",
        };
        *by_phase.entry(phase).or_default() += 1;
        let transport = match conn.admin {
            true => "admin",
            false => conn.phase.protocol().name(),
        };
        let phase = match &conn.phase {
            Phase::Http(_) => "handshake",
            Phase::WebSocket(ws) if ws.state() == State::Open => "open",
            Phase::Line(_) => "open",
            _ => "closing",
        };
        *by_transport
            .entry(transport)
            .or_default()
            .entry(phase)
            .or_default() += 1;
        let len = conn.out.len() as u64;
        queued += len;
        if len > 0 && !conn.admin {
            consumers.push(Consumer {
                id: key,
                peer: conn.peer.to_string(),
                queued_bytes: len,
            });
        }
    }
    consumers.sort_by_key(|c| std::cmp::Reverse(c.queued_bytes));
    consumers.truncate(SLOWEST);
    let mut rooms: Vec<RoomCount> = app
        .rooms
        .iter()
        .map(|(name, members)| RoomCount {
            name: name.clone(),
            members: *members as u64,
        })
        .collect();
    rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.name.cmp(&b.name)));
    Snapshot {
        kind: "snapshot",
        server: ServerInfo {
            version: env!("CARGO_PKG_VERSION"),
            mode,
            uptime_seconds: uptime,
            pid: std::process::id(),
        },
        totals: totals(conns),
        connections: ConnectionCounts {
            open: conns.slab.len() as u64,
            by_phase,
            by_transport,
        },
        queued_outbound_bytes: queued,
        histograms: histograms(metrics),
        recent_turns: since_turn
            .map(|after| {
                let turns: Vec<TurnSnapshot> =
                    metrics.turns_after(after).map(turn_snapshot).collect();
                // The page draws the last 120; a busy loop turns thousands of times
                // between two snapshots.
                turns[turns.len().saturating_sub(FEED_TURNS)..].to_vec()
            })
            .unwrap_or_default(),
        slowest_consumers: consumers,
        rooms,
        links: app.links.clone(),
        workers: state
            .board
            .as_ref()
            .map(|(board, me)| {
                let mut workers = board.read(conns.now);
                // This loop's own figures are taken now.
                if let Some(mine) = workers.get_mut(*me) {
                    *mine = WorkerFigures {
                        worker: *me,
                        connections: client_connections(conns),
                        totals: totals(conns),
                        reported_seconds_ago: 0.0,
                    };
                }
                workers
            })
            .unwrap_or_default(),
    }
}

/// The client connections (the admin port's own left out).
pub(crate) fn client_connections(conns: &Connections) -> u64 {
    (conns.slab.len() - conns.admin_connections) as u64
}

/// The loop's counters since it started.
pub(crate) fn totals(conns: &Connections) -> Totals {
    let t = &conns.metrics.totals;
    let stats = &conns.stats;
    let deflated = super::shared_frame::deflate_totals();
    Totals {
        turns: t.turns,
        events: t.events,
        accepted: t.accepts,
        refused: stats.refused_full,
        refused_no_descriptors: stats.refused_no_descriptors,
        messages_in: t.messages_in,
        messages_out: t.deliveries,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
        broadcasts: t.broadcasts,
        deliveries: t.deliveries,
        writes: t.writes,
        slow_closed: stats.slow_closed,
        dropped_messages: stats.dropped_messages,
        rate_limited: stats.rate_closed,
        idle_dropped: stats.idle_dropped,
        close_timed_out: stats.close_timed_out,
        deflated_messages: deflated.messages,
        deflate_bytes_in: deflated.bytes_in,
        deflate_bytes_out: deflated.bytes_out,
    }
}

fn histogram(h: &Histogram) -> HistogramSnapshot {
    HistogramSnapshot {
        bounds: h.bounds().to_vec(),
        counts: h.counts().to_vec(),
        sum: h.sum(),
        count: h.count(),
    }
}

fn histograms(metrics: &LoopMetrics) -> Histograms {
    Histograms {
        events_per_wakeup: histogram(&metrics.events_per_wakeup),
        frames_per_write: histogram(&metrics.frames_per_write),
        writes_per_turn: histogram(&metrics.writes_per_turn),
        phase_seconds: TurnPhase::ALL
            .iter()
            .zip(&metrics.phase_seconds)
            .map(|(phase, h)| (phase.name(), histogram(h)))
            .collect(),
    }
}

fn turn_snapshot(turn: &Turn) -> TurnSnapshot {
    let c = &turn.counts;
    let micros = |phase| turn.time_in(phase).as_secs_f64() * 1e6;
    TurnSnapshot {
        seq: turn.seq,
        events: c.events,
        accepts: c.accepts,
        reads: c.reads,
        bytes_in: c.bytes_in,
        messages_in: c.messages_in,
        broadcasts: c.broadcasts,
        frames: c.deliveries,
        writes: c.writes,
        bytes_out: c.bytes_out,
        poll_wait_us: micros(TurnPhase::PollWait),
        dispatch_us: micros(TurnPhase::Dispatch),
        timers_us: micros(TurnPhase::Timers),
        flush_us: micros(TurnPhase::Flush),
    }
}
