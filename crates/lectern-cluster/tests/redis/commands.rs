//! Cross-node commands over each node's pub/sub inbox.

use std::time::Duration;

use futures_util::StreamExt;
use lectern_cluster::{
    ClaimOutcome, ClusterError, CommandBus, CommandReply, LeaseConfig, Leases, NodeId, RoomCommand,
};

use crate::support::{
    OwnRedis, cleanup, connect, connect_to, random_prefix, raw, redis_url, wait_for, wait_until,
};

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("node id")
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_command_round_trips_between_two_nodes() {
    let prefix = random_prefix();
    let (Some(redis_a), Some(redis_b)) = (connect(&prefix).await, connect(&prefix).await) else {
        return;
    };
    let (bus_a, _inbox_a) = CommandBus::start(redis_a.clone(), node("node-a"), 16)
        .await
        .expect("bus a");
    let (_bus_b, mut inbox_b) = CommandBus::start(redis_b.clone(), node("node-b"), 16)
        .await
        .expect("bus b");
    let (leases_a, _) = Leases::new(redis_a, node("node-a"), LeaseConfig::default()).expect("a");
    let (leases_b, _) = Leases::new(redis_b, node("node-b"), LeaseConfig::default()).expect("b");
    let room = "algebra.2026-09-01T10:00";
    let ClaimOutcome::Claimed(lease_b) = leases_b.claim(room).await.expect("claim") else {
        panic!("free room not claimed");
    };
    let token_b = lease_b.token();

    // node-b's room task: answers by what it is asked.
    let handler = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(cmd) = inbox_b.recv().await {
            seen.push((
                cmd.from.clone(),
                cmd.room.clone(),
                cmd.token,
                cmd.command.clone(),
            ));
            let reply = match (&cmd.command, cmd.token) {
                (_, Some(t)) if t != token_b => CommandReply::NotHosted,
                (RoomCommand::Admit { participant }, _) if participant == "nobody" => {
                    CommandReply::Refused {
                        code: "not_found".into(),
                        message: "no such participant in the lobby".into(),
                    }
                }
                _ => CommandReply::Done,
            };
            cmd.reply(reply).await.expect("reply");
            if seen.len() == 3 {
                return seen;
            }
        }
        seen
    });

    let admit = RoomCommand::Admit {
        participant: "student-7".into(),
    };
    // Routed by the lease: node-a finds node-b hosting the room.
    let reply = bus_a
        .send_to_room(&leases_a, room, &RoomCommand::EndClass, TIMEOUT)
        .await
        .expect("end class");
    assert_eq!(reply, CommandReply::Done);
    let reply = bus_a
        .send(
            &node("node-b"),
            room,
            None,
            &RoomCommand::Admit {
                participant: "nobody".into(),
            },
            TIMEOUT,
        )
        .await
        .expect("admit");
    assert!(matches!(reply, CommandReply::Refused { ref code, .. } if code == "not_found"));
    let reply = bus_a
        .send(
            &node("node-b"),
            room,
            Some(lectern_cluster::FencingToken(token_b.0 + 1)),
            &admit,
            TIMEOUT,
        )
        .await
        .expect("stale admit");
    assert_eq!(reply, CommandReply::NotHosted);

    let seen = handler.await.expect("handler");
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0],
        (
            node("node-a"),
            room.to_owned(),
            Some(token_b),
            RoomCommand::EndClass
        )
    );
    assert!(lease_b.release().await.expect("release"));
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn a_command_to_a_gone_node_fails_and_one_to_a_silent_node_times_out() {
    let prefix = random_prefix();
    let (Some(redis_a), Some(redis_b)) = (connect(&prefix).await, connect(&prefix).await) else {
        return;
    };
    let (bus_a, _inbox_a) = CommandBus::start(redis_a.clone(), node("node-a"), 16)
        .await
        .expect("bus a");
    let (bus_b, mut inbox_b) = CommandBus::start(redis_b, node("node-b"), 16)
        .await
        .expect("bus b");
    let room = "geography";

    // node-b receives but never answers (its room task is stuck): the sender times out, and
    // forgets the request.
    let short = Duration::from_millis(300);
    let result = tokio::time::timeout(
        TIMEOUT,
        bus_a.send(&node("node-b"), room, None, &RoomCommand::EndClass, short),
    )
    .await
    .expect("the send gives up by itself");
    assert!(
        matches!(result, Err(ClusterError::Timeout { ref node, timeout_ms: 300 }) if node.as_str() == "node-b"),
        "{result:?}"
    );
    let unanswered = inbox_b.recv().await.expect("node-b got the command");
    assert_eq!(unanswered.command, RoomCommand::EndClass);
    // A late reply finds no waiter and does no harm.
    unanswered
        .reply(CommandReply::Done)
        .await
        .expect("late reply");

    // node-b stops listening (shut down, crashed, or cut off from Redis): nobody receives the
    // command, and the sender knows at once rather than after the timeout.
    bus_b.stop();
    let conn = raw(&redis_url()).await;
    let channel = format!("{prefix}inbox:node-b");
    wait_until(TIMEOUT, "node-b's subscription is gone", || {
        let mut conn = conn.clone();
        let channel = channel.clone();
        async move {
            let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .expect("numsub");
            counts.first().is_some_and(|(_, n)| *n == 0)
        }
    })
    .await;
    let result = tokio::time::timeout(
        TIMEOUT,
        bus_a.send(&node("node-b"), room, None, &RoomCommand::EndClass, TIMEOUT),
    )
    .await
    .expect("a gone target is known at once");
    assert!(
        matches!(result, Err(ClusterError::TargetGone { ref node }) if node.as_str() == "node-b"),
        "{result:?}"
    );
    // A node that never existed is gone too, and a room nobody hosts has no one to ask.
    let result = bus_a
        .send(&node("node-z"), room, None, &RoomCommand::EndClass, TIMEOUT)
        .await;
    assert!(
        matches!(result, Err(ClusterError::TargetGone { .. })),
        "{result:?}"
    );
    let (leases_a, _) = Leases::new(redis_a, node("node-a"), LeaseConfig::default()).expect("a");
    let result = bus_a
        .send_to_room(&leases_a, room, &RoomCommand::EndClass, TIMEOUT)
        .await;
    assert!(
        matches!(result, Err(ClusterError::NotHosted { .. })),
        "{result:?}"
    );
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn an_unknown_command_is_answered_unsupported() {
    let prefix = random_prefix();
    let Some(redis_b) = connect(&prefix).await else {
        return;
    };
    let (_bus_b, mut inbox_b) = CommandBus::start(redis_b, node("node-b"), 16)
        .await
        .expect("bus b");
    // A node of a newer version, speaking on the wire directly.
    let client = redis::Client::open(redis_url()).expect("url");
    let mut listener = client.get_async_pubsub().await.expect("pubsub");
    listener
        .subscribe(format!("{prefix}inbox:node-new"))
        .await
        .expect("subscribe");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    // Garbage on the channel is dropped, and the bus keeps working.
    let _: u64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}inbox:node-b"))
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .expect("publish");
    let request = serde_json::json!({
        "v": 1, "id": 77, "from": "node-new", "kind": "request",
        "room": "art", "token": null,
        "command": { "type": "start_breakout_rooms", "groups": 4 }
    });
    let receivers: u64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}inbox:node-b"))
        .arg(request.to_string())
        .query_async(&mut conn)
        .await
        .expect("publish");
    assert_eq!(receivers, 1);
    let msg = tokio::time::timeout(TIMEOUT, listener.on_message().next())
        .await
        .expect("a reply within 5 s")
        .expect("message");
    let reply: serde_json::Value =
        serde_json::from_slice(msg.get_payload_bytes()).expect("json reply");
    assert_eq!(reply["id"], 77);
    assert_eq!(reply["from"], "node-b");
    assert_eq!(reply["kind"], "reply");
    assert_eq!(reply["reply"]["outcome"], "unsupported");
    // Neither reached the room.
    assert!(inbox_b.try_recv().is_err());
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn the_bus_and_leases_work_again_after_a_redis_restart() {
    let Some(mut server) = OwnRedis::start().await else {
        return;
    };
    let prefix = random_prefix();
    let redis_a = connect_to(&server.url(), &prefix)
        .await
        .expect("own redis-server");
    let redis_b = connect_to(&server.url(), &prefix)
        .await
        .expect("own redis-server");
    let (bus_a, _inbox_a) = CommandBus::start(redis_a.clone(), node("node-a"), 16)
        .await
        .expect("bus a");
    let (_bus_b, mut inbox_b) = CommandBus::start(redis_b, node("node-b"), 16)
        .await
        .expect("bus b");
    tokio::spawn(async move {
        while let Some(cmd) = inbox_b.recv().await {
            let _ = cmd.reply(CommandReply::Done).await;
        }
    });
    let (leases_a, _) = Leases::new(redis_a, node("node-a"), LeaseConfig::default()).expect("a");
    let room = "music";
    let target = node("node-b");
    let send = || {
        bus_a.send(
            &target,
            room,
            None,
            &RoomCommand::EndClass,
            Duration::from_millis(500),
        )
    };
    assert_eq!(send().await.expect("before"), CommandReply::Done);

    server.kill().await;
    assert!(send().await.is_err(), "a command while Redis is down fails");
    assert!(
        leases_a.try_claim(room).await.is_err(),
        "a claim while Redis is down fails"
    );
    server.restart().await;
    let restarted = tokio::time::Instant::now();

    // Both listeners resubscribe and the command connection reconnects by themselves.
    wait_until(
        Duration::from_secs(15),
        "a command round-trips again",
        || {
            let result = send();
            async move { matches!(result.await, Ok(CommandReply::Done)) }
        },
    )
    .await;
    println!(
        "restart: commands back {:?} after the restart",
        restarted.elapsed()
    );
    let claimed = wait_for(Duration::from_secs(15), "a claim works again", || {
        let leases = leases_a.clone();
        async move { leases.try_claim(room).await.ok() }
    })
    .await;
    println!(
        "restart: claims back {:?} after the restart",
        restarted.elapsed()
    );
    assert!(
        claimed.is_ok(),
        "the restarted Redis is empty, so the room is free"
    );
}
