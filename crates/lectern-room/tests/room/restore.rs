//! A room recreated from what it stored (another node, or after a crash) takes back its class
//! state, stage, hand queue, grants, mutes, mode, removals and lobby admissions; its stored
//! participants are in their grace period from the restore.

use lectern_proto::{
    ClassMode, ClassState, ClientMessage, HandEntry, LeaveReason, ParticipantId, Role, RoomEvent,
    ServerMessage,
};
use lectern_room::{Output, PersistRecord, RoomConfig, RoomInit, SessionSchedule};

use crate::support::*;

/// A harness whose every output is also applied to a [`Stored`].
struct Recorded {
    h: H,
    stored: Stored,
}

impl Recorded {
    fn new(h: H) -> Self {
        Recorded {
            h,
            stored: Stored::default(),
        }
    }

    fn run(&mut self, f: impl FnOnce(&mut H) -> Vec<Output>) -> Vec<Output> {
        let outs = f(&mut self.h);
        self.stored.apply(&outs);
        outs
    }

    /// The room as a new node would create it `later` ms after now, from the store alone.
    fn restored(&self, config: RoomConfig, later: u64) -> (H, Vec<Output>) {
        let mut h = H::at(
            config,
            self.stored.init(self.h.room.seq()),
            self.h.now + later,
        );
        let outs = h.drain();
        (h, outs)
    }
}

fn live() -> RoomConfig {
    RoomConfig {
        auto_start: true,
        ..config()
    }
}

fn stage(id: &str) -> ClientMessage {
    ClientMessage::StageGrant {
        participant_id: pid(id),
    }
}

fn mute(id: &str) -> ClientMessage {
    ClientMessage::Mute {
        participant_id: pid(id),
    }
}

/// A live class: `s1` on stage, `s2` then `s3` with hands up (a second apart), `s3`
/// hard-muted, `s4` removed, `o` an observer with nothing to restore.
fn busy_class() -> Recorded {
    let mut r = Recorded::new(H::with(live(), RoomInit::default()));
    r.run(|h| h.join(1, "t", Role::Instructor));
    for (conn, id) in [(2, "s1"), (3, "s2"), (4, "s3"), (5, "s4")] {
        r.run(|h| h.join(conn, id, Role::Student));
    }
    r.run(|h| h.join(6, "o", Role::Observer));
    r.run(|h| h.req(1, stage("s1")));
    r.run(|h| h.req(3, ClientMessage::HandRaise));
    r.run(|h| {
        h.advance(1_000);
        h.req(4, ClientMessage::HandRaise)
    });
    r.run(|h| h.req(1, mute("s3")));
    r.run(|h| {
        h.req(
            1,
            ClientMessage::Remove {
                participant_id: pid("s4"),
                reason: None,
            },
        )
    });
    r.run(|h| h.chat(2, lectern_proto::ChatTarget::Everyone, "hello"));
    r
}

#[test]
fn a_restored_class_is_live_with_its_stage_hands_mutes_and_removals() {
    let r = busy_class();
    let before_hands = r.h.room.hand_entries();
    let started_at = r.h.room.class_started_at();
    assert!(started_at.is_some());

    let (h, outs) = r.restored(live(), 5_000);
    assert!(
        events(&outs).is_empty(),
        "a restore announces nothing: {outs:?}"
    );
    assert!(saved_records(&outs).is_empty(), "it is already stored");
    assert_eq!(h.room.class_state(), ClassState::Live);
    assert_eq!(h.room.class_started_at(), started_at);
    assert_eq!(h.room.presenter(), Some(&pid("s1")));
    assert_eq!(h.room.hand_entries(), before_hands);
    assert_eq!(h.room.hand_queue(), vec![pid("s2"), pid("s3")]);
    assert!(h.room.is_banned(&pid("s4")));
    let s3 = h.room.participant(&pid("s3")).expect("s3 restored");
    assert!(s3.hard_muted && !s3.can_speak && !s3.connected);
    assert_eq!(s3.name, "Name of s3");
    // Only those with something to restore come back; the others simply join again.
    assert!(h.room.participant(&pid("t")).is_none());
    assert!(h.room.participant(&pid("o")).is_none());
    assert_eq!(h.room.participant_count(), 3);
    assert_eq!(h.room.connection_count(), 0);
}

#[test]
fn rejoining_clients_see_the_restored_class_in_their_welcome() {
    let r = busy_class();
    let last_seen = r.h.room.seq();
    let (mut h, _) = r.restored(live(), 5_000);

    let outs = h.join_with(13, "s2", Role::Student, Some(last_seen));
    let welcome = to_conn(&outs, 13);
    assert!(
        matches!(
            &welcome[0],
            ServerMessage::Welcome {
                rejoined: true,
                snapshot: Some(_),
                ..
            }
        ),
        "a rejoin in grace, with a snapshot (the replay ring is the old node's): {welcome:?}"
    );
    let snap = snapshot_to(&outs, 13).unwrap();
    assert_eq!(snap.class_state, ClassState::Live);
    assert_eq!(snap.presenter, Some(pid("s1")));
    let hands: Vec<ParticipantId> = snap
        .hand_queue
        .iter()
        .map(|e: &HandEntry| e.participant_id.clone())
        .collect();
    assert_eq!(hands, vec![pid("s2"), pid("s3")]);
    let s3 = snap.roster.iter().find(|p| p.id == pid("s3")).unwrap();
    assert!(s3.hard_muted && !s3.connected);
    let s2 = snap.roster.iter().find(|p| p.id == pid("s2")).unwrap();
    assert!(s2.connected);
    assert_eq!(snap.chat.len(), 0, "chat comes from RoomInit::recent_chat");

    // The presenter comes back to the stage's media; the muted student to none.
    let outs = h.join(12, "s1", Role::Student);
    assert_eq!(media(&outs), vec![publish("s1", true, true)]);
    let outs = h.join(14, "s3", Role::Student);
    assert_eq!(media(&outs), vec![publish("s3", false, false)]);
    // The removed student is still refused; the instructor joins as new.
    let outs = h.join(15, "s4", Role::Student);
    assert_eq!(
        closes(&outs),
        vec![(c(15), lectern_proto::CloseReason::Removed)]
    );
    let outs = h.join(11, "t", Role::Instructor);
    assert!(matches!(
        &to_conn(&outs, 11)[0],
        ServerMessage::Welcome {
            rejoined: false,
            ..
        }
    ));
    // Staff carry on: calling on the next hand takes s2.
    let outs = h.req(
        11,
        ClientMessage::CallOn {
            participant_id: None,
        },
    );
    assert!(events(&outs).iter().any(|(_, e, _)| matches!(
        e,
        RoomEvent::CalledOn { participant_id, .. } if *participant_id == pid("s2")
    )));
}

#[test]
fn restored_participants_who_do_not_come_back_leave_when_their_grace_ends() {
    let r = busy_class();
    let (mut h, _) = r.restored(live(), 5_000);
    let grace = config().grace_ms;
    assert_eq!(h.room.poll_timeout(), Some(h.now + grace));
    h.join(11, "t", Role::Instructor);
    h.join(13, "s2", Role::Student);

    h.advance(grace);
    let outs = h.tick();
    let evs: Vec<RoomEvent> = events(&outs).into_iter().map(|(_, e, _)| e).collect();
    assert!(evs.contains(&RoomEvent::StageRevoked {
        participant_id: pid("s1"),
        by: None
    }));
    for id in ["s1", "s3"] {
        assert!(evs.contains(&RoomEvent::ParticipantLeft {
            participant_id: pid(id),
            reason: LeaveReason::TimedOut
        }));
    }
    assert_eq!(h.room.presenter(), None);
    assert_eq!(
        h.room.hand_queue(),
        vec![pid("s2")],
        "s3's hand went with them"
    );
    // What they held is no longer stored.
    let saved = saved_records(&outs);
    for id in ["s1", "s3"] {
        assert!(saved.contains(&PersistRecord::ParticipantStateCleared {
            participant_id: pid(id)
        }));
    }
}

#[test]
fn only_changes_are_stored_and_chat_costs_no_record() {
    // An auto-started room stores its start at once (a restore keeps its time).
    let saved = saved_records(&H::live().drain());
    assert!(
        matches!(&saved[..], [PersistRecord::RoomState(r)] if r.class_state == ClassState::Live && r.class_started_at == Some(T0))
    );
    assert!(
        saved_records(&H::new().drain()).is_empty(),
        "a new room stores nothing"
    );

    let mut h = H::class();
    let outs = h.chat(2, lectern_proto::ChatTarget::Everyone, "hi");
    assert!(saved_records(&outs).is_empty());

    let outs = h.req(3, ClientMessage::HandRaise);
    assert_eq!(saved_records(&outs).len(), 1);

    let outs = h.req(2, ClientMessage::HandRaise);
    let saved = saved_records(&outs);
    assert_eq!(saved.len(), 1, "{saved:?}");
    let PersistRecord::ParticipantState(p) = &saved[0] else {
        panic!("{saved:?}")
    };
    assert_eq!(p.id, pid("s1"));
    let hand = p.hand.expect("hand stored");
    assert_eq!(hand.raised_at, h.now);
    assert_eq!(hand.order, h.room.seq(), "the hand_raised event's seq");

    let outs = h.req(2, ClientMessage::HandLower);
    assert_eq!(
        saved_records(&outs),
        vec![PersistRecord::ParticipantStateCleared {
            participant_id: pid("s1")
        }]
    );
    // A stage grant stores the room's row, and the presenter's (they must come back).
    let outs = h.req(1, stage("s1"));
    let saved = saved_records(&outs);
    assert_eq!(saved.len(), 2, "{saved:?}");
    assert!(matches!(&saved[0], PersistRecord::RoomState(r) if r.presenter == Some(pid("s1"))));
    assert!(matches!(&saved[1], PersistRecord::ParticipantState(p) if p.id == pid("s1")));
}

#[test]
fn lobby_admissions_survive_a_restore() {
    let mut r = Recorded::new(H::new());
    r.run(|h| h.join(1, "t", Role::Instructor));
    r.run(|h| h.join(2, "s1", Role::Student));
    r.run(|h| h.join(3, "s2", Role::Student));
    r.run(|h| {
        h.req(
            1,
            ClientMessage::Admit {
                participant_id: pid("s1"),
            },
        )
    });

    let (mut h, _) = r.restored(config(), 1_000);
    assert_eq!(h.room.class_state(), ClassState::NotStarted);
    let outs = h.join(12, "s1", Role::Student);
    let snap = snapshot_to(&outs, 12).unwrap();
    let s1 = snap.roster.iter().find(|p| p.id == pid("s1")).unwrap();
    assert!(!s1.in_lobby, "let in before the restore, still in");
    let outs = h.join(13, "s2", Role::Student);
    let snap = snapshot_to(&outs, 13).unwrap();
    let s2 = snap.roster.iter().find(|p| p.id == pid("s2")).unwrap();
    assert!(s2.in_lobby, "never let in, waits again");
}

#[test]
fn an_ended_class_stays_ended_and_keeps_nothing_of_its_students() {
    let mut r = busy_class();
    r.run(|h| h.req(1, ClientMessage::ClassEnd));
    assert!(r.stored.participants.is_empty());
    let (h, _) = r.restored(live(), 1_000);
    assert_eq!(h.room.class_state(), ClassState::Ended);
    assert!(!h.room.is_banned(&pid("s4")), "removals last one class");
    assert_eq!(h.room.participant_count(), 0);

    // A class that never started goes live at once in an auto-start room, as a new room does.
    let mut r = Recorded::new(H::new());
    r.run(|h| h.join(1, "t", Role::Instructor));
    r.run(|h| h.join(2, "s1", Role::Student));
    r.run(|h| {
        h.req(
            1,
            ClientMessage::Admit {
                participant_id: pid("s1"),
            },
        )
    });
    let (h, outs) = r.restored(live(), 1_000);
    assert_eq!(h.room.class_state(), ClassState::Live);
    assert!(
        saved_records(&outs)
            .iter()
            .any(|s| matches!(s, PersistRecord::RoomState(r) if r.class_state == ClassState::Live)),
        "the start is stored: {outs:?}"
    );
}

#[test]
fn mode_speech_grants_and_cameras_survive_a_restore() {
    let mut r = Recorded::new(H::with(live(), RoomInit::default()));
    r.run(|h| h.join(1, "t", Role::Instructor));
    r.run(|h| h.join(2, "s1", Role::Student));
    r.run(|h| h.join(3, "s2", Role::Student));
    r.run(|h| {
        h.req(
            1,
            ClientMessage::SetMode {
                mode: ClassMode::Seminar,
            },
        )
    });
    r.run(|h| {
        h.req(
            1,
            ClientMessage::CameraStop {
                participant_id: pid("s1"),
            },
        )
    });
    r.run(|h| {
        h.req(
            1,
            ClientMessage::AllowSpeak {
                participant_id: pid("s2"),
            },
        )
    });
    let (mut h, _) = r.restored(live(), 1_000);
    assert_eq!(h.room.mode(), ClassMode::Seminar);
    let outs = h.join(12, "s1", Role::Student);
    assert_eq!(
        media(&outs),
        vec![publish("s1", false, false)],
        "camera stopped"
    );
    let outs = h.join(13, "s2", Role::Student);
    assert_eq!(
        media(&outs),
        vec![publish("s2", true, true)],
        "granted, seminar"
    );
    let outs = h.join(14, "s3", Role::Student);
    assert_eq!(
        media(&outs),
        vec![publish("s3", false, true)],
        "a newcomer in seminar"
    );

    // Muting everyone is stored as one room row and a row per student; a restore keeps it.
    let mut r = Recorded::new(H::with(live(), RoomInit::default()));
    r.run(|h| h.join(1, "t", Role::Instructor));
    r.run(|h| h.join(2, "s1", Role::Student));
    r.run(|h| h.req(1, ClientMessage::SpeakAll { allowed: true }));
    assert!(r.stored.room.as_ref().is_some_and(|s| s.speak_all));
    r.run(|h| h.req(1, ClientMessage::MuteAll));
    let (mut h, _) = r.restored(live(), 1_000);
    assert!(!h.room.speak_all());
    let outs = h.join(12, "s1", Role::Student);
    assert_eq!(
        media(&outs),
        vec![publish("s1", false, false)],
        "still muted"
    );
}

/// A scheduled class restored mid-session is not started again, nor warned twice.
#[test]
fn a_scheduled_class_is_neither_restarted_nor_warned_twice() {
    const MIN: u64 = 60_000;
    let schedule = SessionSchedule {
        starts_at: T0 + 10 * MIN,
        ends_at: T0 + 70 * MIN,
        auto_start: true,
        warning_ms: 5 * MIN,
        close_grace_ms: 10 * MIN,
    };
    let scheduled = RoomConfig {
        schedule: Some(schedule),
        ..config()
    };
    let mut r = Recorded::new(H::with(scheduled.clone(), RoomInit::default()));
    r.run(|h| h.join(1, "t", Role::Instructor));
    r.run(|h| {
        h.now = schedule.warns_at();
        h.tick()
    });
    assert_eq!(r.h.room.class_state(), ClassState::Live);
    let started_at = r.h.room.class_started_at();

    let (h, outs) = r.restored(scheduled, MIN);
    assert!(events(&outs).is_empty(), "{outs:?}");
    assert_eq!(h.room.class_state(), ClassState::Live);
    assert_eq!(h.room.class_started_at(), started_at);
    assert_eq!(h.room.poll_timeout(), Some(schedule.closes_at()));
}
