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

/// The node a new room should go to: the less loaded of two candidates, the live nodes (not
/// draining) that rank highest for this room by a hash of the room id and the node id
/// (rendezvous hashing), as "the power of two choices" does. `None` when every node drains (or
/// there is none). With one or two live nodes that is the least loaded one.
///
/// Why not simply the least loaded node: the loads are those of the last heartbeats, so rooms
/// placed in a burst between two heartbeats all see the same figures, and the node with the
/// lowest score at that moment (a few percent less CPU, say) would take the whole burst. Two
/// candidates per room spread a burst over the nodes, and never pick the most loaded of three
/// or more. The choice depends only on the room and the list (not on its order or on chance), so
/// two nodes placing the same room at once choose the same node.
///
/// Between the two candidates: the lower [`PlacementWeights::score`], then fewer rooms, then the
/// higher rank.
pub fn choose_node<'a>(
    nodes: &'a [NodeInfo],
    weights: &PlacementWeights,
    room: &str,
) -> Option<&'a NodeId> {
    let mut ranked: Vec<(u64, &NodeInfo)> = nodes
        .iter()
        .filter(|n| !n.draining)
        .map(|n| (rank(room, n.node.as_str()), n))
        .collect();
    // Highest rank first (equal ranks, almost impossible, by id: the order never matters).
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.node.cmp(&b.1.node)));
    ranked
        .iter()
        .take(2)
        .min_by(|(rank_a, a), (rank_b, b)| {
            weights
                .score(&a.load)
                .cmp(&weights.score(&b.load))
                .then(a.load.rooms.cmp(&b.load.rooms))
                .then_with(|| rank_b.cmp(rank_a))
        })
        .map(|(_, n)| &n.node)
}

/// A node's rank for a room: 64-bit FNV-1a over the room id, a separator and the node id. Fixed
/// here (not std's hasher, which may change between Rust releases), so nodes of two builds agree.
fn rank(room: &str, node: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let bytes = room.bytes().chain([0xff]).chain(node.bytes());
    let hash = bytes.fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    // FNV's low bits mix poorly for short keys that differ at the end: finish with a
    // multiply-xorshift (splitmix64's).
    let mut z = hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
        choose_node(nodes, &PlacementWeights::default(), "room").map(NodeId::as_str)
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
    fn ties_go_to_fewer_rooms_then_the_rooms_rank() {
        // Same score (10 × 1 peer + 5 × 2 rooms = 20 = 10 × 2 peers + 5 × 0 rooms).
        let nodes = [node("z", 0, 2, 0.0, false), node("y", 2, 1, 0.0, false)];
        assert_eq!(chosen(&nodes), Some("z"));
        // Equal in every way: each room goes where it ranks higher, so rooms spread.
        let nodes = [node("b", 1, 1, 0.0, false), node("a", 1, 1, 0.0, false)];
        let weights = PlacementWeights::default();
        let on_a = (0..200)
            .filter(|i| {
                choose_node(&nodes, &weights, &format!("room-{i}")).map(NodeId::as_str) == Some("a")
            })
            .count();
        assert!((60..=140).contains(&on_a), "{on_a} of 200 rooms on a");
    }

    #[test]
    fn a_burst_on_stale_loads_spreads_and_never_takes_the_most_loaded() {
        // One heartbeat's figures for a whole burst: node a looks a little less busy.
        let nodes = [
            node("a", 4, 0, 0.10, false),
            node("b", 4, 0, 0.14, false),
            node("c", 4, 0, 0.12, false),
            node("d", 9, 30, 0.60, false),
        ];
        let weights = PlacementWeights::default();
        let mut counts = std::collections::HashMap::new();
        for i in 0..300 {
            let node = choose_node(&nodes, &weights, &format!("class-{i}")).unwrap();
            *counts.entry(node.as_str()).or_insert(0) += 1;
        }
        assert_eq!(counts.get("d"), None, "{counts:?}");
        for id in ["a", "b", "c"] {
            assert!(counts.get(id).copied().unwrap_or(0) >= 30, "{counts:?}");
        }
        // The least loaded still gets the largest share.
        assert!(
            counts["a"] > counts["b"] && counts["a"] > counts["c"],
            "{counts:?}"
        );
    }

    #[test]
    fn hostile_cpu_figures_do_not_win() {
        let nodes = [
            node("nan", 0, 0, f32::NAN, false),
            node("ok", 0, 0, 0.5, false),
        ];
        assert_eq!(chosen(&nodes), Some("ok"));
        let weights = PlacementWeights::default();
        let (neg, ok) = (node("neg", 0, 0, -5.0, false), node("ok", 0, 0, 0.0, false));
        assert_eq!(
            weights.score(&neg.load),
            weights.score(&ok.load),
            "a negative share counts as 0"
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
        fn choice_is_a_live_node_never_the_most_loaded_whatever_the_order(
            nodes in prop::collection::vec(arb_node(), 0..12),
            room in "[a-z0-9-]{1,12}",
            seed in any::<u64>(),
        ) {
            // The registry lists each node once.
            let mut nodes = nodes;
            let mut seen = std::collections::HashSet::new();
            nodes.retain(|n| seen.insert(n.node.clone()));
            let weights = PlacementWeights::default();
            let choice = choose_node(&nodes, &weights, &room).cloned();
            let live: Vec<&NodeInfo> = nodes.iter().filter(|n| !n.draining).collect();
            match &choice {
                None => prop_assert!(live.is_empty()),
                Some(id) => {
                    let best = nodes.iter().find(|n| &n.node == id && !n.draining);
                    prop_assert!(best.is_some(), "chose a draining or unknown node");
                    let chosen_score = live
                        .iter()
                        .filter(|n| &n.node == id)
                        .map(|n| weights.score(&n.load))
                        .min()
                        .unwrap_or(u64::MAX);
                    // Never strictly worse than every other live node.
                    let others: Vec<u64> = live
                        .iter()
                        .filter(|n| &n.node != id)
                        .map(|n| weights.score(&n.load))
                        .collect();
                    prop_assert!(others.is_empty() || others.iter().any(|s| chosen_score <= *s));
                    // With one or two live nodes, it is the least loaded.
                    if live.len() <= 2 {
                        prop_assert!(others.iter().all(|s| chosen_score <= *s));
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
            prop_assert_eq!(choose_node(&shuffled, &weights, &room).cloned(), choice);
        }
    }
}
