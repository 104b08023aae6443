//! Quizzes and attempts, on SQLite and PostgreSQL (see `common`): create, list, edit, publish,
//! delete with cascade, attempt numbers that cannot be taken twice (even by two racing starts),
//! and a submission stored once even when two race.

use lectern_proto::ClassMode;
use lectern_store::{AttemptSubmission, Course, NewAttempt, NewQuiz, Store, StoreError};
mod common;

use common::Db;

async fn store(db: &Db) -> Store {
    let store = db.open().await;
    for id in ["algebra", "physics"] {
        store
            .create_course(&Course {
                id: id.to_owned(),
                title: id.to_owned(),
                timezone: "UTC".to_owned(),
                lobby_minutes: 15,
                warning_minutes: 5,
                grace_minutes: 10,
                auto_start: false,
                record_sessions: false,
                recording_downloads: false,
                class_mode: ClassMode::Lecture,
                created_at: 1,
            })
            .await
            .unwrap();
    }
    store
}

fn new_quiz(course: &str, title: &str, at: u64) -> NewQuiz {
    NewQuiz {
        course_id: course.to_owned(),
        title: title.to_owned(),
        spec: format!(r#"{{"title":"{title}"}}"#),
        published: false,
        at,
    }
}

fn new_attempt(quiz: i64, member: &str, number: u32, at: u64) -> NewAttempt {
    NewAttempt {
        quiz_id: quiz,
        member_id: member.to_owned(),
        member_name: format!("Name of {member}"),
        number,
        seed: -42,
        max_score: 5.0,
        at,
    }
}

fn submission(score: f64, at: u64) -> AttemptSubmission {
    AttemptSubmission {
        answers: "[]".to_owned(),
        result: format!(r#"{{"score":{score}}}"#),
        score,
        at,
    }
}

async fn quizzes_are_created_listed_edited_published_and_deleted(db: Db) {
    let store = store(&db).await;
    let week1 = store
        .create_quiz(&new_quiz("algebra", "Week 1", 10))
        .await
        .unwrap();
    let week2 = store
        .create_quiz(&new_quiz("algebra", "Week 2", 20))
        .await
        .unwrap();
    store
        .create_quiz(&new_quiz("physics", "Forces", 30))
        .await
        .unwrap();
    assert!(!week1.published);
    assert_eq!((week1.created_at, week1.updated_at), (10, 10));

    let listed = store.quizzes("algebra").await.unwrap();
    assert_eq!(
        listed.iter().map(|q| q.title.as_str()).collect::<Vec<_>>(),
        ["Week 1", "Week 2"]
    );
    assert_eq!(store.quiz(week1.id).await.unwrap(), Some(week1.clone()));

    let edited = store
        .update_quiz(week1.id, "Week one", r#"{"title":"Week one"}"#, 40)
        .await
        .unwrap();
    assert_eq!(edited.title, "Week one");
    assert_eq!(edited.spec, r#"{"title":"Week one"}"#);
    assert_eq!((edited.created_at, edited.updated_at), (10, 40));

    let published = store.set_quiz_published(week1.id, true, 50).await.unwrap();
    assert!(published.published);
    assert!(store.quiz(week1.id).await.unwrap().unwrap().published);

    // Deleting takes the attempts with it.
    let attempt = store
        .start_attempt(&new_attempt(week2.id, "ana", 1, 60))
        .await
        .unwrap();
    assert!(store.delete_quiz(week2.id).await.unwrap());
    assert!(!store.delete_quiz(week2.id).await.unwrap());
    assert_eq!(store.attempt(attempt.id).await.unwrap(), None);
    assert_eq!(store.quizzes("algebra").await.unwrap().len(), 1);

    assert!(matches!(
        store.create_quiz(&new_quiz("nope", "X", 1)).await,
        Err(StoreError::NotFound { what: "course", .. })
    ));
    assert!(matches!(
        store.update_quiz(9999, "X", "{}", 1).await,
        Err(StoreError::NotFound { what: "quiz", .. })
    ));
    assert!(matches!(
        store.set_quiz_published(9999, true, 1).await,
        Err(StoreError::NotFound { what: "quiz", .. })
    ));
    assert!(matches!(
        store.start_attempt(&new_attempt(9999, "ana", 1, 1)).await,
        Err(StoreError::NotFound { what: "quiz", .. })
    ));
}

async fn attempts_are_numbered_once_and_submitted_once(db: Db) {
    let store = store(&db).await;
    let quiz = store
        .create_quiz(&new_quiz("algebra", "Week 1", 10))
        .await
        .unwrap();
    let first = store
        .start_attempt(&new_attempt(quiz.id, "ana", 1, 100))
        .await
        .unwrap();
    assert_eq!(first.number, 1);
    assert_eq!(first.seed, -42);
    assert_eq!(first.submitted_at, None);
    assert_eq!(first.score, None);

    // The same number again (a racing start) is a conflict.
    assert!(matches!(
        store
            .start_attempt(&new_attempt(quiz.id, "ana", 1, 101))
            .await,
        Err(StoreError::Conflict {
            what: "attempt",
            ..
        })
    ));
    // Another member has their own numbers.
    store
        .start_attempt(&new_attempt(quiz.id, "ben", 1, 102))
        .await
        .unwrap();

    let done = store
        .submit_attempt(first.id, &submission(3.5, 200))
        .await
        .unwrap();
    assert_eq!(done.submitted_at, Some(200));
    assert_eq!(done.score, Some(3.5));
    assert_eq!(done.result.as_deref(), Some(r#"{"score":3.5}"#));
    assert_eq!(done.answers.as_deref(), Some("[]"));

    // A second submission changes nothing.
    assert!(matches!(
        store.submit_attempt(first.id, &submission(5.0, 300)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.attempt(first.id).await.unwrap(), Some(done.clone()));
    assert!(matches!(
        store.submit_attempt(9999, &submission(1.0, 300)).await,
        Err(StoreError::NotFound {
            what: "attempt",
            ..
        })
    ));

    store
        .start_attempt(&new_attempt(quiz.id, "ana", 2, 400))
        .await
        .unwrap();
    let ana = store.attempts(quiz.id, Some("ana")).await.unwrap();
    assert_eq!(ana.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2]);
    let all = store.attempts(quiz.id, None).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|a| (a.member_id.as_str(), a.number))
            .collect::<Vec<_>>(),
        [("ana", 1), ("ana", 2), ("ben", 1)]
    );
}

async fn racing_submissions_store_one_result(db: Db) {
    let store = store(&db).await;
    let quiz = store
        .create_quiz(&new_quiz("algebra", "Week 1", 10))
        .await
        .unwrap();
    for round in 0..20 {
        let attempt = store
            .start_attempt(&new_attempt(quiz.id, "ana", round + 1, 100))
            .await
            .unwrap();
        let racers: Vec<_> = [1.0, 2.0]
            .into_iter()
            .map(|score| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .submit_attempt(attempt.id, &submission(score, 200))
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for racer in racers {
            results.push(racer.await.unwrap());
        }
        let (a, b) = (&results[0], &results[1]);
        let won: Vec<_> = [a, b].into_iter().filter(|r| r.is_ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {a:?} {b:?}");
        assert!(
            [a, b]
                .into_iter()
                .any(|r| matches!(r, Err(StoreError::Conflict { .. }))),
            "round {round}: {a:?} {b:?}"
        );
        let stored = store.attempt(attempt.id).await.unwrap().unwrap();
        assert_eq!(Some(&stored), won[0].as_ref().ok());
    }
}

async fn racing_starts_take_a_number_once(db: Db) {
    let store = store(&db).await;
    let quiz = store
        .create_quiz(&new_quiz("algebra", "Week 1", 10))
        .await
        .unwrap();
    for number in 1..=20 {
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .start_attempt(&new_attempt(quiz.id, "ana", number, 100))
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for racer in racers {
            results.push(racer.await.unwrap());
        }
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "number {number}: {results:?}");
        assert!(
            results.iter().any(|r| matches!(
                r,
                Err(StoreError::Conflict {
                    what: "attempt",
                    ..
                })
            )),
            "number {number}: {results:?}"
        );
        assert_eq!(won[0].number, number);
    }
    let ana = store.attempts(quiz.id, Some("ana")).await.unwrap();
    assert_eq!(
        ana.iter().map(|a| a.number).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
}

both_backends!(
    quizzes_are_created_listed_edited_published_and_deleted,
    attempts_are_numbered_once_and_submitted_once,
    racing_submissions_store_one_result,
    racing_starts_take_a_number_once,
);
