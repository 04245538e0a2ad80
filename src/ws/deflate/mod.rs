//! permessage-deflate (RFC 7692): compressing WebSocket messages.
//!
//! - [`negotiation`]: reading the client's offers and choosing the answer in the opening
//!   handshake, and the client's check of that answer. Sans-IO, like the rest of `ws`.

pub mod negotiation;
