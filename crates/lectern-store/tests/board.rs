//! The course discussion board on SQLite and PostgreSQL (see `common`): topics, replies, soft
//! deletion, read marks and unread counts, full-text search and its visibility.

use lectern_proto::{ClassMode, Role};
use lectern_store::{
    BoardAuthor, BoardReader, Course, NewTopic, Store, StoreError, TopicSource, search_query,
};
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

fn author(id: &str, role: Role) -> BoardAuthor {
    BoardAuthor {
        member_id: id.to_owned(),
        name: format!("Name of {id}"),
        role,
    }
}

fn reader(id: &str, staff: bool) -> BoardReader {
    BoardReader {
        member_id: id.to_owned(),
        staff,
    }
}

fn topic(course: &str, by: &BoardAuthor, title: &str, body: &str, at: u64) -> NewTopic {
    NewTopic {
        course_id: course.to_owned(),
        author: by.clone(),
        title: title.to_owned(),
        body: body.to_owned(),
        private_to: None,
        source: None,
        at,
    }
}

async fn topics_list_pinned_first_then_latest_activity(db: Db) {
    let store = store(&db).await;
    let ada = author("ada", Role::Student);
    let first = store
        .create_topic(&topic("algebra", &ada, "First", "one", 10))
        .await
        .unwrap();
    let second = store
        .create_topic(&topic("algebra", &ada, "Second", "two", 20))
        .await
        .unwrap();
    let third = store
        .create_topic(&topic("algebra", &ada, "Third", "three", 30))
        .await
        .unwrap();
    store
        .create_topic(&topic("physics", &ada, "Elsewhere", "other course", 40))
        .await
        .unwrap();
    // A reply makes the first topic the latest; pinning the second puts it on top.
    store
        .add_reply(first.id, &author("alan", Role::Student), "bump", false, 50)
        .await
        .unwrap();
    store
        .set_topic_flags(second.id, Some(true), None)
        .await
        .unwrap();

    let list = store
        .board_topics("algebra", &reader("ada", false), 10, 0)
        .await
        .unwrap();
    let ids: Vec<i64> = list.iter().map(|s| s.topic.id).collect();
    assert_eq!(ids, [second.id, first.id, third.id]);
    assert!(list[0].topic.pinned);
    assert_eq!(list[1].topic.reply_count, 1);
    assert_eq!(list[1].topic.last_activity_at, 50);

    let page = store
        .board_topics("algebra", &reader("ada", false), 2, 2)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].topic.id, third.id);

    let err = store
        .create_topic(&topic("nope", &ada, "t", "b", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "course", .. }),
        "{err}"
    );
}

async fn unread_counts_follow_read_marks_per_member(db: Db) {
    let store = store(&db).await;
    let ada = author("ada", Role::Student);
    let grace = author("grace", Role::Instructor);
    let t = store
        .create_topic(&topic("algebra", &grace, "Homework", "due Friday", 10))
        .await
        .unwrap();
    let ada_reads = reader("ada", false);
    let grace_reads = reader("grace", true);

    // Ada never opened it: the topic counts as one unread; Grace wrote it: nothing unread.
    assert_eq!(store.board_unread("algebra", &ada_reads).await.unwrap(), 1);
    assert_eq!(
        store.board_unread("algebra", &grace_reads).await.unwrap(),
        0
    );

    store.mark_topic_read(t.id, "ada", 20).await.unwrap();
    assert_eq!(store.board_unread("algebra", &ada_reads).await.unwrap(), 0);

    // Two replies by others are unread for Ada; her own reply never is.
    store
        .add_reply(t.id, &grace, "also ex. 4", false, 30)
        .await
        .unwrap();
    let alan_reply = store
        .add_reply(
            t.id,
            &author("alan", Role::Student),
            "which page?",
            false,
            40,
        )
        .await
        .unwrap();
    store
        .add_reply(t.id, &ada, "page 12", false, 50)
        .await
        .unwrap();
    let list = store
        .board_topics("algebra", &ada_reads, 10, 0)
        .await
        .unwrap();
    assert_eq!(list[0].unread, 2);
    assert_eq!(store.board_unread("algebra", &ada_reads).await.unwrap(), 2);
    // For Grace: Alan's and Ada's replies.
    assert_eq!(
        store.board_unread("algebra", &grace_reads).await.unwrap(),
        2
    );

    // A deleted reply no longer counts.
    store
        .delete_reply(alan_reply.id, "grace", 60)
        .await
        .unwrap();
    assert_eq!(store.board_unread("algebra", &ada_reads).await.unwrap(), 1);

    store.mark_topic_read(t.id, "ada", 70).await.unwrap();
    assert_eq!(store.board_unread("algebra", &ada_reads).await.unwrap(), 0);
    // Read marks are per member.
    assert_eq!(
        store.board_unread("algebra", &grace_reads).await.unwrap(),
        1
    );
    // Marking an unknown topic read is NotFound.
    let err = store.mark_topic_read(9999, "ada", 80).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "topic", .. }),
        "{err}"
    );
}

async fn private_topics_are_seen_by_staff_and_their_asker_only(db: Db) {
    let store = store(&db).await;
    let ada = author("ada", Role::Student);
    let mut question = topic(
        "algebra",
        &ada,
        "My grade",
        "why 12/20 on quiz secretword",
        10,
    );
    question.private_to = Some("ada".to_owned());
    let private = store.create_topic(&question).await.unwrap();
    store
        .create_topic(&topic("algebra", &ada, "Public", "everyone reads this", 20))
        .await
        .unwrap();

    let seen = |list: Vec<lectern_store::TopicSummary>| {
        list.into_iter().map(|s| s.topic.title).collect::<Vec<_>>()
    };
    let alan = reader("alan", false);
    assert_eq!(
        seen(store.board_topics("algebra", &alan, 10, 0).await.unwrap()),
        ["Public"]
    );
    assert_eq!(
        seen(
            store
                .board_topics("algebra", &reader("ada", false), 10, 0)
                .await
                .unwrap()
        ),
        ["Public", "My grade"]
    );
    assert_eq!(
        seen(
            store
                .board_topics("algebra", &reader("grace", true), 10, 0)
                .await
                .unwrap()
        ),
        ["Public", "My grade"]
    );
    assert!(!private.visible_to(&alan));
    assert!(private.visible_to(&reader("grace", true)));
    assert_eq!(store.board_unread("algebra", &alan).await.unwrap(), 1);

    // Search respects the same rule, for the topic and for its replies.
    store
        .add_reply(
            private.id,
            &author("grace", Role::Instructor),
            "the secretword answer",
            false,
            30,
        )
        .await
        .unwrap();
    assert!(
        store
            .search_board("algebra", &alan, "secretword", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let hits = store
        .search_board("algebra", &reader("ada", false), "secretword", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.iter().all(|h| h.topic_id == private.id));
    assert_eq!(
        store
            .search_board("algebra", &reader("ta", true), "secretword", 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn search_finds_words_with_prefixes_and_never_fails_on_syntax(db: Db) {
    let store = store(&db).await;
    let ada = author("ada", Role::Student);
    let t = store
        .create_topic(&topic(
            "algebra",
            &ada,
            "Eigenvalues",
            "How do we diagonalise a matrix?",
            10,
        ))
        .await
        .unwrap();
    let reply = store
        .add_reply(
            t.id,
            &author("grace", Role::Instructor),
            "Find the eigenvectors first.",
            false,
            20,
        )
        .await
        .unwrap();
    store
        .create_topic(&topic(
            "physics",
            &ada,
            "Matrix mechanics",
            "Heisenberg's matrix",
            30,
        ))
        .await
        .unwrap();
    let r = reader("ada", false);

    let hits = store
        .search_board("algebra", &r, "matrix", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!((hits[0].topic_id, hits[0].reply_id), (t.id, None));
    assert!(hits[0].excerpt.contains("matrix"), "{hits:?}");
    assert_eq!(hits[0].title, "Eigenvalues");

    // A prefix finds the reply; accents and case do not matter.
    let hits = store
        .search_board("algebra", &r, "EIGENVÉC", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].reply_id, Some(reply.id));
    // Every word is required.
    assert!(
        store
            .search_board("algebra", &r, "matrix heisenberg", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // FTS5 syntax typed by a user is only words to us.
    for hostile in [
        "\"",
        "matrix OR",
        "NEAR(",
        "*",
        "a:b",
        "-x",
        "(((",
        "^title",
        "\u{0}",
    ] {
        store
            .search_board("algebra", &r, hostile, 10)
            .await
            .unwrap();
    }
    assert_eq!(search_query("  ?! "), None);
    assert_eq!(
        search_query("don't \"stop\""),
        Some("\"don\"* \"t\"* \"stop\"*".to_owned())
    );
}

async fn soft_delete_erases_text_and_removes_it_from_the_index(db: Db) {
    let store = store(&db).await;
    let ada = author("ada", Role::Student);
    let grace = author("grace", Role::Instructor);
    let t = store
        .create_topic(&topic(
            "algebra",
            &ada,
            "Zebra question",
            "about zebras",
            10,
        ))
        .await
        .unwrap();
    let reply = store
        .add_reply(t.id, &grace, "zebra answer", false, 20)
        .await
        .unwrap();
    let kept = store
        .add_reply(t.id, &ada, "thanks", false, 30)
        .await
        .unwrap();
    let r = reader("ada", false);
    assert_eq!(
        store
            .search_board("algebra", &r, "zebra", 10)
            .await
            .unwrap()
            .len(),
        2
    );

    // Editing re-indexes: the old words are gone, the new ones found.
    store
        .edit_reply(reply.id, "striped horse answer", 35)
        .await
        .unwrap();
    let hits = store
        .search_board("algebra", &r, "zebra", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].reply_id, None);
    assert_eq!(
        store
            .search_board("algebra", &r, "striped", 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let deleted = store.delete_reply(reply.id, "grace", 40).await.unwrap();
    assert_eq!(deleted.body, "");
    assert_eq!(deleted.deleted_by.as_deref(), Some("grace"));
    assert!(
        store
            .search_board("algebra", &r, "striped", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.edit_reply(reply.id, "back", 45).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Deleted { what: "reply", .. }),
        "{err}"
    );

    let gone = store.delete_topic(t.id, "grace", 50).await.unwrap();
    assert_eq!((gone.title.as_str(), gone.body.as_str()), ("", ""));
    assert_eq!(gone.deleted_at, Some(50));
    // A second deletion keeps the first.
    assert_eq!(
        store
            .delete_topic(t.id, "ada", 60)
            .await
            .unwrap()
            .deleted_at,
        Some(50)
    );
    assert!(
        store
            .search_board("algebra", &r, "zebra", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Nor do the topic's remaining replies show up: the topic left the board.
    assert!(
        store
            .search_board("algebra", &r, "thanks", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .board_topics("algebra", &r, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.board_unread("algebra", &r).await.unwrap(), 0);

    // The history stays: the replies are still there, the deleted one without its text.
    let replies = store.replies(t.id).await.unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].body, "");
    assert_eq!(replies[1], kept);

    let err = store
        .add_reply(t.id, &ada, "late", false, 70)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Deleted { what: "topic", .. }),
        "{err}"
    );
    let err = store.edit_topic(t.id, "x", "y", 70).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Deleted { what: "topic", .. }),
        "{err}"
    );
    let err = store.delete_reply(9999, "grace", 70).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "reply", .. }),
        "{err}"
    );
}

async fn locked_topics_take_replies_only_when_the_lock_is_bypassed(db: Db) {
    let store = store(&db).await;
    let ada = author("ada", Role::Student);
    let t = store
        .create_topic(&topic("algebra", &ada, "Closed", "done", 10))
        .await
        .unwrap();
    let locked = store.set_topic_flags(t.id, None, Some(true)).await.unwrap();
    assert!(locked.locked && !locked.pinned);
    let err = store
        .add_reply(t.id, &ada, "one more", false, 20)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TopicLocked(id) if id == t.id),
        "{err}"
    );
    store
        .add_reply(
            t.id,
            &author("grace", Role::Instructor),
            "final word",
            true,
            30,
        )
        .await
        .unwrap();
    let unlocked = store
        .set_topic_flags(t.id, None, Some(false))
        .await
        .unwrap();
    assert!(!unlocked.locked);
    store
        .add_reply(t.id, &ada, "one more", false, 40)
        .await
        .unwrap();
    let err = store
        .set_topic_flags(12345, Some(true), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "topic", .. }),
        "{err}"
    );
}

async fn a_chat_message_makes_at_most_one_topic(db: Db) {
    let store = store(&db).await;
    let grace = author("grace", Role::Instructor);
    let mut moved = topic(
        "algebra",
        &grace,
        "Question from class",
        "what is a ring?",
        10,
    );
    moved.source = Some(TopicSource {
        room: "algebra.2026-09-01T10:00".to_owned(),
        seq: 42,
        author_name: "Ada".to_owned(),
        sent_at: 5,
    });
    let t = store.create_topic(&moved).await.unwrap();
    assert_eq!(t.source, moved.source);
    assert_eq!(
        store
            .topic_from_chat("algebra.2026-09-01T10:00", 42)
            .await
            .unwrap(),
        Some(t.id)
    );
    let err = store.create_topic(&moved).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
}

async fn the_board_survives_a_reopen(db: Db) {
    let store = db.open().await;
    store
        .create_course(&Course {
            id: "algebra".to_owned(),
            title: "Algebra".to_owned(),
            timezone: "UTC".to_owned(),
            lobby_minutes: 0,
            warning_minutes: 0,
            grace_minutes: 0,
            auto_start: false,
            record_sessions: false,
            recording_downloads: false,
            class_mode: ClassMode::Lecture,
            created_at: 1,
        })
        .await
        .unwrap();
    let ada = author("ada", Role::Student);
    let t = store
        .create_topic(&topic("algebra", &ada, "Persistent", "across sessions", 10))
        .await
        .unwrap();
    store.close().await;
    let store = db.open().await;
    assert_eq!(
        store.topic(t.id).await.unwrap().unwrap().title,
        "Persistent"
    );
    let hits = store
        .search_board("algebra", &reader("alan", false), "sessions", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

both_backends!(
    topics_list_pinned_first_then_latest_activity,
    unread_counts_follow_read_marks_per_member,
    private_topics_are_seen_by_staff_and_their_asker_only,
    search_finds_words_with_prefixes_and_never_fails_on_syntax,
    soft_delete_erases_text_and_removes_it_from_the_index,
    locked_topics_take_replies_only_when_the_lock_is_bypassed,
    a_chat_message_makes_at_most_one_topic,
    the_board_survives_a_reopen,
);
