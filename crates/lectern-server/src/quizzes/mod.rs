//! Quizzes end to end (issue 13, point 4; docs/QUIZZES.md): the service shared by the member
//! API (`api/board_routes/quizzes.rs`), the admin API (`api/quiz_routes.rs`) and the CLI.
//!
//! The pure crate `lectern-quiz` validates, builds the key-free student view and grades; this
//! module stores quizzes and attempts (`lectern-store`), applies the attempt rules by the
//! server's clock, and builds the staff reports (per-student results, per-question statistics).
//!
//! Keys: a student only ever receives a [`StudentQuiz`] (inside [`AttemptView`]) and, once the
//! attempt is submitted, its [`GradedAttempt`]. The authored [`Quiz`] goes to staff only
//! ([`QuizDetail`]); callers check the role before asking for it.

use std::collections::BTreeMap;

use lectern_proto::{Role, UnixMillis};
use lectern_quiz::{
    Answer, AnswerError, AttemptError, GiftError, GradedAttempt, Outcome, QuestionAnswer,
    QuestionKind, Quiz, QuizError, StudentQuiz, gift, grade, may_attempt, may_submit,
};
use lectern_store::{
    AttemptSubmission, NewAttempt, NewQuiz, QuizAttempt, Store, StoreError, StoredQuiz,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::courses::service::{require_course, rfc3339};
use crate::courses::{ErrorDetail, ServiceError};

mod attempts;
pub mod live;
mod reports;

pub use attempts::{
    get_attempt, live_launch_title, member_quiz, member_quizzes, my_attempts, start_attempt,
    submit_attempt,
};
pub use live::LiveQuizzes;
pub use reports::{results, results_csv, stats};

/// A submission this many seconds after the time limit or the due date still counts: the
/// answers were on their way (a page that submits when its timer ends).
pub const SUBMIT_GRACE_SECS: i64 = 5;

/// The title of a quiz imported from GIFT when none is given (GIFT has no quiz title).
pub const DEFAULT_GIFT_TITLE: &str = "Imported quiz";

/// How an uploaded quiz is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuizFormat {
    /// The JSON of [`Quiz`] (docs/QUIZZES.md).
    Json,
    /// Moodle's GIFT text.
    Gift,
}

impl QuizFormat {
    /// The format of a file by its name: `.gift` and `.txt` are GIFT, anything else is
    /// guessed from the text (JSON starts with `{`).
    pub fn guess(file_name: &str, text: &str) -> QuizFormat {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".gift") || lower.ends_with(".txt") {
            QuizFormat::Gift
        } else if lower.ends_with(".json") || text.trim_start().starts_with('{') {
            QuizFormat::Json
        } else {
            QuizFormat::Gift
        }
    }
}

/// A quiz in a list: what anyone who may see it reads, no questions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuizSummary {
    pub id: i64,
    pub title: String,
    pub description: String,
    /// Students see published quizzes only.
    pub published: bool,
    /// `null`: any number of attempts.
    pub max_attempts: Option<u32>,
    /// Unix seconds; `null`: no due date.
    pub due_at: Option<i64>,
    /// Seconds from the start of an attempt; `null`: no limit.
    pub time_limit_secs: Option<u32>,
    pub question_count: u32,
    pub max_score: f64,
    /// Unix milliseconds.
    pub created_at: u64,
    pub updated_at: u64,
}

/// The member's own standing on a quiz.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MyQuizState {
    /// Attempts started, open ones included.
    pub attempts_used: u32,
    /// `null`: unlimited.
    pub attempts_left: Option<u32>,
    /// The best score of a submitted attempt.
    pub best_score: Option<f64>,
    /// An attempt that is open and still within its time: continue it.
    pub open_attempt: Option<i64>,
    /// Whether the member may start (or continue) an attempt now.
    pub can_attempt: bool,
    /// Why not, when `can_attempt` is false: `no_attempts_left`, `past_due` or (in the member
    /// API) `observer`.
    pub blocked: Option<String>,
}

/// A quiz in a member's list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuizListItem {
    pub quiz: QuizSummary,
    pub mine: MyQuizState,
}

/// A quiz for staff: the summary and the authored quiz with its keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuizDetail {
    pub quiz: QuizSummary,
    /// The authored quiz, keys included (docs/QUIZZES.md, "The model").
    #[schema(value_type = Object)]
    pub authored: Quiz,
}

/// An attempt as its student (or staff) sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub id: i64,
    pub quiz_id: i64,
    pub member_id: String,
    /// 1 for the first attempt.
    pub number: u32,
    /// Unix milliseconds, by the server's clock.
    pub started_at: u64,
    pub submitted_at: Option<u64>,
    /// While open: when submissions stop being accepted (the time limit, the due date or,
    /// for an attempt started while the quiz was live in class, the end of that live quiz,
    /// whichever comes first), Unix milliseconds. `null`: no limit.
    pub deadline_at: Option<u64>,
    /// The server's clock when this was sent, Unix milliseconds: a timer counts down
    /// `deadline_at - server_now` without trusting the device's clock.
    pub server_now: u64,
    pub score: Option<f64>,
    pub max_score: f64,
    /// The quiz as this attempt shows it: no keys, no feedback.
    #[schema(value_type = Object)]
    pub quiz: StudentQuiz,
    /// After submission: the answers given.
    #[schema(value_type = Option<Vec<Object>>)]
    pub answers: Option<Vec<QuestionAnswer>>,
    /// After submission: score, feedback, explanations and the solution per question.
    #[schema(value_type = Option<Object>)]
    pub result: Option<GradedAttempt>,
}

/// One of a member's attempts, in a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptBrief {
    pub id: i64,
    pub number: u32,
    pub started_at: u64,
    pub submitted_at: Option<u64>,
    pub score: Option<f64>,
    pub max_score: f64,
}

/// A submission: answers to some or all questions (docs/QUIZZES.md, "Answers").
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionInput {
    /// `{question, type, choice | choices | value | text}` per answered question.
    #[schema(value_type = Vec<Object>)]
    pub answers: Vec<QuestionAnswer>,
}

/// One student's results on a quiz.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StudentResult {
    pub member_id: String,
    pub name: String,
    /// On the course roster as a student (else someone else who attempted, e.g. staff).
    pub on_roster: bool,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts submitted.
    pub submitted: u32,
    pub best_score: Option<f64>,
    pub last_score: Option<f64>,
    /// Unix milliseconds.
    pub last_submitted_at: Option<u64>,
}

/// Every student's results on a quiz: the roster's students (with or without attempts) and
/// anyone else who attempted, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuizResults {
    pub quiz: QuizSummary,
    pub students: Vec<StudentResult>,
}

/// How often a choice was picked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChoiceStats {
    /// The choice's position in the authored quiz.
    pub index: u32,
    pub text: String,
    /// Marked correct (single choice) or positively weighted (multiple choice).
    pub correct: bool,
    pub count: u32,
}

/// How one question went over every submitted attempt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuestionStats {
    pub question: String,
    pub text: String,
    /// `single_choice`, `multiple_choice`, `numeric` or `short_text`.
    #[serde(rename = "type")]
    pub kind: String,
    pub max: f64,
    /// Submitted attempts that answered it.
    pub answered: u32,
    /// Submitted attempts with full marks on it.
    pub correct: u32,
    /// `correct` over the submitted attempts (0 when there are none).
    pub share_correct: f64,
    /// The mean score over the submitted attempts (unanswered counts 0).
    pub mean_score: f64,
    /// For choice questions: picks per choice, in authored order.
    pub choices: Vec<ChoiceStats>,
}

/// Per-question statistics of a quiz.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuizStats {
    pub quiz: QuizSummary,
    pub submitted_attempts: u32,
    /// The mean total score over the submitted attempts (0 when there are none).
    pub mean_score: f64,
    pub questions: Vec<QuestionStats>,
}

/// Who takes or reads an attempt.
#[derive(Debug, Clone)]
pub struct Taker<'a> {
    pub member_id: &'a str,
    pub name: &'a str,
}

// ---- errors ----

fn invalid(message: String, details: Vec<ErrorDetail>) -> ServiceError {
    ServiceError::InvalidInput { message, details }
}

fn quiz_invalid(err: &QuizError) -> ServiceError {
    let field = match err {
        QuizError::Question { question, .. } | QuizError::DuplicateQuestionId { question } => {
            format!("questions.{question}")
        }
        _ => "quiz".to_owned(),
    };
    invalid(
        format!("the quiz is not valid: {err}"),
        vec![ErrorDetail {
            field: Some(field),
            line: None,
            reason: err.to_string(),
        }],
    )
}

fn gift_invalid(err: &GiftError) -> ServiceError {
    invalid(
        format!("the GIFT text cannot be imported: {err}"),
        vec![ErrorDetail {
            field: None,
            line: Some(err.line as u64),
            reason: err.kind.to_string(),
        }],
    )
}

fn answers_invalid(err: &AnswerError) -> ServiceError {
    invalid(
        format!("the answers cannot be graded: {err}"),
        vec![ErrorDetail {
            field: Some("answers".to_owned()),
            line: None,
            reason: err.to_string(),
        }],
    )
}

/// An attempt rule as a refusal with a stable code.
fn refused(err: AttemptError) -> ServiceError {
    let code = match err {
        AttemptError::NoAttemptsLeft { .. } => "no_attempts_left",
        AttemptError::PastDue { .. } => "past_due",
        AttemptError::TimeUp { .. } => "time_up",
        _ => "refused",
    };
    let message = match err {
        AttemptError::NoAttemptsLeft { max } => {
            format!("all {max} attempts at this quiz are used")
        }
        AttemptError::PastDue { due_at } => format!(
            "this quiz was due at {}",
            rfc3339(u64::try_from(due_at).unwrap_or(0).saturating_mul(1000))
        ),
        AttemptError::TimeUp { limit_secs } => {
            format!("the time limit of {limit_secs} seconds for this attempt is over")
        }
        other => other.to_string(),
    };
    ServiceError::Refused { code, message }
}

fn corrupt(what: &str, id: i64, err: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!(
        "{what} {id} holds JSON this version cannot read: {err}"
    ))
}

fn quiz_not_found(id: i64) -> ServiceError {
    ServiceError::NotFound {
        what: "quiz",
        id: id.to_string(),
    }
}

// ---- reading uploads ----

/// Reads an uploaded quiz: the JSON of [`Quiz`], or GIFT text (titled `gift_title`, else
/// [`DEFAULT_GIFT_TITLE`]). Validated; errors name the field, question or line.
pub fn parse_quiz(
    text: &str,
    format: QuizFormat,
    gift_title: Option<&str>,
) -> Result<Quiz, ServiceError> {
    let quiz = match format {
        QuizFormat::Json => serde_json::from_str::<Quiz>(text).map_err(|err| {
            invalid(
                format!("the quiz JSON cannot be read: {err}"),
                vec![ErrorDetail {
                    field: None,
                    line: Some(err.line() as u64),
                    reason: err.to_string(),
                }],
            )
        })?,
        QuizFormat::Gift => {
            let questions = gift::parse(text).map_err(|err| gift_invalid(&err))?;
            Quiz {
                title: gift_title
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .unwrap_or(DEFAULT_GIFT_TITLE)
                    .to_owned(),
                description: String::new(),
                settings: Default::default(),
                questions,
            }
        }
    };
    quiz.validate().map_err(|err| quiz_invalid(&err))?;
    Ok(quiz)
}

// ---- quizzes ----

/// The authored quiz stored in `stored`.
pub fn authored(stored: &StoredQuiz) -> Result<Quiz, ServiceError> {
    serde_json::from_str(&stored.spec).map_err(|err| corrupt("quiz", stored.id, err))
}

fn summary(stored: &StoredQuiz, quiz: &Quiz) -> QuizSummary {
    QuizSummary {
        id: stored.id,
        title: quiz.title.clone(),
        description: quiz.description.clone(),
        published: stored.published,
        max_attempts: quiz.settings.max_attempts,
        due_at: quiz.settings.due_at,
        time_limit_secs: quiz.settings.time_limit_secs,
        question_count: u32::try_from(quiz.questions.len()).unwrap_or(u32::MAX),
        max_score: quiz.max_score(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

/// The quiz `id` of `course`; `not_found` if it is in another course (or none).
pub async fn course_quiz(
    store: &Store,
    course: &str,
    id: i64,
) -> Result<(StoredQuiz, Quiz), ServiceError> {
    let stored = store
        .quiz(id)
        .await?
        .filter(|q| q.course_id == course)
        .ok_or_else(|| quiz_not_found(id))?;
    let quiz = authored(&stored)?;
    Ok((stored, quiz))
}

/// Creates a quiz in the course (unpublished unless `published`).
pub async fn create_quiz(
    store: &Store,
    course: &str,
    quiz: &Quiz,
    published: bool,
    now: UnixMillis,
) -> Result<QuizDetail, ServiceError> {
    quiz.validate().map_err(|err| quiz_invalid(&err))?;
    require_course(store, course).await?;
    let spec = to_json(quiz)?;
    let stored = store
        .create_quiz(&NewQuiz {
            course_id: course.to_owned(),
            title: quiz.title.clone(),
            spec,
            published,
            at: now,
        })
        .await?;
    Ok(QuizDetail {
        quiz: summary(&stored, quiz),
        authored: quiz.clone(),
    })
}

/// The course's quizzes for staff, oldest first.
pub async fn list_quizzes(store: &Store, course: &str) -> Result<Vec<QuizSummary>, ServiceError> {
    require_course(store, course).await?;
    let mut out = Vec::new();
    for stored in store.quizzes(course).await? {
        let quiz = authored(&stored)?;
        out.push(summary(&stored, &quiz));
    }
    Ok(out)
}

/// A quiz with its keys, for staff.
pub async fn quiz_detail(store: &Store, course: &str, id: i64) -> Result<QuizDetail, ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    Ok(QuizDetail {
        quiz: summary(&stored, &quiz),
        authored: quiz,
    })
}

/// Replaces the authored quiz and/or publishes or unpublishes it. Submitted attempts keep their
/// grades; an open attempt is graded against the quiz as it is when submitted.
pub async fn change_quiz(
    store: &Store,
    course: &str,
    id: i64,
    replacement: Option<&Quiz>,
    published: Option<bool>,
    now: UnixMillis,
) -> Result<QuizDetail, ServiceError> {
    let (mut stored, mut quiz) = course_quiz(store, course, id).await?;
    if let Some(new) = replacement {
        new.validate().map_err(|err| quiz_invalid(&err))?;
        let spec = to_json(new)?;
        stored = store.update_quiz(id, &new.title, &spec, now).await?;
        quiz = new.clone();
    }
    if let Some(published) = published {
        stored = store.set_quiz_published(id, published, now).await?;
    }
    Ok(QuizDetail {
        quiz: summary(&stored, &quiz),
        authored: quiz,
    })
}

/// Deletes a quiz and its attempts.
pub async fn delete_quiz(store: &Store, course: &str, id: i64) -> Result<(), ServiceError> {
    course_quiz(store, course, id).await?;
    store.delete_quiz(id).await?;
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|e| ServiceError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_guessed_from_the_name_then_the_text() {
        assert_eq!(QuizFormat::guess("w1.gift", "{"), QuizFormat::Gift);
        assert_eq!(QuizFormat::guess("w1.json", "x"), QuizFormat::Json);
        assert_eq!(QuizFormat::guess("w1", "  {\"title\""), QuizFormat::Json);
        assert_eq!(QuizFormat::guess("w1", "Q? {T}"), QuizFormat::Gift);
    }

    #[test]
    fn uploads_are_validated_with_their_place() {
        let err = parse_quiz("Q? {=a ~b}\n\nBroken {", QuizFormat::Gift, None).unwrap_err();
        let ServiceError::InvalidInput { details, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(details[0].line, Some(3));
        let quiz = parse_quiz("Q? {=a ~b}", QuizFormat::Gift, Some(" Week 1 ")).unwrap();
        assert_eq!(quiz.title, "Week 1");
        let err =
            parse_quiz(r#"{"title": "x", "questions": []}"#, QuizFormat::Json, None).unwrap_err();
        assert!(err.to_string().contains("no questions"), "{err}");
    }

    #[test]
    fn csv_cells_cannot_be_formulas() {
        assert_eq!(reports::safe_cell("=1+1"), "'=1+1");
        assert_eq!(reports::safe_cell("Ada"), "Ada");
    }
}
