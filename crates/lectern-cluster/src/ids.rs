//! Node ids, room ids and fencing tokens.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// The longest node id accepted.
pub const MAX_NODE_ID_LEN: usize = 64;
/// The longest room id accepted (the wire's limit for a room id).
pub const MAX_ROOM_ID_LEN: usize = 128;

/// A node's id: 1 to 64 characters from `[A-Za-z0-9._-]`, unique in the cluster.
///
/// The restricted alphabet keeps ids safe inside Redis keys, channel names and the lease value
/// (`"{token} {node}"`), which is split on the first space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<NodeId, ClusterError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= MAX_NODE_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(NodeId(id))
        } else {
            Err(ClusterError::InvalidNodeId(id.chars().take(80).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = ClusterError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        NodeId::new(value)
    }
}

impl From<NodeId> for String {
    fn from(value: NodeId) -> String {
        value.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a room id before it goes into a Redis key: 1 to 128 characters, none a control
/// character. Room ids are otherwise opaque here.
pub fn check_room_id(room: &str) -> Result<(), ClusterError> {
    let chars = room.chars().count();
    if chars == 0 || chars > MAX_ROOM_ID_LEN || room.chars().any(char::is_control) {
        return Err(ClusterError::InvalidRoomId);
    }
    Ok(())
}

/// A room lease's fencing token: taken from a per-room counter that only grows, one step per
/// successful claim. A larger token is a later claim; whoever stores state for a room can refuse
/// writes that carry a token smaller than the largest it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(pub u64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        assert!(NodeId::new("node-1.eu_west").is_ok());
        for bad in ["", "a b", "a:b", "é", &"x".repeat(65), "a\nb"] {
            assert!(NodeId::new(bad).is_err(), "{bad:?} accepted");
        }
        let parsed: Result<NodeId, _> = serde_json::from_str("\"bad id\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn room_ids_are_checked() {
        assert!(check_room_id("algebra.2026-09-01T10:00.group-2").is_ok());
        assert!(check_room_id("salle de classe é").is_ok());
        assert!(check_room_id(&"é".repeat(128)).is_ok());
        for bad in ["", "a\u{0}b", "line\nbreak"] {
            assert!(check_room_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_room_id(&"x".repeat(129)).is_err());
    }
}
