//! Media through the real server with webrtc-rs bots (`lectern-bots`): an independent WebRTC
//! stack publishing generated VP8 + Opus and students checking every packet they receive.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use lectern_bots::{Bot, BotOptions, PublishOptions, TrackStats};
use lectern_proto::Role;
use lectern_tests::{DEADLINE, TestServer, wait_until};

fn options(s: &TestServer, sub: &str, role: Role) -> BotOptions {
    BotOptions {
        url: format!("ws://{}/ws", s.addr),
        token: s.token("physics", sub, &lectern_tests::display_name(sub), role),
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// The student's received track of this kind from `publisher`.
fn track(bot: &Bot, publisher: &str, kind: &str) -> Option<TrackStats> {
    bot.received()
        .into_iter()
        .find(|t| t.publisher == publisher && t.kind == kind)
}

fn packets(bot: &Bot, publisher: &str, kind: &str) -> u64 {
    track(bot, publisher, kind).map_or(0, |t| t.packets)
}

#[tokio::test]
async fn bot_students_receive_the_bot_instructors_video_and_audio_intact() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    // Keyframes only at the start and on request, so a late joiner's keyframe can only come
    // from the SFU's PLI and the publisher answering it.
    let publish = PublishOptions {
        keyframe_interval: None,
        ..PublishOptions::default()
    };
    let teacher = Bot::publish(options(&s, "grace", Role::Instructor), publish).await?;
    teacher.wait_connected(DEADLINE).await?;
    let grace = teacher.participant_id().to_owned();
    assert_eq!(grace, "grace");

    let mut students = Vec::new();
    for name in ["ada", "bob", "cy"] {
        students.push(Bot::subscribe(options(&s, name, Role::Student)).await?);
    }
    for st in &students {
        st.wait_connected(DEADLINE).await?;
    }
    // About two seconds of media: 30 fps of ~6 packets, 50 audio packets a second.
    wait_until("every student to receive video and audio", || async {
        students
            .iter()
            .all(|st| packets(st, &grace, "video") >= 300 && packets(st, &grace, "audio") >= 80)
    })
    .await?;

    // A student joining late starts with a keyframe, which the SFU asked the publisher for.
    let requests_before = teacher.sent().keyframe_requests.load(Ordering::Relaxed);
    let keyframes_before = teacher.sent().keyframes.load(Ordering::Relaxed);
    let late = Bot::subscribe(options(&s, "dee", Role::Student)).await?;
    late.wait_connected(DEADLINE).await?;
    wait_until("the late student to receive video and audio", || async {
        packets(&late, &grace, "video") >= 30 && packets(&late, &grace, "audio") >= 10
    })
    .await?;
    let late_video = track(&late, &grace, "video").expect("video track");
    assert_eq!(
        late_video.first_is_keyframe,
        Some(true),
        "the late joiner's first video packet must start a keyframe"
    );
    assert!(teacher.sent().keyframe_requests.load(Ordering::Relaxed) > requests_before);
    assert!(teacher.sent().keyframes.load(Ordering::Relaxed) > keyframes_before);
    students.push(late);

    // Stop sending; every gap a student saw must have been filled (NACK) by the end.
    teacher.close().await;
    wait_until("no unrecovered gaps", || async {
        students.iter().all(|st| {
            st.received()
                .iter()
                .all(|t| t.seq.lost() == 0 && t.packets > 0)
        })
    })
    .await?;
    for st in &students {
        let tracks = st.received();
        assert_eq!(tracks.len(), 2, "one video and one audio track: {tracks:?}");
        for t in &tracks {
            assert_eq!(t.publisher, grace);
            assert_eq!(
                t.bad_payloads,
                0,
                "{} {}: payload check failed ({:?})",
                st.participant_id(),
                t.kind,
                t.last_fault
            );
            assert_eq!(
                t.latency_us.count(),
                t.packets,
                "every packet carried its send time"
            );
        }
        let video = tracks.iter().find(|t| t.kind == "video").expect("video");
        assert_eq!(video.first_is_keyframe, Some(true));
        assert!(st.errors().is_empty(), "{:?}", st.errors());
        let offered = st.offered();
        assert!(
            offered
                .iter()
                .any(|o| o.participant_id == grace && o.kind == "video")
                && offered
                    .iter()
                    .any(|o| o.participant_id == grace && o.kind == "audio"),
            "{offered:?}"
        );
    }
    // A student may not publish: nothing of theirs is offered to anyone.
    assert!(
        students
            .iter()
            .flat_map(|st| st.offered())
            .all(|o| o.participant_id == grace)
    );
    for st in students {
        st.close().await;
    }
    Ok(())
}
