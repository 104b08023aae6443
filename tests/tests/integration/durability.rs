//! An acknowledged chat message survives `kill -9` of the server process, and a graceful
//! shutdown tells clients and keeps everything.
//!
//! The killed server is this test binary re-run as a child process (`server_child`, ignored
//! unless asked for), so the test needs no separately built binary.

use lectern_proto::Role;
use lectern_tests::{Client, TestServer, test_config};
use serde_json::json;

const CHILD_TEST: &str = "durability::server_child";

/// Run as a child: see [`lectern_tests::serve_as_child`].
#[tokio::test]
#[ignore = "run by kill9_keeps_acknowledged_chat as a child process"]
async fn server_child() {
    lectern_tests::serve_as_child(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "1000"),
        ("LECTERN_LIMITS_CHAT_BURST", "1000"),
    ])
    .await;
}

fn spawn_child(
    dir: &std::path::Path,
) -> anyhow::Result<(std::process::Child, std::net::SocketAddr)> {
    lectern_tests::spawn_child_server(CHILD_TEST, dir)
}

#[tokio::test]
async fn kill9_keeps_acknowledged_chat() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut child, addr) = spawn_child(dir.path())?;
    let auth = lectern_server::auth::Authenticator::new(
        &test_config(dir.path(), &[]).auth,
        lectern_tests::SECRET.as_bytes().to_vec(),
    )?;
    let token = auth.mint("durable", "ada", "Ada", Role::Student, 600)?;

    let mut ada = Client::connect(addr, None).await?;
    ada.hello(&token, None).await?;
    let mut acked = Vec::new();
    for i in 0..25 {
        let text = format!("message {i}");
        let ack = ada.ok(json!({"type": "chat_send", "text": text})).await?;
        acked.push((ack["seq"].as_u64().expect("seq"), text));
    }
    // An event that stores nothing but still takes a sequence number.
    let hand = ada.ok(json!({"type": "hand_raise"})).await?;
    let hand_seq = hand["seq"].as_u64().expect("hand raise has a seq");
    // Kill the server without warning right after the last acknowledgement.
    child.kill()?;
    let status = child.wait()?;
    assert!(!status.success(), "the child was supposed to be killed");

    // Restart on the same data directory: every acknowledged message is there, in order.
    let (mut child, addr) = spawn_child(dir.path())?;
    let result = async {
        let mut bob = Client::connect(addr, None).await?;
        bob.hello(
            &auth.mint("durable", "bob", "Bob", Role::Student, 600)?,
            None,
        )
        .await?;
        let chat = bob.welcome["snapshot"]["chat"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let got: Vec<(u64, String)> = chat
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap_or(0),
                    m["text"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(got, acked, "history after kill -9 differs");
        // New events continue the sequence instead of reusing a number a client has seen.
        let ack = bob
            .ok(json!({"type": "chat_send", "text": "after restart"}))
            .await?;
        assert!(
            ack["seq"].as_u64().unwrap_or(0) > hand_seq,
            "{ack} reuses a number"
        );
        anyhow::Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[tokio::test]
async fn graceful_shutdown_tells_clients_and_keeps_history() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    ada.ok(json!({"type": "chat_send", "text": "kept"})).await?;
    let db = s.dir.path().join("lectern.db");
    let TestServer { server, dir, .. } = s;
    let shutdown = tokio::spawn(server.shutdown());
    let closing = ada.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "server_shutdown");
    ada.wait_closed().await?;
    shutdown.await?;
    let store = lectern_store::Store::open(&format!("sqlite://{}", db.display())).await?;
    let log = store
        .chat_log(&lectern_proto::RoomId::new("r"), 0, 10)
        .await?;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].message.text, "kept");
    let attendance = store.attendance(&lectern_proto::RoomId::new("r")).await?;
    assert!(
        attendance.iter().all(|a| a.left_at.is_some()),
        "{attendance:?}"
    );
    drop(dir);
    Ok(())
}
