//! A quiz live in class: staff launch (after the driver looked the quiz up), everyone sees it
//! (event and snapshot), staff end it early or it ends by itself at `ends_at` or with the
//! class; a student cannot launch; an unavailable quiz (another course's, unpublished) is
//! refused; staff get the submitted count.

use lectern_proto::{ClientMessage, ErrorCode, LiveQuiz, Role, RoomEvent, ServerMessage};
use lectern_room::{Input, Output, QuizUnavailable};

use crate::support::*;

/// `quiz_launch` as the driver hands it over, from `conn`.
fn launch(
    h: &mut H,
    conn: u64,
    quiz_id: i64,
    duration_secs: u32,
    quiz: Result<&str, QuizUnavailable>,
) -> Vec<Output> {
    h.input(Input::QuizLaunch {
        conn: c(conn),
        request_id: Some(900 + conn),
        quiz_id,
        duration_secs,
        quiz: quiz.map(str::to_owned),
    })
}

fn progress_to(outs: &[Output], conn: u64) -> Vec<(i64, u32)> {
    to_conn(outs, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::QuizProgress { quiz_id, submitted } => Some((quiz_id, submitted)),
            _ => None,
        })
        .collect()
}

fn error_of(outs: &[Output]) -> (ErrorCode, Option<u64>) {
    let errs = errors(outs);
    assert_eq!(errs.len(), 1, "{outs:?}");
    (errs[0].0, errs[0].1)
}

#[test]
fn staff_launch_a_quiz_that_everyone_sees_and_late_joiners_find_in_the_snapshot() {
    let mut h = H::class();
    let outs = launch(&mut h, 1, 7, 600, Ok("Week 3"));
    let evs = events(&outs);
    assert_eq!(evs.len(), 1);
    let quiz = LiveQuiz {
        quiz_id: 7,
        title: "Week 3".into(),
        launched_by: pid("t"),
        launched_at: h.now,
        ends_at: h.now + 600_000,
    };
    assert_eq!(evs[0].1, RoomEvent::QuizLive { quiz: quiz.clone() });
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3)]);
    assert_eq!(ack(&outs, 901), Some(Some(evs[0].0)));
    // Staff learn that nobody submitted yet; students get no count.
    assert_eq!(progress_to(&outs, 1), vec![(7, 0)]);
    assert!(progress_to(&outs, 2).is_empty());
    assert_eq!(h.room.live_quiz(), Some(&quiz));

    h.advance(1_000);
    let outs = h.join(4, "s3", Role::Student);
    assert_eq!(snapshot_to(&outs, 4).unwrap().live_quiz, Some(quiz.clone()));
    assert!(progress_to(&outs, 4).is_empty());
    let outs = h.join(5, "ta", Role::Ta);
    assert_eq!(snapshot_to(&outs, 5).unwrap().live_quiz, Some(quiz));
    assert_eq!(progress_to(&outs, 5), vec![(7, 0)]);
}

#[test]
fn a_student_cannot_launch_or_end_and_unavailable_quizzes_are_refused() {
    let mut h = H::class();
    assert_eq!(
        error_of(&launch(&mut h, 2, 7, 600, Ok("Week 3"))),
        (ErrorCode::NotPermitted, Some(902))
    );
    // Another course's quiz (the driver does not find it in this course), an unpublished
    // one, a room of no course.
    for why in [
        QuizUnavailable::NotFound,
        QuizUnavailable::NotPublished,
        QuizUnavailable::NoCourse,
    ] {
        let outs = launch(&mut h, 1, 8, 600, Err(why));
        assert_eq!(error_of(&outs).0, ErrorCode::QuizUnavailable);
        assert!(events(&outs).is_empty());
    }
    for secs in [0, 29, 3 * 3600 + 1] {
        assert_eq!(
            error_of(&launch(&mut h, 1, 7, secs, Ok("Week 3"))).0,
            ErrorCode::QuizInvalid
        );
    }
    assert_eq!(h.room.live_quiz(), None);
    // A quiz_launch that reached the room as a plain request (not looked up) is refused.
    let outs = h.req(
        1,
        ClientMessage::QuizLaunch {
            quiz_id: 7,
            duration_secs: 600,
        },
    );
    assert_eq!(only_error(&outs), ErrorCode::Internal);

    launch(&mut h, 1, 7, 600, Ok("Week 3"));
    assert_eq!(
        only_error(&h.req(2, ClientMessage::QuizEnd { quiz_id: 7 })),
        ErrorCode::NotPermitted
    );
    // One at a time.
    assert_eq!(
        error_of(&launch(&mut h, 1, 9, 600, Ok("Other"))).0,
        ErrorCode::QuizInvalid
    );
    assert_eq!(
        only_error(&h.req(1, ClientMessage::QuizEnd { quiz_id: 9 })),
        ErrorCode::QuizInvalid
    );
}

#[test]
fn staff_end_it_early_and_then_another_may_start() {
    let mut h = H::class();
    h.join(4, "ta", Role::Ta);
    launch(&mut h, 1, 7, 600, Ok("Week 3"));
    h.advance(5_000);
    let outs = h.req(4, ClientMessage::QuizEnd { quiz_id: 7 });
    let evs = events(&outs);
    assert_eq!(
        evs[0].1,
        RoomEvent::QuizEnded {
            quiz_id: 7,
            by: Some(pid("ta"))
        }
    );
    assert_eq!(evs[0].2, vec![c(1), c(2), c(3), c(4)]);
    assert_eq!(h.room.live_quiz(), None);
    let outs = h.join(5, "s3", Role::Student);
    assert_eq!(snapshot_to(&outs, 5).unwrap().live_quiz, None);
    assert_eq!(
        only_error(&h.req(1, ClientMessage::QuizEnd { quiz_id: 7 })),
        ErrorCode::QuizInvalid
    );
    assert_eq!(
        kinds(&launch(&mut h, 1, 9, 60, Ok("Other"))),
        vec!["quiz_live"]
    );
}

#[test]
fn it_ends_by_itself_at_ends_at_and_with_the_class() {
    let mut h = H::class();
    launch(&mut h, 1, 7, 60, Ok("Week 3"));
    let ends_at = h.now + 60_000;
    assert_eq!(h.room.poll_timeout(), Some(ends_at));
    h.advance(59_999);
    assert!(events(&h.tick()).is_empty());
    h.advance(1);
    let outs = h.tick();
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::QuizEnded {
            quiz_id: 7,
            by: None
        }
    );
    assert_eq!(h.room.live_quiz(), None);
    assert_eq!(h.room.poll_timeout(), None);

    launch(&mut h, 1, 9, 600, Ok("Other"));
    let outs = h.req(1, ClientMessage::ClassEnd);
    assert!(events(&outs).iter().any(|e| e.1
        == RoomEvent::QuizEnded {
            quiz_id: 9,
            by: None
        }));
    assert_eq!(h.room.live_quiz(), None);
}

#[test]
fn staff_see_how_many_members_submitted() {
    let mut h = H::class();
    launch(&mut h, 1, 7, 600, Ok("Week 3"));
    let submitted = |h: &mut H, quiz_id: i64, member: &str| {
        h.input(Input::QuizSubmitted {
            quiz_id,
            member_id: member.into(),
        })
    };
    let outs = submitted(&mut h, 7, "m-s1");
    assert_eq!(progress_to(&outs, 1), vec![(7, 1)]);
    assert!(progress_to(&outs, 2).is_empty());
    // A second attempt by the same member is not counted twice; another quiz is ignored.
    assert!(submitted(&mut h, 7, "m-s1").is_empty());
    assert!(submitted(&mut h, 8, "m-s2").is_empty());
    // A submission within the grace after the end still counts.
    h.req(1, ClientMessage::QuizEnd { quiz_id: 7 });
    let outs = submitted(&mut h, 7, "m-s2");
    assert_eq!(progress_to(&outs, 1), vec![(7, 2)]);
}
