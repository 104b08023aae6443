//! A class's chat on PostgreSQL (`store.url = "postgres://..."`): acknowledged messages survive
//! `kill -9` of the server, and a server started afterwards with another, empty data directory
//! (as a second node would) restores them and continues the sequence from PostgreSQL alone.

use lectern_proto::{Role, RoomId};
use lectern_tests::{Client, PostgresSchema, test_config};
use serde_json::json;

const CHILD_TEST: &str = "postgres::server_child";
/// The store URL the parent gives its child server.
const STORE_URL_VAR: &str = "LECTERN_TEST_CHILD_STORE_URL";

/// Run as a child: see [`lectern_tests::serve_as_child`].
#[tokio::test]
#[ignore = "run by chat_on_postgres_survives_kill9_and_a_new_node as a child process"]
async fn server_child() {
    let url = std::env::var(STORE_URL_VAR).unwrap_or_default();
    lectern_tests::serve_as_child(&[
        ("LECTERN_STORE_URL", &url),
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "1000"),
        ("LECTERN_LIMITS_CHAT_BURST", "1000"),
    ])
    .await;
}

#[tokio::test]
async fn chat_on_postgres_survives_kill9_and_a_new_node() -> anyhow::Result<()> {
    let Some(schema) = PostgresSchema::create().await? else {
        return Ok(());
    };
    let result = run(&schema).await;
    schema.remove().await?;
    result
}

async fn run(schema: &PostgresSchema) -> anyhow::Result<()> {
    let first_dir = tempfile::tempdir()?;
    let env = [(STORE_URL_VAR, schema.url())];
    let (mut child, addr) =
        lectern_tests::spawn_child_server_with_env(CHILD_TEST, first_dir.path(), &env)?;
    let auth = lectern_server::auth::Authenticator::new(
        &test_config(first_dir.path(), &[]).auth,
        lectern_tests::SECRET.as_bytes().to_vec(),
    )?;
    let room = "pgclass";

    let mut ada = Client::connect(addr, None).await?;
    ada.hello(&auth.mint(room, "ada", "Ada", Role::Student, 600)?, None)
        .await?;
    let mut acked = Vec::new();
    for i in 0..25 {
        let text = format!("message {i} on PostgreSQL");
        let ack = ada.ok(json!({"type": "chat_send", "text": text})).await?;
        acked.push((ack["seq"].as_u64().expect("seq"), text));
    }
    // An event that stores nothing but still takes a sequence number.
    let hand = ada.ok(json!({"type": "hand_raise"})).await?;
    let hand_seq = hand["seq"].as_u64().expect("hand raise has a seq");
    child.kill()?;
    let status = child.wait()?;
    assert!(!status.success(), "the child was supposed to be killed");

    // The rows are in PostgreSQL, read without any server.
    let store = lectern_store::Store::open(schema.url()).await?;
    assert_eq!(store.kind(), "postgres");
    let stored: Vec<(u64, String)> = store
        .chat_log(&RoomId::new(room), 0, 100)
        .await?
        .into_iter()
        .map(|c| (c.message.seq, c.message.text))
        .collect();
    assert_eq!(stored, acked, "PostgreSQL holds every acknowledged message");
    store.close().await;

    // A server with a fresh data directory: everything it knows comes from PostgreSQL.
    let second_dir = tempfile::tempdir()?;
    let (mut child, addr) =
        lectern_tests::spawn_child_server_with_env(CHILD_TEST, second_dir.path(), &env)?;
    let result = async {
        let mut bob = Client::connect(addr, None).await?;
        bob.hello(&auth.mint(room, "bob", "Bob", Role::Student, 600)?, None)
            .await?;
        let got: Vec<(u64, String)> = bob.welcome["snapshot"]["chat"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap_or(0),
                    m["text"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(got, acked, "history after kill -9 differs");
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
    assert!(
        !second_dir.path().join("lectern.db").exists(),
        "the server must not have opened a SQLite file"
    );
    result
}
