//! Room leases with fencing tokens.
//!
//! A room is hosted by the node that holds its lease: the key `{prefix}room:{room}:lease`, whose
//! value is `"{token} {node}"` and which expires after the lease TTL unless renewed. The token
//! comes from `{prefix}room:{room}:fence`, a counter that is only ever incremented (one step per
//! successful claim) and never expires, so a later claim always carries a larger token.
//!
//! Three Lua scripts do the work, each atomic on the Redis server:
//! - claim: if the lease key exists, answer its value; else raise the fence to at least the
//!   caller's floor, `INCR` it and `SET` the lease with `PX ttl`.
//!
//! The floor is for a Redis that restarted without persistence: its counters start again from
//! zero, and tokens handed out after it would be lower than those the store has already seen
//! (the store refuses a write whose token is older than the newest it saw). A node passes the
//! room's newest stored token as the floor ([`Leases::claim_above`]), so a new claim's token is
//! always above every token the store knows.
//! - renew: `PEXPIRE` the lease only if its value is still exactly `"{token} {node}"`.
//! - release: `DEL` the lease only if its value is still exactly `"{token} {node}"`.
//!
//! The holder also keeps a local deadline on the monotonic clock: the moment the claim (or the
//! last successful renewal) was *sent*, plus the TTL, minus a safety margin. Redis started its
//! TTL after that moment, so the lease cannot have expired in Redis before the local deadline,
//! as long as the two clocks run at about the same rate (the margin covers the difference). If no
//! renewal has succeeded by then (Redis unreachable, a partition, a stalled process), the lease is
//! reported lost without waiting for Redis, and the node stops the room before another node can
//! claim it.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::conn::Redis;
use crate::error::{ClusterError, Result};
use crate::ids::{FencingToken, NodeId, check_room_id};
use crate::registry::millis;

/// How long a lease lives, how often it is renewed and how much earlier than Redis the holder
/// gives it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The lease's TTL in Redis. After a node dies, its rooms can be claimed elsewhere after at
    /// most this long.
    pub ttl: Duration,
    /// How often the holder renews (by default a third of the TTL, so two renewals may fail
    /// before the lease is in danger).
    pub renew_every: Duration,
    /// How much before the TTL the holder considers the lease lost if no renewal got through.
    /// Covers clock-rate differences and the time to stop a room.
    pub safety_margin: Duration,
}

impl Default for LeaseConfig {
    /// TTL 5 s, renewal every 5/3 s, margin 1 s.
    fn default() -> Self {
        let ttl = Duration::from_secs(5);
        LeaseConfig {
            ttl,
            renew_every: ttl / 3,
            safety_margin: Duration::from_secs(1),
        }
    }
}

impl LeaseConfig {
    /// A configuration with this TTL, renewal every TTL/3 and a margin of TTL/5.
    pub fn with_ttl(ttl: Duration) -> LeaseConfig {
        LeaseConfig {
            ttl,
            renew_every: ttl / 3,
            safety_margin: ttl / 5,
        }
    }

    /// Checks that the numbers can work: a TTL of at least 10 ms, a non-zero renewal period and
    /// margin, and a renewal period shorter than the time the lease is trusted locally
    /// (TTL − margin).
    pub fn validate(&self) -> Result<()> {
        let problem = if self.ttl < Duration::from_millis(10) {
            Some("the lease TTL must be at least 10 ms")
        } else if self.safety_margin.is_zero() || self.safety_margin >= self.ttl {
            Some("the lease safety margin must be above zero and below the TTL")
        } else if self.renew_every.is_zero() || self.renew_every >= self.ttl - self.safety_margin {
            Some("the lease renewal period must be above zero and below TTL minus the margin")
        } else {
            None
        };
        match problem {
            Some(p) => Err(ClusterError::InvalidConfig(p.into())),
            None => Ok(()),
        }
    }

    /// How long a lease is trusted locally after the claim or renewal was sent.
    fn trusted_for(&self) -> Duration {
        self.ttl - self.safety_margin
    }

    /// Pause before retrying a renewal that failed with an error.
    fn retry_delay(&self) -> Duration {
        (self.renew_every / 4).max(Duration::from_millis(5))
    }
}

/// Who holds a room's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The hosting node.
    pub node: NodeId,
    /// Its fencing token.
    pub token: FencingToken,
}

impl LeaseHolder {
    /// The value stored in the lease key.
    fn encode(&self) -> String {
        format!("{} {}", self.token, self.node)
    }

    fn decode(value: &str) -> Result<LeaseHolder> {
        let bad = |detail: &str| ClusterError::Decode {
            what: "lease value",
            detail: detail.to_owned(),
        };
        let (token, node) = value
            .split_once(' ')
            .ok_or_else(|| bad("no space between token and node"))?;
        let token = token.parse().map_err(|_| bad("token is not a number"))?;
        let node = NodeId::new(node).map_err(|_| bad("invalid node id"))?;
        Ok(LeaseHolder {
            node,
            token: FencingToken(token),
        })
    }
}

/// Why a lease was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// Redis answered a renewal: the lease is no longer ours (it expired and perhaps another
    /// node claimed it, or it was deleted).
    Superseded,
    /// No renewal succeeded before the local deadline (Redis unreachable or too slow). Decided
    /// locally, without an answer from Redis.
    DeadlineExpired,
}

/// A lease this node held and no longer holds. The node must stop the room at once (and tell
/// its clients to reconnect): another node may claim it from the moment the lease expires in
/// Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLost {
    /// The room.
    pub room: String,
    /// The token of the lost lease.
    pub token: FencingToken,
    /// Why.
    pub reason: LostReason,
}

/// A successful claim at the lowest level: the token and the local deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    /// The new fencing token.
    pub token: FencingToken,
    /// Until when the lease is trusted locally (claim sent + TTL − margin).
    pub deadline: Instant,
}

/// The answer to a claim.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// This node now hosts the room; the lease renews itself until released or lost.
    Claimed(RoomLease),
    /// Another node holds the room; or this node does, under an earlier claim (for example one
    /// from before a restart with the same node id, which expires after the TTL).
    HeldBy(LeaseHolder),
}

static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current}
end
local floor = tonumber(ARGV[3])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if floor and fence < floor then
  redis.call('SET', KEYS[2], ARGV[3])
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, tostring(token)}
",
    )
});

static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

/// Claims, renews and releases room leases for one node.
///
/// Every lease lost by this node is reported once on the channel returned by
/// [`Leases::new`], and on the [`RoomLease`] itself.
#[derive(Debug, Clone)]
pub struct Leases {
    redis: Redis,
    node: NodeId,
    config: LeaseConfig,
    lost_tx: mpsc::UnboundedSender<LeaseLost>,
}

impl Leases {
    /// Leases for `node`, with the receiver of its [`LeaseLost`] reports.
    pub fn new(
        redis: Redis,
        node: NodeId,
        config: LeaseConfig,
    ) -> Result<(Leases, mpsc::UnboundedReceiver<LeaseLost>)> {
        config.validate()?;
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        Ok((
            Leases {
                redis,
                node,
                config,
                lost_tx,
            },
            lost_rx,
        ))
    }

    /// The node these leases are for.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The configuration.
    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// Claims `room` and, if it was free, starts renewing it.
    pub async fn claim(&self, room: &str) -> Result<ClaimOutcome> {
        self.claim_above(room, FencingToken(0)).await
    }

    /// Claims `room` as [`Leases::claim`] does, with a token above `floor` whatever the
    /// counter in Redis says (see the module docs): pass the newest token the store has seen
    /// for the room.
    pub async fn claim_above(&self, room: &str, floor: FencingToken) -> Result<ClaimOutcome> {
        match self.try_claim_above(room, floor).await? {
            Err(holder) => Ok(ClaimOutcome::HeldBy(holder)),
            Ok(claimed) => Ok(ClaimOutcome::Claimed(RoomLease::start(
                self.clone(),
                room.to_owned(),
                claimed,
            ))),
        }
    }

    /// Claims `room` once, without starting renewals: `Ok(Claimed)` if it was free, else the
    /// current holder. [`Leases::claim`] is what a node normally uses.
    pub async fn try_claim(&self, room: &str) -> Result<Result<Claimed, LeaseHolder>> {
        self.try_claim_above(room, FencingToken(0)).await
    }

    /// [`Leases::try_claim`] with a token above `floor` (see [`Leases::claim_above`]).
    pub async fn try_claim_above(
        &self,
        room: &str,
        floor: FencingToken,
    ) -> Result<Result<Claimed, LeaseHolder>> {
        check_room_id(room)?;
        let sent_at = Instant::now();
        let (won, value): (i64, String) = CLAIM
            .key(self.redis.lease_key(room))
            .key(self.redis.fence_key(room))
            .arg(self.node.as_str())
            .arg(millis(self.config.ttl))
            .arg(floor.0.to_string())
            .invoke_async(&mut self.redis.conn())
            .await?;
        if won == 1 {
            let token = value.parse().map_err(|_| ClusterError::Decode {
                what: "fencing token",
                detail: "not a number".into(),
            })?;
            tracing::info!(node.id = %self.node, room.id = %room, lease.token = token, "room claimed");
            Ok(Ok(Claimed {
                token: FencingToken(token),
                deadline: sent_at + self.config.trusted_for(),
            }))
        } else {
            let holder = LeaseHolder::decode(&value)?;
            tracing::debug!(
                node.id = %self.node,
                room.id = %room,
                holder.id = %holder.node,
                lease.token = holder.token.0,
                "room held elsewhere"
            );
            Ok(Err(holder))
        }
    }

    /// Extends this node's lease on `room` by a TTL if it still holds it under `token`.
    /// `Ok(false)`: it does not (expired, claimed by another node, released).
    pub async fn renew(&self, room: &str, token: FencingToken) -> Result<bool> {
        check_room_id(room)?;
        let value = self.holder_value(token);
        let renewed: i64 = RENEW
            .key(self.redis.lease_key(room))
            .arg(value)
            .arg(millis(self.config.ttl))
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(renewed == 1)
    }

    /// Deletes this node's lease on `room` if it still holds it under `token`. `Ok(false)`: it
    /// did not, and nothing changed.
    pub async fn release(&self, room: &str, token: FencingToken) -> Result<bool> {
        check_room_id(room)?;
        let released: i64 = RELEASE
            .key(self.redis.lease_key(room))
            .arg(self.holder_value(token))
            .invoke_async(&mut self.redis.conn())
            .await?;
        tracing::info!(
            node.id = %self.node,
            room.id = %room,
            lease.token = token.0,
            released = released == 1,
            "room lease released"
        );
        Ok(released == 1)
    }

    /// Who hosts `room`, if anyone.
    pub async fn holder(&self, room: &str) -> Result<Option<LeaseHolder>> {
        check_room_id(room)?;
        let value: Option<String> = redis::cmd("GET")
            .arg(self.redis.lease_key(room))
            .query_async(&mut self.redis.conn())
            .await?;
        value.as_deref().map(LeaseHolder::decode).transpose()
    }

    fn holder_value(&self, token: FencingToken) -> String {
        LeaseHolder {
            node: self.node.clone(),
            token,
        }
        .encode()
    }
}

/// What the renewal task tells the lease handle.
#[derive(Debug, Clone, Copy)]
struct LeaseState {
    deadline: Instant,
    lost: Option<LostReason>,
}

/// A lease this node holds, renewed in the background every [`LeaseConfig::renew_every`].
///
/// When the lease is lost (see [`LostReason`]) renewals stop, a [`LeaseLost`] goes out on the
/// node's channel, and [`RoomLease::lost`] returns. Dropping the handle stops renewing without
/// releasing (the lease then expires after the TTL); [`RoomLease::release`] frees the room at
/// once.
#[derive(Debug)]
pub struct RoomLease {
    leases: Leases,
    room: String,
    token: FencingToken,
    state: watch::Receiver<LeaseState>,
    task: JoinHandle<()>,
}

impl RoomLease {
    fn start(leases: Leases, room: String, claimed: Claimed) -> RoomLease {
        let (state_tx, state) = watch::channel(LeaseState {
            deadline: claimed.deadline,
            lost: None,
        });
        let task = tokio::spawn(renew_loop(
            leases.clone(),
            room.clone(),
            claimed.token,
            claimed.deadline,
            state_tx,
        ));
        RoomLease {
            leases,
            room,
            token: claimed.token,
            state,
            task,
        }
    }

    /// The room.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The lease's fencing token. Pass it with writes that must come from the current host.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// Until when the lease is trusted locally: the last successful claim or renewal's send
    /// time plus TTL minus the safety margin.
    pub fn local_deadline(&self) -> Instant {
        self.state.borrow().deadline
    }

    /// Whether the lease has been lost, and why.
    pub fn lost_reason(&self) -> Option<LostReason> {
        self.state.borrow().lost
    }

    /// Waits until the lease is lost. Use it in the room task's `select!` to stop the room.
    pub async fn lost(&mut self) -> LeaseLost {
        let reason = loop {
            if let Some(reason) = self.state.borrow_and_update().lost {
                break reason;
            }
            if self.state.changed().await.is_err() {
                // The task ended without a verdict: it was aborted, which only `Drop` does, so
                // this cannot happen while `self` is borrowed. Treat it as lost to be safe.
                break LostReason::DeadlineExpired;
            }
        };
        LeaseLost {
            room: self.room.clone(),
            token: self.token,
            reason,
        }
    }

    /// Stops renewing and deletes the lease if this node still holds it. `Ok(false)`: the lease
    /// had already gone.
    pub async fn release(self) -> Result<bool> {
        self.task.abort();
        self.leases.release(&self.room, self.token).await
    }
}

impl Drop for RoomLease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Renews until a renewal is refused or the local deadline passes without one succeeding.
async fn renew_loop(
    leases: Leases,
    room: String,
    token: FencingToken,
    mut deadline: Instant,
    state: watch::Sender<LeaseState>,
) {
    let config = leases.config;
    let mut next = deadline - config.trusted_for() + config.renew_every;
    let reason = loop {
        tokio::time::sleep_until(next.min(deadline)).await;
        let sent_at = Instant::now();
        if sent_at >= deadline {
            break LostReason::DeadlineExpired;
        }
        // A renewal that answers after the deadline is no use: the lease is already given up.
        match tokio::time::timeout_at(deadline, leases.renew(&room, token)).await {
            Err(_) => break LostReason::DeadlineExpired,
            Ok(Ok(true)) => {
                deadline = sent_at + config.trusted_for();
                next = sent_at + config.renew_every;
                state.send_modify(|s| s.deadline = deadline);
                tracing::trace!(node.id = %leases.node, room.id = %room, lease.token = token.0, "lease renewed");
            }
            Ok(Ok(false)) => break LostReason::Superseded,
            Ok(Err(e)) => {
                tracing::warn!(
                    node.id = %leases.node,
                    room.id = %room,
                    lease.token = token.0,
                    error = %e,
                    "lease renewal failed, retrying until the local deadline"
                );
                next = sent_at + config.retry_delay();
            }
        }
    };
    tracing::warn!(
        node.id = %leases.node,
        room.id = %room,
        lease.token = token.0,
        reason = ?reason,
        "room lease lost"
    );
    state.send_modify(|s| s.lost = Some(reason));
    let _ = leases.lost_tx.send(LeaseLost {
        room: room.clone(),
        token,
        reason,
    });
    if reason == LostReason::DeadlineExpired {
        // Redis may still hold the lease for us (a slow answer rather than a dead link): free
        // it if so, so another node need not wait for the TTL. Fenced by the token, so this
        // never touches a newer holder's lease.
        let attempt = tokio::time::timeout(config.ttl, leases.release(&room, token)).await;
        if let Ok(Err(e)) = attempt {
            tracing::debug!(room.id = %room, error = %e, "release after a lost lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_values_round_trip_and_bad_ones_are_errors() {
        let holder = LeaseHolder {
            node: NodeId::new("n-1").unwrap(),
            token: FencingToken(42),
        };
        assert_eq!(holder.encode(), "42 n-1");
        assert_eq!(LeaseHolder::decode("42 n-1").unwrap(), holder);
        for bad in ["", "42", "x n-1", "42 bad node", "-1 n"] {
            assert!(LeaseHolder::decode(bad).is_err(), "{bad:?} decoded");
        }
    }

    #[test]
    fn configs_are_validated() {
        assert!(LeaseConfig::default().validate().is_ok());
        assert!(
            LeaseConfig::with_ttl(Duration::from_millis(300))
                .validate()
                .is_ok()
        );
        let bad = [
            LeaseConfig::with_ttl(Duration::from_millis(5)),
            LeaseConfig {
                safety_margin: Duration::from_secs(5),
                ..LeaseConfig::default()
            },
            LeaseConfig {
                renew_every: Duration::from_secs(4),
                ..LeaseConfig::default()
            },
            LeaseConfig {
                renew_every: Duration::ZERO,
                ..LeaseConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?} accepted");
        }
    }
}
