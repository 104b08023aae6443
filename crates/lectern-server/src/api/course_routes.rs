//! Courses, rosters, schedules, sessions and join links.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use lectern_schedule::jiff::Timestamp;
use serde::Deserialize;
use tracing::info;

use super::{AdminKey, ApiError, ApiResult, AppState, ErrorBody, public_url};
use crate::clock::wall_ms;
use crate::courses::{
    self, CourseView, ImportReport, LinkRequest, LinkView, MemberView, NewCourse, RoleChange,
    ScheduleSpec, ScheduleView, SessionView,
};

/// List every course.
#[utoipa::path(get, path = "/courses", tag = "courses",
    responses((status = 200, body = Vec<CourseView>), (status = 401, body = ErrorBody)))]
pub(super) async fn list_courses(
    _key: AdminKey,
    State(s): State<AppState>,
) -> ApiResult<Json<Vec<CourseView>>> {
    Ok(Json(courses::list_courses(&s.store).await?))
}

/// Create a course.
#[utoipa::path(post, path = "/courses", tag = "courses", request_body = NewCourse,
    responses((status = 201, body = CourseView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn create_course(
    key: AdminKey,
    State(s): State<AppState>,
    Json(input): Json<NewCourse>,
) -> ApiResult<(StatusCode, Json<CourseView>)> {
    let course = courses::create_course(&s.store, input, wall_ms()).await?;
    info!(api.key = %key.id, course.id = %course.id, "course created");
    Ok((StatusCode::CREATED, Json(course)))
}

/// One course.
#[utoipa::path(get, path = "/courses/{id}", tag = "courses",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = CourseView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn get_course(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CourseView>> {
    Ok(Json(courses::get_course(&s.store, &id).await?))
}

/// The course's roster.
#[utoipa::path(get, path = "/courses/{id}/members", tag = "roster",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = Vec<MemberView>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn list_members(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MemberView>>> {
    Ok(Json(courses::list_members(&s.store, &id).await?))
}

/// Add one member to the roster.
#[utoipa::path(post, path = "/courses/{id}/members", tag = "roster", request_body = MemberView,
    params(("id" = String, Path, description = "Course id")),
    responses((status = 201, body = MemberView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub(super) async fn add_member(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<MemberView>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let member = courses::add_member(&s.store, &id, input).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Remove a member from the roster.
#[utoipa::path(delete, path = "/courses/{id}/members/{member}", tag = "roster",
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn remove_member(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    courses::remove_member(&s.store, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a member's role.
#[utoipa::path(patch, path = "/courses/{id}/members/{member}", tag = "roster",
    request_body = RoleChange,
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 200, body = MemberView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn change_role(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
    Json(change): Json<RoleChange>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(
        courses::change_role(&s.store, &id, &member, change).await?,
    ))
}

/// Import a roster from CSV: a header naming `member_id`, `name`, `role` and optionally
/// `email`, then one member per line. Existing members are updated. If any row is bad, the
/// answer lists every bad line and nothing is imported.
#[utoipa::path(post, path = "/courses/{id}/members/import", tag = "roster",
    request_body(content = String, content_type = "text/csv",
                 example = "member_id,name,role,email\nada,Ada Lovelace,student,ada@example.org\n"),
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = ImportReport),
              (status = 400, body = ErrorBody, description = "Bad rows, each with its line"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
pub(super) async fn import_members(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "the CSV must be UTF-8",
        ));
    };
    let report = courses::import_roster(&s.store, &id, text).await?;
    info!(course.id = %id, import.rows = report.imported, "roster imported");
    Ok(Json(report))
}

/// The course's schedules.
#[utoipa::path(get, path = "/courses/{id}/schedules", tag = "schedules",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = Vec<ScheduleView>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn list_schedules(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    Ok(Json(courses::list_schedules(&s.store, &id).await?))
}

/// Add a weekly schedule (in the course's timezone), with exceptions and one-off sessions.
#[utoipa::path(post, path = "/courses/{id}/schedules", tag = "schedules",
    request_body = ScheduleSpec,
    params(("id" = String, Path, description = "Course id")),
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn add_schedule(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(spec): Json<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let schedule = courses::add_schedule(&s.store, &id, spec, wall_ms()).await?;
    Ok((StatusCode::CREATED, Json(schedule)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SessionsQuery {
    /// RFC 3339 time or a date (midnight in the course's timezone); default now.
    from: Option<String>,
    /// RFC 3339 time or a date; default 120 days after `from`.
    to: Option<String>,
}

/// Sessions starting in `[from, to)`.
#[utoipa::path(get, path = "/courses/{id}/sessions", tag = "sessions",
    params(("id" = String, Path, description = "Course id"), SessionsQuery),
    responses((status = 200, body = Vec<SessionView>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_sessions(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<SessionsQuery>,
) -> ApiResult<Json<Vec<SessionView>>> {
    Ok(Json(
        courses::sessions(
            &s.store,
            &id,
            query.from.as_deref(),
            query.to.as_deref(),
            Timestamp::now(),
        )
        .await?,
    ))
}

/// Mint a join token and link for a member, for one session (default: the next one).
#[utoipa::path(post, path = "/courses/{id}/members/{member}/link", tag = "sessions",
    request_body(content = LinkRequest, description = "Optional; `{}` for the next session"),
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 200, body = LinkView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn mint_link(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<LinkView>> {
    // The body is optional: an empty one asks for the next session.
    let request: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.to_string()))?
    };
    let base = public_url(&s, &headers);
    let link = courses::mint_link(
        &s.store,
        &s.auth,
        &base,
        &id,
        &member,
        request,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(link))
}
