//! The class-wide teaching controls over real WebSockets: mute all, allow everyone to speak,
//! lecture and seminar mode, camera request/allow/stop, and the staff's attendance panel.

use lectern_proto::Role;
use lectern_tests::TestServer;
use serde_json::{Value, json};

fn roster_entry(snapshot: &Value, id: &str) -> Value {
    snapshot["roster"]
        .as_array()
        .and_then(|r| r.iter().find(|p| p["id"] == id).cloned())
        .unwrap_or_else(|| panic!("{id} not in {snapshot}"))
}

#[tokio::test]
async fn teaching_controls_reach_every_client_and_students_may_not_use_them() -> anyhow::Result<()>
{
    let s = TestServer::start_with(&[("LECTERN_ROOM_LATE_AFTER_SECS", "0")]).await;
    let room = "seminar-room";
    let mut grace = s.join(room, "grace", Role::Instructor).await;
    let mut ada = s.join(room, "ada", Role::Student).await; // in the lobby: never late
    grace.ok(json!({"type": "class_start"})).await?;
    ada.wait_for(|m| m["type"] == "snapshot").await?;
    let mut bob = s.join(room, "bob", Role::Student).await;
    let started = bob.welcome["snapshot"]["class_started_at"]
        .as_u64()
        .expect("a live class says when it started");

    // Students are refused every teaching control.
    for message in [
        json!({"type": "mute_all"}),
        json!({"type": "speak_all", "allowed": true}),
        json!({"type": "set_mode", "mode": "seminar"}),
        json!({"type": "camera_request", "participant_id": "bob"}),
        json!({"type": "camera_allow", "participant_id": "bob"}),
        json!({"type": "camera_stop", "participant_id": "bob"}),
        json!({"type": "attendance_get"}),
    ] {
        let refused = ada.request(message.clone()).await?;
        assert_eq!(refused["code"], "not_permitted", "{message}: {refused}");
    }

    let ack = grace.ok(json!({"type": "mute_all"})).await?;
    for c in [&mut ada, &mut bob] {
        let e = c.wait_event("all_muted").await?;
        assert_eq!(e["event"]["by"], "grace");
        assert_eq!(e["seq"], ack["seq"]);
    }

    grace
        .ok(json!({"type": "speak_all", "allowed": true}))
        .await?;
    for c in [&mut ada, &mut bob] {
        let e = c.wait_event("speak_all_changed").await?;
        assert_eq!(e["event"]["allowed"], true);
    }
    // The same value again: acknowledged without an event.
    let again = grace
        .ok(json!({"type": "speak_all", "allowed": true}))
        .await?;
    assert!(again.get("seq").is_none(), "{again}");

    grace
        .ok(json!({"type": "set_mode", "mode": "seminar"}))
        .await?;
    for c in [&mut ada, &mut bob] {
        let e = c.wait_event("mode_changed").await?;
        assert_eq!(e["event"]["mode"], "seminar");
    }
    let bad = grace
        .request(json!({"type": "set_mode", "mode": "circus"}))
        .await?;
    assert_eq!(bad["code"], "invalid_message");

    grace
        .ok(json!({"type": "camera_stop", "participant_id": "ada"}))
        .await?;
    assert_eq!(
        ada.wait_event("camera_stopped").await?["event"]["participant_id"],
        "ada"
    );
    grace
        .ok(json!({"type": "camera_request", "participant_id": "ada"}))
        .await?;
    let e = ada.wait_event("camera_requested").await?;
    assert_eq!(e["event"]["by"], "grace");
    grace
        .ok(json!({"type": "camera_allow", "participant_id": "bob"}))
        .await?;
    assert_eq!(
        bob.wait_event("camera_allowed").await?["event"]["participant_id"],
        "bob"
    );
    let refused = grace
        .request(json!({"type": "camera_request", "participant_id": "grace"}))
        .await?;
    assert_eq!(refused["code"], "not_permitted");

    // Someone joining now sees the room as it is.
    let cy = s.join(room, "cy", Role::Student).await;
    let snapshot = &cy.welcome["snapshot"];
    assert_eq!(snapshot["mode"], "seminar");
    assert_eq!(snapshot["speak_all"], true);
    assert_eq!(snapshot["class_started_at"], started);
    let me = roster_entry(snapshot, "cy");
    assert_eq!(me["camera_allowed"], true);
    assert_eq!(me["can_speak"], true);
    assert_eq!(roster_entry(snapshot, "ada")["hard_muted"], false);

    // Attendance: to the asker only, in order of first join.
    bob.ok(json!({"type": "leave"})).await?;
    bob.wait_closed().await?;
    grace.wait_event("participant_left").await?;
    let attendance = grace.request(json!({"type": "attendance_get"})).await?;
    assert_eq!(attendance["type"], "attendance", "{attendance}");
    assert_eq!(attendance["class_started_at"], started);
    let entries = attendance["entries"].as_array().expect("entries");
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["participant_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["grace", "ada", "bob", "cy"]);
    let present: Vec<bool> = entries
        .iter()
        .map(|e| e["present"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(present, [true, true, false, true]);
    assert_eq!(entries[0]["late"], false, "staff are never late");
    assert_eq!(entries[1]["late"], false, "in the lobby before the start");
    // With `late_after_secs = 0`, late is joining any time after the start.
    for entry in &entries[2..] {
        let joined = entry["first_joined_at"].as_u64().expect("joined");
        assert_eq!(entry["late"], joined > started, "{entry}");
    }
    assert!(entries[2]["last_left_at"].as_u64().is_some());
    assert!(entries[1]["last_left_at"].is_null());
    assert_eq!(entries[2]["intervals"], 1);
    // Nobody else got it.
    let marker = grace
        .ok(json!({"type": "chat_send", "text": "marker"}))
        .await?;
    ada.wait_for(|m| m["seq"] == marker["seq"]).await?;
    assert!(
        !ada.received.iter().any(|m| m["type"] == "attendance"),
        "a student received the attendance"
    );
    Ok(())
}
