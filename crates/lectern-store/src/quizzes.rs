//! Quizzes and attempts (`migrations/0008_quizzes.sql`).
//!
//! The store keeps what needs the database: a member's attempt numbers are unique (two starts
//! racing for the same number: one is a [`StoreError::Conflict`]), and an attempt is submitted
//! at most once (a second submission is a [`StoreError::Conflict`] and changes nothing), so
//! two simultaneous submissions are graded into the store once. Quizzes and answers are JSON
//! the server validated (lectern-quiz); who may do what, attempt limits, due dates and time
//! limits are the server's business.
//!
//! The SQLite SQL is in the section at the end of this module; the PostgreSQL twin, with the
//! same semantics (rows locked where SQLite relies on its single writer), is in
//! `postgres/quizzes.rs`.

use lectern_proto::UnixMillis;
use sqlx::sqlite::SqliteConnection;

use crate::row::Columns;
use crate::sqlite::SqliteBackend;
use crate::{Backend, Store, StoreError, classify, to_db};

/// A quiz to create.
#[derive(Debug, Clone)]
pub struct NewQuiz {
    pub course_id: String,
    pub title: String,
    /// The authored quiz (JSON of `lectern_quiz::Quiz`), keys included.
    pub spec: String,
    pub published: bool,
    pub at: UnixMillis,
}

/// A quiz as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredQuiz {
    pub id: i64,
    pub course_id: String,
    pub title: String,
    pub spec: String,
    pub published: bool,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// An attempt to start.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub quiz_id: i64,
    pub member_id: String,
    pub member_name: String,
    /// 1 + the member's attempts so far.
    pub number: u32,
    /// The shuffle seed of the attempt.
    pub seed: i64,
    pub max_score: f64,
    pub at: UnixMillis,
}

/// What a submission stores, once.
#[derive(Debug, Clone)]
pub struct AttemptSubmission {
    /// JSON of the submitted answers.
    pub answers: String,
    /// JSON of the graded attempt.
    pub result: String,
    pub score: f64,
    pub at: UnixMillis,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct QuizAttempt {
    pub id: i64,
    pub quiz_id: i64,
    pub member_id: String,
    pub member_name: String,
    pub number: u32,
    pub seed: i64,
    pub started_at: UnixMillis,
    /// `None` while the attempt is open; then `answers`, `result` and `score` are `None` too.
    pub submitted_at: Option<UnixMillis>,
    pub answers: Option<String>,
    pub result: Option<String>,
    pub score: Option<f64>,
    pub max_score: f64,
}

impl Store {
    /// Creates a quiz. [`StoreError::NotFound`] if the course does not exist.
    pub async fn create_quiz(&self, quiz: &NewQuiz) -> Result<StoredQuiz, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.create_quiz(quiz).await,
            Backend::Postgres(db) => db.create_quiz(quiz).await,
        }
    }

    /// The quiz with this id, whatever its course.
    pub async fn quiz(&self, id: i64) -> Result<Option<StoredQuiz>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.quiz(id).await,
            Backend::Postgres(db) => db.quiz(id).await,
        }
    }

    /// The course's quizzes, oldest first.
    pub async fn quizzes(&self, course: &str) -> Result<Vec<StoredQuiz>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.quizzes(course).await,
            Backend::Postgres(db) => db.quizzes(course).await,
        }
    }

    /// Replaces a quiz's title and authored JSON. Submitted attempts keep their stored result.
    /// [`StoreError::NotFound`] if there is no such quiz.
    pub async fn update_quiz(
        &self,
        id: i64,
        title: &str,
        spec: &str,
        at: UnixMillis,
    ) -> Result<StoredQuiz, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.update_quiz(id, title, spec, at).await,
            Backend::Postgres(db) => db.update_quiz(id, title, spec, at).await,
        }
    }

    /// Publishes a quiz to students, or takes it back. [`StoreError::NotFound`] if there is no
    /// such quiz.
    pub async fn set_quiz_published(
        &self,
        id: i64,
        published: bool,
        at: UnixMillis,
    ) -> Result<StoredQuiz, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.set_quiz_published(id, published, at).await,
            Backend::Postgres(db) => db.set_quiz_published(id, published, at).await,
        }
    }

    /// Deletes a quiz with its attempts; whether it existed.
    pub async fn delete_quiz(&self, id: i64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.delete_quiz(id).await,
            Backend::Postgres(db) => db.delete_quiz(id).await,
        }
    }

    /// Starts an attempt. [`StoreError::Conflict`] if the member already has an attempt with
    /// this number (another start won the race), [`StoreError::NotFound`] if the quiz is gone.
    pub async fn start_attempt(&self, attempt: &NewAttempt) -> Result<QuizAttempt, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.start_attempt(attempt).await,
            Backend::Postgres(db) => db.start_attempt(attempt).await,
        }
    }

    /// The attempt with this id.
    pub async fn attempt(&self, id: i64) -> Result<Option<QuizAttempt>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.attempt(id).await,
            Backend::Postgres(db) => db.attempt(id).await,
        }
    }

    /// The quiz's attempts, of one member or of everyone, by member then number.
    pub async fn attempts(
        &self,
        quiz: i64,
        member: Option<&str>,
    ) -> Result<Vec<QuizAttempt>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.attempts(quiz, member).await,
            Backend::Postgres(db) => db.attempts(quiz, member).await,
        }
    }

    /// Stores the submission of an open attempt. [`StoreError::Conflict`] if it was already
    /// submitted (nothing changes), [`StoreError::NotFound`] if there is no such attempt.
    pub async fn submit_attempt(
        &self,
        id: i64,
        submission: &AttemptSubmission,
    ) -> Result<QuizAttempt, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.submit_attempt(id, submission).await,
            Backend::Postgres(db) => db.submit_attempt(id, submission).await,
        }
    }
}

pub(crate) fn not_found(what: &'static str, id: i64) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// Starting an attempt failed: a taken number is a [`StoreError::Conflict`] (a racing start won),
/// a missing quiz [`StoreError::NotFound`].
pub(crate) fn attempt_insert_error(err: sqlx::Error, attempt: &NewAttempt) -> StoreError {
    let number = format!("{}#{}", attempt.quiz_id, attempt.number);
    classify(
        err,
        ("attempt", &number),
        ("quiz", &attempt.quiz_id.to_string()),
    )
}

/// A stored attempt number as the `u32` it was written from.
pub(crate) fn attempt_number(number: i64) -> Result<u32, StoreError> {
    u32::try_from(number).map_err(|_| StoreError::Corrupt(format!("attempt number {number}")))
}

// ---- SQLite ----

pub(crate) const QUIZ_COLUMNS: &str =
    "id, course_id, title, spec, published, created_at, updated_at";
pub(crate) const ATTEMPT_COLUMNS: &str = "id, quiz_id, member_id, member_name, number, seed, started_at, \
                                          submitted_at, answers, result, score, max_score";

pub(crate) fn quiz_from_row(row: &impl Columns) -> Result<StoredQuiz, StoreError> {
    Ok(StoredQuiz {
        id: row.int("id")?,
        course_id: row.text("course_id")?,
        title: row.text("title")?,
        spec: row.text("spec")?,
        published: row.flag("published")?,
        created_at: row.unsigned("created_at")?,
        updated_at: row.unsigned("updated_at")?,
    })
}

pub(crate) fn attempt_from_row(row: &impl Columns) -> Result<QuizAttempt, StoreError> {
    Ok(QuizAttempt {
        id: row.int("id")?,
        quiz_id: row.int("quiz_id")?,
        member_id: row.text("member_id")?,
        member_name: row.text("member_name")?,
        number: attempt_number(row.int("number")?)?,
        seed: row.int("seed")?,
        started_at: row.unsigned("started_at")?,
        submitted_at: row.opt_unsigned("submitted_at")?,
        answers: row.opt_text("answers")?,
        result: row.opt_text("result")?,
        score: row.opt_real("score")?,
        max_score: row.real("max_score")?,
    })
}

async fn quiz_by_id(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<StoredQuiz>, StoreError> {
    sqlx::query(&format!("SELECT {QUIZ_COLUMNS} FROM quizzes WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(quiz_from_row)
        .transpose()
}

async fn attempt_by_id(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<QuizAttempt>, StoreError> {
    sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(attempt_from_row)
    .transpose()
}

impl SqliteBackend {
    async fn create_quiz(&self, quiz: &NewQuiz) -> Result<StoredQuiz, StoreError> {
        let at = to_db("time", quiz.at)?;
        let mut conn = self.writer.acquire().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO quizzes (course_id, title, spec, published, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {QUIZ_COLUMNS}"
        ))
        .bind(&quiz.course_id)
        .bind(&quiz.title)
        .bind(&quiz.spec)
        .bind(i64::from(quiz.published))
        .bind(at)
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| classify(err, ("quiz", &quiz.title), ("course", &quiz.course_id)))?;
        quiz_from_row(&row)
    }

    async fn quiz(&self, id: i64) -> Result<Option<StoredQuiz>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        quiz_by_id(&mut conn, id).await
    }

    async fn quizzes(&self, course: &str) -> Result<Vec<StoredQuiz>, StoreError> {
        sqlx::query(&format!(
            "SELECT {QUIZ_COLUMNS} FROM quizzes WHERE course_id = ? ORDER BY id"
        ))
        .bind(course)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(quiz_from_row)
        .collect()
    }

    async fn update_quiz(
        &self,
        id: i64,
        title: &str,
        spec: &str,
        at: UnixMillis,
    ) -> Result<StoredQuiz, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE quizzes SET title = ?, spec = ?, updated_at = ? WHERE id = ? \
             RETURNING {QUIZ_COLUMNS}"
        ))
        .bind(title)
        .bind(spec)
        .bind(to_db("time", at)?)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref()
            .map(quiz_from_row)
            .transpose()?
            .ok_or_else(|| not_found("quiz", id))
    }

    async fn set_quiz_published(
        &self,
        id: i64,
        published: bool,
        at: UnixMillis,
    ) -> Result<StoredQuiz, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE quizzes SET published = ?, updated_at = ? WHERE id = ? \
             RETURNING {QUIZ_COLUMNS}"
        ))
        .bind(i64::from(published))
        .bind(to_db("time", at)?)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref()
            .map(quiz_from_row)
            .transpose()?
            .ok_or_else(|| not_found("quiz", id))
    }

    async fn delete_quiz(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM quizzes WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<QuizAttempt, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO quiz_attempts (quiz_id, member_id, member_name, number, seed, \
             started_at, max_score) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {ATTEMPT_COLUMNS}"
        ))
        .bind(attempt.quiz_id)
        .bind(&attempt.member_id)
        .bind(&attempt.member_name)
        .bind(i64::from(attempt.number))
        .bind(attempt.seed)
        .bind(to_db("time", attempt.at)?)
        .bind(attempt.max_score)
        .fetch_one(&self.writer)
        .await
        .map_err(|err| attempt_insert_error(err, attempt))?;
        attempt_from_row(&row)
    }

    async fn attempt(&self, id: i64) -> Result<Option<QuizAttempt>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        attempt_by_id(&mut conn, id).await
    }

    async fn attempts(
        &self,
        quiz: i64,
        member: Option<&str>,
    ) -> Result<Vec<QuizAttempt>, StoreError> {
        sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts \
             WHERE quiz_id = ? AND (? IS NULL OR member_id = ?) ORDER BY member_id, number"
        ))
        .bind(quiz)
        .bind(member)
        .bind(member)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(attempt_from_row)
        .collect()
    }

    async fn submit_attempt(
        &self,
        id: i64,
        submission: &AttemptSubmission,
    ) -> Result<QuizAttempt, StoreError> {
        let at = to_db("time", submission.at)?;
        let mut tx = self.writer.begin().await?;
        let outcome = async {
            // Only an open attempt is updated: of two racing submissions, the second finds
            // `submitted_at` set and changes nothing.
            let updated = sqlx::query(
                "UPDATE quiz_attempts SET submitted_at = ?, answers = ?, result = ?, score = ? \
                 WHERE id = ? AND submitted_at IS NULL",
            )
            .bind(at)
            .bind(&submission.answers)
            .bind(&submission.result)
            .bind(submission.score)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let attempt = attempt_by_id(&mut tx, id)
                .await?
                .ok_or_else(|| not_found("attempt", id))?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::Conflict {
                    what: "submission of attempt",
                    id: id.to_string(),
                });
            }
            Ok(attempt)
        }
        .await;
        match outcome {
            Ok(attempt) => {
                tx.commit().await?;
                Ok(attempt)
            }
            Err(err) => {
                tx.rollback().await?;
                Err(err)
            }
        }
    }
}
