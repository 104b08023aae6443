//! The state every HTTP handler and connection task shares. Room tasks do not see it: they get
//! a narrower [`RoomEnv`](crate::rooms::RoomEnv) from the [`Registry`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lectern_store::Store;
use tokio::sync::{mpsc, watch};

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Config;
use crate::media::MediaPlane;
use crate::metrics::Metrics;
use crate::rooms::Registry;

/// State shared by every task.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub auth: Authenticator,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub shutdown_rx: watch::Receiver<bool>,
    pub next_conn: AtomicU64,
    /// The media workers and room placement, when media is enabled.
    pub media: Option<Arc<MediaPlane>>,
    /// The clock for schedule decisions (room lifecycles, join windows).
    pub clock: Arc<Clock>,
    /// One-file exports of recordings running now.
    pub exports: Arc<crate::recordings::export::ExportJobs>,
    /// Live updates of the course boards to their open pages.
    pub board: crate::board::BoardHub,
    /// This node in a cluster; `None` for a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Cloned by every task; dropped at shutdown so we can wait for all tasks to end.
    done: std::sync::Mutex<Option<mpsc::Sender<()>>>,
    ready: AtomicBool,
    /// Draining (see `drain`): no new rooms here, `/readyz` fails, exit once no room is left.
    draining: AtomicBool,
}

/// The parts [`Shared::new`] puts together.
#[derive(Debug)]
pub struct Parts {
    pub config: Config,
    pub auth: Authenticator,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub shutdown_rx: watch::Receiver<bool>,
    pub media: Option<Arc<MediaPlane>>,
    pub clock: Arc<Clock>,
    /// One-file exports of recordings running now.
    pub exports: Arc<crate::recordings::export::ExportJobs>,
    /// This node in a cluster; `None` for a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The sender every task holds a clone of (see [`Shared::task_guard`]).
    pub done: mpsc::Sender<()>,
}

impl Shared {
    /// Ready to serve, with no connection numbered yet.
    pub fn new(parts: Parts) -> Shared {
        Shared {
            config: parts.config,
            auth: parts.auth,
            store: parts.store,
            metrics: parts.metrics,
            registry: parts.registry,
            shutdown_rx: parts.shutdown_rx,
            next_conn: AtomicU64::new(1),
            media: parts.media,
            clock: parts.clock,
            exports: parts.exports,
            board: crate::board::BoardHub::default(),
            cluster: parts.cluster,
            done: std::sync::Mutex::new(Some(parts.done)),
            ready: AtomicBool::new(true),
            draining: AtomicBool::new(false),
        }
    }

    /// Prometheus text of the server's metrics, the media workers' included.
    pub fn metrics_text(&self) -> String {
        let mut text = self.metrics.render();
        if let Some(media) = &self.media {
            text.push_str(&media.render_metrics());
        }
        text
    }

    /// A token held by a task while it runs; `None` once shutdown has begun.
    pub fn task_guard(&self) -> Option<mpsc::Sender<()>> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Shutdown begins: `/readyz` fails from now on and no new task starts; the tasks running
    /// end when they see the shutdown signal.
    pub fn stop_tasks(&self) {
        self.ready.store(false, Ordering::Relaxed);
        self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Starts draining; `false` if it had already started.
    pub fn start_draining(&self) -> bool {
        !self.draining.swap(true, Ordering::Relaxed)
    }

    /// Whether this node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Whether `/readyz` says ready: not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !*self.shutdown_rx.borrow()
    }
}
