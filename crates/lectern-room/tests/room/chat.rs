//! Chat: targets and who receives them, validation, lock, delete, storage failure, snapshots,
//! reactions.

use lectern_proto::{
    ChatMessage, ChatTarget, ClientMessage, ErrorCode, Reaction, Role, RoomEvent, ServerMessage,
};
use lectern_room::{Input, ModerationAction, Output, PersistRecord, RoomConfig, RoomInit};

use crate::support::*;

/// Instructor `t` (1), TA `ta` (4), students `s1` (2), `s2` (3), observer `o` (5).
fn room() -> H {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.join(5, "o", Role::Observer);
    h
}

fn chat_recipients(outs: &[Output]) -> Vec<u64> {
    let evs = events(outs);
    assert_eq!(evs.len(), 1, "{outs:#?}");
    evs[0].2.iter().map(|c| c.0).collect()
}

#[test]
fn chat_to_everyone_is_stored_first_then_sent_once_to_all_and_acked() {
    let mut h = room();
    let seq = h.room.seq() + 1;
    let outs = h.chat(2, ChatTarget::Everyone, "  hello  ");
    let Output::Persist(PersistRecord::Chat(stored)) = &outs[0] else {
        panic!("the chat is stored first: {outs:#?}");
    };
    let expected = ChatMessage {
        seq,
        from: pid("s1"),
        from_name: "Name of s1".into(),
        from_role: Role::Student,
        to: ChatTarget::Everyone,
        text: "  hello  ".into(),
        sent_at: h.now,
    };
    assert_eq!(stored, &expected);
    let Output::Send {
        to,
        persist_seq,
        message,
    } = &outs[1]
    else {
        panic!()
    };
    assert_eq!(to, &vec![c(1), c(2), c(3), c(4), c(5)]);
    assert_eq!(*persist_seq, Some(seq));
    assert_eq!(
        message,
        &ServerMessage::Event {
            seq,
            at: h.now,
            event: RoomEvent::Chat { message: expected }
        }
    );
    assert!(matches!(
        &outs[2],
        Output::Send { to, persist_seq: Some(s), message: ServerMessage::Ack { seq: Some(a), .. } }
            if to == &vec![c(2)] && *s == seq && *a == seq
    ));
    assert_eq!(outs.len(), 3);
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn chat_to_staff_reaches_staff_and_the_sender() {
    let mut h = room();
    assert_eq!(
        chat_recipients(&h.chat(2, ChatTarget::Staff, "question")),
        vec![1, 2, 4]
    );
    assert_eq!(
        chat_recipients(&h.chat(4, ChatTarget::Staff, "note")),
        vec![1, 4]
    );
}

#[test]
fn chat_to_a_participant_is_staff_only_and_reaches_them_the_sender_and_staff() {
    let mut h = room();
    let to = |id: &str| ChatTarget::Participant { id: pid(id) };
    assert_eq!(
        chat_recipients(&h.chat(4, to("s2"), "see me")),
        vec![1, 3, 4]
    );
    assert_eq!(chat_recipients(&h.chat(1, to("o"), "hi")), vec![1, 4, 5]);
    let seq = h.room.seq();
    assert_eq!(
        only_error(&h.chat(2, to("s2"), "psst")),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.chat(5, to("t"), "psst")),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.chat(1, to("ghost"), "hi")),
        ErrorCode::NotFound
    );
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn observers_may_not_chat() {
    let mut h = room();
    assert_eq!(
        only_error(&h.chat(5, ChatTarget::Everyone, "hi")),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.chat(5, ChatTarget::Staff, "hi")),
        ErrorCode::NotPermitted
    );
}

#[test]
fn blank_and_overlong_messages_are_refused_without_echoing_the_text() {
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            max_chat_chars: 5,
            ..config()
        },
        RoomInit::default(),
    );
    h.join(2, "s1", Role::Student);
    let seq = h.room.seq();
    let outs = h.chat(2, ChatTarget::Everyone, " \n\t ");
    assert_eq!(
        errors(&outs),
        vec![(ErrorCode::ChatEmpty, Some(h.last_request()), vec![c(2)])]
    );
    let outs = h.chat(2, ChatTarget::Everyone, "sécret");
    assert_eq!(only_error(&outs), ErrorCode::ChatTooLong);
    let Output::Send {
        message: ServerMessage::Error { message, .. },
        ..
    } = &outs[0]
    else {
        panic!()
    };
    assert!(!message.contains("sécret"));
    assert_eq!(h.room.seq(), seq);
    // Five characters (more bytes) fit.
    assert_eq!(
        kinds(&h.chat(2, ChatTarget::Everyone, "ééééé")),
        vec!["chat"]
    );
}

#[test]
fn locked_chat_refuses_students_but_not_staff() {
    let mut h = room();
    let outs = h.req(1, ClientMessage::ChatLock { locked: true });
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::ChatLocked {
            locked: true,
            by: pid("t")
        }
    );
    assert_eq!(
        persists(&outs),
        vec![PersistRecord::Moderation {
            seq: evs[0].0,
            action: ModerationAction::LockChat,
            by: pid("t"),
            target: None,
            at: h.now
        }]
    );
    assert!(h.room.chat_locked());
    let seq = h.room.seq();
    let outs = h.req(4, ClientMessage::ChatLock { locked: true });
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(
        only_error(&h.chat(2, ChatTarget::Everyone, "hi")),
        ErrorCode::ChatLocked
    );
    assert_eq!(
        only_error(&h.chat(2, ChatTarget::Staff, "hi")),
        ErrorCode::ChatLocked
    );
    assert_eq!(
        only_error(&h.req(2, ClientMessage::ChatLock { locked: false })),
        ErrorCode::NotPermitted
    );
    assert_eq!(h.room.seq(), seq);
    assert_eq!(
        kinds(&h.chat(4, ChatTarget::Everyone, "quiet please")),
        vec!["chat"]
    );
    assert!(h.room.snapshot_for(&pid("s1")).unwrap().chat_locked);

    let outs = h.req(1, ClientMessage::ChatLock { locked: false });
    assert!(matches!(
        &persists(&outs)[0],
        PersistRecord::Moderation {
            action: ModerationAction::UnlockChat,
            ..
        }
    ));
    assert_eq!(kinds(&h.chat(2, ChatTarget::Everyone, "hi")), vec!["chat"]);
}

#[test]
fn staff_delete_a_message_once() {
    let mut h = room();
    h.chat(2, ChatTarget::Everyone, "oops");
    let seq = h.room.seq();
    assert_eq!(
        only_error(&h.req(3, ClientMessage::ChatDelete { seq })),
        ErrorCode::NotPermitted
    );
    let outs = h.req(4, ClientMessage::ChatDelete { seq });
    let evs = events(&outs);
    assert_eq!(evs[0].1, RoomEvent::ChatDeleted { seq, by: pid("ta") });
    assert_eq!(evs[0].2.len(), 5);
    assert_eq!(
        persists(&outs),
        vec![
            PersistRecord::ChatDeleted {
                seq,
                by: pid("ta"),
                at: h.now
            },
            PersistRecord::Moderation {
                seq: evs[0].0,
                action: ModerationAction::DeleteChat,
                by: pid("ta"),
                target: Some(pid("s1")),
                at: h.now
            },
        ]
    );
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert!(h.room.snapshot_for(&pid("s2")).unwrap().chat.is_empty());
    assert_eq!(
        only_error(&h.req(1, ClientMessage::ChatDelete { seq })),
        ErrorCode::NotFound
    );
    assert_eq!(
        only_error(&h.req(1, ClientMessage::ChatDelete { seq: 9_999 })),
        ErrorCode::NotFound
    );
    // An event that is not a chat message cannot be deleted.
    assert_eq!(
        only_error(&h.req(1, ClientMessage::ChatDelete { seq: 1 })),
        ErrorCode::NotFound
    );
}

#[test]
fn chat_deleted_reaches_only_those_who_could_see_the_message() {
    // Instructor t (1), TA ta (4), students s1 (2), s2 (3) and observer o (5) let in; s3 (6)
    // waits in the lobby.
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(4, "ta", Role::Ta);
    for (conn, id, role) in [
        (2, "s1", Role::Student),
        (3, "s2", Role::Student),
        (5, "o", Role::Observer),
    ] {
        h.join(conn, id, role);
        h.req(
            1,
            ClientMessage::Admit {
                participant_id: pid(id),
            },
        );
    }
    h.join(6, "s3", Role::Student);
    let to = |id: &str| ChatTarget::Participant { id: pid(id) };
    let deleted_to = |h: &mut H, from: u64, target: ChatTarget| -> Vec<u64> {
        h.chat(from, target, "to delete");
        let seq = h.room.seq();
        let outs = h.req(1, ClientMessage::ChatDelete { seq });
        assert_eq!(
            events(&outs)[0].1,
            RoomEvent::ChatDeleted { seq, by: pid("t") }
        );
        chat_recipients(&outs)
    };
    // Public: everyone, the lobby included.
    assert_eq!(
        deleted_to(&mut h, 2, ChatTarget::Everyone),
        vec![1, 4, 2, 3, 5, 6]
    );
    // To staff: staff and the sender.
    assert_eq!(deleted_to(&mut h, 2, ChatTarget::Staff), vec![1, 4, 2]);
    assert_eq!(deleted_to(&mut h, 4, ChatTarget::Staff), vec![1, 4]);
    // To one participant: them, the sender and staff.
    assert_eq!(deleted_to(&mut h, 4, to("s2")), vec![1, 4, 3]);
    assert_eq!(deleted_to(&mut h, 1, to("s3")), vec![1, 4, 6]);
}

#[test]
fn a_message_that_failed_to_store_is_forgotten_and_the_sender_told() {
    let mut h = room();
    h.chat(2, ChatTarget::Everyone, "first");
    let outs = h.chat(2, ChatTarget::Everyone, "lost");
    let request_id = h.last_request();
    let seq = h.room.seq();
    assert!(outs.iter().all(|o| !matches!(
        o,
        Output::Send {
            persist_seq: None,
            ..
        }
    )));

    let outs = h.input(Input::PersistFailed { seq });
    assert_eq!(outs.len(), 1);
    assert_eq!(
        errors(&outs),
        vec![(ErrorCode::StoreUnavailable, Some(request_id), vec![c(2)])]
    );
    let texts: Vec<_> = h.room.recent_chat().map(|m| m.text.clone()).collect();
    assert_eq!(texts, vec!["first"]);
    assert_eq!(h.room.snapshot_for(&pid("t")).unwrap().chat.len(), 1);
    // A replay from before it does not include it.
    h.disconnect(3);
    let outs = h.join_with(9, "s2", Role::Student, Some(seq - 1));
    assert!(events_to(&outs, 9).iter().all(|(s, _)| *s != seq));
    // Reported twice, or for something else: nothing.
    assert!(h.input(Input::PersistFailed { seq }).is_empty());
    assert!(h.input(Input::PersistFailed { seq: 1 }).is_empty());
    assert_eq!(h.room.participant_count(), 5);
    // Deleting it is not possible.
    assert_eq!(
        only_error(&h.req(1, ClientMessage::ChatDelete { seq })),
        ErrorCode::NotFound
    );
}

#[test]
fn a_sender_who_left_is_not_told_about_the_failure() {
    let mut h = room();
    h.chat(2, ChatTarget::Everyone, "lost");
    let seq = h.room.seq();
    h.disconnect(2);
    assert!(h.input(Input::PersistFailed { seq }).is_empty());
    assert_eq!(h.room.chat_len(), 0);
}

#[test]
fn snapshots_carry_the_last_visible_messages_oldest_first() {
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            snapshot_chat_len: 2,
            ..config()
        },
        RoomInit::default(),
    );
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.join(3, "s2", Role::Student);
    h.chat(1, ChatTarget::Everyone, "a");
    h.chat(2, ChatTarget::Staff, "b");
    h.chat(1, ChatTarget::Participant { id: pid("s2") }, "c");
    h.chat(3, ChatTarget::Everyone, "d");
    let texts = |h: &H, id: &str| -> Vec<String> {
        h.room
            .snapshot_for(&pid(id))
            .unwrap()
            .chat
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    assert_eq!(texts(&h, "t"), vec!["c", "d"]);
    assert_eq!(texts(&h, "s1"), vec!["b", "d"]);
    assert_eq!(texts(&h, "s2"), vec!["c", "d"]);
    assert_eq!(h.room.chat_len(), 4);
}

#[test]
fn the_room_continues_from_stored_state() {
    let old = ChatMessage {
        seq: 40,
        from: pid("s1"),
        from_name: "S1".into(),
        from_role: Role::Student,
        to: ChatTarget::Everyone,
        text: "from last week".into(),
        sent_at: T0 - 1,
    };
    let init = RoomInit {
        last_seq: 41,
        recent_chat: vec![old.clone()],
        chat_locked: true,
        ..RoomInit::default()
    };
    let mut h = H::with(
        RoomConfig {
            auto_start: true,
            ..config()
        },
        init,
    );
    assert_eq!(h.room.seq(), 41);
    assert!(h.room.chat_locked());
    let outs = h.join(1, "t", Role::Instructor);
    assert_eq!(events(&outs).len(), 0);
    assert_eq!(h.room.seq(), 42);
    assert_eq!(snapshot_to(&outs, 1).unwrap().chat, vec![old]);
    assert_eq!(
        kinds(&h.req(1, ClientMessage::ChatDelete { seq: 40 })),
        vec!["chat_deleted"]
    );
}

#[test]
fn at_least_a_thousand_messages_stay_in_memory() {
    let mut h = room();
    for i in 0..1_100 {
        h.chat(1, ChatTarget::Everyone, &format!("m{i}"));
    }
    assert_eq!(h.room.chat_len(), 1_000);
    assert_eq!(
        h.room.snapshot_for(&pid("s1")).unwrap().chat.len(),
        config().snapshot_chat_len
    );
}

#[test]
fn reactions_go_to_everyone_outside_the_lobby_unsequenced() {
    let mut h = room();
    let seq = h.room.seq();
    let outs = h.req(
        2,
        ClientMessage::React {
            reaction: Reaction::Clap,
        },
    );
    let Output::Send {
        to,
        persist_seq: None,
        message,
    } = &outs[0]
    else {
        panic!()
    };
    assert_eq!(to, &vec![c(1), c(2), c(3), c(4), c(5)]);
    assert_eq!(
        message,
        &ServerMessage::Reaction {
            participant_id: pid("s1"),
            reaction: Reaction::Clap
        }
    );
    assert_eq!(ack(&outs, h.last_request()), Some(None));
    assert_eq!(h.room.seq(), seq);
    assert_eq!(
        only_error(&h.req(
            5,
            ClientMessage::React {
                reaction: Reaction::Laugh
            }
        )),
        ErrorCode::NotPermitted
    );
}

#[test]
fn requests_without_an_id_get_errors_but_no_acks() {
    let mut h = room();
    let outs = h.input(Input::Request {
        conn: c(2),
        request_id: None,
        message: ClientMessage::HandRaise,
    });
    assert_eq!(kinds(&outs), vec!["hand_raised"]);
    assert_eq!(without_saved(outs).len(), 1);
    let outs = h.input(Input::Request {
        conn: c(2),
        request_id: None,
        message: ClientMessage::HandLowerAll,
    });
    assert_eq!(
        errors(&outs),
        vec![(ErrorCode::NotPermitted, None, vec![c(2)])]
    );
}

#[test]
fn a_thousand_student_broadcast_is_one_send() {
    let mut h = H::live();
    h.join(1, "t", Role::Instructor);
    for i in 0..1_000 {
        h.join(100 + i, &format!("s{i}"), Role::Student);
    }
    let outs = h.chat(1, ChatTarget::Everyone, "hello all");
    let sends: Vec<_> = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    message: ServerMessage::Event { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(chat_recipients(&outs).len(), 1_001);
}
