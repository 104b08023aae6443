//! Decoding client frames with typed errors, and encoding server messages; the other way round
//! for clients (the bots, the load tools): encoding client frames and decoding server messages.

use serde_json::Value;

use crate::{ClientFrame, ClientMessage, ErrorCode, RequestId, ServerMessage};

/// Why a client frame could not be decoded. Carries the request id when one could be read, so
/// the error reply can still be matched by the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the frame is not valid JSON: {detail}")]
    InvalidJson { detail: String },
    #[error("unknown message type {type_name:?}")]
    UnknownType {
        type_name: String,
        request_id: Option<RequestId>,
    },
    #[error("invalid {type_name} message: {detail}")]
    InvalidMessage {
        type_name: String,
        detail: String,
        request_id: Option<RequestId>,
    },
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::InvalidJson { .. } => ErrorCode::InvalidJson,
            DecodeError::UnknownType { .. } => ErrorCode::UnknownType,
            DecodeError::InvalidMessage { .. } => ErrorCode::InvalidMessage,
        }
    }

    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            DecodeError::InvalidJson { .. } => None,
            DecodeError::UnknownType { request_id, .. }
            | DecodeError::InvalidMessage { request_id, .. } => *request_id,
        }
    }

    /// The typed error reply for this failure.
    pub fn to_server_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code(),
            message: self.to_string(),
            request_id: self.request_id(),
        }
    }
}

/// Decode one client text frame.
pub fn decode_client(text: &str) -> Result<ClientFrame, DecodeError> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson {
        detail: e.to_string(),
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err(DecodeError::InvalidJson {
            detail: "expected a JSON object".to_owned(),
        });
    };
    // A request id that is present but not a non-negative integer is itself an error; report it
    // without an id, since we could not read one.
    let request_id = match object.remove("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => {
            return Err(DecodeError::InvalidMessage {
                type_name: type_of(object),
                detail: "request_id must be a non-negative integer".to_owned(),
                request_id: None,
            });
        }
    };
    let type_name = type_of(object);
    if !ClientMessage::TYPES.contains(&type_name.as_str()) {
        return Err(DecodeError::UnknownType {
            type_name,
            request_id,
        });
    }
    // serde's deny_unknown_fields does not apply to variants without fields, so check the
    // field names against the message's own (non-null input keys must all be known).
    let keys: Vec<String> = object
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    let message: ClientMessage =
        serde_json::from_value(value).map_err(|e| DecodeError::InvalidMessage {
            type_name: type_name.clone(),
            detail: e.to_string(),
            request_id,
        })?;
    if let Ok(Value::Object(known)) = serde_json::to_value(&message)
        && let Some(extra) = keys.iter().find(|k| !known.contains_key(*k))
    {
        return Err(DecodeError::InvalidMessage {
            type_name,
            detail: format!("unknown field `{extra}`"),
            request_id,
        });
    }
    Ok(ClientFrame {
        request_id,
        message,
    })
}

fn type_of(object: &serde_json::Map<String, Value>) -> String {
    match object.get("type") {
        Some(Value::String(s)) => s.chars().take(64).collect(),
        _ => String::new(),
    }
}

/// Encode a server message as JSON text. Server messages always serialize.
pub fn encode_server(message: &ServerMessage) -> String {
    // Serialization of these plain types cannot fail (string keys, no non-finite floats).
    serde_json::to_string(message).unwrap_or_else(|_| {
        r#"{"type":"error","code":"internal","message":"encoding failed"}"#.to_owned()
    })
}

/// Encode a client frame as JSON text, as a client sends it. Client frames always serialize.
pub fn encode_client(frame: &ClientFrame) -> String {
    // As for server messages: these plain types cannot fail to serialize.
    serde_json::to_string(frame).unwrap_or_default()
}

/// Decode one server text frame, as a client reads it.
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson {
        detail: e.to_string(),
    })?;
    let Some(object) = value.as_object() else {
        return Err(DecodeError::InvalidJson {
            detail: "expected a JSON object".to_owned(),
        });
    };
    let type_name = type_of(object);
    if !ServerMessage::TYPES.contains(&type_name.as_str()) {
        return Err(DecodeError::UnknownType {
            type_name,
            request_id: None,
        });
    }
    serde_json::from_value(value).map_err(|e| DecodeError::InvalidMessage {
        type_name,
        detail: e.to_string(),
        request_id: None,
    })
}

/// The `type` of a server frame (one of [`crate::server_type`]) without decoding it, for a client
/// that must stay cheap on frames it does not need the content of. Every object nested in a
/// server message is tagged with `kind`, never `type`, and a `type` inside a string is escaped,
/// so the first `"type":"` in the text is the message's own.
pub fn peek_server_type(text: &str) -> Option<&str> {
    const KEY: &str = "\"type\":\"";
    let rest = &text[text.find(KEY)? + KEY.len()..];
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatTarget, ParticipantId};

    #[test]
    fn decodes_a_chat_with_request_id() {
        let frame =
            decode_client(r#"{"type":"chat_send","request_id":7,"text":"hi"}"#).expect("decodes");
        assert_eq!(frame.request_id, Some(7));
        assert_eq!(
            frame.message,
            ClientMessage::ChatSend {
                to: ChatTarget::Everyone,
                text: "hi".into()
            }
        );
    }

    #[test]
    fn private_target_decodes() {
        let frame = decode_client(
            r#"{"type":"chat_send","to":{"kind":"participant","id":"s1"},"text":"hi"}"#,
        )
        .expect("decodes");
        assert_eq!(
            frame.message,
            ClientMessage::ChatSend {
                to: ChatTarget::Participant {
                    id: ParticipantId::new("s1")
                },
                text: "hi".into()
            }
        );
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            decode_client("{nope").unwrap_err().code(),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            decode_client("[1]").unwrap_err().code(),
            ErrorCode::InvalidJson
        );
        let e = decode_client(r#"{"type":"launch_rockets","request_id":3}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownType);
        assert_eq!(e.request_id(), Some(3));
        let e = decode_client(r#"{"type":"chat_send","request_id":4}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        assert_eq!(e.request_id(), Some(4));
        let e = decode_client(r#"{"type":"chat_lock","locked":true,"extra":1}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        let e = decode_client(r#"{"type":"hand_raise","urgent":true}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        assert!(decode_client(r#"{"type":"hand_raise","request_id":1}"#).is_ok());
        assert!(decode_client(r#"{"type":"call_on"}"#).is_ok());
        let e = decode_client(r#"{"type":"hand_raise","request_id":"x"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        assert_eq!(
            decode_client(r#"{"text":"x"}"#).unwrap_err().code(),
            ErrorCode::UnknownType
        );
    }

    #[test]
    fn server_messages_round_trip_and_their_type_is_seen_without_decoding() {
        let samples = crate::samples::server_messages();
        assert_eq!(samples.len(), ServerMessage::TYPES.len());
        for m in samples {
            let text = encode_server(&m);
            let v: Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(v["type"], m.type_name());
            assert!(ServerMessage::TYPES.contains(&m.type_name()));
            assert_eq!(peek_server_type(&text), Some(m.type_name()), "{text}");
            assert_eq!(decode_server(&text).expect("round trip"), m);
        }
        // A chat text that spells a type is escaped and does not fool the peek.
        let chat = ServerMessage::Event {
            seq: 1,
            at: 2,
            event: crate::RoomEvent::Chat {
                message: crate::ChatMessage {
                    seq: 1,
                    from: ParticipantId::new("s1"),
                    from_name: r#"{"type":"ack"}"#.into(),
                    from_role: crate::Role::Student,
                    to: ChatTarget::Everyone,
                    text: r#""type":"closing""#.into(),
                    sent_at: 2,
                },
            },
        };
        assert_eq!(
            peek_server_type(&encode_server(&chat)),
            Some(crate::server_type::EVENT)
        );
        assert_eq!(peek_server_type("{}"), None);
    }

    #[test]
    fn server_decoding_errors_are_typed() {
        assert_eq!(
            decode_server("{nope").unwrap_err().code(),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            decode_server(r#"{"type":"launch_rockets"}"#)
                .unwrap_err()
                .code(),
            ErrorCode::UnknownType
        );
        let e = decode_server(r#"{"type":"ack"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
    }

    #[test]
    fn client_frames_encode_to_what_the_server_decodes() {
        for m in crate::samples::client_messages() {
            let frame = ClientFrame {
                request_id: Some(9),
                message: m,
            };
            assert_eq!(
                decode_client(&encode_client(&frame)).expect("decodes"),
                frame
            );
        }
    }

    #[test]
    fn every_type_name_is_listed() {
        // The serialized tag of each variant must be in TYPES (the PROTOCOL.md test relies on it).
        let samples = crate::samples::client_messages();
        assert_eq!(samples.len(), ClientMessage::TYPES.len());
        for m in samples {
            let v = serde_json::to_value(&m).expect("serializes");
            assert_eq!(v["type"], m.type_name());
            assert!(ClientMessage::TYPES.contains(&m.type_name()));
            let back = decode_client(&v.to_string()).expect("round trip");
            assert_eq!(back.message, m);
        }
    }
}
