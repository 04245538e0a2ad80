//! What can go wrong while decoding a peer's frames, and what the wire says about it.

use super::close::CloseCode;
use thiserror::Error;

/// The peer broke RFC 6455 or one of our limits. Each variant knows its close code
/// ([`ProtocolError::close_code`]): the endpoint answers with a Close frame carrying that
/// code and then drops the connection. Nothing here is our own fault; nothing here is fatal
/// to anyone but the one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A client sent a frame without a mask (§5.1: the server must close).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1: the client must close).
    #[error("server frame is masked")]
    MaskedFrame,
    /// RSV1–3 set where no negotiated extension defines them (§5.2): any of them
    /// without permessage-deflate, and with it RSV2, RSV3, or RSV1 anywhere but the
    /// first frame of a data message (RFC 7692 §6.1).
    #[error("reserved bits {0:#05b} set where no negotiated extension allows them")]
    ReservedBits(u8),
    /// Opcodes 3–7 and 11–15 are reserved (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A Close, Ping or Pong with FIN clear (§5.5: control frames are not fragmented).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame with more than 125 bytes of payload (§5.5).
    #[error("control frame payload of {0} bytes (at most 125)")]
    ControlFrameTooLong(u64),
    /// A length in a longer form than needed (§5.2: "the minimal number of bytes MUST be
    /// used").
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// A 64-bit length with its most significant bit set (§5.2).
    #[error("64-bit payload length with the most significant bit set")]
    LengthHighBit,
    /// A continuation frame with no fragmented message to continue (§5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new Text or Binary frame while a fragmented message is unfinished (§5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A text message, or a Close reason, that is not UTF-8 (§8.1).
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A Close frame with a one-byte payload: too long for nothing, too short for a code
    /// (§5.5.1).
    #[error("close frame payload of one byte")]
    CloseFrameTooShort,
    /// A Close frame with a code that may not be sent (§7.4).
    #[error("close code {0} is not allowed on the wire")]
    InvalidCloseCode(u16),
    /// The message would exceed the configured maximum size. Detected from the frame
    /// header, before the payload is buffered.
    #[error("message of at least {size} bytes exceeds the limit of {limit}")]
    MessageTooBig {
        /// Bytes the message would have (those buffered plus this frame's payload).
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A compressed message (permessage-deflate) that inflates past the configured
    /// maximum size: refused as soon as inflating passes it (RFC 7692 §8).
    #[error("compressed message inflates past the limit of {limit} bytes")]
    InflatedTooBig {
        /// The configured limit.
        limit: usize,
    },
    /// A compressed message whose data does not inflate (RFC 7692 §8).
    #[error("compressed data that does not inflate")]
    BadCompressedData,
}

impl ProtocolError {
    /// The close code to send the peer (§7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::BadCompressedData => {
                CloseCode::InvalidPayload
            }
            ProtocolError::MessageTooBig { .. } | ProtocolError::InflatedTooBig { .. } => {
                CloseCode::MessageTooBig
            }
            _ => CloseCode::ProtocolError,
        }
    }
}
