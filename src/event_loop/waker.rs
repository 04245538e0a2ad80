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
use std::sync::atomic::{AtomicBool, Ordering};

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
            // billions of wake-ups unheard: the loop is awake anyway.
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
