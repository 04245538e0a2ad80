//! Negotiating permessage-deflate (RFC 7692 §5, §7.1) in the opening handshake, both
//! roles. No I/O and no compression: offers in, an answer out.
//!
//! Server side: [`negotiate`] reads every `Sec-WebSocket-Extensions` header of a request
//! and goes through the permessage-deflate offers in the order sent, accepting the first
//! one [`DeflateConfig`] can honour (RFC 7692 §5: the server accepts at most one).
//! Client side: [`DeflateOffer`] writes the offer, and [`DeflateOffer::check_response`]
//! checks the server's answer as RFC 7692 §7.1 requires of a client. Both sides end with
//! the same [`Negotiated`] parameters, which is what the compressor needs.
//!
//! # What is refused, and how
//!
//! - A header that breaks the grammar of RFC 6455 §9.1 (`permessage-deflate;;`, an
//!   unclosed quote) is a [`MalformedExtensions`]: the server answers 400 with the reason,
//!   as RFC 6455 §4.2.1 has it answer any handshake it cannot read. This is the issue's
//!   "malformed offer". This holds whichever extension the broken part belongs to, and
//!   even after an acceptable offer: a request is read whole before it is answered.
//! - A well-formed permessage-deflate offer that RFC 7692 §7.1 calls invalid (an unknown
//!   parameter, one given twice, a value where none is allowed, a missing or
//!   out-of-range value), or one the server cannot honour, is *declined*, as §7.1 says
//!   the server MUST do; it does not fail the handshake. The next offer is tried, and if
//!   none is left the connection goes on uncompressed; the reasons come back in
//!   [`Negotiation::Decline`] for the log. (Node's `ws` answers 400 here; the RFC does
//!   not, and we follow the RFC.)
//! - Other extensions are skipped: a server answers only the extensions it supports
//!   (RFC 6455 §9.1).
//!
//! # Names compare exactly
//!
//! Neither RFC 6455 nor RFC 7692 makes extension or parameter names case-insensitive,
//! and a client checks that the server names only extensions it offered. So
//! `Permessage-Deflate` is some other extension and is skipped: answering it as
//! `permessage-deflate` could make a strict client fail the connection. Every browser,
//! `ws`, python-websockets and tungstenite send and compare the lower-case name.
//!
//! # Window bits 8
//!
//! RFC 7692 allows windows of 2^8 to 2^15 bytes, but zlib (and zlib-rs, which mirrors it)
//! cannot compress raw deflate within a 256-byte window: since zlib 1.2.9 it refuses
//! `windowBits = -8`, and before that it silently used 9, whose matches reach 512 bytes
//! back and break a peer that inflates with 256. Decompressing with 8 works. So:
//! - the server accepts an offer with `server_max_window_bits=8` and keeps to it by
//!   sending that client every message uncompressed (RSV1 clear), which RFC 7692 §6
//!   allows message by message; the client still compresses what it sends, and the
//!   server inflates that. Declining instead (python-websockets does) would leave both
//!   directions uncompressed. The server does the same for any window below 15 a client
//!   asks for: it compresses each broadcast once, with one window, for every recipient
//!   (see the event loop's `SharedFrame`), and a connection that cannot take those
//!   bytes gets the plain ones;
//! - a client whose server answers `client_max_window_bits=8` (which a client offering
//!   `client_max_window_bits` without a value must accept) keeps the agreement and sends
//!   its messages uncompressed, which RFC 7692 §6 allows message by message; see
//!   [`Direction::can_compress`].

mod header;

pub use header::{Extension, MalformedExtensions, Param, Syntax, parse as parse_extensions};

use crate::ws::Role;
use std::fmt;
use thiserror::Error;

/// The extension's registered name (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The smallest window RFC 7692 §7.1.2 allows: 2^8 bytes.
pub const MIN_WINDOW_BITS: u8 = 8;

/// The largest window, and the one used when none is negotiated: 2^15 = 32 KiB.
pub const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window zlib can compress raw deflate within (see the module docs).
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// What the server is willing to agree to. Compression thresholds are not here: they
/// are decided message by message and not negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Whether to accept permessage-deflate at all. Default true. When false, the
    /// `Sec-WebSocket-Extensions` headers are not even read, as before deflate existed.
    pub enabled: bool,
    /// The largest window the server says it compresses with, 9 to 15 (other values are
    /// taken as the nearest); a client's `server_max_window_bits` can only lower it.
    /// Default 15, and best left there: the event loop compresses a message once for
    /// every recipient, with one 32 KiB window (see its `SharedFrame`), so a connection
    /// that agreed to any smaller window is sent plain messages. A lower setting here
    /// therefore turns the server's compression off for everyone, while clients may
    /// still compress what they send.
    pub server_max_window_bits: u8,
    /// Whether the server resets its compressor after every message, and says so with
    /// `server_no_context_takeover`. Default true: a broadcast is compressed once and
    /// the same bytes go to every recipient, which is only possible if no message
    /// depends on what a given connection saw before. Costs some ratio on small
    /// messages. A client that asks for it gets it whatever this says.
    pub server_no_context_takeover: bool,
    /// Whether the server requires clients to reset their compressor after every
    /// message (`client_no_context_takeover`, which RFC 7692 §7.1.1.2 lets a server
    /// impose). Default true: then inflate state exists only while a compressed message
    /// is being received, and an idle connection holds none. Costs the client some
    /// ratio; chat messages are independent anyway.
    pub client_no_context_takeover: bool,
    /// The largest window the server asks clients to compress with, 8 to 15, sent as
    /// `client_max_window_bits` to the clients that offer that parameter (others are not
    /// asked, and may use 15). Default 15: no request. Lowering it saves the clients
    /// memory; the server inflates with a 32 KiB window whatever was agreed (a window
    /// bounds only how far back a match may reach, and zlib-rs allocates 32 KiB anyway).
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            enabled: true,
            server_max_window_bits: MAX_WINDOW_BITS,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// A permessage-deflate offer: one the server received, or one a client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateOffer {
    /// `server_no_context_takeover`: the client asks the server to reset its compressor
    /// after each message (RFC 7692 §7.1.1.1).
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`: the client says it will reset its own compressor
    /// after each message, whatever the answer (RFC 7692 §7.1.1.2).
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`: the largest window the server may compress with
    /// (RFC 7692 §7.1.2.1). `None`: up to 15.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits[=N]` (RFC 7692 §7.1.2.2).
    pub client_max_window_bits: ClientWindowOffer,
}

/// What an offer says about the client's own window (RFC 7692 §7.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientWindowOffer {
    /// The parameter is absent: the client cannot take a limit, so the answer must not
    /// carry `client_max_window_bits`, and the client may compress with up to 15 bits.
    #[default]
    Absent,
    /// `client_max_window_bits` with no value: the server may answer with a limit.
    Supported,
    /// `client_max_window_bits=N`: the client will use at most N bits anyway, and the
    /// server may answer with a limit no larger.
    Hint(u8),
}

/// The four parameters RFC 7692 §7.1 defines, by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamName {
    /// `server_no_context_takeover`.
    ServerNoContextTakeover,
    /// `client_no_context_takeover`.
    ClientNoContextTakeover,
    /// `server_max_window_bits`.
    ServerMaxWindowBits,
    /// `client_max_window_bits`.
    ClientMaxWindowBits,
}

impl ParamName {
    const ALL: [ParamName; 4] = [
        ParamName::ServerNoContextTakeover,
        ParamName::ClientNoContextTakeover,
        ParamName::ServerMaxWindowBits,
        ParamName::ClientMaxWindowBits,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamName::ServerNoContextTakeover => "server_no_context_takeover",
            ParamName::ClientNoContextTakeover => "client_no_context_takeover",
            ParamName::ServerMaxWindowBits => "server_max_window_bits",
            ParamName::ClientMaxWindowBits => "client_max_window_bits",
        }
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a permessage-deflate element's parameters are invalid (RFC 7692 §7.1). In an
/// offer the server declines it; in a response the client fails the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    /// A parameter RFC 7692 does not define.
    #[error("unknown parameter {0}")]
    Unknown(String),
    /// A parameter given twice.
    #[error("{0} given more than once")]
    Repeated(ParamName),
    /// A value on a parameter that takes none.
    #[error("{0} takes no value")]
    UnexpectedValue(ParamName),
    /// No value on a parameter that needs one.
    #[error("{0} needs a value")]
    MissingValue(ParamName),
    /// A window size that is not a decimal 8 to 15 without leading zeroes (§7.1.2).
    #[error("{param}={value}: the window bits must be 8 to 15")]
    BadWindowBits {
        /// Which of the two window parameters.
        param: ParamName,
        /// The value sent.
        value: String,
    },
}

impl DeflateOffer {
    /// What loopchat's terminal client and load generator offer:
    /// `permessage-deflate; client_max_window_bits`, the offer every browser makes, so a
    /// server sees the offer it knows best and may limit our window if it wants to.
    pub fn client_default() -> DeflateOffer {
        DeflateOffer {
            client_max_window_bits: ClientWindowOffer::Supported,
            ..DeflateOffer::default()
        }
    }

    /// Reads a permessage-deflate element's parameters (RFC 7692 §7.1).
    pub fn from_params(params: &[Param<'_>]) -> Result<DeflateOffer, ParamError> {
        let mut offer = DeflateOffer::default();
        let mut seen = [false; ParamName::ALL.len()];
        for param in params {
            let name = ParamName::ALL
                .into_iter()
                .find(|name| name.as_str() == param.name)
                .ok_or_else(|| ParamError::Unknown(param.name.to_owned()))?;
            if std::mem::replace(&mut seen[name as usize], true) {
                return Err(ParamError::Repeated(name));
            }
            let value = param.value.as_deref();
            match name {
                ParamName::ServerNoContextTakeover => {
                    offer.server_no_context_takeover = flag(name, value)?;
                }
                ParamName::ClientNoContextTakeover => {
                    offer.client_no_context_takeover = flag(name, value)?;
                }
                ParamName::ServerMaxWindowBits => {
                    let value = value.ok_or(ParamError::MissingValue(name))?;
                    offer.server_max_window_bits = Some(window_bits(name, value)?);
                }
                ParamName::ClientMaxWindowBits => {
                    offer.client_max_window_bits = match value {
                        None => ClientWindowOffer::Supported,
                        Some(value) => ClientWindowOffer::Hint(window_bits(name, value)?),
                    };
                }
            }
        }
        Ok(offer)
    }

    /// Checks the server's answer to this offer, given its `Sec-WebSocket-Extensions`
    /// headers (none if it sent none), and returns the parameters in effect, or `None`
    /// if the server declined. An error means the client must fail the connection
    /// (RFC 6455 §4.1, RFC 7692 §5 and §7.1): an extension we did not offer, more than
    /// one, invalid parameters, or a configuration this offer does not allow.
    pub fn check_response<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<Negotiated>, ResponseError> {
        let mut accepted = None;
        for value in headers {
            for extension in parse_extensions(value)? {
                if extension.name != EXTENSION_NAME {
                    return Err(ResponseError::NotOffered(extension.name.to_owned()));
                }
                if accepted.is_some() {
                    return Err(ResponseError::Repeated);
                }
                accepted =
                    Some(self.agreement_from(&DeflateOffer::from_params(&extension.params)?)?);
            }
        }
        Ok(accepted)
    }

    /// The parameters a response (already valid as parameters) sets, if this offer
    /// allows them. Each rule is one of RFC 7692 §7.1.1–§7.1.2's.
    fn agreement_from(&self, response: &DeflateOffer) -> Result<Negotiated, ResponseError> {
        // §7.1.1.1: a server accepts server_no_context_takeover by echoing it; it may
        // also add it unasked.
        if self.server_no_context_takeover && !response.server_no_context_takeover {
            return Err(ResponseError::ServerContextTakeover);
        }
        // §7.1.2.1: an offered limit is accepted with the same or a smaller value; a
        // limit we did not ask for is the server's own business.
        let server_max_window_bits =
            match (self.server_max_window_bits, response.server_max_window_bits) {
                (Some(offered), None) => return Err(ResponseError::ServerWindowMissing(offered)),
                (Some(offered), Some(answered)) if answered > offered => {
                    return Err(ResponseError::ServerWindowTooLarge { offered, answered });
                }
                (_, answered) => answered.unwrap_or(MAX_WINDOW_BITS),
            };
        // §7.1.2.2: the response may carry a limit only if we offered the parameter, and
        // then it must have a value, no larger than our hint if we gave one.
        let client_max_window_bits =
            match (self.client_max_window_bits, response.client_max_window_bits) {
                (_, ClientWindowOffer::Supported) => {
                    return Err(ParamError::MissingValue(ParamName::ClientMaxWindowBits).into());
                }
                (ClientWindowOffer::Absent, ClientWindowOffer::Hint(_)) => {
                    return Err(ResponseError::ClientWindowNotOffered);
                }
                (ClientWindowOffer::Hint(offered), ClientWindowOffer::Hint(answered))
                    if answered > offered =>
                {
                    return Err(ResponseError::ClientWindowTooLarge { offered, answered });
                }
                (_, ClientWindowOffer::Hint(answered)) => answered,
                // We keep to our own hint even if the server says nothing.
                (ClientWindowOffer::Hint(offered), ClientWindowOffer::Absent) => offered,
                (_, ClientWindowOffer::Absent) => MAX_WINDOW_BITS,
            };
        Ok(Negotiated {
            server_no_context_takeover: response.server_no_context_takeover,
            // §7.1.1.2: our own hint binds us even if the server does not echo it.
            client_no_context_takeover: self.client_no_context_takeover
                || response.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        })
    }
}

/// The offer as a header value, such as `permessage-deflate; client_max_window_bits`.
impl fmt::Display for DeflateOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXTENSION_NAME)?;
        if self.server_no_context_takeover {
            write!(f, "; {}", ParamName::ServerNoContextTakeover)?;
        }
        if self.client_no_context_takeover {
            write!(f, "; {}", ParamName::ClientNoContextTakeover)?;
        }
        if let Some(bits) = self.server_max_window_bits {
            write!(f, "; {}={bits}", ParamName::ServerMaxWindowBits)?;
        }
        match self.client_max_window_bits {
            ClientWindowOffer::Absent => Ok(()),
            ClientWindowOffer::Supported => write!(f, "; {}", ParamName::ClientMaxWindowBits),
            ClientWindowOffer::Hint(bits) => {
                write!(f, "; {}={bits}", ParamName::ClientMaxWindowBits)
            }
        }
    }
}

/// A parameter that takes no value (RFC 7692 §7.1.1): present, so true.
fn flag(param: ParamName, value: Option<&str>) -> Result<bool, ParamError> {
    match value {
        None => Ok(true),
        Some(_) => Err(ParamError::UnexpectedValue(param)),
    }
}

/// A window size as RFC 7692 §7.1.2 writes it: a decimal 8 to 15, no leading zeroes,
/// no sign.
fn window_bits(param: ParamName, value: &str) -> Result<u8, ParamError> {
    match value.as_bytes() {
        [digit @ b'8'..=b'9'] => Ok(digit - b'0'),
        [b'1', digit @ b'0'..=b'5'] => Ok(10 + digit - b'0'),
        _ => Err(ParamError::BadWindowBits {
            param,
            value: value.to_owned(),
        }),
    }
}

/// The parameters in effect once both sides agree, the same on both sides. Window bits
/// are limits: 15 when nothing smaller was agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The server resets its compressor after each message. Always true with the
    /// default [`DeflateConfig`].
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with.
    pub client_max_window_bits: u8,
}

/// One direction of a connection's compression, as its sender must keep to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction {
    /// The largest window the sender compresses with, which is also the window its
    /// receiver must keep.
    pub window_bits: u8,
    /// Whether the sender resets its compressor after each message, so its receiver may
    /// drop its inflate state between messages.
    pub no_context_takeover: bool,
}

impl Direction {
    /// Whether zlib can compress within this window. `false` for a window of 8 bits: a
    /// client whose server answers `client_max_window_bits=8`, or a server whose client
    /// asked for `server_max_window_bits=8`, then sends every message uncompressed (RSV1
    /// clear), which RFC 7692 §6 allows message by message.
    pub fn can_compress(&self) -> bool {
        self.window_bits >= MIN_COMPRESS_WINDOW_BITS
    }
}

impl Negotiated {
    /// How an endpoint in `role` compresses what it sends.
    pub fn outgoing(&self, role: Role) -> Direction {
        match role {
            Role::Server => self.server_direction(),
            Role::Client => self.client_direction(),
        }
    }

    /// How the peer of an endpoint in `role` compresses what it receives.
    pub fn incoming(&self, role: Role) -> Direction {
        match role {
            Role::Server => self.client_direction(),
            Role::Client => self.server_direction(),
        }
    }

    fn server_direction(&self) -> Direction {
        Direction {
            window_bits: self.server_max_window_bits,
            no_context_takeover: self.server_no_context_takeover,
        }
    }

    fn client_direction(&self) -> Direction {
        Direction {
            window_bits: self.client_max_window_bits,
            no_context_takeover: self.client_no_context_takeover,
        }
    }
}

/// An offer the server accepts: the parameters, and the header value that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The parameters in effect.
    pub negotiated: Negotiated,
    /// The `Sec-WebSocket-Extensions` value for the 101 response, such as
    /// `permessage-deflate; server_no_context_takeover; client_no_context_takeover`.
    pub response_header: String,
}

/// The server's answer to a request's permessage-deflate offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiation {
    /// Use permessage-deflate as [`Accepted`] says, and send its header.
    Accept(Accepted),
    /// Go on uncompressed, with no `Sec-WebSocket-Extensions` header. Holds why each
    /// permessage-deflate offer was declined, in order; empty if there was none, or
    /// deflate is disabled.
    Decline(Vec<Declined>),
}

/// Why the server declined one permessage-deflate offer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Declined {
    /// The offer's parameters are invalid (RFC 7692 §7.1).
    #[error("invalid permessage-deflate offer: {0}")]
    Invalid(#[from] ParamError),
}

/// Why a client must fail the connection over the server's `Sec-WebSocket-Extensions`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// The header breaks the grammar of RFC 6455 §9.1.
    #[error(transparent)]
    Malformed(#[from] MalformedExtensions),
    /// An extension we did not offer (RFC 6455 §4.1), this one's name.
    #[error("the server accepted the extension {0}, which we did not offer")]
    NotOffered(String),
    /// permessage-deflate accepted more than once (RFC 7692 §5).
    #[error("the server accepted permessage-deflate more than once")]
    Repeated,
    /// Invalid parameters (RFC 7692 §7.1).
    #[error("invalid permessage-deflate response: {0}")]
    Invalid(#[from] ParamError),
    /// We asked for `server_no_context_takeover` and the answer lacks it (§7.1.1.1).
    #[error("the server did not agree to server_no_context_takeover")]
    ServerContextTakeover,
    /// We offered `server_max_window_bits` and the answer lacks it (§7.1.2.1).
    #[error("the server did not agree to server_max_window_bits={0}")]
    ServerWindowMissing(u8),
    /// A server window larger than we allowed (§7.1.2.1).
    #[error("server_max_window_bits={answered} is larger than the {offered} we offered")]
    ServerWindowTooLarge {
        /// Our limit.
        offered: u8,
        /// The server's.
        answered: u8,
    },
    /// `client_max_window_bits` in the answer when we did not offer it (§7.1.2.2).
    #[error("the server set client_max_window_bits, which we did not offer")]
    ClientWindowNotOffered,
    /// A client window larger than our hint (§7.1.2.2).
    #[error("client_max_window_bits={answered} is larger than the {offered} we offered")]
    ClientWindowTooLarge {
        /// Our hint.
        offered: u8,
        /// The server's limit.
        answered: u8,
    },
}

/// The server's answer to a request's `Sec-WebSocket-Extensions` headers (pass
/// `request.headers_named("sec-websocket-extensions")`): the first permessage-deflate
/// offer `config` can honour, in the order sent (RFC 7692 §5), or a decline. An error
/// is a header that breaks the grammar: answer 400 with it (see the module docs).
pub fn negotiate<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    config: &DeflateConfig,
) -> Result<Negotiation, MalformedExtensions> {
    if !config.enabled {
        return Ok(Negotiation::Decline(Vec::new()));
    }
    // Every header is parsed before any offer is judged: a broken header is refused
    // wherever it stands.
    let mut extensions = Vec::new();
    for value in headers {
        extensions.extend(parse_extensions(value)?);
    }
    let mut declined = Vec::new();
    for extension in extensions.iter().filter(|e| e.name == EXTENSION_NAME) {
        let answer = DeflateOffer::from_params(&extension.params)
            .map_err(Declined::from)
            .and_then(|offer| config.answer(&offer));
        match answer {
            Ok(accepted) => return Ok(Negotiation::Accept(accepted)),
            Err(reason) => declined.push(reason),
        }
    }
    Ok(Negotiation::Decline(declined))
}

impl DeflateConfig {
    /// The answer to one valid offer, by RFC 7692 §7.1.1–§7.1.2. `enabled` is not
    /// looked at: this is the choice once an offer is being considered.
    pub fn answer(&self, offer: &DeflateOffer) -> Result<Accepted, Declined> {
        let own_limit = self
            .server_max_window_bits
            .clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
        // §7.1.2.1: an offered limit is honoured (or bettered) and echoed; without one,
        // the server may still state its own, which lets the client inflate with less.
        // A limit of 8 is honoured by never compressing (see the module docs).
        let server_max_window_bits = offer
            .server_max_window_bits
            .map_or(own_limit, |offered| offered.min(own_limit));
        let state_server_window =
            offer.server_max_window_bits.is_some() || server_max_window_bits < MAX_WINDOW_BITS;
        // §7.1.2.2: a limit only for a client that offered the parameter, no larger than
        // its hint; a hint is echoed, so that both sides agree on the window.
        let client_limit = self
            .client_max_window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        let (client_max_window_bits, state_client_window) = match offer.client_max_window_bits {
            ClientWindowOffer::Absent => (MAX_WINDOW_BITS, false),
            ClientWindowOffer::Supported => (client_limit, client_limit < MAX_WINDOW_BITS),
            ClientWindowOffer::Hint(hint) => {
                let bits = hint.min(client_limit);
                (bits, bits < MAX_WINDOW_BITS)
            }
        };
        let negotiated = Negotiated {
            // §7.1.1.1 and §7.1.1.2: each may be stated unasked, and an offered one is
            // echoed (for the client's, so that the agreement binds both ways).
            server_no_context_takeover: self.server_no_context_takeover
                || offer.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover
                || offer.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        };
        let response = DeflateOffer {
            server_no_context_takeover: negotiated.server_no_context_takeover,
            client_no_context_takeover: negotiated.client_no_context_takeover,
            server_max_window_bits: state_server_window.then_some(server_max_window_bits),
            client_max_window_bits: if state_client_window {
                ClientWindowOffer::Hint(client_max_window_bits)
            } else {
                ClientWindowOffer::Absent
            },
        };
        Ok(Accepted {
            negotiated,
            // An offer and a response share their grammar (RFC 7692 §7.1).
            response_header: response.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
