//! Payload masking (RFC 6455 §5.3).
//!
//! Every frame a client sends is XORed with a 4-byte key; the server undoes it. This is the
//! one loop in the codec that touches every payload byte, so it works a machine word at a
//! time: the key repeated twice is a `u64`, and each 8-byte chunk is XORed in one
//! operation (the compiler widens the loop to SIMD registers where it can). Only the ragged
//! tail goes byte by byte.

/// XORs `data` with `key`, as if `data` began `offset` bytes into the payload.
///
/// The offset lets a payload be unmasked piece by piece as it arrives from the socket:
/// a frame whose payload is split across reads is unmasked with `offset` equal to the
/// number of payload bytes already seen. Masking and unmasking are the same operation.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that `data[0]` pairs with `key[offset % 4]`.
    let rotated = u32::from_be_bytes(key).rotate_left(8 * (offset % 4) as u32);
    let key = rotated.to_be_bytes();
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);

    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        // `chunks_exact_mut(8)` guarantees the length, so the conversion cannot fail.
        let bytes: &mut [u8; 8] = chunk.try_into().expect("chunk of exactly 8 bytes");
        *bytes = (u64::from_ne_bytes(*bytes) ^ word).to_ne_bytes();
    }
    // Every chunk is a multiple of 4 bytes long, so the tail starts at key phase 0 again.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// A source of masking keys for the client role.
///
/// RFC 6455 §5.3 wants keys a script in the client cannot predict, so that a hostile page
/// cannot choose the bytes an intermediary sees. The generator is seeded from the operating
/// system's randomness (through `std`'s `RandomState`, which asks the OS for its hash keys)
/// and steps with xorshift64*, which is cheap enough to mask every frame.
#[derive(Debug, Clone)]
pub struct MaskKeys {
    state: u64,
}

impl MaskKeys {
    /// A generator seeded from the operating system's randomness.
    pub fn from_os_seed() -> MaskKeys {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x6c6f_6f70_6368_6174); // any constant: the keys carry the entropy
        MaskKeys {
            state: hasher.finish() | 1,
        }
    }

    /// The next key.
    pub fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious byte-at-a-time definition, to check the fast one against.
    fn mask_bytewise(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_the_bytewise_definition_for_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..70 {
            for offset in 0..8 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask(&mut fast, key, offset);
                mask_bytewise(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let key = [1, 2, 3, 4];
        let original: Vec<u8> = (0..=255).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole, "split at {split}");
        }
    }
}
