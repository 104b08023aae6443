//! Several nodes: the room task under its lease. A task whose lease is lost stops at once,
//! without writing anything more (another node may already host the room), and tells every
//! client to reconnect (`closing` with `room_moved`); the next hellos place the room again.
//! A task whose batch the store refused as a stale holder's (`StoreError::Fenced`: another node
//! took the room over while this one was stalled) stops the same way, having delivered nothing
//! of that batch.

use lectern_cluster::{LeaseLost, RoomLease};
use lectern_proto::CloseReason;
use tracing::{info, warn};

use super::task::RoomTask;
use crate::metrics::Metrics;

/// Waits until the lease is lost; never returns without one (a single node).
pub(super) async fn lost(lease: &mut Option<RoomLease>) -> LeaseLost {
    match lease {
        Some(lease) => lease.lost().await,
        None => std::future::pending().await,
    }
}

/// Gives the lease back after the room task stored its last state (idle close, shutdown).
pub(super) async fn release(lease: Option<RoomLease>) {
    let Some(lease) = lease else { return };
    if let Err(e) = lease.release().await {
        // It expires after its TTL anyway.
        warn!(error = %e, "could not release the room's lease");
    }
}

impl RoomTask {
    /// The lease is lost: drop every media peer and close every connection with `room_moved`.
    /// Nothing is stored: the room's state in the store is what the next host restores.
    pub(super) fn lease_lost(&mut self, lost: &LeaseLost) {
        Metrics::inc(&self.env.metrics.leases_lost);
        warn!(lease.token = lost.token.0, reason = ?lost.reason, "room lease lost: stopping the room");
        self.send_clients_away();
    }

    /// The store refused a batch under this task's token: another node took the room over
    /// while this one was stalled (its local lease deadline could not stop it in time). As for
    /// a lost lease, the room stops at once and its clients go to the next host; nothing of the
    /// refused batch was delivered (see `pump`), and nothing more is written.
    pub(super) fn stop_fenced(mut self, registry: &super::Registry) {
        registry.remove(&self.room_id);
        warn!("room fenced by the store: stopping the room");
        self.send_clients_away();
    }

    /// The store refused the batch of `ops` ops under `token`: it has seen `newest`.
    pub(super) fn refused_as_stale(&mut self, token: u64, newest: u64, ops: usize) {
        Metrics::inc(&self.env.metrics.writes_fenced);
        warn!(
            lease.token = token,
            store.token = newest,
            ops,
            "the store refused the batch: another node hosts the room now"
        );
        self.fenced = true;
    }

    fn send_clients_away(&mut self) {
        for id in self.media_participants() {
            self.drop_media_peer(&id);
        }
        let conns = self.outbox.conns();
        info!(
            connections = conns.len(),
            "sending clients to the room's next host"
        );
        for conn in conns {
            self.outbox.close(conn, CloseReason::RoomMoved);
        }
    }
}

/// Counts a room hosted under a lease in `lectern_cluster_rooms_hosted` while it lives.
pub(super) struct Hosted(std::sync::Arc<Metrics>);

impl Hosted {
    pub(super) fn count(
        metrics: &std::sync::Arc<Metrics>,
        lease: &Option<RoomLease>,
    ) -> Option<Hosted> {
        lease.as_ref()?;
        metrics
            .rooms_hosted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Hosted(metrics.clone()))
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        self.0
            .rooms_hosted
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
