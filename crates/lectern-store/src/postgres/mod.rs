//! The PostgreSQL backend: one connection pool, the schema of `migrations-postgres/`.
//!
//! The SQL mirrors `sqlite.rs` statement by statement; only the dialect differs (`$n`
//! parameters, `GREATEST` for SQLite's two-argument `MAX`, BOOLEAN flags).

use std::str::FromStr;
use std::time::{Duration, Instant};

use lectern_proto::{ChatTarget, ParticipantId, RoomId, Seq, UnixMillis};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};
use tracing::{debug, info, warn};

use crate::row::{self, CHAT_COLUMNS};
use crate::{
    ACTION_LOCK_CHAT, ACTION_UNLOCK_CHAT, AttendanceInterval, ClassSession, LoadedRoom,
    ModerationEntry, StoreError, StoreOp, StoredChat, StoredPoll, duplicate_or, from_db, to_db,
};

mod board;
mod courses;
mod quizzes;
mod recordings;
mod room_state;

/// Connections in the pool. Rooms commit their batches concurrently (one transaction each), and
/// PostgreSQL serves them in parallel, unlike SQLite's single writer.
const MAX_CONNECTIONS: u32 = 16;

/// How long a caller waits for a free connection (or for the server to answer a connect)
/// before the call fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct PgBackend {
    pub(crate) pool: PgPool,
}

/// `user@host:port/database` of a PostgreSQL URL: what errors and logs may show. Never the
/// password, nor the query string (which may carry one too).
pub(crate) fn redacted(options: &PgConnectOptions) -> String {
    format!(
        "{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

impl PgBackend {
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        // sqlx's URL errors do not repeat the URL, but say nothing of it either way: ours never
        // holds more than the scheme.
        let options = PgConnectOptions::from_str(url).map_err(|_| {
            StoreError::UnsupportedUrl(
                "the PostgreSQL URL cannot be parsed; expected \
                 postgres://user:password@host:5432/database"
                    .to_owned(),
            )
        })?;
        let server = redacted(&options);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _meta| Box::pin(async move { durable_commits(conn).await }))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                server: server.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        info!(db.kind = "postgres", db.server = %server, db.schema = %schema, "store opened");
        Ok(PgBackend { pool })
    }

    pub(crate) async fn ensure_room(
        &self,
        room: &RoomId,
        title: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let now = to_db("time", now)?;
        sqlx::query(
            "INSERT INTO rooms (id, title, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at \
             WHERE rooms.title <> excluded.title",
        )
        .bind(room.as_str())
        .bind(title)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn load_room(
        &self,
        room: &RoomId,
        recent_chat: usize,
    ) -> Result<LoadedRoom, StoreError> {
        // One read-only REPEATABLE READ transaction: every answer comes from one snapshot.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;

        let last_seq: i64 = sqlx::query_scalar(
            "SELECT GREATEST( \
                 COALESCE((SELECT last_seq FROM rooms WHERE id = $1), 0), \
                 COALESCE((SELECT MAX(seq) FROM chat_messages WHERE room_id = $1), 0), \
                 COALESCE((SELECT MAX(seq) FROM moderation_log WHERE room_id = $1), 0))",
        )
        .bind(room.as_str())
        .fetch_one(&mut *tx)
        .await?;

        let last_lock_action: Option<String> = sqlx::query_scalar(
            "SELECT action FROM moderation_log \
             WHERE room_id = $1 AND action IN ($2, $3) ORDER BY seq DESC LIMIT 1",
        )
        .bind(room.as_str())
        .bind(ACTION_LOCK_CHAT)
        .bind(ACTION_UNLOCK_CHAT)
        .fetch_optional(&mut *tx)
        .await?;

        let limit = i64::try_from(recent_chat).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages \
             WHERE room_id = $1 AND deleted_at IS NULL ORDER BY seq DESC LIMIT $2"
        ))
        .bind(room.as_str())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let state = room_state::load(&mut *tx, room).await?;
        let participants = room_state::load_participants(&mut *tx, room).await?;
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
        let mut tx = self.pool.begin().await?;
        let result = async {
            // Locks the room's row: batches of one room never interleave, even from two nodes.
            // A fenced batch that waited for the lock is checked against the row as the holder
            // of the lock committed it (READ COMMITTED re-evaluates the WHERE on the new row):
            // see `Store::write_batch`.
            let updated = sqlx::query(
                "UPDATE rooms SET last_seq = GREATEST(last_seq, $1), \
                 fence_token = COALESCE($2, fence_token) \
                 WHERE id = $3 AND ($2::BIGINT IS NULL OR fence_token IS NULL OR fence_token <= $2)",
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
                            sqlx::query_scalar("SELECT fence_token FROM rooms WHERE id = $1")
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
             WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(room.as_str())
        .bind(to_db("seq", after_seq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
             WHERE room_id = $1 AND seq < $2 AND deleted_at IS NULL \
               AND (target_kind = 'everyone' OR $3 OR sender_id = $4 \
                    OR (target_kind = 'participant' AND target_id = $4)) \
             ORDER BY seq DESC LIMIT $5"
        ))
        .bind(room.as_str())
        .bind(to_db("seq", before_seq)?)
        .bind(reader.staff)
        .bind(reader.participant_id.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row::chat).collect()
    }

    pub(crate) async fn attendance(
        &self,
        room: &RoomId,
    ) -> Result<Vec<AttendanceInterval>, StoreError> {
        let rows = sqlx::query(
            "SELECT participant_id, name, role, joined_at, left_at FROM attendance \
             WHERE room_id = $1 ORDER BY joined_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row::attendance).collect()
    }

    /// `(room, interval)` rows of several rooms, by room, then as [`Self::attendance`] orders
    /// them.
    pub(crate) async fn attendance_of_rooms(
        &self,
        rooms: &[RoomId],
    ) -> Result<Vec<(RoomId, AttendanceInterval)>, StoreError> {
        let ids: Vec<&str> = rooms.iter().map(RoomId::as_str).collect();
        let rows = sqlx::query(
            "SELECT room_id, participant_id, name, role, joined_at, left_at FROM attendance \
             WHERE room_id = ANY($1) ORDER BY room_id, joined_at, id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row::attendance_in_room).collect()
    }

    pub(crate) async fn moderation_log(
        &self,
        room: &RoomId,
    ) -> Result<Vec<ModerationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, action, actor_id, target_id, at FROM moderation_log \
             WHERE room_id = $1 ORDER BY seq",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row::moderation).collect()
    }

    pub(crate) async fn polls(&self, room: &RoomId) -> Result<Vec<StoredPoll>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let polls = sqlx::query(
            "SELECT poll_id, question, options, multiple, anonymous, asked_by, asked_by_name, \
             started_at, ended_at, shared_at FROM polls WHERE room_id = $1 ORDER BY poll_id",
        )
        .bind(room.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let answers = sqlx::query(
            "SELECT poll_id, participant_id, name, choices, answered_at FROM poll_answers \
             WHERE room_id = $1 ORDER BY poll_id, id",
        )
        .bind(room.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        row::polls(&polls, &answers)
    }

    pub(crate) async fn close_open_polls(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        let closed = sqlx::query(
            "UPDATE polls SET ended_at = GREATEST(started_at, $1) \
             WHERE room_id = $2 AND ended_at IS NULL",
        )
        .bind(to_db("time", at)?)
        .bind(room.as_str())
        .execute(&self.pool)
        .await?;
        Ok(closed.rows_affected())
    }

    pub(crate) async fn class_sessions(
        &self,
        room: &RoomId,
    ) -> Result<Vec<ClassSession>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, started_at, ended_at FROM class_sessions \
             WHERE room_id = $1 ORDER BY started_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row::class_session).collect()
    }

    pub(crate) async fn close_open_attendance(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        close_open_attendance(&mut conn, room, to_db("time", at)?).await
    }

    pub(crate) async fn close_open_class_session(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        close_open_class_session(&mut conn, room, to_db("time", at)?).await
    }

    pub(crate) async fn close(&self) {
        if self.pool.is_closed() {
            return;
        }
        self.pool.close().await;
        info!(db.kind = "postgres", "store closed");
    }
}

/// Runs on every new connection: a commit must wait for its WAL flush (see "Durability
/// (PostgreSQL)" in the crate docs). The server's default, `on`, and every stronger setting
/// (`remote_write`, `remote_apply`) and `local` are kept; only `off` is raised to `on`.
async fn durable_commits(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut *conn)
        .await?;
    if setting == "off" {
        warn!(
            db.kind = "postgres",
            "synchronous_commit is off on the server; Lectern sets it to on for its connections"
        );
        conn.execute("SET synchronous_commit TO on").await?;
    }
    Ok(())
}

/// Applies one op inside the batch's transaction.
async fn apply(conn: &mut PgConnection, room: &RoomId, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::Chat(message) => {
            let (target_kind, target_id) = match &message.to {
                ChatTarget::Everyone => ("everyone", None),
                ChatTarget::Staff => ("staff", None),
                ChatTarget::Participant { id } => ("participant", Some(id.as_str())),
            };
            sqlx::query(
                "INSERT INTO chat_messages (room_id, seq, sender_id, sender_name, sender_role, \
                 target_kind, target_id, body, sent_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                "UPDATE chat_messages SET deleted_at = $1, deleted_by = $2 \
                 WHERE room_id = $3 AND seq = $4 AND deleted_at IS NULL",
            )
            .bind(to_db("time", *at)?)
            .bind(by.as_str())
            .bind(room.as_str())
            .bind(seq_db)
            .execute(&mut *conn)
            .await?;
            if updated.rows_affected() == 0 {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM chat_messages WHERE room_id = $1 AND seq = $2",
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
                 VALUES ($1, $2, $3, $4, $5)",
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
            // GREATEST(joined_at, $1): a clock stepping back never makes an interval negative.
            sqlx::query(
                "UPDATE attendance SET left_at = GREATEST(joined_at, $1) WHERE id = ( \
                     SELECT id FROM attendance \
                     WHERE room_id = $2 AND participant_id = $3 AND left_at IS NULL \
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
                 VALUES ($1, $2, $3, $4, $5, $6)",
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
            sqlx::query("INSERT INTO class_sessions (room_id, started_at) VALUES ($1, $2)")
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
                 asked_by, asked_by_name, started_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                 answered_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
                "UPDATE polls SET ended_at = GREATEST(started_at, $1) \
                 WHERE room_id = $2 AND poll_id = $3 AND ended_at IS NULL",
            )
            .bind(to_db("time", *at)?)
            .bind(room.as_str())
            .bind(to_db("poll id", *poll_id)?)
            .execute(&mut *conn)
            .await?;
        }
        StoreOp::PollShared { poll_id, at } => {
            sqlx::query(
                "UPDATE polls SET shared_at = $1 \
                 WHERE room_id = $2 AND poll_id = $3 AND shared_at IS NULL",
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
        | StoreOp::RoomStateCleared => room_state::apply(conn, room, op).await?,
    }
    Ok(())
}

async fn close_open_attendance(
    conn: &mut PgConnection,
    room: &RoomId,
    at: i64,
) -> Result<u64, StoreError> {
    let closed = sqlx::query(
        "UPDATE attendance SET left_at = GREATEST(joined_at, $1) \
         WHERE room_id = $2 AND left_at IS NULL",
    )
    .bind(at)
    .bind(room.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(closed.rows_affected())
}

async fn close_open_class_session(
    conn: &mut PgConnection,
    room: &RoomId,
    at: i64,
) -> Result<u64, StoreError> {
    let closed = sqlx::query(
        "UPDATE class_sessions SET ended_at = GREATEST(started_at, $1) \
         WHERE room_id = $2 AND ended_at IS NULL",
    )
    .bind(at)
    .bind(room.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(closed.rows_affected())
}

/// Commit the transaction if its work succeeded, else roll it back and return the work's error.
pub(crate) async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The test server, as the store tests find it (see `tests/common`).
    fn server_url() -> Option<String> {
        if std::env::var("LECTERN_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!("skipped: needs PostgreSQL (LECTERN_SKIP_POSTGRES=1)");
            return None;
        }
        Some(
            std::env::var("LECTERN_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        )
    }

    /// A connection where `synchronous_commit` starts `off` (a startup option, as a server or
    /// role default would be) gets it back `on`; a stronger setting is kept.
    #[tokio::test]
    async fn commits_wait_for_the_wal_flush_even_if_the_server_says_off() {
        let Some(server) = server_url() else {
            return;
        };
        let schema = format!("lectern_unit_{:016x}", std::process::id() as u64 ^ 0x5eed);
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL is not reachable ({err}): start it, set LECTERN_TEST_POSTGRES_URL, \
                 or set LECTERN_SKIP_POSTGRES=1"
            )
        });
        admin
            .execute(
                format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str(),
            )
            .await
            .unwrap();
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options[search_path]={schema}");

        let result = async {
            let off = PgBackend::open(&format!("{url}&options[synchronous_commit]=off"))
                .await
                .unwrap();
            let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&off.pool)
                .await
                .unwrap();
            off.close().await;
            let strong =
                PgBackend::open(&format!("{url}&options[synchronous_commit]=remote_apply"))
                    .await
                    .unwrap();
            let kept: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&strong.pool)
                .await
                .unwrap();
            strong.close().await;
            (setting, kept)
        }
        .await;
        admin
            .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
            .await
            .unwrap();
        assert_eq!(result, ("on".to_owned(), "remote_apply".to_owned()));
    }

    #[test]
    fn only_user_host_port_and_database_are_shown() {
        let options = PgConnectOptions::from_str(
            "postgres://lectern:s3cret@db.example:6543/class?password=x",
        )
        .unwrap();
        assert_eq!(redacted(&options), "lectern@db.example:6543/class");
    }
}
