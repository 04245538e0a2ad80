//! The line protocol of the raw TCP port: text lines both ways, as `nc` and `telnet` speak.
//!
//! Pure code over bytes, like the WebSocket codec. Input is split at `\n` (a `\r` before
//! it is dropped, so telnet's CRLF works); each line is handed over as text, with bytes
//! that are not UTF-8 replaced by U+FFFD rather than refused, since a person typing in a
//! terminal with another encoding should still be heard. A line longer than the limit is
//! not buffered: its bytes are dropped up to the next `\n`, and the reader reports it once
//! so the caller can tell the sender. Telnet commands (RFC 854: `IAC` and what follows,
//! such as the `IAC IP` that `telnet` sends for Ctrl-C, or option negotiation) are taken
//! out and not answered: the port speaks plain lines, which is what a Telnet client
//! assumes of a peer that negotiates nothing. An `IAC` followed by a byte that is no
//! command (below 240) is not Telnet but a stray 0xFF, and stays in the text.

/// What [`LineReader::read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, without its line ending.
    Line(String),
    /// A line passed the length limit; it is being discarded up to its end.
    TooLong,
}

/// Telnet's "interpret as command" byte (RFC 854). It never occurs in UTF-8 text.
const IAC: u8 = 0xFF;
/// Subnegotiation begin and end (RFC 854).
const SB: u8 = 250;
const SE: u8 = 240;
/// WILL, WONT, DO, DONT: option negotiation, one option byte follows.
const NEGOTIATION: std::ops::RangeInclusive<u8> = 251..=254;
/// The longest subnegotiation skipped. Real ones (window size, terminal type) are a
/// few bytes; past this, an `IAC SB` is taken for garbage and what follows is text.
const MAX_SUBNEGOTIATION: usize = 1024;

/// Where the reader is in a Telnet command (RFC 854). `telnet` sends them when the user
/// presses Ctrl-C (`IAC IP`), asks "are you there" (`IAC AYT`) or negotiates options;
/// they are taken out of the stream so they never reach the chat as garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    /// Plain text.
    Data,
    /// After `IAC`.
    Command,
    /// After `IAC WILL|WONT|DO|DONT`: the option byte comes next.
    Option,
    /// Inside `IAC SB ... IAC SE`, this many bytes in.
    Sub(usize),
    /// After an `IAC` inside a subnegotiation.
    SubIac(usize),
}

impl Telnet {
    /// Takes one byte of a command. Returns the state after it, and the data byte it
    /// stands for, if any (`IAC IAC` is a literal 0xFF).
    fn step(self, byte: u8) -> (Telnet, Option<u8>) {
        match self {
            Telnet::Data => (Telnet::Data, Some(byte)),
            Telnet::Command => match byte {
                IAC => (Telnet::Data, Some(IAC)),
                SB => (Telnet::Sub(0), None),
                b if NEGOTIATION.contains(&b) => (Telnet::Option, None),
                _ => (Telnet::Data, None),
            },
            Telnet::Option => (Telnet::Data, None),
            Telnet::Sub(n) if byte == IAC => (Telnet::SubIac(n + 1), None),
            Telnet::Sub(n) => (Telnet::Sub(n + 1), None),
            Telnet::SubIac(_) if byte == SE => (Telnet::Data, None),
            Telnet::SubIac(n) => (Telnet::Sub(n + 1), None),
        }
    }
}

/// Splits a byte stream into lines of at most `max_line_bytes` bytes, leaving out Telnet
/// commands.
#[derive(Debug)]
pub struct LineReader {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The longest line accepted, in bytes, line ending excluded.
    max_line_bytes: usize,
    /// Whether the current line passed the limit and is being skipped.
    skipping: bool,
    /// Where the stream is in a Telnet command.
    telnet: Telnet,
}

impl LineReader {
    /// A reader that refuses lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineReader {
        LineReader {
            partial: Vec::new(),
            max_line_bytes,
            skipping: false,
            telnet: Telnet::Data,
        }
    }

    /// Consumes bytes from the front of `input` until a line is complete or too long
    /// (`Some`), or `input` is used up (`None`). Call again until `None`.
    pub fn read(&mut self, input: &mut &[u8]) -> Option<LineEvent> {
        while let Some(&first) = input.first() {
            if self.telnet == Telnet::Command && first < SE {
                // Not a command: a stray 0xFF from a client that is not Telnet (a Latin-1
                // `ÿ`, binary noise). It stays in the text, where it becomes U+FFFD, and
                // the byte after it is read as text too. Both are taken here, so that an
                // event always comes with input consumed (a `TooLong` from the 0xFF
                // leaves the line skipped, and the next byte cannot add a second event).
                *input = &input[1..];
                self.telnet = Telnet::Data;
                let stray = self.take(&[IAC], false);
                let next = if first == b'\n' {
                    self.take(&[], true)
                } else {
                    self.take(&[first], false)
                };
                if let Some(event) = stray.or(next) {
                    return Some(event);
                }
                continue;
            }
            if matches!(self.telnet, Telnet::Sub(n) if n >= MAX_SUBNEGOTIATION) {
                // Too long for a subnegotiation: garbage, not Telnet. The byte here is
                // read afresh, as text (or as the start of a command).
                self.telnet = Telnet::Data;
                continue;
            }
            if self.telnet != Telnet::Data {
                *input = &input[1..];
                let (next, data) = self.telnet.step(first);
                self.telnet = next;
                if let Some(event) = data.and_then(|byte| self.take(&[byte], false)) {
                    return Some(event);
                }
                continue;
            }
            // Text runs up to a line ending or a Telnet command, whichever is first.
            let stop = input.iter().position(|&b| b == b'\n' || b == IAC);
            let piece = &input[..stop.unwrap_or(input.len())];
            let newline = stop.is_some_and(|at| input[at] == b'\n');
            if stop.is_some() && !newline {
                self.telnet = Telnet::Command;
            }
            *input = &input[stop.map_or(input.len(), |at| at + 1)..];
            if let Some(event) = self.take(piece, newline) {
                return Some(event);
            }
        }
        None
    }

    /// Adds a piece of text to the current line, and ends the line if `newline`.
    fn take(&mut self, piece: &[u8], newline: bool) -> Option<LineEvent> {
        if self.skipping {
            self.skipping = !newline;
            return None;
        }
        if self.partial.len() + piece.len() > self.max_line_bytes + 1 {
            // The +1 allows for a `\r` that belongs to the line ending.
            self.partial.clear();
            self.skipping = !newline;
            return Some(LineEvent::TooLong);
        }
        self.partial.extend_from_slice(piece);
        newline.then(|| self.take_line())
    }

    /// The last line, if the stream ended without a final `\n`: a client that sends
    /// half a line and closes has said it, as `printf hi | nc` means.
    pub fn finish(&mut self) -> Option<LineEvent> {
        if self.telnet == Telnet::Command {
            // A 0xFF with nothing after it starts no command: it was text.
            self.telnet = Telnet::Data;
            if let Some(event) = self.take(&[IAC], false) {
                return Some(event);
            }
        }
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
        assert_eq!(
            lines(&mut reader, b"a\xfeb\xc3\n", 100),
            [line("a\u{fffd}b\u{fffd}")]
        );
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

    #[test]
    fn telnet_commands_are_taken_out_in_any_pieces() {
        // IAC DO ECHO, IAC IP (Ctrl-C), IAC SB NAWS 0 80 0 24 IAC SE, IAC IAC (a 0xFF
        // byte), IAC WILL, IAC AYT, then text, and an IAC IAC inside a subnegotiation.
        let input = b"\xff\xfd\x01hel\xff\xf4lo\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0\r\n\
            a\xff\xffb\xff\xfb\x18\xff\xf6c\n\xff\xfa\x18\xff\xff\n\xff\xf0d\n";
        for piece in 1..=input.len() {
            let mut reader = LineReader::new(100);
            assert_eq!(
                lines(&mut reader, input, piece),
                [line("hello"), line("a\u{fffd}bc"), line("d")],
                "{piece}"
            );
            assert_eq!(reader.finish(), None);
        }
    }

    #[test]
    fn a_stray_0xff_that_starts_no_command_stays_as_text() {
        let input = b"ff\xff bell\n\xff\n\xffx\xff\xf4y\nlast\xff";
        for piece in 1..=input.len() {
            let mut reader = LineReader::new(100);
            assert_eq!(
                lines(&mut reader, input, piece),
                [
                    line("ff\u{fffd} bell"),
                    line("\u{fffd}"),
                    line("\u{fffd}xy")
                ],
                "{piece}"
            );
            // The last 0xFF, with the stream's end after it, is text too.
            assert_eq!(reader.finish(), Some(line("last\u{fffd}")), "{piece}");
        }
    }

    #[test]
    fn an_endless_subnegotiation_does_not_swallow_the_stream() {
        let mut input = b"\xff\xfa".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_SUBNEGOTIATION));
        input.extend_from_slice(b"hi\n");
        let mut reader = LineReader::new(100);
        assert_eq!(lines(&mut reader, &input, 7), [line("hi")]);
    }

    /// Regression test for the bug fuzzing found (fuzz/RESULTS.md, fixed in 47230d5; the
    /// input is `fuzz/corpus/line_reader/seed-regression-stray-ff-at-limit`): a stray 0xFF
    /// that fills a line past its limit, read at the start of a call, made `read` report
    /// `TooLong` without consuming the byte after it, an event that came from no input.
    /// Every `read` that returns an event must have consumed input, and `None` only
    /// once the input is used up, whatever the pieces.
    #[test]
    fn a_stray_0xff_at_the_limit_consumes_its_input_before_reporting() {
        let input = b"ab\xffc\nk\n";
        for cut in 0..=input.len() {
            for second_cut in cut..=input.len() {
                let pieces = [&input[..cut], &input[cut..second_cut], &input[second_cut..]];
                let mut reader = LineReader::new(1);
                let mut events = Vec::new();
                for piece in pieces {
                    let mut rest = piece;
                    loop {
                        let before = rest.len();
                        match reader.read(&mut rest) {
                            Some(event) => {
                                assert!(
                                    rest.len() < before,
                                    "{event:?} from no input, pieces {pieces:?}"
                                );
                                events.push(event);
                            }
                            None => {
                                assert!(rest.is_empty(), "None with input left, {pieces:?}");
                                break;
                            }
                        }
                    }
                }
                assert_eq!(events, [LineEvent::TooLong, line("k")], "{pieces:?}");
                assert_eq!(reader.finish(), None, "{pieces:?}");
            }
        }
    }
}
