//! The room registry and the task that owns each room.
//!
//! One task per room owns its [`Room`](lectern_room::Room); connections talk to it over a
//! bounded channel. Each turn the task takes every command already waiting (up to a batch
//! limit), lets the room handle them, writes everything the room asked to persist in ONE
//! transaction (the group commit), and only then delivers the room's messages, serialized once
//! and shared by all recipients. A recipient whose outbound queue is full is disconnected, never
//! waited for.
//!
//! - this file: the commands a room task takes, its environment, the registry;
//! - `task`: the task's loop, the drain of the room's outputs (persist, then deliver), loading
//!   and storing the room;
//! - `records`: the room's records as store rows, and stored state back for the room;
//! - `outbox`: the one way anything reaches a connection, and the slow-consumer rule;
//! - `history`: scroll-back, older chat read from the store off the task;
//! - `signalling`: WebRTC signalling between a participant's connection and the media worker;
//! - `admin`: administrators' actions (the REST API) on a room, here or on the node hosting it.
//!
//! A room task sees a [`RoomEnv`] (store, clock, metrics, media, settings), not the server's
//! whole shared state.

mod admin;
mod history;
mod lease;
mod outbox;
mod recorder;
mod records;
mod signalling;
mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lectern_proto::{ClientMessage, RequestId, RoomId, Seq};
use lectern_room::{ConnId, Identity};
use lectern_store::Store;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, info_span};

pub use admin::{ActError, serve_commands};
pub use outbox::Encoded;

use crate::clock::Clock;
use crate::config::{Config, TurnConfig};
use crate::conn::ConnTx;
use crate::media::MediaPlane;
use crate::metrics::Metrics;

/// Commands from connections (and from work a room task started) to a room task.
#[derive(Debug)]
pub enum RoomCommand {
    Join {
        conn: ConnId,
        identity: Identity,
        last_seq: Option<Seq>,
        /// The hello asked for `media_start` at the welcome.
        media_start: bool,
        outbound: ConnTx,
    },
    Request {
        conn: ConnId,
        request_id: Option<RequestId>,
        message: ClientMessage,
    },
    Disconnected {
        conn: ConnId,
    },
    /// Something the media worker reported about this room or one of its participants.
    Media(lectern_sfu::WorkerEvent),
    /// A reply the task prepared off its own loop (a scroll-back page), to send to one
    /// connection through the room's send path.
    Deliver {
        conn: ConnId,
        frame: Encoded,
    },
    /// A `quiz_launch`, with the quiz looked up in the room's course off the task.
    QuizChecked {
        conn: ConnId,
        request_id: Option<RequestId>,
        quiz_id: lectern_proto::QuizId,
        duration_secs: u32,
        quiz: Result<String, lectern_room::QuizUnavailable>,
    },
    /// A member submitted an attempt at the quiz live in this room.
    QuizSubmitted {
        quiz_id: lectern_proto::QuizId,
        member_id: String,
    },
    /// An administrator's action (the REST API, on this node or another one); the room's
    /// verdict goes back on `reply` (see `room_admin`).
    Admin {
        action: lectern_room::AdminAction,
        reply: tokio::sync::oneshot::Sender<Result<(), lectern_room::RoomError>>,
    },
}

impl From<lectern_sfu::WorkerEvent> for RoomCommand {
    fn from(event: lectern_sfu::WorkerEvent) -> Self {
        RoomCommand::Media(event)
    }
}

/// What a room task works with: narrower than the server's shared state.
#[derive(Debug, Clone)]
pub struct RoomEnv {
    pub store: Store,
    /// The clock for the room's time (schedules, grace periods, records).
    pub clock: Arc<Clock>,
    pub metrics: Arc<Metrics>,
    /// The media workers and room placement, when media is enabled.
    pub media: Option<Arc<MediaPlane>>,
    pub settings: Arc<Settings>,
    /// One-file exports of recordings running now (their progress, for the API).
    pub exports: Arc<crate::recordings::export::ExportJobs>,
    /// Becomes `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// The configuration a room task reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[room]`.
    pub room: crate::config::RoomSettings,
    /// `limits.max_chat_chars`.
    pub max_chat_chars: usize,
    /// `[turn]`, for the ICE servers each connection is given.
    pub turn: TurnConfig,
    /// `[recording]`, and where recordings are kept.
    pub recording: crate::config::RecordingConfig,
    pub recordings_dir: std::path::PathBuf,
    /// `websocket.send_fragment_bytes`: how messages are framed (see `ws_frame::text`).
    pub send_fragment_bytes: usize,
}

impl Settings {
    pub fn new(config: &Config) -> Self {
        Settings {
            room: config.room.clone(),
            max_chat_chars: config.limits.max_chat_chars,
            turn: config.turn.clone(),
            recording: config.recording.clone(),
            recordings_dir: config.recordings_dir(),
            send_fragment_bytes: config.websocket.send_fragment_bytes,
        }
    }

    /// How long a room stays open with nobody in it.
    pub fn idle_close(&self) -> Duration {
        Duration::from_secs(self.room.idle_close_secs)
    }
}

/// Rooms with a running task, by id. Held briefly, never across an `.await`.
#[derive(Debug)]
pub struct Registry {
    env: RoomEnv,
    rooms: std::sync::Mutex<Rooms>,
    /// Quizzes launched live in class, for the REST API's attempt rules.
    live_quizzes: Arc<crate::quizzes::LiveQuizzes>,
    /// This node in a cluster; `None` for a single node.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

#[derive(Debug, Default)]
struct Rooms {
    running: HashMap<RoomId, mpsc::Sender<RoomCommand>>,
    /// Several nodes: the lease token each running room was started under, so that a command
    /// sent for another claim of the room is not applied to this one.
    tokens: HashMap<RoomId, lectern_cluster::FencingToken>,
    /// Several nodes: rooms whose placement (a lease claim in Redis) is under way. Others who
    /// want the room wait until the sender is dropped, then look again.
    starting: HashMap<RoomId, watch::Receiver<()>>,
}

/// What a hello's room is on this node.
#[derive(Debug)]
pub enum Opened {
    /// The room's task runs here.
    Here(mpsc::Sender<RoomCommand>),
    /// Another node hosts it (or was chosen to): send the client to this WebSocket URL.
    Redirect(String),
    /// The room is between nodes, or the cluster cannot be reached: the client retries shortly.
    Moving,
}

impl Registry {
    /// No rooms yet; each room task started gets a clone of `env`. With `cluster`, a room task
    /// starts only under the room's lease.
    pub fn new(env: RoomEnv, cluster: Option<Arc<crate::cluster::Cluster>>) -> Self {
        Registry {
            env,
            rooms: std::sync::Mutex::default(),
            live_quizzes: Arc::default(),
            cluster,
        }
    }

    /// The live windows of quizzes launched in class.
    pub fn live_quizzes(&self) -> &crate::quizzes::LiveQuizzes {
        &self.live_quizzes
    }

    /// A member submitted an attempt at `quiz_id` started at `started_at`: every room where
    /// that attempt's live run is (or was) is told, if its task still runs. Never waits: a room
    /// whose inbox is full misses one count update.
    pub fn quiz_submitted(&self, quiz_id: lectern_proto::QuizId, started_at: u64, member_id: &str) {
        for room in self.live_quizzes.rooms(quiz_id, started_at) {
            if let Some(tx) = self.get(&room) {
                let _ = tx.try_send(RoomCommand::QuizSubmitted {
                    quiz_id,
                    member_id: member_id.to_owned(),
                });
            }
        }
    }

    /// The room of a hello: its running task, else (one node) a task started now, else (several
    /// nodes) wherever [`Cluster::place`](crate::cluster::Cluster::place) puts it. Starting a
    /// task needs a `task_guard` (the server's shutdown waits for every holder); `None` once
    /// shutdown began. `placed_here`: the hello came with `placed=1` (see `cluster`).
    pub async fn open(
        self: &Arc<Self>,
        room_id: &RoomId,
        task_guard: Option<mpsc::Sender<()>>,
        placed_here: bool,
    ) -> Option<Opened> {
        let Some(cluster) = &self.cluster else {
            let mut rooms = self.lock();
            return self
                .get_or_start_locked(&mut rooms, room_id, task_guard, None)
                .map(Opened::Here);
        };
        // A placement under way for the same room is waited for, then looked at again; a few
        // rounds at most (each is one claim in Redis).
        for _ in 0..3 {
            match self.running_or_starting(room_id) {
                Lookup::Running(tx) => return Some(Opened::Here(tx)),
                // The starter drops its sender when done (or cancelled).
                Lookup::Wait(mut rx) => {
                    let _ = rx.changed().await;
                }
                Lookup::Start(started) => {
                    let starting = Starting {
                        registry: self,
                        room_id,
                        _started: started,
                    };
                    return self.place(cluster, starting, task_guard, placed_here).await;
                }
            }
        }
        Some(Opened::Moving)
    }

    /// Several nodes: the room has no task here and nobody else is placing it.
    async fn place(
        self: &Arc<Self>,
        cluster: &crate::cluster::Cluster,
        starting: Starting<'_>,
        task_guard: Option<mpsc::Sender<()>>,
        placed_here: bool,
    ) -> Option<Opened> {
        use crate::cluster::Placement;
        let room_id = starting.room_id;
        // The newest token the store saw for the room (one read by primary key): a claim here
        // goes above it, so a Redis that lost its counters cannot hand out a token the store
        // would refuse (see `Store::write_batch`).
        let floor = match self.env.store.room_fence(room_id).await {
            Ok(token) => lectern_cluster::FencingToken(token.unwrap_or(0)),
            Err(e) => {
                tracing::warn!(room.id = %room_id, error = %e, "cannot place the room: the store fails");
                return Some(Opened::Moving);
            }
        };
        let placement = cluster.place(room_id.as_str(), placed_here, floor).await;
        let mut rooms = self.lock();
        rooms.starting.remove(room_id);
        match placement {
            Ok(Placement::Here(lease)) => self
                .get_or_start_locked(&mut rooms, room_id, task_guard, Some(lease))
                .map(Opened::Here),
            Ok(Placement::Elsewhere { url }) => Some(Opened::Redirect(url)),
            Ok(Placement::Moving) => Some(Opened::Moving),
            Err(e) => {
                tracing::warn!(room.id = %room_id, error = %e, "cannot place the room: the cluster's Redis fails");
                Some(Opened::Moving)
            }
        }
    }

    /// The room's running task, or the placement under way to wait for, or (none) a new
    /// `starting` entry whose sender the caller holds.
    fn running_or_starting(&self, room_id: &RoomId) -> Lookup {
        let mut rooms = self.lock();
        if let Some(tx) = rooms.running.get(room_id)
            && !tx.is_closed()
        {
            return Lookup::Running(tx.clone());
        }
        if let Some(rx) = rooms.starting.get(room_id) {
            return Lookup::Wait(rx.clone());
        }
        let (started_tx, started_rx) = watch::channel(());
        rooms.starting.insert(room_id.clone(), started_rx);
        Lookup::Start(started_tx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room's command channel, starting its task (under `lease` when clustered) if it has
    /// none.
    fn get_or_start_locked(
        self: &Arc<Self>,
        rooms: &mut Rooms,
        room_id: &RoomId,
        task_guard: Option<mpsc::Sender<()>>,
        lease: Option<lectern_cluster::RoomLease>,
    ) -> Option<mpsc::Sender<RoomCommand>> {
        if let Some(tx) = rooms.running.get(room_id)
            && !tx.is_closed()
        {
            return Some(tx.clone());
        }
        // Shutting down: a lease just claimed is dropped and expires.
        let done = task_guard?;
        let (tx, rx) = mpsc::channel(1024);
        rooms.running.insert(room_id.clone(), tx.clone());
        match &lease {
            Some(lease) => rooms.tokens.insert(room_id.clone(), lease.token()),
            None => rooms.tokens.remove(room_id),
        };
        let span = info_span!("room", room.id = %room_id);
        let task = task::run_room(
            self.env.clone(),
            self.clone(),
            room_id.clone(),
            (tx.downgrade(), rx),
            done,
            lease,
        );
        tokio::spawn(task.instrument(span));
        Some(tx)
    }

    /// The room's command channel, if its task is running (never starts one).
    pub fn get(&self, room_id: &RoomId) -> Option<mpsc::Sender<RoomCommand>> {
        let rooms = self.lock();
        rooms
            .running
            .get(room_id)
            .filter(|tx| !tx.is_closed())
            .cloned()
    }

    /// The room's command channel for a command sent under lease `token` (`None`: whatever
    /// the claim): `None` unless its task runs here under that token.
    pub fn for_command(
        &self,
        room_id: &RoomId,
        token: Option<lectern_cluster::FencingToken>,
    ) -> Option<mpsc::Sender<RoomCommand>> {
        let rooms = self.lock();
        let tx = rooms.running.get(room_id).filter(|tx| !tx.is_closed())?;
        match token {
            Some(token) if rooms.tokens.get(room_id) != Some(&token) => None,
            _ => Some(tx.clone()),
        }
    }

    /// Whether a room task runs here or a placement is under way (for draining: the node
    /// exits once this is `false`).
    pub fn hosts_rooms(&self) -> bool {
        let rooms = self.lock();
        !rooms.starting.is_empty() || rooms.running.values().any(|tx| !tx.is_closed())
    }

    /// Remove the room if its channel is empty; the task then stops. Called by the room task
    /// itself when idle, under the lock so no new command can slip in unseen.
    fn remove_if_idle(&self, room_id: &RoomId, inbox: &mpsc::Receiver<RoomCommand>) -> bool {
        let mut rooms = self.lock();
        if inbox.is_empty() {
            rooms.running.remove(room_id);
            rooms.tokens.remove(room_id);
            true
        } else {
            false
        }
    }

    /// Remove the room at once: its task stops (it lost its lease). Hellos that come next
    /// place the room again.
    fn remove(&self, room_id: &RoomId) {
        let mut rooms = self.lock();
        rooms.running.remove(room_id);
        rooms.tokens.remove(room_id);
    }
}

enum Lookup {
    Running(mpsc::Sender<RoomCommand>),
    Wait(watch::Receiver<()>),
    Start(watch::Sender<()>),
}

/// A placement under way: removes its `starting` entry however it ends (a connection that
/// goes away mid-claim drops it), which wakes whoever waits for the room.
struct Starting<'a> {
    registry: &'a Registry,
    room_id: &'a RoomId,
    _started: watch::Sender<()>,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.registry.lock().starting.remove(self.room_id);
    }
}
