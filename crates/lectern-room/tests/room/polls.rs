//! Live polls: who may ask and answer, validation, answer once, who sees what (a student never
//! sees others' answers; an anonymous poll shows staff counts only), sharing, snapshots and
//! replays for late joiners, and the class end closing an open poll.

use lectern_proto::{
    ClientMessage, ErrorCode, Poll, PollResults, PollVote, Role, RoomEvent, ServerMessage,
};
use lectern_room::{Output, PersistRecord};

use crate::support::*;

fn start(h: &mut H, conn: u64, multiple: bool, anonymous: bool) -> Vec<Output> {
    h.req(
        conn,
        ClientMessage::PollStart {
            question: " Which method converges fastest? ".into(),
            options: vec!["Bisection".into(), " Newton".into(), "Secant".into()],
            multiple,
            anonymous,
        },
    )
}

fn answer(h: &mut H, conn: u64, poll_id: u64, choices: &[u32]) -> Vec<Output> {
    h.req(
        conn,
        ClientMessage::PollAnswer {
            poll_id,
            choices: choices.to_vec(),
        },
    )
}

/// Starts a poll as `t` (conn 1) and returns its id.
fn open_poll(h: &mut H, multiple: bool, anonymous: bool) -> u64 {
    let outs = start(h, 1, multiple, anonymous);
    match &events(&outs)[0].1 {
        RoomEvent::PollStarted { poll } => poll.poll_id,
        other => panic!("expected poll_started, got {other:?}"),
    }
}

fn results_to(outs: &[Output], conn: u64) -> Vec<PollResults> {
    to_conn(outs, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::PollResults { results } => Some(results),
            _ => None,
        })
        .collect()
}

fn vote(id: &str, choices: &[u32]) -> PollVote {
    PollVote {
        participant_id: pid(id),
        name: format!("Name of {id}"),
        choices: choices.to_vec(),
    }
}

#[test]
fn staff_open_a_poll_that_everyone_sees_without_answers() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    let outs = start(&mut h, 1, false, false);
    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    let (seq, event, to) = &evs[0];
    let poll = Poll {
        poll_id: *seq,
        question: "Which method converges fastest?".into(),
        options: vec!["Bisection".into(), "Newton".into(), "Secant".into()],
        multiple: false,
        anonymous: false,
        asked_by: pid("t"),
        started_at: h.now,
    };
    assert_eq!(*event, RoomEvent::PollStarted { poll: poll.clone() });
    assert_eq!(*to, vec![c(1), c(2), c(3), c(4)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(*seq)));
    assert_eq!(
        persists(&outs),
        vec![PersistRecord::PollStarted {
            poll,
            asked_by_name: "Name of t".into()
        }]
    );
}

#[test]
fn only_staff_may_start_end_or_share_and_one_poll_is_open_at_a_time() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    assert_eq!(
        only_error(&start(&mut h, 2, false, false)),
        ErrorCode::NotPermitted
    );
    let id = open_poll(&mut h, false, false);
    assert_eq!(
        only_error(&start(&mut h, 4, false, false)),
        ErrorCode::PollOpen
    );
    for message in [
        ClientMessage::PollEnd { poll_id: id },
        ClientMessage::PollShare { poll_id: id },
    ] {
        assert_eq!(only_error(&h.req(2, message)), ErrorCode::NotPermitted);
    }
    // A TA may end it; then a new poll may start.
    let outs = h.req(4, ClientMessage::PollEnd { poll_id: id });
    assert_eq!(kinds(&outs), vec!["poll_ended"]);
    assert_eq!(kinds(&start(&mut h, 4, true, false)), vec!["poll_started"]);
}

#[test]
fn invalid_questions_and_options_are_refused_with_poll_invalid() {
    let mut h = H::class();
    let cases: Vec<(String, Vec<String>)> = vec![
        ("  ".into(), vec!["a".into(), "b".into()]),
        ("x".repeat(301), vec!["a".into(), "b".into()]),
        ("Q".into(), vec!["a".into()]),
        ("Q".into(), (0..11).map(|i| i.to_string()).collect()),
        ("Q".into(), vec!["a".into(), " ".into()]),
        ("Q".into(), vec!["a".into(), "b".repeat(121)]),
        ("Q".into(), vec!["a".into(), " a".into()]),
    ];
    for (question, options) in cases {
        let outs = h.req(
            1,
            ClientMessage::PollStart {
                question,
                options,
                multiple: false,
                anonymous: false,
            },
        );
        assert_eq!(only_error(&outs), ErrorCode::PollInvalid);
    }
    // Nothing was opened: a valid poll starts.
    assert_eq!(kinds(&start(&mut h, 1, false, false)), vec!["poll_started"]);
}

#[test]
fn a_student_answers_once_and_staff_alone_see_who_chose_what() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    let id = open_poll(&mut h, false, false);

    let outs = answer(&mut h, 2, id, &[1]);
    assert_eq!(
        ack(&outs, h.last_request()),
        Some(None),
        "no seq for an answer"
    );
    assert!(events(&outs).is_empty());
    let expected = PollResults {
        poll_id: id,
        counts: vec![0, 1, 0],
        answered: 1,
        votes: vec![vote("s1", &[1])],
    };
    for staff in [1, 4] {
        assert_eq!(results_to(&outs, staff), vec![expected.clone()]);
    }
    assert!(results_to(&outs, 2).is_empty() && to_conn(&outs, 3).is_empty());
    assert_eq!(
        persists(&outs),
        vec![PersistRecord::PollAnswered {
            poll_id: id,
            voter: Some((pid("s1"), "Name of s1".into())),
            choices: vec![1],
            at: Some(h.now),
        }]
    );

    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[2])),
        ErrorCode::AlreadyAnswered
    );
    let outs = answer(&mut h, 3, id, &[2]);
    assert_eq!(results_to(&outs, 1)[0].counts, vec![0, 1, 1]);
    assert_eq!(results_to(&outs, 1)[0].answered, 2);
    // A live update names only the new answer; the snapshot names every one.
    assert_eq!(results_to(&outs, 1)[0].votes, vec![vote("s2", &[2])]);
    let staff_view = h.room.snapshot_for(&pid("t")).unwrap().poll.unwrap();
    assert_eq!(
        staff_view.results.unwrap().votes,
        vec![vote("s1", &[1]), vote("s2", &[2])]
    );
    let student_view = h.room.snapshot_for(&pid("s1")).unwrap().poll.unwrap();
    assert_eq!(student_view.my_choices, Some(vec![1]));
    assert_eq!(
        student_view.results, None,
        "no counts before they are shared"
    );
}

#[test]
fn answers_that_do_not_fit_or_come_from_the_wrong_place_are_refused() {
    let mut h = H::class();
    h.join(4, "o", Role::Observer);
    let id = open_poll(&mut h, false, false);
    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[])),
        ErrorCode::InvalidChoice
    );
    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[0, 1])),
        ErrorCode::InvalidChoice
    );
    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[3])),
        ErrorCode::InvalidChoice
    );
    assert_eq!(
        only_error(&answer(&mut h, 2, id + 1, &[0])),
        ErrorCode::NotFound
    );
    assert_eq!(
        only_error(&answer(&mut h, 1, id, &[0])),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        only_error(&answer(&mut h, 4, id, &[0])),
        ErrorCode::NotPermitted
    );
    // Refusals counted nothing: s1 may still answer.
    let outs = answer(&mut h, 2, id, &[0]);
    assert_eq!(results_to(&outs, 1)[0].answered, 1);

    let id = {
        h.req(1, ClientMessage::PollEnd { poll_id: id });
        open_poll(&mut h, true, false)
    };
    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[1, 1])),
        ErrorCode::InvalidChoice
    );
    let outs = answer(&mut h, 2, id, &[2, 0]);
    assert_eq!(results_to(&outs, 1)[0].counts, vec![1, 0, 1]);
    assert_eq!(results_to(&outs, 1)[0].votes, vec![vote("s1", &[0, 2])]);
}

#[test]
fn the_lobby_may_not_answer() {
    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    let outs = start(&mut h, 1, false, false);
    assert_eq!(
        events(&outs)[0].2,
        vec![c(1), c(2)],
        "the lobby sees the question"
    );
    let id = events(&outs)[0].0;
    assert_eq!(only_error(&answer(&mut h, 2, id, &[0])), ErrorCode::InLobby);
}

#[test]
fn an_anonymous_poll_shows_staff_counts_only_and_stores_no_identity() {
    let mut h = H::class();
    let id = open_poll(&mut h, false, true);
    let outs = answer(&mut h, 2, id, &[0]);
    let results = &results_to(&outs, 1)[0];
    assert_eq!(
        (results.counts.clone(), results.answered),
        (vec![1, 0, 0], 1)
    );
    assert!(results.votes.is_empty());
    let json = serde_json::to_string(&to_conn(&outs, 1)).unwrap();
    assert!(!json.contains("s1"), "{json}");
    assert_eq!(
        persists(&outs),
        vec![PersistRecord::PollAnswered {
            poll_id: id,
            voter: None,
            choices: vec![0],
            at: None,
        }]
    );
    // Staff joining later see counts, no names; the student still sees their own answer.
    let outs = h.join(5, "ta", Role::Ta);
    let poll = snapshot_to(&outs, 5).unwrap().poll.unwrap();
    assert!(poll.results.as_ref().unwrap().votes.is_empty());
    assert_eq!(poll.results.unwrap().counts, vec![1, 0, 0]);
    assert_eq!(
        h.room
            .snapshot_for(&pid("s1"))
            .unwrap()
            .poll
            .unwrap()
            .my_choices,
        Some(vec![0])
    );
    // Answer once holds for anonymous polls too.
    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[1])),
        ErrorCode::AlreadyAnswered
    );
}

#[test]
fn a_student_never_receives_another_students_answer() {
    let mut h = H::class();
    let mut to_s1 = Vec::new();
    let outs = start(&mut h, 1, true, false);
    let id = events(&outs)[0].0;
    to_s1.extend(to_conn(&outs, 2));
    for outs in [
        answer(&mut h, 3, id, &[0, 2]),
        answer(&mut h, 2, id, &[1]),
        h.req(1, ClientMessage::PollShare { poll_id: id }),
    ] {
        to_s1.extend(to_conn(&outs, 2));
    }
    let outs = h.join(6, "s3", Role::Student);
    to_s1.extend(to_conn(&outs, 2));
    let late = snapshot_to(&outs, 6).unwrap();
    let json = serde_json::to_string(&(to_s1, late)).unwrap();
    assert!(!json.contains("poll_results"), "{json}");
    assert!(!json.contains("votes"), "{json}");
    assert!(!json.contains("choices"), "{json}");
}

#[test]
fn ending_closes_the_poll_to_answers() {
    let mut h = H::class();
    let id = open_poll(&mut h, false, false);
    let outs = h.req(1, ClientMessage::PollEnd { poll_id: id });
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::PollEnded {
            poll_id: id,
            by: Some(pid("t"))
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3)]);
    assert_eq!(
        persists(&outs),
        vec![PersistRecord::PollEnded {
            poll_id: id,
            at: h.now
        }]
    );
    assert_eq!(
        only_error(&answer(&mut h, 2, id, &[0])),
        ErrorCode::PollClosed
    );
    assert_eq!(
        only_error(&h.req(1, ClientMessage::PollEnd { poll_id: id })),
        ErrorCode::PollClosed
    );
    // Closed and not shared: late joiners are not shown it.
    assert!(h.room.snapshot_for(&pid("s1")).unwrap().poll.is_none());
}

#[test]
fn sharing_shows_counts_to_everyone_and_closes_an_open_poll() {
    let mut h = H::class();
    let id = open_poll(&mut h, false, false);
    answer(&mut h, 2, id, &[1]);
    answer(&mut h, 3, id, &[1]);
    let outs = h.req(1, ClientMessage::PollShare { poll_id: id });
    assert_eq!(kinds(&outs), vec!["poll_ended", "poll_shared"]);
    let (seq, event, to) = events(&outs)[1].clone();
    assert_eq!(
        event,
        RoomEvent::PollShared {
            poll_id: id,
            counts: vec![0, 2, 0],
            answered: 2,
            by: pid("t"),
        }
    );
    assert_eq!(to, vec![c(1), c(2), c(3)]);
    assert_eq!(ack(&outs, h.last_request()), Some(Some(seq)));
    assert!(matches!(
        persists(&outs)[..],
        [
            PersistRecord::PollEnded { .. },
            PersistRecord::PollShared { .. }
        ]
    ));
    // Again: a no-op.
    let outs = h.req(1, ClientMessage::PollShare { poll_id: id });
    assert!(events(&outs).is_empty());
    assert_eq!(ack(&outs, h.last_request()), Some(None));
    // A late student sees the shared counts, without names.
    let outs = h.join(6, "s3", Role::Student);
    let poll = snapshot_to(&outs, 6).unwrap().poll.unwrap();
    assert!(!poll.open && poll.shared);
    let results = poll.results.unwrap();
    assert_eq!((results.counts, results.answered), (vec![0, 2, 0], 2));
    assert!(results.votes.is_empty());
}

#[test]
fn late_joiners_and_reconnects_get_the_open_poll() {
    let mut h = H::class();
    let id = open_poll(&mut h, false, false);
    answer(&mut h, 2, id, &[2]);

    // A new student: the question, not answered, no results.
    let outs = h.join(6, "s3", Role::Student);
    let poll = snapshot_to(&outs, 6).unwrap().poll.unwrap();
    assert_eq!(poll.poll.poll_id, id);
    assert!(poll.open && !poll.shared);
    assert_eq!((poll.my_choices, poll.results), (None, None));

    // s1 reloads the page (a new connection, no last_seq): their own answer comes back.
    let outs = h.join(7, "s1", Role::Student);
    let poll = snapshot_to(&outs, 7).unwrap().poll.unwrap();
    assert_eq!(poll.my_choices, Some(vec![2]));
    assert_eq!(poll.results, None);

    // The instructor drops, misses an answer, and resumes with a replay: the full results
    // follow its replay_done.
    h.disconnect(1);
    let seen = h.room.seq();
    answer(&mut h, 3, id, &[0]);
    let outs = h.join_with(8, "t", Role::Instructor, Some(seen));
    let msgs = to_conn(&outs, 8);
    let done = msgs
        .iter()
        .position(|m| matches!(m, ServerMessage::ReplayDone { .. }))
        .expect("a replay");
    match &msgs[done + 1] {
        ServerMessage::PollResults { results } => {
            assert_eq!(results.counts, vec![1, 0, 1]);
            assert_eq!(results.votes, vec![vote("s1", &[2]), vote("s2", &[0])]);
        }
        other => panic!("expected poll_results after replay_done, got {other:?}"),
    }
    // A student's replay carries no results.
    h.disconnect(3);
    let seen = h.room.seq();
    let outs = h.join_with(9, "s2", Role::Student, Some(seen));
    assert!(results_to(&outs, 9).is_empty());
}

#[test]
fn the_class_end_closes_an_open_poll() {
    let mut h = H::class();
    let id = open_poll(&mut h, false, false);
    let outs = h.req(1, ClientMessage::ClassEnd);
    let kinds = kinds(&outs);
    assert_eq!(kinds[..2], ["poll_ended", "class_ended"]);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::PollEnded {
            poll_id: id,
            by: None
        }
    );
    assert!(persists(&outs).contains(&PersistRecord::PollEnded {
        poll_id: id,
        at: h.now
    }));
    // The next class starts without the old poll; a new one may be asked.
    h.req(1, ClientMessage::ClassStart);
    assert!(h.room.snapshot_for(&pid("t")).unwrap().poll.is_none());
    assert_eq!(kinds_of_start(&mut h), vec!["poll_started"]);
}

fn kinds_of_start(h: &mut H) -> Vec<String> {
    kinds(&start(h, 1, false, false))
}
