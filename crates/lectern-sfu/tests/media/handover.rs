//! The stage handed to a student: a new camera published in the middle of a class, and every
//! other participant's first picture of it (issue 16, "stage handovers are sometimes slow").

use std::time::Duration;

use str0m::media::MediaKind;

use crate::support::{Net, Received};

const SECOND: Duration = Duration::from_secs(1);
const SMALL: (u16, u16) = (320, 240);
const LARGE: (u16, u16) = (640, 480);

fn first_video(net: &Net, id: &str) -> Option<Received> {
    net.client(id)
        .frames(MediaKind::Video)
        .first()
        .map(|r| (*r).clone())
}

/// A browser that paused its large simulcast layer (its bandwidth estimate fell) a moment
/// ago: the layer still counts as active, so a new subscriber's target is the large one. It is
/// shown the small layer at once rather than nothing until the large layer is given up.
#[test]
fn a_new_subscriber_starts_on_a_layer_that_sends_while_the_large_one_is_paused() {
    let mut net = Net::new();
    net.join_simulcast(
        "r1",
        "presenter",
        "10.0.1.2:4000",
        &[("l", SMALL), ("h", LARGE)],
    );
    net.allow("presenter", true, true);
    net.client_mut("presenter").sending = true;
    net.run_for(SECOND);
    net.client_mut("presenter").simulcast = vec![("l", SMALL)];
    net.run_for(Duration::from_millis(100));

    let joined = net.now;
    net.join("r1", "viewer", "10.0.1.3:4000", &[]);
    net.run_until(2 * SECOND, "the viewer decodes video", |n| {
        first_video(n, "viewer").is_some()
    });
    let first = first_video(&net, "viewer").expect("a frame");
    assert!(first.keyframe, "it starts at a keyframe");
    assert_eq!(first.size, SMALL);
    // Simulated time: the handshake and a frame or two, not the second the paused layer
    // takes to count as gone.
    assert!(
        first.at - joined < Duration::from_millis(400),
        "{:?}",
        first.at - joined
    );
}

/// The keyframe asked for when a subscriber's video opened did not come (lost, or the
/// encoder was busy): it is asked for again, at most once per interval, until one comes.
#[test]
fn a_subscriber_waiting_for_its_first_keyframe_asks_again_until_one_comes() {
    let mut net = Net::new();
    net.join(
        "r1",
        "presenter",
        "10.0.1.2:4000",
        &[MediaKind::Audio, MediaKind::Video],
    );
    net.allow("presenter", true, true);
    net.client_mut("presenter").sending = true;
    net.run_for(SECOND);

    net.client_mut("presenter").ignore_keyframe_requests = true;
    let joined = net.now;
    net.join("r1", "viewer", "10.0.1.3:4000", &[]);
    net.run_for(SECOND);
    assert!(first_video(&net, "viewer").is_none());
    let requests = net.client("presenter").keyframe_requests.len();
    assert!(requests >= 2, "asked again: {requests} requests");
    assert!(
        requests <= 5,
        "at most one request per 300 ms interval: {requests} in one second"
    );

    net.client_mut("presenter").ignore_keyframe_requests = false;
    let answered = net.now;
    net.run_until(SECOND, "the viewer decodes video", |n| {
        first_video(n, "viewer").is_some()
    });
    let first = first_video(&net, "viewer").expect("a frame");
    assert!(first.keyframe);
    assert!(first.at > joined);
    assert!(
        first.at - answered < Duration::from_millis(400),
        "{:?}",
        first.at - answered
    );
}

/// The browser measures its videos a moment after they change: a view size for a video the
/// SFU has just stopped (its presenter left the stage) is ignored, not an error. (The server
/// reported a failed media command as the failure of the client's pending offer, so such an
/// error took the next presenter's camera offer down with it, until the worker said which
/// command failed.) A mid that never existed is
/// still refused.
#[test]
fn a_view_size_for_a_video_just_stopped_is_ignored() {
    let mut net = Net::new();
    net.join("r1", "viewer", "10.0.1.3:4000", &[]);
    net.join(
        "r1",
        "presenter",
        "10.0.1.2:4000",
        &[MediaKind::Audio, MediaKind::Video],
    );
    net.allow("presenter", true, true);
    net.client_mut("presenter").sending = true;
    net.run_for(SECOND);
    let mid = net.video_mid("viewer");
    net.view("viewer", 640, 480);

    // The presenter leaves the stage: its tracks stop for the viewer.
    let now = net.now;
    net.client_mut("presenter").sending = false;
    net.sfu.remove_peer(now, &net.peer("presenter"));
    net.pump();
    net.run_for(Duration::from_millis(100));

    let viewer = net.peer("viewer");
    net.sfu
        .set_view_size(net.now, &viewer, &mid, 320, 240)
        .expect("a view of a stopped video is ignored");
    // `media_view` goes through `set_view` (size and pause): the same there.
    for paused in [false, true] {
        net.sfu
            .set_view(net.now, &viewer, &mid, 320, 240, paused)
            .expect("a view of a stopped video is ignored");
    }
    let err = net
        .sfu
        .set_view_size(net.now, &viewer, "nope", 10, 10)
        .unwrap_err();
    assert_eq!(err.code(), "unknown_mid");
    let err = net
        .sfu
        .set_view(net.now, &viewer, "nope", 10, 10, false)
        .unwrap_err();
    assert_eq!(err.code(), "unknown_mid");
    net.run_for(SECOND);
}
