//! This node's part in a cluster (`[cluster]` with a `redis_url`): its registry entry and
//! heartbeat with its load, the room leases it holds, and where a room goes when a hello
//! arrives for it. Built on `lectern-cluster` (see its crate docs for the Redis contract).
//!
//! One node (`redis_url` empty, the default) uses none of this: the registry then starts every
//! room locally, as before.
//!
//! **Where a hello goes** ([`Cluster::place`], called by the room registry when no local task
//! runs the room):
//! 1. the room's lease is held by another live node: redirect there;
//! 2. held by a node that is gone (its registry entry expired, its lease not yet), or by this
//!    node under an older claim: the room is moving (the client retries shortly);
//! 3. unheld: [`lectern_cluster::choose_node`] over the live nodes picks the least loaded; if
//!    it is another node, redirect there with `placed=1` in the URL; if it is this node (or the
//!    hello came with `placed=1`), claim the lease (a lost race redirects to the winner) and
//!    host the room.
//!
//! **Draining** ([`Cluster::drain`]): the entry says `draining` at once, and step 3 always
//! places the room among the other live nodes that are not draining (`placed=1` included,
//! since it may come from a node whose view is older); only when there is none does this node
//! claim the room itself, so that a class is never refused. Steps 1 and 2 are unchanged, and a
//! room already running here never reaches [`Cluster::place`].
//!
//! `placed=1` is what keeps a client from bouncing between nodes whose views of the loads
//! differ: a node that receives it hosts the room rather than place it again. It is one
//! placement hop at most; a client can set it by hand, which only makes that node host an
//! unheld room (it can never take a held one).

mod config;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lectern_cluster::{
    ClaimOutcome, ClusterError, CommandBus, CommandReply, FencingToken, HeartbeatTask,
    IncomingCommand, LeaseHolder, Leases, NodeId, NodeInfo, NodeLoad, NodeRegistry,
    PlacementWeights, Redis, RoomCommand, RoomLease, choose_node,
};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub use config::{ClusterConfig, check_base_url};

use crate::metrics::Metrics;

/// Where a room is to be hosted, as [`Cluster::place`] decided.
#[derive(Debug)]
pub enum Placement {
    /// Here: this node now holds the room's lease.
    Here(RoomLease),
    /// On another node: the WebSocket URL to send the client to.
    Elsewhere { url: String },
    /// Between nodes (the old host's lease has not expired yet): retry shortly.
    Moving,
}

/// This node in the cluster.
#[derive(Debug)]
pub struct Cluster {
    me: NodeId,
    registry: NodeRegistry,
    leases: Leases,
    status: watch::Sender<NodeInfo>,
    heartbeat: std::sync::Mutex<Option<HeartbeatTask>>,
    weights: PlacementWeights,
    metrics: Arc<Metrics>,
    /// Commands to and from the rooms of other nodes (see `rooms::admin`).
    bus: CommandBus,
    /// The commands other nodes send here, until [`Cluster::take_commands`].
    incoming: std::sync::Mutex<Option<mpsc::Receiver<IncomingCommand>>>,
}

/// Most commands from other nodes waiting here; more are answered "busy".
const COMMAND_QUEUE: usize = 256;

/// How long an administrator's action on a room may take: the room task's answer on this node,
/// or the hosting node's reply over the command bus.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(5);

impl Cluster {
    /// Connects to Redis, registers this node and starts its heartbeat. `addr` is the address
    /// the HTTP server listens on (for the default node id and URL), `public_url` the server's
    /// base URL. Leases this node loses are each reported on the room's own lease handle.
    pub async fn start(
        config: &ClusterConfig,
        addr: SocketAddr,
        public_url: &str,
        media_ips: Vec<IpAddr>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let me = if config.node_id.is_empty() {
            default_node_id(addr.port())
        } else {
            NodeId::new(&config.node_id)?
        };
        let base_url = if !config.advertise_url.is_empty() {
            config.advertise_url.trim_end_matches('/').to_owned()
        } else if !public_url.is_empty() {
            public_url.trim_end_matches('/').to_owned()
        } else {
            format!("http://{addr}")
        };
        let redis = Redis::connect(&config.redis_url, &config.key_prefix).await?;
        let beat = Duration::from_millis(config.heartbeat_interval_ms);
        let registry = NodeRegistry::new(redis.clone(), beat * 3)?;
        // Each room task watches its own lease; the node-wide channel is not needed.
        let (leases, _lost) = Leases::new(redis.clone(), me.clone(), config.lease())?;
        let (bus, incoming) = CommandBus::start(redis, me.clone(), COMMAND_QUEUE).await?;
        let info = NodeInfo {
            node: me.clone(),
            base_url: base_url.clone(),
            media_ips,
            draining: false,
            load: NodeLoad::default(),
        };
        // The first entry is written before any hello can be placed.
        registry.heartbeat(&info).await?;
        let (status, status_rx) = watch::channel(info);
        let heartbeat = registry.spawn_heartbeat(status_rx, beat);
        info!(node.id = %me, node.url = %base_url, "joined the cluster");
        Ok(Arc::new(Cluster {
            me,
            registry,
            leases,
            status,
            heartbeat: std::sync::Mutex::new(Some(heartbeat)),
            weights: PlacementWeights::default(),
            metrics,
            bus,
            incoming: std::sync::Mutex::new(Some(incoming)),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.me
    }

    /// Decides where `room` is hosted (see the module docs). `placed_here`: the hello came
    /// with `placed=1`, so this node hosts the room if nobody does. `floor`: the newest fencing
    /// token the store has seen for the room; a claim made here gets a token above it, even if
    /// Redis lost its counters (see `Leases::claim_above`).
    pub async fn place(
        &self,
        room: &str,
        placed_here: bool,
        floor: FencingToken,
    ) -> Result<Placement, ClusterError> {
        if let Some(holder) = self.leases.holder(room).await? {
            return self.to_holder(room, holder).await;
        }
        let draining = self.status.borrow().draining;
        if !placed_here || draining {
            let mut nodes = self.registry.live_nodes().await?;
            if draining {
                // Our own entry may not say so yet.
                nodes.retain(|n| n.node != self.me);
            }
            if let Some(chosen) = choose_node(&nodes, &self.weights, room)
                && *chosen != self.me
                && let Some(info) = nodes.iter().find(|n| &n.node == chosen)
            {
                return Ok(Placement::Elsewhere {
                    url: ws_url(&info.base_url, room, true),
                });
            }
        }
        match self.leases.claim_above(room, floor).await? {
            ClaimOutcome::Claimed(lease) => {
                Metrics::inc(&self.metrics.leases_claimed);
                // Published at once (the heartbeat writes on every change), so that placements
                // right after this one, here or on other nodes, see the room.
                self.status.send_modify(|info| info.load.rooms += 1);
                Ok(Placement::Here(lease))
            }
            ClaimOutcome::HeldBy(holder) => self.to_holder(room, holder).await,
        }
    }

    async fn to_holder(&self, room: &str, holder: LeaseHolder) -> Result<Placement, ClusterError> {
        if holder.node == self.me {
            // An earlier claim of this node's (a room task stopping, or a previous run with the
            // same id): it is released or expires shortly.
            return Ok(Placement::Moving);
        }
        Ok(match self.registry.node(&holder.node).await? {
            Some(info) => Placement::Elsewhere {
                url: ws_url(&info.base_url, room, false),
            },
            None => Placement::Moving,
        })
    }

    /// The commands other nodes send to this node's rooms, once (for `rooms::serve_commands`).
    pub fn take_commands(&self) -> Option<mpsc::Receiver<IncomingCommand>> {
        self.incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Who holds `room`'s lease, if anyone.
    pub async fn holder(&self, room: &str) -> Result<Option<LeaseHolder>, ClusterError> {
        self.leases.holder(room).await
    }

    /// Sends `command` for `room` (hosted under `token`) to node `target` and waits for its
    /// reply, at most [`ACTION_TIMEOUT`].
    pub async fn send_command(
        &self,
        target: &NodeId,
        room: &str,
        token: FencingToken,
        command: &RoomCommand,
    ) -> Result<CommandReply, ClusterError> {
        self.bus
            .send(target, room, Some(token), command, ACTION_TIMEOUT)
            .await
    }

    /// Starts draining: the registry entry says so with the next heartbeat (at once), and
    /// [`Cluster::place`] sends new rooms to the other nodes.
    pub fn drain(&self) {
        self.status
            .send_if_modified(|info| !std::mem::replace(&mut info.draining, true));
    }

    /// Whether Redis answers now (for `/readyz`).
    pub async fn redis_ok(&self) -> bool {
        let check = self.registry.node(&self.me);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), check).await,
            Ok(Ok(_))
        )
    }

    /// Publishes this node's load with the next heartbeat (at once if it changed).
    pub fn report_load(&self, load: NodeLoad) {
        self.status.send_if_modified(|info| {
            let changed = info.load != load;
            info.load = load;
            changed
        });
    }

    /// Leaves the cluster: stops taking commands, stops the heartbeat and removes this node's
    /// entry at once.
    pub async fn stop(&self) {
        self.bus.stop();
        let heartbeat = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(heartbeat) = heartbeat
            && let Err(e) = heartbeat.stop().await
        {
            warn!(error = %e, "could not remove this node from the cluster registry");
        }
    }
}

/// Reports this node's load (rooms hosted, media peers, CPU share) every `every` until the
/// server shuts down. `media_peers` counts the media workers' peers.
pub async fn report_load(
    cluster: Arc<Cluster>,
    every: Duration,
    media_peers: impl Fn() -> u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut cpu = CpuSampler::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let rooms = cluster
            .metrics
            .rooms_hosted
            .load(std::sync::atomic::Ordering::Relaxed);
        cluster.report_load(NodeLoad {
            rooms: u32::try_from(rooms.max(0)).unwrap_or(u32::MAX),
            media_peers: media_peers(),
            cpu_share: cpu.sample(),
        });
    }
}

/// The WebSocket URL of `/ws` on the node at `base_url` (`http(s)://host[:port]`) for `room`,
/// with `placed=1` when the room was placed on that node.
pub fn ws_url(base_url: &str, room: &str, placed: bool) -> String {
    let base = base_url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    let placed = if placed { "&placed=1" } else { "" };
    format!("{base}/ws?room={}{placed}", percent_encode(room))
}

/// `text` with every byte but the URL-unreserved ones as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{hostname}-{port}`, cut to the node id alphabet and length.
fn default_node_id(port: u16) -> NodeId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    NodeId::new(format!("{host}-{port}"))
        .unwrap_or_else(|_| NodeId::new(format!("node-{port}")).expect("a valid node id"))
}

/// The process's share of the machine's CPU between two samples, from `/proc/self/stat`
/// (0 where that file does not exist).
#[derive(Debug, Default)]
struct CpuSampler {
    last: Option<(std::time::Instant, u64)>,
}

impl CpuSampler {
    fn sample(&mut self) -> f32 {
        let Some(ticks) = process_cpu_ticks() else {
            return 0.0;
        };
        let now = std::time::Instant::now();
        let share = match self.last {
            Some((at, before)) => {
                let secs = now.duration_since(at).as_secs_f64();
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                // Linux reports CPU time in USER_HZ ticks, 100 per second on every platform
                // Lectern runs on.
                let used = ticks.saturating_sub(before) as f64 / 100.0;
                if secs > 0.0 {
                    (used / secs / cores).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        // Rounded to 5 % so the entry is not rewritten for noise.
        ((share * 20.0).round() / 20.0) as f32
    }
}

/// utime + stime of this process, in clock ticks.
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace();
    // Fields 14 and 15 of the file are the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_follow_the_scheme_and_encode_the_room() {
        assert_eq!(
            ws_url("http://127.0.0.1:8081", "algebra", true),
            "ws://127.0.0.1:8081/ws?room=algebra&placed=1"
        );
        assert_eq!(
            ws_url("https://n1.example.edu/", "salle é&x", false),
            "wss://n1.example.edu/ws?room=salle%20%C3%A9%26x"
        );
    }

    #[test]
    fn default_node_ids_are_valid() {
        let id = default_node_id(8081);
        assert!(id.as_str().ends_with("-8081"), "{id}");
        assert!(process_cpu_ticks().is_some());
        let mut cpu = CpuSampler::default();
        assert_eq!(cpu.sample(), 0.0);
        assert!((0.0..=1.0).contains(&cpu.sample()));
    }
}
