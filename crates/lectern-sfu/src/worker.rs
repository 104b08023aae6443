//! The thin driver: one OS thread owning one UDP socket and one [`Sfu`].
//!
//! Workers linked with [`Command::Link`] relay a room's media to each other (see the crate docs,
//! "Relaying"): what the `Sfu` polls for a link goes to that worker's [`MediaWorkerHandle::relay`],
//! into its command channel, and is read there like a command (a batch of relayed messages is
//! handled before the datagrams they produce are sent).
//!
//! I/O is batched (see `udp.rs`): the socket is non-blocking; the worker reads up to
//! [`udp::RECV_BATCH`] datagrams with one `recvmmsg`, hands them to the `Sfu` as one batch
//! ([`Sfu::begin_batch`]: each subscriber is sent the read's packets in one pass through its
//! `Rtc`), runs its timers once for the batch, and sends the datagrams produced with one `sendmmsg` per
//! [`udp::SEND_BATCH`], in order. It sleeps in `poll` only when the last read left the socket
//! empty, until a datagram (or a command's wake-up datagram) arrives, the next timer is due, or
//! (while datagrams wait for a full send buffer) the socket is writable again.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::sfu::DEFAULT_KEYFRAME_REQUEST_INTERVAL;
use crate::shed::{Backlog, Spaced};
use crate::udp::{self, RecvBatch, SendQueue};
use crate::{
    LinkId, MediaEvent, ParticipantId, PeerId, RecordedFrame, RelayMessage, RoomId, Sfu, SfuConfig,
    SfuError, SfuStats,
};

mod apply;
mod receive;

/// Longest wait for a datagram when no timer is due. Bounds how stale `Instant::now()` gets;
/// commands do not wait for it (they wake the worker).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// How often the worker publishes its [`SfuStats`] for [`MediaWorkerHandle::stats`].
const STATS_EVERY: Duration = Duration::from_millis(100);

/// Kernel buffer asked for on the media socket, each way. One worker reads every packet of its
/// rooms' publishers and students from one socket: at 200 students of one lecture that is tens of
/// thousands of datagrams a second, and Linux's default (~208 KiB) overflowed in the media
/// benchmark (drops in /proc/net/udp). Linux caps it at `net.core.rmem_max`/`wmem_max`.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// How to start one media worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Address to bind the worker's UDP socket to. Port 0 picks a free port. The IP should be
    /// concrete (it is advertised) unless `public_ips` is set.
    pub bind: SocketAddr,
    /// `media.public_ips` (1:1 NAT): advertised instead of the bound IP.
    pub public_ips: Vec<IpAddr>,
    /// See [`SfuConfig::keyframe_request_interval`].
    pub keyframe_request_interval: Duration,
    /// Used for the thread name and logs.
    pub name: String,
    /// See [`SfuConfig::track_id_base`].
    pub track_id_base: u64,
}

impl WorkerConfig {
    pub fn new(bind: SocketAddr) -> Self {
        WorkerConfig {
            bind,
            public_ips: Vec::new(),
            keyframe_request_interval: DEFAULT_KEYFRAME_REQUEST_INTERVAL,
            name: "media-0".into(),
            track_id_base: 0,
        }
    }
}

/// Where a recorded room's frames go: the recording's writer, which must never block the
/// worker (a bounded queue it drops from when full, accounting for the loss itself).
pub trait RecordSink: Send {
    /// Take one frame; false when it was dropped.
    fn frame(&mut self, frame: RecordedFrame) -> bool;
    /// Tracks whose frames the writer lost and that now wait for a keyframe:
    /// `(participant, track)` as in [`RecordedFrame`].
    fn keyframes_wanted(&mut self) -> Vec<(ParticipantId, u64)>;
}

/// A [`RecordSink`] in a [`Command`].
pub struct BoxedRecordSink(pub Box<dyn RecordSink>);

impl std::fmt::Debug for BoxedRecordSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordSink")
    }
}

/// The control API of [`Sfu`] as messages. Results come back as [`WorkerEvent`]s, in order.
#[derive(Debug)]
pub enum Command {
    AddPeer {
        peer: PeerId,
    },
    RemovePeer {
        peer: PeerId,
    },
    /// Answered with [`WorkerEvent::Answer`] (or [`WorkerEvent::Failed`]).
    AcceptOffer {
        peer: PeerId,
        sdp: String,
    },
    AcceptAnswer {
        peer: PeerId,
        sdp: String,
    },
    AddRemoteCandidate {
        peer: PeerId,
        candidate: String,
    },
    SetPublishPermission {
        peer: PeerId,
        audio: bool,
        video: bool,
    },
    /// See [`Sfu::set_view`].
    SetViewSize {
        peer: PeerId,
        mid: String,
        width: u32,
        height: u32,
        paused: bool,
    },
    /// See [`Sfu::start_recording`]; frames go to `sink`.
    StartRecording {
        room: RoomId,
        started: Instant,
        sink: BoxedRecordSink,
    },
    /// See [`Sfu::stop_recording`]; the sink is dropped once the last frames reached it.
    StopRecording {
        room: RoomId,
    },
    /// See [`Sfu::request_recording_keyframes`].
    RecordingKeyframes {
        room: RoomId,
    },
    /// A track of `room` whose recording lost frames, passed on by a linked worker that does
    /// not record it (the writer is shared by the workers recording the room).
    RecordingKeyframe {
        room: RoomId,
        participant: ParticipantId,
        track: u64,
    },
    /// Relay with another worker (see [`Sfu::add_link`]): this worker is `own` to it, it is
    /// `other` here. Links are made once, at start, in both directions.
    Link {
        own: LinkId,
        other: LinkId,
        to: MediaWorkerHandle,
    },
    /// A message from linked worker `from` (see [`MediaWorkerHandle::relay`]).
    Relay {
        from: LinkId,
        message: RelayMessage,
    },
    Shutdown,
}

/// What a worker reports to the signalling layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    Media(MediaEvent),
    /// The SDP answer to a [`Command::AcceptOffer`]. Always delivered before any
    /// [`MediaEvent::Offer`] that follows from the same offer.
    Answer {
        peer: PeerId,
        sdp: String,
    },
    /// A command was refused. `command` says which: only a failed
    /// [`CommandKind::AcceptOffer`] answers an offer; any other failure concerns only itself.
    Failed {
        peer: PeerId,
        command: CommandKind,
        error: SfuError,
    },
}

/// Which kind of [`Command`] a [`WorkerEvent::Failed`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    AddPeer,
    AcceptOffer,
    AcceptAnswer,
    AddRemoteCandidate,
    SetPublishPermission,
    SetViewSize,
}

/// A running media worker. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct MediaWorker {
    handle: MediaWorkerHandle,
    local_addr: SocketAddr,
    recv_buffer: usize,
    thread: Option<JoinHandle<()>>,
}

impl MediaWorker {
    /// Bind the socket and start the worker thread. `sink` is called on the worker thread for
    /// every event, in order; it must not block (hand the event to a channel and return).
    pub fn spawn(
        config: WorkerConfig,
        sink: impl FnMut(WorkerEvent) + Send + 'static,
    ) -> Result<MediaWorker, SfuError> {
        let io = |e: std::io::Error| SfuError::Config(format!("media socket: {e}"));
        let socket = UdpSocket::bind(config.bind).map_err(io)?;
        let local_addr = socket.local_addr().map_err(io)?;
        let sock = socket2::SockRef::from(&socket);
        // Best effort: the kernel clamps to its limits, which is still better than the default.
        if let Err(e) = sock.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
            warn!(error = %e, "media socket receive buffer");
        }
        if let Err(e) = sock.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
            warn!(error = %e, "media socket send buffer");
        }
        if let Err(e) = udp::count_overflow(&socket) {
            warn!(error = %e, "media socket drop count");
        }
        if let Err(e) = udp::dont_fragment(&socket) {
            warn!(error = %e, "media socket Don't Fragment");
        }
        if let Err(e) = udp::timestamp_arrivals(&socket) {
            warn!(error = %e, "media socket arrival times (stale media cannot be shed)");
        }
        let recv_buffer = sock.recv_buffer_size().unwrap_or(0);
        socket.set_nonblocking(true).map_err(io)?;
        let sfu = Sfu::new(SfuConfig {
            sockets: vec![local_addr],
            public_ips: config.public_ips.clone(),
            keyframe_request_interval: config.keyframe_request_interval,
            track_id_base: config.track_id_base,
        })?;

        // Commands arrive on a channel, but the worker sleeps in recv_from: a one-byte datagram
        // from the waker socket wakes it to read the channel.
        let wake_to = match local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                (Ipv4Addr::LOCALHOST, local_addr.port()).into()
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                (Ipv6Addr::LOCALHOST, local_addr.port()).into()
            }
            _ => local_addr,
        };
        let waker_bind: SocketAddr = (wake_to.ip(), 0).into();
        let waker = UdpSocket::bind(waker_bind).map_err(io)?;
        let waker_addr = waker.local_addr().map_err(io)?;

        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Mutex::new(SfuStats::default()));
        let wake_pending = Arc::new(AtomicBool::new(false));
        let handle = MediaWorkerHandle {
            tx,
            waker: Arc::new(waker),
            wake_to,
            wake_pending: wake_pending.clone(),
            stats: stats.clone(),
        };
        let name = config.name.clone();
        let thread = thread::Builder::new()
            .name(format!("lectern-{name}"))
            .spawn(move || {
                let mut worker = Worker {
                    sfu,
                    socket,
                    local_addr,
                    waker_addr,
                    commands: rx,
                    sink: Box::new(sink),
                    record_sinks: HashMap::new(),
                    own: None,
                    links: HashMap::new(),
                    wake_pending,
                    stats,
                    stats_due: Instant::now(),
                    out: SendQueue::default(),
                    recv_calls: 0,
                    overflow: Spaced::default(),
                    shed: Spaced::default(),
                    backlog: Backlog::default(),
                };
                worker.run();
                info!(worker = %name, "media worker stopped");
            })
            .map_err(io)?;
        info!(worker = %config.name, recv_buffer, "media worker started");
        Ok(MediaWorker {
            handle,
            local_addr,
            recv_buffer,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> MediaWorkerHandle {
        self.handle.clone()
    }

    /// The bound UDP address (the port browsers send to).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The socket's receive buffer as the kernel reports it (Linux: twice what it granted).
    pub fn recv_buffer_bytes(&self) -> usize {
        self.recv_buffer
    }

    /// Stop the worker (peers are closed) and wait for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.handle.send(Command::Shutdown);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("media worker thread panicked");
        }
    }
}

impl Drop for MediaWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends commands to a worker. Cheap to clone; never blocks, so it is fine to use from async
/// tasks.
#[derive(Debug, Clone)]
pub struct MediaWorkerHandle {
    tx: Sender<Command>,
    waker: Arc<UdpSocket>,
    wake_to: SocketAddr,
    /// A relayed message woke the worker and it has not read its channel since: the next
    /// one need not wake it again (one wake-up per batch, not per packet).
    wake_pending: Arc<AtomicBool>,
    stats: Arc<Mutex<SfuStats>>,
}

impl MediaWorkerHandle {
    /// The worker's counters, at most about 100 ms old.
    pub fn stats(&self) -> SfuStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn send(&self, command: Command) -> Result<(), SfuError> {
        self.tx.send(command).map_err(|_| SfuError::WorkerGone)?;
        // A lost wake-up costs at most IDLE_WAIT of latency, so errors are only logged.
        if let Err(e) = self.waker.send_to(&[0], self.wake_to) {
            debug!(error = %e, "media worker wake-up failed");
        }
        Ok(())
    }

    /// Hand the worker a message from linked worker `from`. Wakes it only if no earlier
    /// message is waiting to be read.
    pub fn relay(&self, from: LinkId, message: RelayMessage) -> Result<(), SfuError> {
        self.tx
            .send(Command::Relay { from, message })
            .map_err(|_| SfuError::WorkerGone)?;
        if !self.wake_pending.swap(true, Ordering::SeqCst)
            && let Err(e) = self.waker.send_to(&[0], self.wake_to)
        {
            debug!(error = %e, "media worker wake-up failed");
        }
        Ok(())
    }

    pub fn add_peer(&self, peer: PeerId) -> Result<(), SfuError> {
        self.send(Command::AddPeer { peer })
    }

    pub fn remove_peer(&self, peer: PeerId) -> Result<(), SfuError> {
        self.send(Command::RemovePeer { peer })
    }

    pub fn accept_offer(&self, peer: PeerId, sdp: String) -> Result<(), SfuError> {
        self.send(Command::AcceptOffer { peer, sdp })
    }

    pub fn accept_answer(&self, peer: PeerId, sdp: String) -> Result<(), SfuError> {
        self.send(Command::AcceptAnswer { peer, sdp })
    }

    pub fn add_remote_candidate(&self, peer: PeerId, candidate: String) -> Result<(), SfuError> {
        self.send(Command::AddRemoteCandidate { peer, candidate })
    }

    pub fn set_publish_permission(
        &self,
        peer: PeerId,
        audio: bool,
        video: bool,
    ) -> Result<(), SfuError> {
        self.send(Command::SetPublishPermission { peer, audio, video })
    }

    pub fn set_view_size(
        &self,
        peer: PeerId,
        mid: String,
        width: u32,
        height: u32,
        paused: bool,
    ) -> Result<(), SfuError> {
        self.send(Command::SetViewSize {
            peer,
            mid,
            width,
            height,
            paused,
        })
    }
}

struct Worker {
    sfu: Sfu,
    socket: UdpSocket,
    local_addr: SocketAddr,
    waker_addr: SocketAddr,
    commands: Receiver<Command>,
    sink: Box<dyn FnMut(WorkerEvent) + Send>,
    /// The writers of the rooms recorded here.
    record_sinks: HashMap<RoomId, Box<dyn RecordSink>>,
    /// What the linked workers call this one, and their handles (see [`Command::Link`]).
    own: Option<LinkId>,
    links: HashMap<LinkId, MediaWorkerHandle>,
    /// Cleared before the channel is read (see [`MediaWorkerHandle::relay`]).
    wake_pending: Arc<AtomicBool>,
    stats: Arc<Mutex<SfuStats>>,
    stats_due: Instant,
    /// Datagrams to send, in order (see `udp.rs`).
    out: SendQueue,
    /// `recvmmsg` calls, for [`SfuStats::udp_recv_calls`].
    recv_calls: u64,
    /// The kernel's drops on the socket, for [`SfuStats::udp_recv_overflow`] and a warning.
    overflow: Spaced,
    /// Stale media shed ([`SfuStats::rtp_shed`]), for a warning.
    shed: Spaced,
    /// What was read, by kind, and what it cost (see `shed.rs`).
    backlog: Backlog,
}

impl Worker {
    fn run(&mut self) {
        let mut batch = RecvBatch::default();
        // The last read left the socket empty: wait before reading again.
        let mut drained = true;
        loop {
            self.wake_pending.store(false, Ordering::SeqCst);
            // Relayed media read in one go is one batch for the `Sfu` (see `Sfu::begin_batch`).
            self.sfu.begin_batch();
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        self.close_all();
                        return;
                    }
                    Ok(Command::Relay { from, message }) => {
                        self.sfu.handle_relay(Instant::now(), from, message);
                        self.queue_transmits();
                    }
                    Ok(command) => {
                        self.sfu.end_batch(Instant::now());
                        self.apply(command);
                        self.flush();
                        self.sfu.begin_batch();
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.sfu.end_batch(Instant::now());
            self.flush();

            if drained {
                let wait = self
                    .sfu
                    .poll_timeout()
                    .map_or(IDLE_WAIT, |t| t.saturating_duration_since(Instant::now()));
                // Datagrams waiting for a full send buffer: wake when it has room as well.
                let ready = udp::wait(&self.socket, wait.min(IDLE_WAIT), !self.out.is_empty());
                if ready.writable {
                    self.out.flush(&self.socket);
                }
            }
            let n = batch.recv(&self.socket);
            self.recv_calls += 1;
            drained = n < udp::RECV_BATCH;
            self.handle_read(&batch, n);
        }
    }

    /// The SFU's counters with the socket's.
    fn io_stats(&self) -> SfuStats {
        let out = self.out.stats();
        SfuStats {
            udp_sent: out.sent,
            udp_send_failed: out.failed,
            udp_send_dropped: out.dropped,
            udp_send_calls: out.calls,
            udp_recv_calls: self.recv_calls,
            udp_recv_overflow: self.overflow.total(),
            ..self.sfu.stats()
        }
    }

    /// Move the SFU's datagrams to the send queue, sending each batch as it fills: a backlog
    /// of relayed packets can make far more datagrams than the queue holds, and only a full
    /// socket may hold them back (a full queue drops and counts).
    fn queue_transmits(&mut self) {
        while let Some(t) = self.sfu.poll_transmit() {
            // Once per SEND_BATCH queued: when the socket is full, one try per batch, not
            // per datagram.
            if self.out.push(t.destination, t.contents)
                && self.out.len().is_multiple_of(udp::SEND_BATCH)
            {
                self.out.send_full_batches(&self.socket);
            }
        }
    }

    /// Send what the SFU produced and hand its events to the sink.
    fn flush(&mut self) {
        self.queue_transmits();
        while let Some(event) = self.sfu.poll_event() {
            (self.sink)(WorkerEvent::Media(event));
        }
        if let Some(own) = self.own {
            while let Some((link, message)) = self.sfu.poll_relay() {
                if let Some(to) = self.links.get(&link) {
                    // A worker that is gone takes nothing more; the others go on.
                    let _ = to.relay(own, message);
                }
            }
        }
        if self.record_sinks.is_empty() {
            self.out.flush(&self.socket);
            return;
        }
        while let Some(frame) = self.sfu.poll_recorded() {
            if let Some(sink) = self.record_sinks.get_mut(&frame.room) {
                sink.frame(frame);
            }
        }
        let now = Instant::now();
        for (room, sink) in &mut self.record_sinks {
            for (participant, track) in sink.keyframes_wanted() {
                let here = self
                    .sfu
                    .request_recording_keyframe(now, room, &participant, track);
                if !here {
                    // Recorded by a linked worker (the writer is shared): pass it on.
                    for to in self.links.values() {
                        let _ = to.send(Command::RecordingKeyframe {
                            room: room.clone(),
                            participant: participant.clone(),
                            track,
                        });
                    }
                }
            }
        }
        self.queue_transmits();
        // What does not fit now waits for writability (see `run`), in order.
        self.out.flush(&self.socket);
    }

    fn close_all(&mut self) {
        let now = Instant::now();
        let peers = self.sfu.peers();
        for p in peers {
            self.sfu.remove_peer(now, &p);
        }
        // Best effort: the last datagrams (DTLS close alerts) get a moment for a full buffer.
        self.queue_transmits();
        for _ in 0..10 {
            if self.out.flush(&self.socket) {
                break;
            }
            udp::wait(&self.socket, Duration::from_millis(10), true);
        }
    }
}
