//! Recordings of classes, above the recorder crate (`lectern-record`): what the REST API, the
//! CLI and the replay page do with them, and what the server does at start-up and on a timer.
//!
//! - this file: the API's view of a recording; list, get, delete; where a recording's files
//!   are;
//! - [`replay`]: what a viewer is given (segments with grants, the event log filtered for
//!   them).
//!
//! A recording's row (state, figures) is in the store; its media segments, event log and
//! manifest are files in its own folder under `recording.dir` (see `lectern-record`).

pub mod export;
pub mod replay;

use std::path::{Path, PathBuf};

use lectern_store::{Recording, RecordingState, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::courses::ServiceError;
use crate::courses::service::rfc3339;

/// A recording as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordingView {
    pub id: String,
    pub course_id: String,
    /// The room (session) that was recorded.
    pub room_id: String,
    pub title: String,
    /// `recording`, `processing`, `ready` or `failed`.
    pub state: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC; absent while recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub duration_ms: u64,
    /// Size of its files.
    pub bytes: u64,
    /// The server stopped without finishing it (a crash); it plays up to its last seconds.
    pub interrupted: bool,
    /// Why recording stopped: `stopped`, `class_ended`, `disk_full`, `failed` or `shutdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// What went wrong, for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The replay page, to open with a course member's join token in the fragment
    /// (`#token=...`).
    pub replay_path: String,
    /// While the one-file export is being made (`processing`): how far it is, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_progress: Option<f64>,
}

pub fn view(r: Recording) -> RecordingView {
    RecordingView {
        replay_path: format!("/replay.html?recording={}", r.id),
        export_progress: None,
        started_at: rfc3339(r.started_at),
        ended_at: r.ended_at.map(rfc3339),
        state: r.state.as_str().to_owned(),
        id: r.id,
        course_id: r.course_id,
        room_id: r.room_id,
        title: r.title,
        duration_ms: r.duration_ms,
        bytes: r.bytes,
        interrupted: r.interrupted,
        stop_reason: r.stop_reason,
        error: r.error,
    }
}

/// A recording id as the server makes them: `rec_` and 24 lowercase hex digits. Anything else
/// is not looked up (and never becomes a path).
pub fn is_recording_id(id: &str) -> bool {
    id.len() == 28
        && id.starts_with("rec_")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new recording id.
pub fn new_recording_id() -> String {
    format!("rec_{}", crate::courses::service::random_hex(12))
}

/// The recording's folder.
pub fn recording_dir(root: &Path, recording: &Recording) -> PathBuf {
    root.join(&recording.dir)
}

/// The recording, or `not_found` (an id of the wrong shape is not found either).
pub async fn require_recording(store: &Store, id: &str) -> Result<Recording, ServiceError> {
    let not_found = || ServiceError::NotFound {
        what: "recording",
        id: id.to_owned(),
    };
    if !is_recording_id(id) {
        return Err(not_found());
    }
    store.recording(id).await?.ok_or_else(not_found)
}

/// A course's recordings, newest first. An ad-hoc room's recordings are listed under the
/// room's id. `not_found` when there is no such course and nothing recorded under that name.
pub async fn list_recordings(
    store: &Store,
    course: &str,
) -> Result<Vec<RecordingView>, ServiceError> {
    let list = store.course_recordings(course).await?;
    if list.is_empty() {
        crate::courses::service::require_course(store, course).await?;
    }
    Ok(list.into_iter().map(view).collect())
}

pub async fn get_recording(store: &Store, id: &str) -> Result<RecordingView, ServiceError> {
    require_recording(store, id).await.map(view)
}

/// Deletes a recording: its row, then its folder. A recording still being recorded is a
/// `conflict` (stop it first).
pub async fn delete_recording(store: &Store, root: &Path, id: &str) -> Result<(), ServiceError> {
    let recording = require_recording(store, id).await?;
    if recording.state == RecordingState::Recording {
        return Err(ServiceError::Conflict(
            "the class is still being recorded; stop recording first".into(),
        ));
    }
    store.delete_recording(id).await?;
    remove_files(root, &recording);
    Ok(())
}

/// Removes a recording's folder (logged, not fatal: the row is already gone).
fn remove_files(root: &Path, recording: &Recording) {
    let dir = recording_dir(root, recording);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(recording.id = %recording.id, error = %e, "could not delete a recording's files");
    }
}

/// What [`recover_interrupted`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Recordings a crash cut off, now closed.
    pub closed: usize,
    /// Recordings whose files were finished but whose export did not run to its end (the
    /// server stopped meanwhile): export them again, then mark them with this.
    pub to_export: Vec<(String, lectern_store::RecordingUpdate)>,
}

/// At start-up: recordings a crash left `recording` are closed: their files are read back up
/// to the last flush (`lectern_record::recover`) and each is marked `interrupted`, `failed`
/// when nothing could be read, else `processing` and returned to be exported (then `ready`).
/// Those left `processing` with finished files only lack their export: they are returned to be
/// exported again.
pub async fn recover_interrupted(store: &Store, root: &Path) -> Result<Recovered, ServiceError> {
    let mut out = Recovered::default();
    let mut open = store.recordings_in_state(RecordingState::Recording).await?;
    for recording in store
        .recordings_in_state(RecordingState::Processing)
        .await?
    {
        let dir = recording_dir(root, &recording);
        match lectern_record::Manifest::read(&dir) {
            Ok(manifest) if manifest.complete => out.to_export.push((
                recording.id.clone(),
                lectern_store::RecordingUpdate {
                    state: RecordingState::Ready,
                    ended_at: recording.ended_at,
                    duration_ms: manifest.duration_ms,
                    bytes: manifest.segments.iter().map(|s| s.bytes).sum(),
                    interrupted: false,
                    stop_reason: recording.stop_reason.clone(),
                    error: None,
                },
            )),
            // Stopped, but the writer did not finish: as cut off as a crash.
            _ => open.push(recording),
        }
    }
    out.closed = open.len();
    for recording in open {
        let dir = recording_dir(root, &recording);
        let recovered = tokio::task::spawn_blocking(move || lectern_record::recover(&dir))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let update = match recovered {
            Ok(manifest) => lectern_store::RecordingUpdate {
                state: RecordingState::Ready,
                ended_at: Some(recording.started_at + manifest.duration_ms),
                duration_ms: manifest.duration_ms,
                bytes: manifest.segments.iter().map(|s| s.bytes).sum(),
                interrupted: true,
                stop_reason: Some("interrupted".into()),
                error: None,
            },
            Err(e) => lectern_store::RecordingUpdate {
                state: RecordingState::Failed,
                ended_at: Some(recording.started_at),
                duration_ms: 0,
                bytes: 0,
                interrupted: true,
                stop_reason: Some("interrupted".into()),
                error: Some(format!("could not be recovered: {e}")),
            },
        };
        tracing::warn!(recording.id = %recording.id, state = %update.state, "a recording interrupted by a crash was closed");
        if update.state == RecordingState::Ready {
            // What was recorded is exported too: `processing` until that is done.
            let processing = lectern_store::RecordingUpdate {
                state: RecordingState::Processing,
                ..update.clone()
            };
            store.update_recording(&recording.id, &processing).await?;
            out.to_export.push((recording.id.clone(), update));
        } else {
            store.update_recording(&recording.id, &update).await?;
        }
    }
    Ok(out)
}

/// Retention: deletes recordings (rows and files) that started more than `days` days before
/// `now` (Unix ms); 0 keeps everything. Returns how many went.
pub async fn apply_retention(
    store: &Store,
    root: &Path,
    days: u64,
    now: lectern_proto::UnixMillis,
) -> Result<usize, ServiceError> {
    if days == 0 {
        return Ok(0);
    }
    let before = now.saturating_sub(days.saturating_mul(86_400_000));
    let old = store.recordings_started_before(before).await?;
    for recording in &old {
        store.delete_recording(&recording.id).await?;
        remove_files(root, recording);
        tracing::info!(recording.id = %recording.id, "recording deleted by retention");
    }
    Ok(old.len())
}
