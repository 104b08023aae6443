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
    Ok(Json(recordings::list_recordings(&s.store, &id).await?))
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
    Ok(Json(recordings::get_recording(&s.store, &id).await?))
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
