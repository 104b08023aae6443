//! Courses, rosters, schedules and API keys, on SQLite and PostgreSQL (see `common`).

use lectern_proto::{ClassMode, Role};
use lectern_store::{Course, CourseMember, Store, StoreError, StoredSchedule, hash_api_key};
mod common;

use common::Db;

async fn store(db: &Db) -> Store {
    db.open().await
}

fn course(id: &str) -> Course {
    Course {
        id: id.to_owned(),
        title: format!("Course {id}"),
        timezone: "Europe/Paris".to_owned(),
        lobby_minutes: 15,
        warning_minutes: 5,
        grace_minutes: 10,
        auto_start: true,
        record_sessions: id.ends_with("rec"),
        recording_downloads: false,
        class_mode: if id.ends_with("sem") {
            ClassMode::Seminar
        } else {
            ClassMode::Lecture
        },
        created_at: 1_700_000_000_000,
    }
}

fn member(id: &str, role: Role) -> CourseMember {
    CourseMember {
        member_id: id.to_owned(),
        name: format!("Name of {id}"),
        email: Some(format!("{id}@example.org")),
        role,
    }
}

async fn courses_round_trip_and_ids_are_unique(db: Db) {
    let store = store(&db).await;
    store.create_course(&course("physics")).await.unwrap();
    store.create_course(&course("algebra")).await.unwrap();
    store.create_course(&course("debate-sem")).await.unwrap();
    let err = store.create_course(&course("algebra")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "course", .. }),
        "{err}"
    );

    let ids: Vec<_> = store
        .list_courses()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["algebra", "debate-sem", "physics"]);
    assert_eq!(
        store.course("algebra").await.unwrap(),
        Some(course("algebra"))
    );
    let seminar = store.course("debate-sem").await.unwrap().unwrap();
    assert_eq!(seminar.class_mode, ClassMode::Seminar);
    assert_eq!(seminar, course("debate-sem"));
    assert_eq!(store.course("nope").await.unwrap(), None);
}

async fn roster_add_update_remove(db: Db) {
    let store = store(&db).await;
    store.create_course(&course("algebra")).await.unwrap();
    store
        .add_member("algebra", &member("ada", Role::Student))
        .await
        .unwrap();
    let err = store
        .add_member("algebra", &member("ada", Role::Student))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "member", .. }),
        "{err}"
    );
    let err = store
        .add_member("nope", &member("ada", Role::Student))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "course", .. }),
        "{err}"
    );

    assert!(
        store
            .set_member_role("algebra", "ada", Role::Ta)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_member_role("algebra", "bob", Role::Ta)
            .await
            .unwrap()
    );
    let ada = store.member("algebra", "ada").await.unwrap().unwrap();
    assert_eq!(ada.role, Role::Ta);
    assert_eq!(ada.email.as_deref(), Some("ada@example.org"));

    assert!(store.remove_member("algebra", "ada").await.unwrap());
    assert!(!store.remove_member("algebra", "ada").await.unwrap());
    assert!(store.members("algebra").await.unwrap().is_empty());
}

async fn bulk_upsert_is_all_or_nothing(db: Db) {
    let store = store(&db).await;
    store.create_course(&course("algebra")).await.unwrap();
    store
        .add_member("algebra", &member("ada", Role::Student))
        .await
        .unwrap();
    let batch = [
        member("ada", Role::Instructor),
        member("bob", Role::Student),
    ];
    store.upsert_members("algebra", &batch).await.unwrap();
    let roster = store.members("algebra").await.unwrap();
    assert_eq!(roster, batch);

    // The course does not exist: nothing of the batch may be stored anywhere.
    let err = store
        .upsert_members("nope", &[member("cy", Role::Student)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(store.members("nope").await.unwrap().is_empty());
}

async fn schedules_belong_to_their_course(db: Db) {
    let store = store(&db).await;
    store.create_course(&course("algebra")).await.unwrap();
    let schedule = StoredSchedule {
        id: "s1".to_owned(),
        course_id: "algebra".to_owned(),
        spec: r#"{"days":["tue"]}"#.to_owned(),
        created_at: 1,
    };
    store.add_schedule(&schedule).await.unwrap();
    let orphan = StoredSchedule {
        id: "s2".to_owned(),
        course_id: "nope".to_owned(),
        ..schedule.clone()
    };
    assert!(matches!(
        store.add_schedule(&orphan).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_eq!(store.schedules("algebra").await.unwrap(), [schedule]);
    assert!(!store.delete_schedule("physics", "s1").await.unwrap());
    assert!(store.delete_schedule("algebra", "s1").await.unwrap());
    assert!(store.schedules("algebra").await.unwrap().is_empty());
}

async fn api_keys_are_stored_hashed(db: Db) {
    let store = store(&db).await;
    let key = "lectern_0123456789abcdef0123456789abcdef";
    let created = store.create_api_key("k1", "ops", key, 5).await.unwrap();
    assert_eq!(store.verify_api_key(key).await.unwrap(), Some(created));
    assert_eq!(store.verify_api_key("lectern_wrong").await.unwrap(), None);
    assert_eq!(store.verify_api_key("").await.unwrap(), None);
    assert_eq!(
        hash_api_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    store.close().await;
    // The secret never reaches the database: the file holds its hash only, and so does the
    // PostgreSQL table.
    if let Some(dir) = db.dir() {
        let bytes = std::fs::read(dir.join("lectern.db")).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(key));
        assert!(text.contains(&hash_api_key(key)));
    }
    let (id, name, hash): (String, String, String) =
        db.raw_row("SELECT id, name, hash FROM api_keys").await;
    assert_eq!((id.as_str(), name.as_str()), ("k1", "ops"));
    assert_eq!(hash, hash_api_key(key));
}

both_backends!(
    courses_round_trip_and_ids_are_unique,
    roster_add_update_remove,
    bulk_upsert_is_all_or_nothing,
    schedules_belong_to_their_course,
    api_keys_are_stored_hashed,
);
