//! The line protocol of the raw TCP port: text lines both ways, as `nc` and `telnet` speak.
//!
//! Pure code over bytes, like the WebSocket codec. Input is split at `\n` (a `\r` before
//! it is dropped, so telnet's CRLF works); each line is handed over as text, with bytes
//! that are not UTF-8 replaced by U+FFFD rather than refused, since a person typing in a
//! terminal with another encoding should still be heard. A line longer than the limit is
//! not buffered: its bytes are dropped up to the next `\n`, and the reader reports it once
//! so the caller can tell the sender.

/// What [`LineReader::read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, without its line ending.
    Line(String),
    /// A line passed the length limit; it is being discarded up to its end.
    TooLong,
}

/// Splits a byte stream into lines of at most `max_line_bytes` bytes.
#[derive(Debug)]
pub struct LineReader {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The longest line accepted, in bytes, line ending excluded.
    max_line_bytes: usize,
    /// Whether the current line passed the limit and is being skipped.
    skipping: bool,
}

impl LineReader {
    /// A reader that refuses lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineReader {
        LineReader {
            partial: Vec::new(),
            max_line_bytes,
            skipping: false,
        }
    }

    /// Consumes bytes from the front of `input` until a line is complete or too long
    /// (`Some`), or `input` is used up (`None`). Call again until `None`.
    pub fn read(&mut self, input: &mut &[u8]) -> Option<LineEvent> {
        while !input.is_empty() {
            let newline = input.iter().position(|&b| b == b'\n');
            let piece = &input[..newline.unwrap_or(input.len())];
            *input = &input[newline.map_or(input.len(), |at| at + 1)..];
            if self.skipping {
                if newline.is_some() {
                    self.skipping = false;
                }
                continue;
            }
            if self.partial.len() + piece.len() > self.max_line_bytes + 1 {
                // The +1 allows for a `\r` that belongs to the line ending.
                self.partial.clear();
                self.skipping = newline.is_none();
                return Some(LineEvent::TooLong);
            }
            self.partial.extend_from_slice(piece);
            if newline.is_some() {
                return Some(self.take_line());
            }
        }
        None
    }

    /// The last line, if the stream ended without a final `\n`.
    pub fn finish(&mut self) -> Option<LineEvent> {
        let unfinished = !self.partial.is_empty() && !self.skipping;
        unfinished.then(|| self.take_line())
    }

    fn take_line(&mut self) -> LineEvent {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        if self.partial.len() > self.max_line_bytes {
            self.partial.clear();
            return LineEvent::TooLong;
        }
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        if self.partial.capacity() > 4 * 1024 {
            self.partial = Vec::new(); // do not keep a long line's buffer while idle
        }
        LineEvent::Line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(reader: &mut LineReader, bytes: &[u8], piece: usize) -> Vec<LineEvent> {
        let mut events = Vec::new();
        for mut chunk in bytes.chunks(piece) {
            while let Some(event) = reader.read(&mut chunk) {
                events.push(event);
            }
        }
        events
    }

    fn line(text: &str) -> LineEvent {
        LineEvent::Line(text.to_owned())
    }

    #[test]
    fn splits_lines_in_any_pieces() {
        let input = b"hello\r\nw\xc3\xb6rld\n\nlast";
        for piece in 1..=input.len() {
            let mut reader = LineReader::new(100);
            assert_eq!(
                lines(&mut reader, input, piece),
                [line("hello"), line("wörld"), line("")],
                "{piece}"
            );
            assert_eq!(reader.finish(), Some(line("last")));
            assert_eq!(reader.finish(), None);
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut reader = LineReader::new(100);
        assert_eq!(lines(&mut reader, b"a\xffb\n", 100), [line("a\u{fffd}b")]);
    }

    #[test]
    fn long_lines_are_skipped_and_reported_once() {
        for piece in [1, 3, 1000] {
            let mut reader = LineReader::new(4);
            let input = b"1234\r\n12345678901234567890\nok\n12345";
            assert_eq!(
                lines(&mut reader, input, piece),
                [line("1234"), LineEvent::TooLong, line("ok")],
                "{piece}"
            );
            assert_eq!(
                reader.finish(),
                Some(LineEvent::TooLong),
                "an unfinished long line"
            );
            assert_eq!(reader.finish(), None);
        }
    }
}
