//! Applications that plug into the loop through [`Handler`](crate::Handler).
//!
//! - [`Echo`]: every message comes back to its sender. The conformance testee.
//! - [`Broadcast`]: every message goes to every other client. The benchmark's relay.

mod broadcast;
mod echo;

pub use broadcast::Broadcast;
pub use echo::Echo;
