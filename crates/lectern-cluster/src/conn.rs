//! The Redis connection shared by the registry, the leases and the command bus, and the key
//! layout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{ClusterError, Result};
use crate::ids::NodeId;

/// How long one connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command may wait for its answer. Lease renewals are also bounded by the
/// lease's local deadline, whichever comes first.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first pause between reconnection attempts; each next one doubles.
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(50);
/// The longest pause between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Reconnection attempts in one round (50 + 100 + 200 ms of pauses). Commands sent during a round
/// wait for it, so it is kept short; the next command after a failed round starts a new one.
const RECONNECT_ATTEMPTS: usize = 3;

/// A connection to the cluster's Redis with the key prefix every key and channel of this crate
/// starts with. Cheap to clone: clones share one multiplexed connection.
///
/// Commands go through redis-rs's `ConnectionManager`, which reconnects in the background after
/// the connection drops: a command sent while Redis is away fails with a [`ClusterError::Redis`]
/// after the current reconnection round (well under a second; two seconds at most for a command
/// whose answer does not come), and a later one uses the new connection.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl fmt::Debug for Redis {
    // The client's connection info may hold a password: show the prefix only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`) and checks that Redis answers.
    /// Every key and channel gets `key_prefix` in front (for example `lectern:`), so several
    /// clusters, or parallel tests, can share one Redis.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Redis> {
        if key_prefix.len() > 64 || key_prefix.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ClusterError::InvalidConfig(
                "the key prefix must be at most 64 characters, without spaces or control characters"
                    .into(),
            ));
        }
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(MIN_RECONNECT_DELAY)
            .set_max_delay(MAX_RECONNECT_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        let mut conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Redis {
            client,
            conn,
            prefix: key_prefix.into(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A handle on the shared command connection.
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The client, to open dedicated connections (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// `{prefix}node:{node}`: a node's registry entry (JSON), with the registry TTL.
    pub(crate) fn node_key(&self, node: &NodeId) -> String {
        format!("{}node:{}", self.prefix, node)
    }

    /// The prefix of node entries, for the listing script.
    pub(crate) fn node_key_prefix(&self) -> String {
        format!("{}node:", self.prefix)
    }

    /// `{prefix}nodes`: the set of node ids that registered (an index; entries whose key has
    /// expired are dropped from it when listed).
    pub(crate) fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// `{prefix}room:{room}:lease`: `"{token} {node}"` of the holder, with the lease TTL.
    pub(crate) fn lease_key(&self, room: &str) -> String {
        format!("{}room:{}:lease", self.prefix, room)
    }

    /// `{prefix}room:{room}:fence`: the room's fencing counter (never expires).
    pub(crate) fn fence_key(&self, room: &str) -> String {
        format!("{}room:{}:fence", self.prefix, room)
    }

    /// `{prefix}inbox:{node}`: the pub/sub channel a node receives commands and replies on.
    pub(crate) fn inbox_channel(&self, node: &NodeId) -> String {
        format!("{}inbox:{}", self.prefix, node)
    }
}
