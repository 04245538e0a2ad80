//! The grammar of `Sec-WebSocket-Extensions` (RFC 6455 §9.1), for any extension.
//!
//! ```text
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-param = token [ "=" ( token | quoted-string ) ]
//! ```
//!
//! RFC 6455 writes this in RFC 2616's ABNF, where white space may stand between any two
//! tokens or separators ("implied *LWS"), so `a ; b = 1` reads as `a;b=1`. A quoted value
//! must be a token once unquoted (§9.1), so `"10"` means `10` and `"1 0"` is malformed.
//! Empty list elements (`a, , b`) are skipped, as RFC 9110 §5.6.1 asks of recipients; so
//! an empty header is an empty list.
//!
//! This module knows nothing of permessage-deflate: it turns bytes into names and values,
//! or says where the bytes stop following the grammar.

use std::borrow::Cow;
use thiserror::Error;

/// One element of the list: an extension and its parameters, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension's name, such as `permessage-deflate`.
    pub name: &'a str,
    /// Its parameters, in order, repeats included (judging them is the extension's job).
    pub params: Vec<Param<'a>>,
}

/// One `name[=value]` parameter of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter's name.
    pub name: &'a str,
    /// Its value; `None` if it came without `=`. A quoted value arrives unquoted and
    /// unescaped, so `"10"` and `10` are the same value.
    pub value: Option<Cow<'a, str>>,
}

/// Where and how a header breaks the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("malformed Sec-WebSocket-Extensions header: {problem} at byte {at}")]
pub struct MalformedExtensions {
    /// The offset in the header value where the grammar broke.
    pub at: usize,
    /// What was expected there.
    pub problem: Syntax,
}

/// The ways a header can break the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Syntax {
    /// A list element that does not start with a token.
    #[error("expected an extension name")]
    ExpectedExtensionName,
    /// A `;` not followed by a token.
    #[error("expected a parameter name after ';'")]
    ExpectedParameterName,
    /// An `=` followed by neither a token nor a quoted string.
    #[error("expected a value after '='")]
    ExpectedValue,
    /// Something other than `;`, `,` or the end after an extension or parameter.
    #[error("expected ';' or ','")]
    ExpectedSeparator,
    /// A quoted string with no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A quoted value that is not a token once unquoted (RFC 6455 §9.1).
    #[error("quoted value is not a token")]
    QuotedValueNotToken,
}

/// Parses one `Sec-WebSocket-Extensions` header value.
pub fn parse(value: &[u8]) -> Result<Vec<Extension<'_>>, MalformedExtensions> {
    let mut cursor = Cursor {
        bytes: value,
        at: 0,
    };
    let mut list = Vec::new();
    loop {
        cursor.skip_whitespace();
        match cursor.peek() {
            None => return Ok(list),
            Some(b',') => {
                cursor.at += 1; // an empty element
                continue;
            }
            Some(_) => list.push(cursor.extension()?),
        }
        cursor.skip_whitespace();
        match cursor.peek() {
            None => return Ok(list),
            Some(b',') => cursor.at += 1,
            Some(_) => return Err(cursor.fail(Syntax::ExpectedSeparator)),
        }
    }
}

/// Whether `byte` may appear in a token (RFC 9110 §5.6.2 `tchar`).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A position in a header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    /// Skips optional white space (RFC 9110 §5.6.3 `OWS`: spaces and tabs).
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn fail(&self, problem: Syntax) -> MalformedExtensions {
        MalformedExtensions {
            at: self.at,
            problem,
        }
    }

    /// The token that starts here, if one does.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        // Token bytes are ASCII, so this never fails.
        let token = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        (!token.is_empty()).then_some(token)
    }

    fn extension(&mut self) -> Result<Extension<'a>, MalformedExtensions> {
        let name = self
            .token()
            .ok_or_else(|| self.fail(Syntax::ExpectedExtensionName))?;
        let mut params = Vec::new();
        loop {
            self.skip_whitespace();
            if !self.eat(b';') {
                return Ok(Extension { name, params });
            }
            self.skip_whitespace();
            let name = self
                .token()
                .ok_or_else(|| self.fail(Syntax::ExpectedParameterName))?;
            self.skip_whitespace();
            let value = if self.eat(b'=') {
                self.skip_whitespace();
                Some(self.value()?)
            } else {
                None
            };
            params.push(Param { name, value });
        }
    }

    /// A token, or a quoted string whose content is a token (RFC 9110 §5.6.4).
    fn value(&mut self) -> Result<Cow<'a, str>, MalformedExtensions> {
        if let Some(token) = self.token() {
            return Ok(Cow::Borrowed(token));
        }
        let open = self.at;
        if !self.eat(b'"') {
            return Err(self.fail(Syntax::ExpectedValue));
        }
        let unterminated = MalformedExtensions {
            at: open,
            problem: Syntax::UnterminatedQuote,
        };
        let mut text = Vec::new();
        loop {
            match self.next().ok_or(unterminated)? {
                b'"' => break,
                b'\\' => text.push(self.next().ok_or(unterminated)?),
                byte => text.push(byte),
            }
        }
        // Anything a token may not hold (spaces, controls, non-ASCII) is refused here,
        // which also makes the bytes ASCII and the conversion below exact.
        if text.is_empty() || !text.iter().copied().all(is_tchar) {
            return Err(MalformedExtensions {
                at: open,
                problem: Syntax::QuotedValueNotToken,
            });
        }
        Ok(Cow::Owned(text.into_iter().map(char::from).collect()))
    }
}
