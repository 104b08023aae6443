//! The one-file export of a recording: a single WebM with the stage as it was and every voice
//! mixed, plus the public chat beside it as WebVTT and JSON.
//!
//! [`export`] reads a recording folder (`manifest.json`, `events.jsonl`, `seg-<n>.webm`; see
//! the crate docs) and writes, each atomically (a `.part` file renamed into place):
//!
//! - `out` (e.g. `class.webm`): one **VP8 video track, the stage as it was**, chosen at every
//!   moment exactly as the live client and the replay page choose it (see `export/stage.rs`: the
//!   presenter if they show video, else the instructor, else a TA; of their videos the one
//!   started last). The frames are copied as recorded, never transcoded, so a source is only
//!   ever entered at one of its keyframes: when the stage moves at `T`, the old source goes
//!   on until the new one's first keyframe at or after `T`. Where the stage shows no video
//!   there are no frames (players hold the last picture). The track header carries the first
//!   picture's size; later keyframes may change it (VP8 keyframes carry their size). No video
//!   track at all when the stage never showed video.
//! - in the same file, **one Opus audio track, every voice mixed** (`export/audio.rs`): decoded,
//!   placed on the recording clock, summed with soft clipping, re-encoded (mono, 48 kHz,
//!   20 ms packets, [`ExportOptions::audio_bitrate`]), silence encoded where nobody speaks,
//!   from recording time 0 to the end. Video frames keep their recording-clock times, so the
//!   two stay in step.
//! - `<out stem>.vtt` and `<out stem>.chat.json`: the **public chat** (messages to everyone;
//!   a message deleted at any point is left out entirely), one cue or object per message at
//!   its recording time. Messages from before the recording (the start snapshot's) are at 0.
//!
//! What a crash leaves is exported as it is: segments still marked `open` are measured from
//! their files, a segment cut short ends at its last whole frame, an unreadable segment is
//! left out (listed in [`ExportSummary::unreadable_segments`]), a half-written last log line
//! is skipped. Only a missing or unreadable manifest or event log, an absurd length, or a
//! failure to write the output is an error. Nothing in the input can make it panic: the
//! demuxer and the decoder (third-party parsers of untrusted bytes) are fenced.
//!
//! Synchronous and single-threaded (about one core): run it on a blocking thread. It reports
//! [`Progress`] often (every 0.25% of the recording) and cheaply.

mod audio;
mod chat;
mod log;
mod mix;
mod mux;
mod read;
mod stage;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use tracing::{debug, info};

use crate::RecordError;
use crate::manifest::{EVENTS_FILE, Kind, MANIFEST_FILE, Manifest};
use crate::recover::probe_segment;
use crate::vp8;
use audio::{AudioInput, FRAME, MixEncoder, Mixdown};
use log::ClassLog;
use mux::Output;
use read::{SegmentCursor, seek_keyframe};
use stage::{Keyframe, Piece, StageSegment, plan_pieces, stage_timeline};

/// Recordings longer than this are refused as damaged (a class is hours, not days).
pub const MAX_EXPORT_DURATION_MS: u64 = 24 * 3_600_000;

/// How the export encodes what it must encode (the mixed audio; video is copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Opus bit rate of the mixed (mono) audio, bits per second.
    pub audio_bitrate: u32,
    /// Opus encoder complexity, 0 (fastest) to 10 (best).
    pub opus_complexity: u8,
}

impl Default for ExportOptions {
    /// 48 kbit/s (transparent for voices in mono), complexity 5 (about twice as fast as 10,
    /// no audible difference for speech at that rate).
    fn default() -> Self {
        ExportOptions {
            audio_bitrate: 48_000,
            opus_complexity: 5,
        }
    }
}

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStage {
    /// Reading the manifest and the log, finding where the stage switches.
    Planning,
    /// Writing the video and mixing, encoding and writing the audio (most of the time).
    Media,
    /// Writing the chat files.
    Chat,
    /// Finishing the WebM (cues, duration) and moving the files into place.
    Finishing,
}

impl ExportStage {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStage::Planning => "planning",
            ExportStage::Media => "media",
            ExportStage::Chat => "chat",
            ExportStage::Finishing => "finishing",
        }
    }
}

impl std::fmt::Display for ExportStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far an export is: `fraction` of the whole (0.0 to 1.0, never going back) and the stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub fraction: f64,
    pub stage: ExportStage,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    /// The WebM, the WebVTT chat and the JSON chat.
    pub out: PathBuf,
    pub vtt: PathBuf,
    pub chat_json: PathBuf,
    /// Length of the export (the recording's: its last segment end or event).
    pub duration_ms: u64,
    /// Size of the WebM.
    pub bytes: u64,
    /// The first picture's size (`None`: the stage never showed video; no video track).
    pub video_size: Option<(u16, u16)>,
    pub video_frames: u64,
    /// Stretches of one source in the video track (the stage switched `pieces - 1` times).
    pub video_pieces: u32,
    /// The longest wait for a keyframe after the stage moved, in ms.
    pub max_switch_wait_ms: u64,
    /// Audio segments mixed.
    pub voices: u32,
    pub audio_packets: u64,
    /// Recorded audio packets the decoder refused (skipped), and lost audio concealed.
    pub undecodable_packets: u64,
    pub concealed_ms: u64,
    pub chat_messages: usize,
    /// Segments left out: their files could not be read at all.
    pub unreadable_segments: Vec<u32>,
    /// Segments that ended early: damaged or cut off (a crash); what came before is in.
    pub damaged_segments: Vec<u32>,
    /// Event log lines that could not be read (a crash's half-written last line).
    pub skipped_log_lines: u64,
    /// The recording did not finish cleanly (crash, or still being recorded).
    pub interrupted: bool,
}

/// [`export_with`] with the default [`ExportOptions`].
pub fn export(
    dir: &Path,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportSummary, RecordError> {
    export_with(dir, out, &ExportOptions::default(), progress)
}

/// Exports the recording in `dir` to `out` (see the [module docs](self)). The chat files go
/// beside it: `out` with the extensions `vtt` and `chat.json`. Each file is written under a
/// `.part` name and renamed into place at the end; on error nothing is left behind (and files
/// of an earlier export stay as they were).
pub fn export_with(
    dir: &Path,
    out: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportSummary, RecordError> {
    let files = OutFiles::new(out)?;
    let result = run(dir, &files, options, progress);
    if result.is_err() {
        for (part, _) in files.all() {
            let _ = fs::remove_file(part);
        }
    }
    result
}

/// The three outputs, each with its `.part` name.
#[derive(Debug)]
struct OutFiles {
    webm: (PathBuf, PathBuf),
    vtt: (PathBuf, PathBuf),
    json: (PathBuf, PathBuf),
}

impl OutFiles {
    fn new(out: &Path) -> Result<OutFiles, RecordError> {
        let with_part = |p: PathBuf| -> Result<(PathBuf, PathBuf), RecordError> {
            let name = p.file_name().ok_or_else(|| {
                RecordError::Config(format!("{} is not a file path", p.display()))
            })?;
            let mut part = name.to_owned();
            part.push(".part");
            Ok((p.with_file_name(part), p))
        };
        let files = OutFiles {
            webm: with_part(out.to_owned())?,
            vtt: with_part(out.with_extension("vtt"))?,
            json: with_part(out.with_extension("chat.json"))?,
        };
        if files.vtt.1 == files.webm.1 || files.json.1 == files.webm.1 {
            return Err(RecordError::Config(format!(
                "{} would be overwritten by the chat files: give the export a .webm name",
                out.display()
            )));
        }
        Ok(files)
    }

    fn all(&self) -> [&(PathBuf, PathBuf); 3] {
        [&self.vtt, &self.json, &self.webm]
    }
}

/// A segment of the recording as the export uses it.
#[derive(Debug, Clone)]
struct Segment {
    n: u32,
    path: PathBuf,
    participant: String,
    kind: Kind,
    offset_ms: u64,
    end_ms: u64,
}

/// The manifest's segments, with real lengths for those a crash left open. Only the writer's
/// own file names are followed: a manifest never points outside its folder.
fn segments_of(dir: &Path, manifest: &Manifest, unreadable: &mut BTreeSet<u32>) -> Vec<Segment> {
    let mut segments = Vec::new();
    for s in &manifest.segments {
        if s.file != format!("seg-{}.webm", s.n) {
            unreadable.insert(s.n);
            continue;
        }
        let path = dir.join(&s.file);
        let duration_ms = if s.open {
            // The probe reads untrusted bytes with a third-party demuxer: fenced too.
            std::panic::catch_unwind(|| probe_segment(&path).duration_ms).unwrap_or(0)
        } else {
            s.duration_ms
        };
        segments.push(Segment {
            n: s.n,
            path,
            participant: s.participant_id.clone(),
            kind: s.kind,
            offset_ms: s.offset_ms,
            end_ms: s.offset_ms.saturating_add(duration_ms),
        });
    }
    segments
}

/// Reports progress: `fraction` of `stage`, mapped onto the whole export.
struct Reporter<'a> {
    progress: &'a mut dyn FnMut(Progress),
    last: f64,
}

impl Reporter<'_> {
    /// Each stage's share of the whole: planning, media, chat, finishing.
    const SPANS: [(ExportStage, f64, f64); 4] = [
        (ExportStage::Planning, 0.0, 0.01),
        (ExportStage::Media, 0.01, 0.99),
        (ExportStage::Chat, 0.99, 0.995),
        (ExportStage::Finishing, 0.995, 1.0),
    ];

    /// [`Reporter::report`], but only when it moved by a quarter percent or more.
    fn report_some(&mut self, stage: ExportStage, fraction: f64) {
        if self.whole(stage, fraction) >= self.last + 0.0025 {
            self.report(stage, fraction);
        }
    }

    fn whole(&self, stage: ExportStage, fraction: f64) -> f64 {
        let (_, from, to) = Self::SPANS
            .iter()
            .copied()
            .find(|(s, _, _)| *s == stage)
            .unwrap_or((stage, 0.0, 1.0));
        (from + (to - from) * fraction.clamp(0.0, 1.0)).max(self.last)
    }

    fn report(&mut self, stage: ExportStage, fraction: f64) {
        let whole = self.whole(stage, fraction);
        self.last = whole;
        (self.progress)(Progress {
            fraction: whole,
            stage,
        });
    }
}

fn run(
    dir: &Path,
    files: &OutFiles,
    options: &ExportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportSummary, RecordError> {
    let mut report = Reporter {
        progress,
        last: 0.0,
    };
    report.report(ExportStage::Planning, 0.0);
    let manifest = Manifest::read(dir)?;
    let log = ClassLog::read(&dir.join(EVENTS_FILE))?;
    let mut unreadable = BTreeSet::new();
    let mut damaged = BTreeSet::new();
    let segments = segments_of(dir, &manifest, &mut unreadable);
    let duration_ms = segments
        .iter()
        .map(|s| s.end_ms)
        .chain([log.last_t])
        .max()
        .unwrap_or(0);
    if duration_ms > MAX_EXPORT_DURATION_MS {
        return Err(RecordError::InvalidManifest {
            path: dir.join(MANIFEST_FILE),
            reason: format!("a recording of {duration_ms} ms cannot be exported"),
        });
    }

    // The video: what the stage wanted, and where it could switch.
    let video: Vec<&Segment> = segments.iter().filter(|s| s.kind == Kind::Video).collect();
    let stage_segments: Vec<StageSegment> = video
        .iter()
        .map(|s| StageSegment {
            n: s.n,
            participant: s.participant.clone(),
            offset_ms: s.offset_ms,
            end_ms: s.end_ms,
        })
        .collect();
    let presenter_times: Vec<u64> = log.presenters.iter().map(|(t, _)| *t).collect();
    let staff = log.staff();
    let changes = stage_timeline(
        &stage_segments,
        &presenter_times,
        |t| log.presenter_at(t),
        &staff,
    );
    let mut sizes: HashMap<(usize, u64), (u16, u16)> = HashMap::new();
    let pieces = {
        let mut seekers: HashMap<usize, Option<SegmentCursor>> = HashMap::new();
        let unreadable = &mut unreadable;
        let sizes = &mut sizes;
        let report = &mut report;
        let whole_us = (duration_ms.max(1) * 1000) as f64;
        plan_pieces(&changes, |i, at_us| {
            report.report(ExportStage::Planning, at_us as f64 / whole_us);
            let segment = video[i];
            // Segments over by now are never asked for again (times only move on): let them go.
            seekers.retain(|&j, _| video[j].end_ms.saturating_mul(1000) > at_us);
            let cursor = seekers
                .entry(i)
                .or_insert_with(|| {
                    SegmentCursor::open(&segment.path, Kind::Video, segment.offset_ms)
                        .inspect_err(|e| {
                            info!(segment = segment.n, reason = %e.0, "video segment unreadable: left out");
                            unreadable.insert(segment.n);
                        })
                        .ok()
                })
                .as_mut()?;
            // A long way to the next keyframe is read: say how far.
            let (at_us, index) = seek_keyframe(cursor, at_us, |passing_us| {
                report.report_some(ExportStage::Planning, passing_us as f64 / whole_us)
            })?;
            let size = cursor.peek().and_then(|f| vp8::keyframe_size(f.data))?;
            sizes.insert((i, index), size);
            Some(Keyframe { at_us, index })
        })
    };
    let video_size = pieces
        .first()
        .and_then(|p| sizes.get(&(p.segment, p.from.index)).copied());
    debug!(pieces = pieces.len(), ?video_size, "video planned");

    // Video and audio, interleaved by time.
    let mut output = Output::create(&files.webm.0, video_size)?;
    let mut last_use = HashMap::new();
    for (i, piece) in pieces.iter().enumerate() {
        last_use.insert(piece.segment, i);
    }
    let mut video_out = VideoWriter {
        segments: &video,
        pieces: &pieces,
        next: 0,
        last_use,
        cursors: HashMap::new(),
        entered: false,
        frames: 0,
        damaged: BTreeSet::new(),
    };
    let audio_inputs = segments
        .iter()
        .filter(|s| s.kind == Kind::Audio && !unreadable.contains(&s.n))
        .map(|s| AudioInput {
            n: s.n,
            path: s.path.clone(),
            offset_ms: s.offset_ms,
        })
        .collect();
    let mut mixdown = Mixdown::new(audio_inputs);
    let mut encoder = MixEncoder::new(options.audio_bitrate, options.opus_complexity)?;
    let packets = duration_ms.div_ceil(20).max(1);
    let report_every = (packets / 400).max(1);
    let mut pcm = [0.0f32; FRAME];
    report.report(ExportStage::Media, 0.0);
    for k in 0..packets {
        let at_us = k * 20_000;
        video_out.write_until(at_us, &mut output, &mut unreadable)?;
        mixdown.mix(k * FRAME as u64 + encoder.lookahead(), &mut pcm)?;
        let packet = encoder.encode(&pcm)?;
        output.audio(at_us, packet)?;
        if k % report_every == 0 {
            report.report(ExportStage::Media, k as f64 / packets as f64);
        }
    }
    video_out.write_until(u64::MAX, &mut output, &mut unreadable)?;
    damaged.extend(video_out.damaged());
    damaged.extend(mixdown.stats.damaged.iter().copied());
    unreadable.extend(mixdown.stats.unreadable.iter().copied());

    report.report(ExportStage::Chat, 0.0);
    write_file(&files.vtt.0, chat::to_vtt(&log.chat).as_bytes())?;
    write_file(&files.json.0, chat::to_json(&log.chat).as_bytes())?;

    report.report(ExportStage::Finishing, 0.0);
    let bytes = output.finish(duration_ms.max(20))?;
    for (part, path) in files.all() {
        fs::rename(part, path).map_err(RecordError::io("rename", part))?;
    }
    if let Some(parent) = files.webm.1.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(RecordError::io("sync", parent))?;
    }
    report.report(ExportStage::Finishing, 1.0);
    let stats = &mixdown.stats;
    let summary = ExportSummary {
        out: files.webm.1.clone(),
        vtt: files.vtt.1.clone(),
        chat_json: files.json.1.clone(),
        duration_ms,
        bytes,
        video_size,
        video_frames: video_out.frames,
        video_pieces: u32::try_from(pieces.len()).unwrap_or(u32::MAX),
        max_switch_wait_ms: pieces.iter().map(|p| p.waited_us / 1000).max().unwrap_or(0),
        voices: stats.voices,
        audio_packets: packets,
        undecodable_packets: stats.undecodable,
        concealed_ms: stats.concealed_ms,
        chat_messages: log.chat.len(),
        unreadable_segments: unreadable.into_iter().collect(),
        damaged_segments: damaged.into_iter().collect(),
        skipped_log_lines: log.skipped_lines,
        interrupted: !manifest.complete,
    };
    info!(
        recording.id = %manifest.recording_id,
        duration_ms,
        bytes,
        video_frames = summary.video_frames,
        voices = summary.voices,
        "recording exported"
    );
    Ok(summary)
}

/// Writes `bytes` to `path` and syncs it.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    use std::io::Write;
    let mut file = fs::File::create(path).map_err(RecordError::io("create", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(RecordError::io("write", path))
}

/// Copies the planned pieces' frames into the output, in time order.
struct VideoWriter<'a> {
    segments: &'a [&'a Segment],
    pieces: &'a [Piece],
    /// The piece being written.
    next: usize,
    /// The last piece of each segment.
    last_use: HashMap<usize, usize>,
    /// One cursor per segment, kept between its pieces (they come in time order) and closed
    /// after its last.
    cursors: HashMap<usize, Option<SegmentCursor>>,
    /// The current piece's first frame has been reached.
    entered: bool,
    frames: u64,
    damaged: BTreeSet<u32>,
}

impl VideoWriter<'_> {
    /// Writes every frame up to `until_us` (inclusive).
    fn write_until(
        &mut self,
        until_us: u64,
        output: &mut Output,
        unreadable: &mut BTreeSet<u32>,
    ) -> Result<(), RecordError> {
        while let Some(piece) = self.pieces.get(self.next) {
            let segment = self.segments[piece.segment];
            let cursor = self.cursors.entry(piece.segment).or_insert_with(|| {
                SegmentCursor::open(&segment.path, Kind::Video, segment.offset_ms)
                    .inspect_err(|_| {
                        unreadable.insert(segment.n);
                    })
                    .ok()
            });
            let Some(cursor) = cursor.as_mut() else {
                self.next += 1;
                continue;
            };
            if !self.entered {
                while cursor.peek().is_some_and(|f| f.index < piece.from.index) {
                    cursor.advance();
                }
                self.entered = true;
            }
            while let Some(frame) = cursor.peek() {
                if frame.at_us >= piece.until_us {
                    break;
                }
                if frame.at_us > until_us {
                    return Ok(());
                }
                output.video(frame.at_us, frame.data, frame.keyframe)?;
                self.frames += 1;
                cursor.advance();
            }
            if self.last_use.get(&piece.segment) == Some(&self.next)
                && let Some(Some(cursor)) = self.cursors.remove(&piece.segment)
                && cursor.damaged()
            {
                self.damaged.insert(segment.n);
            }
            self.next += 1;
            self.entered = false;
        }
        Ok(())
    }

    /// Segments that ended early while being copied.
    fn damaged(&self) -> Vec<u32> {
        let open = self
            .cursors
            .iter()
            .filter(|(_, c)| c.as_ref().is_some_and(SegmentCursor::damaged))
            .map(|(i, _)| self.segments[*i].n);
        self.damaged.iter().copied().chain(open).collect()
    }
}
