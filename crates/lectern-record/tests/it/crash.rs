//! Faults for real: a writer process killed with SIGKILL, a writer on a filesystem that fills
//! up. The writer runs in a child process: this test binary, re-run on `child_writer`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lectern_record::{
    GapReason, Kind, Manifest, StopReason, TrackKey, WriterConfig, recover, spawn,
};

use crate::support::*;

const CHILD_DIR: &str = "LECTERN_RECORD_CHILD_DIR";
const CHILD_SPEED: &str = "LECTERN_RECORD_CHILD_SPEED";
const CHILD_SECS: &str = "LECTERN_RECORD_CHILD_SECS";
const CHILD_MIN_FREE: &str = "LECTERN_RECORD_CHILD_MIN_FREE";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The child: records a camera and a microphone (the fixtures, looped) into
/// `$LECTERN_RECORD_CHILD_DIR`, paced at `SPEED` times real time, printing how far it got.
#[test]
#[ignore = "the child process of the crash tests; runs only when they start it"]
fn child_writer() {
    let dir = std::env::var(CHILD_DIR).expect("run by the crash tests");
    let speed = env_u64(CHILD_SPEED, 1).max(1);
    let secs = env_u64(CHILD_SECS, 60);
    let video = read_frames(VP8_FIXTURE);
    let audio = read_frames(OPUS_FIXTURE);
    let t0 = Instant::now();
    let mut cfg = WriterConfig::new(dir.into(), "rec_crash".into(), t0, 1_765_000_000_000);
    cfg.min_free_bytes = env_u64(CHILD_MIN_FREE, 0);
    let (sink, handle) = spawn(cfg).expect("writer starts");
    sink.event(
        0,
        serde_json::json!({"type": "start", "started_at": 1_765_000_000_000u64}),
    );
    let (camera, mic) = (
        TrackKey {
            participant_id: "p_i".into(),
            track: 1,
        },
        TrackKey {
            participant_id: "p_i".into(),
            track: 2,
        },
    );
    let (mut vi, mut ai, mut reported) = (0u64, 0u64, 0u64);
    loop {
        let (next_v, next_a) = (vi * 33_333, ai * 20_000);
        let due_us = next_v.min(next_a);
        if due_us > secs * 1_000_000 || sink.is_stopped() {
            break;
        }
        // Media time runs `speed` times faster than the wall clock.
        let wall = t0 + Duration::from_micros(due_us / speed);
        std::thread::sleep(wall.saturating_duration_since(Instant::now()));
        let frame = |f: &MediaFrame, at_us: u64, no: u64| lectern_record::Frame {
            at_us,
            keyframe: f.keyframe,
            data: f.data.clone(),
            segment_start: no == 0,
            frame_no: no,
        };
        if next_v == due_us {
            sink.try_frame(
                camera.clone(),
                Kind::Video,
                frame(&video[(vi % video.len() as u64) as usize], due_us, vi),
            );
            vi += 1;
        } else {
            sink.try_frame(
                mic.clone(),
                Kind::Audio,
                frame(&audio[(ai % audio.len() as u64) as usize], due_us, ai),
            );
            ai += 1;
        }
        if due_us / 250_000 > reported {
            reported = due_us / 250_000;
            println!("CHILD written_ms={}", due_us / 1000);
        }
    }
    sink.stop(StopReason::Stopped);
    let manifest = handle.join().expect("writer ends without panicking");
    println!(
        "CHILD manifest={}",
        serde_json::to_string(&manifest).unwrap()
    );
}

/// Starts the child (optionally wrapped, e.g. in `unshare`); its stdout lines come on the channel.
pub(crate) fn start_child(
    wrap: Option<(&str, Vec<String>)>,
    dir: &Path,
    envs: &[(&str, String)],
) -> (std::process::Child, mpsc::Receiver<String>) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrap {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        None => Command::new(&exe),
    };
    cmd.env("CHILD_EXE", &exe).env(CHILD_DIR, dir).args([
        "--exact",
        "crash::child_writer",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn kill_9_loses_at_most_the_last_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec_crash");
    let (mut child, lines) = start_child(None, &dir, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut written_ms = 0;
    while written_ms < 5500 {
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
    assert!(
        !before.complete && before.segments.iter().all(|s| s.open),
        "{before:?}"
    );
    let m = recover(&dir).unwrap();
    assert!(m.interrupted && !m.complete);
    assert_eq!(m.segments.len(), 2);
    for s in &m.segments {
        assert!(!s.open);
        let file = dir.join(&s.file);
        let playable_ms = (playable_secs(&file) * 1000.0) as u64;
        let end_ms = s.offset_ms + playable_ms;
        // Flushed every second: about that is lost at most (slack for a busy machine).
        assert!(
            end_ms + 2500 >= written_ms,
            "{} plays to {end_ms} ms, {written_ms} ms were written",
            s.file
        );
        assert!(
            s.duration_ms.abs_diff(playable_ms) <= 100,
            "recovered {} ms, ffprobe {playable_ms} ms",
            s.duration_ms
        );
        assert_eq!(s.bytes, std::fs::metadata(&file).unwrap().len());
        assert!(s.frames > 0);
        assert_eq!(
            decode_errors(&file),
            "",
            "{} decodes up to the kill",
            s.file
        );
    }
    assert!(m.duration_ms + 2500 >= written_ms);
    // Recovering again changes nothing.
    assert_eq!(recover(&dir).unwrap(), m);
}

/// The child in its own mount namespace, writing to a tmpfs of `size`; the folder is copied
/// out to `out` when it ends. Needs root (as on the project's machines and CI).
fn child_on_small_disk(size: &str, out: &Path, envs: &[(&str, String)]) -> Manifest {
    let mnt = out.with_extension("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let script = format!(
        "mount -t tmpfs -o size={size} tmpfs \"$MNT\" && \"$CHILD_EXE\" \"$@\"; rc=$?; cp -a \"$MNT/rec\" \"$OUT\"; exit $rc"
    );
    let args = vec![
        "-m".into(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        script,
        "sh".into(),
    ];
    let mut envs = envs.to_vec();
    envs.push(("MNT", mnt.display().to_string()));
    envs.push(("OUT", out.display().to_string()));
    let (mut child, lines) = start_child(Some(("unshare", args)), &mnt.join("rec"), &envs);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut manifest = None;
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(json) = line.strip_prefix("CHILD manifest=") {
            manifest = Some(serde_json::from_str(json).unwrap());
        }
    }
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the child writer failed ({status}); these tests need root for `unshare -m` and `mount -t tmpfs`"
    );
    manifest.expect("the child printed its manifest")
}

#[test]
fn a_full_disk_fails_segments_and_the_writer_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 30 s of media (~1 MB) onto 200 KiB, at 5x real time: the disk fills within the first
    // seconds even on a busy machine that drops frames at the writer's queue.
    let m = child_on_small_disk(
        "200k",
        &out,
        &[(CHILD_SPEED, "5".into()), (CHILD_SECS, "30".into())],
    );
    assert!(!m.complete, "not everything could be written");
    assert!(
        m.gaps.iter().any(|g| g.reason == GapReason::WriteError),
        "{:?}",
        m.gaps
    );
    assert!(m.segments.iter().all(|s| !s.open));
    assert!(
        m.segments.iter().all(|s| s.frames > 0),
        "segments that never reached the disk are not listed: {:?}",
        m.segments
    );
    assert!(m.gaps.len() <= 4, "one merged gap per track: {:?}", m.gaps);
    // What reached the disk before it filled up plays.
    let first = &m.segments[0];
    let file = out.join(&first.file);
    assert!(first.duration_ms > 0);
    assert!(
        playable_secs(&file) * 1000.0 + 100.0 >= first.duration_ms as f64,
        "{first:?}"
    );
}

#[test]
fn the_free_space_guard_stops_before_the_disk_is_full() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let envs = [
        (CHILD_SPEED, "4".into()),
        (CHILD_SECS, "120".into()),
        (CHILD_MIN_FREE, (1u64 << 20).to_string()),
    ];
    let m = child_on_small_disk("2m", &out, &envs);
    assert_eq!(m.stop_reason, Some(StopReason::DiskFull));
    assert!(m.complete, "stopped cleanly: {m:?}");
    assert!(m.gaps.is_empty(), "{:?}", m.gaps);
    assert!(m.duration_ms < 120_000);
    assert_eq!(Manifest::read(&out).unwrap(), m);
    for s in &m.segments {
        let file = out.join(&s.file);
        let probe = ffprobe(&file);
        let secs: f64 = probe["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (secs * 1000.0 - s.duration_ms as f64).abs() < 100.0,
            "{secs} s vs {s:?}"
        );
        assert_eq!(decode_errors(&file), "");
    }
    assert_eq!(events_lines(&out).last().unwrap()["reason"], "disk_full");
}
