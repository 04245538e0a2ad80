//! Applications that plug into the loop through [`Handler`](crate::Handler).
//!
//! - [`chat`]: the chat, with nicknames, rooms, private messages, images and history,
//!   for browsers, terminal clients and the line port at once.
//! - [`Echo`]: every message comes back to its sender. The conformance testee.
//! - [`Broadcast`]: every message goes to every other client. The benchmark's relay;
//!   [`BroadcastWorker`] is the same across several workers.

mod broadcast;
pub mod chat;
mod echo;

pub use broadcast::{Broadcast, BroadcastWorker, RELAYED_BYTES_LIMIT};
pub use chat::{Chat, ChatConfig};
pub use echo::Echo;
