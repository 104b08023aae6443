//! Recording through the sans-IO SFU: a recorded room's published tracks come out of
//! `poll_recorded` as whole frames, once per received packet (not per subscriber), after loss
//! repair, from a keyframe, with the widest simulcast layer; nothing of unrecorded rooms or of
//! tracks the publisher may not publish.

use std::time::Duration;

use lectern_sfu::{RecordedFrame, RoomId};
use str0m::media::MediaKind;

use crate::support::{self, Net};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

fn drain(net: &mut Net) -> Vec<RecordedFrame> {
    std::iter::from_fn(|| net.sfu.poll_recorded()).collect()
}

fn of(frames: &[RecordedFrame], who: &str, kind: lectern_sfu::MediaKind) -> Vec<RecordedFrame> {
    frames
        .iter()
        .filter(|f| f.participant.as_str() == who && f.kind == kind)
        .cloned()
        .collect()
}

fn numbers(frames: &[RecordedFrame], kind: MediaKind) -> Vec<u32> {
    frames
        .iter()
        .map(|f| support::frame_number(kind, &f.frame.data).expect("a whole test frame"))
        .collect()
}

fn join_publishing(net: &mut Net, room: &str, id: &str, addr: &str) {
    net.join(room, id, addr, AV);
    net.allow(id, true, true);
    net.client_mut(id).sending = true;
}

#[test]
fn a_recorded_room_yields_each_published_frame_once_whole_and_in_order() {
    let mut net = Net::new();
    join_publishing(&mut net, "r1", "teacher", "10.0.1.2:4000");
    for (i, id) in ["s1", "s2", "s3"].iter().enumerate() {
        net.join("r1", id, &format!("10.0.1.{}:4000", 10 + i), &[]);
    }
    // A student who publishes but may not: never recorded.
    net.join("r1", "quiet", "10.0.1.20:4000", AV);
    net.client_mut("quiet").sending = true;
    // Another room on the same SFU is not recorded.
    join_publishing(&mut net, "r2", "other", "10.0.2.2:4000");
    net.run_for(SECOND);
    assert!(
        drain(&mut net).is_empty(),
        "nothing before recording starts"
    );

    let started = net.now;
    net.sfu.start_recording(RoomId::new("r1"), started);
    net.run_for(2 * SECOND);
    let frames = drain(&mut net);
    assert!(frames.iter().all(|f| f.room.as_str() == "r1"));
    assert!(of(&frames, "quiet", lectern_sfu::MediaKind::Audio).is_empty());
    let video = of(&frames, "teacher", lectern_sfu::MediaKind::Video);
    let audio = of(&frames, "teacher", lectern_sfu::MediaKind::Audio);
    // Three subscribers, but each frame once: ~30 video and ~50 audio frames a second.
    assert!(
        (50..=70).contains(&video.len()),
        "{} video frames",
        video.len()
    );
    assert!(
        (90..=110).contains(&audio.len()),
        "{} audio frames",
        audio.len()
    );
    // Video starts at a keyframe (asked for when recording started) and is whole: each
    // frame is exactly one frame the publisher sent, depacketized, in order, none missing.
    assert!(
        video[0].frame.keyframe,
        "first recorded video frame is a keyframe"
    );
    let v = numbers(&video, MediaKind::Video);
    assert!(v.windows(2).all(|w| w[1] == w[0] + 1), "{v:?}");
    let a = numbers(&audio, MediaKind::Audio);
    assert!(a.windows(2).all(|w| w[1] == w[0] + 1), "{a:?}");
    for f in &video {
        assert_eq!(f.frame.data.len(), 2500, "the whole picture");
    }
    // Times are on the recording's clock and rise.
    assert!(
        video
            .windows(2)
            .all(|w| w[0].frame.at_us < w[1].frame.at_us)
    );
    assert!(video.last().unwrap().frame.at_us <= 2_100_000);

    // Stopping releases what is held; then nothing more.
    net.sfu.stop_recording(net.now, &RoomId::new("r1"));
    drain(&mut net);
    net.run_for(SECOND);
    assert!(drain(&mut net).is_empty());
    assert!(!net.sfu.is_recording(&RoomId::new("r1")));
}

#[test]
fn loss_on_the_publishers_leg_is_repaired_before_recording() {
    let mut net = Net::new();
    join_publishing(&mut net, "r1", "teacher", "10.0.1.2:4000");
    net.join("r1", "s1", "10.0.1.10:4000", &[]);
    net.run_for(SECOND);
    net.sfu.start_recording(RoomId::new("r1"), net.now);
    // Every 10th media datagram from the teacher to the SFU is lost; str0m NACKs them.
    net.lossy_link = Some((net.sfu_addr, 10));
    net.run_for(3 * SECOND);
    net.lossy_link = None;
    net.run_for(SECOND);
    assert!(net.dropped >= 10, "{} dropped", net.dropped);
    let frames = drain(&mut net);
    let video = of(&frames, "teacher", lectern_sfu::MediaKind::Video);
    let v = numbers(&video, MediaKind::Video);
    assert!(v.len() > 100, "{} frames", v.len());
    assert!(
        v.windows(2).all(|w| w[1] == w[0] + 1),
        "every picture recorded after repair: {v:?}"
    );
    assert!(frames.iter().all(|f| f.gap.is_none()));
}

#[test]
fn a_paused_track_resumes_from_a_keyframe_in_a_new_segment() {
    let mut net = Net::new();
    join_publishing(&mut net, "r1", "student", "10.0.1.2:4000");
    net.run_for(SECOND);
    net.sfu.start_recording(RoomId::new("r1"), net.now);
    net.run_for(SECOND);
    // The stage is taken back (video no longer allowed) for four seconds, then handed back.
    net.allow("student", true, false);
    net.run_for(4 * SECOND);
    let before = drain(&mut net);
    net.allow("student", true, true);
    net.run_for(SECOND);
    let after = of(&drain(&mut net), "student", lectern_sfu::MediaKind::Video);
    assert!(!of(&before, "student", lectern_sfu::MediaKind::Video).is_empty());
    let first = after.first().expect("video again");
    assert!(first.frame.keyframe, "resumes at a keyframe");
    assert!(
        first.frame.segment_start,
        "after 3 s of silence, a new segment"
    );
    assert!(
        after[1..].iter().all(|f| !f.frame.segment_start),
        "one new segment"
    );
}

#[test]
fn simulcast_records_the_widest_layer() {
    const SMALL: (u16, u16) = (320, 180);
    const LARGE: (u16, u16) = (640, 360);
    let mut net = Net::new();
    net.join_simulcast(
        "r1",
        "teacher",
        "10.0.1.2:4000",
        &[("l", SMALL), ("h", LARGE)],
    );
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_for(SECOND);
    net.sfu.start_recording(RoomId::new("r1"), net.now);
    net.run_for(2 * SECOND);
    let video = of(&drain(&mut net), "teacher", lectern_sfu::MediaKind::Video);
    assert!(video.len() > 40, "{} frames", video.len());
    // One layer only (not both: one frame per picture time), the large one.
    let v = numbers(&video, MediaKind::Video);
    assert!(v.windows(2).all(|w| w[1] == w[0] + 1), "{v:?}");
    assert!(
        video
            .iter()
            .all(|f| support::frame_size(&f.frame.data) == LARGE),
        "the widest layer"
    );
}

#[test]
fn a_stage_change_asks_every_recorded_camera_for_a_keyframe() {
    let mut net = Net::new();
    join_publishing(&mut net, "r1", "teacher", "10.0.1.2:4000");
    net.run_for(SECOND);
    net.sfu.start_recording(RoomId::new("r1"), net.now);
    net.run_for(2 * SECOND);
    let keyframes = |frames: &[RecordedFrame]| {
        of(frames, "teacher", lectern_sfu::MediaKind::Video)
            .iter()
            .filter(|f| f.frame.keyframe)
            .count()
    };
    // The recording's start asked for one keyframe; the publisher sends no others by itself.
    assert_eq!(keyframes(&drain(&mut net)), 1);
    net.run_for(SECOND);
    assert_eq!(keyframes(&drain(&mut net)), 0, "no keyframe unless asked");
    net.sfu
        .request_recording_keyframes(net.now, &RoomId::new("r1"));
    net.run_for(SECOND);
    assert_eq!(
        keyframes(&drain(&mut net)),
        1,
        "one keyframe for the stage change"
    );
}

#[test]
fn recording_follows_the_widest_layer_back_to_a_layer_it_recorded_before() {
    const SMALL: (u16, u16) = (320, 180);
    const LARGE: (u16, u16) = (640, 360);
    let mut net = Net::new();
    net.join_simulcast(
        "r1",
        "teacher",
        "10.0.1.2:4000",
        &[("l", SMALL), ("h", LARGE)],
    );
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_for(SECOND);
    let started = net.now;
    net.sfu.start_recording(net.peer("teacher").room, started);
    // The large layer, paused by the browser for a while (as for lack of CPU), then sent again:
    // the recording goes to the small layer and back to the large one.
    net.run_for(2 * SECOND);
    net.client_mut("teacher").simulcast = vec![("l", SMALL)];
    net.run_for(2 * SECOND);
    net.client_mut("teacher").simulcast = vec![("l", SMALL), ("h", LARGE)];
    let resumed = net.now;
    net.run_for(2 * SECOND);

    let mut sizes: Vec<(u16, u16)> = Vec::new();
    let mut last_second = Vec::new();
    while let Some(f) = net.sfu.poll_recorded() {
        if f.kind != lectern_sfu::MediaKind::Video {
            continue;
        }
        let size = support::frame_size(&f.frame.data);
        if sizes.last() != Some(&size) {
            sizes.push(size);
        }
        if f.frame.at_us >= (resumed - started + SECOND).as_micros() as u64 {
            last_second.push(size);
        }
    }
    assert_eq!(
        sizes,
        vec![LARGE, SMALL, LARGE],
        "the recorded layers, in order"
    );
    assert!(
        last_second.len() >= 20 && last_second.iter().all(|&s| s == LARGE),
        "the large layer recorded again: {} frames in the last second",
        last_second.len()
    );
}
