//! The WebSocket state machine: bytes in, events out; messages in, bytes out. No sockets.
//!
//! Everything that RFC 6455 says about a connection after the opening handshake lives here:
//! frame validation, fragmentation, UTF-8, control frames, the closing handshake and the
//! message size limit. The same type serves both roles; the role decides which side masks.
//!
//! Reading is a push parser over borrowed input. The caller passes whatever the socket
//! gave; the parser takes what it needs and returns at most one [`Event`] per call:
//!
//! ```
//! use loopchat::ws::{Event, Role, WebSocket};
//!
//! let mut ws = WebSocket::new(Role::Server, 1 << 20);
//! // A masked text frame "Hi", as a browser would send it.
//! let mut input: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
//! assert_eq!(ws.read(&mut input), Ok(Some(Event::Text("Hi".into()))));
//! assert_eq!(ws.read(&mut input), Ok(None)); // all input consumed, nothing more to report
//! ```
//!
//! What RFC 6455 obliges an endpoint to send back comes out of the state machine too, as
//! bytes the caller drains ([`WebSocket::drain_replies`]), the way h11's `send` and
//! quinn-proto's `poll_transmit` work: a Pong for each Ping, the Close that answers the
//! peer's Close (echoing its code), and the Close that reports the peer's protocol error
//! with its close code. So no caller, server or client, writes those itself:
//!
//! ```
//! use loopchat::ws::{Event, Role, State, WebSocket};
//!
//! let mut ws = WebSocket::new(Role::Server, 1 << 20);
//! // A masked Close with code 1000, as a browser sends it on `ws.close()`.
//! let mut input: &[u8] = &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
//! assert!(matches!(ws.read(&mut input), Ok(Some(Event::Close(_)))));
//! let mut out = Vec::new();
//! ws.drain_replies(&mut out);
//! assert_eq!(out, [0x88, 0x02, 0x03, 0xe8]); // our Close, echoing 1000
//! assert_eq!(ws.state(), State::Closed);
//! ```
//!
//! Nothing is buffered but what a message needs: a header cut off between reads (at most
//! 14 bytes), the payload of the message being assembled, and up to 125 bytes of a control
//! frame. A payload is unmasked and UTF-8-checked as it arrives, so invalid text is refused
//! at the first bad byte and an oversized message is refused from its frame header, before
//! any of it is stored.

use super::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
use super::deflate::codec::{InflateError, Inflater, MAX_WINDOW_BITS, MessageCompressor};
use super::deflate::negotiation::Negotiated;
use super::error::ProtocolError;
use super::frame::{
    FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode, encode_compressed_frame, encode_frame,
};
use super::mask::{MaskKeys, apply_mask};
use super::message::{ControlPayload, Event, Message};
use super::utf8::Utf8Validator;
use thiserror::Error;

/// Which end of the connection this is. Clients mask what they send; servers do not, and
/// each refuses frames masked the other way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection: expects masked frames, sends unmasked ones.
    Server,
    /// Opened the connection: sends masked frames, expects unmasked ones.
    Client,
}

/// Where the connection stands in the closing handshake (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close and wait for the peer's. Incoming frames are still decoded.
    CloseSent,
    /// Nothing more is sent or read: both Closes are written (ours possibly still among
    /// the replies to drain), or the peer broke the protocol and our Close reporting it
    /// is written. Incoming bytes are ignored: after a framing error there is no telling
    /// where frames begin. Only the TCP connection remains to be closed.
    Closed,
}

impl State {
    /// Whether application messages may still be sent.
    pub fn can_send(self) -> bool {
        self == State::Open
    }

    /// Whether incoming bytes are still decoded.
    pub fn can_receive(self) -> bool {
        matches!(self, State::Open | State::CloseSent)
    }
}

/// Misuse of the writing side (`write_message`, `write_close`, ...): a bug in the caller,
/// not something the peer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WriteError {
    /// Our Close has been sent: RFC 6455 §5.5.1 forbids sending anything after it.
    #[error("the connection is closing; nothing may be sent after a Close")]
    Closed,
    /// A Ping or Pong payload longer than 125 bytes.
    #[error("control frame payload longer than 125 bytes")]
    ControlPayloadTooLong,
    /// A close code that RFC 6455 §7.4 does not allow in a Close frame.
    #[error("close code {0} may not be sent")]
    CloseCodeNotAllowed(u16),
    /// A compressed message on a connection that did not negotiate permessage-deflate:
    /// its peer would fail the connection over the RSV1 bit (RFC 7692 §6.1).
    #[error("permessage-deflate was not negotiated; nothing may be sent compressed")]
    DeflateNotNegotiated,
}

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct FrameInProgress {
    header: FrameHeader,
    /// Payload bytes received so far.
    received: u64,
}

/// Compressed payload is unmasked into a stack buffer of this size, a piece at a time, on
/// its way to the inflater.
const UNMASK_PIECE: usize = 1024;

/// Buffers of this size or less are kept for the next message; bigger ones are freed so an
/// idle connection does not hold on to the memory of its largest message.
const RECYCLE_LIMIT: usize = 64 * 1024;

/// One endpoint of a WebSocket connection, as a pure state machine.
#[derive(Debug)]
pub struct WebSocket {
    role: Role,
    state: State,
    /// The largest data message accepted, in bytes, summed over all its fragments.
    max_message_size: usize,
    /// The start of a frame header that was cut off at the end of the previous input.
    header_buf: [u8; MAX_HEADER_LEN],
    header_len: u8,
    /// The frame whose payload is arriving, once its header is complete.
    frame: Option<FrameInProgress>,
    /// The opcode (Text or Binary) of the data message being assembled, from its first
    /// frame until its last.
    message_kind: Option<Opcode>,
    /// The unmasked payload of the data message being assembled.
    message: Vec<u8>,
    /// Checks text as it arrives, across fragments.
    utf8: Utf8Validator,
    /// The unmasked payload of the control frame being received.
    control: ControlPayload,
    /// Masking keys, used in the client role only.
    mask_keys: Option<MaskKeys>,
    /// Frames the peer is owed, encoded, waiting for [`WebSocket::drain_replies`]. Boxed,
    /// and made at the first reply: most connections are never owed one (a browser does
    /// not ping), and an idle connection should not carry an empty `Vec` for it: 8 bytes
    /// instead of 24, in every connection's slab slot.
    #[allow(clippy::box_collection)]
    replies: Option<Box<Vec<u8>>>,
    /// permessage-deflate, when it was negotiated: boxed, so that a connection without
    /// it pays one pointer.
    deflate: Option<Box<Deflate>>,
}

/// The receiving side of permessage-deflate on one connection (RFC 7692 §6, §7.2.2).
#[derive(Debug)]
struct Deflate {
    /// Holds zlib state only while a compressed message arrives, unless the peer takes
    /// its context over from message to message.
    inflater: Inflater,
    /// The message being received is compressed (RSV1 on its first frame).
    compressed: bool,
    /// Compressed bytes of the current message so far, for the size limit.
    received: u64,
    /// Whether our messages may go compressed with a full window (what the shared
    /// compressor uses): not if the peer asked for a smaller one.
    send_compressed: bool,
}

impl WebSocket {
    /// A connection whose opening handshake is done, in the given role, refusing data
    /// messages larger than `max_message_size` bytes with close code 1009.
    pub fn new(role: Role, max_message_size: usize) -> WebSocket {
        WebSocket {
            role,
            state: State::Open,
            max_message_size,
            header_buf: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message_kind: None,
            message: Vec::new(),
            utf8: Utf8Validator::default(),
            control: ControlPayload::EMPTY,
            mask_keys: (role == Role::Client).then(MaskKeys::from_os_seed),
            replies: None,
            deflate: None,
        }
    }

    /// Accepts messages compressed with permessage-deflate as `negotiated` in the
    /// handshake: a data message whose first frame has RSV1 set is inflated, against the
    /// same size limit, before it is checked and delivered. What is sent is compressed by
    /// the caller, message by message (see [`Self::sends_compressed`]); this type writes
    /// its own frames (Pongs, Closes) uncompressed, as control frames must be.
    pub fn with_deflate(mut self, negotiated: Negotiated) -> WebSocket {
        let keep_context = !negotiated.incoming(self.role).no_context_takeover;
        let send_compressed = negotiated.outgoing(self.role).window_bits == MAX_WINDOW_BITS;
        self.deflate = Some(Box::new(Deflate {
            inflater: Inflater::new(self.max_message_size, keep_context),
            compressed: false,
            received: 0,
            send_compressed,
        }));
        self
    }

    /// Whether permessage-deflate was negotiated.
    pub fn has_deflate(&self) -> bool {
        self.deflate.is_some()
    }

    /// Whether the messages we send may go compressed, with the full window of the
    /// loop's shared compressor (which the caller does: see the event loop's
    /// `SharedFrame`).
    pub fn sends_compressed(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| d.send_compressed)
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Decodes bytes from the front of `input`, advancing it past what was consumed, until
    /// one event is complete (`Ok(Some)`) or the input is used up (`Ok(None)`). Call again
    /// with the rest of the input until it returns `Ok(None)`, and drain the replies
    /// ([`Self::drain_replies`]) after every call.
    ///
    /// A Ping is answered with a Pong, unless our Close is sent. (If the replies are not
    /// drained between two Pings, only the latest is answered, as RFC 6455 §5.5.3
    /// allows: a peer that floods Pings cannot grow them.) A Close from the peer is
    /// answered with ours, echoing its code (RFC 6455 §5.5.1), unless ours was sent
    /// first; either way the state becomes [`State::Closed`].
    ///
    /// On `Err` the peer has broken the protocol: the rest of the input is discarded, our
    /// Close with the error's [close code](ProtocolError::close_code) and description is
    /// queued among the replies (unless ours was sent already: nothing may follow it), and
    /// the state becomes [`State::Closed`]. Once the state no longer
    /// [`can_receive`](State::can_receive), input is consumed and ignored.
    pub fn read(&mut self, input: &mut &[u8]) -> Result<Option<Event>, ProtocolError> {
        if !self.state.can_receive() {
            *input = &[];
            return Ok(None);
        }
        let result = self.decode(input);
        let open = self.state == State::Open;
        match &result {
            Err(error) => {
                if open {
                    let reason = error.to_string();
                    self.reply_close(Some((error.close_code(), &reason)));
                }
                self.state = State::Closed;
                self.frame = None;
                self.abandon_message();
                *input = &[];
            }
            Ok(Some(Event::Close(frame))) => {
                if open {
                    self.reply_close(frame.as_ref().map(|f| (f.code, "")));
                }
                self.state = State::Closed;
            }
            Ok(Some(Event::Ping(payload))) if open => {
                let mask = self.mask_keys.as_mut().map(MaskKeys::next_key);
                // While open, the replies can only be Pongs: the latest Ping's replaces them.
                let replies = self.replies.get_or_insert_default();
                replies.clear();
                encode_frame(replies, Opcode::Pong, true, payload, mask);
            }
            Ok(_) => {}
        }
        result
    }

    /// Whether frames the peer is owed wait to be drained.
    pub fn has_replies(&self) -> bool {
        self.replies_len() > 0
    }

    /// How many bytes of replies wait to be drained.
    pub fn replies_len(&self) -> usize {
        self.replies.as_ref().map_or(0, |replies| replies.len())
    }

    /// Appends the frames the peer is owed to `out`, in the order they became owed: the
    /// Pong for the latest Ping, and the Close that answers the peer's or reports its
    /// error (the last frame this endpoint sends). Call after every [`Self::read`], before
    /// anything else is written; in [`State::Closed`], before closing the connection.
    pub fn drain_replies(&mut self, out: &mut Vec<u8>) {
        if let Some(replies) = &mut self.replies {
            out.extend_from_slice(replies);
            replies.clear();
        }
    }

    /// Queues our Close as a reply: the answer to the peer's Close, or the report of its
    /// protocol error.
    fn reply_close(&mut self, close: Option<(CloseCode, &str)>) {
        let mut replies = self.replies.take().unwrap_or_default();
        // The state is Open, and the code is one the peer sent (checked on parsing) or an
        // error's, so this cannot fail.
        let _ = self.write_close(close, &mut replies);
        self.replies = Some(replies);
    }

    /// Returns a message buffer that an [`Event::Text`] or [`Event::Binary`] carried, so
    /// its allocation serves the next message. Large buffers are dropped instead.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.message.capacity() == 0 && buffer.capacity() <= RECYCLE_LIMIT {
            buffer.clear();
            self.message = buffer;
        }
    }

    /// Appends a data message, as one frame, to `out`.
    pub fn write_message(
        &mut self,
        message: Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        self.write_frame(message.opcode(), message.payload(), out)
    }

    /// Appends a data message compressed with `compressor` (permessage-deflate, RFC 7692
    /// §7.2.1), as one frame with RSV1 set, masked in the client role. The caller decides
    /// message by message whether to compress (a short message gains nothing); the
    /// compressor must be the one made for this connection's outgoing direction, and the
    /// message is compressed only once the frame can be sent, so that a compressor that
    /// keeps its context never holds a message the peer did not get.
    pub fn write_compressed(
        &mut self,
        message: Message<'_>,
        compressor: &mut MessageCompressor,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        if !self.state.can_send() {
            return Err(WriteError::Closed);
        }
        if self.deflate.is_none() {
            return Err(WriteError::DeflateNotNegotiated);
        }
        let mask = self.mask_keys.as_mut().map(MaskKeys::next_key);
        let compressed = compressor.compress(message.payload());
        encode_compressed_frame(out, message.opcode(), compressed, mask);
        Ok(())
    }

    /// Appends a Ping to `out`.
    pub fn write_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), WriteError> {
        self.write_control(Opcode::Ping, payload, out)
    }

    /// Appends an unsolicited Pong to `out` (a heartbeat; RFC 6455 §5.5.3). The Pong
    /// that answers a Ping is not written here: it is among the replies.
    pub fn write_pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), WriteError> {
        self.write_control(Opcode::Pong, payload, out)
    }

    /// Begins the closing handshake: appends our Close to `out`, with a code and reason,
    /// or empty. A reason longer than 123 bytes is cut at a character boundary. Nothing
    /// may be sent after it, so replies not yet drained (Pongs) are dropped. Codes that
    /// may not appear on the wire (1005, 1006, 1015, and numbers outside the allowed
    /// ranges) are refused. The Close that answers the peer's, or reports its protocol
    /// error, is not written here: it is among the replies.
    pub fn write_close(
        &mut self,
        close: Option<(CloseCode, &str)>,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        if self.state != State::Open {
            return Err(WriteError::Closed);
        }
        if let Some((code, _)) = close
            && !code.is_allowed_on_wire()
        {
            return Err(WriteError::CloseCodeNotAllowed(code.into()));
        }
        let mut payload = [0; MAX_CONTROL_PAYLOAD];
        let len = match close {
            None => 0,
            Some((code, reason)) => {
                let reason = truncate_at_char_boundary(reason, MAX_CLOSE_REASON);
                payload[..2].copy_from_slice(&u16::from(code).to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                2 + reason.len()
            }
        };
        self.write_frame(Opcode::Close, &payload[..len], out)?;
        self.state = State::CloseSent;
        if let Some(replies) = &mut self.replies {
            replies.clear();
        }
        Ok(())
    }

    fn write_control(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(WriteError::ControlPayloadTooLong);
        }
        self.write_frame(opcode, payload, out)
    }

    fn write_frame(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        if !self.state.can_send() {
            return Err(WriteError::Closed);
        }
        let mask = self.mask_keys.as_mut().map(MaskKeys::next_key);
        encode_frame(out, opcode, true, payload, mask);
        Ok(())
    }

    /// The decoding loop: header, then payload, then (for the last frame of a message, or a
    /// control frame) an event.
    fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Event>, ProtocolError> {
        loop {
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => match self.read_header(input)? {
                    Some(header) => self.start_frame(header)?,
                    None => return Ok(None),
                },
            };

            let remaining = frame.header.payload_len - frame.received;
            let take = remaining.min(input.len() as u64) as usize;
            let (chunk, rest) = input.split_at(take);
            *input = rest;
            let completes_frame = take as u64 == remaining;
            self.absorb_payload(&frame, chunk, completes_frame)?;
            frame.received += take as u64;

            if !completes_frame {
                self.frame = Some(frame);
                return Ok(None);
            }
            if let Some(event) = self.finish_frame(&frame.header)? {
                return Ok(Some(event));
            }
        }
    }

    /// Parses the next frame header, completing one cut off by the previous input.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<Option<FrameHeader>, ProtocolError> {
        if self.header_len == 0 {
            // The common case: the whole header is in this input. Parse it in place.
            if let Some((header, len)) = FrameHeader::parse(input)? {
                *input = &input[len..];
                return Ok(Some(header));
            }
        }
        // Collect the header in `header_buf`. At most 14 bytes are copied; a parse that
        // still finds it incomplete means all of `input` was copied and consumed.
        let before = usize::from(self.header_len);
        let copied = input.len().min(MAX_HEADER_LEN - before);
        self.header_buf[before..before + copied].copy_from_slice(&input[..copied]);
        // At most 14: the buffer's size.
        self.header_len = (before + copied) as u8;
        match FrameHeader::parse(&self.header_buf[..before + copied])? {
            Some((header, len)) => {
                *input = &input[len - before..];
                self.header_len = 0;
                Ok(Some(header))
            }
            None => {
                *input = &input[copied..];
                Ok(None)
            }
        }
    }

    /// Checks a header against the connection's state (§5.2–§5.5) and the size limit.
    fn start_frame(&mut self, header: FrameHeader) -> Result<FrameInProgress, ProtocolError> {
        // RSV1 is permessage-deflate's "compressed" bit, allowed only on the first frame
        // of a data message, and only when it was negotiated (RFC 7692 §6.1).
        let rsv1 = header.rsv & 0b100 != 0;
        let first_data_frame = !header.opcode.is_control() && header.opcode != Opcode::Continuation;
        if header.rsv & 0b011 != 0 || (rsv1 && (self.deflate.is_none() || !first_data_frame)) {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong(header.payload_len));
            }
            self.control = ControlPayload::EMPTY;
        } else {
            match (header.opcode, self.message_kind) {
                (Opcode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (Opcode::Continuation, Some(_)) => {}
                (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
                (kind, None) => self.message_kind = Some(kind),
            }
            let mut already = self.message.len() as u64;
            if let Some(deflate) = &mut self.deflate {
                if first_data_frame {
                    deflate.compressed = rsv1;
                    deflate.received = 0;
                }
                if deflate.compressed {
                    // The compressed bytes count too: a peer cannot make us buffer them
                    // without limit (the inflated size is checked as it inflates).
                    already = deflate.received;
                    deflate.received = deflate.received.saturating_add(header.payload_len);
                }
            }
            let size = already.saturating_add(header.payload_len);
            if size > self.max_message_size as u64 {
                return Err(ProtocolError::MessageTooBig {
                    size,
                    limit: self.max_message_size,
                });
            }
        }
        Ok(FrameInProgress {
            header,
            received: 0,
        })
    }

    /// Stores, unmasks and (for text) validates the next piece of the frame's payload.
    fn absorb_payload(
        &mut self,
        frame: &FrameInProgress,
        chunk: &[u8],
        completes_frame: bool,
    ) -> Result<(), ProtocolError> {
        let header = &frame.header;
        // The key's phase for this piece: how far into the payload it starts, modulo 4.
        let offset = (frame.received % 4) as usize;
        if header.opcode.is_control() {
            // `start_frame` checked the length, so the payload always fits.
            if let Some(stored) = self.control.try_extend(chunk)
                && let Some(key) = header.mask
            {
                apply_mask(stored, key, offset);
            }
            return Ok(());
        }

        let start = self.message.len();
        if let Some(deflate) = self.deflate.as_deref_mut().filter(|d| d.compressed) {
            // Unmask a piece at a time on the stack (a connection keeps no buffer for
            // this), inflate into the message, and check the text that came out below, as
            // for an uncompressed message.
            let mut piece = [0u8; UNMASK_PIECE];
            let mut inflated = Ok(());
            for (i, masked) in chunk.chunks(UNMASK_PIECE).enumerate() {
                let piece = &mut piece[..masked.len()];
                piece.copy_from_slice(masked);
                if let Some(key) = header.mask {
                    apply_mask(piece, key, offset + i * UNMASK_PIECE);
                }
                inflated = deflate.inflater.feed(piece, &mut self.message);
                if inflated.is_err() {
                    break;
                }
            }
            if inflated.is_ok() && header.fin && completes_frame {
                deflate.compressed = false;
                inflated = deflate.inflater.finish(&mut self.message);
            }
            // What inflated before an error comes first in the stream: its text is checked
            // first, so that the error is the same however the input was cut into reads.
            self.check_text(start, false)?;
            return inflated.map_err(|e| self.inflate_error(e));
        }
        self.message.extend_from_slice(chunk);
        let stored = &mut self.message[start..];
        if let Some(key) = header.mask {
            apply_mask(stored, key, offset);
        }
        // A message that arrives whole in one piece is validated once, when it is turned
        // into a `String` in `finish_frame`; anything else is validated piece by piece so
        // that the first invalid byte fails the connection at once.
        let whole_message_at_once =
            header.fin && start == 0 && frame.received == 0 && completes_frame;
        self.check_text(start, whole_message_at_once)
    }

    /// Checks the text of a message stored from `start` on, unless it is checked whole
    /// when it is done.
    fn check_text(&mut self, start: usize, later: bool) -> Result<(), ProtocolError> {
        if self.message_kind == Some(Opcode::Text) && !later {
            self.utf8
                .feed(&self.message[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    fn inflate_error(&self, error: InflateError) -> ProtocolError {
        match error {
            InflateError::TooBig { limit } => ProtocolError::InflatedTooBig { limit },
            InflateError::Corrupt => ProtocolError::BadCompressedData,
        }
    }

    /// A frame's payload is complete: produce its event, if it ends something.
    fn finish_frame(&mut self, header: &FrameHeader) -> Result<Option<Event>, ProtocolError> {
        let event = match header.opcode {
            Opcode::Ping => Event::Ping(self.control),
            Opcode::Pong => Event::Pong(self.control),
            Opcode::Close => Event::Close(parse_close_payload(&self.control)?),
            _ if !header.fin => return Ok(None),
            _ => {
                let message = std::mem::take(&mut self.message);
                match self.message_kind.take() {
                    Some(Opcode::Text) => {
                        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                        let text =
                            String::from_utf8(message).map_err(|_| ProtocolError::InvalidUtf8)?;
                        Event::Text(text)
                    }
                    _ => Event::Binary(message),
                }
            }
        };
        Ok(Some(event))
    }

    fn abandon_message(&mut self) {
        self.message_kind = None;
        self.message.clear();
        self.utf8.reset();
        self.header_len = 0;
    }
}

/// Reads a Close payload: empty, or a 2-byte code and a UTF-8 reason (§5.5.1).
fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let number = u16::from_be_bytes([*hi, *lo]);
            let code = CloseCode::from(number);
            if !code.is_allowed_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(number));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a character boundary.
fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
