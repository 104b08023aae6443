//! SDP as clients other than browsers read and write it (aiortc found these): candidates read
//! from any bundled m-line, and later offers that number extensions or codecs anew.

use std::time::{Duration, Instant};

use lectern_sfu::{PeerId, SfuError};
use str0m::Rtc;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind};
use str0m::rtp::{Extension, ExtensionMap};

use crate::support::{Client, Net, assert_answer_within_offer, payload_types, sections};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
/// A presenter: microphone, camera and screen.
const PRESENTING: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);
const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Every m-line that is part of the bundle (port not 0) carries the SFU's host candidate.
fn assert_candidates_in_every_mline(net: &Net, sdp: &str) {
    let port = net.sfu_addr.port().to_string();
    let bundled: Vec<&str> = sections(sdp)
        .into_iter()
        .filter(|s| !s.starts_with("m=video 0 ") && !s.starts_with("m=audio 0 "))
        .collect();
    assert!(bundled.len() >= 3, "{sdp}");
    for s in bundled {
        let lines: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect();
        assert!(
            lines.len() == 1 && lines[0].contains(&port),
            "m-line without the SFU's candidate: {s}"
        );
    }
}

/// `sdp` as a client sees it that reads a transport's candidates from the last m-line of the
/// bundle only (aiortc reads them from the m-line its transport was made for).
fn candidates_of_last_mline_only(sdp: &str) -> String {
    let sections = sections(sdp);
    let head = &sdp[..sdp
        .find(sections[0])
        .expect("sections are slices of the sdp")];
    let last = sections.len() - 1;
    let mut out = head.to_string();
    for (n, s) in sections.iter().enumerate() {
        for line in s.lines() {
            if n != last && line.starts_with("a=candidate:") {
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out
}

#[test]
fn a_client_reading_candidates_from_another_mline_connects_to_a_presentation() {
    let mut net = Net::new();
    let (now, presenter) = (net.now, PeerId::new("r1", "presenter"));
    net.clients
        .push(Client::new(now, "presenter", "10.0.1.1:4000"));
    net.sfu.add_peer(now, presenter.clone()).expect("add peer");
    let offer = net.client_mut("presenter").make_offer(now, PRESENTING);
    let answer = net
        .sfu
        .accept_offer(now, &presenter, &offer)
        .expect("sfu answers");
    assert_candidates_in_every_mline(&net, &answer);
    net.client_mut("presenter")
        .accept_answer(now, &candidates_of_last_mline_only(&answer));
    net.allow("presenter", true, true);
    net.client_mut("presenter").sending = true;
    net.run_until(2 * SECOND, "the presenter connected", |n| {
        n.client("presenter").connected
    });

    // A student joins during the presentation: the SFU offers three media m-lines (and the
    // application m-line that keeps the bundle from ever being empty).
    net.auto_answer = false;
    net.join("r1", "student", "10.0.1.2:4000", &[]);
    let offer = net.last_offer("student");
    assert_eq!(sections(&offer).len(), 4, "{offer}");
    // First, so it is the bundle's tag and never the stopped one.
    assert!(sections(&offer)[0].starts_with("m=application "), "{offer}");
    assert_candidates_in_every_mline(&net, &offer);
    let now = net.now;
    let answer = net
        .client_mut("student")
        .accept_offer(now, &candidates_of_last_mline_only(&offer));
    net.sfu
        .accept_answer(now, &net.peer("student"), &answer)
        .expect("sfu accepts answer");
    net.auto_answer = true;

    net.run_until(2 * SECOND, "both connected", |n| {
        n.client("presenter").connected && n.client("student").connected
    });
    net.run_until(2 * SECOND, "the student sees and hears", |n| {
        let c = n.client("student");
        !c.frames(MediaKind::Video).is_empty() && !c.frames(MediaKind::Audio).is_empty()
    });
}

/// `sdp` with the `a=extmap` id of extension `uri` changed to `id`.
fn renumber_extension(sdp: &str, uri: &str, id: u8) -> String {
    let moved: String = sdp
        .lines()
        .map(|l| match l.strip_prefix("a=extmap:") {
            Some(rest) if rest.split(' ').nth(1) == Some(uri) => format!("a=extmap:{id} {uri}"),
            _ => l.to_string(),
        })
        .map(|l| l + "\r\n")
        .collect();
    assert_ne!(moved, sdp, "{uri} is in the offer");
    moved
}

/// `sdp` with payload type `from` called `to` (m-lines, rtpmap, fmtp and rtcp-fb).
fn renumber_payload_type(sdp: &str, from: &str, to: &str) -> String {
    let moved: String = sdp
        .lines()
        .map(|l| {
            if l.starts_with("m=") {
                let words: Vec<&str> = l
                    .split(' ')
                    .map(|w| if w == from { to } else { w })
                    .collect();
                return words.join(" ");
            }
            for attr in ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"] {
                if let Some(rest) = l.strip_prefix(attr)
                    && let Some(rest) = rest.strip_prefix(from)
                    && rest.starts_with(' ')
                {
                    return format!("{attr}{to}{rest}");
                }
            }
            l.to_string()
        })
        .map(|l| l + "\r\n")
        .collect();
    assert_ne!(moved, sdp, "payload type {from} is in the offer");
    moved
}

#[test]
fn an_offer_moving_an_extension_is_refused_and_the_session_goes_on() {
    let mut net = Net::new();
    let teacher = PeerId::new("r1", "teacher");
    net.join("r1", "viewer", "10.0.1.1:4000", &[]);
    net.join("r1", "teacher", "10.0.1.2:4000", AV);
    net.allow("teacher", true, true);
    let c = net.client_mut("teacher");
    c.sending = true;
    c.audio_level = Some(-127);
    net.run_until(2 * SECOND, "the viewer receives", |n| {
        !n.client("viewer").frames(MediaKind::Video).is_empty()
    });
    let offers_to_viewer = net.offers_for("viewer");

    // The teacher shares the screen with an offer numbering the audio level extension anew
    // (aiortc numbers each offer from scratch).
    let now = net.now;
    let publishing = net.client("teacher").publish.len();
    let offer = net
        .client_mut("teacher")
        .make_offer(now, &[MediaKind::Video]);
    let renumbered = renumber_extension(&offer, AUDIO_LEVEL, 9);
    let error = net
        .sfu
        .accept_offer(now, &teacher, &renumbered)
        .expect_err("an offer that renumbers is refused");
    assert_eq!(error.code(), "renegotiation_unsupported");
    let SfuError::RenegotiationUnsupported(moved) = &error else {
        panic!("{error:?}");
    };
    assert!(
        moved.contains(&format!("{AUDIO_LEVEL} had id 1, now [9]")),
        "{moved}"
    );

    // Nothing changed: the viewer was offered nothing and still receives.
    let c = net.client_mut("teacher");
    c.pending = None; // the client rolls its offer back
    c.publish.truncate(publishing);
    let t = net.now;
    net.run_for(SECOND);
    assert_eq!(net.offers_for("viewer"), offers_to_viewer);
    assert!(
        net.client("viewer")
            .frames(MediaKind::Video)
            .iter()
            .any(|r| r.at > t)
    );

    // Offered again with the numbers of the first negotiation: accepted, and the audio levels
    // are still read (the teacher becomes the speaker).
    let now = net.now;
    let offer = net
        .client_mut("teacher")
        .make_offer(now, &[MediaKind::Video]);
    let answer = net
        .sfu
        .accept_offer(now, &teacher, &offer)
        .expect("same numbers: accepted");
    assert_answer_within_offer(&offer, &answer);
    assert!(
        answer.contains(&format!("a=extmap:1 {AUDIO_LEVEL}\r\n")),
        "{answer}"
    );
    net.client_mut("teacher").accept_answer(now, &answer);
    net.client_mut("teacher").audio_level = Some(-20);
    net.run_until(2 * SECOND, "the teacher is named", |n| {
        n.speakers() == [Some("teacher")]
    });
    net.run_until(2 * SECOND, "the viewer is offered the screen", |n| {
        n.offers_for("viewer") > offers_to_viewer
    });
}

#[test]
fn a_student_who_answered_first_then_offers_other_payload_types_is_refused() {
    let mut net = Net::new();
    let student = PeerId::new("r1", "student");
    net.join("r1", "teacher", "10.0.1.1:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    // media_start: the student's first negotiation is its answer to the SFU's offer.
    net.join("r1", "student", "10.0.1.2:4000", &[]);
    net.run_until(2 * SECOND, "the student connected", |n| {
        n.client("student").connected
    });
    let opus = net
        .last_offer("student")
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:")?.strip_suffix(" opus/48000/2"))
        .expect("opus offered")
        .to_string();

    // Allowed to speak, it offers its microphone with Opus under another payload type.
    net.allow("student", true, false);
    let now = net.now;
    let offer = net
        .client_mut("student")
        .make_offer(now, &[MediaKind::Audio]);
    let audio = sections(&offer)
        .into_iter()
        .find(|s| s.starts_with("m=audio"))
        .expect("an audio m-line");
    let free = (96..128)
        .map(|pt: u8| pt.to_string())
        .find(|pt| !offer.contains(&format!(":{pt} ")))
        .expect("a free payload type");
    assert!(payload_types(audio).contains(&opus.as_str()), "{audio}");
    let renumbered = renumber_payload_type(&offer, &opus, &free);
    let error = net
        .sfu
        .accept_offer(now, &student, &renumbered)
        .expect_err("an offer that renumbers is refused");
    let SfuError::RenegotiationUnsupported(moved) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        *moved,
        format!("opus/48000/2 had payload type {opus}, now [{free}]")
    );

    // The same offer with the agreed numbers: answered with payload types it offered, and the
    // student's audio levels are read.
    let c = net.client_mut("student");
    c.pending = None;
    c.publish.clear();
    let offer = c.make_offer(now, &[MediaKind::Audio]);
    let answer = net
        .sfu
        .accept_offer(now, &student, &offer)
        .expect("same numbers: accepted");
    assert_answer_within_offer(&offer, &answer);
    let c = net.client_mut("student");
    c.accept_answer(now, &answer);
    c.sending = true;
    c.audio_level = Some(-20);
    net.run_until(2 * SECOND, "the student is named", |n| {
        n.speakers() == [Some("student")]
    });
}

/// A client that numbers extensions and codecs its own way, as aiortc does (mid 1, audio level
/// 2, abs-send-time 3; Opus 96, VP8 97 with RTX 98), not as str0m and the SFU do by default.
fn numbered_like_aiortc(now: Instant, id: &str, addr: &str) -> Client {
    let mut exts = ExtensionMap::empty();
    exts.set(1, Extension::RtpMid);
    exts.set(2, Extension::AudioLevel);
    exts.set(3, Extension::AbsoluteSendTime);
    let mut config = Rtc::builder().set_extension_map(exts).clear_codecs();
    let codecs = config.codec_config();
    let format = FormatParams::default();
    codecs.add_config(
        96.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        format,
    );
    codecs.add_config(
        97.into(),
        Some(98.into()),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        format,
    );
    Client::with_rtc(now, id, addr.parse().unwrap(), config.build(now))
}

#[test]
fn a_client_whose_own_offer_comes_first_keeps_its_numbering() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.1.1:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_until(2 * SECOND, "the teacher connected", |n| {
        n.client("teacher").connected
    });

    // What PROTOCOL.md tells such a client: `media_start`, then its own offer at once, not
    // answering the SFU's offer that crosses it.
    let (now, student) = (net.now, PeerId::new("r1", "student"));
    net.clients
        .push(numbered_like_aiortc(now, "student", "10.0.1.2:4000"));
    net.auto_answer = false;
    net.sfu.add_peer(now, student.clone()).expect("add peer");
    net.pump();
    assert_eq!(
        net.offers_for("student"),
        1,
        "the SFU offered the room's tracks"
    );
    let offer = net
        .client_mut("student")
        .make_offer(now, &[MediaKind::Audio]);
    let answer = net
        .sfu
        .accept_offer(now, &student, &offer)
        .expect("the client's offer wins");
    assert_answer_within_offer(&offer, &answer);
    assert!(
        answer.contains(&format!("a=extmap:2 {AUDIO_LEVEL}\r\n")),
        "{answer}"
    );
    net.client_mut("student").accept_answer(now, &answer);
    net.auto_answer = true;
    net.pump();
    net.run_until(2 * SECOND, "the student sees the teacher", |n| {
        !n.client("student").frames(MediaKind::Video).is_empty()
    });

    // Its next offer, numbered the same way again, is answered; its audio levels are read.
    let now = net.now;
    let offer = net
        .client_mut("student")
        .make_offer(now, &[MediaKind::Video]);
    let answer = net
        .sfu
        .accept_offer(now, &student, &offer)
        .expect("same numbering: accepted");
    assert_answer_within_offer(&offer, &answer);
    net.client_mut("student").accept_answer(now, &answer);
    net.allow("student", true, true);
    let c = net.client_mut("student");
    c.sending = true;
    c.audio_level = Some(-20);
    net.run_until(2 * SECOND, "the student is named", |n| {
        n.speakers() == [Some("student")]
    });
}

/// The bundled m-lines of an SDP: the mids of its `a=group:BUNDLE` line.
fn bundle_group(sdp: &str) -> Vec<String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=group:BUNDLE"))
        .map(|mids| mids.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Chrome (max-bundle) refuses a description with an empty BUNDLE group ("no bundle group
/// found"), and tears the transport down when the bundle's first m-line is stopped: the data
/// channel's line comes first and stays bundled. The offer that ends a student's last received
/// tracks makes their lines inactive (kept for the next tracks), never stopped.
#[test]
fn the_offer_that_ends_a_students_last_track_keeps_the_data_channel_bundled_first() {
    let mut net = Net::new();
    net.join("r1", "teacher", "10.0.2.1:4000", AV);
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.join("r1", "student", "10.0.2.2:4000", &[]);
    net.run_until(3 * SECOND, "the student hears and sees the teacher", |n| {
        let c = n.client("student");
        !c.frames(MediaKind::Video).is_empty() && !c.frames(MediaKind::Audio).is_empty()
    });
    let first = net.last_offer("student");
    assert!(first.contains("\r\nm=application "), "{first}");

    // The teacher leaves: both of the student's media m-lines go inactive.
    let offers = net.offers_for("student");
    let now = net.now;
    net.sfu.remove_peer(now, &net.peer("teacher"));
    net.run_until(SECOND, "an offer ending the teacher's tracks", |n| {
        n.offers_for("student") > offers
    });
    let idle = net.last_offer("student");
    let all = sections(&idle);
    assert!(all[0].starts_with("m=application "), "first: {idle}");
    let media: Vec<&str> = all
        .iter()
        .copied()
        .filter(|s| !s.starts_with("m=application"))
        .collect();
    assert_eq!(media.len(), 2);
    assert!(
        media
            .iter()
            .all(|s| s.contains("a=inactive\r\n") && !s.contains(" 0 UDP/")),
        "{idle}"
    );
    let bundled = bundle_group(&idle);
    assert_eq!(bundled.len(), 3, "every line stays bundled: {idle}");
    assert!(
        all.iter()
            .any(|s| s.starts_with("m=application ") && !s.starts_with("m=application 0 ")),
        "{idle}"
    );

    // The student answered it (auto_answer) and is still connected: a new teacher is offered.
    net.run_for(SECOND);
    assert!(net.client("student").connected);
    net.join("r1", "teacher2", "10.0.2.3:4000", AV);
    net.allow("teacher2", true, true);
    net.client_mut("teacher2").sending = true;
    let before = net.client("student").frames(MediaKind::Video).len();
    net.run_until(3 * SECOND, "the student sees the new teacher", |n| {
        n.client("student").frames(MediaKind::Video).len() > before
    });
}
