//! A live class survives `kill -9` of its server: the room created again (by the same server
//! restarted on its SQLite file, or by a new server on the same PostgreSQL, as another node
//! would) restores the class state, the stage, the hand queue and the hard mutes, and the
//! clients that reconnect see them in their welcome. A room closed for being empty keeps none
//! of it.
//!
//! The killed server is this test binary re-run as a child process (`server_child`).

use lectern_proto::Role;
use lectern_server::auth::Authenticator;
use lectern_tests::{Client, PostgresSchema, test_config};
use serde_json::{Value, json};

const CHILD_TEST: &str = "restore::server_child";
/// The store URL the parent gives its child server, if not its SQLite file.
const STORE_URL_VAR: &str = "LECTERN_TEST_CHILD_STORE_URL";
const ROOM: &str = "restored-class";

/// Run as a child: see [`lectern_tests::serve_as_child`]. Classes wait for staff to start them.
#[tokio::test]
#[ignore = "run by the restore tests as a child process"]
async fn server_child() {
    let url = std::env::var(STORE_URL_VAR).unwrap_or_default();
    let mut extra = vec![("LECTERN_ROOM_AUTO_START", "false")];
    if !url.is_empty() {
        extra.push(("LECTERN_STORE_URL", &url));
    }
    lectern_tests::serve_as_child(&extra).await;
}

#[tokio::test]
async fn a_class_comes_back_after_kill9_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The same server restarted on the same data directory.
    run(dir.path(), dir.path(), &[]).await
}

#[tokio::test]
async fn a_class_comes_back_on_a_new_node_after_kill9_on_postgres() -> anyhow::Result<()> {
    let Some(schema) = PostgresSchema::create().await? else {
        return Ok(());
    };
    let (first, second) = (tempfile::tempdir()?, tempfile::tempdir()?);
    // A second server with its own, empty data directory: all it knows is in PostgreSQL.
    let result = run(
        first.path(),
        second.path(),
        &[(STORE_URL_VAR, schema.url())],
    )
    .await;
    schema.remove().await?;
    result
}

struct Members {
    auth: Authenticator,
}

impl Members {
    async fn join(
        &self,
        addr: std::net::SocketAddr,
        sub: &str,
        role: Role,
        last_seq: Option<u64>,
    ) -> anyhow::Result<Client> {
        let token = self
            .auth
            .mint(ROOM, sub, &format!("Name of {sub}"), role, 600)?;
        let mut client = Client::connect(addr, None).await?;
        client.hello(&token, last_seq).await?;
        Ok(client)
    }
}

async fn run(
    first_dir: &std::path::Path,
    second_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> anyhow::Result<()> {
    let members = Members {
        auth: Authenticator::new(
            &test_config(first_dir, &[]).auth,
            lectern_tests::SECRET.as_bytes().to_vec(),
        )?,
    };
    let (mut child, addr) = lectern_tests::spawn_child_server_with_env(CHILD_TEST, first_dir, env)?;
    let before = async {
        let mut t = members.join(addr, "t", Role::Instructor, None).await?;
        let mut students = Vec::new();
        for s in ["s1", "s2", "s3"] {
            let client = members.join(addr, s, Role::Student, None).await?;
            assert_eq!(client.welcome["snapshot"]["class_state"], "not_started");
            students.push(client);
        }
        t.ok(json!({"type": "class_start"})).await?;
        t.ok(json!({"type": "stage_grant", "participant_id": "s1"}))
            .await?;
        students[1].ok(json!({"type": "hand_raise"})).await?;
        students[2].ok(json!({"type": "hand_raise"})).await?;
        let muted = t
            .ok(json!({"type": "mute", "participant_id": "s3"}))
            .await?;
        let last_seq = muted["seq"].as_u64().expect("mute has a seq");
        // Everyone saw the mute before the server died.
        students[1].wait_event("muted").await?;
        anyhow::Ok(last_seq)
    }
    .await;
    child.kill()?;
    let status = child.wait()?;
    assert!(!status.success(), "the child was supposed to be killed");
    let last_seq = before?;

    let (mut child, addr) =
        lectern_tests::spawn_child_server_with_env(CHILD_TEST, second_dir, env)?;
    let result = async {
        // s2 reconnects as the web client does, with the last seq it saw.
        let s2 = members
            .join(addr, "s2", Role::Student, Some(last_seq))
            .await?;
        let welcome = &s2.welcome;
        assert_eq!(welcome["rejoined"], true, "{welcome}");
        let snap = &welcome["snapshot"];
        assert_eq!(snap["class_state"], "live", "{snap}");
        assert!(snap["class_started_at"].as_u64().is_some(), "{snap}");
        assert_eq!(snap["presenter"], "s1", "{snap}");
        let hands: Vec<&str> = snap["hand_queue"]
            .as_array()
            .expect("hand_queue")
            .iter()
            .filter_map(|h| h["participant_id"].as_str())
            .collect();
        assert_eq!(hands, vec!["s2", "s3"], "{snap}");
        let s3 = participant(snap, "s3");
        assert_eq!(s3["hard_muted"], true, "{s3}");
        assert_eq!(s3["can_speak"], false, "{s3}");
        assert_eq!(s3["connected"], false, "not back yet: {s3}");
        assert_eq!(participant(snap, "s1")["presenter"], true);
        assert!(
            snap["seq"].as_u64().unwrap_or(0) >= last_seq,
            "the sequence goes on: {snap}"
        );

        // The others come back to the same class; staff carry on from where they were.
        let s3 = members
            .join(addr, "s3", Role::Student, Some(last_seq))
            .await?;
        assert_eq!(s3.welcome["rejoined"], true);
        assert_eq!(
            participant(&s3.welcome["snapshot"], "s3")["hard_muted"],
            true
        );
        let mut t = members
            .join(addr, "t", Role::Instructor, Some(last_seq))
            .await?;
        assert_eq!(t.welcome["snapshot"]["class_state"], "live");
        let called = t.ok(json!({"type": "call_on"})).await?;
        assert!(called["seq"].as_u64().unwrap_or(0) > last_seq);
        let event = t.wait_event("called_on").await?;
        assert_eq!(event["event"]["participant_id"], "s2", "{event}");
        anyhow::Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn participant<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    snapshot["roster"]
        .as_array()
        .and_then(|r| r.iter().find(|p| p["id"] == id))
        .unwrap_or(&Value::Null)
}

/// A room closed for being empty keeps nothing for a restore: it opens again as a new class.
#[tokio::test]
async fn a_room_closed_for_being_empty_opens_afresh() -> anyhow::Result<()> {
    let s = lectern_tests::TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "false"),
        ("LECTERN_ROOM_IDLE_CLOSE_SECS", "1"),
    ])
    .await;
    let mut t = s.join(ROOM, "t", Role::Instructor).await;
    let mut s1 = s.join(ROOM, "s1", Role::Student).await;
    t.ok(json!({"type": "class_start"})).await?;
    s1.wait_for(|m| m["type"] == "snapshot").await?;
    s1.ok(json!({"type": "hand_raise"})).await?;
    for client in [&mut s1, &mut t] {
        client.ok(json!({"type": "leave"})).await?;
        client.wait_closed().await?;
    }
    lectern_tests::wait_until("the empty room to close", || async {
        s.metric("lectern_rooms").await == 0
    })
    .await?;

    let s1 = s.join(ROOM, "s1", Role::Student).await;
    let snap = &s1.welcome["snapshot"];
    assert_eq!(snap["class_state"], "not_started", "{snap}");
    assert_eq!(participant(snap, "s1")["in_lobby"], true, "{snap}");
    Ok(())
}
