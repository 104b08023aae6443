//! Where a new room goes: a pure choice over the live nodes and their load.

use crate::ids::NodeId;
use crate::registry::{NodeInfo, NodeLoad};

/// How much each part of a node's load weighs in its score. The defaults reflect what costs a
/// node most: media peers (each a WebRTC connection forwarding packets), then the CPU it reports,
/// then rooms (a room with no media costs little).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementWeights {
    /// Points per media peer.
    pub per_media_peer: u64,
    /// Points per room.
    pub per_room: u64,
    /// Points for a fully busy CPU (`cpu_share` 1.0); scaled linearly.
    pub full_cpu: u64,
}

impl Default for PlacementWeights {
    /// 10 per media peer, 5 per room, 1,000 for a full CPU: a node at 50% CPU scores like one
    /// with 50 media peers.
    fn default() -> Self {
        PlacementWeights {
            per_media_peer: 10,
            per_room: 5,
            full_cpu: 1_000,
        }
    }
}

impl PlacementWeights {
    /// A node's score: `per_media_peer × media_peers + per_room × rooms + full_cpu × cpu_share`
    /// (CPU share clamped to 0..=1, a non-number counted as a full CPU; saturating, never
    /// overflowing). Lower is less loaded.
    pub fn score(&self, load: &NodeLoad) -> u64 {
        let cpu = if load.cpu_share.is_nan() {
            1.0
        } else {
            f64::from(load.cpu_share).clamp(0.0, 1.0)
        };
        // The product is at most `full_cpu`, so the cast back cannot overflow.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cpu_points = (cpu * self.full_cpu as f64).round() as u64;
        self.per_media_peer
            .saturating_mul(u64::from(load.media_peers))
            .saturating_add(self.per_room.saturating_mul(u64::from(load.rooms)))
            .saturating_add(cpu_points)
    }
}

/// The node a new room should go to: among the nodes that are not draining, the one with the
/// lowest [`PlacementWeights::score`]; on equal scores the one with fewer rooms, then the smallest
/// node id, so every node makes the same choice from the same list whatever its order. `None`
/// when every node drains (or there is none).
///
/// The loads are those of the last heartbeats, so rooms placed in a burst between two heartbeats
/// all see the same figures; the caller may add what it placed since to the chosen node's load.
pub fn choose_node<'a>(nodes: &'a [NodeInfo], weights: &PlacementWeights) -> Option<&'a NodeId> {
    nodes
        .iter()
        .filter(|n| !n.draining)
        .min_by(|a, b| {
            weights
                .score(&a.load)
                .cmp(&weights.score(&b.load))
                .then(a.load.rooms.cmp(&b.load.rooms))
                .then_with(|| a.node.cmp(&b.node))
        })
        .map(|n| &n.node)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn node(id: &str, rooms: u32, media_peers: u32, cpu_share: f32, draining: bool) -> NodeInfo {
        NodeInfo {
            node: NodeId::new(id).unwrap(),
            base_url: format!("http://{id}.test"),
            media_ips: vec![],
            draining,
            load: NodeLoad {
                rooms,
                media_peers,
                cpu_share,
            },
        }
    }

    fn chosen(nodes: &[NodeInfo]) -> Option<&str> {
        choose_node(nodes, &PlacementWeights::default()).map(NodeId::as_str)
    }

    #[test]
    fn least_loaded_wins_and_draining_nodes_are_skipped() {
        let nodes = [
            node("a", 3, 40, 0.5, false),
            node("b", 1, 10, 0.1, false),
            node("c", 0, 0, 0.0, true),
        ];
        assert_eq!(chosen(&nodes), Some("b"));
        assert_eq!(chosen(&nodes[2..]), None);
        assert_eq!(chosen(&[]), None);
    }

    #[test]
    fn media_peers_weigh_more_than_rooms() {
        // Many quiet rooms against one lecture with 60 students.
        let nodes = [
            node("quiet", 20, 0, 0.05, false),
            node("lecture", 1, 60, 0.05, false),
        ];
        assert_eq!(chosen(&nodes), Some("quiet"));
    }

    #[test]
    fn ties_go_to_fewer_rooms_then_smallest_id() {
        // Same score (10 × 1 peer + 5 × 2 rooms = 20 = 10 × 2 peers + 5 × 0 rooms).
        let nodes = [node("z", 0, 2, 0.0, false), node("y", 2, 1, 0.0, false)];
        assert_eq!(chosen(&nodes), Some("z"));
        let nodes = [node("b", 1, 1, 0.0, false), node("a", 1, 1, 0.0, false)];
        assert_eq!(chosen(&nodes), Some("a"));
    }

    #[test]
    fn hostile_cpu_figures_do_not_win() {
        let nodes = [
            node("nan", 0, 0, f32::NAN, false),
            node("ok", 0, 0, 0.5, false),
        ];
        assert_eq!(chosen(&nodes), Some("ok"));
        let nodes = [node("neg", 0, 0, -5.0, false), node("ok", 0, 0, 0.0, false)];
        assert_eq!(
            chosen(&nodes),
            Some("neg"),
            "a negative share counts as 0, then the id decides"
        );
        let huge = node("huge", u32::MAX, u32::MAX, f32::INFINITY, false);
        assert_eq!(
            PlacementWeights::default().score(&huge.load),
            u64::from(u32::MAX) * 10 + u64::from(u32::MAX) * 5 + 1_000
        );
    }

    fn arb_node() -> impl Strategy<Value = NodeInfo> {
        (
            "[a-e]{1,2}",
            0u32..50,
            0u32..500,
            prop_oneof![0.0f32..=1.0, Just(f32::NAN), -1.0f32..3.0],
            prop::bool::weighted(0.3),
        )
            .prop_map(|(id, rooms, peers, cpu, draining)| node(&id, rooms, peers, cpu, draining))
    }

    proptest! {
        #[test]
        fn choice_is_a_least_loaded_live_node_whatever_the_order(
            nodes in prop::collection::vec(arb_node(), 0..12),
            seed in any::<u64>(),
        ) {
            let weights = PlacementWeights::default();
            let choice = choose_node(&nodes, &weights).cloned();
            let live: Vec<&NodeInfo> = nodes.iter().filter(|n| !n.draining).collect();
            match &choice {
                None => prop_assert!(live.is_empty()),
                Some(id) => {
                    let best = nodes.iter().find(|n| &n.node == id && !n.draining);
                    prop_assert!(best.is_some(), "chose a draining or unknown node");
                    let best_score = live
                        .iter()
                        .filter(|n| &n.node == id)
                        .map(|n| weights.score(&n.load))
                        .min()
                        .unwrap_or(u64::MAX);
                    for n in &live {
                        prop_assert!(best_score <= weights.score(&n.load));
                    }
                }
            }
            // The same nodes in another order give the same node.
            let mut shuffled = nodes.clone();
            let len = shuffled.len();
            if len > 1 {
                let mut s = seed;
                for i in (1..len).rev() {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let j = usize::try_from(s >> 33).unwrap_or(0) % (i + 1);
                    shuffled.swap(i, j);
                }
            }
            prop_assert_eq!(choose_node(&shuffled, &weights).cloned(), choice);
        }
    }
}
