//! What a room needs to be restored, on PostgreSQL: the statements of `room_state.rs` in
//! PostgreSQL's dialect (`migrations-postgres/0003_room_state.sql`).

use lectern_proto::{ParticipantId, RoomId};
use sqlx::PgExecutor;
use sqlx::postgres::PgConnection;

use crate::room_state::{
    PARTICIPANT_COLUMNS, ROOM_COLUMNS, RoomRow, hand_to_db, participant_from_row,
    room_state_from_row,
};
use crate::{SavedParticipant, SavedRoom, StoreError, StoreOp};

/// One room-state op of a batch (other ops are not this file's: nothing happens).
pub(super) async fn apply(
    conn: &mut PgConnection,
    room: &RoomId,
    op: &StoreOp,
) -> Result<(), StoreError> {
    match op {
        StoreOp::RoomState(state) => {
            let row = RoomRow::from_state(state)?;
            sqlx::query(&format!(
                "INSERT INTO room_states (room_id, {ROOM_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
            sqlx::query(
                "DELETE FROM participant_states WHERE room_id = $1 AND participant_id = $2",
            )
            .bind(room.as_str())
            .bind(participant_id.as_str())
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::RoomStateCleared => {
            for table in ["room_states", "participant_states"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE room_id = $1"))
                    .bind(room.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The stored state of `room` (inside the caller's read transaction).
pub(super) async fn load<'c, E>(conn: E, room: &RoomId) -> Result<Option<SavedRoom>, StoreError>
where
    E: PgExecutor<'c>,
{
    let row = sqlx::query(&format!(
        "SELECT {ROOM_COLUMNS} FROM room_states WHERE room_id = $1"
    ))
    .bind(room.as_str())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(room_state_from_row).transpose()
}

/// The stored participants of `room`, by id.
pub(super) async fn load_participants<'c, E>(
    conn: E,
    room: &RoomId,
) -> Result<Vec<SavedParticipant>, StoreError>
where
    E: PgExecutor<'c>,
{
    let rows = sqlx::query(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM participant_states WHERE room_id = $1 \
         ORDER BY participant_id"
    ))
    .bind(room.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(participant_from_row).collect()
}
