//! The node registry: who is up, where to reach it, how loaded it is.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::conn::Redis;
use crate::error::{ClusterError, Result};
use crate::ids::NodeId;

/// A node's load, as it reports it with each heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Rooms the node hosts (holds a lease on).
    pub rooms: u32,
    /// Media peers (WebRTC connections) on the node.
    pub media_peers: u32,
    /// Share of the machine's CPU in use, 0.0 to 1.0 (all cores together).
    pub cpu_share: f32,
}

/// What a node says about itself in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id, unique in the cluster.
    pub node: NodeId,
    /// Where clients reach the node's HTTP and WebSocket endpoints, e.g. `https://n1.example.org`.
    pub base_url: String,
    /// The public IPs of the node's media sockets (its ICE candidates).
    pub media_ips: Vec<IpAddr>,
    /// True while the node drains: it keeps its rooms but takes no new ones.
    pub draining: bool,
    /// The load at the last heartbeat.
    pub load: NodeLoad,
}

/// Writes heartbeats and lists live nodes.
///
/// A node's entry is the key `{prefix}node:{id}` holding its [`NodeInfo`] as JSON, written with
/// a TTL at every heartbeat; a node that stops heartbeating (crash, partition) disappears when
/// the key expires. The set `{prefix}nodes` indexes the ids; listing drops ids whose key is gone.
#[derive(Debug, Clone)]
pub struct NodeRegistry {
    redis: Redis,
    ttl: Duration,
}

/// SET the entry with its TTL and add the id to the index, in one step.
static HEARTBEAT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
",
    )
});

/// Read every indexed entry, dropping ids whose entry has expired.
static LIST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then
    table.insert(out, v)
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
",
    )
});

impl NodeRegistry {
    /// A registry whose entries live `ttl` after each heartbeat. Heartbeat at least three
    /// times per TTL so one lost heartbeat does not drop the node.
    pub fn new(redis: Redis, ttl: Duration) -> Result<NodeRegistry> {
        if ttl < Duration::from_millis(10) {
            return Err(ClusterError::InvalidConfig(
                "the registry TTL must be at least 10 ms".into(),
            ));
        }
        Ok(NodeRegistry { redis, ttl })
    }

    /// The entries' TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Writes (or refreshes) the node's entry for another TTL.
    pub async fn heartbeat(&self, info: &NodeInfo) -> Result<()> {
        let json = serde_json::to_string(info).map_err(|e| ClusterError::Decode {
            what: "node entry",
            detail: e.to_string(),
        })?;
        let _: i64 = HEARTBEAT
            .key(self.redis.node_key(&info.node))
            .key(self.redis.nodes_key())
            .arg(json)
            .arg(millis(self.ttl))
            .arg(info.node.as_str())
            .invoke_async(&mut self.redis.conn())
            .await?;
        tracing::trace!(node.id = %info.node, "heartbeat");
        Ok(())
    }

    /// Removes the node's entry at once (a clean shutdown), instead of waiting for the TTL.
    pub async fn deregister(&self, node: &NodeId) -> Result<()> {
        let mut conn = self.redis.conn();
        let _: () = redis::pipe()
            .atomic()
            .del(self.redis.node_key(node))
            .ignore()
            .srem(self.redis.nodes_key(), node.as_str())
            .ignore()
            .query_async(&mut conn)
            .await?;
        tracing::info!(node.id = %node, "node deregistered");
        Ok(())
    }

    /// The nodes whose entry has not expired, sorted by id. Entries that do not decode (written
    /// by something else) are skipped with a warning.
    pub async fn live_nodes(&self) -> Result<Vec<NodeInfo>> {
        let raw: Vec<String> = LIST
            .key(self.redis.nodes_key())
            .arg(self.redis.node_key_prefix())
            .invoke_async(&mut self.redis.conn())
            .await?;
        let mut nodes: Vec<NodeInfo> = raw
            .iter()
            .filter_map(|json| match serde_json::from_str(json) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an undecodable node entry");
                    None
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// One node's entry, if it is live.
    pub async fn node(&self, node: &NodeId) -> Result<Option<NodeInfo>> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.redis.node_key(node))
            .query_async(&mut self.redis.conn())
            .await?;
        raw.map(|json| {
            serde_json::from_str(&json).map_err(|e| ClusterError::Decode {
                what: "node entry",
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    /// Heartbeats on a schedule: every `every`, and at once whenever `status` changes (a new
    /// load figure, the drain flag). A failed heartbeat is logged and retried at the next tick;
    /// the entry survives as long as one heartbeat per TTL gets through. `every` is at least
    /// 10 ms (a smaller one is raised to that).
    pub fn spawn_heartbeat(
        &self,
        mut status: watch::Receiver<NodeInfo>,
        every: Duration,
    ) -> HeartbeatTask {
        let registry = self.clone();
        let node = status.borrow().node.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = status.changed() => {
                        if changed.is_err() {
                            // The status sender is gone: the node is shutting down.
                            return;
                        }
                    }
                }
                let info = status.borrow_and_update().clone();
                if let Err(e) = registry.heartbeat(&info).await {
                    tracing::warn!(node.id = %info.node, error = %e, "heartbeat failed");
                }
            }
        });
        HeartbeatTask {
            registry: self.clone(),
            node,
            task,
        }
    }
}

/// A running heartbeat. Dropping it stops the heartbeats (the entry then expires after the
/// TTL); [`HeartbeatTask::stop`] also removes the entry at once.
#[derive(Debug)]
pub struct HeartbeatTask {
    registry: NodeRegistry,
    node: NodeId,
    task: JoinHandle<()>,
}

impl HeartbeatTask {
    /// Stops heartbeating and removes the node's entry.
    pub async fn stop(self) -> Result<()> {
        self.task.abort();
        self.registry.deregister(&self.node).await
    }
}

impl Drop for HeartbeatTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A duration in whole milliseconds for Redis (`PX`), at least 1.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
