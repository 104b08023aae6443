//! What a room needs to be restored (another node, or after a crash): its class state and the
//! participants with something to restore (`migrations/0009_room_state.sql`). The room task
//! upserts them in its batches as they change ([`StoreOp::RoomState`],
//! [`StoreOp::ParticipantState`], ...) and reads them back with the rest of the room in
//! [`crate::Store::load_room`]. This file holds the SQLite statements and what both backends
//! share (the text forms of the columns); `postgres/room_state.rs` mirrors the statements.

use lectern_proto::{ClassMode, ClassState, ParticipantId, RoomId};
use sqlx::SqliteExecutor;
use sqlx::sqlite::SqliteConnection;

use crate::row::Columns;
use crate::{SavedHand, SavedParticipant, SavedRoom, StoreError, StoreOp, to_db};

pub(crate) const ROOM_COLUMNS: &str =
    "class_state, class_started_at, presenter_id, class_mode, speak_all, banned, end_warned";
pub(crate) const PARTICIPANT_COLUMNS: &str = "participant_id, name, role, in_lobby, hard_muted, \
     speak_granted, camera_allowed, hand_raised_at, hand_order";

/// One room-state op of a batch, on SQLite (other ops are not this file's: nothing happens).
pub(crate) async fn apply_sqlite(
    conn: &mut SqliteConnection,
    room: &RoomId,
    op: &StoreOp,
) -> Result<(), StoreError> {
    match op {
        StoreOp::RoomState(state) => {
            let row = RoomRow::from_state(state)?;
            sqlx::query(&format!(
                "INSERT INTO room_states (room_id, {ROOM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (room_id) DO UPDATE SET class_state = excluded.class_state, \
                 class_started_at = excluded.class_started_at, \
                 presenter_id = excluded.presenter_id, class_mode = excluded.class_mode, \
                 speak_all = excluded.speak_all, banned = excluded.banned, \
                 end_warned = excluded.end_warned"
            ))
            .bind(room.as_str())
            .bind(row.class_state)
            .bind(row.class_started_at)
            .bind(state.presenter.as_ref().map(ParticipantId::as_str))
            .bind(state.mode.as_str())
            .bind(state.speak_all)
            .bind(row.banned)
            .bind(state.end_warned)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::ParticipantState(p) => {
            let (raised_at, order) = hand_to_db(p)?;
            sqlx::query(&format!(
                "INSERT INTO participant_states (room_id, {PARTICIPANT_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (room_id, participant_id) DO UPDATE SET name = excluded.name, \
                 role = excluded.role, in_lobby = excluded.in_lobby, \
                 hard_muted = excluded.hard_muted, speak_granted = excluded.speak_granted, \
                 camera_allowed = excluded.camera_allowed, \
                 hand_raised_at = excluded.hand_raised_at, hand_order = excluded.hand_order"
            ))
            .bind(room.as_str())
            .bind(p.id.as_str())
            .bind(&p.name)
            .bind(p.role.as_str())
            .bind(p.in_lobby)
            .bind(p.hard_muted)
            .bind(p.speak_granted)
            .bind(p.camera_allowed)
            .bind(raised_at)
            .bind(order)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::ParticipantStateCleared { participant_id } => {
            sqlx::query("DELETE FROM participant_states WHERE room_id = ? AND participant_id = ?")
                .bind(room.as_str())
                .bind(participant_id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        StoreOp::RoomStateCleared => {
            for table in ["room_states", "participant_states"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE room_id = ?"))
                    .bind(room.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The stored state of `room`, on SQLite (inside the caller's read transaction).
pub(crate) async fn load_sqlite<'c, E>(
    conn: E,
    room: &RoomId,
) -> Result<Option<SavedRoom>, StoreError>
where
    E: SqliteExecutor<'c>,
{
    let row = sqlx::query(&format!(
        "SELECT {ROOM_COLUMNS} FROM room_states WHERE room_id = ?"
    ))
    .bind(room.as_str())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(room_state_from_row).transpose()
}

/// The stored participants of `room`, by id, on SQLite.
pub(crate) async fn load_participants_sqlite<'c, E>(
    conn: E,
    room: &RoomId,
) -> Result<Vec<SavedParticipant>, StoreError>
where
    E: SqliteExecutor<'c>,
{
    let rows = sqlx::query(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM participant_states WHERE room_id = ? \
         ORDER BY participant_id"
    ))
    .bind(room.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(participant_from_row).collect()
}

/// A `room_states` row (its `ROOM_COLUMNS`), read on either backend.
pub(crate) fn room_state_from_row(row: &impl Columns) -> Result<SavedRoom, StoreError> {
    let banned: Vec<String> = serde_json::from_str(&row.text("banned")?)
        .map_err(|e| StoreError::Corrupt(format!("banned list: {e}")))?;
    let mode = row.text("class_mode")?;
    Ok(SavedRoom {
        class_state: class_state_from_db(&row.text("class_state")?)?,
        class_started_at: row.opt_unsigned("class_started_at")?,
        presenter: row.opt_participant("presenter_id")?,
        mode: ClassMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown class mode {mode:?}")))?,
        speak_all: row.flag("speak_all")?,
        banned: banned.into_iter().map(ParticipantId).collect(),
        end_warned: row.flag("end_warned")?,
    })
}

/// A `participant_states` row (its `PARTICIPANT_COLUMNS`), read on either backend.
pub(crate) fn participant_from_row(row: &impl Columns) -> Result<SavedParticipant, StoreError> {
    let hand = match (
        row.opt_unsigned("hand_raised_at")?,
        row.opt_unsigned("hand_order")?,
    ) {
        (Some(raised_at), Some(order)) => Some(SavedHand { raised_at, order }),
        _ => None,
    };
    Ok(SavedParticipant {
        id: row.participant("participant_id")?,
        name: row.text("name")?,
        role: row.role("role")?,
        in_lobby: row.flag("in_lobby")?,
        hard_muted: row.flag("hard_muted")?,
        speak_granted: row.flag("speak_granted")?,
        camera_allowed: row.flag("camera_allowed")?,
        hand,
    })
}

/// The columns of a `room_states` row that need converting, in their stored form (for writing).
pub(crate) struct RoomRow {
    pub class_state: String,
    pub class_started_at: Option<i64>,
    /// A JSON array of ids.
    pub banned: String,
}

impl RoomRow {
    pub(crate) fn from_state(state: &SavedRoom) -> Result<Self, StoreError> {
        let banned: Vec<&str> = state.banned.iter().map(ParticipantId::as_str).collect();
        Ok(RoomRow {
            class_state: class_state_to_db(state.class_state).to_owned(),
            class_started_at: state
                .class_started_at
                .map(|at| to_db("time", at))
                .transpose()?,
            banned: serde_json::to_string(&banned)
                .map_err(|e| StoreError::Corrupt(format!("banned list: {e}")))?,
        })
    }
}

/// `(hand_raised_at, hand_order)` as stored.
pub(crate) fn hand_to_db(p: &SavedParticipant) -> Result<(Option<i64>, Option<i64>), StoreError> {
    match p.hand {
        Some(SavedHand { raised_at, order }) => Ok((
            Some(to_db("time", raised_at)?),
            Some(to_db("hand order", order)?),
        )),
        None => Ok((None, None)),
    }
}

fn class_state_to_db(state: ClassState) -> &'static str {
    match state {
        ClassState::NotStarted => "not_started",
        ClassState::Live => "live",
        ClassState::Ended => "ended",
    }
}

fn class_state_from_db(state: &str) -> Result<ClassState, StoreError> {
    match state {
        "not_started" => Ok(ClassState::NotStarted),
        "live" => Ok(ClassState::Live),
        "ended" => Ok(ClassState::Ended),
        other => Err(StoreError::Corrupt(format!(
            "unknown class state {other:?}"
        ))),
    }
}
