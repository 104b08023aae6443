//! The node registry: heartbeats, expiry, and placement over what it lists.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lectern_cluster::{NodeId, NodeInfo, NodeLoad, NodeRegistry, PlacementWeights, choose_node};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::support::{cleanup, connect, random_prefix, raw, redis_url, wait_until};

fn info(id: &str, rooms: u32) -> NodeInfo {
    NodeInfo {
        node: NodeId::new(id).expect("node id"),
        base_url: format!("https://{id}.example.org"),
        media_ips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))],
        draining: false,
        load: NodeLoad {
            rooms,
            media_peers: rooms * 10,
            cpu_share: 0.25,
        },
    }
}

async fn listed(registry: &NodeRegistry, id: &str) -> Option<NodeInfo> {
    registry
        .live_nodes()
        .await
        .expect("live nodes")
        .into_iter()
        .find(|n| n.node.as_str() == id)
}

#[tokio::test]
async fn a_registry_entry_expires_after_its_ttl() {
    let prefix = random_prefix();
    let Some(redis) = connect(&prefix).await else {
        return;
    };
    let registry = NodeRegistry::new(redis, Duration::from_millis(300)).expect("registry");
    let me = info("node-a", 2);
    registry.heartbeat(&me).await.expect("heartbeat");
    assert_eq!(listed(&registry, "node-a").await, Some(me.clone()));
    assert_eq!(
        registry.node(&me.node).await.expect("node"),
        Some(me.clone())
    );

    wait_until(
        Duration::from_secs(5),
        "the silent node's entry expires",
        || {
            let registry = registry.clone();
            async move { listed(&registry, "node-a").await.is_none() }
        },
    )
    .await;
    assert_eq!(registry.node(&me.node).await.expect("node"), None);
    // Listing also dropped the id from the index.
    let mut conn = raw(&redis_url()).await;
    let index: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}nodes"))
        .query_async(&mut conn)
        .await
        .expect("smembers");
    assert!(index.is_empty(), "index still lists {index:?}");
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn heartbeats_keep_a_node_listed_with_its_load_and_drain_flag() {
    let prefix = random_prefix();
    let Some(redis) = connect(&prefix).await else {
        return;
    };
    // A TTL that a busy test machine's scheduling hiccups stay well inside.
    let registry = NodeRegistry::new(redis, Duration::from_secs(1)).expect("registry");
    let (status_a, status_rx_a) = watch::channel(info("node-a", 1));
    let heartbeat_a = registry.spawn_heartbeat(status_rx_a, Duration::from_millis(100));
    let (_status_b, status_rx_b) = watch::channel(info("node-b", 3));
    let heartbeat_b = registry.spawn_heartbeat(status_rx_b, Duration::from_millis(100));
    wait_until(Duration::from_secs(5), "both nodes are listed", || {
        let registry = registry.clone();
        async move { registry.live_nodes().await.expect("live").len() == 2 }
    })
    .await;
    let weights = PlacementWeights::default();
    let nodes = registry.live_nodes().await.expect("live");
    assert_eq!(
        choose_node(&nodes, &weights, "room").map(NodeId::as_str),
        Some("node-a")
    );

    // Over three TTLs, the heartbeats keep node-a listed.
    let until = Instant::now() + Duration::from_secs(3);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while Instant::now() < until {
        tick.tick().await;
        assert!(
            listed(&registry, "node-a").await.is_some(),
            "node-a dropped out"
        );
    }

    // A change of status is written at once: node-a drains, so new rooms go to node-b.
    status_a.send_modify(|s| {
        s.draining = true;
        s.load.rooms = 4;
    });
    wait_until(
        Duration::from_secs(5),
        "node-a is listed as draining",
        || {
            let registry = registry.clone();
            async move {
                listed(&registry, "node-a")
                    .await
                    .is_some_and(|n| n.draining && n.load.rooms == 4)
            }
        },
    )
    .await;
    let nodes = registry.live_nodes().await.expect("live");
    assert_eq!(
        choose_node(&nodes, &weights, "room").map(NodeId::as_str),
        Some("node-b")
    );

    // A clean stop removes the entry without waiting for the TTL.
    heartbeat_a.stop().await.expect("stop");
    assert!(listed(&registry, "node-a").await.is_none());
    drop(heartbeat_b);
    cleanup(&redis_url(), &prefix).await;
}
