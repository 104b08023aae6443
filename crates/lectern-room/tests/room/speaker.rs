//! The active speaker: named by the media plane (`Input::ActiveSpeaker`), told to the class
//! when it changes, and to each participant entering the class; never to the lobby.

use lectern_proto::{ClientMessage, Role, ServerMessage};
use lectern_room::{Input, Output};

use crate::support::*;

fn speaks(h: &mut H, id: Option<&str>) -> Vec<Output> {
    h.input(Input::ActiveSpeaker {
        participant_id: id.map(pid),
    })
}

fn told(id: Option<&str>) -> ServerMessage {
    ServerMessage::ActiveSpeaker {
        participant_id: id.map(pid),
    }
}

/// The kinds of message each output sends to `conn`, and `welcomed` for its `Welcomed`, in
/// order.
fn seen_by(outs: &[Output], conn: u64) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, message, .. } if to.contains(&c(conn)) => Some(
                serde_json::to_value(message).expect("serializes")["type"]
                    .as_str()
                    .expect("type")
                    .to_owned(),
            ),
            Output::Welcomed { conn: w, .. } if *w == c(conn) => Some("welcomed".to_owned()),
            _ => None,
        })
        .collect()
}

/// Instructor `t` (conn 1) and student `s1` (conn 2, admitted) in the class, `s2` (conn 3)
/// in the lobby.
fn class_and_lobby() -> H {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s1"),
        },
    );
    h
}

#[test]
fn a_change_is_told_to_the_class_once_and_never_to_the_lobby() {
    let mut h = class_and_lobby();
    let seq = h.room.seq();
    let outs = speaks(&mut h, Some("t"));
    assert_eq!(
        outs,
        vec![Output::Send {
            to: vec![c(1), c(2)],
            persist_seq: None,
            message: told(Some("t")),
        }]
    );
    assert_eq!(h.room.active_speaker(), Some(&pid("t")));
    // The same speaker named again (the media plane's next report): nothing to tell.
    assert!(speaks(&mut h, Some("t")).is_empty());

    let outs = speaks(&mut h, Some("s1"));
    assert_eq!(to_conn(&outs, 1), vec![told(Some("s1"))]);
    assert_eq!(to_conn(&outs, 2), vec![told(Some("s1"))]);
    assert!(to_conn(&outs, 3).is_empty(), "the lobby is not told");

    let outs = speaks(&mut h, None);
    assert_eq!(to_conn(&outs, 1), vec![told(None)]);
    assert!(speaks(&mut h, None).is_empty());
    // Ephemeral: no sequence number used.
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn a_speaker_who_left_meanwhile_is_ignored() {
    let mut h = class_and_lobby();
    speaks(&mut h, Some("t"));
    assert!(speaks(&mut h, Some("gone")).is_empty());
    assert_eq!(h.room.active_speaker(), Some(&pid("t")));
    // Someone in their grace period is still in the room.
    h.disconnect(2);
    let outs = speaks(&mut h, Some("s1"));
    assert_eq!(to_conn(&outs, 1), vec![told(Some("s1"))]);
}

#[test]
fn someone_let_in_from_the_lobby_learns_who_speaks_after_their_snapshot() {
    let mut h = class_and_lobby();
    speaks(&mut h, Some("t"));
    let outs = h.req(
        1,
        ClientMessage::Admit {
            participant_id: pid("s2"),
        },
    );
    let s2 = seen_by(&outs, 3);
    assert_eq!(s2, ["event", "snapshot", "active_speaker"], "{outs:#?}");
    assert_eq!(to_conn(&outs, 3).last(), Some(&told(Some("t"))));
    // The others already know.
    assert!(!to_conn(&outs, 1).contains(&told(Some("t"))));

    // Starting the class lets the whole lobby in: each learns it after the snapshot.
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    speaks(&mut h, Some("t"));
    let outs = h.req(1, ClientMessage::ClassStart);
    for conn in [2, 3] {
        assert_eq!(
            seen_by(&outs, conn),
            ["event", "snapshot", "active_speaker"],
            "conn {conn}"
        );
    }
}

#[test]
fn a_welcome_into_the_class_is_followed_by_the_speaker_but_not_in_the_lobby() {
    let mut h = class_and_lobby();
    speaks(&mut h, Some("t"));
    // A student joining while the class has not started waits in the lobby: not told.
    let outs = h.join(4, "s3", Role::Student);
    assert_eq!(seen_by(&outs, 4), ["welcome", "welcomed"]);
    // Staff enter the class at once.
    let outs = h.join(5, "ta", Role::Ta);
    assert_eq!(seen_by(&outs, 5), ["welcome", "welcomed", "active_speaker"]);
    assert_eq!(to_conn(&outs, 5)[1], told(Some("t")));

    // A reconnect with a replay: the speaker comes right after the welcome, before the
    // replayed events.
    let seq = h.room.seq();
    h.disconnect(2);
    h.req(1, ClientMessage::HandLowerAll);
    let outs = h.join_with(6, "s1", Role::Student, Some(seq));
    let seen = seen_by(&outs, 6);
    assert_eq!(
        seen[..3],
        ["welcome", "welcomed", "active_speaker"],
        "{seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("replay_done"));
}

#[test]
fn nobody_speaking_tells_an_entering_participant_nothing() {
    let mut h = H::live();
    h.join(1, "t", Role::Instructor);
    let outs = h.join(2, "s1", Role::Student);
    assert_eq!(seen_by(&outs, 2), ["welcome", "welcomed"]);
    speaks(&mut h, Some("t"));
    speaks(&mut h, None);
    let outs = h.join(3, "s2", Role::Student);
    assert_eq!(seen_by(&outs, 3), ["welcome", "welcomed"]);
}

#[test]
fn every_welcome_is_followed_by_welcomed_and_a_refusal_is_not() {
    let mut h = H::live();
    let outs = h.join(1, "t", Role::Instructor);
    let welcomed: Vec<_> = outs
        .iter()
        .filter(|o| matches!(o, Output::Welcomed { .. }))
        .collect();
    assert_eq!(
        welcomed,
        [&Output::Welcomed {
            conn: c(1),
            participant_id: pid("t")
        }]
    );
    let position = |outs: &[Output]| {
        outs.iter()
            .position(|o| {
                matches!(
                    o,
                    Output::Send {
                        message: ServerMessage::Welcome { .. },
                        ..
                    }
                )
            })
            .expect("a welcome")
    };
    let at = position(&outs);
    assert!(matches!(outs[at + 1], Output::Welcomed { .. }));

    // Replaced by a second connection: the new one is welcomed.
    let outs = h.join(2, "t", Role::Instructor);
    let at = position(&outs);
    assert_eq!(
        outs[at + 1],
        Output::Welcomed {
            conn: c(2),
            participant_id: pid("t")
        }
    );

    // Removed, then trying again: refused, so no `Welcomed`.
    h.join(3, "s1", Role::Student);
    h.req(
        2,
        ClientMessage::Remove {
            participant_id: pid("s1"),
            reason: None,
        },
    );
    let outs = h.join(4, "s1", Role::Student);
    assert!(!errors(&outs).is_empty());
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Welcomed { .. })),
        "{outs:#?}"
    );
}
