//! Drives one `Room` with an arbitrary sequence of joins, requests (typed, sampled from the
//! protocol crate, or decoded from text frames), disconnects, ticks and storage failures, the
//! way the server's room task would, and checks the driver contract on every drain:
//!
//! - nothing panics;
//! - live events carry strictly increasing `seq`s, never above `Room::seq()`; each connection
//!   sees strictly increasing `seq`s (snapshots and replays included); a replay is closed by a
//!   `replay_done` that counts it;
//! - nothing is sent to a connection after the room closed it or the driver reported it gone,
//!   and a connection's first message is its `welcome` (or the error refusing its join);
//! - a request with a `request_id` on a live connection gets exactly one `ack` or `error` (or
//!   `attendance`, the answer to `attendance_get`), and
//!   a request on an unknown connection produces nothing;
//! - a send tagged with a chat `persist_seq` follows the `Persist` of that chat in its drain;
//! - `Welcomed` names a welcomed connection; `active_speaker` never goes to the lobby, and the
//!   room keeps the speaker the media plane names while they are in the room;
//! - the hand queue has no duplicates and holds only participants in the class; the presenter
//!   is a non-staff participant; the participant limit holds; `connection_count()` matches the
//!   connections the driver believes open; `poll_timeout()` is set exactly while someone is in
//!   their grace period and is in the future after a tick.

#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use lectern_proto::{
    ChatMessage, ChatTarget, ClassMode, ClientMessage, HandEntry, MediaState, ParticipantId, Reaction,
    RequestId, Role, RoomId, Seq, ServerMessage, Snapshot, UnixMillis, decode_client,
};
use lectern_room::{ConnId, Identity, Input, Output, PersistRecord, Room, RoomConfig, RoomInit};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// Participant ids the ops pick from, so requests mostly target people who are in the room.
/// "s-ada" is the id the protocol crate's sample messages use.
const IDS: [&str; 6] = ["t-grace", "ta-ben", "s-ada", "s-cy", "o-dee", "s-eve"];

/// Field names a generated frame picks from (the protocol's, plus one unknown).
const KEYS: [&str; 18] = [
    "request_id",
    "text",
    "to",
    "seq",
    "locked",
    "participant_id",
    "reason",
    "reaction",
    "media",
    "protocol_version",
    "token",
    "last_seq",
    "kind",
    "id",
    "mic",
    "camera",
    "screen",
    "extra",
];

const BASE_TIME: UnixMillis = 1_790_000_000_000;

fn samples() -> &'static [ClientMessage] {
    static SAMPLES: OnceLock<Vec<ClientMessage>> = OnceLock::new();
    SAMPLES.get_or_init(lectern_proto::samples::client_messages)
}

#[derive(Debug, Arbitrary)]
struct Scenario {
    config: Cfg,
    init: Init,
    start: u32,
    ops: Vec<Op>,
    shutdown: bool,
}

#[derive(Debug, Arbitrary)]
struct Cfg {
    auto_start: bool,
    max_participants: u8,
    max_chat_chars: u8,
    snapshot_chat_len: u8,
    replay_len: u8,
    grace_ms: u16,
    seminar: bool,
    late_after_ms: u16,
}

#[derive(Debug, Arbitrary)]
struct Init {
    /// Bounded: a stored `last_seq` near `u64::MAX` is not something storage produces.
    last_seq: u32,
    recent_chat: Vec<InitChat>,
    chat_locked: bool,
}

#[derive(Debug, Arbitrary)]
struct InitChat {
    back: u8,
    who: Who,
    role: PickRole,
    to: Target,
    text: String,
}

#[derive(Debug, Clone, Arbitrary)]
enum Who {
    Pool(u8),
    Raw(String),
}

impl Who {
    fn id(&self) -> ParticipantId {
        match self {
            Who::Pool(i) => ParticipantId::new(IDS[usize::from(*i) % IDS.len()]),
            Who::Raw(s) => ParticipantId::new(s.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum PickRole {
    Instructor,
    Ta,
    Student,
    Observer,
}

impl PickRole {
    fn role(self) -> Role {
        match self {
            PickRole::Instructor => Role::Instructor,
            PickRole::Ta => Role::Ta,
            PickRole::Student => Role::Student,
            PickRole::Observer => Role::Observer,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Target {
    Everyone,
    Staff,
    Participant(Who),
}

impl Target {
    fn target(&self) -> ChatTarget {
        match self {
            Target::Everyone => ChatTarget::Everyone,
            Target::Staff => ChatTarget::Staff,
            Target::Participant(who) => ChatTarget::Participant { id: who.id() },
        }
    }
}

/// A sequence number relative to what the room has done, or any number.
#[derive(Debug, Arbitrary)]
enum SeqPick {
    /// `Room::seq()` minus this.
    Back(u8),
    /// One of the chat messages the room asked to store, newest first.
    Chat(u8),
    Raw(u64),
}

#[derive(Debug, Arbitrary)]
enum Step {
    Small(u8),
    Medium(u16),
    /// Just past the grace period.
    PastGrace,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// A new connection (a fresh `ConnId`, as the driver allocates them) with a valid token.
    Join {
        who: Who,
        role: PickRole,
        name: Option<String>,
        last_seq: Option<SeqPick>,
    },
    /// A request on one of the connections opened so far (maybe closed since).
    Request {
        conn: u8,
        request_id: Option<u16>,
        message: Msg,
    },
    /// A text frame, decoded as the server does; decode errors never reach the room.
    Frame {
        conn: u8,
        frame: Frame,
    },
    Disconnect {
        conn: u8,
    },
    Tick(Step),
    Wait(Step),
    PersistFailed(SeqPick),
    /// The media plane names a speaker (or nobody).
    Speaker(Option<Who>),
}

#[derive(Debug, Arbitrary)]
enum Msg {
    /// The protocol crate's example of each message type.
    Sample(u8),
    Hello {
        protocol_version: u32,
        token: String,
        last_seq: Option<u64>,
        media_start: bool,
    },
    ChatSend {
        to: Target,
        text: String,
    },
    ChatSendFill {
        to: Target,
        ch: char,
        len: u8,
    },
    ChatDelete(SeqPick),
    ChatLock(bool),
    HandRaise,
    HandLower,
    HandLowerFor(Who),
    HandLowerAll,
    CallOn(Option<Who>),
    AllowSpeak(Who),
    RevokeSpeak(Who),
    Mute(Who),
    Remove(Who, Option<String>),
    StageGrant(Who),
    StageRevoke,
    ClassStart,
    ClassEnd,
    RecordingStart,
    RecordingStop,
    Admit(Who),
    React(u8),
    SetMedia {
        mic: bool,
        camera: bool,
        screen: bool,
    },
    Leave,
    MuteAll,
    SpeakAll(bool),
    /// Seminar when true.
    SetMode(bool),
    CameraRequest(Who),
    CameraAllow(Who),
    CameraStop(Who),
    AttendanceGet,
    PollStart {
        question: String,
        options: Vec<String>,
        multiple: bool,
        anonymous: bool,
    },
    /// Poll ids are seqs: `back` counts from the room's current seq, so recent polls are hit.
    PollAnswer {
        back: u8,
        choices: Vec<u32>,
    },
    PollEnd(u8),
    PollShare(u8),
}

#[derive(Debug, Arbitrary)]
enum Frame {
    Raw(String),
    /// A JSON object with a known (or any) `type` and fields from [`KEYS`].
    Object {
        type_index: u8,
        fields: Vec<(u8, Json)>,
    },
}

#[derive(Debug, Arbitrary)]
enum Json {
    Leaf(Leaf),
    Target {
        kind: u8,
        id: Option<Who>,
    },
    Media {
        mic: Leaf,
        camera: Leaf,
        screen: Leaf,
    },
    Object(Vec<(u8, Leaf)>),
}

#[derive(Debug, Arbitrary)]
enum Leaf {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(String),
    Id(Who),
    Reaction(u8),
}

impl Leaf {
    fn value(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => json!(b),
            Leaf::U(n) => json!(n),
            Leaf::I(n) => json!(n),
            Leaf::F(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Leaf::Str(s) => json!(s),
            Leaf::Id(who) => json!(who.id().as_str()),
            Leaf::Reaction(i) => {
                let r = Reaction::ALL[usize::from(*i) % Reaction::ALL.len()];
                serde_json::to_value(r).unwrap_or(Value::Null)
            }
        }
    }
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Leaf(leaf) => leaf.value(),
            Json::Target { kind, id } => {
                let kinds = ["everyone", "staff", "participant", "nobody"];
                let mut o = Map::new();
                o.insert(
                    "kind".into(),
                    json!(kinds[usize::from(*kind) % kinds.len()]),
                );
                if let Some(who) = id {
                    o.insert("id".into(), json!(who.id().as_str()));
                }
                Value::Object(o)
            }
            Json::Media {
                mic,
                camera,
                screen,
            } => {
                json!({ "mic": mic.value(), "camera": camera.value(), "screen": screen.value() })
            }
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (KEYS[usize::from(*k) % KEYS.len()].to_owned(), v.value()))
                    .collect(),
            ),
        }
    }
}

impl Frame {
    fn text(&self) -> String {
        match self {
            Frame::Raw(s) => s.clone(),
            Frame::Object { type_index, fields } => {
                let types = ClientMessage::TYPES;
                // One more than the known types: the last index is an unknown type.
                let i = usize::from(*type_index) % (types.len() + 1);
                let type_name = types.get(i).copied().unwrap_or("no_such_type");
                let mut o = Map::new();
                o.insert("type".into(), json!(type_name));
                for (k, v) in fields {
                    o.insert(KEYS[usize::from(*k) % KEYS.len()].to_owned(), v.value());
                }
                Value::Object(o).to_string()
            }
        }
    }
}

/// What the driver knows about one of its connections.
#[derive(Debug, Default)]
struct Conn {
    /// Got its welcome.
    welcomed: bool,
    /// Closed by the room or reported gone by the driver: nothing may be sent to it any more.
    gone: bool,
    /// Got anything at all.
    contacted: bool,
    /// The highest seq this connection has been shown (event, snapshot or replay end).
    last_seen: Option<Seq>,
    /// In a replay: the number of replayed events so far.
    replaying: Option<u32>,
    /// The `last_seq` it joined with.
    joined_with: Option<Seq>,
}

impl Conn {
    fn live(&self) -> bool {
        self.welcomed && !self.gone
    }

    fn show(&mut self, seq: Seq, what: &str) {
        if let Some(last) = self.last_seen {
            assert!(
                seq > last,
                "{what} seq {seq} after seq {last} on the same connection"
            );
        }
        self.last_seen = Some(seq);
    }
}

struct Harness {
    room: Room,
    now: UnixMillis,
    grace_ms: u64,
    max_participants: usize,
    conns: Vec<Conn>,
    last_live_seq: Option<Seq>,
    /// Chat seqs the room asked to store, oldest first.
    chat_seqs: Vec<Seq>,
}

impl Harness {
    fn conn_id(index: usize) -> ConnId {
        ConnId(index as u64 + 1)
    }

    /// One of the connections opened so far, or a connection id the room never saw.
    fn pick_conn(&self, pick: u8) -> ConnId {
        if self.conns.is_empty() {
            return ConnId(10_000 + u64::from(pick));
        }
        Self::conn_id(usize::from(pick) % self.conns.len())
    }

    fn conn(&mut self, id: ConnId) -> &mut Conn {
        let index = usize::try_from(id.0 - 1).expect("small conn id");
        &mut self.conns[index]
    }

    fn conn_opt(&self, id: ConnId) -> Option<&Conn> {
        let index = usize::try_from(id.0.checked_sub(1)?).ok()?;
        self.conns.get(index)
    }

    fn seq(&self, pick: &SeqPick) -> Seq {
        match pick {
            SeqPick::Back(n) => self.room.seq().saturating_sub(u64::from(*n)),
            SeqPick::Chat(n) => {
                let n = usize::from(*n);
                if self.chat_seqs.is_empty() {
                    self.room.seq()
                } else {
                    self.chat_seqs[self.chat_seqs.len() - 1 - n % self.chat_seqs.len()]
                }
            }
            SeqPick::Raw(s) => *s,
        }
    }

    fn advance(&mut self, step: &Step) {
        let dt = match step {
            Step::Small(ms) => u64::from(*ms),
            Step::Medium(ms) => u64::from(*ms),
            Step::PastGrace => self.grace_ms + 1,
        };
        self.now += dt;
    }

    fn message(&self, msg: &Msg) -> ClientMessage {
        match msg {
            Msg::Sample(i) => samples()[usize::from(*i) % samples().len()].clone(),
            Msg::Hello {
                protocol_version,
                token,
                last_seq,
                media_start,
            } => ClientMessage::Hello {
                protocol_version: *protocol_version,
                token: token.clone(),
                last_seq: *last_seq,
                media_start: *media_start,
            },
            Msg::ChatSend { to, text } => ClientMessage::ChatSend {
                to: to.target(),
                text: text.clone(),
            },
            Msg::ChatSendFill { to, ch, len } => ClientMessage::ChatSend {
                to: to.target(),
                text: std::iter::repeat_n(*ch, usize::from(*len)).collect(),
            },
            Msg::ChatDelete(pick) => ClientMessage::ChatDelete {
                seq: self.seq(pick),
            },
            Msg::ChatLock(locked) => ClientMessage::ChatLock { locked: *locked },
            Msg::HandRaise => ClientMessage::HandRaise,
            Msg::HandLower => ClientMessage::HandLower,
            Msg::HandLowerFor(who) => ClientMessage::HandLowerFor {
                participant_id: who.id(),
            },
            Msg::HandLowerAll => ClientMessage::HandLowerAll,
            Msg::CallOn(who) => ClientMessage::CallOn {
                participant_id: who.as_ref().map(Who::id),
            },
            Msg::AllowSpeak(who) => ClientMessage::AllowSpeak {
                participant_id: who.id(),
            },
            Msg::RevokeSpeak(who) => ClientMessage::RevokeSpeak {
                participant_id: who.id(),
            },
            Msg::Mute(who) => ClientMessage::Mute {
                participant_id: who.id(),
            },
            Msg::Remove(who, reason) => ClientMessage::Remove {
                participant_id: who.id(),
                reason: reason.clone(),
            },
            Msg::StageGrant(who) => ClientMessage::StageGrant {
                participant_id: who.id(),
            },
            Msg::StageRevoke => ClientMessage::StageRevoke,
            Msg::ClassStart => ClientMessage::ClassStart,
            Msg::ClassEnd => ClientMessage::ClassEnd,
            Msg::RecordingStart => ClientMessage::RecordingStart,
            Msg::RecordingStop => ClientMessage::RecordingStop,
            Msg::Admit(who) => ClientMessage::Admit {
                participant_id: who.id(),
            },
            Msg::React(i) => ClientMessage::React {
                reaction: Reaction::ALL[usize::from(*i) % Reaction::ALL.len()],
            },
            Msg::SetMedia {
                mic,
                camera,
                screen,
            } => ClientMessage::SetMedia {
                media: MediaState {
                    mic: *mic,
                    camera: *camera,
                    screen: *screen,
                },
            },
            Msg::Leave => ClientMessage::Leave,
            Msg::MuteAll => ClientMessage::MuteAll,
            Msg::SpeakAll(allowed) => ClientMessage::SpeakAll { allowed: *allowed },
            Msg::SetMode(seminar) => ClientMessage::SetMode {
                mode: if *seminar {
                    ClassMode::Seminar
                } else {
                    ClassMode::Lecture
                },
            },
            Msg::CameraRequest(who) => ClientMessage::CameraRequest {
                participant_id: who.id(),
            },
            Msg::CameraAllow(who) => ClientMessage::CameraAllow {
                participant_id: who.id(),
            },
            Msg::CameraStop(who) => ClientMessage::CameraStop {
                participant_id: who.id(),
            },
            Msg::AttendanceGet => ClientMessage::AttendanceGet,
            Msg::PollStart {
                question,
                options,
                multiple,
                anonymous,
            } => ClientMessage::PollStart {
                question: question.clone(),
                options: options.clone(),
                multiple: *multiple,
                anonymous: *anonymous,
            },
            Msg::PollAnswer { back, choices } => ClientMessage::PollAnswer {
                poll_id: self.recent_seq(*back),
                choices: choices.clone(),
            },
            Msg::PollEnd(back) => ClientMessage::PollEnd {
                poll_id: self.recent_seq(*back),
            },
            Msg::PollShare(back) => ClientMessage::PollShare {
                poll_id: self.recent_seq(*back),
            },
        }
    }

    /// A seq at most `back` before the room's current one (poll ids are seqs).
    fn recent_seq(&self, back: u8) -> u64 {
        self.room.seq().saturating_sub(u64::from(back))
    }

    fn request(&mut self, conn: ConnId, request_id: Option<RequestId>, message: ClientMessage) {
        let live = self.conn_opt(conn).is_some_and(Conn::live);
        let outputs = self.input(Input::Request {
            conn,
            request_id,
            message,
        });
        if !live {
            assert!(
                outputs.is_empty(),
                "a request on a connection the room does not know produced {outputs:?}"
            );
            return;
        }
        if let Some(rid) = request_id {
            let replies = outputs
                .iter()
                .filter(|o| match o {
                    Output::Send { to, message, .. } => {
                        to.as_slice() == [conn]
                            && match message {
                                ServerMessage::Ack { request_id, .. } => *request_id == rid,
                                ServerMessage::Error { request_id, .. }
                                | ServerMessage::Attendance { request_id, .. } => {
                                    *request_id == Some(rid)
                                }
                                _ => false,
                            }
                    }
                    _ => false,
                })
                .count();
            assert_eq!(
                replies, 1,
                "request {rid} got {replies} replies: {outputs:?}"
            );
        }
    }

    /// Feeds one input, drains every output and checks it.
    fn input(&mut self, input: Input) -> Vec<Output> {
        if let Input::Disconnected { conn } = &input
            && let Some(index) = conn.0.checked_sub(1).and_then(|i| usize::try_from(i).ok())
            && let Some(c) = self.conns.get_mut(index)
        {
            c.gone = true;
        }
        let was_tick = matches!(input, Input::Tick);
        self.room.handle(self.now, input);
        let mut outputs = Vec::new();
        while let Some(output) = self.room.poll_output() {
            outputs.push(output);
        }
        self.check_outputs(&outputs);
        self.check_state(was_tick);
        outputs
    }

    fn check_outputs(&mut self, outputs: &[Output]) {
        let room_seq = self.room.seq();
        let mut persisted: HashSet<Seq> = HashSet::new();
        for output in outputs {
            match output {
                Output::Persist(PersistRecord::Chat(m)) => {
                    persisted.insert(m.seq);
                    self.chat_seqs.push(m.seq);
                }
                Output::Persist(_) | Output::Media(_) => {}
                Output::Recording(_) => {}
                // Only while recording, and only copies of what the class saw.
                Output::RecordEvent(message) => {
                    assert!(
                        self.room.is_recording()
                            || matches!(
                                message,
                                ServerMessage::Event {
                                    event: lectern_proto::RoomEvent::RecordingStopped { .. },
                                    ..
                                }
                            ),
                        "logged while not recording: {message:?}"
                    );
                }
                Output::Welcomed { conn, .. } => {
                    let c = self.conn(*conn);
                    assert!(
                        c.welcomed && !c.gone,
                        "{conn:?} marked welcomed out of turn"
                    );
                }
                Output::Close { conn, .. } => {
                    let c = self.conn(*conn);
                    assert!(!c.gone, "{conn:?} closed after it was closed or gone");
                    c.gone = true;
                }
                Output::Send {
                    to,
                    persist_seq,
                    message,
                } => {
                    assert!(!to.is_empty(), "a send to nobody: {message:?}");
                    let unique: HashSet<&ConnId> = to.iter().collect();
                    assert_eq!(unique.len(), to.len(), "duplicate recipients {to:?}");
                    if let Some(s) = persist_seq {
                        assert!(
                            persisted.contains(s),
                            "send tagged with chat {s} before its persist: {message:?}"
                        );
                    }
                    for conn in to {
                        let c = self.conn(*conn);
                        assert!(!c.gone, "sent to {conn:?} after it was closed: {message:?}");
                        let first = !c.contacted;
                        c.contacted = true;
                        if !c.welcomed {
                            let ok = match message {
                                ServerMessage::Welcome { .. } => true,
                                ServerMessage::Error { .. } => first,
                                _ => false,
                            };
                            assert!(ok, "{conn:?} got {message:?} before its welcome");
                        }
                    }
                    self.check_message(to, message, room_seq);
                }
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            assert!(c.replaying.is_none(), "replay to conn {} left open", i + 1);
        }
    }

    fn check_message(&mut self, to: &[ConnId], message: &ServerMessage, room_seq: Seq) {
        match message {
            ServerMessage::Welcome { snapshot, .. } => {
                assert_eq!(to.len(), 1, "a welcome to several connections");
                let c = self.conn(to[0]);
                assert!(!c.welcomed, "{:?} welcomed twice", to[0]);
                c.welcomed = true;
                match snapshot {
                    Some(s) => {
                        assert_eq!(s.seq, room_seq, "welcome snapshot is not current");
                        check_snapshot(s);
                        c.last_seen = Some(s.seq);
                    }
                    None => {
                        let since = c.joined_with.expect("a replay only for a last_seq");
                        c.last_seen = Some(since);
                        c.replaying = Some(0);
                    }
                }
            }
            ServerMessage::ReplayDone { seq, replayed } => {
                assert_eq!(to.len(), 1);
                let c = self.conn(to[0]);
                let Some(count) = c.replaying.take() else {
                    panic!("replay_done outside a replay");
                };
                assert_eq!(*replayed, count, "replay_done miscounts");
                assert_eq!(*seq, room_seq, "replay_done is not current");
                assert!(c.last_seen.is_none_or(|last| *seq >= last));
                c.last_seen = Some(*seq);
            }
            ServerMessage::Snapshot { snapshot } => {
                check_snapshot(snapshot);
                assert_eq!(snapshot.seq, room_seq, "snapshot is not current");
                for conn in to {
                    let c = self.conn(*conn);
                    assert!(c.last_seen.is_none_or(|last| snapshot.seq >= last));
                    c.last_seen = Some(snapshot.seq);
                }
            }
            ServerMessage::Event { seq, .. } => {
                assert!(*seq <= room_seq, "event {seq} beyond room seq {room_seq}");
                let replay = to.len() == 1 && self.conn(to[0]).replaying.is_some();
                if replay {
                    let c = self.conn(to[0]);
                    c.show(*seq, "replayed event");
                    c.replaying = c.replaying.map(|n| n + 1);
                } else {
                    if let Some(last) = self.last_live_seq {
                        assert!(*seq > last, "live event seq {seq} after {last}");
                    }
                    self.last_live_seq = Some(*seq);
                    for conn in to {
                        self.conn(*conn).show(*seq, "event");
                    }
                }
            }
            ServerMessage::Ack { seq: Some(seq), .. } => {
                assert!(*seq <= room_seq, "ack for seq {seq} beyond {room_seq}");
            }
            ServerMessage::ActiveSpeaker { .. } => {
                for conn in to {
                    let in_lobby = self
                        .room
                        .participant_for_conn(*conn)
                        .and_then(|id| self.room.participant(id))
                        .is_some_and(|p| p.in_lobby);
                    assert!(!in_lobby, "active_speaker sent to {conn:?} in the lobby");
                }
            }
            _ => {}
        }
    }

    fn check_state(&self, was_tick: bool) {
        let room = &self.room;
        if let Some(last) = self.last_live_seq {
            assert!(room.seq() >= last);
        }
        let queue = room.hand_queue();
        let unique: HashSet<&ParticipantId> = queue.iter().collect();
        assert_eq!(unique.len(), queue.len(), "duplicate hand in {queue:?}");
        let entries: Vec<ParticipantId> = room
            .hand_entries()
            .into_iter()
            .map(|e: HandEntry| e.participant_id)
            .collect();
        assert_eq!(entries, queue, "hand_entries and hand_queue disagree");
        for id in &queue {
            let p = room.participant(id);
            assert!(
                p.as_ref().is_some_and(|p| !p.in_lobby),
                "{id} has a hand up but is {p:?}"
            );
        }
        if let Some(presenter) = room.presenter() {
            let p = room.participant(presenter);
            assert!(
                p.as_ref()
                    .is_some_and(|p| !p.role.is_staff() && p.presenter && !p.in_lobby),
                "presenter {presenter} is {p:?}"
            );
        }
        assert!(room.participant_count() <= self.max_participants);
        let roster = room.roster();
        assert_eq!(roster.len(), room.participant_count());
        let live = self.conns.iter().filter(|c| c.live()).count();
        assert_eq!(
            room.connection_count(),
            live,
            "the room has {} connections, the driver believes {live} open",
            room.connection_count()
        );
        let connected = roster.iter().filter(|p| p.connected).count();
        assert_eq!(connected, room.connection_count());
        let in_grace = roster.len() - connected;
        assert_eq!(
            room.poll_timeout().is_some(),
            in_grace > 0,
            "poll_timeout vs grace"
        );
        if was_tick && let Some(deadline) = room.poll_timeout() {
            assert!(deadline > self.now, "a due deadline survived a tick");
        }
        for p in &roster {
            let snapshot = room
                .snapshot_for(&p.id)
                .expect("a snapshot for someone present");
            check_snapshot(&snapshot);
        }
    }
}

fn check_snapshot(s: &Snapshot) {
    let ids: HashSet<&ParticipantId> = s.hand_queue.iter().map(|h| &h.participant_id).collect();
    assert_eq!(ids.len(), s.hand_queue.len(), "duplicate hand in snapshot");
    let roster: HashSet<&ParticipantId> = s.roster.iter().map(|p| &p.id).collect();
    assert_eq!(
        roster.len(),
        s.roster.len(),
        "duplicate participant in snapshot"
    );
    assert!(
        s.chat.windows(2).all(|w| w[0].seq < w[1].seq),
        "snapshot chat out of order"
    );
    assert!(
        s.chat.iter().all(|m| m.seq <= s.seq),
        "snapshot chat beyond its seq"
    );
}

fn run(scenario: Scenario) {
    let cfg = &scenario.config;
    let config = RoomConfig {
        auto_start: cfg.auto_start,
        max_participants: usize::from(cfg.max_participants % 8),
        max_chat_chars: usize::from(cfg.max_chat_chars % 40),
        snapshot_chat_len: usize::from(cfg.snapshot_chat_len % 6),
        replay_len: usize::from(cfg.replay_len % 12),
        grace_ms: u64::from(cfg.grace_ms),
        mode: if cfg.seminar {
            ClassMode::Seminar
        } else {
            ClassMode::Lecture
        },
        late_after_ms: u64::from(cfg.late_after_ms),
        ..RoomConfig::new(RoomId::new("fuzz-room"), "Fuzzing 101")
    };
    let last_seq = u64::from(scenario.init.last_seq);
    let mut seen = HashSet::new();
    let recent_chat: Vec<ChatMessage> = scenario
        .init
        .recent_chat
        .iter()
        .take(8)
        .map(|c| ChatMessage {
            seq: last_seq.saturating_sub(u64::from(c.back)),
            from: c.who.id(),
            from_name: "Stored".into(),
            from_role: c.role.role(),
            to: c.to.target(),
            text: c.text.clone(),
            sent_at: BASE_TIME,
        })
        .filter(|m| m.seq > 0 && seen.insert(m.seq))
        .collect();
    let init = RoomInit {
        last_seq,
        recent_chat,
        chat_locked: scenario.init.chat_locked,
        ..RoomInit::default()
    };
    let now = BASE_TIME + u64::from(scenario.start);
    let mut h = Harness {
        grace_ms: config.grace_ms,
        max_participants: config.max_participants,
        room: Room::new(config, init, now),
        now,
        conns: Vec::new(),
        last_live_seq: None,
        chat_seqs: Vec::new(),
    };
    assert_eq!(h.room.seq(), last_seq);
    // A new room talks to nobody (nobody is connected yet); it may only ask to store what it
    // is (an auto-started class's state, for a restore).
    while let Some(output) = h.room.poll_output() {
        assert!(
            matches!(output, Output::Persist(_)),
            "a new room produced {output:?}"
        );
    }

    for op in scenario.ops.iter().take(200) {
        match op {
            Op::Join {
                who,
                role,
                name,
                last_seq,
            } => {
                let since = last_seq.as_ref().map(|pick| h.seq(pick));
                h.conns.push(Conn {
                    joined_with: since,
                    ..Conn::default()
                });
                let conn = Harness::conn_id(h.conns.len() - 1);
                let id = who.id();
                let identity = Identity {
                    name: name.clone().unwrap_or_else(|| id.as_str().to_owned()),
                    id,
                    role: role.role(),
                };
                h.input(Input::Join {
                    conn,
                    identity,
                    last_seq: since,
                });
                let c = h.conn(conn);
                assert!(
                    c.welcomed || c.gone,
                    "a join was neither welcomed nor refused"
                );
            }
            Op::Request {
                conn,
                request_id,
                message,
            } => {
                let conn = h.pick_conn(*conn);
                let message = h.message(message);
                h.request(conn, request_id.map(u64::from), message);
            }
            Op::Frame { conn, frame } => {
                let conn = h.pick_conn(*conn);
                if let Ok(frame) = decode_client(&frame.text()) {
                    h.request(conn, frame.request_id, frame.message);
                }
            }
            Op::Disconnect { conn } => {
                let conn = h.pick_conn(*conn);
                h.input(Input::Disconnected { conn });
            }
            Op::Tick(step) => {
                h.advance(step);
                h.input(Input::Tick);
            }
            Op::Wait(step) => h.advance(step),
            Op::PersistFailed(pick) => {
                let seq = h.seq(pick);
                h.input(Input::PersistFailed { seq });
            }
            Op::Speaker(who) => {
                let named = who.as_ref().map(Who::id);
                h.input(Input::ActiveSpeaker {
                    participant_id: named.clone(),
                });
                if named
                    .as_ref()
                    .is_none_or(|id| h.room.participant(id).is_some())
                {
                    assert_eq!(h.room.active_speaker(), named.as_ref());
                }
            }
        }
    }

    if scenario.shutdown {
        h.room.shutdown(h.now);
        while let Some(output) = h.room.poll_output() {
            match output {
                Output::Close { conn, .. } => {
                    let c = h.conn(conn);
                    assert!(c.live(), "shutdown closed {conn:?}, which was not open");
                    c.gone = true;
                }
                Output::Send { message, .. } => panic!("shutdown sent {message:?}"),
                Output::Persist(_)
                | Output::Media(_)
                | Output::Welcomed { .. }
                | Output::Recording(_)
                | Output::RecordEvent(_) => {}
            }
        }
        assert_eq!(h.room.connection_count(), 0);
        assert!(
            h.conns.iter().all(|c| !c.live()),
            "shutdown left connections open"
        );
    }
}

fuzz_target!(|scenario: Scenario| run(scenario));
