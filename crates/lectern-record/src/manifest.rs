//! `manifest.json`: what a recording folder holds, as serde types (see the recording spec).
//!
//! The writer rewrites it atomically ([`Manifest::write_atomic`]: `manifest.json.tmp`, fsync,
//! rename, fsync of the folder) when a segment opens or closes and every
//! [`MANIFEST_INTERVAL`] while recording, so after a crash it is at most a few seconds stale;
//! [`crate::recover`] then fixes what it says about the segments left open.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RecordError;

/// The manifest format this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const EVENTS_FILE: &str = "events.jsonl";
/// The manifest is rewritten at least this often while recording.
pub const MANIFEST_INTERVAL: Duration = Duration::from_secs(2);

/// Audio or video (one codec each: Opus, VP8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Video,
    Audio,
}

/// Why a recording stopped (the `reason` of the event log's last line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Stopped,
    ClassEnded,
    DiskFull,
    Shutdown,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Stopped => "stopped",
            StopReason::ClassEnded => "class_ended",
            StopReason::DiskFull => "disk_full",
            StopReason::Shutdown => "shutdown",
        }
    }
}

/// Why media is missing for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The writer's queue was full: frames were dropped before reaching it.
    QueueFull,
    /// Writing failed (disk error); the segment was closed.
    WriteError,
    /// Packets lost on the network and not repaired by retransmission.
    NetworkLoss,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub recording_id: String,
    /// Unix ms of the recording's start (its clock's zero).
    pub started_at: u64,
    /// The writer finished cleanly: every segment finalized.
    pub complete: bool,
    /// Set by [`crate::recover`]: the writer was cut off (crash, `kill -9`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub interrupted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// The largest segment end or event `t`.
    pub duration_ms: u64,
    pub segments: Vec<SegmentEntry>,
    pub gaps: Vec<GapEntry>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One continuous span of one published track, in its own single-track WebM file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub n: u32,
    pub file: String,
    pub participant_id: String,
    pub kind: Kind,
    /// The SFU's number of the published track, stable for the recording.
    pub track: String,
    /// Where the file's time 0 lies on the recording clock.
    pub offset_ms: u64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub frames: u64,
    pub bytes: u64,
    /// Still being written (or cut off, until recovered).
    pub open: bool,
}

impl SegmentEntry {
    pub fn end_ms(&self) -> u64 {
        self.offset_ms + self.duration_ms
    }
}

/// Media missing from segment `n` from `at_ms` (recording clock) for `duration_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapEntry {
    pub n: u32,
    pub at_ms: u64,
    pub duration_ms: u64,
    pub reason: GapReason,
}

impl Manifest {
    pub fn new(recording_id: String, started_at: u64) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            recording_id,
            started_at,
            complete: false,
            interrupted: false,
            stop_reason: None,
            duration_ms: 0,
            segments: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, RecordError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs::read(&path).map_err(RecordError::io("read", &path))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| RecordError::InvalidManifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(RecordError::UnsupportedVersion(manifest.version));
        }
        Ok(manifest)
    }

    /// Replaces `dir/manifest.json` atomically: a reader (or a crash) sees the old or the new
    /// one, whole.
    pub fn write_atomic(&self, dir: &Path) -> Result<(), RecordError> {
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let path = dir.join(MANIFEST_FILE);
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| RecordError::InvalidManifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        bytes.push(b'\n');
        let mut file = File::create(&tmp).map_err(RecordError::io("create", &tmp))?;
        file.write_all(&bytes)
            .map_err(RecordError::io("write", &tmp))?;
        file.sync_all().map_err(RecordError::io("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(RecordError::io("rename", &tmp))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(RecordError::io("sync", dir))?;
        Ok(())
    }

    /// Sets `duration_ms` from the segments and the last event time.
    pub fn update_duration(&mut self, last_event_ms: u64) {
        let media = self
            .segments
            .iter()
            .map(SegmentEntry::end_ms)
            .max()
            .unwrap_or(0);
        self.duration_ms = media.max(last_event_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_matches_the_spec_example() {
        let text = r#"{
          "version": 1, "recording_id": "rec_1", "started_at": 1765000000000, "complete": false,
          "duration_ms": 65000,
          "segments": [
            {"n": 1, "file": "seg-1.webm", "participant_id": "p_1", "kind": "video",
             "track": "7", "offset_ms": 1200, "duration_ms": 30000,
             "width": 640, "height": 480, "frames": 900, "bytes": 1200000, "open": false}
          ],
          "gaps": [{"n": 1, "at_ms": 5000, "duration_ms": 800, "reason": "queue_full"}]
        }"#;
        let m: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.segments[0].kind, Kind::Video);
        assert_eq!(m.segments[0].end_ms(), 31_200);
        assert_eq!(m.gaps[0].reason, GapReason::QueueFull);
        assert!(!m.interrupted);
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn atomic_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::new("rec_2".into(), 5);
        m.interrupted = true;
        m.stop_reason = Some(StopReason::DiskFull);
        m.write_atomic(dir.path()).unwrap();
        assert!(!dir.path().join("manifest.json.tmp").exists());
        assert_eq!(Manifest::read(dir.path()).unwrap(), m);
        m.version = 2;
        m.write_atomic(dir.path()).unwrap();
        assert!(matches!(
            Manifest::read(dir.path()),
            Err(RecordError::UnsupportedVersion(2))
        ));
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{").unwrap();
        assert_eq!(
            Manifest::read(dir.path()).unwrap_err().code(),
            "invalid_manifest"
        );
    }
}
