//! The sans-IO core with str0m "browsers": no sockets, simulated time, deterministic.

use std::time::Duration;

use lectern_sfu::{MediaEvent, PeerId, SfuError};
use str0m::media::MediaKind;

use crate::support::{Net, Received};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

fn after(frames: Vec<&Received>, t: std::time::Instant) -> usize {
    frames.iter().filter(|r| r.at > t).count()
}

/// Join `id` at `addr` to room r1 as a publisher of audio and video, allowed both and sending.
fn join_publishing(net: &mut Net, id: &str, addr: &str) {
    net.join("r1", id, addr, AV);
    net.allow(id, true, true);
    net.client_mut(id).sending = true;
}

#[test]
fn subscribers_receive_the_publishers_audio_and_video() {
    let mut net = Net::new();
    net.join("r1", "early", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_for(2 * SECOND);
    net.join("r1", "later", "10.0.1.3:4000", &[]);
    net.run_for(2 * SECOND);

    for id in ["early", "later"] {
        let c = net.client(id);
        assert!(c.connected, "{id} connected");
        let video = c.frames(MediaKind::Video);
        let audio = c.frames(MediaKind::Audio);
        // 30 fps video and 50 audio frames/s for two seconds (at least), exactly as sent.
        assert!(video.len() > 50, "{id}: {} video frames", video.len());
        assert!(audio.len() > 90, "{id}: {} audio frames", audio.len());
        assert!(
            video.iter().chain(audio.iter()).all(|r| r.data_ok),
            "{id}: payload intact"
        );
        assert!(
            video.windows(2).all(|w| w[0].frame < w[1].frame),
            "{id}: in order"
        );
    }
    // Each subscriber got one offer with both tracks, not one per track; its stream ids group
    // the publisher's tracks without naming them (the signalling says whose a mid is).
    assert_eq!(net.offers_for("early"), 1);
    let offer = net
        .events_for("early")
        .into_iter()
        .find_map(|e| match e {
            MediaEvent::Offer { sdp, .. } => Some(sdp.clone()),
            _ => None,
        })
        .expect("an offer");
    let msids: Vec<&str> = offer.lines().filter(|l| l.starts_with("a=msid:")).collect();
    assert_eq!(msids.len(), 2, "{offer}");
    let stream = |l: &str| l.split_whitespace().next().map(str::to_owned);
    assert_eq!(
        stream(msids[0]),
        stream(msids[1]),
        "one stream for audio and video"
    );
    assert!(
        !offer.contains("teacher"),
        "a participant id in the SDP: {offer}"
    );
    assert_eq!(net.offers_for("later"), 1);
    // The publisher is not sent its own media.
    assert!(net.client("teacher").received.is_empty());
    // Everything was demultiplexed by ufrag or address: no peer-by-peer scans.
    assert_eq!(net.sfu.stats().demux_scans, 0);
    assert_eq!(net.sfu.stats().datagrams_unmatched, 0);
}

#[test]
fn a_late_subscriber_gets_a_keyframe_at_once() {
    let mut net = Net::new();
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    // The test encoder sends a keyframe only at the start and when asked.
    net.run_for(3 * SECOND);
    assert!(net.client("teacher").keyframe_requests.is_empty());

    let joined = net.now;
    net.join("r1", "late", "10.0.1.3:4000", &[]);
    net.run_until(SECOND, "the late joiner decodes video", |n| {
        !n.client("late").frames(MediaKind::Video).is_empty()
    });

    let requests = &net.client("teacher").keyframe_requests;
    assert!(
        !requests.is_empty(),
        "the publisher was asked for a keyframe"
    );
    assert!(requests[0] >= joined);
    let first = net.client("late").frames(MediaKind::Video)[0].clone();
    assert!(first.keyframe, "the first frame is the requested keyframe");
    // Simulated time, so deterministic: one frame interval plus the handshake, not seconds.
    assert!(
        first.at - joined < Duration::from_millis(200),
        "{:?}",
        first.at - joined
    );
}

#[test]
fn a_joining_subscribers_keyframe_is_asked_for_at_its_answer_and_held_until_it_connects() {
    let mut net = Net::new();
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_for(3 * SECOND);
    assert!(net.client("teacher").keyframe_requests.is_empty());

    // The SFU offers the teacher's tracks and the client answers at once (auto_answer).
    net.join("r1", "late", "10.0.1.3:4000", &[]);
    let answered = net.now;
    // The camera's next frame (the keyframe asked for) leaves at once, before ICE is done.
    net.client_mut("teacher").last_video = None;
    let connected = |n: &Net| {
        n.events_for("late")
            .iter()
            .any(|e| matches!(e, MediaEvent::Connected { .. }))
    };
    net.run_until(SECOND, "the late joiner connects", |n| connected(n));
    let connected_at = net.now;
    let last_frame_before = net.client("teacher").next_video;

    // Asked for when the browser answered, not once ICE and DTLS were done.
    let requests = net.client("teacher").keyframe_requests.clone();
    assert!(
        requests.first().is_some_and(|&t| t <= answered),
        "answered at {answered:?}, connected at {connected_at:?}, requests {requests:?}"
    );
    net.run_for(SECOND);
    // The keyframe sent while the subscriber was connecting was kept for it: its video
    // starts with that keyframe, sent 20 ms after the connection is up (time for the
    // browser to read the last DTLS flight), and nothing is missing.
    let video = net.client("late").frames(MediaKind::Video);
    let first = video[0];
    assert!(first.keyframe);
    assert!(
        first.frame <= last_frame_before,
        "frame {} was sent after the connection (last before: {last_frame_before})",
        first.frame
    );
    let delay = first.at - connected_at;
    assert!(
        delay >= Duration::from_millis(20) && delay <= Duration::from_millis(20) + net.step,
        "{delay:?}"
    );
    assert!(
        video.windows(2).all(|w| w[1].frame == w[0].frame + 1),
        "a gap after the held frames"
    );
    assert!(video.iter().all(|r| r.data_ok));
    // Connecting asked for no second keyframe: the held video began with one.
    assert_eq!(net.client("teacher").keyframe_requests.len(), 1);
}

#[test]
fn a_new_subscriber_is_sent_no_video_before_a_keyframe() {
    let mut net = Net::new();
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.client_mut("teacher").ignore_keyframe_requests = true;
    net.run_for(SECOND);

    net.join("r1", "late", "10.0.1.3:4000", &[]);
    net.run_for(SECOND);
    // Undecodable delta frames are held back; audio flows.
    assert!(net.client("late").frames(MediaKind::Video).is_empty());
    assert!(net.client("late").frames(MediaKind::Audio).len() > 40);
    assert!(net.sfu.stats().rtp_awaiting_keyframe > 20);

    // The encoder finally sends a keyframe: video starts with it.
    net.client_mut("teacher").want_keyframe = true;
    net.run_for(SECOND);
    let video = net.client("late").frames(MediaKind::Video);
    assert!(video.len() > 20);
    assert!(video[0].keyframe);
    assert!(video.iter().all(|r| r.data_ok));
}

/// Every video frame from the first keyframe on, without a gap.
fn assert_no_frame_lost(frames: &[&Received]) {
    let numbers: Vec<u32> = frames.iter().map(|r| r.frame).collect();
    assert!(numbers.len() > 50, "{} frames", numbers.len());
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "frames lost: {numbers:?}"
    );
    assert!(frames.iter().all(|r| r.data_ok));
}

#[test]
fn packets_lost_towards_a_subscriber_are_retransmitted() {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.lossy_link = Some(("10.0.1.1:4000".parse().unwrap(), 7));
    net.run_for(3 * SECOND);
    assert!(net.dropped > 20, "{} dropped", net.dropped);
    // The subscriber NACKs, the SFU answers from its RTX cache (RTX SSRC).
    assert_no_frame_lost(&net.client("s1").frames(MediaKind::Video));
}

/// The SSRC of an RTP datagram (SRTP leaves the header in clear); `None` for anything else
/// (RTCP, STUN, DTLS).
fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    let rtp = datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(192..=223).contains(&datagram[1]);
    rtp.then(|| u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]))
}

/// The SFU keeps `RTX_PACKETS_VIDEO` (152) video packets per subscriber stream for resends:
/// a packet lost towards a subscriber and NACKed only after 140 more video packets were sent
/// to it is still resent. Fails if the SFU keeps fewer (try 115).
#[test]
fn a_loss_nacked_late_is_still_resent() {
    const DEPTH: usize = 140;
    let s1: std::net::SocketAddr = "10.0.1.1:4000".parse().unwrap();
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_until(10 * SECOND, "s1 receives video", |n| {
        n.client("s1").frames(MediaKind::Video).len() > 10
    });

    // Hold back everything s1 sends (its NACKs), and lose video packets towards it.
    net.held_uplink = Some((s1, Vec::new()));
    net.tap = Some((s1, Vec::new()));
    net.lossy_link = Some((s1, 1));
    net.run_until(SECOND, "a video packet lost towards s1", |n| n.dropped > 0);
    net.lossy_link = None;
    let sent = |n: &Net| {
        n.tap
            .as_ref()
            .map(|(_, sent)| sent.clone())
            .unwrap_or_default()
    };
    let at_loss = sent(&net);
    let video = at_loss
        .iter()
        .rev()
        .find(|d| d.len() >= 500)
        .and_then(|d| rtp_ssrc(d))
        .expect("the lost video packet was recorded");
    net.run_until(
        10 * SECOND,
        "the SFU sends the depth in video packets",
        |n| {
            let later = sent(n).split_off(at_loss.len());
            later.iter().filter(|d| rtp_ssrc(d) == Some(video)).count() >= DEPTH
        },
    );

    // Now the NACKs arrive: the SFU resends from its RTX cache, on the RTX SSRC.
    let before_nacks = sent(&net);
    let known: Vec<u32> = before_nacks.iter().filter_map(|d| rtp_ssrc(d)).collect();
    let (_, held) = net.held_uplink.take().expect("held");
    assert!(!held.is_empty(), "s1 sent nothing while held");
    let (now, sfu_addr) = (net.now, net.sfu_addr);
    for datagram in held {
        net.sfu.handle_receive(now, s1, sfu_addr, &datagram);
    }
    net.pump();
    let resent = sent(&net)
        .split_off(before_nacks.len())
        .iter()
        .filter(|d| rtp_ssrc(d).is_some_and(|ssrc| !known.contains(&ssrc)))
        .count();
    assert!(resent > 0, "nothing resent for a loss {DEPTH} packets back");
}

const TRANSPORT_CC: &str = "transport-wide-cc-extensions";

/// str0m keeps a 1,000-packet record (~88 KiB) of what it sends with transport-cc, for a
/// send-side estimator the SFU does not run: the extension is left out of the m-lines the SFU
/// only sends on, and kept where it receives (the publishing browser estimates its uplink
/// from our feedback).
#[test]
fn transport_cc_is_negotiated_only_where_the_sfu_receives() {
    let mut net = Net::new();
    let now = net.now;
    let mut teacher = crate::support::Client::new(now, "teacher", "10.0.1.2:4000");
    teacher.id = PeerId::new("r1", "teacher");
    let pid = teacher.id.clone();
    net.clients.push(teacher);
    net.sfu.add_peer(now, pid.clone()).expect("add peer");
    let offer = net.client_mut("teacher").make_offer(now, AV);
    assert!(offer.contains(TRANSPORT_CC), "the browser offers it");
    let answer = net.sfu.accept_offer(now, &pid, &offer).expect("answer");
    net.client_mut("teacher").accept_answer(now, &answer);
    net.pump();
    for section in crate::support::sections(&answer) {
        assert!(section.contains("a=recvonly"), "{section}");
        assert!(
            section.contains(TRANSPORT_CC),
            "kept where the SFU receives: {section}"
        );
    }
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;

    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.run_until(10 * SECOND, "s1 receives video", |n| {
        !n.client("s1").frames(MediaKind::Video).is_empty()
    });
    let to_subscriber = net.last_offer("s1");
    let sending: Vec<&str> = crate::support::sections(&to_subscriber)
        .into_iter()
        .filter(|s| s.contains("a=sendonly"))
        .collect();
    assert_eq!(sending.len(), 2, "{to_subscriber}");
    for section in sending {
        assert!(!section.contains(TRANSPORT_CC), "{section}");
        assert!(!section.contains(" transport-cc"), "{section}");
    }
}

#[test]
fn packets_lost_from_a_publisher_are_recovered_and_forwarded() {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.lossy_link = Some((crate::support::SFU_ADDR.parse().unwrap(), 7));
    net.run_for(3 * SECOND);
    assert!(net.dropped > 20, "{} dropped", net.dropped);
    // The SFU NACKs the publisher and forwards the repaired packets.
    assert_no_frame_lost(&net.client("s1").frames(MediaKind::Video));
}

#[test]
fn keyframe_requests_to_a_publisher_are_coalesced() {
    let mut net = Net::new();
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_for(SECOND);

    // A burst of joiners: each new subscriber wants a keyframe.
    for i in 0..5 {
        net.join("r1", &format!("s{i}"), &format!("10.0.2.{i}:4000"), &[]);
    }
    net.run_for(2 * SECOND);

    let requests = &net.client("teacher").keyframe_requests;
    assert!(!requests.is_empty());
    let interval = Duration::from_millis(300);
    assert!(
        requests.windows(2).all(|w| w[1] - w[0] >= interval),
        "at most one request per 300 ms: {:?}",
        requests.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    );
    assert!(
        requests.len() <= 3,
        "{} requests for 5 joiners",
        requests.len()
    );
    assert!(net.sfu.stats().keyframe_requests_coalesced >= 4);
    for i in 0..5 {
        let c = net.client(&format!("s{i}"));
        assert!(!c.frames(MediaKind::Video).is_empty(), "s{i} sees video");
    }
}

#[test]
fn revoking_publish_permission_stops_forwarding_at_once() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "presenter", "10.0.1.2:4000");
    net.run_for(SECOND);
    assert!(!net.client("teacher").frames(MediaKind::Video).is_empty());
    assert!(!net.client("teacher").frames(MediaKind::Audio).is_empty());

    let revoked = net.now;
    let sent_before = net.client("presenter").next_video;
    net.allow("presenter", false, false);
    net.run_for(SECOND);

    assert!(
        net.client("presenter").next_video > sent_before + 20,
        "presenter kept sending"
    );
    let teacher = net.client("teacher");
    assert_eq!(after(teacher.frames(MediaKind::Video), revoked), 0);
    assert_eq!(after(teacher.frames(MediaKind::Audio), revoked), 0);
    assert!(net.sfu.stats().rtp_denied > 50);
    // Revoking is not a renegotiation.
    assert_eq!(net.offers_for("teacher"), 1);

    // Given the stage again: forwarding resumes on the same m-lines, from a fresh keyframe.
    let granted = net.now;
    let requests_before = net.client("presenter").keyframe_requests.len();
    net.allow("presenter", true, true);
    net.run_for(SECOND);
    let teacher = net.client("teacher");
    assert!(after(teacher.frames(MediaKind::Video), granted) > 20);
    assert!(after(teacher.frames(MediaKind::Audio), granted) > 40);
    let first_again = teacher
        .frames(MediaKind::Video)
        .into_iter()
        .find(|r| r.at > granted)
        .unwrap();
    assert!(first_again.keyframe);
    assert!(net.client("presenter").keyframe_requests.len() > requests_before);
    assert_eq!(net.offers_for("teacher"), 1);
}

#[test]
fn a_hard_muted_student_is_seen_but_not_heard_until_allowed_to_speak() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "student", "10.0.1.2:4000");
    net.run_for(SECOND);

    let muted = net.now;
    net.allow("student", false, true);
    net.run_for(SECOND);
    let teacher = net.client("teacher");
    assert_eq!(
        after(teacher.frames(MediaKind::Audio), muted),
        0,
        "no audio while muted"
    );
    assert!(
        after(teacher.frames(MediaKind::Video), muted) > 20,
        "video continues"
    );

    let allowed = net.now;
    net.allow("student", true, true);
    net.run_for(SECOND);
    let teacher = net.client("teacher");
    assert!(
        after(teacher.frames(MediaKind::Audio), allowed) > 40,
        "audio again"
    );
    assert!(teacher.frames(MediaKind::Audio).iter().all(|r| r.data_ok));
}

#[test]
fn a_student_without_permission_publishes_nothing() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", &[]);
    net.join("r1", "student", "10.0.1.2:4000", AV);
    net.client_mut("student").sending = true;
    net.run_for(SECOND);

    assert!(net.client("student").connected);
    assert!(net.client("teacher").received.is_empty());
    // Not even announced: no m-lines for tracks nobody may see.
    assert_eq!(net.offers_for("teacher"), 0);
    assert!(net.sfu.stats().rtp_denied > 50);

    // Called on and allowed to speak (audio only).
    net.allow("student", true, false);
    net.run_for(SECOND);
    let teacher = net.client("teacher");
    assert!(teacher.frames(MediaKind::Audio).len() > 40);
    assert!(teacher.frames(MediaKind::Video).is_empty());
    let last_offer = net
        .events_for("teacher")
        .into_iter()
        .rfind(|e| matches!(e, MediaEvent::Offer { .. }));
    match last_offer {
        Some(MediaEvent::Offer { tracks, .. }) => {
            assert_eq!(tracks.len(), 1);
            assert_eq!(tracks[0].publisher, PeerId::new("r1", "student"));
            assert_eq!(tracks[0].kind, lectern_sfu::MediaKind::Audio);
        }
        other => panic!("expected an offer, got {other:?}"),
    }
}

#[test]
fn connectivity_checks_from_an_unsignalled_address_are_accepted() {
    let mut net = Net::new();
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    // Both behind NATs: the SFU sees neither address in any SDP or trickled candidate.
    net.join_via("r1", "home", "192.168.1.20:5000", "198.51.100.7:61001", &[]);
    net.join_via(
        "r1",
        "dorm",
        "192.168.1.20:5000",
        "198.51.100.8:40404",
        &[AV[0]],
    );
    net.run_for(2 * SECOND);

    for id in ["home", "dorm"] {
        let c = net.client(id);
        assert!(
            c.connected,
            "{id} connected through its peer-reflexive address"
        );
        assert!(c.frames(MediaKind::Video).len() > 30, "{id} receives video");
    }
    assert_eq!(net.sfu.stats().datagrams_unmatched, 0);
}

/// A STUN binding request for `ufrag` that fails MESSAGE-INTEGRITY (wrong password).
fn forged_binding_request(ufrag: &str) -> Vec<u8> {
    use str0m::ice::{StunMessage, TransId};
    let username = format!("{ufrag}:attacker");
    let msg = StunMessage::binding_request(&username, TransId::new(), true, 1, 1, true);
    let mut buf = vec![0u8; 1500];
    let n = msg
        .to_bytes(Some(b"wrong password"), &mut buf, |_, _| [7u8; 20])
        .unwrap();
    buf.truncate(n);
    buf
}

fn sfu_ufrag_in(sdp: &str) -> String {
    let line = sdp
        .lines()
        .find(|l| l.starts_with("a=ice-ufrag:"))
        .expect("ufrag");
    line["a=ice-ufrag:".len()..].to_string()
}

#[test]
fn a_forged_connectivity_check_cannot_steal_a_publishers_address() {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_for(SECOND);

    // s1 knows the SFU's ufrag for its own peer (from the SDP) and forges a check that
    // claims to come from the teacher's address.
    let ufrag = match net
        .events_for("s1")
        .into_iter()
        .find(|e| matches!(e, MediaEvent::Offer { .. }))
    {
        Some(MediaEvent::Offer { sdp, .. }) => sfu_ufrag_in(sdp),
        _ => panic!("s1 got an offer"),
    };
    let forged = forged_binding_request(&ufrag);
    let (now, teacher_addr, sfu_addr) = (net.now, net.client("teacher").seen_as, net.sfu_addr);
    assert!(net.sfu.handle_receive(now, teacher_addr, sfu_addr, &forged));
    net.pump();

    // The teacher's media is still demultiplexed to the teacher.
    let forged_at = net.now;
    net.run_for(SECOND);
    let s1 = net.client("s1");
    assert!(
        s1.frames(MediaKind::Video)
            .iter()
            .filter(|r| r.at > forged_at)
            .count()
            > 25
    );
    assert!(
        s1.frames(MediaKind::Audio)
            .iter()
            .filter(|r| r.at > forged_at)
            .count()
            > 45
    );
}

/// Its m-lines are made inactive, not stopped: they carry the next tracks offered (see
/// `reuse.rs`).
#[test]
fn a_publisher_leaving_makes_its_tracks_idle_for_subscribers() {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_for(SECOND);

    let now = net.now;
    net.client_mut("teacher").sending = false;
    net.sfu.remove_peer(now, &PeerId::new("r1", "teacher"));
    net.pump();
    let offers: Vec<&MediaEvent> = net
        .events_for("s1")
        .into_iter()
        .filter(|e| matches!(e, MediaEvent::Offer { .. }))
        .collect();
    assert_eq!(
        offers.len(),
        2,
        "an offer adding the tracks, one making them inactive"
    );
    let MediaEvent::Offer { sdp, tracks, .. } = offers[1] else {
        unreachable!()
    };
    assert!(tracks.is_empty());
    assert_eq!(sdp.matches("a=inactive\r\n").count(), 2, "{sdp}");
    assert_eq!(
        sdp.matches("m=audio 0 ").count() + sdp.matches("m=video 0 ").count(),
        0,
        "{sdp}"
    );
    assert!(!net.sfu.has_peer(&PeerId::new("r1", "teacher")));
    assert_eq!(net.sfu.stats().peers, 1);
    // The SFU keeps running for the rest.
    net.run_for(SECOND);
}

/// Peers are named by room and participant: the same participant in two rooms of one SFU has
/// two peers; adding one again is refused, and each is removed on its own.
#[test]
fn the_same_participant_in_two_rooms_has_two_peers() {
    let mut net = Net::new();
    let now = net.now;
    let (r1, r2) = (PeerId::new("r1", "same"), PeerId::new("r2", "same"));
    net.sfu.add_peer(now, r1.clone()).expect("peer in r1");
    net.sfu.add_peer(now, r2.clone()).expect("peer in r2");
    assert_eq!(
        net.sfu.add_peer(now, r2.clone()),
        Err(SfuError::DuplicateParticipant(r2.clone()))
    );
    assert_eq!(net.sfu.stats().peers, 2);
    net.sfu.remove_peer(now, &r1);
    assert!(!net.sfu.has_peer(&r1));
    assert!(net.sfu.has_peer(&r2));
    assert_eq!(net.sfu.stats().peers, 1);
}

#[test]
fn the_browsers_offer_wins_a_glare_and_the_sfu_offers_again() {
    let mut net = Net::new();
    net.auto_answer = false;
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.join("r1", "teacher", "10.0.1.2:4000", AV);
    net.allow("teacher", true, true);
    // str0m reports a publisher's tracks once it is connected.
    net.run_until(SECOND, "the SFU offers s1 the teacher's tracks", |n| {
        n.offers_for("s1") == 1
    });

    // s1 ignores that offer (it has its own in flight, like a browser in have-local-offer).
    let now = net.now;
    let s1 = net.peer("s1");
    let offer = net.client_mut("s1").make_offer(now, &[MediaKind::Audio]);
    let answer = net
        .sfu
        .accept_offer(now, &s1, &offer)
        .expect("browser offer accepted");
    net.client_mut("s1").accept_answer(now, &answer);
    net.auto_answer = true;
    net.pump();
    assert_eq!(
        net.offers_for("s1"),
        2,
        "the abandoned changes were offered again"
    );

    net.client_mut("teacher").sending = true;
    net.run_for(SECOND);
    assert!(net.client("s1").frames(MediaKind::Video).len() > 20);
    assert!(net.client("s1").frames(MediaKind::Audio).len() > 40);
}

#[test]
fn the_active_speaker_follows_who_talks_and_never_names_a_muted_student() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", AV);
    net.join("r1", "student", "10.0.1.2:4000", AV);
    net.join("r1", "viewer", "10.0.1.3:4000", &[]);
    net.allow("teacher", true, true);
    net.allow("student", true, true);
    for id in ["teacher", "student"] {
        let c = net.client_mut(id);
        c.sending = true;
        c.audio_level = Some(-127);
    }
    // Silence names nobody.
    net.run_for(2 * SECOND);
    assert_eq!(net.speakers(), Vec::<Option<&str>>::new());

    net.client_mut("teacher").audio_level = Some(-20);
    net.run_until(2 * SECOND, "the teacher is named", |n| {
        n.speakers() == [Some("teacher")]
    });
    // Silence keeps the last speaker.
    net.client_mut("teacher").audio_level = Some(-127);
    net.run_for(2 * SECOND);
    assert_eq!(net.speakers(), [Some("teacher")]);

    // A hard-muted student talking is not heard, so not named.
    net.allow("student", false, true);
    net.client_mut("student").audio_level = Some(-10);
    net.run_for(2 * SECOND);
    assert_eq!(net.speakers(), [Some("teacher")]);

    // Allowed to speak: named.
    net.allow("student", true, true);
    net.run_until(2 * SECOND, "the student is named", |n| {
        n.speakers() == [Some("teacher"), Some("student")]
    });
    // Muted while the speaker: cleared at once.
    net.allow("student", false, true);
    assert_eq!(net.speakers(), [Some("teacher"), Some("student"), None]);
    // A speaker who leaves is cleared too.
    net.client_mut("teacher").audio_level = Some(-30);
    net.run_until(2 * SECOND, "the teacher again", |n| {
        n.speakers().last() == Some(&Some("teacher"))
    });
    net.sfu.remove_peer(net.now, &net.peer("teacher"));
    net.pump();
    assert_eq!(net.speakers().last(), Some(&None));
    assert_eq!(net.sfu.stats().speaker_changes, 5);
}

#[test]
fn two_people_talking_at_once_do_not_make_the_speaker_flicker() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", AV);
    net.join("r1", "ta", "10.0.1.2:4000", AV);
    net.allow("teacher", true, true);
    net.allow("ta", true, true);
    net.client_mut("teacher").audio_level = Some(-25);
    net.client_mut("teacher").sending = true;
    net.run_until(2 * SECOND, "the teacher is named", |n| {
        n.speakers() == [Some("teacher")]
    });
    // The TA talks as much (and louder): the teacher stays the speaker.
    net.client_mut("ta").audio_level = Some(-5);
    net.client_mut("ta").sending = true;
    net.run_for(3 * SECOND);
    assert_eq!(net.speakers(), [Some("teacher")]);
    // Once the teacher stops, the TA takes over.
    net.client_mut("teacher").audio_level = Some(-90);
    net.run_until(2 * SECOND, "the TA is named", |n| {
        n.speakers() == [Some("teacher"), Some("ta")]
    });
}

/// The sizes of the video frames `id` received after `t`, each run of one size once, without
/// the first run if it is `before` (frames of the old layer may still arrive until the new
/// layer's keyframe does).
fn sizes_after(net: &Net, id: &str, t: std::time::Instant, before: (u16, u16)) -> Vec<(u16, u16)> {
    let mut sizes: Vec<(u16, u16)> = Vec::new();
    for r in net.client(id).frames(MediaKind::Video) {
        if r.at > t && sizes.last() != Some(&r.size) {
            sizes.push(r.size);
        }
    }
    if sizes.len() > 1 && sizes[0] == before {
        sizes.remove(0);
    }
    sizes
}

#[test]
fn simulcast_subscribers_get_the_layer_that_fits_how_they_show_the_video() {
    const SMALL: (u16, u16) = (320, 180);
    const LARGE: (u16, u16) = (640, 360);
    let mut net = Net::new();
    net.join("r1", "full", "10.0.1.1:4000", &[]);
    net.join("r1", "thumb", "10.0.1.3:4000", &[]);
    // The publisher sends its camera twice, as a browser with two simulcast encodings does.
    net.join_simulcast(
        "r1",
        "teacher",
        "10.0.1.2:4000",
        &[("l", SMALL), ("h", LARGE)],
    );
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_for(2 * SECOND);

    // Nobody said how big they show it: the best layer, for both.
    let start = net.now - SECOND;
    assert_eq!(sizes_after(&net, "full", start, LARGE), vec![LARGE]);
    assert_eq!(sizes_after(&net, "thumb", start, LARGE), vec![LARGE]);

    // A thumbnail (in device pixels) is sent the small layer, from one of its keyframes.
    // (Both may have started on the small layer, before the large one was heard of.)
    let switches = net.sfu.stats().layer_switches;
    let shrunk = net.now;
    net.view("thumb", 300, 170);
    net.run_for(2 * SECOND);
    assert_eq!(sizes_after(&net, "thumb", shrunk, LARGE), vec![SMALL]);
    assert_eq!(sizes_after(&net, "full", shrunk, LARGE), vec![LARGE]);
    let thumb: Vec<&Received> = net
        .client("thumb")
        .frames(MediaKind::Video)
        .into_iter()
        .filter(|r| r.at > shrunk)
        .collect();
    let first_small = thumb.iter().position(|r| r.size == SMALL).unwrap();
    assert!(thumb[first_small].keyframe, "switched at a keyframe");
    // One continuous stream for the receiver: payloads intact, frames in order, no frame
    // missing across the switch (both layers carry the same frame numbers).
    assert!(thumb.iter().all(|r| r.data_ok));
    assert!(
        thumb.windows(2).all(|w| w[1].frame == w[0].frame + 1),
        "frames in order, none missing: {:?}",
        thumb
            .iter()
            .map(|r| (r.frame, r.size.1, r.keyframe))
            .collect::<Vec<_>>()
    );

    // Shown large again: back to the large layer. Not shown at all: the small one.
    let grown = net.now;
    net.view("thumb", 1280, 720);
    net.run_for(2 * SECOND);
    assert_eq!(sizes_after(&net, "thumb", grown, SMALL), vec![LARGE]);
    let hidden = net.now;
    net.view("full", 0, 0);
    net.run_for(2 * SECOND);
    assert_eq!(sizes_after(&net, "full", hidden, LARGE), vec![SMALL]);
    assert_eq!(net.sfu.stats().layer_switches - switches, 3);

    // A mid that is not a video sent to this participant is refused.
    let err = net
        .sfu
        .set_view_size(net.now, &net.peer("thumb"), "nope", 10, 10)
        .unwrap_err();
    assert_eq!(err.code(), "unknown_mid");
}

#[test]
fn a_paused_video_is_not_forwarded_to_that_subscriber_and_resumes_at_a_keyframe() {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.join("r1", "s2", "10.0.1.3:4000", &[]);
    join_publishing(&mut net, "teacher", "10.0.1.2:4000");
    net.run_until(5 * SECOND, "video reaches both", |n| {
        n.client("s1").frames(MediaKind::Video).len() >= 5
            && n.client("s2").frames(MediaKind::Video).len() >= 5
    });

    let mid = net.video_mid("s1");
    let (now, peer) = (net.now, net.peer("s1"));
    net.sfu
        .set_view(now, &peer, &mid, 0, 0, true)
        .expect("pause");
    net.pump();
    let video = net.client("s1").frames(MediaKind::Video).len();
    let audio = net.client("s1").frames(MediaKind::Audio).len();
    let others = net.client("s2").frames(MediaKind::Video).len();
    net.run_for(2 * SECOND);
    assert_eq!(
        net.client("s1").frames(MediaKind::Video).len(),
        video,
        "no video while paused"
    );
    assert!(net.client("s1").frames(MediaKind::Audio).len() > audio + 20);
    assert!(net.client("s2").frames(MediaKind::Video).len() > others + 20);

    let requests = net.client("teacher").keyframe_requests.len();
    let resumed_at = net.now;
    let (now, peer) = (net.now, net.peer("s1"));
    net.sfu
        .set_view(now, &peer, &mid, 320, 240, false)
        .expect("resume");
    net.pump();
    net.run_until(SECOND, "video again", |n| {
        n.client("s1").frames(MediaKind::Video).len() > video
    });
    assert!(
        net.client("teacher").keyframe_requests.len() > requests,
        "resuming asks the publisher for a keyframe"
    );
    let again: Vec<&Received> = net
        .client("s1")
        .frames(MediaKind::Video)
        .into_iter()
        .filter(|r| r.at >= resumed_at)
        .collect();
    assert!(again[0].keyframe, "resumes at a keyframe");
    net.run_for(2 * SECOND);
    // Sequence numbers continue without a gap: every frame after the resume arrives whole.
    let after_resume: Vec<&Received> = net
        .client("s1")
        .frames(MediaKind::Video)
        .into_iter()
        .filter(|r| r.at >= resumed_at)
        .collect();
    assert_no_frame_lost(&after_resume);
}
