//! The classroom as a sans-IO state machine.
//!
//! A [`Room`] holds everything about one live class: who is there and in what role, the lobby,
//! the class state, the chat (with per-room sequence numbers), the hand queue, who may speak,
//! hard mutes, and the stage (who may publish media). It does no I/O and never reads a clock:
//! the caller passes `now` (Unix milliseconds) with every input, feeds inputs with
//! [`Room::handle`], then drains [`Room::poll_output`] until it returns `None`.
//!
//! Contract with the driver (the server's room task):
//! - Outputs are ordered. A [`Output::Persist`] must be durably stored before any later
//!   [`Output::Send`] of the same drain is delivered, so a chat message is acknowledged and
//!   broadcast only once stored. If storing fails, the driver drops the sends tagged with the
//!   failed `seq` and calls [`Room::handle`] with [`Input::PersistFailed`].
//! - [`Room::poll_timeout`] says when to call `handle(now, Input::Tick)` next (grace periods,
//!   and a scheduled session's start, end warning and close; see [`SessionSchedule`]).
//! - Connection ids are the driver's; the room maps them to participants. Requests from a
//!   connection the room does not know (never joined, replaced, closed) are ignored.
//! - Every request with a `request_id` gets exactly one `ack` or `error`; refused requests
//!   change nothing and consume no sequence number. Errors are [`RoomError`]s.
//! - [`Output::Welcomed`] follows each `welcome`: the driver's moment to add what it sends every
//!   connection first (the media configuration).
//! - The media plane's view of who speaks comes in as [`Input::ActiveSpeaker`]; the room decides
//!   who is told.
//!
//! Administrators act on a room with [`Room::handle_admin`] ([`AdminAction`]).
//!
//! Modules: `room` (the state machine and its handlers: `session`, `class`, `chat`, `hands`,
//! `moderation`, `teaching`, `polls`, `speaker`, `restore`), `attendance` (the in-memory tally), `roster`
//! (participants and connections), `hand_queue`, `poll` (the current poll), `chat_log`
//! (recent chat and who may read it), `replay` (the event ring for reconnects), `error`.

mod attendance;
mod chat_log;
mod error;
mod hand_queue;
mod poll;
mod replay;
mod room;
mod roster;

pub use chat_log::ChatReader;
pub use error::{PollProblem, QuizUnavailable, RoomError};
pub use room::{RecordingBlocked, Room};

use lectern_proto::{
    ChatMessage, ChatTarget, ClassMode, ClientMessage, ParticipantId, RequestId, Role, RoomId, Seq,
    ServerMessage, UnixMillis,
};

/// The driver's id for one WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Who a connection is, as proven by its join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
}

/// Per-room settings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub room_id: RoomId,
    pub title: String,
    /// Start the class as soon as the room is created, with no lobby.
    pub auto_start: bool,
    /// Most participants (connected or within their grace period) at once.
    pub max_participants: usize,
    /// Longest chat message, in characters (Unicode scalar values).
    pub max_chat_chars: usize,
    /// How many recent chat messages a snapshot carries.
    pub snapshot_chat_len: usize,
    /// How many recent events are kept for replay to reconnecting clients.
    pub replay_len: usize,
    /// How long a dropped participant keeps their place (hand, stage, mute).
    pub grace_ms: u64,
    /// Set when the room belongs to a scheduled session: the room then runs the session's
    /// lifecycle from the times passed in.
    pub schedule: Option<SessionSchedule>,
    /// Record the class whenever it goes live (the course's `record_sessions` setting).
    pub record_automatically: bool,
    /// The layout the room starts in (the course's `class_mode` setting). A room that starts
    /// in seminar mode also starts with everyone allowed to speak (`speak_all`).
    pub mode: ClassMode,
    /// A participant who first joins more than this long after the class went live is marked
    /// late in `attendance` (scheduled rooms: after the later of the scheduled start and the
    /// class start).
    pub late_after_ms: u64,
}

/// The timing of the scheduled session a room belongs to (Unix milliseconds), from the course's
/// schedule and settings. The driver admits joins only while the room is open (from the lobby's
/// opening to `ends_at + close_grace_ms`); the room acts on the rest:
/// - at `starts_at`, with `auto_start`, a class that has not started goes live (`class_started`
///   without `by`); without it, students wait in the lobby until staff start the class;
/// - at `ends_at - warning_ms` (not before `starts_at`), a live class is warned once
///   (`class_ending_soon`);
/// - at `ends_at + close_grace_ms`, a live class ends (`class_ended` without `by`), everyone
///   left (staff and the lobby too) is closed with `CloseReason::ClassEnded`, and the room
///   refuses later joins.
///
/// Each happens once, when the first input at or after its time arrives (`Input::Tick` at
/// [`Room::poll_timeout`], or any other input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSchedule {
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
    /// Start the class at `starts_at` by itself.
    pub auto_start: bool,
    /// Warn this long before `ends_at`; 0 for no warning.
    pub warning_ms: u64,
    /// Close the room this long after `ends_at`.
    pub close_grace_ms: u64,
}

impl SessionSchedule {
    /// When the end warning is due: `warning_ms` before the end, not before the start.
    pub fn warns_at(&self) -> UnixMillis {
        self.ends_at
            .saturating_sub(self.warning_ms)
            .max(self.starts_at)
    }

    /// When the room closes for everyone.
    pub fn closes_at(&self) -> UnixMillis {
        self.ends_at.saturating_add(self.close_grace_ms)
    }
}

/// The default of [`RoomConfig::late_after_ms`]: five minutes.
pub const DEFAULT_LATE_AFTER_MS: u64 = 5 * 60 * 1_000;

impl RoomConfig {
    pub fn new(room_id: RoomId, title: impl Into<String>) -> Self {
        RoomConfig {
            room_id,
            title: title.into(),
            auto_start: false,
            max_participants: 2_000,
            max_chat_chars: 2_000,
            snapshot_chat_len: 100,
            replay_len: 4_096,
            grace_ms: 30_000,
            schedule: None,
            record_automatically: false,
            mode: ClassMode::Lecture,
            late_after_ms: DEFAULT_LATE_AFTER_MS,
        }
    }
}

/// State loaded from storage when a room is (re)created.
#[derive(Debug, Clone, Default)]
pub struct RoomInit {
    /// The last sequence number ever used by this room; new events continue after it.
    pub last_seq: Seq,
    /// The most recent chat messages (not deleted), oldest first.
    pub recent_chat: Vec<ChatMessage>,
    pub chat_locked: bool,
    /// The class as the room last stored it ([`PersistRecord::RoomState`]); `None` for a room
    /// that never stored one (a new room, or one that closed while empty).
    pub state: Option<SavedRoom>,
    /// The participants the room last stored ([`PersistRecord::ParticipantState`]). They are
    /// restored disconnected, in their grace period from the room's creation (see
    /// [`Room::new`]).
    pub participants: Vec<SavedParticipant>,
}

/// The room-wide class state a restore needs (a room recreated on another node or after a
/// crash). Stored whole on every change, as one small row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedRoom {
    pub class_state: lectern_proto::ClassState,
    /// When the class last went live.
    pub class_started_at: Option<UnixMillis>,
    /// The student holding the stage (always one of the saved participants).
    pub presenter: Option<ParticipantId>,
    pub mode: ClassMode,
    /// Staff allowed every student to speak.
    pub speak_all: bool,
    /// Removed by staff during the current class, sorted.
    pub banned: Vec<ParticipantId>,
    /// A scheduled session's end warning was given (it is not given twice).
    pub end_warned: bool,
}

/// One participant whose state a restore needs: only those who differ from what a fresh join
/// would give them (a hand up, the stage, a speech grant, a hard mute, a camera allowed or
/// stopped against the mode, let in from the lobby before the class started). Everyone else
/// simply joins again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedParticipant {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    pub in_lobby: bool,
    pub hard_muted: bool,
    pub speak_granted: bool,
    pub camera_allowed: bool,
    pub hand: Option<SavedHand>,
}

/// A raised hand: when, and its place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedHand {
    pub raised_at: UnixMillis,
    /// Orders the queue (smaller first): the seq of the `hand_raised` event, so it never
    /// changes while the hand is up and keeps growing across restores.
    pub order: u64,
}

/// What the room is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A connection presented a valid join token for this room.
    Join {
        conn: ConnId,
        identity: Identity,
        /// The last sequence number the client saw, when it reconnects.
        last_seq: Option<Seq>,
    },
    /// A decoded client request (never a hello: the driver handles the handshake).
    Request {
        conn: ConnId,
        request_id: Option<RequestId>,
        message: lectern_proto::ClientMessage,
    },
    /// The connection closed or failed. The participant's grace period starts (unless the
    /// connection was already replaced or closed by the room).
    Disconnected { conn: ConnId },
    /// Time passed: run due timers.
    Tick,
    /// Storing the chat message with this sequence number failed: forget it and tell the sender.
    PersistFailed { seq: Seq },
    /// The media plane names the room's active speaker (`None`: nobody speaks now). The room
    /// keeps it and tells everyone in the class (not the lobby) with `active_speaker` when it
    /// changes, and each participant as they enter the class (right after their `welcome`, or
    /// the `snapshot` of being let in from the lobby). A speaker who is no longer in the room
    /// (they left while the report was on its way) is ignored.
    ActiveSpeaker {
        participant_id: Option<ParticipantId>,
    },
    /// Whether the driver can record now (`None`) or why not. Kept by the room; checked when
    /// staff start recording and when a course records its sessions automatically.
    RecordingAvailability { blocked: Option<RecordingBlocked> },
    /// The driver's recorder stopped by itself (the disk filled up, writing failed): the room
    /// tells the class with `recording_stopped`.
    RecordingStopped {
        reason: lectern_proto::RecordingStopReason,
    },
    /// Staff asked to launch a quiz live (`quiz_launch`), and the driver looked it up in the
    /// room's course: `Ok` with its title when it is one of the course's published quizzes.
    /// The room checks the rest (who asks, the duration, no other live quiz).
    QuizLaunch {
        conn: ConnId,
        request_id: Option<RequestId>,
        quiz_id: lectern_proto::QuizId,
        duration_secs: u32,
        quiz: Result<String, QuizUnavailable>,
    },
    /// A member submitted an attempt at the quiz live in this room (`member_id` as the
    /// course knows them). Staff get the new `quiz_progress`; other quizzes are ignored.
    QuizSubmitted {
        quiz_id: lectern_proto::QuizId,
        member_id: String,
    },
}

/// An administrator's action on the room (the REST API), applied with [`Room::handle_admin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// End the class, as staff's `class_end` does.
    EndClass,
    /// Let a participant in from the lobby, as staff's `admit` does.
    Admit { participant_id: ParticipantId },
    /// Remove a participant (not an instructor) for the rest of the class, as staff's `remove`.
    Remove { participant_id: ParticipantId },
}

impl AdminAction {
    /// `end_class`, `admit` or `remove`, for logs and replies.
    pub fn name(&self) -> &'static str {
        match self {
            AdminAction::EndClass => "end_class",
            AdminAction::Admit { .. } => "admit",
            AdminAction::Remove { .. } => "remove",
        }
    }
}

/// The actor named in the audit record ([`PersistRecord::Moderation`]) of an administrator's
/// action. Not a participant id a join token could carry in practice (it has spaces and
/// parentheses), and read only by people reviewing the log.
pub const ADMIN_ACTOR: &str = "(admin api)";

/// What the room asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Deliver one message to these connections. The driver serializes it once.
    Send {
        to: Vec<ConnId>,
        /// The sequence number of the chat message this delivers, if any (see
        /// [`Input::PersistFailed`]).
        persist_seq: Option<Seq>,
        message: ServerMessage,
    },
    /// Store this durably before delivering any later `Send`.
    Persist(PersistRecord),
    /// Tell the media plane (the SFU) what it may forward.
    Media(MediaIntent),
    /// Close this connection after delivering what was sent to it; it is no longer in the room.
    Close {
        conn: ConnId,
        reason: lectern_proto::CloseReason,
    },
    /// Start or stop recording (see [`RecordingIntent`]).
    Recording(RecordingIntent),
    /// While recording: a copy of a message the class saw (a sequenced `event` with its seq
    /// and time, a `reaction`, an `active_speaker`), for the recording's event log. Who may
    /// read it is decided when the recording is watched.
    RecordEvent(ServerMessage),
    /// This connection was just sent its `welcome` (the `Send` before this output). What the
    /// driver adds for every connection it serves, such as the media configuration, goes to
    /// it now, before the room's next message to it.
    Welcomed {
        conn: ConnId,
        participant_id: ParticipantId,
    },
}

/// Records the room asks to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistRecord {
    Chat(ChatMessage),
    ChatDeleted {
        seq: Seq,
        by: ParticipantId,
        at: UnixMillis,
    },
    /// A participant's connection started (join) or ended (leave): attendance intervals.
    Attendance {
        participant_id: ParticipantId,
        name: String,
        role: Role,
        kind: AttendanceKind,
        at: UnixMillis,
    },
    /// A staff action worth an audit trail.
    Moderation {
        seq: Seq,
        action: ModerationAction,
        by: ParticipantId,
        target: Option<ParticipantId>,
        at: UnixMillis,
    },
    ClassStarted {
        at: UnixMillis,
    },
    ClassEnded {
        at: UnixMillis,
    },
    /// Staff opened a poll (`poll.asked_by` is the id; `asked_by_name` their name).
    PollStarted {
        poll: lectern_proto::Poll,
        asked_by_name: String,
    },
    /// An answer to a poll. `voter` (id and name) is `None` for an anonymous poll: nothing
    /// that names who answered is stored.
    PollAnswered {
        poll_id: lectern_proto::PollId,
        voter: Option<(ParticipantId, String)>,
        choices: Vec<u32>,
        /// `None` for an anonymous poll (a time could tell who answered).
        at: Option<UnixMillis>,
    },
    PollEnded {
        poll_id: lectern_proto::PollId,
        at: UnixMillis,
    },
    /// Staff showed the poll's results to the class.
    PollShared {
        poll_id: lectern_proto::PollId,
        at: UnixMillis,
    },
    /// The room-wide class state changed: store it in place of the last one.
    RoomState(SavedRoom),
    /// A participant's restorable state changed: store it in place of the last one.
    ParticipantState(SavedParticipant),
    /// A participant has nothing left to restore (left, or back to what a fresh join gives).
    ParticipantStateCleared {
        participant_id: ParticipantId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttendanceKind {
    Join,
    Leave,
}

/// Staff actions recorded in the moderation log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationAction {
    DeleteChat,
    LockChat,
    UnlockChat,
    Mute,
    AllowSpeak,
    RevokeSpeak,
    Remove,
    GrantStage,
    RevokeStage,
    MuteAll,
    AllowSpeakAll,
    RevokeSpeakAll,
    LectureMode,
    SeminarMode,
    CameraRequest,
    CameraAllow,
    CameraStop,
}

impl ModerationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationAction::DeleteChat => "delete_chat",
            ModerationAction::LockChat => "lock_chat",
            ModerationAction::UnlockChat => "unlock_chat",
            ModerationAction::Mute => "mute",
            ModerationAction::AllowSpeak => "allow_speak",
            ModerationAction::RevokeSpeak => "revoke_speak",
            ModerationAction::Remove => "remove",
            ModerationAction::GrantStage => "grant_stage",
            ModerationAction::RevokeStage => "revoke_stage",
            ModerationAction::MuteAll => "mute_all",
            ModerationAction::AllowSpeakAll => "allow_speak_all",
            ModerationAction::RevokeSpeakAll => "revoke_speak_all",
            ModerationAction::LectureMode => "lecture_mode",
            ModerationAction::SeminarMode => "seminar_mode",
            ModerationAction::CameraRequest => "camera_request",
            ModerationAction::CameraAllow => "camera_allow",
            ModerationAction::CameraStop => "camera_stop",
        }
    }
}

/// What a participant may send into the media plane. Emitted whenever it changes, when a
/// participant joins (so the SFU starts from the right state), and when they are let in from
/// the lobby (where nothing of theirs is forwarded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaIntent {
    /// Set what this participant may publish. The SFU forwards only what is allowed.
    Publish {
        participant_id: ParticipantId,
        audio: bool,
        video: bool,
    },
    /// The participant is gone: stop forwarding anything of theirs and drop their subscriptions.
    Stop { participant_id: ParticipantId },
}

/// What the room asks of the driver's recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingIntent {
    /// Start recording the class's media and events. `recording_started` follows as the
    /// first [`Output::RecordEvent`].
    Start { by: Option<ParticipantId> },
    /// Stop recording; `recording_stopped` was the last [`Output::RecordEvent`].
    Stop {
        reason: lectern_proto::RecordingStopReason,
    },
}

/// Permissions derived from a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// Moderate, run the class, call on, hand over the stage.
    pub moderate: bool,
    /// Send chat to everyone or to staff.
    pub chat: bool,
    /// Raise a hand and send reactions.
    pub participate: bool,
    /// Publish audio and video without being granted it.
    pub publish: bool,
    /// Wait in the lobby when the class is not live.
    pub waits_in_lobby: bool,
}

impl Permissions {
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Instructor | Role::Ta => Permissions {
                moderate: true,
                chat: true,
                participate: true,
                publish: true,
                waits_in_lobby: false,
            },
            Role::Student => Permissions {
                moderate: false,
                chat: true,
                participate: true,
                publish: false,
                waits_in_lobby: true,
            },
            Role::Observer => Permissions {
                moderate: false,
                chat: false,
                participate: false,
                publish: false,
                waits_in_lobby: true,
            },
        }
    }
}

/// True for requests only the teaching staff may make (those that need
/// [`Permissions::moderate`]): moderation, running the class, and chat to one participant.
pub fn is_staff_only(message: &ClientMessage) -> bool {
    matches!(
        message,
        ClientMessage::ChatDelete { .. }
            | ClientMessage::ChatLock { .. }
            | ClientMessage::HandLowerFor { .. }
            | ClientMessage::HandLowerAll
            | ClientMessage::CallOn { .. }
            | ClientMessage::AllowSpeak { .. }
            | ClientMessage::RevokeSpeak { .. }
            | ClientMessage::Mute { .. }
            | ClientMessage::Remove { .. }
            | ClientMessage::StageGrant { .. }
            | ClientMessage::StageRevoke
            | ClientMessage::ClassStart
            | ClientMessage::ClassEnd
            | ClientMessage::RecordingStart
            | ClientMessage::RecordingStop
            | ClientMessage::Admit { .. }
            | ClientMessage::MuteAll
            | ClientMessage::SpeakAll { .. }
            | ClientMessage::SetMode { .. }
            | ClientMessage::CameraRequest { .. }
            | ClientMessage::CameraAllow { .. }
            | ClientMessage::CameraStop { .. }
            | ClientMessage::AttendanceGet
            | ClientMessage::PollStart { .. }
            | ClientMessage::PollEnd { .. }
            | ClientMessage::PollShare { .. }
            | ClientMessage::QuizLaunch { .. }
            | ClientMessage::QuizEnd { .. }
            | ClientMessage::ChatSend {
                to: ChatTarget::Participant { .. },
                ..
            }
    )
}
