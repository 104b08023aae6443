//! Draining a node: stop taking new rooms, move none mid-class, exit when empty.
//!
//! SIGUSR1 ([`drain_signal`]) starts it; [`Server::run`] then waits until no room runs here
//! and shuts the server down the usual way. While draining:
//! - on a node of a cluster, the registry entry says `draining` at once, and a hello for a room
//!   not running here is placed on the other nodes (see `cluster`); only when no other node is
//!   live does this node still host it, so that a class is never refused;
//! - on a single node there is nowhere else to send a class, so rooms still open here: draining
//!   only means "exit once no room runs";
//! - rooms already running keep going and take joins (reconnects included) until they close
//!   (empty for `room.idle_close_secs`);
//! - `/readyz` answers 503 (so a load balancer sends no first hits here), and
//!   `lectern_cluster_draining` is 1.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::info;

use crate::server::Server;

/// Resolves on each SIGUSR1 (never where there is no such signal). The handler is installed
/// when this is called, so a signal sent while the server starts is not lost (and no longer
/// kills the process).
pub fn drain_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut usr1 = signal(SignalKind::user_defined1())?;
        Ok(async move {
            if usr1.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(std::future::pending::<()>())
    }
}

impl Server {
    /// Starts draining (see the module docs); a second call does nothing.
    pub fn drain(&self) {
        let shared = self.shared();
        if !shared.start_draining() {
            info!("already draining");
            return;
        }
        shared.metrics.draining.store(1, Ordering::Relaxed);
        if let Some(cluster) = &shared.cluster {
            cluster.drain();
        }
        info!(
            clustered = shared.cluster.is_some(),
            rooms = shared.metrics.rooms.load(Ordering::Relaxed),
            "draining: no new rooms here; exiting once the rooms running here have closed"
        );
    }

    /// Resolves once no room runs here (checked a few times a second).
    pub async fn drained(&self) {
        let registry = self.shared().registry.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !registry.hosts_rooms() {
                return;
            }
        }
    }

    /// Serves until `stop` resolves, or until `drain` resolves and then no room runs here any
    /// more (or `stop` resolves meanwhile); then shuts down gracefully.
    pub async fn run(self, stop: impl Future<Output = ()>, drain: impl Future<Output = ()>) {
        tokio::pin!(stop, drain);
        tokio::select! {
            _ = &mut stop => {}
            _ = &mut drain => {
                self.drain();
                tokio::select! {
                    _ = &mut stop => {}
                    _ = self.drained() => info!("drained: no room runs here any more"),
                }
            }
        }
        self.shutdown().await;
    }
}
