//! One segment file: a single-track WebM written by libwebm (through the `webm` crate) into a
//! buffer that the writer flushes to disk on its own schedule.
//!
//! libwebm writes clusters of unknown size and patches sizes (and, when finalizing, the
//! duration, seek head and cues) by seeking back; between those patches it only appends. So a
//! file cut off at any flush is a valid WebM up to its last complete block: flushes happen
//! only between frames.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

use webm::mux::{self, AudioCodecId, SegmentBuilder, SegmentMode, TrackNum, VideoCodecId};

use crate::manifest::Kind;
use crate::track::Frame;
use crate::{opus, vp8};

/// Buffered bytes past which a segment is flushed right after a frame.
const FLUSH_BYTES: usize = 256 << 10;
/// A video frame's duration when the segment has only one frame so far.
const DEFAULT_VIDEO_FRAME_US: u64 = 33_333;
/// The longest duration assumed for the last video frame.
const MAX_VIDEO_FRAME_US: u64 = 100_000;

/// The file and its write buffer. The OS file position always equals `buf_start`.
#[derive(Debug)]
struct FileBuf {
    file: File,
    buf: Vec<u8>,
    buf_start: u64,
    end: u64,
    failed: bool,
}

impl FileBuf {
    fn pos(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("segment file failed earlier"));
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            self.failed = true;
            return Err(e);
        }
        self.buf_start += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// A cheap handle on the [`FileBuf`]: libwebm writes through one, the writer flushes through
/// another (both on the writer thread).
#[derive(Debug, Clone)]
struct SharedFile(Rc<RefCell<FileBuf>>);

impl Write for SharedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut f = self.0.borrow_mut();
        if f.failed {
            return Err(io::Error::other("segment file failed earlier"));
        }
        f.buf.extend_from_slice(data);
        f.end = f.end.max(f.pos());
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let mut f = self.0.borrow_mut();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => f.pos().checked_add_signed(d),
            SeekFrom::End(d) => f.end.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        if target != f.pos() {
            f.flush_buf()?;
            if let Err(e) = f.file.seek(SeekFrom::Start(target)) {
                f.failed = true;
                return Err(e);
            }
            f.buf_start = target;
        }
        Ok(target)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        // libwebm asks often; answer without a syscall (the default would seek, and flush).
        Ok(self.0.borrow().pos())
    }
}

/// What a segment amounts to at some point: for the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Extent {
    pub duration_ms: u64,
    pub frames: u64,
    pub bytes: u64,
}

/// A segment being written. Frames must come with non-decreasing times.
pub(crate) struct OpenSegment {
    file: SharedFile,
    segment: mux::Segment<SharedFile>,
    track: TrackNum,
    kind: Kind,
    first_at_us: u64,
    last_ts_us: u64,
    last_frame_us: u64,
    frames: u64,
    /// What is on disk as of the last flush.
    flushed: Extent,
}

impl std::fmt::Debug for OpenSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSegment")
            .field("kind", &self.kind)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// The track parameters a segment is opened with, read from its first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackParams {
    Video { width: u16, height: u16 },
    Audio { channels: u8 },
}

impl TrackParams {
    /// `None` when the frame cannot start a segment (video: not a readable keyframe).
    pub(crate) fn of(kind: Kind, first: &Frame) -> Option<TrackParams> {
        match kind {
            Kind::Video if first.keyframe => vp8::keyframe_size(&first.data)
                .map(|(width, height)| TrackParams::Video { width, height }),
            Kind::Video => None,
            Kind::Audio => {
                opus::channels(&first.data).map(|channels| TrackParams::Audio { channels })
            }
        }
    }
}

fn mux_error(e: mux::Error) -> io::Error {
    io::Error::other(format!("libwebm: {e:?}"))
}

impl OpenSegment {
    /// Creates `path` (which must not exist) for a segment whose first frame is at `first_at_us`.
    pub(crate) fn create(
        path: &Path,
        params: TrackParams,
        first_at_us: u64,
    ) -> io::Result<OpenSegment> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        let shared = SharedFile(Rc::new(RefCell::new(FileBuf {
            file,
            buf: Vec::with_capacity(16 << 10),
            buf_start: 0,
            end: 0,
            failed: false,
        })));
        let builder = SegmentBuilder::new(mux::Writer::new(shared.clone()))
            .and_then(|b| b.set_mode(SegmentMode::File))
            .and_then(|b| b.set_writing_app("lectern"))
            .map_err(mux_error)?;
        let (builder, track, kind) = match params {
            TrackParams::Video { width, height } => {
                let (b, t) = builder
                    .add_video_track(u32::from(width), u32::from(height), VideoCodecId::VP8, None)
                    .map_err(mux_error)?;
                (b, TrackNum::from(t), Kind::Video)
            }
            TrackParams::Audio { channels } => {
                let (b, t) = builder
                    .add_audio_track(48_000, u32::from(channels), AudioCodecId::Opus, None)
                    .map_err(mux_error)?;
                let b = b
                    .set_codec_private(t, &opus::opus_head(channels))
                    .map_err(mux_error)?;
                (b, TrackNum::from(t), Kind::Audio)
            }
        };
        Ok(OpenSegment {
            file: shared,
            segment: builder.build(),
            track,
            kind,
            first_at_us,
            last_ts_us: 0,
            last_frame_us: 0,
            frames: 0,
            flushed: Extent::default(),
        })
    }

    /// Appends a frame (its time is clamped so the file's times never go backwards).
    pub(crate) fn write(&mut self, frame: &Frame) -> io::Result<()> {
        // Whole milliseconds, as the file stores them (libwebm's timecode scale).
        let ts_us =
            (frame.at_us.saturating_sub(self.first_at_us) / 1000 * 1000).max(self.last_ts_us);
        self.segment
            .add_frame(self.track, &frame.data, ts_us * 1000, frame.keyframe)
            .map_err(mux_error)?;
        self.last_frame_us = match self.kind {
            Kind::Audio => opus::packet_duration_us(&frame.data).unwrap_or(20_000),
            Kind::Video if self.frames == 0 => DEFAULT_VIDEO_FRAME_US,
            Kind::Video => (ts_us - self.last_ts_us).clamp(1, MAX_VIDEO_FRAME_US),
        };
        self.last_ts_us = ts_us;
        self.frames += 1;
        if self.file.0.borrow().buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Recording-clock time of the last frame written.
    pub(crate) fn last_at_us(&self) -> u64 {
        self.first_at_us + self.last_ts_us
    }

    /// What has been written so far (flushed or not).
    pub(crate) fn written(&self) -> Extent {
        let duration_us = if self.frames == 0 {
            0
        } else {
            self.last_ts_us + self.last_frame_us
        };
        Extent {
            duration_ms: duration_us.div_ceil(1000),
            frames: self.frames,
            bytes: self.file.0.borrow().end,
        }
    }

    /// What is on disk as of the last successful flush.
    pub(crate) fn flushed(&self) -> Extent {
        self.flushed
    }

    /// Writes the buffer to the file (no fsync: a killed process loses nothing the kernel has).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.file.0.borrow_mut().flush_buf()?;
        self.flushed = self.written();
        Ok(())
    }

    /// Finishes the file (duration, seek head, cues), flushes and syncs it. On error what was
    /// flushed before stays playable; the returned extent is what is on disk either way.
    pub(crate) fn finalize(self) -> (Extent, io::Result<()>) {
        let written = self.written();
        let flushed_before = self.flushed;
        let OpenSegment {
            file,
            segment,
            frames,
            ..
        } = self;
        let finalized = if frames == 0 {
            Err(io::Error::other("no frame was written"))
        } else {
            segment
                .finalize(Some(written.duration_ms))
                .map(|_| ())
                .map_err(|_| io::Error::other("libwebm could not finalize the segment"))
        };
        let mut f = file.0.borrow_mut();
        let flushed = f.flush_buf().and_then(|()| f.file.sync_data());
        let on_disk = if flushed.is_ok() {
            Extent {
                bytes: f.end,
                ..written
            }
        } else {
            flushed_before
        };
        (on_disk, finalized.and(flushed))
    }
}
