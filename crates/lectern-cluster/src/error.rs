//! The crate's error type.

use crate::ids::NodeId;

/// Everything that can go wrong talking to the cluster.
///
/// Redis errors are kept whole (their kind tells a dropped connection from a refused command);
/// the other variants are this crate's own decisions.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or failed a command, or the connection is down. The connection manager
    /// reconnects in the background; the caller may retry.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A node id that is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid node id: {0}")]
    InvalidNodeId(String),
    /// A room id that is empty, longer than 128 characters or holds control characters.
    #[error("invalid room id (1 to 128 characters, no control characters)")]
    InvalidRoomId,
    /// A configuration that cannot work (for example a lease safety margin not below the TTL).
    #[error("invalid cluster configuration: {0}")]
    InvalidConfig(String),
    /// Something stored in Redis or received on a channel did not decode. Another version of
    /// Lectern, or something else, wrote it.
    #[error("undecodable {what} in redis: {detail}")]
    Decode {
        /// What was being read (a lease value, a node entry, a command envelope).
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// No node holds a lease on the room, so there is no one to send a command to.
    #[error("no node hosts room {room}")]
    NotHosted {
        /// The room asked for.
        room: String,
    },
    /// The target node is not subscribed to its command channel: it stopped or lost Redis.
    #[error("node {node} is not listening for commands")]
    TargetGone {
        /// The node the command was for.
        node: NodeId,
    },
    /// The target received nothing it answered within the timeout. The command may or may not
    /// have been carried out.
    #[error("no reply from node {node} within {timeout_ms} ms")]
    Timeout {
        /// The node the command was for.
        node: NodeId,
        /// The timeout that passed, in milliseconds.
        timeout_ms: u64,
    },
    /// The command bus of this node has stopped (its listener task ended).
    #[error("the command bus is closed")]
    BusClosed,
}

/// Shorthand for results of this crate.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
