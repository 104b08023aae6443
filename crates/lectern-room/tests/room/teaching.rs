//! Class-wide teaching controls: mute all, allow everyone to speak, lecture and seminar mode,
//! camera request/allow/stop, and the attendance tally; the media intents each causes.

use lectern_proto::{
    AttendanceEntry, ClassMode, ClientMessage, ErrorCode, Role, RoomEvent, ServerMessage,
};
use lectern_room::{ModerationAction, PersistRecord, RoomConfig, RoomInit, SessionSchedule};

use crate::support::*;

fn moderation(outs: &[lectern_room::Output]) -> Vec<(ModerationAction, Option<String>)> {
    persists(outs)
        .iter()
        .filter_map(|r| match r {
            PersistRecord::Moderation { action, target, .. } => {
                Some((*action, target.as_ref().map(|t| t.0.clone())))
            }
            _ => None,
        })
        .collect()
}

fn allow(h: &mut H, id: &str) {
    h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid(id),
        },
    );
}

fn info(h: &H, id: &str) -> lectern_proto::ParticipantInfo {
    h.room.participant(&pid(id)).expect("in the room")
}

#[test]
fn mute_all_mutes_every_student_and_the_presenter_and_turns_speak_all_off() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.req(1, ClientMessage::SpeakAll { allowed: true });
    allow(&mut h, "s1");
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s2"),
        },
    );
    let outs = h.req(1, ClientMessage::MuteAll);
    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].1, RoomEvent::AllMuted { by: pid("t") });
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3), c(4)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert_eq!(moderation(&outs), vec![(ModerationAction::MuteAll, None)]);
    assert_eq!(
        media(&outs),
        vec![publish("s1", false, false), publish("s2", false, true)]
    );
    for id in ["s1", "s2"] {
        let p = info(&h, id);
        assert!(p.hard_muted && !p.speak_granted && !p.can_speak, "{p:?}");
    }
    assert!(info(&h, "t").can_speak && !info(&h, "t").hard_muted);
    assert!(info(&h, "ta").can_speak);
    assert!(!h.room.speak_all());
    assert!(!h.room.snapshot_for(&pid("t")).unwrap().speak_all);

    // Again: announced again (like `mute`), but nothing changes for the media plane.
    let outs = h.req(1, ClientMessage::MuteAll);
    assert_eq!(kinds(&outs), vec!["all_muted"]);
    assert!(media(&outs).is_empty());
}

#[test]
fn mute_all_also_mutes_the_lobby_so_every_client_applies_it_alike() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    let outs = h.req(1, ClientMessage::MuteAll);
    assert_eq!(kinds(&outs), vec!["all_muted"]);
    assert!(info(&h, "s1").hard_muted);
    assert!(
        media(&outs).is_empty(),
        "the lobby publishes nothing anyway"
    );
}

#[test]
fn speak_all_lets_every_student_speak_and_lifts_hard_mutes() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("s2"),
        },
    );
    let outs = h.req(1, ClientMessage::SpeakAll { allowed: true });
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::SpeakAllChanged {
            allowed: true,
            by: pid("t")
        }
    );
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::AllowSpeakAll, None)]
    );
    assert_eq!(
        media(&outs),
        vec![publish("s1", true, false), publish("s2", true, false)]
    );
    assert!(info(&h, "s1").can_speak && info(&h, "s2").can_speak);
    assert!(!info(&h, "s2").hard_muted);
    assert!(!info(&h, "o").can_speak, "observers only watch and listen");
    assert!(h.room.snapshot_for(&pid("s1")).unwrap().speak_all);

    // The same value again: a plain ack, no event, no intent.
    let seq = h.room.seq();
    let outs = h.req(1, ClientMessage::SpeakAll { allowed: true });
    assert_eq!(ack(&outs, h.last_request()), Some(None));
    assert_eq!(outs.len(), 1);
    assert_eq!(h.room.seq(), seq);

    // A student muted while everyone may speak is muted all the same.
    let outs = h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
}

#[test]
fn speak_all_off_clears_every_grant_but_the_presenter_keeps_the_stage_audio() {
    let mut h = H::class();
    h.req(1, ClientMessage::SpeakAll { allowed: true });
    allow(&mut h, "s1");
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s2"),
        },
    );
    let outs = h.req(1, ClientMessage::SpeakAll { allowed: false });
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::SpeakAllChanged {
            allowed: false,
            by: pid("t")
        }
    );
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::RevokeSpeakAll, None)]
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    assert!(!info(&h, "s1").speak_granted && !info(&h, "s1").can_speak);
    assert!(
        info(&h, "s2").can_speak,
        "the presenter keeps the stage's audio"
    );
}

#[test]
fn seminar_mode_allows_every_student_camera_and_lecture_stops_them() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s2"),
        },
    );
    let outs = h.req(
        1,
        ClientMessage::SetMode {
            mode: ClassMode::Seminar,
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::ModeChanged {
            mode: ClassMode::Seminar,
            by: pid("t")
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3), c(4)]);
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::SeminarMode, None)]
    );
    // The presenter could already send video: no intent for them.
    assert_eq!(media(&outs), vec![publish("s1", false, true)]);
    assert!(info(&h, "s1").camera_allowed && info(&h, "s2").camera_allowed);
    assert!(!info(&h, "o").camera_allowed);
    assert_eq!(h.room.mode(), ClassMode::Seminar);
    assert_eq!(
        h.room.snapshot_for(&pid("s1")).unwrap().mode,
        ClassMode::Seminar
    );

    // A student arriving in a seminar may send video at once.
    let outs = h.join(5, "s3", Role::Student);
    assert_eq!(media(&outs), vec![publish("s3", false, true)]);
    assert!(info(&h, "s3").camera_allowed);

    // Same mode again: a plain ack.
    let outs = h.req(
        1,
        ClientMessage::SetMode {
            mode: ClassMode::Seminar,
        },
    );
    assert_eq!(outs.len(), 1);
    assert_eq!(ack(&outs, h.last_request()), Some(None));

    let outs = h.req(
        1,
        ClientMessage::SetMode {
            mode: ClassMode::Lecture,
        },
    );
    assert_eq!(kinds(&outs), vec!["mode_changed"]);
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::LectureMode, None)]
    );
    assert_eq!(
        media(&outs),
        vec![publish("s1", false, false), publish("s3", false, false)]
    );
    assert!(!info(&h, "s2").camera_allowed);
    assert!(
        h.room.media_permissions(&pid("s2")).unwrap().1,
        "presenting"
    );
}

#[test]
fn a_room_created_in_seminar_mode_lets_everyone_speak_and_send_video() {
    let config = RoomConfig {
        auto_start: true,
        mode: ClassMode::Seminar,
        ..config()
    };
    let mut h = H::with(config, RoomInit::default());
    h.join(1, "t", Role::Instructor);
    let outs = h.join(2, "s1", Role::Student);
    assert_eq!(media(&outs), vec![publish("s1", true, true)]);
    let snapshot = snapshot_to(&outs, 2).unwrap();
    assert_eq!(snapshot.mode, ClassMode::Seminar);
    assert!(snapshot.speak_all);
    assert!(snapshot.roster[1].camera_allowed && snapshot.roster[1].can_speak);
    let outs = h.join(3, "o", Role::Observer);
    assert_eq!(media(&outs), vec![publish("o", false, false)]);
}

#[test]
fn a_student_waiting_in_a_seminar_lobby_gets_video_when_let_in() {
    let config = RoomConfig {
        mode: ClassMode::Seminar,
        ..config()
    };
    let mut h = H::with(config, RoomInit::default());
    h.join(1, "t", Role::Instructor);
    let outs = h.join(2, "s1", Role::Student);
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    let outs = h.req(1, ClientMessage::ClassStart);
    assert_eq!(media(&outs), vec![publish("s1", true, true)]);
}

#[test]
fn camera_request_allow_and_stop_change_a_student_video() {
    let mut h = H::class();
    let outs = h.req(
        1,
        ClientMessage::CameraRequest {
            participant_id: pid("s1"),
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::CameraRequested {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::CameraRequest, Some("s1".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s1", false, true)]);
    assert!(info(&h, "s1").camera_allowed);

    let outs = h.req(
        1,
        ClientMessage::CameraStop {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::CameraStopped {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::CameraStop, Some("s1".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    assert!(!info(&h, "s1").camera_allowed);

    let outs = h.req(
        1,
        ClientMessage::CameraAllow {
            participant_id: pid("s2"),
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::CameraAllowed {
            participant_id: pid("s2"),
            by: pid("t")
        }
    );
    assert_eq!(
        moderation(&outs),
        vec![(ModerationAction::CameraAllow, Some("s2".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s2", false, true)]);

    // The presenter's video is the stage's: stopping their camera leaves it.
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    let outs = h.req(
        1,
        ClientMessage::CameraStop {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(media(&outs), vec![publish("s1", true, true)]);
}

#[test]
fn camera_requests_refuse_staff_observers_the_lobby_and_strangers() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "ta", Role::Ta);
    h.join(3, "o", Role::Observer);
    h.join(4, "s1", Role::Student);
    let cases = [
        ("ta", ErrorCode::NotPermitted),
        ("t", ErrorCode::NotPermitted),
        ("o", ErrorCode::NotPermitted),
        ("s1", ErrorCode::InLobby),
        ("nobody", ErrorCode::NotFound),
    ];
    let seq = h.room.seq();
    for (target, code) in cases {
        for message in [
            ClientMessage::CameraRequest {
                participant_id: pid(target),
            },
            ClientMessage::CameraAllow {
                participant_id: pid(target),
            },
            ClientMessage::CameraStop {
                participant_id: pid(target),
            },
        ] {
            let outs = h.req(1, message.clone());
            assert_eq!(only_error(&outs), code, "{message:?}");
        }
    }
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn students_may_not_use_the_teaching_controls() {
    let mut h = H::class();
    let seq = h.room.seq();
    for message in [
        ClientMessage::MuteAll,
        ClientMessage::SpeakAll { allowed: true },
        ClientMessage::SetMode {
            mode: ClassMode::Seminar,
        },
        ClientMessage::CameraRequest {
            participant_id: pid("s2"),
        },
        ClientMessage::CameraAllow {
            participant_id: pid("s2"),
        },
        ClientMessage::CameraStop {
            participant_id: pid("s2"),
        },
        ClientMessage::AttendanceGet,
    ] {
        let outs = h.req(2, message.clone());
        assert_eq!(only_error(&outs), ErrorCode::NotPermitted, "{message:?}");
    }
    assert_eq!(h.room.seq(), seq);
}

/// The `attendance` sent to `conn`, with its request id.
fn attendance(
    outs: &[lectern_room::Output],
    conn: u64,
) -> (Option<u64>, Option<u64>, Vec<AttendanceEntry>) {
    let found: Vec<_> = to_conn(outs, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Attendance {
                request_id,
                class_started_at,
                entries,
            } => Some((request_id, class_started_at, entries)),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one attendance for conn {conn}: {outs:#?}");
    found.into_iter().next().unwrap()
}

#[test]
fn attendance_counts_joins_leaves_and_who_came_late() {
    let config = RoomConfig {
        late_after_ms: 60_000,
        ..config()
    };
    let mut h = H::with(config, RoomInit::default());
    h.join(1, "t", Role::Instructor);
    h.advance(1_000);
    h.join(2, "early", Role::Student); // in the lobby before the start: never late
    h.advance(1_000);
    let outs = h.req(1, ClientMessage::AttendanceGet);
    let (_, started, _) = attendance(&outs, 1);
    assert_eq!(started, None);
    assert_eq!(
        h.room.snapshot_for(&pid("t")).unwrap().class_started_at,
        None
    );

    h.req(1, ClientMessage::ClassStart);
    let start = h.now;
    assert_eq!(h.room.class_started_at(), Some(start));
    assert_eq!(
        h.room.snapshot_for(&pid("t")).unwrap().class_started_at,
        Some(start)
    );
    h.advance(60_000);
    h.join(3, "on-time", Role::Student); // exactly at the threshold: not late
    h.advance(1);
    h.join(4, "late", Role::Student);
    h.join(5, "ta", Role::Ta); // staff are never late
    h.advance(1_000);
    h.disconnect(3); // grace period: still present
    h.req(4, ClientMessage::Leave);
    let left_at = h.now;
    h.advance(1_000);
    h.join(6, "on-time", Role::Student);

    let seq = h.room.seq();
    let outs = h.req(1, ClientMessage::AttendanceGet);
    assert_eq!(h.room.seq(), seq, "not sequenced");
    assert_eq!(
        ack(&outs, h.last_request()),
        None,
        "answered instead of an ack"
    );
    assert_eq!(outs.len(), 1, "to the sender only: {outs:#?}");
    let (request_id, started, entries) = attendance(&outs, 1);
    assert_eq!(request_id, Some(h.last_request()));
    assert_eq!(started, Some(start));
    let rows: Vec<(&str, bool, bool, u32, Option<u64>)> = entries
        .iter()
        .map(|e| {
            (
                e.participant_id.as_str(),
                e.present,
                e.late,
                e.intervals,
                e.last_left_at,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("t", true, false, 1, None),
            ("early", true, false, 1, None),
            ("on-time", true, false, 2, Some(left_at)),
            ("late", false, true, 1, Some(left_at)),
            ("ta", true, false, 1, None),
        ]
    );
    assert_eq!(entries[1].first_joined_at, T0 + 1_000);
    assert_eq!(entries[1].role, Role::Student);
    assert_eq!(entries[1].name, "Name of early");
}

#[test]
fn lateness_in_a_scheduled_room_counts_from_the_scheduled_start_when_the_class_starts_early() {
    let schedule = SessionSchedule {
        starts_at: T0 + 600_000,
        ends_at: T0 + 3_600_000,
        auto_start: false,
        warning_ms: 0,
        close_grace_ms: 0,
    };
    let config = RoomConfig {
        schedule: Some(schedule),
        late_after_ms: 60_000,
        ..config()
    };
    let mut h = H::with(config, RoomInit::default());
    h.join(1, "t", Role::Instructor);
    h.req(1, ClientMessage::ClassStart); // ten minutes early
    h.advance(120_000);
    h.join(2, "s1", Role::Student); // two minutes after the class start, before the schedule's
    h.advance(600_000);
    h.join(3, "s2", Role::Student); // more than a minute after the scheduled start
    let outs = h.req(1, ClientMessage::AttendanceGet);
    let (_, _, entries) = attendance(&outs, 1);
    let late: Vec<bool> = entries.iter().map(|e| e.late).collect();
    assert_eq!(late, vec![false, false, true]);
}
