//! Lectern's persistence: rooms, the chat log, attendance, moderation, class sessions and polls;
//! courses with their rosters and schedules, and admin API keys (see `courses.rs`); the course
//! discussion board (see `board.rs`); quizzes and attempts (see `quizzes.rs`).
//!
//! [`Store`] is the one seam between the server and a database. It is backed by SQLite (a file
//! by default, or memory for tests; `migrations/`) or by PostgreSQL (`postgres://` URLs, for
//! several nodes sharing one database; `migrations-postgres/`). Both backends have the same
//! methods, the same table shapes and the same semantics; the store's test suite runs against
//! both.
//!
//! # Contract
//! - A room task owns its room's rows. It calls [`Store::ensure_room`] once, [`Store::load_room`]
//!   to recover its sequence number, chat lock, recent chat and the state it stored for a
//!   restore (`room_state.rs`), then commits what happened as
//!   [`StoreOp`]s with [`Store::write_batch`]: one transaction per batch (the room's group commit).
//!   When `write_batch` returns `Ok`, every op of the batch is durable; when it returns `Err`,
//!   none of it is stored.
//! - Chat messages and moderation entries are keyed by `(room, seq)`. Writing the same seq twice
//!   is an error ([`StoreError::DuplicateSeq`]), never an overwrite.
//! - Times are [`UnixMillis`] and sequence numbers [`Seq`]; both are stored as signed 64-bit
//!   integers, so values above `i64::MAX` are refused ([`StoreError::OutOfRange`]).
//!
//! # Durability (SQLite)
//! The database runs in WAL mode with `synchronous = NORMAL`. A commit appends the transaction's
//! pages and a commit frame to the `-wal` file with `write(2)` before `COMMIT` returns; only the
//! `fsync` is skipped (it happens at checkpoints). Once `write(2)` returns, the bytes are in the
//! operating system's page cache, which belongs to the kernel, not to our process: if the process
//! is killed (`kill -9`, a panic with `abort`, an OOM kill) the kernel still writes them out, and
//! the next open replays the WAL. So an acknowledged batch survives any crash of the *process*; the
//! `durability_*` test checks exactly that with SIGKILL. What `NORMAL` gives up is the last few
//! commits before a power cut or kernel crash (the database stays consistent, it just rolls back
//! to an earlier commit); `FULL` would fsync on every commit to cover that too, at a cost of a
//! disk flush per group commit.
//!
//! Writes go through a single writer connection, so batches from different rooms queue in the
//! pool instead of spinning on SQLite's busy handler; reads use a separate read-only pool, which
//! WAL lets run alongside the writer.
//!
//! # Durability (PostgreSQL)
//! `write_batch` is one transaction, and `COMMIT` returns only once PostgreSQL has flushed the
//! commit's WAL record to its disk: that is `synchronous_commit = on`, the server's default. So
//! an acknowledged batch survives a crash of Lectern, of PostgreSQL and of its machine (power cut
//! included, where the disk honours flushes). With a synchronous standby configured,
//! `remote_write` or `remote_apply` also wait for the standby; Lectern keeps whatever the server
//! or the role sets, except `off` (a commit that returns before its WAL is flushed, so a
//! PostgreSQL crash could lose acknowledged chat): on a connection where it is `off`, the store
//! sets it back to `on` and logs a warning.
//!
//! Rooms commit in parallel over a pool of connections. `write_batch` updates the room's row
//! first, which locks it until the commit, so two batches of one room never interleave, even
//! when two nodes write it. A unique violation aborts the transaction as on SQLite: the batch is
//! rolled back and reported as [`StoreError::DuplicateSeq`].
//!
//! The tables are created in the first schema of the connection's `search_path` (`public` by
//! default; `?options[search_path]=lectern` in the URL picks another). Error messages and logs
//! name the server as `user@host:port/database`, never with the password.

use std::collections::HashMap;
use std::path::PathBuf;

use lectern_proto::{ChatMessage, ParticipantId, PollId, Role, RoomId, Seq, UnixMillis};

mod board;
mod courses;
mod postgres;
mod quizzes;
mod recordings;
mod room_state;
mod row;
mod sqlite;

pub use board::{
    BoardAuthor, BoardReader, MAX_SEARCH_TERMS, NewTopic, Reply, SearchHit, Topic, TopicSource,
    TopicSummary, search_query,
};
pub use courses::{ApiKey, Course, CourseMember, StoredSchedule, hash_api_key};
pub use quizzes::{AttemptSubmission, NewAttempt, NewQuiz, QuizAttempt, StoredQuiz};
pub use recordings::{Recording, RecordingState, RecordingUpdate};

/// A handle to the database. Cheap to clone: clones share the connection pools.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

/// The engines behind [`Store`].
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::SqliteBackend),
    Postgres(postgres::PgBackend),
}

/// What went wrong in the store. Callers log it once, where they handle it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no backend this build supports. The message never repeats the URL itself,
    /// which may hold a password.
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    /// The PostgreSQL server did not answer or refused the connection. `server` is
    /// `user@host:port/database`, without the password.
    #[error("cannot connect to PostgreSQL at {server}: {source}")]
    Connect { server: String, source: sqlx::Error },
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A row holds a value this version cannot read (an unknown role, a negative time...).
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
    /// A value does not fit the database's signed 64-bit integers.
    #[error("{what} {value} is too large to store")]
    OutOfRange { what: &'static str, value: u64 },
    /// `write_batch` for a room that [`Store::ensure_room`] never created.
    #[error("room {0} does not exist in the store")]
    UnknownRoom(RoomId),
    /// A course, member, schedule or key that the call needs does not exist.
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    /// A course, member, schedule or key with this id already exists.
    #[error("{what} {id:?} already exists")]
    Conflict { what: &'static str, id: String },
    /// A board post that is deleted cannot be edited, flagged or replied to.
    #[error("{what} {id} is deleted")]
    Deleted { what: &'static str, id: i64 },
    /// A board topic is locked: only staff may reply.
    #[error("topic {0} is locked")]
    TopicLocked(i64),
    /// A chat message or moderation entry with this seq is already stored for the room.
    #[error("{what} with seq {seq} is already stored in room {room}")]
    DuplicateSeq {
        what: &'static str,
        room: RoomId,
        seq: Seq,
    },
    /// `write_batch` under lease token `token`, but the room already took a write under the
    /// newer token `newest`: another node hosts the room now, and this writer must stop it.
    /// Nothing of the batch is stored.
    #[error("room {room} is fenced: the write's lease token {token} is older than {newest}")]
    Fenced {
        room: RoomId,
        token: u64,
        newest: u64,
    },
}

/// What a room task needs to resume after a restart.
#[derive(Debug, Clone, Default)]
pub struct LoadedRoom {
    /// The highest sequence number the room ever committed (0 for a new room). The next event is
    /// `last_seq + 1`.
    pub last_seq: Seq,
    /// The most recent chat messages that were not deleted, oldest first.
    pub recent_chat: Vec<ChatMessage>,
    /// Whether the last chat-lock moderation action locked the chat.
    pub chat_locked: bool,
    /// The class state the room last stored ([`StoreOp::RoomState`]); `None` if it never stored
    /// one or closed while empty ([`StoreOp::RoomStateCleared`]).
    pub state: Option<SavedRoom>,
    /// The participants the room last stored ([`StoreOp::ParticipantState`]), by id.
    pub participants: Vec<SavedParticipant>,
}

/// The class state and participants a restore needs are the room's own types: the store keeps
/// what the room saves ([`StoreOp::RoomState`], [`StoreOp::ParticipantState`]) and gives it back
/// in [`StoredRoom`] as the room takes it.
pub use lectern_room::{SavedHand, SavedParticipant, SavedRoom};

/// One change to persist, as part of a [`Store::write_batch`].
#[derive(Debug, Clone)]
pub enum StoreOp {
    /// A new chat message, keyed by its `seq`.
    Chat(ChatMessage),
    /// A chat message was deleted by staff. The row is kept, marked deleted. Deleting an
    /// already-deleted message keeps the first deletion; an unknown `seq` is logged and skipped.
    ChatDeleted {
        seq: Seq,
        by: ParticipantId,
        at: UnixMillis,
    },
    /// A participant entered the room: opens an attendance interval.
    AttendanceJoin {
        participant_id: ParticipantId,
        name: String,
        role: Role,
        at: UnixMillis,
    },
    /// A participant is gone: closes their latest open interval (nothing happens if none is open).
    AttendanceLeave {
        participant_id: ParticipantId,
        at: UnixMillis,
    },
    /// A moderation action, e.g. `"mute"`, `"remove"`, [`ACTION_LOCK_CHAT`],
    /// [`ACTION_UNLOCK_CHAT`]. One entry per event `seq`.
    Moderation {
        seq: Seq,
        action: String,
        by: ParticipantId,
        target: Option<ParticipantId>,
        at: UnixMillis,
    },
    /// Staff started the class: opens a class session (closing one a crash left open).
    ClassStarted { at: UnixMillis },
    /// Staff ended the class: closes the open class session (nothing happens if none is open).
    ClassEnded { at: UnixMillis },
    /// Staff opened a poll: one row keyed by `(room, poll.poll_id)`.
    PollStarted {
        poll: lectern_proto::Poll,
        asked_by_name: String,
    },
    /// An answer. `voter` (id, name) and `at` are `None` for an anonymous poll: nothing that
    /// names who answered is stored.
    PollAnswered {
        poll_id: PollId,
        voter: Option<(ParticipantId, String)>,
        choices: Vec<u32>,
        at: Option<UnixMillis>,
    },
    /// The poll closed (nothing happens if it already had).
    PollEnded { poll_id: PollId, at: UnixMillis },
    /// Staff showed the results to the class (the first time counts).
    PollShared { poll_id: PollId, at: UnixMillis },
    /// The room's class state for a restore: replaces the one stored (an upsert).
    RoomState(SavedRoom),
    /// A participant's state for a restore: replaces theirs (an upsert).
    ParticipantState(SavedParticipant),
    /// The participant has nothing left to restore: their row goes (nothing happens if none).
    ParticipantStateCleared { participant_id: ParticipantId },
    /// Nothing of the room is to be restored (it closed while empty): its class state and
    /// every participant's go.
    RoomStateCleared,
}

/// A poll of a room, with its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPoll {
    pub poll: lectern_proto::Poll,
    pub asked_by_name: String,
    pub ended_at: Option<UnixMillis>,
    pub shared_at: Option<UnixMillis>,
    /// In the order given.
    pub answers: Vec<StoredPollAnswer>,
}

/// One answer to a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPollAnswer {
    /// Id and name; `None` for an anonymous poll.
    pub voter: Option<(ParticipantId, String)>,
    /// Option indices, ascending.
    pub choices: Vec<u32>,
    /// `None` for an anonymous poll.
    pub at: Option<UnixMillis>,
}

/// The moderation action that locks chat; [`LoadedRoom::chat_locked`] follows the latest of this
/// and [`ACTION_UNLOCK_CHAT`].
/// Most rooms [`Store::attendance_of_rooms`] reads at once.
pub const MAX_ROOMS_PER_READ: usize = 200;

pub const ACTION_LOCK_CHAT: &str = "lock_chat";
/// The moderation action that unlocks chat.
pub const ACTION_UNLOCK_CHAT: &str = "unlock_chat";

/// A chat message from the log, with its deletion if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChat {
    pub message: ChatMessage,
    pub deleted_at: Option<UnixMillis>,
    pub deleted_by: Option<ParticipantId>,
}

/// Who reads chat history, for [`Store::chat_before`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReaderFilter {
    pub participant_id: ParticipantId,
    /// Instructors and TAs read every private message of the room.
    pub staff: bool,
}

/// One stay of a participant in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceInterval {
    pub participant_id: ParticipantId,
    pub name: String,
    pub role: Role,
    pub joined_at: UnixMillis,
    /// `None` while the participant is still in the room.
    pub left_at: Option<UnixMillis>,
}

/// One moderation action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationEntry {
    pub seq: Seq,
    pub action: String,
    pub by: ParticipantId,
    pub target: Option<ParticipantId>,
    pub at: UnixMillis,
}

/// One run of a class, from start to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSession {
    pub id: i64,
    pub started_at: UnixMillis,
    /// `None` while the class runs.
    pub ended_at: Option<UnixMillis>,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date.
    ///
    /// - `sqlite://path/to/file.db` (relative to the working directory) or
    ///   `sqlite:///absolute/path.db`: the file and its parent directory are created if missing.
    /// - `sqlite::memory:`: a private in-memory database, gone when the store is dropped.
    /// - `postgres://user:password@host:5432/database` (or `postgresql://`): an existing
    ///   PostgreSQL database; the tables are created in the first schema of the `search_path`
    ///   (add `?options[search_path]=lectern` for a schema of its own). The usual libpq
    ///   parameters apply (`sslmode`, `application_name`, ...), and `PGPASSWORD` or `~/.pgpass`
    ///   can hold the password instead of the URL.
    ///
    /// Any other URL is [`StoreError::UnsupportedUrl`]. No error message repeats the URL.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or("");
        match scheme {
            "sqlite" => Ok(Store {
                backend: Backend::Sqlite(sqlite::SqliteBackend::open(url).await?),
            }),
            "postgres" | "postgresql" => Ok(Store {
                backend: Backend::Postgres(postgres::PgBackend::open(url).await?),
            }),
            _ => Err(StoreError::UnsupportedUrl(format!(
                "unknown scheme {scheme:?}; expected sqlite://path/to/lectern.db, \
                 sqlite::memory: or postgres://user@host/database"
            ))),
        }
    }

    /// Which engine this store runs on: `"sqlite"` or `"postgres"` (for logs and health).
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Creates the room if it is missing, and sets its title.
    pub async fn ensure_room(
        &self,
        room: &RoomId,
        title: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.ensure_room(room, title, now).await,
            Backend::Postgres(db) => db.ensure_room(room, title, now).await,
        }
    }

    /// What the room task needs to resume: its last seq, chat lock, the `recent_chat` most
    /// recent messages that were not deleted, and the class state and participants it stored
    /// for a restore. A room that was never stored loads as the default.
    pub async fn load_room(
        &self,
        room: &RoomId,
        recent_chat: usize,
    ) -> Result<LoadedRoom, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.load_room(room, recent_chat).await,
            Backend::Postgres(db) => db.load_room(room, recent_chat).await,
        }
    }

    /// Stores `ops` in order, in one transaction, and raises the room's stored last seq to
    /// `last_seq` (it never goes down). All or nothing.
    ///
    /// `fence` is the fencing token of the lease the room runs under (several nodes), or `None`
    /// (a single node: no check). With a token, the same transaction first raises the room's
    /// newest seen token to it, and refuses the batch with [`StoreError::Fenced`] if the room
    /// has already seen a newer one: a holder that stalled past its lease (a GC-like pause,
    /// SIGSTOP, a frozen VM) and woke up after another node took the room over cannot commit
    /// anything more. An equal or newer token is accepted. An empty `ops` with a token only
    /// raises the fence: a new holder does that before it loads the room, so whatever a stale
    /// holder committed before is in what it loads, and nothing it sends later is stored.
    ///
    /// Concurrency: the check and the raise are one `UPDATE` of the room's row with the check
    /// in its `WHERE`. On PostgreSQL that statement takes the row's lock until the commit, so
    /// a stale holder's batch and a newer holder's serialize: if the newer one holds the lock,
    /// the stale one waits, then (READ COMMITTED re-reads the row it waited for) sees the newer
    /// token and is refused; if the stale one got the lock first it commits first, before the
    /// newer holder's fence raise, which then comes after it. On SQLite every write goes
    /// through the one writer connection inside `BEGIN IMMEDIATE`, so batches never overlap.
    pub async fn write_batch(
        &self,
        room: &RoomId,
        fence: Option<u64>,
        last_seq: Seq,
        ops: &[StoreOp],
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.write_batch(room, fence, last_seq, ops).await,
            Backend::Postgres(db) => db.write_batch(room, fence, last_seq, ops).await,
        }
    }

    /// The newest lease fencing token a write of the room carried, `None` if none did (or the
    /// room is not stored). One read by primary key: a node reads it before claiming the room's
    /// lease, so that its token is above it even if Redis lost its counters (see
    /// `lectern_cluster::Leases::claim_above`).
    pub async fn room_fence(&self, room: &RoomId) -> Result<Option<u64>, StoreError> {
        let token: Option<Option<i64>> = match &self.backend {
            Backend::Sqlite(db) => {
                sqlx::query_scalar("SELECT fence_token FROM rooms WHERE id = ?")
                    .bind(room.as_str())
                    .fetch_optional(&db.reader)
                    .await?
            }
            Backend::Postgres(db) => {
                sqlx::query_scalar("SELECT fence_token FROM rooms WHERE id = $1")
                    .bind(room.as_str())
                    .fetch_optional(&db.pool)
                    .await?
            }
        };
        token
            .flatten()
            .map(|t| from_db("fence token", t))
            .transpose()
    }

    /// The chat log after `after_seq`, oldest first, at most `limit` messages, deleted ones
    /// included (with their deletion).
    pub async fn chat_log(
        &self,
        room: &RoomId,
        after_seq: Seq,
        limit: u32,
    ) -> Result<Vec<StoredChat>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.chat_log(room, after_seq, limit).await,
            Backend::Postgres(db) => db.chat_log(room, after_seq, limit).await,
        }
    }

    /// Scroll-back: the newest `limit` messages with a `seq` below `before_seq` that `reader`
    /// may read, newest first. Deleted messages are left out. Readable means what live delivery
    /// sends (the room's rule, which the caller applies again): messages to everyone; to staff
    /// when `reader.staff` or sent by them; to one participant when `reader.staff`, sent by them
    /// or to them.
    pub async fn chat_before(
        &self,
        room: &RoomId,
        before_seq: Seq,
        limit: u32,
        reader: &ChatReaderFilter,
    ) -> Result<Vec<StoredChat>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.chat_before(room, before_seq, limit, reader).await,
            Backend::Postgres(db) => db.chat_before(room, before_seq, limit, reader).await,
        }
    }

    /// Every attendance interval of the room, in the order they opened.
    pub async fn attendance(&self, room: &RoomId) -> Result<Vec<AttendanceInterval>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.attendance(room).await,
            Backend::Postgres(db) => db.attendance(room).await,
        }
    }

    /// The attendance intervals of several rooms in one query (a page of a course's past
    /// sessions), by room, each room's in the order they opened. A room without any is absent.
    /// At most [`MAX_ROOMS_PER_READ`] rooms: more is [`StoreError::OutOfRange`].
    pub async fn attendance_of_rooms(
        &self,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, Vec<AttendanceInterval>>, StoreError> {
        if rooms.len() > MAX_ROOMS_PER_READ {
            return Err(StoreError::OutOfRange {
                what: "rooms in one attendance read",
                value: rooms.len() as u64,
            });
        }
        if rooms.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = match &self.backend {
            Backend::Sqlite(db) => db.attendance_of_rooms(rooms).await?,
            Backend::Postgres(db) => db.attendance_of_rooms(rooms).await?,
        };
        let mut by_room: HashMap<RoomId, Vec<AttendanceInterval>> = HashMap::new();
        for (room, interval) in rows {
            by_room.entry(room).or_default().push(interval);
        }
        Ok(by_room)
    }

    /// Every moderation action of the room, by seq.
    pub async fn moderation_log(&self, room: &RoomId) -> Result<Vec<ModerationEntry>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.moderation_log(room).await,
            Backend::Postgres(db) => db.moderation_log(room).await,
        }
    }

    /// Every class session of the room, in the order they started.
    pub async fn class_sessions(&self, room: &RoomId) -> Result<Vec<ClassSession>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.class_sessions(room).await,
            Backend::Postgres(db) => db.class_sessions(room).await,
        }
    }

    /// Marks every attendance interval still open in the room as left at `at` (never before it
    /// opened). For startup after a crash and for graceful shutdown. Returns how many it closed.
    pub async fn close_open_attendance(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.close_open_attendance(room, at).await,
            Backend::Postgres(db) => db.close_open_attendance(room, at).await,
        }
    }

    /// Ends the room's class session if one is still open (a crash left it so) at `at` (never
    /// before it started). Returns how many it closed (0 or 1).
    pub async fn close_open_class_session(
        &self,
        room: &RoomId,
        at: UnixMillis,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.close_open_class_session(room, at).await,
            Backend::Postgres(db) => db.close_open_class_session(room, at).await,
        }
    }

    /// Every poll of the room with its answers, in the order they were asked.
    pub async fn polls(&self, room: &RoomId) -> Result<Vec<StoredPoll>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.polls(room).await,
            Backend::Postgres(db) => db.polls(room).await,
        }
    }

    /// Ends the room's polls left open (a crash, or a restart: a new room task starts with no
    /// poll) at `at` (never before they started). Returns how many it closed.
    pub async fn close_open_polls(&self, room: &RoomId, at: UnixMillis) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.close_open_polls(room, at).await,
            Backend::Postgres(db) => db.close_open_polls(room, at).await,
        }
    }

    /// One cheap query (`SELECT 1`), for health checks (`/readyz`): whether the database
    /// answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                sqlx::query("SELECT 1").execute(&db.reader).await?;
            }
            Backend::Postgres(db) => {
                sqlx::query("SELECT 1").execute(&db.pool).await?;
            }
        }
        Ok(())
    }

    /// Closes the database (SQLite: after a checkpoint). Waits for queries in flight; later
    /// calls fail.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(db) => db.close().await,
            Backend::Postgres(db) => db.close().await,
        }
    }
}

/// A store URL as logs and messages may show it: the password after `user:` and the whole query
/// string (which may hold `password=...` too) are replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?***"),
        None => (rest, ""),
    };
    let rest = match rest.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => rest.to_owned(),
    };
    format!("{scheme}://{rest}{query}")
}

/// A unique violation on insert (either backend) as [`StoreError::DuplicateSeq`]; anything else as it is.
fn duplicate_or(err: sqlx::Error, what: &'static str, room: &RoomId, seq: Seq) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::DuplicateSeq {
            what,
            room: room.clone(),
            seq,
        },
        _ => StoreError::Database(err),
    }
}

/// Why a fenced `UPDATE rooms` changed no row: `stored` is the room's row (its fence token), if
/// the room exists.
fn fence_refusal(room: &RoomId, token: u64, stored: Option<Option<i64>>) -> StoreError {
    match stored {
        Some(Some(newest)) => StoreError::Fenced {
            room: room.clone(),
            token,
            newest: u64::try_from(newest).unwrap_or(0),
        },
        _ => StoreError::UnknownRoom(room.clone()),
    }
}

/// A `u64` as the database's signed integer.
fn to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

/// A stored signed integer back as `u64`.
fn from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what} {value}")))
}

/// An INSERT's error as the caller should see it: a unique violation is a
/// [`StoreError::Conflict`] on `conflict` (what, id), a foreign-key violation means the parent
/// `parent` (what, id) does not exist ([`StoreError::NotFound`]); anything else as it is.
fn classify(
    err: sqlx::Error,
    conflict: (&'static str, &str),
    parent: (&'static str, &str),
) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what: conflict.0,
            id: conflict.1.to_owned(),
        },
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
            what: parent.0,
            id: parent.1.to_owned(),
        },
        _ => StoreError::Database(err),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacted_urls_keep_no_password() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/d?password=p"),
            "postgres://u:***@h:5432/d?***"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(redact_url("sqlite://a/b.db"), "sqlite://a/b.db");
    }
}
