//! Store-side fencing (issue 14): `write_batch` with a lease's fencing token refuses a stale
//! holder's batch, whole, on both backends; `None` (a single node) is never checked.

use std::time::{Duration, Instant};

use lectern_proto::{ChatMessage, ChatTarget, ParticipantId, Role, RoomId, Seq, UnixMillis};
use lectern_store::{SavedRoom, Store, StoreError, StoreOp};
use sqlx::Connection;

mod common;

use common::{Db, Kind};

const T0: UnixMillis = 1_700_000_000_000;

fn room() -> RoomId {
    RoomId::new("fenced-101")
}

fn chat(seq: Seq) -> StoreOp {
    StoreOp::Chat(ChatMessage {
        seq,
        from: ParticipantId::new("s1"),
        from_name: "Ada".to_owned(),
        from_role: Role::Student,
        to: ChatTarget::Everyone,
        text: format!("message {seq}"),
        sent_at: T0 + seq,
    })
}

/// A batch with one op of each kind a room commits most: chat, attendance, class state.
fn full_batch(seq: Seq) -> Vec<StoreOp> {
    vec![
        chat(seq),
        StoreOp::AttendanceJoin {
            participant_id: ParticipantId::new("late"),
            name: "Late".to_owned(),
            role: Role::Student,
            at: T0 + seq,
        },
        StoreOp::RoomState(SavedRoom {
            class_state: lectern_proto::ClassState::Ended,
            class_started_at: None,
            presenter: None,
            mode: lectern_proto::ClassMode::Lecture,
            speak_all: false,
            banned: Vec::new(),
            end_warned: false,
        }),
    ]
}

async fn room_store(db: &Db) -> Store {
    let store = db.open().await;
    store.ensure_room(&room(), "Fenced", T0).await.unwrap();
    store
}

async fn chat_seqs(store: &Store) -> Vec<Seq> {
    let log = store.chat_log(&room(), 0, u32::MAX).await.unwrap();
    log.iter().map(|c| c.message.seq).collect()
}

async fn a_stale_token_is_refused_and_nothing_of_its_batch_is_stored(db: Db) {
    let store = room_store(&db).await;
    assert_eq!(store.room_fence(&room()).await.unwrap(), None);
    store
        .write_batch(&room(), Some(5), 1, &[chat(1)])
        .await
        .unwrap();
    assert_eq!(store.room_fence(&room()).await.unwrap(), Some(5));

    let err = store
        .write_batch(&room(), Some(4), 9, &full_batch(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Fenced { ref room, token: 4, newest: 5 } if *room == self::room()),
        "{err:?}"
    );
    assert_eq!(chat_seqs(&store).await, vec![1]);
    assert!(store.attendance(&room()).await.unwrap().is_empty());
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(
        loaded.last_seq, 1,
        "a refused batch must not raise last_seq"
    );
    assert!(loaded.state.is_none(), "a refused batch stored its state");
    assert_eq!(store.room_fence(&room()).await.unwrap(), Some(5));
    // An empty batch (what a new holder sends before loading) is refused the same way.
    assert!(matches!(
        store.write_batch(&room(), Some(3), 1, &[]).await,
        Err(StoreError::Fenced { token: 3, .. })
    ));
    store.close().await;
}

async fn equal_and_newer_tokens_are_accepted_and_raise_the_fence(db: Db) {
    let store = room_store(&db).await;
    store
        .write_batch(&room(), Some(5), 1, &[chat(1)])
        .await
        .unwrap();
    store
        .write_batch(&room(), Some(5), 2, &[chat(2)])
        .await
        .unwrap();
    // A new holder raises the fence with an empty batch, then writes.
    store.write_batch(&room(), Some(7), 0, &[]).await.unwrap();
    assert_eq!(store.room_fence(&room()).await.unwrap(), Some(7));
    store
        .write_batch(&room(), Some(7), 3, &full_batch(3))
        .await
        .unwrap();
    assert!(matches!(
        store.write_batch(&room(), Some(5), 4, &[chat(4)]).await,
        Err(StoreError::Fenced {
            token: 5,
            newest: 7,
            ..
        })
    ));
    assert_eq!(chat_seqs(&store).await, vec![1, 2, 3]);
    assert_eq!(store.load_room(&room(), 10).await.unwrap().last_seq, 3);
    // An unknown room is still that, with or without a token.
    let ghost = RoomId::new("ghost");
    assert!(matches!(
        store.write_batch(&ghost, Some(1), 1, &[chat(1)]).await,
        Err(StoreError::UnknownRoom(_))
    ));
    assert_eq!(store.room_fence(&ghost).await.unwrap(), None);
    store.close().await;
}

async fn no_token_is_never_checked_and_sets_no_fence(db: Db) {
    let store = room_store(&db).await;
    store
        .write_batch(&room(), None, 1, &[chat(1)])
        .await
        .unwrap();
    assert_eq!(store.room_fence(&room()).await.unwrap(), None);
    store
        .write_batch(&room(), Some(2), 2, &[chat(2)])
        .await
        .unwrap();
    // A single node passes None: as before fencing existed, whatever the column holds.
    store
        .write_batch(&room(), None, 3, &[chat(3)])
        .await
        .unwrap();
    assert_eq!(store.room_fence(&room()).await.unwrap(), Some(2));
    assert_eq!(chat_seqs(&store).await, vec![1, 2, 3]);
    store.close().await;
}

both_backends!(
    a_stale_token_is_refused_and_nothing_of_its_batch_is_stored,
    equal_and_newer_tokens_are_accepted_and_raise_the_fence,
    no_token_is_never_checked_and_sets_no_fence,
);

/// PostgreSQL, two nodes: while a newer holder's transaction holds the room's row (its fence
/// raised, not committed yet), a stale holder's batch waits for the row lock, then sees the
/// committed newer token and is refused: the two serialize, and the stale one stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stale_batch_waits_for_the_newer_holder_then_is_refused() {
    common::run(Kind::Postgres, |db: Db| async move {
        let stale = room_store(&db).await;
        stale
            .write_batch(&room(), Some(4), 1, &[chat(1)])
            .await
            .unwrap();

        // The newer holder, by hand so that its transaction stays open.
        let mut newer = sqlx::PgConnection::connect(db.url()).await.unwrap();
        let mut tx = newer.begin().await.unwrap();
        sqlx::query("UPDATE rooms SET fence_token = 9 WHERE id = $1")
            .bind(room().as_str())
            .execute(&mut *tx)
            .await
            .unwrap();

        let writer = stale.clone();
        let stale_write = tokio::spawn(async move {
            writer
                .write_batch(&room(), Some(4), 2, &full_batch(2))
                .await
        });
        // The stale batch is blocked on the row lock (condition with a deadline, no sleep).
        let mut watcher = sqlx::PgConnection::connect(db.url()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE rooms SET last_seq%'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(!stale_write.is_finished(), "the stale batch did not wait");
            assert!(Instant::now() < deadline, "the stale batch never waited");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.commit().await.unwrap();

        let err = stale_write.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Fenced {
                    token: 4,
                    newest: 9,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(chat_seqs(&stale).await, vec![1]);
        assert!(stale.attendance(&room()).await.unwrap().is_empty());
        stale.close().await;
    })
    .await;
}
