//! A lean reader for the frames a server sends: zero-copy where it can be.
//!
//! The crate's [`WebSocket`](loopchat::ws::WebSocket) state machine copies every payload
//! into a message buffer, checks its UTF-8 and hands it over as an owned `String`. That is
//! right for an application, but the generator receives millions of small messages a
//! second and only looks for a marker in them, so it would spend more time decoding than
//! the server spends relaying. This reader uses the same header parser
//! ([`FrameHeader::parse`]) and the same rules for what a server may send, and differs in
//! one thing: a frame that lies whole inside the bytes just read is handed to the caller
//! as a slice of those bytes, with no copy. Only a frame cut off by the end of a read is
//! copied (into `carry`, once, when the rest arrives), and only a fragmented message is
//! assembled.
//!
//! Measured on the development machine, over reads of 60 frames of 64 bytes: the codec
//! takes about 50 ns per message, this reader about 10 ns; with the marker found and
//! parsed, about 100 ns against 55 ns.
//!
//! With permessage-deflate negotiated ([`FrameReader::with_deflate`]), a message whose
//! first frame has RSV1 set is inflated into the reader's own buffer (one
//! [`Inflater`] per connection, keeping the server's window between messages unless the
//! server said `server_no_context_takeover`, as Node's `ws` and Bun may not), and handed
//! over from there; frames without RSV1 still take the zero-copy path. A whole
//! compressed message from a server that resets its context is looked up in the
//! thread's [`inflate_cache`] first, and inflated only if it is not there.
//!
//! It does not check that text is UTF-8: the generator reads markers, which are ASCII, and
//! is not a conformance test. Everything else a server must not send (a masked frame,
//! reserved bits, a fragmented or long control frame, a continuation out of place, a
//! length not in its shortest form) is an error, as in the codec.

use super::inflate_cache;
use loopchat::ws::ProtocolError;
use loopchat::ws::deflate::codec::{InflateError, Inflater};
use loopchat::ws::deflate::negotiation::Negotiated;
use loopchat::ws::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, Opcode, RSV1};

/// One thing the server said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A whole data message (text or binary; the generator treats both alike).
    Message(&'a [u8]),
    /// A Ping, whose payload the Pong must echo.
    Ping(&'a [u8]),
    /// A Pong.
    Pong,
    /// A Close frame's payload: empty, or a code and a reason.
    Close(&'a [u8]),
}

/// The protocol error of a message that does not inflate.
fn inflate_error(e: InflateError) -> ProtocolError {
    match e {
        InflateError::TooBig { limit } => ProtocolError::InflatedTooBig { limit },
        InflateError::Corrupt => ProtocolError::BadCompressedData,
    }
}

/// The length of a frame header whose second byte is `b1`: 2, plus 2 or 8 bytes of
/// extended length, plus 4 of masking key.
fn header_len(b1: u8) -> usize {
    let length_bytes = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + length_bytes + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Push parser for server-to-client frames.
#[derive(Debug)]
pub struct FrameReader {
    /// The start of a frame cut off by the end of the previous input.
    carry: Vec<u8>,
    /// The payload so far of a fragmented data message.
    message: Vec<u8>,
    /// Whether a fragmented data message is being assembled.
    in_message: bool,
    /// The largest message accepted, in bytes.
    max_message: usize,
    /// Inflates compressed messages, when permessage-deflate was negotiated.
    inflater: Option<Inflater>,
    /// The message being assembled is compressed (RSV1 on its first frame).
    compressed: bool,
}

impl Default for FrameReader {
    /// A reader for messages of up to [`DEFAULT_MAX_MESSAGE`] bytes.
    fn default() -> FrameReader {
        FrameReader::new(DEFAULT_MAX_MESSAGE)
    }
}

/// The largest message the reader assembles unless told otherwise.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

impl FrameReader {
    /// A reader that refuses messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> FrameReader {
        FrameReader {
            carry: Vec::new(),
            message: Vec::new(),
            in_message: false,
            max_message,
            inflater: None,
            compressed: false,
        }
    }

    /// The same reader for a connection that negotiated permessage-deflate as
    /// `negotiated` says: messages with RSV1 set are inflated.
    pub fn with_deflate(mut self, negotiated: Negotiated) -> FrameReader {
        let keep_context = !negotiated.server_no_context_takeover;
        self.inflater = Some(Inflater::new(self.max_message, keep_context));
        self
    }

    /// Decodes all of `input`, calling `on` for each complete message and control frame,
    /// and keeps a trailing partial frame for the next call. After an error the reader
    /// must not be used again: there is no telling where the next frame starts.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<(), ProtocolError> {
        if !self.carry.is_empty() {
            // Complete the frame begun in an earlier read, copying only the bytes it lacks
            // (never more: what follows it is parsed in place below).
            loop {
                let Some((header, head_len)) = FrameHeader::parse(&self.carry)? else {
                    let wanted = match self.carry.as_slice() {
                        [_, b1, ..] => header_len(*b1),
                        _ => 2,
                    };
                    let take = wanted.saturating_sub(self.carry.len()).min(input.len());
                    if take == 0 {
                        return Ok(());
                    }
                    self.carry.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    continue;
                };
                self.check_size(&header)?;
                let total = head_len + header.payload_len as usize;
                let take = (total - self.carry.len()).min(input.len());
                self.carry.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.carry.len() < total {
                    return Ok(());
                }
                let carry = std::mem::take(&mut self.carry);
                let result = self.frame(&header, &carry[head_len..], on);
                self.carry = carry;
                self.carry.clear();
                result?;
                break;
            }
        }
        // The common case: whole frames in place.
        while !input.is_empty() {
            let Some((header, head_len)) = FrameHeader::parse(input)? else {
                self.carry.extend_from_slice(input);
                return Ok(());
            };
            self.check_size(&header)?;
            let total = head_len + header.payload_len as usize;
            if input.len() < total {
                self.carry.extend_from_slice(input);
                return Ok(());
            }
            self.frame(&header, &input[head_len..total], on)?;
            input = &input[total..];
        }
        Ok(())
    }

    /// Refuses a frame that would make its message too large, from its header alone.
    fn check_size(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let size = (self.message.len() as u64).saturating_add(header.payload_len);
        if !header.opcode.is_control() && size > self.max_message as u64 {
            return Err(ProtocolError::MessageTooBig {
                size,
                limit: self.max_message,
            });
        }
        Ok(())
    }

    /// Acts on one whole frame.
    fn frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<(), ProtocolError> {
        // RSV1 says "compressed", on the first frame of a data message only, and only
        // with permessage-deflate (RFC 7692 §6.1).
        let rsv1 = header.rsv & RSV1 != 0;
        let first_data_frame = matches!(header.opcode, Opcode::Text | Opcode::Binary);
        if header.rsv & !RSV1 != 0 || (rsv1 && (self.inflater.is_none() || !first_data_frame)) {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        if header.mask.is_some() {
            return Err(ProtocolError::MaskedFrame);
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if payload.len() > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlFrameTooLong(header.payload_len));
            }
        }
        match header.opcode {
            Opcode::Ping => on(Incoming::Ping(payload)),
            Opcode::Pong => on(Incoming::Pong),
            Opcode::Close => on(Incoming::Close(payload)),
            Opcode::Text | Opcode::Binary if self.in_message => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            // The fast path: a whole uncompressed message, handed over in place.
            Opcode::Text | Opcode::Binary if header.fin && !rsv1 => on(Incoming::Message(payload)),
            // A whole compressed message from a server that resets its context: the
            // same bytes inflate to the same message on every connection (see
            // `inflate_cache`).
            Opcode::Text | Opcode::Binary if header.fin && self.shares_inflation() => {
                inflate_cache::with_inflated(payload, self.max_message, |message| {
                    on(Incoming::Message(message))
                })
                .map_err(inflate_error)?;
            }
            Opcode::Text | Opcode::Binary => {
                self.in_message = true;
                self.compressed = rsv1;
                self.take_fragment(payload, header.fin, on)?;
            }
            Opcode::Continuation if !self.in_message => {
                return Err(ProtocolError::UnexpectedContinuation);
            }
            Opcode::Continuation => self.take_fragment(payload, header.fin, on)?,
        }
        Ok(())
    }

    /// Whether compressed messages may be looked up in the thread's [`inflate_cache`]:
    /// with deflate negotiated and the server resetting its context.
    fn shares_inflation(&self) -> bool {
        self.inflater.as_ref().is_some_and(|i| !i.keeps_context())
    }

    /// Adds a fragment to the message being assembled (inflating it if the message is
    /// compressed), and hands the message over after its last one.
    fn take_fragment(
        &mut self,
        payload: &[u8],
        fin: bool,
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<(), ProtocolError> {
        match self.inflater.as_mut().filter(|_| self.compressed) {
            Some(inflater) => {
                let mut inflated = inflater.feed(payload, &mut self.message);
                if fin && inflated.is_ok() {
                    inflated = inflater.finish(&mut self.message);
                }
                inflated.map_err(inflate_error)?;
            }
            None => self.message.extend_from_slice(payload),
        }
        if fin {
            on(Incoming::Message(&self.message));
            self.message.clear();
            self.in_message = false;
            self.compressed = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopchat::ws::frame::encode_frame;

    /// What the reader reported, owned, for comparison.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Message(Vec<u8>),
        Ping(Vec<u8>),
        Pong,
        Close(Vec<u8>),
    }

    fn read_in_pieces(bytes: &[u8], pieces: &[usize]) -> Result<Vec<Seen>, ProtocolError> {
        read_with(FrameReader::new(1 << 20), bytes, pieces)
    }

    fn read_with(
        mut reader: FrameReader,
        bytes: &[u8],
        pieces: &[usize],
    ) -> Result<Vec<Seen>, ProtocolError> {
        let mut seen = Vec::new();
        let mut on = |incoming: Incoming<'_>| {
            seen.push(match incoming {
                Incoming::Message(m) => Seen::Message(m.to_vec()),
                Incoming::Ping(p) => Seen::Ping(p.to_vec()),
                Incoming::Pong => Seen::Pong,
                Incoming::Close(c) => Seen::Close(c.to_vec()),
            })
        };
        let mut rest = bytes;
        for &piece in pieces {
            let (now, later) = rest.split_at(piece.min(rest.len()));
            reader.feed(now, &mut on)?;
            rest = later;
        }
        reader.feed(rest, &mut on)?;
        Ok(seen)
    }

    fn server_frame(out: &mut Vec<u8>, opcode: Opcode, fin: bool, payload: &[u8]) {
        encode_frame(out, opcode, fin, payload, None);
    }

    /// A stream with every kind of frame: short, 16-bit and 64-bit lengths, a message in
    /// three fragments with a Ping between them, a Pong and a Close.
    fn stream() -> (Vec<u8>, Vec<Seen>) {
        let mut bytes = Vec::new();
        let big = vec![b'x'; 70_000];
        let medium = vec![b'y'; 300];
        server_frame(&mut bytes, Opcode::Text, true, b"hello");
        server_frame(&mut bytes, Opcode::Binary, true, &medium);
        server_frame(&mut bytes, Opcode::Text, true, &big);
        server_frame(&mut bytes, Opcode::Text, false, b"frag");
        server_frame(&mut bytes, Opcode::Ping, true, b"are you there");
        server_frame(&mut bytes, Opcode::Continuation, false, b"men");
        server_frame(&mut bytes, Opcode::Continuation, true, b"ted");
        server_frame(&mut bytes, Opcode::Pong, true, b"");
        server_frame(&mut bytes, Opcode::Text, true, b"");
        server_frame(
            &mut bytes,
            Opcode::Close,
            true,
            &[0x03, 0xe8, b'b', b'y', b'e'],
        );
        let seen = vec![
            Seen::Message(b"hello".to_vec()),
            Seen::Message(medium),
            Seen::Message(big),
            Seen::Ping(b"are you there".to_vec()),
            Seen::Message(b"fragmented".to_vec()),
            Seen::Pong,
            Seen::Message(Vec::new()),
            Seen::Close(vec![0x03, 0xe8, b'b', b'y', b'e']),
        ];
        (bytes, seen)
    }

    #[test]
    fn whole_stream_at_once() {
        let (bytes, expected) = stream();
        assert_eq!(read_in_pieces(&bytes, &[]), Ok(expected));
    }

    #[test]
    fn every_split_in_two_and_byte_by_byte() {
        let (bytes, expected) = stream();
        for split in 0..bytes.len() {
            assert_eq!(
                read_in_pieces(&bytes, &[split]),
                Ok(expected.clone()),
                "split at {split}"
            );
        }
        let ones = vec![1; bytes.len()];
        assert_eq!(read_in_pieces(&bytes, &ones), Ok(expected.clone()));
        let sevens = vec![7; bytes.len() / 7];
        assert_eq!(read_in_pieces(&bytes, &sevens), Ok(expected));
    }

    #[test]
    fn what_a_server_must_not_send() {
        let mut masked = Vec::new();
        encode_frame(&mut masked, Opcode::Text, true, b"hi", Some([1, 2, 3, 4]));
        let mut long_ping = Vec::new();
        server_frame(&mut long_ping, Opcode::Ping, true, &[0; 126]);
        let mut lone_continuation = Vec::new();
        server_frame(&mut lone_continuation, Opcode::Continuation, true, b"x");
        let mut interleaved = Vec::new();
        server_frame(&mut interleaved, Opcode::Text, false, b"a");
        server_frame(&mut interleaved, Opcode::Text, true, b"b");
        let cases: [(&[u8], ProtocolError); 7] = [
            (&masked, ProtocolError::MaskedFrame),
            (&[0xc1, 0x00], ProtocolError::ReservedBits(4)),
            (&[0x83, 0x00], ProtocolError::ReservedOpcode(3)),
            (&[0x09, 0x00], ProtocolError::FragmentedControlFrame),
            (&long_ping, ProtocolError::ControlFrameTooLong(126)),
            (&lone_continuation, ProtocolError::UnexpectedContinuation),
            (&interleaved, ProtocolError::ExpectedContinuation),
        ];
        for (bytes, error) in cases {
            assert_eq!(read_in_pieces(bytes, &[]), Err(error), "{bytes:?}");
            assert_eq!(read_in_pieces(bytes, &[1]), Err(error), "{bytes:?} split");
        }
        // Too big, refused from the header before any payload arrives.
        let header = [0x82, 0x7f, 0, 0, 0, 0, 0x10, 0, 0, 0];
        assert!(matches!(
            read_in_pieces(&header, &[3]),
            Err(ProtocolError::MessageTooBig { .. })
        ));
    }

    /// Agreed parameters with the server keeping its context, as Node's `ws` does.
    fn server_keeps_context() -> Negotiated {
        Negotiated {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    fn deflating() -> FrameReader {
        FrameReader::new(1 << 20).with_deflate(server_keeps_context())
    }

    /// Compressed messages from a server that keeps its window (each later one refers to
    /// the earlier), one of them in two fragments, between uncompressed ones.
    fn compressed_stream() -> (Vec<u8>, Vec<Seen>) {
        use loopchat::ws::deflate::codec::MessageCompressor;
        use loopchat::ws::frame::encode_compressed_frame;
        let direction = server_keeps_context().outgoing(loopchat::ws::Role::Server);
        let mut compressor = MessageCompressor::new(direction, 6).unwrap();
        let text = br#"{"type":"message","room":"lobby","text":"~lcb1:hello there~ again"}"#;
        let mut bytes = Vec::new();
        encode_compressed_frame(&mut bytes, Opcode::Text, compressor.compress(text), None);
        server_frame(&mut bytes, Opcode::Text, true, b"plain");
        let second = compressor.compress(text).to_vec();
        let (a, b) = second.split_at(second.len() / 2);
        let mut first_fragment = Vec::new();
        server_frame(&mut first_fragment, Opcode::Text, false, a);
        first_fragment[0] |= 0x40; // RSV1 on the first frame of the message
        bytes.extend(first_fragment);
        server_frame(&mut bytes, Opcode::Ping, true, b"p");
        server_frame(&mut bytes, Opcode::Continuation, true, b);
        encode_compressed_frame(&mut bytes, Opcode::Binary, compressor.compress(text), None);
        let message = Seen::Message(text.to_vec());
        let seen = vec![
            message.clone(),
            Seen::Message(b"plain".to_vec()),
            Seen::Ping(b"p".to_vec()),
            message.clone(),
            message,
        ];
        (bytes, seen)
    }

    #[test]
    fn compressed_messages_inflate_keeping_the_servers_window_in_any_reads() {
        let (bytes, expected) = compressed_stream();
        for split in 0..bytes.len() {
            assert_eq!(
                read_with(deflating(), &bytes, &[split]),
                Ok(expected.clone()),
                "split at {split}"
            );
        }
        let ones = vec![1; bytes.len()];
        assert_eq!(read_with(deflating(), &bytes, &ones), Ok(expected));
        // The check can fail: a reader that forgot the window between messages cannot
        // inflate the second, which refers back to the first.
        let forgetful = FrameReader::new(1 << 20).with_deflate(Negotiated {
            server_no_context_takeover: true,
            ..server_keeps_context()
        });
        assert_eq!(
            read_with(forgetful, &bytes, &[]),
            Err(ProtocolError::BadCompressedData)
        );
    }

    #[test]
    fn rsv1_and_compressed_data_that_a_server_must_not_send() {
        // RSV1 without deflate, on a continuation, on a control frame.
        assert_eq!(
            read_in_pieces(&[0xc1, 0x00], &[]),
            Err(ProtocolError::ReservedBits(4))
        );
        let continuation = [0x41, 0x01, 0xf2, 0xc0, 0x01, 0x48];
        assert_eq!(
            read_with(deflating(), &continuation, &[]),
            Err(ProtocolError::ReservedBits(4))
        );
        assert_eq!(
            read_with(deflating(), &[0xc9, 0x00], &[]),
            Err(ProtocolError::ReservedBits(4))
        );
        // Data that does not inflate, and a bomb.
        assert_eq!(
            read_with(deflating(), &[0xc1, 0x04, 0xff, 0xff, 0xff, 0x00], &[]),
            Err(ProtocolError::BadCompressedData)
        );
        let bomb = loopchat::ws::deflate::codec::compress_message(&vec![0; 4 << 20], 15, 9);
        let mut bytes = Vec::new();
        loopchat::ws::frame::encode_compressed_frame(&mut bytes, Opcode::Binary, &bomb, None);
        assert_eq!(
            read_with(deflating(), &bytes, &[]),
            Err(ProtocolError::InflatedTooBig { limit: 1 << 20 })
        );
    }
}
