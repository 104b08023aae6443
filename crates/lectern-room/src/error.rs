//! Why a request was refused, as a typed error that maps to a stable wire [`ErrorCode`].
//!
//! Messages are short and fixed: they never echo what the client sent (chat text included).

use lectern_proto::{ErrorCode, RequestId, ServerMessage};

/// A refused request or join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The participant's role may not do this.
    #[error("your role may not do this")]
    NotPermitted,
    /// Staff removed this participant earlier in the class.
    #[error("you were removed from this class")]
    Banned,
    /// The participant waits in the lobby.
    #[error("you are in the lobby until the class starts")]
    InLobby,
    /// No such participant (or chat message, or raised hand).
    #[error("no such participant or message")]
    NotFound,
    /// `call_on` without a participant while no hand is raised.
    #[error("no hands are raised")]
    QueueEmpty,
    #[error("chat is locked")]
    ChatLocked,
    #[error("the message is empty")]
    ChatEmpty,
    #[error("the message is longer than {max} characters")]
    ChatTooLong { max: usize },
    #[error("the room is full")]
    RoomFull,
    /// A chat message could not be stored, so it was not delivered.
    #[error("the message could not be stored")]
    StoreUnavailable,
    /// A hello reached the room after the handshake (the driver should have refused it).
    #[error("the hello was already received")]
    UnexpectedHello,
    /// The scheduled session's room has closed.
    #[error("this session is over; its room has closed")]
    SessionClosed,
    /// `recording_start` while the class is not live.
    #[error("the class is not live")]
    ClassNotLive,
    /// The driver cannot record now.
    #[error("{}", match .0 {
        crate::RecordingBlocked::Disabled => "recording is turned off on this server",
        crate::RecordingBlocked::DiskFull => "not enough free disk space to record",
    })]
    RecordingUnavailable(crate::RecordingBlocked),
    /// WebRTC signalling reached the room; the driver handles it.
    #[error("media signalling is handled by the media plane")]
    NotForTheRoom,
}

impl RoomError {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            RoomError::NotPermitted | RoomError::Banned => ErrorCode::NotPermitted,
            RoomError::InLobby => ErrorCode::InLobby,
            RoomError::NotFound => ErrorCode::NotFound,
            RoomError::QueueEmpty => ErrorCode::QueueEmpty,
            RoomError::ChatLocked => ErrorCode::ChatLocked,
            RoomError::ChatEmpty => ErrorCode::ChatEmpty,
            RoomError::ChatTooLong { .. } => ErrorCode::ChatTooLong,
            RoomError::RoomFull => ErrorCode::RoomFull,
            RoomError::StoreUnavailable => ErrorCode::StoreUnavailable,
            RoomError::UnexpectedHello => ErrorCode::HelloRequired,
            RoomError::NotForTheRoom => ErrorCode::Internal,
            RoomError::SessionClosed => ErrorCode::SessionNotOpen,
            RoomError::ClassNotLive => ErrorCode::ClassNotLive,
            RoomError::RecordingUnavailable(_) => ErrorCode::RecordingUnavailable,
        }
    }

    /// The error frame sent to the client.
    pub fn to_message(&self, request_id: Option<RequestId>) -> ServerMessage {
        ServerMessage::Error {
            code: self.code(),
            message: self.to_string(),
            request_id,
        }
    }
}
