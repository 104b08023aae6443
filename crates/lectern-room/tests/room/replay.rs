//! Reconnecting with `last_seq`: exactly the missed visible events once each, or a snapshot
//! when they are no longer all kept.

use lectern_proto::{ChatTarget, ClientMessage, Role, RoomEvent, Seq, ServerMessage};
use lectern_room::{Output, RoomConfig, RoomInit};

use crate::support::*;

/// What `conn` was sent: whether the welcome had a snapshot, the replayed events, and the
/// `replay_done` (`seq`, `replayed`).
type Replay = (Option<bool>, Vec<(Seq, RoomEvent)>, Option<(Seq, u32)>);

fn replay_to(outs: &[Output], conn: u64) -> Replay {
    let mut snapshot = None;
    let mut replayed = Vec::new();
    let mut done = None;
    for m in to_conn(outs, conn) {
        match m {
            ServerMessage::Welcome { snapshot: s, .. } => snapshot = Some(s.is_some()),
            ServerMessage::Event { seq, event, .. } => replayed.push((seq, event)),
            ServerMessage::ReplayDone { seq, replayed } => done = Some((seq, replayed)),
            other => panic!("unexpected {other:?}"),
        }
    }
    (snapshot, replayed, done)
}

#[test]
fn a_reconnecting_student_gets_exactly_the_missed_events_they_may_see() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    let seen = h.room.seq();
    h.disconnect(2);
    h.chat(1, ChatTarget::Everyone, "public");
    h.chat(3, ChatTarget::Staff, "private question");
    h.chat(
        4,
        ChatTarget::Participant { id: pid("s2") },
        "private answer",
    );
    h.chat(4, ChatTarget::Participant { id: pid("s1") }, "for you");
    h.req(3, ClientMessage::HandRaise);
    let outs = h.join_with(9, "s1", Role::Student, Some(seen));
    let (snapshot, replayed, done) = replay_to(&outs, 9);
    assert_eq!(snapshot, Some(false), "a welcome without snapshot");
    let kinds: Vec<_> = replayed
        .iter()
        .map(|(_, e)| match e {
            RoomEvent::Chat { message } => message.text.clone(),
            RoomEvent::ParticipantConnection { connected, .. } => format!("connected={connected}"),
            RoomEvent::HandRaised { .. } => "hand".into(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "connected=false",
            "public",
            "for you",
            "hand",
            "connected=true"
        ]
    );
    let seqs: Vec<Seq> = replayed.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(seqs[0] > seen);
    assert_eq!(done, Some((h.room.seq(), 5)));
    // The others got the reconnection live, and the joiner did not get it twice.
    let live: Vec<_> = events(&outs)
        .into_iter()
        .filter(|(_, _, to)| to.len() > 1)
        .collect();
    assert_eq!(live.len(), 1);
    assert!(!live[0].2.contains(&c(9)));
}

#[test]
fn up_to_date_clients_get_an_empty_replay() {
    let mut h = H::class();
    let seen = h.room.seq();
    let outs = h.join_with(9, "s1", Role::Student, Some(seen));
    assert_eq!(closes(&outs).len(), 1, "the old connection is replaced");
    let (snapshot, replayed, done) = replay_to(&outs, 9);
    assert_eq!(
        (snapshot, replayed.len(), done),
        (Some(false), 0, Some((seen, 0)))
    );
}

#[test]
fn a_replay_too_old_or_from_the_future_falls_back_to_a_snapshot() {
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            replay_len: 5,
            ..config()
        },
        RoomInit {
            last_seq: 100,
            ..RoomInit::default()
        },
    );
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    for _ in 0..3 {
        h.req(2, ClientMessage::HandRaise);
        h.req(2, ClientMessage::HandLower);
    }
    // 108 events so far; the ring keeps 104..=108.
    assert_eq!(h.room.seq(), 108);
    h.disconnect(2);
    // 109; the rejoin's own event is 110, so the ring then keeps 106..=110: 104 is too old.
    let outs = h.join_with(3, "s1", Role::Student, Some(104));
    assert_eq!(replay_to(&outs, 3).0, Some(true));
    let snap = snapshot_to(&outs, 3).unwrap();
    assert_eq!(snap.seq, h.room.seq());
    assert_eq!(snap.seq, 110);

    h.disconnect(3);
    // 111, then 112 for the rejoin: the ring keeps 108..=112, so 107 is just recent enough.
    let outs = h.join_with(4, "s1", Role::Student, Some(107));
    let (snapshot, replayed, done) = replay_to(&outs, 4);
    assert_eq!(snapshot, Some(false));
    assert_eq!(replayed.first().map(|(s, _)| *s), Some(108));
    assert_eq!(done, Some((112, 5)));

    h.disconnect(4);
    let outs = h.join_with(5, "s1", Role::Student, Some(10_000));
    assert_eq!(replay_to(&outs, 5).0, Some(true));
}

#[test]
fn a_client_of_an_earlier_room_gets_a_snapshot_after_a_restart() {
    // A room recreated from storage continues the seqs after `RoomInit::last_seq` (50) but
    // starts with an empty replay ring and a fresh roster and class state. A client whose
    // `last_seq` is 50 or less holds the earlier instance's state (its roster, hands, stage):
    // resuming it with "nothing since 50" would leave that state stale, so it gets a snapshot.
    // Only a client that saw an event of this instance (`last_seq` > 50) resumes.
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            ..config()
        },
        RoomInit {
            last_seq: 50,
            ..RoomInit::default()
        },
    );
    h.join(1, "t", Role::Instructor);
    let outs = h.join_with(2, "s1", Role::Student, Some(50));
    assert_eq!(replay_to(&outs, 2).0, Some(true));
    let snap = snapshot_to(&outs, 2).unwrap();
    assert_eq!((snap.seq, snap.roster.len()), (52, 2));
    let outs = h.join_with(3, "s2", Role::Student, Some(49));
    assert_eq!(replay_to(&outs, 3).0, Some(true));

    // Having seen this instance's events, s1 resumes.
    h.disconnect(2);
    let outs = h.join_with(4, "s1", Role::Student, Some(52));
    let (snapshot, replayed, done) = replay_to(&outs, 4);
    assert_eq!(snapshot, Some(false));
    let seqs: Vec<Seq> = replayed.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![53, 54, 55]);
    assert_eq!(done, Some((55, 3)));
}

#[test]
fn a_resume_just_after_a_restart_with_no_events_yet_gets_a_snapshot() {
    // Even with the new room's first event being the client's own return, a `last_seq` equal
    // to the stored one is the earlier instance's state.
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            ..config()
        },
        RoomInit {
            last_seq: 7,
            ..RoomInit::default()
        },
    );
    let outs = h.join_with(1, "s1", Role::Student, Some(7));
    let (snapshot, replayed, done) = replay_to(&outs, 1);
    assert_eq!((snapshot, replayed.len(), done), (Some(true), 0, None));
    // Ahead of the room: a snapshot too.
    h.disconnect(1);
    let outs = h.join_with(2, "s1", Role::Student, Some(h.room.seq() + 2));
    assert_eq!(replay_to(&outs, 2).0, Some(true));
}

#[test]
fn the_lobby_replays_no_chat() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    let seen = h.room.seq();
    h.disconnect(2);
    h.chat(1, ChatTarget::Everyone, "before class");
    h.req(1, ClientMessage::ChatLock { locked: true });
    let outs = h.join_with(3, "s1", Role::Student, Some(seen));
    let (_, replayed, done) = replay_to(&outs, 3);
    assert!(
        replayed
            .iter()
            .all(|(_, e)| !matches!(e, RoomEvent::Chat { .. }))
    );
    assert_eq!(replayed.len(), 3);
    assert_eq!(done.unwrap().1, 3);
}

#[test]
fn deleted_messages_are_not_replayed() {
    let mut h = H::class();
    let seen = h.room.seq();
    h.disconnect(2);
    h.chat(3, ChatTarget::Everyone, "rude");
    let rude = h.room.seq();
    h.req(1, ClientMessage::ChatDelete { seq: rude });
    let outs = h.join_with(9, "s1", Role::Student, Some(seen));
    let (_, replayed, _) = replay_to(&outs, 9);
    assert!(replayed.iter().all(|(s, _)| *s != rude));
    assert!(replayed.iter().any(|(_, e)| *e
        == RoomEvent::ChatDeleted {
            seq: rude,
            by: pid("t")
        }));
}

#[test]
fn a_replay_leaves_out_deletions_of_messages_the_client_could_not_see() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.chat(2, ChatTarget::Staff, "question from s1");
    let private = h.room.seq();
    h.chat(1, ChatTarget::Everyone, "public");
    let public = h.room.seq();
    let seen = h.room.seq();
    h.disconnect(2);
    h.disconnect(3);
    h.req(4, ClientMessage::ChatDelete { seq: private });
    h.req(4, ClientMessage::ChatDelete { seq: public });
    let deleted = |outs: &[Output], conn| -> Vec<Seq> {
        replay_to(outs, conn)
            .1
            .into_iter()
            .filter_map(|(_, e)| match e {
                RoomEvent::ChatDeleted { seq, .. } => Some(seq),
                _ => None,
            })
            .collect()
    };
    // s2 never saw the staff-only message: only the public deletion is replayed.
    let outs = h.join_with(9, "s2", Role::Student, Some(seen));
    assert_eq!(replay_to(&outs, 9).0, Some(false));
    assert_eq!(deleted(&outs, 9), vec![public]);
    // s1 sent it: both.
    let outs = h.join_with(8, "s1", Role::Student, Some(seen));
    assert_eq!(deleted(&outs, 8), vec![private, public]);
}
