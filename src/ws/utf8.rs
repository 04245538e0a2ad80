//! Streaming UTF-8 validation for text messages (RFC 6455 §8.1).
//!
//! A text message may arrive in many frames, and one frame in many reads, and a multi-byte
//! character may be cut anywhere. The RFC lets an endpoint fail the connection as soon as it
//! sees an invalid sequence, and good servers do: a client that sends 16 MiB of text whose
//! third byte is invalid is refused at the third byte, not after 16 MiB have been buffered.
//!
//! The validator keeps at most three bytes of an unfinished character between pieces and
//! delegates the real work to `std::str::from_utf8`, which is fast and exact: its
//! `error_len()` tells "invalid here" (`Some`) from "cut off at the end" (`None`).

/// The error: the text is not UTF-8. Carries nothing; the wire answer is always 1007.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates UTF-8 text fed in arbitrary pieces, failing on the first invalid byte.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The start of a character cut off at the end of the last piece.
    partial: [u8; 4],
    /// How many bytes of `partial` are in use (0 to 3).
    partial_len: usize,
}

impl Utf8Validator {
    /// Checks the next piece of the text. Fails as soon as a byte cannot continue valid
    /// UTF-8; a character cut off at the end is remembered for the next piece.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            // Complete the character begun in an earlier piece, one byte at a time, so the
            // error is found at the first impossible byte.
            let width = char_width(self.partial[0]);
            while self.partial_len < width {
                let Some((&byte, rest)) = piece.split_first() else {
                    return Ok(());
                };
                self.partial[self.partial_len] = byte;
                self.partial_len += 1;
                piece = rest;
                match std::str::from_utf8(&self.partial[..self.partial_len]) {
                    Ok(_) => break,
                    Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                    Err(_) => {}
                }
            }
            self.partial_len = 0;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &piece[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
        }
    }

    /// Ends the text: fails if it stops in the middle of a character. Resets the validator.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Forgets any unfinished character (used when a message is abandoned).
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// The length of the character a lead byte announces. Only called on the first byte of a
/// cut-off character, which `from_utf8` has already accepted as a plausible lead byte.
fn char_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(bytes: &[u8], piece_len: usize) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        for piece in bytes.chunks(piece_len.max(1)) {
            v.feed(piece)?;
        }
        v.finish()
    }

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"hello",
        "κόσμε".as_bytes(),
        "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
        "𝄞 music, 中文, emoji 😀".as_bytes(),
        b"\xf4\x8f\xbf\xbf",         // U+10FFFF, the last code point
        b"\xed\x9f\xbf",             // U+D7FF, just below the surrogates
        b"\xce\xba\xe1\xbd\xb9\xcf", // cut off: invalid at the end only
        b"\xed\xa0\x80",             // a surrogate
        b"\xf4\x90\x80\x80",         // above U+10FFFF
        b"\xc0\xaf",                 // overlong '/'
        b"\xe0\x80\xaf",             // overlong '/'
        b"\xff",
        b"abc\x80def",
        b"\xf0\x9f\x98", // cut off emoji
    ];

    #[test]
    fn agrees_with_std_for_every_split() {
        for sample in SAMPLES {
            let expected = std::str::from_utf8(sample).is_ok();
            for piece_len in 1..=sample.len().max(1) {
                assert_eq!(
                    validate_in_pieces(sample, piece_len).is_ok(),
                    expected,
                    "{sample:x?} in pieces of {piece_len}"
                );
            }
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // "κόσμε" then a surrogate: the error is seen on the byte after 0xed, before the end.
        let mut v = Utf8Validator::default();
        v.feed("κόσμε".as_bytes()).unwrap();
        v.feed(b"\xed").unwrap();
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));

        // Above U+10FFFF is known at the second byte.
        let mut v = Utf8Validator::default();
        v.feed(b"\xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn an_unfinished_character_fails_only_at_finish() {
        let mut v = Utf8Validator::default();
        v.feed(b"\xf0\x9f").unwrap();
        v.feed(b"\x98").unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish() resets: the next message starts clean.
        v.feed(b"ok").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
