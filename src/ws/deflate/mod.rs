//! permessage-deflate (RFC 7692): compressed messages, negotiated in the handshake.
//!
//! - [`negotiation`]: reading the client's offers and choosing the answer in the opening
//!   handshake, and the client's check of that answer. Sans-IO, like the rest of `ws`.
//! - [`codec`]: the compression engine, sans I/O: one message compressed at a time
//!   with no state kept between messages, and compressed messages inflated fragment by
//!   fragment against the message size limit.
//!
//! The server's handshake negotiates with [`negotiation`]; [`crate::ws::WebSocket`]
//! inflates what arrives; the event loop compresses what it sends (once per shared
//! frame). The client role (the terminal client, the load generator) does not offer it
//! yet.

pub mod codec;
pub mod negotiation;
