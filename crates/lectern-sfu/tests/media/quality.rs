//! Network quality from str0m's statistics: good on a clean link, poor when a subscriber
//! loses packets; changes reported per room.

use std::time::Duration;

use lectern_sfu::{MediaEvent, NetworkQuality};
use str0m::media::MediaKind;

use crate::support::Net;

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];

fn last(net: &Net, id: &str) -> Option<NetworkQuality> {
    net.qualities(id).last().copied()
}

#[test]
fn quality_is_good_on_a_clean_link_poor_on_a_lossy_one_and_good_again() {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.join("r1", "teacher", "10.0.1.2:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_until(Duration::from_secs(10), "both good", |n| {
        last(n, "s1") == Some(NetworkQuality::Good)
            && last(n, "teacher") == Some(NetworkQuality::Good)
    });
    // Changes only: one report each so far.
    assert_eq!(net.qualities("s1"), vec![NetworkQuality::Good]);
    assert_eq!(net.qualities("teacher"), vec![NetworkQuality::Good]);
    // Every report names the room, and a check reports a room's changes in one event.
    let rooms: Vec<&str> = net
        .events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::NetworkQuality { room, changes } => {
                assert!(!changes.is_empty());
                Some(room.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(rooms.iter().all(|r| *r == "r1"), "{rooms:?}");

    // One large packet in four towards the subscriber is lost.
    net.lossy_link = Some(("10.0.1.1:4000".parse().unwrap(), 4));
    net.run_until(Duration::from_secs(10), "s1 poor", |n| {
        last(n, "s1") == Some(NetworkQuality::Poor)
    });
    assert_eq!(last(&net, "teacher"), Some(NetworkQuality::Good));
    assert_eq!(
        net.sfu.network_quality(&net.peer("s1")),
        Some(NetworkQuality::Poor)
    );

    net.lossy_link = None;
    net.run_until(Duration::from_secs(10), "s1 good again", |n| {
        last(n, "s1") == Some(NetworkQuality::Good)
    });
}
