//! The SQLite backend: one writer connection, a small read-only pool, WAL journal.

use std::str::FromStr;
use std::time::{Duration, Instant};

use lectern_proto::{ChatTarget, ParticipantId, RoomId, Seq, UnixMillis};
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tracing::{debug, info, warn};

use crate::row::{self, CHAT_COLUMNS};
use crate::{
    ACTION_LOCK_CHAT, ACTION_UNLOCK_CHAT, AttendanceInterval, ClassSession, LoadedRoom,
    ModerationEntry, StoreError, StoreOp, StoredChat, StoredPoll, duplicate_or, from_db, to_db,
};

/// How long a statement waits for a lock held by another connection (or another process, such as
/// a backup) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections. Reads are rare (a room loading, an attendance report), so a few suffice.
const READERS: u32 = 4;

#[derive(Debug, Clone)]
pub(crate) struct SqliteBackend {
    /// Exactly one connection: every write is serialized here, in the pool's fair queue.
    pub(crate) writer: SqlitePool,
    /// Read-only connections; the same pool as `writer` for an in-memory database.
    pub(crate) reader: SqlitePool,
}

impl SqliteBackend {
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| StoreError::UnsupportedUrl("expected a sqlite: URL".to_owned()))?;
        let base = SqliteConnectOptions::from_str(url)?
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);

        let in_memory =
            rest.trim_start_matches('/').starts_with(":memory:") || rest.contains("mode=memory");
        if in_memory {
            // A shared-cache memory database lives as long as one connection to it does: keep a
            // single connection forever, and use it for reads too.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .connect_with(base)
                .await?;
            sqlx::migrate!("./migrations").run(&pool).await?;
            info!(db.kind = "sqlite", db.path = ":memory:", "store opened");
            return Ok(SqliteBackend {
                writer: pool.clone(),
                reader: pool,
            });
        }

        let path = base.get_filename().to_path_buf();
        if path.as_os_str().is_empty() {
            return Err(StoreError::UnsupportedUrl(
                "the sqlite: URL has no file path; expected sqlite://path/to/lectern.db".to_owned(),
            ));
        }
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }

        // WAL + NORMAL: see "Durability" in the crate docs for why an acknowledged commit
        // survives the process being killed.
        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(writer_options)
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;

        // Readers never change the journal mode (it is stored in the file) and cannot write.
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await?;

        info!(db.kind = "sqlite", db.path = %path.display(), "store opened");
        Ok(SqliteBackend { writer, reader })
    }

    pub(crate) async fn ensure_room(
        &self,
        room: &RoomId,
        title: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let now = to_db("time", now)?;
        sqlx::query(
            "INSERT INTO rooms (id, title, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at \
             WHERE rooms.title <> excluded.title",
        )
        .bind(room.as_str())
        .bind(title)
        .bind(now)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn load_room(
        &self,
        room: &RoomId,
        recent_chat: usize,
    ) -> Result<LoadedRoom, StoreError> {
        // One read transaction, so every answer comes from the same snapshot.
        let mut conn = self.reader.acquire().await?;
        let mut tx = conn.begin().await?;

        let last_seq: i64 = sqlx::query_scalar(
            "SELECT MAX( \
                 COALESCE((SELECT last_seq FROM rooms WHERE id = ?1), 0), \
                 COALESCE((SELECT MAX(seq) FROM chat_messages WHERE room_id = ?1), 0), \
                 COALESCE((SELECT MAX(seq) FROM moderation_log WHERE room_id = ?1), 0))",
        )
        .bind(room.as_str())
        .fetch_one(&mut *tx)
        .await?;

        let last_lock_action: Option<String> = sqlx::query_scalar(
            "SELECT action FROM moderation_log \
             WHERE room_id = ? AND action IN (?, ?) ORDER BY seq DESC LIMIT 1",
        )
        .bind(room.as_str())
        .bind(ACTION_LOCK_CHAT)
        .bind(ACTION_UNLOCK_CHAT)
        .fetch_optional(&mut *tx)
        .await?;

        let limit = i64::try_from(recent_chat).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages \
             WHERE room_id = ? AND deleted_at IS NULL ORDER BY seq DESC LIMIT ?"
        ))
        .bind(room.as_str())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let state = crate::room_state::load_sqlite(&mut *tx, room).await?;
        let participants = crate::room_state::load_participants_sqlite(&mut *tx, room).await?;
        tx.commit().await?;

        let mut recent = rows
            .iter()
            .map(|r| row::chat(r).map(|stored| stored.message))
            .collect::<Result<Vec<_>, _>>()?;
        recent.reverse();

        Ok(LoadedRoom {
            last_seq: from_db("last_seq", last_seq)?,
            recent_chat: recent,
            chat_locked: last_lock_action.as_deref() == Some(ACTION_LOCK_CHAT),
            state,
            participants,
        })
    }

    pub(crate) async fn write_batch(
        &self,
        room: &RoomId,
        fence: Option<u64>,
        last_seq: Seq,
        ops: &[StoreOp],
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let last_seq = to_db("seq", last_seq)?;
        let fence_db = fence.map(|t| to_db("fence token", t)).transpose()?;
        // IMMEDIATE takes the write lock up front, so the batch can only wait (busy_timeout) for
        // another process's writer, never fail midway on a lock upgrade.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let result = async {
            // Fenced: the token check and raise are in the WHERE and SET of this one UPDATE
            // (see `Store::write_batch`).
            let updated = sqlx::query(
                "UPDATE rooms SET last_seq = MAX(last_seq, ?1), \
                 fence_token = COALESCE(?2, fence_token) \
                 WHERE id = ?3 AND (?2 IS NULL OR fence_token IS NULL OR fence_token <= ?2)",
            )
            .bind(last_seq)
            .bind(fence_db)
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(match fence {
                    None => StoreError::UnknownRoom(room.clone()),
                    Some(token) => {
                        let stored: Option<Option<i64>> =
                            sqlx::query_scalar("SELECT fence_token FROM rooms WHERE id = ?")
                                .bind(room.as_str())
                                .fetch_optional(&mut *tx)
                                .await?;
                        crate::fence_refusal(room, token, stored)
                    }
                });
            }
            for op in ops {
                apply(&mut tx, room, op).await?;
            }
            Ok(())
        }
        .await;
        finish(tx, result).await?;
        debug!(
            room.id = %room,
            batch.ops = ops.len(),
            batch.micros = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        Ok(())
    }

    pub(crate) async fn chat_log(
        &self,
        room: &RoomId,
        after_seq: Seq,
        limit: u32,
    ) -> Result<Vec<StoredChat>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages \
             WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(room.as_str())
        .bind(to_db("seq", after_seq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row::chat).collect()
    }

    pub(crate) async fn chat_before(
        &self,
        room: &RoomId,
        before_seq: Seq,
        limit: u32,
        reader: &crate::ChatReaderFilter,
    ) -> Result<Vec<StoredChat>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages \
             WHERE room_id = ? AND seq < ? AND deleted_at IS NULL \
               AND (target_kind = 'everyone' OR ? OR sender_id = ? \
                    OR (target_kind = 'participant' AND target_id = ?)) \
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(room.as_str())
        .bind(to_db("seq", before_seq)?)
        .bind(reader.staff)
        .bind(reader.participant_id.as_str())
        .bind(reader.participant_id.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row::chat).collect()
    }

    pub(crate) async fn attendance(
        &self,
        room: &RoomId,
    ) -> Result<Vec<AttendanceInterval>, StoreError> {
        let rows = sqlx::query(
            "SELECT participant_id, name, role, joined_at, left_at FROM attendance \
             WHERE room_id = ? ORDER BY joined_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row::attendance).collect()
    }

    /// `(room, interval)` rows of several rooms, by room, then as [`Self::attendance`] orders
    /// them.
    pub(crate) async fn attendance_of_rooms(
        &self,
        rooms: &[RoomId],
    ) -> Result<Vec<(RoomId, AttendanceInterval)>, StoreError> {
        let marks = vec!["?"; rooms.len()].join(", ");
        let sql = format!(
            "SELECT room_id, participant_id, name, role, joined_at, left_at FROM attendance \
             WHERE room_id IN ({marks}) ORDER BY room_id, joined_at, id"
        );
        let mut query = sqlx::query(&sql);
        for room in rooms {
            query = query.bind(room.as_str());
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(row::attendance_in_room).collect()
    }

    pub(crate) async fn moderation_log(
        &self,
        room: &RoomId,
    ) -> Result<Vec<ModerationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, action, actor_id, target_id, at FROM moderation_log \
             WHERE room_id = ? ORDER BY seq",
        )
        .bind(room.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row::moderation).collect()
    }

    pub(crate) async fn polls(&self, room: &RoomId) -> Result<Vec<StoredPoll>, StoreError> {
        let polls = sqlx::query(
            "SELECT poll_id, question, options, multiple, anonymous, asked_by, asked_by_name, \
             started_at, ended_at, shared_at FROM polls WHERE room_id = ? ORDER BY poll_id",
        )
        .bind(room.as_str())
        .fetch_all(&self.reader)
        .await?;
        let answers = sqlx::query(
            "SELECT poll_id, participant_id, name, choices, answered_at FROM poll_answers \
             WHERE room_id = ? ORDER BY poll_id, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.reader)
        .await?;
        row::polls(&polls, &answers)
    }

    pub(crate) async fn close_open_polls(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        let closed = sqlx::query(
            "UPDATE polls SET ended_at = MAX(started_at, ?) \
             WHERE room_id = ? AND ended_at IS NULL",
        )
        .bind(to_db("time", at)?)
        .bind(room.as_str())
        .execute(&self.writer)
        .await?;
        Ok(closed.rows_affected())
    }

    pub(crate) async fn class_sessions(
        &self,
        room: &RoomId,
    ) -> Result<Vec<ClassSession>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, started_at, ended_at FROM class_sessions \
             WHERE room_id = ? ORDER BY started_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row::class_session).collect()
    }

    pub(crate) async fn close_open_attendance(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer.acquire().await?;
        close_open_attendance(&mut conn, room, to_db("time", at)?).await
    }

    pub(crate) async fn close_open_class_session(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer.acquire().await?;
        close_open_class_session(&mut conn, room, to_db("time", at)?).await
    }

    pub(crate) async fn close(&self) {
        if self.writer.is_closed() {
            return;
        }
        // Fold the WAL back into the database file and truncate it, so the file alone is a
        // complete copy (for backups) and the next open has nothing to replay.
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
        {
            warn!(error = %err, "WAL checkpoint at close failed");
        }
        // Readers first: the last connection to close is the one that may delete the WAL.
        self.reader.close().await;
        self.writer.close().await;
        info!(db.kind = "sqlite", "store closed");
    }
}

/// Applies one op inside the batch's transaction.
async fn apply(conn: &mut SqliteConnection, room: &RoomId, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::Chat(message) => {
            let (target_kind, target_id) = match &message.to {
                ChatTarget::Everyone => ("everyone", None),
                ChatTarget::Staff => ("staff", None),
                ChatTarget::Participant { id } => ("participant", Some(id.as_str())),
            };
            sqlx::query(
                "INSERT INTO chat_messages (room_id, seq, sender_id, sender_name, sender_role, \
                 target_kind, target_id, body, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(room.as_str())
            .bind(to_db("seq", message.seq)?)
            .bind(message.from.as_str())
            .bind(&message.from_name)
            .bind(message.from_role.as_str())
            .bind(target_kind)
            .bind(target_id)
            .bind(&message.text)
            .bind(to_db("time", message.sent_at)?)
            .execute(&mut *conn)
            .await
            .map_err(|err| duplicate_or(err, "chat message", room, message.seq))?;
        }
        StoreOp::ChatDeleted { seq, by, at } => {
            let seq_db = to_db("seq", *seq)?;
            let updated = sqlx::query(
                "UPDATE chat_messages SET deleted_at = ?, deleted_by = ? \
                 WHERE room_id = ? AND seq = ? AND deleted_at IS NULL",
            )
            .bind(to_db("time", *at)?)
            .bind(by.as_str())
            .bind(room.as_str())
            .bind(seq_db)
            .execute(&mut *conn)
            .await?;
            if updated.rows_affected() == 0 {
                // Failing the batch would lose the other ops for a deletion that changes
                // nothing; an unknown seq is a bug upstream, worth a warning.
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM chat_messages WHERE room_id = ? AND seq = ?",
                )
                .bind(room.as_str())
                .bind(seq_db)
                .fetch_optional(&mut *conn)
                .await?;
                if exists.is_some() {
                    debug!(room.id = %room, chat.seq = seq, "chat message was already deleted");
                } else {
                    warn!(room.id = %room, chat.seq = seq, "deleting an unknown chat message");
                }
            }
        }
        StoreOp::AttendanceJoin {
            participant_id,
            name,
            role,
            at,
        } => {
            sqlx::query(
                "INSERT INTO attendance (room_id, participant_id, name, role, joined_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(room.as_str())
            .bind(participant_id.as_str())
            .bind(name)
            .bind(role.as_str())
            .bind(to_db("time", *at)?)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::AttendanceLeave { participant_id, at } => {
            // MAX(joined_at, ?): a clock stepping back never makes an interval negative.
            sqlx::query(
                "UPDATE attendance SET left_at = MAX(joined_at, ?) WHERE id = ( \
                     SELECT id FROM attendance \
                     WHERE room_id = ? AND participant_id = ? AND left_at IS NULL \
                     ORDER BY joined_at DESC, id DESC LIMIT 1)",
            )
            .bind(to_db("time", *at)?)
            .bind(room.as_str())
            .bind(participant_id.as_str())
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::Moderation {
            seq,
            action,
            by,
            target,
            at,
        } => {
            sqlx::query(
                "INSERT INTO moderation_log (room_id, seq, action, actor_id, target_id, at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(room.as_str())
            .bind(to_db("seq", *seq)?)
            .bind(action)
            .bind(by.as_str())
            .bind(target.as_ref().map(ParticipantId::as_str))
            .bind(to_db("time", *at)?)
            .execute(&mut *conn)
            .await
            .map_err(|err| duplicate_or(err, "moderation entry", room, *seq))?;
        }
        StoreOp::ClassStarted { at } => {
            let at = to_db("time", *at)?;
            let closed = close_open_class_session(conn, room, at).await?;
            if closed > 0 {
                info!(room.id = %room, "closed a class session left open before this start");
            }
            sqlx::query("INSERT INTO class_sessions (room_id, started_at) VALUES (?, ?)")
                .bind(room.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        StoreOp::ClassEnded { at } => {
            close_open_class_session(conn, room, to_db("time", *at)?).await?;
        }
        StoreOp::PollStarted {
            poll,
            asked_by_name,
        } => {
            let options = serde_json::to_string(&poll.options)
                .map_err(|e| StoreError::Corrupt(format!("poll options: {e}")))?;
            sqlx::query(
                "INSERT INTO polls (room_id, poll_id, question, options, multiple, anonymous, \
                 asked_by, asked_by_name, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(room.as_str())
            .bind(to_db("poll id", poll.poll_id)?)
            .bind(&poll.question)
            .bind(options)
            .bind(poll.multiple)
            .bind(poll.anonymous)
            .bind(poll.asked_by.as_str())
            .bind(asked_by_name)
            .bind(to_db("time", poll.started_at)?)
            .execute(&mut *conn)
            .await
            .map_err(|err| duplicate_or(err, "poll", room, poll.poll_id))?;
        }
        StoreOp::PollAnswered {
            poll_id,
            voter,
            choices,
            at,
        } => {
            let choices = serde_json::to_string(choices)
                .map_err(|e| StoreError::Corrupt(format!("poll choices: {e}")))?;
            sqlx::query(
                "INSERT INTO poll_answers (room_id, poll_id, participant_id, name, choices, \
                 answered_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(room.as_str())
            .bind(to_db("poll id", *poll_id)?)
            .bind(voter.as_ref().map(|(id, _)| id.as_str()))
            .bind(voter.as_ref().map(|(_, name)| name.as_str()))
            .bind(choices)
            .bind(at.map(|at| to_db("time", at)).transpose()?)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::PollEnded { poll_id, at } => {
            sqlx::query(
                "UPDATE polls SET ended_at = MAX(started_at, ?) \
                 WHERE room_id = ? AND poll_id = ? AND ended_at IS NULL",
            )
            .bind(to_db("time", *at)?)
            .bind(room.as_str())
            .bind(to_db("poll id", *poll_id)?)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::PollShared { poll_id, at } => {
            sqlx::query(
                "UPDATE polls SET shared_at = ? \
                 WHERE room_id = ? AND poll_id = ? AND shared_at IS NULL",
            )
            .bind(to_db("time", *at)?)
            .bind(room.as_str())
            .bind(to_db("poll id", *poll_id)?)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::RoomState(_)
        | StoreOp::ParticipantState(_)
        | StoreOp::ParticipantStateCleared { .. }
        | StoreOp::RoomStateCleared => crate::room_state::apply_sqlite(conn, room, op).await?,
    }
    Ok(())
}

async fn close_open_attendance(
    conn: &mut SqliteConnection,
    room: &RoomId,
    at: i64,
) -> Result<u64, StoreError> {
    let closed = sqlx::query(
        "UPDATE attendance SET left_at = MAX(joined_at, ?) WHERE room_id = ? AND left_at IS NULL",
    )
    .bind(at)
    .bind(room.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(closed.rows_affected())
}

async fn close_open_class_session(
    conn: &mut SqliteConnection,
    room: &RoomId,
    at: i64,
) -> Result<u64, StoreError> {
    let closed = sqlx::query(
        "UPDATE class_sessions SET ended_at = MAX(started_at, ?) \
         WHERE room_id = ? AND ended_at IS NULL",
    )
    .bind(at)
    .bind(room.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(closed.rows_affected())
}

/// Commit the transaction if its work succeeded, else roll it back and return the work's error.
pub(crate) async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    result: Result<(), StoreError>,
) -> Result<(), StoreError> {
    match result {
        Ok(()) => tx.commit().await?,
        Err(err) => {
            tx.rollback().await?;
            return Err(err);
        }
    }
    Ok(())
}
