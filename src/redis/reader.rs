//! [`ReplyReader`]: bytes from the server in, whole RESP3 frames out.
//!
//! `redis-protocol` decodes a frame only once all of it is in the buffer, and it starts
//! from the frame's first byte on every call. Called on every read while a large reply
//! arrives, that is quadratic: for a half-arrived 6.6 MB array of 600,000 short strings
//! it takes 72 ms (release build) just to answer "incomplete", so a hundred reads of
//! 64 KiB would spend seconds. Its parser is also recursive with no depth limit: a reply nested 100
//! deep overflows a debug build's 2 MiB thread stack, and a stack overflow aborts the
//! whole process.
//!
//! So before decoding, the reader *walks* the frame: a resumable pass that reads only
//! the type bytes, lengths and counts, so it knows where the frame ends and how deep it
//! nests. Each byte is walked once however the frame is split, and the decoder runs once
//! per frame, on exactly that frame's bytes. The walk checks what the decoder would not
//! survive (depth) or should not be asked to wait for (size); everything else about the
//! bytes is the decoder's to judge.

use redis_protocol::resp3::decode::complete::decode;
use redis_protocol::resp3::types::OwnedFrame;

use super::LinkError;

/// The largest reply a link accepts: 64 MiB. Beyond it the link fails rather than
/// buffer more. Redis's own limit for one string is 512 MiB (`proto-max-bulk-len`), but
/// nothing the chat stores comes close to 64 MiB.
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// How deep a reply may nest. Redis's deepest replies (`COMMAND DOCS`) nest six levels;
/// the limit keeps the recursive decoder well inside a thread's stack (measured: a debug
/// build overflows a 2 MiB stack between 64 and 100 levels).
pub const MAX_NESTING: usize = 32;

/// The input buffer and the walk of the frame at its front.
#[derive(Debug)]
pub struct ReplyReader {
    /// Bytes received and not yet decoded, from `start`. Bytes before `start` belong to
    /// decoded frames and are dropped the next time bytes arrive.
    input: Vec<u8>,
    /// Where the next frame begins in `input`.
    start: usize,
    /// How far the frame at `start` has been walked.
    walk: Walk,
    /// [`MAX_REPLY_BYTES`], smaller in tests.
    max_reply_bytes: usize,
}

/// The resumable state of walking one frame.
#[derive(Debug, Default)]
struct Walk {
    /// Bytes of the frame walked, counted from its start: always the start of a header
    /// line (a type byte) or of a blob's body.
    walked: usize,
    /// Bytes after `walked` already searched for the end of the header line, so a long
    /// line arriving a few bytes at a time is searched once.
    searched: usize,
    /// For each aggregate open around the position, how many elements it still holds.
    /// Its length is the nesting depth.
    open: Vec<usize>,
}

/// What a header line says comes next.
enum Header {
    /// A whole value on one line: `+OK`, `:1`, `_`.
    Line,
    /// A body of this many bytes, then CRLF: `$`, `!`, `=`.
    Blob(usize),
    /// This many elements: `*`, `~`, `>`; twice the count for `%`; and for `|`
    /// (attributes) the pairs plus the value they describe.
    Aggregate(usize),
}

impl ReplyReader {
    /// An empty reader with the limit [`MAX_REPLY_BYTES`].
    pub fn new() -> ReplyReader {
        ReplyReader::with_limit(MAX_REPLY_BYTES)
    }

    fn with_limit(max_reply_bytes: usize) -> ReplyReader {
        ReplyReader {
            input: Vec::new(),
            start: 0,
            walk: Walk::default(),
            max_reply_bytes,
        }
    }

    /// Appends bytes read from the socket. The decoded frames before them are dropped
    /// first, so what moves is only the unfinished frame's start: each byte is moved at
    /// most once after it arrives.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.start
    }

    /// The next whole frame, `None` if it has not all arrived yet.
    pub fn next_frame(&mut self) -> Result<Option<OwnedFrame>, LinkError> {
        let frame_bytes = &self.input[self.start..];
        let Some(length) = self.walk.advance(frame_bytes, self.max_reply_bytes)? else {
            return Ok(None);
        };
        let frame = &frame_bytes[..length];
        match decode(frame) {
            Ok(Some((decoded, used))) if used == length => {
                self.start += length;
                self.walk = Walk::default();
                Ok(Some(decoded))
            }
            Ok(_) => Err(LinkError::Malformed(
                "the frame's length is not what its header lines say".into(),
            )),
            Err(error) => Err(LinkError::Malformed(error.details().to_owned())),
        }
    }
}

impl Default for ReplyReader {
    fn default() -> ReplyReader {
        ReplyReader::new()
    }
}

impl Walk {
    /// Walks on through `frame` (the bytes from the frame's start): `Some(length)` once
    /// the frame is whole, `None` while bytes are missing.
    fn advance(&mut self, frame: &[u8], limit: usize) -> Result<Option<usize>, LinkError> {
        loop {
            let line_start = self.walked;
            let Some(rest) = frame.get(line_start + self.searched..) else {
                return Ok(None);
            };
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                self.searched += rest.len();
                return self.too_large(frame.len(), limit).map(|()| None);
            };
            let line_end = line_start + self.searched + newline; // the '\n'
            let line = &frame[line_start..line_end];
            let line = line.strip_suffix(b"\r").ok_or_else(|| {
                LinkError::Malformed("a header line ends in LF without CR".into())
            })?;
            let after_line = line_end + 1;
            let (element_end, nested) = match header(line)? {
                Header::Line => (after_line, None),
                Header::Blob(length) => {
                    if length > limit {
                        return Err(LinkError::TooLarge { limit });
                    }
                    (after_line + length + 2, None)
                }
                Header::Aggregate(0) => (after_line, None),
                Header::Aggregate(count) => (after_line, Some(count)),
            };
            if element_end > limit {
                return Err(LinkError::TooLarge { limit });
            }
            if element_end > frame.len() {
                // A blob's body is missing: wait at its header line, which the next
                // call finds at once.
                self.searched = line_end - line_start;
                return Ok(None);
            }
            if nested.is_none() && element_end > after_line {
                // redis-protocol takes any two bytes after a blob; a wrong length would
                // only show as garbage at the next frame, or never.
                if frame.get(element_end - 2..element_end) != Some(b"\r\n") {
                    return Err(LinkError::Malformed("a blob does not end in CRLF".into()));
                }
            }
            self.walked = element_end;
            self.searched = 0;
            if let Some(count) = nested {
                if self.open.len() == MAX_NESTING {
                    return Err(LinkError::TooDeep);
                }
                self.open.push(count);
            } else if self.element_done() {
                return Ok(Some(self.walked));
            }
        }
    }

    /// One element ended: counts it off its aggregate, and each aggregate it completes
    /// off the one around it. True when nothing is left open: the frame is whole.
    fn element_done(&mut self) -> bool {
        while let Some(left) = self.open.last_mut() {
            *left -= 1;
            if *left > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }

    fn too_large(&self, buffered: usize, limit: usize) -> Result<(), LinkError> {
        if buffered > limit {
            Err(LinkError::TooLarge { limit })
        } else {
            Ok(())
        }
    }
}

/// Reads a header line (without its CRLF): what follows it.
fn header(line: &[u8]) -> Result<Header, LinkError> {
    let Some((&kind, rest)) = line.split_first() else {
        return Err(LinkError::Malformed(
            "an empty line where a frame begins".into(),
        ));
    };
    let count = || -> Result<usize, LinkError> {
        std::str::from_utf8(rest)
            .ok()
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<usize>().ok())
            .ok_or_else(|| {
                let shown = String::from_utf8_lossy(&line[..line.len().min(32)]).into_owned();
                if rest.first() == Some(&b'?') {
                    LinkError::Malformed(format!(
                        "streamed RESP3 frames are not supported: {shown:?}"
                    ))
                } else {
                    LinkError::Malformed(format!("bad length in {shown:?}"))
                }
            })
    };
    Ok(match kind {
        // Simple string, simple error, number, double, big number, boolean, null.
        b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => Header::Line,
        // Blob string, blob error, verbatim string.
        b'$' | b'!' | b'=' => Header::Blob(count()?),
        // Array, set, push.
        b'*' | b'~' | b'>' => Header::Aggregate(count()?),
        b'%' => Header::Aggregate(count()?.checked_mul(2).ok_or_else(overflow)?),
        b'|' => Header::Aggregate(
            count()?
                .checked_mul(2)
                .and_then(|n| n.checked_add(1))
                .ok_or_else(overflow)?,
        ),
        other => {
            return Err(LinkError::Malformed(format!(
                "{:?} does not begin a RESP3 frame",
                char::from(other)
            )));
        }
    })
}

fn overflow() -> LinkError {
    LinkError::Malformed("an aggregate's length overflows".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::Value;

    /// Feeds `chunks` one by one and collects every frame, as values.
    fn read(reader: &mut ReplyReader, chunks: &[&[u8]]) -> Result<Vec<Value>, LinkError> {
        let mut values = Vec::new();
        for chunk in chunks {
            reader.extend(chunk);
            while let Some(frame) = reader.next_frame()? {
                values.push(Value::from(frame));
            }
        }
        Ok(values)
    }

    #[test]
    fn frames_back_to_back_in_one_read() {
        let mut reader = ReplyReader::new();
        let values = read(&mut reader, &[b"+OK\r\n:1\r\n$2\r\nhi\r\n*1\r\n_\r\n"]).unwrap();
        assert_eq!(
            values,
            [
                Value::Bytes(b"OK".to_vec()),
                Value::Int(1),
                Value::Bytes(b"hi".to_vec()),
                Value::Array(vec![Value::Nil]),
            ]
        );
        assert_eq!(reader.buffered(), 0);
    }

    /// Every RESP3 type the walk knows, each split at every byte boundary.
    #[test]
    fn each_type_split_at_every_byte() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-5\r\n",
            b",1.5\r\n",
            b"(12345678901234567890\r\n",
            b"#f\r\n",
            b"_\r\n",
            b"$5\r\nab\r\nc\r\n",
            b"$0\r\n\r\n",
            b"!3\r\nERR\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"*2\r\n*1\r\n:1\r\n*0\r\n",
            b"~1\r\n+a\r\n",
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n",
            b"%2\r\n+a\r\n*1\r\n:1\r\n+b\r\n%0\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        ];
        for &bytes in cases {
            let whole = read(&mut ReplyReader::new(), &[bytes]).unwrap();
            assert_eq!(whole.len(), 1, "{:?}", String::from_utf8_lossy(bytes));
            for split in 1..bytes.len() {
                let (a, b) = bytes.split_at(split);
                let mut reader = ReplyReader::new();
                assert_eq!(read(&mut reader, &[a]).unwrap(), []);
                assert_eq!(read(&mut reader, &[b]).unwrap(), whole);
            }
            let bytes_one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(
                read(&mut ReplyReader::new(), &bytes_one_by_one).unwrap(),
                whole
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for garbage in [
            &b"hello\r\n"[..],
            b"\r\n",
            b"$x\r\n",
            b"$-3\r\n",
            b"*1x\r\n",
            b"$?\r\n;3\r\nabc\r\n;0\r\n",
            b"+OK\n",
            b"#x\r\n",
            b"$3\r\nabcXY",
            b"HELLO 3\r\n",
            b"%99999999999999999999\r\n",
            b"%9999999999999999999\r\n",
        ] {
            let result = read(&mut ReplyReader::new(), &[garbage]);
            assert!(
                matches!(result, Err(LinkError::Malformed(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |depth: usize| {
            let mut bytes = b"*1\r\n".repeat(depth);
            bytes.extend_from_slice(b":1\r\n");
            bytes
        };
        let mut value = read(&mut ReplyReader::new(), &[&nested(MAX_NESTING)]).unwrap();
        for _ in 0..MAX_NESTING {
            value = value.pop().unwrap().into_array().unwrap();
        }
        assert_eq!(value, [Value::Int(1)]);
        // A million levels: refused by the walk, before the decoder recurses.
        for depth in [MAX_NESTING + 1, 1_000_000] {
            let result = read(&mut ReplyReader::new(), &[&nested(depth)]);
            assert!(matches!(result, Err(LinkError::TooDeep)), "{result:?}");
        }
    }

    #[test]
    fn replies_are_bounded() {
        let mut reader = ReplyReader::with_limit(100);
        assert_eq!(read(&mut reader, &[b"$90\r\n", &[b'x'; 50]]).unwrap(), []);
        // A declared length beyond the limit fails at once, before its bytes arrive.
        let result = read(&mut ReplyReader::with_limit(100), &[b"$101\r\n"]);
        assert!(matches!(result, Err(LinkError::TooLarge { limit: 100 })));
        let result = read(&mut ReplyReader::new(), &[b"$67108865\r\n"]);
        assert!(matches!(result, Err(LinkError::TooLarge { .. })));
        // So does an aggregate once its elements pass it,
        let mut reader = ReplyReader::with_limit(100);
        let result = read(&mut reader, &[b"*1000\r\n", &b":1\r\n".repeat(30)]);
        assert!(matches!(result, Err(LinkError::TooLarge { limit: 100 })));
        // and a header line that never ends.
        let result = read(&mut ReplyReader::with_limit(100), &[&[b'+'; 101]]);
        assert!(matches!(result, Err(LinkError::TooLarge { limit: 100 })));
        // The limit is per reply: many small replies pass.
        let many = b":1\r\n".repeat(1000);
        let values = read(&mut ReplyReader::with_limit(100), &[&many]).unwrap();
        assert_eq!(values.len(), 1000);
    }

    /// The measurement behind the walk: 8 MiB arriving in 64 KiB reads. As one blob it
    /// takes milliseconds. As an array of 760,000 short strings, decoding it once takes
    /// most of two seconds in a debug build, so the chunked read is compared with one
    /// read of the whole: re-decoding from the frame's start on each of 128 reads would
    /// cost some 30 whole decodes (measured: an "incomplete" answer for half the array
    /// costs a quarter of a whole decode); walked, it costs about one.
    #[test]
    fn an_8_mib_reply_in_64_kib_reads_is_read_in_linear_time() {
        let timed_read = |bytes: &[u8], chunk: usize| {
            let started = std::time::Instant::now();
            let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
            let values = read(&mut ReplyReader::new(), &chunks).unwrap();
            assert_eq!(values.len(), 1);
            started.elapsed()
        };

        let mut blob = b"$8388608\r\n".to_vec();
        blob.resize(blob.len() + 8 * 1024 * 1024, b'v');
        blob.extend_from_slice(b"\r\n");
        let elapsed = timed_read(&blob, 64 * 1024);
        assert!(elapsed.as_millis() < 1_000, "blob: {elapsed:?}");

        let n = 8 * 1024 * 1024 / 11;
        let mut array = format!("*{n}\r\n").into_bytes();
        for i in 0..n {
            array.extend_from_slice(format!("$5\r\n{:05}\r\n", i % 100_000).as_bytes());
        }
        let whole = timed_read(&array, array.len());
        let chunked = timed_read(&array, 64 * 1024);
        assert!(
            chunked < whole * 3 + std::time::Duration::from_millis(500),
            "array: {chunked:?} in 64 KiB reads, {whole:?} in one"
        );
    }

    /// No input makes the reader panic: random bytes, and random bytes after a valid
    /// prefix, split anywhere.
    #[test]
    fn random_bytes_never_panic() {
        use proptest::prelude::*;
        let alphabet = prop::sample::select(b"+-:,(#_$!=*~>%|0123456789?\r\nab".to_vec());
        proptest!(ProptestConfig::with_cases(2_000), |(
            bytes in prop::collection::vec(alphabet, 0..64),
            split in 0usize..64,
        )| {
            let split = split.min(bytes.len());
            let mut reader = ReplyReader::with_limit(1024);
            let _ = read(&mut reader, &[&bytes[..split], &bytes[split..]]);
        });
    }
}
