//! Lectern's recorder: everything recording needs below the server. RTP packets of the
//! published tracks go in; a folder of single-track WebM segments, the class's event log and
//! a manifest come out. No tokio, no str0m: the server wires it to the SFU and the room.
//!
//! Four layers, each usable alone:
//!
//! - [`TrackRecorder`] ([`track`]), sans-IO, one per recorded track, on the media worker:
//!   packets in (once per received packet, never per subscriber), [`Frame`]s out. It
//!   reorders (retransmissions after NACK arrive late), gives up on a missing packet after
//!   [`REORDER_WAIT`], makes video wait for a keyframe after loss or a source change (and
//!   says when to ask for one), strips the VP8 payload descriptors ([`vp8`]), puts every
//!   frame on the recording clock and starts a new segment after [`SEGMENT_IDLE`] of silence.
//!   It does no I/O and never reads the clock; its tests run on a simulated one.
//! - The writer ([`writer`]): one OS thread per recording behind a [`RecordingSink`] that
//!   never blocks (a bounded frame queue; a full queue drops frames and records a gap).
//!   It muxes with libwebm (the `webm` crate) and flushes at least every second, so a
//!   `kill -9` keeps everything up to the last flush playable; disk errors end a segment
//!   and the recording goes on; a free-space guard stops it cleanly (`disk_full`).
//! - The manifest ([`manifest`]) and [`recover`]: serde types for `manifest.json`, and the
//!   repair of a recording a crash left open (real durations read back from the WebM files).
//! - The one-file export ([`export()`], [`mod@export`]): a recording folder in, one WebM out
//!   (the stage's video switched at keyframes, every voice mixed into one Opus track) with
//!   the public chat beside it as WebVTT and JSON. Synchronous, for a blocking thread.
//!
//! # Clock
//!
//! A recording has a monotonic start `Instant` and `started_at` (unix ms at the same moment).
//! Every time in the files is milliseconds since that start: a segment's `offset_ms`, a gap's
//! `at_ms`, an event's `t`. Frames carry microseconds ([`Frame::at_us`]) from the RTP clock of
//! their track, anchored on the arrival of the first packet of each run.
//!
//! # Files (one folder per recording)
//!
//! `seg-<n>.webm` (one continuous span of one published track, VP8 or Opus, times from 0),
//! `events.jsonl` (one JSON object per line, appended as given; the writer adds the `stop`
//! line), `manifest.json` (see [`Manifest`]). The exact contract is the project's recording
//! spec; this crate is its writing half.
//!
//! # Typical wiring
//!
//! ```no_run
//! # use std::time::Instant;
//! # use lectern_record::*;
//! let started = Instant::now();
//! let config = WriterConfig::new("recordings/rec_1".into(), "rec_1".into(), started, 1_765_000_000_000);
//! let (sink, handle) = writer::spawn(config)?;
//! sink.event(0, serde_json::json!({"type": "start", "started_at": 1_765_000_000_000u64}));
//! let mut camera = TrackRecorder::new(Codec::Vp8, 90_000, started);
//! let key = TrackKey { participant_id: "p_1".into(), track: 7 };
//! // On the media worker, for each received packet of that track:
//! # let (now, packet): (Instant, RecPacket<'_>) = todo!();
//! camera.push(now, packet);
//! while let Some(frame) = camera.poll_frame() {
//!     sink.try_frame(key.clone(), Kind::Video, frame);
//! }
//! while let Some(gap) = camera.poll_gap() {
//!     sink.gap(key.clone(), gap);
//! }
//! let ask = camera.take_keyframe_request() || sink.take_keyframe_wanted().contains(&key);
//! // ... if `ask`, send the publisher a PLI.
//! sink.stop(StopReason::Stopped);
//! let manifest = handle.join()?;
//! # Ok::<(), RecordError>(())
//! ```

mod error;
pub mod export;
pub mod manifest;
pub mod opus;
mod recover;
pub mod track;
pub mod vp8;
pub mod writer;

pub use error::RecordError;
pub use export::{
    ExportOptions, ExportStage, ExportSummary, MAX_EXPORT_DURATION_MS, Progress, export,
    export_with,
};
pub use manifest::{GapEntry, GapReason, Kind, Manifest, SegmentEntry, StopReason};
pub use recover::{SegmentProbe, last_event_ms, probe_segment, recover};
pub use track::{
    Codec, Frame, Gap, REORDER_WAIT, RecPacket, RecorderStats, SEGMENT_IDLE, TrackRecorder,
};
pub use writer::{RecordingSink, TrackKey, WriterConfig, WriterHandle, available_space, spawn};
