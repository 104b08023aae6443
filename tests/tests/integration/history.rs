//! Chat scroll-back: `chat_history` (answered by `chat_page`) reads older messages from the store, with the same
//! visibility as live delivery.

use lectern_proto::Role;
use lectern_tests::{Client, TestServer};
use serde_json::{Value, json};

/// The texts of a `chat_page` reply, oldest first.
fn texts(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn history(client: &mut Client, before_seq: u64, limit: u64) -> anyhow::Result<Value> {
    let reply = client
        .request(json!({"type": "chat_history", "before_seq": before_seq, "limit": limit}))
        .await?;
    anyhow::ensure!(reply["type"] == "chat_page", "refused: {reply}");
    Ok(reply)
}

#[tokio::test]
async fn scroll_back_pages_through_older_chat_with_live_visibility() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_ROOM_SNAPSHOT_CHAT", "3"),
        ("LECTERN_LIMITS_CHAT_BURST", "50"),
    ])
    .await;
    let mut grace = s.join("r", "grace", Role::Instructor).await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    let mut bob = s.join("r", "bob", Role::Student).await;
    // Eight public messages, a private question from Ada to staff, a staff reply to Ada, and
    // a public message the instructor deletes.
    for n in 1..=8 {
        grace
            .ok(json!({"type": "chat_send", "text": format!("public {n}")}))
            .await?;
    }
    ada.ok(json!({"type": "chat_send", "to": {"kind": "staff"}, "text": "ada to staff"}))
        .await?;
    grace
        .ok(json!({"type": "chat_send", "to": {"kind": "participant", "id": "ada"}, "text": "staff to ada"}))
        .await?;
    let deleted = grace
        .ok(json!({"type": "chat_send", "text": "oops"}))
        .await?;
    grace
        .ok(json!({"type": "chat_delete", "seq": deleted["seq"]}))
        .await?;
    grace
        .ok(json!({"type": "chat_send", "text": "public 9"}))
        .await?;

    // A late student's snapshot holds only the newest three readable messages; scroll-back
    // pages through the rest, newest pages first, each page oldest first.
    let mut cara = s.join("r", "cara", Role::Student).await;
    let snapshot_chat = cara.received[0]["snapshot"]["chat"].clone();
    let shown: Vec<String> = snapshot_chat
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(shown, ["public 7", "public 8", "public 9"]);
    let oldest = snapshot_chat[0]["seq"].as_u64().unwrap_or_default();
    let page = history(&mut cara, oldest, 4).await?;
    assert_eq!(
        texts(&page),
        ["public 3", "public 4", "public 5", "public 6"]
    );
    assert_eq!(page["complete"], false);
    let next = page["messages"][0]["seq"].as_u64().unwrap_or_default();
    let page = history(&mut cara, next, 4).await?;
    assert_eq!(
        texts(&page),
        ["public 1", "public 2"],
        "private and deleted left out"
    );
    assert_eq!(page["complete"], true);

    // Ada reads her own private exchange; Bob does not; staff read both.
    let end = 10_000;
    let ada_sees = texts(&history(&mut ada, end, 200).await?);
    assert!(
        ada_sees.contains(&"ada to staff".to_owned())
            && ada_sees.contains(&"staff to ada".to_owned())
    );
    let bob_sees = texts(&history(&mut bob, end, 200).await?);
    assert!(!bob_sees.iter().any(|t| t.contains("ada")), "{bob_sees:?}");
    assert_eq!(
        bob_sees.len(),
        9,
        "the nine public messages left: {bob_sees:?}"
    );
    let staff_sees = texts(&history(&mut grace, end, 200).await?);
    assert_eq!(staff_sees.len(), 11, "{staff_sees:?}");
    assert!(
        !staff_sees.contains(&"oops".to_owned()),
        "deleted messages stay hidden"
    );

    // Bad limits are typed errors and the connection goes on.
    for limit in [0, 201] {
        let refused = bob
            .request(json!({"type": "chat_history", "before_seq": 5, "limit": limit}))
            .await?;
        assert_eq!(refused["code"], "invalid_message", "{refused}");
    }
    // So are sequence numbers past what the store keeps (seqs are unsigned 64-bit on the wire),
    // and they are not server errors: no `internal`, nothing counted as a store failure.
    for before_seq in [1u64 << 63, u64::MAX] {
        let refused = bob
            .request(json!({"type": "chat_history", "before_seq": before_seq}))
            .await?;
        assert_eq!(refused["code"], "invalid_message", "{refused}");
    }
    let default_limit = bob
        .request(json!({"type": "chat_history", "before_seq": end}))
        .await?;
    assert_eq!(texts(&default_limit).len(), 9);
    Ok(())
}

#[tokio::test]
async fn the_lobby_gets_no_chat_history() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let mut grace = s.join("r", "grace", Role::Instructor).await;
    grace
        .ok(json!({"type": "chat_send", "text": "before class"}))
        .await?;
    let mut early = s.join("r", "early", Role::Student).await;
    let refused = early
        .request(json!({"type": "chat_history", "before_seq": 100}))
        .await?;
    assert_eq!(refused["code"], "in_lobby", "{refused}");
    Ok(())
}

/// Scroll-back pages go out through the room's one send path: a page that finds the reader's
/// queue full closes the reader as a slow consumer, like a broadcast would (it used to be
/// dropped silently, leaving the reader waiting for pages that never came).
#[tokio::test]
async fn a_reader_who_takes_no_pages_is_closed_as_a_slow_consumer() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_ROOM_SNAPSHOT_CHAT", "1"),
        ("LECTERN_LIMITS_OUTBOUND_QUEUE", "4"),
        ("LECTERN_LIMITS_MAX_CHAT_CHARS", "20000"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "10000"),
        ("LECTERN_LIMITS_CHAT_BURST", "10000"),
        ("LECTERN_LIMITS_FRAMES_PER_SECOND", "10000"),
        ("LECTERN_LIMITS_FRAMES_BURST", "10000"),
        // Only a full queue can close the reader within the test: the writer's own checks for
        // a socket that takes no data (write timeout, unanswered ping) are far off.
        ("LECTERN_WEBSOCKET_WRITE_TIMEOUT_SECS", "600"),
        ("LECTERN_WEBSOCKET_PING_INTERVAL_SECS", "600"),
        ("LECTERN_WEBSOCKET_IDLE_TIMEOUT_SECS", "1200"),
    ])
    .await;
    let mut grace = s.join("r", "grace", Role::Instructor).await;
    // 100 messages of 20 KB: each page of them is 2 MB, so socket buffers fill after a few.
    let big = "x".repeat(20_000);
    for _ in 0..100 {
        grace.ok(json!({"type": "chat_send", "text": big})).await?;
    }
    let mut sleepy = s.join("r", "sleepy", Role::Student).await;
    let mut asked = 0;
    while asked < 200 && s.metric("lectern_slow_clients_dropped_total").await == 0 {
        let request = json!({"type": "chat_history", "before_seq": 1_000_000, "limit": 100});
        if sleepy.send(&request).await.is_err() {
            break;
        }
        asked += 1;
    }
    lectern_tests::wait_until("the reader to be closed as a slow consumer", || async {
        s.metric("lectern_slow_clients_dropped_total").await == 1
    })
    .await?;
    // The room heard that the reader is gone.
    let gone = grace
        .wait_for(|m| {
            m["event"]["kind"] == "participant_connection"
                && m["event"]["participant_id"] == "sleepy"
        })
        .await?;
    assert_eq!(gone["event"]["connected"], false, "after {asked} requests");
    drop(sleepy);
    Ok(())
}
