//! Glare: the browser's offer crosses one of the SFU's. The browser ignores the SFU's offer
//! while its own is pending (its offer wins), so the SFU must offer those changes again after
//! answering it, or after refusing it, and a page ends up with every track offered to it.

use std::time::Duration;

use str0m::media::MediaKind;

use crate::support::{Net, sections};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

/// Answer the SFU's last offer to `id`, as a browser in `stable` does.
fn answer_last_offer(net: &mut Net, id: &str) {
    let offer = net.last_offer(id);
    let (now, peer) = (net.now, net.peer(id));
    let answer = net.client_mut(id).accept_offer(now, &offer);
    net.sfu
        .accept_answer(now, &peer, &answer)
        .expect("sfu accepts the answer");
    net.pump();
}

#[test]
fn an_offer_refused_while_the_sfu_offer_was_ignored_still_gets_that_offer_made_again() {
    let mut net = Net::new();
    net.auto_answer = false;
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.join("r1", "teacher", "10.0.1.2:4000", AV);
    net.allow("teacher", true, true);
    net.run_until(SECOND, "the SFU offers s1 the teacher's tracks", |n| {
        n.offers_for("s1") == 1
    });

    // s1 has an offer of its own in flight, so it ignores the SFU's; the SFU refuses s1's
    // offer (here: not SDP). Before, the SFU kept waiting for the answer to its ignored offer
    // and never offered s1 anything again.
    let (now, s1) = (net.now, net.peer("s1"));
    let err = net.sfu.accept_offer(now, &s1, "v=0\r\n").unwrap_err();
    assert_eq!(err.code(), "invalid_sdp");
    net.pump();
    assert_eq!(net.offers_for("s1"), 2, "the ignored offer is made again");

    answer_last_offer(&mut net, "s1");
    net.client_mut("teacher").sending = true;
    net.run_for(SECOND);
    assert!(net.client("s1").frames(MediaKind::Video).len() > 20);
    assert!(net.client("s1").frames(MediaKind::Audio).len() > 40);
}

#[test]
fn an_idle_line_crossed_by_the_browsers_offer_is_in_its_answer_and_the_next_presenter_reaches_the_page()
 {
    let mut net = Net::new();
    net.join("r1", "s1", "10.0.1.1:4000", &[]);
    net.join("r1", "teacher", "10.0.1.2:4000", AV);
    net.join("r1", "next", "10.0.1.3:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_until(SECOND, "s1 receives the teacher", |n| {
        n.client("s1").frames(MediaKind::Video).len() > 5
    });
    let old_mid = net.video_mid("s1");

    // The teacher leaves the stage: the SFU offers s1 its tracks' lines inactive, while s1 (the
    // next presenter) offers its camera. s1 ignores the SFU's offer; its own wins.
    net.auto_answer = false;
    net.allow("s1", true, true);
    let now = net.now;
    net.client_mut("teacher").sending = false;
    net.sfu.remove_peer(now, &net.peer("teacher"));
    net.pump();
    let stops = net.offers_for("s1");
    let (now, s1) = (net.now, net.peer("s1"));
    let offer = net.client_mut("s1").make_offer(now, AV);
    let answer = net
        .sfu
        .accept_offer(now, &s1, &offer)
        .expect("the browser's offer wins");
    // The answer has the line inactive: s1 learns of it from there, though it never saw the
    // SFU's offer, and nothing is left waiting for an answer.
    let idle = sections(&answer)
        .into_iter()
        .find(|s| s.contains(&format!("a=mid:{old_mid}\r\n")))
        .expect("the old video's m-line");
    assert!(idle.contains("a=inactive\r\n"), "{idle}");
    net.client_mut("s1").accept_answer(now, &answer);
    net.auto_answer = true;
    net.pump();
    assert_eq!(net.offers_for("s1"), stops, "nothing more to offer s1");
    // The other page answers the stop it was offered meanwhile.
    answer_last_offer(&mut net, "next");

    // s1 presents, then the next presenter, and each reaches the other.
    net.allow("next", true, true);
    net.client_mut("next").sending = true;
    net.client_mut("s1").sending = true;
    let before = net.client("s1").frames(MediaKind::Video).len();
    net.run_until(2 * SECOND, "s1 receives the next presenter", |n| {
        n.client("s1").frames(MediaKind::Video).len() > before + 20
    });
    net.run_until(2 * SECOND, "next receives s1", |n| {
        n.client("next").frames(MediaKind::Video).len() > 20
    });
}
