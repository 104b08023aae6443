//! A subscriber's m-lines are reused (issue 16): a line whose track ended is made inactive and
//! carries the next track of its kind, so a page's SDP stays as large as the most tracks it
//! received at once, however many stage handovers a class has (before, every ended track left
//! a stopped m-line in Chromium's SDP, and after some 20 handovers a page's answer passed the
//! server's 64 KiB frame limit).

use std::collections::HashMap;
use std::time::Duration;

use lectern_sfu::{MediaEvent, OfferedTrack};
use str0m::media::{Direction, MediaKind, Mid};

use crate::support::{Net, Received, sections};

const SECOND: Duration = Duration::from_secs(1);

/// Frame numbers of publisher `b` start here, so a receiver can tell whose frame it got.
const B_FRAMES: u32 = 1_000_000;

fn owner(r: &Received) -> &'static str {
    if r.frame >= B_FRAMES { "b" } else { "a" }
}

/// The publishers' cameras: the m-line each added the first time it was switched on, parked
/// inactive when off (as the web client does).
#[derive(Default)]
struct Cameras(HashMap<String, Mid>);

impl Cameras {
    fn switch(&mut self, net: &mut Net, id: &str, on: bool) {
        let (now, peer) = (net.now, net.peer(id));
        let existing = self.0.get(id).copied();
        let client = net.client_mut(id);
        // A camera switched on starts its encoder with a keyframe.
        client.want_keyframe |= on;
        let offer = match existing {
            Some(mid) => {
                let dir = if on {
                    Direction::SendOnly
                } else {
                    Direction::Inactive
                };
                client.offer_direction(now, mid, MediaKind::Video, dir)
            }
            None => {
                assert!(on, "a camera is switched on first");
                let offer = client.make_offer(now, &[MediaKind::Video]);
                let (mid, _) = *client.publish.last().expect("the camera's m-line");
                self.0.insert(id.to_string(), mid);
                offer
            }
        };
        let answer = net
            .sfu
            .accept_offer(now, &peer, &offer)
            .expect("the SFU answers");
        net.client_mut(id).accept_answer(now, &answer);
        net.pump();
    }
}

/// A class: `viewer` receives, `a` and `b` publish audio and may publish video.
fn class() -> Net {
    let mut net = Net::new();
    net.join("r1", "viewer", "10.0.3.1:4000", &[]);
    net.join("r1", "a", "10.0.3.2:4000", &[MediaKind::Audio]);
    net.join("r1", "b", "10.0.3.3:4000", &[MediaKind::Audio]);
    net.client_mut("b").next_video = B_FRAMES;
    for id in ["a", "b"] {
        net.allow(id, true, true);
        net.client_mut(id).sending = true;
    }
    net.run_until(SECOND, "everyone connected", |n| {
        ["viewer", "a", "b"].iter().all(|id| n.client(id).connected)
    });
    net
}

fn offers(net: &Net, id: &str) -> Vec<(String, Vec<OfferedTrack>)> {
    net.events_for(id)
        .into_iter()
        .filter_map(|e| match e {
            MediaEvent::Offer { sdp, tracks, .. } => Some((sdp.clone(), tracks.clone())),
            _ => None,
        })
        .collect()
}

/// The m-line section of `mid` in an SDP.
fn section<'a>(sdp: &'a str, mid: &str) -> &'a str {
    sections(sdp)
        .into_iter()
        .find(|s| s.contains(&format!("a=mid:{mid}\r\n")))
        .expect("the m-line")
}

fn video_frames_since(net: &Net, id: &str, since: std::time::Instant) -> Vec<Received> {
    net.client(id)
        .frames(MediaKind::Video)
        .into_iter()
        .filter(|r| r.at >= since)
        .cloned()
        .collect()
}

/// The viewer got b's video since `start` on `mid`, from a keyframe on (a frame of a's, sent
/// before, may be completed at the start).
fn assert_first_of_b_on(net: &Net, start: std::time::Instant, mid: &str) {
    let frames: Vec<Received> = video_frames_since(net, "viewer", start)
        .into_iter()
        .filter(|f| owner(f) == "b")
        .collect();
    assert!(frames.len() > 5);
    assert!(frames[0].keyframe, "b's video starts at a keyframe");
    assert!(frames.iter().all(|f| f.mid.to_string() == mid), "on {mid}");
}

#[test]
fn thirty_handovers_keep_a_subscribers_mlines_bounded_and_each_presenter_reaches_it() {
    let mut net = class();
    let mut cameras = Cameras::default();
    for i in 0..30 {
        let presenter = if i % 2 == 0 { "a" } else { "b" };
        let start = net.now;
        cameras.switch(&mut net, presenter, true);
        net.run_until(2 * SECOND, "the viewer sees the presenter", |n| {
            video_frames_since(n, "viewer", start)
                .iter()
                .filter(|r| owner(r) == presenter)
                .count()
                >= 5
        });
        cameras.switch(&mut net, presenter, false);
        net.run_for(Duration::from_millis(100));
    }

    // The viewer's description: the data channel, two microphones and one camera line, not one
    // m-line per camera switched on (33 before).
    let all = offers(&net, "viewer");
    let (last, _) = all.last().expect("offers");
    assert_eq!(sections(last).len(), 4, "{last}");
    let video_mids: Vec<&str> = all
        .iter()
        .flat_map(|(_, tracks)| tracks)
        .filter(|t| t.kind == lectern_sfu::MediaKind::Video)
        .map(|t| t.mid.as_str())
        .collect();
    assert_eq!(video_mids.len(), 30, "each camera offered once");
    assert!(
        video_mids.iter().all(|m| *m == video_mids[0]),
        "one line: {video_mids:?}"
    );
    let publishers: Vec<&str> = all
        .iter()
        .flat_map(|(_, tracks)| tracks)
        .filter(|t| t.kind == lectern_sfu::MediaKind::Video)
        .map(|t| t.publisher.participant.as_str())
        .collect();
    let expected: Vec<&str> = (0..30).map(|i| ["a", "b"][i % 2]).collect();
    assert_eq!(publishers, expected, "each occupant named in its offer");

    // On that one line: each presenter from a keyframe on, RTP numbering continuous across
    // occupants (the line keeps its SSRC).
    let frames = video_frames_since(&net, "viewer", net.now - Duration::from_secs(3600));
    let mut presenters = 0;
    for (n, f) in frames.iter().enumerate() {
        assert!(f.data_ok, "frame {n} intact");
        assert_eq!(f.mid.to_string(), video_mids[0]);
        let Some(prev) = n.checked_sub(1).map(|p| &frames[p]) else {
            assert!(f.keyframe, "the first frame is a keyframe");
            presenters += 1;
            continue;
        };
        if owner(prev) != owner(f) {
            assert!(f.keyframe, "frame {n}: a new occupant starts at a keyframe");
            presenters += 1;
        }
        assert_eq!(
            f.seq.0,
            prev.seq.1 + 1,
            "frame {n} ({}) follows frame {} ({}) without a gap",
            owner(f),
            n - 1,
            owner(prev)
        );
        assert!(f.rtp_time > prev.rtp_time, "frame {n}: timestamps go on");
    }
    assert_eq!(presenters, 30);
}

#[test]
fn a_line_taken_up_by_another_publisher_is_offered_with_that_publisher_and_not_paused() {
    let mut net = class();
    let mut cameras = Cameras::default();
    cameras.switch(&mut net, "a", true);
    net.run_until(SECOND, "the viewer sees a", |n| {
        n.client("viewer").frames(MediaKind::Video).len() > 5
    });
    let mid = net.video_mid("viewer");
    let lines = sections(&net.last_offer("viewer")).len();
    // The viewer does not show a's video at all (a tile on another page).
    let now = net.now;
    net.sfu
        .set_view(now, &net.peer("viewer"), &mid, 0, 0, true)
        .expect("paused");

    cameras.switch(&mut net, "a", false);
    let idle = net.last_offer("viewer");
    let line = section(&idle, &mid);
    assert!(line.contains("a=inactive\r\n"), "{line}");
    assert!(!line.starts_with("m=video 0 "), "not stopped: {line}");

    let start = net.now;
    cameras.switch(&mut net, "b", true);
    let (sdp, tracks) = offers(&net, "viewer").pop().expect("an offer");
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].mid, mid, "the idle line is taken up");
    assert_eq!(tracks[0].publisher.participant.as_str(), "b");
    assert_eq!(tracks[0].kind, lectern_sfu::MediaKind::Video);
    assert_eq!(sections(&sdp).len(), lines, "no m-line added");
    assert!(section(&sdp, &mid).contains("a=sendonly\r\n"));

    // The pause was a's: b's video is forwarded, from a keyframe.
    net.run_until(SECOND, "the viewer sees b", |n| {
        video_frames_since(n, "viewer", start).len() > 7
    });
    assert_first_of_b_on(&net, start, &mid);
}

#[test]
fn a_publisher_back_on_takes_the_line_with_its_own_stream_id() {
    let mut net = class();
    let mut cameras = Cameras::default();
    cameras.switch(&mut net, "a", true);
    cameras.switch(&mut net, "b", true);
    let video: Vec<OfferedTrack> = offers(&net, "viewer")
        .into_iter()
        .flat_map(|(_, t)| t)
        .filter(|t| t.kind == lectern_sfu::MediaKind::Video)
        .collect();
    let (mid_a, mid_b) = (video[0].mid.clone(), video[1].mid.clone());
    assert_ne!(mid_a, mid_b);
    // a's line goes idle first, then b's.
    cameras.switch(&mut net, "a", false);
    cameras.switch(&mut net, "b", false);

    // b comes back first: it takes its own line (its audio's stream id), not the first idle.
    cameras.switch(&mut net, "b", true);
    let (_, tracks) = offers(&net, "viewer").pop().expect("an offer");
    assert_eq!(tracks[0].mid, mid_b);
    cameras.switch(&mut net, "a", true);
    let (sdp, tracks) = offers(&net, "viewer").pop().expect("an offer");
    assert_eq!(tracks[0].mid, mid_a);
    // The stream ids: each video line grouped with its publisher's microphone.
    for (mid, who) in [(&mid_a, "a"), (&mid_b, "b")] {
        let msid = |s: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix("a=msid:"))
                .and_then(|v| v.split(' ').next())
                .map(str::to_string)
        };
        let audio = offers(&net, "viewer")
            .into_iter()
            .flat_map(|(_, t)| t)
            .find(|t| {
                t.kind == lectern_sfu::MediaKind::Audio && t.publisher.participant.as_str() == who
            })
            .expect("the publisher's audio");
        assert_eq!(
            msid(section(&sdp, mid)),
            msid(section(&sdp, &audio.mid)),
            "{who}"
        );
    }
    net.run_until(SECOND, "the viewer sees both again", |n| {
        let f = n.client("viewer").frames(MediaKind::Video);
        let recent = &f[f.len().saturating_sub(20)..];
        recent.iter().any(|r| owner(r) == "a") && recent.iter().any(|r| owner(r) == "b")
    });
}

/// The viewer's own offer crosses the SFU's offer that takes an idle line up again: the
/// browser ignores the SFU's offer, the SFU answers the browser's with the line still
/// inactive (as the browser last agreed), then offers the reuse again, and the viewer gets the
/// new presenter on that line.
#[test]
fn a_reuse_crossed_by_the_browsers_offer_is_offered_again_and_converges() {
    let mut net = class();
    let mut cameras = Cameras::default();
    cameras.switch(&mut net, "a", true);
    net.run_until(SECOND, "the viewer sees a", |n| {
        n.client("viewer").frames(MediaKind::Video).len() > 5
    });
    let mid = net.video_mid("viewer");
    cameras.switch(&mut net, "a", false);
    let lines = sections(&net.last_offer("viewer")).len();

    net.auto_answer = false;
    let before = net.offers_for("viewer");
    cameras.switch(&mut net, "b", true);
    assert_eq!(net.offers_for("viewer"), before + 1, "the reuse is offered");
    assert!(section(&net.last_offer("viewer"), &mid).contains("a=sendonly\r\n"));

    // The viewer switches its microphone on meanwhile: its offer wins.
    let (now, viewer) = (net.now, net.peer("viewer"));
    let offer = net
        .client_mut("viewer")
        .make_offer(now, &[MediaKind::Audio]);
    let answer = net
        .sfu
        .accept_offer(now, &viewer, &offer)
        .expect("the browser's offer wins");
    let line = section(&answer, &mid);
    assert!(line.contains("a=inactive\r\n"), "not agreed yet: {line}");
    net.client_mut("viewer").accept_answer(now, &answer);
    net.pump();

    // Offered again, with the same line and its new publisher.
    assert_eq!(
        net.offers_for("viewer"),
        before + 2,
        "the reuse is offered again"
    );
    let (sdp, tracks) = offers(&net, "viewer").pop().expect("an offer");
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].mid, mid);
    assert_eq!(tracks[0].publisher.participant.as_str(), "b");
    assert_eq!(
        sections(&sdp).len(),
        lines + 1,
        "only the viewer's microphone added"
    );
    let (now, viewer) = (net.now, net.peer("viewer"));
    let answer = net.client_mut("viewer").accept_offer(now, &sdp);
    net.sfu
        .accept_answer(now, &viewer, &answer)
        .expect("the SFU takes the answer");
    net.auto_answer = true;
    net.pump();

    let start = net.now;
    net.run_until(SECOND, "the viewer sees b on the reused line", |n| {
        video_frames_since(n, "viewer", start).len() > 7
    });
    assert_first_of_b_on(&net, start, &mid);
}
