//! Store-side fencing across nodes (issue 14): a host that was paused (SIGSTOP) while another
//! node took its room over wakes up with a chat message waiting in its socket; the store refuses
//! the batch under its old lease token, so the message is neither stored nor acknowledged, the
//! stale node stops the room and sends its client to the new host.
//!
//! Deterministic by construction: the stale node's own guard (the lease's local deadline) would
//! also stop the room when it wakes after a pause longer than the TTL, and which of the two wins
//! is a race. Here the lease TTL is 30 s, so the local deadline never passes during the test,
//! and while the host is stopped its lease is taken away in Redis (released under its own
//! name and token, as an expiry would): the case the local guard cannot see (a clock running
//! at another rate, a Redis failover that lost the key, a stall between the guard's check and
//! the commit). Only the store's check stands between the stale node and the shared store.
//!
//! Needs PostgreSQL and Redis (skipped with `LECTERN_SKIP_POSTGRES=1` / `LECTERN_SKIP_REDIS=1`).

use anyhow::Context;
use lectern_cluster::{LeaseConfig, Leases, NodeId};
use lectern_proto::{Role, RoomId};
use lectern_tests::{metric_value, wait_until};
use serde_json::json;

use crate::cluster::{
    Engines, LEASE_TTL_VAR, chat_seqs, http_get, join, redis_url, token, with_engines,
};

fn signal(child: &std::process::Child, sig: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {sig} failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_host_that_wakes_after_a_takeover_stores_and_acks_nothing() -> anyhow::Result<()> {
    with_engines(stale_host).await
}

async fn stale_host(engines: &Engines) -> anyhow::Result<()> {
    let redis = redis_url();
    let long_lease = [(LEASE_TTL_VAR, "30000")];
    let a = engines.node_with("node-a", &redis, &long_lease)?;
    let b = engines.node_with("node-b", &redis, &long_lease)?;
    let room = "fenced-class";

    // The class runs on A; Ada's messages are acknowledged there.
    let (mut ada, _) = join(
        &format!("{}?room={room}&placed=1", a.url()),
        &token(room, "ada", Role::Student)?,
        None,
    )
    .await?;
    let observer = Leases::new(
        engines.redis.clone(),
        NodeId::new("observer")?,
        LeaseConfig::default(),
    )?
    .0;
    let held = observer
        .holder(room)
        .await?
        .context("the class is hosted")?;
    assert_eq!(held.node.as_str(), "node-a");
    let mut acked = Vec::new();
    for i in 0..3 {
        let text = format!("on A {i}");
        let ack = ada.ok(json!({"type": "chat_send", "text": text})).await?;
        acked.push((ack["seq"].as_u64().context("seq")?, text));
    }

    // A stops; its lease goes in Redis (its own name and token, as an expiry would).
    signal(&a.child, "-STOP")?;
    let as_a = Leases::new(
        engines.redis.clone(),
        NodeId::new("node-a")?,
        LeaseConfig::default(),
    )?
    .0;
    assert!(as_a.release(room, held.token).await?, "A's lease was gone");

    // B takes the class over: Cy joins there and chats.
    let (mut cy, _) = join(
        &format!("{}?room={room}&placed=1", b.url()),
        &token(room, "cy", Role::Student)?,
        None,
    )
    .await?;
    let taken = observer
        .holder(room)
        .await?
        .context("the class is hosted")?;
    assert_eq!(taken.node.as_str(), "node-b");
    assert!(taken.token > held.token, "{taken:?} after {held:?}");
    for i in 0..2 {
        let text = format!("on B {i}");
        let ack = cy.ok(json!({"type": "chat_send", "text": text})).await?;
        acked.push((ack["seq"].as_u64().context("seq")?, text));
    }

    // Ada, still connected to the stopped A, sends a message: it waits in A's socket and A
    // handles it the moment it runs again, before its lease's local deadline.
    ada.send(&json!({"type": "chat_send", "text": "stale", "request_id": 999}))
        .await?;
    signal(&a.child, "-CONT")?;
    let closing = ada.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "room_moved", "{closing}");
    assert!(
        !ada.received.iter().any(|m| m["request_id"] == json!(999)),
        "the stale node answered the refused message: {:?}",
        ada.received
    );
    assert!(!ada.chat_texts().iter().any(|t| t == "stale"));
    let (_, metrics) = http_get(a.addr, "/metrics").await?;
    assert_eq!(
        metric_value(&metrics, "lectern_cluster_writes_fenced_total"),
        1,
        "the store did not refuse the stale node's batch"
    );

    // The class goes on at B: Ada comes back (through A, which now redirects) and chats.
    let (mut ada, at) = join(&a.url(), &token(room, "ada", Role::Student)?, None).await?;
    assert!(at.starts_with(&b.url()), "{at}");
    let ack = ada
        .ok(json!({"type": "chat_send", "text": "back on B"}))
        .await?;
    acked.push((ack["seq"].as_u64().context("seq")?, "back on B".to_owned()));
    cy.wait_for(|m| m["type"] == "event" && m["event"]["message"]["text"] == "back on B")
        .await?;
    assert!(!cy.chat_texts().iter().any(|t| t == "stale"));

    // The store holds exactly the acknowledged messages, each seq once.
    let store = lectern_store::Store::open(engines.schema.url()).await?;
    let log = store.chat_log(&RoomId::new(room), 0, 1000).await?;
    store.close().await;
    let stored: Vec<(u64, String)> = log
        .iter()
        .map(|c| (c.message.seq, c.message.text.clone()))
        .collect();
    assert_eq!(
        stored, acked,
        "stored chat differs from what live hosts acknowledged"
    );
    let mut seqs: Vec<u64> = stored.iter().map(|(s, _)| *s).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), stored.len(), "a seq stored twice: {stored:?}");
    // A fresh join at B sees the same history.
    let (fresh, _) = join(&b.url(), &token(room, "di", Role::Student)?, None).await?;
    let welcome = chat_seqs(
        fresh.welcome["snapshot"]["chat"]
            .as_array()
            .context("a snapshot with chat")?,
    );
    assert_eq!(welcome, acked);
    wait_until("the stale node to stay up", || async {
        http_get(a.addr, "/healthz")
            .await
            .is_ok_and(|(s, _)| s == 200)
    })
    .await?;
    Ok(())
}
