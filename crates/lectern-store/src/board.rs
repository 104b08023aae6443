//! The course discussion board (`migrations/0007_board.sql`): topics, replies, read marks and
//! full-text search.
//!
//! The store keeps the board's invariants that need the database: a reply never lands on a
//! locked (unless the caller may bypass the lock) or deleted topic, a deleted post loses its
//! text and leaves the search index, lists and search only return what the reader may see.
//! Who may do what (authors, staff) and input limits are the server's business.

use lectern_proto::{Role, UnixMillis};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::row::Columns;
use crate::sqlite::{SqliteBackend, finish};
use crate::{Backend, Store, StoreError, from_db, to_db};

/// Who wrote a post, as their join token said when they wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardAuthor {
    pub member_id: String,
    pub name: String,
    pub role: Role,
}

/// Who is reading: lists, unread counts and search are computed for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardReader {
    pub member_id: String,
    /// Instructors and TAs read every topic, private ones included.
    pub staff: bool,
}

/// The live chat message a topic was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSource {
    /// The room (session) the message was sent in.
    pub room: String,
    pub seq: u64,
    /// The sender's display name.
    pub author_name: String,
    pub sent_at: UnixMillis,
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub course_id: String,
    pub author: BoardAuthor,
    pub title: String,
    pub body: String,
    /// `Some(member)`: a private question, readable only by staff and that member.
    pub private_to: Option<String>,
    pub source: Option<TopicSource>,
    pub at: UnixMillis,
}

/// A topic as stored. A deleted topic has an empty title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub id: i64,
    pub course_id: String,
    pub author: BoardAuthor,
    pub title: String,
    pub body: String,
    pub private_to: Option<String>,
    pub pinned: bool,
    pub locked: bool,
    pub created_at: UnixMillis,
    pub edited_at: Option<UnixMillis>,
    pub deleted_at: Option<UnixMillis>,
    pub deleted_by: Option<String>,
    pub last_activity_at: UnixMillis,
    /// Replies that are not deleted.
    pub reply_count: u64,
    pub source: Option<TopicSource>,
}

impl Topic {
    /// Whether `reader` may read this topic: public ones everybody, private ones staff, the
    /// member it is private to and its author.
    pub fn visible_to(&self, reader: &BoardReader) -> bool {
        match &self.private_to {
            None => true,
            Some(member) => {
                reader.staff
                    || *member == reader.member_id
                    || self.author.member_id == reader.member_id
            }
        }
    }
}

/// A topic in a list, with what the reader has not read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    pub topic: Topic,
    /// 1 for a topic the reader never opened (unless they wrote it), plus the replies by others
    /// after the last one they saw. Deleted replies do not count.
    pub unread: u64,
}

/// A reply as stored. A deleted reply has an empty body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: i64,
    pub topic_id: i64,
    pub author: BoardAuthor,
    pub body: String,
    pub created_at: UnixMillis,
    pub edited_at: Option<UnixMillis>,
    pub deleted_at: Option<UnixMillis>,
    pub deleted_by: Option<String>,
}

/// One search result: a topic, or a reply within a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub topic_id: i64,
    /// `None` when the topic itself matched.
    pub reply_id: Option<i64>,
    /// The topic's title.
    pub title: String,
    /// A plain-text excerpt around the match (no markup).
    pub excerpt: String,
}

/// The words of a search, at most this many (more are ignored).
pub const MAX_SEARCH_TERMS: usize = 16;

/// The FTS5 query for what a user typed: each word (letters and digits) as a quoted prefix
/// term, all of them required. Operators and quotes the user typed are never passed through,
/// so no input is an FTS5 syntax error. `None` if the text holds no word.
pub fn search_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_SEARCH_TERMS)
        .map(|word| format!("\"{word}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

impl Store {
    /// Creates a topic. [`StoreError::NotFound`] if the course does not exist,
    /// [`StoreError::Conflict`] if its source chat message already has a topic.
    pub async fn create_topic(&self, topic: &NewTopic) -> Result<Topic, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.create_topic(topic).await,
            Backend::Postgres(db) => db.create_topic(topic).await,
        }
    }

    /// The topic with this id, deleted or not, whoever may read it.
    pub async fn topic(&self, id: i64) -> Result<Option<Topic>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let mut conn = db.reader.acquire().await?;
                topic_by_id(&mut conn, id).await
            }
            Backend::Postgres(db) => db.topic(id).await,
        }
    }

    /// The id of the topic made from the chat message `(room, seq)`, if any.
    pub async fn topic_from_chat(&self, room: &str, seq: u64) -> Result<Option<i64>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.topic_from_chat(room, seq).await,
            Backend::Postgres(db) => db.topic_from_chat(room, seq).await,
        }
    }

    /// A page of the course's topics `reader` may read, deleted ones left out: pinned first,
    /// then the latest activity first. At most `limit` from `offset`.
    pub async fn board_topics(
        &self,
        course: &str,
        reader: &BoardReader,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<TopicSummary>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.board_topics(course, reader, limit, offset).await,
            Backend::Postgres(db) => db.board_topics(course, reader, limit, offset).await,
        }
    }

    /// What `reader` has not read of the whole course board (the sum over the topics they may
    /// read, as in [`TopicSummary::unread`]).
    pub async fn board_unread(
        &self,
        course: &str,
        reader: &BoardReader,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.board_unread(course, reader).await,
            Backend::Postgres(db) => db.board_unread(course, reader).await,
        }
    }

    /// What `member` has not read of one topic, as in [`TopicSummary::unread`].
    pub async fn topic_unread(&self, topic: i64, member: &str) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.topic_unread(topic, member).await,
            Backend::Postgres(db) => db.topic_unread(topic, member).await,
        }
    }

    /// The topic's replies, oldest first, deleted ones included (with empty bodies).
    pub async fn replies(&self, topic: i64) -> Result<Vec<Reply>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.replies(topic).await,
            Backend::Postgres(db) => db.replies(topic).await,
        }
    }

    /// The reply with this id, deleted or not.
    pub async fn reply(&self, id: i64) -> Result<Option<Reply>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let mut conn = db.reader.acquire().await?;
                reply_by_id(&mut conn, id).await
            }
            Backend::Postgres(db) => db.reply(id).await,
        }
    }

    /// Records that `member` has read the topic and every reply it has now.
    pub async fn mark_topic_read(
        &self,
        topic: i64,
        member: &str,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.mark_topic_read(topic, member, at).await,
            Backend::Postgres(db) => db.mark_topic_read(topic, member, at).await,
        }
    }

    /// Adds a reply and makes it the topic's latest activity. [`StoreError::NotFound`] for an
    /// unknown topic, [`StoreError::Deleted`] for a deleted one, [`StoreError::TopicLocked`]
    /// for a locked one unless `bypass_lock` (staff).
    pub async fn add_reply(
        &self,
        topic: i64,
        author: &BoardAuthor,
        body: &str,
        bypass_lock: bool,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.add_reply(topic, author, body, bypass_lock, at).await,
            Backend::Postgres(db) => db.add_reply(topic, author, body, bypass_lock, at).await,
        }
    }

    /// Replaces a topic's title and body. [`StoreError::NotFound`] or [`StoreError::Deleted`].
    pub async fn edit_topic(
        &self,
        id: i64,
        title: &str,
        body: &str,
        at: UnixMillis,
    ) -> Result<Topic, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.edit_topic(id, title, body, at).await,
            Backend::Postgres(db) => db.edit_topic(id, title, body, at).await,
        }
    }

    /// Replaces a reply's body. [`StoreError::NotFound`] or [`StoreError::Deleted`].
    pub async fn edit_reply(
        &self,
        id: i64,
        body: &str,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.edit_reply(id, body, at).await,
            Backend::Postgres(db) => db.edit_reply(id, body, at).await,
        }
    }

    /// Deletes a topic: its title and body are erased and it leaves lists and search; its
    /// replies stay. Deleting it again keeps the first deletion. [`StoreError::NotFound`].
    pub async fn delete_topic(
        &self,
        id: i64,
        by: &str,
        at: UnixMillis,
    ) -> Result<Topic, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.delete_topic(id, by, at).await,
            Backend::Postgres(db) => db.delete_topic(id, by, at).await,
        }
    }

    /// Deletes a reply: its body is erased and it leaves search. Deleting it again keeps the
    /// first deletion. [`StoreError::NotFound`].
    pub async fn delete_reply(
        &self,
        id: i64,
        by: &str,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.delete_reply(id, by, at).await,
            Backend::Postgres(db) => db.delete_reply(id, by, at).await,
        }
    }

    /// Pins or unpins, locks or unlocks a topic (`None` leaves that flag). [`StoreError::NotFound`]
    /// or [`StoreError::Deleted`].
    pub async fn set_topic_flags(
        &self,
        id: i64,
        pinned: Option<bool>,
        locked: Option<bool>,
    ) -> Result<Topic, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.set_topic_flags(id, pinned, locked).await,
            Backend::Postgres(db) => db.set_topic_flags(id, pinned, locked).await,
        }
    }

    /// Full-text search of the course's topics and replies that `reader` may read, best match
    /// first, at most `limit` hits. `text` is what the user typed (see [`search_query`]); a text
    /// with no word finds nothing.
    pub async fn search_board(
        &self,
        course: &str,
        reader: &BoardReader,
        text: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let Some(query) = search_query(text) else {
            return Ok(Vec::new());
        };
        match &self.backend {
            Backend::Sqlite(db) => db.search_board(course, reader, &query, limit).await,
            // PostgreSQL takes the same words from `text` (see `postgres/board.rs`).
            Backend::Postgres(db) => db.search_board(course, reader, text, limit).await,
        }
    }
}

const TOPIC_COLUMNS: &str = "t.id, t.course_id, t.author_id, t.author_name, t.author_role, \
     t.title, t.body, t.private_to, t.pinned, t.locked, t.created_at, t.edited_at, \
     t.deleted_at, t.deleted_by, t.last_activity_at, t.source_room, t.source_seq, \
     t.source_name, t.source_sent_at, \
     (SELECT COUNT(*) FROM board_replies r \
      WHERE r.topic_id = t.id AND r.deleted_at IS NULL) AS reply_count";

const REPLY_COLUMNS: &str = "id, topic_id, author_id, author_name, author_role, body, \
                             created_at, edited_at, deleted_at, deleted_by";

/// Which topics a reader sees: `?staff` and `?member` are bound as parameters 2 and 3.
const VISIBLE: &str = "(t.private_to IS NULL OR ?2 OR t.private_to = ?3 OR t.author_id = ?3)";

/// The reader's unread count of topic `t`, with their read mark joined as `m` (reader is ?3).
const UNREAD: &str = "(CASE WHEN m.topic_id IS NULL AND t.author_id <> ?3 THEN 1 ELSE 0 END) + \
     (SELECT COUNT(*) FROM board_replies r WHERE r.topic_id = t.id AND r.deleted_at IS NULL \
      AND r.author_id <> ?3 AND r.id > COALESCE(m.last_reply_id, 0))";

fn author_from_row(row: &impl Columns) -> Result<BoardAuthor, StoreError> {
    Ok(BoardAuthor {
        member_id: row.text("author_id")?,
        name: row.text("author_name")?,
        role: row.role("author_role")?,
    })
}

/// A `board_topics` row (`TOPIC_COLUMNS`, with the reply count), read on either backend.
pub(crate) fn topic_from_row(row: &impl Columns) -> Result<Topic, StoreError> {
    let source = match row.opt_text("source_room")? {
        None => None,
        // A topic moved from chat has all of its source columns (a missing one reads as
        // corrupt, through -1).
        Some(room) => Some(TopicSource {
            room,
            seq: from_db("source_seq", row.opt_int("source_seq")?.unwrap_or(-1))?,
            author_name: row.opt_text("source_name")?.unwrap_or_default(),
            sent_at: from_db(
                "source_sent_at",
                row.opt_int("source_sent_at")?.unwrap_or(-1),
            )?,
        }),
    };
    Ok(Topic {
        id: row.int("id")?,
        course_id: row.text("course_id")?,
        author: author_from_row(row)?,
        title: row.text("title")?,
        body: row.text("body")?,
        private_to: row.opt_text("private_to")?,
        pinned: row.flag("pinned")?,
        locked: row.flag("locked")?,
        created_at: row.unsigned("created_at")?,
        edited_at: row.opt_unsigned("edited_at")?,
        deleted_at: row.opt_unsigned("deleted_at")?,
        deleted_by: row.opt_text("deleted_by")?,
        last_activity_at: row.unsigned("last_activity_at")?,
        reply_count: row.unsigned("reply_count")?,
        source,
    })
}

/// A `board_replies` row (`REPLY_COLUMNS`), read on either backend.
pub(crate) fn reply_from_row(row: &impl Columns) -> Result<Reply, StoreError> {
    Ok(Reply {
        id: row.int("id")?,
        topic_id: row.int("topic_id")?,
        author: author_from_row(row)?,
        body: row.text("body")?,
        created_at: row.unsigned("created_at")?,
        edited_at: row.opt_unsigned("edited_at")?,
        deleted_at: row.opt_unsigned("deleted_at")?,
        deleted_by: row.opt_text("deleted_by")?,
    })
}

async fn topic_by_id(conn: &mut SqliteConnection, id: i64) -> Result<Option<Topic>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {TOPIC_COLUMNS} FROM board_topics t WHERE t.id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(topic_from_row).transpose()
}

async fn reply_by_id(conn: &mut SqliteConnection, id: i64) -> Result<Option<Reply>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REPLY_COLUMNS} FROM board_replies WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(reply_from_row).transpose()
}

/// The topic, which must exist; with `live`, it must not be deleted either.
async fn require_topic(
    conn: &mut SqliteConnection,
    id: i64,
    live: bool,
) -> Result<Topic, StoreError> {
    let topic = topic_by_id(conn, id)
        .await?
        .ok_or_else(|| not_found("topic", id))?;
    if live && topic.deleted_at.is_some() {
        return Err(StoreError::Deleted { what: "topic", id });
    }
    Ok(topic)
}

fn not_found(what: &'static str, id: i64) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// Runs `work` in one write transaction, committing if it succeeds.
async fn in_tx<T, F>(db: &SqliteBackend, work: F) -> Result<T, StoreError>
where
    F: for<'c> AsyncFnOnce(&'c mut SqliteConnection) -> Result<T, StoreError>,
{
    let mut tx = db.writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut value = None;
    let result = match work(&mut tx).await {
        Ok(v) => {
            value = Some(v);
            Ok(())
        }
        Err(err) => Err(err),
    };
    finish(tx, result).await?;
    Ok(value.expect("set when the work succeeded"))
}

impl SqliteBackend {
    async fn create_topic(&self, topic: &NewTopic) -> Result<Topic, StoreError> {
        let at = to_db("time", topic.at)?;
        let source = topic.source.as_ref();
        let source_seq = source.map(|s| to_db("seq", s.seq)).transpose()?;
        let source_sent_at = source.map(|s| to_db("time", s.sent_at)).transpose()?;
        in_tx(self, async |conn: &mut SqliteConnection| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO board_topics (course_id, author_id, author_name, author_role, \
                 title, body, private_to, created_at, last_activity_at, source_room, \
                 source_seq, source_name, source_sent_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(&topic.course_id)
            .bind(&topic.author.member_id)
            .bind(&topic.author.name)
            .bind(topic.author.role.as_str())
            .bind(&topic.title)
            .bind(&topic.body)
            .bind(&topic.private_to)
            .bind(at)
            .bind(at)
            .bind(source.map(|s| s.room.as_str()))
            .bind(source_seq)
            .bind(source.map(|s| s.author_name.as_str()))
            .bind(source_sent_at)
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                    what: "topic for chat message",
                    id: source
                        .map(|s| format!("{}#{}", s.room, s.seq))
                        .unwrap_or_default(),
                },
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::NotFound {
                        what: "course",
                        id: topic.course_id.clone(),
                    }
                }
                _ => StoreError::Database(err),
            })?;
            // The author has read their own topic.
            mark_read(conn, id, &topic.author.member_id, at).await?;
            require_topic(conn, id, false).await
        })
        .await
    }

    async fn topic_from_chat(&self, room: &str, seq: u64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM board_topics WHERE source_room = ? AND source_seq = ?",
        )
        .bind(room)
        .bind(to_db("seq", seq)?)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn board_topics(
        &self,
        course: &str,
        reader: &BoardReader,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<TopicSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOPIC_COLUMNS}, {UNREAD} AS unread FROM board_topics t \
             LEFT JOIN board_reads m ON m.topic_id = t.id AND m.member_id = ?3 \
             WHERE t.course_id = ?1 AND t.deleted_at IS NULL AND {VISIBLE} \
             ORDER BY t.pinned DESC, t.last_activity_at DESC, t.id DESC LIMIT ?4 OFFSET ?5"
        ))
        .bind(course)
        .bind(reader.staff)
        .bind(&reader.member_id)
        .bind(i64::from(limit))
        .bind(to_db("offset", offset)?)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TopicSummary {
                    topic: topic_from_row(row)?,
                    unread: from_db("unread", row.try_get("unread")?)?,
                })
            })
            .collect()
    }

    async fn board_unread(&self, course: &str, reader: &BoardReader) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(SUM({UNREAD}), 0) FROM board_topics t \
             LEFT JOIN board_reads m ON m.topic_id = t.id AND m.member_id = ?3 \
             WHERE t.course_id = ?1 AND t.deleted_at IS NULL AND {VISIBLE}"
        ))
        .bind(course)
        .bind(reader.staff)
        .bind(&reader.member_id)
        .fetch_one(&self.reader)
        .await?;
        from_db("unread", total)
    }

    async fn topic_unread(&self, topic: i64, member: &str) -> Result<u64, StoreError> {
        // UNREAD names the reader ?3; ?2 is bound (to true) only to keep the numbering whole.
        let unread: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT {UNREAD} FROM board_topics t \
             LEFT JOIN board_reads m ON m.topic_id = t.id AND m.member_id = ?3 \
             WHERE t.id = ?1 AND ?2 IS NOT NULL"
        ))
        .bind(topic)
        .bind(true)
        .bind(member)
        .fetch_optional(&self.reader)
        .await?;
        from_db("unread", unread.unwrap_or(0))
    }

    async fn replies(&self, topic: i64) -> Result<Vec<Reply>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REPLY_COLUMNS} FROM board_replies WHERE topic_id = ? ORDER BY id"
        ))
        .bind(topic)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(reply_from_row).collect()
    }

    async fn mark_topic_read(
        &self,
        topic: i64,
        member: &str,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        let at = to_db("time", at)?;
        let mut conn = self.writer.acquire().await?;
        mark_read(&mut conn, topic, member, at).await
    }

    async fn add_reply(
        &self,
        topic: i64,
        author: &BoardAuthor,
        body: &str,
        bypass_lock: bool,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut SqliteConnection| {
            let current = require_topic(conn, topic, true).await?;
            if current.locked && !bypass_lock {
                return Err(StoreError::TopicLocked(topic));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO board_replies (topic_id, author_id, author_name, author_role, \
                 body, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(topic)
            .bind(&author.member_id)
            .bind(&author.name)
            .bind(author.role.as_str())
            .bind(body)
            .bind(at)
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE board_topics SET last_activity_at = MAX(last_activity_at, ?) WHERE id = ?",
            )
            .bind(at)
            .bind(topic)
            .execute(&mut *conn)
            .await?;
            reply_by_id(conn, id)
                .await?
                .ok_or_else(|| not_found("reply", id))
        })
        .await
    }

    async fn edit_topic(
        &self,
        id: i64,
        title: &str,
        body: &str,
        at: UnixMillis,
    ) -> Result<Topic, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut SqliteConnection| {
            require_topic(conn, id, true).await?;
            sqlx::query("UPDATE board_topics SET title = ?, body = ?, edited_at = ? WHERE id = ?")
                .bind(title)
                .bind(body)
                .bind(at)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            require_topic(conn, id, false).await
        })
        .await
    }

    async fn edit_reply(&self, id: i64, body: &str, at: UnixMillis) -> Result<Reply, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut SqliteConnection| {
            let reply = reply_by_id(conn, id)
                .await?
                .ok_or_else(|| not_found("reply", id))?;
            if reply.deleted_at.is_some() {
                return Err(StoreError::Deleted { what: "reply", id });
            }
            sqlx::query("UPDATE board_replies SET body = ?, edited_at = ? WHERE id = ?")
                .bind(body)
                .bind(at)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            reply_by_id(conn, id)
                .await?
                .ok_or_else(|| not_found("reply", id))
        })
        .await
    }

    async fn delete_topic(&self, id: i64, by: &str, at: UnixMillis) -> Result<Topic, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut SqliteConnection| {
            require_topic(conn, id, false).await?;
            sqlx::query(
                "UPDATE board_topics SET title = '', body = '', deleted_at = ?, deleted_by = ? \
                 WHERE id = ? AND deleted_at IS NULL",
            )
            .bind(at)
            .bind(by)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            require_topic(conn, id, false).await
        })
        .await
    }

    async fn delete_reply(&self, id: i64, by: &str, at: UnixMillis) -> Result<Reply, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut SqliteConnection| {
            sqlx::query(
                "UPDATE board_replies SET body = '', deleted_at = ?, deleted_by = ? \
                 WHERE id = ? AND deleted_at IS NULL",
            )
            .bind(at)
            .bind(by)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            reply_by_id(conn, id)
                .await?
                .ok_or_else(|| not_found("reply", id))
        })
        .await
    }

    async fn set_topic_flags(
        &self,
        id: i64,
        pinned: Option<bool>,
        locked: Option<bool>,
    ) -> Result<Topic, StoreError> {
        in_tx(self, async |conn: &mut SqliteConnection| {
            require_topic(conn, id, true).await?;
            sqlx::query(
                "UPDATE board_topics SET pinned = COALESCE(?, pinned), \
                 locked = COALESCE(?, locked) WHERE id = ?",
            )
            .bind(pinned.map(i64::from))
            .bind(locked.map(i64::from))
            .bind(id)
            .execute(&mut *conn)
            .await?;
            require_topic(conn, id, false).await
        })
        .await
    }

    async fn search_board(
        &self,
        course: &str,
        reader: &BoardReader,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        // A topic is indexed under rowid -id, a reply under +id (see the migration).
        let rows = sqlx::query(&format!(
            "SELECT s.rowid AS hit, t.id AS topic_id, t.title AS title, \
                    snippet(board_search, -1, '', '', '…', 16) AS excerpt \
             FROM board_search s \
             JOIN board_topics t ON t.id = CASE WHEN s.rowid < 0 THEN -s.rowid ELSE \
                  (SELECT r.topic_id FROM board_replies r WHERE r.id = s.rowid) END \
             WHERE board_search MATCH ?4 AND t.course_id = ?1 AND t.deleted_at IS NULL \
               AND {VISIBLE} \
             ORDER BY bm25(board_search), s.rowid LIMIT ?5"
        ))
        .bind(course)
        .bind(reader.staff)
        .bind(&reader.member_id)
        .bind(query)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let hit: i64 = row.try_get("hit")?;
                Ok(SearchHit {
                    topic_id: row.try_get("topic_id")?,
                    reply_id: (hit > 0).then_some(hit),
                    title: row.try_get("title")?,
                    excerpt: row.try_get("excerpt")?,
                })
            })
            .collect()
    }
}

/// Sets the member's read mark to the topic's latest reply (never lowering it).
async fn mark_read(
    conn: &mut SqliteConnection,
    topic: i64,
    member: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO board_reads (topic_id, member_id, last_reply_id, read_at) \
         VALUES (?1, ?2, (SELECT COALESCE(MAX(id), 0) FROM board_replies WHERE topic_id = ?1), ?3) \
         ON CONFLICT (topic_id, member_id) DO UPDATE SET \
         last_reply_id = MAX(last_reply_id, excluded.last_reply_id), read_at = excluded.read_at",
    )
    .bind(topic)
    .bind(member)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => not_found("topic", topic),
        _ => StoreError::Database(err),
    })?;
    Ok(())
}
