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
    /// `poll_start` with a question or options that are not accepted.
    #[error("{0}")]
    PollInvalid(PollProblem),
    /// `poll_start` while a poll is open.
    #[error("another poll is open; end it first")]
    PollOpen,
    /// An answer to, or the end of, a closed poll.
    #[error("the poll is closed")]
    PollClosed,
    /// A second answer to the same poll.
    #[error("you already answered this poll")]
    AlreadyAnswered,
    /// The choices do not fit the poll.
    #[error("the choices do not fit the poll")]
    InvalidChoice,
    /// `quiz_launch` for a quiz that is not one of the room's course's published quizzes.
    #[error("{0}")]
    QuizUnavailable(QuizUnavailable),
    /// `quiz_launch` while another quiz is live.
    #[error("another quiz is live; end it first")]
    QuizAlreadyLive,
    /// `quiz_launch` with a duration out of range.
    #[error(
        "a live quiz lasts {} to {} seconds",
        lectern_proto::LIVE_QUIZ_MIN_SECS,
        lectern_proto::LIVE_QUIZ_MAX_SECS
    )]
    QuizDuration,
    /// `quiz_end` for a quiz that is not live.
    #[error("that quiz is not live")]
    QuizNotLive,
}

/// Why the driver found a quiz not launchable (see [`RoomError::QuizUnavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuizUnavailable {
    #[error("this room belongs to no course, so it has no quizzes")]
    NoCourse,
    #[error("no such quiz in this course")]
    NotFound,
    #[error("the quiz is not published")]
    NotPublished,
    #[error("the quizzes cannot be read right now")]
    StoreUnavailable,
}

/// What is wrong with a poll's question or options (see [`RoomError::PollInvalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PollProblem {
    #[error("the question is empty")]
    EmptyQuestion,
    #[error(
        "the question is longer than {} characters",
        lectern_proto::POLL_MAX_QUESTION_CHARS
    )]
    QuestionTooLong,
    #[error(
        "a poll has {} to {} options",
        lectern_proto::POLL_MIN_OPTIONS,
        lectern_proto::POLL_MAX_OPTIONS
    )]
    OptionCount,
    #[error("an option is empty")]
    EmptyOption,
    #[error(
        "an option is longer than {} characters",
        lectern_proto::POLL_MAX_OPTION_CHARS
    )]
    OptionTooLong,
    #[error("two options are the same")]
    DuplicateOption,
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
            RoomError::PollInvalid(_) => ErrorCode::PollInvalid,
            RoomError::PollOpen => ErrorCode::PollOpen,
            RoomError::PollClosed => ErrorCode::PollClosed,
            RoomError::AlreadyAnswered => ErrorCode::AlreadyAnswered,
            RoomError::InvalidChoice => ErrorCode::InvalidChoice,
            RoomError::QuizUnavailable(QuizUnavailable::StoreUnavailable) => {
                ErrorCode::StoreUnavailable
            }
            RoomError::QuizUnavailable(_) => ErrorCode::QuizUnavailable,
            RoomError::QuizAlreadyLive | RoomError::QuizDuration | RoomError::QuizNotLive => {
                ErrorCode::QuizInvalid
            }
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
