//! Quizzes and attempts on PostgreSQL (see `quizzes.rs` for the semantics, which are the same).
//!
//! Two starts racing for one attempt number: the unique constraint on
//! `(quiz_id, member_id, number)` makes the second insert wait for the first and then fail, a
//! [`StoreError::Conflict`]. A submission locks the attempt's row (`SELECT ... FOR UPDATE`)
//! before it checks that the attempt is open, so of two racing submissions the second waits,
//! finds the attempt submitted and changes nothing.

use lectern_proto::UnixMillis;
use sqlx::postgres::PgConnection;

use super::PgBackend;
use crate::quizzes::{
    ATTEMPT_COLUMNS, AttemptSubmission, NewAttempt, NewQuiz, QUIZ_COLUMNS, QuizAttempt, StoredQuiz,
    attempt_from_row, attempt_insert_error, not_found, quiz_from_row,
};
use crate::{StoreError, classify, to_db};

/// The attempt, its row locked until the transaction ends.
async fn lock_attempt(conn: &mut PgConnection, id: i64) -> Result<Option<QuizAttempt>, StoreError> {
    sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(attempt_from_row)
    .transpose()
}

impl PgBackend {
    pub(crate) async fn create_quiz(&self, quiz: &NewQuiz) -> Result<StoredQuiz, StoreError> {
        let at = to_db("time", quiz.at)?;
        let row = sqlx::query(&format!(
            "INSERT INTO quizzes (course_id, title, spec, published, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {QUIZ_COLUMNS}"
        ))
        .bind(&quiz.course_id)
        .bind(&quiz.title)
        .bind(&quiz.spec)
        .bind(quiz.published)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| classify(err, ("quiz", &quiz.title), ("course", &quiz.course_id)))?;
        quiz_from_row(&row)
    }

    pub(crate) async fn quiz(&self, id: i64) -> Result<Option<StoredQuiz>, StoreError> {
        sqlx::query(&format!("SELECT {QUIZ_COLUMNS} FROM quizzes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(quiz_from_row)
            .transpose()
    }

    pub(crate) async fn quizzes(&self, course: &str) -> Result<Vec<StoredQuiz>, StoreError> {
        sqlx::query(&format!(
            "SELECT {QUIZ_COLUMNS} FROM quizzes WHERE course_id = $1 ORDER BY id"
        ))
        .bind(course)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(quiz_from_row)
        .collect()
    }

    pub(crate) async fn update_quiz(
        &self,
        id: i64,
        title: &str,
        spec: &str,
        at: UnixMillis,
    ) -> Result<StoredQuiz, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE quizzes SET title = $1, spec = $2, updated_at = $3 WHERE id = $4 \
             RETURNING {QUIZ_COLUMNS}"
        ))
        .bind(title)
        .bind(spec)
        .bind(to_db("time", at)?)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(quiz_from_row)
            .transpose()?
            .ok_or_else(|| not_found("quiz", id))
    }

    pub(crate) async fn set_quiz_published(
        &self,
        id: i64,
        published: bool,
        at: UnixMillis,
    ) -> Result<StoredQuiz, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE quizzes SET published = $1, updated_at = $2 WHERE id = $3 \
             RETURNING {QUIZ_COLUMNS}"
        ))
        .bind(published)
        .bind(to_db("time", at)?)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(quiz_from_row)
            .transpose()?
            .ok_or_else(|| not_found("quiz", id))
    }

    pub(crate) async fn delete_quiz(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM quizzes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn start_attempt(
        &self,
        attempt: &NewAttempt,
    ) -> Result<QuizAttempt, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO quiz_attempts (quiz_id, member_id, member_name, number, seed, \
             started_at, max_score) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING {ATTEMPT_COLUMNS}"
        ))
        .bind(attempt.quiz_id)
        .bind(&attempt.member_id)
        .bind(&attempt.member_name)
        .bind(i64::from(attempt.number))
        .bind(attempt.seed)
        .bind(to_db("time", attempt.at)?)
        .bind(attempt.max_score)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| attempt_insert_error(err, attempt))?;
        attempt_from_row(&row)
    }

    pub(crate) async fn attempt(&self, id: i64) -> Result<Option<QuizAttempt>, StoreError> {
        sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(attempt_from_row)
        .transpose()
    }

    pub(crate) async fn attempts(
        &self,
        quiz: i64,
        member: Option<&str>,
    ) -> Result<Vec<QuizAttempt>, StoreError> {
        sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts \
             WHERE quiz_id = $1 AND ($2::TEXT IS NULL OR member_id = $2) \
             ORDER BY member_id, number"
        ))
        .bind(quiz)
        .bind(member)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(attempt_from_row)
        .collect()
    }

    pub(crate) async fn submit_attempt(
        &self,
        id: i64,
        submission: &AttemptSubmission,
    ) -> Result<QuizAttempt, StoreError> {
        let at = to_db("time", submission.at)?;
        let mut tx = self.pool.begin().await?;
        let outcome = async {
            // The row stays locked until the end of the transaction: a racing submission waits
            // here, then finds `submitted_at` set.
            let open = lock_attempt(&mut tx, id)
                .await?
                .ok_or_else(|| not_found("attempt", id))?;
            if open.submitted_at.is_some() {
                return Err(StoreError::Conflict {
                    what: "submission of attempt",
                    id: id.to_string(),
                });
            }
            let row = sqlx::query(&format!(
                "UPDATE quiz_attempts SET submitted_at = $1, answers = $2, result = $3, \
                 score = $4 WHERE id = $5 AND submitted_at IS NULL RETURNING {ATTEMPT_COLUMNS}"
            ))
            .bind(at)
            .bind(&submission.answers)
            .bind(&submission.result)
            .bind(submission.score)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            attempt_from_row(&row)
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
