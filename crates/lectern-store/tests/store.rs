//! The store against real databases: most tests run on a SQLite file and on a PostgreSQL schema
//! (see `common`); a few check what only one engine has (memory databases, files, URLs).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lectern_proto::{ChatMessage, ChatTarget, ParticipantId, Role, RoomId, Seq, UnixMillis};
use lectern_store::{
    ACTION_LOCK_CHAT, ACTION_UNLOCK_CHAT, AttendanceInterval, ClassSession, ModerationEntry, Store,
    StoreError, StoreOp, StoredChat,
};
mod common;

use common::{Db, Kind, TestDb};

const T0: UnixMillis = 1_700_000_000_000;

fn room() -> RoomId {
    RoomId::new("algebra-101")
}

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id)
}

fn chat(seq: Seq, to: ChatTarget) -> ChatMessage {
    ChatMessage {
        seq,
        from: pid("s1"),
        from_name: "Ada".to_owned(),
        from_role: Role::Student,
        to,
        text: format!("message {seq}: é ✓ 'quotes' \"and\" ; DROP TABLE rooms;"),
        sent_at: T0.saturating_add(seq),
    }
}

/// The test's database (a SQLite file, so reads go through the read-only pool, or a PostgreSQL
/// schema) with `room()` created.
async fn room_store(db: &Db) -> Store {
    let store = db.open().await;
    store.ensure_room(&room(), "Algebra", T0).await.unwrap();
    store
}

async fn all_chat(store: &Store, room: &RoomId) -> Vec<StoredChat> {
    store.chat_log(room, 0, u32::MAX).await.unwrap()
}

fn seqs(chat: &[ChatMessage]) -> Vec<Seq> {
    chat.iter().map(|m| m.seq).collect()
}

async fn chat_round_trips_every_target(db: Db) {
    let store = room_store(&db).await;
    let messages = [
        chat(1, ChatTarget::Everyone),
        chat(2, ChatTarget::Staff),
        chat(
            3,
            ChatTarget::Participant {
                id: pid("student-7"),
            },
        ),
    ];
    let ops: Vec<_> = messages.iter().cloned().map(StoreOp::Chat).collect();
    store.write_batch(&room(), None, 3, &ops).await.unwrap();

    let log = all_chat(&store, &room()).await;
    let expected: Vec<_> = messages
        .iter()
        .map(|m| StoredChat {
            message: m.clone(),
            deleted_at: None,
            deleted_by: None,
        })
        .collect();
    assert_eq!(log, expected);

    // after_seq and limit.
    let page = store.chat_log(&room(), 1, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].message.seq, 2);
    assert!(store.chat_log(&room(), 3, 10).await.unwrap().is_empty());
    // Other rooms see nothing.
    assert!(all_chat(&store, &RoomId::new("other")).await.is_empty());
}

#[tokio::test]
async fn in_memory_store_round_trips() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.ensure_room(&room(), "Algebra", T0).await.unwrap();
    for seq in 1..=20 {
        store
            .write_batch(
                &room(),
                None,
                seq,
                &[StoreOp::Chat(chat(seq, ChatTarget::Everyone))],
            )
            .await
            .unwrap();
    }
    let loaded = store.load_room(&room(), 5).await.unwrap();
    assert_eq!(loaded.last_seq, 20);
    assert_eq!(seqs(&loaded.recent_chat), vec![16, 17, 18, 19, 20]);
    // Two memory stores are separate databases.
    let other = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(other.load_room(&room(), 5).await.unwrap().last_seq, 0);
    store.close().await;
}

async fn chat_delete_marks_the_row_and_keeps_the_first_deletion(db: Db) {
    let store = room_store(&db).await;
    store
        .write_batch(
            &room(),
            None,
            2,
            &[
                StoreOp::Chat(chat(1, ChatTarget::Everyone)),
                StoreOp::Chat(chat(2, ChatTarget::Everyone)),
            ],
        )
        .await
        .unwrap();
    store
        .write_batch(
            &room(),
            None,
            3,
            &[StoreOp::ChatDeleted {
                seq: 1,
                by: pid("prof"),
                at: T0 + 100,
            }],
        )
        .await
        .unwrap();
    // Deleting again, or deleting an unknown message, changes nothing and does not fail the
    // batch (the chat in it is still stored).
    store
        .write_batch(
            &room(),
            None,
            5,
            &[
                StoreOp::ChatDeleted {
                    seq: 1,
                    by: pid("ta"),
                    at: T0 + 200,
                },
                StoreOp::ChatDeleted {
                    seq: 99,
                    by: pid("ta"),
                    at: T0 + 200,
                },
                StoreOp::Chat(chat(5, ChatTarget::Everyone)),
            ],
        )
        .await
        .unwrap();

    let log = all_chat(&store, &room()).await;
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].message, chat(1, ChatTarget::Everyone));
    assert_eq!(log[0].deleted_at, Some(T0 + 100));
    assert_eq!(log[0].deleted_by, Some(pid("prof")));
    assert_eq!((log[1].deleted_at, log[1].deleted_by.clone()), (None, None));
    assert_eq!(log[2].message.seq, 5);

    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(seqs(&loaded.recent_chat), vec![2, 5]);
}

async fn recent_chat_skips_deleted_is_oldest_first_and_bounded(db: Db) {
    let store = room_store(&db).await;
    let mut ops: Vec<_> = (1..=10)
        .map(|seq| StoreOp::Chat(chat(seq, ChatTarget::Everyone)))
        .collect();
    for seq in [7, 9] {
        ops.push(StoreOp::ChatDeleted {
            seq,
            by: pid("prof"),
            at: T0 + 50,
        });
    }
    store.write_batch(&room(), None, 10, &ops).await.unwrap();

    let loaded = store.load_room(&room(), 5).await.unwrap();
    assert_eq!(seqs(&loaded.recent_chat), vec![4, 5, 6, 8, 10]);
    assert_eq!(loaded.recent_chat[0], chat(4, ChatTarget::Everyone));
    assert!(
        store
            .load_room(&room(), 0)
            .await
            .unwrap()
            .recent_chat
            .is_empty()
    );
    assert_eq!(
        store
            .load_room(&room(), 100)
            .await
            .unwrap()
            .recent_chat
            .len(),
        8
    );
    // The log still has all ten.
    assert_eq!(all_chat(&store, &room()).await.len(), 10);
}

async fn attendance_intervals_open_and_close(db: Db) {
    let store = room_store(&db).await;
    let join = |id: &str, name: &str, role, at| StoreOp::AttendanceJoin {
        participant_id: pid(id),
        name: name.to_owned(),
        role,
        at,
    };
    let leave = |id: &str, at| StoreOp::AttendanceLeave {
        participant_id: pid(id),
        at,
    };
    store
        .write_batch(
            &room(),
            None,
            1,
            &[
                join("prof", "Prof. X", Role::Instructor, T0),
                join("s1", "Ada", Role::Student, T0 + 10),
                leave("ghost", T0 + 15), // never joined: no-op
                leave("s1", T0 + 20),
                join("s1", "Ada", Role::Student, T0 + 30),
                join("obs", "Visitor", Role::Observer, T0 + 35),
                join("ta", "Tess", Role::Ta, T0 + 40),
                // A second join while still open (a reconnect the room counted twice): a leave
                // closes the latest interval.
                join("ta", "Tess", Role::Ta, T0 + 45),
                leave("ta", T0 + 55),
                leave("s1", T0 + 50),
                leave("s1", T0 + 60), // nothing open any more: no-op
                leave("obs", T0 + 1), // before joining (clock stepped back): clamped
            ],
        )
        .await
        .unwrap();

    let interval = |id: &str, name: &str, role, joined_at, left_at| AttendanceInterval {
        participant_id: pid(id),
        name: name.to_owned(),
        role,
        joined_at,
        left_at,
    };
    assert_eq!(
        store.attendance(&room()).await.unwrap(),
        vec![
            interval("prof", "Prof. X", Role::Instructor, T0, None),
            interval("s1", "Ada", Role::Student, T0 + 10, Some(T0 + 20)),
            interval("s1", "Ada", Role::Student, T0 + 30, Some(T0 + 50)),
            interval("obs", "Visitor", Role::Observer, T0 + 35, Some(T0 + 35)),
            interval("ta", "Tess", Role::Ta, T0 + 40, None),
            interval("ta", "Tess", Role::Ta, T0 + 45, Some(T0 + 55)),
        ]
    );
}

async fn close_open_attendance_closes_only_open_intervals_of_that_room(db: Db) {
    let store = room_store(&db).await;
    let other = RoomId::new("other");
    store.ensure_room(&other, "Other", T0).await.unwrap();
    let join = |id: &str, at| StoreOp::AttendanceJoin {
        participant_id: pid(id),
        name: id.to_owned(),
        role: Role::Student,
        at,
    };
    store
        .write_batch(
            &room(),
            None,
            1,
            &[
                join("a", T0),
                join("b", T0 + 1),
                StoreOp::AttendanceLeave {
                    participant_id: pid("b"),
                    at: T0 + 5,
                },
                join("c", T0 + 2),
            ],
        )
        .await
        .unwrap();
    store
        .write_batch(&other, None, 1, &[join("z", T0)])
        .await
        .unwrap();

    assert_eq!(
        store
            .close_open_attendance(&room(), T0 + 100)
            .await
            .unwrap(),
        2
    );
    let left: Vec<_> = store
        .attendance(&room())
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.participant_id.0, i.left_at))
        .collect();
    assert_eq!(
        left,
        vec![
            ("a".to_owned(), Some(T0 + 100)),
            ("b".to_owned(), Some(T0 + 5)),
            ("c".to_owned(), Some(T0 + 100)),
        ]
    );
    assert_eq!(store.attendance(&other).await.unwrap()[0].left_at, None);
    assert_eq!(
        store
            .close_open_attendance(&room(), T0 + 200)
            .await
            .unwrap(),
        0
    );
}

async fn attendance_of_rooms_reads_several_rooms_in_one_call(db: Db) {
    let store = room_store(&db).await;
    let (other, quiet) = (RoomId::new("other"), RoomId::new("quiet"));
    store.ensure_room(&other, "Other", T0).await.unwrap();
    store.ensure_room(&quiet, "Quiet", T0).await.unwrap();
    let join = |id: &str, at| StoreOp::AttendanceJoin {
        participant_id: pid(id),
        name: id.to_owned(),
        role: Role::Student,
        at,
    };
    let leave = |id: &str, at| StoreOp::AttendanceLeave {
        participant_id: pid(id),
        at,
    };
    store
        .write_batch(
            &room(),
            None,
            1,
            &[join("b", T0 + 5), join("a", T0), leave("a", T0 + 9)],
        )
        .await
        .unwrap();
    store
        .write_batch(&other, None, 1, &[join("z", T0 + 1)])
        .await
        .unwrap();

    let asked = [
        room(),
        other.clone(),
        quiet.clone(),
        RoomId::new("never-created"),
    ];
    let by_room = store.attendance_of_rooms(&asked).await.unwrap();
    assert_eq!(
        by_room.len(),
        2,
        "rooms without intervals are absent: {by_room:?}"
    );
    for room in [room(), other] {
        assert_eq!(
            by_room[&room],
            store.attendance(&room).await.unwrap(),
            "{room}"
        );
    }
    assert_eq!(
        by_room[&room()][0].participant_id,
        pid("a"),
        "in the order they opened"
    );
    assert!(store.attendance_of_rooms(&[]).await.unwrap().is_empty());
    let too_many: Vec<RoomId> = (0..=lectern_store::MAX_ROOMS_PER_READ)
        .map(|i| RoomId::new(format!("r{i}")))
        .collect();
    assert!(matches!(
        store.attendance_of_rooms(&too_many).await,
        Err(StoreError::OutOfRange { .. })
    ));
}

async fn moderation_round_trips_and_drives_chat_lock(db: Db) {
    let store = room_store(&db).await;
    let entry = |seq, action: &str, target: Option<&str>| ModerationEntry {
        seq,
        action: action.to_owned(),
        by: pid("prof"),
        target: target.map(pid),
        at: T0 + seq,
    };
    let op = |e: &ModerationEntry| StoreOp::Moderation {
        seq: e.seq,
        action: e.action.clone(),
        by: e.by.clone(),
        target: e.target.clone(),
        at: e.at,
    };
    assert!(!store.load_room(&room(), 0).await.unwrap().chat_locked);

    let first = [
        entry(3, "mute", Some("s1")),
        entry(4, ACTION_LOCK_CHAT, None),
    ];
    store
        .write_batch(&room(), None, 4, &first.iter().map(op).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(store.load_room(&room(), 0).await.unwrap().chat_locked);

    let second = [
        entry(8, ACTION_UNLOCK_CHAT, None),
        entry(9, "remove", Some("s2")),
    ];
    store
        .write_batch(&room(), None, 9, &second.iter().map(op).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(!store.load_room(&room(), 0).await.unwrap().chat_locked);

    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_eq!(store.moderation_log(&room()).await.unwrap(), all);

    // One entry per seq: writing seq 9 again fails and changes nothing.
    let err = store
        .write_batch(&room(), None, 10, &[op(&entry(9, ACTION_LOCK_CHAT, None))])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateSeq { seq: 9, .. }),
        "{err:?}"
    );
    assert_eq!(store.moderation_log(&room()).await.unwrap(), all);
    assert!(!store.load_room(&room(), 0).await.unwrap().chat_locked);
}

async fn class_sessions_open_and_close(db: Db) {
    let store = room_store(&db).await;
    let spans = |sessions: Vec<ClassSession>| -> Vec<_> {
        sessions
            .into_iter()
            .map(|s| (s.started_at, s.ended_at))
            .collect()
    };
    store
        .write_batch(
            &room(),
            None,
            1,
            &[
                StoreOp::ClassEnded { at: T0 }, // nothing open: no-op
                StoreOp::ClassStarted { at: T0 + 10 },
                StoreOp::ClassEnded { at: T0 + 20 },
                StoreOp::ClassStarted { at: T0 + 30 },
            ],
        )
        .await
        .unwrap();
    let sessions = store.class_sessions(&room()).await.unwrap();
    assert!(sessions[0].id < sessions[1].id);
    assert_eq!(
        spans(sessions),
        vec![(T0 + 10, Some(T0 + 20)), (T0 + 30, None)]
    );

    // A start while one is open (a crash left it so) closes the old one first.
    store
        .write_batch(&room(), None, 2, &[StoreOp::ClassStarted { at: T0 + 50 }])
        .await
        .unwrap();
    assert_eq!(
        store
            .close_open_class_session(&room(), T0 + 60)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        spans(store.class_sessions(&room()).await.unwrap()),
        vec![
            (T0 + 10, Some(T0 + 20)),
            (T0 + 30, Some(T0 + 50)),
            (T0 + 50, Some(T0 + 60)),
        ]
    );
}

async fn a_failing_batch_leaves_nothing_behind(db: Db) {
    let store = room_store(&db).await;
    store
        .write_batch(
            &room(),
            None,
            1,
            &[StoreOp::Chat(chat(1, ChatTarget::Everyone))],
        )
        .await
        .unwrap();

    // Every kind of op, then a chat seq already in this batch.
    let batch = [
        StoreOp::AttendanceJoin {
            participant_id: pid("s1"),
            name: "Ada".to_owned(),
            role: Role::Student,
            at: T0,
        },
        StoreOp::Chat(chat(2, ChatTarget::Everyone)),
        StoreOp::ChatDeleted {
            seq: 1,
            by: pid("prof"),
            at: T0,
        },
        StoreOp::Moderation {
            seq: 3,
            action: ACTION_LOCK_CHAT.to_owned(),
            by: pid("prof"),
            target: None,
            at: T0,
        },
        StoreOp::ClassStarted { at: T0 },
        StoreOp::Chat(chat(2, ChatTarget::Staff)),
    ];
    let err = store
        .write_batch(&room(), None, 50, &batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateSeq { seq: 2, .. }),
        "{err:?}"
    );

    // A chat seq stored by an earlier batch: an error, never an overwrite.
    let mut changed = chat(1, ChatTarget::Staff);
    changed.text = "rewritten".to_owned();
    let err = store
        .write_batch(
            &room(),
            None,
            60,
            &[
                StoreOp::Chat(chat(4, ChatTarget::Everyone)),
                StoreOp::Chat(changed),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateSeq { seq: 1, .. }),
        "{err:?}"
    );

    let log = all_chat(&store, &room()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].message, chat(1, ChatTarget::Everyone));
    assert_eq!(log[0].deleted_at, None);
    assert!(store.attendance(&room()).await.unwrap().is_empty());
    assert!(store.moderation_log(&room()).await.unwrap().is_empty());
    assert!(store.class_sessions(&room()).await.unwrap().is_empty());
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.last_seq, 1, "a failed batch must not raise last_seq");
    assert!(!loaded.chat_locked);

    // The store still works after the failures.
    store
        .write_batch(
            &room(),
            None,
            2,
            &[StoreOp::Chat(chat(2, ChatTarget::Everyone))],
        )
        .await
        .unwrap();
    assert_eq!(all_chat(&store, &room()).await.len(), 2);
}

async fn write_batch_for_an_unknown_room_fails(db: Db) {
    let store = room_store(&db).await;
    let ghost = RoomId::new("ghost");
    let err = store
        .write_batch(
            &ghost,
            None,
            1,
            &[StoreOp::Chat(chat(1, ChatTarget::Everyone))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownRoom(ref r) if *r == ghost),
        "{err:?}"
    );
    assert!(all_chat(&store, &ghost).await.is_empty());
}

async fn values_beyond_i64_are_refused(db: Db) {
    let store = room_store(&db).await;
    let err = store
        .write_batch(
            &room(),
            None,
            1,
            &[StoreOp::Chat(chat(u64::MAX, ChatTarget::Everyone))],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
    let err = store
        .write_batch(&room(), None, u64::MAX, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
    assert_eq!(store.load_room(&room(), 1).await.unwrap().last_seq, 0);
}

async fn last_seq_is_the_max_of_the_column_chat_and_moderation(db: Db) {
    let store = room_store(&db).await;
    assert_eq!(store.load_room(&room(), 0).await.unwrap().last_seq, 0);
    assert_eq!(
        store
            .load_room(&RoomId::new("never-stored"), 5)
            .await
            .unwrap()
            .last_seq,
        0
    );

    // Events without rows still count.
    store.write_batch(&room(), None, 42, &[]).await.unwrap();
    assert_eq!(store.load_room(&room(), 0).await.unwrap().last_seq, 42);
    // It never goes down.
    store.write_batch(&room(), None, 7, &[]).await.unwrap();
    assert_eq!(store.load_room(&room(), 0).await.unwrap().last_seq, 42);
    // Rows above the column count too.
    store
        .write_batch(
            &room(),
            None,
            0,
            &[StoreOp::Chat(chat(50, ChatTarget::Everyone))],
        )
        .await
        .unwrap();
    assert_eq!(store.load_room(&room(), 0).await.unwrap().last_seq, 50);
    store
        .write_batch(
            &room(),
            None,
            0,
            &[StoreOp::Moderation {
                seq: 60,
                action: "mute".to_owned(),
                by: pid("prof"),
                target: Some(pid("s1")),
                at: T0,
            }],
        )
        .await
        .unwrap();
    assert_eq!(store.load_room(&room(), 0).await.unwrap().last_seq, 60);
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_last_seq() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directories do not exist yet.
    let path = dir.path().join("nested/deeper/lectern.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = Store::open(&url).await.unwrap();
        assert!(path.exists());
        store.ensure_room(&room(), "Algebra", T0).await.unwrap();
        store
            .write_batch(
                &room(),
                None,
                10,
                &[
                    StoreOp::Chat(chat(3, ChatTarget::Staff)),
                    StoreOp::Moderation {
                        seq: 4,
                        action: ACTION_LOCK_CHAT.to_owned(),
                        by: pid("prof"),
                        target: None,
                        at: T0,
                    },
                    StoreOp::AttendanceJoin {
                        participant_id: pid("s1"),
                        name: "Ada".to_owned(),
                        role: Role::Student,
                        at: T0,
                    },
                    StoreOp::ClassStarted { at: T0 },
                ],
            )
            .await
            .unwrap();
        store.close().await;
        // close() checkpointed: the WAL is gone or empty.
        let wal = dir.path().join("nested/deeper/lectern.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    }

    let store = Store::open(&url).await.unwrap();
    // ensure_room on an existing room keeps its rows and updates the title.
    store
        .ensure_room(&room(), "Algebra II", T0 + 1)
        .await
        .unwrap();
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.last_seq, 10);
    assert!(loaded.chat_locked);
    assert_eq!(loaded.recent_chat, vec![chat(3, ChatTarget::Staff)]);
    assert_eq!(store.attendance(&room()).await.unwrap().len(), 1);
    assert_eq!(store.moderation_log(&room()).await.unwrap().len(), 1);
    assert_eq!(store.class_sessions(&room()).await.unwrap().len(), 1);
    store.close().await;

    // The title, read straight from the file.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (title, created_at): (String, i64) =
        sqlx::query_as("SELECT title, created_at FROM rooms WHERE id = ?")
            .bind(room().as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(title, "Algebra II");
    assert_eq!(created_at, T0 as i64);
    pool.close().await;
}

#[tokio::test]
async fn unsupported_urls_are_refused_readably() {
    for url in [
        "mysql://lectern:s3cret@db.example/lectern",
        "lectern.db",
        "",
        "sqlite:",
    ] {
        let err = Store::open(url).await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, StoreError::UnsupportedUrl(_)),
            "{url:?}: {err:?}"
        );
        assert!(!message.contains("s3cret"), "{url:?}: leaks the password");
        assert!(message.contains("sqlite://"), "{url:?}: {message}");
    }
    // A PostgreSQL URL that cannot be parsed, and a server that is not there: neither message
    // repeats the password.
    let err = Store::open("postgres://lectern:s3cret@db.example:notaport/lectern")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
    let err = Store::open("postgresql://lectern:s3cret@127.0.0.1:1/lectern?password=s3cret")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(!message.contains("s3cret"), "leaks the password: {message}");
    assert!(
        !format!("{err:?}").contains("s3cret"),
        "leaks the password: {err:?}"
    );
    assert!(
        message.contains("PostgreSQL at lectern@127.0.0.1:1/lectern"),
        "{message}"
    );
}

/// Data and the last seq outlive the store: close, open again (a new pool), read it back.
async fn reopening_keeps_data_and_last_seq(db: Db) {
    let store = room_store(&db).await;
    store
        .write_batch(
            &room(),
            None,
            10,
            &[
                StoreOp::Chat(chat(3, ChatTarget::Staff)),
                StoreOp::Moderation {
                    seq: 4,
                    action: ACTION_LOCK_CHAT.to_owned(),
                    by: pid("prof"),
                    target: None,
                    at: T0,
                },
                StoreOp::ClassStarted { at: T0 },
            ],
        )
        .await
        .unwrap();
    store.close().await;
    assert!(store.load_room(&room(), 1).await.is_err(), "closed");

    let store = db.open().await;
    store
        .ensure_room(&room(), "Algebra II", T0 + 1)
        .await
        .unwrap();
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.last_seq, 10);
    assert!(loaded.chat_locked);
    assert_eq!(loaded.recent_chat, vec![chat(3, ChatTarget::Staff)]);
    assert_eq!(store.class_sessions(&room()).await.unwrap().len(), 1);
    store.close().await;
    let (title,): (String,) = db
        .raw_row("SELECT title FROM rooms WHERE id = 'algebra-101'")
        .await;
    assert_eq!(title, "Algebra II");
}

async fn rooms_write_concurrently_while_others_read(db: Db) {
    let store = db.open().await;
    const ROOMS: u64 = 8;
    const BATCHES: u64 = 40;
    let mut tasks = Vec::new();
    for r in 0..ROOMS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let room = RoomId::new(format!("room-{r}"));
            store.ensure_room(&room, "Room", T0).await.unwrap();
            for seq in 1..=BATCHES {
                store
                    .write_batch(
                        &room,
                        None,
                        seq,
                        &[StoreOp::Chat(chat(seq, ChatTarget::Everyone))],
                    )
                    .await
                    .unwrap();
                let loaded = store.load_room(&room, 3).await.unwrap();
                assert_eq!(loaded.last_seq, seq);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for r in 0..ROOMS {
        let room = RoomId::new(format!("room-{r}"));
        assert_eq!(all_chat(&store, &room).await.len() as u64, BATCHES);
    }
    store.close().await;
}

/// Set in the child process of the durability tests: the database URL it writes to.
const CHILD_ENV: &str = "LECTERN_STORE_CHILD";
const CHILD_TEST: &str = "durability_child_writer";

/// Not a test on its own: the child of `durability_acknowledged_batches_survive_sigkill`. It
/// writes batches as fast as it can and prints `ACK <seq>` after each `write_batch` returns.
#[tokio::test]
async fn durability_child_writer() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store.ensure_room(&room(), "Algebra", T0).await.unwrap();
    for seq in 1..=1_000_000 {
        let ops = [
            StoreOp::Chat(chat(seq, ChatTarget::Everyone)),
            StoreOp::AttendanceJoin {
                participant_id: pid(&format!("p{seq}")),
                name: "Ada".to_owned(),
                role: Role::Student,
                at: T0 + seq,
            },
        ];
        store.write_batch(&room(), None, seq, &ops).await.unwrap();
        // Rust's stdout is line-buffered: the line is in the pipe when println! returns.
        println!("ACK {seq}");
    }
}

#[test]
fn durability_acknowledged_batches_survive_sigkill() {
    durability_for(Kind::Sqlite);
}

/// On PostgreSQL, killing the client proves the same thing from Lectern's side: a batch whose
/// `write_batch` returned was committed by the server.
#[test]
fn durability_acknowledged_batches_survive_sigkill_postgres() {
    durability_for(Kind::Postgres);
}

fn durability_for(kind: Kind) {
    const KILL_AFTER: usize = 300;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(TestDb::create(kind)) else {
        return;
    };
    let result = std::panic::catch_unwind(|| durability_run(&rt, &db, KILL_AFTER));
    rt.block_on(db.remove());
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn durability_run(rt: &tokio::runtime::Runtime, db: &TestDb, kill_after: usize) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(seq) = line.strip_prefix("ACK ")
                && lines_tx.send(seq.parse::<Seq>().unwrap()).is_err()
            {
                break;
            }
        }
    });

    // Wait for some acknowledged batches, then kill the child in the middle of its next ones.
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(seq) => {
                acked.insert(seq);
            }
            Err(err) => {
                let _ = child.kill();
                panic!(
                    "child stopped acknowledging after {} batches: {err}",
                    acked.len()
                );
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no close, no checkpoint.
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must have been killed: {status}"
    );
    reader.join().unwrap();
    // Lines the child printed before it died were acknowledged too.
    acked.extend(lines_rx.try_iter());

    rt.block_on(async {
        let store = db.open().await;
        let stored: BTreeSet<Seq> = all_chat(&store, &room())
            .await
            .into_iter()
            .map(|c| c.message.seq)
            .collect();
        let lost: Vec<_> = acked.difference(&stored).collect();
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
        let max_acked = *acked.last().unwrap();
        let loaded = store.load_room(&room(), 1).await.unwrap();
        assert!(loaded.last_seq >= max_acked);
        assert!(store.attendance(&room()).await.unwrap().len() >= acked.len());
        store.close().await;
    });
}

fn poll(poll_id: u64, anonymous: bool) -> lectern_proto::Poll {
    lectern_proto::Poll {
        poll_id,
        question: "Which method converges fastest?".into(),
        options: vec!["Bisection".into(), "Newton ✓".into(), "Secant".into()],
        multiple: true,
        anonymous,
        asked_by: pid("t"),
        started_at: T0,
    }
}

/// Polls are stored with their answers; an anonymous poll's answers keep no identity or time;
/// ending and sharing keep their first time; a poll a crash left open is closed on load.
async fn polls_round_trip_and_anonymous_answers_name_nobody(db: Db) {
    use lectern_store::{StoredPoll, StoredPollAnswer};
    let store = room_store(&db).await;
    let ops = vec![
        StoreOp::PollStarted {
            poll: poll(5, false),
            asked_by_name: "Grace".into(),
        },
        StoreOp::PollAnswered {
            poll_id: 5,
            voter: Some((pid("s1"), "Ada".into())),
            choices: vec![0, 2],
            at: Some(T0 + 10),
        },
        StoreOp::PollAnswered {
            poll_id: 5,
            voter: Some((pid("s2"), "Alan".into())),
            choices: vec![1],
            at: Some(T0 + 20),
        },
        StoreOp::PollEnded {
            poll_id: 5,
            at: T0 + 30,
        },
        StoreOp::PollEnded {
            poll_id: 5,
            at: T0 + 99,
        },
        StoreOp::PollShared {
            poll_id: 5,
            at: T0 + 40,
        },
        StoreOp::PollStarted {
            poll: poll(9, true),
            asked_by_name: "Grace".into(),
        },
        StoreOp::PollAnswered {
            poll_id: 9,
            voter: None,
            choices: vec![1],
            at: None,
        },
    ];
    store.write_batch(&room(), None, 10, &ops).await.unwrap();
    let polls = store.polls(&room()).await.unwrap();
    assert_eq!(
        polls,
        vec![
            StoredPoll {
                poll: poll(5, false),
                asked_by_name: "Grace".into(),
                ended_at: Some(T0 + 30),
                shared_at: Some(T0 + 40),
                answers: vec![
                    StoredPollAnswer {
                        voter: Some((pid("s1"), "Ada".into())),
                        choices: vec![0, 2],
                        at: Some(T0 + 10),
                    },
                    StoredPollAnswer {
                        voter: Some((pid("s2"), "Alan".into())),
                        choices: vec![1],
                        at: Some(T0 + 20),
                    },
                ],
            },
            StoredPoll {
                poll: poll(9, true),
                asked_by_name: "Grace".into(),
                ended_at: None,
                shared_at: None,
                answers: vec![StoredPollAnswer {
                    voter: None,
                    choices: vec![1],
                    at: None,
                }],
            },
        ]
    );
    // The anonymous answer's row holds no identity at all.
    let row: (Option<String>, Option<String>, Option<i64>) = db
        .raw_row("SELECT participant_id, name, answered_at FROM poll_answers WHERE poll_id = 9")
        .await;
    assert_eq!(row, (None, None, None));

    // The same poll id twice is refused, and the whole batch with it.
    let again = StoreOp::PollStarted {
        poll: poll(5, false),
        asked_by_name: "Grace".into(),
    };
    assert!(matches!(
        store.write_batch(&room(), None, 11, &[again]).await,
        Err(StoreError::DuplicateSeq { what: "poll", .. })
    ));

    assert_eq!(store.close_open_polls(&room(), T0 + 500).await.unwrap(), 1);
    let polls = store.polls(&room()).await.unwrap();
    assert_eq!(polls[1].ended_at, Some(T0 + 500));
    assert_eq!(
        polls[0].ended_at,
        Some(T0 + 30),
        "an ended poll keeps its end"
    );
}

/// Two stores on one database, as two nodes share one PostgreSQL: each sees what the other
/// committed, and a seq stored by one is refused to the other.
async fn two_stores_share_one_database(db: Db) {
    let first = room_store(&db).await;
    let second = db.open().await;
    first
        .write_batch(
            &room(),
            None,
            1,
            &[StoreOp::Chat(chat(1, ChatTarget::Everyone))],
        )
        .await
        .unwrap();
    let loaded = second.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.last_seq, 1);
    assert_eq!(seqs(&loaded.recent_chat), vec![1]);
    let err = second
        .write_batch(
            &room(),
            None,
            1,
            &[StoreOp::Chat(chat(1, ChatTarget::Staff))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateSeq { seq: 1, .. }),
        "{err:?}"
    );
    second
        .write_batch(
            &room(),
            None,
            2,
            &[StoreOp::Chat(chat(2, ChatTarget::Everyone))],
        )
        .await
        .unwrap();
    let log = all_chat(&first, &room()).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].message, chat(1, ChatTarget::Everyone));
    first.close().await;
    second.close().await;
}

both_backends!(
    two_stores_share_one_database,
    chat_round_trips_every_target,
    chat_delete_marks_the_row_and_keeps_the_first_deletion,
    recent_chat_skips_deleted_is_oldest_first_and_bounded,
    attendance_intervals_open_and_close,
    close_open_attendance_closes_only_open_intervals_of_that_room,
    attendance_of_rooms_reads_several_rooms_in_one_call,
    moderation_round_trips_and_drives_chat_lock,
    class_sessions_open_and_close,
    a_failing_batch_leaves_nothing_behind,
    write_batch_for_an_unknown_room_fails,
    values_beyond_i64_are_refused,
    last_seq_is_the_max_of_the_column_chat_and_moderation,
    polls_round_trip_and_anonymous_answers_name_nobody,
    rooms_write_concurrently_while_others_read,
    reopening_keeps_data_and_last_seq,
);
