//! What every layer of the loop shares: how a connection talks ([`Transport`]), and a
//! message encoded once for many recipients ([`SharedFrame`]). A leaf: it imports nothing
//! else from the loop, so the broadcast log, the output queues and the application API
//! can all use it without importing each other.

use crate::ws::Message;
use crate::ws::frame::{FrameHeader, MAX_HEADER_LEN};
use std::rc::Rc;

/// How a connection talks, which decides how messages to it are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// WebSocket frames, after an HTTP upgrade.
    WebSocket,
    /// Text lines on the raw TCP port (`ServerConfig::line_addr`): each text message sent
    /// becomes a line; binary messages cannot be sent.
    Line,
}

impl Transport {
    /// The transport as an index, for what the loop keeps per transport: 0 for WebSocket,
    /// 1 for the line port.
    pub(crate) fn index(self) -> usize {
        match self {
            Transport::WebSocket => 0,
            Transport::Line => 1,
        }
    }
}

/// A message encoded once for the wire and shared by every queue it is pushed to: a
/// WebSocket frame (server frames are not masked, so the same bytes are right for every
/// recipient), or a text line for the line port.
#[derive(Debug, Clone)]
pub struct SharedFrame {
    /// The encoded bytes, shared by every queue the frame is pushed to.
    pub(super) bytes: Rc<[u8]>,
    /// The transport the bytes are encoded for.
    transport: Transport,
}

impl SharedFrame {
    /// Encodes `message` as a single unmasked frame, in one allocation: header and
    /// payload are written straight into the reference-counted buffer.
    pub fn new(message: Message<'_>) -> SharedFrame {
        let payload = message.payload();
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: message.opcode(),
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut head = [0; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        // Both halves are slice iterators of known length, so `Rc<[u8]>` allocates once
        // at the exact size and copies into place.
        let bytes = head[..head_len].iter().chain(payload).copied().collect();
        SharedFrame {
            bytes,
            transport: Transport::WebSocket,
        }
    }

    /// Encodes `text` as one line for the line port: the text and a `\n`.
    pub fn line(text: &str) -> SharedFrame {
        let bytes = text.as_bytes().iter().chain(b"\n").copied().collect();
        SharedFrame {
            bytes,
            transport: Transport::Line,
        }
    }

    /// The transport the frame is encoded for.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The frame's length on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame is empty (never true for an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_frame_is_the_encoded_frame() {
        for len in [0, 125, 126, 70_000] {
            let payload = vec![7; len];
            let mut expected = Vec::new();
            crate::ws::frame::encode_frame(
                &mut expected,
                crate::ws::Opcode::Binary,
                true,
                &payload,
                None,
            );
            assert_eq!(
                SharedFrame::new(Message::Binary(&payload)).as_bytes(),
                expected
            );
        }
    }
}
