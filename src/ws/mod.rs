//! The WebSocket protocol after the handshake (RFC 6455 §5–§8), as pure code over bytes.
//!
//! - [`frame`]: the frame header, its parsing and encoding.
//! - [`mask`]: XOR masking, a machine word at a time.
//! - [`utf8`]: UTF-8 validation that works on text split at any byte.
//! - [`close`]: close codes and Close frame payloads.
//! - [`deflate`]: permessage-deflate (RFC 7692), the compression extension.
//! - [`error`]: protocol violations, each with the close code it earns.
//! - [`protocol`]: [`WebSocket`], the state machine that ties them together, in either
//!   role.
//!
//! Nothing here opens a socket or reads a clock, so it is tested with plain byte slices,
//! and the same code serves both ends of a connection: the server, and any client.

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod keepalive;
pub mod mask;
pub mod message;
pub mod protocol;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use error::ProtocolError;
pub use frame::Opcode;
pub use keepalive::{Keepalive, KeepaliveAction, KeepaliveConfig};
pub use message::{ControlPayload, Event, Message};
pub use protocol::{Role, State, WebSocket, WriteError};
