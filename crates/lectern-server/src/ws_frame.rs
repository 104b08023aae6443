//! Server-to-client WebSocket frames as bytes on the wire (RFC 6455, section 5.2).
//!
//! Server frames are never masked, so a message's frames are the same bytes for every
//! recipient: a message is serialized and framed once ([`text`]) and each connection's writer
//! writes those shared bytes to its socket as they are (see `ws::writer`). A long message is
//! cut into fragments of at most `websocket.send_fragment_bytes` bytes of payload each, cut
//! between characters (section 5.4), which every WebSocket client reassembles before it sees
//! the message. Control frames (ping, pong, close) are built here too.
//!
//! A leaf: it uses nothing else from this crate.

use bytes::{BufMut, Bytes, BytesMut};

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// A control frame's payload is at most this long (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The frame header for a payload of `len` bytes: 2, 4 or 10 bytes.
fn put_header(out: &mut BytesMut, first: u8, len: usize) {
    out.put_u8(first);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// One text message as the frames that carry it: one frame when it fits in `fragment` bytes
/// (or `fragment` is 0), else fragments of at most that many bytes (at least one character
/// each), each cut on a character boundary.
pub fn text(message: &str, fragment: usize) -> Bytes {
    if fragment == 0 || message.len() <= fragment {
        let mut out = BytesMut::with_capacity(message.len() + 10);
        put_header(&mut out, FIN | TEXT, message.len());
        out.put_slice(message.as_bytes());
        return out.freeze();
    }
    let pieces = message.len() / fragment + 1;
    let mut out = BytesMut::with_capacity(message.len() + 4 * pieces + 10);
    let mut start = 0;
    while start < message.len() {
        let mut end = (start + fragment).min(message.len());
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        if end == start {
            // `fragment` is smaller than one character: send that character whole.
            end = start + message[start..].chars().next().map_or(1, char::len_utf8);
        }
        let opcode = if start == 0 { TEXT } else { CONTINUATION };
        let fin = if end == message.len() { FIN } else { 0 };
        put_header(&mut out, fin | opcode, end - start);
        out.put_slice(&message.as_bytes()[start..end]);
        start = end;
    }
    out.freeze()
}

fn control(opcode: u8, payload: &[u8]) -> Bytes {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    let mut out = BytesMut::with_capacity(2 + payload.len());
    put_header(&mut out, FIN | opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// A ping with an empty payload.
pub fn ping() -> Bytes {
    control(PING, &[])
}

/// The pong that answers a ping: the same payload (section 5.5.3).
pub fn pong(payload: &[u8]) -> Bytes {
    control(PONG, payload)
}

/// A close frame: with a status code and reason (cut to fit a control frame, between
/// characters), or empty.
pub fn close(status: Option<(u16, &str)>) -> Bytes {
    let Some((code, reason)) = status else {
        return control(CLOSE, &[]);
    };
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    control(CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse unmasked frames back: (fin, opcode, payload) each.
    fn parse(mut wire: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !wire.is_empty() {
            assert_eq!(wire[1] & 0x80, 0, "server frames are not masked");
            let (len, head) = match wire[1] & 0x7f {
                126 => (usize::from(u16::from_be_bytes([wire[2], wire[3]])), 4),
                127 => {
                    let len = u64::from_be_bytes(wire[2..10].try_into().expect("8 bytes"));
                    (usize::try_from(len).expect("length"), 10)
                }
                n => (usize::from(n), 2),
            };
            let payload = wire[head..head + len].to_vec();
            frames.push((wire[0] & FIN != 0, wire[0] & 0x0f, payload));
            wire = &wire[head + len..];
        }
        frames
    }

    #[test]
    fn short_messages_are_one_frame_with_the_smallest_length_field() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let message = "a".repeat(len);
            let wire = text(&message, 0);
            let header = wire.len() - len;
            let expected = match len {
                0..126 => 2,
                126..65_536 => 4,
                _ => 10,
            };
            assert_eq!(header, expected, "{len}");
            let frames = parse(&wire);
            assert_eq!(frames, [(true, TEXT, message.into_bytes())]);
        }
    }

    #[test]
    fn fragments_cut_between_characters_and_rebuild_the_message() {
        let message = "é".repeat(10) + "abc" + &"😀".repeat(5);
        for size in [1, 2, 3, 5, 8, 64] {
            let frames = parse(&text(&message, size));
            let mut joined = Vec::new();
            for (i, (fin, opcode, piece)) in frames.iter().enumerate() {
                assert_eq!(*fin, i + 1 == frames.len());
                assert_eq!(*opcode, if i == 0 { TEXT } else { CONTINUATION });
                let piece = std::str::from_utf8(piece).expect("cut between characters");
                assert!(piece.len() <= size.max(4), "{size}: {}", piece.len());
                joined.extend_from_slice(piece.as_bytes());
            }
            assert_eq!(String::from_utf8(joined).expect("utf-8"), message);
        }
    }

    #[test]
    fn control_frames_carry_at_most_125_bytes() {
        assert_eq!(parse(&ping()), [(true, PING, vec![])]);
        assert_eq!(parse(&pong(b"abc")), [(true, PONG, b"abc".to_vec())]);
        assert_eq!(parse(&pong(&[7; 300]))[0].2.len(), MAX_CONTROL_PAYLOAD);
        assert_eq!(parse(&close(None)), [(true, CLOSE, vec![])]);
        let frames = parse(&close(Some((1013, "slow_consumer"))));
        assert_eq!(frames[0].2[..2], 1013u16.to_be_bytes());
        assert_eq!(&frames[0].2[2..], b"slow_consumer");
        let long = "é".repeat(100);
        let frames = parse(&close(Some((1000, &long))));
        assert!(frames[0].2.len() <= MAX_CONTROL_PAYLOAD);
        assert!(std::str::from_utf8(&frames[0].2[2..]).is_ok());
    }
}
