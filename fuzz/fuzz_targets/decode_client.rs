//! Any text frame a client can send must decode to a frame or a typed error, never a panic,
//! and a decoded frame must survive a round trip through its own serialization.

#![no_main]

use lectern_proto::{ClientMessage, ErrorCode, ServerMessage, decode_client, encode_server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8; the server refuses anything else before decoding.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_client(text) {
        Ok(frame) => {
            assert!(
                ClientMessage::TYPES.contains(&frame.message.type_name()),
                "decoded a type that is not listed: {:?}",
                frame.message
            );

            // The message alone: serialize, decode, same message and no request id.
            let json = serde_json::to_string(&frame.message).expect("a client message serializes");
            let again = decode_client(&json)
                .unwrap_or_else(|e| panic!("re-encoded message {json} does not decode: {e}"));
            assert_eq!(
                again.message, frame.message,
                "message changed through {json}"
            );
            assert_eq!(again.request_id, None, "request id appeared from {json}");

            // The whole frame (request id flattened next to the message's fields).
            let json = serde_json::to_string(&frame).expect("a client frame serializes");
            let again = decode_client(&json)
                .unwrap_or_else(|e| panic!("re-encoded frame {json} does not decode: {e}"));
            assert_eq!(again, frame, "frame changed through {json}");
        }
        Err(e) => {
            // The error reply must be buildable and encodable, with a code matching the kind.
            let reply = e.to_server_message();
            let ServerMessage::Error {
                code, request_id, ..
            } = &reply
            else {
                panic!("error reply is not an error: {reply:?}");
            };
            assert_eq!(*code, e.code());
            assert_eq!(*request_id, e.request_id());
            assert!(matches!(
                code,
                ErrorCode::InvalidJson | ErrorCode::UnknownType | ErrorCode::InvalidMessage
            ));
            let encoded = encode_server(&reply);
            let back: ServerMessage =
                serde_json::from_str(&encoded).expect("an encoded error reply parses back");
            assert_eq!(back, reply);
        }
    }
});
