//! The replay API, for course members watching a recording (`/replay/v1`): authenticated by
//! the member's own join token (any room of the recording's course), not by an admin key.
//!
//! - `GET /replay/v1/recordings/{id}`: the recording, its segments (each with a URL carrying
//!   a grant, for `<video src>`, which cannot send a header) and its event log, filtered for
//!   the viewer (see [`crate::recordings::replay`]).
//! - `GET /replay/v1/recordings/{id}/segments/{n}?grant=...`: one segment's WebM, with HTTP
//!   range requests (seeking).

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::{ApiError, ApiResult, AppState};
use crate::auth::unix_now;
use crate::recordings::export::export_path;
use crate::recordings::replay::{self, SegmentView, Viewer};
use crate::recordings::{self, RecordingView};
use crate::room_name::RoomName;

/// How long a segment grant lasts: a long lecture watched with pauses.
const GRANT_SECS: u64 = 12 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/recordings/{id}", get(replay_answer))
        .route("/recordings/{id}/segments/{n}", get(segment))
        .route("/recordings/{id}/download", get(download))
        .fallback(|| async { ApiError::not_found("no such replay endpoint") })
}

/// What the replay page is given.
#[derive(Debug, Serialize)]
struct ReplayAnswer {
    recording: RecordingView,
    viewer: ViewerView,
    segments: Vec<SegmentView>,
    gaps: Value,
    events: Vec<Value>,
    download_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct ViewerView {
    participant_id: String,
    role: String,
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The viewer's join token, checked, and the course it is for.
fn viewer_of(s: &AppState, headers: &HeaderMap) -> Result<(String, Viewer, String), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("a join token is required: Authorization: Bearer <token>")
        })?;
    let (room, identity) = s
        .auth
        .verify(token.trim(), None)
        .map_err(|e| ApiError::unauthorized(&format!("the join token is not valid: {e}")))?;
    // An ad-hoc room (not a course session) is its own "course": its recordings are watched
    // with a token for that room.
    let course = RoomName::parse(room.as_str())
        .map_or_else(|| room.as_str().to_owned(), |r| r.course().to_owned());
    let viewer = Viewer {
        staff: identity.role.is_staff(),
        participant_id: identity.id,
    };
    Ok((course, viewer, identity.role.as_str().to_owned()))
}

async fn replay_answer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<ReplayAnswer>> {
    let (course, viewer, role) = viewer_of(&s, &headers)?;
    let recording = recordings::require_recording(&s.store, &id).await?;
    if recording.course_id != course {
        return Err(forbidden("this recording belongs to another course"));
    }
    let dir = recordings::recording_dir(&s.config.recordings_dir(), &recording);
    let manifest: Value = read_optional(&dir, "manifest.json")
        .await?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let events = read_optional(&dir, "events.jsonl")
        .await?
        .unwrap_or_default();
    let events = replay::filter_events(replay::parse_log(&events), &viewer);
    let grant = s
        .auth
        .grant(&grant_scope(&recording.id), unix_now() + GRANT_SECS);
    let segments = manifest
        .get("segments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|segment| {
            let n = segment.get("n")?.as_u64()?;
            Some(SegmentView {
                url: format!(
                    "/replay/v1/recordings/{}/segments/{n}?grant={grant}",
                    recording.id
                ),
                segment,
            })
        })
        .collect();
    let gaps = manifest
        .get("gaps")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    // Staff may always download the one-file export (once made); students when the course
    // allows it.
    let may_download = viewer.staff
        || s.store
            .course(&recording.course_id)
            .await
            .map_err(crate::courses::ServiceError::from)?
            .is_some_and(|c| c.recording_downloads);
    let download_url = (may_download && export_path(&dir).is_some()).then(|| {
        let grant = s
            .auth
            .grant(&download_scope(&recording.id), unix_now() + GRANT_SECS);
        format!(
            "/replay/v1/recordings/{}/download?grant={grant}",
            recording.id
        )
    });
    Ok(Json(ReplayAnswer {
        recording: recordings::view(recording),
        viewer: ViewerView {
            participant_id: viewer.participant_id.as_str().to_owned(),
            role,
        },
        segments,
        gaps,
        events,
        download_url,
    }))
}

/// A file of the recording's folder, `None` if it does not exist (yet).
async fn read_optional(
    dir: &std::path::Path,
    name: &'static str,
) -> Result<Option<String>, crate::courses::ServiceError> {
    match tokio::fs::read_to_string(dir.join(name)).await {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::courses::ServiceError::Internal(format!(
            "reading a recording's {name}: {e}"
        ))),
    }
}

fn download_scope(recording: &str) -> String {
    format!("download {recording}")
}

/// The one-file export as a download (`Content-Disposition: attachment`), with range
/// requests; `not_found` until it is made.
pub(super) async fn serve_export(
    dir: &std::path::Path,
    id: &str,
    request: Request,
) -> ApiResult<Response> {
    let Some(path) = export_path(dir) else {
        return Err(ApiError::not_found(
            "the one-file export is not made yet (see the recording's state)",
        ));
    };
    let mime = "video/webm".parse().expect("a MIME type");
    let Ok(response) = ServeFile::new_with_mime(&path, &mime)
        .oneshot(request)
        .await;
    let mut response = response.into_response();
    if let Ok(value) = format!("attachment; filename=\"{id}.webm\"").parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn download(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<GrantQuery>,
    request: Request,
) -> ApiResult<Response> {
    let grant = query.grant.unwrap_or_default();
    if !s.auth.check_grant(&download_scope(&id), &grant, unix_now()) {
        return Err(forbidden(
            "the link has expired or is not valid; reload the replay page",
        ));
    }
    let recording = recordings::require_recording(&s.store, &id).await?;
    let dir = recordings::recording_dir(&s.config.recordings_dir(), &recording);
    serve_export(&dir, &recording.id, request).await
}

fn grant_scope(recording: &str) -> String {
    format!("recording {recording}")
}

#[derive(Debug, Deserialize)]
struct GrantQuery {
    grant: Option<String>,
}

async fn segment(
    State(s): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    Query(query): Query<GrantQuery>,
    request: Request,
) -> ApiResult<Response> {
    let grant = query.grant.unwrap_or_default();
    if !s.auth.check_grant(&grant_scope(&id), &grant, unix_now()) {
        return Err(forbidden(
            "the link has expired or is not valid; reload the replay page",
        ));
    }
    let n: u32 = n
        .parse()
        .map_err(|_| ApiError::not_found("no such segment"))?;
    let recording = recordings::require_recording(&s.store, &id).await?;
    let path = recordings::recording_dir(&s.config.recordings_dir(), &recording)
        .join(format!("seg-{n}.webm"));
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ApiError::not_found("no such segment"));
    }
    let mime = "video/webm".parse().expect("a MIME type");
    let Ok(response) = ServeFile::new_with_mime(&path, &mime)
        .oneshot(request)
        .await;
    Ok(response.into_response())
}
