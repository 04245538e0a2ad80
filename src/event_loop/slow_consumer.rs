//! Slow consumers: what happens when a client reads slower than its traffic arrives.
//!
//! Every connection's output queue is bounded ([`ServerConfig::max_outbound_bytes`]), so
//! that a client that does not read costs the server a bounded amount of memory and
//! delays no one else. This file is the policy, as in Redis's client output-buffer
//! limits; the connection set ([`Connections`](super::connections::Connections)) applies
//! its verdicts: it counts, logs and closes.
//!
//! Output is normally written at the end of the loop turn, so a queue also holds what was
//! produced this turn and not yet offered to the kernel. Before calling a client slow,
//! then, its queue is offered to the kernel at once (the one write that happens during a
//! handler call); if the kernel takes it all, any one message fits, however large. Only if
//! the queue is still over the limit is the client really behind. Then, by
//! [`SlowConsumer`]:
//!
//! - `Close` (the default): the client is closed with 1008, so that it costs no more.
//! - `Drop`: the message is dropped and counted, and the client stays. A control frame (a
//!   Pong the protocol owes, or the keepalive's Ping) is never dropped: queued broadcasts
//!   are shed from the back to make room for it, and only if that is not enough (the
//!   queue is full of the client's own Pongs: it pings and never reads) is it closed.
//!
//! [`ServerConfig::max_outbound_bytes`]: super::ServerConfig::max_outbound_bytes

use super::config::SlowConsumer;
use super::outbound::OutboundQueue;
use super::stats::Stats;
use std::io::Write;

/// What asks for room in a connection's output queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// A message: under [`SlowConsumer::Drop`] it may be dropped.
    Data,
    /// A Ping or Pong: never dropped; broadcasts make way for it.
    Control,
}

/// The limit on one connection's queued output, and what to do past it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputLimit {
    /// The most bytes one connection may have queued.
    pub max_bytes: usize,
    /// What to do with a connection over `max_bytes`.
    pub policy: SlowConsumer,
}

/// What to do about a connection's full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// There is room (now): queue it.
    Fits,
    /// Under [`SlowConsumer::Drop`]: the message is dropped (and counted).
    Dropped,
    /// The client is too slow: close it with 1008 (counted).
    TooSlow,
}

impl OutputLimit {
    /// Whether `len` more bytes may be queued behind `out`, whose socket is `socket`:
    /// offering the queue to the kernel first, then shedding broadcasts for a control
    /// frame under the drop policy (see the module documentation). Counts what it drops
    /// and the clients it finds too slow in `stats`.
    pub fn make_room(
        &self,
        out: &mut OutboundQueue,
        socket: &mut impl Write,
        len: usize,
        room: Room,
        stats: &mut Stats,
    ) -> Verdict {
        if out.len() + len <= self.max_bytes {
            return Verdict::Fits;
        }
        // A write error is left for the end-of-turn flush, which removes the connection.
        let _ = out.write_until_blocked(socket, usize::MAX);
        if out.is_empty() || out.len() + len <= self.max_bytes {
            return Verdict::Fits;
        }
        if self.policy == SlowConsumer::Drop {
            if room == Room::Data {
                stats.dropped_messages += 1;
                return Verdict::Dropped;
            }
            let limit = self.max_bytes.saturating_sub(len);
            stats.dropped_messages += out.shed_shared_from_back(limit) as u64;
            if out.len() + len <= self.max_bytes {
                return Verdict::Fits;
            }
        }
        stats.slow_closed += 1;
        Verdict::TooSlow
    }

    /// After the end-of-turn write: broadcasts the connection could not take may have put
    /// its queue over the limit (they are queued without asking for room, since a
    /// broadcast is published once for everyone). Under the drop policy the newest are
    /// shed; otherwise the verdict is to close.
    pub fn after_flush(&self, out: &mut OutboundQueue, stats: &mut Stats) -> Verdict {
        if out.len() <= self.max_bytes {
            return Verdict::Fits;
        }
        match self.policy {
            SlowConsumer::Drop => {
                stats.dropped_messages += out.shed_shared_from_back(self.max_bytes) as u64;
                Verdict::Fits
            }
            SlowConsumer::Close => {
                stats.slow_closed += 1;
                Verdict::TooSlow
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::shared_frame::SharedFrame;
    use crate::ws::Message;
    use std::io;

    /// A socket whose send buffer is full.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn limit(policy: SlowConsumer) -> OutputLimit {
        OutputLimit {
            max_bytes: 100,
            policy,
        }
    }

    fn queue_of_broadcasts(count: usize) -> OutboundQueue {
        let frame = SharedFrame::new(Message::Text(&"b".repeat(38))); // 40 bytes
        let mut out = OutboundQueue::default();
        for _ in 0..count {
            out.push_shared(&frame);
        }
        out
    }

    #[test]
    fn a_queue_the_kernel_takes_has_room_for_anything() {
        let mut out = queue_of_broadcasts(2);
        let mut stats = Stats::default();
        let mut socket = Vec::new();
        let verdict = limit(SlowConsumer::Close).make_room(
            &mut out,
            &mut socket,
            1_000_000,
            Room::Data,
            &mut stats,
        );
        assert_eq!(verdict, Verdict::Fits);
        assert_eq!(
            (out.len(), socket.len()),
            (0, 80),
            "offered to the kernel first"
        );
    }

    #[test]
    fn a_full_queue_closes_or_drops_by_policy() {
        let mut stats = Stats::default();
        let close = limit(SlowConsumer::Close);
        let mut out = queue_of_broadcasts(2);
        let verdict = close.make_room(&mut out, &mut Full, 40, Room::Data, &mut stats);
        assert_eq!((verdict, stats.slow_closed), (Verdict::TooSlow, 1));

        let drop = limit(SlowConsumer::Drop);
        let verdict = drop.make_room(&mut out, &mut Full, 40, Room::Data, &mut stats);
        assert_eq!((verdict, stats.dropped_messages), (Verdict::Dropped, 1));
        assert_eq!(out.len(), 80, "nothing shed for a message");
    }

    #[test]
    fn a_control_frame_sheds_broadcasts_and_only_its_own_kind_closes() {
        let mut stats = Stats::default();
        let drop = limit(SlowConsumer::Drop);
        let mut out = queue_of_broadcasts(2);
        let verdict = drop.make_room(&mut out, &mut Full, 40, Room::Control, &mut stats);
        assert_eq!(verdict, Verdict::Fits);
        assert_eq!((out.len(), stats.dropped_messages), (40, 1));

        // A queue full of bytes owed to this client alone (its Pongs) sheds nothing.
        let mut out = OutboundQueue::default();
        out.push_bytes(&[0; 90]);
        let verdict = drop.make_room(&mut out, &mut Full, 40, Room::Control, &mut stats);
        assert_eq!((verdict, stats.slow_closed), (Verdict::TooSlow, 1));
    }

    #[test]
    fn after_the_flush_the_newest_broadcasts_are_shed_or_the_client_closed() {
        let mut stats = Stats::default();
        let mut out = queue_of_broadcasts(4);
        assert_eq!(
            limit(SlowConsumer::Drop).after_flush(&mut out, &mut stats),
            Verdict::Fits
        );
        assert_eq!((out.len(), stats.dropped_messages), (80, 2));
        let mut out = queue_of_broadcasts(4);
        assert_eq!(
            limit(SlowConsumer::Close).after_flush(&mut out, &mut stats),
            Verdict::TooSlow
        );
    }
}
