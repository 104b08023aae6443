//! Real encoded media, packetized as RTP, through the track recorder and the writer, checked
//! with ffprobe and ffmpeg.

use std::time::{Duration, Instant};

use lectern_record::{
    Codec, GapReason, Kind, StopReason, TrackKey, TrackRecorder, WriterConfig, spawn,
};

use crate::support::*;

fn key(track: u64) -> TrackKey {
    TrackKey {
        participant_id: "p_ada".into(),
        track,
    }
}

#[test]
fn rtp_in_playable_webm_out() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let video = read_frames(VP8_FIXTURE);
    let audio = read_frames(OPUS_FIXTURE);

    // Video: 1000-byte packets, neighbours swapped now and then (reordering), a 32-bit RTP
    // timestamp about to wrap; arriving on time, 200 ms into the recording.
    let mut vp = packetize(Codec::Vp8, &video, 1 << 20, u32::MAX - 45_000, 1000);
    for i in (5..vp.len() - 1).step_by(17) {
        vp.swap(i, i + 1);
    }
    let mut vrec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let vframes = record(&mut vrec, t0, &vp, |p| {
        Duration::from_millis(200)
            + Duration::from_micros(
                u64::from(p.rtp_time.wrapping_sub(u32::MAX - 45_000)) * 1_000_000 / 90_000,
            )
    });
    assert_eq!(vframes.len(), video.len(), "{:?}", vrec.stats());
    for (got, want) in vframes.iter().zip(&video) {
        assert_eq!(
            got.data, want.data,
            "frame {} joined byte for byte",
            got.frame_no
        );
        assert_eq!(got.keyframe, want.keyframe);
        assert_eq!(
            got.at_us,
            200_000 + want.ts_us / 1000 * 1000,
            "frame {}",
            got.frame_no
        );
    }
    assert_eq!(vrec.stats().lost, 0);

    let ap = packetize(Codec::Opus, &audio, 77, 123_456, 1200);
    let mut arec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let aframes = record(&mut arec, t0, &ap, |p| {
        Duration::from_micros(u64::from(p.rtp_time - 123_456) * 1_000_000 / 48_000)
    });
    assert_eq!(aframes.len(), audio.len());
    assert!(aframes.iter().zip(&audio).all(|(g, w)| g.data == w.data));

    let (sink, handle) = spawn(WriterConfig::new(
        dir.path().into(),
        "rec_1".into(),
        t0,
        1_765_000_000_000,
    ))
    .unwrap();
    sink.event(
        0,
        serde_json::json!({"type": "start", "started_at": 1_765_000_000_000u64}),
    );
    for frame in vframes {
        assert!(sink.try_frame(key(7), Kind::Video, frame));
    }
    for frame in aframes {
        assert!(sink.try_frame(key(8), Kind::Audio, frame));
    }
    sink.event(
        3500,
        serde_json::json!({"type": "reaction", "participant_id": "p_ada", "reaction": "clap"}),
    );
    sink.stop(StopReason::Stopped);
    let manifest = handle.join().unwrap();

    assert!(manifest.complete && !manifest.interrupted);
    assert_eq!(manifest.stop_reason, Some(StopReason::Stopped));
    assert_eq!(manifest.segments.len(), 2);
    let (v, a) = (&manifest.segments[0], &manifest.segments[1]);
    assert_eq!(
        (v.kind, v.track.as_str(), v.width, v.height, v.frames),
        (Kind::Video, "7", Some(320), Some(240), 90)
    );
    assert_eq!(
        (a.kind, a.track.as_str(), a.width, a.frames),
        (Kind::Audio, "8", None, audio.len() as u64)
    );
    assert_eq!(v.offset_ms, 200);
    assert!(!v.open && !a.open);
    assert!(manifest.gaps.is_empty());
    assert!(
        manifest.duration_ms >= 3500,
        "events count: {}",
        manifest.duration_ms
    );
    assert_eq!(
        lectern_record::Manifest::read(dir.path()).unwrap(),
        manifest
    );

    let vfile = dir.path().join(&v.file);
    let probe = ffprobe(&vfile);
    assert_eq!(stream(&probe, 0)["codec_name"], "vp8");
    assert_eq!(
        (
            stream(&probe, 0)["width"].as_u64(),
            stream(&probe, 0)["height"].as_u64()
        ),
        (Some(320), Some(240))
    );
    assert_eq!(
        probe["streams"].as_array().unwrap().len(),
        1,
        "one track per file"
    );
    let secs: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((secs - 3.0).abs() < 0.1, "video duration {secs}");
    assert!(
        (secs * 1000.0 - v.duration_ms as f64).abs() < 50.0,
        "manifest says {}",
        v.duration_ms
    );
    let first_pts = ffprobe_packets(&vfile)[0].0;
    assert_eq!(first_pts, 0.0, "segment times start at 0");
    assert_eq!(decode_errors(&vfile), "");

    let afile = dir.path().join(&a.file);
    let probe = ffprobe(&afile);
    assert_eq!(stream(&probe, 0)["codec_name"], "opus");
    assert_eq!(stream(&probe, 0)["channels"].as_u64(), Some(1));
    assert_eq!(stream(&probe, 0)["sample_rate"], "48000");
    let secs: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((secs - 3.0).abs() < 0.1, "audio duration {secs}");
    assert_eq!(decode_errors(&afile), "");

    let lines = events_lines(dir.path());
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["type"], "start");
    assert_eq!(lines[1]["t"], 3500);
    assert_eq!(lines[2]["type"], "stop");
    assert_eq!(lines[2]["reason"], "stopped");
}

#[test]
fn unrepaired_loss_resumes_at_a_keyframe_and_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let video = read_frames(VP8_FIXTURE);
    let keyframes: Vec<usize> = video
        .iter()
        .enumerate()
        .filter(|(_, f)| f.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert!(
        keyframes.len() >= 3,
        "the fixture has a keyframe every second: {keyframes:?}"
    );
    let vp = packetize(Codec::Vp8, &video, 0, 0, 1000);
    // Lose one packet of frame 40 for good.
    let lost_rtp = (video[40].ts_us * 90_000 / 1_000_000) as u32;
    let lost_seq = vp.iter().find(|p| p.rtp_time == lost_rtp).unwrap().seq;
    let sent: Vec<_> = vp.into_iter().filter(|p| p.seq != lost_seq).collect();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut asked = 0;
    let mut frames = Vec::new();
    let mut gaps = Vec::new();
    for p in &sent {
        let at = t0 + Duration::from_micros(u64::from(p.rtp_time) * 1_000_000 / 90_000);
        rec.handle_timeout(at);
        rec.push(
            at,
            lectern_record::RecPacket {
                arrived: at,
                seq: p.seq,
                rtp_time: p.rtp_time,
                marker: p.marker,
                run: 1,
                keyframe_start: None,
                payload: &p.payload,
            },
        );
        asked += usize::from(rec.take_keyframe_request());
        frames.extend(std::iter::from_fn(|| rec.poll_frame()));
        gaps.extend(std::iter::from_fn(|| rec.poll_gap()));
    }
    assert_eq!(asked, 2, "once at the start, once after the loss");
    let next_key = keyframes.iter().copied().find(|&k| k > 40).unwrap();
    assert_eq!(frames.len(), video.len() - (next_key - 40));
    assert!(frames[40].keyframe && frames[40].data == video[next_key].data);
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].at_us, video[39].ts_us / 1000 * 1000);

    let (sink, handle) =
        spawn(WriterConfig::new(dir.path().into(), "rec_2".into(), t0, 0)).unwrap();
    for f in frames {
        assert!(sink.try_frame(key(1), Kind::Video, f));
    }
    sink.gap(key(1), gaps[0]);
    sink.stop(StopReason::ClassEnded);
    let manifest = handle.join().unwrap();
    assert_eq!(manifest.gaps.len(), 1);
    assert_eq!(manifest.gaps[0].reason, GapReason::NetworkLoss);
    assert_eq!(manifest.gaps[0].n, 1);
    let file = dir.path().join("seg-1.webm");
    assert_eq!(
        decode_errors(&file),
        "",
        "the skipped frames leave nothing undecodable"
    );
    assert!((playable_secs(&file) - 3.0).abs() < 0.1);
}
