//! Images by their first bytes, never by a name or a declared type: the chat accepts
//! these (a file called `cat.png` that is really HTML is refused), and the loop does not
//! deflate them again, their formats being compressed already.

/// The accepted types: what browsers show inline everywhere, and nothing that can carry
/// script (SVG is excluded for that reason).
pub const ACCEPTED: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The MIME type of an accepted image, from its signature, or `None`.
pub fn detect(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(detect(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some("image/jpeg"));
        assert_eq!(detect(b"GIF89a\x01\0"), Some("image/gif"));
        assert_eq!(detect(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(detect(b"<svg xmlns="), None);
        assert_eq!(detect(b"<html><script>"), None);
        assert_eq!(detect(b"\x89PN"), None);
        assert_eq!(detect(b""), None);
    }
}
