//! A whole class with an instructor and two students, driven without sockets.

use lectern_proto::{
    ChatTarget, ClassState, ClientMessage, CloseReason, ErrorCode, LeaveReason, Reaction, Role,
    RoomEvent, ServerMessage,
};
use lectern_room::{Output, PersistRecord};

use crate::support::*;

/// Grace, Ada and Bob on conns 1, 2 and 3.
#[test]
fn an_instructor_and_two_students_hold_a_class() {
    let mut h = H::new();
    let mut all: Vec<Output> = Vec::new();
    let mut step = |_: &mut H, outs: Vec<Output>| -> Vec<Output> {
        all.extend(outs.iter().cloned());
        outs
    };

    // Grace opens the room; the students arrive early and wait.
    let outs = h.join(1, "grace", Role::Instructor);
    let outs = step(&mut h, outs);
    assert_eq!(
        snapshot_to(&outs, 1).unwrap().class_state,
        ClassState::NotStarted
    );
    let outs = h.join(2, "ada", Role::Student);
    let outs = step(&mut h, outs);
    assert!(
        matches!(&events_to(&outs, 1)[0].1, RoomEvent::ParticipantJoined { participant } if participant.in_lobby)
    );
    let outs = h.join(3, "bob", Role::Student);
    step(&mut h, outs);
    let outs = h.req(2, ClientMessage::HandRaise);
    assert_eq!(only_error(&step(&mut h, outs)), ErrorCode::InLobby);

    // Class starts: both are let in with a snapshot.
    let outs = h.req(1, ClientMessage::ClassStart);
    let outs = step(&mut h, outs);
    for conn in [2, 3] {
        assert_eq!(
            events_to(&outs, conn)[0].1,
            RoomEvent::ClassStarted {
                by: Some(pid("grace"))
            }
        );
        assert_eq!(
            snapshot_to(&outs, conn).unwrap().class_state,
            ClassState::Live
        );
    }

    // Ada raises her hand, then Bob.
    let outs = h.req(2, ClientMessage::HandRaise);
    step(&mut h, outs);
    h.advance(2_000);
    let outs = h.req(3, ClientMessage::HandRaise);
    step(&mut h, outs);
    assert_eq!(h.room.hand_queue(), vec![pid("ada"), pid("bob")]);

    // Bob asks the staff privately; Grace answers him privately. Ada sees neither.
    let outs = h.chat(3, ChatTarget::Staff, "is this on the exam?");
    let outs = step(&mut h, outs);
    assert_eq!(events(&outs)[0].2, vec![c(1), c(3)]);
    let outs = h.chat(1, ChatTarget::Participant { id: pid("bob") }, "yes");
    let outs = step(&mut h, outs);
    assert_eq!(events(&outs)[0].2, vec![c(1), c(3)]);
    let outs = h.chat(1, ChatTarget::Everyone, "let's take a question");
    let outs = step(&mut h, outs);
    assert_eq!(events(&outs)[0].2, vec![c(1), c(2), c(3)]);
    assert_eq!(h.room.snapshot_for(&pid("ada")).unwrap().chat.len(), 1);
    assert_eq!(h.room.snapshot_for(&pid("bob")).unwrap().chat.len(), 3);

    // Grace calls on the next hand: Ada may speak.
    let outs = h.req(
        1,
        ClientMessage::CallOn {
            participant_id: None,
        },
    );
    let outs = step(&mut h, outs);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::CalledOn {
            participant_id: pid("ada"),
            by: pid("grace")
        }
    );
    assert_eq!(media(&outs), vec![publish("ada", true, false)]);
    assert_eq!(h.room.hand_queue(), vec![pid("bob")]);

    // A reaction reaches everyone, unsequenced.
    let outs = h.req(
        3,
        ClientMessage::React {
            reaction: Reaction::Clap,
        },
    );
    let outs = step(&mut h, outs);
    assert_eq!(
        to_conn(&outs, 2),
        vec![ServerMessage::Reaction {
            participant_id: pid("bob"),
            reaction: Reaction::Clap
        }]
    );

    // Bob presents.
    let outs = h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("bob"),
        },
    );
    let outs = step(&mut h, outs);
    assert_eq!(media(&outs), vec![publish("bob", true, true)]);

    // Bob's network drops and comes back; he keeps the stage and his place in the queue.
    let seen = h.room.seq();
    let outs = h.disconnect(3);
    let outs = step(&mut h, outs);
    assert_eq!(events(&outs)[0].2, vec![c(1), c(2)]);
    h.advance(5_000);
    let outs = h.req(2, ClientMessage::HandRaise);
    step(&mut h, outs);
    let outs = h.join_with(4, "bob", Role::Student, Some(seen));
    let outs = step(&mut h, outs);
    let to_bob = to_conn(&outs, 4);
    assert!(matches!(
        &to_bob[0],
        ServerMessage::Welcome {
            rejoined: true,
            snapshot: None,
            ..
        }
    ));
    assert!(matches!(
        to_bob.last(),
        Some(ServerMessage::ReplayDone { replayed: 3, .. })
    ));
    assert_eq!(h.room.presenter(), Some(&pid("bob")));
    assert_eq!(h.room.hand_queue(), vec![pid("bob"), pid("ada")]);

    // Ada gets carried away; Grace hard-mutes her.
    let outs = h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("ada"),
        },
    );
    let outs = step(&mut h, outs);
    assert_eq!(media(&outs), vec![publish("ada", false, false)]);

    // The class ends: both students are sent away.
    let outs = h.req(1, ClientMessage::ClassEnd);
    let outs = step(&mut h, outs);
    assert_eq!(
        closes(&outs),
        vec![
            (c(2), CloseReason::ClassEnded),
            (c(4), CloseReason::ClassEnded)
        ]
    );
    let left: Vec<_> = events(&outs)
        .into_iter()
        .filter_map(|(_, e, _)| match e {
            RoomEvent::ParticipantLeft {
                participant_id,
                reason: LeaveReason::ClassEnded,
            } => Some(participant_id),
            _ => None,
        })
        .collect();
    assert_eq!(left, vec![pid("ada"), pid("bob")]);
    assert_eq!(h.room.participant_count(), 1);
    assert!(persists(&outs).contains(&PersistRecord::ClassEnded { at: h.now }));

    // Across the whole class, live events were strictly increasing, up to the room's seq.
    let live: Vec<u64> = all
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::Event { seq, .. },
                ..
            } if to != &vec![c(4)] => Some(*seq),
            _ => None,
        })
        .collect();
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{live:?}");
    assert_eq!(live.last(), Some(&h.room.seq()));
}
