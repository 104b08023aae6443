//! The recording writer: one OS thread per recording that writes the segment files, the
//! event log and the manifest, fed through a [`RecordingSink`].
//!
//! - **Never slows the class.** [`RecordingSink::try_frame`] never blocks: frames go into a
//!   queue bounded by [`WriterConfig::queue_frames`]; when it is full the frame is dropped and
//!   `false` returned. The writer notices the hole in [`Frame::frame_no`] and records a
//!   `queue_full` gap for that track; video of that track then waits for a keyframe, and one
//!   is asked for at once ([`RecordingSink::take_keyframe_wanted`], for the caller to forward
//!   to the publisher). Events and gaps are few and never dropped; they share the queue (so
//!   everything stays in order) without counting against its bound.
//! - **Files** (see the recording spec): `seg-<n>.webm` per segment, one track each (VP8 or
//!   Opus, times from 0 at the manifest's `offset_ms`), libwebm in file mode; `events.jsonl`
//!   appended as given; `manifest.json` rewritten atomically when a segment opens (before its
//!   file is created) or closes, and every [`MANIFEST_INTERVAL`].
//! - **Crash safety.** Segments and the event log are flushed to the kernel at least every
//!   [`WriterConfig::flush_interval`] (at most a second), always between frames, so a `kill -9`
//!   leaves every file playable up to its last flush ([`crate::recover`] then fixes the
//!   manifest). Files are fsynced when they close.
//! - **Disk trouble.** A failed write ends the segment with what reached the disk, records a
//!   `write_error` gap, and the track resumes in a new segment; nothing panics. Every
//!   [`DISK_CHECK_INTERVAL`] the free space of the folder's filesystem is read; below
//!   [`WriterConfig::min_free_bytes`] the recording stops cleanly with reason `disk_full`.
//! - **Stopping.** [`RecordingSink::stop`], or every sink dropped (reason `shutdown`), or a
//!   full disk: the `stop` line is written, every segment finalized (duration, cues), the
//!   manifest marked `complete`, and [`WriterHandle::join`] returns it.

mod segment;
mod state;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::RecordError;
use crate::manifest::{EVENTS_FILE, Kind, MANIFEST_FILE, MANIFEST_INTERVAL, Manifest, StopReason};
use crate::track::{Frame, Gap};
use state::Recording;

/// How often the free disk space is checked.
pub const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// The longest allowed [`WriterConfig::flush_interval`].
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// One published track of one participant (the SFU's track number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackKey {
    pub participant_id: String,
    pub track: u64,
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The recording's folder (`<recordings dir>/<recording id>`); created if missing, and
    /// must not hold a manifest yet.
    pub dir: PathBuf,
    pub recording_id: String,
    /// The recording clock's zero (monotonic).
    pub started: Instant,
    /// The same moment in unix ms.
    pub started_at_ms: u64,
    /// Frames the queue holds before [`RecordingSink::try_frame`] drops.
    pub queue_frames: usize,
    /// How often segments and the event log are flushed (at most [`MAX_FLUSH_INTERVAL`]).
    pub flush_interval: Duration,
    /// Stop with `disk_full` when the filesystem has less free space than this (0: never).
    pub min_free_bytes: u64,
}

impl WriterConfig {
    /// Defaults: a queue of 2048 frames (about 20 s of one camera and microphone, or a few
    /// seconds of a busy class), flushed every second, no free-space guard.
    pub fn new(dir: PathBuf, recording_id: String, started: Instant, started_at_ms: u64) -> Self {
        WriterConfig {
            dir,
            recording_id,
            started,
            started_at_ms,
            queue_frames: 2048,
            flush_interval: MAX_FLUSH_INTERVAL,
            min_free_bytes: 0,
        }
    }
}

enum Msg {
    Frame {
        key: TrackKey,
        kind: Kind,
        frame: Frame,
    },
    Gap {
        key: TrackKey,
        gap: Gap,
    },
    Event {
        t_ms: u64,
        json: serde_json::Value,
    },
    Stop(StopReason),
}

/// What the sinks and the writer thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    queued: AtomicUsize,
    capacity: usize,
    stopped: AtomicBool,
    dropped: AtomicU64,
    keyframe_wanted: Mutex<Vec<TrackKey>>,
}

impl Shared {
    pub(crate) fn ask_keyframe(&self, key: &TrackKey) {
        let mut wanted = self
            .keyframe_wanted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !wanted.contains(key) {
            wanted.push(key.clone());
        }
    }
}

/// The way into a recording; cheap to clone, usable from any thread, never blocks.
#[derive(Debug, Clone)]
pub struct RecordingSink {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

impl RecordingSink {
    /// Queues a frame of `track`. False when it was dropped (queue full, or the recording
    /// stopped).
    pub fn try_frame(&self, track: TrackKey, kind: Kind, frame: Frame) -> bool {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return false;
        }
        if self.shared.queued.fetch_add(1, Ordering::AcqRel) >= self.shared.capacity {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if kind == Kind::Video {
                self.shared.ask_keyframe(&track);
            }
            return false;
        }
        if self
            .tx
            .send(Msg::Frame {
                key: track,
                kind,
                frame,
            })
            .is_err()
        {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Unrepaired network loss on `track` (from [`crate::TrackRecorder::poll_gap`]).
    pub fn gap(&self, track: TrackKey, gap: Gap) {
        let _ = self.tx.send(Msg::Gap { key: track, gap });
    }

    /// An event log line at `t_ms` (ms since the start): `json` as given, with its `t` set to
    /// `t_ms` when it is an object. Never dropped while the recording runs.
    pub fn event(&self, t_ms: u64, json: serde_json::Value) {
        let _ = self.tx.send(Msg::Event { t_ms, json });
    }

    /// Ends the recording after everything queued before this call.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.tx.send(Msg::Stop(reason));
    }

    /// Tracks whose publisher should be asked for a keyframe (each listed once per ask).
    pub fn take_keyframe_wanted(&self) -> Vec<TrackKey> {
        let mut wanted = self
            .shared
            .keyframe_wanted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *wanted)
    }

    /// Whether the recording has stopped (asked to, or on its own: full disk).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }

    /// Frames dropped because the queue was full, since the start.
    pub fn dropped_frames(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread; [`WriterHandle::join`] waits for it to finish.
#[derive(Debug)]
pub struct WriterHandle {
    thread: JoinHandle<Manifest>,
}

impl WriterHandle {
    /// Waits until the recording has stopped; the final manifest.
    pub fn join(self) -> Result<Manifest, RecordError> {
        self.thread.join().map_err(|_| RecordError::WriterPanicked)
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Free bytes (for unprivileged users) on the filesystem holding `path`.
pub fn available_space(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Starts a recording: creates its folder, event log and first manifest, then the writer thread.
pub fn spawn(config: WriterConfig) -> Result<(RecordingSink, WriterHandle), RecordError> {
    if config.queue_frames == 0 {
        return Err(RecordError::Config(
            "queue_frames must be at least 1".into(),
        ));
    }
    if config.flush_interval.is_zero() || config.flush_interval > MAX_FLUSH_INTERVAL {
        return Err(RecordError::Config(format!(
            "flush_interval must be in (0, {MAX_FLUSH_INTERVAL:?}]"
        )));
    }
    let dir = config.dir.clone();
    fs::create_dir_all(&dir).map_err(RecordError::io("create", &dir))?;
    if dir.join(MANIFEST_FILE).exists() {
        return Err(RecordError::AlreadyExists(dir));
    }
    let events_path = dir.join(EVENTS_FILE);
    let events: File = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&events_path)
        .map_err(RecordError::io("create", &events_path))?;
    let manifest = Manifest::new(config.recording_id.clone(), config.started_at_ms);
    manifest.write_atomic(&dir)?;
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        capacity: config.queue_frames,
        stopped: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
        keyframe_wanted: Mutex::new(Vec::new()),
    });
    let (tx, rx) = mpsc::channel();
    let thread_shared = shared.clone();
    let thread_dir = dir.clone();
    let thread = std::thread::Builder::new()
        .name("lectern-rec".into())
        .spawn(move || {
            // Built here: segments hold libwebm state that stays on this thread.
            let recording = Recording::new(
                thread_dir,
                config.started,
                thread_shared.clone(),
                manifest,
                events,
            );
            run(config, recording, thread_shared, rx)
        })
        .map_err(RecordError::io("spawn the writer thread for", &dir))?;
    Ok((RecordingSink { shared, tx }, WriterHandle { thread }))
}

fn run(
    config: WriterConfig,
    mut recording: Recording,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Msg>,
) -> Manifest {
    let start = Instant::now();
    let mut next_flush = start + config.flush_interval;
    let mut next_manifest = start + MANIFEST_INTERVAL;
    let mut next_disk_check = start;
    let reason = loop {
        let now = Instant::now();
        if now >= next_disk_check {
            next_disk_check = now + DISK_CHECK_INTERVAL;
            if config.min_free_bytes > 0 {
                match available_space(&config.dir) {
                    Ok(free) if free < config.min_free_bytes => {
                        warn!(recording.id = %config.recording_id, free, min = config.min_free_bytes, "disk nearly full: recording stops");
                        break StopReason::DiskFull;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(recording.id = %config.recording_id, error = %e, "free space unknown")
                    }
                }
            }
        }
        if now >= next_flush {
            next_flush = now + config.flush_interval;
            recording.flush_all();
        }
        if now >= next_manifest {
            next_manifest = now + MANIFEST_INTERVAL;
            recording.write_manifest();
        }
        let wake = next_flush.min(next_manifest).min(next_disk_check);
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Msg::Frame { key, kind, frame }) => {
                shared.queued.fetch_sub(1, Ordering::AcqRel);
                recording.on_frame(key, kind, frame);
            }
            Ok(Msg::Gap { key, gap }) => recording.on_gap(&key, gap),
            Ok(Msg::Event { t_ms, json }) => recording.on_event(t_ms, json),
            Ok(Msg::Stop(reason)) => break reason,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break StopReason::Shutdown,
        }
    };
    shared.stopped.store(true, Ordering::Relaxed);
    recording.finish(reason)
}
