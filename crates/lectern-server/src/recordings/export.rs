//! The one-file export of a recording (`lectern_record::export`), made in the background when
//! a recording stops, or on demand (`lectern recording export`): a WebM with the stage and
//! every voice mixed, and the public chat beside it as WebVTT and JSON, in the recording's
//! folder. While it runs the recording is `processing` and its progress is in the API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lectern_store::{RecordingState, RecordingUpdate, Store};
use tracing::{error, info};

/// The export's file names in a recording's folder.
pub const EXPORT_FILE: &str = "class.webm";
pub const EXPORT_VTT: &str = "class.vtt";
pub const EXPORT_CHAT: &str = "class.chat.json";

/// Exports running now, by recording id, with how far each is (0.0 to 1.0).
#[derive(Debug, Default)]
pub struct ExportJobs {
    running: Mutex<HashMap<String, f64>>,
}

impl ExportJobs {
    /// How far the export of `id` is, while one runs.
    pub fn progress(&self, id: &str) -> Option<f64> {
        self.lock().get(id).copied()
    }

    fn set(&self, id: &str, fraction: f64) {
        self.lock().insert(id.to_owned(), fraction);
    }

    fn finish(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, f64>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The export's path in a recording folder, if it was made.
pub fn export_path(dir: &Path) -> Option<PathBuf> {
    let path = dir.join(EXPORT_FILE);
    path.is_file().then_some(path)
}

/// Exports the recording in `dir` on a blocking thread, reporting progress to `jobs` (and to
/// `report`, e.g. a progress bar). Returns the export's size.
pub async fn export(
    jobs: &Arc<ExportJobs>,
    id: &str,
    dir: PathBuf,
    mut report: impl FnMut(f64) + Send + 'static,
) -> Result<u64, String> {
    jobs.set(id, 0.0);
    let (jobs2, id2) = (jobs.clone(), id.to_owned());
    let result = tokio::task::spawn_blocking(move || {
        let out = dir.join(EXPORT_FILE);
        lectern_record::export::export(&dir, &out, &mut |p| {
            jobs2.set(&id2, p.fraction);
            report(p.fraction);
        })
    })
    .await;
    jobs.finish(id);
    match result {
        Ok(Ok(summary)) => Ok(summary.bytes),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the export stopped: {e}")),
    }
}

/// After a recording stopped and its files are finished: export it, then mark it `ready`
/// (its row keeps the recording's figures; `error` says if the export failed, the segments
/// still play on the replay page).
pub async fn export_then_ready(
    store: Store,
    jobs: Arc<ExportJobs>,
    dir: PathBuf,
    id: String,
    mut done: RecordingUpdate,
) {
    let started = std::time::Instant::now();
    match export(&jobs, &id, dir, |_| {}).await {
        Ok(bytes) => {
            done.bytes += bytes;
            info!(recording.id = %id, secs = started.elapsed().as_secs_f64(), "recording exported");
        }
        Err(e) => {
            error!(recording.id = %id, error = %e, "a recording's export failed");
            done.error = Some(format!("the one-file export failed: {e}"));
        }
    }
    done.state = RecordingState::Ready;
    if let Err(e) = store.update_recording(&id, &done).await {
        error!(recording.id = %id, error = %e, "cannot store a recording's outcome");
    }
}
