//! Recordings' rows on SQLite and PostgreSQL (see `common`): create, read, move through their
//! states, list by course, find those a crash left open, retention, delete; and the course
//! settings that govern recording.

use lectern_store::{Course, Recording, RecordingState, RecordingUpdate, Store, StoreError};
mod common;

use common::Db;

async fn store(db: &Db) -> Store {
    db.open().await
}

fn recording(id: &str, course: &str, started_at: u64) -> Recording {
    Recording {
        id: id.to_owned(),
        room_id: format!("{course}.2026-09-01T10:00"),
        course_id: course.to_owned(),
        title: "Physics I".to_owned(),
        state: RecordingState::Recording,
        started_at,
        ended_at: None,
        duration_ms: 0,
        bytes: 0,
        interrupted: false,
        stop_reason: None,
        error: None,
        dir: id.to_owned(),
    }
}

async fn recordings_round_trip_through_their_states(db: Db) {
    let store = store(&db).await;
    let r = recording("rec_1", "physics", 1_000);
    store.create_recording(&r).await.unwrap();
    let err = store.create_recording(&r).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "recording",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.recording("rec_1").await.unwrap(), Some(r.clone()));
    assert_eq!(store.recording("rec_2").await.unwrap(), None);

    let open = store
        .recordings_in_state(RecordingState::Recording)
        .await
        .unwrap();
    assert_eq!(open, vec![r.clone()]);

    let done = RecordingUpdate {
        state: RecordingState::Ready,
        ended_at: Some(61_000),
        duration_ms: 60_000,
        bytes: 1 << 20,
        interrupted: false,
        stop_reason: Some("class_ended".into()),
        error: None,
    };
    assert!(store.update_recording("rec_1", &done).await.unwrap());
    assert!(!store.update_recording("rec_9", &done).await.unwrap());
    let got = store.recording("rec_1").await.unwrap().unwrap();
    assert_eq!(got.state, RecordingState::Ready);
    assert_eq!(got.ended_at, Some(61_000));
    assert_eq!(got.duration_ms, 60_000);
    assert_eq!(got.stop_reason.as_deref(), Some("class_ended"));
    assert!(
        store
            .recordings_in_state(RecordingState::Recording)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn lists_by_course_newest_first_retention_and_delete(db: Db) {
    let store = store(&db).await;
    for (id, course, t) in [
        ("rec_a", "physics", 1_000),
        ("rec_b", "physics", 3_000),
        ("rec_c", "algebra", 2_000),
    ] {
        store
            .create_recording(&recording(id, course, t))
            .await
            .unwrap();
    }
    let ids = |v: Vec<Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.course_recordings("physics").await.unwrap()),
        ["rec_b", "rec_a"]
    );
    // Retention never takes a recording that is still being recorded.
    assert!(
        store
            .recordings_started_before(10_000)
            .await
            .unwrap()
            .is_empty()
    );
    let ready = RecordingUpdate {
        state: RecordingState::Ready,
        ended_at: Some(5_000),
        duration_ms: 1,
        bytes: 1,
        interrupted: true,
        stop_reason: Some("interrupted".into()),
        error: None,
    };
    for id in ["rec_a", "rec_b", "rec_c"] {
        store.update_recording(id, &ready).await.unwrap();
    }
    assert_eq!(
        ids(store.recordings_started_before(2_500).await.unwrap()),
        ["rec_a", "rec_c"]
    );
    assert!(store.recording("rec_a").await.unwrap().unwrap().interrupted);
    assert!(store.delete_recording("rec_a").await.unwrap());
    assert!(!store.delete_recording("rec_a").await.unwrap());
    assert_eq!(
        ids(store.course_recordings("physics").await.unwrap()),
        ["rec_b"]
    );
}

async fn a_course_keeps_its_recording_settings(db: Db) {
    let store = store(&db).await;
    let course = Course {
        id: "physics".into(),
        title: "Physics".into(),
        timezone: "UTC".into(),
        lobby_minutes: 15,
        warning_minutes: 5,
        grace_minutes: 10,
        auto_start: false,
        record_sessions: true,
        recording_downloads: true,
        class_mode: lectern_proto::ClassMode::Lecture,
        created_at: 1,
    };
    store.create_course(&course).await.unwrap();
    assert_eq!(store.course("physics").await.unwrap(), Some(course));
}

both_backends!(
    recordings_round_trip_through_their_states,
    lists_by_course_newest_first_retention_and_delete,
    a_course_keeps_its_recording_settings,
);
