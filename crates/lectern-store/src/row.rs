//! Rows read the same way on both backends. The SQL of `sqlite.rs` and `postgres/` differs in
//! dialect only; the columns and what they mean do not, so each row becomes the store's types
//! once, here, through [`Columns`], which both backends' rows implement.

use lectern_proto::{ChatMessage, ChatTarget, ParticipantId, Role, RoomId};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::{
    AttendanceInterval, ClassSession, ModerationEntry, StoreError, StoredChat, StoredPoll,
    StoredPollAnswer, from_db,
};

/// The columns of the chat queries, in the order [`chat`] reads them (both backends).
pub(crate) const CHAT_COLUMNS: &str = "seq, sender_id, sender_name, sender_role, target_kind, \
                                       target_id, body, sent_at, deleted_at, deleted_by";

/// A row of either backend, read by column name with the types the schema uses: text, 64-bit
/// integers (times, sequence numbers, ids), reals (scores) and flags (BOOLEAN in PostgreSQL, 0/1
/// in SQLite).
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn real(&self, column: &str) -> Result<f64, StoreError>;
    fn opt_real(&self, column: &str) -> Result<Option<f64>, StoreError>;

    /// A column that is never negative (times, sequence numbers); a negative one is corrupt.
    fn unsigned(&self, column: &'static str) -> Result<u64, StoreError> {
        from_db(column, self.int(column)?)
    }

    fn opt_unsigned(&self, column: &'static str) -> Result<Option<u64>, StoreError> {
        self.opt_int(column)?
            .map(|value| from_db(column, value))
            .transpose()
    }

    fn participant(&self, column: &str) -> Result<ParticipantId, StoreError> {
        Ok(ParticipantId(self.text(column)?))
    }

    fn opt_participant(&self, column: &str) -> Result<Option<ParticipantId>, StoreError> {
        Ok(self.opt_text(column)?.map(ParticipantId))
    }

    fn role(&self, column: &str) -> Result<Role, StoreError> {
        role_from_db(&self.text(column)?)
    }

    /// A column holding JSON (poll options, choices), decoded into `T`.
    fn json<T: serde::de::DeserializeOwned>(&self, column: &'static str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(column)?)
            .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn real(&self, column: &str) -> Result<f64, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn opt_real(&self, column: &str) -> Result<Option<f64>, StoreError> {
                Ok(self.try_get(column)?)
            }
        }
    };
}

columns_for!(SqliteRow);
columns_for!(PgRow);

pub(crate) fn role_from_db(role: &str) -> Result<Role, StoreError> {
    Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))
}

/// A `chat_messages` row ([`CHAT_COLUMNS`]).
pub(crate) fn chat(row: &impl Columns) -> Result<StoredChat, StoreError> {
    let seq = row.unsigned("seq")?;
    let to = match (
        row.text("target_kind")?.as_str(),
        row.opt_text("target_id")?,
    ) {
        ("everyone", None) => ChatTarget::Everyone,
        ("staff", None) => ChatTarget::Staff,
        ("participant", Some(id)) => ChatTarget::Participant {
            id: ParticipantId(id),
        },
        (kind, id) => {
            return Err(StoreError::Corrupt(format!(
                "chat message {seq}: target kind {kind:?} with target id {id:?}"
            )));
        }
    };
    Ok(StoredChat {
        message: ChatMessage {
            seq,
            from: row.participant("sender_id")?,
            from_name: row.text("sender_name")?,
            from_role: row.role("sender_role")?,
            to,
            text: row.text("body")?,
            sent_at: row.unsigned("sent_at")?,
        },
        deleted_at: row.opt_unsigned("deleted_at")?,
        deleted_by: row.opt_participant("deleted_by")?,
    })
}

/// An `attendance` row: participant_id, name, role, joined_at, left_at.
pub(crate) fn attendance(row: &impl Columns) -> Result<AttendanceInterval, StoreError> {
    Ok(AttendanceInterval {
        participant_id: row.participant("participant_id")?,
        name: row.text("name")?,
        role: row.role("role")?,
        joined_at: row.unsigned("joined_at")?,
        left_at: row.opt_unsigned("left_at")?,
    })
}

/// An `attendance` row with its `room_id`.
pub(crate) fn attendance_in_room(
    row: &impl Columns,
) -> Result<(RoomId, AttendanceInterval), StoreError> {
    Ok((RoomId::new(row.text("room_id")?), attendance(row)?))
}

/// A `moderation_log` row: seq, action, actor_id, target_id, at.
pub(crate) fn moderation(row: &impl Columns) -> Result<ModerationEntry, StoreError> {
    Ok(ModerationEntry {
        seq: row.unsigned("seq")?,
        action: row.text("action")?,
        by: row.participant("actor_id")?,
        target: row.opt_participant("target_id")?,
        at: row.unsigned("at")?,
    })
}

/// A `class_sessions` row: id, started_at, ended_at.
pub(crate) fn class_session(row: &impl Columns) -> Result<ClassSession, StoreError> {
    Ok(ClassSession {
        id: row.int("id")?,
        started_at: row.unsigned("started_at")?,
        ended_at: row.opt_unsigned("ended_at")?,
    })
}

/// A room's polls (rows of `polls`, by poll id) with their answers (rows of `poll_answers`, by
/// poll id, then in the order given).
pub(crate) fn polls(
    polls: &[impl Columns],
    answers: &[impl Columns],
) -> Result<Vec<StoredPoll>, StoreError> {
    let mut out = Vec::with_capacity(polls.len());
    for row in polls {
        out.push(StoredPoll {
            poll: lectern_proto::Poll {
                poll_id: row.unsigned("poll_id")?,
                question: row.text("question")?,
                options: row.json("options")?,
                multiple: row.flag("multiple")?,
                anonymous: row.flag("anonymous")?,
                asked_by: row.participant("asked_by")?,
                started_at: row.unsigned("started_at")?,
            },
            asked_by_name: row.text("asked_by_name")?,
            ended_at: row.opt_unsigned("ended_at")?,
            shared_at: row.opt_unsigned("shared_at")?,
            answers: Vec::new(),
        });
    }
    for row in answers {
        let poll_id = row.unsigned("poll_id")?;
        let answer = StoredPollAnswer {
            voter: row
                .opt_participant("participant_id")?
                .zip(row.opt_text("name")?),
            choices: row.json("choices")?,
            at: row.opt_unsigned("answered_at")?,
        };
        if let Some(poll) = out.iter_mut().find(|p| p.poll.poll_id == poll_id) {
            poll.answers.push(answer);
        }
    }
    Ok(out)
}
