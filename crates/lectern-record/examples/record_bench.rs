//! Cost figures of the recorder, printed (no assertions):
//!
//! - track recorder: CPU per RTP packet (VP8 and Opus, in order, from the test fixtures);
//! - writer: CPU per frame (the whole process's CPU time over a run, producer included);
//! - memory per open track: RSS with N and 2N tracks open, fed about real time.
//!
//! `cargo run --release -p lectern-record --example record_bench`

use std::path::Path;
use std::time::{Duration, Instant};

use lectern_record::{
    Codec, Frame, Kind, RecPacket, StopReason, TrackKey, TrackRecorder, WriterConfig, spawn,
};
use matroska_demuxer::{Frame as MkvFrame, MatroskaFile};

fn fixture(name: &str) -> Vec<(u64, bool, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut mkv = MatroskaFile::open(std::fs::File::open(path).expect("fixture")).expect("webm");
    let mut f = MkvFrame::default();
    let mut out = Vec::new();
    while mkv.next_frame(&mut f).expect("frame") {
        out.push((
            f.timestamp * 1000,
            f.data.first().is_some_and(|b| b & 1 == 0),
            f.data.clone(),
        ));
    }
    out
}

/// CPU time of the whole process, threads that ended included (utime + stime, 10 ms ticks).
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(11) + field(12)) * 10_000_000
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn packets(
    codec: Codec,
    frames: &[(u64, bool, Vec<u8>)],
    loops: usize,
) -> Vec<(u64, u32, bool, Vec<u8>, u64)> {
    let (rate, period) = match codec {
        Codec::Vp8 => (90u64, 33_333u64),
        Codec::Opus => (48, 20_000),
    };
    let mut out = Vec::new();
    let mut seq = 0;
    for i in 0..frames.len() * loops {
        let data = &frames[i % frames.len()].2;
        let at_us = i as u64 * period;
        let rtp = (at_us * rate / 1000) as u32;
        let chunks: Vec<&[u8]> = match codec {
            Codec::Vp8 => data.chunks(1100).collect(),
            Codec::Opus => vec![&data[..]],
        };
        for (j, c) in chunks.iter().enumerate() {
            let mut payload = match codec {
                Codec::Vp8 => vec![if j == 0 { 0x10 } else { 0 }],
                Codec::Opus => vec![],
            };
            payload.extend_from_slice(c);
            out.push((seq, rtp, j + 1 == chunks.len(), payload, at_us));
            seq += 1;
        }
    }
    out
}

fn bench_recorder(codec: Codec, frames: &[(u64, bool, Vec<u8>)]) {
    let pkts = packets(codec, frames, 40);
    let rate = if codec == Codec::Vp8 { 90_000 } else { 48_000 };
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut rec = TrackRecorder::new(codec, rate, t0);
        let mut out = 0;
        let start = Instant::now();
        for (seq, rtp_time, marker, payload, at_us) in &pkts {
            let now = t0 + Duration::from_micros(*at_us);
            rec.push(
                now,
                RecPacket {
                    arrived: now,
                    seq: *seq,
                    rtp_time: *rtp_time,
                    marker: *marker,
                    run: 1,
                    keyframe_start: None,
                    payload,
                },
            );
            while let Some(f) = rec.poll_frame() {
                out += f.data.len();
            }
        }
        std::hint::black_box(out);
        best = best.min(start.elapsed().as_nanos() as f64 / pkts.len() as f64);
    }
    println!(
        "track recorder {codec:?}: {best:.0} ns per packet ({} packets, one thread busy, best of 5)",
        pkts.len()
    );
}

fn frames_for(kind: Kind, fixture: &[(u64, bool, Vec<u8>)], n: usize, from: usize) -> Vec<Frame> {
    let period = if kind == Kind::Video { 33_333 } else { 20_000 };
    (from..from + n)
        .map(|i| {
            let (_, keyframe, data) = &fixture[i % fixture.len()];
            Frame {
                at_us: i as u64 * period,
                keyframe: *keyframe,
                data: data.clone(),
                segment_start: i == 0,
                frame_no: i as u64,
            }
        })
        .collect()
}

fn bench_writer(video: &[(u64, bool, Vec<u8>)], audio: &[(u64, bool, Vec<u8>)]) {
    for (kind, fixture, tracks, per_track) in [
        (Kind::Video, video, 20, 9000),
        (Kind::Audio, audio, 20, 15000),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut all = Vec::new();
        for t in 0..tracks {
            let key = TrackKey {
                participant_id: format!("p_{t}"),
                track: t,
            };
            all.extend(
                frames_for(kind, fixture, per_track, 0)
                    .into_iter()
                    .map(|f| (key.clone(), f)),
            );
        }
        all.sort_by_key(|(_, f)| f.at_us);
        let bytes: usize = all.iter().map(|(_, f)| f.data.len()).sum();
        let n = all.len();
        let mut cfg = WriterConfig::new(dir.path().into(), "bench".into(), Instant::now(), 0);
        cfg.queue_frames = n + 1;
        let cpu = cpu_ns();
        let wall = Instant::now();
        let (sink, handle) = spawn(cfg).expect("writer");
        for (key, f) in all {
            assert!(sink.try_frame(key, kind, f));
        }
        sink.stop(StopReason::Stopped);
        let m = handle.join().expect("join");
        let cpu_us = (cpu_ns() - cpu) as f64 / 1000.0;
        println!(
            "writer {kind:?}: {:.1} us CPU per frame ({n} frames, {:.0} bytes/frame, {} segments, {:.0} MB/s written, wall {:?})",
            cpu_us / n as f64,
            bytes as f64 / n as f64,
            m.segments.len(),
            bytes as f64 / wall.elapsed().as_secs_f64() / 1e6,
            wall.elapsed()
        );
    }
}

/// RSS with `n`, then `2n` open tracks of `kind` in one recording, fed in real time.
fn rss_slope(kind: Kind, n: u64, fixture: &[(u64, bool, Vec<u8>)]) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tmp");
    let t0 = Instant::now();
    let mut cfg = WriterConfig::new(dir.path().into(), "mem".into(), t0, 0);
    cfg.queue_frames = 1 << 16;
    let (sink, handle) = spawn(cfg).expect("writer");
    let per_second = if kind == Kind::Video { 30 } else { 50 };
    let mut rss = Vec::new();
    for tracks in [n, 2 * n] {
        // Three seconds, a tenth of a second at a time (as frames come in a class).
        for _ in 0..30 {
            let tenth = (t0.elapsed().as_millis() / 100) as usize;
            for t in 0..tracks {
                let key = TrackKey {
                    participant_id: format!("p_{t}"),
                    track: t,
                };
                for f in frames_for(kind, fixture, per_second / 10, tenth * per_second / 10) {
                    sink.try_frame(key.clone(), kind, f);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        rss.push(rss_kib());
    }
    assert_eq!(sink.dropped_frames(), 0);
    sink.stop(StopReason::Stopped);
    let m = handle.join().expect("join");
    assert_eq!(
        m.segments.len() as u64,
        2 * n,
        "every track open to the end"
    );
    (rss[0], rss[1])
}

fn main() {
    let video = fixture("vp8-320x240-30fps-3s.webm");
    let audio = fixture("opus-48k-mono-3s.webm");
    // Each memory figure in a fresh process: freed memory of an earlier run would hide growth.
    let n = 50;
    if let Some(kind) = std::env::args().nth(1) {
        let (kind, fixture) = if kind == "video" {
            (Kind::Video, &video)
        } else {
            (Kind::Audio, &audio)
        };
        let (r1, r2) = rss_slope(kind, n, fixture);
        println!(
            "memory {kind:?}: RSS {r1} KiB with {n} open tracks, {r2} KiB with {}: {:.0} KiB per open track",
            2 * n,
            (r2 as f64 - r1 as f64) / n as f64
        );
        return;
    }
    bench_recorder(Codec::Vp8, &video);
    bench_recorder(Codec::Opus, &audio);
    bench_writer(&video, &audio);
    for kind in ["video", "audio"] {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg(kind)
            .output()
            .expect("child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
