//! The writer fed with frames directly: segments, gaps, events, stopping.

use std::time::{Duration, Instant};

use lectern_record::{
    GapReason, Kind, Manifest, RecordError, StopReason, TrackKey, WriterConfig, available_space,
    spawn,
};

use crate::support::*;

fn key(p: &str, track: u64) -> TrackKey {
    TrackKey {
        participant_id: p.into(),
        track,
    }
}

fn config(dir: &std::path::Path, started: Instant) -> WriterConfig {
    WriterConfig::new(dir.into(), "rec_w".into(), started, 1_765_000_000_000)
}

#[test]
fn a_new_segment_after_silence_starts_at_zero_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let audio = read_frames(OPUS_FIXTURE);
    let (sink, handle) = spawn(config(dir.path(), t0)).unwrap();
    // One second of speech at 1 s, then (after a silence) one more at 10 s.
    for frame in looped(&audio, 50, 1_000_000, 20_000, 0) {
        assert!(sink.try_frame(key("p_s", 3), Kind::Audio, frame));
    }
    for frame in looped(&audio, 50, 10_000_000, 20_000, 50) {
        assert!(sink.try_frame(key("p_s", 3), Kind::Audio, frame));
    }
    sink.stop(StopReason::Stopped);
    let m = handle.join().unwrap();
    let offsets: Vec<(u32, u64, u64)> = m
        .segments
        .iter()
        .map(|s| (s.n, s.offset_ms, s.duration_ms))
        .collect();
    assert_eq!(offsets, [(1, 1000, 1000), (2, 10_000, 1000)]);
    assert_eq!(m.duration_ms, 11_000);
    assert!(m.gaps.is_empty(), "a silence is no gap: {:?}", m.gaps);
    for s in &m.segments {
        let file = dir.path().join(&s.file);
        assert_eq!(ffprobe_packets(&file)[0].0, 0.0);
        assert!(
            (playable_secs(&file) - 1.0).abs() < 0.05,
            "{}",
            playable_secs(&file)
        );
    }
}

#[test]
fn tracks_get_their_own_segments_and_video_starts_at_a_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let video = read_frames(VP8_FIXTURE);
    let (sink, handle) = spawn(config(dir.path(), t0)).unwrap();
    // Camera and screen of one participant; the screen starts on interframes.
    let camera = looped(&video, 60, 0, 33_333, 0);
    let mut screen = looped(&video, 90, 500_000, 33_333, 0);
    screen.drain(..5);
    for f in camera {
        assert!(sink.try_frame(key("p_i", 1), Kind::Video, f));
    }
    for f in screen {
        assert!(sink.try_frame(key("p_i", 2), Kind::Video, f));
    }
    wait_until(
        Duration::from_secs(5),
        "a keyframe ask for the screen",
        || sink.take_keyframe_wanted().contains(&key("p_i", 2)),
    );
    sink.stop(StopReason::Stopped);
    let m = handle.join().unwrap();
    assert_eq!(m.segments.len(), 2);
    let screen = m.segments.iter().find(|s| s.track == "2").unwrap();
    assert_eq!(
        screen.frames,
        90 - 30,
        "frames before the second keyframe are dropped"
    );
    assert_eq!(screen.offset_ms, 500 + 1000);
    let file = dir.path().join(&screen.file);
    assert_eq!(decode_errors(&file), "");
}

#[test]
fn a_full_queue_drops_frames_records_a_gap_and_asks_for_a_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let video = read_frames(VP8_FIXTURE);
    let mut cfg = config(dir.path(), t0);
    cfg.queue_frames = 1;
    let (sink, handle) = spawn(cfg).unwrap();
    let mut refused = Vec::new();
    // Far faster than any writer: with a queue of one frame, some must be dropped.
    for f in looped(&video, 900, 0, 33_333, 0) {
        let no = f.frame_no;
        if !sink.try_frame(key("p_q", 1), Kind::Video, f) {
            refused.push(no);
        }
    }
    assert!(!refused.is_empty());
    assert_eq!(sink.dropped_frames(), refused.len() as u64);
    assert!(sink.take_keyframe_wanted().contains(&key("p_q", 1)));
    sink.stop(StopReason::Stopped);
    let m = handle.join().unwrap();
    assert!(
        m.gaps
            .iter()
            .all(|g| g.reason == GapReason::QueueFull && g.n == 1),
        "{:?}",
        m.gaps
    );
    // A drop is noticed when a later frame of the track arrives: then the gap starts at the
    // last frame written before it.
    if refused[0] < 899 && (refused[0]..900).any(|no| !refused.contains(&no)) {
        let first_refused_ms = refused[0] * 33_333 / 1000;
        let gap = m.gaps.first().expect("a gap for the dropped frames");
        assert!(
            gap.at_ms <= first_refused_ms && gap.at_ms + gap.duration_ms > first_refused_ms,
            "{gap:?} vs {refused:?}"
        );
    }
    let file = dir.path().join(&m.segments[0].file);
    assert_eq!(decode_errors(&file), "", "video resumed at keyframes only");
}

#[test]
fn the_event_log_is_written_as_given_and_ends_with_the_stop_line() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let (sink, handle) = spawn(config(dir.path(), t0)).unwrap();
    let snapshot = serde_json::json!({"roster": [{"participant_id": "p_1", "name": "Ada", "role": "instructor"}]});
    sink.event(0, serde_json::json!({"type": "start", "started_at": 1_765_000_000_000u64, "snapshot": snapshot}));
    sink.event(
        1234,
        serde_json::json!({"type": "event", "seq": 4, "event": {"kind": "chat", "text": "hi"}}),
    );
    sink.event(
        2000,
        serde_json::json!({"type": "active_speaker", "participant_id": null}),
    );
    // Flushed within a second, before the recording stops.
    wait_until(Duration::from_secs(3), "events on disk", || {
        std::fs::read_to_string(dir.path().join("events.jsonl"))
            .is_ok_and(|s| s.lines().count() == 3)
    });
    sink.stop(StopReason::ClassEnded);
    let m = handle.join().unwrap();
    let lines = events_lines(dir.path());
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["snapshot"], snapshot);
    assert_eq!(lines[0]["t"], 0);
    assert_eq!(lines[1]["event"]["text"], "hi");
    assert_eq!(lines[1]["t"], 1234);
    assert_eq!(lines[3]["type"], "stop");
    assert_eq!(lines[3]["reason"], "class_ended");
    assert!(lines[3]["t"].as_u64().unwrap() >= 2000);
    assert!(m.complete && m.segments.is_empty());
    assert!(m.duration_ms >= 2000);
    assert!(sink.is_stopped());
    assert!(!sink.try_frame(
        key("p", 1),
        Kind::Audio,
        looped(&read_frames(OPUS_FIXTURE), 1, 0, 1, 0).remove(0)
    ));
}

#[test]
fn the_manifest_follows_an_open_segment() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let audio = read_frames(OPUS_FIXTURE);
    let (sink, handle) = spawn(config(dir.path(), t0)).unwrap();
    for f in looped(&audio, 100, 0, 20_000, 0) {
        assert!(sink.try_frame(key("p", 1), Kind::Audio, f));
    }
    // Within the manifest interval the open segment shows with what is on disk.
    wait_until(
        Duration::from_secs(6),
        "the manifest to list 2 s of an open segment",
        || {
            Manifest::read(dir.path()).is_ok_and(|m| {
                m.segments.len() == 1
                    && m.segments[0].open
                    && m.segments[0].duration_ms == 2000
                    && m.segments[0].bytes > 0
            })
        },
    );
    drop(sink);
    let m = handle.join().unwrap();
    assert_eq!(
        m.stop_reason,
        Some(StopReason::Shutdown),
        "dropping every sink stops the recording"
    );
    assert!(m.complete && !m.segments[0].open);
    let on_disk = std::fs::metadata(dir.path().join("seg-1.webm"))
        .unwrap()
        .len();
    assert_eq!(m.segments[0].bytes, on_disk);
}

#[test]
fn low_disk_space_stops_the_recording_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let audio = read_frames(OPUS_FIXTURE);
    let free = available_space(dir.path()).unwrap();
    let mut cfg = config(dir.path(), t0);
    cfg.min_free_bytes = free + (1 << 40);
    let (sink, handle) = spawn(cfg).unwrap();
    wait_until(
        Duration::from_secs(5),
        "the writer to stop on its own",
        || sink.is_stopped(),
    );
    assert!(!sink.try_frame(
        key("p", 1),
        Kind::Audio,
        looped(&audio, 1, 0, 1, 0).remove(0)
    ));
    let m = handle.join().unwrap();
    assert_eq!(m.stop_reason, Some(StopReason::DiskFull));
    assert!(m.complete);
    let lines = events_lines(dir.path());
    assert_eq!(lines.last().unwrap()["reason"], "disk_full");
}

#[test]
fn bad_configurations_and_existing_recordings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut cfg = config(dir.path(), t0);
    cfg.queue_frames = 0;
    assert_eq!(spawn(cfg).unwrap_err().code(), "config");
    let mut cfg = config(dir.path(), t0);
    cfg.flush_interval = Duration::from_secs(5);
    assert_eq!(spawn(cfg).unwrap_err().code(), "config");
    let (sink, handle) = spawn(config(dir.path(), t0)).unwrap();
    sink.stop(StopReason::Stopped);
    handle.join().unwrap();
    assert!(matches!(
        spawn(config(dir.path(), t0)),
        Err(RecordError::AlreadyExists(_))
    ));
}

#[test]
fn a_segment_idle_for_longer_than_segment_idle_is_closed_while_recording_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let audio = read_frames(OPUS_FIXTURE);
    let (sink, handle) = spawn(config(dir.path(), t0)).unwrap();
    for f in looped(&audio, 10, 0, 20_000, 0) {
        assert!(sink.try_frame(key("p_s", 1), Kind::Audio, f));
    }
    // The speaker went quiet: the segment is finalized and listed closed, before any stop.
    wait_until(Duration::from_secs(10), "the idle segment to close", || {
        Manifest::read(dir.path()).is_ok_and(|m| m.segments.len() == 1 && !m.segments[0].open)
    });
    assert!(t0.elapsed() >= lectern_record::SEGMENT_IDLE);
    let file = dir.path().join("seg-1.webm");
    let probe = ffprobe(&file);
    let secs: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (secs - 0.2).abs() < 0.01,
        "finalized with its duration: {secs}"
    );
    sink.stop(StopReason::Stopped);
    let m = handle.join().unwrap();
    assert_eq!(m.segments.len(), 1);
}
