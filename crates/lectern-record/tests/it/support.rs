//! Test support: real encoded media from the fixtures, an RTP packetizer, ffprobe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lectern_record::{Codec, Frame, RecPacket, TrackRecorder};
use matroska_demuxer::{Frame as MkvFrame, MatroskaFile};

pub const VP8_FIXTURE: &str = "vp8-320x240-30fps-3s.webm";
pub const OPUS_FIXTURE: &str = "opus-48k-mono-3s.webm";
/// A bigger picture (keyframes every 15 frames) and a stereo voice, for the export tests.
pub const VP8_BIG_FIXTURE: &str = "vp8-480x270-30fps-2s.webm";
pub const OPUS_STEREO_FIXTURE: &str = "opus-48k-stereo-2s.webm";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One encoded frame of a fixture: its time in the file and its bytes.
#[derive(Debug, Clone)]
pub struct MediaFrame {
    pub ts_us: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Every frame of a (single-track) fixture.
pub fn read_frames(name: &str) -> Vec<MediaFrame> {
    let file = std::fs::File::open(fixture(name)).expect("fixture present");
    let mut mkv = MatroskaFile::open(std::io::BufReader::new(file)).expect("fixture is WebM");
    let scale = mkv.info().timestamp_scale().get();
    let mut frame = MkvFrame::default();
    let mut out = Vec::new();
    while mkv.next_frame(&mut frame).expect("fixture reads") {
        let keyframe =
            frame.is_keyframe.unwrap_or(false) || frame.data.first().is_some_and(|b| b & 1 == 0);
        out.push(MediaFrame {
            ts_us: frame.timestamp * scale / 1000,
            keyframe,
            data: frame.data.clone(),
        });
    }
    assert!(!out.is_empty(), "fixture {name} has frames");
    out
}

/// Frames for the writer directly: `n` frames of a fixture, looped, the `i`th at
/// `offset_us + i * period_us`.
pub fn looped(
    frames: &[MediaFrame],
    n: usize,
    offset_us: u64,
    period_us: u64,
    first_no: u64,
) -> Vec<Frame> {
    (0..n)
        .map(|i| {
            let f = &frames[i % frames.len()];
            Frame {
                at_us: offset_us + i as u64 * period_us,
                keyframe: f.keyframe,
                data: f.data.clone(),
                segment_start: i == 0,
                frame_no: first_no + i as u64,
            }
        })
        .collect()
}

/// An RTP packet as a publisher would send it.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub seq: u64,
    pub rtp_time: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Packetizes VP8 frames (RFC 7741, extended descriptor with a 15-bit PictureID) and Opus
/// packets into RTP with consecutive sequence numbers.
pub fn packetize(
    codec: Codec,
    frames: &[MediaFrame],
    first_seq: u64,
    base_rtp: u32,
    mtu: usize,
) -> Vec<RtpPacket> {
    let rate = match codec {
        Codec::Vp8 => 90_000u64,
        Codec::Opus => 48_000,
    };
    let mut seq = first_seq;
    let mut out = Vec::new();
    for (picture_id, f) in frames.iter().enumerate() {
        let rtp_time = base_rtp.wrapping_add((f.ts_us * rate / 1_000_000) as u32);
        match codec {
            Codec::Opus => {
                out.push(RtpPacket {
                    seq,
                    rtp_time,
                    marker: false,
                    payload: f.data.clone(),
                });
                seq += 1;
            }
            Codec::Vp8 => {
                let chunks: Vec<&[u8]> = f.data.chunks(mtu).collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    let pid = picture_id as u16 & 0x7fff;
                    let mut payload = vec![
                        0x80 | if i == 0 { 0x10 } else { 0 },
                        0x80,
                        0x80 | (pid >> 8) as u8,
                        pid as u8,
                    ];
                    payload.extend_from_slice(chunk);
                    out.push(RtpPacket {
                        seq,
                        rtp_time,
                        marker: i + 1 == chunks.len(),
                        payload,
                    });
                    seq += 1;
                }
            }
        }
    }
    out
}

/// Feeds packets to a recorder, each arriving at `t0 + arrival(packet)`; returns the frames
/// (with any timeouts handled on the way and at the end).
pub fn record(
    rec: &mut TrackRecorder,
    t0: Instant,
    packets: &[RtpPacket],
    arrival: impl Fn(&RtpPacket) -> Duration,
) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut last = t0;
    for p in packets {
        let at = t0 + arrival(p);
        last = last.max(at);
        if let Some(deadline) = rec.poll_timeout()
            && deadline <= last
        {
            rec.handle_timeout(deadline);
        }
        rec.push(
            last,
            RecPacket {
                arrived: at,
                seq: p.seq,
                rtp_time: p.rtp_time,
                marker: p.marker,
                run: 1,
                keyframe_start: None,
                payload: &p.payload,
            },
        );
        frames.extend(std::iter::from_fn(|| rec.poll_frame()));
    }
    rec.handle_timeout(last + Duration::from_secs(1));
    frames.extend(std::iter::from_fn(|| rec.poll_frame()));
    frames
}

fn tool(name: &str) -> Command {
    let probe = Command::new(name).arg("-version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "`{name}` is required by these tests and was not found: install Debian's ffmpeg (apt-get install -y ffmpeg)"
    );
    Command::new(name)
}

/// `ffprobe -show_format -show_streams` as JSON.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Packets ffprobe reads from the file: (pts seconds, duration seconds).
pub fn ffprobe_packets(path: &Path) -> Vec<(f64, f64)> {
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_entries",
            "packet=pts_time,duration_time",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let num = |p: &serde_json::Value, k: &str| {
        p[k].as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    v["packets"].as_array().map_or(Vec::new(), |ps| {
        ps.iter()
            .map(|p| (num(p, "pts_time"), num(p, "duration_time")))
            .collect()
    })
}

/// The end of the last packet ffprobe finds, in seconds: the playable duration.
pub fn playable_secs(path: &Path) -> f64 {
    ffprobe_packets(path)
        .iter()
        .map(|(pts, dur)| pts + dur)
        .fold(0.0, f64::max)
}

/// Decodes the whole file with ffmpeg; the errors it printed (empty when it decodes cleanly).
pub fn decode_errors(path: &Path) -> String {
    let out = tool("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str(&format!("\nffmpeg exited with {}", out.status));
    }
    errors
}

/// Waits until `cond` holds, polling, or panics with `what` at the deadline.
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stream(probe: &serde_json::Value, i: usize) -> &serde_json::Value {
    &probe["streams"][i]
}

pub fn events_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .expect("events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}
