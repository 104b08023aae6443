//! What a room stores for a restore, on SQLite and PostgreSQL (see `common`): the room's class
//! state and its participants' states are upserted by `write_batch` and come back whole from
//! `load_room`, from a second store too (another node); clearing a participant or the whole room
//! removes them; a failed batch leaves the previous state; other rooms are untouched.

use lectern_proto::{ClassMode, ClassState, ParticipantId, Role, RoomId, UnixMillis};
use lectern_store::{SavedHand, SavedParticipant, SavedRoom, Store, StoreOp};
mod common;

use common::Db;

const T0: UnixMillis = 1_700_000_000_000;

fn room() -> RoomId {
    RoomId::new("algebra-101.2026-09-01T10:00")
}

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id)
}

fn live() -> SavedRoom {
    SavedRoom {
        class_state: ClassState::Live,
        class_started_at: Some(T0),
        presenter: Some(pid("s1")),
        mode: ClassMode::Lecture,
        speak_all: false,
        banned: vec![pid("s4"), pid("s5")],
        end_warned: false,
    }
}

fn student(id: &str, hand: Option<(UnixMillis, u64)>) -> SavedParticipant {
    SavedParticipant {
        id: pid(id),
        name: format!("Student {id} — é"),
        role: Role::Student,
        in_lobby: false,
        hard_muted: false,
        speak_granted: false,
        camera_allowed: false,
        hand: hand.map(|(raised_at, order)| SavedHand { raised_at, order }),
    }
}

async fn opened(db: &Db) -> Store {
    let store = db.open().await;
    store.ensure_room(&room(), "Algebra", T0).await.unwrap();
    store
}

async fn room_state_round_trips_and_is_replaced_whole(db: Db) {
    let store = opened(&db).await;
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.state, None, "nothing stored yet");
    assert!(loaded.participants.is_empty());

    store
        .write_batch(&room(), None, 5, &[StoreOp::RoomState(live())])
        .await
        .unwrap();
    assert_eq!(
        store.load_room(&room(), 10).await.unwrap().state,
        Some(live())
    );

    // Every field replaced, NULLs included.
    let ended = SavedRoom {
        class_state: ClassState::Ended,
        class_started_at: None,
        presenter: None,
        mode: ClassMode::Seminar,
        speak_all: true,
        banned: Vec::new(),
        end_warned: true,
    };
    store
        .write_batch(&room(), None, 6, &[StoreOp::RoomState(ended.clone())])
        .await
        .unwrap();
    // A second store on the same database (another node) reads the same.
    let other = db.open().await;
    assert_eq!(
        other.load_room(&room(), 10).await.unwrap().state,
        Some(ended)
    );
    for state in [ClassState::NotStarted, ClassState::Live] {
        let s = SavedRoom {
            class_state: state,
            ..live()
        };
        store
            .write_batch(&room(), None, 7, &[StoreOp::RoomState(s.clone())])
            .await
            .unwrap();
        assert_eq!(store.load_room(&room(), 10).await.unwrap().state, Some(s));
    }
    other.close().await;
    store.close().await;
}

async fn participant_states_upsert_clear_and_load_by_id(db: Db) {
    let store = opened(&db).await;
    let s2 = student("s2", Some((T0 + 10, 12)));
    let mut s1 = student("s1", None);
    s1.camera_allowed = true;
    let mut s3 = student("s3", Some((T0 + 20, 13)));
    s3.hard_muted = true;
    let ops = [
        StoreOp::RoomState(live()),
        StoreOp::ParticipantState(s2.clone()),
        StoreOp::ParticipantState(s3.clone()),
        StoreOp::ParticipantState(s1.clone()),
    ];
    store.write_batch(&room(), None, 13, &ops).await.unwrap();
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(
        loaded.participants,
        vec![s1.clone(), s2.clone(), s3.clone()]
    );

    // An upsert replaces the row; a clear removes it; clearing a missing one is harmless.
    let mut s3_lowered = s3.clone();
    s3_lowered.hand = None;
    s3_lowered.in_lobby = true;
    s3_lowered.speak_granted = true;
    let observer = SavedParticipant {
        role: Role::Observer,
        ..student("o", None)
    };
    let ops = [
        StoreOp::ParticipantState(s3_lowered.clone()),
        StoreOp::ParticipantStateCleared {
            participant_id: pid("s2"),
        },
        StoreOp::ParticipantStateCleared {
            participant_id: pid("nobody"),
        },
        StoreOp::ParticipantState(observer.clone()),
    ];
    store.write_batch(&room(), None, 14, &ops).await.unwrap();
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.participants, vec![observer, s1, s3_lowered]);
    assert_eq!(loaded.last_seq, 14);
    store.close().await;
}

async fn clearing_the_room_forgets_its_state_and_no_other(db: Db) {
    let store = opened(&db).await;
    let other = RoomId::new("other");
    store.ensure_room(&other, "Other", T0).await.unwrap();
    for r in [room(), other.clone()] {
        let ops = [
            StoreOp::RoomState(live()),
            StoreOp::ParticipantState(student("s1", Some((T0, 3)))),
        ];
        store.write_batch(&r, None, 3, &ops).await.unwrap();
    }
    store
        .write_batch(&room(), None, 4, &[StoreOp::RoomStateCleared])
        .await
        .unwrap();
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.state, None);
    assert!(loaded.participants.is_empty());
    let kept = store.load_room(&other, 10).await.unwrap();
    assert_eq!(kept.state, Some(live()));
    assert_eq!(kept.participants.len(), 1);
    store.close().await;
}

async fn a_failed_batch_keeps_the_previous_state(db: Db) {
    let store = opened(&db).await;
    store
        .write_batch(
            &room(),
            None,
            3,
            &[
                StoreOp::RoomState(live()),
                StoreOp::ParticipantState(student("s1", None)),
            ],
        )
        .await
        .unwrap();
    // The second op fails (a time beyond i64): the first is rolled back with it.
    let ops = [
        StoreOp::RoomState(SavedRoom {
            class_state: ClassState::Ended,
            ..live()
        }),
        StoreOp::ParticipantState(student("s2", Some((u64::MAX, 4)))),
    ];
    assert!(store.write_batch(&room(), None, 4, &ops).await.is_err());
    let loaded = store.load_room(&room(), 10).await.unwrap();
    assert_eq!(loaded.state, Some(live()));
    assert_eq!(loaded.participants, vec![student("s1", None)]);
    store.close().await;
}

both_backends!(
    room_state_round_trips_and_is_replaced_whole,
    participant_states_upsert_clear_and_load_by_id,
    clearing_the_room_forgets_its_state_and_no_other,
    a_failed_batch_keeps_the_previous_state,
);
