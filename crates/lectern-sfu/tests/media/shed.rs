//! Stale media shed (a media worker that fell behind): what waited too long is taken in but
//! not sent on, and a video goes on from a keyframe once fresh packets come again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lectern_sfu::shed::{Kind, STALE_AFTER};
use str0m::media::MediaKind;

use crate::support::{Net, Received};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);
const TEACHER: &str = "10.0.1.2:4000";

fn frames_after(net: &Net, id: &str, kind: MediaKind, t: Instant) -> Vec<Received> {
    net.client(id)
        .frames(kind)
        .into_iter()
        .filter(|r| r.at > t)
        .cloned()
        .collect()
}

/// The teacher's video frame numbers that `id` received.
fn video_frames(net: &Net, id: &str) -> Vec<u32> {
    net.client(id)
        .frames(MediaKind::Video)
        .iter()
        .map(|r| r.frame)
        .collect()
}

/// The last sequence number of what `id` received of `kind`.
fn last_seq(net: &Net, id: &str, kind: MediaKind) -> u64 {
    net.client(id).frames(kind).last().map_or(0, |r| r.seq.1)
}

/// After what `id` received last (and from `since`), it receives video again: the first frame
/// is a keyframe, the frames held back in between never came, audio comes too, and both go on
/// with the next sequence number after the last one received (no gap to NACK).
fn receives_again_from_a_keyframe(net: &mut Net, id: &str, seen: &[u32], since: Instant) {
    let seq_before = [MediaKind::Video, MediaKind::Audio].map(|k| last_seq(net, id, k));
    net.run_until(5 * SECOND, "video again", |n| {
        frames_after(n, id, MediaKind::Video, since).len() > 10
    });
    let again = frames_after(net, id, MediaKind::Video, since);
    assert!(again[0].keyframe, "{id}: video goes on from a keyframe");
    let last_seen = seen.iter().max().copied().unwrap_or(0);
    assert!(
        again.iter().all(|r| r.frame > last_seen),
        "{id}: no frame from before"
    );
    let audio = frames_after(net, id, MediaKind::Audio, since);
    assert!(!audio.is_empty());
    assert_eq!(again[0].seq.0, seq_before[0] + 1, "{id}: video numbered on");
    assert_eq!(audio[0].seq.0, seq_before[1] + 1, "{id}: audio numbered on");
}

#[test]
fn media_that_waited_too_long_is_not_forwarded_and_fresh_media_is() {
    let teacher: SocketAddr = TEACHER.parse().unwrap();
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.join("r1", "teacher", TEACHER, AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_until(10 * SECOND, "s1 receives", |n| {
        n.client("s1").frames(MediaKind::Video).len() > 10
    });

    // The worker falls behind: what the teacher sends waits (in the socket) past the limit.
    net.held_uplink = Some((teacher, Vec::new()));
    net.run_for(STALE_AFTER * 2);
    let (_, held) = net.held_uplink.take().expect("held");
    let seen = video_frames(&net, "s1");
    let audio_seen = net.client("s1").frames(MediaKind::Audio).len();
    let before = net.sfu.stats();
    let (now, sfu_addr) = (net.now, net.sfu_addr);
    let mut rtp = 0;
    for datagram in &held {
        // As the worker does it: RTP that waited too long is shed, the rest handled.
        if Kind::of(datagram) == Kind::Rtp {
            rtp += 1;
            net.sfu
                .handle_stale_receive(now, teacher, sfu_addr, datagram);
        } else {
            net.sfu.handle_receive(now, teacher, sfu_addr, datagram);
        }
    }
    net.pump();
    let after = net.sfu.stats();
    assert!(rtp > 20, "{rtp} RTP packets held");
    assert_eq!(after.rtp_received - before.rtp_received, rtp, "taken in");
    assert_eq!(
        after.rtp_shed - before.rtp_shed,
        rtp,
        "each counted as shed"
    );
    assert_eq!(after.rtp_forwarded, before.rtp_forwarded, "none sent on");
    assert_eq!(video_frames(&net, "s1"), seen);
    assert_eq!(net.client("s1").frames(MediaKind::Audio).len(), audio_seen);

    // Fresh media again: sent on (audio at once, video from a keyframe asked for).
    let caught_up = net.now;
    receives_again_from_a_keyframe(&mut net, "s1", &seen, caught_up);
    let end = net.sfu.stats();
    assert!(end.keyframe_requests_sent > after.keyframe_requests_sent);
    assert_eq!(end.rtp_shed, after.rtp_shed, "fresh media is not shed");
}

/// A linked worker behind on its channel: relayed packets that come too long after they
/// arrived at the publisher's worker are not sent to its subscribers; the publisher's own
/// subscribers got them.
#[test]
fn media_relayed_too_late_is_not_forwarded() {
    let mut net = Net::new();
    let b = net.add_linked_sfu();
    net.join("r1", "teacher", TEACHER, AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.join("r1", "s0", "10.0.1.3:4000", &[]);
    net.join_on(b, "r1", "s1", "10.0.1.4:4000", &[]);
    net.run_until(10 * SECOND, "both receive", |n| {
        ["s0", "s1"]
            .iter()
            .all(|id| n.client(id).frames(MediaKind::Video).len() > 10)
    });

    net.held_relays = Some(Vec::new());
    let holding = net.now;
    net.run_for(STALE_AFTER * 2);
    let held = net.held_relays.take().expect("held");
    let seen = video_frames(&net, "s1");
    assert!(held.len() > 20, "{} relayed packets held", held.len());
    assert!(frames_after(&net, "s0", MediaKind::Video, holding).len() > 5);
    let audio_seen = net.client("s1").frames(MediaKind::Audio).len();
    // Handed over late: the last one held is now older than the limit too.
    net.now += STALE_AFTER + net.step;
    let before = net.sfu_at(b).stats();
    let now = net.now;
    for (to, from, message) in held {
        net.sfu_at(to).handle_relay(now, from, message);
    }
    net.pump();
    let after = net.sfu_at(b).stats();
    assert!(after.rtp_shed > before.rtp_shed);
    assert_eq!(after.rtp_forwarded, before.rtp_forwarded, "none sent on");
    assert_eq!(video_frames(&net, "s1"), seen);
    assert_eq!(net.client("s1").frames(MediaKind::Audio).len(), audio_seen);

    let caught_up = net.now;
    receives_again_from_a_keyframe(&mut net, "s1", &seen, caught_up);
}
