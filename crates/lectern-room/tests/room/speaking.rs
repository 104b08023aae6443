//! Moderation: speech grants, hard mutes, the stage, removal, and the media intents each one
//! causes; staff-only actions refused to everyone else.

use lectern_proto::{
    ClientMessage, CloseReason, ErrorCode, LeaveReason, Role, RoomEvent, ServerMessage,
};
use lectern_room::{AttendanceKind, ModerationAction, PersistRecord};

use crate::support::*;

fn moderation(records: &[PersistRecord]) -> Vec<(ModerationAction, Option<String>)> {
    records
        .iter()
        .filter_map(|r| match r {
            PersistRecord::Moderation { action, target, .. } => {
                Some((*action, target.as_ref().map(|t| t.0.clone())))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn allow_revoke_and_mute_change_what_a_student_may_publish() {
    let mut h = H::class();
    let outs = h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid("s1"),
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::SpeakAllowed {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3)]);
    assert_eq!(
        persists(&outs),
        vec![PersistRecord::Moderation {
            seq: evs[0].0,
            action: ModerationAction::AllowSpeak,
            by: pid("t"),
            target: Some(pid("s1")),
            at: h.now
        }]
    );
    assert_eq!(media(&outs), vec![publish("s1", true, false)]);
    assert!(h.room.participant(&pid("s1")).unwrap().can_speak);

    let outs = h.req(
        1,
        ClientMessage::RevokeSpeak {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::SpeakRevoked {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert_eq!(
        moderation(&persists(&outs)),
        vec![(ModerationAction::RevokeSpeak, Some("s1".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    assert!(!h.room.participant(&pid("s1")).unwrap().can_speak);

    h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid("s1"),
        },
    );
    let outs = h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::Muted {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert_eq!(
        moderation(&persists(&outs)),
        vec![(ModerationAction::Mute, Some("s1".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    let s1 = h.room.participant(&pid("s1")).unwrap();
    assert!(s1.hard_muted && !s1.can_speak);

    // Allowing to speak lifts the hard mute.
    let outs = h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(media(&outs), vec![publish("s1", true, false)]);
    assert!(!h.room.participant(&pid("s1")).unwrap().hard_muted);
}

#[test]
fn staff_cannot_be_muted_and_unknown_targets_are_not_found() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    let seq = h.room.seq();
    assert_eq!(
        only_error(&h.req(
            4,
            ClientMessage::Mute {
                participant_id: pid("t")
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::Mute {
                participant_id: pid("ta")
            }
        )),
        ErrorCode::NotPermitted
    );
    for message in [
        ClientMessage::Mute {
            participant_id: pid("ghost"),
        },
        ClientMessage::AllowSpeak {
            participant_id: pid("ghost"),
        },
        ClientMessage::RevokeSpeak {
            participant_id: pid("ghost"),
        },
        ClientMessage::StageGrant {
            participant_id: pid("ghost"),
        },
        ClientMessage::Remove {
            participant_id: pid("ghost"),
            reason: None,
        },
    ] {
        assert_eq!(only_error(&h.req(1, message)), ErrorCode::NotFound);
    }
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn the_stage_goes_to_one_student_at_a_time() {
    let mut h = H::class();
    let outs = h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::StageGranted {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert_eq!(
        moderation(&persists(&outs)),
        vec![(ModerationAction::GrantStage, Some("s1".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s1", true, true)]);
    let s1 = h.room.participant(&pid("s1")).unwrap();
    assert!(s1.presenter && s1.can_speak);

    let seq = h.room.seq();
    let outs = h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(h.room.seq(), seq);

    let outs = h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s2"),
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::StageRevoked {
            participant_id: pid("s1"),
            by: Some(pid("t"))
        }
    );
    assert_eq!(
        evs[1].1,
        RoomEvent::StageGranted {
            participant_id: pid("s2"),
            by: pid("t")
        }
    );
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[1].0)));
    assert_eq!(
        media(&outs),
        vec![publish("s1", false, false), publish("s2", true, true)]
    );
    assert_eq!(h.room.presenter(), Some(&pid("s2")));
    assert_eq!(
        h.room.snapshot_for(&pid("s1")).unwrap().presenter,
        Some(pid("s2"))
    );

    let outs = h.req(1, ClientMessage::StageRevoke);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::StageRevoked {
            participant_id: pid("s2"),
            by: Some(pid("t"))
        }
    );
    assert_eq!(
        moderation(&persists(&outs)),
        vec![(ModerationAction::RevokeStage, Some("s2".into()))]
    );
    assert_eq!(media(&outs), vec![publish("s2", false, false)]);
    assert_eq!(h.room.presenter(), None);
    let seq = h.room.seq();
    let outs = h.req(1, ClientMessage::StageRevoke);
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn the_stage_is_not_for_staff_or_the_lobby() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(4, "ta", Role::Ta);
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::StageGrant {
                participant_id: pid("ta")
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::StageGrant {
                participant_id: pid("s1")
            }
        )),
        ErrorCode::InLobby
    );
    h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(
        kinds(&h.req(
            1,
            ClientMessage::StageGrant {
                participant_id: pid("s1")
            }
        )),
        vec!["stage_granted"]
    );
}

#[test]
fn a_hard_muted_presenter_keeps_video_only() {
    let mut h = H::class();
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    let outs = h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(media(&outs), vec![publish("s1", false, true)]);
    let outs = h.req(
        1,
        ClientMessage::RevokeSpeak {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(media(&outs), vec![publish("s1", false, true)]);
}

#[test]
fn removing_a_participant_bans_them_until_the_class_ends() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.req(2, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    let outs = h.req(
        4,
        ClientMessage::Remove {
            participant_id: pid("s1"),
            reason: Some("spam".into()),
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::StageRevoked {
            participant_id: pid("s1"),
            by: Some(pid("ta"))
        }
    );
    assert_eq!(
        evs[1].1,
        RoomEvent::ParticipantLeft {
            participant_id: pid("s1"),
            reason: LeaveReason::Removed
        }
    );
    assert_eq!(evs[1].2, vec![c(1), c(3), c(4)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[1].0)));
    assert_eq!(closes(&outs), vec![(c(2), CloseReason::Removed)]);
    assert_eq!(media(&outs), vec![stop("s1")]);
    let records = persists(&outs);
    assert_eq!(
        moderation(&records),
        vec![(ModerationAction::Remove, Some("s1".into()))]
    );
    assert!(
        matches!(&records[0], PersistRecord::Moderation { seq, by, .. } if *seq == evs[1].0 && *by == pid("ta"))
    );
    assert!(matches!(
        &records[1],
        PersistRecord::Attendance {
            kind: AttendanceKind::Leave,
            ..
        }
    ));
    assert!(h.room.hand_queue().is_empty());
    assert_eq!(h.room.participant(&pid("s1")), None);

    let seq = h.room.seq();
    let outs = h.join(9, "s1", Role::Student);
    assert_eq!(outs.len(), 2);
    let lectern_room::Output::Send {
        to,
        message:
            ServerMessage::Error {
                code,
                message,
                request_id,
            },
        ..
    } = &outs[0]
    else {
        panic!("{outs:?}")
    };
    assert_eq!(
        (to, *code, message.as_str(), *request_id),
        (
            &vec![c(9)],
            ErrorCode::NotPermitted,
            "you were removed from this class",
            None
        )
    );
    assert_eq!(closes(&outs), vec![(c(9), CloseReason::Removed)]);
    assert_eq!(h.room.seq(), seq);
    assert_eq!(h.room.participant_count(), 3);
}

#[test]
fn instructors_cannot_be_removed_but_tas_and_absent_students_can() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.join(5, "t2", Role::Instructor);
    assert_eq!(
        only_error(&h.req(
            4,
            ClientMessage::Remove {
                participant_id: pid("t"),
                reason: None
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::Remove {
                participant_id: pid("t2"),
                reason: None
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(
            2,
            ClientMessage::Remove {
                participant_id: pid("s2"),
                reason: None
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        kinds(&h.req(
            1,
            ClientMessage::Remove {
                participant_id: pid("ta"),
                reason: None
            }
        )),
        vec!["participant_left"]
    );

    h.disconnect(3);
    let outs = h.req(
        1,
        ClientMessage::Remove {
            participant_id: pid("s2"),
            reason: None,
        },
    );
    assert!(closes(&outs).is_empty());
    assert_eq!(moderation(&persists(&outs)).len(), 1);
    assert_eq!(persists(&outs).len(), 1, "their attendance already ended");
    assert_eq!(h.room.poll_timeout(), None);
    assert!(h.room.is_banned(&pid("s2")));
}

#[test]
fn students_and_observers_are_refused_every_staff_action() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    h.req(2, ClientMessage::HandRaise);
    let mut staff_only: Vec<ClientMessage> = lectern_proto::samples::client_messages()
        .into_iter()
        .filter(lectern_room::is_staff_only)
        .collect();
    staff_only.push(ClientMessage::ChatSend {
        to: lectern_proto::ChatTarget::Participant { id: pid("t") },
        text: "hi".into(),
    });
    assert_eq!(staff_only.len(), 29);
    let seq = h.room.seq();
    for conn in [2, 4] {
        for message in &staff_only {
            let outs = h.req(conn, message.clone());
            assert_eq!(
                errors(&outs),
                vec![(
                    ErrorCode::NotPermitted,
                    Some(h.last_request()),
                    vec![c(conn)]
                )],
                "{message:?}"
            );
            assert_eq!(outs.len(), 1);
        }
    }
    assert_eq!(h.room.seq(), seq);
    assert_eq!(h.room.hand_queue(), vec![pid("s1")]);
}

#[test]
fn a_ta_who_removes_themselves_is_acked_before_being_closed() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    let outs = h.req(
        4,
        ClientMessage::Remove {
            participant_id: pid("ta"),
            reason: None,
        },
    );
    let ack_at = outs.iter().position(|o| {
        matches!(
            o,
            lectern_room::Output::Send {
                message: ServerMessage::Ack { .. },
                ..
            }
        )
    });
    let close_at = outs
        .iter()
        .position(|o| matches!(o, lectern_room::Output::Close { .. }));
    assert!(ack_at.unwrap() < close_at.unwrap());
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(
                o,
                lectern_room::Output::Send {
                    message: ServerMessage::Ack { .. },
                    ..
                }
            ))
            .count(),
        1
    );
    assert!(h.room.is_banned(&pid("ta")));
}

/// The three ways staff give someone a voice or the stage.
fn voice_and_stage(id: &str) -> [ClientMessage; 3] {
    [
        ClientMessage::CallOn {
            participant_id: Some(pid(id)),
        },
        ClientMessage::AllowSpeak {
            participant_id: pid(id),
        },
        ClientMessage::StageGrant {
            participant_id: pid(id),
        },
    ]
}

#[test]
fn observers_are_never_given_speech_or_the_stage() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    let seq = h.room.seq();
    for message in voice_and_stage("o") {
        let outs = h.req(1, message.clone());
        assert_eq!(only_error(&outs), ErrorCode::NotPermitted, "{message:?}");
    }
    assert_eq!(h.room.seq(), seq);
    let o = h.room.participant(&pid("o")).unwrap();
    assert!(!o.can_speak && !o.presenter);
    assert_eq!(h.room.media_permissions(&pid("o")), Some((false, false)));
}

#[test]
fn the_lobby_is_never_given_speech_or_the_stage() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "o", Role::Observer);
    let seq = h.room.seq();
    for message in voice_and_stage("s1") {
        let outs = h.req(1, message.clone());
        assert_eq!(only_error(&outs), ErrorCode::InLobby, "{message:?}");
    }
    // An observer in the lobby is refused for their role first.
    for message in voice_and_stage("o") {
        let outs = h.req(1, message.clone());
        assert_eq!(only_error(&outs), ErrorCode::NotPermitted, "{message:?}");
    }
    assert_eq!(h.room.seq(), seq);
    assert!(!h.room.participant(&pid("s1")).unwrap().can_speak);
    assert_eq!(h.room.media_permissions(&pid("s1")), Some((false, false)));

    // Once let in, they may be given a voice.
    h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s1"),
        },
    );
    let outs = h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(kinds(&outs), vec!["speak_allowed"]);
    assert_eq!(media(&outs), vec![publish("s1", true, false)]);
}

#[test]
fn letting_the_lobby_in_tells_the_media_plane() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    h.join(4, "s3", Role::Student);
    h.disconnect(4);
    let outs = h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    let outs = h.req(1, ClientMessage::ClassStart);
    assert_eq!(
        media(&outs),
        vec![publish("s2", false, false), publish("s3", false, false)]
    );
}

#[test]
fn the_speech_grant_is_visible_so_clients_can_recompute_can_speak() {
    let mut h = H::class();
    let info = |h: &H| h.room.participant(&pid("s1")).expect("s1");
    assert!(!info(&h).speak_granted);
    h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid("s1"),
        },
    );
    assert!(info(&h).speak_granted);
    // The stage comes and goes; the separate grant keeps s1 able to speak afterwards.
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    h.req(1, ClientMessage::StageRevoke);
    let s1 = info(&h);
    assert!(s1.speak_granted && s1.can_speak && !s1.presenter);
    h.req(
        1,
        ClientMessage::RevokeSpeak {
            participant_id: pid("s1"),
        },
    );
    let s1 = info(&h);
    assert!(!s1.speak_granted && !s1.can_speak);
}
