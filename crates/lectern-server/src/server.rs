//! Start-up, the HTTP router, and graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use lectern_proto::Role;
use lectern_store::Store;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{info, warn};

use crate::auth::{Authenticator, KeyError};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rooms::{Registry, RoomEnv, Settings};
use crate::shared::{Parts, Shared};
use crate::ws_upgrade::Handshake;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the store: {0}")]
    Store(#[from] lectern_store::StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot start the media worker: {0}")]
    Media(#[from] lectern_sfu::SfuError),
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] lectern_cluster::ClusterError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    public_url: String,
    shutdown_tx: watch::Sender<bool>,
    done_rx: mpsc::Receiver<()>,
    media_workers: Vec<lectern_sfu::MediaWorker>,
    http: tokio::task::JoinHandle<()>,
}

/// The HS256 secret: from the config, or generated once into `<data_dir>/hs256.secret`.
pub fn resolve_secret(config: &Config) -> Result<Vec<u8>, ServerError> {
    if !config.auth.hs256_secret.is_empty() {
        return Ok(config.auth.hs256_secret.clone().into_bytes());
    }
    let dir = &config.server.data_dir;
    let data_err = |source| ServerError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(data_err)?;
    let path = dir.join("hs256.secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => warn!("ignoring a too-short {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(data_err(e)),
    }
    let secret: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    write_private(&path, &secret).map_err(data_err)?;
    info!(path = %path.display(), "generated a new token secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

impl Server {
    /// Open the store, bind the listener and start serving.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        let secret = resolve_secret(&config)?;
        let auth = Authenticator::new(&config.auth, secret)?;
        let store = Store::open(&config.store_url()).await?;
        // Recordings a crash left open are closed before anything can record again.
        let recordings_dir = config.recordings_dir();
        let to_export = match crate::recordings::recover_interrupted(&store, &recordings_dir).await
        {
            Ok(recovered) => {
                if recovered.closed > 0 {
                    info!(
                        recordings = recovered.closed,
                        "closed recordings interrupted by a crash"
                    );
                }
                recovered.to_export
            }
            Err(e) => {
                warn!(error = %e, "could not close interrupted recordings");
                Vec::new()
            }
        };
        let listener = tokio::net::TcpListener::bind(config.listen_addr())
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listen_addr(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen_addr(),
            source,
        })?;
        let public_url = if config.server.public_url.is_empty() {
            format!("http://{addr}")
        } else {
            config.server.public_url.trim_end_matches('/').to_owned()
        };
        let (media_workers, media_plane, media_events) = if config.media.enabled {
            let (workers, plane, events) = crate::media::start(&config)?;
            (workers, Some(plane), Some(events))
        } else {
            (Vec::new(), None, None)
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::default());
        let clock = Arc::new(Clock::default());
        let exports = Arc::new(crate::recordings::export::ExportJobs::default());
        for (id, done) in to_export {
            let dir = recordings_dir.join(&id);
            tokio::spawn(crate::recordings::export::export_then_ready(
                store.clone(),
                exports.clone(),
                dir,
                id,
                done,
            ));
        }
        let cluster = if config.cluster.enabled() {
            let cluster = crate::cluster::Cluster::start(
                &config.cluster,
                addr,
                &config.server.public_url,
                config.media_public_ips(),
                metrics.clone(),
            )
            .await?;
            let media = media_plane.clone();
            let media_peers = move || {
                media.as_ref().map_or(0, |m| {
                    u32::try_from(m.loads().iter().sum::<usize>()).unwrap_or(u32::MAX)
                })
            };
            let every = Duration::from_millis(config.cluster.heartbeat_interval_ms)
                .min(Duration::from_millis(250));
            tokio::spawn(crate::cluster::report_load(
                cluster.clone(),
                every,
                media_peers,
                shutdown_rx.clone(),
            ));
            Some(cluster)
        } else {
            None
        };
        let registry = Arc::new(Registry::new(
            RoomEnv {
                exports: exports.clone(),
                store: store.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                media: media_plane.clone(),
                settings: Arc::new(Settings::new(&config)),
                shutdown: shutdown_rx.clone(),
            },
            cluster.clone(),
        ));
        if let Some(incoming) = cluster.as_ref().and_then(|c| c.take_commands()) {
            tokio::spawn(crate::rooms::serve_commands(registry.clone(), incoming));
        }
        if let Some(events) = media_events {
            let registry = registry.clone();
            tokio::spawn(crate::media::dispatch(events, move |room| {
                registry.get(room)
            }));
        }
        let shared = Arc::new(Shared::new(Parts {
            config,
            auth,
            store,
            metrics,
            registry,
            shutdown_rx: shutdown_rx.clone(),
            media: media_plane,
            clock,
            exports,
            cluster,
            done: done_tx,
        }));
        tokio::spawn(retention(shared.clone()));
        let app = router(shared.clone());
        let mut stop = shutdown_rx;
        let http = tokio::spawn(async move {
            // Small frames must not wait for Nagle's algorithm: it added ~40 ms to some
            // deliveries in the chat benchmark.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                warn!(error = %e, "http server stopped");
            }
        });
        info!(%addr, "listening");
        Ok(Server {
            shared,
            addr,
            public_url,
            shutdown_tx,
            done_rx,
            media_workers,
            http,
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The UDP address of the first media worker, when media is enabled.
    pub fn media_addr(&self) -> Option<SocketAddr> {
        self.media_workers.first().map(|w| w.local_addr())
    }

    /// The UDP address of every media worker (one per worker), in worker order.
    pub fn media_addrs(&self) -> Vec<SocketAddr> {
        self.media_workers.iter().map(|w| w.local_addr()).collect()
    }

    /// Peers placed on each media worker, in worker order (empty when media is off).
    pub fn media_loads(&self) -> Vec<usize> {
        self.shared.media.as_ref().map_or(Vec::new(), |m| m.loads())
    }

    /// The base URL for join links.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Mint a join token signed with the server's HS256 secret.
    pub fn mint_token(
        &self,
        room: &str,
        sub: &str,
        name: &str,
        role: Role,
        ttl_secs: u64,
    ) -> Result<String, KeyError> {
        self.shared.auth.mint(room, sub, name, role, ttl_secs)
    }

    /// A join link for the web client. The token travels in the fragment, which browsers never
    /// send to the server.
    pub fn join_link(&self, token: &str) -> String {
        format!("{}/#token={token}", self.public_url)
    }

    /// The clock the server's schedule decisions use; tests move it.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Prometheus text of the current metrics.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics_text()
    }

    /// Stop accepting, tell every client, let rooms store what they hold, and wait for all
    /// tasks (at most `server.shutdown_timeout_secs`).
    pub async fn shutdown(mut self) {
        info!("shutting down");
        let _ = self.shutdown_tx.send(true);
        self.shared.stop_tasks();
        let limit = Duration::from_secs(self.shared.config.server.shutdown_timeout_secs);
        if tokio::time::timeout(limit, self.done_rx.recv())
            .await
            .is_err()
        {
            warn!("some tasks did not finish before the shutdown timeout");
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.http).await;
        if let Some(cluster) = &self.shared.cluster {
            cluster.stop().await;
        }
        let workers = std::mem::take(&mut self.media_workers);
        if !workers.is_empty() {
            // Joining the worker threads blocks briefly: keep it off the async threads.
            let _ = tokio::task::spawn_blocking(move || {
                for worker in workers {
                    worker.shutdown();
                }
            })
            .await;
        }
        self.shared.store.close().await;
        info!("stopped");
    }
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    room: Option<String>,
    /// `1`: this node was chosen to host the room (see `cluster`).
    placed: Option<String>,
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", crate::api::router())
        .nest("/replay/v1", crate::api::replay_routes::router())
        .nest("/course/v1", crate::api::board_routes::router())
        .fallback(get(static_asset))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .with_state(shared)
}

async fn ws_upgrade(
    Query(query): Query<WsQuery>,
    State(shared): State<Arc<Shared>>,
    mut request: Request,
) -> Response {
    let handshake = match Handshake::check(&mut request) {
        Ok(handshake) => handshake,
        Err(e) => return e.into_response(),
    };
    // Frames between max_frame_bytes and this hard cap get a typed `frame_too_large` error and
    // the connection goes on; beyond it the WebSocket layer refuses the frame and closes.
    let hard_cap = (shared.config.limits.max_frame_bytes * 4).max(1 << 20);
    let config = WebSocketConfig::default()
        // A small read buffer (`websocket.read_buffer_bytes`, 1 KiB): the default (128 KiB per
        // connection) dominated memory per student. A longer frame is still read whole:
        // tungstenite reserves its length once its header is in.
        .read_buffer_size(shared.config.websocket.read_buffer_bytes)
        // tungstenite only reads (its writes go nowhere, see `ws_upgrade`): no write buffer.
        .write_buffer_size(0)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap));
    let placed = query.placed.as_deref() == Some("1");
    handshake.accept(config, move |socket, write| {
        crate::ws::serve(socket, write, shared, query.room, placed)
    })
}

/// Ready: not shutting down, not draining and, on a node of a cluster, PostgreSQL and Redis
/// both answer.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let unavailable = |why: &str| (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"));
    if !shared.is_ready() {
        return unavailable("shutting down").into_response();
    }
    if shared.is_draining() {
        return unavailable(
            "draining: this node takes no new rooms and stops once its classes have ended",
        )
        .into_response();
    }
    // The store on every node (a single node on PostgreSQL loses it as a cluster does).
    let store = tokio::time::timeout(Duration::from_secs(2), shared.store.ping()).await;
    if !matches!(store, Ok(Ok(()))) {
        return unavailable(
            "the store (the database: PostgreSQL or the SQLite file) does not answer",
        )
        .into_response();
    }
    if let Some(cluster) = &shared.cluster
        && !cluster.redis_ok().await
    {
        return unavailable("the cluster's Redis does not answer").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics_text(),
    )
        .into_response()
}

async fn static_asset(uri: Uri) -> Response {
    crate::web::asset(uri.path())
}

/// Deletes recordings past `recording.retention_days`, at start and then hourly, until the
/// server shuts down.
async fn retention(shared: Arc<Shared>) {
    let days = shared.config.recording.retention_days;
    if days == 0 {
        return;
    }
    let mut stop = shared.shutdown_rx.clone();
    let root = shared.config.recordings_dir();
    loop {
        let now = crate::clock::wall_ms();
        match crate::recordings::apply_retention(&shared.store, &root, days, now).await {
            Ok(0) => {}
            Ok(n) => info!(recordings = n, days, "old recordings deleted"),
            Err(e) => warn!(error = %e, "recording retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
