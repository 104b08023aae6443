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
    /// While open: when submissions stop being accepted (the time limit or the due date,
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

// ---- attempts ----

fn secs(ms: UnixMillis) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

/// Whether an open attempt still takes a submission at `now` (grace included).
fn still_open(quiz: &Quiz, attempt: &QuizAttempt, now: UnixMillis) -> Result<(), AttemptError> {
    may_submit(
        &quiz.settings,
        secs(attempt.started_at),
        secs(now).saturating_sub(SUBMIT_GRACE_SECS),
    )
}

/// When an open attempt stops taking submissions (without the grace), Unix milliseconds.
fn deadline(quiz: &Quiz, started_at: UnixMillis) -> Option<u64> {
    let limit = quiz
        .settings
        .time_limit_secs
        .map(|s| started_at.saturating_add(u64::from(s) * 1000));
    // Due at the second `due_at` means submissions during that second are in time.
    let due = quiz
        .settings
        .due_at
        .map(|d| u64::try_from(d).unwrap_or(0).saturating_mul(1000) + 999);
    match (limit, due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn state(quiz: &Quiz, attempts: &[QuizAttempt], now: UnixMillis) -> MyQuizState {
    let used = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
    let open = attempts
        .iter()
        .rev()
        .find(|a| a.submitted_at.is_none() && still_open(quiz, a, now).is_ok())
        .map(|a| a.id);
    let blocked = if open.is_some() {
        None
    } else {
        may_attempt(&quiz.settings, used, secs(now)).err()
    };
    MyQuizState {
        attempts_used: used,
        attempts_left: quiz.settings.max_attempts.map(|m| m.saturating_sub(used)),
        best_score: attempts
            .iter()
            .filter_map(|a| a.score)
            .fold(None, |best: Option<f64>, s| {
                Some(best.map_or(s, |b| b.max(s)))
            }),
        open_attempt: open,
        can_attempt: blocked.is_none(),
        blocked: blocked.map(|e| match e {
            AttemptError::NoAttemptsLeft { .. } => "no_attempts_left".to_owned(),
            AttemptError::PastDue { .. } => "past_due".to_owned(),
            other => other.to_string(),
        }),
    }
}

/// The quizzes a member sees, with their own standing: every quiz for staff, the published
/// ones for everyone else.
pub async fn member_quizzes(
    store: &Store,
    course: &str,
    member_id: &str,
    staff: bool,
    now: UnixMillis,
) -> Result<Vec<QuizListItem>, ServiceError> {
    let mut out = Vec::new();
    for stored in store.quizzes(course).await? {
        if !(staff || stored.published) {
            continue;
        }
        let quiz = authored(&stored)?;
        let attempts = store.attempts(stored.id, Some(member_id)).await?;
        out.push(QuizListItem {
            quiz: summary(&stored, &quiz),
            mine: state(&quiz, &attempts, now),
        });
    }
    Ok(out)
}

/// A quiz's summary and the member's standing; for a non-staff member only a published quiz
/// (else `not_found`, as if it did not exist).
pub async fn member_quiz(
    store: &Store,
    course: &str,
    id: i64,
    member_id: &str,
    staff: bool,
    now: UnixMillis,
) -> Result<QuizListItem, ServiceError> {
    let (stored, quiz) = visible_quiz(store, course, id, staff).await?;
    let attempts = store.attempts(id, Some(member_id)).await?;
    Ok(QuizListItem {
        quiz: summary(&stored, &quiz),
        mine: state(&quiz, &attempts, now),
    })
}

async fn visible_quiz(
    store: &Store,
    course: &str,
    id: i64,
    staff: bool,
) -> Result<(StoredQuiz, Quiz), ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    if !(staff || stored.published) {
        return Err(quiz_not_found(id));
    }
    Ok((stored, quiz))
}

fn attempt_view(
    quiz: &Quiz,
    attempt: &QuizAttempt,
    now: UnixMillis,
) -> Result<AttemptView, ServiceError> {
    let answers = attempt
        .answers
        .as_deref()
        .map(serde_json::from_str::<Vec<QuestionAnswer>>)
        .transpose()
        .map_err(|e| corrupt("attempt", attempt.id, e))?;
    let result = attempt
        .result
        .as_deref()
        .map(serde_json::from_str::<GradedAttempt>)
        .transpose()
        .map_err(|e| corrupt("attempt", attempt.id, e))?;
    Ok(AttemptView {
        id: attempt.id,
        quiz_id: attempt.quiz_id,
        member_id: attempt.member_id.clone(),
        number: attempt.number,
        started_at: attempt.started_at,
        submitted_at: attempt.submitted_at,
        deadline_at: attempt
            .submitted_at
            .is_none()
            .then(|| deadline(quiz, attempt.started_at))
            .flatten(),
        server_now: now,
        score: attempt.score,
        max_score: attempt.max_score,
        quiz: StudentQuiz::new(quiz, attempt.seed as u64),
        answers,
        result,
    })
}

/// Starts an attempt, or continues the member's open one (still within its time). Refused
/// with `no_attempts_left` or `past_due`. Returns the attempt and whether it is new.
pub async fn start_attempt(
    store: &Store,
    course: &str,
    id: i64,
    taker: &Taker<'_>,
    staff: bool,
    now: UnixMillis,
) -> Result<(AttemptView, bool), ServiceError> {
    let (_, quiz) = visible_quiz(store, course, id, staff).await?;
    // Two starts may race: the loser's insert conflicts on the attempt number; it then finds
    // the winner's attempt open and continues it.
    for _ in 0..3 {
        let attempts = store.attempts(id, Some(taker.member_id)).await?;
        if let Some(open) = attempts
            .iter()
            .rev()
            .find(|a| a.submitted_at.is_none() && still_open(&quiz, a, now).is_ok())
        {
            return Ok((attempt_view(&quiz, open, now)?, false));
        }
        let used = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
        may_attempt(&quiz.settings, used, secs(now)).map_err(refused)?;
        let number = attempts.iter().map(|a| a.number).max().unwrap_or(0) + 1;
        let seed = {
            use rand::Rng;
            rand::rng().random::<i64>()
        };
        match store
            .start_attempt(&NewAttempt {
                quiz_id: id,
                member_id: taker.member_id.to_owned(),
                member_name: taker.name.to_owned(),
                number,
                seed,
                max_score: quiz.max_score(),
                at: now,
            })
            .await
        {
            Ok(attempt) => return Ok((attempt_view(&quiz, &attempt, now)?, true)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::Conflict(
        "another attempt was being started at the same time; try again".to_owned(),
    ))
}

/// The member's attempt `attempt` of quiz `id` (staff: anyone's); `not_found` otherwise.
async fn own_attempt(
    store: &Store,
    id: i64,
    attempt: i64,
    member_id: &str,
    staff: bool,
) -> Result<QuizAttempt, ServiceError> {
    store
        .attempt(attempt)
        .await?
        .filter(|a| a.quiz_id == id && (staff || a.member_id == member_id))
        .ok_or_else(|| ServiceError::NotFound {
            what: "attempt",
            id: attempt.to_string(),
        })
}

/// One attempt: the questions without keys while it is open; with the answers and the graded
/// result once submitted. A member reads their own attempts only; staff read anyone's.
pub async fn get_attempt(
    store: &Store,
    course: &str,
    id: i64,
    attempt: i64,
    member_id: &str,
    staff: bool,
    now: UnixMillis,
) -> Result<AttemptView, ServiceError> {
    let (_, quiz) = visible_quiz(store, course, id, staff).await?;
    let attempt = own_attempt(store, id, attempt, member_id, staff).await?;
    attempt_view(&quiz, &attempt, now)
}

/// The member's own attempts at a quiz, oldest first.
pub async fn my_attempts(
    store: &Store,
    course: &str,
    id: i64,
    member_id: &str,
    staff: bool,
) -> Result<Vec<AttemptBrief>, ServiceError> {
    visible_quiz(store, course, id, staff).await?;
    Ok(store
        .attempts(id, Some(member_id))
        .await?
        .iter()
        .map(|a| AttemptBrief {
            id: a.id,
            number: a.number,
            started_at: a.started_at,
            submitted_at: a.submitted_at,
            score: a.score,
            max_score: a.max_score,
        })
        .collect())
}

/// Grades and stores a submission of the member's own open attempt. Refused with `time_up`
/// or `past_due` (beyond [`SUBMIT_GRACE_SECS`]) and `already_submitted`; bad answers are
/// `invalid_input`. Of two simultaneous submissions, one is stored, the other refused.
/// `(id, attempt)`: the quiz and the attempt.
pub async fn submit_attempt(
    store: &Store,
    course: &str,
    (id, attempt): (i64, i64),
    member_id: &str,
    staff: bool,
    answers: &[QuestionAnswer],
    now: UnixMillis,
) -> Result<AttemptView, ServiceError> {
    // Staff reach an unpublished quiz (to try it out); everyone submits only their own
    // attempts.
    let (_, quiz) = visible_quiz(store, course, id, staff).await?;
    let attempt = own_attempt(store, id, attempt, member_id, false).await?;
    if attempt.submitted_at.is_some() {
        return Err(already_submitted());
    }
    still_open(&quiz, &attempt, now).map_err(refused)?;
    let graded = grade(&quiz, answers).map_err(|err| answers_invalid(&err))?;
    let submission = AttemptSubmission {
        answers: to_json(&answers)?,
        result: to_json(&graded)?,
        score: graded.score,
        at: now,
    };
    match store.submit_attempt(attempt.id, &submission).await {
        Ok(stored) => attempt_view(&quiz, &stored, now),
        Err(StoreError::Conflict { .. }) => Err(already_submitted()),
        Err(other) => Err(other.into()),
    }
}

fn already_submitted() -> ServiceError {
    ServiceError::Refused {
        code: "already_submitted",
        message: "this attempt was already submitted".to_owned(),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|e| ServiceError::Internal(e.to_string()))
}

// ---- staff reports ----

/// Every student's results on a quiz (staff).
pub async fn results(store: &Store, course: &str, id: i64) -> Result<QuizResults, ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    let mut by_member: BTreeMap<String, StudentResult> = BTreeMap::new();
    for m in store.members(course).await? {
        if m.role == Role::Student {
            by_member.insert(
                m.member_id.clone(),
                StudentResult {
                    member_id: m.member_id,
                    name: m.name,
                    on_roster: true,
                    attempts: 0,
                    submitted: 0,
                    best_score: None,
                    last_score: None,
                    last_submitted_at: None,
                },
            );
        }
    }
    for a in store.attempts(id, None).await? {
        let row = by_member
            .entry(a.member_id.clone())
            .or_insert_with(|| StudentResult {
                member_id: a.member_id.clone(),
                name: a.member_name.clone(),
                on_roster: false,
                attempts: 0,
                submitted: 0,
                best_score: None,
                last_score: None,
                last_submitted_at: None,
            });
        row.attempts += 1;
        if let (Some(score), Some(at)) = (a.score, a.submitted_at) {
            row.submitted += 1;
            row.best_score = Some(row.best_score.map_or(score, |b| b.max(score)));
            if row.last_submitted_at.is_none_or(|last| at >= last) {
                row.last_submitted_at = Some(at);
                row.last_score = Some(score);
            }
        }
    }
    let mut students: Vec<StudentResult> = by_member.into_values().collect();
    students.sort_by(|a, b| a.name.cmp(&b.name).then(a.member_id.cmp(&b.member_id)));
    Ok(QuizResults {
        quiz: summary(&stored, &quiz),
        students,
    })
}

/// The results as CSV with a header row: `member_id,name,on_roster,attempts,submitted,
/// best_score,last_score,max_score,last_submitted_at` (RFC 3339 UTC).
pub fn results_csv(results: &QuizResults) -> Result<String, ServiceError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ServiceError::Internal(e.to_string());
    out.write_record([
        "member_id",
        "name",
        "on_roster",
        "attempts",
        "submitted",
        "best_score",
        "last_score",
        "max_score",
        "last_submitted_at",
    ])
    .map_err(internal)?;
    let score = |s: Option<f64>| s.map(|s| s.to_string()).unwrap_or_default();
    for r in &results.students {
        out.write_record([
            safe_cell(&r.member_id),
            safe_cell(&r.name),
            r.on_roster.to_string(),
            r.attempts.to_string(),
            r.submitted.to_string(),
            score(r.best_score),
            score(r.last_score),
            results.quiz.max_score.to_string(),
            r.last_submitted_at.map(rfc3339).unwrap_or_default(),
        ])
        .map_err(internal)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// A cell a spreadsheet will not run as a formula: text starting with `= + - @` (or a tab or
/// carriage return) gets a leading apostrophe.
fn safe_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Per-question statistics over every submitted attempt (staff).
pub async fn stats(store: &Store, course: &str, id: i64) -> Result<QuizStats, ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    let mut questions: Vec<QuestionStats> = quiz
        .questions
        .iter()
        .map(|q| {
            let choice = |index: usize, text: &str, correct: bool| ChoiceStats {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                text: text.to_owned(),
                correct,
                count: 0,
            };
            let choices = match &q.kind {
                QuestionKind::SingleChoice { choices } => choices
                    .iter()
                    .enumerate()
                    .map(|(i, c)| choice(i, &c.text, c.correct))
                    .collect(),
                QuestionKind::MultipleChoice { choices } => choices
                    .iter()
                    .enumerate()
                    .map(|(i, c)| choice(i, &c.text, c.weight > 0.0))
                    .collect(),
                _ => Vec::new(),
            };
            QuestionStats {
                question: q.id.clone(),
                text: q.text.clone(),
                kind: q.kind.name().to_owned(),
                max: q.points,
                answered: 0,
                correct: 0,
                share_correct: 0.0,
                mean_score: 0.0,
                choices,
            }
        })
        .collect();
    let mut submitted = 0u32;
    let mut total = 0.0;
    for attempt in store.attempts(id, None).await? {
        let (Some(result), Some(answers)) = (&attempt.result, &attempt.answers) else {
            continue;
        };
        let graded: GradedAttempt =
            serde_json::from_str(result).map_err(|e| corrupt("attempt", attempt.id, e))?;
        let answers: Vec<QuestionAnswer> =
            serde_json::from_str(answers).map_err(|e| corrupt("attempt", attempt.id, e))?;
        submitted += 1;
        total += graded.score;
        for stats in &mut questions {
            if let Some(g) = graded
                .questions
                .iter()
                .find(|g| g.question == stats.question)
            {
                stats.mean_score += g.score;
                if g.outcome != Outcome::Unanswered {
                    stats.answered += 1;
                }
                if g.outcome == Outcome::Correct {
                    stats.correct += 1;
                }
            }
            let picked: Vec<u32> = match answers.iter().find(|a| a.question == stats.question) {
                Some(QuestionAnswer {
                    answer: Answer::SingleChoice { choice },
                    ..
                }) => vec![*choice],
                Some(QuestionAnswer {
                    answer: Answer::MultipleChoice { choices },
                    ..
                }) => choices.clone(),
                _ => Vec::new(),
            };
            for index in picked {
                if let Some(c) = stats.choices.iter_mut().find(|c| c.index == index) {
                    c.count += 1;
                }
            }
        }
    }
    if submitted > 0 {
        let n = f64::from(submitted);
        for stats in &mut questions {
            stats.mean_score /= n;
            stats.share_correct = f64::from(stats.correct) / n;
        }
    }
    Ok(QuizStats {
        quiz: summary(&stored, &quiz),
        submitted_attempts: submitted,
        mean_score: if submitted > 0 {
            total / f64::from(submitted)
        } else {
            0.0
        },
        questions,
    })
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
        assert_eq!(safe_cell("=1+1"), "'=1+1");
        assert_eq!(safe_cell("Ada"), "Ada");
    }
}
