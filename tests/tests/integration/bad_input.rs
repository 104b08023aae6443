//! Hostile and broken input: each gets a typed error, the connection and the room go on, and
//! only repeated abuse closes the connection.

use lectern_proto::Role;
use lectern_tests::{Client, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_frames_get_typed_errors_and_the_connection_survives() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_LIMITS_MAX_FRAME_BYTES", "4096"),
        ("LECTERN_LIMITS_MAX_CHAT_CHARS", "50"),
    ])
    .await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    let mut bob = s.join("r", "bob", Role::Student).await;

    let cases: Vec<(Message, &str)> = vec![
        (Message::text("{not json"), "invalid_json"),
        (Message::text("[1,2,3]"), "invalid_json"),
        (
            Message::text(r#"{"type":"launch_rockets"}"#),
            "unknown_type",
        ),
        (Message::text(r#"{"no_type":true}"#), "unknown_type"),
        (Message::text(r#"{"type":"chat_send"}"#), "invalid_message"),
        (
            Message::text(r#"{"type":"chat_send","text":5}"#),
            "invalid_message",
        ),
        (
            Message::text(r#"{"type":"hand_raise","extra":1}"#),
            "invalid_message",
        ),
        (Message::binary(vec![0u8, 159, 146, 150]), "invalid_json"),
        (Message::text("x".repeat(5000)), "frame_too_large"),
        (
            Message::text(json!({"type":"hello","protocol_version":1,"token":"t"}).to_string()),
            "hello_required",
        ),
    ];
    for (message, code) in cases {
        ada.send_raw(message).await?;
        let e = ada.wait_for(|m| m["type"] == "error").await?;
        assert_eq!(e["code"], code, "{e}");
    }
    // The request id is echoed even when the message is refused.
    let e = ada.request(json!({"type": "launch_rockets"})).await?;
    assert_eq!(e["code"], "unknown_type");
    // Chat limits.
    let e = ada
        .request(json!({"type": "chat_send", "text": "x".repeat(51)}))
        .await?;
    assert_eq!(e["code"], "chat_too_long");
    let e = ada
        .request(json!({"type": "chat_send", "text": "   "}))
        .await?;
    assert_eq!(e["code"], "chat_empty");
    // Staff-only actions.
    let e = ada
        .request(json!({"type": "mute", "participant_id": "bob"}))
        .await?;
    assert_eq!(e["code"], "not_permitted");

    // After all of that the connection still works and the room is unharmed.
    ada.ok(json!({"type": "chat_send", "text": "still here"}))
        .await?;
    bob.wait_for(|m| m["event"]["message"]["text"] == "still here")
        .await?;
    assert!(!ada.closed);
    Ok(())
}

#[tokio::test]
async fn chat_rate_limit_and_repeated_abuse() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "1"),
        ("LECTERN_LIMITS_CHAT_BURST", "3"),
        ("LECTERN_LIMITS_ABUSE_STRIKES", "10"),
    ])
    .await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let reply = ada
            .request(json!({"type": "chat_send", "text": format!("spam {i}")}))
            .await?;
        codes.push(
            reply["type"].as_str().unwrap_or_default().to_owned()
                + ":"
                + reply["code"].as_str().unwrap_or_default(),
        );
    }
    assert_eq!(&codes[..3], ["ack:", "ack:", "ack:"]);
    assert!(
        codes[3..].iter().all(|c| c == "error:rate_limited"),
        "{codes:?}"
    );

    // A flood of garbage closes the connection with reason abuse; others are unaffected.
    let mut bob = s.join("r", "bob", Role::Student).await;
    for _ in 0..30 {
        if bob.send_text("garbage".into()).await.is_err() {
            break;
        }
    }
    let closing = bob.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "abuse");
    bob.wait_closed().await?;
    assert_eq!(s.metric("lectern_abuse_closed_total").await, 1);
    let mut carol = s.join("r", "carol", Role::Student).await;
    carol.ok(json!({"type": "hand_raise"})).await?;
    Ok(())
}

#[tokio::test]
async fn hello_problems_close_the_connection_with_a_reason() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_LIMITS_HELLO_TIMEOUT_SECS", "1")]).await;
    // Not a hello first.
    let mut c = Client::connect(s.addr, None).await?;
    c.send(&json!({"type": "hand_raise"})).await?;
    let e = c.wait_for(|m| m["type"] == "error").await?;
    assert_eq!(e["code"], "hello_required");
    assert_eq!(
        c.wait_for(|m| m["type"] == "closing").await?["reason"],
        "handshake_failed"
    );
    // Wrong protocol version.
    let mut c = Client::connect(s.addr, None).await?;
    c.send(&json!({"type": "hello", "protocol_version": 99, "token": "x"}))
        .await?;
    assert_eq!(
        c.wait_for(|m| m["type"] == "error").await?["code"],
        "unsupported_version"
    );
    // Silence: the hello deadline passes.
    let mut c = Client::connect(s.addr, None).await?;
    assert_eq!(
        c.wait_for(|m| m["type"] == "error").await?["code"],
        "hello_required"
    );
    c.wait_closed().await?;
    Ok(())
}

#[tokio::test]
async fn full_room_refuses_politely() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_MAX_PARTICIPANTS", "2")]).await;
    let _a = s.join("r", "a", Role::Instructor).await;
    let _b = s.join("r", "b", Role::Student).await;
    let mut c = Client::connect(s.addr, None).await?;
    let err = c
        .hello(&s.token("r", "c", "C", Role::Student), None)
        .await
        .expect_err("room is full");
    assert!(err.to_string().contains("room_full"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_stalling_the_room() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_LIMITS_OUTBOUND_QUEUE", "8"),
        ("LECTERN_LIMITS_MAX_CHAT_CHARS", "60000"),
        ("LECTERN_LIMITS_MAX_FRAME_BYTES", "65536"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "10000"),
        ("LECTERN_LIMITS_CHAT_BURST", "10000"),
        ("LECTERN_LIMITS_FRAMES_PER_SECOND", "10000"),
        ("LECTERN_LIMITS_FRAMES_BURST", "10000"),
    ])
    .await;
    let mut grace = s.join("r", "grace", Role::Instructor).await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    // Sleepy joins and then never reads again: its socket buffers fill, then its queue.
    let sleepy = s.join("r", "sleepy", Role::Student).await;
    // Ada keeps reading throughout.
    let ada_reads = tokio::spawn(async move {
        ada.wait_for(|m| m["event"]["message"]["text"] == "done")
            .await?;
        anyhow::Ok(ada)
    });
    let big = "x".repeat(50_000);
    let mut sent = 0;
    for _ in 0..400 {
        grace.ok(json!({"type": "chat_send", "text": big})).await?;
        sent += 1;
        if s.metric("lectern_slow_clients_dropped_total").await >= 1 {
            break;
        }
    }
    grace
        .ok(json!({"type": "chat_send", "text": "done"}))
        .await?;
    let ada = ada_reads.await??;
    assert_eq!(
        s.metric("lectern_slow_clients_dropped_total").await,
        1,
        "after {sent} messages"
    );
    // Ada got every message, and the room went on.
    assert_eq!(ada.chat_texts().len(), sent + 1);
    let left = grace
        .wait_for(|m| {
            m["event"]["kind"] == "participant_connection"
                && m["event"]["participant_id"] == "sleepy"
        })
        .await?;
    assert_eq!(left["event"]["connected"], false);
    drop(sleepy);
    Ok(())
}
