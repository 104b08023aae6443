//! The course home of the member API: the next session with a join link once its lobby is
//! open, past sessions with attendance and recordings, and (staff only) one session's
//! attendance list.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{bearer, forbidden, member};
use crate::api::{ApiResult, AppState, ErrorBody, public_url};
use crate::courses::{self, AttendanceReport, CourseHome, HomeViewer};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct HomeQuery {
    /// Past sessions per page, 1 to 50 (default 10).
    past_limit: Option<u32>,
    /// Past sessions to skip, newest first (default 0).
    past_offset: Option<u32>,
}

/// The member's course home: the course, the next session (with `join_url`, this member's own
/// join link, once its lobby is open), and past sessions newest first, each with the
/// member's own attendance (students), the attendance counts (staff) and the recordings ready
/// to watch.
#[utoipa::path(get, path = "/courses/{course}/home", tag = "home",
    params(("course" = String, Path, description = "Course id"), HomeQuery),
    responses((status = 200, body = CourseHome), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn course_home(
    State(s): State<AppState>,
    Path(course): Path<String>,
    Query(query): Query<HomeQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<CourseHome>> {
    let member = member(&s, &headers, &course).await?;
    let viewer = HomeViewer {
        member_id: &member.author.member_id,
        name: &member.author.name,
        role: member.author.role,
        token: bearer(&headers).unwrap_or_default(),
    };
    let home = courses::course_home(
        &s.store,
        &s.auth,
        &public_url(&s, &headers),
        &course,
        &viewer,
        query.past_limit.unwrap_or(10),
        query.past_offset.unwrap_or(0),
        s.clock.now(),
    )
    .await?;
    Ok(Json(home))
}

/// One session's attendance, for staff (students get 403: they see only their own, on the
/// course home): every student of the roster and anyone else who attended.
#[utoipa::path(get, path = "/courses/{course}/sessions/{session}/attendance", tag = "home",
    params(("course" = String, Path, description = "Course id"),
           ("session" = String, Path, description = "Session key, e.g. 2026-09-01T10:00")),
    responses((status = 200, body = AttendanceReport), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn session_attendance(
    State(s): State<AppState>,
    Path((course, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<AttendanceReport>> {
    let member = member(&s, &headers, &course).await?;
    if !member.staff() {
        return Err(forbidden("only staff see a session's attendance list"));
    }
    let report = courses::attendance(&s.store, &course, &session, None, s.clock.now()).await?;
    Ok(Json(report))
}
