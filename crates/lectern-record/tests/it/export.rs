//! The one-file export, on real recordings written by the crate's writer from the fixtures,
//! checked with ffprobe/ffmpeg: the stage switches at the right keyframes with the right
//! bytes, the mixed audio decodes and is in its place, the chat files hold exactly the public
//! messages; and what a crash or a hostile folder leaves never makes it panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lectern_record::{
    ExportStage, Frame, Kind, Manifest, Progress, StopReason, TrackKey, WriterConfig, export, spawn,
};
use serde_json::{Value, json};

use crate::support::*;

const STARTED_AT: u64 = 1_765_000_000_000;

fn key(p: &str, track: u64) -> TrackKey {
    TrackKey {
        participant_id: p.into(),
        track,
    }
}

fn adler32(data: &[u8]) -> String {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    format!("adler32:{:08x}", (b << 16) | a)
}

/// One video frame as it should come out: its time on the recording clock and its bytes' hash.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    ms: u64,
    keyframe: bool,
    hash: String,
}

/// The frames of a track as the writer stores them: times in whole ms from the segment's
/// offset (the first frame's time, rounded).
fn on_clock(frames: &[Frame]) -> Vec<Expected> {
    let first = frames[0].at_us;
    frames
        .iter()
        .map(|f| Expected {
            ms: (first + 500) / 1000 + (f.at_us - first) / 1000,
            keyframe: f.keyframe,
            hash: adler32(&f.data),
        })
        .collect()
}

fn chat(t: u64, seq: u64, from: &str, name: &str, to: Value, text: &str) -> Value {
    json!({"t": t, "type": "event", "seq": seq, "at": STARTED_AT + t, "event": {"kind": "chat",
        "message": {"seq": seq, "from": from, "from_name": name,
                    "from_role": if from == "p_i" { "instructor" } else { "student" },
                    "to": to, "text": text, "sent_at": STARTED_AT + t}}})
}

fn event(t: u64, seq: u64, event: Value) -> Value {
    json!({"t": t, "type": "event", "seq": seq, "at": STARTED_AT + t, "event": event})
}

/// A 20-second class: the instructor's camera all along and microphone at 1-4 s and 10-17 s;
/// Ada (a student) shows a bigger camera from 5 to 15 s, speaks (stereo) from 6 to 12 s and
/// holds the stage from 7.3 to 12.5 s; public, private and deleted chat.
struct Class {
    instructor_video: Vec<Expected>,
    presenter_video: Vec<Expected>,
}

fn record_class(dir: &Path) -> Class {
    let cam = read_frames(VP8_FIXTURE);
    let big_cam = read_frames(VP8_BIG_FIXTURE);
    let mic = read_frames(OPUS_FIXTURE);
    let stereo = read_frames(OPUS_STEREO_FIXTURE);
    let (sink, handle) = spawn(WriterConfig::new(
        dir.into(),
        "rec_export".into(),
        Instant::now(),
        STARTED_AT,
    ))
    .unwrap();
    sink.event(
        0,
        json!({"type": "start", "started_at": STARTED_AT, "snapshot": {
            "room_id": "r1", "title": "Algebra", "class_state": "live",
            "roster": [
                {"id": "p_i", "name": "Ines", "role": "instructor"},
                {"id": "p_s", "name": "Ada <Lovelace>", "role": "student"}],
            "hand_queue": [], "presenter": null, "chat_locked": false,
            "chat": [{"seq": 2, "from": "p_s", "from_name": "Ada <Lovelace>", "from_role": "student",
                      "to": {"kind": "everyone"}, "text": "before the recording", "sent_at": STARTED_AT - 5}],
            "seq": 9}}),
    );
    let instructor_cam = looped(&cam, 600, 0, 33_333, 0);
    let presenter_cam = looped(&big_cam, 300, 5_000_000, 33_333, 0);
    let mut instructor_mic = looped(&mic, 150, 1_000_000, 20_000, 0);
    instructor_mic.extend(looped(&mic, 350, 10_000_000, 20_000, 150));
    let presenter_mic = looped(&stereo, 300, 6_000_000, 20_000, 0);
    // Everything in time order, as a class would send it.
    let mut all: Vec<(TrackKey, Kind, Frame)> = Vec::new();
    all.extend(
        instructor_cam
            .iter()
            .map(|f| (key("p_i", 1), Kind::Video, f.clone())),
    );
    all.extend(
        instructor_mic
            .iter()
            .map(|f| (key("p_i", 2), Kind::Audio, f.clone())),
    );
    all.extend(
        presenter_cam
            .iter()
            .map(|f| (key("p_s", 3), Kind::Video, f.clone())),
    );
    all.extend(
        presenter_mic
            .iter()
            .map(|f| (key("p_s", 4), Kind::Audio, f.clone())),
    );
    all.sort_by_key(|(_, _, f)| f.at_us);
    let events = [
        chat(
            1_000,
            10,
            "p_i",
            "Ines",
            json!({"kind": "everyone"}),
            "Hello class",
        ),
        chat(
            2_000,
            11,
            "p_s",
            "Ada <Lovelace>",
            json!({"kind": "staff"}),
            "private question",
        ),
        chat(
            3_000,
            12,
            "p_i",
            "Ines",
            json!({"kind": "participant", "id": "p_s"}),
            "private answer",
        ),
        chat(
            4_000,
            13,
            "p_s",
            "Ada <Lovelace>",
            json!({"kind": "everyone"}),
            "oops, deleted",
        ),
        event(
            4_500,
            14,
            json!({"kind": "chat_deleted", "seq": 13, "by": "p_i"}),
        ),
        event(
            7_300,
            15,
            json!({"kind": "stage_granted", "participant_id": "p_s", "by": "p_i"}),
        ),
        chat(
            8_000,
            16,
            "p_s",
            "Ada <Lovelace>",
            json!({"kind": "everyone"}),
            "a <b> & c --> d\nsecond line",
        ),
        event(
            12_500,
            17,
            json!({"kind": "stage_revoked", "participant_id": "p_s", "by": "p_i"}),
        ),
        chat(
            19_000,
            18,
            "p_i",
            "Ines",
            json!({"kind": "everyone"}),
            "Bye",
        ),
    ];
    let mut events = events.into_iter().peekable();
    for (k, kind, frame) in all {
        while let Some(e) = events.next_if(|e| e["t"].as_u64().unwrap() * 1000 <= frame.at_us) {
            sink.event(e["t"].as_u64().unwrap(), e);
        }
        // The queue holds 2048 frames: wait for room rather than drop.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sink.try_frame(k.clone(), kind, frame.clone()) {
            assert!(Instant::now() < deadline, "the writer keeps up");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for e in events {
        sink.event(e["t"].as_u64().unwrap(), e);
    }
    sink.stop(StopReason::ClassEnded);
    let m = handle.join().unwrap();
    assert!(m.complete && m.gaps.is_empty(), "{m:?}");
    assert_eq!(m.segments.len(), 5, "{:?}", m.segments);
    Class {
        instructor_video: on_clock(&instructor_cam),
        presenter_video: on_clock(&presenter_cam),
    }
}

/// Video packets of a file: (pts ms, keyframe, data hash), and each frame's size.
fn video_packets(path: &Path) -> Vec<Expected> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_data_hash",
            "adler32",
        ])
        .args([
            "-show_entries",
            "packet=pts_time,flags,data_hash",
            "-of",
            "csv",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Expected {
                ms: (f[1].parse::<f64>().unwrap() * 1000.0).round() as u64,
                keyframe: f[2].starts_with('K'),
                hash: f[3].to_owned(),
            }
        })
        .collect()
}

fn frame_sizes(path: &Path) -> Vec<(u64, u32, u32)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v"])
        .args(["-show_entries", "frame=pts_time,width,height", "-of", "csv"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                (f[1].parse::<f64>().unwrap() * 1000.0).round() as u64,
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// The file's audio decoded by ffmpeg, 48 kHz mono.
fn decoded_audio(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args([
            "-map", "0:a", "-f", "f32le", "-ac", "1", "-ar", "48000", "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn rms(samples: &[f32], from_s: f64, to_s: f64) -> f64 {
    let span = &samples[(from_s * 48_000.0) as usize..(to_s * 48_000.0) as usize];
    (span.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / span.len() as f64).sqrt()
}

fn run_export(dir: &Path, out: &Path) -> (lectern_record::ExportSummary, Vec<Progress>) {
    let mut seen = Vec::new();
    let summary = export(dir, out, &mut |p| seen.push(p)).expect("export succeeds");
    (summary, seen)
}

#[test]
fn a_class_exports_to_one_webm_with_the_stage_every_voice_and_the_public_chat() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec_export");
    let class = record_class(&dir);
    let out = tmp.path().join("out").join("class.webm");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let (summary, progress) = run_export(&dir, &out);

    // Streams and length.
    let probe = ffprobe(&out);
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{probe}");
    assert_eq!(stream(&probe, 0)["codec_name"], "vp8");
    assert_eq!(
        (
            stream(&probe, 0)["width"].as_u64(),
            stream(&probe, 0)["height"].as_u64()
        ),
        (Some(320), Some(240))
    );
    assert_eq!(stream(&probe, 1)["codec_name"], "opus");
    assert_eq!(stream(&probe, 1)["channels"], 1);
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 20.0).abs() < 0.1, "duration {duration}");
    assert!(summary.duration_ms.abs_diff(20_000) <= 50, "{summary:?}");
    assert_eq!(decode_errors(&out), "", "the export decodes cleanly");

    // The stage: the instructor, Ada from her first keyframe after the grant (7.3 s), the
    // instructor again from theirs after the revoke (12.5 s). Every packet's bytes match.
    let first_key_from =
        |frames: &[Expected], ms: u64| frames.iter().find(|f| f.keyframe && f.ms >= ms).unwrap().ms;
    let to_ada = first_key_from(&class.presenter_video, 7_300);
    let back = first_key_from(&class.instructor_video, 12_500);
    assert!(to_ada > 7_300 && to_ada < 8_000 && back > 12_500 && back < 13_500);
    let expected: Vec<Expected> = class
        .instructor_video
        .iter()
        .filter(|f| f.ms < to_ada)
        .chain(
            class
                .presenter_video
                .iter()
                .filter(|f| f.ms >= to_ada && f.ms < back),
        )
        .chain(class.instructor_video.iter().filter(|f| f.ms >= back))
        .cloned()
        .collect();
    let got = video_packets(&out);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "video packet at {} ms", e.ms);
    }
    for switch in [to_ada, back] {
        let first = got.iter().find(|p| p.ms >= switch).unwrap();
        assert!(first.ms == switch && first.keyframe, "{first:?}");
    }
    assert_eq!(summary.video_pieces, 3);
    assert_eq!(summary.video_frames, expected.len() as u64);
    assert_eq!(summary.max_switch_wait_ms, back - 12_500);
    // The picture changes size at the switches (VP8 keyframes carry it).
    let sizes = frame_sizes(&out);
    let size_at = |ms: u64| {
        sizes
            .iter()
            .rev()
            .find(|(t, _, _)| *t <= ms)
            .map(|(_, w, h)| (*w, *h))
    };
    assert_eq!(size_at(to_ada - 1), Some((320, 240)));
    assert_eq!(size_at(to_ada), Some((480, 270)));
    assert_eq!(size_at(back), Some((320, 240)));

    // The audio: 20 ms packets from 0, every voice in its place, silence between.
    let audio_packets = ffprobe_packets(&out).len() - got.len();
    assert_eq!(audio_packets as u64, summary.duration_ms.div_ceil(20));
    let pcm = decoded_audio(&out);
    assert!(
        (pcm.len() as f64 / 48_000.0 - 20.0).abs() < 0.05,
        "{} samples",
        pcm.len()
    );
    let silence = 1e-3;
    for (from, to) in [(0.1, 0.9), (4.2, 5.8), (17.2, 19.9)] {
        assert!(
            rms(&pcm, from, to) < silence,
            "silence at {from}-{to} s: {}",
            rms(&pcm, from, to)
        );
    }
    let instructor = rms(&pcm, 1.2, 3.8);
    let ada = rms(&pcm, 6.2, 9.8);
    let both = rms(&pcm, 10.2, 11.8);
    for level in [instructor, ada, both, rms(&pcm, 12.2, 16.8)] {
        assert!(level > 0.02, "voices are heard: {instructor} {ada} {both}");
    }
    // Different tones: their powers add.
    let sum = instructor.hypot(ada);
    assert!(
        (both - sum).abs() < 0.1 * sum,
        "the voices are summed: {instructor} {ada} {both}"
    );
    assert!(
        both > 1.1 * instructor.max(ada),
        "the voices are summed: {instructor} {ada} {both}"
    );
    // The instructor's voice starts at 1 s (within the decoder's warm-up and a frame).
    let onset = pcm
        .iter()
        .skip(24_000)
        .position(|s| s.abs() > 0.01)
        .unwrap()
        + 24_000;
    assert!(
        (onset as f64 / 48_000.0 - 1.0).abs() < 0.02,
        "onset at {} s",
        onset as f64 / 48_000.0
    );
    assert_eq!(summary.voices, 3);
    assert_eq!(summary.undecodable_packets, 0);

    // The chat: exactly the public messages never deleted, at their times.
    let vtt_text = std::fs::read_to_string(&summary.vtt).unwrap();
    assert_eq!(summary.vtt, out.with_extension("vtt"));
    let cues = parse_vtt(&vtt_text);
    assert_eq!(
        cues,
        [
            (
                "chat-2".to_owned(),
                0,
                5_000,
                "Ada &lt;Lovelace&gt;: before the recording".to_owned()
            ),
            (
                "chat-10".to_owned(),
                1_000,
                6_000,
                "Ines: Hello class".to_owned()
            ),
            (
                "chat-16".to_owned(),
                8_000,
                13_000,
                "Ada &lt;Lovelace&gt;: a &lt;b&gt; &amp; c --&gt; d\nsecond line".to_owned()
            ),
            ("chat-18".to_owned(), 19_000, 24_000, "Ines: Bye".to_owned()),
        ],
        "{vtt_text}"
    );
    // An independent reader of WebVTT agrees (ffmpeg, converting to SubRip).
    let srt = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&summary.vtt)
        .args(["-f", "srt", "-"])
        .output()
        .unwrap();
    assert!(
        srt.status.success() && srt.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&srt.stderr)
    );
    let srt = String::from_utf8(srt.stdout).unwrap().replace("\r\n", "\n");
    assert!(
        srt.contains("00:00:08,000 --> 00:00:13,000\nAda <Lovelace>: a <b> & c --> d\nsecond line"),
        "{srt}"
    );
    assert!(!srt.contains("private") && !srt.contains("oops"), "{srt}");
    let json: Value = serde_json::from_slice(&std::fs::read(&summary.chat_json).unwrap()).unwrap();
    let everyone = json!({"kind": "everyone"});
    assert_eq!(
        json,
        json!([
            {"t_ms": 0, "seq": 2, "from": "p_s", "from_name": "Ada <Lovelace>", "to": everyone, "text": "before the recording"},
            {"t_ms": 1000, "seq": 10, "from": "p_i", "from_name": "Ines", "to": everyone, "text": "Hello class"},
            {"t_ms": 8000, "seq": 16, "from": "p_s", "from_name": "Ada <Lovelace>", "to": everyone, "text": "a <b> & c --> d\nsecond line"},
            {"t_ms": 19000, "seq": 18, "from": "p_i", "from_name": "Ines", "to": everyone, "text": "Bye"},
        ])
    );
    assert_eq!(summary.chat_messages, 4);

    // Progress: from 0 to 1, never back, in small steps, named.
    assert_eq!(progress.first().map(|p| p.fraction), Some(0.0));
    assert_eq!(
        progress.last().map(|p| (p.fraction, p.stage)),
        Some((1.0, ExportStage::Finishing))
    );
    for w in progress.windows(2) {
        assert!(w[1].fraction >= w[0].fraction, "{w:?}");
        assert!(
            w[1].fraction - w[0].fraction <= 0.01,
            "a step of more than 1%: {w:?}"
        );
    }
    assert!(progress.iter().any(|p| p.stage == ExportStage::Media));
    // Nothing is left behind but the three files.
    let mut names: Vec<String> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["class.chat.json", "class.vtt", "class.webm"]);
    assert!(
        !summary.interrupted
            && summary.unreadable_segments.is_empty()
            && summary.damaged_segments.is_empty()
    );
}

/// Cues of a WebVTT file, read strictly: (id, start ms, end ms, text).
fn parse_vtt(text: &str) -> Vec<(String, u64, u64, String)> {
    let time = |s: &str| -> u64 {
        let (hms, ms) = s.split_once('.').expect("a fraction");
        let parts: Vec<u64> = hms.split(':').map(|p| p.parse().expect("digits")).collect();
        assert!(parts.len() == 3 && ms.len() == 3, "time {s}");
        ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms.parse::<u64>().unwrap()
    };
    let mut blocks = text.split("\n\n");
    assert_eq!(blocks.next(), Some("WEBVTT"), "the header");
    blocks
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let mut lines = b.lines();
            let id = lines.next().unwrap().to_owned();
            let (start, end) = lines
                .next()
                .unwrap()
                .split_once(" --> ")
                .expect("timing line");
            let (start, end) = (time(start), time(end));
            assert!(end > start);
            let text: Vec<&str> = lines.collect();
            assert!(
                text.iter()
                    .all(|l| !l.is_empty() && !l.contains("-->") && !l.contains('<'))
            );
            (id, start, end, text.join("\n"))
        })
        .collect()
}

#[test]
fn a_recording_cut_off_by_kill_9_exports_what_is_there() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec_crash");
    let (mut child, lines) = crate::crash::start_child(None, &dir, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut written_ms = 0;
    while written_ms < 4_500 {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the child reports progress");
        if let Some(ms) = line.strip_prefix("CHILD written_ms=") {
            written_ms = ms.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = Manifest::read(&dir).unwrap();
    assert!(!before.complete && before.segments.iter().all(|s| s.open));
    // The child logs no roster: name the instructor, and leave a half-written last line.
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        format!(
            "{}\n{}\n{{\"t\":4400,\"type\":\"event\",\"seq\":3,\"event\":{{\"kind\":\"ch",
            json!({"t": 0, "type": "start", "started_at": STARTED_AT, "snapshot": {
                "roster": [{"id": "p_i", "name": "Ines", "role": "instructor"}], "presenter": null, "chat": []}}),
            chat(500, 2, "p_i", "Ines", json!({"kind": "everyone"}), "recorded"),
        ),
    )
    .unwrap();

    let out = tmp.path().join("crash.webm");
    let (summary, _) = run_export(&dir, &out);
    assert!(summary.interrupted);
    assert_eq!(summary.skipped_log_lines, 1);
    assert_eq!(summary.chat_messages, 1);
    assert_eq!(decode_errors(&out), "", "the export decodes cleanly");
    let probe = ffprobe(&out);
    assert_eq!(stream(&probe, 0)["codec_name"], "vp8");
    assert_eq!(stream(&probe, 1)["codec_name"], "opus");
    let playable_ms = (playable_secs(&out) * 1000.0) as u64;
    // Flushed every second: about that is lost at most (slack for a busy machine).
    assert!(
        playable_ms + 2_500 >= written_ms,
        "plays {playable_ms} ms of {written_ms}"
    );
    assert!(summary.duration_ms + 2_500 >= written_ms && summary.video_frames > 0);
    // The recording itself is left as the crash left it.
    assert_eq!(Manifest::read(&dir).unwrap(), before);
}

/// A small finished recording (instructor camera and microphone, 3 s) to damage.
fn small_recording(dir: &Path) {
    let cam = read_frames(VP8_FIXTURE);
    let mic = read_frames(OPUS_FIXTURE);
    let (sink, handle) = spawn(WriterConfig::new(
        dir.into(),
        "rec_small".into(),
        Instant::now(),
        STARTED_AT,
    ))
    .unwrap();
    sink.event(
        0,
        json!({"type": "start", "started_at": STARTED_AT, "snapshot": {
            "roster": [{"id": "p_i", "name": "Ines", "role": "instructor"}], "presenter": null,
            "chat": []}}),
    );
    let mut all: Vec<(u64, Kind, Frame)> = looped(&cam, 90, 0, 33_333, 0)
        .into_iter()
        .map(|f| (1, Kind::Video, f))
        .chain(
            looped(&mic, 150, 0, 20_000, 0)
                .into_iter()
                .map(|f| (2, Kind::Audio, f)),
        )
        .collect();
    all.sort_by_key(|(_, _, f)| f.at_us);
    for (track, kind, frame) in all {
        assert!(sink.try_frame(key("p_i", track), kind, frame));
    }
    sink.stop(StopReason::Stopped);
    handle.join().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn segments_cut_short_and_left_open_export_up_to_the_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    small_recording(&dir);
    let mut m = Manifest::read(&dir).unwrap();
    for s in &mut m.segments {
        // Cut inside the file (its cues and the end of its last cluster gone), as a crash
        // between two flushes would leave it.
        let path = dir.join(&s.file);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len * 2 / 3).unwrap();
        s.open = true;
    }
    m.complete = false;
    m.write_atomic(&dir).unwrap();
    let out = tmp.path().join("cut.webm");
    let (summary, _) = run_export(&dir, &out);
    assert!(summary.interrupted);
    assert_eq!(decode_errors(&out), "");
    assert!(
        summary.video_frames > 30 && summary.video_frames < 90,
        "{summary:?}"
    );
    assert!(
        summary.duration_ms > 1_000 && summary.duration_ms < 3_000,
        "{summary:?}"
    );
}

#[test]
fn a_segment_that_is_garbage_is_left_out_and_the_rest_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    small_recording(&dir);
    let m = Manifest::read(&dir).unwrap();
    let video = m.segments.iter().find(|s| s.kind == Kind::Video).unwrap();
    std::fs::write(dir.join(&video.file), b"\x1a\x45\xdf\xa3 not really a webm").unwrap();
    let out = tmp.path().join("garbage.webm");
    let (summary, _) = run_export(&dir, &out);
    assert_eq!(summary.unreadable_segments, [video.n]);
    assert_eq!(summary.video_size, None);
    let probe = ffprobe(&out);
    assert_eq!(
        probe["streams"].as_array().unwrap().len(),
        1,
        "audio only: {probe}"
    );
    assert_eq!(stream(&probe, 0)["codec_name"], "opus");
    assert_eq!(decode_errors(&out), "");
}

#[test]
fn a_missing_manifest_or_log_is_an_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    small_recording(&dir);
    let out = tmp.path().join("x.webm");
    std::fs::remove_file(dir.join("events.jsonl")).unwrap();
    let err = export(&dir, &out, &mut |_| {}).unwrap_err();
    assert_eq!(err.code(), "io");
    std::fs::write(dir.join("manifest.json"), b"{\"version\": 1").unwrap();
    assert_eq!(
        export(&dir, &out, &mut |_| {}).unwrap_err().code(),
        "invalid_manifest"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "only the recording"
    );
    // A name the chat files would overwrite is refused.
    assert_eq!(
        export(&dir, &tmp.path().join("x.vtt"), &mut |_| {})
            .unwrap_err()
            .code(),
        "config"
    );
}

/// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn hostile_folders_give_errors_or_exports_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    small_recording(&clean);
    let files: Vec<PathBuf> = std::fs::read_dir(&clean)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut exported, mut refused, mut damaged) = (0, 0, 0);
    for case in 0..40 {
        let dir = tmp.path().join(format!("case-{case}"));
        copy_dir(&clean, &dir);
        // Damage one to three files: flip bytes, cut, or overwrite a stretch with noise.
        for _ in 0..=rng.below(3) {
            let file = dir.join(
                files[rng.below(files.len() as u64) as usize]
                    .file_name()
                    .unwrap(),
            );
            let mut bytes = std::fs::read(&file).unwrap();
            if bytes.is_empty() {
                continue;
            }
            match rng.below(3) {
                0 => {
                    for _ in 0..=rng.below(20) {
                        let at = rng.below(bytes.len() as u64) as usize;
                        bytes[at] ^= 1 << rng.below(8);
                    }
                }
                1 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
                _ => {
                    let at = rng.below(bytes.len() as u64) as usize;
                    let n = (rng.below(400) as usize).min(bytes.len() - at);
                    for b in &mut bytes[at..at + n] {
                        *b = rng.next() as u8;
                    }
                }
            }
            std::fs::write(&file, bytes).unwrap();
        }
        let out = tmp.path().join(format!("case-{case}.webm"));
        match export(&dir, &out, &mut |_| {}) {
            Ok(summary) => {
                assert!(out.exists());
                assert!(summary.duration_ms <= lectern_record::MAX_EXPORT_DURATION_MS);
                exported += 1;
                if !(summary.unreadable_segments.is_empty() && summary.damaged_segments.is_empty())
                {
                    damaged += 1;
                }
            }
            Err(e) => {
                assert!(!out.exists(), "case {case}: {e}");
                assert!(!e.code().is_empty());
                refused += 1;
            }
        }
    }
    eprintln!(
        "hostile folders: {exported} exported ({damaged} with damaged segments), {refused} refused"
    );
    assert!(exported > 0 && refused > 0 && damaged > 0);
}

#[test]
fn a_hole_in_a_voice_stays_a_hole_and_what_follows_keeps_its_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mic = read_frames(OPUS_FIXTURE);
    let (sink, handle) = spawn(WriterConfig::new(
        dir.clone(),
        "rec_hole".into(),
        Instant::now(),
        STARTED_AT,
    ))
    .unwrap();
    sink.event(
        0,
        json!({"type": "start", "started_at": STARTED_AT, "snapshot": {"roster": []}}),
    );
    // Three seconds of voice with 200 ms (ten packets) lost at 1 s, in one segment.
    let mut frames = looped(&mic, 150, 0, 20_000, 0);
    frames.drain(50..60);
    for (no, mut f) in frames.into_iter().enumerate() {
        f.frame_no = no as u64;
        assert!(sink.try_frame(key("p_i", 2), Kind::Audio, f));
    }
    sink.stop(StopReason::Stopped);
    let m = handle.join().unwrap();
    assert_eq!(m.segments.len(), 1, "one segment with a hole: {m:?}");
    let out = tmp.path().join("hole.webm");
    let (summary, _) = run_export(&dir, &out);
    assert_eq!(decode_errors(&out), "");
    assert_eq!(summary.video_size, None);
    let pcm = decoded_audio(&out);
    assert!(rms(&pcm, 0.1, 0.95) > 0.02);
    // The decoder conceals the hole's first 60 ms; the rest is silence...
    assert!(
        summary.concealed_ms > 0 && summary.concealed_ms <= 60,
        "{summary:?}"
    );
    assert!(rms(&pcm, 1.08, 1.17) < 1e-3, "{}", rms(&pcm, 1.08, 1.17));
    // ...and the voice comes back at 1.2 s, not earlier.
    assert!(rms(&pcm, 1.25, 2.9) > 0.02);
}
