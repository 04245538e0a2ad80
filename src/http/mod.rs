//! HTTP/1.1 as far as a WebSocket server needs it, as pure code over bytes.
//!
//! - [`request`]: reading a request head with `httparse`, within limits.
//! - [`handshake`]: the WebSocket opening handshake, server and client side.
//! - [`response`]: writing a response.
//! - [`error`]: refusals, each knowing its status code and reason.
//! - [`origin`]: which web pages may open a WebSocket.

pub mod error;
pub mod handshake;
pub mod landing;
pub mod origin;
pub mod request;
pub mod response;
pub mod static_files;

pub use error::HttpError;
pub use handshake::{
    ClientHandshake, ClientHandshakeError, MAX_REFUSAL_BODY, RequestKind, Upgrade, Upgraded,
    accept_key, classify,
};
pub use origin::OriginPolicy;
pub use request::{HeadLimits, Request, parse_request};
pub use response::Response;
