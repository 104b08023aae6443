//! Students joining a lecture that is under way: every one of them gets the video, however
//! long its connection takes and wherever the camera's sequence numbers are.
//!
//! A receiver's SRTP rollover counter (ROC) starts at 0 and is never signalled: it is guessed
//! from the first packet it decrypts (str0m, webrtc-rs and libsrtp alike). A stream whose first
//! packet to arrive is numbered 65,536 or more can never be decrypted by it: every packet fails
//! authentication, and the student gets the audio and never any video.

use std::time::Duration;

use str0m::media::MediaKind;

use crate::support::Net;

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

/// A teacher publishing audio and a camera whose RTP sequence numbers are `before_wrap` packets
/// (frames) from wrapping.
fn lecture_near_a_wrap(before_wrap: u64) -> Net {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", AV);
    net.client_mut("teacher").rtp_video_seq = Some(65_536 - before_wrap);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net
}

/// A student whose connection takes 6 s: the video the SFU keeps for it meanwhile (from the
/// keyframe it asked for) outgrows the hold and is dropped, more than once, while the camera's
/// sequence numbers wrap. The first packet it is finally sent must still be one its SRTP can
/// decrypt. Before the fix, the dropped packets had used up the numbers below 65,536, the
/// first packet sent was numbered past the wrap, and the student never decrypted any video.
#[test]
fn a_student_connecting_slowly_while_the_camera_wraps_gets_video() {
    let mut net = lecture_near_a_wrap(100);
    let s1: std::net::SocketAddr = "10.0.1.2:4000".parse().unwrap();
    net.held_uplink = Some((s1, Vec::new()));
    net.join("r1", "s1", "10.0.1.2:4000", &[]);
    net.run_for(6 * SECOND);
    let (_, held) = net.held_uplink.take().expect("held");
    assert!(!held.is_empty(), "s1 tried to connect");
    net.run_until(10 * SECOND, "s1 receives video and audio", |n| {
        let s1 = n.client("s1");
        !s1.frames(MediaKind::Video).is_empty() && !s1.frames(MediaKind::Audio).is_empty()
    });
}

/// Students whose first packets are lost (a browser that has not read the SFU's last DTLS
/// flight yet cannot decrypt what arrives first): the packets lost must not take the stream
/// past a wrap either. Before the fix, a stream started near 65,535 had wrapped by the first
/// packet that arrived, and the student never decrypted any video.
#[test]
fn a_student_losing_its_first_video_packets_at_a_wrap_gets_video() {
    let mut net = lecture_near_a_wrap(30);
    let s1: std::net::SocketAddr = "10.0.1.2:4000".parse().unwrap();
    net.join("r1", "s1", "10.0.1.2:4000", &[]);
    net.run_until(SECOND, "s1 connected", |n| n.client("s1").connected);
    // Every large datagram (video) to s1 is lost until the camera has wrapped.
    net.lossy_link = Some((s1, 1));
    net.run_for(2 * SECOND);
    net.lossy_link = None;
    assert!(net.dropped > 0, "video was lost towards s1");
    assert!(
        net.client("s1").frames(MediaKind::Video).is_empty(),
        "nothing of the video arrived before the wrap"
    );
    // The next keyframe (asked for by the SFU's check, or the browser) starts the picture.
    net.client_mut("teacher").want_keyframe = true;
    net.run_until(10 * SECOND, "s1 receives video", |n| {
        !n.client("s1").frames(MediaKind::Video).is_empty()
    });
}

/// A class starting: 24 students join 100 ms apart on two linked SFUs (media workers), every
/// fourth one with a connection that takes 2.5 s (its hold overflows), while the camera's
/// numbers wrap: every student gets the video.
#[test]
fn students_joining_at_once_around_a_wrap_all_get_video() {
    let mut net = lecture_near_a_wrap(90);
    let b = net.add_linked_sfu();
    let ids: Vec<String> = (0..24).map(|i| format!("s{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let addr = format!("10.0.2.{}:4000", i + 1);
        let slow = i % 4 == 1;
        if slow {
            net.held_uplink = Some((addr.parse().unwrap(), Vec::new()));
        }
        net.join_on(i % 2 * b, "r1", id, &addr, &[]);
        net.run_for(Duration::from_millis(if slow { 2500 } else { 100 }));
        net.held_uplink = None;
    }
    net.run_until(20 * SECOND, "every student receives video", |n| {
        ids.iter()
            .all(|id| !n.client(id).frames(MediaKind::Video).is_empty())
    });
}
