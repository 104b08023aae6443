//! One room over two linked SFUs (two media workers): the publisher's SFU takes each packet
//! in and hands it once to the other, whose subscribers get it as from a local publisher.

use std::time::Duration;

use lectern_sfu::MediaEvent;
use str0m::media::MediaKind;

use crate::support::{Net, Received};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

fn after(frames: Vec<&Received>, t: std::time::Instant) -> Vec<&Received> {
    frames.into_iter().filter(|r| r.at > t).collect()
}

/// A teacher publishing on SFU 0, `s0` subscribing there, `s1` and `s2` on SFU 1.
fn lecture_over_two() -> Net {
    let mut net = Net::new();
    let b = net.add_linked_sfu();
    net.join("r1", "teacher", "10.0.1.1:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.join("r1", "s0", "10.0.1.2:4000", &[]);
    net.join_on(b, "r1", "s1", "10.0.1.3:4000", &[]);
    net.join_on(b, "r1", "s2", "10.0.1.4:4000", &[]);
    net
}

fn everyone_receives(net: &Net) -> bool {
    ["s0", "s1", "s2"].iter().all(|id| {
        let c = net.client(id);
        c.frames(MediaKind::Video).len() > 30 && c.frames(MediaKind::Audio).len() > 50
    })
}

#[test]
fn subscribers_on_a_linked_sfu_receive_the_publishers_media_relayed_once() {
    let mut net = lecture_over_two();
    net.run_until(5 * SECOND, "media reaches all three", everyone_receives);

    for id in ["s1", "s2"] {
        let c = net.client(id);
        assert!(c.connected, "{id} connected");
        let video = c.frames(MediaKind::Video);
        assert!(video[0].keyframe, "{id}: starts at a keyframe");
        assert!(
            video
                .iter()
                .chain(c.frames(MediaKind::Audio).iter())
                .all(|r| r.data_ok),
            "{id}: payload intact"
        );
        assert!(
            video.windows(2).all(|w| w[0].frame < w[1].frame),
            "{id}: in order"
        );
        // Offered by its own SFU, naming the real publisher.
        let named = net.events_for(id).into_iter().any(|e| match e {
            MediaEvent::Offer { tracks, .. } => tracks
                .iter()
                .any(|t| t.publisher.participant.as_str() == "teacher"),
            _ => false,
        });
        assert!(named, "{id}: offered the teacher's tracks");
    }
    // Each packet crossed once, whatever the number of subscribers over there; SFU 1 sent
    // each to both of its subscribers and took nothing in from a browser.
    let a = net.sfu.stats();
    let b = net.sfu_at(1).stats();
    assert!(a.rtp_relayed > 100);
    assert!(a.rtp_relayed <= a.rtp_received, "{a:?}");
    assert_eq!(b.rtp_relay_received, a.rtp_relayed);
    assert_eq!(b.rtp_received, 0);
    assert!(b.rtp_forwarded > b.rtp_relay_received * 3 / 2, "{b:?}");
    // The mirror is no peer of SFU 1's own.
    assert_eq!(b.peers, 2);
    assert_eq!(net.sfu_at(1).peers().len(), 2);
}

#[test]
fn without_relaying_the_other_sfus_subscribers_get_nothing() {
    let mut net = lecture_over_two();
    net.relay_off = true;
    net.run_for(3 * SECOND);
    assert!(net.client("s0").frames(MediaKind::Video).len() > 30);
    for id in ["s1", "s2"] {
        assert!(net.client(id).received.is_empty(), "{id} got media");
    }
}

#[test]
fn a_subscriber_on_the_linked_sfu_asks_the_publisher_for_a_keyframe() {
    let mut net = lecture_over_two();
    net.run_until(5 * SECOND, "media reaches all three", everyone_receives);
    net.run_for(SECOND);
    let before = net.client("teacher").keyframe_requests.len();
    // A late joiner over there needs a keyframe at once: its SFU asks the teacher's.
    let joined = net.now;
    net.join_on(1, "r1", "late", "10.0.1.5:4000", &[]);
    net.run_until(2 * SECOND, "the late joiner sees video", |n| {
        !n.client("late").frames(MediaKind::Video).is_empty()
    });
    assert!(net.client("teacher").keyframe_requests.len() > before);
    let video = net.client("late").frames(MediaKind::Video);
    assert!(video[0].keyframe);
    assert!(
        video[0].at - joined < Duration::from_millis(500),
        "not waiting for a periodic keyframe"
    );
}

#[test]
fn the_linked_sfu_chooses_its_own_subscribers_simulcast_layer() {
    const SMALL: (u16, u16) = (320, 180);
    const LARGE: (u16, u16) = (640, 360);
    let mut net = Net::new();
    let b = net.add_linked_sfu();
    net.join_on(b, "r1", "full", "10.0.1.1:4000", &[]);
    net.join_on(b, "r1", "thumb", "10.0.1.3:4000", &[]);
    net.join_simulcast(
        "r1",
        "teacher",
        "10.0.1.2:4000",
        &[("l", SMALL), ("h", LARGE)],
    );
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_for(2 * SECOND);
    let start = net.now - SECOND;
    let sizes = |net: &Net, id: &str, t| {
        let mut s: Vec<(u16, u16)> = after(net.client(id).frames(MediaKind::Video), t)
            .iter()
            .map(|r| r.size)
            .collect();
        s.dedup();
        s
    };
    assert_eq!(sizes(&net, "full", start), vec![LARGE]);
    assert_eq!(sizes(&net, "thumb", start), vec![LARGE]);

    let shrunk = net.now;
    net.view("thumb", 300, 170);
    net.run_for(2 * SECOND);
    let thumb = after(net.client("thumb").frames(MediaKind::Video), shrunk);
    let first_small = thumb.iter().position(|r| r.size == SMALL).expect("small");
    assert!(thumb[first_small].keyframe, "switched at a keyframe");
    assert_eq!(
        thumb[first_small..].iter().map(|r| r.size).max(),
        Some(SMALL)
    );
    assert!(
        thumb.windows(2).all(|w| w[1].frame == w[0].frame + 1),
        "one continuous stream across the switch"
    );
    let later = net.now - SECOND;
    assert_eq!(sizes(&net, "full", later), vec![LARGE]);
    assert!(net.sfu_at(b).stats().layer_switches >= 1);
}

#[test]
fn the_last_subscriber_leaving_the_linked_sfu_stops_relaying() {
    let mut net = lecture_over_two();
    net.run_until(5 * SECOND, "media reaches all three", everyone_receives);
    let now = net.now;
    let s1 = net.peer("s1");
    let s2_before = net.client("s2").frames(MediaKind::Video).len();
    net.sfu_at(1).remove_peer(now, &s1);
    net.pump();
    net.run_for(SECOND);
    assert!(
        net.client("s2").frames(MediaKind::Video).len() > s2_before + 20,
        "s2 still served"
    );
    let (now, s2) = (net.now, net.peer("s2"));
    net.sfu_at(1).remove_peer(now, &s2);
    net.pump();
    let relayed_at_leave = net.sfu.stats().rtp_relayed;
    net.run_for(2 * SECOND);
    assert_eq!(
        net.sfu.stats().rtp_relayed,
        relayed_at_leave,
        "nothing relayed to an SFU without peers of the room"
    );
    let s0 = net.client("s0").frames(MediaKind::Video).len();
    assert!(s0 > 100, "the teacher's own SFU goes on: {s0}");

    // Someone joins over there again: relaying resumes, with the tracks offered anew.
    net.join_on(1, "r1", "back", "10.0.1.6:4000", &[]);
    net.run_until(2 * SECOND, "video over there again", |n| {
        n.client("back").frames(MediaKind::Video).len() > 5
    });
    assert!(net.sfu.stats().rtp_relayed > relayed_at_leave);
}

#[test]
fn a_publisher_leaving_stops_its_mirrored_tracks() {
    let mut net = lecture_over_two();
    net.run_until(5 * SECOND, "media reaches all three", everyone_receives);
    let offers = net.offers_for("s1");
    let teacher = net.peer("teacher");
    let now = net.now;
    net.sfu.remove_peer(now, &teacher);
    net.pump();
    net.run_for(SECOND);
    // s1's m-lines are made inactive by its own SFU, as for a local publisher.
    assert!(net.offers_for("s1") > offers);
    let offer = net.last_offer("s1");
    assert!(
        offer.matches("a=inactive").count() >= 2,
        "both lines idle: {offer}"
    );
    let received = net.client("s1").received.len();
    net.run_for(SECOND);
    assert_eq!(net.client("s1").received.len(), received);
}
