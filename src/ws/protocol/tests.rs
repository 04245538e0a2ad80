use super::*;

const LIMIT: usize = 1 << 20;
const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// A frame as a client would send it (masked).
fn masked(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, fin, payload, Some(KEY));
    out
}

/// A frame as a server would send it (unmasked).
fn unmasked(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, fin, payload, None);
    out
}

/// Feeds `bytes` to a fresh endpoint in pieces of `piece` bytes and collects the events,
/// ending with the first error if there is one.
fn decode_in_pieces(role: Role, bytes: &[u8], piece: usize) -> Vec<Result<Event, ProtocolError>> {
    let mut ws = WebSocket::new(role, LIMIT);
    let mut results = Vec::new();
    for mut input in bytes.chunks(piece.max(1)) {
        loop {
            match ws.read(&mut input) {
                Ok(Some(event)) => results.push(Ok(event)),
                Ok(None) => break,
                Err(e) => {
                    results.push(Err(e));
                    return results;
                }
            }
        }
    }
    results
}

/// Decodes `bytes` whole, one byte at a time, and in every other piece size, checks that
/// all agree, and returns the result.
fn decode(role: Role, bytes: &[u8]) -> Vec<Result<Event, ProtocolError>> {
    let whole = decode_in_pieces(role, bytes, bytes.len());
    // Every piece size up to 64, then a few more for long inputs: byte-by-byte is the
    // case that matters most and is always included.
    let sizes = (1..=bytes.len().min(64)).chain([100, 997, 4096]);
    for piece in sizes {
        assert_eq!(
            decode_in_pieces(role, bytes, piece),
            whole,
            "pieces of {piece}"
        );
    }
    whole
}

fn server(bytes: &[u8]) -> Vec<Result<Event, ProtocolError>> {
    decode(Role::Server, bytes)
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

#[test]
fn single_frame_messages_of_every_length_form() {
    for len in [0, 1, 125, 126, 127, 65535, 65536, 100_000] {
        let text = "x".repeat(len);
        let events = decode_in_pieces(
            Role::Server,
            &masked(Opcode::Text, true, text.as_bytes()),
            1,
        );
        assert_eq!(events, vec![Ok(Event::Text(text.clone()))], "text of {len}");
        let bytes = vec![0xa5; len];
        let events = decode_in_pieces(Role::Server, &masked(Opcode::Binary, true, &bytes), 4096);
        assert_eq!(events, vec![Ok(Event::Binary(bytes))], "binary of {len}");
    }
}

#[test]
fn fragmented_message_with_control_frames_between_fragments() {
    let input = concat(&[
        masked(Opcode::Text, false, "Hello, ".as_bytes()),
        masked(Opcode::Ping, true, b"are you there"),
        masked(Opcode::Continuation, false, "wörld".as_bytes()),
        masked(Opcode::Pong, true, b""),
        masked(Opcode::Continuation, true, b"!"),
        masked(Opcode::Binary, true, &[1, 2, 3]),
    ]);
    assert_eq!(
        server(&input),
        vec![
            Ok(Event::Ping(ControlPayload::new(b"are you there").unwrap())),
            Ok(Event::Pong(ControlPayload::EMPTY)),
            Ok(Event::Text("Hello, wörld!".into())),
            Ok(Event::Binary(vec![1, 2, 3])),
        ]
    );
}

#[test]
fn a_character_split_across_fragments_is_valid() {
    let euro = "€".as_bytes(); // e2 82 ac
    let input = concat(&[
        masked(Opcode::Text, false, &euro[..1]),
        masked(Opcode::Continuation, false, &euro[1..2]),
        masked(Opcode::Continuation, true, &euro[2..]),
    ]);
    assert_eq!(server(&input), vec![Ok(Event::Text("€".into()))]);
}

#[test]
fn masking_rules_depend_on_the_role() {
    assert_eq!(
        server(&unmasked(Opcode::Text, true, b"hi")),
        vec![Err(ProtocolError::UnmaskedFrame)]
    );
    assert_eq!(
        decode(Role::Client, &masked(Opcode::Text, true, b"hi")),
        vec![Err(ProtocolError::MaskedFrame)]
    );
    assert_eq!(
        decode(Role::Client, &unmasked(Opcode::Text, true, b"hi")),
        vec![Ok(Event::Text("hi".into()))]
    );
}

#[test]
fn framing_violations_are_protocol_errors() {
    let mut rsv = masked(Opcode::Text, true, b"hi");
    rsv[0] |= 0x40;
    let mut reserved_opcode = masked(Opcode::Text, true, b"hi");
    reserved_opcode[0] = 0x80 | 0x3;
    let cases: Vec<(&str, Vec<u8>, ProtocolError)> = vec![
        (
            "rsv1 without extension",
            rsv,
            ProtocolError::ReservedBits(4),
        ),
        (
            "reserved opcode",
            reserved_opcode,
            ProtocolError::ReservedOpcode(3),
        ),
        (
            "fragmented ping",
            masked(Opcode::Ping, false, b""),
            ProtocolError::FragmentedControlFrame,
        ),
        (
            "ping of 126 bytes",
            masked(Opcode::Ping, true, &[0; 126]),
            ProtocolError::ControlFrameTooLong(126),
        ),
        (
            "continuation first",
            masked(Opcode::Continuation, true, b"x"),
            ProtocolError::UnexpectedContinuation,
        ),
        (
            "text inside a fragmented message",
            concat(&[
                masked(Opcode::Text, false, b"a"),
                masked(Opcode::Text, true, b"b"),
            ]),
            ProtocolError::ExpectedContinuation,
        ),
        (
            "one-byte close",
            masked(Opcode::Close, true, &[3]),
            ProtocolError::CloseFrameTooShort,
        ),
        (
            "close code 1005",
            masked(Opcode::Close, true, &[0x03, 0xed]),
            ProtocolError::InvalidCloseCode(1005),
        ),
        (
            "close code 999",
            masked(Opcode::Close, true, &[0x03, 0xe7]),
            ProtocolError::InvalidCloseCode(999),
        ),
        (
            "close reason not UTF-8",
            masked(Opcode::Close, true, &[0x03, 0xe8, 0xff]),
            ProtocolError::InvalidUtf8,
        ),
        (
            "text not UTF-8",
            masked(Opcode::Text, true, b"ab\xffcd"),
            ProtocolError::InvalidUtf8,
        ),
        (
            "text cut mid-character",
            masked(Opcode::Text, true, b"ab\xe2\x82"),
            ProtocolError::InvalidUtf8,
        ),
    ];
    for (name, input, error) in cases {
        assert_eq!(server(&input), vec![Err(error)], "{name}");
        assert_eq!(
            error.close_code() == CloseCode::InvalidPayload,
            error == ProtocolError::InvalidUtf8
        );
    }
}

#[test]
fn invalid_text_fails_before_the_rest_of_the_message_arrives() {
    // Across fragments: the bad byte is in the second fragment; no final fragment is sent.
    let input = concat(&[
        masked(Opcode::Text, false, "κόσμε".as_bytes()),
        masked(Opcode::Continuation, false, b"\xed\xa0\x80more"),
    ]);
    assert_eq!(server(&input), vec![Err(ProtocolError::InvalidUtf8)]);

    // Within one frame: only the start of a long payload has arrived.
    let mut payload = b"valid \xf4\x90\x80\x80".to_vec();
    payload.resize(10_000, b'a');
    let frame = masked(Opcode::Text, true, &payload);
    let header_len = frame.len() - payload.len();
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let mut input = &frame[..header_len + 8];
    assert_eq!(ws.read(&mut input), Err(ProtocolError::InvalidUtf8));
    assert_eq!(ws.state(), State::Closed);
    let mut out = Vec::new();
    ws.drain_replies(&mut out);
    let reason = ProtocolError::InvalidUtf8.to_string();
    assert_eq!(
        &out[..4],
        [0x88, 2 + reason.len() as u8, 0x03, 0xef],
        "our Close, 1007"
    );
    assert_eq!(&out[4..], reason.as_bytes());
}

#[test]
fn oversized_messages_are_refused_from_the_header() {
    let mut ws = WebSocket::new(Role::Server, 1000);
    // Only the header of a 1001-byte frame: refused before any payload is sent.
    let frame = masked(Opcode::Binary, true, &[0; 1001]);
    let mut input = &frame[..8];
    assert_eq!(
        ws.read(&mut input),
        Err(ProtocolError::MessageTooBig {
            size: 1001,
            limit: 1000
        })
    );

    // Fragments count together.
    let mut ws = WebSocket::new(Role::Server, 1000);
    let input = concat(&[
        masked(Opcode::Binary, false, &[0; 600]),
        masked(Opcode::Continuation, true, &[0; 401]),
    ]);
    let mut input = &input[..];
    assert_eq!(
        ws.read(&mut input),
        Err(ProtocolError::MessageTooBig {
            size: 1001,
            limit: 1000
        })
    );
    assert_eq!(
        ProtocolError::MessageTooBig { size: 0, limit: 0 }.close_code(),
        CloseCode::MessageTooBig
    );

    // Exactly the limit is fine.
    let mut ws = WebSocket::new(Role::Server, 1000);
    let frame = masked(Opcode::Binary, true, &[7; 1000]);
    assert_eq!(
        ws.read(&mut &frame[..]),
        Ok(Some(Event::Binary(vec![7; 1000])))
    );
}

#[test]
fn close_payloads() {
    assert_eq!(
        server(&masked(Opcode::Close, true, b"")),
        vec![Ok(Event::Close(None))]
    );
    let mut payload = vec![0x0f, 0xa0]; // 4000, private use
    payload.extend_from_slice("bye ✓".as_bytes());
    assert_eq!(
        server(&masked(Opcode::Close, true, &payload)),
        vec![Ok(Event::Close(Some(CloseFrame {
            code: CloseCode::Other(4000),
            reason: "bye ✓".into()
        })))]
    );
}

#[test]
fn peer_initiated_closing_handshake() {
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let frame = masked(Opcode::Close, true, &[0x03, 0xe8]);
    let event = ws.read(&mut &frame[..]).unwrap();
    assert_eq!(
        event,
        Some(Event::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: String::new()
        })))
    );
    // The echo of its code is owed, and nothing may be sent after it.
    assert_eq!(ws.state(), State::Closed);
    let mut out = Vec::new();
    ws.drain_replies(&mut out);
    assert_eq!(out, [0x88, 0x02, 0x03, 0xe8]);
    assert!(!ws.has_replies());
    assert_eq!(
        ws.write_close(Some((CloseCode::Normal, "")), &mut out),
        Err(WriteError::Closed),
        "exactly one Close"
    );

    // Anything after the peer's Close is ignored.
    let more = masked(Opcode::Text, true, b"late");
    let mut input = &more[..];
    assert_eq!(ws.read(&mut input), Ok(None));
    assert!(input.is_empty());
    assert_eq!(
        ws.write_message(Message::Text("x"), &mut out),
        Err(WriteError::Closed)
    );
}

#[test]
fn locally_initiated_closing_handshake() {
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let mut out = Vec::new();
    ws.write_close(Some((CloseCode::GoingAway, "restarting")), &mut out)
        .unwrap();
    assert_eq!(&out[..4], [0x88, 12, 0x03, 0xe9]);
    assert_eq!(&out[4..], b"restarting");
    assert_eq!(ws.state(), State::CloseSent);
    assert_eq!(ws.write_pong(b"", &mut out), Err(WriteError::Closed));

    // Messages still in flight from the peer are decoded; then its Close ends it.
    let input = concat(&[
        masked(Opcode::Text, true, b"in flight"),
        masked(Opcode::Close, true, &[0x03, 0xe9]),
    ]);
    let mut input = &input[..];
    assert_eq!(
        ws.read(&mut input),
        Ok(Some(Event::Text("in flight".into())))
    );
    assert!(matches!(
        ws.read(&mut input),
        Ok(Some(Event::Close(Some(_))))
    ));
    assert_eq!(ws.state(), State::Closed);
    assert!(
        !ws.has_replies(),
        "the peer's Close answered ours: nothing is owed"
    );
}

#[test]
fn every_ping_drained_is_answered_with_its_payload_until_our_close() {
    for role in [Role::Server, Role::Client] {
        let mut ws = WebSocket::new(role, LIMIT);
        let frame = |payload: &[u8]| match role {
            Role::Server => masked(Opcode::Ping, true, payload),
            Role::Client => unmasked(Opcode::Ping, true, payload),
        };
        let input = concat(&[frame(b"one"), frame(b""), frame(&[7; 125])]);
        let mut input = &input[..];
        let mut replies = Vec::new();
        while ws.read(&mut input).unwrap().is_some() {
            ws.drain_replies(&mut replies);
        }
        // The replies are frames a peer in the other role decodes as three Pongs.
        let other = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let events = decode(other, &replies);
        assert_eq!(
            events,
            vec![
                Ok(Event::Pong(ControlPayload::new(b"one").unwrap())),
                Ok(Event::Pong(ControlPayload::new(b"").unwrap())),
                Ok(Event::Pong(ControlPayload::new(&[7; 125]).unwrap())),
            ],
            "{role:?}"
        );
        // Pings read without a drain between them: only the latest is answered (RFC 6455
        // §5.5.3), so a peer flooding Pings cannot grow the replies.
        let two = concat(&[frame(b"first"), frame(b"second")]);
        let mut input = &two[..];
        while ws.read(&mut input).unwrap().is_some() {}
        let mut replies = Vec::new();
        ws.drain_replies(&mut replies);
        assert_eq!(
            decode(other, &replies),
            vec![Ok(Event::Pong(ControlPayload::new(b"second").unwrap()))]
        );
        // A Pong not yet drained when we close is dropped, and after our Close a Ping
        // is not answered.
        let ping = frame(b"late");
        ws.read(&mut &ping[..]).unwrap();
        let mut out = Vec::new();
        ws.write_close(None, &mut out).unwrap();
        assert!(!ws.has_replies());
        ws.read(&mut &ping[..]).unwrap();
        assert!(!ws.has_replies());
    }
}

#[test]
fn after_an_error_our_close_is_owed_and_input_is_ignored() {
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let bad = unmasked(Opcode::Text, true, b"x");
    assert_eq!(ws.read(&mut &bad[..]), Err(ProtocolError::UnmaskedFrame));
    assert_eq!(ws.state(), State::Closed);
    let good = masked(Opcode::Text, true, b"ignored");
    assert_eq!(ws.read(&mut &good[..]), Ok(None));
    let mut out = Vec::new();
    assert_eq!(
        ws.write_message(Message::Text("no"), &mut out),
        Err(WriteError::Closed)
    );
    assert!(out.is_empty());
    ws.drain_replies(&mut out);
    assert_eq!(&out[2..4], [0x03, 0xea], "1002");
    assert_eq!(&out[4..], b"client frame is not masked");
}

#[test]
fn close_reason_is_cut_to_fit_at_a_character_boundary() {
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let mut out = Vec::new();
    let reason = "é".repeat(100); // 200 bytes
    ws.write_close(Some((CloseCode::Normal, &reason)), &mut out)
        .unwrap();
    assert_eq!(out[1] as usize, out.len() - 2);
    assert!(out.len() - 2 <= MAX_CONTROL_PAYLOAD);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

#[test]
fn client_and_server_understand_each_other() {
    let mut client = WebSocket::new(Role::Client, LIMIT);
    let mut server = WebSocket::new(Role::Server, LIMIT);
    let mut wire = Vec::new();
    client
        .write_message(Message::Text("from the client"), &mut wire)
        .unwrap();
    client.write_ping(b"p", &mut wire).unwrap();
    client
        .write_message(Message::Binary(&[0; 70_000]), &mut wire)
        .unwrap();
    assert_ne!(wire[2..6], [0, 0, 0, 0], "client frames carry a mask key");
    let mut input = &wire[..];
    assert_eq!(
        server.read(&mut input),
        Ok(Some(Event::Text("from the client".into())))
    );
    assert_eq!(
        server.read(&mut input),
        Ok(Some(Event::Ping(ControlPayload::new(b"p").unwrap())))
    );
    assert_eq!(
        server.read(&mut input),
        Ok(Some(Event::Binary(vec![0; 70_000])))
    );

    let mut wire = Vec::new();
    server
        .write_message(Message::Text("from the server"), &mut wire)
        .unwrap();
    assert_eq!(wire[1], 15, "server frames are not masked");
    assert_eq!(
        client.read(&mut &wire[..]),
        Ok(Some(Event::Text("from the server".into())))
    );
}

#[test]
fn message_buffers_are_recycled_but_large_ones_are_freed() {
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let frame = masked(Opcode::Binary, true, &[1; 100]);
    let Ok(Some(Event::Binary(buffer))) = ws.read(&mut &frame[..]) else {
        panic!("expected binary")
    };
    let capacity = buffer.capacity();
    ws.recycle(buffer);
    assert_eq!(ws.message.capacity(), capacity);

    let mut ws = WebSocket::new(Role::Server, LIMIT);
    ws.recycle(Vec::with_capacity(RECYCLE_LIMIT + 1));
    assert_eq!(ws.message.capacity(), 0);
}

#[test]
fn a_protocol_error_after_our_close_owes_no_second_close() {
    let mut ws = WebSocket::new(Role::Server, LIMIT);
    let mut out = Vec::new();
    ws.write_close(Some((CloseCode::Normal, "bye")), &mut out)
        .unwrap();
    let bad = unmasked(Opcode::Text, true, b"x");
    assert_eq!(ws.read(&mut &bad[..]), Err(ProtocolError::UnmaskedFrame));
    assert_eq!(ws.state(), State::Closed);
    assert!(!ws.has_replies());
    assert_eq!(
        ws.write_close(Some((CloseCode::ProtocolError, "")), &mut out),
        Err(WriteError::Closed)
    );
}

#[test]
fn close_codes_that_may_not_be_sent_are_refused() {
    for code in [
        CloseCode::NoStatus,
        CloseCode::Abnormal,
        CloseCode::TlsHandshake,
        CloseCode::Other(999),
    ] {
        let mut ws = WebSocket::new(Role::Server, LIMIT);
        let mut out = Vec::new();
        assert_eq!(
            ws.write_close(Some((code, "")), &mut out),
            Err(WriteError::CloseCodeNotAllowed(code.into()))
        );
        assert!(out.is_empty());
        assert_eq!(ws.state(), State::Open);
    }
}

mod deflate {
    use super::super::*;
    use crate::ws::deflate::codec::compress_message;
    use crate::ws::deflate::negotiation::Negotiated;

    fn negotiated() -> Negotiated {
        Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    fn server(limit: usize) -> WebSocket {
        WebSocket::new(Role::Server, limit).with_deflate(negotiated())
    }

    /// A masked client frame (with a zero key, so the payload reads as is).
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(payload);
        out
    }

    fn read_all(ws: &mut WebSocket, bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
        let mut input = bytes;
        let mut events = Vec::new();
        while let Some(event) = ws.read(&mut input)? {
            events.push(event);
        }
        Ok(events)
    }

    #[test]
    fn the_rfc_7692_examples_inflate() {
        // §7.2.3.1: "Hello" in one compressed frame, and in two fragments.
        let mut ws = server(1 << 20);
        let whole = frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        assert_eq!(
            read_all(&mut ws, &whole),
            Ok(vec![Event::Text("Hello".into())])
        );
        let mut pieces = frame(0x41, &[0xf2, 0x48, 0xcd]);
        pieces.extend(frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
        for split in 0..pieces.len() {
            let mut ws = server(1 << 20);
            let mut events = read_all(&mut ws, &pieces[..split]).unwrap();
            events.extend(read_all(&mut ws, &pieces[split..]).unwrap());
            assert_eq!(
                events,
                vec![Event::Text("Hello".into())],
                "split at {split}"
            );
        }
        // An uncompressed message on the same connection.
        let plain = frame(0x81, b"plain");
        assert_eq!(
            read_all(&mut ws, &plain),
            Ok(vec![Event::Text("plain".into())])
        );
    }

    #[test]
    fn compressed_binary_and_text_round_trip() {
        let mut ws = server(1 << 20);
        let text = r#"{"type":"message","text":"hello hello hello hello"}"#.repeat(20);
        let compressed = compress_message(text.as_bytes(), 15, 2);
        assert!(compressed.len() < text.len() / 2);
        let bytes = frame(0xc1, &compressed);
        assert_eq!(
            read_all(&mut ws, &bytes),
            Ok(vec![Event::Text(text.clone())])
        );
        let binary = frame(0xc2, &compress_message(&[7; 5000], 15, 2));
        assert_eq!(
            read_all(&mut ws, &binary),
            Ok(vec![Event::Binary(vec![7; 5000])])
        );
    }

    #[test]
    fn rsv1_where_it_does_not_belong_is_a_protocol_error() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        // Not negotiated.
        let mut plain = WebSocket::new(Role::Server, 1 << 20);
        assert!(matches!(
            read_all(&mut plain, &frame(0xc1, &hello)),
            Err(ProtocolError::ReservedBits(_))
        ));
        // On a continuation frame, and on a control frame.
        let mut ws = server(1 << 20);
        let mut bytes = frame(0x41, &hello[..3]);
        bytes.extend(frame(0xc0, &hello[3..]));
        assert!(matches!(
            read_all(&mut ws, &bytes),
            Err(ProtocolError::ReservedBits(_))
        ));
        let mut ws = server(1 << 20);
        assert!(matches!(
            read_all(&mut ws, &frame(0xc9, b"")),
            Err(ProtocolError::ReservedBits(_))
        ));
        // RSV2 and RSV3 stay reserved.
        let mut ws = server(1 << 20);
        assert!(matches!(
            read_all(&mut ws, &frame(0xa1, b"x")),
            Err(ProtocolError::ReservedBits(_))
        ));
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_bad_data_fails() {
        let mut ws = server(64 * 1024);
        let bomb = compress_message(&vec![0; 10 << 20], 15, 2);
        let error = read_all(&mut ws, &frame(0xc2, &bomb)).unwrap_err();
        assert_eq!(error, ProtocolError::InflatedTooBig { limit: 64 * 1024 });
        assert_eq!(error.close_code(), CloseCode::MessageTooBig);
        let mut ws = server(1 << 20);
        let error = read_all(&mut ws, &frame(0xc1, &[0xff, 0xff, 0xff, 0x00])).unwrap_err();
        assert_eq!(error.close_code(), CloseCode::InvalidPayload);
        // Inflated text that is not UTF-8.
        let mut ws = server(1 << 20);
        let bad = compress_message(&[0xff, 0xfe, 0xfd], 15, 2);
        assert_eq!(
            read_all(&mut ws, &frame(0xc1, &bad)),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    /// Negotiated parameters with context takeover as given, full windows.
    fn taking_context(server: bool, client: bool) -> Negotiated {
        Negotiated {
            server_no_context_takeover: !server,
            client_no_context_takeover: !client,
            ..negotiated()
        }
    }

    /// A chat event whose text repeats nothing within itself, so that only an earlier
    /// message can shorten it.
    fn chat_event(n: usize) -> String {
        let words: String = (0..40)
            .map(|i| format!("w{}x{} ", i * 7919 % 1000, n))
            .collect();
        format!(r#"{{"type":"message","room":"lobby","from":"ada","text":"{words}"}}"#)
    }

    #[test]
    fn a_client_compresses_what_it_sends_keeping_context_when_allowed() {
        use crate::ws::deflate::codec::{DEFAULT_LEVEL, MessageCompressor};
        for keep in [true, false] {
            let agreed = taking_context(false, keep);
            let mut client = WebSocket::new(Role::Client, 1 << 20).with_deflate(agreed);
            let mut server = WebSocket::new(Role::Server, 1 << 20).with_deflate(agreed);
            let mut compressor =
                MessageCompressor::new(agreed.outgoing(Role::Client), DEFAULT_LEVEL).unwrap();
            assert_eq!(compressor.keeps_context(), keep);
            let text = chat_event(1);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let mut wire = Vec::new();
                client
                    .write_compressed(Message::Text(&text), &mut compressor, &mut wire)
                    .unwrap();
                assert_eq!(wire[0], 0xc1, "FIN, RSV1, text");
                assert_eq!(wire[1] & 0x80, 0x80, "masked");
                sizes.push(wire.len());
                assert_eq!(
                    read_all(&mut server, &wire),
                    Ok(vec![Event::Text(text.clone())])
                );
            }
            assert!(sizes[0] < text.len(), "{sizes:?}");
            if keep {
                // The same message again is a reference to the one before.
                assert!(sizes[1] < sizes[0] / 4, "{sizes:?}");
            } else {
                assert_eq!(sizes[1], sizes[0], "{sizes:?}");
            }
        }
    }

    #[test]
    fn the_client_keeps_the_servers_window_unless_the_server_resets_its_own() {
        use crate::ws::deflate::codec::MessageCompressor;
        // A server that keeps its context, as Node's ws does by default.
        let agreed = taking_context(true, false);
        let mut sender = MessageCompressor::new(agreed.outgoing(Role::Server), 6).unwrap();
        let text = chat_event(2);
        let first = unmasked_compressed(sender.compress(text.as_bytes()));
        let second = unmasked_compressed(sender.compress(text.as_bytes()));
        assert!(second.len() < first.len() / 4);

        let mut client = WebSocket::new(Role::Client, 1 << 20).with_deflate(agreed);
        assert_eq!(
            read_all(&mut client, &[first.clone(), second.clone()].concat()),
            Ok(vec![Event::Text(text.clone()), Event::Text(text.clone())])
        );
        // The check can fail: a client that dropped its window would not understand the
        // second message, which only refers back to the first.
        let forgetful = taking_context(false, false);
        let mut client = WebSocket::new(Role::Client, 1 << 20).with_deflate(forgetful);
        assert_eq!(
            read_all(&mut client, &first),
            Ok(vec![Event::Text(text.clone())])
        );
        assert_eq!(
            read_all(&mut client, &second),
            Err(ProtocolError::BadCompressedData)
        );
    }

    /// A compressed text frame as a server sends it.
    fn unmasked_compressed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_compressed_frame(&mut out, Opcode::Text, payload, None);
        out
    }

    #[test]
    fn compressed_writes_need_deflate_and_an_open_connection() {
        use crate::ws::deflate::codec::{DEFAULT_LEVEL, MessageCompressor};
        use crate::ws::deflate::negotiation::Direction;
        let direction = negotiated().outgoing(Role::Client);
        let mut compressor = MessageCompressor::new(direction, DEFAULT_LEVEL).unwrap();
        let mut out = Vec::new();
        let mut plain = WebSocket::new(Role::Client, 1 << 20);
        assert_eq!(
            plain.write_compressed(Message::Text("hi"), &mut compressor, &mut out),
            Err(WriteError::DeflateNotNegotiated)
        );
        let mut ws = WebSocket::new(Role::Client, 1 << 20).with_deflate(negotiated());
        ws.write_close(None, &mut out).unwrap();
        assert_eq!(
            ws.write_compressed(Message::Text("hi"), &mut compressor, &mut out),
            Err(WriteError::Closed)
        );
        // A window zlib cannot keep to: no compressor, messages go uncompressed.
        let eight = Direction {
            window_bits: 8,
            no_context_takeover: true,
        };
        assert!(MessageCompressor::new(eight, DEFAULT_LEVEL).is_none());
    }
}
