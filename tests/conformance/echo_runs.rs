//! Autobahn's sections 12 and 13 as steps: a run of messages cut from a corpus, each
//! sent compressed as agreed and waited for (as Autobahn's `sendOne` waits for
//! `onMessage`), its echo checked frame by frame against RFC 6455 and RFC 7692, inflated
//! when the server compressed it, and compared with what was sent.
//!
//! Autobahn sends 1000 messages per case, up to 128 KiB each: about 900 MB a section
//! group, too much for `cargo test` in the debug build. By default each case sends the
//! first [`sample_count`] of its messages; with `CONFORMANCE_DEFLATE_FULL=1` it sends all
//! 1000.

use crate::common::{MASK, RawClient, client_frame, frame_bytes};
use crate::common::{OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT};
use crate::corpora::Corpus;
use crate::permessage_deflate::{ClientDeflate, Offering};
use crate::{Case, Step, case, clean_close};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

/// Autobahn's count of messages per case in sections 12 and 13.
pub const AUTOBAHN_COUNT: usize = 1000;

/// Autobahn's `MSG_SIZES`: (message length, auto-fragment size; 0: one frame), the
/// same 18 for every corpus and every offer.
pub const MESSAGE_SIZES: [(usize, usize); 18] = [
    (16, 0),
    (64, 0),
    (256, 0),
    (1024, 0),
    (4096, 0),
    (8192, 0),
    (16384, 0),
    (32768, 0),
    (65536, 0),
    (131072, 0),
    (8192, 256),
    (16384, 256),
    (32768, 256),
    (65536, 256),
    (131072, 256),
    (131072, 1024),
    (131072, 4096),
    (131072, 32768),
];

/// What the sample sends per case: messages until this many bytes, so each case costs
/// about the same whatever its message size.
pub const SAMPLE_BYTES: usize = 128 * 1024;

/// Sends at least this many messages per case in the sample, so that the second message
/// of a connection (where context takeover would show) is always tested.
pub const SAMPLE_MIN: usize = 2;

/// Whether `CONFORMANCE_DEFLATE_FULL=1` asks for Autobahn's full counts.
pub fn full_counts() -> bool {
    std::env::var("CONFORMANCE_DEFLATE_FULL").is_ok_and(|value| value == "1")
}

/// How many of Autobahn's 1000 messages of `len` a case sends by default.
pub fn sample_count(len: usize) -> usize {
    (SAMPLE_BYTES / len).clamp(SAMPLE_MIN, AUTOBAHN_COUNT)
}

/// How many messages of `len` a case sends in this run.
pub fn message_count(len: usize) -> usize {
    if full_counts() {
        AUTOBAHN_COUNT
    } else {
        sample_count(len)
    }
}

/// A run of messages, each echoed before the next is sent.
#[derive(Clone, Debug)]
pub struct EchoRun {
    pub corpus: Corpus,
    /// Each message's length: characters for a text corpus, bytes for a binary one.
    pub len: usize,
    /// How many messages: the first `count` of the case's 1000.
    pub count: usize,
    /// The payload bytes per frame (Autobahn's auto-fragment size): the compressed
    /// payload is cut into frames of this many bytes, RSV1 on the first only. 0: one frame.
    pub fragment: usize,
}

impl EchoRun {
    /// Autobahn's case: message length and fragmentation, this run's count.
    pub fn new(corpus: Corpus, len: usize, fragment: usize) -> EchoRun {
        EchoRun {
            corpus,
            len,
            count: message_count(len),
            fragment,
        }
    }

    /// How the runner describes it.
    pub fn describe(&self) -> String {
        let unit = if self.corpus.is_text() {
            "chars"
        } else {
            "bytes"
        };
        let frames = match self.fragment {
            0 => "one frame each".to_owned(),
            size => format!("in frames of {size} bytes"),
        };
        let of = if self.count < AUTOBAHN_COUNT {
            format!(" (the first {} of Autobahn's {AUTOBAHN_COUNT})", self.count)
        } else {
            String::new()
        };
        format!(
            "{} messages{of} of {} {unit} of {}, {frames}",
            self.count,
            self.len,
            self.corpus.describe()
        )
    }

    /// Sends every message and checks every echo. Panics, naming the message, at the
    /// first that fails (the runner reports the panic with the case and the step).
    pub fn play(&self, client: &mut RawClient, deflate: &mut Option<ClientDeflate>) {
        let opcode = if self.corpus.is_text() {
            OP_TEXT
        } else {
            OP_BINARY
        };
        for index in 0..self.count {
            let message = self.corpus.message(self.len, index);
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                send_message(client, deflate.as_mut(), opcode, &message, self.fragment)?;
                let echo = read_message(client, deflate.as_mut(), message.len() * 2 + 1024)?;
                check_echo(opcode, &message, &echo)
            }));
            let why = match result {
                Ok(Ok(())) => continue,
                Ok(Err(why)) => why,
                Err(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(panic without a message)".into()),
            };
            panic!(
                "message {} of {} ({} bytes): {why}",
                index + 1,
                self.count,
                message.len()
            );
        }
    }
}

/// Sends one message: compressed (RSV1) when deflate was agreed, as Autobahn's client
/// sends every message, and cut into frames of `fragment` payload bytes.
pub fn send_message(
    client: &mut RawClient,
    deflate: Option<&mut ClientDeflate>,
    opcode: u8,
    message: &[u8],
    fragment: usize,
) -> Result<(), String> {
    let (payload, rsv1) = match deflate {
        Some(deflate) => (deflate.compress(message), 0x40),
        None => (message.to_vec(), 0),
    };
    let size = if fragment == 0 {
        payload.len().max(1)
    } else {
        fragment
    };
    let count = payload.len().div_ceil(size).max(1);
    let mut bytes = Vec::with_capacity(payload.len() + 14 * count);
    for i in 0..count {
        let piece = &payload[(i * size).min(payload.len())..((i + 1) * size).min(payload.len())];
        let fin = if i + 1 == count { 0x80 } else { 0 };
        let first_byte = if i == 0 {
            fin | rsv1 | opcode
        } else {
            fin | OP_CONT
        };
        bytes.extend_from_slice(&frame_bytes(first_byte, piece, Some(MASK)));
    }
    client
        .stream
        .write_all(&bytes)
        .map_err(|e| format!("could not send: {e}"))
}

/// A message as received: its opcode, its payload (inflated if it came compressed),
/// whether it came compressed, and in how many frames.
#[derive(Debug)]
pub struct Received {
    pub opcode: u8,
    pub payload: Vec<u8>,
    pub compressed: bool,
    pub frames: usize,
}

/// Reads one data message, checking each frame as RFC 6455 §5 and RFC 7692 §6 require
/// of a server: unmasked, RSV2 and RSV3 clear, RSV1 only on the first frame of a data
/// message and only with deflate agreed, never on a control frame; continuations only
/// inside a message. Pings between are answered, Pongs ignored; a Close is an error that
/// says its code and reason.
pub fn read_message(
    client: &mut RawClient,
    mut deflate: Option<&mut ClientDeflate>,
    limit: usize,
) -> Result<Received, String> {
    let mut message: Option<(u8, bool)> = None;
    let mut payload = Vec::new();
    let mut frames = 0;
    loop {
        let frame = client.read_frame();
        let rsv1 = frame.rsv & 0b100 != 0;
        if frame.masked {
            return Err("the server masked a frame".into());
        }
        if frame.rsv & 0b011 != 0 {
            return Err(format!("RSV2 or RSV3 set (RSV {:#05b})", frame.rsv));
        }
        match frame.opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if rsv1 {
                    return Err(format!(
                        "RSV1 on a control frame (opcode {:#x})",
                        frame.opcode
                    ));
                }
                if !frame.fin {
                    return Err("a fragmented control frame".into());
                }
                match frame.opcode {
                    OP_PING => client.send(&client_frame(true, OP_PONG, &frame.payload)),
                    OP_CLOSE => {
                        return Err(format!(
                            "the server closed instead: code {:?}, reason {:?}",
                            frame.close_code(),
                            String::from_utf8_lossy(frame.payload.get(2..).unwrap_or_default())
                        ));
                    }
                    _ => {}
                }
                continue;
            }
            OP_CONT => {
                if message.is_none() {
                    return Err("a continuation frame with no message to continue".into());
                }
                if rsv1 {
                    return Err("RSV1 on a continuation frame".into());
                }
            }
            OP_TEXT | OP_BINARY => {
                if message.is_some() {
                    return Err("a new data frame inside a fragmented message".into());
                }
                if rsv1 && deflate.is_none() {
                    return Err("RSV1 set, but no deflate was agreed".into());
                }
                message = Some((frame.opcode, rsv1));
            }
            other => return Err(format!("reserved opcode {other:#x}")),
        }
        frames += 1;
        payload.extend_from_slice(&frame.payload);
        if frame.fin {
            break;
        }
    }
    let (opcode, compressed) = message.unwrap();
    if compressed {
        let deflate = deflate.as_mut().unwrap();
        payload = deflate
            .inflate(&payload, limit)
            .map_err(|why| format!("the echo ({} bytes compressed) {why}", payload.len()))?;
    }
    Ok(Received {
        opcode,
        payload,
        compressed,
        frames,
    })
}

/// Checks an echo: the same opcode and exactly the same bytes.
fn check_echo(opcode: u8, sent: &[u8], echo: &Received) -> Result<(), String> {
    if echo.opcode != opcode {
        return Err(format!(
            "echoed with opcode {:#x} instead of {opcode:#x}",
            echo.opcode
        ));
    }
    if echo.payload != sent {
        let at = echo
            .payload
            .iter()
            .zip(sent)
            .position(|(a, b)| a != b)
            .unwrap_or(echo.payload.len().min(sent.len()));
        return Err(format!(
            "the echo ({}, {} frame(s)) is {} bytes instead of {}, first difference at byte {at}",
            if echo.compressed {
                "compressed"
            } else {
                "not compressed"
            },
            echo.frames,
            echo.payload.len(),
            sent.len()
        ));
    }
    Ok(())
}

#[test]
fn the_sample_sends_every_case_and_some_bytes_of_each() {
    assert_eq!(sample_count(16), AUTOBAHN_COUNT);
    assert_eq!(sample_count(131_072), SAMPLE_MIN);
    for (len, _) in MESSAGE_SIZES {
        let count = sample_count(len);
        assert!((SAMPLE_MIN..=AUTOBAHN_COUNT).contains(&count));
        assert!(count * len <= SAMPLE_BYTES.max(SAMPLE_MIN * len), "{len}");
    }
}

/// The 18 cases of an Autobahn group (`12.1` … `13.7`): one per [`MESSAGE_SIZES`] row,
/// each a run of messages from `corpus` over a connection that made `offering`, then a
/// clean close.
pub fn autobahn_cases(group: &str, corpus: Corpus, offering: &Offering) -> Vec<Case> {
    MESSAGE_SIZES
        .iter()
        .enumerate()
        .map(|(i, &(len, fragment))| {
            let run = EchoRun::new(corpus, len, fragment);
            case(
                format!("{group}.{}", i + 1),
                format!("{}; {offering}", run.describe()),
                steps![Step::Echo(run), clean_close()],
            )
            .offering(offering.clone())
        })
        .collect()
}
