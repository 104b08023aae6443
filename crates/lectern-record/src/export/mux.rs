//! The export file: one WebM written by libwebm (the `webm` crate) in file mode (duration,
//! cues for seeking), a VP8 track (when the stage ever showed video) and an Opus track.
//! Frames must come in time order across both tracks.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use webm::mux::{self, AudioCodecId, SegmentBuilder, SegmentMode, TrackNum, VideoCodecId};

use crate::RecordError;
use crate::opus;

/// Bytes buffered before they go to the file.
const BUF_BYTES: usize = 256 << 10;

/// The file under libwebm: buffered, with a position known without a syscall (libwebm asks
/// for it all the time). The first write error is kept for the report.
#[derive(Debug)]
struct OutFile {
    file: File,
    buf: Vec<u8>,
    buf_start: u64,
    end: u64,
    error: Rc<RefCell<Option<io::Error>>>,
}

impl OutFile {
    fn pos(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let written = self.file.write_all(&self.buf);
        if let Err(e) = written {
            let kind = e.kind();
            self.error.borrow_mut().get_or_insert(e);
            return Err(io::Error::new(kind, "write failed"));
        }
        self.buf_start += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Write for OutFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.end = self.end.max(self.pos());
        if self.buf.len() >= BUF_BYTES {
            self.flush_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()
    }
}

impl Seek for OutFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos().checked_add_signed(d),
            SeekFrom::End(d) => self.end.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        if target != self.pos() {
            self.flush_buf()?;
            self.file.seek(SeekFrom::Start(target))?;
            self.buf_start = target;
        }
        Ok(target)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos())
    }
}

/// The export being written.
pub(crate) struct Output {
    path: PathBuf,
    segment: mux::Segment<OutFile>,
    video: Option<TrackNum>,
    audio: TrackNum,
    error: Rc<RefCell<Option<io::Error>>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Creates (or truncates) `path`. `video`: the first picture's size, when there is video.
    pub(crate) fn create(path: &Path, video: Option<(u16, u16)>) -> Result<Output, RecordError> {
        let file = File::create(path).map_err(RecordError::io("create", path))?;
        let error = Rc::new(RefCell::new(None));
        let out = OutFile {
            file,
            buf: Vec::with_capacity(BUF_BYTES + (64 << 10)),
            buf_start: 0,
            end: 0,
            error: error.clone(),
        };
        let mux_err = |e: mux::Error| RecordError::Mux {
            path: path.to_owned(),
            reason: format!("{e:?}"),
        };
        let mut builder = SegmentBuilder::new(mux::Writer::new(out))
            .and_then(|b| b.set_mode(SegmentMode::File))
            .and_then(|b| b.set_writing_app("lectern"))
            .map_err(mux_err)?;
        let mut video_track = None;
        if let Some((width, height)) = video {
            let (b, t) = builder
                .add_video_track(u32::from(width), u32::from(height), VideoCodecId::VP8, None)
                .map_err(mux_err)?;
            builder = b;
            video_track = Some(TrackNum::from(t));
        }
        let (builder, audio) = builder
            .add_audio_track(48_000, 1, AudioCodecId::Opus, None)
            .map_err(mux_err)?;
        let builder = builder
            .set_codec_private(audio, &opus::opus_head(1))
            .map_err(mux_err)?;
        Ok(Output {
            path: path.to_owned(),
            segment: builder.build(),
            video: video_track,
            audio: TrackNum::from(audio),
            error,
        })
    }

    fn failed(&self, what: &str) -> RecordError {
        match self.error.borrow_mut().take() {
            Some(source) => RecordError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            },
            None => RecordError::Mux {
                path: self.path.clone(),
                reason: format!("libwebm refused {what}"),
            },
        }
    }

    pub(crate) fn video(
        &mut self,
        at_us: u64,
        data: &[u8],
        keyframe: bool,
    ) -> Result<(), RecordError> {
        let Some(track) = self.video else {
            return Ok(());
        };
        self.segment
            .add_frame(track, data, at_us.saturating_mul(1000), keyframe)
            .map_err(|_| self.failed("a video frame"))
    }

    pub(crate) fn audio(&mut self, at_us: u64, packet: &[u8]) -> Result<(), RecordError> {
        self.segment
            .add_frame(self.audio, packet, at_us.saturating_mul(1000), true)
            .map_err(|_| self.failed("an audio packet"))
    }

    /// Finishes the file (duration, seek head, cues), flushes and syncs it; its size.
    pub(crate) fn finish(self, duration_ms: u64) -> Result<u64, RecordError> {
        let Output {
            path,
            segment,
            error,
            ..
        } = self;
        let finalized = segment.finalize(Some(duration_ms));
        let failed = finalized.is_err();
        let mut out = match finalized {
            Ok(w) | Err(w) => w.into_inner(),
        };
        let flushed = out.flush_buf().and_then(|()| out.file.sync_all());
        if let Some(source) = error.borrow_mut().take() {
            return Err(RecordError::Io {
                action: "write",
                path,
                source,
            });
        }
        flushed.map_err(RecordError::io("write", &path))?;
        if failed {
            return Err(RecordError::Mux {
                path,
                reason: "libwebm could not finish the file".into(),
            });
        }
        Ok(out.end)
    }
}
