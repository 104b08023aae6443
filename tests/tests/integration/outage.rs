//! The shared engines fail while classes run (issue 14, point 5): Redis restarted (without
//! persistence, so every registry entry and lease is gone) and PostgreSQL out of reach (a TCP
//! proxy in front of it is cut: connections reset, new ones refused, as during a restart).
//! Meanwhile the nodes stay up and say what is wrong (`/readyz` 503 with the engine's name, a
//! chat message that cannot be stored gets `store_unavailable`, never an acknowledgement); once
//! the engine is back the class goes on with every acknowledged message and no sequence number
//! used twice.
//!
//! Needs PostgreSQL, Redis and the `redis-server` binary (each skipped with a message when absent
//! or when `LECTERN_SKIP_POSTGRES=1` / `LECTERN_SKIP_REDIS=1`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lectern_cluster::{LeaseConfig, LeaseHolder, Leases, NodeId, Redis};
use lectern_proto::Role;
use lectern_testkit::OwnRedis;
use lectern_tests::{Client, DEADLINE, wait_until};
use serde_json::json;

use crate::cluster::{Engines, Proxy, chat_seqs, http_get, join, redis_url, token, with_engines};

/// `room`'s lease holder (node and fencing token) in the Redis at `url` under `prefix`.
async fn holder(url: &str, prefix: &str, room: &str) -> anyhow::Result<Option<LeaseHolder>> {
    Ok(observer(url, prefix).await?.holder(room).await?)
}

async fn observer(url: &str, prefix: &str) -> anyhow::Result<Leases> {
    let redis = Redis::connect(url, prefix).await?;
    Ok(Leases::new(redis, NodeId::new("observer")?, LeaseConfig::default())?.0)
}

/// Waits until `/readyz` at `addr` answers `status` with a body containing `text`.
async fn wait_ready(addr: SocketAddr, status: u16, text: &str) -> anyhow::Result<()> {
    wait_until(&format!("/readyz to answer {status} {text:?}"), || async {
        http_get(addr, "/readyz")
            .await
            .is_ok_and(|(s, body)| s == status && body.contains(text))
    })
    .await
}

/// The chat of a fresh welcome (everything stored), as `(seq, text)`.
fn welcome_chat(client: &Client) -> anyhow::Result<Vec<(u64, String)>> {
    Ok(chat_seqs(
        client.welcome["snapshot"]["chat"]
            .as_array()
            .context("a snapshot with chat")?,
    ))
}

async fn send_acked(client: &mut Client, text: &str) -> anyhow::Result<(u64, String)> {
    let ack = client
        .ok(json!({"type": "chat_send", "text": text}))
        .await?;
    Ok((ack["seq"].as_u64().context("seq")?, text.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_stops_rooms_until_it_is_back_then_the_class_goes_on_intact()
-> anyhow::Result<()> {
    let Some(engines) = Engines::start().await? else {
        return Ok(());
    };
    let Some(redis) = OwnRedis::start().await else {
        engines.schema.remove().await?;
        return Ok(());
    };
    let result = redis_restart(&engines, redis).await;
    engines.schema.remove().await?;
    result
}

async fn redis_restart(engines: &Engines, mut redis: OwnRedis) -> anyhow::Result<()> {
    let url = redis.url();
    let a = engines.node("node-a", &url)?;
    let b = engines.node("node-b", &url)?;
    wait_ready(a.addr, 200, "ready").await?;
    wait_ready(b.addr, 200, "ready").await?;

    // The room has been hosted before (five claims): its fencing counter in Redis is at 5, and
    // the restart below takes it back to zero.
    let room = "redis-restart";
    let earlier = observer(&url, &engines.prefix).await?;
    for _ in 0..5 {
        let claimed = earlier.try_claim(room).await?.ok().context("a free room")?;
        earlier.release(room, claimed.token).await?;
    }

    // A class on A (placed=1), a second student sent there from B, messages acknowledged.
    let ada_token = token(room, "ada", Role::Student)?;
    let bo_token = token(room, "bo", Role::Student)?;
    let (mut ada, _) = join(
        &format!("{}?room={room}&placed=1", a.url()),
        &ada_token,
        None,
    )
    .await?;
    let (mut bo, bo_at) = join(&b.url(), &bo_token, None).await?;
    assert!(bo_at.starts_with(&a.url()), "{bo_at}");
    let before = holder(&url, &engines.prefix, room)
        .await?
        .context("the class is hosted")?;
    assert_eq!(before.node.as_str(), "node-a");
    assert_eq!(before.token.0, 6);
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(send_acked(&mut ada, &format!("before the restart {i}")).await?);
    }
    let last = acked.last().cloned().context("messages")?;
    bo.wait_for(|m| m["type"] == "event" && m["event"]["message"]["text"] == last.1)
        .await?;

    // Redis goes away: the room's lease can no longer be renewed, so A stops the room at the
    // lease's local deadline and sends its clients away to come back later.
    redis.kill().await;
    let killed_at = Instant::now();
    for client in [&mut ada, &mut bo] {
        let closing = client.wait_for(|m| m["type"] == "closing").await?;
        assert_eq!(closing["reason"], "room_moved", "{closing}");
    }
    let stopped_after = killed_at.elapsed();
    for node in [&a, &b] {
        wait_ready(node.addr, 503, "Redis").await?;
        let (status, _) = http_get(node.addr, "/healthz").await?;
        assert_eq!(status, 200, "a node must stay alive while Redis is away");
    }
    // A hello meanwhile is not welcomed anywhere: it is told to come back.
    let mut cy = Client::connect_url(&a.url()).await?;
    cy.send(&json!({"type": "hello", "protocol_version": 1, "token": token(room, "cy", Role::Student)?}))
        .await?;
    let reply = cy
        .wait_for(|m| matches!(m["type"].as_str(), Some("welcome" | "closing" | "error")))
        .await?;
    assert_eq!(reply["type"], "closing", "{reply}");
    assert_eq!(reply["reason"], "room_moved", "{reply}");

    // Redis is back, empty: the nodes register again and the class is placed afresh, restored
    // from PostgreSQL with every acknowledged message.
    redis.restart().await;
    let restarted_at = Instant::now();
    wait_ready(a.addr, 200, "ready").await?;
    wait_ready(b.addr, 200, "ready").await?;
    let (mut ada, _) = join(&b.url(), &ada_token, Some(ada.last_seq())).await?;
    let back_after = restarted_at.elapsed();
    let (fresh, _) = join(&a.url(), &token(room, "di", Role::Student)?, None).await?;
    assert_eq!(
        welcome_chat(&fresh)?,
        acked,
        "acknowledged messages lost or changed"
    );
    // With store-side fencing on, writes go on after the restart: the new claim's token is
    // above the one the store saw before (the claim's floor), not 1 from the reset counter.
    let now = holder(&url, &engines.prefix, room)
        .await?
        .context("the class is hosted again")?;
    assert!(now.token > before.token, "{now:?} after {before:?}");
    let after = send_acked(&mut ada, "after the restart").await?;
    assert!(
        after.0 > last.0,
        "{after:?} reuses a sequence number after {last:?}"
    );
    for node in [&a, &b] {
        let (_, metrics) = http_get(node.addr, "/metrics").await?;
        assert_eq!(
            lectern_tests::metric_value(&metrics, "lectern_cluster_writes_fenced_total"),
            0,
            "a write was refused after the restart"
        );
    }
    println!(
        "redis restart: room stopped {stopped_after:?} after Redis died; class back \
         {back_after:?} after Redis restarted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_out_of_reach_refuses_chat_clearly_then_the_class_goes_on_intact()
-> anyhow::Result<()> {
    with_engines(postgres_outage).await
}

async fn postgres_outage(engines: &Engines) -> anyhow::Result<()> {
    // The node reaches PostgreSQL through a proxy the test cuts.
    let store = engines.schema.url();
    let rest = store
        .strip_prefix("postgres://")
        .context("a postgres:// store URL")?;
    let (user, rest) = rest.split_once('@').context("a user in the store URL")?;
    let (server, path) = rest
        .split_once('/')
        .context("a database in the store URL")?;
    let target: SocketAddr = tokio::net::lookup_host(server)
        .await?
        .next()
        .context("PostgreSQL's address")?;
    let proxy = Proxy::start(target).await?;
    let proxied = format!("postgres://{user}@{}/{path}", proxy.addr);
    let a = engines.node_on("node-a", &proxied, &redis_url(), &[])?;
    // And one node alone (no Redis) on the same store: its /readyz watches PostgreSQL too.
    let solo = engines.node_on("solo", &proxied, "", &[])?;
    wait_ready(a.addr, 200, "ready").await?;
    wait_ready(solo.addr, 200, "ready").await?;

    let room = "postgres-outage";
    let ada_token = token(room, "ada", Role::Student)?;
    let (mut ada, _) = join(&a.url(), &ada_token, None).await?;
    let (mut bo, _) = join(&a.url(), &token(room, "bo", Role::Student)?, None).await?;
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(send_acked(&mut ada, &format!("before the outage {i}")).await?);
    }

    // PostgreSQL out of reach: the room keeps running (the lease is in Redis), but a message
    // that cannot be stored is refused with `store_unavailable` and reaches nobody.
    let _ = proxy.cut.send(true);
    wait_ready(a.addr, 503, "PostgreSQL").await?;
    wait_ready(solo.addr, 503, "PostgreSQL").await?;
    let refused = ada
        .request(json!({"type": "chat_send", "text": "during the outage"}))
        .await?;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "store_unavailable", "{refused}");

    // Back: new messages are stored again; everything acknowledged is there, in order.
    let _ = proxy.cut.send(false);
    wait_ready(a.addr, 200, "ready").await?;
    wait_ready(solo.addr, 200, "ready").await?;
    let start = Instant::now();
    let after = loop {
        let reply = ada
            .request(json!({"type": "chat_send", "text": "after the outage"}))
            .await?;
        if reply["type"] != "error" {
            break reply;
        }
        assert_eq!(reply["code"], "store_unavailable", "{reply}");
        if start.elapsed() > DEADLINE {
            bail!("chat still refused {DEADLINE:?} after PostgreSQL came back: {reply}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let after_seq = after["seq"].as_u64().context("seq")?;
    acked.push((after_seq, "after the outage".to_owned()));
    // Delivery is in order: had the refused message reached anyone, it would be here first.
    bo.wait_for(|m| m["type"] == "event" && m["event"]["message"]["text"] == "after the outage")
        .await?;
    assert!(
        !bo.chat_texts().iter().any(|t| t == "during the outage"),
        "a message that was not stored was delivered"
    );
    let (fresh, _) = join(&a.url(), &token(room, "cy", Role::Student)?, None).await?;
    let restored = welcome_chat(&fresh)?;
    assert_eq!(
        restored, acked,
        "acknowledged messages lost, changed or added"
    );
    let seqs: Vec<u64> = restored.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    Ok(())
}
