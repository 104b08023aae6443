//! Reconnecting within the grace period: exactly the missed events, once each, and the
//! participant's hand, stage and mute state kept.

use lectern_proto::Role;
use lectern_tests::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn reconnect_replays_missed_events_once() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let room = "history";
    let mut grace = s.join(room, "grace", Role::Instructor).await;
    let mut ada = s.join(room, "ada", Role::Student).await;
    let mut bob = s.join(room, "bob", Role::Student).await;

    // Ada raises her hand first, Bob second; Ada holds the stage and Bob is hard-muted.
    ada.ok(json!({"type": "hand_raise"})).await?;
    bob.ok(json!({"type": "hand_raise"})).await?;
    grace
        .ok(json!({"type": "stage_grant", "participant_id": "ada"}))
        .await?;
    grace
        .ok(json!({"type": "chat_send", "text": "before"}))
        .await?;
    ada.wait_for(|m| m["event"]["message"]["text"] == "before")
        .await?;
    let seen = ada.last_seq();

    // Ada's network drops.
    ada.drop_abruptly();
    let conn = grace.wait_event("participant_connection").await?;
    assert_eq!(conn["event"]["connected"], false);

    // While she is away: three chats, one of them private to staff, and Bob is muted.
    grace
        .ok(json!({"type": "chat_send", "text": "missed 1"}))
        .await?;
    bob.ok(json!({"type": "chat_send", "text": "missed 2"}))
        .await?;
    bob.ok(json!({"type": "chat_send", "to": {"kind": "staff"}, "text": "private"}))
        .await?;
    grace
        .ok(json!({"type": "mute", "participant_id": "bob"}))
        .await?;
    grace
        .ok(json!({"type": "chat_send", "text": "missed 3"}))
        .await?;

    // She comes back with her token and the last sequence number she saw.
    let token = s.token(room, "ada", "Ada", Role::Student);
    let mut ada = Client::connect(s.addr, Some(room)).await?;
    let welcome = ada.hello(&token, Some(seen)).await?;
    assert_eq!(welcome["rejoined"], true);
    assert!(
        welcome.get("snapshot").is_none(),
        "expected a replay, got a snapshot"
    );
    let done = ada.wait_for(|m| m["type"] == "replay_done").await?;
    assert_eq!(ada.chat_texts(), vec!["missed 1", "missed 2", "missed 3"]);
    let seqs: Vec<u64> = ada
        .received
        .iter()
        .filter(|m| m["type"] == "event")
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert!(
        seqs.iter().all(|s| *s > seen),
        "replayed an event she had: {seqs:?}"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "not strictly increasing: {seqs:?}"
    );
    assert_eq!(done["replayed"].as_u64(), Some(seqs.len() as u64));
    assert!(
        ada.received.iter().any(|m| m["event"]["kind"] == "muted"),
        "the mute event was not replayed"
    );

    // New events keep flowing, and nothing is duplicated.
    grace
        .ok(json!({"type": "chat_send", "text": "after"}))
        .await?;
    ada.wait_for(|m| m["event"]["message"]["text"] == "after")
        .await?;
    assert_eq!(
        ada.chat_texts(),
        vec!["missed 1", "missed 2", "missed 3", "after"]
    );

    // Her place in the queue and the stage survived; a fresh observer's snapshot shows it.
    let olga = s.join(room, "olga", Role::Observer).await;
    let snap = &olga.welcome["snapshot"];
    assert_eq!(snap["hand_queue"][0]["participant_id"], "ada");
    assert_eq!(snap["hand_queue"][1]["participant_id"], "bob");
    assert_eq!(snap["presenter"], "ada");
    let roster = snap["roster"].as_array().expect("roster");
    let bob_info = roster.iter().find(|p| p["id"] == "bob").expect("bob");
    assert_eq!(bob_info["hard_muted"], true);

    // Bob drops too and comes back: his hard mute survives the reconnect.
    bob.drop_abruptly();
    grace
        .wait_for(|m| {
            m["event"]["kind"] == "participant_connection" && m["event"]["participant_id"] == "bob"
        })
        .await?;
    let token = s.token(room, "bob", "Bob", Role::Student);
    let mut bob = Client::connect(s.addr, None).await?;
    let welcome = bob.hello(&token, None).await?;
    assert_eq!(welcome["rejoined"], true);
    let roster = welcome["snapshot"]["roster"]
        .as_array()
        .expect("roster")
        .clone();
    let me = roster.iter().find(|p| p["id"] == "bob").expect("bob");
    assert_eq!(me["hard_muted"], true);
    assert_eq!(me["can_speak"], false);
    Ok(())
}

#[tokio::test]
async fn grace_period_expiry_removes_the_participant() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_ROOM_GRACE_SECS", "1"),
    ])
    .await;
    let mut grace = s.join("r", "grace", Role::Instructor).await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    ada.ok(json!({"type": "hand_raise"})).await?;
    ada.drop_abruptly();
    let left = grace.wait_event("participant_left").await?;
    assert_eq!(left["event"]["reason"], "timed_out");
    let olga = s.join("r", "olga", Role::Observer).await;
    assert_eq!(olga.welcome["snapshot"]["hand_queue"], json!([]));
    Ok(())
}

#[tokio::test]
async fn a_second_connection_replaces_the_first() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let mut first = s.join("r", "ada", Role::Student).await;
    let second = s.join("r", "ada", Role::Student).await;
    assert_eq!(second.welcome["rejoined"], true);
    let closing = first.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "replaced");
    Ok(())
}
