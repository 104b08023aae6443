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

/// Whether a datagram is a STUN binding request (RFC 5389: type 0x0001).
fn is_binding_request(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[0] == 0x00 && datagram[1] == 0x01
}

/// The SFU is a full ICE agent (see `ICE_LITE` in `sfu/peers.rs`): its offer does not say
/// `a=ice-lite`, so the student's browser, answering, is the controlled agent, and the SFU
/// checks back the address the student's first check came from and nominates that pair
/// itself. As ICE-lite it sent no check at all, and its DTLS waited until the browser
/// nominated the pair on a later check of its own (Chromium: its second, ~48 ms after the
/// first).
#[test]
fn the_sfu_checks_a_joining_student_back_and_is_not_ice_lite() {
    let mut net = lecture_near_a_wrap(10_000);
    let s1: std::net::SocketAddr = "10.0.1.2:4000".parse().unwrap();
    net.tap = Some((s1, Vec::new()));
    net.join("r1", "s1", "10.0.1.2:4000", &[]);
    net.run_until(SECOND, "s1 connected", |n| n.client("s1").connected);
    let offer = net.last_offer("s1");
    assert!(
        !offer.contains("a=ice-lite"),
        "the SFU's offer says ICE-lite:\n{offer}"
    );
    let (_, sent) = net.tap.take().expect("tapped");
    assert!(
        sent.iter().any(|d| is_binding_request(d)),
        "the SFU sent s1 no connectivity check of its own"
    );
    net.run_until(10 * SECOND, "s1 receives video", |n| {
        !n.client("s1").frames(MediaKind::Video).is_empty()
    });
}

/// A student's browser whose first connectivity checks reach the SFU before its answer does
/// (the answer goes through the signalling server and the room task, the checks straight to
/// the media worker), from two of its addresses (Chromium checks from each interface): the SFU
/// answers them and checks the student back the moment the answer is in. str0m keeps checks
/// that come before the remote credentials and answers one per timeout; without being handed
/// the time again it checked back only a pacing interval (50 ms) later.
#[test]
fn checks_that_beat_the_answer_are_checked_back_when_the_answer_arrives() {
    let mut net = lecture_near_a_wrap(10_000);
    net.run_until(SECOND, "the teacher connected", |n| {
        n.client("teacher").connected
    });
    net.run_for(SECOND / 5);
    net.auto_answer = false;
    let s1: std::net::SocketAddr = "10.0.1.2:4000".parse().unwrap();
    let other: std::net::SocketAddr = "10.0.1.3:4000".parse().unwrap();
    net.join("r1", "s1", "10.0.1.2:4000", &[]);
    let offer = net.last_offer("s1");
    let now = net.now;
    let answer = net.client_mut("s1").accept_offer(now, &offer);
    // Without candidates, as Chromium's first answer is (it trickles them; the SFU needs none):
    // the SFU learns the student's addresses from its checks alone.
    let answer: String = answer
        .lines()
        .filter(|l| !l.starts_with("a=candidate") && *l != "a=end-of-candidates")
        .map(|l| format!("{l}\r\n"))
        .collect();
    // The browser checks the SFU's candidate; its answer is still on the way.
    net.held_uplink = Some((s1, Vec::new()));
    net.run_for(Duration::from_millis(10));
    let (_, checks) = net.held_uplink.take().expect("held");
    assert!(
        checks.iter().any(|d| is_binding_request(d)),
        "s1 sent no check"
    );
    net.tap = Some((s1, Vec::new()));
    let now = net.now;
    let sfu_addr = net.sfu_addr;
    for from in [s1, other] {
        for check in &checks {
            net.sfu.handle_receive(now, from, sfu_addr, check);
        }
    }
    net.pump();
    let (_, sent) = net.tap.replace((s1, Vec::new())).expect("tapped");
    assert!(
        sent.iter().all(|d| !is_binding_request(d)),
        "the SFU checked s1 before it had its answer"
    );
    // The answer arrives: at the same instant, the SFU checks s1 back.
    let peer = net.peer("s1");
    net.sfu
        .accept_answer(now, &peer, &answer)
        .expect("answer accepted");
    net.pump();
    let (_, sent) = net.tap.take().expect("tapped");
    assert!(
        sent.iter().any(|d| is_binding_request(d)),
        "the SFU did not check s1 back when its answer arrived ({} datagrams sent)",
        sent.len()
    );
    net.run_until(SECOND, "s1 connected", |n| n.client("s1").connected);
}
