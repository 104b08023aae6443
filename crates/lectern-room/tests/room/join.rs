//! Joining, room full, replaced connections, leaving, disconnects, the grace period, shutdown.

use lectern_proto::{
    ClientMessage, CloseReason, ErrorCode, LeaveReason, MediaState, Role, RoomEvent, ServerMessage,
};
use lectern_room::{AttendanceKind, Input, Output, PersistRecord, RoomConfig, RoomInit};

use crate::support::*;

fn attendance_kinds(outs: &[Output]) -> Vec<(String, AttendanceKind)> {
    persists(outs)
        .into_iter()
        .filter_map(|r| match r {
            PersistRecord::Attendance {
                participant_id,
                kind,
                ..
            } => Some((participant_id.0, kind)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_participant_is_welcomed_with_a_snapshot_and_announced_to_the_others() {
    let mut h = H::live();
    h.join(1, "t", Role::Instructor);
    let outs = h.join(2, "s1", Role::Student);

    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    let (seq, event, to) = &evs[0];
    assert_eq!(
        to,
        &vec![c(1)],
        "the joiner does not get their own join event"
    );
    assert!(
        matches!(event, RoomEvent::ParticipantJoined { participant } if participant.id == pid("s1") && !participant.in_lobby)
    );
    assert_eq!(*seq, h.room.seq());

    let mine = to_conn(&outs, 2);
    assert_eq!(mine.len(), 1);
    let ServerMessage::Welcome {
        participant_id,
        role,
        rejoined,
        snapshot: Some(snapshot),
        ..
    } = &mine[0]
    else {
        panic!("expected a welcome with a snapshot, got {mine:?}");
    };
    assert_eq!(
        (participant_id, *role, *rejoined),
        (&pid("s1"), Role::Student, false)
    );
    assert_eq!(snapshot.seq, h.room.seq());
    assert_eq!(snapshot.roster.len(), 2);
    assert_eq!(snapshot.roster[0].id, pid("t"));

    assert_eq!(
        attendance_kinds(&outs),
        vec![("s1".into(), AttendanceKind::Join)]
    );
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    assert_eq!(h.room.participant_count(), 2);
    assert_eq!(h.room.connection_count(), 2);
}

#[test]
fn staff_may_publish_from_the_start() {
    let mut h = H::new();
    let outs = h.join(1, "t", Role::Instructor);
    assert_eq!(media(&outs), vec![publish("t", true, true)]);
    let info = h.room.participant(&pid("t")).unwrap();
    assert!(info.can_speak && !info.in_lobby);
}

#[test]
fn a_full_room_refuses_new_participants_but_not_returning_ones() {
    let mut h = H::with(
        RoomConfig {
            max_participants: 2,
            auto_start: true,
            ..config()
        },
        RoomInit::default(),
    );
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    let seq = h.room.seq();
    let outs = h.join(3, "s2", Role::Student);
    assert_eq!(errors(&outs), vec![(ErrorCode::RoomFull, None, vec![c(3)])]);
    assert_eq!(closes(&outs), vec![(c(3), CloseReason::HandshakeFailed)]);
    assert_eq!(outs.len(), 2);
    assert_eq!((h.room.participant_count(), h.room.seq()), (2, seq));

    // Someone already counted may come back on a new connection.
    h.disconnect(2);
    let outs = h.join(4, "s1", Role::Student);
    assert!(errors(&outs).is_empty());
    assert_eq!(h.room.connection_count(), 2);
}

#[test]
fn a_second_connection_replaces_the_first() {
    let mut h = H::class();
    h.req(2, ClientMessage::HandRaise);
    let seq = h.room.seq();
    let outs = h.join(9, "s1", Role::Student);
    assert_eq!(closes(&outs), vec![(c(2), CloseReason::Replaced)]);
    assert!(events(&outs).is_empty(), "nobody saw them go");
    assert_eq!(h.room.seq(), seq);
    let welcome = &to_conn(&outs, 9)[0];
    assert!(matches!(
        welcome,
        ServerMessage::Welcome {
            rejoined: true,
            snapshot: Some(_),
            ..
        }
    ));
    assert_eq!(
        attendance_kinds(&outs),
        vec![
            ("s1".into(), AttendanceKind::Leave),
            ("s1".into(), AttendanceKind::Join)
        ]
    );
    assert_eq!(h.room.hand_queue(), vec![pid("s1")]);

    // The old connection is no longer in the room.
    assert!(h.req(2, ClientMessage::HandLower).is_empty());
    assert!(h.disconnect(2).is_empty());
    assert_eq!(h.room.connection_count(), 3);
    assert!(h.room.participant(&pid("s1")).unwrap().connected);
    // The new one is.
    let outs = h.req(9, ClientMessage::HandLower);
    assert_eq!(kinds(&outs), vec!["hand_lowered"]);
}

#[test]
fn requests_from_unknown_connections_are_ignored() {
    let mut h = H::class();
    assert!(h.req(42, ClientMessage::HandRaise).is_empty());
    assert!(h.req(42, ClientMessage::ClassEnd).is_empty());
    assert!(h.disconnect(42).is_empty());
}

#[test]
fn disconnect_then_rejoin_within_grace_keeps_hand_stage_mute_and_speech() {
    let mut h = H::class();
    h.join(4, "s3", Role::Student);
    h.req(2, ClientMessage::HandRaise);
    h.req(3, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("s1"),
        },
    );
    h.req(
        1,
        ClientMessage::AllowSpeak {
            participant_id: pid("s3"),
        },
    );

    let outs = h.disconnect(2);
    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0].1,
        RoomEvent::ParticipantConnection {
            participant_id: pid("s1"),
            connected: false
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(3), c(4)]);
    assert_eq!(
        attendance_kinds(&outs),
        vec![("s1".into(), AttendanceKind::Leave)]
    );
    assert_eq!(h.room.poll_timeout(), Some(h.now + config().grace_ms));
    assert_eq!(
        (h.room.participant_count(), h.room.connection_count()),
        (4, 3)
    );
    assert!(!h.room.participant(&pid("s1")).unwrap().connected);

    h.disconnect(4);
    h.advance(config().grace_ms - 1);
    assert!(h.tick().is_empty());
    let outs = h.join(5, "s1", Role::Student);
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::ParticipantConnection {
            participant_id: pid("s1"),
            connected: true
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(3)]);
    assert!(matches!(
        &to_conn(&outs, 5)[0],
        ServerMessage::Welcome { rejoined: true, .. }
    ));
    assert_eq!(
        attendance_kinds(&outs),
        vec![("s1".into(), AttendanceKind::Join)]
    );
    assert_eq!(h.room.hand_queue(), vec![pid("s1"), pid("s2")]);
    assert_eq!(h.room.presenter(), Some(&pid("s1")));
    let s1 = h.room.participant(&pid("s1")).unwrap();
    assert!(s1.hard_muted && s1.presenter && !s1.can_speak && s1.connected);
    assert_eq!(media(&outs), vec![publish("s1", false, true)]);

    let outs = h.join(6, "s3", Role::Student);
    assert_eq!(media(&outs), vec![publish("s3", true, false)]);
    assert!(h.room.participant(&pid("s3")).unwrap().can_speak);
    assert_eq!(h.room.poll_timeout(), None);
}

#[test]
fn grace_expiry_removes_the_participant_for_good() {
    let mut h = H::class();
    h.req(2, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    h.disconnect(2);
    h.advance(1_000);
    h.disconnect(3);
    let first_deadline = T0 + config().grace_ms;
    assert_eq!(h.room.poll_timeout(), Some(first_deadline));

    h.now = first_deadline;
    let outs = h.tick();
    assert_eq!(kinds(&outs), vec!["stage_revoked", "participant_left"]);
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::StageRevoked {
            participant_id: pid("s1"),
            by: None
        }
    );
    assert_eq!(
        evs[1].1,
        RoomEvent::ParticipantLeft {
            participant_id: pid("s1"),
            reason: LeaveReason::TimedOut
        }
    );
    assert_eq!(evs[1].2, vec![c(1)]);
    assert_eq!(media(&outs), vec![stop("s1")]);
    assert!(
        persists(&outs).is_empty(),
        "the leave was recorded at the disconnect"
    );
    assert_eq!(h.room.participant_count(), 2);
    assert!(h.room.hand_queue().is_empty());
    assert_eq!(h.room.presenter(), None);
    assert_eq!(h.room.poll_timeout(), Some(first_deadline + 1_000));

    h.advance(1_000);
    assert_eq!(kinds(&h.tick()), vec!["participant_left"]);
    assert_eq!(h.room.poll_timeout(), None);

    // Coming back after expiry is a fresh join.
    let outs = h.join(7, "s1", Role::Student);
    assert!(matches!(
        &to_conn(&outs, 7)[0],
        ServerMessage::Welcome {
            rejoined: false,
            ..
        }
    ));
    assert_eq!(kinds(&outs), vec!["participant_joined"]);
}

#[test]
fn leave_is_immediate_and_acked_before_the_close() {
    let mut h = H::class();
    h.req(2, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    let outs = h.req(2, ClientMessage::Leave);
    assert_eq!(kinds(&outs), vec!["stage_revoked", "participant_left"]);
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::StageRevoked {
            participant_id: pid("s1"),
            by: None
        }
    );
    assert_eq!(
        evs[1].1,
        RoomEvent::ParticipantLeft {
            participant_id: pid("s1"),
            reason: LeaveReason::Left
        }
    );
    assert_eq!(evs[1].2, vec![c(1), c(3)]);
    let ack_at = outs
        .iter()
        .position(|o| {
            matches!(
                o,
                Output::Send {
                    message: ServerMessage::Ack { .. },
                    ..
                }
            )
        })
        .unwrap();
    let close_at = outs
        .iter()
        .position(|o| matches!(o, Output::Close { .. }))
        .unwrap();
    assert!(ack_at < close_at);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[1].0)));
    assert_eq!(closes(&outs), vec![(c(2), CloseReason::Left)]);
    assert_eq!(media(&outs), vec![stop("s1")]);
    assert_eq!(
        attendance_kinds(&outs),
        vec![("s1".into(), AttendanceKind::Leave)]
    );
    assert_eq!(h.room.participant_count(), 2);
    assert!(h.room.hand_queue().is_empty());
    assert_eq!(h.room.poll_timeout(), None, "no grace period after leaving");
    assert!(h.req(2, ClientMessage::HandRaise).is_empty());
}

#[test]
fn set_media_announces_changes_only() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    let media = MediaState {
        mic: true,
        camera: false,
        screen: false,
    };
    // Allowed in the lobby.
    let outs = h.req(2, ClientMessage::SetMedia { media });
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::MediaChanged {
            participant_id: pid("s1"),
            media
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    let seq = h.room.seq();
    let outs = h.req(2, ClientMessage::SetMedia { media });
    assert_eq!(outs.len(), 1);
    assert_eq!(ack(&outs, h.last_request()), Some(None));
    assert_eq!(h.room.seq(), seq);
    assert_eq!(h.room.participant(&pid("s1")).unwrap().media, media);
}

#[test]
fn leaving_from_the_lobby_is_allowed() {
    let mut h = H::new();
    h.join(2, "s1", Role::Student);
    let outs = h.req(2, ClientMessage::Leave);
    assert_eq!(kinds(&outs), Vec::<String>::new(), "nobody left to tell");
    assert_eq!(closes(&outs), vec![(c(2), CloseReason::Left)]);
    assert!(h.room.is_empty());
}

#[test]
fn shutdown_closes_every_connection_and_ends_attendance() {
    let mut h = H::class();
    h.disconnect(3);
    h.room.shutdown(h.now);
    let outs = h.drain();
    assert_eq!(
        closes(&outs),
        vec![
            (c(1), CloseReason::ServerShutdown),
            (c(2), CloseReason::ServerShutdown)
        ]
    );
    assert_eq!(
        attendance_kinds(&outs),
        vec![
            ("t".into(), AttendanceKind::Leave),
            ("s1".into(), AttendanceKind::Leave)
        ]
    );
    assert_eq!(h.room.connection_count(), 0);
    assert!(h.disconnect(1).is_empty());
}

#[test]
fn a_hello_inside_the_room_is_refused() {
    let mut h = H::class();
    let outs = h.input(Input::Request {
        conn: c(2),
        request_id: Some(5),
        message: ClientMessage::Hello {
            protocol_version: 1,
            token: "x".into(),
            last_seq: None,
            media_start: false,
        },
    });
    assert_eq!(
        errors(&outs),
        vec![(ErrorCode::HelloRequired, Some(5), vec![c(2)])]
    );
}
