//! The permessage-deflate engine (RFC 7692 §7.2): whole messages compressed, fragments
//! inflated. Bytes in, bytes out; the frame's RSV1 bit and the negotiation are elsewhere.
//!
//! **Sending** ([`Compressor`]): a message becomes raw DEFLATE (RFC 1951) ended by a sync
//! flush, minus the flush's last four octets `00 00 ff ff` (§7.2.1). Nothing is kept from
//! one message to the next, as if `server_no_context_takeover` were always agreed: that is
//! what lets a broadcast be compressed once and the one frame go to every recipient,
//! whatever each received before (uWebSockets' "shared compressor" does the same). So a
//! loop needs one `Compressor`, not one per connection.
//!
//! **Sending on one connection** ([`MessageCompressor`]): a client (the terminal client)
//! has one connection and may keep its LZ77 window from one message to the next unless
//! the server said `client_no_context_takeover` (§7.1.1.2), so that a message can refer
//! back to the envelope, names and words of the ones before. It compresses within the
//! negotiated `client_max_window_bits`, or not at all when zlib cannot (8 bits: see
//! [`Direction::can_compress`]). Forgetting is always allowed: a sender that resets after
//! every message, as the load generator does with one shared `Compressor`, is understood
//! by any receiver.
//!
//! **Receiving** ([`Inflater`]): one per connection, which holds no zlib state between
//! messages unless the client takes its context over: the state (47 KiB) is created
//! when a compressed message starts and dropped when it ends (§7.1.1.2: a server may
//! require `client_no_context_takeover`). The inflated bytes count against the message size
//! limit *while* they are produced, so a deflate bomb costs at most the limit (plus the
//! state).
//!
//! **Window bits** (§7.1.2): a compressor's window is 2^9 to 2^15 bytes. zlib cannot
//! produce a raw stream with a 2^8 window, but with 2^9 its matches reach at most
//! 2^9 − 262 = 250 bytes back (zlib keeps 262 bytes of lookahead), which a 256-byte window
//! holds: so a stream compressed with 9 inflates within 8, as zlib itself relied on
//! before 1.2.9 and as Node does. (The server has no use for it: it compresses with one
//! window for every recipient, and a client that limits the server's window gets plain
//! messages; see `negotiation`.) The inflater always uses 2^15: a window only bounds
//! how far back a match may reach, so the largest one inflates every stream, and zlib-rs
//! allocates 32 KiB for it whatever the bits asked.

use crate::ws::close::CloseCode;
use crate::ws::deflate::negotiation::Direction;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use thiserror::Error;

/// The four octets a sync flush ends with (an empty stored block's LEN and NLEN), removed
/// by the sender and appended again by the receiver (§7.2.1, §7.2.2).
pub const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest window RFC 7692 lets a peer ask for (§7.1.2.1).
pub const MIN_WINDOW_BITS: u8 = 8;

/// The largest window, and the default: 32 KiB (§7.1.2).
pub const MAX_WINDOW_BITS: u8 = 15;

/// The compression level used unless configured, of zlib's 0 (store) to 9.
///
/// Measured on a 1 KiB chat message (JSON, English text; `measure` in `codec/tests.rs`):
/// level 1 is zlib-rs's "quick" strategy, fixed Huffman codes only, and saves just 14%;
/// level 2 saves 40%, as much as levels 3 to 9 (a short message has little repetition
/// for a longer search to find), in the least time of them, about 17 µs. A broadcast is
/// compressed once for all its recipients, so bytes saved per delivery matter more than
/// those microseconds.
pub const DEFAULT_LEVEL: u32 = 2;

/// Compresses one message with a fresh window: a convenience over [`Compressor`] for a
/// caller that sends rarely. `window_bits` is the negotiated `server_max_window_bits`
/// (8 to 15), `level` zlib's 0 to 9.
pub fn compress_message(payload: &[u8], window_bits: u8, level: u32) -> Vec<u8> {
    let mut out = Vec::new();
    Compressor::new(window_bits, level).compress(payload, &mut out);
    out
}

/// A reusable deflate stream that forgets each message once it is compressed.
///
/// Reusing one costs a reset (clearing zlib's 128 KiB hash table) per message instead
/// of allocating and freeing zlib's whole state, which measured slower (22 µs against
/// 17 µs for 1 KiB of chat at level 2: `measure` in `codec/tests.rs`). It holds 371 KiB
/// at 15 window bits, 245 KiB at 8 or 9 (`tests/deflate_memory.rs`): hold one per event
/// loop and per window size in use, never one per connection.
pub struct Compressor {
    /// zlib's deflate state: the window (2 × 2^bits bytes), the match chains (as
    /// much), the hash heads (128 KiB), the pending output and symbols (112 KiB).
    stream: Compress,
    /// The window bits this compressor honours, as negotiated (8 to 15).
    window_bits: u8,
}

impl Compressor {
    /// A compressor whose matches stay within 2^`window_bits` bytes, at `level` (0 to 9,
    /// larger values mean 9).
    ///
    /// # Panics
    ///
    /// If `window_bits` is outside 8 to 15: negotiation never agrees on such a value.
    pub fn new(window_bits: u8, level: u32) -> Compressor {
        assert!(
            (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&window_bits),
            "window bits {window_bits} outside 8..=15"
        );
        // 8 becomes 9: see the module documentation for why that stays within 256 bytes.
        let zlib_bits = window_bits.max(9);
        let level = Compression::new(level.min(9));
        Compressor {
            stream: Compress::new_with_window_bits(level, false, zlib_bits),
            window_bits,
        }
    }

    /// The negotiated window bits this compressor honours.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Appends the compressed form of `payload` to `out`: the payload of a frame with RSV1
    /// set (§7.2.1). An empty payload compresses to the single octet `00`, an empty stored
    /// block's header, which RFC 7692 §7.2.3.6 gives as the empty message's form.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.compress_keeping_window(payload, out);
        self.stream.reset();
    }

    /// As [`compress`](Self::compress), but the window stays: the next message may refer
    /// back to this one (context takeover).
    fn compress_keeping_window(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if payload.is_empty() {
            // zlib will not flush twice with no input between (it returns Z_BUF_ERROR
            // and writes nothing), so after a message with the window kept an empty one
            // would come out as no bytes at all, which a zlib peer reads as the start of
            // a stored block. After a sync flush the stream is at a byte boundary, so
            // the empty stored block's header alone (§7.2.3.6) is right whatever came
            // before, and the window is unchanged by it.
            out.push(0x00);
            return;
        }
        let start = out.len();
        // Room for incompressible input (5 bytes per stored block) and the flush, so one
        // pass almost always suffices.
        out.reserve(payload.len() + 64);
        let mut input = payload;
        loop {
            let before = self.stream.total_in();
            self.stream
                .compress_vec(input, out, FlushCompress::Sync)
                .expect("deflate never fails on a stream in use");
            input = &input[(self.stream.total_in() - before) as usize..];
            // zlib's rule: a sync flush is complete when output space is left over.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.len() - start + 64);
        }
        debug_assert!(out[start..].ends_with(&TRAILER));
        out.truncate(out.len().saturating_sub(TRAILER.len()).max(start));
    }
}

/// One connection's compressor for the messages it sends, as negotiated for its
/// direction: within its window, keeping context between messages unless told not to.
///
/// It holds zlib's whole deflate state (245 to 371 KiB, see [`Compressor`]) for the life
/// of the connection: right for a client with one connection, wrong for a server with
/// thousands, which shares one `Compressor` instead.
pub struct MessageCompressor {
    /// The deflate stream; reset after each message unless context is kept.
    compressor: Compressor,
    /// Whether the window carries over to the next message (no
    /// `no_context_takeover` agreed for this direction).
    keep_context: bool,
    /// The last message compressed, reused from one message to the next.
    compressed: Vec<u8>,
}

impl std::fmt::Debug for MessageCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageCompressor")
            .field("window_bits", &self.compressor.window_bits)
            .field("keep_context", &self.keep_context)
            .finish_non_exhaustive()
    }
}

impl MessageCompressor {
    /// A compressor for the messages sent in `direction` (the sender's
    /// [`Negotiated::outgoing`](crate::ws::deflate::negotiation::Negotiated::outgoing)), at
    /// `level` (zlib's 0 to 9). `None` if zlib cannot compress within its window: then
    /// every message goes uncompressed, as RFC 7692 §6 allows.
    pub fn new(direction: Direction, level: u32) -> Option<MessageCompressor> {
        direction.can_compress().then(|| MessageCompressor {
            compressor: Compressor::new(direction.window_bits, level),
            keep_context: !direction.no_context_takeover,
            compressed: Vec::new(),
        })
    }

    /// Whether each message may refer back to the ones before it.
    pub fn keeps_context(&self) -> bool {
        self.keep_context
    }

    /// The negotiated window bits it compresses within.
    pub fn window_bits(&self) -> u8 {
        self.compressor.window_bits
    }

    /// Compresses the next message and returns its compressed form, the payload of a
    /// frame with RSV1 set; the bytes are valid until the next call. Every message
    /// compressed must be sent, in order: with context kept, the next one may refer to
    /// it.
    pub fn compress(&mut self, payload: &[u8]) -> &[u8] {
        self.compressed.clear();
        if self.keep_context {
            self.compressor
                .compress_keeping_window(payload, &mut self.compressed);
        } else {
            self.compressor.compress(payload, &mut self.compressed);
        }
        &self.compressed
    }
}

/// Why a compressed message could not be inflated. Either way the connection is failed
/// (RFC 7692 §8: "the endpoint MUST _Fail the WebSocket Connection_").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InflateError {
    /// The message inflates to more than the limit; inflating stopped one byte past it.
    #[error("inflated message exceeds the limit of {limit} bytes")]
    TooBig {
        /// The configured maximum message size.
        limit: usize,
    },
    /// The bytes are not a DEFLATE stream (a bad block type, code or distance).
    #[error("compressed data does not inflate")]
    Corrupt,
}

impl InflateError {
    /// The close code to send (RFC 6455 §7.4.1): 1009 for a message too big, as for an
    /// uncompressed one; 1007 for data that does not inflate, "data within a message
    /// that was not consistent with the type of the message", which is also what Node's
    /// `ws` sends. (Autobahn's sections 12 and 13 send only valid data.)
    pub fn close_code(&self) -> CloseCode {
        match self {
            InflateError::TooBig { .. } => CloseCode::MessageTooBig,
            InflateError::Corrupt => CloseCode::InvalidPayload,
        }
    }
}

/// The fewest bytes of output space offered to zlib at a time; the space then doubles
/// with the message, up to one byte past the limit.
const MIN_OUTPUT_STEP: usize = 512;

/// One connection's receiving side: inflates compressed messages fragment by fragment.
///
/// Idle, it is 24 bytes and holds no heap: zlib's state is created by the first
/// compressed fragment of a message and, unless the peer takes context over, dropped by
/// [`finish`](Inflater::finish).
pub struct Inflater {
    /// zlib's inflate state (a 32 KiB window and the decoding tables), boxed so that an
    /// idle connection pays one pointer for it. `None` between messages unless context
    /// is kept.
    stream: Option<Box<Decompress>>,
    /// The largest inflated message accepted, in bytes.
    max_message_size: usize,
    /// Whether the peer's messages share one LZ77 window (no `client_no_context_takeover`
    /// agreed, §7.1.1.2), so the state must outlive each message.
    keep_context: bool,
    /// The current message ended its DEFLATE stream with a BFINAL block (§7.2.3.4): what
    /// follows, if anything, is padding to ignore, and the next message starts a new
    /// stream.
    stream_ended: bool,
    /// The current message has had compressed bytes, so it ends with [`TRAILER`].
    started: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("holds_state", &self.stream.is_some())
            .field("max_message_size", &self.max_message_size)
            .field("keep_context", &self.keep_context)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// An inflater for messages of at most `max_message_size` bytes once inflated.
    /// `keep_context` is true when the peer may refer back to earlier messages.
    pub fn new(max_message_size: usize, keep_context: bool) -> Inflater {
        Inflater {
            stream: None,
            max_message_size,
            keep_context,
            stream_ended: false,
            started: false,
        }
    }

    /// Whether the peer's messages share one window, so the state outlives each message.
    pub fn keeps_context(&self) -> bool {
        self.keep_context
    }

    /// Whether zlib state is held now: between messages, only with context takeover.
    pub fn holds_state(&self) -> bool {
        self.stream.is_some()
    }

    /// Inflates one fragment of the current message (the unmasked payload of one of its
    /// frames), appending to `out`, which holds the message inflated so far.
    ///
    /// On error the state is dropped; the connection is to be failed.
    pub fn feed(&mut self, fragment: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        if fragment.is_empty() {
            return Ok(());
        }
        self.started = true;
        self.inflate(fragment, out)
            .inspect_err(|_| self.end_message(false))
    }

    /// Ends the current message: inflates the [`TRAILER`] the sender removed (§7.2.2),
    /// then drops or keeps zlib's state. A message with no compressed bytes at all is
    /// taken as empty, as Node's `ws` does, and leaves a kept window untouched.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), InflateError> {
        let result = if self.started {
            self.inflate(&TRAILER, out)
        } else {
            Ok(())
        };
        self.end_message(result.is_ok());
        result
    }

    /// Forgets the message: the state goes unless it is to be kept and still usable.
    fn end_message(&mut self, clean: bool) {
        match &mut self.stream {
            Some(_) if !clean || !self.keep_context => self.stream = None,
            // A stream that ended cannot continue; the next message begins a new one.
            Some(stream) if self.stream_ended => stream.reset(false),
            _ => {}
        }
        self.stream_ended = false;
        self.started = false;
    }

    /// Runs zlib over `input` until it is consumed, offering output space that grows
    /// with the message but never past one byte beyond the limit: zlib writing that
    /// byte is how a message too big is found, and nothing larger is ever allocated.
    /// The space is zeroed before zlib writes it (this crate has no unsafe code), which
    /// costs a small fraction of inflating it.
    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        // zlib-rs allocates a 32 KiB window whatever the bits: ask for the largest.
        let stream = self
            .stream
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        let ceiling = self.max_message_size.saturating_add(1);
        while !self.stream_ended {
            let len = out.len();
            if len >= ceiling {
                return Err(InflateError::TooBig {
                    limit: self.max_message_size,
                });
            }
            let step = len.max(4 * input.len()).max(MIN_OUTPUT_STEP);
            // A remainder smaller than a step is taken now, not grown into later.
            let room = if 2 * step >= ceiling - len {
                ceiling - len
            } else {
                step
            };
            out.reserve_exact(room);
            out.resize(len + room, 0);
            let (read, written) = (stream.total_in(), stream.total_out());
            let status = stream.decompress(input, &mut out[len..], FlushDecompress::None);
            let written = (stream.total_out() - written) as usize;
            out.truncate(len + written);
            input = &input[(stream.total_in() - read) as usize..];
            match status {
                Ok(Status::StreamEnd) => self.stream_ended = true,
                Ok(Status::Ok | Status::BufError) => {}
                Err(_) => return Err(InflateError::Corrupt),
            }
            if out.len() > self.max_message_size {
                return Err(InflateError::TooBig {
                    limit: self.max_message_size,
                });
            }
            // Space left over: zlib stopped for want of input, having used all of it.
            if written < room {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
