//! The lobby and the class lifecycle: start, admit, end.

use lectern_proto::{
    ChatMessage, ChatTarget, ClassState, ClientMessage, CloseReason, ErrorCode, LeaveReason,
    Reaction, Role, RoomEvent, ServerMessage,
};
use lectern_room::{AttendanceKind, Output, PersistRecord, RoomConfig, RoomInit};

use crate::support::*;

fn public_chat(seq: u64, text: &str) -> ChatMessage {
    ChatMessage {
        seq,
        from: pid("t"),
        from_name: "T".into(),
        from_role: Role::Instructor,
        to: ChatTarget::Everyone,
        text: text.into(),
        sent_at: T0 - 1_000,
    }
}

#[test]
fn students_and_observers_wait_in_the_lobby_until_the_class_starts() {
    let init = RoomInit {
        last_seq: 10,
        recent_chat: vec![public_chat(9, "earlier")],
        chat_locked: false,
        ..RoomInit::default()
    };
    let mut h = H::with(config(), init);
    assert_eq!(h.room.class_state(), ClassState::NotStarted);
    h.join(1, "t", Role::Instructor);
    let outs = h.join(2, "s1", Role::Student);
    let snap = snapshot_to(&outs, 2).unwrap();
    assert!(snap.chat.is_empty(), "no chat in the lobby");
    assert!(snap.roster.iter().any(|p| p.id == pid("s1") && p.in_lobby));
    h.join(3, "o", Role::Observer);
    assert!(h.room.participant(&pid("o")).unwrap().in_lobby);
    assert!(!h.room.participant(&pid("t")).unwrap().in_lobby);
    assert_eq!(h.room.snapshot_for(&pid("t")).unwrap().chat.len(), 1);

    // Lobby: no chat, hands or reactions.
    assert_eq!(
        only_error(&h.chat(2, ChatTarget::Everyone, "hi")),
        ErrorCode::InLobby
    );
    assert_eq!(
        only_error(&h.chat(2, ChatTarget::Staff, "hi")),
        ErrorCode::InLobby
    );
    assert_eq!(
        only_error(&h.req(2, ClientMessage::HandRaise)),
        ErrorCode::InLobby
    );
    assert_eq!(
        only_error(&h.req(2, ClientMessage::HandLower)),
        ErrorCode::InLobby
    );
    assert_eq!(
        only_error(&h.req(
            2,
            ClientMessage::React {
                reaction: Reaction::Clap
            }
        )),
        ErrorCode::InLobby
    );
    // Observers are refused for their role first.
    assert_eq!(
        only_error(&h.chat(3, ChatTarget::Everyone, "hi")),
        ErrorCode::NotPermitted
    );
    assert_eq!(h.room.seq(), 13);

    // Staff chat is not delivered to the lobby; other events are.
    let outs = h.chat(1, ChatTarget::Everyone, "welcome");
    assert_eq!(events(&outs)[0].2, vec![c(1)]);
    let outs = h.req(1, ClientMessage::ChatLock { locked: true });
    assert_eq!(events(&outs)[0].2, vec![c(1), c(2), c(3)]);
    let outs = h.req(
        1,
        ClientMessage::React {
            reaction: Reaction::Heart,
        },
    );
    assert_eq!(to_conn(&outs, 2), vec![]);
    assert_eq!(to_conn(&outs, 1).len(), 2, "the reaction and the ack");
}

#[test]
fn starting_the_class_lets_the_lobby_in_with_fresh_snapshots() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "o", Role::Observer);
    h.chat(1, ChatTarget::Everyone, "starting soon");
    let outs = h.req(1, ClientMessage::ClassStart);
    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].1, RoomEvent::ClassStarted { by: Some(pid("t")) });
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert!(persists(&outs).contains(&PersistRecord::ClassStarted { at: h.now }));
    for conn in [2, 3] {
        let snap = snapshot_to(&outs, conn).expect("a snapshot");
        assert_eq!(snap.class_state, ClassState::Live);
        assert_eq!(snap.seq, h.room.seq());
        assert_eq!(snap.chat.len(), 1);
        assert!(snap.roster.iter().all(|p| !p.in_lobby));
    }
    assert!(snapshot_to(&outs, 1).is_none());
    assert_eq!(h.room.class_state(), ClassState::Live);

    // Already live: ack, no event.
    let seq = h.room.seq();
    let outs = h.req(1, ClientMessage::ClassStart);
    assert_eq!(outs.len(), 1);
    assert_eq!(ack(&outs, h.last_request()), Some(None));
    assert_eq!(h.room.seq(), seq);
    // The students may now take part.
    assert_eq!(
        kinds(&h.req(2, ClientMessage::HandRaise)),
        vec!["hand_raised"]
    );
}

#[test]
fn a_large_lobby_shares_one_snapshot_unless_someone_has_private_chat() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    for i in 0..50 {
        h.join(10 + i, &format!("s{i}"), Role::Student);
    }
    h.chat(
        1,
        ChatTarget::Participant { id: pid("s7") },
        "see me after class",
    );
    let outs = h.req(1, ClientMessage::ClassStart);
    let snapshots: Vec<&Vec<lectern_room::ConnId>> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::Snapshot { .. },
                ..
            } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[0].len(), 49);
    assert_eq!(snapshots[1], &vec![c(17)]);
    assert_eq!(snapshot_to(&outs, 17).unwrap().chat.len(), 1);
    assert!(snapshot_to(&outs, 10).unwrap().chat.is_empty());
    assert_eq!(
        snapshot_to(&outs, 10).unwrap(),
        h.room.snapshot_for(&pid("s0")).unwrap()
    );
}

#[test]
fn staff_admit_one_participant_early() {
    let mut h = H::new();
    h.join(1, "t", Role::Ta);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    let seq = h.room.seq();
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::Admit {
                participant_id: pid("nobody")
            }
        )),
        ErrorCode::NotFound
    );
    assert_eq!(
        only_error(&h.req(
            2,
            ClientMessage::Admit {
                participant_id: pid("s2")
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(h.room.seq(), seq);

    let outs = h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s1"),
        },
    );
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::Admitted {
            participant_id: pid("s1"),
            by: Some(pid("t"))
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3)]);
    let snap = snapshot_to(&outs, 2).unwrap();
    assert!(
        !snap
            .roster
            .iter()
            .find(|p| p.id == pid("s1"))
            .unwrap()
            .in_lobby
    );
    assert!(snapshot_to(&outs, 3).is_none());
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert_eq!(h.room.class_state(), ClassState::NotStarted);
    assert_eq!(
        kinds(&h.chat(2, ChatTarget::Everyone, "thanks")),
        vec!["chat"]
    );
    // Not in the lobby any more.
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::Admit {
                participant_id: pid("s1")
            }
        )),
        ErrorCode::NotFound
    );
}

#[test]
fn ending_the_class_sends_students_and_observers_away() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.join(5, "o", Role::Observer);
    h.join(6, "s3", Role::Student);
    h.disconnect(6);
    h.req(2, ClientMessage::HandRaise);
    h.req(4, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    h.req(
        1,
        ClientMessage::Remove {
            participant_id: pid("s2"),
            reason: None,
        },
    );
    assert!(h.room.is_banned(&pid("s2")));

    let outs = h.req(1, ClientMessage::ClassEnd);
    let evs = events(&outs);
    assert_eq!(evs[0].1, RoomEvent::ClassEnded { by: Some(pid("t")) });
    assert_eq!(evs[0].2, vec![c(1), c(2), c(4), c(5)]);
    let left: Vec<_> = evs[1..]
        .iter()
        .map(|(_, e, to)| (e.clone(), to.clone()))
        .collect();
    let gone = |id: &str| RoomEvent::ParticipantLeft {
        participant_id: pid(id),
        reason: LeaveReason::ClassEnded,
    };
    assert_eq!(
        left,
        vec![
            (gone("s1"), vec![c(1), c(4)]),
            (gone("o"), vec![c(1), c(4)]),
            (gone("s3"), vec![c(1), c(4)])
        ]
    );
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[3].0)));
    assert_eq!(
        closes(&outs),
        vec![
            (c(2), CloseReason::ClassEnded),
            (c(5), CloseReason::ClassEnded)
        ]
    );
    assert_eq!(media(&outs), vec![stop("s1"), stop("o"), stop("s3")]);
    let records = persists(&outs);
    let leaves: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            PersistRecord::Attendance {
                participant_id,
                kind: AttendanceKind::Leave,
                ..
            } => Some(participant_id.0.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(leaves, vec!["s1", "o"], "s3 was already disconnected");
    assert_eq!(
        records.last(),
        Some(&PersistRecord::ClassEnded { at: h.now })
    );

    assert_eq!(h.room.class_state(), ClassState::Ended);
    assert_eq!(h.room.participant_count(), 2);
    assert!(h.room.hand_queue().is_empty());
    assert_eq!(h.room.presenter(), None);
    assert_eq!(h.room.poll_timeout(), None);
    assert!(!h.room.is_banned(&pid("s2")));

    // Already ended: no event.
    let seq = h.room.seq();
    let outs = h.req(1, ClientMessage::ClassEnd);
    assert_eq!(ack(&outs, h.last_request()), Some(None));
    assert_eq!(h.room.seq(), seq);

    // Students who arrive now (the removed one too) wait for the next start.
    let outs = h.join(7, "s2", Role::Student);
    assert!(errors(&outs).is_empty());
    assert!(h.room.participant(&pid("s2")).unwrap().in_lobby);
    h.req(1, ClientMessage::ClassStart);
    assert_eq!(h.room.class_state(), ClassState::Live);
    assert!(!h.room.participant(&pid("s2")).unwrap().in_lobby);
}

#[test]
fn ending_clears_speech_grants_of_staff_too() {
    let mut h = H::class();
    h.req(1, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::CallOn {
            participant_id: None,
        },
    );
    h.req(1, ClientMessage::ClassEnd);
    let snap = h.room.snapshot_for(&pid("t")).unwrap();
    assert!(snap.hand_queue.is_empty());
    assert_eq!(snap.roster.len(), 1);
    assert!(snap.roster[0].can_speak, "staff still may speak by role");
}

#[test]
fn auto_start_rooms_have_no_lobby() {
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            ..config()
        },
        RoomInit::default(),
    );
    assert_eq!(h.room.class_state(), ClassState::Live);
    h.join(2, "s1", Role::Student);
    assert!(!h.room.participant(&pid("s1")).unwrap().in_lobby);
}

#[test]
fn a_participant_let_in_while_disconnected_gets_a_snapshot_on_return() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    h.chat(1, ChatTarget::Everyone, "before class");
    h.chat(1, ChatTarget::Participant { id: pid("s1") }, "for s1");
    // An event the lobby sees, so both hold a `last_seq` the ring still covers.
    h.req(1, ClientMessage::ChatLock { locked: true });
    let seen = h.room.seq();
    h.disconnect(2);
    h.disconnect(3);
    let outs = h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s1"),
        },
    );
    assert!(snapshot_to(&outs, 2).is_none(), "not connected");
    h.req(1, ClientMessage::ClassStart);

    // Each comes back with a `last_seq` a replay could serve, but the replay would lack the
    // chat they could not see in the lobby: a snapshot instead.
    for (conn, id, chat) in [
        (8, "s1", vec!["before class", "for s1"]),
        (9, "s2", vec!["before class"]),
    ] {
        let outs = h.join_with(conn, id, Role::Student, Some(seen));
        let snap = snapshot_to(&outs, conn).expect("a snapshot in the welcome");
        let texts: Vec<_> = snap.chat.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, chat);
        assert!(!snap.roster.iter().any(|p| p.in_lobby));
        assert!(
            to_conn(&outs, conn)
                .iter()
                .all(|m| !matches!(m, ServerMessage::ReplayDone { .. }))
        );
    }

    // Only once: the next return resumes.
    let seen = h.room.seq();
    h.disconnect(8);
    let outs = h.join_with(10, "s1", Role::Student, Some(seen));
    assert!(snapshot_to(&outs, 10).is_none());
    assert!(matches!(
        to_conn(&outs, 10).last(),
        Some(ServerMessage::ReplayDone { .. })
    ));
}

/// An administrator's actions (the REST API) do what staff's do, without a `by`, and are safe
/// to repeat.
#[test]
fn administrators_admit_remove_and_end_without_a_participant() {
    use lectern_room::{ADMIN_ACTOR, AdminAction, ModerationAction, RoomError};
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    h.drain();
    let admin = |h: &mut H, action| {
        let result = h.room.handle_admin(h.now, action);
        (result, h.drain())
    };

    let (result, outs) = admin(
        &mut h,
        AdminAction::Admit {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(result, Ok(()));
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::Admitted {
            participant_id: pid("s1"),
            by: None
        }
    );
    assert!(snapshot_to(&outs, 2).is_some());
    let seq = h.room.seq();
    let (result, outs) = admin(
        &mut h,
        AdminAction::Admit {
            participant_id: pid("s1"),
        },
    );
    assert_eq!(
        (result, events(&outs).len(), h.room.seq()),
        (Ok(()), 0, seq)
    );
    let (result, _) = admin(
        &mut h,
        AdminAction::Admit {
            participant_id: pid("nobody"),
        },
    );
    assert_eq!(result, Err(RoomError::NotFound));

    let (result, outs) = admin(
        &mut h,
        AdminAction::Remove {
            participant_id: pid("s2"),
        },
    );
    assert_eq!(result, Ok(()));
    assert_eq!(closes(&outs), vec![(c(3), CloseReason::Removed)]);
    assert!(persists(&outs).iter().any(|p| matches!(p,
        PersistRecord::Moderation { action: ModerationAction::Remove, by, .. } if by.as_str() == ADMIN_ACTOR)));
    assert!(h.room.is_banned(&pid("s2")));
    let (result, outs) = admin(
        &mut h,
        AdminAction::Remove {
            participant_id: pid("s2"),
        },
    );
    assert_eq!((result, outs.len()), (Ok(()), 0));
    let (result, _) = admin(
        &mut h,
        AdminAction::Remove {
            participant_id: pid("t"),
        },
    );
    assert_eq!(result, Err(RoomError::NotPermitted));

    h.req(1, ClientMessage::ClassStart);
    let (result, outs) = admin(&mut h, AdminAction::EndClass);
    assert_eq!(result, Ok(()));
    assert_eq!(events(&outs)[0].1, RoomEvent::ClassEnded { by: None });
    assert_eq!(closes(&outs), vec![(c(2), CloseReason::ClassEnded)]);
    assert_eq!(h.room.class_state(), ClassState::Ended);
    let (result, outs) = admin(&mut h, AdminAction::EndClass);
    assert_eq!((result, events(&outs).len()), (Ok(()), 0));
}
