//! The room's records as the store's operations.

use lectern_room::{AttendanceKind, PersistRecord};
use lectern_store::StoreOp;

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
        PersistRecord::RoomState(s) => StoreOp::RoomState(s.clone()),
        PersistRecord::ParticipantState(p) => StoreOp::ParticipantState(p.clone()),
        PersistRecord::ParticipantStateCleared { participant_id } => {
            StoreOp::ParticipantStateCleared {
                participant_id: participant_id.clone(),
            }
        }
    }
}
