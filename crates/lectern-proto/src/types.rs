//! The message types. Field names are the wire names (snake_case).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A participant's stable id within a room: the `sub` claim of their join token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub String);

impl ParticipantId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room's id: the `room` claim of a join token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub String);

impl RoomId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sequence number of a room event. Strictly increasing per room, across restarts.
pub type Seq = u64;

/// Milliseconds since the Unix epoch (UTC).
pub type UnixMillis = u64;

/// The id a client puts on a request so it can match the server's ack or error.
pub type RequestId = u64;

/// What a participant is in the class. Permissions are derived from it by the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Instructor,
    Ta,
    Student,
    /// Watches and listens only: no chat, no hand, no reactions.
    Observer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Instructor, Role::Ta, Role::Student, Role::Observer];

    /// Instructors and TAs: the teaching staff.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Instructor | Role::Ta)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Instructor => "instructor",
            Role::Ta => "ta",
            Role::Student => "student",
            Role::Observer => "observer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a class is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassState {
    /// Not started yet: students and observers who arrive wait in the lobby.
    NotStarted,
    /// Staff started the class.
    Live,
    /// Staff ended the class. Students who arrive wait in the lobby until staff start it again.
    Ended,
}

/// Who a chat message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatTarget {
    /// Everyone in the class.
    #[default]
    Everyone,
    /// The teaching staff only (a student's private question). The sender sees it too.
    Staff,
    /// One participant (staff only may send these). The sender and all staff see it too.
    Participant { id: ParticipantId },
}

/// A chat message as stored and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The room sequence number of the event that carried it; also the message's id.
    pub seq: Seq,
    pub from: ParticipantId,
    pub from_name: String,
    pub from_role: Role,
    pub to: ChatTarget,
    pub text: String,
    pub sent_at: UnixMillis,
}

/// Emoji reactions a participant may send. Ephemeral: shown briefly, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    ThumbsUp,
    Clap,
    Heart,
    Laugh,
    Surprised,
    Confused,
}

impl Reaction {
    /// Every reaction, in declaration order.
    pub const ALL: &[Self] = &[
        Reaction::ThumbsUp,
        Reaction::Clap,
        Reaction::Heart,
        Reaction::Laugh,
        Reaction::Surprised,
        Reaction::Confused,
    ];
}

/// A participant as everyone in the room sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    /// False while the participant is within the reconnect grace period.
    pub connected: bool,
    /// Waiting in the lobby for the class to start or for staff to admit them.
    pub in_lobby: bool,
    /// Hard-muted by staff: their audio is not forwarded until staff allow them to speak.
    pub hard_muted: bool,
    /// May speak now: not hard-muted, and staff, the presenter, or granted speech. The
    /// effective permission, derived by the server.
    pub can_speak: bool,
    /// Staff granted speech (call on, allow to speak) and have not taken it back. With
    /// `hard_muted`, the role and `presenter`, it lets a client recompute `can_speak` after
    /// any event.
    pub speak_granted: bool,
    /// Holds the stage (may publish camera and screen).
    pub presenter: bool,
    /// The participant's own media state, as reported by their client.
    pub media: MediaState,
    /// Staff allowed this participant's camera (and screen) outside the stage: set by
    /// `camera_request`, `camera_allow` and seminar mode, cleared by `camera_stop` and lecture
    /// mode. Staff publish by role whatever this says.
    #[serde(default)]
    pub camera_allowed: bool,
}

/// A client's own media switches, for indicators in everyone's participant list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MediaState {
    pub mic: bool,
    pub camera: bool,
    pub screen: bool,
}

/// One raised hand in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandEntry {
    pub participant_id: ParticipantId,
    pub raised_at: UnixMillis,
}

/// Everything a participant needs to draw the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub room_id: RoomId,
    pub title: String,
    pub class_state: ClassState,
    pub roster: Vec<ParticipantInfo>,
    /// Raised hands, oldest first.
    pub hand_queue: Vec<HandEntry>,
    /// The student currently holding the stage, if any.
    pub presenter: Option<ParticipantId>,
    pub chat_locked: bool,
    /// The class is being recorded now (see `recording_started`): said before a participant
    /// who joins mid-class publishes anything.
    #[serde(default)]
    pub recording: bool,
    /// The last chat messages this participant may see, oldest first. Empty in the lobby.
    pub chat: Vec<ChatMessage>,
    /// The room's current sequence number: events after this one follow as `event` messages.
    pub seq: Seq,
    /// When the room belongs to a scheduled session: its scheduled start (for the lobby's
    /// countdown). Absent for unscheduled rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_start: Option<UnixMillis>,
    /// When the room belongs to a scheduled session: its scheduled end. The room closes
    /// `closes_at` (see `class_ending_soon`) after a grace period. Absent for unscheduled rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_end: Option<UnixMillis>,
    /// When the room warns that the class ends soon (`class_ending_soon`, sent only while the
    /// class is live), so a participant who joins after it can still show the warning. Absent
    /// for unscheduled rooms and courses without a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warns_at: Option<UnixMillis>,
    /// When the room closes for everyone (the scheduled end plus the grace period). Absent for
    /// unscheduled rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<UnixMillis>,
    /// The class layout: `lecture` (the stage) or `seminar` (a gallery of cameras).
    #[serde(default)]
    pub mode: ClassMode,
    /// Staff allowed everyone to speak (`speak_all`): every student in the class may unmute.
    #[serde(default)]
    pub speak_all: bool,
    /// When the class last went live (for the staff's class timer). Absent before it first
    /// went live in this room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_started_at: Option<UnixMillis>,
    /// The open poll, or the last one once its results were shared, as this viewer may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollState>,
    /// The quiz staff launched live in class, while it runs (until `ends_at` or `quiz_ended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_quiz: Option<LiveQuiz>,
}

/// A course quiz, by its id in the course (the REST API's `quiz_id`).
pub type QuizId = i64;

/// The shortest live quiz, in seconds.
pub const LIVE_QUIZ_MIN_SECS: u32 = 30;
/// The longest live quiz, in seconds (three hours).
pub const LIVE_QUIZ_MAX_SECS: u32 = 3 * 60 * 60;

/// A quiz staff launched live in class: everyone in the class is asked to take it now. Never
/// carries a question or a key: students open the quiz through the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveQuiz {
    pub quiz_id: QuizId,
    pub title: String,
    pub launched_by: ParticipantId,
    /// When it was launched (Unix milliseconds).
    pub launched_at: UnixMillis,
    /// When it ends by itself (Unix milliseconds). An attempt started while it runs takes no
    /// submission after this (plus the REST API's few seconds of grace).
    pub ends_at: UnixMillis,
}

/// How the class is laid out, and so who may send video by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassMode {
    /// One stage: staff and the presenter publish video; students' cameras need staff's leave.
    #[default]
    Lecture,
    /// A discussion class: a gallery of everyone's camera; students may send video.
    Seminar,
}

impl ClassMode {
    /// Every mode, in declaration order.
    pub const ALL: [ClassMode; 2] = [ClassMode::Lecture, ClassMode::Seminar];

    pub fn as_str(self) -> &'static str {
        match self {
            ClassMode::Lecture => "lecture",
            ClassMode::Seminar => "seminar",
        }
    }

    pub fn parse(s: &str) -> Option<ClassMode> {
        ClassMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for ClassMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A participant's network quality as the SFU measures it on their peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkQuality {
    Good,
    Fair,
    Poor,
    /// Not measured (yet): no media session, or no statistics so far.
    Unknown,
}

impl NetworkQuality {
    /// Every quality, in declaration order.
    pub const ALL: &[Self] = &[
        NetworkQuality::Good,
        NetworkQuality::Fair,
        NetworkQuality::Poor,
        NetworkQuality::Unknown,
    ];
}

/// One participant's quality in a `network_quality` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantQuality {
    pub participant_id: ParticipantId,
    pub quality: NetworkQuality,
}

/// One participant's attendance in this room, as the room counts it in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceEntry {
    pub participant_id: ParticipantId,
    pub name: String,
    pub role: Role,
    /// Connected now (or within the reconnect grace period); lobby time counts.
    pub present: bool,
    pub first_joined_at: UnixMillis,
    /// When their last connection ended; `null` while present or never left.
    pub last_left_at: Option<UnixMillis>,
    /// First joined more than the room's lateness threshold after the class went live.
    pub late: bool,
    /// How many connections they have had (attendance intervals).
    pub intervals: u32,
}

/// A poll's id: the sequence number of the `poll_started` event that opened it, so unique in
/// its room across restarts.
pub type PollId = u64;

/// The most options a poll may have.
pub const POLL_MAX_OPTIONS: usize = 10;
/// The fewest options a poll may have.
pub const POLL_MIN_OPTIONS: usize = 2;
/// The longest poll question, in characters (Unicode scalar values), after trimming.
pub const POLL_MAX_QUESTION_CHARS: usize = 300;
/// The longest poll option, in characters, after trimming.
pub const POLL_MAX_OPTION_CHARS: usize = 120;

/// A poll as everyone in the room sees it: the question, never any answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poll {
    pub poll_id: PollId,
    pub question: String,
    /// The options, in the order they are shown; answers name them by index (from 0).
    pub options: Vec<String>,
    /// Several options may be chosen (check boxes) instead of exactly one (radio buttons).
    pub multiple: bool,
    /// Nobody, staff included, is told who chose what; only counts are kept.
    pub anonymous: bool,
    /// The staff member who asked.
    pub asked_by: ParticipantId,
    /// When the poll was opened (Unix milliseconds).
    pub started_at: UnixMillis,
}

/// How a poll's options were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResults {
    pub poll_id: PollId,
    /// How many participants chose each option, by option index.
    pub counts: Vec<u32>,
    /// How many participants answered.
    pub answered: u32,
    /// Who chose what (staff only, never for an anonymous poll). In a live `poll_results` the
    /// answer that caused it; in a snapshot, and in the `poll_results` after a replay, every
    /// answer so far. Each participant answers once, so a client keeps them by participant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<PollVote>,
}

/// One participant's answer to a poll that is not anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollVote {
    pub participant_id: ParticipantId,
    /// Their display name (they may have left since).
    pub name: String,
    /// The option indices they chose, ascending.
    pub choices: Vec<u32>,
}

/// The room's current poll in a snapshot: the open poll, or the last one after staff shared its
/// results (until the next poll starts or the class starts again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollState {
    pub poll: Poll,
    /// Answers are still taken.
    pub open: bool,
    /// Staff showed the results to the class.
    pub shared: bool,
    /// The viewer's own answer, when they gave one (ascending option indices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_choices: Option<Vec<u32>>,
    /// Staff: the results so far (with `votes` unless anonymous). Everyone else: the shared
    /// counts once shared (never `votes`); absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<PollResults>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message on a connection.
    Hello {
        protocol_version: u32,
        token: String,
        /// The last event sequence number this client saw, when it reconnects.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<Seq>,
        /// Start this participant's media right after the welcome, as a `media_start` sent
        /// then would, when the welcome lets them straight into the class: the `sfu_offer`
        /// follows the welcome without waiting for the client's request (see PROTOCOL.md).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        media_start: bool,
    },
    /// Send a chat message.
    ChatSend {
        #[serde(default)]
        to: ChatTarget,
        text: String,
    },
    /// Staff: delete a chat message by its sequence number.
    ChatDelete { seq: Seq },
    /// Staff: lock or unlock chat for students.
    ChatLock { locked: bool },
    /// Chat older than what the client has (scroll-back): up to `limit` (default 50, at most
    /// 200) of the messages it may read with a `seq` below `before_seq`. Answered with
    /// `chat_page` instead of an ack.
    ChatHistory {
        before_seq: Seq,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Raise your own hand.
    HandRaise,
    /// Lower your own hand.
    HandLower,
    /// Staff: lower one participant's hand.
    HandLowerFor { participant_id: ParticipantId },
    /// Staff: lower every hand.
    HandLowerAll,
    /// Staff: call on a student (the next in the queue when `participant_id` is absent). Lowers
    /// their hand and allows them to speak until staff revoke it.
    CallOn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        participant_id: Option<ParticipantId>,
    },
    /// Staff: allow a participant to speak (also lifts a hard mute).
    AllowSpeak { participant_id: ParticipantId },
    /// Staff: take back permission to speak.
    RevokeSpeak { participant_id: ParticipantId },
    /// Staff: hard-mute a participant. They cannot unmute until staff allow them to speak.
    Mute { participant_id: ParticipantId },
    /// Staff: remove a participant from the class.
    Remove {
        participant_id: ParticipantId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Staff: hand the stage to a student (replacing any current presenter).
    StageGrant { participant_id: ParticipantId },
    /// Staff: take the stage back.
    StageRevoke,
    /// Staff: start the class; the lobby is let in.
    ClassStart,
    /// Staff: end the class; students and observers are disconnected.
    ClassEnd,
    /// Staff start recording the class (it must be live). Everyone is told with
    /// `recording_started` before any of their media is captured.
    RecordingStart,
    /// Staff stop recording. Recording also stops by itself when the class ends.
    RecordingStop,
    /// Staff: let one participant in from the lobby before the class starts.
    Admit { participant_id: ParticipantId },
    /// Send an ephemeral reaction.
    React { reaction: Reaction },
    /// Report your own mic, camera and screen switches.
    SetMedia { media: MediaState },
    /// Leave the class now (no reconnect grace period).
    Leave,
    /// WebRTC: (re)create this participant's peer on the SFU without an offer of the client's;
    /// the SFU then offers what the client receives (`sfu_offer`). One negotiation instead of
    /// two for a client that has nothing to send yet.
    MediaStart,
    /// WebRTC: the client's SDP offer for its one peer connection (what it publishes; a data
    /// channel when it only receives). Answered with `media_answer`, then the ack.
    MediaOffer { sdp: String },
    /// WebRTC: the client's SDP answer to a server `media_offer`.
    MediaAnswer { sdp: String },
    /// WebRTC: a trickled ICE candidate (`candidate:...`; empty at the end). Optional: the
    /// server also learns the client's address from its connectivity checks.
    MediaCandidate { candidate: String },
    /// WebRTC: how big the client shows one of the videos it receives (`mid` of an
    /// `sfu_offer`), in device pixels; 0x0 when it is not shown. With a simulcast publisher the
    /// SFU sends the smallest layer that fills it.
    MediaView {
        mid: String,
        width: u32,
        height: u32,
        /// Not shown at all (a gallery tile on another page): the SFU forwards nothing of this
        /// video until a `media_view` with `paused` false (or absent) resumes it.
        #[serde(default, skip_serializing_if = "is_false")]
        paused: bool,
    },
    /// Staff: hard-mute every non-staff participant outside the lobby, clear every speech
    /// grant and turn `speak_all` off.
    MuteAll,
    /// Staff: allow everyone in the class to speak (`true`), or take that back and every
    /// speech grant with it (`false`).
    SpeakAll { allowed: bool },
    /// Staff: switch the class layout.
    SetMode { mode: ClassMode },
    /// Staff: ask a student to turn their camera on (allows it; the client asks the student).
    CameraRequest { participant_id: ParticipantId },
    /// Staff: allow a student's camera.
    CameraAllow { participant_id: ParticipantId },
    /// Staff: stop a student's camera (and screen) outside the stage.
    CameraStop { participant_id: ParticipantId },
    /// Staff: who is and was here. Answered with `attendance` instead of an ack.
    AttendanceGet,
    /// Staff: open a poll (one at a time per room). Answered with the ack of `poll_started`.
    PollStart {
        question: String,
        options: Vec<String>,
        /// Several options may be chosen.
        #[serde(default)]
        multiple: bool,
        /// Nobody, staff included, is told who chose what.
        #[serde(default)]
        anonymous: bool,
    },
    /// Students: answer the open poll, once. `choices` are option indices.
    PollAnswer { poll_id: PollId, choices: Vec<u32> },
    /// Staff: close the poll to answers.
    PollEnd { poll_id: PollId },
    /// Staff: show the poll's counts to the class (closes it first when open).
    PollShare { poll_id: PollId },
    /// Staff: ask the class to take one of the course's published quizzes now, within
    /// `duration_secs`. Answered with the ack of `quiz_live`.
    QuizLaunch { quiz_id: QuizId, duration_secs: u32 },
    /// Staff: end the live quiz before its time.
    QuizEnd { quiz_id: QuizId },
}

impl ClientMessage {
    /// Every client message type, as written on the wire.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "chat_send",
        "chat_delete",
        "chat_lock",
        "chat_history",
        "hand_raise",
        "hand_lower",
        "hand_lower_for",
        "hand_lower_all",
        "call_on",
        "allow_speak",
        "revoke_speak",
        "mute",
        "remove",
        "stage_grant",
        "stage_revoke",
        "class_start",
        "class_end",
        "recording_start",
        "recording_stop",
        "admit",
        "react",
        "set_media",
        "leave",
        "media_start",
        "media_offer",
        "media_answer",
        "media_candidate",
        "media_view",
        "mute_all",
        "speak_all",
        "set_mode",
        "camera_request",
        "camera_allow",
        "camera_stop",
        "attendance_get",
        "poll_start",
        "poll_answer",
        "poll_end",
        "poll_share",
        "quiz_launch",
        "quiz_end",
    ];

    /// The wire name of this message's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::ChatSend { .. } => "chat_send",
            ClientMessage::ChatDelete { .. } => "chat_delete",
            ClientMessage::ChatLock { .. } => "chat_lock",
            ClientMessage::ChatHistory { .. } => "chat_history",
            ClientMessage::HandRaise => "hand_raise",
            ClientMessage::HandLower => "hand_lower",
            ClientMessage::HandLowerFor { .. } => "hand_lower_for",
            ClientMessage::HandLowerAll => "hand_lower_all",
            ClientMessage::CallOn { .. } => "call_on",
            ClientMessage::AllowSpeak { .. } => "allow_speak",
            ClientMessage::RevokeSpeak { .. } => "revoke_speak",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::Remove { .. } => "remove",
            ClientMessage::StageGrant { .. } => "stage_grant",
            ClientMessage::StageRevoke => "stage_revoke",
            ClientMessage::ClassStart => "class_start",
            ClientMessage::ClassEnd => "class_end",
            ClientMessage::RecordingStart => "recording_start",
            ClientMessage::RecordingStop => "recording_stop",
            ClientMessage::Admit { .. } => "admit",
            ClientMessage::React { .. } => "react",
            ClientMessage::SetMedia { .. } => "set_media",
            ClientMessage::Leave => "leave",
            ClientMessage::MediaStart => "media_start",
            ClientMessage::MediaOffer { .. } => "media_offer",
            ClientMessage::MediaAnswer { .. } => "media_answer",
            ClientMessage::MediaCandidate { .. } => "media_candidate",
            ClientMessage::MediaView { .. } => "media_view",
            ClientMessage::MuteAll => "mute_all",
            ClientMessage::SpeakAll { .. } => "speak_all",
            ClientMessage::SetMode { .. } => "set_mode",
            ClientMessage::CameraRequest { .. } => "camera_request",
            ClientMessage::CameraAllow { .. } => "camera_allow",
            ClientMessage::CameraStop { .. } => "camera_stop",
            ClientMessage::AttendanceGet => "attendance_get",
            ClientMessage::PollStart { .. } => "poll_start",
            ClientMessage::PollAnswer { .. } => "poll_answer",
            ClientMessage::PollEnd { .. } => "poll_end",
            ClientMessage::PollShare { .. } => "poll_share",
            ClientMessage::QuizLaunch { .. } => "quiz_launch",
            ClientMessage::QuizEnd { .. } => "quiz_end",
        }
    }
}

/// A client frame: a message plus the optional request id the server echoes back.
///
/// Serialize it to send; the server decodes frames with [`crate::decode_client`], which gives
/// typed errors instead of serde's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(flatten)]
    pub message: ClientMessage,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The reply to a valid hello.
    Welcome {
        protocol_version: u32,
        participant_id: ParticipantId,
        role: Role,
        /// The participant's earlier state (hand, stage, mute) was kept from a previous
        /// connection within the reconnect grace period.
        rejoined: bool,
        /// The full room state. Absent when the server instead replays exactly the events after
        /// the hello's `last_seq`; those follow as `event` messages, then a `replay_done`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<Snapshot>,
    },
    /// End of the events replayed after a `welcome` without snapshot.
    ReplayDone { seq: Seq, replayed: u32 },
    /// The full room state again, e.g. when a participant is let in from the lobby.
    Snapshot { snapshot: Snapshot },
    /// A change to the room, stamped with the room's next sequence number.
    Event {
        seq: Seq,
        at: UnixMillis,
        event: RoomEvent,
    },
    /// An ephemeral reaction (not sequenced, not stored).
    Reaction {
        participant_id: ParticipantId,
        reaction: Reaction,
    },
    /// A request succeeded. `seq` is the event it caused, when it caused one.
    Ack {
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<Seq>,
    },
    /// A request failed, or a frame could not be understood. The connection stays open unless a
    /// `closing` follows.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
    },
    /// The server is about to close this connection, and why.
    Closing {
        reason: CloseReason,
        message: String,
    },
    /// The answer to a hello for a room that another node of the cluster hosts, or where this
    /// node placed it: open `url` (a `ws://` or `wss://` WebSocket URL) and send the same hello
    /// there. A `closing` with reason `redirected` follows.
    Redirect { room_id: RoomId, url: String },
    /// WebRTC settings for this connection, sent right after the `welcome` when the server
    /// relays media: the ICE servers (TURN with time-limited credentials) for the client's
    /// `RTCPeerConnection`.
    MediaConfig { ice_servers: Vec<IceServer> },
    /// WebRTC: the SFU's answer to the client's `media_offer`.
    SfuAnswer { sdp: String },
    /// WebRTC: the SFU offers media to the client (new or stopped tracks). The client sets it as
    /// its remote description and replies with `media_answer`. `tracks` says whose media each
    /// new m-line (by `mid`) carries.
    SfuOffer {
        sdp: String,
        tracks: Vec<MediaTrack>,
    },
    /// The answer to `chat_history`: the older messages the client may read, oldest first.
    /// `complete`: there are none older than these.
    ChatPage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
        messages: Vec<ChatMessage>,
        complete: bool,
    },
    /// Who is speaking now, from the audio the SFU relays (ephemeral: not sequenced, not
    /// stored). `None` (`null`): the last speaker left, turned the microphone off or was muted.
    ActiveSpeaker {
        participant_id: Option<ParticipantId>,
    },
    /// The answer to `attendance_get` (to the staff member who asked only): everyone who has
    /// been in this room, sorted by first join.
    Attendance {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
        /// When the class last went live; `null` before it first did.
        class_started_at: Option<UnixMillis>,
        entries: Vec<AttendanceEntry>,
    },
    /// Participants whose network quality changed (ephemeral: not sequenced, not stored).
    NetworkQuality {
        participants: Vec<ParticipantQuality>,
    },
    /// A poll's results so far, to staff only (ephemeral: not sequenced, not stored): after
    /// each answer, and after a replay while a poll is open.
    PollResults { results: PollResults },
    /// How many students in the class submitted the live quiz so far, to staff only
    /// (ephemeral: not sequenced, not stored): after each submission, and to staff joining
    /// while it runs.
    QuizProgress { quiz_id: QuizId, submitted: u32 },
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// One m-line of a server `media_offer`: the track of `participant_id` it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaTrack {
    pub mid: String,
    pub participant_id: ParticipantId,
    pub kind: MediaKind,
}

impl ServerMessage {
    /// Every server message type, as written on the wire.
    pub const TYPES: &'static [&'static str] = &[
        server_type::WELCOME,
        server_type::REPLAY_DONE,
        server_type::SNAPSHOT,
        server_type::EVENT,
        server_type::REACTION,
        server_type::ACK,
        server_type::ERROR,
        server_type::CLOSING,
        server_type::REDIRECT,
        server_type::MEDIA_CONFIG,
        server_type::SFU_ANSWER,
        server_type::SFU_OFFER,
        server_type::CHAT_PAGE,
        server_type::ACTIVE_SPEAKER,
        server_type::ATTENDANCE,
        server_type::NETWORK_QUALITY,
        server_type::POLL_RESULTS,
        server_type::QUIZ_PROGRESS,
    ];

    /// The wire name of this message's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => server_type::WELCOME,
            ServerMessage::ReplayDone { .. } => server_type::REPLAY_DONE,
            ServerMessage::Snapshot { .. } => server_type::SNAPSHOT,
            ServerMessage::Event { .. } => server_type::EVENT,
            ServerMessage::Reaction { .. } => server_type::REACTION,
            ServerMessage::Ack { .. } => server_type::ACK,
            ServerMessage::Error { .. } => server_type::ERROR,
            ServerMessage::Closing { .. } => server_type::CLOSING,
            ServerMessage::Redirect { .. } => server_type::REDIRECT,
            ServerMessage::MediaConfig { .. } => server_type::MEDIA_CONFIG,
            ServerMessage::SfuAnswer { .. } => server_type::SFU_ANSWER,
            ServerMessage::SfuOffer { .. } => server_type::SFU_OFFER,
            ServerMessage::ChatPage { .. } => server_type::CHAT_PAGE,
            ServerMessage::ActiveSpeaker { .. } => server_type::ACTIVE_SPEAKER,
            ServerMessage::Attendance { .. } => server_type::ATTENDANCE,
            ServerMessage::NetworkQuality { .. } => server_type::NETWORK_QUALITY,
            ServerMessage::PollResults { .. } => server_type::POLL_RESULTS,
            ServerMessage::QuizProgress { .. } => server_type::QUIZ_PROGRESS,
        }
    }

    /// A typed error reply.
    pub fn error(code: ErrorCode, request_id: Option<RequestId>) -> Self {
        ServerMessage::Error {
            code,
            message: code.default_message().to_owned(),
            request_id,
        }
    }
}

/// The `type` of each server message as written on the wire, for a client that looks at a
/// frame's type without decoding it (see [`crate::peek_server_type`]).
pub mod server_type {
    pub const WELCOME: &str = "welcome";
    pub const REPLAY_DONE: &str = "replay_done";
    pub const SNAPSHOT: &str = "snapshot";
    pub const EVENT: &str = "event";
    pub const REACTION: &str = "reaction";
    pub const ACK: &str = "ack";
    pub const ERROR: &str = "error";
    pub const CLOSING: &str = "closing";
    pub const REDIRECT: &str = "redirect";
    pub const MEDIA_CONFIG: &str = "media_config";
    pub const SFU_ANSWER: &str = "sfu_answer";
    pub const SFU_OFFER: &str = "sfu_offer";
    pub const CHAT_PAGE: &str = "chat_page";
    pub const ACTIVE_SPEAKER: &str = "active_speaker";
    pub const ATTENDANCE: &str = "attendance";
    pub const NETWORK_QUALITY: &str = "network_quality";
    pub const POLL_RESULTS: &str = "poll_results";
    pub const QUIZ_PROGRESS: &str = "quiz_progress";
}

/// Sequenced changes to the room. Every client that may see an event receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomEvent {
    /// Someone joined (into the class or the lobby).
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    /// Someone's connection dropped (`connected: false`, grace period running) or came back.
    ParticipantConnection {
        participant_id: ParticipantId,
        connected: bool,
    },
    /// Someone is gone for good.
    ParticipantLeft {
        participant_id: ParticipantId,
        reason: LeaveReason,
    },
    /// Staff let a participant in from the lobby. `by` is absent when an administrator did,
    /// through the REST API.
    Admitted {
        participant_id: ParticipantId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    /// The class went live: everyone in the lobby is let in. `by` is absent when the schedule
    /// started it (a course with auto-start, at the scheduled start).
    ClassStarted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    /// The class ended. `by` is absent when the schedule ended it (the scheduled end plus the
    /// grace period passed).
    ClassEnded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    /// The class is being recorded from now on (`by` absent when the course records its
    /// sessions automatically and the class started).
    RecordingStarted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    /// Recording stopped (`by` absent unless staff stopped it), and why.
    RecordingStopped {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
        reason: RecordingStopReason,
    },
    /// A scheduled class ends soon: at `ends_at` (its scheduled end); the room closes for
    /// everyone at `closes_at`, after a grace period.
    ClassEndingSoon {
        ends_at: UnixMillis,
        closes_at: UnixMillis,
    },
    Chat {
        message: ChatMessage,
    },
    ChatDeleted {
        seq: Seq,
        by: ParticipantId,
    },
    ChatLocked {
        locked: bool,
        by: ParticipantId,
    },
    HandRaised {
        participant_id: ParticipantId,
        raised_at: UnixMillis,
    },
    /// A hand went down. `by` is absent when the participant lowered it themselves.
    HandLowered {
        participant_id: ParticipantId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    /// Staff lowered every hand.
    HandsCleared {
        by: ParticipantId,
    },
    /// Staff called on a student: their hand is lowered and they may speak.
    CalledOn {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    SpeakAllowed {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    SpeakRevoked {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    Muted {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    StageGranted {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    /// The stage was taken back (`by` absent when the presenter left).
    StageRevoked {
        participant_id: ParticipantId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    MediaChanged {
        participant_id: ParticipantId,
        media: MediaState,
    },
    /// Staff muted every non-staff participant in the class: each is hard-muted, loses any
    /// speech grant, and `speak_all` is off.
    AllMuted {
        by: ParticipantId,
    },
    /// Staff allowed everyone to speak (`allowed`: every hard mute is lifted) or took it back
    /// (every speech grant is cleared too).
    SpeakAllChanged {
        allowed: bool,
        by: ParticipantId,
    },
    /// The class layout changed. Seminar allows every student's camera; lecture stops them.
    ModeChanged {
        mode: ClassMode,
        by: ParticipantId,
    },
    /// Staff asked a student to turn the camera on (and allowed it).
    CameraRequested {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    CameraAllowed {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    /// Staff stopped a student's camera: their video is not forwarded unless they present.
    CameraStopped {
        participant_id: ParticipantId,
        by: ParticipantId,
    },
    /// Staff opened a poll. Never carries answers.
    PollStarted {
        poll: Poll,
    },
    /// The poll takes no more answers (`by` absent when the class ended and closed it).
    PollEnded {
        poll_id: PollId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
    /// Staff showed the poll's results to the class: counts only, never who chose what.
    PollShared {
        poll_id: PollId,
        counts: Vec<u32>,
        answered: u32,
        by: ParticipantId,
    },
    /// Staff launched a quiz live: everyone in the class is asked to take it.
    QuizLive {
        quiz: LiveQuiz,
    },
    /// The live quiz ended: staff ended it (`by`), or its time ran out or the class ended
    /// (`by` absent).
    QuizEnded {
        quiz_id: QuizId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
    },
}

impl RoomEvent {
    /// Every event kind, as written on the wire.
    pub const KINDS: &'static [&'static str] = &[
        "participant_joined",
        "participant_connection",
        "participant_left",
        "admitted",
        "class_started",
        "class_ended",
        "recording_started",
        "recording_stopped",
        "class_ending_soon",
        "chat",
        "chat_deleted",
        "chat_locked",
        "hand_raised",
        "hand_lowered",
        "hands_cleared",
        "called_on",
        "speak_allowed",
        "speak_revoked",
        "muted",
        "stage_granted",
        "stage_revoked",
        "media_changed",
        "all_muted",
        "speak_all_changed",
        "mode_changed",
        "camera_requested",
        "camera_allowed",
        "camera_stopped",
        "poll_started",
        "poll_ended",
        "poll_shared",
        "quiz_live",
        "quiz_ended",
    ];
}

/// Why a participant left for good.
/// Why recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStopReason {
    /// Staff stopped it.
    Stopped,
    /// The class ended (or its room closed).
    ClassEnded,
    /// The recordings disk reached `recording.min_free_bytes`; what was recorded is kept.
    DiskFull,
    /// Writing failed; what was recorded is kept.
    Failed,
    /// The server is shutting down.
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They left.
    Left,
    /// Their connection dropped and they did not come back within the grace period.
    TimedOut,
    /// Staff removed them.
    Removed,
    /// The class ended.
    ClassEnded,
}

impl LeaveReason {
    /// Every leave reason, in declaration order.
    pub const ALL: &[Self] = &[
        LeaveReason::Left,
        LeaveReason::TimedOut,
        LeaveReason::Removed,
        LeaveReason::ClassEnded,
    ];
}

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The server is shutting down; reconnect later.
    ServerShutdown,
    /// Staff removed you.
    Removed,
    /// The class ended.
    ClassEnded,
    /// You connected again elsewhere; this older connection is closed.
    Replaced,
    /// You could not keep up with the room's messages.
    SlowConsumer,
    /// Too many invalid or refused requests, or too many frames.
    Abuse,
    /// The hello was missing, late or refused.
    HandshakeFailed,
    /// You left.
    Left,
    /// The hello was for a room another node hosts (or should host): a `redirect` just before
    /// the `closing` says where to connect. Follow it at once.
    Redirected,
    /// This node stopped hosting the room (it lost the room's lease, for example cut off from
    /// the cluster): reconnect now, to the address you first used, and resume with `last_seq`.
    RoomMoved,
}

impl CloseReason {
    /// Every close reason, in declaration order.
    pub const ALL: &[Self] = &[
        CloseReason::ServerShutdown,
        CloseReason::Removed,
        CloseReason::ClassEnded,
        CloseReason::Replaced,
        CloseReason::SlowConsumer,
        CloseReason::Abuse,
        CloseReason::HandshakeFailed,
        CloseReason::Left,
        CloseReason::Redirected,
        CloseReason::RoomMoved,
    ];
}

/// Stable error codes. Clients match on these; the `message` is for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON (or not text).
    InvalidJson,
    /// The `type` is missing or not a known message type.
    UnknownType,
    /// The message has a known type but missing, extra or ill-typed fields.
    InvalidMessage,
    /// The frame is larger than the server accepts.
    FrameTooLarge,
    /// The first message was not a hello, or a hello came twice.
    HelloRequired,
    /// The hello's protocol version is not supported.
    UnsupportedVersion,
    /// The join token is malformed, badly signed, or lacks a required claim.
    InvalidToken,
    /// The join token has expired.
    TokenExpired,
    /// The join token is not valid yet (`nbf`).
    TokenNotYetValid,
    /// The join token is for another room.
    WrongRoom,
    /// The room is full.
    RoomFull,
    /// The scheduled session's room is not open now; the message names the next session.
    SessionNotOpen,
    /// Your role may not do this.
    NotPermitted,
    /// You are in the lobby: wait until the class starts.
    InLobby,
    /// No such participant (or chat message) in this room.
    NotFound,
    /// The hand queue is empty.
    QueueEmpty,
    /// Chat is locked by staff.
    ChatLocked,
    /// The chat message is empty.
    ChatEmpty,
    /// The chat message is longer than the server allows.
    ChatTooLong,
    /// You are sending too fast.
    RateLimited,
    /// A `media_offer` renumbers header extensions or payload types negotiated before on
    /// this peer connection; nothing changed.
    RenegotiationUnsupported,
    /// `recording_start` while the class is not live.
    ClassNotLive,
    /// The server cannot record now: recording is turned off, or the disk is too full. The
    /// message says which.
    RecordingUnavailable,
    /// `poll_start` with a question or options the server does not accept (empty, too long,
    /// too few or too many options, the same option twice). The message says which.
    PollInvalid,
    /// `poll_start` while another poll is open.
    PollOpen,
    /// `poll_answer` or `poll_end` for a poll that is closed.
    PollClosed,
    /// `poll_answer` for a poll you already answered.
    AlreadyAnswered,
    /// `poll_answer` whose choices do not fit the poll (an index out of range, the same one
    /// twice, none, or more than one for a single-choice poll).
    InvalidChoice,
    /// `quiz_launch` for a quiz that is not one of this room's course's published quizzes (or
    /// in a room that belongs to no course).
    QuizUnavailable,
    /// `quiz_launch` while another quiz is live, or with a duration out of range; `quiz_end`
    /// when that quiz is not live. The message says which.
    QuizInvalid,
    /// The message could not be stored; it was not delivered.
    StoreUnavailable,
    /// Something went wrong on the server.
    Internal,
}

impl ErrorCode {
    /// True when the error is the client's doing (and so counts toward the abuse limit); false
    /// for the server's own trouble and for a full room.
    pub fn is_client_fault(self) -> bool {
        !matches!(
            self,
            ErrorCode::StoreUnavailable
                | ErrorCode::Internal
                | ErrorCode::RoomFull
                | ErrorCode::SessionNotOpen
        )
    }

    /// Every error code, in declaration order.
    pub const ALL: &[Self] = &[
        ErrorCode::InvalidJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidMessage,
        ErrorCode::FrameTooLarge,
        ErrorCode::HelloRequired,
        ErrorCode::UnsupportedVersion,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::TokenNotYetValid,
        ErrorCode::WrongRoom,
        ErrorCode::RoomFull,
        ErrorCode::SessionNotOpen,
        ErrorCode::NotPermitted,
        ErrorCode::InLobby,
        ErrorCode::NotFound,
        ErrorCode::QueueEmpty,
        ErrorCode::ChatLocked,
        ErrorCode::ChatEmpty,
        ErrorCode::ChatTooLong,
        ErrorCode::RateLimited,
        ErrorCode::RenegotiationUnsupported,
        ErrorCode::ClassNotLive,
        ErrorCode::RecordingUnavailable,
        ErrorCode::PollInvalid,
        ErrorCode::PollOpen,
        ErrorCode::PollClosed,
        ErrorCode::AlreadyAnswered,
        ErrorCode::InvalidChoice,
        ErrorCode::QuizUnavailable,
        ErrorCode::QuizInvalid,
        ErrorCode::StoreUnavailable,
        ErrorCode::Internal,
    ];

    /// A short human message for the code.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "the frame is not valid JSON text",
            ErrorCode::UnknownType => "unknown message type",
            ErrorCode::InvalidMessage => "the message has missing or invalid fields",
            ErrorCode::FrameTooLarge => "the frame is too large",
            ErrorCode::HelloRequired => "the first message must be a single hello",
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::InvalidToken => "the join token is not valid",
            ErrorCode::TokenExpired => "the join token has expired",
            ErrorCode::TokenNotYetValid => "the join token is not valid yet",
            ErrorCode::WrongRoom => "the join token is for another room",
            ErrorCode::RoomFull => "the room is full",
            ErrorCode::SessionNotOpen => "the session's room is not open now",
            ErrorCode::NotPermitted => "your role may not do this",
            ErrorCode::InLobby => "you are in the lobby until the class starts",
            ErrorCode::NotFound => "no such participant or message",
            ErrorCode::QueueEmpty => "no hands are raised",
            ErrorCode::ChatLocked => "chat is locked",
            ErrorCode::ChatEmpty => "the message is empty",
            ErrorCode::ChatTooLong => "the message is too long",
            ErrorCode::RateLimited => "you are sending too fast",
            ErrorCode::RenegotiationUnsupported => {
                "the offer renumbers what was negotiated before on this peer connection"
            }
            ErrorCode::ClassNotLive => "the class is not live",
            ErrorCode::RecordingUnavailable => "recording is not available on this server now",
            ErrorCode::PollInvalid => "the poll's question or options are not valid",
            ErrorCode::PollOpen => "another poll is open",
            ErrorCode::PollClosed => "the poll is closed",
            ErrorCode::AlreadyAnswered => "you already answered this poll",
            ErrorCode::InvalidChoice => "the choices do not fit the poll",
            ErrorCode::QuizUnavailable => "no such published quiz in this course",
            ErrorCode::QuizInvalid => "the live quiz request does not fit the room",
            ErrorCode::StoreUnavailable => "the message could not be stored",
            ErrorCode::Internal => "internal server error",
        }
    }
}

#[cfg(test)]
mod all_tests {
    //! Each `ALL` array must list every variant. The matches below are exhaustive, so adding a
    //! variant fails to compile here until it is given its wire name; the tests then compare `ALL`
    //! with the variant list serde's derive itself uses, so a variant missing from `ALL` fails.

    use serde::de::{self, DeserializeOwned, Visitor};

    use super::*;

    fn error_code_name(code: ErrorCode) -> &'static str {
        match code {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenNotYetValid => "token_not_yet_valid",
            ErrorCode::WrongRoom => "wrong_room",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::SessionNotOpen => "session_not_open",
            ErrorCode::NotPermitted => "not_permitted",
            ErrorCode::InLobby => "in_lobby",
            ErrorCode::NotFound => "not_found",
            ErrorCode::QueueEmpty => "queue_empty",
            ErrorCode::ChatLocked => "chat_locked",
            ErrorCode::ChatEmpty => "chat_empty",
            ErrorCode::ChatTooLong => "chat_too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RenegotiationUnsupported => "renegotiation_unsupported",
            ErrorCode::ClassNotLive => "class_not_live",
            ErrorCode::RecordingUnavailable => "recording_unavailable",
            ErrorCode::PollInvalid => "poll_invalid",
            ErrorCode::PollOpen => "poll_open",
            ErrorCode::PollClosed => "poll_closed",
            ErrorCode::AlreadyAnswered => "already_answered",
            ErrorCode::InvalidChoice => "invalid_choice",
            ErrorCode::QuizUnavailable => "quiz_unavailable",
            ErrorCode::QuizInvalid => "quiz_invalid",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    fn close_reason_name(reason: CloseReason) -> &'static str {
        match reason {
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::Removed => "removed",
            CloseReason::ClassEnded => "class_ended",
            CloseReason::Replaced => "replaced",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Abuse => "abuse",
            CloseReason::HandshakeFailed => "handshake_failed",
            CloseReason::Left => "left",
            CloseReason::Redirected => "redirected",
            CloseReason::RoomMoved => "room_moved",
        }
    }

    fn leave_reason_name(reason: LeaveReason) -> &'static str {
        match reason {
            LeaveReason::Left => "left",
            LeaveReason::TimedOut => "timed_out",
            LeaveReason::Removed => "removed",
            LeaveReason::ClassEnded => "class_ended",
        }
    }

    fn reaction_name(reaction: Reaction) -> &'static str {
        match reaction {
            Reaction::ThumbsUp => "thumbs_up",
            Reaction::Clap => "clap",
            Reaction::Heart => "heart",
            Reaction::Laugh => "laugh",
            Reaction::Surprised => "surprised",
            Reaction::Confused => "confused",
        }
    }

    /// A deserializer that records the variant names a derived `Deserialize` passes to
    /// `deserialize_enum`, then fails.
    struct RecordVariants<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for RecordVariants<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a unit-variant enum"))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = variants;
            Err(de::Error::custom("recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }

    /// The wire names of every variant of `T`, in declaration order, as serde's derive knows them.
    fn serde_variants<T: DeserializeOwned>() -> &'static [&'static str] {
        let mut variants: &'static [&'static str] = &[];
        let _ = T::deserialize(RecordVariants(&mut variants));
        assert!(
            !variants.is_empty(),
            "{} is not an enum",
            std::any::type_name::<T>()
        );
        variants
    }

    fn wire_name<T: Serialize>(value: &T) -> String {
        match serde_json::to_value(value).expect("serializes") {
            serde_json::Value::String(s) => s,
            other => panic!("not a unit variant: {other}"),
        }
    }

    fn check_all<T>(all: &[T], name_of: fn(T) -> &'static str)
    where
        T: Copy + Serialize + DeserializeOwned,
    {
        let listed: Vec<String> = all.iter().map(wire_name).collect();
        assert_eq!(
            listed,
            serde_variants::<T>(),
            "{}::ALL must list every variant once, in declaration order",
            std::any::type_name::<T>()
        );
        for &value in all {
            assert_eq!(wire_name(&value), name_of(value), "wire name changed");
        }
    }

    #[test]
    fn error_code_all_is_complete() {
        check_all(ErrorCode::ALL, error_code_name);
    }

    #[test]
    fn close_reason_all_is_complete() {
        check_all(CloseReason::ALL, close_reason_name);
    }

    #[test]
    fn leave_reason_all_is_complete() {
        check_all(LeaveReason::ALL, leave_reason_name);
    }

    #[test]
    fn reaction_all_is_complete() {
        check_all(Reaction::ALL, reaction_name);
    }

    #[test]
    fn network_quality_all_is_complete() {
        check_all(NetworkQuality::ALL, |q| match q {
            NetworkQuality::Good => "good",
            NetworkQuality::Fair => "fair",
            NetworkQuality::Poor => "poor",
            NetworkQuality::Unknown => "unknown",
        });
    }

    #[test]
    fn class_mode_all_is_complete() {
        check_all(&ClassMode::ALL, ClassMode::as_str);
    }

    #[test]
    fn role_all_is_complete() {
        check_all(&Role::ALL, Role::as_str);
    }
}
