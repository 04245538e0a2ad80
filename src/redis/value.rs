//! [`Value`]: a Redis reply as the rest of loopchat sees it.
//!
//! RESP3 has fifteen frame types, and `redis-protocol`'s frames carry attributes and keep
//! maps in hash maps; the chat needs integers, strings, lists and errors. So every frame
//! becomes one of seven owned variants, and the distinctions no caller acts on are
//! dropped: a simple string and a blob string are both [`Value::Bytes`], a map is an
//! array of its keys and values in the order the server sent them.

use redis_protocol::resp3::types::OwnedFrame;

/// An owned Redis reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// RESP3 null (`_`): `GET` of a missing key, among others.
    Nil,
    /// An integer reply (`:`).
    Int(i64),
    /// A blob string (`$`), a simple string (`+`, as `OK`), a verbatim string (`=`,
    /// without its `txt:` prefix) or a big number (`(`, as its decimal digits).
    Bytes(Vec<u8>),
    /// An array (`*`), a set (`~`) or a map (`%`, flattened to key, value, key, value, in
    /// the server's order), or a push (`>`) that [`Link`](super::Link) does not handle
    /// itself.
    Array(Vec<Value>),
    /// An error reply, simple (`-`) or blob (`!`): `ERR ...`, `WRONGTYPE ...`,
    /// `MOVED 3999 127.0.0.1:6381`. The reply of one command, not a failure of the link.
    Error(String),
    /// A double (`,`): `ZSCORE` and `INCRBYFLOAT` in RESP3.
    Double(f64),
    /// A boolean (`#`).
    Bool(bool),
}

impl Value {
    /// The integer, for [`Value::Int`] or for [`Value::Bytes`] holding a decimal integer
    /// (what `GET` returns for a counter that `INCR` keeps).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The bytes of a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The text of a [`Value::Bytes`] that is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// The elements of a [`Value::Array`].
    pub fn into_array(self) -> Option<Vec<Value>> {
        match self {
            Value::Array(values) => Some(values),
            _ => None,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

impl From<OwnedFrame> for Value {
    fn from(frame: OwnedFrame) -> Value {
        match frame {
            OwnedFrame::Null => Value::Nil,
            OwnedFrame::Number { data, .. } => Value::Int(data),
            OwnedFrame::Double { data, .. } => Value::Double(data),
            OwnedFrame::Boolean { data, .. } => Value::Bool(data),
            OwnedFrame::BlobString { data, .. }
            | OwnedFrame::SimpleString { data, .. }
            | OwnedFrame::VerbatimString { data, .. }
            | OwnedFrame::BigNumber { data, .. }
            | OwnedFrame::ChunkedString(data) => Value::Bytes(data),
            OwnedFrame::SimpleError { data, .. } => Value::Error(data),
            OwnedFrame::BlobError { data, .. } => {
                Value::Error(String::from_utf8_lossy(&data).into_owned())
            }
            OwnedFrame::Array { data, .. } | OwnedFrame::Push { data, .. } => {
                Value::Array(data.into_iter().map(Value::from).collect())
            }
            OwnedFrame::Set { data, .. } => {
                Value::Array(data.into_iter().map(Value::from).collect())
            }
            // redis-protocol 6.0 builds a map from its last pair to its first, so the
            // `IndexMap` it returns (feature `index-map`) holds the pairs in reverse:
            // reversed again, they are in the server's order. `aggregates` below checks
            // it.
            OwnedFrame::Map { data, .. } => Value::Array(
                data.into_iter()
                    .rev()
                    .flat_map(|(key, value)| [Value::from(key), Value::from(value)])
                    .collect(),
            ),
            // A client's frame: the reader never lets a server send one (see reader.rs).
            OwnedFrame::Hello { .. } => Value::Error("a HELLO frame from the server".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_protocol::resp3::decode::complete::decode;

    fn value(bytes: &[u8]) -> Value {
        let (frame, used) = decode(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        Value::from(frame)
    }

    #[test]
    fn scalars() {
        assert_eq!(value(b"_\r\n"), Value::Nil);
        assert_eq!(value(b":-42\r\n"), Value::Int(-42));
        assert_eq!(value(b",3.5\r\n"), Value::Double(3.5));
        assert_eq!(value(b"#t\r\n"), Value::Bool(true));
        assert_eq!(value(b"+OK\r\n"), Value::Bytes(b"OK".to_vec()));
        assert_eq!(value(b"$3\r\na\r\n\r\n"), Value::Bytes(b"a\r\n".to_vec()));
        assert_eq!(value(b"=7\r\ntxt:abc\r\n"), Value::Bytes(b"abc".to_vec()));
        assert_eq!(
            value(b"(3492890328409238509324850943850943825024385\r\n"),
            Value::Bytes(b"3492890328409238509324850943850943825024385".to_vec())
        );
    }

    #[test]
    fn errors_simple_and_blob() {
        assert_eq!(value(b"-ERR no\r\n"), Value::Error("ERR no".into()));
        assert_eq!(
            value(b"!21\r\nSYNTAX invalid syntax\r\n"),
            Value::Error("SYNTAX invalid syntax".into())
        );
        assert!(value(b"-ERR\r\n").is_error());
    }

    #[test]
    fn aggregates() {
        let array = value(b"*3\r\n:1\r\n$1\r\nx\r\n*0\r\n");
        assert_eq!(
            array,
            Value::Array(vec![
                Value::Int(1),
                Value::Bytes(b"x".to_vec()),
                Value::Array(vec![])
            ])
        );
        let set = value(b"~2\r\n+a\r\n+b\r\n").into_array().unwrap();
        assert_eq!(set.len(), 2);
        // Maps keep the server's order (redis-protocol's `index-map` feature).
        let map = value(b"%3\r\n+z\r\n:1\r\n+a\r\n:2\r\n+m\r\n*1\r\n:3\r\n");
        assert_eq!(
            map,
            Value::Array(vec![
                Value::Bytes(b"z".to_vec()),
                Value::Int(1),
                Value::Bytes(b"a".to_vec()),
                Value::Int(2),
                Value::Bytes(b"m".to_vec()),
                Value::Array(vec![Value::Int(3)]),
            ])
        );
        assert_eq!(
            value(b">2\r\n+a\r\n:1\r\n"),
            Value::Array(vec![Value::Bytes(b"a".to_vec()), Value::Int(1)])
        );
    }

    #[test]
    fn attributes_are_dropped() {
        assert_eq!(value(b"|1\r\n+key\r\n:1\r\n:7\r\n"), Value::Int(7));
    }

    #[test]
    fn helpers() {
        assert_eq!(Value::Int(5).as_int(), Some(5));
        assert_eq!(Value::Bytes(b"-12".to_vec()).as_int(), Some(-12));
        assert_eq!(Value::Bytes(b"12x".to_vec()).as_int(), None);
        assert_eq!(Value::Nil.as_int(), None);
        assert_eq!(Value::Bytes(b"hi".to_vec()).as_str(), Some("hi"));
        assert_eq!(Value::Bytes(vec![0xff]).as_str(), None);
        assert_eq!(Value::Bytes(vec![0xff]).as_bytes(), Some(&[0xff][..]));
        assert_eq!(Value::Int(1).as_bytes(), None);
        assert_eq!(Value::Error("E".into()).as_str(), None);
        assert_eq!(Value::Nil.into_array(), None);
        assert!(!Value::Nil.is_error());
    }
}
