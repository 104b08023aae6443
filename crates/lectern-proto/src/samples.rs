//! One example of every message, used to keep `docs/PROTOCOL.md` complete and by tests.

use crate::*;

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s)
}

fn student(id: &str, name: &str) -> ParticipantInfo {
    ParticipantInfo {
        id: pid(id),
        name: name.into(),
        role: Role::Student,
        connected: true,
        in_lobby: false,
        hard_muted: false,
        can_speak: false,
        speak_granted: false,
        presenter: false,
        media: MediaState::default(),
        camera_allowed: false,
    }
}

fn chat() -> ChatMessage {
    ChatMessage {
        seq: 42,
        from: pid("s-ada"),
        from_name: "Ada".into(),
        from_role: Role::Student,
        to: ChatTarget::Everyone,
        text: "Is the homework due Friday?".into(),
        sent_at: 1_790_000_000_000,
    }
}

/// One of each client message, in [`ClientMessage::TYPES`] order.
pub fn client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: "eyJhbGciOiJIUzI1NiJ9...".into(),
            last_seq: Some(41),
            media_start: false,
        },
        ClientMessage::ChatSend {
            to: ChatTarget::Staff,
            text: "Could you repeat the last step?".into(),
        },
        ClientMessage::ChatDelete { seq: 42 },
        ClientMessage::ChatLock { locked: true },
        ClientMessage::ChatHistory {
            before_seq: 43,
            limit: Some(50),
        },
        ClientMessage::HandRaise,
        ClientMessage::HandLower,
        ClientMessage::HandLowerFor {
            participant_id: pid("s-ada"),
        },
        ClientMessage::HandLowerAll,
        ClientMessage::CallOn {
            participant_id: None,
        },
        ClientMessage::AllowSpeak {
            participant_id: pid("s-ada"),
        },
        ClientMessage::RevokeSpeak {
            participant_id: pid("s-ada"),
        },
        ClientMessage::Mute {
            participant_id: pid("s-bob"),
        },
        ClientMessage::Remove {
            participant_id: pid("s-bob"),
            reason: Some("disruptive".into()),
        },
        ClientMessage::StageGrant {
            participant_id: pid("s-ada"),
        },
        ClientMessage::StageRevoke,
        ClientMessage::ClassStart,
        ClientMessage::ClassEnd,
        ClientMessage::RecordingStart,
        ClientMessage::RecordingStop,
        ClientMessage::Admit {
            participant_id: pid("s-ada"),
        },
        ClientMessage::React {
            reaction: Reaction::ThumbsUp,
        },
        ClientMessage::SetMedia {
            media: MediaState {
                mic: true,
                camera: true,
                screen: false,
            },
        },
        ClientMessage::Leave,
        ClientMessage::MediaStart,
        ClientMessage::MediaOffer {
            sdp: "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n...".into(),
        },
        ClientMessage::MediaAnswer {
            sdp: "v=0\r\no=- 7236182398455 3 IN IP4 127.0.0.1\r\n...".into(),
        },
        ClientMessage::MediaCandidate {
            candidate: "candidate:1 1 udp 2113937151 192.0.2.10 54400 typ host".into(),
        },
        ClientMessage::MediaView {
            mid: "1".into(),
            width: 320,
            height: 180,
            paused: false,
        },
        ClientMessage::MuteAll,
        ClientMessage::SpeakAll { allowed: true },
        ClientMessage::SetMode {
            mode: ClassMode::Seminar,
        },
        ClientMessage::CameraRequest {
            participant_id: pid("s-ada"),
        },
        ClientMessage::CameraAllow {
            participant_id: pid("s-ada"),
        },
        ClientMessage::CameraStop {
            participant_id: pid("s-bob"),
        },
        ClientMessage::AttendanceGet,
        ClientMessage::PollStart {
            question: "Which method converges fastest?".into(),
            options: vec!["Bisection".into(), "Newton".into(), "Secant".into()],
            multiple: false,
            anonymous: false,
        },
        ClientMessage::PollAnswer {
            poll_id: 50,
            choices: vec![1],
        },
        ClientMessage::PollEnd { poll_id: 50 },
        ClientMessage::PollShare { poll_id: 50 },
        ClientMessage::QuizLaunch {
            quiz_id: 7,
            duration_secs: 600,
        },
        ClientMessage::QuizEnd { quiz_id: 7 },
    ]
}

/// One of each server message, in [`ServerMessage::TYPES`] order.
pub fn server_messages() -> Vec<ServerMessage> {
    vec![
        ServerMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            participant_id: pid("s-ada"),
            role: Role::Student,
            rejoined: false,
            snapshot: Some(snapshot()),
        },
        ServerMessage::ReplayDone {
            seq: 45,
            replayed: 3,
        },
        ServerMessage::Snapshot {
            snapshot: snapshot(),
        },
        ServerMessage::Event {
            seq: 43,
            at: 1_790_000_000_500,
            event: RoomEvent::HandRaised {
                participant_id: pid("s-ada"),
                raised_at: 1_790_000_000_500,
            },
        },
        ServerMessage::Reaction {
            participant_id: pid("s-ada"),
            reaction: Reaction::Clap,
        },
        ServerMessage::Ack {
            request_id: 7,
            seq: Some(42),
        },
        ServerMessage::Error {
            code: ErrorCode::NotPermitted,
            message: ErrorCode::NotPermitted.default_message().into(),
            request_id: Some(8),
        },
        ServerMessage::Closing {
            reason: CloseReason::ServerShutdown,
            message: "the server is restarting; reconnect in a moment".into(),
        },
        ServerMessage::Redirect {
            room_id: RoomId::new("algebra-101"),
            url: "wss://node-2.example.edu/ws?room=algebra-101&placed=1".into(),
        },
        ServerMessage::MediaConfig {
            ice_servers: vec![IceServer {
                urls: vec!["turn:turn.example.edu:3478?transport=udp".into()],
                username: Some("1790043200:s-ada".into()),
                credential: Some("nNaZyW5sovAuzYa/Yx+/N2xwdK4=".into()),
            }],
        },
        ServerMessage::SfuAnswer {
            sdp: "v=0\r\no=str0m-1 1 2 IN IP4 0.0.0.0\r\n...".into(),
        },
        ServerMessage::SfuOffer {
            sdp: "v=0\r\no=str0m-1 1 3 IN IP4 0.0.0.0\r\n...".into(),
            tracks: vec![
                MediaTrack {
                    mid: "1".into(),
                    participant_id: pid("t-grace"),
                    kind: MediaKind::Audio,
                },
                MediaTrack {
                    mid: "2".into(),
                    participant_id: pid("t-grace"),
                    kind: MediaKind::Video,
                },
            ],
        },
        ServerMessage::ChatPage {
            request_id: Some(8),
            messages: vec![chat()],
            complete: true,
        },
        ServerMessage::ActiveSpeaker {
            participant_id: Some(pid("t-grace")),
        },
        ServerMessage::Attendance {
            request_id: Some(9),
            class_started_at: Some(1_790_000_000_000),
            entries: vec![
                AttendanceEntry {
                    participant_id: pid("t-grace"),
                    name: "Grace".into(),
                    role: Role::Instructor,
                    present: true,
                    first_joined_at: 1_789_999_990_000,
                    last_left_at: None,
                    late: false,
                    intervals: 1,
                },
                AttendanceEntry {
                    participant_id: pid("s-ada"),
                    name: "Ada".into(),
                    role: Role::Student,
                    present: false,
                    first_joined_at: 1_790_000_400_000,
                    last_left_at: Some(1_790_003_000_000),
                    late: true,
                    intervals: 2,
                },
            ],
        },
        ServerMessage::NetworkQuality {
            participants: vec![ParticipantQuality {
                participant_id: pid("s-ada"),
                quality: NetworkQuality::Poor,
            }],
        },
        ServerMessage::PollResults {
            results: PollResults {
                poll_id: 50,
                counts: vec![0, 1, 0],
                answered: 1,
                votes: vec![PollVote {
                    participant_id: pid("s-ada"),
                    name: "Ada".into(),
                    choices: vec![1],
                }],
            },
        },
        ServerMessage::QuizProgress {
            quiz_id: 7,
            submitted: 12,
        },
    ]
}

/// A small room state.
pub fn snapshot() -> Snapshot {
    Snapshot {
        room_id: RoomId::new("algebra-101"),
        title: "Algebra 101".into(),
        class_state: ClassState::Live,
        roster: vec![
            ParticipantInfo {
                role: Role::Instructor,
                can_speak: true,
                media: MediaState {
                    mic: true,
                    camera: true,
                    screen: false,
                },
                ..student("t-grace", "Grace")
            },
            student("s-ada", "Ada"),
        ],
        hand_queue: vec![HandEntry {
            participant_id: pid("s-ada"),
            raised_at: 1_790_000_000_500,
        }],
        presenter: None,
        chat_locked: false,
        recording: true,
        chat: vec![chat()],
        seq: 42,
        scheduled_start: Some(1_790_000_000_000),
        scheduled_end: Some(1_790_005_400_000),
        warns_at: Some(1_790_005_100_000),
        closes_at: Some(1_790_006_000_000),
        mode: ClassMode::Lecture,
        speak_all: false,
        class_started_at: Some(1_790_000_000_000),
        poll: Some(PollState {
            poll: poll(),
            open: true,
            shared: false,
            my_choices: Some(vec![1]),
            results: None,
        }),
        live_quiz: Some(live_quiz()),
    }
}

/// The live quiz of the samples.
pub fn live_quiz() -> LiveQuiz {
    LiveQuiz {
        quiz_id: 7,
        title: "Week 3: roots".into(),
        launched_by: pid("t-grace"),
        launched_at: 1_790_000_900_000,
        ends_at: 1_790_001_500_000,
    }
}

/// The poll of the samples.
pub fn poll() -> Poll {
    Poll {
        poll_id: 50,
        question: "Which method converges fastest?".into(),
        options: vec!["Bisection".into(), "Newton".into(), "Secant".into()],
        multiple: false,
        anonymous: false,
        asked_by: pid("t-grace"),
        started_at: 1_790_000_900_000,
    }
}

/// One of each room event, in [`RoomEvent::KINDS`] order.
pub fn room_events() -> Vec<RoomEvent> {
    let by = pid("t-grace");
    vec![
        RoomEvent::ParticipantJoined {
            participant: student("s-ada", "Ada"),
        },
        RoomEvent::ParticipantConnection {
            participant_id: pid("s-ada"),
            connected: false,
        },
        RoomEvent::ParticipantLeft {
            participant_id: pid("s-ada"),
            reason: LeaveReason::TimedOut,
        },
        RoomEvent::Admitted {
            participant_id: pid("s-ada"),
            by: Some(by.clone()),
        },
        RoomEvent::ClassStarted {
            by: Some(by.clone()),
        },
        RoomEvent::ClassEnded {
            by: Some(by.clone()),
        },
        RoomEvent::RecordingStarted {
            by: Some(by.clone()),
        },
        RoomEvent::RecordingStopped {
            by: None,
            reason: RecordingStopReason::ClassEnded,
        },
        RoomEvent::ClassEndingSoon {
            ends_at: 1_790_005_400_000,
            closes_at: 1_790_006_000_000,
        },
        RoomEvent::Chat { message: chat() },
        RoomEvent::ChatDeleted {
            seq: 42,
            by: by.clone(),
        },
        RoomEvent::ChatLocked {
            locked: true,
            by: by.clone(),
        },
        RoomEvent::HandRaised {
            participant_id: pid("s-ada"),
            raised_at: 1_790_000_000_500,
        },
        RoomEvent::HandLowered {
            participant_id: pid("s-ada"),
            by: None,
        },
        RoomEvent::HandsCleared { by: by.clone() },
        RoomEvent::CalledOn {
            participant_id: pid("s-ada"),
            by: by.clone(),
        },
        RoomEvent::SpeakAllowed {
            participant_id: pid("s-ada"),
            by: by.clone(),
        },
        RoomEvent::SpeakRevoked {
            participant_id: pid("s-ada"),
            by: by.clone(),
        },
        RoomEvent::Muted {
            participant_id: pid("s-bob"),
            by: by.clone(),
        },
        RoomEvent::StageGranted {
            participant_id: pid("s-ada"),
            by: by.clone(),
        },
        RoomEvent::StageRevoked {
            participant_id: pid("s-ada"),
            by: Some(by.clone()),
        },
        RoomEvent::MediaChanged {
            participant_id: pid("s-ada"),
            media: MediaState {
                mic: false,
                camera: true,
                screen: true,
            },
        },
        RoomEvent::AllMuted { by: by.clone() },
        RoomEvent::SpeakAllChanged {
            allowed: true,
            by: by.clone(),
        },
        RoomEvent::ModeChanged {
            mode: ClassMode::Seminar,
            by: by.clone(),
        },
        RoomEvent::CameraRequested {
            participant_id: pid("s-ada"),
            by: by.clone(),
        },
        RoomEvent::CameraAllowed {
            participant_id: pid("s-ada"),
            by: by.clone(),
        },
        RoomEvent::CameraStopped {
            participant_id: pid("s-bob"),
            by: by.clone(),
        },
        RoomEvent::PollStarted { poll: poll() },
        RoomEvent::PollEnded {
            poll_id: 50,
            by: Some(by.clone()),
        },
        RoomEvent::PollShared {
            poll_id: 50,
            counts: vec![3, 12, 5],
            answered: 19,
            by: by.clone(),
        },
        RoomEvent::QuizLive { quiz: live_quiz() },
        RoomEvent::QuizEnded {
            quiz_id: 7,
            by: Some(by),
        },
    ]
}

/// A name for a sample in docs: the wire `type` (and `kind` for events).
pub fn wire_name(value: &serde_json::Value) -> String {
    value["type"].as_str().unwrap_or_default().to_owned()
}
