//! This turn's broadcasts laid end to end, so that each recipient's write hands the
//! kernel a few long slices instead of one short slice per frame.
//!
//! A vectored write of many small slices costs the kernel a copy call per slice. With
//! 64-byte chat messages, a recipient that has 80 frames to write this turn made the
//! kernel copy 80 times 66 bytes: a profile of the broadcast benchmark showed a quarter
//! of the server's CPU time in that copy. Copying the turn's frames once into one buffer
//! (per transport) lets every recipient write them as one slice, or two around its own
//! message, which it does not get back.

use super::handler::Transport;
use super::outbound::SharedFrame;
use std::ops::Range;

/// Frames larger than this are not copied into the batch: for them the kernel's
/// per-slice cost is small next to the bytes, and the copy would not pay for itself.
const MAX_BATCHED_FRAME: usize = 4096;

/// The turn's published frames in one buffer per transport, built by [`TurnBatch::seal`]
/// at the end of the turn, before the flush.
#[derive(Debug, Default)]
pub(crate) struct TurnBatch {
    /// The frames of each transport end to end: WebSocket, line.
    buffers: [Vec<u8>; 2],
    /// For each published frame (by its index in the list), where it lies in its
    /// transport's buffer; `None` for a frame too large to copy. Frames published since
    /// the last seal have no entry yet.
    spans: Vec<Option<Range<usize>>>,
    /// For each transport, the length of its buffer before frame `i` of the published
    /// list, for every `i` up to and including the list's length: where a connection's
    /// unseen frames begin in the buffer, found without walking the list.
    starts: [Vec<usize>; 2],
    /// The published frames that skip a connection, as (connection key, index), sorted:
    /// the only gaps in what a connection is sent.
    skips: Vec<(usize, usize)>,
    /// Whether every frame of the list went into the buffers, so that the fast path of
    /// [`TurnBatch::unseen_bytes`] applies.
    complete: bool,
}

fn slot(transport: Transport) -> usize {
    match transport {
        Transport::WebSocket => 0,
        Transport::Line => 1,
    }
}

impl TurnBatch {
    /// Copies the small frames of `published` that are not in the batch yet into the
    /// buffers: all of them at the turn's first call, then those published since (a
    /// flush round takes in new messages as it goes). The buffers keep their capacity
    /// from turn to turn.
    pub fn seal(&mut self, published: &[(SharedFrame, Option<usize>)]) {
        let from = self.spans.len();
        if from == 0 {
            for buffer in &mut self.buffers {
                buffer.clear();
            }
            for starts in &mut self.starts {
                starts.clear();
            }
            self.skips.clear();
            self.complete = true;
        } else {
            // Each list of starts ends with its buffer's length: the next frame's start.
            for starts in &mut self.starts {
                starts.pop();
            }
        }
        let mut skips_added = false;
        for (index, (frame, except)) in published.iter().enumerate().skip(from) {
            for (starts, buffer) in self.starts.iter_mut().zip(&self.buffers) {
                starts.push(buffer.len());
            }
            if let Some(key) = except {
                self.skips.push((*key, index));
                skips_added = true;
            }
            let span = (frame.len() <= MAX_BATCHED_FRAME).then(|| {
                let buffer = &mut self.buffers[slot(frame.transport())];
                let start = buffer.len();
                buffer.extend_from_slice(frame.as_bytes());
                start..buffer.len()
            });
            self.complete &= span.is_some();
            self.spans.push(span);
        }
        for (starts, buffer) in self.starts.iter_mut().zip(&self.buffers) {
            starts.push(buffer.len());
        }
        if skips_added {
            self.skips.sort_unstable();
        }
    }

    /// The bytes connection `key` has to write of the turn's broadcasts: the frames of
    /// `transport` from index `start` of the `published` list on, but those that skip
    /// it, in as few slices as they lie in. In the common case (every frame batched,
    /// nothing published since sealing) this costs a binary search, whatever the number
    /// of frames: a gap only where a frame skips `key`. Otherwise it walks the list.
    pub fn unseen_bytes<'a>(
        &'a self,
        published: &'a [(SharedFrame, Option<usize>)],
        start: usize,
        transport: Transport,
        key: usize,
    ) -> impl Iterator<Item = &'a [u8]> {
        let fast = self.complete && published.len() + 1 == self.starts[0].len();
        let t = slot(transport);
        let (skips, walk) = if fast {
            let first = self.skips.partition_point(|&(k, i)| (k, i) < (key, start));
            let last = self.skips.partition_point(|&(k, _)| k <= key);
            (&self.skips[first..last], None)
        } else {
            let frames = published
                .iter()
                .enumerate()
                .skip(start)
                .filter(move |(_, (frame, except))| {
                    *except != Some(key) && frame.transport() == transport
                })
                .map(|(index, (frame, _))| (index, frame));
            (&[][..], Some(self.spans(frames)))
        };
        let gaps = skips
            .iter()
            .map(|&(_, index)| index)
            .filter(move |&index| published[index].0.transport() == transport);
        let contiguous = fast.then(|| Gaps {
            buffer: &self.buffers[t],
            starts: &self.starts[t],
            at: self.starts[t].get(start).copied().unwrap_or(0),
            gaps,
            done: false,
        });
        contiguous
            .into_iter()
            .flatten()
            .chain(walk.into_iter().flatten())
    }

    /// Forgets the turn's frames at the end of the flush round. The front of the
    /// published list is dropped then, which shifts every index the batch holds, so the
    /// next seal must start over from the list as it is. Also gives back memory after a
    /// turn with unusually many broadcast bytes.
    pub fn finish_turn(&mut self) {
        self.spans.clear();
        self.skips.clear();
        self.complete = false;
        for (buffer, starts) in self.buffers.iter_mut().zip(&mut self.starts) {
            starts.clear();
            buffer.clear();
            if buffer.capacity() > 1 << 20 {
                *buffer = Vec::new();
            }
        }
    }

    /// The bytes of `frames` (the frames connection `key` has not seen: see
    /// [`unseen_frames`](super::connection::unseen_frames)) as the fewest slices: runs
    /// of frames that lie next to each other in the batch come out as one slice.
    /// `frames` yields each frame with its index in the published list.
    pub fn spans<'a>(
        &'a self,
        frames: impl Iterator<Item = (usize, &'a SharedFrame)>,
    ) -> impl Iterator<Item = &'a [u8]> {
        Spans {
            batch: self,
            frames,
            run: None,
            next: None,
        }
    }
}

/// The fast path of [`TurnBatch::unseen_bytes`]: one transport's buffer from `at` to its
/// end, cut around the frames at the indices `gaps` yields (in increasing order).
struct Gaps<'a, G> {
    buffer: &'a [u8],
    starts: &'a [usize],
    at: usize,
    gaps: G,
    done: bool,
}

impl<'a, G: Iterator<Item = usize>> Iterator for Gaps<'a, G> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.done {
            let (end, resume) = match self.gaps.next() {
                Some(index) => (self.starts[index], self.starts[index + 1]),
                None => {
                    self.done = true;
                    (self.buffer.len(), self.buffer.len())
                }
            };
            let piece = &self.buffer[self.at..end];
            self.at = resume;
            if !piece.is_empty() {
                return Some(piece);
            }
        }
        None
    }
}

/// The iterator behind [`TurnBatch::spans`].
struct Spans<'a, I> {
    batch: &'a TurnBatch,
    frames: I,
    /// The run of batched frames being extended: its transport and range.
    run: Option<(usize, Range<usize>)>,
    /// A slice to yield after the run: a frame that is not in the batch.
    next: Option<&'a [u8]>,
}

impl<'a, I: Iterator<Item = (usize, &'a SharedFrame)>> Iterator for Spans<'a, I> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(slice) = self.next.take() {
            return Some(slice);
        }
        for (index, frame) in self.frames.by_ref() {
            let transport = slot(frame.transport());
            match self.batch.spans.get(index).cloned().flatten() {
                Some(span) => match &mut self.run {
                    Some((t, run)) if *t == transport && run.end == span.start => {
                        run.end = span.end;
                    }
                    run => {
                        if let Some(done) = run.replace((transport, span)) {
                            return Some(self.slice(done));
                        }
                    }
                },
                None => {
                    let own = frame.as_bytes();
                    return match self.run.take() {
                        Some(done) => {
                            self.next = Some(own);
                            Some(self.slice(done))
                        }
                        None => Some(own),
                    };
                }
            }
        }
        self.run.take().map(|done| self.slice(done))
    }
}

impl<'a, I> Spans<'a, I> {
    fn slice(&self, (transport, range): (usize, Range<usize>)) -> &'a [u8] {
        &self.batch.buffers[transport][range]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::Message;

    fn frames(texts: &[&str]) -> Vec<(SharedFrame, Option<usize>)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| (SharedFrame::new(Message::Text(text)), Some(i)))
            .collect()
    }

    fn concat<'a>(slices: impl Iterator<Item = &'a [u8]>) -> (usize, Vec<u8>) {
        let mut count = 0;
        let mut all = Vec::new();
        for slice in slices {
            count += 1;
            all.extend_from_slice(slice);
        }
        (count, all)
    }

    #[test]
    fn consecutive_frames_come_out_as_one_slice_and_a_gap_splits_it() {
        let published = frames(&["a", "bb", "ccc", "dddd"]);
        let mut batch = TurnBatch::default();
        batch.seal(&published);
        let every = published.iter().map(|(f, _)| f).enumerate();
        let expected: Vec<u8> = published
            .iter()
            .flat_map(|(f, _)| f.as_bytes().to_vec())
            .collect();
        assert_eq!(concat(batch.spans(every)), (1, expected));

        // Without the second frame (its sender's own): two slices.
        let others = published
            .iter()
            .map(|(f, _)| f)
            .enumerate()
            .filter(|(i, _)| *i != 1);
        let (count, bytes) = concat(batch.spans(others));
        assert_eq!(count, 2);
        let mut expected = published[0].0.as_bytes().to_vec();
        expected.extend_from_slice(published[2].0.as_bytes());
        expected.extend_from_slice(published[3].0.as_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn large_frames_and_frames_published_after_sealing_are_their_own_slices() {
        let big = "x".repeat(MAX_BATCHED_FRAME + 1);
        let mut published = frames(&["a", &big, "b"]);
        let mut batch = TurnBatch::default();
        batch.seal(&published);
        published.extend(frames(&["late"]));
        let every = published.iter().map(|(f, _)| f).enumerate();
        let (count, bytes) = concat(batch.spans(every));
        assert_eq!(count, 4, "a, the big one, b, the late one");
        let expected: Vec<u8> = published
            .iter()
            .flat_map(|(f, _)| f.as_bytes().to_vec())
            .collect();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn each_transport_has_its_own_buffer() {
        let published = vec![
            (SharedFrame::new(Message::Text("ws one")), None),
            (SharedFrame::line("line one"), None),
            (SharedFrame::new(Message::Text("ws two")), None),
        ];
        let mut batch = TurnBatch::default();
        batch.seal(&published);
        let websocket = published
            .iter()
            .map(|(f, _)| f)
            .enumerate()
            .filter(|(_, f)| f.transport() == Transport::WebSocket);
        let (count, bytes) = concat(batch.spans(websocket));
        assert_eq!(count, 1, "the line frame lies elsewhere");
        let mut expected = published[0].0.as_bytes().to_vec();
        expected.extend_from_slice(published[2].0.as_bytes());
        assert_eq!(bytes, expected);
        let line = published
            .iter()
            .map(|(f, _)| f)
            .enumerate()
            .filter(|(_, f)| f.transport() == Transport::Line);
        assert_eq!(concat(batch.spans(line)), (1, b"line one\n".to_vec()));
    }

    /// The fast path and the walk agree with the frames themselves, for every
    /// connection and starting point, over lists mixing transports, skipped senders
    /// and frames too large to batch.
    #[test]
    fn unseen_bytes_are_the_unseen_frames_whatever_the_list() {
        use crate::event_loop::connection::unseen_frames;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let big = "y".repeat(MAX_BATCHED_FRAME + 10);
        for round in 0..200 {
            let mut published = Vec::new();
            for i in 0..random(12) {
                let text = format!("frame {i} of round {round}");
                let frame = match random(10) {
                    0 => SharedFrame::line(&text),
                    1 if round % 4 == 0 => SharedFrame::new(Message::Text(&big)),
                    _ => SharedFrame::new(Message::Text(&text)),
                };
                let except = (random(3) > 0).then(|| random(4) as usize);
                published.push((frame, except));
            }
            let mut batch = TurnBatch::default();
            if round % 3 == 0 {
                // Sealed in two steps, as when a flush round takes in new messages.
                batch.seal(&published[..published.len() / 2]);
            }
            batch.seal(&published);
            if round % 5 == 0 {
                // Published during the flush, after sealing.
                published.push((SharedFrame::new(Message::Text("late")), Some(1)));
            }
            for key in 0..4 {
                for start in 0..=published.len() {
                    for transport in [Transport::WebSocket, Transport::Line] {
                        let expected: Vec<u8> =
                            unseen_frames(&published, Some((start, transport)), key)
                                .flat_map(|(_, frame)| frame.as_bytes().to_vec())
                                .collect();
                        let got: Vec<u8> = batch
                            .unseen_bytes(&published, start, transport, key)
                            .flat_map(|bytes| {
                                assert!(!bytes.is_empty(), "no empty slices");
                                bytes.to_vec()
                            })
                            .collect();
                        assert_eq!(got, expected, "round {round} key {key} start {start}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_finished_turn_leaves_nothing_stale() {
        let published = frames(&["old one", "old two"]);
        let mut batch = TurnBatch::default();
        batch.seal(&published);
        batch.finish_turn();
        // The next turn publishes before any seal: its bytes come from its own frames.
        let next = frames(&["new"]);
        let got: Vec<u8> = batch
            .unseen_bytes(&next, 0, Transport::WebSocket, 99)
            .flat_map(|bytes| bytes.to_vec())
            .collect();
        assert_eq!(got, next[0].0.as_bytes());
    }

    #[test]
    fn sealing_again_adds_what_was_published_since() {
        let mut published = frames(&["one", "two"]);
        let mut batch = TurnBatch::default();
        batch.seal(&published);
        published.extend(frames(&["three", "four"]));
        published[3].1 = Some(7);
        batch.seal(&published);
        let all: Vec<u8> = published
            .iter()
            .filter(|(_, except)| *except != Some(7))
            .flat_map(|(f, _)| f.as_bytes().to_vec())
            .collect();
        let slices: Vec<&[u8]> = batch
            .unseen_bytes(&published, 0, Transport::WebSocket, 7)
            .collect();
        assert_eq!(
            slices.len(),
            1,
            "one run: the frame skipping 7 was the last"
        );
        assert_eq!(slices.concat(), all);
    }
}
