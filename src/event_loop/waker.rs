//! Waking a loop from another thread: how loops that share nothing but messages tell
//! each other that a message is waiting.
//!
//! A [`Waker`] wraps the loop's `mio::Waker` (an eventfd registered with its poll). Its
//! handler hears [`Handler::on_wake`](super::Handler::on_wake) and takes what waits for
//! it from its channels. Wake-ups coalesce: a flag says a wake-up is already on its way,
//! and while it is set, `wake` makes no system call. The loop clears the flag *before*
//! the handler drains its channels, so a message sent after the drain began finds the
//! flag clear and wakes the loop again: no message is left waiting unheard.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// The token of the loop's waker.
pub(crate) const WAKE: mio::Token = mio::Token(usize::MAX - 4);

/// Wakes one loop. Cheap to clone; may be sent to and used from any thread.
#[derive(Clone)]
pub struct Waker {
    inner: Arc<Inner>,
}

struct Inner {
    waker: mio::Waker,
    /// A wake-up is on its way: the loop has not yet heard it.
    pending: AtomicBool,
}

impl Waker {
    /// A waker for the poll behind `registry`, whose events come under `token`.
    pub(crate) fn new(registry: &mio::Registry, token: mio::Token) -> io::Result<Waker> {
        Ok(Waker {
            inner: Arc::new(Inner {
                waker: mio::Waker::new(registry, token)?,
                pending: AtomicBool::new(false),
            }),
        })
    }

    /// Wakes the loop, unless a wake-up is already on its way. Call it after the message
    /// is in the channel the loop drains.
    pub fn wake(&self) {
        if !self.inner.pending.swap(true, Ordering::AcqRel)
            && let Err(e) = self.inner.waker.wake()
        {
            // The eventfd can only fail if its counter would overflow, which needs
            // billions of wake-ups unheard: the loop is awake anyway. The flag is
            // cleared all the same, so that the next message tries again.
            self.inner.pending.store(false, Ordering::Release);
            log::warn!("waking a loop failed: {e}");
        }
    }

    /// The loop heard the wake-up: the next `wake` makes another. Called before the
    /// handler drains its channels.
    pub(crate) fn heard(&self) {
        // A read-modify-write, not a store: if it reads the flag a sender set, it
        // synchronizes with that sender, so the drain that follows sees its message.
        self.inner.pending.swap(false, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waker")
            .field("pending", &self.inner.pending.load(Ordering::Relaxed))
            .finish()
    }
}

/// Asked of a loop by [`Remote::shut_down`].
const SHUT_DOWN: u8 = 1;
/// Asked of a loop by [`Remote::stop_now`].
const STOP_NOW: u8 = 2;
/// Asked of a loop by [`Remote::reload_tls`].
const RELOAD_TLS: u8 = 4;

/// Asks a loop, from another thread, what a signal asks of a loop that listens for
/// signals itself: to shut down gracefully, to stop at once, or to load its TLS
/// certificate again. A request is a bit set and a wake-up; the loop acts on it in the
/// turn it wakes, before its handler hears `on_wake`. How several workers share the
/// process's signals (see `crate::workers`).
#[derive(Clone, Debug)]
pub struct Remote {
    waker: Waker,
    asked: Arc<AtomicU8>,
}

/// What a loop was asked since it last looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asked(u8);

impl Asked {
    pub fn shut_down(self) -> bool {
        self.0 & SHUT_DOWN != 0
    }

    pub fn stop_now(self) -> bool {
        self.0 & STOP_NOW != 0
    }

    pub fn reload_tls(self) -> bool {
        self.0 & RELOAD_TLS != 0
    }
}

impl Remote {
    /// The remote control of the loop that `waker` wakes.
    pub(crate) fn new(waker: Waker) -> Remote {
        Remote {
            waker,
            asked: Arc::new(AtomicU8::new(0)),
        }
    }

    /// Begins a graceful shutdown, as [`Server::shut_down`](super::Server::shut_down).
    pub fn shut_down(&self) {
        self.ask(SHUT_DOWN);
    }

    /// Ends the loop at once, as a second SIGTERM does.
    pub fn stop_now(&self) {
        self.ask(STOP_NOW);
    }

    /// Loads the TLS certificate and key again, as
    /// [`Server::reload_tls`](super::Server::reload_tls).
    pub fn reload_tls(&self) {
        self.ask(RELOAD_TLS);
    }

    fn ask(&self, what: u8) {
        self.asked.fetch_or(what, Ordering::AcqRel);
        self.waker.wake();
    }

    /// What was asked since the last look; cleared. Called when the loop is woken,
    /// after [`Waker::heard`].
    pub(crate) fn take(&self) -> Asked {
        Asked(self.asked.swap(0, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    /// Waits for the waker's event; false if none comes within a second.
    fn woken(poll: &mut Poll, events: &mut Events) -> bool {
        poll.poll(events, Some(Duration::from_secs(1))).unwrap();
        events.iter().any(|e| e.token() == Token(7))
    }

    #[test]
    fn wake_ups_coalesce_until_heard_and_none_is_lost_after() {
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(8);
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        waker.wake();
        waker.wake();
        assert!(woken(&mut poll, &mut events));
        // A wake-up already on its way: the second made no other.
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        assert!(events.is_empty());
        waker.wake();
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        assert!(events.is_empty(), "not heard yet: merged with the first");
        waker.heard();
        waker.wake();
        assert!(
            woken(&mut poll, &mut events),
            "heard, so the next wakes again"
        );
    }

    #[test]
    fn a_remote_request_is_taken_once() {
        let poll = Poll::new().unwrap();
        let remote = Remote::new(Waker::new(poll.registry(), Token(7)).unwrap());
        remote.shut_down();
        remote.reload_tls();
        let asked = remote.take();
        assert!(asked.shut_down() && asked.reload_tls() && !asked.stop_now());
        assert_eq!(remote.take(), Asked(0));
        remote.stop_now();
        assert!(remote.take().stop_now());
    }
}
