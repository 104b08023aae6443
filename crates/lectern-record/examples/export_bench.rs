//! Export speed for a generated class (issue 12, point 8; target: at least 50 times real time).
//!
//! Writes a class recording with the crate's own writer into a temp folder: the instructor's
//! camera (VP8 320x240, 30 fps) and microphone (Opus mono) for the whole class, a student's
//! camera (VP8 480x270) and stereo microphone for ten minutes in the middle while they hold
//! the stage, and about 300 chat lines (some private, some deleted): the test fixtures'
//! frames looped with increasing times. Then exports it, `--runs` times, and prints per run:
//! the real-time factor (wall clock; on a busy machine also per CPU second: the export is
//! single-threaded), the CPU seconds, the peak RSS of the export alone, the output size.
//!
//! `cargo run --release -p lectern-record --example export_bench -- [--minutes 60] [--runs 3]
//! [--complexity 5] [--bitrate 48000] [--keep DIR]` (the Opus encoder's settings; a folder to
//! keep the export in)

use std::path::Path;
use std::time::{Duration, Instant};

use lectern_record::{
    ExportOptions, ExportSummary, Frame, Kind, StopReason, TrackKey, WriterConfig, export_with,
    spawn,
};
use matroska_demuxer::{Frame as MkvFrame, MatroskaFile};
use serde_json::json;

const STARTED_AT: u64 = 1_765_000_000_000;

/// A fixture's frames: (keyframe, bytes).
fn fixture(name: &str) -> Vec<(bool, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut mkv = MatroskaFile::open(std::fs::File::open(path).expect("fixture")).expect("webm");
    let mut f = MkvFrame::default();
    let mut out = Vec::new();
    while mkv.next_frame(&mut f).expect("frame") {
        out.push((f.data.first().is_some_and(|b| b & 1 == 0), f.data.clone()));
    }
    out
}

/// CPU time of the whole process (utime + stime, 10 ms ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (fields[11] + fields[12]) as f64 / 100.0
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("procfs")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One track's frames, `period_us` apart from `from_us` to `to_us`, the fixture looped.
struct Track {
    key: TrackKey,
    kind: Kind,
    frames: Vec<(bool, Vec<u8>)>,
    period_us: u64,
    from_us: u64,
    to_us: u64,
    next: u64,
}

impl Track {
    fn due_us(&self) -> Option<u64> {
        let at = self.from_us + self.next * self.period_us;
        (at < self.to_us).then_some(at)
    }

    fn take(&mut self) -> Frame {
        let at_us = self.from_us + self.next * self.period_us;
        let (keyframe, data) = &self.frames[(self.next % self.frames.len() as u64) as usize];
        let frame = Frame {
            at_us,
            keyframe: *keyframe || self.kind == Kind::Audio,
            data: data.clone(),
            segment_start: self.next == 0,
            frame_no: self.next,
        };
        self.next += 1;
        frame
    }
}

fn generate(dir: &Path, minutes: u64) {
    let min = 60_000_000u64;
    let end = minutes * min;
    // The student presents in the middle ten minutes (or the middle sixth of a short class).
    let (p_from, p_to) = if minutes >= 30 {
        (end / 2 - 5 * min, end / 2 + 5 * min)
    } else {
        (end * 5 / 12, end * 7 / 12)
    };
    let track = |p: &str, n: u64, kind, name: &str, period_us, from_us, to_us| Track {
        key: TrackKey {
            participant_id: p.into(),
            track: n,
        },
        kind,
        frames: fixture(name),
        period_us,
        from_us,
        to_us,
        next: 0,
    };
    let mut tracks = [
        track(
            "p_i",
            1,
            Kind::Video,
            "vp8-320x240-30fps-3s.webm",
            33_333,
            0,
            end,
        ),
        track(
            "p_i",
            2,
            Kind::Audio,
            "opus-48k-mono-3s.webm",
            20_000,
            0,
            end,
        ),
        track(
            "p_s",
            3,
            Kind::Video,
            "vp8-480x270-30fps-2s.webm",
            33_333,
            p_from - 2_000_000,
            p_to,
        ),
        track(
            "p_s",
            4,
            Kind::Audio,
            "opus-48k-stereo-2s.webm",
            20_000,
            p_from,
            p_to,
        ),
    ];
    let mut events = vec![
        (
            p_from / 1000 + 300,
            json!({"type": "event", "seq": 5, "event": {"kind": "stage_granted", "participant_id": "p_s", "by": "p_i"}}),
        ),
        (
            p_to / 1000 - 600,
            json!({"type": "event", "seq": 6, "event": {"kind": "stage_revoked", "participant_id": "p_s", "by": "p_i"}}),
        ),
    ];
    let lines = 300u64;
    for i in 0..lines {
        let t_ms = (i + 1) * (end / 1000) / (lines + 1);
        let seq = 100 + 2 * i;
        let to = if i % 10 == 3 {
            json!({"kind": "staff"})
        } else {
            json!({"kind": "everyone"})
        };
        let (from, name) = if i % 3 == 0 {
            ("p_i", "Ines")
        } else {
            ("p_s", "Ada")
        };
        events.push((t_ms, json!({"type": "event", "seq": seq, "event": {"kind": "chat", "message": {
            "seq": seq, "from": from, "from_name": name, "from_role": "student", "to": to,
            "text": format!("message {i} about the <topic> & more"), "sent_at": STARTED_AT + t_ms}}})));
        if i % 25 == 7 {
            events.push((t_ms + 2_000, json!({"type": "event", "seq": seq + 1, "event": {"kind": "chat_deleted", "seq": seq, "by": "p_i"}})));
        }
    }
    events.sort_by_key(|(t, _)| *t);
    let mut events = events.into_iter().peekable();

    let (sink, handle) = spawn(WriterConfig::new(
        dir.into(),
        "rec_bench".into(),
        Instant::now(),
        STARTED_AT,
    ))
    .expect("writer starts");
    sink.event(
        0,
        json!({"type": "start", "started_at": STARTED_AT, "snapshot": {
            "roster": [{"id": "p_i", "name": "Ines", "role": "instructor"},
                       {"id": "p_s", "name": "Ada", "role": "student"}],
            "presenter": null, "chat": []}}),
    );
    while let Some(i) = (0..tracks.len())
        .filter(|&i| tracks[i].due_us().is_some())
        .min_by_key(|&i| tracks[i].due_us())
    {
        let frame = tracks[i].take();
        while let Some((t, e)) = events.next_if(|(t, _)| t * 1000 <= frame.at_us) {
            sink.event(t, e);
        }
        while !sink.try_frame(tracks[i].key.clone(), tracks[i].kind, frame.clone()) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for (t, e) in events {
        sink.event(t, e);
    }
    sink.stop(StopReason::ClassEnded);
    let manifest = handle.join().expect("writer ends");
    let bytes: u64 = manifest.segments.iter().map(|s| s.bytes).sum();
    println!(
        "recording: {} min, {} segments, {:.1} MB, gaps {}",
        manifest.duration_ms / 60_000,
        manifest.segments.len(),
        bytes as f64 / 1e6,
        manifest.gaps.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (minutes, runs) = (arg("--minutes", 60), arg("--runs", 3).max(1));
    let defaults = ExportOptions::default();
    let options = ExportOptions {
        opus_complexity: arg("--complexity", u64::from(defaults.opus_complexity)).min(10) as u8,
        audio_bitrate: arg("--bitrate", u64::from(defaults.audio_bitrate)) as u32,
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("rec_bench");
    let started = Instant::now();
    generate(&dir, minutes);
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());

    let mut factors = Vec::new();
    let mut last: Option<ExportSummary> = None;
    for run in 1..=runs {
        let out = tmp.path().join(format!("export-{run}.webm"));
        // Reset the peak RSS (Linux: "5" to clear_refs), so it is the export's alone.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = status_kib("VmRSS:");
        let (cpu0, t0) = (cpu_secs(), Instant::now());
        let mut reports = 0u64;
        let summary = export_with(&dir, &out, &options, &mut |_| reports += 1).expect("export");
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu0;
        let factor = summary.duration_ms as f64 / 1000.0 / wall;
        factors.push(factor);
        println!(
            "run {run}: {:.1}x real time ({wall:.1} s wall, {cpu:.1} s CPU: {:.0}x real time per CPU second), \
             peak RSS {} MiB (before {} MiB), output {:.1} MB, {} progress reports",
            factor,
            summary.duration_ms as f64 / 1000.0 / cpu.max(0.01),
            status_kib("VmHWM:") / 1024,
            rss_before / 1024,
            summary.bytes as f64 / 1e6,
            reports,
        );
        if let Some(keep) = args
            .iter()
            .position(|a| a == "--keep")
            .and_then(|i| args.get(i + 1))
        {
            std::fs::create_dir_all(keep).expect("--keep folder");
            for file in [&summary.out, &summary.vtt, &summary.chat_json] {
                let name = file.file_name().expect("a file name");
                std::fs::copy(file, Path::new(keep).join(name)).expect("copied");
            }
        }
        last = Some(summary);
    }
    factors.sort_by(f64::total_cmp);
    println!("median: {:.1}x real time", factors[factors.len() / 2]);
    if let Some(s) = last {
        println!(
            "export: {} ms, video {:?} {} frames in {} pieces (longest switch wait {} ms), {} voices, \
             {} audio packets ({:.1} kbit/s overall), {} chat messages",
            s.duration_ms,
            s.video_size,
            s.video_frames,
            s.video_pieces,
            s.max_switch_wait_ms,
            s.voices,
            s.audio_packets,
            s.bytes as f64 * 8.0 / s.duration_ms as f64,
            s.chat_messages,
        );
    }
}
