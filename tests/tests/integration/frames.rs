//! Long messages leave the server as WebSocket fragments (`websocket.send_fragment_bytes`), read
//! here frame by frame from a raw TCP socket, and the handshake refuses what is not one.

use std::time::Duration;

use lectern_proto::Role;
use lectern_tests::{TestServer, display_name};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(10);

/// One frame as the server sent it (server frames are never masked).
struct RawFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A WebSocket client that sees frames, not messages.
struct RawClient {
    tcp: TcpStream,
}

impl RawClient {
    async fn connect(addr: std::net::SocketAddr) -> RawClient {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("write");
        let head = read_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // RFC 6455's own example key and answer.
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        RawClient { tcp }
    }

    /// Send one masked text frame (clients must mask).
    async fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes()).await;
    }

    /// Send one masked, final frame.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let frame = masked(opcode, payload);
        self.tcp.write_all(&frame).await.expect("send");
    }

    async fn frame(&mut self) -> RawFrame {
        tokio::time::timeout(DEADLINE, self.read_frame())
            .await
            .expect("a frame before the deadline")
    }

    async fn read_frame(&mut self) -> RawFrame {
        let mut head = [0u8; 2];
        self.tcp.read_exact(&mut head).await.expect("frame header");
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] & 0x7f {
            126 => u64::from(self.tcp.read_u16().await.expect("length")),
            127 => self.tcp.read_u64().await.expect("length"),
            n => u64::from(n),
        };
        let mut payload = vec![0; usize::try_from(len).expect("length")];
        self.tcp.read_exact(&mut payload).await.expect("payload");
        RawFrame {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0f,
            payload,
        }
    }

    /// The next text message, with the size of each frame it came in.
    async fn message(&mut self) -> (Value, Vec<usize>) {
        let mut data = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let frame = self.frame().await;
            match frame.opcode {
                // Ping (answered by nobody here) and pong: not part of a message.
                0x9 | 0xa => continue,
                0x1 => assert!(sizes.is_empty(), "a text frame inside a fragmented message"),
                0x0 => assert!(!sizes.is_empty(), "a continuation frame first"),
                other => panic!("unexpected opcode {other}"),
            }
            sizes.push(frame.payload.len());
            data.extend_from_slice(&frame.payload);
            if frame.fin {
                let text = String::from_utf8(data).expect("text messages are UTF-8");
                return (serde_json::from_str(&text).expect("JSON"), sizes);
            }
        }
    }
}

/// One masked, final client frame (payloads under 64 KiB).
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked_part(true, opcode, payload)
}

/// One masked client frame, final or not (payloads under 64 KiB).
fn masked_part(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask = [0x12, 0x34, 0x56, 0x78];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).expect("short").to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut byte))
            .await
            .expect("response before the deadline")
            .expect("read");
        assert_eq!(n, 1, "connection closed during the handshake: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// A room whose snapshot is ~60 KB: 20 chat messages of 1,500 two-byte characters.
async fn busy_room(s: &TestServer) -> lectern_tests::Client {
    let mut teacher = s.join("frames", "teacher", Role::Instructor).await;
    // Live, so a student joining sees the chat (the lobby shows none).
    teacher
        .ok(json!({"type": "class_start"}))
        .await
        .expect("start");
    for n in 0..20 {
        let text = format!("{n} {}", "é".repeat(1500));
        teacher
            .ok(json!({"type": "chat_send", "text": text}))
            .await
            .expect("chat");
    }
    teacher
}

async fn welcome_frames(s: &TestServer) -> (Value, Vec<usize>) {
    let mut raw = RawClient::connect(s.addr).await;
    let token = s.token("frames", "ada", &display_name("ada"), Role::Student);
    raw.send_text(&json!({"type": "hello", "protocol_version": 1, "token": token}).to_string())
        .await;
    raw.message().await
}

#[tokio::test]
async fn a_long_welcome_arrives_in_fragments_no_larger_than_the_setting() {
    let s = TestServer::start_with(&[
        ("LECTERN_LIMITS_CHAT_BURST", "40"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "40"),
    ])
    .await;
    let _teacher = busy_room(&s).await;
    let (welcome, sizes) = welcome_frames(&s).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let chat = welcome["snapshot"]["chat"].as_array().expect("chat");
    assert_eq!(chat.len(), 20);
    assert!(
        chat[19]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("19 é"))
    );
    let total: usize = sizes.iter().sum();
    assert!(total > 50_000, "the welcome is long: {total} bytes");
    assert!(sizes.len() >= total / 4096, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 4096), "{sizes:?}");
}

#[tokio::test]
async fn with_fragments_off_a_long_welcome_is_one_frame() {
    let s = TestServer::start_with(&[
        ("LECTERN_LIMITS_CHAT_BURST", "40"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "40"),
        ("LECTERN_WEBSOCKET_SEND_FRAGMENT_BYTES", "0"),
    ])
    .await;
    let _teacher = busy_room(&s).await;
    let (welcome, sizes) = welcome_frames(&s).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(sizes.len(), 1, "{sizes:?}");
    assert!(sizes[0] > 50_000);
}

#[tokio::test]
async fn what_is_not_a_websocket_handshake_gets_a_readable_refusal() {
    let s = TestServer::start().await;
    let cases = [
        ("Connection: close\r\n", "400", "Connection: upgrade"),
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "426",
            "version 13",
        ),
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: not-a-key\r\n",
            "400",
            "Sec-WebSocket-Key",
        ),
    ];
    for (headers, status, says) in cases {
        let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
        let request = format!("GET /ws HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        // The refusal closes nothing by itself: read until its body is in.
        while !String::from_utf8_lossy(&response).contains(says) {
            let n = tokio::time::timeout(DEADLINE, tcp.read(&mut buf))
                .await
                .expect("a response before the deadline")
                .expect("read");
            assert!(
                n > 0,
                "closed early: {}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
    }
}

/// A raw client in the room "frames", past its hello and welcome.
async fn joined_raw(s: &TestServer, sub: &str) -> RawClient {
    let mut raw = RawClient::connect(s.addr).await;
    let token = s.token("frames", sub, &display_name(sub), Role::Student);
    raw.send_text(&json!({"type": "hello", "protocol_version": 1, "token": token}).to_string())
        .await;
    let (welcome, _) = raw.message().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    raw
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong_of_the_same_payload() {
    let s = TestServer::start().await;
    let mut raw = joined_raw(&s, "ada").await;
    raw.send_frame(0x9, b"are you there").await;
    loop {
        let frame = raw.frame().await;
        if frame.opcode == 0xa {
            assert!(frame.fin);
            assert_eq!(frame.payload, b"are you there");
            break;
        }
    }
}

#[tokio::test]
async fn a_close_from_the_client_gets_a_close_with_its_code_and_the_connection_ends() {
    let s = TestServer::start().await;
    let mut raw = joined_raw(&s, "ada").await;
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"going away");
    raw.send_frame(0x8, &payload).await;
    let close = loop {
        let frame = raw.frame().await;
        if frame.opcode == 0x8 {
            break frame;
        }
    };
    assert!(close.fin);
    assert_eq!(close.payload[..2], 1001u16.to_be_bytes(), "the code echoed");
    // Then the server ends the TCP connection.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, raw.tcp.read_to_end(&mut rest))
        .await
        .expect("the connection ends before the deadline");
    assert!(
        read.is_ok() && rest.is_empty(),
        "nothing after the close: {rest:?}"
    );
}

#[tokio::test]
async fn pings_during_a_fragmented_welcome_are_answered_between_messages_never_inside_one() {
    let s = TestServer::start_with(&[
        ("LECTERN_LIMITS_CHAT_BURST", "40"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "40"),
        ("LECTERN_WEBSOCKET_SEND_FRAGMENT_BYTES", "1024"),
    ])
    .await;
    let _teacher = busy_room(&s).await;
    let mut raw = RawClient::connect(s.addr).await;
    let token = s.token("frames", "ada", &display_name("ada"), Role::Student);
    // The hello and 30 pings in one write: the pongs are queued while the ~60 KB welcome (some
    // 60 fragments) is on its way.
    let hello = json!({"type": "hello", "protocol_version": 1, "token": token}).to_string();
    let mut burst = masked(0x1, hello.as_bytes());
    for n in 0..30u8 {
        burst.extend(masked(0x9, &[b'p', n]));
    }
    raw.tcp.write_all(&burst).await.expect("send");
    let mut pongs = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    let mut welcome = None;
    while pongs.len() < 30 || welcome.is_none() {
        let frame = raw.frame().await;
        match frame.opcode {
            0xa => {
                assert!(open.is_none(), "a pong inside a fragmented message");
                pongs.push(frame.payload);
            }
            0x9 => assert!(open.is_none(), "a ping inside a fragmented message"),
            0x1 => {
                assert!(open.is_none(), "a text frame inside a fragmented message");
                open = Some(frame.payload);
            }
            0x0 => open
                .as_mut()
                .expect("a continuation frame first")
                .extend_from_slice(&frame.payload),
            other => panic!("unexpected opcode {other}"),
        }
        if frame.fin && matches!(frame.opcode, 0x0 | 0x1) {
            let text = String::from_utf8(open.take().expect("a message")).expect("UTF-8");
            let message: Value = serde_json::from_str(&text).expect("JSON");
            if message["type"] == "welcome" {
                welcome = Some(message);
            }
        }
    }
    let expected: Vec<Vec<u8>> = (0..30u8).map(|n| vec![b'p', n]).collect();
    assert_eq!(pongs, expected, "every ping answered, in order");
    let welcome = welcome.expect("welcome");
    assert_eq!(
        welcome["snapshot"]["chat"].as_array().map(Vec::len),
        Some(20)
    );
}

impl RawClient {
    /// Write `bytes` a few hundred at a time, so the server reads a frame in several pieces.
    async fn dribble(&mut self, bytes: &[u8]) {
        self.tcp.set_nodelay(true).expect("nodelay");
        for piece in bytes.chunks(300) {
            self.tcp.write_all(piece).await.expect("send");
            self.tcp.flush().await.expect("flush");
            tokio::task::yield_now().await;
        }
    }

    /// The next message whose `type` is `kind`.
    async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let (message, _) = self.message().await;
            if message["type"] == kind {
                return message;
            }
        }
    }
}

/// The server reads with a small buffer (`websocket.read_buffer_bytes`, 1 KiB by default):
/// frames many times longer, whole or in fragments, and arriving in pieces, are still read whole.
#[tokio::test]
async fn frames_longer_than_the_read_buffer_arrive_whole() {
    for read_buffer in ["256", "1024"] {
        long_frames_arrive_whole(read_buffer).await;
    }
}

async fn long_frames_arrive_whole(read_buffer: &str) {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_WEBSOCKET_READ_BUFFER_BYTES", read_buffer),
    ])
    .await;
    let mut bob = s.join("frames", "bob", Role::Student).await;
    let mut ada = joined_raw(&s, "ada").await;

    // The longest chat allowed: 2,000 two-byte characters in one ~4 KB frame.
    let long = "é".repeat(2000);
    let chat = json!({"type": "chat_send", "text": long}).to_string();
    ada.dribble(&masked(0x1, chat.as_bytes())).await;
    let got = bob
        .wait_for(|m| {
            m["event"]["message"]["text"]
                .as_str()
                .is_some_and(|t| t.len() > 1000)
        })
        .await
        .expect("the long chat");
    assert_eq!(got["event"]["message"]["text"], long.as_str());

    // A ~60 KB frame, under `limits.max_frame_bytes` (64 KiB): read whole and answered as the
    // request it is (too long a chat), not as a broken frame; the connection goes on.
    let huge = json!({"type": "chat_send", "text": "x".repeat(60_000)}).to_string();
    assert!(huge.len() > 60_000 && huge.len() < 65_536);
    ada.dribble(&masked(0x1, huge.as_bytes())).await;
    let error = ada.next_of("error").await;
    assert_eq!(error["code"], "chat_too_long", "{error}");

    // A message in three fragments of ~2 KB each.
    let text = format!("fragments {}", "ü".repeat(1500));
    let chat = json!({"type": "chat_send", "text": text}).to_string();
    let third = chat.len() / 3;
    let (a, rest) = chat.as_bytes().split_at(third);
    let (b, c) = rest.split_at(third);
    let mut frames = masked_part(false, 0x1, a);
    frames.extend(masked_part(false, 0x0, b));
    frames.extend(masked_part(true, 0x0, c));
    ada.dribble(&frames).await;
    let got = bob
        .wait_for(|m| {
            m["event"]["message"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("fragments"))
        })
        .await
        .expect("the fragmented chat");
    assert_eq!(got["event"]["message"]["text"], text.as_str());
}
