//! Recovery of a recording its writer did not finish (crash, `kill -9`, power cut).
//!
//! The manifest on disk is at most a few seconds stale and lists every segment file (a
//! segment is listed before its file is created). Segments still marked `open` were cut off:
//! their files end at the writer's last flush, with an unknown-size last cluster and no
//! duration or cues. [`recover`] reads each such file with a WebM demuxer (through a lenient
//! view that gives unknown-size clusters their real size) up to its last complete frame
//! ([`probe_segment`]), and rewrites the manifest with the real durations,
//! `open: false`, `complete: false` and `interrupted: true`. The files themselves are left as
//! they are: they play (and seek, by scanning) as they are.

pub(crate) mod lenient;

use std::fs::File;
use std::path::Path;

use matroska_demuxer::{Frame, MatroskaFile, TrackType};
use tracing::{info, warn};

use crate::RecordError;
use crate::manifest::{EVENTS_FILE, Manifest};
use crate::opus;

/// What a segment file holds that a player can play.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentProbe {
    /// From 0 to the end of the last complete frame.
    pub duration_ms: u64,
    pub frames: u64,
    pub bytes: u64,
}

/// Reads a single-track WebM up to its last complete frame. An unreadable file (missing,
/// cut off inside its header) is an empty probe, not an error: there is nothing to play.
pub fn probe_segment(path: &Path) -> SegmentProbe {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let Ok(file) = File::open(path) else {
        return SegmentProbe {
            bytes,
            ..SegmentProbe::default()
        };
    };
    let reader = match lenient::Lenient::open(file) {
        Ok(reader) => reader,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "segment unreadable");
            return SegmentProbe {
                bytes,
                ..SegmentProbe::default()
            };
        }
    };
    let mut mkv = match MatroskaFile::open(reader) {
        Ok(mkv) => mkv,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "segment unreadable");
            return SegmentProbe {
                bytes,
                ..SegmentProbe::default()
            };
        }
    };
    let scale_ns = mkv.info().timestamp_scale().get();
    let audio = mkv
        .tracks()
        .first()
        .is_some_and(|t| t.track_type() == TrackType::Audio);
    let mut frame = Frame::default();
    let (mut frames, mut last_ts, mut last_dur) = (0u64, 0u64, 0u64);
    // A frame cut off by the end of the file (or any damage) ends what is playable.
    while let Ok(true) = mkv.next_frame(&mut frame) {
        let ts_us = frame.timestamp.saturating_mul(scale_ns) / 1000;
        last_dur = if audio {
            opus::packet_duration_us(&frame.data).unwrap_or(20_000)
        } else if frames == 0 {
            33_333
        } else {
            ts_us.saturating_sub(last_ts).clamp(1, 100_000)
        };
        last_ts = last_ts.max(ts_us);
        frames += 1;
    }
    let duration_us = if frames == 0 { 0 } else { last_ts + last_dur };
    SegmentProbe {
        duration_ms: duration_us.div_ceil(1000),
        frames,
        bytes,
    }
}

/// The largest `t` of the complete lines of an event log (0 when there is none).
pub fn last_event_ms(path: &Path) -> u64 {
    let Ok(text) = std::fs::read(path) else {
        return 0;
    };
    text.split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter_map(|v| v.get("t").and_then(serde_json::Value::as_u64))
        .max()
        .unwrap_or(0)
}

/// Fixes the manifest of a recording left open by a crash (see the [module docs](self)).
/// A recording that finished cleanly is returned as it is.
pub fn recover(dir: &Path) -> Result<Manifest, RecordError> {
    let mut manifest = Manifest::read(dir)?;
    if manifest.complete {
        return Ok(manifest);
    }
    for segment in manifest.segments.iter_mut().filter(|s| s.open) {
        // Only the writer's own file names: a manifest never points outside its folder.
        let probe = if segment.file == format!("seg-{}.webm", segment.n) {
            probe_segment(&dir.join(&segment.file))
        } else {
            SegmentProbe::default()
        };
        segment.duration_ms = probe.duration_ms;
        segment.frames = probe.frames;
        segment.bytes = probe.bytes;
        segment.open = false;
    }
    manifest.complete = false;
    manifest.interrupted = true;
    manifest.update_duration(last_event_ms(&dir.join(EVENTS_FILE)));
    manifest.write_atomic(dir)?;
    info!(recording.id = %manifest.recording_id, duration_ms = manifest.duration_ms, "recording recovered");
    Ok(manifest)
}
