//! Reports of a session: attendance, the chat transcript (as JSON or CSV/text) and polls.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use lectern_schedule::jiff::Timestamp;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{AdminKey, ApiError, ApiResult, AppState, ErrorBody};
use crate::courses::{self, AttendanceReport, PollReport, TranscriptEntry};
use crate::room_name::RoomName;

/// Whether the alternative to JSON is wanted: `?format=` if given, else the `Accept` header
/// naming `mime`.
pub(super) fn wants(alternative: Option<bool>, headers: &HeaderMap, mime: &str) -> bool {
    alternative.unwrap_or_else(|| {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case(mime)
            })
    })
}

/// The representations of an attendance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum AttendanceFormat {
    Json,
    Csv,
}

/// The representations of a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum TranscriptFormat {
    Json,
    Txt,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AttendanceQuery {
    /// `json` (the default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(inline)]
    format: Option<AttendanceFormat>,
    /// A first join later than the start plus this many minutes is `late` (default 10, at
    /// most 1440).
    #[param(maximum = 1440)]
    late_after_minutes: Option<u32>,
}

/// Attendance of one session: every student on the roster (and anyone not on the roster who
/// attended, with `on_roster: false`) with first join, last leave, minutes present (stays
/// merged across reconnects, clipped to the room's open window) and `present`, `late` or
/// `absent`.
#[utoipa::path(get, path = "/courses/{id}/sessions/{session_key}/attendance", tag = "sessions",
    params(("id" = String, Path, description = "Course id"),
           ("session_key" = String, Path, description = "Session key, e.g. `2026-09-01T10:00`"),
           AttendanceQuery),
    responses((status = 200, description = "The attendance, as JSON or CSV (with a header row)",
               content((AttendanceReport = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn session_attendance(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, session_key)): Path<(String, String)>,
    Query(query): Query<AttendanceQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let csv = wants(
        query.format.map(|f| f == AttendanceFormat::Csv),
        &headers,
        "text/csv",
    );
    let report = courses::attendance(
        &s.store,
        &id,
        &session_key,
        query.late_after_minutes,
        Timestamp::now(),
    )
    .await?;
    if csv {
        let text = courses::attendance_csv(&report)?;
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response())
    } else {
        Ok(Json(report).into_response())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TranscriptQuery {
    /// `json` (the default) or `txt`; `Accept: text/plain` also asks for text.
    #[param(inline)]
    format: Option<TranscriptFormat>,
}

/// The chat transcript of one session's room, oldest first. Private messages are included
/// with their audience (`to`); messages deleted by staff are marked `deleted`, without text.
#[utoipa::path(get, path = "/courses/{id}/sessions/{session_key}/transcript", tag = "sessions",
    params(("id" = String, Path, description = "Course id"),
           ("session_key" = String, Path, description = "Session key, e.g. `2026-09-01T10:00`"),
           TranscriptQuery),
    responses((status = 200, description = "The transcript, as JSON or plain text",
               content((Vec<TranscriptEntry> = "application/json"), (String = "text/plain"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn session_transcript(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, session_key)): Path<(String, String)>,
    Query(query): Query<TranscriptQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let text = wants(
        query.format.map(|f| f == TranscriptFormat::Txt),
        &headers,
        "text/plain",
    );
    let entries = courses::transcript(&s.store, &id, &session_key).await?;
    if text {
        Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            courses::transcript_text(&entries),
        )
            .into_response())
    } else {
        Ok(Json(entries).into_response())
    }
}

/// Who reads a session's polls: an admin API key, or a course member's own join token (staff
/// only; see [`session_polls`]).
#[derive(Debug)]
pub(super) enum SessionReader {
    Admin,
    Member { course: String, staff: bool },
}

impl axum::extract::FromRequestParts<AppState> for SessionReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &AppState,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "an API key or a join token is required: Authorization: Bearer <key or token>",
            ));
        };
        match shared.store.verify_api_key(token).await {
            Ok(Some(_)) => return Ok(SessionReader::Admin),
            Ok(None) => {}
            Err(err) => return Err(courses::ServiceError::from(err).into()),
        }
        let (room, identity) = shared
            .auth
            .verify(token, None)
            .map_err(|_| ApiError::unauthorized("invalid API key or join token"))?;
        let course = RoomName::parse(room.as_str())
            .map_or_else(|| room.as_str().to_owned(), |r| r.course().to_owned());
        Ok(SessionReader::Member {
            course,
            staff: identity.role.is_staff(),
        })
    }
}

/// The polls of one session, oldest first, with their results: per option how many chose it
/// and, unless the poll was anonymous, who chose what. Readable with an admin API key, or with
/// the join token of an instructor or TA of the course (a student's or observer's token, or one
/// for another course, gets 403).
#[utoipa::path(get, path = "/courses/{id}/sessions/{session_key}/polls", tag = "sessions",
    params(("id" = String, Path, description = "Course id"),
           ("session_key" = String, Path, description = "Session key, e.g. `2026-09-01T10:00`")),
    responses((status = 200, description = "The session's polls", body = Vec<PollReport>),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn session_polls(
    reader: SessionReader,
    State(s): State<AppState>,
    Path((id, session_key)): Path<(String, String)>,
) -> ApiResult<Json<Vec<PollReport>>> {
    if let SessionReader::Member { course, staff } = &reader {
        if *course != id {
            return Err(ApiError::forbidden("this join token is for another course"));
        }
        if !staff {
            return Err(ApiError::forbidden(
                "only the course's staff may read its polls",
            ));
        }
    }
    Ok(Json(courses::polls(&s.store, &id, &session_key).await?))
}
