//! Recordings on PostgreSQL (see `recordings.rs` for the semantics, which are the same).

use lectern_proto::UnixMillis;

use super::PgBackend;
use crate::recordings::{Recording, RecordingState, RecordingUpdate, recording_from_row};
use crate::{StoreError, classify, to_db};

const COLUMNS: &str = "id, room_id, course_id, title, state, started_at, ended_at, duration_ms, \
                       bytes, interrupted, stop_reason, error, dir";

impl PgBackend {
    pub(crate) async fn create_recording(&self, r: &Recording) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO recordings ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.room_id)
            .bind(&r.course_id)
            .bind(&r.title)
            .bind(r.state.as_str())
            .bind(to_db("time", r.started_at)?)
            .bind(r.ended_at.map(|t| to_db("time", t)).transpose()?)
            .bind(to_db("duration", r.duration_ms)?)
            .bind(to_db("bytes", r.bytes)?)
            .bind(r.interrupted)
            .bind(&r.stop_reason)
            .bind(&r.error)
            .bind(&r.dir)
            .execute(&self.pool)
            .await
            .map_err(|err| classify(err, ("recording", &r.id), ("course", &r.course_id)))?;
        Ok(())
    }

    pub(crate) async fn update_recording(
        &self,
        id: &str,
        u: &RecordingUpdate,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE recordings SET state = $1, ended_at = $2, duration_ms = $3, bytes = $4, \
             interrupted = $5, stop_reason = $6, error = $7 WHERE id = $8",
        )
        .bind(u.state.as_str())
        .bind(u.ended_at.map(|t| to_db("time", t)).transpose()?)
        .bind(to_db("duration", u.duration_ms)?)
        .bind(to_db("bytes", u.bytes)?)
        .bind(u.interrupted)
        .bind(&u.stop_reason)
        .bind(&u.error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Recordings matching `clause` (which names its one text parameter `$1`).
    pub(crate) async fn select_recordings(
        &self,
        clause: &str,
        param: &str,
    ) -> Result<Vec<Recording>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings {clause}");
        let rows = sqlx::query(&sql).bind(param).fetch_all(&self.pool).await?;
        rows.iter().map(recording_from_row).collect()
    }

    pub(crate) async fn recordings_started_before(
        &self,
        before: UnixMillis,
    ) -> Result<Vec<Recording>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE started_at < $1 AND state <> 'recording' \
             ORDER BY started_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(to_db("time", before)?)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(recording_from_row).collect()
    }

    pub(crate) async fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn recordings_in_state(
        &self,
        state: RecordingState,
    ) -> Result<Vec<Recording>, StoreError> {
        self.select_recordings("WHERE state = $1 ORDER BY started_at, id", state.as_str())
            .await
    }
}
