//! Reading a segment's frames, in order, on the recording clock.
//!
//! A segment may be cut short (a crash leaves its last cluster unfinished and no cues) or
//! damaged: it is read through the crate's lenient view ([`crate::recover`]) and ends at the
//! first frame that cannot be read. The demuxer is third-party code parsing untrusted bytes:
//! its calls are fenced with `catch_unwind`, so that even a bug there ends the segment rather
//! than the export.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use matroska_demuxer::{Frame, MatroskaFile, TrackType};
use tracing::warn;

use crate::manifest::Kind;
use crate::recover::lenient::Lenient;
use crate::vp8;

/// The largest frame accepted (a damaged size field must not make a huge frame).
const MAX_FRAME_BYTES: usize = 16 << 20;

/// Why a segment cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable(pub String);

/// The frame under a [`SegmentCursor`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameView<'a> {
    /// On the recording clock (the segment's offset added), never going backwards.
    pub at_us: u64,
    /// VP8: the frame header says keyframe. Opus: always.
    pub keyframe: bool,
    /// Frames of the segment before this one.
    pub index: u64,
    pub data: &'a [u8],
}

/// A forward-only cursor over one segment's frames: [`SegmentCursor::peek`] the frame under
/// it, [`SegmentCursor::advance`] past it.
pub(crate) struct SegmentCursor {
    mkv: MatroskaFile<Lenient>,
    path: PathBuf,
    kind: Kind,
    track: u64,
    scale_ns: u64,
    offset_us: u64,
    frame: Frame,
    loaded: bool,
    ended: bool,
    damaged: bool,
    index: u64,
    at_us: u64,
}

impl std::fmt::Debug for SegmentCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentCursor")
            .field("path", &self.path)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl SegmentCursor {
    /// Opens `path`, a single-track WebM of `kind` (VP8 or Opus) placed at `offset_ms`.
    pub(crate) fn open(
        path: &Path,
        kind: Kind,
        offset_ms: u64,
    ) -> Result<SegmentCursor, Unreadable> {
        let file = File::open(path).map_err(|e| Unreadable(format!("open: {e}")))?;
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let reader = Lenient::open(file).map_err(|e| e.to_string())?;
            MatroskaFile::open(reader).map_err(|e| e.to_string())
        }))
        .map_err(|_| Unreadable("the demuxer panicked".into()))?;
        let mkv = opened.map_err(Unreadable)?;
        let (want_type, want_codec) = match kind {
            Kind::Video => (TrackType::Video, "V_VP8"),
            Kind::Audio => (TrackType::Audio, "A_OPUS"),
        };
        let track = mkv
            .tracks()
            .iter()
            .find(|t| t.track_type() == want_type && t.codec_id() == want_codec)
            .map(|t| t.track_number().get())
            .ok_or_else(|| Unreadable(format!("no {want_codec} track")))?;
        let scale_ns = mkv.info().timestamp_scale().get();
        Ok(SegmentCursor {
            mkv,
            path: path.to_owned(),
            kind,
            track,
            scale_ns,
            offset_us: offset_ms.saturating_mul(1000),
            frame: Frame::default(),
            loaded: false,
            ended: false,
            damaged: false,
            index: 0,
            at_us: 0,
        })
    }

    /// The frame under the cursor; `None` at the end of what can be read.
    pub(crate) fn peek(&mut self) -> Option<FrameView<'_>> {
        if !self.loaded && !self.ended {
            self.load();
        }
        if self.ended {
            return None;
        }
        Some(FrameView {
            at_us: self.at_us,
            keyframe: match self.kind {
                Kind::Video => vp8::is_keyframe(&self.frame.data) == Some(true),
                Kind::Audio => true,
            },
            index: self.index,
            data: &self.frame.data,
        })
    }

    /// Moves past the frame under the cursor.
    pub(crate) fn advance(&mut self) {
        if self.loaded {
            self.loaded = false;
            self.index += 1;
        } else if !self.ended {
            self.load();
            self.advance();
        }
    }

    /// The segment ended early: damaged, or cut off inside a frame.
    pub(crate) fn damaged(&self) -> bool {
        self.damaged
    }

    fn load(&mut self) {
        loop {
            let next = catch_unwind(AssertUnwindSafe(|| self.mkv.next_frame(&mut self.frame)));
            match next {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    self.ended = true;
                    return;
                }
                Ok(Err(e)) => {
                    // A file cut off mid-frame ends with an error too: what came before plays.
                    warn!(path = %self.path.display(), error = %e, "segment read stops early");
                    self.ended = true;
                    self.damaged = true;
                    return;
                }
                Err(_) => {
                    warn!(path = %self.path.display(), "segment read stops: the demuxer panicked");
                    self.ended = true;
                    self.damaged = true;
                    return;
                }
            }
            if self.frame.track != self.track
                || self.frame.data.is_empty()
                || self.frame.data.len() > MAX_FRAME_BYTES
            {
                continue;
            }
            let ts_us = self.frame.timestamp.saturating_mul(self.scale_ns) / 1000;
            // Never backwards: the output's times must not be.
            self.at_us = self.at_us.max(self.offset_us.saturating_add(ts_us));
            self.loaded = true;
            return;
        }
    }
}

/// The first keyframe at or after `at_us` (recording clock) that starts a picture (its header
/// readable), moving the cursor to it; `None` when the segment has none left. `passing` is
/// told the time of each frame read on the way.
pub(crate) fn seek_keyframe(
    cursor: &mut SegmentCursor,
    at_us: u64,
    mut passing: impl FnMut(u64),
) -> Option<(u64, u64)> {
    loop {
        let f = cursor.peek()?;
        passing(f.at_us);
        if f.keyframe && f.at_us >= at_us && vp8::keyframe_size(f.data).is_some() {
            return Some((f.at_us, f.index));
        }
        cursor.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_unreadable_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg-1.webm");
        for bytes in [
            &b""[..],
            b"not a webm at all",
            &[0x1a, 0x45, 0xdf, 0xa3, 0x80, 0x18, 0x53, 0x80, 0x67, 0x01][..],
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert!(SegmentCursor::open(&path, Kind::Video, 0).is_err());
        }
        assert!(SegmentCursor::open(&dir.path().join("missing"), Kind::Audio, 0).is_err());
    }
}
