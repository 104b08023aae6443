//! The writer thread's state: open segments per track, the manifest, the event log.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, warn};

use super::segment::{Extent, OpenSegment, TrackParams};
use super::{Shared, TrackKey};
use crate::manifest::{GapEntry, GapReason, Kind, Manifest, SegmentEntry, StopReason};
use crate::track::{Frame, Gap, KEYFRAME_RETRY, SEGMENT_IDLE};

/// An open segment whose track sent nothing for this long (on the recording clock) is closed.
const IDLE_CLOSE_US: u64 = SEGMENT_IDLE.as_micros() as u64 + 1_000_000;
/// Gaps of one segment closer than this are merged into one.
const GAP_MERGE_MS: u64 = 2_000;

struct TrackState {
    kind: Kind,
    segment: Option<(u32, OpenSegment)>,
    last_segment: Option<u32>,
    /// The segment before `last_segment` (a segment that never got a frame to disk is undone).
    prev_segment: Option<u32>,
    last_frame_no: Option<u64>,
    last_at_us: Option<u64>,
    /// The last frame received (written or not).
    last_seen_us: u64,
    waiting_keyframe: bool,
    last_ask: Option<Instant>,
    /// Media missing since `.0`, closed by the next frame written: (at_us, reason, segment).
    open_gap: Option<(u64, GapReason, Option<u32>)>,
}

pub(crate) struct Recording {
    dir: PathBuf,
    started: Instant,
    shared: Arc<Shared>,
    manifest: Manifest,
    tracks: HashMap<TrackKey, TrackState>,
    events: BufWriter<File>,
    events_failed: bool,
    last_event_ms: u64,
    next_n: u32,
    manifest_failed: bool,
}

impl Recording {
    pub(crate) fn new(
        dir: PathBuf,
        started: Instant,
        shared: Arc<Shared>,
        manifest: Manifest,
        events: File,
    ) -> Self {
        Recording {
            dir,
            started,
            shared,
            manifest,
            tracks: HashMap::new(),
            events: BufWriter::with_capacity(16 << 10, events),
            events_failed: false,
            last_event_ms: 0,
            next_n: 1,
            manifest_failed: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn on_frame(&mut self, key: TrackKey, kind: Kind, frame: Frame) {
        let state = self
            .tracks
            .entry(key.clone())
            .or_insert_with(|| TrackState {
                kind,
                segment: None,
                last_segment: None,
                prev_segment: None,
                last_frame_no: None,
                last_at_us: None,
                last_seen_us: 0,
                waiting_keyframe: false,
                last_ask: None,
                open_gap: None,
            });
        if let Some(last) = state.last_frame_no
            && frame.frame_no > last + 1
        {
            // Frames were dropped on the way here (the queue was full).
            let since = state.last_at_us.unwrap_or(frame.at_us);
            let n = state
                .segment
                .as_ref()
                .map(|(n, _)| *n)
                .or(state.last_segment);
            state
                .open_gap
                .get_or_insert((since, GapReason::QueueFull, n));
            state.waiting_keyframe |= kind == Kind::Video;
        }
        state.last_frame_no = Some(frame.frame_no);
        state.last_seen_us = state.last_seen_us.max(frame.at_us);
        if frame.segment_start {
            if state
                .open_gap
                .is_some_and(|(_, reason, _)| reason != GapReason::WriteError)
            {
                // What went missing before a silence cannot be measured; the silence is no gap.
                state.open_gap = None;
            }
            self.close_segment(&key, false);
        }
        let Some(state) = self.tracks.get_mut(&key) else {
            return;
        };
        if state.segment.is_none() {
            let Some(params) = TrackParams::of(kind, &frame) else {
                self.want_keyframe(&key);
                return;
            };
            if !self.open_segment(&key, params, &frame) {
                return;
            }
        }
        let Some(state) = self.tracks.get_mut(&key) else {
            return;
        };
        if state.waiting_keyframe {
            if !frame.keyframe {
                self.want_keyframe(&key);
                return;
            }
            state.waiting_keyframe = false;
        }
        let Some(n) = state.segment.as_ref().map(|(n, _)| *n) else {
            return;
        };
        if let Some((since, reason, gap_n)) = state.open_gap.take() {
            self.push_gap(gap_n.unwrap_or(n), since, frame.at_us, reason);
        }
        let Some(state) = self.tracks.get_mut(&key) else {
            return;
        };
        let Some((_, segment)) = state.segment.as_mut() else {
            return;
        };
        let result = segment.write(&frame);
        state.last_at_us = Some(frame.at_us);
        if let Err(e) = result {
            warn!(recording.id = %self.manifest.recording_id, segment = n, error = %e, "segment write failed");
            self.fail_segment(&key, frame.at_us);
        }
    }

    /// Unrepaired network loss reported by a track recorder.
    pub(crate) fn on_gap(&mut self, key: &TrackKey, gap: Gap) {
        let Some(state) = self.tracks.get(key) else {
            return;
        };
        let Some(n) = state
            .segment
            .as_ref()
            .map(|(n, _)| *n)
            .or(state.last_segment)
        else {
            return;
        };
        self.push_gap(
            n,
            gap.at_us,
            gap.at_us + gap.duration_us,
            GapReason::NetworkLoss,
        );
    }

    /// One event log line: `json` with its `t` set to `t_ms` (when it is an object).
    pub(crate) fn on_event(&mut self, t_ms: u64, mut json: serde_json::Value) {
        if let Some(object) = json.as_object_mut() {
            object.insert("t".to_owned(), t_ms.into());
        }
        self.last_event_ms = self.last_event_ms.max(t_ms);
        let mut line = json.to_string();
        line.push('\n');
        if let Err(e) = self.events.write_all(line.as_bytes()) {
            self.event_log_failed(&e);
        }
    }

    fn event_log_failed(&mut self, e: &std::io::Error) {
        if !self.events_failed {
            warn!(recording.id = %self.manifest.recording_id, error = %e, "event log write failed");
        }
        self.events_failed = true;
    }

    fn want_keyframe(&mut self, key: &TrackKey) {
        let Some(state) = self.tracks.get_mut(key) else {
            return;
        };
        if state.kind != Kind::Video
            || state
                .last_ask
                .is_some_and(|at| at.elapsed() < KEYFRAME_RETRY)
        {
            return;
        }
        state.last_ask = Some(Instant::now());
        state.waiting_keyframe = true;
        self.shared.ask_keyframe(key);
    }

    fn open_segment(&mut self, key: &TrackKey, params: TrackParams, first: &Frame) -> bool {
        let n = self.next_n;
        self.next_n += 1;
        let file = format!("seg-{n}.webm");
        let (width, height) = match params {
            TrackParams::Video { width, height } => {
                (Some(u32::from(width)), Some(u32::from(height)))
            }
            TrackParams::Audio { .. } => (None, None),
        };
        let Some(kind) = self.tracks.get(key).map(|s| s.kind) else {
            return false;
        };
        self.manifest.segments.push(SegmentEntry {
            n,
            file: file.clone(),
            participant_id: key.participant_id.clone(),
            kind,
            track: key.track.to_string(),
            offset_ms: (first.at_us + 500) / 1000,
            duration_ms: 0,
            width,
            height,
            frames: 0,
            bytes: 0,
            open: true,
        });
        // Listed before the file exists: after a crash no file is unaccounted for.
        self.write_manifest();
        let created = OpenSegment::create(&self.dir.join(&file), params, first.at_us);
        let Some(state) = self.tracks.get_mut(key) else {
            return false;
        };
        match created {
            Ok(segment) => {
                debug!(recording.id = %self.manifest.recording_id, segment = n, "segment opened");
                state.segment = Some((n, segment));
                state.prev_segment = state.last_segment;
                state.last_segment = Some(n);
                state.waiting_keyframe = false;
                true
            }
            Err(e) => {
                warn!(recording.id = %self.manifest.recording_id, segment = n, error = %e, "segment create failed");
                state.open_gap.get_or_insert((
                    first.at_us,
                    GapReason::WriteError,
                    state.last_segment,
                ));
                self.manifest.segments.retain(|s| s.n != n);
                self.write_manifest();
                false
            }
        }
    }

    fn entry_mut(&mut self, n: u32) -> Option<&mut SegmentEntry> {
        self.manifest.segments.iter_mut().rev().find(|s| s.n == n)
    }

    fn set_extent(&mut self, n: u32, extent: Extent, open: bool) {
        if let Some(entry) = self.entry_mut(n) {
            entry.duration_ms = extent.duration_ms;
            entry.frames = extent.frames;
            entry.bytes = extent.bytes;
            entry.open = open;
        }
    }

    /// Finalizes the track's open segment. Returns false when finalizing failed.
    fn close_segment(&mut self, key: &TrackKey, failed: bool) -> bool {
        let Some(state) = self.tracks.get_mut(key) else {
            return true;
        };
        let Some((n, segment)) = state.segment.take() else {
            return true;
        };
        let (extent, result) = segment.finalize();
        if let Err(e) = &result
            && !failed
        {
            warn!(recording.id = %self.manifest.recording_id, segment = n, error = %e, "segment finalize failed");
        }
        if extent.frames == 0 {
            // Nothing reached the disk: the segment never was. Its gaps go to the track's
            // previous segment (or the next one).
            state.last_segment = state.prev_segment;
            let fallback = state.prev_segment;
            let file = self.dir.join(format!("seg-{n}.webm"));
            let _ = std::fs::remove_file(file);
            self.manifest.segments.retain(|s| s.n != n);
            let gaps = std::mem::take(&mut self.manifest.gaps);
            for mut gap in gaps {
                if gap.n == n {
                    match fallback {
                        Some(prev) => gap.n = prev,
                        None => continue,
                    }
                }
                self.push_gap(
                    gap.n,
                    gap.at_ms * 1000,
                    (gap.at_ms + gap.duration_ms) * 1000,
                    gap.reason,
                );
            }
        } else {
            self.set_extent(n, extent, false);
        }
        self.write_manifest();
        result.is_ok()
    }

    /// A write failed: the segment ends with what reached the disk, the track resumes in a new
    /// segment (video from a keyframe), and the time in between is a gap.
    fn fail_segment(&mut self, key: &TrackKey, at_us: u64) {
        self.close_segment(key, true);
        let Some(state) = self.tracks.get_mut(key) else {
            return;
        };
        let n = state.last_segment;
        let since = n
            .and_then(|n| self.manifest.segments.iter().find(|s| s.n == n))
            .map_or(at_us, |s| s.end_ms() * 1000);
        if state.open_gap.is_none() {
            state.open_gap = Some((since.min(at_us), GapReason::WriteError, n));
        }
        self.want_keyframe(key);
    }

    fn push_gap(&mut self, n: u32, from_us: u64, to_us: u64, reason: GapReason) {
        let at_ms = from_us / 1000;
        let end_ms = to_us.div_ceil(1000);
        if end_ms <= at_ms {
            return;
        }
        let merged = self
            .manifest
            .gaps
            .iter_mut()
            .rev()
            .take(16)
            .find(|g| g.n == n && g.reason == reason)
            .is_some_and(|g| {
                let fits = g.at_ms <= at_ms && g.at_ms + g.duration_ms + GAP_MERGE_MS >= at_ms;
                if fits {
                    g.duration_ms = g.duration_ms.max(end_ms - g.at_ms);
                }
                fits
            });
        if !merged {
            self.manifest.gaps.push(GapEntry {
                n,
                at_ms,
                duration_ms: end_ms - at_ms,
                reason,
            });
        }
    }

    /// Flushes every open segment and the event log; closes segments idle for too long.
    pub(crate) fn flush_all(&mut self) {
        let now_us = self.started.elapsed().as_micros() as u64;
        let keys: Vec<TrackKey> = self.tracks.keys().cloned().collect();
        for key in keys {
            let Some(state) = self.tracks.get_mut(&key) else {
                continue;
            };
            let Some((n, segment)) = state.segment.as_mut() else {
                continue;
            };
            let n = *n;
            if now_us.saturating_sub(segment.last_at_us()) >= IDLE_CLOSE_US {
                self.close_segment(&key, false);
                continue;
            }
            match segment.flush() {
                Ok(()) => {
                    let extent = segment.flushed();
                    self.set_extent(n, extent, true);
                }
                Err(e) => {
                    warn!(recording.id = %self.manifest.recording_id, segment = n, error = %e, "segment flush failed");
                    let at = segment.last_at_us();
                    self.fail_segment(&key, at);
                }
            }
        }
        if let Err(e) = self.events.flush() {
            self.event_log_failed(&e);
        }
    }

    /// Rewrites the manifest (a failure is logged once and retried next time).
    pub(crate) fn write_manifest(&mut self) {
        self.manifest.update_duration(self.last_event_ms);
        match self.manifest.write_atomic(&self.dir) {
            Ok(()) => self.manifest_failed = false,
            Err(e) => {
                if !self.manifest_failed {
                    warn!(recording.id = %self.manifest.recording_id, error = %e, "manifest write failed");
                }
                self.manifest_failed = true;
            }
        }
    }

    /// Ends the recording: the stop line, every segment finalized, the manifest complete.
    pub(crate) fn finish(mut self, reason: StopReason) -> Manifest {
        let t = self.now_ms().max(self.last_event_ms);
        self.on_event(
            t,
            serde_json::json!({"type": "stop", "reason": reason.as_str()}),
        );
        let mut clean = true;
        if let Err(e) = self
            .events
            .flush()
            .and_then(|()| self.events.get_ref().sync_data())
        {
            self.event_log_failed(&e);
        }
        clean &= !self.events_failed;
        let keys: Vec<TrackKey> = self.tracks.keys().cloned().collect();
        for key in keys {
            clean &= self.close_segment(&key, false);
            // Media still missing at the end is missing up to the last frame that came.
            let Some(state) = self.tracks.get_mut(&key) else {
                continue;
            };
            if let Some((since, reason, n)) = state.open_gap.take()
                && let Some(n) = n.or(state.last_segment)
            {
                let until = state.last_seen_us;
                self.push_gap(n, since, until, reason);
            }
        }
        // A segment that failed earlier (a write error closed it) lost media too: not complete.
        clean &= !self
            .manifest
            .gaps
            .iter()
            .any(|g| g.reason == GapReason::WriteError);
        self.manifest.complete = clean;
        self.manifest.stop_reason = Some(reason);
        self.write_manifest();
        debug!(recording.id = %self.manifest.recording_id, reason = reason.as_str(), "recording finished");
        self.manifest
    }
}
