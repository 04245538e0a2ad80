//! The frame header (RFC 6455 §5.2) and frame encoding.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! A header is 2 to 14 bytes. Parsing reports "not enough bytes yet" as `Ok(None)`, not as an
//! error, so a header split across reads is simply parsed again when more bytes arrive.

use super::error::ProtocolError;
use super::mask::apply_mask;

/// The longest possible header: 2 fixed bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame (Close, Ping, Pong) may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// What a frame carries (§5.2). Reserved opcodes are not representable: parsing rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0x0: the next fragment of a message begun by a Text or Binary frame.
    Continuation,
    /// 0x1: the first (or only) frame of a UTF-8 text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: a keep-alive or liveness probe; answered with a Pong.
    Ping,
    /// 0xA: the answer to a Ping, or an unsolicited heartbeat.
    Pong,
}

impl Opcode {
    /// The opcode for a 4-bit value, or `None` for the reserved values 3–7 and 11–15.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xa => Opcode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xa,
        }
    }

    /// Close, Ping and Pong are control frames: short, never fragmented, and allowed
    /// between the fragments of a message.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits. Must be zero unless an extension says
    /// otherwise; the protocol layer checks that, not the parser.
    pub rsv: u8,
    /// What the frame carries.
    pub opcode: Opcode,
    /// The masking key, present on every client-to-server frame and no other.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`. Returns the header and its length in
    /// bytes, or `Ok(None)` if `buf` does not hold the whole header yet.
    ///
    /// Rejects what is wrong with the header itself: a reserved opcode, a length not in
    /// its shortest form, a 64-bit length with the top bit set.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode =
            Opcode::from_bits(b0 & 0x0f).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0f))?;
        let masked = b1 & 0x80 != 0;

        let (payload_len, mut len) = match b1 & 0x7f {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                let n = u16::from_be_bytes([bytes[0], bytes[1]]) as u64;
                if n < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (n, 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0; 8];
                be.copy_from_slice(bytes);
                let n = u64::from_be_bytes(be);
                if n >> 63 != 0 {
                    return Err(ProtocolError::LengthHighBit);
                }
                if n <= u16::MAX as u64 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (n, 10)
            }
            n => (n as u64, 2),
        };

        let mask = if masked {
            let Some(bytes) = buf.get(len..len + 4) else {
                return Ok(None);
            };
            len += 4;
            Some([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            None
        };

        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            len,
        )))
    }

    /// Writes the header into `out` and returns how many bytes it took (2 to 14).
    /// Uses the shortest length form, as the RFC requires.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }
}

/// Appends one whole frame, header then payload, to `out`. With a `mask` the payload is
/// masked as it is copied (the client role); without one it is copied as is (the server
/// role, where the same bytes can then be shared by every recipient).
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode(out, opcode, fin, 0, payload, mask);
}

/// Appends one whole data message compressed with permessage-deflate: a single frame
/// (FIN set) with RSV1 set, RFC 7692's "this message is compressed" (§6), whose
/// `payload` is the compressed bytes. Masked with `mask`, as [`encode_frame`] does.
pub fn encode_compressed_frame(
    out: &mut Vec<u8>,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    debug_assert!(
        !opcode.is_control() && opcode != Opcode::Continuation,
        "RSV1 belongs on the first frame of a data message"
    );
    encode(out, opcode, true, RSV1, payload, mask);
}

/// RSV1 within [`FrameHeader::rsv`]: permessage-deflate's compressed bit.
pub const RSV1: u8 = 0b100;

fn encode(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out.reserve(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// The bytes a frame with this payload length takes on the wire, header included.
pub fn encoded_len(payload_len: usize, masked: bool) -> usize {
    let length_bytes = match payload_len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    2 + length_bytes + if masked { 4 } else { 0 } + payload_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        FrameHeader::parse(bytes)
    }

    #[test]
    fn rfc_examples() {
        // §5.7: a single-frame unmasked text message "Hello".
        let (h, n) = parse_all(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, Opcode::Text, None, 5, 2)
        );
        // A masked "Hello".
        let (h, n) = parse_all(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f])
            .unwrap()
            .unwrap();
        assert_eq!((h.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        // First fragment of an unmasked text message.
        let (h, _) = parse_all(&[0x01, 0x03]).unwrap().unwrap();
        assert!(!h.fin);
        // 256 bytes binary, 16-bit length; 64 KiB binary, 64-bit length.
        let (h, n) = parse_all(&[0x82, 0x7e, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (256, 4));
        let (h, n) = parse_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let mut head = [0; MAX_HEADER_LEN];
        for payload_len in [0u64, 125, 126, 65535, 65536, 1 << 40] {
            let header = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: Opcode::Binary,
                mask: Some([9, 8, 7, 6]),
                payload_len,
            };
            let len = header.encode(&mut head);
            for prefix in 0..len {
                assert_eq!(
                    parse_all(&head[..prefix]),
                    Ok(None),
                    "prefix {prefix} of {len}"
                );
            }
            assert_eq!(parse_all(&head[..len]), Ok(Some((header, len))));
        }
    }

    #[test]
    fn length_rules() {
        assert_eq!(
            parse_all(&[0x82, 0x7e, 0x00, 0x7d]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            parse_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            parse_all(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::LengthHighBit)
        );
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for bits in (3..=7).chain(11..=15) {
            assert_eq!(
                parse_all(&[0x80 | bits, 0]),
                Err(ProtocolError::ReservedOpcode(bits))
            );
        }
    }

    #[test]
    fn a_compressed_frame_has_rsv1_and_fin() {
        let mut out = Vec::new();
        encode_compressed_frame(&mut out, Opcode::Text, b"\xf2\x48", Some([1, 2, 3, 4]));
        let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(
            (header.fin, header.rsv, header.opcode),
            (true, RSV1, Opcode::Text)
        );
        assert_eq!(header.payload_len, 2);
        assert_eq!(out.len(), len + 2);
        assert_eq!(out[0], 0xc1);
    }

    #[test]
    fn encode_frame_masks_the_payload_only() {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            Opcode::Text,
            true,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        for len in [0, 125, 126, 65535, 65536] {
            for masked in [false, true] {
                let mut out = Vec::new();
                let mask = masked.then_some([1, 2, 3, 4]);
                encode_frame(&mut out, Opcode::Binary, true, &vec![0; len], mask);
                assert_eq!(out.len(), encoded_len(len, masked));
            }
        }
    }
}
