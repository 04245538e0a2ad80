//! Close codes and the Close frame's payload (RFC 6455 §5.5.1, §7.4).

use std::fmt;

/// The status code carried by a Close frame.
///
/// The named variants are the codes RFC 6455 and the IANA registry define; `Other` holds
/// any other number, including the application ranges 3000–3999 (registered libraries and
/// frameworks) and 4000–4999 (private use). Build one from a number with `CloseCode::from`,
/// which always picks the named variant when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    GoingAway,
    /// 1002: the peer broke the protocol.
    ProtocolError,
    /// 1003: a kind of data the endpoint cannot accept (say, binary to a text-only app).
    UnsupportedData,
    /// 1005: no status code was present. Reported locally, never sent.
    NoStatus,
    /// 1006: the connection dropped without a Close frame. Reported locally, never sent.
    Abnormal,
    /// 1007: a message's data did not match its type (text that is not UTF-8).
    InvalidPayload,
    /// 1008: a message broke the endpoint's policy.
    PolicyViolation,
    /// 1009: a message too big to process.
    MessageTooBig,
    /// 1010: (client only) the server did not negotiate a required extension.
    MandatoryExtension,
    /// 1011: the server met an unexpected condition.
    InternalError,
    /// 1012: the server is restarting.
    ServiceRestart,
    /// 1013: the server is overloaded; try again later.
    TryAgainLater,
    /// 1014: a gateway got an invalid response upstream.
    BadGateway,
    /// 1015: the TLS handshake failed. Reported locally, never sent.
    TlsHandshake,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// Whether this code may appear in a Close frame on the wire.
    ///
    /// Allowed: 1000–1003, 1007–1014, and 3000–4999. Not allowed: below 1000, the three
    /// codes that only report local conditions (1005, 1006, 1015), the reserved 1004, the
    /// unassigned rest of 1016–2999, and anything from 5000 up. A peer that sends a code
    /// that is not allowed has broken the protocol (1002).
    pub fn is_allowed_on_wire(self) -> bool {
        match self {
            CloseCode::NoStatus | CloseCode::Abnormal | CloseCode::TlsHandshake => false,
            CloseCode::Other(code) => (3000..=4999).contains(&code),
            _ => true,
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::ProtocolError,
            1003 => CloseCode::UnsupportedData,
            1005 => CloseCode::NoStatus,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::PolicyViolation,
            1009 => CloseCode::MessageTooBig,
            1010 => CloseCode::MandatoryExtension,
            1011 => CloseCode::InternalError,
            1012 => CloseCode::ServiceRestart,
            1013 => CloseCode::TryAgainLater,
            1014 => CloseCode::BadGateway,
            1015 => CloseCode::TlsHandshake,
            other => CloseCode::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::UnsupportedData => 1003,
            CloseCode::NoStatus => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidPayload => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::TlsHandshake => 1015,
            CloseCode::Other(code) => code,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", u16::from(*self), self)
    }
}

/// A received Close frame's payload: a code and a UTF-8 reason of at most 123 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the peer is closing.
    pub code: CloseCode,
    /// Free text for humans; may be empty.
    pub reason: String,
}

/// The longest reason that fits in a Close frame: 125 bytes of control payload less the
/// 2-byte code.
pub const MAX_CLOSE_REASON: usize = 123;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_through_the_enum() {
        for code in 0..=u16::MAX {
            assert_eq!(u16::from(CloseCode::from(code)), code);
        }
    }

    #[test]
    fn wire_rules_follow_rfc_6455_and_the_iana_registry() {
        let allowed = |code: u16| CloseCode::from(code).is_allowed_on_wire();
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(allowed(code), "{code} should be allowed");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!allowed(code), "{code} should be refused");
        }
    }
}
