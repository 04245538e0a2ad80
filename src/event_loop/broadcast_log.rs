//! The broadcast log: how one message reaches every connection for the price of one.
//!
//! A broadcast is encoded once ([`SharedFrame`]) and **published**: appended to this log,
//! one push whatever the number of recipients. Nothing is queued on the recipients then.
//! Broadcasts are numbered for the life of the server, and each open connection holds a
//! cursor: the number of the first broadcast it has not taken. At the end of the loop
//! turn each connection asks the log for what it has **not taken yet**
//! ([`BroadcastLog::untaken`]) and offers it to the kernel, after its own queue, in one
//! vectored write; only what the kernel does not take is queued on the connection, by
//! reference. Once every open connection has taken a broadcast, the loop **retires** it
//! ([`BroadcastLog::retire`]).
//!
//! Three things keep that write cheap:
//!
//! - **Frames laid end to end.** A vectored write of many small slices costs the kernel a
//!   copy call per slice: with 64-byte chat messages, a recipient with 80 frames to write
//!   made the kernel copy 80 times 66 bytes, a quarter of the server's CPU in the broadcast
//!   benchmark. So each small frame is also copied, once, into one buffer per **lane**,
//!   and a recipient writes the turn's frames as one long slice. A lane is one way of
//!   encoding ([`Lane`]): plain WebSocket frames, WebSocket frames compressed with
//!   permessage-deflate, or lines. Each lane is laid out when the first of its
//!   connections reads the log in a turn: for the deflate lane, that is when each
//!   broadcast long enough to be worth it is compressed, once, by the loop's one
//!   compressor, and every connection of the lane shares those bytes. A server with no
//!   deflate client compresses nothing; one whose clients all negotiated deflate never
//!   lays out the plain frames.
//! - **Gaps, not a walk.** What a connection must not get is rare: its own messages (a
//!   broadcast made "to everyone but the sender"). The log keeps the skipped
//!   (connection, broadcast) pairs, sorted before a flush reads them, so a recipient's
//!   slices are its lane's buffer cut around its own few skips, found by a binary
//!   search, whatever the number of frames. (Frames of the other transport are no gap:
//!   they are in no buffer of this lane.) Frames too large to be worth copying are not in
//!   the buffers; they are gaps too, filled with the frame's own bytes.
//! - **One view, two readings.** [`Untaken`] gives the same broadcasts as slices for the
//!   write ([`Untaken::slices`]) and as frames ([`Untaken::frames`]) for queueing whatever
//!   the kernel did not take. Both readings come from the one view, and the tests below
//!   check that they always agree, byte for byte.
//!
//! A connection's output keeps the order in which it was produced: before anything else
//! is queued on it directly, the loop queues the broadcasts it has not taken
//! ([`BroadcastLog::untaken_frames`], in `Connections::catch_up`).

use super::shared_frame::{Lane, SharedFrame};

/// Frames larger than this are not copied into the buffers: for them the kernel's
/// per-slice cost is small next to the bytes, and the copy would not pay for itself.
const MAX_BATCHED_FRAME: usize = 4096;

/// A buffer that grew past this during a busy turn is given back when it empties.
const MAX_KEPT_CAPACITY: usize = 1 << 20;

/// The broadcasts not yet taken by every open connection, oldest first.
#[derive(Debug, Default)]
pub(crate) struct BroadcastLog {
    /// Each broadcast, with the connection it skips.
    entries: Vec<Entry>,
    /// The number of `entries[0]`: broadcasts are numbered from 0 for the life of the
    /// server, so a connection's cursor stays right when the front is retired.
    base: u64,
    /// Where the entries lie in each lane's buffer, and the gaps.
    layout: Layout,
    /// Broadcasts shorter than this go uncompressed even in the deflate lane
    /// (`ServerConfig::deflate_min_bytes`).
    deflate_min_bytes: usize,
}

/// One broadcast.
#[derive(Debug)]
struct Entry {
    /// The frame, as encoded for its transport.
    frame: SharedFrame,
    /// The connection it skips (its sender, usually).
    except: Option<usize>,
    /// What the deflate lane sends instead of `frame`, once that lane is laid out: the
    /// frame compressed, if it is long enough and compressing makes it smaller.
    deflated: Option<SharedFrame>,
}

impl Entry {
    /// The bytes connections of `lane` get for this broadcast, if it is for them.
    fn frame_for(&self, lane: Lane) -> Option<&SharedFrame> {
        if self.frame.transport() != lane.transport() {
            return None;
        }
        match (lane, &self.deflated) {
            (Lane::Deflate, Some(deflated)) => Some(deflated),
            _ => Some(&self.frame),
        }
    }
}

/// The entries laid end to end, one buffer per lane, and what cuts a connection's run of
/// them: its skips, and the frames too large to copy.
///
/// A lane is laid out when a connection of that lane first reads the log, not at
/// publication: a server whose clients all negotiated permessage-deflate neither copies
/// the plain frames nor anything else twice, and one without such clients never
/// compresses a broadcast.
#[derive(Debug, Default)]
struct Layout {
    /// Per lane, in [`Lane::index`] order.
    lanes: [LaneLayout; 3],
    /// The entries that skip a connection, as (connection key, entry index). Sorted
    /// before a flush reads them, so that one connection's skips are found by a search.
    skips: Vec<(usize, usize)>,
    /// Whether `skips` is sorted.
    skips_sorted: bool,
}

/// One lane's frames, end to end.
#[derive(Debug, Default)]
struct LaneLayout {
    /// The lane's small frames, end to end.
    buffer: Vec<u8>,
    /// The length of the buffer before entry `i`, for every `i` up to and including the
    /// number of entries laid out: where a connection's untaken frames begin in the
    /// buffer, and where each entry lies in it (an entry of the other transport, or one
    /// too large to copy, takes no room). Empty while no entry is laid out.
    starts: Vec<usize>,
    /// The indices of the lane's frames too large to copy, in increasing order.
    large: Vec<usize>,
    /// How many of the entries before entry `i` are for this lane, for every `i` that
    /// `starts` has: a view counts its frames without walking them.
    frames_before: Vec<usize>,
}

impl LaneLayout {
    /// The number of entries laid out.
    fn laid(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Lays out entry `index`, whose frame in this lane is `frame` (`None`: it is not for
    /// this lane): a small frame is copied to the end of the buffer.
    fn add(&mut self, index: usize, frame: Option<&SharedFrame>) {
        if self.starts.is_empty() {
            self.starts.push(0);
            self.frames_before.push(0);
        }
        let frames = self.frames_before.last().copied().unwrap_or(0);
        self.frames_before
            .push(frames + usize::from(frame.is_some()));
        match frame {
            Some(frame) if frame.len() <= MAX_BATCHED_FRAME => {
                self.buffer.extend_from_slice(frame.as_bytes())
            }
            Some(_) => self.large.push(index),
            None => {}
        }
        self.starts.push(self.buffer.len());
    }

    /// Forgets every entry, keeping the buffer's memory unless a busy turn grew it.
    fn clear(&mut self) {
        self.buffer.clear();
        self.starts.clear();
        self.large.clear();
        self.frames_before.clear();
        if self.buffer.capacity() > MAX_KEPT_CAPACITY {
            self.buffer = Vec::new();
        }
    }
}

impl BroadcastLog {
    /// An empty log whose deflate lane compresses broadcasts of `deflate_min_bytes` or
    /// more.
    pub fn new(deflate_min_bytes: usize) -> BroadcastLog {
        BroadcastLog {
            deflate_min_bytes,
            ..BroadcastLog::default()
        }
    }

    /// Publishes a broadcast for every open connection of the frame's transport but
    /// `except`. O(1) in the number of recipients: the frame is appended (and, when a
    /// lane is next read, copied once to the end of that lane's buffer if small).
    pub fn publish(&mut self, frame: &SharedFrame, except: Option<usize>) {
        if let Some(key) = except {
            let layout = &mut self.layout;
            let skip = (key, self.entries.len());
            layout.skips_sorted &= layout.skips.last().is_none_or(|&last| last < skip);
            layout.skips.push(skip);
        }
        self.entries.push(Entry {
            frame: frame.clone(),
            except,
            deflated: None,
        });
    }

    /// Whether every broadcast so far is retired.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number the next broadcast will get: a connection whose cursor is here has
    /// taken every broadcast so far.
    pub fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// The index in `entries` of broadcast number `cursor` (the first still in the log, if
    /// it was retired).
    fn index_of(&self, cursor: u64) -> usize {
        (cursor.saturating_sub(self.base) as usize).min(self.entries.len())
    }

    /// Lays out `lane` up to the last entry: in the deflate lane, compresses each new
    /// broadcast that is worth it, once for every connection of the lane.
    fn lay_out(&mut self, lane: Lane) {
        let layout = &mut self.layout.lanes[lane.index()];
        for index in layout.laid()..self.entries.len() {
            let entry = &mut self.entries[index];
            if lane == Lane::Deflate {
                entry.deflated = entry.frame.deflated_from(self.deflate_min_bytes);
            }
            layout.add(index, entry.frame_for(lane));
        }
    }

    /// The frames connection `key`, in `lane`, has not taken yet, from broadcast number
    /// `cursor` on, one by one: the broadcasts for its lane that do not skip it. What to
    /// queue by reference. (A walk of the entries after the cursor, without the search
    /// structures: for a connection about to queue something of its own, which usually
    /// has none or one to take.)
    pub fn untaken_frames(
        &mut self,
        cursor: u64,
        lane: Lane,
        key: usize,
    ) -> impl Iterator<Item = &SharedFrame> {
        self.lay_out(lane);
        self.frames_after(cursor, lane, key)
    }

    /// [`Self::untaken_frames`] of a laid-out lane.
    fn frames_after(
        &self,
        cursor: u64,
        lane: Lane,
        key: usize,
    ) -> impl Iterator<Item = &SharedFrame> {
        self.entries[self.index_of(cursor)..]
            .iter()
            .filter(move |entry| entry.except != Some(key))
            .filter_map(move |entry| entry.frame_for(lane))
    }

    /// What connection `key`, in `lane`, has not taken yet, from broadcast number
    /// `cursor` on, as a view that reads it both as slices for a vectored write and as
    /// frames: for the flush.
    pub fn untaken(&mut self, cursor: u64, lane: Lane, key: usize) -> Untaken<'_> {
        self.lay_out(lane);
        let layout = &mut self.layout;
        if !layout.skips_sorted {
            layout.skips.sort_unstable();
            layout.skips_sorted = true;
        }
        let start = self.index_of(cursor);
        let layout = &self.layout;
        let first = layout.skips.partition_point(|&skip| skip < (key, start));
        let last = layout.skips.partition_point(|&(k, _)| k <= key);
        let large = &layout.lanes[lane.index()].large;
        let large_from = large.partition_point(|&index| index < start);
        Untaken {
            log: self,
            cursor,
            lane,
            key,
            start,
            skips: &layout.skips[first..last],
            large: &large[large_from..],
        }
    }

    /// Retires the broadcasts numbered below `taken`, which every open connection has
    /// taken (written, or queued by reference). The ones after it stay, to be laid out
    /// afresh from the start of the buffers.
    pub fn retire(&mut self, taken: u64) {
        let count = self.index_of(taken);
        if count == 0 {
            return;
        }
        self.base += count as u64;
        // Usually everything goes. Otherwise (broadcasts made during the flush round)
        // the rest is laid out again when next read, since every index the layout holds
        // shifts; what was compressed stays compressed.
        self.entries.drain(..count);
        for lane in &mut self.layout.lanes {
            lane.clear();
        }
        let layout = &mut self.layout;
        layout.skips.clear();
        for (index, entry) in self.entries.iter().enumerate() {
            if let Some(key) = entry.except {
                layout.skips.push((key, index));
            }
        }
        // In entry order, not yet by connection: sorted when next read.
        layout.skips_sorted = layout.skips.len() < 2;
    }
}

/// The broadcasts one connection has not taken yet: a view of the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Untaken<'a> {
    log: &'a BroadcastLog,
    /// The number of the first broadcast not taken.
    cursor: u64,
    lane: Lane,
    key: usize,
    /// The index of the first entry not taken.
    start: usize,
    /// This connection's skips from `start` on, in increasing entry order.
    skips: &'a [(usize, usize)],
    /// The lane's entries too large to be in its buffer, from `start` on.
    large: &'a [usize],
}

impl<'a> Untaken<'a> {
    /// The frames, in order, one by one: what to queue by reference.
    pub fn frames(&self) -> impl Iterator<Item = &'a SharedFrame> + use<'a> {
        self.log.frames_after(self.cursor, self.lane, self.key)
    }

    /// How many frames [`Self::frames`] gives, counted without walking them: the lane's
    /// frames from the cursor on, less the ones that skip this connection.
    pub fn count(&self) -> usize {
        let frames_before = &self.log.layout.lanes[self.lane.index()].frames_before;
        let at = |index: usize| frames_before.get(index).copied().unwrap_or(0);
        let all = at(frames_before.len().saturating_sub(1)) - at(self.start);
        let skipped = self
            .skips
            .iter()
            .filter(|&&(_, index)| at(index + 1) > at(index))
            .count();
        all - skipped
    }

    /// The bytes of [`Self::frames`], in as few slices as they lie in: the lane's buffer
    /// from the cursor on, cut around this connection's gaps (its skips, and the frames
    /// too large for the buffer, whose own bytes fill their place). No empty slice.
    pub fn slices(&self) -> Slices<'a> {
        let layout = &self.log.layout.lanes[self.lane.index()];
        Slices {
            view: *self,
            buffer: &layout.buffer,
            starts: &layout.starts,
            at: layout.starts.get(self.start).copied().unwrap_or(0),
            skips: self.skips,
            large: self.large,
            filler: None,
            done: false,
        }
    }
}

/// The iterator behind [`Untaken::slices`].
#[derive(Debug)]
pub(crate) struct Slices<'a> {
    view: Untaken<'a>,
    /// The lane's buffer, and where each entry starts in it.
    buffer: &'a [u8],
    starts: &'a [usize],
    /// How far into the buffer the slices have got.
    at: usize,
    /// The gaps still ahead: skips and large frames, each in increasing entry order.
    skips: &'a [(usize, usize)],
    large: &'a [usize],
    /// A large frame's bytes, to yield after the slice before it.
    filler: Option<&'a [u8]>,
    done: bool,
}

impl<'a> Iterator for Slices<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(bytes) = self.filler.take() {
                return Some(bytes);
            }
            if self.done {
                return None;
            }
            let next_skip = self.skips.first().map(|&(_, index)| index);
            let next_large = self.large.first().copied();
            let gap = match (next_skip, next_large) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let piece = match gap {
                None => {
                    self.done = true;
                    &self.buffer[self.at..]
                }
                Some(index) => {
                    let skipped = next_skip == Some(index);
                    if skipped {
                        self.skips = &self.skips[1..];
                    }
                    if next_large == Some(index) {
                        self.large = &self.large[1..];
                        let entry = &self.view.log.entries[index];
                        if !skipped {
                            self.filler = entry.frame_for(self.view.lane).map(|f| f.as_bytes());
                        }
                    }
                    let (gap_start, gap_end) = (self.starts[index], self.starts[index + 1]);
                    if gap_start == gap_end && self.filler.is_none() {
                        // A gap that takes no room in this buffer (a frame of the other
                        // transport): the run goes on through it.
                        continue;
                    }
                    let piece = &self.buffer[self.at..gap_start];
                    self.at = gap_end;
                    piece
                }
            };
            if !piece.is_empty() {
                return Some(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::Message;

    fn text(text: &str) -> SharedFrame {
        SharedFrame::new(Message::Text(text))
    }

    /// The threshold of the logs that mix compressed and plain frames.
    const DEFLATE_MIN: usize = 64;

    /// The bytes a connection of `lane` is sent for `frame`.
    fn as_sent(frame: &SharedFrame, lane: Lane) -> Vec<u8> {
        let deflated = (lane == Lane::Deflate)
            .then(|| frame.deflated_from(DEFLATE_MIN))
            .flatten();
        deflated.as_ref().unwrap_or(frame).as_bytes().to_vec()
    }

    /// The slices and the frames of a view, each concatenated, and the slice count.
    fn read(view: Untaken<'_>) -> (usize, Vec<u8>, Vec<u8>) {
        let mut count = 0;
        let mut sliced = Vec::new();
        for slice in view.slices() {
            assert!(!slice.is_empty(), "no empty slices");
            count += 1;
            sliced.extend_from_slice(slice);
        }
        let framed = view
            .frames()
            .flat_map(|f| f.as_bytes().iter().copied())
            .collect();
        (count, sliced, framed)
    }

    #[test]
    fn consecutive_frames_come_out_as_one_slice_and_a_skip_splits_it() {
        let mut log = BroadcastLog::default();
        let frames = ["a", "bb", "ccc", "dddd"].map(text);
        for (sender, frame) in frames.iter().enumerate() {
            log.publish(frame, Some(sender));
        }
        let all: Vec<u8> = frames.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
        assert_eq!(
            read(log.untaken(0, Lane::WebSocket, 99)),
            (1, all.clone(), all)
        );

        // Without the second frame (its sender's own): two slices.
        let (count, sliced, framed) = read(log.untaken(0, Lane::WebSocket, 1));
        assert_eq!(count, 2);
        let expected = [&frames[0], &frames[2], &frames[3]]
            .map(|f| f.as_bytes())
            .concat();
        assert_eq!((sliced, framed), (expected.clone(), expected));

        // From a cursor: only what comes after it.
        let (count, sliced, _) = read(log.untaken(2, Lane::WebSocket, 99));
        assert_eq!(
            (count, sliced),
            (1, [&frames[2], &frames[3]].map(|f| f.as_bytes()).concat())
        );
        assert_eq!(read(log.untaken(4, Lane::WebSocket, 99)).0, 0);
    }

    #[test]
    fn large_frames_fill_their_own_gap() {
        let big = "x".repeat(MAX_BATCHED_FRAME + 1);
        let mut log = BroadcastLog::default();
        let frames = [text("a"), text(&big), text("b")];
        for frame in &frames {
            log.publish(frame, None);
        }
        let (count, sliced, framed) = read(log.untaken(0, Lane::WebSocket, 0));
        assert_eq!(count, 3, "a, the big one from its own bytes, b");
        assert_eq!(sliced, framed);
        assert_eq!(sliced, frames.map(|f| f.as_bytes().to_vec()).concat());
    }

    #[test]
    fn each_transport_has_its_own_buffer() {
        let mut log = BroadcastLog::default();
        let frames = [
            text("ws one"),
            SharedFrame::line("line one"),
            text("ws two"),
        ];
        for frame in &frames {
            log.publish(frame, None);
        }
        let (count, sliced, _) = read(log.untaken(0, Lane::WebSocket, 0));
        assert_eq!(count, 1, "the line frame lies elsewhere");
        assert_eq!(
            sliced,
            [frames[0].as_bytes(), frames[2].as_bytes()].concat()
        );
        let (count, sliced, _) = read(log.untaken(0, Lane::Line, 0));
        assert_eq!((count, sliced), (1, b"line one\n".to_vec()));
    }

    #[test]
    fn the_deflate_lane_compresses_each_broadcast_once_and_only_when_read() {
        let chat = r#"{"type":"message","room":"lobby","from":"ada","text":"hello there"}"#;
        let long = chat.repeat(6);
        let big = chat.repeat(100); // too large to copy plain, small once compressed
        let mut log = BroadcastLog::new(DEFLATE_MIN);
        let frames = [
            text(&long),
            text("short"),
            text(&big),
            SharedFrame::line(&long),
        ];
        for frame in &frames {
            log.publish(frame, None);
        }
        // Plain readers first: nothing is compressed for them.
        let (_, plain, _) = read(log.untaken(0, Lane::WebSocket, 0));
        assert_eq!(
            plain,
            frames[..3]
                .iter()
                .flat_map(|f| f.as_bytes().to_vec())
                .collect::<Vec<u8>>()
        );
        assert!(log.entries.iter().all(|e| e.deflated.is_none()));

        // The first deflate reader compresses; every later one shares those bytes.
        let (count, sliced, framed) = read(log.untaken(0, Lane::Deflate, 1));
        let expected: Vec<u8> = frames[..3]
            .iter()
            .flat_map(|f| as_sent(f, Lane::Deflate))
            .collect();
        assert_eq!(
            (count, &sliced, &framed),
            (1, &expected, &expected),
            "one slice"
        );
        assert!(sliced.len() < plain.len() / 3);
        let once: Vec<_> = log.entries.iter().map(|e| e.deflated.clone()).collect();
        let shared = log
            .untaken_frames(0, Lane::Deflate, 2)
            .cloned()
            .collect::<Vec<_>>();
        assert!(std::sync::Arc::ptr_eq(
            &shared[0].bytes,
            &once[0].as_ref().unwrap().bytes
        ));
        assert_eq!(
            shared[1].as_bytes(),
            frames[1].as_bytes(),
            "short: sent plain"
        );
        assert!(std::sync::Arc::ptr_eq(
            &shared[2].bytes,
            &once[2].as_ref().unwrap().bytes
        ));
        assert_eq!(shared.len(), 3, "the line is not for WebSocket clients");
    }

    #[test]
    fn retiring_keeps_the_numbers_and_the_rest() {
        let mut log = BroadcastLog::default();
        for (sender, word) in ["old one", "old two", "new one", "new two"]
            .iter()
            .enumerate()
        {
            log.publish(&text(word), Some(sender));
        }
        assert_eq!(log.end(), 4);
        log.retire(2);
        assert_eq!(log.end(), 4, "numbers are for the life of the server");
        let (_, sliced, framed) = read(log.untaken(0, Lane::WebSocket, 3));
        assert_eq!(
            sliced,
            text("new one").as_bytes(),
            "a cursor before the base sees the rest"
        );
        assert_eq!(framed, sliced);
        log.publish(&text("newer"), Some(3));
        let (count, sliced, _) = read(log.untaken(2, Lane::WebSocket, 9));
        assert_eq!(count, 1, "laid out afresh, end to end");
        assert_eq!(
            sliced,
            ["new one", "new two", "newer"]
                .map(|w| text(w).as_bytes().to_vec())
                .concat()
        );
        log.retire(5);
        assert_eq!(read(log.untaken(5, Lane::WebSocket, 0)).0, 0);
        assert_eq!(log.end(), 5);
    }

    /// The slices and the frames of every view agree with each other and with the
    /// entries themselves, for every connection and cursor, over logs that mix
    /// transports, skipped senders, frames too large to copy, publication after a view
    /// was made, and retirement.
    #[test]
    fn slices_and_frames_always_agree() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let big = "y".repeat(MAX_BATCHED_FRAME + 10);
        let mut log = BroadcastLog::new(DEFLATE_MIN);
        let mut published: Vec<(SharedFrame, Option<usize>)> = Vec::new();
        for round in 0..150 {
            for i in 0..random(12) {
                let words = format!("frame {i} of round {round}");
                let frame = match random(10) {
                    0 => SharedFrame::line(&words),
                    1 if round % 4 == 0 => text(&big),
                    2 if round % 4 == 1 => SharedFrame::line(&big),
                    3 => text(&words.repeat(8)),
                    _ => text(&words),
                };
                let except = (random(3) > 0).then(|| random(4) as usize);
                log.publish(&frame, except);
                published.push((frame, except));
            }
            if random(4) == 0 {
                let taken = log.end() - random(3).min(log.end());
                log.retire(taken);
            }
            let base = log.end() - log.entries.len() as u64;
            for key in 0..5 {
                for cursor in base.saturating_sub(1)..=log.end() {
                    for lane in Lane::ALL {
                        let from = cursor.max(base) as usize;
                        let expected: Vec<u8> = published[from..]
                            .iter()
                            .filter(|(f, except)| {
                                *except != Some(key) && f.transport() == lane.transport()
                            })
                            .flat_map(|(f, _)| as_sent(f, lane))
                            .collect();
                        let view = log.untaken(cursor, lane, key);
                        assert_eq!(view.count(), view.frames().count());
                        let (_, sliced, framed) = read(view);
                        assert_eq!(sliced, expected, "round {round} key {key} cursor {cursor}");
                        assert_eq!(framed, expected, "round {round} key {key} cursor {cursor}");
                    }
                }
            }
        }
    }
}
