//! Quizzes in the member API (`/course/v1/courses/{course}/quizzes...`; docs/QUIZZES.md).
//!
//! Permissions: staff (instructors, TAs) author, publish, delete and read every quiz with its
//! keys, the results and the statistics. Students and staff list the quizzes they may see
//! (students: published only; an unpublished quiz answers 404 to them, as if it did not
//! exist), start or continue an attempt, read their own attempts and submit them. A student
//! never receives a key before submitting: an open attempt carries the key-free
//! `StudentQuiz`; its `result` (score, feedback, explanations, solution) comes with the
//! submission. Another member's attempt answers 404. Observers see the list but do not
//! attempt. Attempt limits, the due date and the time limit are checked by the server's clock
//! (409 with `no_attempts_left`, `past_due`, `time_up`, `already_submitted`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lectern_proto::Role;
use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::ToSchema;

use super::{Member, forbidden, member};
use crate::api::quiz_routes::{
    QuizChange, ResultsQuery, UploadQuery, path_id, publish_at_once, results_response, upload,
};
use crate::api::{ApiResult, AppState, ErrorBody};
use crate::quizzes::{
    self, AttemptBrief, AttemptView, QuizDetail, QuizListItem, QuizStats, SubmissionInput, Taker,
};

fn staff_only(member: &Member, what: &str) -> ApiResult<()> {
    if member.staff() {
        Ok(())
    } else {
        Err(forbidden(&format!("only staff {what}")))
    }
}

fn now(s: &AppState) -> u64 {
    s.clock.now_ms()
}

/// Observers see quizzes but do not take them: their standing says so.
fn for_role(member: &Member, mut item: QuizListItem) -> QuizListItem {
    if member.author.role == Role::Observer {
        item.mine.can_attempt = false;
        item.mine.open_attempt = None;
        item.mine.blocked = Some("observer".to_owned());
    }
    item
}

/// The quizzes a member sees.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct QuizList {
    /// Oldest first: every quiz for staff, the published ones for others.
    quizzes: Vec<QuizListItem>,
    /// Whether the member is staff (may author and read results).
    staff: bool,
    /// The server's clock, Unix milliseconds.
    server_now: u64,
}

/// A quiz for a member: its summary, their standing, and for staff the authored quiz.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct MemberQuizView {
    #[serde(flatten)]
    item: QuizListItem,
    /// Staff only: the authored quiz with its keys.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    authored: Option<lectern_quiz::Quiz>,
}

/// The course's quizzes this member sees, each with the member's attempts used and left, best
/// score and open attempt.
#[utoipa::path(get, path = "/courses/{course}/quizzes", tag = "quizzes",
    params(("course" = String, Path, description = "Course id")),
    responses((status = 200, body = QuizList), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_quizzes(
    State(s): State<AppState>,
    Path(course): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<QuizList>> {
    let member = member(&s, &headers, &course).await?;
    let at = now(&s);
    let quizzes = quizzes::member_quizzes(
        &s.store,
        &course,
        &member.author.member_id,
        member.staff(),
        at,
        s.registry.live_quizzes(),
    )
    .await?;
    Ok(Json(QuizList {
        quizzes: quizzes.into_iter().map(|q| for_role(&member, q)).collect(),
        staff: member.staff(),
        server_now: at,
    }))
}

/// Create a quiz (staff) from its JSON (docs/QUIZZES.md) or GIFT text (`Content-Type:
/// text/plain` or `?format=gift`). Unpublished unless `?published=true`.
#[utoipa::path(post, path = "/courses/{course}/quizzes", tag = "quizzes",
    request_body(content((Object = "application/json"), (String = "text/plain")),
                 description = "The quiz JSON, or GIFT text"),
    params(("course" = String, Path, description = "Course id"), UploadQuery),
    responses((status = 201, body = QuizDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(super) async fn create_quiz(
    State(s): State<AppState>,
    Path(course): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<QuizDetail>)> {
    let member = member(&s, &headers, &course).await?;
    staff_only(&member, "create quizzes")?;
    let quiz = upload(&headers, &body, &query)?;
    let detail =
        quizzes::create_quiz(&s.store, &course, &quiz, publish_at_once(&query), now(&s)).await?;
    info!(course.id = %course, quiz.id = detail.quiz.id, "quiz created");
    Ok((StatusCode::CREATED, Json(detail)))
}

/// A quiz's summary and the member's standing; staff also get the authored quiz with its keys.
/// An unpublished quiz is 404 for students.
#[utoipa::path(get, path = "/courses/{course}/quizzes/{quiz}", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = MemberQuizView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get_quiz(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<MemberQuizView>> {
    let member = member(&s, &headers, &course).await?;
    let quiz = path_id(&quiz, "quiz")?;
    let item = quizzes::member_quiz(
        &s.store,
        &course,
        quiz,
        &member.author.member_id,
        member.staff(),
        now(&s),
        s.registry.live_quizzes(),
    )
    .await?;
    let authored = if member.staff() {
        Some(
            quizzes::quiz_detail(&s.store, &course, quiz)
                .await?
                .authored,
        )
    } else {
        None
    };
    Ok(Json(MemberQuizView {
        item: for_role(&member, item),
        authored,
    }))
}

/// Replace a quiz and/or publish or unpublish it (staff).
#[utoipa::path(patch, path = "/courses/{course}/quizzes/{quiz}", tag = "quizzes",
    request_body = QuizChange,
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = QuizDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn change_quiz(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    headers: HeaderMap,
    Json(change): Json<QuizChange>,
) -> ApiResult<Json<QuizDetail>> {
    let member = member(&s, &headers, &course).await?;
    staff_only(&member, "edit quizzes")?;
    let quiz = path_id(&quiz, "quiz")?;
    change.check()?;
    let detail = quizzes::change_quiz(
        &s.store,
        &course,
        quiz,
        change.quiz.as_ref(),
        change.published,
        now(&s),
    )
    .await?;
    Ok(Json(detail))
}

/// Delete a quiz with every attempt at it (staff).
#[utoipa::path(delete, path = "/courses/{course}/quizzes/{quiz}", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_quiz(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let member = member(&s, &headers, &course).await?;
    staff_only(&member, "delete quizzes")?;
    let quiz = path_id(&quiz, "quiz")?;
    quizzes::delete_quiz(&s.store, &course, quiz).await?;
    info!(course.id = %course, quiz.id = quiz, "quiz deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Start an attempt (201), or continue the member's open one (200). Its `quiz` has no keys;
/// `deadline_at` and `server_now` drive a timer. 409 `no_attempts_left` or `past_due`.
#[utoipa::path(post, path = "/courses/{course}/quizzes/{quiz}/attempts", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 201, body = AttemptView, description = "A new attempt"),
              (status = 200, body = AttemptView, description = "The open attempt, continued"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn start_attempt(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<AttemptView>)> {
    let member = member(&s, &headers, &course).await?;
    if member.author.role == Role::Observer {
        return Err(forbidden("observers do not take quizzes"));
    }
    let quiz = path_id(&quiz, "quiz")?;
    let (view, new) = quizzes::start_attempt(
        &s.store,
        &course,
        quiz,
        &Taker {
            member_id: &member.author.member_id,
            name: &member.author.name,
        },
        member.staff(),
        now(&s),
        s.registry.live_quizzes(),
    )
    .await?;
    if new {
        info!(course.id = %course, quiz.id = quiz, quiz.attempt = view.id, "quiz attempt started");
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The member's own attempts at the quiz, oldest first.
#[utoipa::path(get, path = "/courses/{course}/quizzes/{quiz}/attempts", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = Vec<AttemptBrief>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_attempts(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<AttemptBrief>>> {
    let member = member(&s, &headers, &course).await?;
    let quiz = path_id(&quiz, "quiz")?;
    let attempts = quizzes::my_attempts(
        &s.store,
        &course,
        quiz,
        &member.author.member_id,
        member.staff(),
    )
    .await?;
    Ok(Json(attempts))
}

/// One attempt: open, the questions without keys; submitted, also the answers and the graded
/// result. The member's own only (staff: anyone's); another member's is 404.
#[utoipa::path(get, path = "/courses/{course}/quizzes/{quiz}/attempts/{attempt}", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id"),
           ("attempt" = i64, Path, description = "Attempt id")),
    responses((status = 200, body = AttemptView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get_attempt(
    State(s): State<AppState>,
    Path((course, quiz, attempt)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<AttemptView>> {
    let member = member(&s, &headers, &course).await?;
    let quiz = path_id(&quiz, "quiz")?;
    let attempt = path_id(&attempt, "attempt")?;
    let view = quizzes::get_attempt(
        &s.store,
        &course,
        quiz,
        attempt,
        &member.author.member_id,
        member.staff(),
        (now(&s), s.registry.live_quizzes()),
    )
    .await?;
    Ok(Json(view))
}

/// Submit the member's own open attempt: graded at once; the answer carries the score, and per
/// question the feedback, the explanation and the solution. 400 for answers that do not fit
/// the quiz; 409 `time_up`, `past_due` or `already_submitted` (of two simultaneous
/// submissions one is graded, the other refused).
#[utoipa::path(post, path = "/courses/{course}/quizzes/{quiz}/attempts/{attempt}/submit",
    tag = "quizzes", request_body = SubmissionInput,
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id"),
           ("attempt" = i64, Path, description = "Attempt id")),
    responses((status = 200, body = AttemptView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn submit_attempt(
    State(s): State<AppState>,
    Path((course, quiz, attempt)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(input): Json<SubmissionInput>,
) -> ApiResult<Json<AttemptView>> {
    let member = member(&s, &headers, &course).await?;
    let quiz = path_id(&quiz, "quiz")?;
    let attempt = path_id(&attempt, "attempt")?;
    let view = quizzes::submit_attempt(
        &s.store,
        &course,
        (quiz, attempt),
        &member.author.member_id,
        member.staff(),
        &input.answers,
        (now(&s), s.registry.live_quizzes()),
    )
    .await?;
    info!(course.id = %course, quiz.id = quiz, quiz.attempt = attempt, "quiz attempt submitted");
    // Staff in a class where this attempt's quiz was live see the count go up.
    s.registry
        .quiz_submitted(quiz, view.started_at, &member.author.member_id);
    Ok(Json(view))
}

/// Every student's results (staff), as JSON or CSV.
#[utoipa::path(get, path = "/courses/{course}/quizzes/{quiz}/results", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id"), ResultsQuery),
    responses((status = 200, description = "The results, as JSON or CSV (with a header row)",
               content((crate::quizzes::QuizResults = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn quiz_results(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    Query(query): Query<ResultsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let member = member(&s, &headers, &course).await?;
    staff_only(&member, "read the results")?;
    let quiz = path_id(&quiz, "quiz")?;
    let results = quizzes::results(&s.store, &course, quiz).await?;
    results_response(results, &query, &headers)
}

/// Per-question statistics (staff): share correct, mean score, picks per choice.
#[utoipa::path(get, path = "/courses/{course}/quizzes/{quiz}/stats", tag = "quizzes",
    params(("course" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = QuizStats), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn quiz_stats(
    State(s): State<AppState>,
    Path((course, quiz)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<QuizStats>> {
    let member = member(&s, &headers, &course).await?;
    staff_only(&member, "read the statistics")?;
    let quiz = path_id(&quiz, "quiz")?;
    Ok(Json(quizzes::stats(&s.store, &course, quiz).await?))
}
