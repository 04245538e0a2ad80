//! The marker every benchmark message carries, and the pre-encoded frame that carries it.
//!
//! A message is printable ASCII text that begins with a fixed-width marker and is padded
//! with filler to the requested size:
//!
//! ```text
//! ~lcb1:RRRRRRRR:SSSSSSSS:QQQQQQQQ:TTTTTTTTTTTT~abcdefghij...
//!       run      sender   sequence send time (ns)
//! ```
//!
//! All fields are lowercase hexadecimal of fixed width, so the marker is always
//! [`MARKER_LEN`] bytes and a new sequence number or time can be written over the old one
//! in place. The run id is random per run: a chat server replays old messages to new
//! members (its room history), and a shared relay may carry another generator's traffic;
//! markers of another run are recognised and ignored. The characters used (`~`, `:`,
//! hex digits, letters) need no escaping in JSON, so a server that wraps the text in a
//! JSON envelope (`{"type":"message",...,"text":"~lcb1:..."}`) leaves the marker intact,
//! and receivers look for it anywhere in the message ([`find_markers`]).
//!
//! With `--payload chat-json` the marker is inside such an envelope from the start
//! ([`ChatJson`]): `{"type":"message","room":"lobby","from":"user3","text":"~lcb1:...~
//! Going to the server is fine..."}`, exactly `--size` bytes, with sentences drawn anew
//! for every message by a generator seeded with the run and the sender. The filler
//! compresses about 20 times, which no chat does; this compresses about 2 times, as chat
//! does, so a benchmark with permessage-deflate measures realistic work and bytes.

use loopchat::ws::frame::{Opcode, encode_frame};
use loopchat::ws::mask::apply_mask;

/// What every marker starts with: a character that needs no JSON escaping and is not used
/// in the filler, the tool's name and the format's version.
pub const PREFIX: &[u8] = b"~lcb1:";

/// The length of a whole marker, which is also the smallest message size.
pub const MARKER_LEN: usize = 46;

// Where each field starts, counted from the start of the marker.
const RUN_AT: usize = 6;
const SENDER_AT: usize = 15;
const SEQ_AT: usize = 24;
const TIME_AT: usize = 33;
const END_AT: usize = 45;

/// Padding after the marker: printable, JSON-safe, and without `~`.
const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The fields of one marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The run that sent it; random per run.
    pub run: u32,
    /// The sender's slot number (0 to senders - 1), not its connection index.
    pub sender: u32,
    /// The sender's sequence number for this message, from 0.
    pub seq: u32,
    /// When the message was sent (or, at a fixed rate, scheduled), in nanoseconds since
    /// the run's epoch. 48 bits: 78 hours.
    pub sent_ns: u64,
}

impl Marker {
    /// Writes the marker's text.
    pub fn write(&self, out: &mut [u8; MARKER_LEN]) {
        out[..RUN_AT].copy_from_slice(PREFIX);
        write_hex(&mut out[RUN_AT..RUN_AT + 8], self.run.into());
        out[SENDER_AT - 1] = b':';
        write_hex(&mut out[SENDER_AT..SENDER_AT + 8], self.sender.into());
        out[SEQ_AT - 1] = b':';
        write_hex(&mut out[SEQ_AT..SEQ_AT + 8], self.seq.into());
        out[TIME_AT - 1] = b':';
        write_hex(&mut out[TIME_AT..END_AT], self.sent_ns);
        out[END_AT] = b'~';
    }

    /// Reads a marker from the start of `bytes`, or `None` if they do not start with a
    /// well-formed one. This runs for every message received, so the hex fields are read
    /// eight digits at a time.
    pub fn parse(bytes: &[u8]) -> Option<Marker> {
        let m: &[u8; MARKER_LEN] = bytes.get(..MARKER_LEN)?.try_into().ok()?;
        let separators_ok = m.starts_with(PREFIX)
            && m[SENDER_AT - 1] == b':'
            && m[SEQ_AT - 1] == b':'
            && m[TIME_AT - 1] == b':'
            && m[END_AT] == b'~';
        if !separators_ok {
            return None;
        }
        let eight = |at: usize| hex8(m[at..at + 8].try_into().expect("8 bytes"));
        // The time has 12 digits: the first 8 give its top 32 bits, the last 8 its low 32.
        let (time_high, time_low) = (eight(TIME_AT)?, eight(END_AT - 8)?);
        Some(Marker {
            run: eight(RUN_AT)?,
            sender: eight(SENDER_AT)?,
            seq: eight(SEQ_AT)?,
            sent_ns: u64::from(time_high) << 16 | u64::from(time_low & 0xffff),
        })
    }
}

/// The message text for `marker`, padded with filler to `size` bytes (at least
/// [`MARKER_LEN`]).
pub fn message_text(marker: &Marker, size: usize) -> Vec<u8> {
    let mut text = Vec::new();
    write_filler_text(marker, size, &mut text);
    text
}

/// Replaces `out` with [`message_text`]'s text, reusing its allocation.
pub fn write_filler_text(marker: &Marker, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.resize(size.max(MARKER_LEN), 0);
    let mut head = [0; MARKER_LEN];
    marker.write(&mut head);
    out[..MARKER_LEN].copy_from_slice(&head);
    for (byte, fill) in out[MARKER_LEN..].iter_mut().zip(FILLER.iter().cycle()) {
        *byte = *fill;
    }
}

/// Every well-formed marker in `message`, in order: one at offset 0 from a server that
/// relays messages unchanged, one inside the JSON of a chat envelope, many in a replayed
/// history. Text that merely starts like a marker is skipped.
///
/// It looks for the `~` that starts a marker with `memchr` (the filler has none, and JSON
/// rarely does) and checks the prefix there: cheaper, for messages of a few dozen bytes,
/// than setting up a substring search for each.
pub fn find_markers(message: &[u8]) -> Markers<'_> {
    Markers { rest: message }
}

/// The iterator of [`find_markers`].
#[derive(Debug, Clone)]
pub struct Markers<'a> {
    /// What has not been searched yet.
    rest: &'a [u8],
}

impl Iterator for Markers<'_> {
    type Item = Marker;

    fn next(&mut self) -> Option<Marker> {
        loop {
            // A relayed message starts with its marker: no need to search for it.
            let at = match self.rest.first() {
                Some(b'~') => 0,
                _ => memchr::memchr(b'~', self.rest)?,
            };
            let candidate = &self.rest[at..];
            if let Some(marker) = Marker::parse(candidate) {
                self.rest = &candidate[MARKER_LEN..];
                return Some(marker);
            }
            self.rest = &candidate[1..];
        }
    }
}

/// The fewest bytes a chat-json message can have: its envelope, the longest sender's
/// nick, the marker, and room to spare.
pub const MIN_CHAT_JSON_SIZE: usize = 128;

/// Common English words, most frequent first, with some of a chat's own. No character
/// needs escaping in JSON, and none is `~`, so markers stay the only `~` in a message.
const WORDS: &[&str] = &[
    "the",
    "I",
    "to",
    "a",
    "and",
    "is",
    "it",
    "you",
    "that",
    "of",
    "in",
    "we",
    "for",
    "on",
    "this",
    "be",
    "it's",
    "just",
    "so",
    "not",
    "but",
    "with",
    "have",
    "was",
    "are",
    "can",
    "do",
    "if",
    "my",
    "me",
    "at",
    "what",
    "I'm",
    "think",
    "all",
    "there",
    "about",
    "out",
    "up",
    "will",
    "no",
    "yes",
    "they",
    "get",
    "like",
    "now",
    "one",
    "go",
    "don't",
    "know",
    "or",
    "from",
    "an",
    "right",
    "when",
    "how",
    "then",
    "good",
    "here",
    "some",
    "yeah",
    "time",
    "see",
    "more",
    "should",
    "would",
    "need",
    "your",
    "also",
    "did",
    "been",
    "ok",
    "today",
    "work",
    "still",
    "has",
    "going",
    "make",
    "let",
    "want",
    "thanks",
    "new",
    "could",
    "by",
    "can't",
    "our",
    "them",
    "back",
    "look",
    "first",
    "really",
    "any",
    "why",
    "who",
    "got",
    "because",
    "take",
    "which",
    "next",
    "last",
    "same",
    "way",
    "sure",
    "again",
    "already",
    "maybe",
    "after",
    "before",
    "tomorrow",
    "week",
    "day",
    "morning",
    "lunch",
    "meeting",
    "call",
    "team",
    "people",
    "thing",
    "things",
    "much",
    "well",
    "only",
    "even",
    "than",
    "fix",
    "bug",
    "build",
    "test",
    "tests",
    "deploy",
    "server",
    "release",
    "branch",
    "review",
    "change",
    "changes",
    "issue",
    "ticket",
    "done",
    "ready",
    "merge",
    "push",
    "main",
    "logs",
    "error",
    "broken",
    "works",
    "working",
    "fine",
    "slow",
    "fast",
    "late",
    "soon",
    "later",
    "nice",
    "great",
    "cool",
    "hey",
    "hi",
    "anyone",
    "everyone",
    "please",
    "sorry",
    "said",
    "says",
    "try",
    "tried",
    "run",
    "running",
    "check",
    "checked",
    "page",
    "link",
    "file",
    "data",
    "database",
    "query",
    "cache",
    "memory",
    "disk",
    "network",
    "client",
    "users",
    "customer",
    "feature",
    "design",
    "plan",
    "idea",
    "question",
    "answer",
    "problem",
    "reason",
    "number",
    "graph",
    "latency",
    "load",
    "traffic",
    "weekend",
    "friday",
    "monday",
    "coffee",
    "office",
    "home",
    "remote",
    "train",
    "minutes",
    "hours",
    "other",
    "many",
    "most",
    "every",
    "something",
    "nothing",
    "everything",
    "better",
    "worse",
    "big",
    "small",
    "long",
    "short",
    "old",
    "little",
    "never",
    "always",
    "often",
    "probably",
    "actually",
    "though",
    "while",
    "until",
    "since",
    "into",
    "over",
    "under",
    "between",
    "around",
    "without",
    "through",
    "where",
    "those",
    "these",
    "their",
    "its",
    "his",
    "her",
    "she",
    "he",
    "him",
    "us",
    "were",
    "had",
    "does",
    "doing",
    "being",
    "made",
    "find",
    "found",
    "give",
    "tell",
    "ask",
    "keep",
    "start",
    "started",
    "stop",
    "wait",
    "move",
    "write",
    "read",
    "send",
    "sent",
    "open",
    "close",
    "turn",
    "show",
    "seems",
    "looks",
    "feel",
    "guess",
    "mean",
    "hope",
    "agree",
    "happen",
    "happened",
    "wrong",
    "true",
    "easy",
    "hard",
    "clear",
    "weird",
    "odd",
    "half",
    "whole",
    "part",
    "end",
    "side",
    "top",
    "point",
    "case",
    "version",
    "update",
    "note",
    "docs",
    "notes",
    "list",
    "step",
    "steps",
    "rest",
];

/// Phrases a chat says again and again: repeated within a message, they give deflate the
/// matches that real text gives it (a list of single words alone compresses less than
/// chat does).
const PHRASES: &[&str] = &[
    "I think",
    "in the",
    "on the",
    "going to",
    "let me know",
    "for the",
    "I don't know",
    "it's fine",
    "at the",
    "to the",
    "we need to",
    "do you",
    "can you",
    "I'll",
    "is it",
    "it was",
    "the server",
    "the build",
    "the test",
    "the release",
    "this morning",
    "right now",
    "as well",
    "a bit",
    "a lot of",
    "one of the",
    "I guess",
    "thank you",
    "I can",
    "we can",
    "should be",
    "will be",
    "have to",
    "want to",
    "looks like",
    "by the way",
    "at least",
    "in a minute",
    "on it",
    "sounds good",
    "makes sense",
    "not sure",
    "end of the day",
    "next week",
    "last night",
    "the new version",
    "the same thing",
    "out of",
    "as soon as",
    "take a look",
    "what do you think",
];

/// A tiny seeded generator (xorshift64*): deterministic per run and sender, so a run can
/// be repeated, and cheap beside the compression it feeds.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // A zero state stays zero; mix the seed so nearby seeds diverge at once.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// A word or, one time in two, a phrase; the common ones more often.
    fn words(&mut self) -> &'static str {
        if self.below(2) == 0 {
            PHRASES[self.below(PHRASES.len())]
        } else {
            self.word()
        }
    }

    /// A word, the common ones more often (the square of a uniform number leans towards
    /// the front of the list, as word frequencies do).
    fn word(&mut self) -> &'static str {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        WORDS[((u * u) * WORDS.len() as f64) as usize]
    }
}

/// Writes chat-like JSON messages of one exact size, each with new sentences:
/// `{"type":"message","room":"lobby","from":"userN","text":"MARKER sentences..."}`.
#[derive(Debug, Clone)]
pub struct ChatJson {
    /// Draws the words.
    rng: Rng,
    /// Everything before the marker, for this sender.
    head: Vec<u8>,
    /// The message size in bytes.
    size: usize,
}

impl ChatJson {
    /// Messages of `size` bytes (at least [`MIN_CHAT_JSON_SIZE`]) for `sender` of `run`.
    pub fn new(run: u32, sender: u32, size: usize) -> ChatJson {
        let head = format!(r#"{{"type":"message","room":"lobby","from":"user{sender}","text":""#);
        ChatJson {
            rng: Rng::new((u64::from(run) << 32) | u64::from(sender)),
            head: head.into_bytes(),
            size: size.max(MIN_CHAT_JSON_SIZE),
        }
    }

    /// Replaces `out` with the next message, carrying `marker`.
    pub fn write(&mut self, marker: &Marker, out: &mut Vec<u8>) {
        const TAIL: &[u8] = b"\"}";
        out.clear();
        out.extend_from_slice(&self.head);
        let mut text = [0; MARKER_LEN];
        marker.write(&mut text);
        out.extend_from_slice(&text);
        let end = self.size - TAIL.len();
        // Sentences of 3 to 14 words, until the message is full; the last is cut.
        while out.len() < end {
            let words = 3 + self.rng.below(12);
            for k in 0..words {
                out.push(b' ');
                let word = self.rng.words().as_bytes();
                if k == 0 {
                    out.push(word[0].to_ascii_uppercase());
                    out.extend_from_slice(&word[1..]);
                } else {
                    out.extend_from_slice(word);
                }
                if k + 1 < words && self.rng.below(9) == 0 {
                    out.push(b',');
                }
            }
            out.push(match self.rng.below(10) {
                0 | 1 => b'?',
                2 => b'!',
                _ => b'.',
            });
        }
        out.truncate(end);
        out.extend_from_slice(TAIL);
    }
}

/// One sender's message, encoded once as a masked text frame and re-stamped in place for
/// each send: only the sequence number and the time change, and only those 21 bytes are
/// rewritten and masked.
///
/// RFC 6455 §5.3 wants a fresh, unpredictable masking key for every frame, so that a
/// script in a browser cannot choose the bytes an intermediary sees on the wire. A load
/// generator runs no untrusted script, and a server cannot tell one key from another, so
/// each connection uses one fixed key (itself random) for all its frames: that is what
/// lets the frame be encoded and masked once instead of once per send.
#[derive(Debug, Clone)]
pub struct FrameTemplate {
    /// The whole frame: header, masking key, masked payload.
    frame: Vec<u8>,
    /// Where the payload starts in `frame`.
    payload_at: usize,
    /// The masking key, which is also written in the header.
    key: [u8; 4],
}

impl FrameTemplate {
    /// The frame for `sender` of `run`, with a payload of `size` bytes, masked with `key`.
    pub fn new(run: u32, sender: u32, size: usize, key: [u8; 4]) -> FrameTemplate {
        let marker = Marker {
            run,
            sender,
            seq: 0,
            sent_ns: 0,
        };
        let text = message_text(&marker, size);
        let mut frame = Vec::new();
        encode_frame(&mut frame, Opcode::Text, true, &text, Some(key));
        let payload_at = frame.len() - text.len();
        FrameTemplate {
            frame,
            payload_at,
            key,
        }
    }

    /// Writes `seq` and `sent_ns` into the frame and returns it, ready to send.
    ///
    /// The payload on the wire is masked, so the new digits are written in clear and then
    /// masked with the key at their offset within the payload (the key's phase is the
    /// offset modulo 4).
    pub fn stamp(&mut self, seq: u32, sent_ns: u64) -> &[u8] {
        let start = self.payload_at + SEQ_AT;
        let field = &mut self.frame[start..self.payload_at + END_AT];
        write_hex(&mut field[..8], seq.into());
        field[8] = b':';
        write_hex(&mut field[9..], sent_ns);
        apply_mask(field, self.key, SEQ_AT);
        &self.frame
    }
}

/// Writes the low `4 * out.len()` bits of `value` as lowercase hex, most significant first.
fn write_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// Reads 8 lowercase hex digits, most significant first, all at once in a `u64`
/// ("SWAR": SIMD within a register); `None` unless every byte is `0`-`9` or `a`-`f`.
fn hex8(digits: [u8; 8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(digits); // the first digit in the lowest byte
    // Which bytes are at least `c`: for bytes below 0x80, adding 0x80 - c sets a byte's
    // high bit exactly when the byte is at least c, with no carry into the next byte.
    let at_least = |c: u8| x.wrapping_add(ONES * u64::from(0x80 - c)) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if x & HIGH != 0 || digit | letter != HIGH {
        return None;
    }
    // A digit's value is its low 4 bits; a letter's, its low 4 bits plus 9. Letters are
    // the bytes with bit 6 set.
    let nibbles = (x & (ONES * 0x0f)) + 9 * ((x >> 6) & ONES);
    // Pack the eight 4-bit values, first digit most significant: pairs into bytes, bytes
    // into 16-bit halves, halves into the result.
    let bytes = ((nibbles & 0x00ff_00ff_00ff_00ff) << 4) | ((nibbles >> 8) & 0x00ff_00ff_00ff_00ff);
    let halves = ((bytes & 0x0000_ffff_0000_ffff) << 8) | ((bytes >> 16) & 0x0000_ffff_0000_ffff);
    Some((((halves & 0xffff) << 16) | ((halves >> 32) & 0xffff)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopchat::ws::{Event, Role, WebSocket};

    const M: Marker = Marker {
        run: 0xdead_beef,
        sender: 7,
        seq: 0x1234_5678,
        sent_ns: 0xabc_def0_1234,
    };

    #[test]
    fn marker_text_round_trips() {
        let mut text = [0; MARKER_LEN];
        M.write(&mut text);
        assert_eq!(&text, b"~lcb1:deadbeef:00000007:12345678:0abcdef01234~");
        assert_eq!(Marker::parse(&text), Some(M));
    }

    #[test]
    fn message_is_padded_printable_json_safe_text() {
        let text = message_text(&M, 100);
        assert_eq!(text.len(), 100);
        assert!(
            text.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        // The filler never starts a second marker.
        assert_eq!(find_markers(&text).collect::<Vec<_>>(), vec![M]);
        // Smaller sizes are raised to the marker's length.
        assert_eq!(message_text(&M, 3).len(), MARKER_LEN);
    }

    #[test]
    fn eight_hex_digits_at_once() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for value in [0, 1, 9, 10, 15, 16, 0xabcd_ef01, 0x1234_5678, u32::MAX]
            .into_iter()
            .chain((0..10_000).map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u32
            }))
        {
            let mut digits = [0; 8];
            write_hex(&mut digits, value.into());
            assert_eq!(hex8(digits), Some(value), "{value:#x}");
            // Any byte that is not a lowercase hex digit, anywhere, is refused.
            for at in 0..8 {
                for bad in [
                    b'/', b':', b'@', b'`', b'g', b'G', b'A', b'F', b' ', 0, 0x7f, 0x80, 0xb0,
                    0xe1, 0xff,
                ] {
                    let mut wrong = digits;
                    wrong[at] = bad;
                    assert_eq!(hex8(wrong), None, "{wrong:?}");
                }
            }
        }
    }

    #[test]
    fn malformed_markers_are_skipped() {
        let mut good = [0; MARKER_LEN];
        M.write(&mut good);
        for at in [RUN_AT, SENDER_AT - 1, SEQ_AT + 3, END_AT] {
            let mut bad = good;
            bad[at] = b'x';
            assert_eq!(Marker::parse(&bad), None, "byte {at}");
        }
        assert_eq!(Marker::parse(&good[..MARKER_LEN - 1]), None);
        assert_eq!(find_markers(b"~lcb1:~lcb1:nothing here~~").count(), 0);
    }

    #[test]
    fn marker_found_anywhere_including_a_json_envelope() {
        let text = String::from_utf8(message_text(&M, 64)).unwrap();
        let envelope = serde_json::json!({
            "type": "message", "id": 42, "room": "#lobby", "nick": "guest-3",
            "text": text, "time": 1_700_000_000_000u64,
        })
        .to_string();
        assert!(envelope.contains(&text), "the payload needs no escaping");
        assert_eq!(
            find_markers(envelope.as_bytes()).collect::<Vec<_>>(),
            vec![M]
        );

        // A replayed history holds several; a truncated one at the end is ignored.
        let other = Marker { seq: 9, ..M };
        let mut a = [0; MARKER_LEN];
        let mut b = [0; MARKER_LEN];
        M.write(&mut a);
        other.write(&mut b);
        let mut history = b"{\"messages\":[\"".to_vec();
        history.extend_from_slice(&a);
        history.extend_from_slice(b"\",\"");
        history.extend_from_slice(&b);
        history.extend_from_slice(b"\"]}~lcb1:deadbeef:0000");
        assert_eq!(find_markers(&history).collect::<Vec<_>>(), vec![M, other]);
    }

    #[test]
    fn chat_json_is_json_of_the_exact_size_with_its_marker_and_new_text_each_time() {
        let mut chat = ChatJson::new(M.run, 12, 1024);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for seq in 0..50 {
            let marker = Marker { seq, ..M };
            chat.write(&marker, &mut out);
            assert_eq!(out.len(), 1024);
            let json: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
            assert_eq!(json["type"], "message");
            assert_eq!(json["from"], "user12");
            assert_eq!(find_markers(&out).collect::<Vec<_>>(), vec![marker]);
            assert!(seen.insert(json["text"].as_str().unwrap()[MARKER_LEN..].to_owned()));
        }
        for size in [MIN_CHAT_JSON_SIZE, 129, 500, 70_000] {
            ChatJson::new(u32::MAX, u32::MAX, size).write(&M, &mut out);
            assert_eq!(out.len(), size);
            assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
        // Seeded: the same run and sender say the same things.
        let mut again = ChatJson::new(M.run, 12, 1024);
        let mut first = Vec::new();
        again.write(&Marker { seq: 0, ..M }, &mut first);
        let mut other = ChatJson::new(M.run, 12, 1024);
        other.write(&Marker { seq: 0, ..M }, &mut out);
        assert_eq!(first, out);
    }

    #[test]
    fn chat_json_compresses_like_chat_not_like_filler() {
        use loopchat::ws::deflate::codec::{DEFAULT_LEVEL, compress_message};
        let mut chat = ChatJson::new(7, 3, 1024);
        let mut out = Vec::new();
        let mut compressed = 0;
        for seq in 0..20 {
            chat.write(&Marker { seq, ..M }, &mut out);
            compressed += compress_message(&out, 15, DEFAULT_LEVEL).len();
        }
        // About 2 (1.95 when written): a little better than the distinct sentences of
        // the codec's tests (1.7), in the range real chat shows.
        let ratio = (20 * 1024) as f64 / compressed as f64;
        assert!((1.7..=3.2).contains(&ratio), "ratio {ratio:.2}");
        // The filler, for contrast, is nearly all repetition.
        let filler = compress_message(&message_text(&M, 1024), 15, DEFAULT_LEVEL);
        assert!(filler.len() < 1024 / 8, "{}", filler.len());
    }

    #[test]
    fn stamped_frames_decode_to_the_stamped_marker() {
        for size in [MARKER_LEN, 64, 125, 126, 1000, 70_000] {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            let mut template = FrameTemplate::new(M.run, M.sender, size, key);
            let mut server = WebSocket::new(Role::Server, 1 << 20);
            for (seq, sent_ns) in [(0, 0), (1, 999), (u32::MAX, (1 << 48) - 1), (5, 77)] {
                let mut input = template.stamp(seq, sent_ns);
                let Ok(Some(Event::Text(text))) = server.read(&mut input) else {
                    panic!("not one text frame");
                };
                assert!(input.is_empty());
                assert_eq!(text.len(), size);
                let expected = Marker { seq, sent_ns, ..M };
                let found: Vec<Marker> = find_markers(text.as_bytes()).collect();
                assert_eq!(found, vec![expected], "size {size}");
                assert_eq!(text.as_bytes(), message_text(&expected, size));
            }
        }
    }
}
