//! A student on a poor link (issue 15, point 6): one subscriber's downlink gets slower than the
//! large simulcast layer (a queue in front of it, then drops, as `tc ... tbf` does). It is moved
//! to the small layer, with no long gap in its video, while a subscriber on an open link keeps
//! the large one. It goes back to the large layer only once a probe found its link has room for
//! it: on a link still too slow it never gets the large layer's video (no frozen picture every
//! try), and once the link widens it is back on the large layer within a bounded time.

use std::time::{Duration, Instant};

use str0m::media::MediaKind;

use crate::support::{Bottleneck, Net, Received};

const SECOND: Duration = Duration::from_secs(1);
const SMALL: (u16, u16) = (320, 180);
const LARGE: (u16, u16) = (640, 360);

/// A teacher sending 30 frames a second on two layers: ~170 kbit/s small, ~800 kbit/s large
/// (with headers), and two students receiving it, both on the large layer.
fn class() -> Net {
    let mut net = Net::new();
    net.join("r1", "open", "10.0.1.1:4000", &[]);
    net.join("r1", "poor", "10.0.1.3:4000", &[]);
    net.join_simulcast(
        "r1",
        "teacher",
        "10.0.1.2:4000",
        &[("l", SMALL), ("h", LARGE)],
    );
    let teacher = net.client_mut("teacher");
    teacher.layer_bytes = vec![600, 3000];
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_until(5 * SECOND, "both students on the large layer", |n| {
        on(n, "open") == Some(LARGE) && on(n, "poor") == Some(LARGE)
    });
    net.run_for(2 * SECOND);
    net
}

/// The layer of the last video frame `id` received.
fn on(net: &Net, id: &str) -> Option<(u16, u16)> {
    net.client(id)
        .frames(MediaKind::Video)
        .last()
        .map(|r| r.size)
}

/// The video frames `id` received after `since`.
fn frames_since<'a>(net: &'a Net, id: &str, since: Instant) -> Vec<&'a Received> {
    net.client(id)
        .frames(MediaKind::Video)
        .into_iter()
        .filter(|r| r.at > since)
        .collect()
}

/// The longest time between two video frames `id` received since `since`.
fn longest_gap(net: &Net, id: &str, since: Instant) -> Duration {
    let at: Vec<Instant> = frames_since(net, id, since).iter().map(|r| r.at).collect();
    at.windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX)
}

/// The 400 kbit/s link of the browser test: `tbf rate 400kbit burst 16kb latency 300ms`.
fn slow_link() -> Bottleneck {
    Bottleneck::new("10.0.1.3:4000", 400_000, 31_000)
}

#[test]
fn a_student_on_a_slow_link_gets_the_small_layer_and_the_one_on_an_open_link_keeps_the_large() {
    let mut net = class();
    let cuts = net.sfu.stats().downlink_cuts;
    assert_eq!(cuts, 0, "no congestion on open links");

    let limited = net.now;
    net.bottleneck = Some(slow_link());
    // Found congested within a second or so (statistics every 500 ms)...
    net.run_until(2 * SECOND, "the link found congested", |n| {
        n.sfu.stats().downlink_cuts > 0
    });
    let cut = net.now;
    // ... and the large layer stopped at once: the queue drains within its 600 ms, so the
    // link drops nothing more.
    net.run_for(SECOND);
    let dropped = net.bottleneck.as_ref().unwrap().dropped;
    assert!(dropped > 0);
    // On the small layer once the receiver gave up on what the link dropped before (str0m's
    // waits for its NACKs; a browser shows the keyframe at once).
    net.run_until(5 * SECOND, "the limited student on the small layer", |n| {
        on(n, "poor") == Some(SMALL)
    });
    let switched = net.now;
    let since_limit = frames_since(&net, "poor", limited);
    let first_small = since_limit.iter().position(|r| r.size == SMALL).unwrap();
    assert!(
        since_limit[first_small].keyframe,
        "the switch starts at a keyframe"
    );
    assert!(since_limit[first_small..].iter().all(|r| r.size == SMALL));

    // Until just before its link is probed (see the tests below):
    net.run_for(cut + lectern_sfu::FIRST_HOLD - SECOND - net.now);
    assert_eq!(net.sfu.stats().downlink_probes, 0);
    // The limited student stays on the small layer and its video goes on: a frame at least
    // every 200 ms (30 a second sent), the link no longer congested.
    let after = frames_since(&net, "poor", switched);
    assert!(after.iter().all(|r| r.size == SMALL && r.data_ok));
    let secs = (net.now - switched).as_secs_f64();
    assert!(
        after.len() as f64 > 25.0 * secs,
        "{} frames in {secs:.1} s",
        after.len()
    );
    let gap = longest_gap(&net, "poor", switched);
    assert!(gap <= Duration::from_millis(200), "longest gap {gap:?}");
    // The student on the open link kept the large layer all along.
    let open = frames_since(&net, "open", limited);
    assert!(open.iter().all(|r| r.size == LARGE), "open student moved");
    assert!(longest_gap(&net, "open", limited) <= Duration::from_millis(100));
    assert_eq!(net.bottleneck.as_ref().unwrap().dropped, dropped);
}

/// The first large-layer frame `id` received after `since`, if any.
fn large_since(net: &Net, id: &str, since: Instant) -> Option<Instant> {
    frames_since(net, id, since)
        .iter()
        .find(|r| r.size == LARGE)
        .map(|r| r.at)
}

/// The class with the poor student's link limited, once it is on the small layer: when it was
/// found congested, and when it was on the small layer.
fn limited_class() -> (Net, Instant, Instant) {
    let mut net = class();
    net.bottleneck = Some(slow_link());
    net.run_until(2 * SECOND, "the link found congested", |n| {
        n.sfu.stats().downlink_cuts > 0
    });
    let cut = net.now;
    net.run_until(5 * SECOND, "the limited student on the small layer", |n| {
        on(n, "poor") == Some(SMALL)
    });
    let small = net.now;
    (net, cut, small)
}

/// Prints the longest gaps in `id`'s video after `since` (the figures of docs/BENCHMARKS.md).
fn print_gaps(net: &Net, id: &str, since: Instant, what: &str) {
    let at: Vec<Instant> = frames_since(net, id, since).iter().map(|r| r.at).collect();
    let mut gaps: Vec<(u64, u64)> = at
        .windows(2)
        .map(|w| ((w[0] - since).as_secs(), (w[1] - w[0]).as_millis() as u64))
        .filter(|&(_, ms)| ms > 100)
        .collect();
    gaps.sort_by_key(|&(_, ms)| std::cmp::Reverse(ms));
    gaps.truncate(8);
    eprintln!("{what}: gaps over 100 ms in {id}'s video (s after, ms): {gaps:?}");
}

/// How many of the SRTP datagrams in `sent` repeat an earlier one's SSRC and sequence number;
/// asserts that each is byte for byte that earlier one.
fn same_index_identical(sent: &[Vec<u8>]) -> usize {
    let mut first: std::collections::HashMap<(u32, u16), &[u8]> = Default::default();
    let mut copies = 0;
    for d in sent {
        // RTP (not RTCP: packet types 192-223 in the second byte), version 2.
        if d.len() < 12 || d[0] >> 6 != 2 || (192..224).contains(&d[1]) {
            continue;
        }
        let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
        let seq = u16::from_be_bytes([d[2], d[3]]);
        match first.get(&(ssrc, seq)) {
            Some(earlier) => {
                assert_eq!(
                    *earlier,
                    &d[..],
                    "ssrc {ssrc} seq {seq} sent with other bytes"
                );
                copies += 1;
            }
            None => {
                first.insert((ssrc, seq), d);
            }
        }
    }
    copies
}

#[test]
fn on_a_link_still_too_slow_probes_fail_and_the_student_never_gets_the_large_layer() {
    let (mut net, cut, small) = limited_class();
    let dropped = net.bottleneck.as_ref().unwrap().dropped;
    // Through the first probe, what the SFU sends the student: a probe's copies are the very
    // datagram of their original (the same SRTP index over other bytes would give the key
    // stream, and under AES-GCM the authentication key, away).
    net.tap = Some(("10.0.1.3:4000".parse().unwrap(), Vec::new()));
    net.run_until(
        lectern_sfu::FIRST_HOLD + 5 * SECOND,
        "a failed probe",
        |n| n.sfu.stats().downlink_probes_failed > 0,
    );
    let (_, sent) = net.tap.take().unwrap();
    let copies = same_index_identical(&sent);
    eprintln!("a probe: {copies} copies among {} datagrams", sent.len());
    assert!(copies > 100, "{copies} copies");
    // Long enough for four probes (holds of 10, 20, 40 and 40 s) and, before probes, for
    // three timed tries of the large layer (holds of 20, 40 and 80 s).
    net.run_for(150 * SECOND - (net.now - cut));
    let stats = net.sfu.stats();
    print_gaps(&net, "poor", small, "failed probes");
    eprintln!(
        "probes {} failed {} cuts {} dropped {}",
        stats.downlink_probes,
        stats.downlink_probes_failed,
        stats.downlink_cuts,
        net.bottleneck.as_ref().unwrap().dropped - dropped
    );
    // The link was probed, and each probe failed...
    assert!(
        stats.downlink_probes >= 4,
        "{} probes",
        stats.downlink_probes
    );
    assert_eq!(stats.downlink_probes_failed, stats.downlink_probes);
    // ... so the student never got a frame of the large layer, and no second cut was needed.
    assert_eq!(large_since(&net, "poor", small), None, "switched up");
    assert_eq!(stats.downlink_cuts, 1);
    // Its small-layer video went on through the probes, every frame whole: a frame at least
    // every second (a probe fills the link's queue, 620 ms, before it is found).
    let after = frames_since(&net, "poor", small);
    assert!(after.iter().all(|r| r.size == SMALL && r.data_ok));
    let gap = longest_gap(&net, "poor", small);
    assert!(gap <= SECOND, "longest gap {gap:?}");
    // The student on the open link kept the large layer all along, never probed.
    assert!(
        frames_since(&net, "open", cut)
            .iter()
            .all(|r| r.size == LARGE)
    );
}

#[test]
fn once_the_link_widens_a_probe_passes_and_the_student_is_back_on_the_large_layer_soon() {
    let (mut net, cut, small) = limited_class();
    // A while on the slow link: the holds grew (three failed probes, or two failed tries:
    // the next try would come 80 s after the second).
    net.run_for(75 * SECOND - (net.now - cut));
    assert_eq!(large_since(&net, "poor", small), None);
    let probes = net.sfu.stats().downlink_probes;
    assert!(probes >= 2, "{probes} probes");
    // The link widens to 2 Mbit/s: the next probe passes, and the student is on the large
    // layer within the longest hold, a probe and a keyframe.
    net.bottleneck.as_mut().unwrap().rate = 2_000_000;
    let widened = net.now;
    net.run_until(60 * SECOND, "back on the large layer", |n| {
        large_since(n, "poor", widened).is_some()
    });
    let up = large_since(&net, "poor", widened).unwrap();
    eprintln!(
        "back on the large layer {:.1} s after the link widened",
        (up - widened).as_secs_f64()
    );
    let stats = net.sfu.stats();
    assert_eq!(stats.downlink_probes_failed + 1, stats.downlink_probes);
    // It stays there, its video whole, past a trial.
    net.run_for(lectern_sfu::TRIAL + SECOND);
    let after = frames_since(&net, "poor", up);
    assert!(after.iter().all(|r| r.size == LARGE && r.data_ok));
    assert!(longest_gap(&net, "poor", up) <= Duration::from_millis(200));
    assert_eq!(net.sfu.stats().downlink_cuts, 1);
}
