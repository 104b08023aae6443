//! The admin API's actions on a live room on one node (issue 14): end the class, admit from the
//! lobby, remove a participant, each seen by real WebSocket clients; typed statuses for a room
//! that is not running, an unknown participant, an instructor, and bad input.

use lectern_proto::Role;
use serde_json::{Value, json};

use crate::api::{Api, Reply, call};

async fn post(api: &Api, path: &str, body: &Value) -> Reply {
    api.send("POST", path, body).await
}

#[tokio::test]
async fn rest_ends_admits_and_removes_in_a_live_room() -> anyhow::Result<()> {
    let api = Api::start().await;
    let s = &api.s;
    let room = "physics-101";
    let base = format!("/api/v1/rooms/{room}");

    // Not running yet: nothing to act on.
    let r = post(&api, &format!("{base}/end"), &json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (404, "not_found".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("not running"), "{}", r.body);

    let mut ada = s.join(room, "ada", Role::Student).await;
    let mut grace = s.join(room, "grace", Role::Instructor).await;
    assert_eq!(ada.welcome["snapshot"]["class_state"], "not_started");

    // Admit: Ada leaves the lobby as if staff had admitted her (no `by`), with a snapshot.
    let r = post(
        &api,
        &format!("{base}/admit"),
        &json!({"participant": "ada"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"room": room, "action": "admit", "participant": "ada"})
    );
    let admitted = ada.wait_event("admitted").await?;
    assert_eq!(admitted["event"]["participant_id"], "ada");
    assert!(admitted["event"].get("by").is_none(), "{admitted}");
    let snap = ada.wait_for(|m| m["type"] == "snapshot").await?;
    let me = snap["snapshot"]["roster"]
        .as_array()
        .and_then(|r| r.iter().find(|p| p["id"] == "ada").cloned())
        .expect("ada in the roster");
    assert_eq!(me["in_lobby"], false);
    grace.wait_event("admitted").await?;
    // Safe to repeat; someone who is not there is a 404.
    let r = post(
        &api,
        &format!("{base}/admit"),
        &json!({"participant": "ada"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &api,
        &format!("{base}/admit"),
        &json!({"participant": "zed"}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "not_found".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("zed"), "{}", r.body);

    // Remove: Bob is sent away with `removed`; staff see him leave; he cannot come back.
    grace.ok(json!({"type": "class_start"})).await?;
    let mut bob = s.join(room, "bob", Role::Student).await;
    let r = post(
        &api,
        &format!("{base}/remove"),
        &json!({"participant": "bob"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let closing = bob.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "removed");
    bob.wait_closed().await?;
    let left = grace
        .wait_for(|m| {
            m["event"]["kind"] == "participant_left" && m["event"]["participant_id"] == "bob"
        })
        .await?;
    assert_eq!(left["event"]["reason"], "removed");
    let r = post(
        &api,
        &format!("{base}/remove"),
        &json!({"participant": "bob"}),
    )
    .await;
    assert_eq!(r.status, 200, "removing again is safe: {}", r.body);
    let r = post(
        &api,
        &format!("{base}/remove"),
        &json!({"participant": "grace"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "conflict".into()), "{}", r.body);

    // End: the class ends for everyone; Ada is sent away with `class_ended`, staff stay.
    let r = post(&api, &format!("{base}/end"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ended = grace.wait_event("class_ended").await?;
    assert!(ended["event"].get("by").is_none(), "{ended}");
    let closing = ada.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "class_ended");
    ada.wait_closed().await?;
    let r = post(&api, &format!("{base}/end"), &json!({})).await;
    assert_eq!(r.status, 200, "ending again is safe: {}", r.body);
    assert!(!grace.closed);
    Ok(())
}

#[tokio::test]
async fn room_actions_refuse_bad_input_with_typed_statuses() -> anyhow::Result<()> {
    let api = Api::start().await;
    let s = &api.s;
    let room = "chemistry";
    let _grace = s.join(room, "grace", Role::Instructor).await;
    let admit = format!("/api/v1/rooms/{room}/admit");
    for body in [
        json!({}),
        json!({"participant": ""}),
        json!({"participant": "   "}),
        json!({"participant": 5}),
        json!({"participant": "a\u{7}b"}),
        json!({"participant": "x".repeat(129)}),
        json!({"participant": "ada", "extra": true}),
        json!([1, 2]),
    ] {
        let r = post(&api, &admit, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_input".into()),
            "{body}: {}",
            r.body
        );
    }
    let r = api.csv(&admit, "participant\nada\n").await;
    assert!(matches!(r.status, 400 | 415), "{}", r.body);
    // A room id with a control character, a room id too long.
    let r = post(&api, "/api/v1/rooms/a%07b/end", &json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input".into()),
        "{}",
        r.body
    );
    let long = "r".repeat(129);
    let r = post(&api, &format!("/api/v1/rooms/{long}/end"), &json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // No key.
    let r = call(
        s.addr,
        "POST",
        &format!("/api/v1/rooms/{room}/end"),
        None,
        None,
    )
    .await?;
    assert_eq!(r.status, 401, "{}", r.body);
    // Still serving.
    let r = post(&api, &format!("/api/v1/rooms/{room}/end"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    Ok(())
}
