//! Several Lectern nodes on one Redis: the node registry, room leases with fencing tokens,
//! placement of new rooms, and commands from one node to the room another node hosts.
//!
//! A single node needs none of this (`cargo run` is one process with a SQLite file). With
//! several nodes, PostgreSQL holds what lasts and Redis holds who is where, as LiveKit does.
//! This crate is the Redis half; the server wires it in.
//!
//! # The contract
//!
//! **Keys** (every key and channel starts with a configurable prefix, `lectern:` by default in
//! the server, a random one in tests):
//!
//! | key or channel | type | TTL | what |
//! |---|---|---|---|
//! | `{p}node:{node}` | string (JSON [`NodeInfo`]) | registry TTL, refreshed per heartbeat | a live node: URL, media IPs, drain flag, load |
//! | `{p}nodes` | set of node ids | none | index of the node entries; ids whose entry expired are dropped when listed |
//! | `{p}room:{room}:lease` | string `"{token} {node}"` | lease TTL, refreshed per renewal | who hosts the room |
//! | `{p}room:{room}:fence` | integer | none | the room's fencing counter; only grows |
//! | `{p}inbox:{node}` | pub/sub channel | | commands to the node and replies to its commands |
//!
//! **Registry** ([`NodeRegistry`]): a node writes its [`NodeInfo`] with a TTL at every heartbeat
//! ([`NodeRegistry::spawn_heartbeat`]); a node that stops (crash, partition) vanishes from
//! [`NodeRegistry::live_nodes`] when the TTL runs out. Heartbeat at least three times per TTL.
//!
//! **Leases** ([`Leases`], see the [`lease`] module): a room is hosted by the node holding its
//! lease. [`Leases::claim`] is atomic (one Lua script: take the lease only if free, with a
//! token from the room's counter, raised first to a floor with [`Leases::claim_above`]); renewal and release act only while the stored value is still
//! this node's token. The holder renews every TTL/3 and keeps a local deadline on the monotonic
//! clock (claim or last renewal *sent* + TTL − safety margin): if no renewal has succeeded by
//! then, the lease is reported lost ([`LeaseLost`], reason [`LostReason::DeadlineExpired`])
//! without waiting for Redis. A node must stop a room as soon as its lease is lost, and then
//! tell the room's clients to reconnect. Because the local deadline falls before Redis lets the
//! lease go, a partitioned node stops its rooms before any other node can claim them; the
//! fencing token lets storage refuse a stale host's writes if a stop comes late anyway (a
//! process paused for longer than the margin).
//!
//! **Placement** ([`choose_node`]): pure; of the two live nodes that rank highest for the room
//! (rendezvous hashing), the less loaded by a documented score ("the power of two choices", so
//! a burst of rooms placed on one heartbeat's figures spreads); deterministic per room.
//!
//! **Commands** ([`CommandBus`], see the [`commands`] module): a typed [`RoomCommand`] is
//! published to the hosting node's inbox and its [`CommandReply`] awaited with a timeout. A
//! target that is not listening fails at once ([`ClusterError::TargetGone`]); a reply that does
//! not come in time is a [`ClusterError::Timeout`] (done or not: commands are safe to repeat).
//!
//! # Wiring it into a node
//!
//! ```no_run
//! # async fn node() -> Result<(), lectern_cluster::ClusterError> {
//! use std::time::Duration;
//! use lectern_cluster::*;
//!
//! let redis = Redis::connect("redis://127.0.0.1:6379", "lectern:").await?;
//! let me = NodeId::new("node-1")?;
//!
//! // Registry: heartbeat every 2 s, gone 6 s after the last one.
//! let registry = NodeRegistry::new(redis.clone(), Duration::from_secs(6))?;
//! let (status, status_rx) = tokio::sync::watch::channel(NodeInfo {
//!     node: me.clone(),
//!     base_url: "https://node-1.example.org".into(),
//!     media_ips: vec!["192.0.2.10".parse().expect("an IP")],
//!     draining: false,
//!     load: NodeLoad::default(),
//! });
//! let heartbeat = registry.spawn_heartbeat(status_rx, Duration::from_secs(2));
//!
//! // Leases, with one channel for every lease this node loses.
//! let (leases, mut lost) = Leases::new(redis.clone(), me.clone(), LeaseConfig::default())?;
//! // Commands for the rooms this node hosts arrive on `incoming`.
//! let (bus, mut incoming) = CommandBus::start(redis, me.clone(), 256).await?;
//!
//! // A join for a room nobody hosts: host it here if this node is the placement's choice.
//! let room = "algebra-101";
//! let nodes = registry.live_nodes().await?;
//! if choose_node(&nodes, &PlacementWeights::default(), room) == Some(&me) {
//!     match leases.claim(room).await? {
//!         ClaimOutcome::Claimed(mut lease) => {
//!             // Run the room; stop it (and send its clients away) when this returns.
//!             let _lost: LeaseLost = lease.lost().await;
//!         }
//!         ClaimOutcome::HeldBy(holder) => {
//!             // Send the client to `registry.node(&holder.node)`'s base URL.
//!             let _host = registry.node(&holder.node).await?;
//!         }
//!     }
//! }
//!
//! // The REST API acting on a room wherever it is hosted.
//! let reply = bus
//!     .send_to_room(&leases, room, &RoomCommand::EndClass, Duration::from_secs(3))
//!     .await?;
//! # let _ = (reply, &mut lost, &mut incoming, status);
//! heartbeat.stop().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Failure modes
//!
//! - **Redis unreachable**: commands fail with [`ClusterError::Redis`] and the connection
//!   manager reconnects in the background. Heartbeats fail (entries expire after the TTL);
//!   renewals fail, so every lease is reported lost at its local deadline and the node stops its
//!   rooms. When Redis is back, rooms are claimed again by whichever node clients reach.
//! - **Node crash**: its entry and leases expire after their TTLs; its rooms can then be
//!   claimed elsewhere. Commands to it fail with `TargetGone`.
//! - **Redis restart without persistence**: the fencing counters restart from zero, so tokens
//!   could repeat. The Lectern server keeps the newest token of each room in its store (which
//!   refuses older ones) and claims with [`Leases::claim_above`] that token, so new tokens stay
//!   above it; AOF (`appendonly yes`) also keeps the leases themselves. Registry entries come back with the next heartbeat.
//!   Leases do not: the next renewal of a lease Redis forgot answers "not yours", the room stops
//!   ([`LostReason::Superseded`]) and is claimed afresh when its clients reconnect.
//! - **Clock**: only the monotonic clock of each node and Redis's own TTLs are used; wall clocks
//!   may disagree. The safety margin must cover how much faster a node's clock can run than
//!   Redis's over one TTL, plus the time to stop a room.
//! - **Redis Cluster** is not supported (the scripts touch keys of several slots); use one Redis,
//!   with replicas and Sentinel for failover if needed. A failover can lose the last writes, with
//!   the same effect as a restart without persistence.
//!
//! # The Redis client
//!
//! [`redis`](https://crates.io/crates/redis) (redis-rs) 1.x with the `tokio-comp`,
//! `connection-manager` and `script` features. It is the most used Rust Redis client, maintained
//! under the redis-rs organisation with Redis Inc. involved and regular releases; its
//! `ConnectionManager` multiplexes one connection for all callers and reconnects in the
//! background with a bounded backoff (commands during the gap fail fast, which is what the lease
//! deadline needs); `Script` runs Lua with `EVALSHA` and falls back to `EVAL` after a Redis
//! restart; a dedicated async `PubSub` connection carries the command channel. `fred` was the
//! other candidate (richer pooling and built-in resubscription), but it is larger and we need
//! little of it; the one reconnect we do ourselves (the pub/sub listener) is a short loop.

pub mod commands;
mod conn;
mod error;
mod ids;
pub mod lease;
mod placement;
mod registry;

pub use commands::{CommandBus, CommandReply, IncomingCommand, RoomCommand};
pub use conn::Redis;
pub use error::{ClusterError, Result};
pub use ids::{FencingToken, MAX_NODE_ID_LEN, MAX_ROOM_ID_LEN, NodeId, check_room_id};
pub use lease::{
    ClaimOutcome, Claimed, LeaseConfig, LeaseHolder, LeaseLost, Leases, LostReason, RoomLease,
};
pub use placement::{PlacementWeights, choose_node};
pub use registry::{HeartbeatTask, NodeInfo, NodeLoad, NodeRegistry};
