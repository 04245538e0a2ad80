//! The load itself: who sends, when, and what arrivals mean.
//!
//! A [`Load`] is the [`Driver`] of the fleet while messages flow. It holds one
//! [`FrameTemplate`] per sender, the pacing, and the [`Tracker`] that accounts for every
//! marker received.
//!
//! # Pacing
//!
//! - **Window** (`--window W`, the default with W = 8): each sender keeps at most W of its
//!   messages in flight. A broadcast server never returns a message to its sender, so "in
//!   flight" is measured at a *watcher*: a fixed other client (the next connected client
//!   after the sender). A message is in flight from the moment it is queued until the
//!   watcher has received it or any later message of the same sender (so one lost
//!   message does not stall the window). If the watcher hears nothing for
//!   [`STALL_TIMEOUT`] while the window is full, the window is reset and the stall
//!   counted; if the watcher's connection is lost, the next connected client takes over.
//!   Each message carries the time it was queued. For echo, the watcher is the sender.
//!   With several servers (`--url A,B`) the next client is on the next server, so the
//!   window waits on the way from one instance to another, and the latency measured is
//!   that way's; instances that do not pass messages on to each other stall every window
//!   (counted in `window_stalls`), so measure such a set with `--rate`.
//! - **Rate** (`--rate R`): each sender sends R messages a second on a fixed schedule,
//!   senders staggered evenly over one period. Each message carries its *scheduled* time,
//!   not the time it was actually queued, so a server (or generator) that falls behind
//!   shows up as latency instead of as fewer samples (no coordinated omission). The
//!   schedule runs on the loop's timer, whose resolution is a millisecond, so latency at a
//!   fixed rate includes up to about 1 ms of the generator's own timer lag; `send_lag_us`
//!   in the report says how much.
//!
//! Output for a connection the kernel will not take is capped at [`MAX_BACKLOG`]: a
//! window sender waits; a fixed-rate sender skips the send and counts it.
//!
//! # What is sent
//!
//! The filler without permessage-deflate is the fast path: a pre-encoded frame restamped
//! in place ([`FrameTemplate`]). Otherwise each message is written afresh ([`ChatJson`]
//! draws new sentences every time) and, on a connection whose server agreed to
//! permessage-deflate, compressed on its own: the marker changes with every message, so
//! there is nothing to compress once. The load keeps one [`Compressor`] per window size,
//! reset after every message (level 2, the server's own), for every sender: forgetting
//! the window is always allowed (RFC 7692 §7.1.1.2 only lets a server *forbid* keeping
//! it), and so the generator holds a few hundred KiB, not that much per sender.

use super::args::PayloadKind;
use super::fleet::{Driver, Fleet};
use super::payload::{ChatJson, FrameTemplate, Marker, find_markers, write_filler_text};
use super::stats::{Delivery, Latency, Recipients, Tracker, nanosecond_histogram};
use hdrhistogram::Histogram;
use loopchat::ws::Role;
use loopchat::ws::deflate::codec::{Compressor, DEFAULT_LEVEL};
use loopchat::ws::frame::{Opcode, encode_compressed_frame, encode_frame};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// How a sender decides when to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// At most this many messages in flight per sender.
    Window(u32),
    /// This many messages a second per sender, on a schedule.
    Rate(f64),
}

/// A window sender whose watcher has received nothing for this long while its window is
/// full gets its window back (the stall is counted).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(1);
/// The most output queued for one sender's connection before it stops adding more.
pub const MAX_BACKLOG: usize = 4 * 1024 * 1024;
/// The most messages a fixed-rate schedule sends in one loop turn, so a generator that has
/// fallen behind still reads between its sends.
const MAX_SENDS_PER_TURN: usize = 20_000;
/// How often window senders are checked for stalls and full backlogs.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// One sender.
#[derive(Debug)]
struct Sender {
    /// Its connection.
    client: usize,
    /// The client whose receipts free its window.
    watcher: usize,
    /// How its messages are made.
    outgoing: Outgoing,
    /// Messages below this number are no longer in flight.
    acked: u32,
    /// When the window last moved (nanoseconds since the epoch).
    last_ack_ns: u64,
    /// Whether it is in the ready list.
    queued: bool,
    /// Whether its connection is still open.
    live: bool,
    /// Rate mode: when its schedule starts, and how many slots of it have passed.
    first_due_ns: u64,
    slots: u64,
}

/// How one sender makes each message's frame.
#[derive(Debug)]
enum Outgoing {
    /// Encoded and masked once, restamped in place for each send: the filler without
    /// deflate, the fast path.
    Template(FrameTemplate),
    /// Written afresh for each message, compressed if `deflate_bits` says so, then
    /// framed and masked.
    Composed {
        /// The text of the next message.
        text: Composer,
        /// The run and the sender's slot, for the marker.
        run: u32,
        slot: u32,
        /// The negotiated window to compress within; `None`: sent uncompressed (no
        /// deflate, or a window zlib cannot keep to).
        deflate_bits: Option<u8>,
        /// The connection's masking key.
        mask: [u8; 4],
    },
}

/// The text of a composed message.
#[derive(Debug)]
enum Composer {
    /// The marker and filler, of this size.
    Filler(usize),
    /// Chat-like JSON.
    Chat(ChatJson),
}

/// The buffers composed messages are made in, and the compressors, shared by every
/// sender.
#[derive(Default)]
struct Workshop {
    text: Vec<u8>,
    compressed: Vec<u8>,
    /// One per window size in use, each reset after every message.
    compressors: Vec<Compressor>,
}

impl Workshop {
    /// Appends the next message of `outgoing` to `out`, as a masked frame.
    fn push(&mut self, outgoing: &mut Outgoing, seq: u32, sent_ns: u64, out: &mut Vec<u8>) {
        let Outgoing::Composed {
            text,
            run,
            slot,
            deflate_bits,
            mask,
        } = outgoing
        else {
            if let Outgoing::Template(template) = outgoing {
                out.extend_from_slice(template.stamp(seq, sent_ns));
            }
            return;
        };
        let marker = Marker {
            run: *run,
            sender: *slot,
            seq,
            sent_ns,
        };
        match text {
            Composer::Filler(size) => write_filler_text(&marker, *size, &mut self.text),
            Composer::Chat(chat) => chat.write(&marker, &mut self.text),
        }
        let Some(bits) = *deflate_bits else {
            return encode_frame(out, Opcode::Text, true, &self.text, Some(*mask));
        };
        let at = match self
            .compressors
            .iter()
            .position(|c| c.window_bits() == bits)
        {
            Some(at) => at,
            None => {
                self.compressors.push(Compressor::new(bits, DEFAULT_LEVEL));
                self.compressors.len() - 1
            }
        };
        self.compressed.clear();
        self.compressors[at].compress(&self.text, &mut self.compressed);
        encode_compressed_frame(out, Opcode::Text, &self.compressed, Some(*mask));
    }
}

/// Who sends and how, for [`Load::new`].
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// This run's id, written in every marker.
    pub run: u32,
    /// Who receives.
    pub recipients: Recipients,
    /// The connection of each sender slot.
    pub senders: Vec<usize>,
    /// The watcher of each sender slot.
    pub watchers: Vec<usize>,
    /// How senders pace themselves.
    pub pacing: Pacing,
    /// Message size in bytes.
    pub size: usize,
    /// What the messages say.
    pub payload: PayloadKind,
}

/// Extra counters of the load.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadCounts {
    /// Windows reset after [`STALL_TIMEOUT`].
    pub window_stalls: u64,
    /// Fixed-rate sends skipped because the connection's output was full.
    pub sends_skipped: u64,
}

/// The fleet's driver while messages flow.
pub struct Load {
    pacing: Pacing,
    /// The size of the messages sent.
    size: usize,
    senders: Vec<Sender>,
    /// Where composed messages are made.
    workshop: Workshop,
    tracker: Tracker,
    /// Which clients are still open.
    alive: Vec<bool>,
    /// Sending happens in `[send_from_ns, send_until_ns)`.
    sending: bool,
    send_until_ns: u64,
    /// Window mode: senders whose window may have room.
    ready: Vec<usize>,
    next_check: Option<Instant>,
    /// Rate mode: (due time, sender), earliest first.
    schedule: BinaryHeap<Reverse<(u64, usize)>>,
    period_ns: f64,
    /// Rate mode: how late each send was queued, in nanoseconds.
    send_lag: Histogram<u64>,
    counts: LoadCounts,
    /// Draining: finished as soon as everything expected has arrived.
    draining: bool,
    force_self_delivery: bool,
    /// Timestamps are nanoseconds since this instant.
    epoch: Instant,
    /// For the progress line: the phase and the delivery count at the previous line.
    phase: &'static str,
    phase_end: Instant,
    last_status: (Instant, u64),
}

impl Load {
    /// A load over `fleet`'s open connections. `force_self_delivery` expects senders to
    /// receive their own messages even before any arrives.
    pub fn new(plan: LoadPlan, fleet: &Fleet, epoch: Instant, force_self_delivery: bool) -> Load {
        let alive: Vec<bool> = (0..fleet.len()).map(|i| fleet.is_open(i)).collect();
        let senders = plan
            .senders
            .iter()
            .zip(&plan.watchers)
            .enumerate()
            .map(|(slot, (&client, &watcher))| Sender {
                client,
                watcher,
                outgoing: outgoing(&plan, slot as u32, client, fleet),
                acked: 0,
                last_ack_ns: 0,
                queued: false,
                live: true,
                first_due_ns: 0,
                slots: 0,
            })
            .collect();
        let tracker = Tracker::new(
            plan.run,
            plan.recipients,
            plan.senders.clone(),
            alive.clone(),
        );
        let period_ns = match plan.pacing {
            Pacing::Rate(rate) => 1e9 / rate,
            Pacing::Window(_) => 0.0,
        };
        Load {
            pacing: plan.pacing,
            size: plan.size,
            senders,
            workshop: Workshop::default(),
            tracker,
            alive,
            sending: false,
            send_until_ns: 0,
            ready: Vec::new(),
            next_check: None,
            schedule: BinaryHeap::new(),
            period_ns,
            send_lag: nanosecond_histogram(),
            counts: LoadCounts::default(),
            draining: false,
            force_self_delivery,
            epoch,
            phase: "connect",
            phase_end: epoch,
            last_status: (epoch, 0),
        }
    }

    /// Starts sending at `from_ns` (now); the last message is sent before `until_ns`.
    /// Latency and the delivery rate are measured over `window` (nanoseconds since the
    /// epoch).
    pub fn start(&mut self, from_ns: u64, until_ns: u64, window: std::ops::Range<u64>) {
        self.sending = true;
        self.send_until_ns = until_ns;
        self.tracker.set_window(window);
        let count = self.senders.len().max(1) as f64;
        for (slot, sender) in self.senders.iter_mut().enumerate() {
            sender.last_ack_ns = from_ns;
            match self.pacing {
                Pacing::Window(_) => {
                    sender.queued = true;
                    self.ready.push(slot);
                }
                Pacing::Rate(_) => {
                    sender.first_due_ns = from_ns + (self.period_ns * slot as f64 / count) as u64;
                    self.schedule.push(Reverse((sender.first_due_ns, slot)));
                }
            }
        }
    }

    /// Names the phase for the progress line.
    pub fn set_phase(&mut self, phase: &'static str, end: Instant) {
        self.phase = phase;
        self.phase_end = end;
    }

    /// Stops sending; from now on the driver is finished once everything expected has
    /// arrived.
    pub fn drain(&mut self) {
        self.sending = false;
        self.draining = true;
    }

    /// The accounting.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Whether senders' own copies are expected (forced, or seen).
    pub fn self_delivery(&self) -> bool {
        self.tracker.self_delivery(self.force_self_delivery)
    }

    /// The load's own counters.
    pub fn counts(&self) -> LoadCounts {
        self.counts
    }

    /// Rate mode: how late sends were queued after their scheduled time.
    pub fn send_lag(&self) -> Option<Latency> {
        matches!(self.pacing, Pacing::Rate(_)).then(|| Latency::of(&self.send_lag))
    }

    /// Window mode: top up every sender in the ready list.
    fn send_windows(&mut self, fleet: &mut Fleet, now: Instant, now_ns: u64) {
        let Pacing::Window(window) = self.pacing else {
            return;
        };
        if self.next_check.is_none_or(|at| now >= at) {
            self.next_check = Some(now + CHECK_EVERY);
            for (slot, s) in self.senders.iter_mut().enumerate() {
                let in_flight = self.tracker.next_seq(slot) - s.acked;
                let stalled =
                    now_ns.saturating_sub(s.last_ack_ns) > STALL_TIMEOUT.as_nanos() as u64;
                if s.live && in_flight >= window && stalled {
                    s.acked = self.tracker.next_seq(slot);
                    s.last_ack_ns = now_ns;
                    self.counts.window_stalls += 1;
                }
                if s.live && !s.queued {
                    s.queued = true;
                    self.ready.push(slot);
                }
            }
        }
        let mut ready = std::mem::take(&mut self.ready);
        for &slot in &ready {
            let s = &mut self.senders[slot];
            s.queued = false;
            while s.live && self.tracker.next_seq(slot) - s.acked < window {
                if fleet.backlog(s.client) > MAX_BACKLOG {
                    break;
                }
                let Some(out) = fleet.outbox(s.client) else {
                    s.live = false;
                    break;
                };
                let seq = self.tracker.next_seq(slot);
                self.workshop.push(&mut s.outgoing, seq, now_ns, out);
                self.tracker.on_sent(slot);
            }
        }
        ready.clear();
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    /// Rate mode: send everything whose time has come.
    fn send_scheduled(&mut self, fleet: &mut Fleet, now_ns: u64) {
        let mut budget = MAX_SENDS_PER_TURN;
        while let Some(&Reverse((due, slot))) = self.schedule.peek() {
            if due > now_ns || budget == 0 {
                return;
            }
            self.schedule.pop();
            if due >= self.send_until_ns {
                continue; // this sender's schedule is over
            }
            let s = &mut self.senders[slot];
            if !s.live {
                continue;
            }
            if fleet.backlog(s.client) > MAX_BACKLOG {
                self.counts.sends_skipped += 1;
            } else if let Some(out) = fleet.outbox(s.client) {
                let seq = self.tracker.next_seq(slot);
                self.workshop.push(&mut s.outgoing, seq, due, out);
                self.tracker.on_sent(slot);
                self.send_lag.saturating_record((now_ns - due).max(1));
            } else {
                s.live = false;
                continue;
            }
            s.slots += 1;
            let next = s.first_due_ns + (s.slots as f64 * self.period_ns) as u64;
            self.schedule.push(Reverse((next, slot)));
            budget -= 1;
        }
    }

    /// Accounts for one marker and, if it reached its sender's watcher, moves the window.
    fn accept(&mut self, receiver: usize, marker: &Marker, at_ns: u64) {
        let Delivery::New { sender, seq } = self.tracker.record(receiver, marker, at_ns) else {
            return;
        };
        let s = &mut self.senders[sender];
        if s.watcher == receiver && seq >= s.acked {
            s.acked = seq + 1;
            s.last_ack_ns = at_ns;
            if !s.queued && self.sending {
                s.queued = true;
                self.ready.push(sender);
            }
        }
    }

    /// The next connected client after `client`, other than `client`, if any.
    fn next_alive(&self, client: usize) -> Option<usize> {
        let n = self.alive.len();
        (1..n)
            .map(|k| (client + k) % n)
            .find(|&other| self.alive[other])
    }
}

impl Driver for Load {
    fn on_message(&mut self, receiver: usize, message: &[u8], at_ns: u64) {
        // The common case, a relay that forwards messages unchanged: the message is
        // exactly one of ours, marker first and filler after, so there is nothing more to
        // search for.
        if message.len() == self.size
            && let Some(marker) = Marker::parse(message)
        {
            return self.accept(receiver, &marker, at_ns);
        }
        for marker in find_markers(message) {
            self.accept(receiver, &marker, at_ns);
        }
    }

    fn on_lost(&mut self, client: usize) {
        self.alive[client] = false;
        for slot in 0..self.senders.len() {
            let (sender_client, watcher) = (self.senders[slot].client, self.senders[slot].watcher);
            if sender_client == client {
                self.senders[slot].live = false;
            } else if watcher == client {
                match self.next_alive(sender_client) {
                    Some(next) => {
                        let s = &mut self.senders[slot];
                        s.watcher = next;
                        s.acked = self.tracker.next_seq(slot);
                    }
                    None => self.senders[slot].live = false,
                }
            }
        }
    }

    fn produce(&mut self, fleet: &mut Fleet, now: Instant) {
        let now_ns = fleet.ns(now);
        if !self.sending || now_ns >= self.send_until_ns {
            self.sending = false;
            return;
        }
        match self.pacing {
            Pacing::Window(_) => self.send_windows(fleet, now, now_ns),
            Pacing::Rate(_) => self.send_scheduled(fleet, now_ns),
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        if !self.sending {
            return None;
        }
        match self.pacing {
            Pacing::Window(_) => self.next_check,
            Pacing::Rate(_) => {
                let Reverse((due, _)) = self.schedule.peek()?;
                Some(self.epoch + Duration::from_nanos(*due))
            }
        }
    }

    fn finished(&self) -> bool {
        self.draining && self.tracker.complete(self.self_delivery())
    }

    fn status(&mut self, fleet: &Fleet, now: Instant) -> String {
        let counts = self.tracker.counts();
        let (then, delivered_then) = self.last_status;
        self.last_status = (now, counts.delivered);
        let seconds = now.saturating_duration_since(then).as_secs_f64().max(1e-3);
        let rate = (counts.delivered - delivered_then) as f64 / seconds;
        let left = self.phase_end.saturating_duration_since(now).as_secs_f64();
        let p99 = self.tracker.latency().p99;
        format!(
            "{} {left:.0}s left | sent {} delivered {} ({}/s) missing {} | p99 {p99:.0}µs | {}",
            self.phase,
            counts.sent,
            counts.delivered,
            si(rate),
            counts.expected.saturating_sub(counts.delivered),
            fleet.status()
        )
    }
}

/// How `client`, sender `slot` of `plan`, makes its messages: the fast template for
/// the filler without deflate, composed otherwise.
fn outgoing(plan: &LoadPlan, slot: u32, client: usize, fleet: &Fleet) -> Outgoing {
    let mask = fleet.mask(client);
    let deflate_bits = fleet
        .deflate(client)
        .map(|agreed| agreed.outgoing(Role::Client))
        .filter(|direction| direction.can_compress())
        .map(|direction| direction.window_bits);
    let text = match plan.payload {
        PayloadKind::Filler if deflate_bits.is_none() => {
            return Outgoing::Template(FrameTemplate::new(plan.run, slot, plan.size, mask));
        }
        PayloadKind::Filler => Composer::Filler(plan.size),
        PayloadKind::ChatJson => Composer::Chat(ChatJson::new(plan.run, slot, plan.size)),
    };
    Outgoing::Composed {
        text,
        run: plan.run,
        slot,
        deflate_bits,
        mask,
    }
}

/// A number with a k or M suffix, for the progress line.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}
