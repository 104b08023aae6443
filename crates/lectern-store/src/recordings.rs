//! Recordings of classes (`migrations/0004_recordings.sql`): one row per recording, with its
//! state. The media and event log are files; the server owns them.

use std::fmt;
use std::str::FromStr;

use lectern_proto::UnixMillis;

use crate::row::Columns;
use crate::sqlite::SqliteBackend;
use crate::{Backend, Store, StoreError, classify, to_db};

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordingState {
    /// Being recorded now.
    Recording,
    /// Stopped; its files are being finished.
    Processing,
    /// Finished and watchable.
    Ready,
    /// Could not be recorded or finished (see `error`).
    Failed,
}

impl RecordingState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Processing => "processing",
            RecordingState::Ready => "ready",
            RecordingState::Failed => "failed",
        }
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordingState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "recording" => RecordingState::Recording,
            "processing" => RecordingState::Processing,
            "ready" => RecordingState::Ready,
            "failed" => RecordingState::Failed,
            other => return Err(StoreError::Corrupt(format!("recording state {other:?}"))),
        })
    }
}

/// One recording's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub id: String,
    pub room_id: String,
    pub course_id: String,
    pub title: String,
    pub state: RecordingState,
    pub started_at: UnixMillis,
    pub ended_at: Option<UnixMillis>,
    pub duration_ms: u64,
    pub bytes: u64,
    pub interrupted: bool,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    /// The folder, relative to the server's recordings directory.
    pub dir: String,
}

/// What changes when a recording moves on ([`Store::finish_recording`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingUpdate {
    pub state: RecordingState,
    pub ended_at: Option<UnixMillis>,
    pub duration_ms: u64,
    pub bytes: u64,
    pub interrupted: bool,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, room_id, course_id, title, state, started_at, ended_at, duration_ms, \
                       bytes, interrupted, stop_reason, error, dir";

impl Store {
    /// Adds a recording's row; [`StoreError::Conflict`] if the id is taken.
    pub async fn create_recording(&self, recording: &Recording) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.create_recording(recording).await,
            Backend::Postgres(db) => db.create_recording(recording).await,
        }
    }

    /// Updates a recording's state and figures; whether it exists.
    pub async fn update_recording(
        &self,
        id: &str,
        update: &RecordingUpdate,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.update_recording(id, update).await,
            Backend::Postgres(db) => db.update_recording(id, update).await,
        }
    }

    pub async fn recording(&self, id: &str) -> Result<Option<Recording>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db
                .select_recordings("WHERE id = ?", &[id])
                .await
                .map(|mut v| v.pop()),
            Backend::Postgres(db) => db
                .select_recordings("WHERE id = $1", id)
                .await
                .map(|mut v| v.pop()),
        }
    }

    /// A course's recordings, newest first.
    pub async fn course_recordings(&self, course: &str) -> Result<Vec<Recording>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                db.select_recordings(
                    "WHERE course_id = ? ORDER BY started_at DESC, id",
                    &[course],
                )
                .await
            }
            Backend::Postgres(db) => {
                db.select_recordings("WHERE course_id = $1 ORDER BY started_at DESC, id", course)
                    .await
            }
        }
    }

    /// Every recording in this state, oldest first (at start-up: those a crash left open).
    pub async fn recordings_in_state(
        &self,
        state: RecordingState,
    ) -> Result<Vec<Recording>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                db.select_recordings("WHERE state = ? ORDER BY started_at, id", &[state.as_str()])
                    .await
            }
            Backend::Postgres(db) => db.recordings_in_state(state).await,
        }
    }

    /// Recordings that started before `before` and are no longer being recorded, oldest
    /// first (retention).
    pub async fn recordings_started_before(
        &self,
        before: UnixMillis,
    ) -> Result<Vec<Recording>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.recordings_started_before(before).await,
            Backend::Postgres(db) => db.recordings_started_before(before).await,
        }
    }

    /// Deletes a recording's row; whether it existed. Its files are the caller's to delete.
    pub async fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let done = sqlx::query("DELETE FROM recordings WHERE id = ?")
                    .bind(id)
                    .execute(&db.writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }
            Backend::Postgres(db) => db.delete_recording(id).await,
        }
    }
}

pub(crate) fn recording_from_row(row: &impl Columns) -> Result<Recording, StoreError> {
    Ok(Recording {
        id: row.text("id")?,
        room_id: row.text("room_id")?,
        course_id: row.text("course_id")?,
        title: row.text("title")?,
        state: row.text("state")?.parse()?,
        started_at: row.unsigned("started_at")?,
        ended_at: row.opt_unsigned("ended_at")?,
        duration_ms: row.unsigned("duration_ms")?,
        bytes: row.unsigned("bytes")?,
        interrupted: row.flag("interrupted")?,
        stop_reason: row.opt_text("stop_reason")?,
        error: row.opt_text("error")?,
        dir: row.text("dir")?,
    })
}

impl SqliteBackend {
    async fn create_recording(&self, r: &Recording) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO recordings ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            .bind(i64::from(r.interrupted))
            .bind(&r.stop_reason)
            .bind(&r.error)
            .bind(&r.dir)
            .execute(&self.writer)
            .await
            .map_err(|err| classify(err, ("recording", &r.id), ("course", &r.course_id)))?;
        Ok(())
    }

    async fn update_recording(&self, id: &str, u: &RecordingUpdate) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE recordings SET state = ?, ended_at = ?, duration_ms = ?, bytes = ?, \
             interrupted = ?, stop_reason = ?, error = ? WHERE id = ?",
        )
        .bind(u.state.as_str())
        .bind(u.ended_at.map(|t| to_db("time", t)).transpose()?)
        .bind(to_db("duration", u.duration_ms)?)
        .bind(to_db("bytes", u.bytes)?)
        .bind(i64::from(u.interrupted))
        .bind(&u.stop_reason)
        .bind(&u.error)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn select_recordings(
        &self,
        clause: &str,
        params: &[&str],
    ) -> Result<Vec<Recording>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings {clause}");
        let mut query = sqlx::query(&sql);
        for param in params {
            query = query.bind(*param);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(recording_from_row).collect()
    }

    async fn recordings_started_before(
        &self,
        before: UnixMillis,
    ) -> Result<Vec<Recording>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE started_at < ? AND state <> 'recording' \
             ORDER BY started_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(to_db("time", before)?)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(recording_from_row).collect()
    }
}
