//! A three-person class from lobby to moderation, over real WebSockets.

use lectern_proto::Role;
use lectern_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn three_person_class() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let room = "algebra";

    // Students arriving early wait in the lobby and cannot chat.
    let mut ada = s.join(room, "ada", Role::Student).await;
    assert_eq!(ada.welcome["snapshot"]["class_state"], "not_started");
    let me = ada.welcome["snapshot"]["roster"]
        .as_array()
        .and_then(|r| r.iter().find(|p| p["id"] == "ada").cloned())
        .expect("ada in roster");
    assert_eq!(me["in_lobby"], true);
    let refused = ada
        .request(json!({"type": "chat_send", "text": "hello?"}))
        .await?;
    assert_eq!(refused["code"], "in_lobby");

    let mut bob = s.join(room, "bob", Role::Student).await;
    let mut grace = s.join(room, "grace", Role::Instructor).await;
    assert_eq!(grace.welcome["role"], "instructor");

    // Staff start the class: the lobby is let in and receives a full snapshot.
    grace.ok(json!({"type": "class_start"})).await?;
    for student in [&mut ada, &mut bob] {
        student.wait_event("class_started").await?;
        let snap = student.wait_for(|m| m["type"] == "snapshot").await?;
        assert_eq!(snap["snapshot"]["class_state"], "live");
    }

    // Public chat reaches everyone exactly once.
    let ack = ada
        .ok(json!({"type": "chat_send", "text": "Good morning"}))
        .await?;
    let chat_seq = ack["seq"].as_u64().expect("chat ack carries its seq");
    for c in [&mut bob, &mut grace] {
        let e = c.wait_event("chat").await?;
        assert_eq!(e["event"]["message"]["text"], "Good morning");
        assert_eq!(e["seq"], chat_seq);
    }

    // A private question to staff: the instructor sees it, the other student does not.
    bob.ok(json!({"type": "chat_send", "to": {"kind": "staff"}, "text": "I am lost"}))
        .await?;
    let private = grace.wait_event("chat").await?;
    assert_eq!(private["event"]["message"]["to"]["kind"], "staff");
    // Staff reply to one student only.
    grace
        .ok(json!({"type": "chat_send", "to": {"kind": "participant", "id": "bob"}, "text": "See slide 3"}))
        .await?;
    bob.wait_for(|m| m["event"]["message"]["text"] == "See slide 3")
        .await?;
    // A public marker message: by the time Ada has it, she would have had the private ones.
    grace
        .ok(json!({"type": "chat_send", "text": "marker"}))
        .await?;
    ada.wait_for(|m| m["event"]["message"]["text"] == "marker")
        .await?;
    assert_eq!(
        ada.chat_texts(),
        vec!["Good morning", "marker"],
        "ada saw a private message"
    );
    // Students may not whisper to one participant.
    let refused = ada
        .request(json!({"type": "chat_send", "to": {"kind": "participant", "id": "bob"}, "text": "psst"}))
        .await?;
    assert_eq!(refused["code"], "not_permitted");

    // Hands: ordered by raise time, visible to all; call on the next grants speaking.
    bob.ok(json!({"type": "hand_raise"})).await?;
    ada.ok(json!({"type": "hand_raise"})).await?;
    let first = grace.wait_event("hand_raised").await?;
    let second = grace.wait_event("hand_raised").await?;
    assert_eq!(first["event"]["participant_id"], "bob");
    assert_eq!(second["event"]["participant_id"], "ada");
    assert!(first["seq"].as_u64() < second["seq"].as_u64());
    let refused = ada.request(json!({"type": "call_on"})).await?;
    assert_eq!(refused["code"], "not_permitted");
    grace.ok(json!({"type": "call_on"})).await?;
    let called = bob.wait_event("called_on").await?;
    assert_eq!(called["event"]["participant_id"], "bob");
    grace.ok(json!({"type": "call_on"})).await?;
    ada.wait_for(|m| m["event"]["kind"] == "called_on" && m["event"]["participant_id"] == "ada")
        .await?;
    let empty = grace.request(json!({"type": "call_on"})).await?;
    assert_eq!(empty["code"], "queue_empty");

    // Moderation: delete a message, lock chat, hard-mute, remove.
    grace
        .ok(json!({"type": "chat_delete", "seq": chat_seq}))
        .await?;
    let deleted = ada.wait_event("chat_deleted").await?;
    assert_eq!(deleted["event"]["seq"], chat_seq);
    grace
        .ok(json!({"type": "chat_lock", "locked": true}))
        .await?;
    ada.wait_event("chat_locked").await?;
    let refused = ada
        .request(json!({"type": "chat_send", "text": "hey"}))
        .await?;
    assert_eq!(refused["code"], "chat_locked");
    grace
        .ok(json!({"type": "chat_send", "text": "staff may still talk"}))
        .await?;
    grace
        .ok(json!({"type": "mute", "participant_id": "ada"}))
        .await?;
    let muted = bob.wait_event("muted").await?;
    assert_eq!(muted["event"]["participant_id"], "ada");
    grace
        .ok(json!({"type": "remove", "participant_id": "bob", "reason": "test"}))
        .await?;
    let closing = bob.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "removed");
    bob.wait_closed().await?;
    let left = ada.wait_event("participant_left").await?;
    assert_eq!(left["event"]["participant_id"], "bob");
    assert_eq!(left["event"]["reason"], "removed");
    // A removed student cannot come straight back.
    let token = s.token(room, "bob", "Bob", Role::Student);
    let mut again = lectern_tests::Client::connect(s.addr, None).await?;
    let err = again.hello(&token, None).await.unwrap_err();
    assert!(err.to_string().contains("not_permitted"), "{err}");

    // The stored record: attendance and moderation made it to the database.
    s.server.shutdown().await;
    let store = lectern_store::Store::open(&format!(
        "sqlite://{}",
        s.dir.path().join("lectern.db").display()
    ))
    .await?;
    let room_id = lectern_proto::RoomId::new(room);
    let moderation = store.moderation_log(&room_id).await?;
    let actions: Vec<&str> = moderation.iter().map(|m| m.action.as_str()).collect();
    for action in ["delete_chat", "lock_chat", "mute", "remove"] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let attendance = store.attendance(&room_id).await?;
    for who in ["ada", "bob", "grace"] {
        assert!(
            attendance
                .iter()
                .any(|a| a.participant_id.as_str() == who && a.left_at.is_some()),
            "{who} has no closed attendance interval: {attendance:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn stage_and_speaking_permissions() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let mut grace = s.join("physics", "grace", Role::Instructor).await;
    let mut ada = s.join("physics", "ada", Role::Student).await;
    let mut obs = s.join("physics", "olga", Role::Observer).await;
    assert_eq!(ada.welcome["snapshot"]["class_state"], "live");

    let refused = ada
        .request(json!({"type": "stage_grant", "participant_id": "ada"}))
        .await?;
    assert_eq!(refused["code"], "not_permitted");
    grace
        .ok(json!({"type": "stage_grant", "participant_id": "ada"}))
        .await?;
    let granted = obs.wait_event("stage_granted").await?;
    assert_eq!(granted["event"]["participant_id"], "ada");
    grace.ok(json!({"type": "stage_revoke"})).await?;
    ada.wait_event("stage_revoked").await?;

    // Observers watch only.
    for message in [
        json!({"type": "chat_send", "text": "hi"}),
        json!({"type": "hand_raise"}),
        json!({"type": "react", "reaction": "clap"}),
    ] {
        let refused = obs.request(message).await?;
        assert_eq!(refused["code"], "not_permitted");
    }
    // Reactions are ephemeral and reach the others.
    ada.ok(json!({"type": "react", "reaction": "thumbs_up"}))
        .await?;
    let r = grace.wait_for(|m| m["type"] == "reaction").await?;
    assert_eq!(r["participant_id"], "ada");
    assert!(r.get("seq").is_none());
    Ok(())
}

#[tokio::test]
async fn leave_is_answered_then_closed_normally() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let mut teacher = s.join("r", "tina", Role::Instructor).await;

    // With a request id: the ack, then `closing` with reason `left`, then close code 1000.
    let mut ada = s.join("r", "ada", Role::Student).await;
    let ack = ada.request(json!({"type": "leave"})).await?;
    assert_eq!(ack["type"], "ack", "{ack}");
    let closing = ada.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "left", "{closing}");
    ada.wait_closed().await?;
    assert_eq!(ada.close_code, Some(1000), "{:?}", ada.received);

    // Without one: no ack (nothing to match it to), the same `closing` and close code.
    let mut bob = s.join("r", "bob", Role::Student).await;
    bob.send(&json!({"type": "leave"})).await?;
    let closing = bob.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "left", "{closing}");
    bob.wait_closed().await?;
    assert_eq!(bob.close_code, Some(1000));

    for who in ["ada", "bob"] {
        let left = teacher
            .wait_for(|m| {
                m["type"] == "event"
                    && m["event"]["kind"] == "participant_left"
                    && m["event"]["participant_id"] == who
            })
            .await?;
        assert_eq!(left["event"]["reason"], "left", "{left}");
    }
    Ok(())
}
