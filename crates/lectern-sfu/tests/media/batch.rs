//! Batches of received packets (`Sfu::begin_batch` / `end_batch`): each subscriber is sent a
//! batch's packets in one pass through its `Rtc`, and receives them as if sent one by one.

use std::net::SocketAddr;
use std::time::Duration;

use lectern_sfu::SfuStats;
use str0m::media::MediaKind;

use crate::support::{Net, Received};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SUBSCRIBERS: usize = 3;
/// As `outbox::MAX_PER_PASS`: a subscriber is sent at most this many of a batch's packets
/// per pass.
const MAX_PER_PASS: u64 = 8;

/// A teacher publishing audio and video to `SUBSCRIBERS` students, all receiving both.
fn lecture() -> Net {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.9.1:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    for i in 0..SUBSCRIBERS {
        net.join(
            "r1",
            &format!("s{i}"),
            &format!("10.0.9.{}:4000", 10 + i),
            &[],
        );
    }
    net.run_until(Duration::from_secs(10), "every student receives", |n| {
        (0..SUBSCRIBERS).all(|i| {
            let c = n.client(&format!("s{i}"));
            c.frames(MediaKind::Video).len() > 5 && c.frames(MediaKind::Audio).len() > 5
        })
    });
    net
}

/// Hold back what the teacher sends for `hold`, then hand it to the SFU as one batch (or, with
/// `batched` false, one datagram at a time as before batches). Returns the SFU's counters
/// before and after.
fn hand_over(net: &mut Net, hold: Duration, batched: bool) -> (SfuStats, SfuStats) {
    let teacher: SocketAddr = "10.0.9.1:4000".parse().unwrap();
    net.held_uplink = Some((teacher, Vec::new()));
    net.run_for(hold);
    let (_, held) = net.held_uplink.take().expect("held");
    assert!(held.len() >= 3, "the teacher sent {} datagrams", held.len());
    let (now, sfu_addr) = (net.now, net.sfu_addr);
    let before = net.sfu.stats();
    if batched {
        net.sfu.begin_batch();
    }
    for datagram in &held {
        net.sfu.handle_receive(now, teacher, sfu_addr, datagram);
    }
    if batched {
        net.sfu.end_batch(now);
    }
    let after = net.sfu.stats();
    net.pump();
    (before, after)
}

#[test]
fn a_batch_costs_one_send_pass_per_subscriber() {
    let mut net = lecture();
    // A few audio packets and a video frame: fewer than MAX_PER_PASS per student.
    let (before, after) = hand_over(&mut net, Duration::from_millis(36), true);
    let forwarded = after.rtp_forwarded - before.rtp_forwarded;
    let per_student = forwarded / SUBSCRIBERS as u64;
    assert!(
        (2..=MAX_PER_PASS).contains(&per_student),
        "{forwarded} packets forwarded to {SUBSCRIBERS} students"
    );
    assert_eq!(
        after.subscriber_sends - before.subscriber_sends,
        SUBSCRIBERS as u64,
        "one pass per student for {forwarded} packets"
    );

    // The same, one datagram at a time: a pass per packet and student.
    let (before, after) = hand_over(&mut net, Duration::from_millis(36), false);
    let forwarded = after.rtp_forwarded - before.rtp_forwarded;
    assert!(forwarded >= 2 * SUBSCRIBERS as u64, "{forwarded} forwarded");
    assert_eq!(after.subscriber_sends - before.subscriber_sends, forwarded);
}

/// Frames of one kind received since frame `from`: consecutive, intact, and their sequence
/// numbers without a gap or a step back.
fn assert_intact(id: &str, kind: MediaKind, frames: &[&Received]) {
    assert!(frames.len() > 5, "{id}: {} {kind:?} frames", frames.len());
    for w in frames.windows(2) {
        assert_eq!(w[1].frame, w[0].frame + 1, "{id} {kind:?}: frames in order");
        assert_eq!(
            w[1].seq.0,
            w[0].seq.1 + 1,
            "{id} {kind:?}: sequence numbers"
        );
    }
    assert!(frames.iter().all(|r| r.data_ok), "{id} {kind:?}: intact");
}

#[test]
fn a_long_batch_arrives_in_order_and_losses_are_resent() {
    let mut net = lecture();
    let marks: Vec<(usize, usize)> = (0..SUBSCRIBERS)
        .map(|i| {
            let c = net.client(&format!("s{i}"));
            (
                c.frames(MediaKind::Audio).len(),
                c.frames(MediaKind::Video).len(),
            )
        })
        .collect();
    // Every 5th large datagram to s0 is lost while the batch goes out: s0 NACKs them, and
    // the SFU resends from what str0m keeps of the batch.
    let s0: SocketAddr = "10.0.9.10:4000".parse().unwrap();
    net.lossy_link = Some((s0, 5));
    // 300 ms of media (some 45 packets per student) in one batch: more than MAX_PER_PASS, so
    // a student is sent its share in several passes.
    let (before, after) = hand_over(&mut net, Duration::from_millis(300), true);
    let forwarded = after.rtp_forwarded - before.rtp_forwarded;
    let sends = after.subscriber_sends - before.subscriber_sends;
    let per_student = forwarded / SUBSCRIBERS as u64;
    assert!(per_student > 3 * MAX_PER_PASS, "{forwarded} forwarded");
    assert_eq!(
        sends,
        SUBSCRIBERS as u64 * per_student.div_ceil(MAX_PER_PASS),
        "passes for {forwarded} packets"
    );
    assert!(net.dropped > 0, "nothing was lost towards s0");
    net.lossy_link = None;
    net.run_for(Duration::from_secs(1));

    for (i, (audio, video)) in marks.into_iter().enumerate() {
        let id = format!("s{i}");
        let c = net.client(&id);
        assert_intact(&id, MediaKind::Audio, &c.frames(MediaKind::Audio)[audio..]);
        assert_intact(&id, MediaKind::Video, &c.frames(MediaKind::Video)[video..]);
    }
}
