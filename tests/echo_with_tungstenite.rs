//! The echo server against an independent client: tungstenite.

mod common;

use std::net::{SocketAddr, TcpStream};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};
use tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

fn connect(addr: SocketAddr) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let (ws, response) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
    assert_eq!(response.status(), 101);
    ws
}

fn echo_round_trip(ws: &mut WebSocket<TcpStream>, message: Message) {
    ws.send(message.clone()).unwrap();
    assert_eq!(ws.read().unwrap(), message);
}

#[test]
fn echoes_text_and_binary_small_and_large() {
    let addr = common::echo_server();
    let mut ws = connect(addr);
    echo_round_trip(&mut ws, Message::text("hello"));
    echo_round_trip(&mut ws, Message::text(""));
    echo_round_trip(&mut ws, Message::text("κόσμε 😀 ".repeat(1000)));
    echo_round_trip(&mut ws, Message::binary(vec![0u8, 1, 2, 255]));
    let big: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    echo_round_trip(&mut ws, Message::binary(big));
    let big_text = "loopchat ".repeat(400_000); // 3.6 MB
    echo_round_trip(&mut ws, Message::text(big_text));
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            other => panic!("unexpected after close: {other:?}"),
        }
    }
}

#[test]
fn echoes_a_fragmented_message_as_one_message() {
    let addr = common::echo_server();
    let mut ws = connect(addr);
    let parts: [&[u8]; 3] = [b"frag", b"men", b"ted"];
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let header = FrameHeader {
            is_final: i == parts.len() - 1,
            opcode,
            ..FrameHeader::default()
        };
        ws.write(Message::Frame(Frame::from_payload(
            header,
            part.to_vec().into(),
        )))
        .unwrap();
        // A ping between fragments must be answered at once.
        if i == 0 {
            ws.write(Message::Ping(b"mid".to_vec().into())).unwrap();
        }
    }
    ws.flush().unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"mid".to_vec().into()));
    assert_eq!(ws.read().unwrap(), Message::text("fragmented"));
}

#[test]
fn many_messages_in_flight_come_back_in_order() {
    let addr = common::echo_server();
    let mut ws = connect(addr);
    for i in 0..2000 {
        ws.write(Message::text(format!("message {i}"))).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..2000 {
        assert_eq!(ws.read().unwrap(), Message::text(format!("message {i}")));
    }
}

#[test]
fn close_code_is_echoed() {
    let addr = common::echo_server();
    let mut ws = connect(addr);
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected the echoed close, got {other:?}"),
    }
}
