//! What every layer of the loop shares: how a connection talks ([`Transport`]), and a
//! message encoded once for many recipients ([`SharedFrame`]). A leaf: it imports nothing
//! else from the loop, so the broadcast log, the output queues and the application API
//! can all use it without importing each other.

use crate::ws::Message;
use crate::ws::deflate::codec::{Compressor, DEFAULT_LEVEL, MAX_WINDOW_BITS};
use crate::ws::frame::{FrameHeader, MAX_HEADER_LEN, Opcode, RSV1};
use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock};

thread_local! {
    /// The loop's one compressor (about 380 KB of zlib state), reset after every message:
    /// a frame is compressed once however many recipients share it, and no connection
    /// holds compression state (RFC 7692's `server_no_context_takeover`).
    static COMPRESSOR: RefCell<Compressor> =
        RefCell::new(Compressor::new(MAX_WINDOW_BITS, DEFAULT_LEVEL));

    /// What the loop's compressor has done: messages compressed, payload bytes in,
    /// compressed bytes out (frame headers not counted). For the admin port's ratio.
    static DEFLATED: Cell<DeflateTotals> = const { Cell::new(DeflateTotals { messages: 0, bytes_in: 0, bytes_out: 0 }) };
}

/// What this thread's loop compressor has done since it started: each message once,
/// however many recipients shared the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeflateTotals {
    /// Messages compressed.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
    /// The compressed payload bytes (including those found not worth sending).
    pub bytes_out: u64,
}

/// What this thread's loop compressor has done so far.
pub(crate) fn deflate_totals() -> DeflateTotals {
    DEFLATED.get()
}

/// How a connection talks, which decides how messages to it are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// WebSocket frames, after an HTTP upgrade.
    WebSocket,
    /// Text lines on the raw TCP port (`ServerConfig::line_addr`): each text message sent
    /// becomes a line; binary messages cannot be sent.
    Line,
}

/// How the messages to one connection are encoded: what the broadcast log lays out once
/// and shares among every connection of the same lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// WebSocket frames, uncompressed.
    WebSocket,
    /// WebSocket frames to a client that negotiated permessage-deflate: each broadcast
    /// compressed (once, for all of them) when it is long enough and compressing makes it
    /// smaller, plain otherwise.
    Deflate,
    /// Lines, on the line port.
    Line,
}

impl Lane {
    /// Every lane, in [`Lane::index`] order.
    #[cfg(test)]
    pub(crate) const ALL: [Lane; 3] = [Lane::WebSocket, Lane::Deflate, Lane::Line];

    /// The lane as an index, for what the broadcast log keeps per lane.
    pub(crate) fn index(self) -> usize {
        match self {
            Lane::WebSocket => 0,
            Lane::Deflate => 1,
            Lane::Line => 2,
        }
    }

    /// The transport of the lane's connections.
    pub(crate) fn transport(self) -> Transport {
        match self {
            Lane::WebSocket | Lane::Deflate => Transport::WebSocket,
            Lane::Line => Transport::Line,
        }
    }
}

/// A message encoded once for the wire and shared by every queue it is pushed to: a
/// WebSocket frame (server frames are not masked, so the same bytes are right for every
/// recipient), or a text line for the line port.
///
/// It may cross threads: with several workers (`crate::workers`), a broadcast is
/// encoded, and compressed, once for the clients of every loop. Its counts are atomic
/// for that; cloning one costs an uncontended atomic increment.
#[derive(Debug, Clone)]
pub struct SharedFrame {
    /// The encoded bytes, shared by every queue the frame is pushed to.
    pub(super) bytes: Arc<[u8]>,
    /// The transport the bytes are encoded for.
    transport: Transport,
    /// The same message compressed with permessage-deflate, for the recipients that
    /// negotiated it: made the first time one of them needs it and then shared by all of
    /// them, like `bytes` (`None` inside when compressing does not make it smaller).
    deflated: Arc<OnceLock<Option<SharedFrame>>>,
    /// The payload's length (the bytes after the frame header).
    payload_len: usize,
    /// Whether compressing is worth trying: not for images in formats that are already
    /// compressed.
    compressible: bool,
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
        // Both halves are slice iterators of known length, so `Arc<[u8]>` allocates once
        // at the exact size and copies into place.
        let bytes = head[..head_len].iter().chain(payload).copied().collect();
        SharedFrame {
            bytes,
            transport: Transport::WebSocket,
            deflated: Arc::default(),
            payload_len: payload.len(),
            // Images in these formats are compressed already: deflating them again saves nothing.
            compressible: !matches!(message, Message::Binary(b) if crate::images::detect(b).is_some()),
        }
    }

    /// The frame compressed (RSV1 set), made once and shared by every recipient that
    /// negotiated permessage-deflate; `None` if compressing would not make it smaller, or
    /// for a line or an image in an already-compressed format.
    pub(crate) fn deflated(&self) -> Option<SharedFrame> {
        if self.transport != Transport::WebSocket || !self.compressible {
            return None;
        }
        self.deflated.get_or_init(|| self.compress()).clone()
    }

    /// What a recipient that negotiated permessage-deflate is sent instead of this frame,
    /// if anything: the frame compressed, when its payload has `min_bytes` or more
    /// (`ServerConfig::deflate_min_bytes`) and compressing makes it smaller. The one rule
    /// for sends and broadcasts alike.
    pub(crate) fn deflated_from(&self, min_bytes: usize) -> Option<SharedFrame> {
        (self.payload_len >= min_bytes)
            .then(|| self.deflated())
            .flatten()
    }

    /// The payload's length.
    #[cfg(test)]
    pub(crate) fn payload_len(&self) -> usize {
        self.payload_len
    }

    fn compress(&self) -> Option<SharedFrame> {
        let payload = &self.bytes[self.bytes.len() - self.payload_len..];
        let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
        COMPRESSOR.with_borrow_mut(|c| c.compress(payload, &mut compressed));
        DEFLATED.set({
            let mut totals = DEFLATED.get();
            totals.messages += 1;
            totals.bytes_in += payload.len() as u64;
            totals.bytes_out += compressed.len() as u64;
            totals
        });
        let header = FrameHeader {
            fin: true,
            rsv: RSV1,
            opcode: Opcode::from_bits(self.bytes[0] & 0x0f)?,
            mask: None,
            payload_len: compressed.len() as u64,
        };
        let mut head = [0; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        if head_len + compressed.len() >= self.bytes.len() {
            return None;
        }
        Some(SharedFrame {
            bytes: head[..head_len]
                .iter()
                .chain(&compressed)
                .copied()
                .collect(),
            transport: self.transport,
            deflated: Arc::default(),
            payload_len: compressed.len(),
            compressible: false,
        })
    }

    /// Encodes `text` as one line for the line port: the text and a `\n`.
    pub fn line(text: &str) -> SharedFrame {
        let bytes = text.as_bytes().iter().chain(b"\n").copied().collect();
        SharedFrame {
            bytes,
            transport: Transport::Line,
            deflated: Arc::default(),
            payload_len: text.len() + 1,
            compressible: false,
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
    fn a_frame_is_compressed_once_for_every_recipient_that_wants_it() {
        use crate::ws::deflate::codec::Inflater;
        let text = r#"{"type":"message","room":"lobby","from":"ada","text":"hello, hello, hello"}"#
            .repeat(8);
        let frame = SharedFrame::new(Message::Text(&text));
        let compressed = frame.deflated().expect("chat JSON compresses");
        let again = frame.deflated().expect("again");
        assert!(
            Arc::ptr_eq(&compressed.bytes, &again.bytes),
            "compressed once"
        );
        let bytes = compressed.as_bytes();
        assert_eq!(bytes[0], 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
        assert!(bytes.len() < frame.len() / 2);
        let payload = &bytes[bytes.len() - compressed.payload_len()..];
        let mut inflater = Inflater::new(1 << 20, false);
        let mut out = Vec::new();
        inflater.feed(payload, &mut out).unwrap();
        inflater.finish(&mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        // Not worth it, or not possible: tiny or random-looking text, images, lines.
        assert!(SharedFrame::new(Message::Text("hi")).deflated().is_none());
        let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0; 1000]].concat();
        assert!(SharedFrame::new(Message::Binary(&png)).deflated().is_none());
        assert!(SharedFrame::line(&text).deflated().is_none());
    }

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
