//! The room's records as the store's rows, and the stored state as the room takes it back.

use lectern_room::{AttendanceKind, PersistRecord, SavedHand, SavedParticipant, SavedRoom};
use lectern_store::StoreOp;

/// The stored class state as the room takes it back.
pub(super) fn saved_room(s: lectern_store::StoredRoomState) -> SavedRoom {
    SavedRoom {
        class_state: s.class_state,
        class_started_at: s.class_started_at,
        presenter: s.presenter,
        mode: s.mode,
        speak_all: s.speak_all,
        banned: s.banned,
        end_warned: s.end_warned,
    }
}

pub(super) fn saved_participant(p: lectern_store::StoredParticipantState) -> SavedParticipant {
    SavedParticipant {
        id: p.participant_id,
        name: p.name,
        role: p.role,
        in_lobby: p.in_lobby,
        hard_muted: p.hard_muted,
        speak_granted: p.speak_granted,
        camera_allowed: p.camera_allowed,
        hand: p
            .hand
            .map(|(raised_at, order)| SavedHand { raised_at, order }),
    }
}

pub(super) fn store_op(record: &PersistRecord) -> StoreOp {
    match record {
        PersistRecord::Chat(message) => StoreOp::Chat(message.clone()),
        PersistRecord::ChatDeleted { seq, by, at } => StoreOp::ChatDeleted {
            seq: *seq,
            by: by.clone(),
            at: *at,
        },
        PersistRecord::Attendance {
            participant_id,
            name,
            role,
            kind: AttendanceKind::Join,
            at,
        } => StoreOp::AttendanceJoin {
            participant_id: participant_id.clone(),
            name: name.clone(),
            role: *role,
            at: *at,
        },
        PersistRecord::Attendance {
            participant_id,
            kind: AttendanceKind::Leave,
            at,
            ..
        } => StoreOp::AttendanceLeave {
            participant_id: participant_id.clone(),
            at: *at,
        },
        PersistRecord::Moderation {
            seq,
            action,
            by,
            target,
            at,
        } => StoreOp::Moderation {
            seq: *seq,
            action: action.as_str().to_owned(),
            by: by.clone(),
            target: target.clone(),
            at: *at,
        },
        PersistRecord::ClassStarted { at } => StoreOp::ClassStarted { at: *at },
        PersistRecord::ClassEnded { at } => StoreOp::ClassEnded { at: *at },
        PersistRecord::PollStarted {
            poll,
            asked_by_name,
        } => StoreOp::PollStarted {
            poll: poll.clone(),
            asked_by_name: asked_by_name.clone(),
        },
        PersistRecord::PollAnswered {
            poll_id,
            voter,
            choices,
            at,
        } => StoreOp::PollAnswered {
            poll_id: *poll_id,
            voter: voter.clone(),
            choices: choices.clone(),
            at: *at,
        },
        PersistRecord::PollEnded { poll_id, at } => StoreOp::PollEnded {
            poll_id: *poll_id,
            at: *at,
        },
        PersistRecord::PollShared { poll_id, at } => StoreOp::PollShared {
            poll_id: *poll_id,
            at: *at,
        },
        PersistRecord::RoomState(s) => StoreOp::RoomState(lectern_store::StoredRoomState {
            class_state: s.class_state,
            class_started_at: s.class_started_at,
            presenter: s.presenter.clone(),
            mode: s.mode,
            speak_all: s.speak_all,
            banned: s.banned.clone(),
            end_warned: s.end_warned,
        }),
        PersistRecord::ParticipantState(p) => {
            StoreOp::ParticipantState(lectern_store::StoredParticipantState {
                participant_id: p.id.clone(),
                name: p.name.clone(),
                role: p.role,
                in_lobby: p.in_lobby,
                hard_muted: p.hard_muted,
                speak_granted: p.speak_granted,
                camera_allowed: p.camera_allowed,
                hand: p.hand.map(|h| (h.raised_at, h.order)),
            })
        }
        PersistRecord::ParticipantStateCleared { participant_id } => {
            StoreOp::ParticipantStateCleared {
                participant_id: participant_id.clone(),
            }
        }
    }
}
