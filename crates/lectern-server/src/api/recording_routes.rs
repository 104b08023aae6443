//! Recordings: list a course's, get one, delete one (admin API key).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tracing::info;

use super::{AdminKey, ApiResult, AppState, ErrorBody};
use crate::recordings::{self, RecordingView};

/// A course's recordings, newest first.
#[utoipa::path(get, path = "/courses/{id}/recordings", tag = "recordings",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = Vec<RecordingView>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn list_recordings(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RecordingView>>> {
    let mut list = recordings::list_recordings(&s.store, &id).await?;
    for view in &mut list {
        view.export_progress = s.exports.progress(&view.id);
    }
    Ok(Json(list))
}

/// One recording.
#[utoipa::path(get, path = "/recordings/{id}", tag = "recordings",
    params(("id" = String, Path, description = "Recording id")),
    responses((status = 200, body = RecordingView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn get_recording(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RecordingView>> {
    let mut view = recordings::get_recording(&s.store, &id).await?;
    view.export_progress = s.exports.progress(&view.id);
    Ok(Json(view))
}

/// Download the one-file export (WebM: the stage and every voice mixed), with range requests.
/// 404 until it is made (`state` `processing`: see `export_progress`).
#[utoipa::path(get, path = "/recordings/{id}/download", tag = "recordings",
    params(("id" = String, Path, description = "Recording id")),
    responses((status = 200, content_type = "video/webm", description = "The export"),
              (status = 206, content_type = "video/webm", description = "A range of it"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn download_recording(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> ApiResult<axum::response::Response> {
    let recording = recordings::require_recording(&s.store, &id).await?;
    let dir = recordings::recording_dir(&s.config.recordings_dir(), &recording);
    super::replay_routes::serve_export(&dir, &recording.id, request).await
}

/// Delete a recording and its files. A recording still being recorded is a conflict.
#[utoipa::path(delete, path = "/recordings/{id}", tag = "recordings",
    params(("id" = String, Path, description = "Recording id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub(super) async fn delete_recording(
    key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    recordings::delete_recording(&s.store, &s.config.recordings_dir(), &id).await?;
    info!(api.key = %key.id, recording.id = %id, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}
