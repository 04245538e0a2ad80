//! permessage-deflate (RFC 7692): compressed messages, negotiated in the handshake.
//!
//! - [`codec`]: the compression engine, sans I/O: one message compressed at a time
//!   with no state kept between messages, and compressed messages inflated fragment by
//!   fragment against the message size limit.

pub mod codec;
