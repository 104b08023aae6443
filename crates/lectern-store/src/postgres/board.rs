//! The course discussion board on PostgreSQL (see `board.rs` for the semantics, which are the
//! same).
//!
//! # Search
//! Each topic and reply carries a `search` tsvector, written by the store in the same statement
//! as its text and emptied when the post is deleted, with a GIN index. The text is *folded* in
//! Rust before PostgreSQL sees it ([`fold`]): lowercased, accents removed (Unicode NFD without
//! combining marks) and every character that is not a letter or digit turned into a space. The
//! `simple` text search configuration then only splits on spaces and keeps every word as it is
//! (no stemming, no stop words), so search works the same for every language, and matches what
//! SQLite's FTS5 `unicode61 remove_diacritics 2` tokenizer does, without the `unaccent`
//! extension. A search is the same words as on SQLite ([`crate::search_query`]), folded, each a
//! prefix (`'word':*`), all required. The differences from FTS5:
//! - ranking is `ts_rank` with the title weighted above the body, not BM25, so results that
//!   match equally well may come in another order;
//! - the excerpt is cut by the store (up to 16 words around the first matching word, `…` where
//!   text was left out), not by FTS5's `snippet`, so it may start at a different word.

use lectern_proto::UnixMillis;
use sqlx::Row;
use sqlx::postgres::PgConnection;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::{PgBackend, finish};
use crate::MAX_SEARCH_TERMS;
use crate::board::{
    BoardAuthor, BoardReader, NewTopic, Reply, SearchHit, Topic, TopicSummary, reply_from_row,
    topic_from_row,
};
use crate::{StoreError, from_db, to_db};

const TOPIC_COLUMNS: &str = "t.id, t.course_id, t.author_id, t.author_name, t.author_role, \
     t.title, t.body, t.private_to, t.pinned, t.locked, t.created_at, t.edited_at, \
     t.deleted_at, t.deleted_by, t.last_activity_at, t.source_room, t.source_seq, \
     t.source_name, t.source_sent_at, \
     (SELECT COUNT(*) FROM board_replies r \
      WHERE r.topic_id = t.id AND r.deleted_at IS NULL) AS reply_count";

const REPLY_COLUMNS: &str = "id, topic_id, author_id, author_name, author_role, body, \
                             created_at, edited_at, deleted_at, deleted_by";

/// Which topics a reader sees: staff is `$2`, the reader's member id `$3`.
const VISIBLE: &str = "(t.private_to IS NULL OR $2 OR t.private_to = $3 OR t.author_id = $3)";

/// The unread count of topic `t` for the member bound as `member` (e.g. `$3`), with their read
/// mark joined as `m`.
fn unread(member: &str) -> String {
    format!(
        "((CASE WHEN m.topic_id IS NULL AND t.author_id <> {member} THEN 1 ELSE 0 END) + \
         (SELECT COUNT(*) FROM board_replies r WHERE r.topic_id = t.id \
          AND r.deleted_at IS NULL AND r.author_id <> {member} \
          AND r.id > COALESCE(m.last_reply_id, 0)))"
    )
}

/// The search vector of a topic: folded title (weight A) and body (weight B), as `$a`, `$b`.
fn topic_vector(a: &str, b: &str) -> String {
    format!(
        "setweight(to_tsvector('simple', {a}), 'A') || setweight(to_tsvector('simple', {b}), 'B')"
    )
}

/// Text as the search index sees it: lowercase, no accents, letters and digits in words
/// separated by single spaces.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text
        .chars()
        .flat_map(char::to_lowercase)
        .nfd()
        .filter(|c| !is_combining_mark(*c))
    {
        if c.is_alphanumeric() {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The folded words of what a user typed: the words [`crate::search_query`] takes, folded.
fn search_terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_SEARCH_TERMS)
        .flat_map(|word| fold(word).split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|word| !word.is_empty())
        .collect()
}

/// The tsquery for folded terms: each a quoted prefix, all required. The terms hold only letters
/// and digits, so nothing in them is tsquery syntax.
fn tsquery(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("'{term}':*"))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// How many words an excerpt holds at most, and how many come before the first match.
const EXCERPT_WORDS: usize = 16;
const EXCERPT_LEAD: usize = 4;

/// Whether a word of the text (as written) matches one of the folded prefix terms.
fn word_matches(word: &str, terms: &[String]) -> bool {
    fold(word)
        .split(' ')
        .any(|piece| !piece.is_empty() && terms.iter().any(|t| piece.starts_with(t.as_str())))
}

/// Up to [`EXCERPT_WORDS`] words of `text` around its first match, plain text, with `…` where
/// words were left out. `None` if no word matches.
fn excerpt(text: &str, terms: &[String]) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let first = words.iter().position(|w| word_matches(w, terms))?;
    let start = first
        .saturating_sub(EXCERPT_LEAD)
        .min(words.len().saturating_sub(EXCERPT_WORDS));
    let end = (start + EXCERPT_WORDS).min(words.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&words[start..end].join(" "));
    if end < words.len() {
        out.push('…');
    }
    Some(out)
}

async fn topic_by_id(conn: &mut PgConnection, id: i64) -> Result<Option<Topic>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {TOPIC_COLUMNS} FROM board_topics t WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(topic_from_row).transpose()
}

async fn reply_by_id(conn: &mut PgConnection, id: i64) -> Result<Option<Reply>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REPLY_COLUMNS} FROM board_replies WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(reply_from_row).transpose()
}

/// Locks the topic's row until the transaction ends, so a check made on it (deleted, locked)
/// still holds when the transaction writes: SQLite gets this from its single writer.
async fn lock_topic(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM board_topics WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(())
}

/// Locks the reply's row until the transaction ends (see [`lock_topic`]).
async fn lock_reply(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM board_replies WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(())
}

/// The topic, which must exist; with `live`, it must not be deleted either.
async fn require_topic(conn: &mut PgConnection, id: i64, live: bool) -> Result<Topic, StoreError> {
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

/// Runs `work` in one transaction, committing if it succeeds.
async fn in_tx<T, F>(db: &PgBackend, work: F) -> Result<T, StoreError>
where
    F: for<'c> AsyncFnOnce(&'c mut PgConnection) -> Result<T, StoreError>,
{
    let mut tx = db.pool.begin().await?;
    let mut value = None;
    let result = match work(&mut tx).await {
        Ok(v) => {
            value = Some(v);
            Ok(())
        }
        Err(err) => Err(err),
    };
    finish(tx, result).await?;
    value.ok_or_else(|| StoreError::Corrupt("a board transaction returned nothing".to_owned()))
}

/// Sets the member's read mark to the topic's latest reply (never lowering it).
async fn mark_read(
    conn: &mut PgConnection,
    topic: i64,
    member: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO board_reads (topic_id, member_id, last_reply_id, read_at) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(id), 0) FROM board_replies WHERE topic_id = $1), $3) \
         ON CONFLICT (topic_id, member_id) DO UPDATE SET \
         last_reply_id = GREATEST(board_reads.last_reply_id, excluded.last_reply_id), \
         read_at = excluded.read_at",
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

impl PgBackend {
    pub(crate) async fn topic(&self, id: i64) -> Result<Option<Topic>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        topic_by_id(&mut conn, id).await
    }

    pub(crate) async fn reply(&self, id: i64) -> Result<Option<Reply>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        reply_by_id(&mut conn, id).await
    }

    pub(crate) async fn create_topic(&self, topic: &NewTopic) -> Result<Topic, StoreError> {
        let at = to_db("time", topic.at)?;
        let source = topic.source.as_ref();
        let source_seq = source.map(|s| to_db("seq", s.seq)).transpose()?;
        let source_sent_at = source.map(|s| to_db("time", s.sent_at)).transpose()?;
        let sql = format!(
            "INSERT INTO board_topics (course_id, author_id, author_name, author_role, \
             title, body, private_to, created_at, last_activity_at, source_room, \
             source_seq, source_name, source_sent_at, search) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, {}) RETURNING id",
            topic_vector("$13", "$14")
        );
        in_tx(self, async |conn: &mut PgConnection| {
            let id: i64 = sqlx::query_scalar(&sql)
                .bind(&topic.course_id)
                .bind(&topic.author.member_id)
                .bind(&topic.author.name)
                .bind(topic.author.role.as_str())
                .bind(&topic.title)
                .bind(&topic.body)
                .bind(&topic.private_to)
                .bind(at)
                .bind(source.map(|s| s.room.as_str()))
                .bind(source_seq)
                .bind(source.map(|s| s.author_name.as_str()))
                .bind(source_sent_at)
                .bind(fold(&topic.title))
                .bind(fold(&topic.body))
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

    pub(crate) async fn topic_from_chat(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM board_topics WHERE source_room = $1 AND source_seq = $2",
        )
        .bind(room)
        .bind(to_db("seq", seq)?)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(crate) async fn board_topics(
        &self,
        course: &str,
        reader: &BoardReader,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<TopicSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOPIC_COLUMNS}, {} AS unread FROM board_topics t \
             LEFT JOIN board_reads m ON m.topic_id = t.id AND m.member_id = $3 \
             WHERE t.course_id = $1 AND t.deleted_at IS NULL AND {VISIBLE} \
             ORDER BY t.pinned DESC, t.last_activity_at DESC, t.id DESC LIMIT $4 OFFSET $5",
            unread("$3")
        ))
        .bind(course)
        .bind(reader.staff)
        .bind(&reader.member_id)
        .bind(i64::from(limit))
        .bind(to_db("offset", offset)?)
        .fetch_all(&self.pool)
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

    pub(crate) async fn board_unread(
        &self,
        course: &str,
        reader: &BoardReader,
    ) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(SUM({}), 0)::BIGINT FROM board_topics t \
             LEFT JOIN board_reads m ON m.topic_id = t.id AND m.member_id = $3 \
             WHERE t.course_id = $1 AND t.deleted_at IS NULL AND {VISIBLE}",
            unread("$3")
        ))
        .bind(course)
        .bind(reader.staff)
        .bind(&reader.member_id)
        .fetch_one(&self.pool)
        .await?;
        from_db("unread", total)
    }

    pub(crate) async fn topic_unread(&self, topic: i64, member: &str) -> Result<u64, StoreError> {
        let unread: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT {} FROM board_topics t \
             LEFT JOIN board_reads m ON m.topic_id = t.id AND m.member_id = $2 \
             WHERE t.id = $1",
            unread("$2")
        ))
        .bind(topic)
        .bind(member)
        .fetch_optional(&self.pool)
        .await?;
        from_db("unread", unread.unwrap_or(0))
    }

    pub(crate) async fn replies(&self, topic: i64) -> Result<Vec<Reply>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REPLY_COLUMNS} FROM board_replies WHERE topic_id = $1 ORDER BY id"
        ))
        .bind(topic)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reply_from_row).collect()
    }

    pub(crate) async fn mark_topic_read(
        &self,
        topic: i64,
        member: &str,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        let at = to_db("time", at)?;
        let mut conn = self.pool.acquire().await?;
        mark_read(&mut conn, topic, member, at).await
    }

    pub(crate) async fn add_reply(
        &self,
        topic: i64,
        author: &BoardAuthor,
        body: &str,
        bypass_lock: bool,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut PgConnection| {
            lock_topic(conn, topic).await?;
            let current = require_topic(conn, topic, true).await?;
            if current.locked && !bypass_lock {
                return Err(StoreError::TopicLocked(topic));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO board_replies (topic_id, author_id, author_name, author_role, \
                 body, created_at, search) \
                 VALUES ($1, $2, $3, $4, $5, $6, setweight(to_tsvector('simple', $7), 'B')) \
                 RETURNING id",
            )
            .bind(topic)
            .bind(&author.member_id)
            .bind(&author.name)
            .bind(author.role.as_str())
            .bind(body)
            .bind(at)
            .bind(fold(body))
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE board_topics SET last_activity_at = GREATEST(last_activity_at, $1) \
                 WHERE id = $2",
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

    pub(crate) async fn edit_topic(
        &self,
        id: i64,
        title: &str,
        body: &str,
        at: UnixMillis,
    ) -> Result<Topic, StoreError> {
        let at = to_db("time", at)?;
        let sql = format!(
            "UPDATE board_topics SET title = $1, body = $2, edited_at = $3, search = {} \
             WHERE id = $4",
            topic_vector("$5", "$6")
        );
        in_tx(self, async |conn: &mut PgConnection| {
            lock_topic(conn, id).await?;
            require_topic(conn, id, true).await?;
            sqlx::query(&sql)
                .bind(title)
                .bind(body)
                .bind(at)
                .bind(id)
                .bind(fold(title))
                .bind(fold(body))
                .execute(&mut *conn)
                .await?;
            require_topic(conn, id, false).await
        })
        .await
    }

    pub(crate) async fn edit_reply(
        &self,
        id: i64,
        body: &str,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut PgConnection| {
            lock_reply(conn, id).await?;
            let reply = reply_by_id(conn, id)
                .await?
                .ok_or_else(|| not_found("reply", id))?;
            if reply.deleted_at.is_some() {
                return Err(StoreError::Deleted { what: "reply", id });
            }
            sqlx::query(
                "UPDATE board_replies SET body = $1, edited_at = $2, \
                 search = setweight(to_tsvector('simple', $3), 'B') WHERE id = $4",
            )
            .bind(body)
            .bind(at)
            .bind(fold(body))
            .bind(id)
            .execute(&mut *conn)
            .await?;
            reply_by_id(conn, id)
                .await?
                .ok_or_else(|| not_found("reply", id))
        })
        .await
    }

    pub(crate) async fn delete_topic(
        &self,
        id: i64,
        by: &str,
        at: UnixMillis,
    ) -> Result<Topic, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut PgConnection| {
            require_topic(conn, id, false).await?;
            sqlx::query(
                "UPDATE board_topics SET title = '', body = '', search = ''::tsvector, \
                 deleted_at = $1, deleted_by = $2 WHERE id = $3 AND deleted_at IS NULL",
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

    pub(crate) async fn delete_reply(
        &self,
        id: i64,
        by: &str,
        at: UnixMillis,
    ) -> Result<Reply, StoreError> {
        let at = to_db("time", at)?;
        in_tx(self, async |conn: &mut PgConnection| {
            sqlx::query(
                "UPDATE board_replies SET body = '', search = ''::tsvector, deleted_at = $1, \
                 deleted_by = $2 WHERE id = $3 AND deleted_at IS NULL",
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

    pub(crate) async fn set_topic_flags(
        &self,
        id: i64,
        pinned: Option<bool>,
        locked: Option<bool>,
    ) -> Result<Topic, StoreError> {
        in_tx(self, async |conn: &mut PgConnection| {
            lock_topic(conn, id).await?;
            require_topic(conn, id, true).await?;
            sqlx::query(
                "UPDATE board_topics SET pinned = COALESCE($1, pinned), \
                 locked = COALESCE($2, locked) WHERE id = $3",
            )
            .bind(pinned)
            .bind(locked)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            require_topic(conn, id, false).await
        })
        .await
    }

    /// `text` is what the user typed; see the module docs for how it is searched.
    pub(crate) async fn search_board(
        &self,
        course: &str,
        reader: &BoardReader,
        text: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let terms = search_terms(text);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // A topic hit is keyed -id, a reply hit +id, as SQLite's index rowids are: ties in rank
        // come in the same order on both backends.
        let rows = sqlx::query(&format!(
            "SELECT h.hit, h.topic_id, h.title, h.topic_body, h.reply_body FROM ( \
               SELECT -t.id AS hit, t.id AS topic_id, t.title, t.body AS topic_body, \
                      NULL::TEXT AS reply_body, \
                      ts_rank(t.search, to_tsquery('simple', $4)) AS rank \
               FROM board_topics t \
               WHERE t.search @@ to_tsquery('simple', $4) AND t.course_id = $1 \
                 AND t.deleted_at IS NULL AND {VISIBLE} \
               UNION ALL \
               SELECT r.id, t.id, t.title, NULL::TEXT, r.body, \
                      ts_rank(r.search, to_tsquery('simple', $4)) \
               FROM board_replies r JOIN board_topics t ON t.id = r.topic_id \
               WHERE r.search @@ to_tsquery('simple', $4) AND r.deleted_at IS NULL \
                 AND t.course_id = $1 AND t.deleted_at IS NULL AND {VISIBLE} \
             ) h ORDER BY h.rank DESC, h.hit LIMIT $5"
        ))
        .bind(course)
        .bind(reader.staff)
        .bind(&reader.member_id)
        .bind(tsquery(&terms))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let hit: i64 = row.try_get("hit")?;
                let title: String = row.try_get("title")?;
                let topic_body: Option<String> = row.try_get("topic_body")?;
                let reply_body: Option<String> = row.try_get("reply_body")?;
                let excerpt = match (reply_body, topic_body) {
                    (Some(body), _) => excerpt(&body, &terms),
                    (None, Some(body)) => {
                        excerpt(&body, &terms).or_else(|| excerpt(&title, &terms))
                    }
                    (None, None) => None,
                };
                Ok(SearchHit {
                    topic_id: row.try_get("topic_id")?,
                    reply_id: (hit > 0).then_some(hit),
                    title,
                    excerpt: excerpt.unwrap_or_default(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_lowercases_strips_accents_and_splits_on_non_words() {
        assert_eq!(fold("Élève's  DÉJÀ-vu!"), "eleve s deja vu");
        assert_eq!(fold("  ?! "), "");
        assert_eq!(fold("x²+ÿ Ørsted"), "x² y ørsted");
        assert_eq!(fold("日本語 テキスト"), "日本語 テキスト");
    }

    #[test]
    fn search_terms_are_folded_words_and_never_syntax() {
        assert_eq!(search_terms("EIGENVÉC"), vec!["eigenvec"]);
        assert_eq!(search_terms("don't \"stop\""), vec!["don", "t", "stop"]);
        assert!(search_terms("  ?! ").is_empty());
        assert_eq!(
            tsquery(&search_terms("a:b & 'c' | !d")),
            "'a':* & 'b':* & 'c':* & 'd':*"
        );
        assert_eq!(search_terms(&"w ".repeat(100)).len(), MAX_SEARCH_TERMS);
    }

    #[test]
    fn excerpts_are_cut_around_the_first_match() {
        let terms = vec!["matr".to_owned()];
        assert_eq!(
            excerpt("How do we diagonalise a matrix?", &terms).as_deref(),
            Some("How do we diagonalise a matrix?")
        );
        let long: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let mut text = long.clone();
        text[20] = "Matrices".to_owned();
        let cut = excerpt(&text.join(" "), &terms).unwrap();
        assert!(cut.starts_with("…w16 "), "{cut}");
        assert!(cut.ends_with("w31…"), "{cut}");
        assert_eq!(cut.split_whitespace().count(), EXCERPT_WORDS);
        assert_eq!(excerpt("nothing here", &terms), None);
    }
}
