//! Property tests: staff-only actions are always refused to students and observers, and
//! random traffic never panics, keeps event numbers increasing and keeps the hand queue sane.

use std::collections::HashSet;

use lectern_proto::{
    ChatTarget, ClassMode, ClassState, ClientMessage, ErrorCode, MediaState, ParticipantId,
    Reaction, Role, ServerMessage, samples,
};
use lectern_room::{ConnId, Input, Output, RoomConfig, RoomInit};
use proptest::prelude::*;

use crate::support::*;

fn staff_only_messages() -> Vec<ClientMessage> {
    let mut messages: Vec<ClientMessage> = samples::client_messages()
        .into_iter()
        .filter(lectern_room::is_staff_only)
        .collect();
    messages.push(ClientMessage::ChatSend {
        to: ChatTarget::Participant { id: pid("s-ada") },
        text: "psst".into(),
    });
    messages
}

proptest! {
    #[test]
    fn staff_only_actions_are_refused_to_students_and_observers(
        index in 0..29usize,
        observer in any::<bool>(),
        live in any::<bool>(),
        hands in any::<bool>(),
        request_id in proptest::option::of(any::<u64>()),
    ) {
        let messages = staff_only_messages();
        prop_assert_eq!(messages.len(), 29);
        let mut h = if live { H::live() } else { H::new() };
        h.join(1, "t-grace", Role::Instructor);
        h.join(2, "s-ada", Role::Student);
        h.join(3, "s-bob", Role::Student);
        let role = if observer { Role::Observer } else { Role::Student };
        h.join(4, "actor", role);
        if hands && live {
            h.req(2, ClientMessage::HandRaise);
        }
        h.chat(1, ChatTarget::Everyone, "to delete");
        let seq = h.room.seq();
        let before = h.room.snapshot_for(&pid("t-grace"));

        let outs = h.input(Input::Request { conn: c(4), request_id, message: messages[index].clone() });
        prop_assert_eq!(outs.len(), 1);
        prop_assert_eq!(errors(&outs), vec![(ErrorCode::NotPermitted, request_id, vec![c(4)])]);
        prop_assert_eq!(h.room.seq(), seq);
        prop_assert_eq!(h.room.snapshot_for(&pid("t-grace")), before);
    }
}

const IDS: [&str; 5] = ["p0", "p1", "p2", "p3", "p4"];

#[derive(Debug, Clone)]
enum Op {
    Join {
        conn: u64,
        who: usize,
        role: Role,
        back: Option<u64>,
    },
    Request {
        conn: u64,
        kind: u8,
        who: usize,
        flag: bool,
        request_id: Option<u64>,
    },
    Disconnect {
        conn: u64,
    },
    Tick {
        dt: u64,
    },
    PersistFailed {
        back: u64,
    },
    Wait {
        dt: u64,
    },
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Instructor),
        Just(Role::Ta),
        Just(Role::Student),
        Just(Role::Student),
        Just(Role::Observer)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..7u64, 0..IDS.len(), role(), proptest::option::of(0..12u64))
            .prop_map(|(conn, who, role, back)| Op::Join { conn, who, role, back }),
        10 => (1..8u64, 0..28u8, 0..IDS.len(), any::<bool>(), proptest::option::of(0..1_000u64))
            .prop_map(|(conn, kind, who, flag, request_id)| Op::Request { conn, kind, who, flag, request_id }),
        // Extra hand-queue traffic: raise, lower, lower for, call on (next or given).
        6 => (1..7u64, prop::sample::select(vec![5u8, 5, 6, 7, 9, 10]), 0..IDS.len(), any::<bool>())
            .prop_map(|(conn, kind, who, flag)| Op::Request { conn, kind, who, flag, request_id: Some(1) }),
        2 => (1..8u64).prop_map(|conn| Op::Disconnect { conn }),
        2 => (0..25_000u64).prop_map(|dt| Op::Tick { dt }),
        1 => (0..4u64).prop_map(|back| Op::PersistFailed { back }),
        1 => (0..3_000u64).prop_map(|dt| Op::Wait { dt }),
    ]
}

fn message(kind: u8, target: ParticipantId, flag: bool, seq: u64) -> ClientMessage {
    let text = if flag {
        "hello".to_owned()
    } else {
        "  ".to_owned()
    };
    match kind {
        0 => ClientMessage::ChatSend {
            to: ChatTarget::Everyone,
            text: if flag {
                text
            } else {
                "far too long for this room".into()
            },
        },
        1 => ClientMessage::ChatSend {
            to: ChatTarget::Staff,
            text,
        },
        2 => ClientMessage::ChatSend {
            to: ChatTarget::Participant { id: target },
            text,
        },
        3 => ClientMessage::ChatDelete {
            seq: seq.saturating_sub(u64::from(flag)),
        },
        4 => ClientMessage::ChatLock { locked: flag },
        5 => ClientMessage::HandRaise,
        6 => ClientMessage::HandLower,
        7 => ClientMessage::HandLowerFor {
            participant_id: target,
        },
        8 => ClientMessage::HandLowerAll,
        9 => ClientMessage::CallOn {
            participant_id: None,
        },
        10 => ClientMessage::CallOn {
            participant_id: Some(target),
        },
        11 => ClientMessage::AllowSpeak {
            participant_id: target,
        },
        12 => ClientMessage::RevokeSpeak {
            participant_id: target,
        },
        13 => ClientMessage::Mute {
            participant_id: target,
        },
        14 => ClientMessage::Remove {
            participant_id: target,
            reason: None,
        },
        15 => ClientMessage::StageGrant {
            participant_id: target,
        },
        16 => ClientMessage::StageRevoke,
        17 => ClientMessage::ClassStart,
        18 => ClientMessage::ClassEnd,
        19 => ClientMessage::Admit {
            participant_id: target,
        },
        20 => ClientMessage::React {
            reaction: if flag {
                Reaction::Heart
            } else {
                Reaction::Confused
            },
        },
        21 => ClientMessage::SetMedia {
            media: MediaState {
                mic: flag,
                camera: !flag,
                screen: false,
            },
        },
        22 => ClientMessage::Leave,
        23 => ClientMessage::MuteAll,
        24 => ClientMessage::SpeakAll { allowed: flag },
        25 => ClientMessage::SetMode {
            mode: if flag {
                ClassMode::Seminar
            } else {
                ClassMode::Lecture
            },
        },
        26 => ClientMessage::CameraAllow {
            participant_id: target,
        },
        _ => ClientMessage::CameraStop {
            participant_id: target,
        },
    }
}

/// Checks the outputs of one input against what was seen before.
#[derive(Debug, Default)]
struct Checker {
    last_live_seq: Option<u64>,
    in_replay: bool,
}

impl Checker {
    fn check(&mut self, outs: &[Output], room_seq: u64) -> Result<(), TestCaseError> {
        for o in outs {
            let Output::Send { message, to, .. } = o else {
                continue;
            };
            match message {
                ServerMessage::Welcome { snapshot, .. } => {
                    if let Some(s) = snapshot {
                        prop_assert_eq!(s.seq, room_seq);
                    }
                    self.in_replay = snapshot.is_none();
                }
                ServerMessage::ReplayDone { seq, .. } => {
                    prop_assert!(self.in_replay);
                    prop_assert_eq!(*seq, room_seq);
                    self.in_replay = false;
                }
                ServerMessage::Event { seq, .. } if self.in_replay => {
                    prop_assert_eq!(to.len(), 1);
                    prop_assert!(*seq <= room_seq);
                }
                ServerMessage::Event { seq, .. } => {
                    if let Some(last) = self.last_live_seq {
                        prop_assert!(*seq > last, "event seq {} after {}", seq, last);
                    }
                    prop_assert!(*seq <= room_seq);
                    prop_assert!(!to.is_empty());
                    let unique: HashSet<&ConnId> = to.iter().collect();
                    prop_assert_eq!(unique.len(), to.len());
                    self.last_live_seq = Some(*seq);
                }
                ServerMessage::Ack { seq: Some(seq), .. } => prop_assert!(*seq <= room_seq),
                _ => {}
            }
        }
        prop_assert!(!self.in_replay, "a replay was left open");
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_keeps_the_room_consistent(
        auto_start in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let config = RoomConfig {
            auto_start,
            max_participants: 4,
            max_chat_chars: 10,
            snapshot_chat_len: 3,
            replay_len: 8,
            grace_ms: 10_000,
            ..config()
        };
        let mut h = H::with(config.clone(), RoomInit { last_seq: 7, ..RoomInit::default() });
        let mut checker = Checker::default();
        let mut stored = Stored::default();
        for op in ops {
            let seq = h.room.seq();
            let was_tick = matches!(op, Op::Tick { .. });
            let outs = match op {
                Op::Join { conn, who, role, back } => h.input(Input::Join {
                    conn: c(conn),
                    identity: identity(IDS[who], role),
                    last_seq: back.map(|b| seq.saturating_sub(b)),
                }),
                Op::Request { conn, kind, who, flag, request_id } => h.input(Input::Request {
                    conn: c(conn),
                    request_id,
                    message: message(kind, pid(IDS[who]), flag, seq),
                }),
                Op::Disconnect { conn } => h.disconnect(conn),
                Op::Tick { dt } => {
                    h.advance(dt);
                    h.tick()
                }
                Op::PersistFailed { back } => h.input(Input::PersistFailed { seq: seq.saturating_sub(back) }),
                Op::Wait { dt } => {
                    h.advance(dt);
                    Vec::new()
                }
            };
            checker.check(&outs, h.room.seq())?;
            stored.apply(&outs);

            let queue = h.room.hand_queue();
            let unique: HashSet<&ParticipantId> = queue.iter().collect();
            prop_assert_eq!(unique.len(), queue.len(), "duplicate hand in {:?}", queue);
            for id in &queue {
                let p = h.room.participant(id);
                prop_assert!(p.as_ref().is_some_and(|p| !p.in_lobby), "{} in queue but {:?}", id, p);
            }
            if let Some(presenter) = h.room.presenter() {
                let p = h.room.participant(presenter);
                prop_assert!(p.is_some_and(|p| p.role == Role::Student && p.presenter && !p.in_lobby));
            }
            // The lobby and observers never get media (observers are never given a voice).
            for p in h.room.roster() {
                if p.in_lobby || p.role == Role::Observer {
                    prop_assert!(!p.can_speak, "{:?}", p);
                    prop_assert_eq!(h.room.media_permissions(&p.id), Some((false, false)));
                }
            }
            prop_assert!(h.room.participant_count() <= 4);
            prop_assert!(h.room.connection_count() <= h.room.participant_count());
            let disconnected = h.room.roster().iter().filter(|p| !p.connected).count();
            prop_assert_eq!(h.room.poll_timeout().is_some(), disconnected > 0);
            if let Some(deadline) = h.room.poll_timeout() {
                prop_assert!(deadline > h.now || !was_tick, "a due deadline survived a tick");
            }
        }
        stored.apply(&h.drain());
        check_restore(&h, &stored, config)?;
    }
}

/// A room recreated from the stored records alone has the same class state, stage, hands,
/// mode and "everyone may speak", and each participant it brings back (disconnected) has the
/// grants, mutes, camera and lobby place they had; those it leaves out had nothing to keep.
fn check_restore(h: &H, stored: &Stored, config: RoomConfig) -> Result<(), TestCaseError> {
    let restored = H::at(config, stored.init(h.room.seq()), h.now);
    let (before, after) = (&h.room, &restored.room);
    prop_assert_eq!(after.class_state(), before.class_state());
    prop_assert_eq!(after.class_started_at(), before.class_started_at());
    prop_assert_eq!(after.presenter(), before.presenter());
    prop_assert_eq!(after.hand_entries(), before.hand_entries());
    prop_assert_eq!(after.mode(), before.mode());
    prop_assert_eq!(after.speak_all(), before.speak_all());
    for p in before.roster() {
        match after.participant(&p.id) {
            Some(q) => {
                prop_assert!(!q.connected);
                prop_assert_eq!(
                    (
                        q.in_lobby,
                        q.hard_muted,
                        q.speak_granted,
                        q.camera_allowed,
                        q.can_speak
                    ),
                    (
                        p.in_lobby,
                        p.hard_muted,
                        p.speak_granted,
                        p.camera_allowed,
                        p.can_speak
                    ),
                    "{}",
                    p.id
                );
            }
            None => {
                prop_assert!(!p.hard_muted && !p.speak_granted && !p.presenter, "{:?}", p);
                prop_assert!(!before.hand_queue().contains(&p.id));
                let waits = matches!(p.role, Role::Student | Role::Observer)
                    && before.class_state() != ClassState::Live;
                prop_assert_eq!(p.in_lobby, waits, "{:?}", p);
                let camera = before.mode() == ClassMode::Seminar && p.role == Role::Student;
                prop_assert_eq!(p.camera_allowed, camera, "{:?}", p);
            }
        }
    }
    for p in after.roster() {
        prop_assert!(
            before.participant(&p.id).is_some(),
            "{} came back from nowhere",
            p.id
        );
    }
    Ok(())
}
