//! Room leases: atomic claims, fencing, expiry, and losing a lease to a partition.

use std::sync::Arc;
use std::time::Duration;

use lectern_cluster::{
    ClaimOutcome, FencingToken, LeaseConfig, LeaseHolder, LeaseLost, Leases, LostReason, NodeId,
};
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::support::{
    OwnRedis, cleanup, connect, connect_to, random_prefix, raw, redis_url, wait_for, wait_until,
};

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("node id")
}

/// Leases for `id`, each node on its own connection as separate processes would be.
async fn leases(
    prefix: &str,
    id: &str,
    config: LeaseConfig,
) -> Option<(Leases, tokio::sync::mpsc::UnboundedReceiver<LeaseLost>)> {
    let redis = connect(prefix).await?;
    Some(Leases::new(redis, node(id), config).expect("lease config"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_race_for_a_room_200_times_and_exactly_one_wins_each_time() {
    let prefix = random_prefix();
    let Some((a, _a_lost)) = leases(&prefix, "node-a", LeaseConfig::default()).await else {
        return;
    };
    let Some((b, _b_lost)) = leases(&prefix, "node-b", LeaseConfig::default()).await else {
        return;
    };
    let room = "algebra.2026-09-01T10:00";
    let mut last = FencingToken(0);
    let mut wins = [0u32; 2];
    for round in 0..200 {
        // Both tasks wait at the barrier, then claim at the same moment.
        let start = Arc::new(Barrier::new(2));
        let claim = |leases: &Leases| {
            let leases = leases.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                leases.claim(room).await
            })
        };
        let (ra, rb) = tokio::join!(claim(&a), claim(&b));
        let ra = ra.expect("task a").expect("claim a");
        let rb = rb.expect("task b").expect("claim b");
        let (lease, holder) = match (ra, rb) {
            (ClaimOutcome::Claimed(lease), ClaimOutcome::HeldBy(holder)) => {
                wins[0] += 1;
                assert_eq!(holder.node, node("node-a"), "round {round}");
                (lease, holder)
            }
            (ClaimOutcome::HeldBy(holder), ClaimOutcome::Claimed(lease)) => {
                wins[1] += 1;
                assert_eq!(holder.node, node("node-b"), "round {round}");
                (lease, holder)
            }
            (ra, rb) => panic!("round {round}: not exactly one winner: {ra:?} / {rb:?}"),
        };
        assert_eq!(
            holder.token,
            lease.token(),
            "round {round}: the loser sees the winner's token"
        );
        assert!(
            lease.token() > last,
            "round {round}: token {} after {}",
            lease.token(),
            last
        );
        last = lease.token();
        assert!(lease.release().await.expect("release"), "round {round}");
        assert_eq!(a.holder(room).await.expect("holder"), None);
    }
    println!("race: node-a won {} rounds, node-b {}", wins[0], wins[1]);
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn a_holder_that_stops_renewing_loses_the_room_after_the_ttl() {
    let prefix = random_prefix();
    let config = LeaseConfig::with_ttl(Duration::from_millis(300));
    let Some((a, _)) = leases(&prefix, "node-a", config).await else {
        return;
    };
    let Some((b, _)) = leases(&prefix, "node-b", config).await else {
        return;
    };
    let room = "physics-101";
    // The low-level claim starts no renewals: node-a claims once and then stays silent.
    let first = a.try_claim(room).await.expect("claim").expect("free room");
    let held = b.try_claim(room).await.expect("claim");
    assert_eq!(
        held,
        Err(LeaseHolder {
            node: node("node-a"),
            token: first.token
        })
    );
    let second = wait_for(
        Duration::from_secs(5),
        "node-b claims the expired lease",
        || {
            let b = b.clone();
            async move { b.try_claim(room).await.expect("claim").ok() }
        },
    )
    .await;
    assert!(second.token > first.token);
    // Fenced: node-a's late renewal and release are refused and change nothing.
    assert!(!a.renew(room, first.token).await.expect("renew"));
    assert!(!a.release(room, first.token).await.expect("release"));
    assert_eq!(
        a.holder(room).await.expect("holder"),
        Some(LeaseHolder {
            node: node("node-b"),
            token: second.token
        })
    );
    // Nor can node-b renew with node-a's token, or node-a with node-b's.
    assert!(!b.renew(room, first.token).await.expect("renew"));
    assert!(!a.renew(room, second.token).await.expect("renew"));
    assert!(b.renew(room, second.token).await.expect("renew"));
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn a_renewing_holder_keeps_the_room_for_many_ttls() {
    let prefix = random_prefix();
    // A TTL that a busy test machine's scheduling hiccups stay well inside.
    let config = LeaseConfig::with_ttl(Duration::from_secs(1));
    let Some((a, _)) = leases(&prefix, "node-a", config).await else {
        return;
    };
    let Some((b, _)) = leases(&prefix, "node-b", config).await else {
        return;
    };
    let room = "chemistry";
    let ClaimOutcome::Claimed(lease) = a.claim(room).await.expect("claim") else {
        panic!("free room not claimed");
    };
    let first_deadline = lease.local_deadline();
    // For three TTLs, node-b keeps finding node-a there under the same token.
    let until = Instant::now() + config.ttl * 3;
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    while Instant::now() < until {
        tick.tick().await;
        match b.try_claim(room).await.expect("claim") {
            Err(holder) => assert_eq!(holder.token, lease.token()),
            Ok(claimed) => panic!("node-b claimed a renewed lease: {claimed:?}"),
        }
    }
    assert_eq!(lease.lost_reason(), None);
    assert!(
        lease.local_deadline() > first_deadline,
        "the local deadline moves with renewals"
    );
    assert!(lease.release().await.expect("release"));
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn a_holder_whose_lease_was_taken_reports_lease_lost() {
    let prefix = random_prefix();
    // Long enough that the local deadline never passes first; the next renewal (within a
    // second) meets the new holder.
    let config = LeaseConfig::with_ttl(Duration::from_secs(3));
    let Some((a, mut a_lost)) = leases(&prefix, "node-a", config).await else {
        return;
    };
    let Some((b, _)) = leases(&prefix, "node-b", config).await else {
        return;
    };
    let room = "biology";
    let ClaimOutcome::Claimed(mut lease) = a.claim(room).await.expect("claim") else {
        panic!("free room not claimed");
    };
    // As if node-a had stalled past its TTL: the lease goes and node-b claims the room.
    let mut conn = raw(&redis_url()).await;
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}room:{room}:lease"))
        .query_async(&mut conn)
        .await
        .expect("del");
    let taken = b.try_claim(room).await.expect("claim").expect("free again");
    let lost = tokio::time::timeout(Duration::from_secs(5), a_lost.recv())
        .await
        .expect("LeaseLost within 5 s")
        .expect("channel open");
    assert_eq!(
        lost,
        LeaseLost {
            room: room.into(),
            token: lease.token(),
            reason: LostReason::Superseded
        }
    );
    assert_eq!(lease.lost().await, lost);
    // The loser gave nothing away: node-b still holds the room.
    assert_eq!(
        b.holder(room).await.expect("holder").map(|h| h.token),
        Some(taken.token)
    );
    cleanup(&redis_url(), &prefix).await;
}

#[tokio::test]
async fn a_partitioned_holder_reports_lease_lost_by_its_local_deadline() {
    let Some(mut server) = OwnRedis::start().await else {
        return;
    };
    let prefix = random_prefix();
    let config = LeaseConfig::with_ttl(Duration::from_millis(600));
    let redis = connect_to(&server.url(), &prefix)
        .await
        .expect("own redis-server");
    let (a, mut a_lost) = Leases::new(redis, node("node-a"), config).expect("config");
    let room = "history";
    let before_claim = Instant::now();
    let ClaimOutcome::Claimed(mut lease) = a.claim(room).await.expect("claim") else {
        panic!("free room not claimed");
    };
    let after_claim = Instant::now();
    // The deadline counts from when the claim was sent, before Redis started the TTL.
    let trusted = config.ttl - config.safety_margin;
    assert!(lease.local_deadline() >= before_claim + trusted);
    assert!(lease.local_deadline() <= after_claim + trusted);
    // Let one renewal go through, so the deadline is the renewed one.
    let claimed_deadline = lease.local_deadline();
    wait_until(
        Duration::from_secs(5),
        "a renewal moves the deadline",
        || {
            let moved = lease.local_deadline() > claimed_deadline;
            async move { moved }
        },
    )
    .await;

    // The partition: Redis disappears without a word.
    let killed_at = Instant::now();
    server.kill().await;

    // Redis cannot say anything now: the report must come from the holder's own deadline.
    let lost = tokio::time::timeout(config.ttl * 10, a_lost.recv())
        .await
        .expect("LeaseLost although Redis is gone")
        .expect("channel open");
    let received_at = Instant::now();
    assert_eq!(
        lost,
        LeaseLost {
            room: room.into(),
            token: lease.token(),
            reason: LostReason::DeadlineExpired
        }
    );
    assert_eq!(lease.lost().await, lost);
    // No renewal counted after the kill: the lease was trusted at most TTL − margin past it,
    // so the node gave the room up before Redis would have let anyone else claim it.
    let deadline = lease.local_deadline();
    assert!(
        deadline <= killed_at + trusted,
        "the local deadline moved after Redis was gone"
    );
    assert!(received_at >= deadline, "reported before its deadline");
    println!(
        "partition: lease lost {:?} after the kill, {:?} after the local deadline (TTL {:?}, margin {:?})",
        received_at - killed_at,
        received_at - deadline,
        config.ttl,
        config.safety_margin
    );
}

/// A Redis that lost its counters (a restart without persistence, simulated by deleting the
/// prefix's keys) hands out tokens from 1 again; a claim with a floor (the newest token the
/// store saw) gets one above it, and a floor below the counter never lowers it.
#[tokio::test]
async fn a_claim_above_a_floor_gets_a_token_above_it_even_after_the_counters_are_lost() {
    let prefix = random_prefix();
    let config = LeaseConfig::with_ttl(Duration::from_millis(300));
    let Some((a, _)) = leases(&prefix, "node-a", config).await else {
        return;
    };
    let room = "physics-101";
    let first = a
        .try_claim_above(room, FencingToken(41))
        .await
        .expect("claim")
        .expect("free room");
    assert_eq!(first.token, FencingToken(42));
    assert!(a.release(room, first.token).await.expect("release"));
    let second = a
        .try_claim_above(room, FencingToken(10))
        .await
        .expect("claim")
        .expect("free room");
    assert_eq!(
        second.token,
        FencingToken(43),
        "a low floor lowered the counter"
    );
    assert!(a.release(room, second.token).await.expect("release"));

    // Redis forgets everything.
    cleanup(&redis_url(), &prefix).await;
    let reset = a.try_claim(room).await.expect("claim").expect("free room");
    assert_eq!(
        reset.token,
        FencingToken(1),
        "the counter starts again without a floor"
    );
    assert!(a.release(room, reset.token).await.expect("release"));
    cleanup(&redis_url(), &prefix).await;
    let floored = match a.claim_above(room, second.token).await.expect("claim") {
        ClaimOutcome::Claimed(lease) => lease,
        ClaimOutcome::HeldBy(holder) => panic!("held by {holder:?}"),
    };
    assert_eq!(floored.token(), FencingToken(44));
    assert!(floored.release().await.expect("release"));
    cleanup(&redis_url(), &prefix).await;
}
