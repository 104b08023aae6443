//! The hand queue: order, raise and lower, staff lowering, calling on.

use lectern_proto::{ClientMessage, ErrorCode, HandEntry, Role, RoomEvent};

use crate::support::*;

#[test]
fn hands_queue_in_the_order_they_were_raised() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    let outs = h.req(3, ClientMessage::HandRaise);
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::HandRaised {
            participant_id: pid("s2"),
            raised_at: h.now
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3), c(4)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    h.advance(500);
    h.req(2, ClientMessage::HandRaise);
    h.advance(500);
    h.req(1, ClientMessage::HandRaise);
    assert_eq!(h.room.hand_queue(), vec![pid("s2"), pid("s1"), pid("t")]);
    assert_eq!(
        h.room.hand_entries()[1],
        HandEntry {
            participant_id: pid("s1"),
            raised_at: T0 + 500
        }
    );

    // Raising again changes nothing.
    let seq = h.room.seq();
    let outs = h.req(3, ClientMessage::HandRaise);
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(h.room.seq(), seq);
    assert_eq!(h.room.hand_queue(), vec![pid("s2"), pid("s1"), pid("t")]);
    assert_eq!(
        h.room.snapshot_for(&pid("o")).unwrap().hand_queue,
        h.room.hand_entries()
    );

    // Observers have no hand.
    assert_eq!(
        only_error(&h.req(4, ClientMessage::HandRaise)),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(4, ClientMessage::HandLower)),
        ErrorCode::NotPermitted
    );
}

#[test]
fn lowering_your_own_hand() {
    let mut h = H::class();
    h.req(2, ClientMessage::HandRaise);
    h.req(3, ClientMessage::HandRaise);
    let outs = h.req(2, ClientMessage::HandLower);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::HandLowered {
            participant_id: pid("s1"),
            by: None
        }
    );
    assert_eq!(h.room.hand_queue(), vec![pid("s2")]);
    let seq = h.room.seq();
    let outs = h.req(2, ClientMessage::HandLower);
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn staff_lower_one_hand_or_all() {
    let mut h = H::class();
    h.req(2, ClientMessage::HandRaise);
    h.req(3, ClientMessage::HandRaise);
    let seq = h.room.seq();
    assert_eq!(
        only_error(&h.req(
            3,
            ClientMessage::HandLowerFor {
                participant_id: pid("s1")
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(2, ClientMessage::HandLowerAll)),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::HandLowerFor {
                participant_id: pid("ghost")
            }
        )),
        ErrorCode::NotFound
    );
    assert_eq!(h.room.seq(), seq);

    let outs = h.req(
        1,
        ClientMessage::HandLowerFor {
            participant_id: pid("s2"),
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::HandLowered {
            participant_id: pid("s2"),
            by: Some(pid("t"))
        }
    );
    assert_eq!(h.room.hand_queue(), vec![pid("s1")]);

    h.req(3, ClientMessage::HandRaise);
    let outs = h.req(1, ClientMessage::HandLowerAll);
    assert_eq!(events(&outs)[0].1, RoomEvent::HandsCleared { by: pid("t") });
    assert!(h.room.hand_queue().is_empty());
    let seq = h.room.seq();
    let outs = h.req(1, ClientMessage::HandLowerAll);
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn calling_on_the_next_hand_lets_them_speak() {
    let mut h = H::class();
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::CallOn {
                participant_id: None
            }
        )),
        ErrorCode::QueueEmpty
    );
    h.req(3, ClientMessage::HandRaise);
    h.req(2, ClientMessage::HandRaise);
    h.req(
        1,
        ClientMessage::Mute {
            participant_id: pid("s2"),
        },
    );
    h.req(3, ClientMessage::HandRaise);
    let outs = h.req(
        1,
        ClientMessage::CallOn {
            participant_id: None,
        },
    );
    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0].1,
        RoomEvent::CalledOn {
            participant_id: pid("s2"),
            by: pid("t")
        }
    );
    assert_eq!(ack(&outs, h.last_request()), Some(Some(evs[0].0)));
    assert_eq!(media(&outs), vec![publish("s2", true, false)]);
    let s2 = h.room.participant(&pid("s2")).unwrap();
    assert!(s2.can_speak && !s2.hard_muted);
    assert_eq!(h.room.hand_queue(), vec![pid("s1")]);

    let outs = h.req(
        1,
        ClientMessage::CallOn {
            participant_id: None,
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::CalledOn {
            participant_id: pid("s1"),
            by: pid("t")
        }
    );
    assert!(h.room.hand_queue().is_empty());
}

#[test]
fn calling_on_a_given_participant_needs_no_raised_hand() {
    let mut h = H::class();
    h.req(2, ClientMessage::HandRaise);
    let outs = h.req(
        1,
        ClientMessage::CallOn {
            participant_id: Some(pid("s2")),
        },
    );
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::CalledOn {
            participant_id: pid("s2"),
            by: pid("t")
        }
    );
    assert_eq!(h.room.hand_queue(), vec![pid("s1")]);
    assert!(h.room.participant(&pid("s2")).unwrap().can_speak);
    let seq = h.room.seq();
    assert_eq!(
        only_error(&h.req(
            1,
            ClientMessage::CallOn {
                participant_id: Some(pid("ghost"))
            }
        )),
        ErrorCode::NotFound
    );
    assert_eq!(
        only_error(&h.req(
            2,
            ClientMessage::CallOn {
                participant_id: Some(pid("s1"))
            }
        )),
        ErrorCode::NotPermitted
    );
    assert_eq!(h.room.seq(), seq);
}

#[test]
fn participants_who_go_for_good_leave_the_queue() {
    let mut h = H::class();
    h.join(4, "s3", Role::Student);
    h.req(2, ClientMessage::HandRaise);
    h.req(3, ClientMessage::HandRaise);
    h.req(4, ClientMessage::HandRaise);
    h.req(2, ClientMessage::Leave);
    h.req(
        1,
        ClientMessage::Remove {
            participant_id: pid("s2"),
            reason: None,
        },
    );
    assert_eq!(h.room.hand_queue(), vec![pid("s3")]);
    h.disconnect(4);
    assert_eq!(
        h.room.hand_queue(),
        vec![pid("s3")],
        "kept during the grace period"
    );
    h.advance(config().grace_ms);
    h.tick();
    assert!(h.room.hand_queue().is_empty());
}

#[test]
fn staff_lowering_a_hand_that_is_not_up_is_a_no_op() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    h.req(2, ClientMessage::HandRaise);
    let lower_s1 = ClientMessage::HandLowerFor {
        participant_id: pid("s1"),
    };
    // Two staff lower the same hand: the first lowers it, the second changes nothing.
    assert_eq!(kinds(&h.req(1, lower_s1.clone())), vec!["hand_lowered"]);
    let seq = h.room.seq();
    let outs = h.req(4, lower_s1);
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    // A participant who never raised it: the same.
    let outs = h.req(
        4,
        ClientMessage::HandLowerFor {
            participant_id: pid("s2"),
        },
    );
    assert_eq!((outs.len(), ack(&outs, h.last_request())), (1, Some(None)));
    assert_eq!(h.room.seq(), seq);
    // Nobody of that id: not found.
    assert_eq!(
        only_error(&h.req(
            4,
            ClientMessage::HandLowerFor {
                participant_id: pid("ghost")
            }
        )),
        ErrorCode::NotFound
    );
}
