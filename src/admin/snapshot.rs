//! The figures of one moment, as the admin port gives them: `/stats`, each push of the
//! live page's WebSocket, and the source of `/metrics`. Filled by the loop
//! (`event_loop/admin.rs`); plain data, so that this module needs nothing of the loop.

use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the admin port says about the server at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Always `"snapshot"`: the live page's WebSocket may say other things one day.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Which server this is.
    pub server: ServerInfo,
    /// What the server has done since it started.
    pub totals: Totals,
    /// Open connections.
    pub connections: ConnectionCounts,
    /// Bytes queued for clients, all connections together.
    pub queued_outbound_bytes: u64,
    /// The loop's histograms.
    pub histograms: Histograms,
    /// The turns since the previous snapshot of this reader (at most the loop's last
    /// 1,024), oldest first. Empty in `/stats`.
    pub recent_turns: Vec<TurnSnapshot>,
    /// The connections with the most output queued, most first (at most ten).
    pub slowest_consumers: Vec<Consumer>,
    /// The application's rooms and how many members each has (the chat's), largest
    /// first.
    pub rooms: Vec<RoomCount>,
    /// The links the application keeps to other servers (the chat's to Redis, with
    /// `--redis`); none without.
    pub links: Vec<LinkReport>,
    /// With several workers (`--workers N`), each worker's own figures, worker 0's (this
    /// loop's) taken now and the others' as each last reported them; empty for one loop.
    /// Everything else in the snapshot is this loop's.
    pub workers: Vec<WorkerFigures>,
}

/// What one worker's loop has done, as it reported it to the admin port's worker.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WorkerFigures {
    /// The worker's index, 0 to N-1.
    pub worker: usize,
    /// Its open client connections (the admin port's own left out).
    pub connections: u64,
    /// Its counters since it started.
    pub totals: Totals,
    /// Seconds since it reported them (it reports at most four times a second, and only
    /// after a turn: an idle worker's figures are old and still true).
    pub reported_seconds_ago: f64,
}

/// Which server this is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerInfo {
    /// loopchat's version.
    pub version: &'static str,
    /// `chat`, `echo` or `broadcast`, or what the embedding program calls its handler.
    pub mode: String,
    /// Seconds since the server started.
    pub uptime_seconds: f64,
    /// The process id.
    pub pid: u32,
}

/// Counters that only grow, since the server started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    /// Turns of the event loop.
    pub turns: u64,
    /// Readiness events taken from poll.
    pub events: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused with 503 (full, or out of descriptors).
    pub refused: u64,
    /// Of `refused`, those for want of a file descriptor.
    pub refused_no_descriptors: u64,
    /// Data messages and lines received from clients.
    pub messages_in: u64,
    /// Messages handed to clients, as `deliveries`.
    pub messages_out: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Broadcasts published to the broadcast log.
    pub broadcasts: u64,
    /// Messages handed to clients, a broadcast counting once per recipient.
    pub deliveries: u64,
    /// write and writev calls of the flush.
    pub writes: u64,
    /// Clients closed with 1008 for letting their output queue fill.
    pub slow_closed: u64,
    /// Messages dropped for full clients.
    pub dropped_messages: u64,
    /// Connections closed for exceeding the server's message rate.
    pub rate_limited: u64,
    /// Clients dropped after the idle timeout.
    pub idle_dropped: u64,
    /// Messages compressed for clients that negotiated permessage-deflate (each once,
    /// however many received it).
    pub deflated_messages: u64,
    /// Their bytes before compression.
    pub deflate_bytes_in: u64,
    /// Their bytes after compression: over `deflate_bytes_in`, the compression ratio.
    pub deflate_bytes_out: u64,
    /// Connections dropped when the closing handshake timed out.
    pub close_timed_out: u64,
}

/// Open connections, by what they are doing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionCounts {
    /// How many, in any phase.
    pub open: u64,
    /// `handshake` (reading an HTTP request), `websocket`, `line`, `closing` (lingering
    /// or in the closing handshake), and `admin` (the admin port's own). The live page
    /// draws this; `by_transport` says the same with the transport apart.
    pub by_phase: BTreeMap<&'static str, u64>,
    /// By transport, then phase: every pair in [`TRANSPORT_PHASES`], zero or not.
    pub by_transport: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

/// Each transport with the phases a connection of it can be in.
///
/// - `http`: a client connection reading an HTTP request (`handshake`: a WebSocket
///   upgrade not yet answered, or a plain request for the page), or flushing its
///   response before it closes (`closing`). Once upgraded it is `websocket`.
/// - `websocket`: `open` for messages, or `closing` (the closing handshake, then the
///   lingering until the peer's FIN).
/// - `line`: a line-port client, `open` or `closing`.
/// - `admin`: the admin port's own, whatever they speak: reading a request
///   (`handshake`), a live page's WebSocket (`open`), or `closing`.
pub const TRANSPORT_PHASES: [(&str, &[&str]); 4] = [
    ("http", &["handshake", "closing"]),
    ("websocket", &["open", "closing"]),
    ("line", &["open", "closing"]),
    ("admin", &["handshake", "open", "closing"]),
];

/// A link the application keeps to another server: for the chat with `--redis`, its
/// link to Redis (one connection to a single server, or one to each master of a
/// cluster), which carries both its calls and its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkReport {
    /// What the link is to: `redis`.
    pub name: String,
    /// Where: for Redis, its URL, never with the password.
    pub peer: String,
    /// Where it stands.
    pub state: LinkState,
    /// Servers connected or being connected to: one, or each master of a cluster (and
    /// the node first asked, if it is not one); none while down.
    pub nodes: u64,
    /// Requests sent and not yet answered.
    pub pending_replies: u64,
    /// Attempts to connect after the first: after Redis was lost, or could not be
    /// reached.
    pub reconnects: u64,
    /// Times it was lost after it was up: for the chat, each a split.
    pub lost: u64,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Connecting: the TCP connections, the handshake, what must be loaded before use.
    Connecting,
    /// Ready: requests are answered.
    Up,
    /// Not connected; waiting to try again (with backoff).
    Down,
}

impl LinkState {
    /// Every state, in the order `/metrics` lists them.
    pub const ALL: [LinkState; 3] = [LinkState::Connecting, LinkState::Up, LinkState::Down];

    /// Its name in `/stats` and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Up => "up",
            LinkState::Down => "down",
        }
    }
}

/// A histogram: one count per upper bound, then the count above the last (not
/// cumulative).
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistogramSnapshot {
    /// The upper bounds of the buckets, increasing.
    pub bounds: Vec<f64>,
    /// The count of each bucket, then of the open one above the last bound.
    pub counts: Vec<u64>,
    /// The sum of every value counted.
    pub sum: f64,
    /// How many values were counted.
    pub count: u64,
}

/// The loop's histograms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Histograms {
    /// Readiness events per wake-up.
    pub events_per_wakeup: HistogramSnapshot,
    /// Messages handed to clients per write call, for the turns that wrote.
    pub frames_per_write: HistogramSnapshot,
    /// write calls per turn, for the turns that wrote.
    pub writes_per_turn: HistogramSnapshot,
    /// Seconds per turn in each phase: `poll_wait`, `dispatch`, `timers`, `flush`.
    pub phase_seconds: BTreeMap<&'static str, HistogramSnapshot>,
}

/// One turn of the loop.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TurnSnapshot {
    /// The turn's number, from 1.
    pub seq: u64,
    /// Readiness events taken from poll.
    pub events: u64,
    /// Connections accepted in the turn.
    pub accepts: u64,
    /// read calls that returned bytes.
    pub reads: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Data messages and lines received from clients.
    pub messages_in: u64,
    /// Broadcasts published to the broadcast log.
    pub broadcasts: u64,
    /// Frames handed to clients in the turn (the page calls them frames).
    pub frames: u64,
    /// write and writev calls of the flush.
    pub writes: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Microseconds asleep in poll before the turn.
    pub poll_wait_us: f64,
    /// Microseconds acting on the events.
    pub dispatch_us: f64,
    /// Microseconds on due deadlines.
    pub timers_us: f64,
    /// Microseconds writing.
    pub flush_us: f64,
}

/// A connection with output waiting.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Consumer {
    /// The connection's key (its mio token).
    pub id: usize,
    /// The peer's address.
    pub peer: String,
    /// Bytes queued for it.
    pub queued_bytes: u64,
}

/// A room and its member count.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoomCount {
    /// The room's name.
    pub name: String,
    /// How many members it has.
    pub members: u64,
}

impl Snapshot {
    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
