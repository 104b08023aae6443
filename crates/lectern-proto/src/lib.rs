//! Lectern's wire protocol: JSON messages over one WebSocket per participant.
//!
//! Every frame is one JSON object with a `type` field. The client speaks first with a
//! [`ClientMessage::Hello`] carrying [`PROTOCOL_VERSION`] and its join token; the server answers
//! with [`ServerMessage::Welcome`]. After that the client sends requests (each may carry a
//! `request_id` that the server echoes in its [`ServerMessage::Ack`] or [`ServerMessage::Error`]),
//! and the server pushes [`ServerMessage::Event`]s, each stamped with the room's next sequence
//! number, so a client that reconnects can say which events it has already seen.
//!
//! This crate holds only types and the codec, both the server's side and the clients' (the bots
//! and load tools): no I/O, no tokio. `docs/PROTOCOL.md` documents every message; a test keeps
//! the two in step.

mod decode;
pub mod samples;
mod types;

pub use decode::{
    DecodeError, decode_client, decode_server, encode_client, encode_server, peek_server_type,
};
pub use types::*;

/// The version a client must send in its hello. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;
