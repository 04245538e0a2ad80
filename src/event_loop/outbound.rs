//! Bytes waiting to be written to one connection.
//!
//! A connection's output is a queue of chunks of two kinds. Frames meant for this
//! connection alone (the 101 response, a Pong, an echo) are encoded straight into an owned
//! buffer at the tail of the queue, several small frames sharing one buffer. Frames meant
//! for many connections (a broadcast) are encoded once into a [`SharedFrame`], and each
//! recipient's queue holds a reference-counted pointer to the same bytes: queuing a
//! broadcast to a thousand connections copies no payload and allocates nothing per
//! recipient beyond a queue slot.
//!
//! The queue is drained by [`OutboundQueue::write_to`], which hands up to 512 chunks to
//! the kernel in one vectored write, so a connection that has fallen behind catches up
//! with few system calls. [`OutboundQueue::write_with_broadcasts`] does the same with the
//! broadcasts the connection has not taken appended, written from where they lie in the
//! [broadcast log](super::broadcast_log): the common case of a broadcast that the kernel
//! takes at once never touches the queue at all.

use super::broadcast_log::Untaken;
use super::shared_frame::SharedFrame;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

/// One piece of queued output.
#[derive(Debug)]
enum Chunk {
    /// Bytes for this connection only; small frames are appended to the same buffer.
    Owned(Vec<u8>),
    /// A frame shared with other connections.
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Shared(bytes) => bytes,
        }
    }
}

/// Owned frames are appended to the last owned chunk while it is smaller than this, so a
/// burst of small replies becomes one buffer (and one iovec).
const COALESCE_LIMIT: usize = 16 * 1024;

/// The most chunks handed to one `write_vectored` call. Linux accepts 1024 (IOV_MAX).
/// Small frames are the case to serve: a write costs microseconds of CPU on its own, so
/// the more frames one write carries, the less each delivery costs.
const MAX_IOVECS: usize = 512;

/// How far [`OutboundQueue::write_until_blocked`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Everything was written.
    Empty,
    /// The kernel's send buffer is full; wait for WRITABLE.
    Blocked,
    /// The per-turn budget ran out with the socket still writable.
    BudgetSpent,
}

/// A connection's unwritten output, in order.
#[derive(Debug, Default)]
pub struct OutboundQueue {
    chunks: VecDeque<Chunk>,
    /// How many bytes of the front chunk have already been written.
    front_written: usize,
    /// Unwritten bytes in the whole queue.
    len: usize,
}

impl OutboundQueue {
    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether everything has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a shared frame: one reference count, no copy.
    pub fn push_shared(&mut self, frame: &SharedFrame) {
        self.len += frame.len();
        self.chunks
            .push_back(Chunk::Shared(Arc::clone(&frame.bytes)));
    }

    /// Queues raw bytes (an HTTP response, say) by copying them.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.encode_with(|buffer| buffer.extend_from_slice(bytes));
    }

    /// Lets `encode` append bytes directly to the queue's tail buffer, so a frame is
    /// encoded in place instead of being built elsewhere and copied in.
    pub fn encode_with<R>(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let reuse_tail =
            matches!(self.chunks.back(), Some(Chunk::Owned(tail)) if tail.len() < COALESCE_LIMIT);
        if !reuse_tail {
            self.chunks.push_back(Chunk::Owned(Vec::new()));
        }
        let Some(Chunk::Owned(tail)) = self.chunks.back_mut() else {
            unreachable!("an owned chunk was just ensured at the back");
        };
        let before = tail.len();
        let result = encode(tail);
        let added = tail.len() - before;
        if tail.is_empty() {
            self.chunks.pop_back();
        }
        self.len += added;
        result
    }

    /// Writes until the queue is empty, `writer` would block, or `budget` bytes have been
    /// written, and says which. Errors other than `WouldBlock` and `Interrupted` are
    /// returned; a writer that takes nothing is an error (`WriteZero`).
    pub fn write_until_blocked(
        &mut self,
        writer: &mut impl Write,
        budget: usize,
    ) -> io::Result<Drain> {
        let mut written = 0;
        while !self.is_empty() {
            if written >= budget {
                return Ok(Drain::BudgetSpent);
            }
            match self.write_to(writer) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drain::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Drain::Empty)
    }

    /// Like [`Self::write_until_blocked`], with the broadcasts the connection has not
    /// taken (`untaken`) after the queue: the first write offers the queue and the
    /// broadcasts together, straight from where they lie in the log, so that frames the
    /// kernel takes whole are never queued at all. Whatever of them it does not take is
    /// queued, by reference and in order, and the rest goes as usual. Either way, the
    /// connection has taken them all when this returns `Ok`.
    pub fn write_with_broadcasts(
        &mut self,
        writer: &mut impl Write,
        untaken: Untaken<'_>,
        budget: usize,
    ) -> io::Result<Drain> {
        let mut broadcast_slices = untaken.slices().peekable();
        if broadcast_slices.peek().is_none() {
            // None for this connection (every frame is none, or skips it, or is for the
            // other transport): a frame has at least one byte, so no slice, no frame.
            return self.write_until_blocked(writer, budget);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = self.fill(&mut slices);
        let mut offered = 0;
        for slot in &mut slices[count..] {
            let Some(bytes) = broadcast_slices.next() else {
                break;
            };
            *slot = IoSlice::new(bytes);
            offered += bytes.len();
            count += 1;
        }
        let offered_all = broadcast_slices.peek().is_none();
        let result = loop {
            match writer.write_vectored(&slices[..count]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let (mut written, blocked) = match result {
            Ok(n) => (n, false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, true),
            Err(e) => return Err(e),
        };
        let budget_left = budget.saturating_sub(written);
        let from_queue = written.min(self.len);
        self.consume(from_queue);
        written -= from_queue;
        if offered_all && written == offered {
            // The common case: the kernel took everything. Nothing to queue, and no need
            // to walk the frames.
            return Ok(if self.is_empty() {
                Drain::Empty
            } else {
                self.write_until_blocked(writer, budget_left)?
            });
        }
        for frame in untaken.frames() {
            if written >= frame.len() {
                written -= frame.len();
                continue;
            }
            // The queue is empty whenever part of the broadcasts was written, so a frame
            // cut off by the write becomes its front, with its written part marked.
            let front = self.is_empty();
            self.push_shared(frame);
            if front && written > 0 {
                self.front_written = written;
                self.len -= written;
                written = 0;
            }
        }
        if blocked {
            return Ok(Drain::Blocked);
        }
        self.write_until_blocked(writer, budget_left)
    }

    /// Drops shared frames (broadcasts), newest first, until the queue holds at most
    /// `limit` bytes or none is left to drop. The front chunk, which may be partly
    /// written, and bytes owed to this connection alone (a Pong, a Close, a message sent
    /// to it) are kept; the frames left keep their order. Returns how many frames were
    /// dropped.
    pub fn shed_shared_from_back(&mut self, limit: usize) -> usize {
        let mut dropped = 0;
        let mut index = self.chunks.len();
        while self.len > limit && index > 1 {
            index -= 1;
            if let Chunk::Shared(bytes) = &self.chunks[index] {
                self.len -= bytes.len();
                self.chunks.remove(index);
                dropped += 1;
            }
        }
        dropped
    }

    /// Points `slices` at the queue's chunks, as many as fit, and returns how many.
    fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            let bytes = chunk.bytes();
            *slot = IoSlice::new(if count == 0 {
                &bytes[self.front_written..]
            } else {
                bytes
            });
            count += 1;
        }
        count
    }

    /// Writes as much of the queue as `writer` takes in one vectored write, and drops
    /// what was written. Returns the number of bytes written; errors, `WouldBlock`
    /// included, are the writer's.
    pub fn write_to(&mut self, writer: &mut impl Write) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = self.fill(&mut slices);
        let written = writer.write_vectored(&slices[..count])?;
        self.consume(written);
        Ok(written)
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_written;
            if n < left {
                self.front_written += n;
                return;
            }
            n -= left;
            self.front_written = 0;
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() && self.chunks.capacity() > MAX_IOVECS {
            // A burst is over: give back the slots rather than hold them while idle.
            self.chunks = VecDeque::new();
        }
    }
}

/// A writer that counts what reaches the one it wraps: the calls that took bytes (each a
/// system call on a socket) and the bytes taken. For the loop's metrics.
pub(crate) struct Counted<'a, W> {
    inner: &'a mut W,
    /// `write` and `write_vectored` calls that took bytes.
    pub calls: u64,
    /// Bytes the inner writer took.
    pub bytes: u64,
}

impl<'a, W: Write> Counted<'a, W> {
    /// Counts what goes to `inner`.
    pub fn new(inner: &'a mut W) -> Counted<'a, W> {
        Counted {
            inner,
            calls: 0,
            bytes: 0,
        }
    }

    fn count(&mut self, result: io::Result<usize>) -> io::Result<usize> {
        // Only a call that took bytes is a write: one the kernel turned away
        // (`WouldBlock`) carried no frames, and counting it would make frames per write
        // look lower than what each write really carried.
        if let Ok(n) = result
            && n > 0
        {
            self.calls += 1;
            self.bytes += n as u64;
        }
        result
    }
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        self.count(result)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let result = self.inner.write_vectored(bufs);
        self.count(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::broadcast_log::BroadcastLog;
    use crate::event_loop::shared_frame::Lane;
    use crate::ws::Message;

    #[test]
    fn only_calls_that_took_bytes_count_as_writes() {
        /// Takes 5 bytes, then nothing: `WouldBlock`.
        struct Once(bool);
        impl Write for Once {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(buf.len().min(5))
                }
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut socket = Once(false);
        let mut counted = Counted::new(&mut socket);
        assert_eq!(counted.write(b"hello, world").unwrap(), 5);
        assert!(counted.write(b", world").is_err());
        assert!(counted.write(b", world").is_err());
        assert_eq!((counted.calls, counted.bytes), (1, 5));
    }

    /// A writer that takes at most `limit` bytes per call, like a nearly full socket.
    struct Trickle {
        written: Vec<u8>,
        limit: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut total = 0;
            for buf in bufs {
                let n = self.write(&buf[..buf.len().min(self.limit - total)])?;
                total += n;
                if total == self.limit {
                    break;
                }
            }
            Ok(total)
        }
    }

    #[test]
    fn writes_everything_in_order_whatever_the_write_sizes() {
        let shared = SharedFrame::new(Message::Text("shared"));
        for limit in [1, 2, 3, 7, 100, 100_000] {
            let mut queue = OutboundQueue::default();
            let mut expected = Vec::new();
            for i in 0..200u32 {
                if i % 3 == 0 {
                    queue.push_shared(&shared);
                    expected.extend_from_slice(shared.as_bytes());
                } else {
                    let bytes = i.to_be_bytes();
                    queue.push_bytes(&bytes);
                    expected.extend_from_slice(&bytes);
                }
            }
            assert_eq!(queue.len(), expected.len());
            let mut writer = Trickle {
                written: Vec::new(),
                limit,
            };
            while !queue.is_empty() {
                queue.write_to(&mut writer).unwrap();
            }
            assert_eq!(writer.written, expected, "limit {limit}");
        }
    }

    /// A log of `frames`, published by connection 1, and the view of connection 0.
    fn log_of(frames: &[SharedFrame]) -> BroadcastLog {
        let mut log = BroadcastLog::default();
        for frame in frames {
            log.publish(frame, Some(1));
        }
        log
    }

    #[test]
    fn broadcasts_follow_the_queue_and_what_is_not_written_is_queued() {
        let frames: Vec<SharedFrame> = (0..300)
            .map(|i| SharedFrame::new(Message::Text(&"p".repeat(i % 40 + i / 299 * 5000))))
            .collect();
        let mut log = log_of(&frames);
        for limit in [1, 5, 64, 1000, 100_000] {
            for queued in [0, 1, 7] {
                let mut queue = OutboundQueue::default();
                let mut expected = Vec::new();
                for i in 0..queued {
                    let bytes = [i as u8; 3];
                    queue.push_bytes(&bytes);
                    expected.extend_from_slice(&bytes);
                }
                for frame in &frames {
                    expected.extend_from_slice(frame.as_bytes());
                }
                let mut writer = Trickle {
                    written: Vec::new(),
                    limit,
                };
                // One call with the broadcasts, then plain writes for the rest.
                let untaken = log.untaken(0, Lane::WebSocket, 0);
                let drain = queue
                    .write_with_broadcasts(&mut writer, untaken, 1)
                    .unwrap();
                assert_eq!(
                    writer.written.len() + queue.len(),
                    expected.len(),
                    "limit {limit}, queued {queued}: bytes went missing"
                );
                assert_eq!(drain == Drain::Empty, queue.is_empty());
                while !queue.is_empty() {
                    queue.write_to(&mut writer).unwrap();
                }
                assert_eq!(writer.written, expected, "limit {limit}, queued {queued}");
            }
        }
    }

    #[test]
    fn broadcasts_the_kernel_refuses_are_queued_whole() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let frame = SharedFrame::new(Message::Text("later"));
        let mut log = log_of(&[frame.clone(), frame.clone()]);
        let mut queue = OutboundQueue::default();
        let untaken = log.untaken(0, Lane::WebSocket, 0);
        let drain = queue
            .write_with_broadcasts(&mut Full, untaken, usize::MAX)
            .unwrap();
        assert_eq!(drain, Drain::Blocked);
        assert_eq!(queue.len(), 2 * frame.len());
        assert_eq!(Arc::strong_count(&frame.bytes), 5, "queued by reference");
    }

    #[test]
    fn a_connection_skipped_by_every_broadcast_writes_nothing() {
        let frame = SharedFrame::new(Message::Text("mine"));
        let mut log = log_of(&[frame]);
        let mut queue = OutboundQueue::default();
        let mut sink = Vec::new();
        let untaken = log.untaken(0, Lane::WebSocket, 1);
        let drain = queue
            .write_with_broadcasts(&mut sink, untaken, usize::MAX)
            .unwrap();
        assert_eq!((drain, sink.len()), (Drain::Empty, 0));
    }

    #[test]
    fn shedding_drops_broadcasts_behind_a_pong_and_keeps_the_pong() {
        let broadcast = SharedFrame::new(Message::Text("everyone"));
        let mut queue = OutboundQueue::default();
        for _ in 0..3 {
            queue.push_shared(&broadcast);
        }
        queue.push_bytes(b"pong");
        queue.push_shared(&broadcast);
        queue.push_bytes(b"pong");
        // The front frame may be partly written: it stays; the other three go.
        assert_eq!(queue.shed_shared_from_back(0), 3);
        assert_eq!(queue.len(), broadcast.len() + 8);
        let mut sink = Vec::new();
        queue.write_to(&mut sink).unwrap();
        assert_eq!(sink, [broadcast.as_bytes(), b"pong", b"pong"].concat());
        // Shedding stops as soon as the queue is within the limit.
        for _ in 0..4 {
            queue.push_shared(&broadcast);
        }
        assert_eq!(queue.shed_shared_from_back(2 * broadcast.len()), 2);
    }

    #[test]
    fn small_owned_frames_share_a_buffer() {
        let mut queue = OutboundQueue::default();
        for _ in 0..100 {
            queue.push_bytes(b"pong");
        }
        assert_eq!(queue.chunks.len(), 1);
        queue.push_bytes(&vec![0; COALESCE_LIMIT]);
        queue.push_bytes(b"next");
        assert_eq!(queue.chunks.len(), 2);
    }

    #[test]
    fn a_shared_frame_is_not_copied() {
        let frame = SharedFrame::new(Message::Binary(&[1, 2, 3]));
        let mut a = OutboundQueue::default();
        let mut b = OutboundQueue::default();
        a.push_shared(&frame);
        b.push_shared(&frame);
        assert_eq!(Arc::strong_count(&frame.bytes), 3);
        let mut sink = Vec::new();
        a.write_to(&mut sink).unwrap();
        assert_eq!(Arc::strong_count(&frame.bytes), 2);
    }

    #[test]
    fn an_encoder_that_writes_nothing_leaves_no_chunk() {
        let mut queue = OutboundQueue::default();
        let result: Result<(), ()> = queue.encode_with(|_| Err(()));
        assert!(result.is_err());
        assert!(queue.is_empty() && queue.chunks.is_empty());
    }
}
