//! Quiz authoring and results through the admin API (`/api/v1/courses/{id}/quizzes...`), and
//! the request pieces the member API's quiz routes (`board_routes/quizzes.rs`) share with it:
//! reading an uploaded quiz (JSON or GIFT), a quiz change, the results as JSON or CSV.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lectern_quiz::Quiz;
use serde::Deserialize;
use tracing::info;
use utoipa::{IntoParams, ToSchema};

use super::reports::wants;
use super::{AdminKey, ApiError, ApiResult, AppState, ErrorBody};
use crate::clock::wall_ms;
use crate::quizzes::{
    self, QuizDetail, QuizFormat, QuizResults, QuizStats, QuizSummary, parse_quiz,
};

/// How an uploaded quiz is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum UploadFormat {
    Json,
    Gift,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// `json` or `gift`; by default GIFT when the body is `text/plain`, else JSON.
    #[param(inline)]
    format: Option<UploadFormat>,
    /// The quiz title for GIFT text (which has none); default "Imported quiz".
    title: Option<String>,
    /// Publish to students at once (default false).
    published: Option<bool>,
}

/// Reads an uploaded quiz from the body: the quiz JSON, or GIFT text.
pub(super) fn upload(headers: &HeaderMap, body: &Bytes, query: &UploadQuery) -> ApiResult<Quiz> {
    let text = std::str::from_utf8(body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "the quiz must be UTF-8 text",
        )
    })?;
    let plain = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/plain")
        });
    let format = match query.format {
        Some(UploadFormat::Gift) => QuizFormat::Gift,
        Some(UploadFormat::Json) => QuizFormat::Json,
        None if plain => QuizFormat::Gift,
        None => QuizFormat::Json,
    };
    Ok(parse_quiz(text, format, query.title.as_deref())?)
}

/// Whether an uploaded quiz is published at once.
pub(super) fn publish_at_once(query: &UploadQuery) -> bool {
    query.published.unwrap_or(false)
}

/// Changes to a quiz: a replacement of the authored quiz, publishing, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct QuizChange {
    /// The whole authored quiz, replacing the stored one (docs/QUIZZES.md, "The model").
    /// Submitted attempts keep their grades.
    #[schema(value_type = Option<Object>)]
    pub(super) quiz: Option<Quiz>,
    /// Publish to students (true) or take back (false).
    pub(super) published: Option<bool>,
}

impl QuizChange {
    pub(super) fn check(&self) -> ApiResult<()> {
        if self.quiz.is_none() && self.published.is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "give at least one of quiz, published",
            ));
        }
        Ok(())
    }
}

/// The representations of the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ResultsFormat {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ResultsQuery {
    /// `json` (the default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(inline)]
    format: Option<ResultsFormat>,
}

/// The results as JSON, or as CSV when asked for.
pub(super) fn results_response(
    results: QuizResults,
    query: &ResultsQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let csv = wants(
        query.format.map(|f| f == ResultsFormat::Csv),
        headers,
        "text/csv",
    );
    if csv {
        let text = quizzes::results_csv(&results)?;
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response())
    } else {
        Ok(Json(results).into_response())
    }
}

/// A quiz or attempt id from a path: a positive integer, else 404.
pub(super) fn path_id(text: &str, what: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(&format!("no such {what}")))
}

// ---- admin routes ----

/// The course's quizzes, published or not.
#[utoipa::path(get, path = "/courses/{id}/quizzes", tag = "quizzes",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = Vec<QuizSummary>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn admin_list_quizzes(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<QuizSummary>>> {
    Ok(Json(quizzes::list_quizzes(&s.store, &id).await?))
}

/// Create a quiz from its JSON (docs/QUIZZES.md) or from GIFT text (`Content-Type: text/plain`
/// or `?format=gift`). Unpublished unless `?published=true`.
#[utoipa::path(post, path = "/courses/{id}/quizzes", tag = "quizzes",
    request_body(content((Object = "application/json"), (String = "text/plain")),
                 description = "The quiz JSON, or GIFT text"),
    params(("id" = String, Path, description = "Course id"), UploadQuery),
    responses((status = 201, body = QuizDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
pub(super) async fn admin_create_quiz(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<QuizDetail>)> {
    let quiz = upload(&headers, &body, &query)?;
    let detail =
        quizzes::create_quiz(&s.store, &id, &quiz, publish_at_once(&query), wall_ms()).await?;
    info!(course.id = %id, quiz.id = detail.quiz.id, "quiz created");
    Ok((StatusCode::CREATED, Json(detail)))
}

/// A quiz with its keys.
#[utoipa::path(get, path = "/courses/{id}/quizzes/{quiz}", tag = "quizzes",
    params(("id" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = QuizDetail), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn admin_get_quiz(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, quiz)): Path<(String, String)>,
) -> ApiResult<Json<QuizDetail>> {
    let quiz = path_id(&quiz, "quiz")?;
    Ok(Json(quizzes::quiz_detail(&s.store, &id, quiz).await?))
}

/// Replace a quiz and/or publish or unpublish it.
#[utoipa::path(patch, path = "/courses/{id}/quizzes/{quiz}", tag = "quizzes",
    request_body = QuizChange,
    params(("id" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = QuizDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn admin_change_quiz(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, quiz)): Path<(String, String)>,
    Json(change): Json<QuizChange>,
) -> ApiResult<Json<QuizDetail>> {
    let quiz = path_id(&quiz, "quiz")?;
    change.check()?;
    let detail = quizzes::change_quiz(
        &s.store,
        &id,
        quiz,
        change.quiz.as_ref(),
        change.published,
        wall_ms(),
    )
    .await?;
    Ok(Json(detail))
}

/// Delete a quiz with every attempt at it.
#[utoipa::path(delete, path = "/courses/{id}/quizzes/{quiz}", tag = "quizzes",
    params(("id" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn admin_delete_quiz(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, quiz)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let quiz = path_id(&quiz, "quiz")?;
    quizzes::delete_quiz(&s.store, &id, quiz).await?;
    info!(course.id = %id, quiz.id = quiz, "quiz deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Every student's results: the roster's students and anyone else who attempted, with
/// attempts, best and last score.
#[utoipa::path(get, path = "/courses/{id}/quizzes/{quiz}/results", tag = "quizzes",
    params(("id" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id"), ResultsQuery),
    responses((status = 200, description = "The results, as JSON or CSV (with a header row)",
               content((QuizResults = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn admin_quiz_results(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, quiz)): Path<(String, String)>,
    Query(query): Query<ResultsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let quiz = path_id(&quiz, "quiz")?;
    let results = quizzes::results(&s.store, &id, quiz).await?;
    results_response(results, &query, &headers)
}

/// Per-question statistics over every submitted attempt.
#[utoipa::path(get, path = "/courses/{id}/quizzes/{quiz}/stats", tag = "quizzes",
    params(("id" = String, Path, description = "Course id"),
           ("quiz" = i64, Path, description = "Quiz id")),
    responses((status = 200, body = QuizStats), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn admin_quiz_stats(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, quiz)): Path<(String, String)>,
) -> ApiResult<Json<QuizStats>> {
    let quiz = path_id(&quiz, "quiz")?;
    Ok(Json(quizzes::stats(&s.store, &id, quiz).await?))
}
