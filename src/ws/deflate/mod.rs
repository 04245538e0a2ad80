//! permessage-deflate (RFC 7692): compressed messages, negotiated in the handshake.
//!
//! - [`negotiation`]: reading the client's offers and choosing the answer in the opening
//!   handshake, and the client's check of that answer. Sans-IO, like the rest of `ws`.
//! - [`codec`]: the compression engine, sans I/O: one message compressed at a time
//!   with no state kept between messages, and compressed messages inflated fragment by
//!   fragment against the message size limit.
//!
//! Neither is wired into the handshake or the state machine yet (issue 13 is under way).

pub mod codec;
pub mod negotiation;
