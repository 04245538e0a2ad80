//! permessage-deflate (RFC 7692): compressed messages, negotiated in the handshake.
//!
//! - [`negotiation`]: reading the client's offers and choosing the answer in the opening
//!   handshake, and the client's check of that answer. Sans-IO, like the rest of `ws`.
//! - [`codec`]: the compression engine, sans I/O: one message compressed at a time
//!   with no state kept between messages, and compressed messages inflated fragment by
//!   fragment against the message size limit.
//!
//! The server's handshake negotiates with [`negotiation`]; [`crate::ws::WebSocket`]
//! inflates what arrives, in either role; the event loop compresses what it sends (once
//! per shared frame, with one [`codec::Compressor`]).
//!
//! The client role offers it too: [`crate::http::ClientHandshake::with_deflate`] makes a
//! browser's offer and checks the answer; the terminal client compresses what it sends
//! with a [`codec::MessageCompressor`] (its own window, kept from message to message
//! unless the server said `client_no_context_takeover`) and
//! [`crate::ws::WebSocket::write_compressed`]; the load generator (`loopchat bench
//! --deflate`) compresses each message afresh with a shared [`codec::Compressor`] and
//! inflates with one [`codec::Inflater`] per connection.

pub mod codec;
pub mod negotiation;
