//! Recovery of recordings cut off at any byte.

use std::path::Path;
use std::time::Instant;

use lectern_record::{
    Kind, Manifest, StopReason, TrackKey, WriterConfig, probe_segment, recover, spawn,
};

use crate::support::*;

/// A finished recording of 3 s of camera and 3 s of microphone.
fn finished_recording(dir: &Path) -> Manifest {
    let t0 = Instant::now();
    let (sink, handle) = spawn(WriterConfig::new(dir.into(), "rec_r".into(), t0, 0)).unwrap();
    let key = |track| TrackKey {
        participant_id: "p".into(),
        track,
    };
    for f in looped(&read_frames(VP8_FIXTURE), 90, 0, 33_333, 0) {
        assert!(sink.try_frame(key(1), Kind::Video, f));
    }
    for f in looped(&read_frames(OPUS_FIXTURE), 150, 0, 20_000, 0) {
        assert!(sink.try_frame(key(2), Kind::Audio, f));
    }
    sink.event(4200, serde_json::json!({"type": "reaction"}));
    sink.stop(StopReason::Stopped);
    handle.join().unwrap()
}

#[test]
fn a_segment_cut_at_any_byte_is_read_up_to_its_last_whole_frame() {
    let dir = tempfile::tempdir().unwrap();
    let m = finished_recording(dir.path());
    for s in &m.segments {
        let bytes = std::fs::read(dir.path().join(&s.file)).unwrap();
        let full = probe_segment(&dir.path().join(&s.file));
        assert_eq!(
            (full.duration_ms, full.frames, full.bytes),
            (s.duration_ms, s.frames, s.bytes)
        );
        let cut = dir.path().join("cut.webm");
        let mut last = 0;
        for len in (0..bytes.len()).step_by(97) {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let probe = probe_segment(&cut);
            assert!(probe.duration_ms >= last, "{len} bytes: {probe:?}");
            assert!(probe.frames <= s.frames && probe.bytes == len as u64);
            last = probe.duration_ms;
        }
        assert!(
            last + 200 >= s.duration_ms,
            "{} of {} ms",
            last,
            s.duration_ms
        );
    }
}

#[test]
fn recover_fixes_open_segments_and_leaves_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let finished = finished_recording(dir.path());
    assert_eq!(
        recover(dir.path()).unwrap(),
        finished,
        "a complete recording is left as it is"
    );

    // As a crash would leave it: segments open with stale figures, one file cut short, one
    // segment listed whose file never got written, one pointing outside the folder.
    let mut m = finished.clone();
    m.complete = false;
    m.stop_reason = None;
    for s in &mut m.segments {
        s.open = true;
        s.duration_ms = 10;
    }
    let video = dir.path().join(&m.segments[0].file);
    let bytes = std::fs::read(&video).unwrap();
    std::fs::write(&video, &bytes[..bytes.len() / 2]).unwrap();
    let mut missing = m.segments[1].clone();
    missing.n = 3;
    missing.file = "seg-3.webm".into();
    let mut outside = missing.clone();
    outside.n = 4;
    outside.file = "../seg-1.webm".into();
    m.segments.extend([missing, outside]);
    m.write_atomic(dir.path()).unwrap();

    let r = recover(dir.path()).unwrap();
    assert!(r.interrupted && !r.complete);
    assert!(r.segments.iter().all(|s| !s.open));
    let half = &r.segments[0];
    assert!(
        half.duration_ms > 500 && half.duration_ms < 2500,
        "{half:?}"
    );
    assert!((playable_secs(&video) * 1000.0 - half.duration_ms as f64).abs() <= 100.0);
    assert_eq!(r.segments[1].duration_ms, finished.segments[1].duration_ms);
    assert_eq!((r.segments[2].duration_ms, r.segments[2].frames), (0, 0));
    assert_eq!((r.segments[3].duration_ms, r.segments[3].frames), (0, 0));
    assert_eq!(r.duration_ms, 4200, "the last event is the end");
    assert_eq!(Manifest::read(dir.path()).unwrap(), r);
}
