//! A harness around `Room` with a clock, and helpers to pick outputs apart.

#![allow(dead_code)]

use lectern_proto::{
    ChatTarget, ClientMessage, CloseReason, ErrorCode, ParticipantId, RequestId, Role, RoomEvent,
    RoomId, Seq, ServerMessage, Snapshot,
};
use std::collections::BTreeMap;

use lectern_room::{
    ConnId, Identity, Input, MediaIntent, Output, PersistRecord, Room, RoomConfig, RoomInit,
    SavedParticipant, SavedRoom,
};

pub const T0: u64 = 1_790_000_000_000;

pub fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s)
}

pub fn c(n: u64) -> ConnId {
    ConnId(n)
}

pub fn config() -> RoomConfig {
    RoomConfig::new(RoomId::new("algebra-101"), "Algebra 101")
}

pub fn identity(id: &str, role: Role) -> Identity {
    Identity {
        id: pid(id),
        name: format!("Name of {id}"),
        role,
    }
}

/// A room plus a clock and a request-id counter.
pub struct H {
    pub room: Room,
    pub now: u64,
    next_request: RequestId,
}

impl H {
    /// Class not started.
    pub fn new() -> H {
        H::with(config(), RoomInit::default())
    }

    /// Class live from the start.
    pub fn live() -> H {
        H::with(
            RoomConfig {
                auto_start: true,
                ..config()
            },
            RoomInit::default(),
        )
    }

    pub fn with(config: RoomConfig, init: RoomInit) -> H {
        H::at(config, init, T0)
    }

    /// A room created at `now`.
    pub fn at(config: RoomConfig, init: RoomInit, now: u64) -> H {
        H {
            room: Room::new(config, init, now),
            now,
            next_request: 1,
        }
    }

    pub fn input(&mut self, input: Input) -> Vec<Output> {
        self.room.handle(self.now, input);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.room.poll_output()).collect()
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    pub fn join(&mut self, conn: u64, id: &str, role: Role) -> Vec<Output> {
        self.join_with(conn, id, role, None)
    }

    pub fn join_with(
        &mut self,
        conn: u64,
        id: &str,
        role: Role,
        last_seq: Option<Seq>,
    ) -> Vec<Output> {
        self.input(Input::Join {
            conn: c(conn),
            identity: identity(id, role),
            last_seq,
        })
    }

    /// A request with a fresh request id; the id is `last_request()`.
    pub fn req(&mut self, conn: u64, message: ClientMessage) -> Vec<Output> {
        let request_id = self.next_request;
        self.next_request += 1;
        self.input(Input::Request {
            conn: c(conn),
            request_id: Some(request_id),
            message,
        })
    }

    pub fn last_request(&self) -> RequestId {
        self.next_request - 1
    }

    pub fn chat(&mut self, conn: u64, to: ChatTarget, text: &str) -> Vec<Output> {
        self.req(
            conn,
            ClientMessage::ChatSend {
                to,
                text: text.into(),
            },
        )
    }

    pub fn disconnect(&mut self, conn: u64) -> Vec<Output> {
        self.input(Input::Disconnected { conn: c(conn) })
    }

    pub fn tick(&mut self) -> Vec<Output> {
        self.input(Input::Tick)
    }

    /// A live class with instructor `t` on conn 1 and students `s1`, `s2` on conns 2, 3.
    pub fn class() -> H {
        let mut h = H::live();
        h.join(1, "t", Role::Instructor);
        h.join(2, "s1", Role::Student);
        h.join(3, "s2", Role::Student);
        h
    }
}

/// Every sequenced event sent, with its recipients.
pub fn events(outs: &[Output]) -> Vec<(Seq, RoomEvent, Vec<ConnId>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::Event { seq, event, .. },
                ..
            } => Some((*seq, event.clone(), to.clone())),
            _ => None,
        })
        .collect()
}

/// The event kinds sent, in order (wire names).
pub fn kinds(outs: &[Output]) -> Vec<String> {
    events(outs)
        .into_iter()
        .map(|(_, e, _)| {
            serde_json::to_value(&e).expect("event serializes")["kind"]
                .as_str()
                .expect("kind")
                .to_owned()
        })
        .collect()
}

/// `Some(seq)` of the ack for `request_id`, `None` if not acked.
pub fn ack(outs: &[Output], request_id: RequestId) -> Option<Option<Seq>> {
    outs.iter().find_map(|o| match o {
        Output::Send {
            message: ServerMessage::Ack { request_id: r, seq },
            ..
        } if *r == request_id => Some(*seq),
        _ => None,
    })
}

/// The error codes sent, with their request ids and recipients.
pub fn errors(outs: &[Output]) -> Vec<(ErrorCode, Option<RequestId>, Vec<ConnId>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message:
                    ServerMessage::Error {
                        code, request_id, ..
                    },
                ..
            } => Some((*code, *request_id, to.clone())),
            _ => None,
        })
        .collect()
}

/// The single error code in `outs`, asserting there is nothing else.
pub fn only_error(outs: &[Output]) -> ErrorCode {
    assert_eq!(outs.len(), 1, "expected only an error, got {outs:#?}");
    errors(outs)[0].0
}

/// Every message delivered to `conn`, in order.
pub fn to_conn(outs: &[Output], conn: u64) -> Vec<ServerMessage> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, message, .. } if to.contains(&c(conn)) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The sequenced events delivered to `conn`.
pub fn events_to(outs: &[Output], conn: u64) -> Vec<(Seq, RoomEvent)> {
    to_conn(outs, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Event { seq, event, .. } => Some((seq, event)),
            _ => None,
        })
        .collect()
}

/// The records to store, without the ones that keep the state for a restore (see
/// [`saved_records`]).
pub fn persists(outs: &[Output]) -> Vec<PersistRecord> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist(r) if !is_saved_state(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// The records that keep the room's state for a restore (`RoomState`, `ParticipantState`,
/// `ParticipantStateCleared`).
pub fn saved_records(outs: &[Output]) -> Vec<PersistRecord> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist(r) if is_saved_state(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub fn is_saved_state(record: &PersistRecord) -> bool {
    matches!(
        record,
        PersistRecord::RoomState(_)
            | PersistRecord::ParticipantState(_)
            | PersistRecord::ParticipantStateCleared { .. }
    )
}

/// The outputs without the records that keep the state for a restore.
pub fn without_saved(outs: Vec<Output>) -> Vec<Output> {
    outs.into_iter()
        .filter(|o| !matches!(o, Output::Persist(r) if is_saved_state(r)))
        .collect()
}

pub fn media(outs: &[Output]) -> Vec<MediaIntent> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Media(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub fn closes(outs: &[Output]) -> Vec<(ConnId, CloseReason)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Close { conn, reason } => Some((*conn, *reason)),
            _ => None,
        })
        .collect()
}

/// The snapshot in a welcome or snapshot message delivered to `conn`.
pub fn snapshot_to(outs: &[Output], conn: u64) -> Option<Snapshot> {
    to_conn(outs, conn).into_iter().find_map(|m| match m {
        ServerMessage::Welcome { snapshot, .. } => snapshot,
        ServerMessage::Snapshot { snapshot } => Some(snapshot),
        _ => None,
    })
}

pub fn publish(id: &str, audio: bool, video: bool) -> MediaIntent {
    MediaIntent::Publish {
        participant_id: pid(id),
        audio,
        video,
    }
}

pub fn stop(id: &str) -> MediaIntent {
    MediaIntent::Stop {
        participant_id: pid(id),
    }
}

/// What a store would hold after applying every saved-state record, as the server's store does
/// (one row for the room, one per participant, upserted or deleted).
#[derive(Debug, Default)]
pub struct Stored {
    pub room: Option<SavedRoom>,
    pub participants: BTreeMap<ParticipantId, SavedParticipant>,
}

impl Stored {
    pub fn apply(&mut self, outs: &[Output]) {
        for record in saved_records(outs) {
            match record {
                PersistRecord::RoomState(room) => self.room = Some(room),
                PersistRecord::ParticipantState(p) => {
                    self.participants.insert(p.id.clone(), p);
                }
                PersistRecord::ParticipantStateCleared { participant_id } => {
                    self.participants.remove(&participant_id);
                }
                other => unreachable!("{other:?}"),
            }
        }
    }

    pub fn init(&self, last_seq: u64) -> RoomInit {
        RoomInit {
            last_seq,
            state: self.room.clone(),
            participants: self.participants.values().cloned().collect(),
            ..RoomInit::default()
        }
    }
}
