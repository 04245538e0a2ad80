//! The values the codec hands out: whole messages and the events of a connection.

use super::close::CloseFrame;
use super::frame::{MAX_CONTROL_PAYLOAD, Opcode};
use std::fmt;
use std::ops::Deref;

/// A whole data message, borrowed. This is what applications send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// UTF-8 text (opcode 0x1).
    Text(&'a str),
    /// Arbitrary bytes (opcode 0x2).
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The opcode of the message's first frame.
    pub fn opcode(self) -> Opcode {
        match self {
            Message::Text(_) => Opcode::Text,
            Message::Binary(_) => Opcode::Binary,
        }
    }

    /// The message's bytes.
    pub fn payload(self) -> &'a [u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }
}

/// What [`WebSocket::read`](super::WebSocket::read) found in the byte stream.
///
/// Data messages are handed over as owned buffers so the caller can keep reading, or hand
/// the buffer to an application, without borrowing the codec. Give the buffer back with
/// [`WebSocket::recycle`](super::WebSocket::recycle) to reuse its allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text message, already checked to be UTF-8.
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A Ping. The Pong that answers it (with the same payload, as the RFC asks) is
    /// already among the state machine's replies: drain them, do not answer it again.
    Ping(ControlPayload),
    /// A Pong.
    Pong(ControlPayload),
    /// The peer's Close frame, with its code and reason unless it was empty. If ours was
    /// not sent first, the Close that answers it is already among the replies.
    Close(Option<CloseFrame>),
}

impl Event {
    /// The data message this event carries, if it is one.
    pub fn as_message(&self) -> Option<Message<'_>> {
        match self {
            Event::Text(text) => Some(Message::Text(text)),
            Event::Binary(bytes) => Some(Message::Binary(bytes)),
            _ => None,
        }
    }
}

/// The payload of a Ping or Pong: at most 125 bytes, kept inline so that answering a
/// Ping never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    bytes: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    /// An empty payload.
    pub const EMPTY: ControlPayload = ControlPayload {
        bytes: [0; MAX_CONTROL_PAYLOAD],
        len: 0,
    };

    /// Copies `bytes`, or returns `None` if there are more than 125.
    pub fn new(bytes: &[u8]) -> Option<ControlPayload> {
        let mut payload = ControlPayload::EMPTY;
        payload.try_extend(bytes)?;
        Some(payload)
    }

    /// Appends `more`, or returns `None` (changing nothing) if the total would exceed 125.
    pub(crate) fn try_extend(&mut self, more: &[u8]) -> Option<&mut [u8]> {
        let start = self.len as usize;
        let end = start
            .checked_add(more.len())
            .filter(|&end| end <= MAX_CONTROL_PAYLOAD)?;
        self.bytes[start..end].copy_from_slice(more);
        self.len = end as u8;
        Some(&mut self.bytes[start..end])
    }
}

impl Deref for ControlPayload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlPayload({:?})", &**self)
    }
}
