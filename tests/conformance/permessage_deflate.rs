//! The test client's side of permessage-deflate (RFC 7692), written here from the RFC:
//! what it offers, how it checks the server's answer, and how it compresses and inflates.
//!
//! It calls zlib (the `zlib-rs` implementation, through `flate2` to compress and directly
//! to inflate) and never the crate's own `loopchat::ws::deflate`, so the server is checked
//! against RFC 7692 and not against itself. zlib does the DEFLATE coding (RFC 1951);
//! everything RFC 7692 adds (the parameters, stripping and restoring `00 00 ff ff`,
//! context takeover, window sizes, RSV1) is this file's and `echo_runs.rs`'s.

use std::fmt;

/// The tail a sync flush ends with, which RFC 7692 §7.2.1 has the sender remove and
/// §7.2.2 has the receiver put back.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The largest LZ77 window, 2^15 bytes: what applies when no `*_max_window_bits` says less.
pub const MAX_WINDOW_BITS: u8 = 15;

// ---------------------------------------------------------------------------------------
// Offers
// ---------------------------------------------------------------------------------------

/// One permessage-deflate offer: an element of the client's `Sec-WebSocket-Extensions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Offer {
    /// `server_no_context_takeover`: the server must reset its compressor per message.
    pub server_no_context_takeover: bool,
    /// `server_max_window_bits=N`: the server must compress within 2^N bytes.
    pub server_max_window_bits: Option<u8>,
    /// `client_no_context_takeover`: a hint that the client resets its compressor per
    /// message, whatever the answer says (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// `client_max_window_bits`: `Some(None)` offers the parameter without a value (the
    /// server may then limit the client's window); `Some(Some(n))` also promises to
    /// compress within 2^n bytes whatever the answer says (§7.1.2.2).
    pub client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// `permessage-deflate` with no parameter.
    pub fn bare() -> Offer {
        Offer::default()
    }

    /// What a browser offers: `permessage-deflate; client_max_window_bits`.
    pub fn browser() -> Offer {
        Offer {
            client_max_window_bits: Some(None),
            ..Offer::default()
        }
    }

    /// The offer Autobahn's fuzzing client makes for `PerMessageDeflateOffer(
    /// requestNoContextTakeover, requestMaxWindowBits)` (autobahn-python 0.10, the
    /// version the test suite pins): it always declares `client_no_context_takeover` and
    /// `client_max_window_bits` (it accepts either from the server), and *requests*
    /// `server_no_context_takeover` and `server_max_window_bits=N` (N = 0: not at all).
    pub fn autobahn(request_no_context_takeover: bool, request_max_window_bits: u8) -> Offer {
        Offer {
            server_no_context_takeover: request_no_context_takeover,
            server_max_window_bits: (request_max_window_bits != 0)
                .then_some(request_max_window_bits),
            client_no_context_takeover: true,
            client_max_window_bits: Some(None),
        }
    }

    /// The offer as it goes in the header, parameters in a fixed order.
    pub fn header_value(&self) -> String {
        let mut value = String::from("permessage-deflate");
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        match self.client_max_window_bits {
            Some(Some(bits)) => value.push_str(&format!("; client_max_window_bits={bits}")),
            Some(None) => value.push_str("; client_max_window_bits"),
            None => {}
        }
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        value
    }
}

/// What a case offers in its opening handshake.
#[derive(Clone, Debug)]
pub struct Offering {
    /// The offers, in order of preference.
    pub offers: Vec<Offer>,
    /// Each offer in a `Sec-WebSocket-Extensions` header of its own, instead of one
    /// comma-separated list (RFC 7230 §3.2.2 makes the two the same).
    pub separate_headers: bool,
    /// Whether the case fails if the server declines. Autobahn's cases require
    /// acceptance (a server that declines is reported as not implementing deflate);
    /// a few of the suite's own cases make offers a server may decline.
    pub must_accept: bool,
}

impl Offering {
    /// These offers, in one header, which the server must accept.
    pub fn accepted(offers: impl IntoIterator<Item = Offer>) -> Offering {
        Offering {
            offers: offers.into_iter().collect(),
            separate_headers: false,
            must_accept: true,
        }
    }

    /// The `Sec-WebSocket-Extensions` headers of the request.
    pub fn headers(&self) -> Vec<String> {
        let values: Vec<String> = self.offers.iter().map(Offer::header_value).collect();
        if self.separate_headers {
            values
        } else {
            vec![values.join(", ")]
        }
    }
}

impl fmt::Display for Offering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers = self.headers();
        write!(f, "offer \"{}\"", headers.join("\" + \""))
    }
}

// ---------------------------------------------------------------------------------------
// The server's answer
// ---------------------------------------------------------------------------------------

/// What the two sides agreed, as the client must act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The server resets its compressor per message, so the client may reset its
    /// inflater (and here does: a server that broke its word would be caught).
    pub server_no_context_takeover: bool,
    /// The server's window: the client inflates within 2^this bytes, strictly.
    pub server_window_bits: u8,
    /// The client must reset its compressor per message.
    pub client_no_context_takeover: bool,
    /// The client must compress within 2^this bytes (8 to 15).
    pub client_window_bits: u8,
}

/// One extension element of a header: its name and its parameters, values unquoted.
#[derive(Debug, PartialEq, Eq)]
struct Element {
    name: String,
    params: Vec<(String, Option<String>)>,
}

/// Checks the server's `Sec-WebSocket-Extensions` answer (every header of that name,
/// in order) against what was offered, as RFC 6455 §9.1 and RFC 7692 §5 and §7.1 ask a
/// client to. `Ok(None)`: no extension, deflate declined. `Ok(Some(_))`: a valid
/// acceptance of one of the offers. `Err`: the answer is one a client must fail.
///
/// The answer does not say which offer it accepts. When it could accept several, the
/// client keeps the strictest of their promises (the smallest window, no context
/// takeover if any promised it), which is valid whichever the server meant.
pub fn check_response(offers: &[Offer], headers: &[String]) -> Result<Option<Agreement>, String> {
    let mut elements = Vec::new();
    for header in headers {
        elements.extend(parse_extensions(header)?);
    }
    let element = match &elements[..] {
        [] => return Ok(None),
        [element] => element,
        _ => {
            return Err(format!(
                "{} extensions in the answer, at most one was offered",
                elements.len()
            ));
        }
    };
    if element.name != "permessage-deflate" {
        return Err(format!(
            "the answer names {:?}, which was not offered",
            element.name
        ));
    }
    if offers.is_empty() {
        return Err("permessage-deflate in the answer, but the client offered nothing".into());
    }
    let answer = Answer::read(&element.params)?;
    let fits: Vec<&Offer> = offers
        .iter()
        .filter(|offer| answer.accepts(offer))
        .collect();
    if fits.is_empty() {
        return Err(format!(
            "the answer {answer:?} accepts none of the offers {:?}",
            offers.iter().map(Offer::header_value).collect::<Vec<_>>()
        ));
    }
    let promised_window = fits
        .iter()
        .map(|offer| {
            offer
                .client_max_window_bits
                .flatten()
                .unwrap_or(MAX_WINDOW_BITS)
        })
        .min()
        .unwrap();
    Ok(Some(Agreement {
        server_no_context_takeover: answer.server_no_context_takeover,
        server_window_bits: answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
        client_no_context_takeover: answer.client_no_context_takeover
            || fits.iter().any(|offer| offer.client_no_context_takeover),
        client_window_bits: answer
            .client_max_window_bits
            .unwrap_or(MAX_WINDOW_BITS)
            .min(promised_window),
    }))
}

/// The parameters of a permessage-deflate answer, each checked on its own.
#[derive(Debug, Default)]
struct Answer {
    server_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_no_context_takeover: bool,
    client_max_window_bits: Option<u8>,
}

impl Answer {
    /// Reads the parameters: each at most once (RFC 7692 §7), each one defined for an
    /// answer, the two flags without a value, the two window sizes with one (§7.1.2.1
    /// and §7.1.2.2: an answer's `client_max_window_bits` has a value), 8 to 15 in
    /// decimal without leading zeroes.
    fn read(params: &[(String, Option<String>)]) -> Result<Answer, String> {
        let mut answer = Answer::default();
        let mut seen = Vec::new();
        for (name, value) in params {
            if seen.contains(&name) {
                return Err(format!("parameter {name} twice in the answer"));
            }
            seen.push(name);
            match (name.as_str(), value) {
                ("server_no_context_takeover", None) => answer.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => answer.client_no_context_takeover = true,
                ("server_max_window_bits", Some(value)) => {
                    answer.server_max_window_bits = Some(window_bits(name, value)?);
                }
                ("client_max_window_bits", Some(value)) => {
                    answer.client_max_window_bits = Some(window_bits(name, value)?);
                }
                ("server_no_context_takeover" | "client_no_context_takeover", Some(value)) => {
                    return Err(format!("{name} has a value ({value:?}) in the answer"));
                }
                ("server_max_window_bits" | "client_max_window_bits", None) => {
                    return Err(format!("{name} without a value in the answer"));
                }
                _ => return Err(format!("unknown parameter {name} in the answer")),
            }
        }
        Ok(answer)
    }

    /// Whether this is a valid acceptance of `offer`: a requested
    /// `server_no_context_takeover` is granted (§7.1.1.1), a requested
    /// `server_max_window_bits` is granted with the same or a smaller value (§7.1.2.1),
    /// and `client_max_window_bits` is answered only if offered, with no more than the
    /// offered value (§7.1.2.2).
    fn accepts(&self, offer: &Offer) -> bool {
        let server_context = !offer.server_no_context_takeover || self.server_no_context_takeover;
        let server_window = match (offer.server_max_window_bits, self.server_max_window_bits) {
            (Some(asked), Some(given)) => given <= asked,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let client_window = match (offer.client_max_window_bits, self.client_max_window_bits) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(None), Some(_)) => true,
            (Some(Some(offered)), Some(given)) => given <= offered,
        };
        server_context && server_window && client_window
    }
}

/// A window size parameter's value: 8 to 15, decimal, no leading zero (RFC 7692 §7.1.2).
fn window_bits(name: &str, value: &str) -> Result<u8, String> {
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if !value.starts_with('0') && !value.starts_with('+') => Ok(bits),
        _ => Err(format!("{name}={value:?} is not 8 to 15")),
    }
}

/// Parses an extension list (RFC 6455 §9.1): elements separated by commas, each a
/// token and `;`-separated parameters, a parameter a token with an optional `=` value,
/// a token or a quoted string. White space may stand around every separator; empty
/// list elements are skipped (RFC 7230 §7).
fn parse_extensions(header: &str) -> Result<Vec<Element>, String> {
    let mut elements = Vec::new();
    for element in split_outside_quotes(header, ',')? {
        if element.trim().is_empty() {
            continue;
        }
        let mut parts = split_outside_quotes(&element, ';')?.into_iter();
        let name = token(parts.next().unwrap_or_default().trim(), header)?;
        let mut params = Vec::new();
        for param in parts {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (param.trim(), None),
            };
            let value = match value {
                Some(quoted) if quoted.starts_with('"') => Some(unquote(quoted, header)?),
                Some(plain) => Some(token(plain, header)?),
                None => None,
            };
            params.push((token(name, header)?, value));
        }
        elements.push(Element { name, params });
    }
    Ok(elements)
}

/// `text` split at `separator`s that are not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Result<Vec<String>, String> {
    let mut parts = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        if c == separator && !quoted {
            parts.push(String::new());
            continue;
        }
        if quoted && escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        parts.last_mut().unwrap().push(c);
    }
    if quoted {
        return Err(format!("unterminated quoted string in {text:?}"));
    }
    Ok(parts)
}

/// A token (RFC 7230 §3.2.6), or an error naming the header.
fn token(text: &str, header: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a token in {header:?}"))
    }
}

/// The content of a quoted string, escapes removed; RFC 7692 §7.1 requires it to be a
/// token once unquoted.
fn unquote(quoted: &str, header: &str) -> Result<String, String> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(|| format!("bad quoted string {quoted:?} in {header:?}"))?;
    let mut value = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        value.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    token(&value, header)
}

// ---------------------------------------------------------------------------------------
// Compressing and inflating
// ---------------------------------------------------------------------------------------

/// The client's compressor and inflater for one connection, set as agreed.
pub struct ClientDeflate {
    pub agreement: Agreement,
    /// Raw DEFLATE (no zlib header). Reset before each message when the client may not
    /// take context over; otherwise the window carries from message to message.
    compressor: flate2::Compress,
    /// Kept between messages only when the server takes context over.
    inflater: Option<zlib_rs::Inflate>,
}

impl ClientDeflate {
    pub fn new(agreement: Agreement) -> ClientDeflate {
        ClientDeflate {
            agreement,
            compressor: compressor(agreement.client_window_bits),
            inflater: None,
        }
    }

    /// A message's payload, compressed as agreed, the tail removed (RFC 7692 §7.2.1).
    pub fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        if self.agreement.client_no_context_takeover {
            self.compressor.reset();
        }
        compress_with(
            &mut self.compressor,
            self.agreement.client_window_bits,
            message,
        )
    }

    /// A compressed message's payload, inflated (RFC 7692 §7.2.2): the tail put back,
    /// inflated within the agreed server window and at most `limit` bytes.
    pub fn inflate(&mut self, payload: &[u8], limit: usize) -> Result<Vec<u8>, String> {
        let bits = self.agreement.server_window_bits;
        if self.agreement.server_no_context_takeover || self.inflater.is_none() {
            self.inflater = Some(zlib_rs::Inflate::new(false, bits));
        }
        let inflater = self.inflater.as_mut().unwrap();
        let (message, ended) = inflate_with(inflater, payload, bits, limit)?;
        if ended {
            // A block with BFINAL set ended the DEFLATE stream (§7.2.3.4); what follows,
            // in this message or the next, starts a new one.
            self.inflater = None;
        }
        Ok(message)
    }
}

/// A raw DEFLATE compressor, zlib's default level, for a window of 2^`bits` bytes. zlib
/// refuses a raw window of 8 bits; [`compress_with`] then keeps within 256 bytes itself.
fn compressor(bits: u8) -> flate2::Compress {
    flate2::Compress::new_with_window_bits(flate2::Compression::default(), false, bits.max(9))
}

/// Compresses `message` as one permessage-deflate message: sync flush at the end, tail
/// removed. For an 8-bit window, zlib (whose smallest raw window is 9 bits) is made to
/// keep within 256 bytes with a full flush every 256 input bytes: a full flush forgets
/// all earlier input, so no match reaches back further than the piece it is in.
fn compress_with(compressor: &mut flate2::Compress, bits: u8, message: &[u8]) -> Vec<u8> {
    use flate2::FlushCompress;
    let mut out = Vec::with_capacity(message.len() / 2 + 64);
    if bits == 8 {
        let mut pieces: Vec<&[u8]> = message.chunks(256).collect();
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        for piece in pieces {
            run_compressor(compressor, piece, FlushCompress::Full, &mut out);
        }
    } else {
        run_compressor(compressor, message, FlushCompress::Sync, &mut out);
    }
    assert!(out.ends_with(&TAIL), "a flush ends with 00 00 ff ff");
    out.truncate(out.len() - TAIL.len());
    out
}

/// Feeds all of `input` with `flush`, growing `out` until zlib has room to spare (so
/// the flush is complete).
fn run_compressor(
    compressor: &mut flate2::Compress,
    input: &[u8],
    flush: flate2::FlushCompress,
    out: &mut Vec<u8>,
) {
    let mut read = 0;
    loop {
        out.reserve(input.len() - read + 64);
        let before = compressor.total_in();
        compressor
            .compress_vec(&input[read..], out, flush)
            .expect("zlib compresses");
        read += (compressor.total_in() - before) as usize;
        if read == input.len() && out.len() < out.capacity() {
            return;
        }
    }
}

/// A message compressed on its own, as a client that takes no context over sends it,
/// for the table rows that send compressed frames they build themselves.
pub fn compress_message(message: &[u8], bits: u8) -> Vec<u8> {
    compress_with(&mut compressor(bits), bits, message)
}

/// Inflates one message's payload with the tail put back. Returns the bytes, and
/// whether the DEFLATE stream ended (a block with BFINAL).
///
/// zlib's inflate does not check a match's distance against the window when the bytes
/// it reaches are still in the output buffer of the same call; it only fails one that
/// reaches past its window into nothing. To hold a server to a window smaller than the
/// 32 KiB DEFLATE can reach at all, the output is taken one byte per call, so that every
/// match starts with an empty output buffer and is resolved from the window or fails
/// ("invalid distance too far back"). With the full 15-bit window nothing can be out of
/// reach and the output is taken 64 KiB at a time.
fn inflate_with(
    inflater: &mut zlib_rs::Inflate,
    payload: &[u8],
    bits: u8,
    limit: usize,
) -> Result<(Vec<u8>, bool), String> {
    use zlib_rs::{InflateFlush, Status};
    let input: Vec<u8> = payload.iter().chain(&TAIL).copied().collect();
    let step = if bits < MAX_WINDOW_BITS { 1 } else { 64 * 1024 };
    let mut out = Vec::with_capacity(payload.len() * 4);
    let mut buffer = vec![0u8; step];
    let (start_in, start_out) = (inflater.total_in(), inflater.total_out());
    loop {
        let read = (inflater.total_in() - start_in) as usize;
        let written_before = inflater.total_out();
        let status = inflater
            .decompress(&input[read..], &mut buffer, InflateFlush::SyncFlush)
            .map_err(|e| {
                format!(
                    "does not inflate after {} bytes (window {bits} bits): {} ({e:?})",
                    inflater.total_out() - start_out,
                    inflater.error_message().unwrap_or("no message")
                )
            })?;
        let written = (inflater.total_out() - written_before) as usize;
        out.extend_from_slice(&buffer[..written]);
        if out.len() > limit {
            return Err(format!("inflates past {limit} bytes"));
        }
        let read = (inflater.total_in() - start_in) as usize;
        match status {
            Status::StreamEnd => return Ok((out, true)),
            _ if read == input.len() && written < step => return Ok((out, false)),
            Status::BufError if written == 0 => {
                return Err(format!(
                    "inflating stalls after {} of {} bytes",
                    read,
                    input.len()
                ));
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Self-checks of the client's own deflate, so a case failing means the server
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(client_bits: u8, server_bits: u8, no_context: bool) -> Agreement {
        Agreement {
            server_no_context_takeover: no_context,
            server_window_bits: server_bits,
            client_no_context_takeover: no_context,
            client_window_bits: client_bits,
        }
    }

    #[test]
    fn the_rfc_7692_examples_inflate() {
        let mut client = ClientDeflate::new(agreement(15, 15, true));
        let hello = |client: &mut ClientDeflate, bytes: &[u8]| {
            client
                .inflate(bytes, 100)
                .map(|m| String::from_utf8(m).unwrap())
        };
        // §7.2.3.1, §7.2.3.3 (stored), §7.2.3.4 (BFINAL), §7.2.3.5 (two blocks), §7.2.3.6.
        for bytes in [
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ] {
            assert_eq!(
                hello(&mut client, bytes),
                Ok("Hello".into()),
                "{bytes:02x?}"
            );
        }
        assert_eq!(hello(&mut client, &[0x00]), Ok(String::new()));
        // §7.2.3.2: the same "Hello" twice with the window shared: the second is 5 bytes.
        let mut shared = ClientDeflate::new(agreement(15, 15, false));
        assert_eq!(
            hello(&mut shared, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            Ok("Hello".into())
        );
        assert_eq!(
            hello(&mut shared, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            Ok("Hello".into())
        );
        assert!(hello(&mut client, &[0xf2, 0x00, 0x11, 0x00, 0x00]).is_err());
        // Corrupt data and a bomb fail.
        assert!(client.inflate(&[0xff, 0xff, 0xff, 0x00], 100).is_err());
        let bomb = compress_message(&[0; 100_000], 15);
        assert_eq!(
            client.inflate(&bomb, 65_536),
            Err("inflates past 65536 bytes".into())
        );
    }

    #[test]
    fn every_window_round_trips_and_keeps_within_itself() {
        // Repeats 300 bytes apart: within reach of 512 bytes, not of 256.
        let mut rng = 12345u64;
        let block: Vec<u8> = (0..300)
            .map(|_| {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                (rng >> 56) as u8
            })
            .collect();
        let data: Vec<u8> = block.iter().cycle().take(20_000).copied().collect();
        for bits in 8..=15 {
            for no_context in [true, false] {
                let mut client = ClientDeflate::new(agreement(bits, bits, no_context));
                for _ in 0..3 {
                    let compressed = client.compress(&data);
                    assert!(!compressed.ends_with(&TAIL));
                    // Inflated as the server must: within the window the client used.
                    assert_eq!(
                        client.inflate(&compressed, 1 << 20).unwrap(),
                        data,
                        "{bits}"
                    );
                }
            }
        }
        // The strict inflate does catch a window too small for the data.
        let wide = compress_message(&data, 10);
        assert!(wide.len() < data.len() / 10);
        let mut narrow = ClientDeflate::new(agreement(8, 8, true));
        let error = narrow.inflate(&wide, 1 << 20).unwrap_err();
        assert!(error.contains("too far back"), "{error}");
        // An empty message compresses to one byte (§7.2.3.6) in every window.
        assert_eq!(compress_message(b"", 15), [0x00]);
        assert_eq!(compress_message(b"", 8), [0x00]);
    }

    #[test]
    fn answers_are_checked_against_the_offers() {
        let check = |offers: &[Offer], answer: &str| check_response(offers, &[answer.to_owned()]);
        let agreed = |snct, sbits, cnct, cbits| {
            Ok(Some(Agreement {
                server_no_context_takeover: snct,
                server_window_bits: sbits,
                client_no_context_takeover: cnct,
                client_window_bits: cbits,
            }))
        };
        let browser = [Offer::browser()];
        assert_eq!(check_response(&browser, &[]), Ok(None));
        assert_eq!(
            check(&browser, "permessage-deflate"),
            agreed(false, 15, false, 15)
        );
        assert_eq!(
            check(
                &browser,
                "permessage-deflate;server_no_context_takeover ; client_max_window_bits=\"10\""
            ),
            agreed(true, 15, false, 10)
        );
        // The client's promises stand whatever the answer says.
        let promise = [Offer {
            client_no_context_takeover: true,
            client_max_window_bits: Some(Some(9)),
            ..Offer::default()
        }];
        assert_eq!(
            check(&promise, "permessage-deflate"),
            agreed(false, 15, true, 9)
        );
        // A request for the server is granted, or this is not an answer to it.
        let asks = [Offer::autobahn(true, 10)];
        assert_eq!(
            check(
                &asks,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
            ),
            agreed(true, 9, true, 15)
        );
        for bad in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
        ] {
            assert!(check(&asks, bad).is_err(), "{bad}");
        }
        // Malformed or unoffered answers.
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; mystery",
            "permessage-deflate, permessage-deflate",
            "x-webkit-deflate-frame",
            "permessage-deflate; client_max_window_bits=\"1",
        ] {
            assert!(check(&browser, bad).is_err(), "{bad}");
        }
        assert!(
            check(
                &[Offer::bare()],
                "permessage-deflate; client_max_window_bits=10"
            )
            .is_err()
        );
        assert!(check(&[], "permessage-deflate").is_err());
        // Several offers: the answer fits the second; the first's promise does not bind.
        let two = [
            Offer::autobahn(true, 9),
            Offer {
                client_max_window_bits: Some(Some(12)),
                ..Offer::default()
            },
        ];
        assert_eq!(
            check(&two, "permessage-deflate"),
            agreed(false, 15, false, 12)
        );
    }
}
