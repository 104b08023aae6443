//! The server's side of the media plane: a fixed set of `lectern-sfu` media workers (one per
//! core by default, each a thread with its own UDP port), room placement on them, and the glue
//! that carries WebRTC signalling between room tasks and the workers.
//!
//! Placement: each participant's peer goes on the worker with the fewest peers at that moment
//! ([`MediaPlane::place`]; of equals, one the room already uses), so a large lecture spreads
//! over every core. The workers are linked to each other at start (`lectern_sfu::Sfu::add_link`):
//! a packet is taken in once on its publisher's worker (decrypted, routed, recorded) and handed
//! once to each other worker that has peers of its room, which delivers it to its own
//! subscribers; nothing per subscriber crosses threads. The room task keeps each peer's
//! [`Placement`] while it has one. With one worker (`media.workers = 1`) nothing is linked and
//! everything stays on it, as before.
//!
//! A recorded room is recorded by every worker it has peers on, each its own publishers'
//! tracks into the one writer (workers number tracks in ranges of their own, so they never
//! collide).
//!
//! Room tasks send commands straight to a peer's worker (its handle never blocks). Workers report
//! answers, offers and failures on their own threads into one channel; a dispatcher task hands
//! each event to the room task it concerns, which sends it down that participant's connection.
//! A participant's peer is named by room and participant id (`lectern_sfu::PeerId`), so the same
//! `sub` in two rooms gets two peers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lectern_proto::{MediaKind, MediaTrack, ParticipantId, RoomId, ServerMessage};
use lectern_sfu::{
    Command, LinkId, MediaEvent, MediaWorker, MediaWorkerHandle, PeerId, SfuError, SfuStats,
    WorkerConfig, WorkerEvent,
};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::config::Config;
use crate::metrics::write_metric;

/// The SFU's name for this participant's peer in this room.
pub fn peer_id(room: &RoomId, participant: &ParticipantId) -> PeerId {
    PeerId::new(room.as_str(), participant.as_str())
}

/// The running media workers, shared by every room task.
#[derive(Debug)]
pub struct MediaPlane {
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct Slot {
    handle: MediaWorkerHandle,
    /// Peers placed here (one per [`Placement`]).
    peers: AtomicUsize,
}

/// The worker of one participant's peer, held by its room task while the peer exists.
#[derive(Debug)]
pub struct Placement {
    plane: Arc<MediaPlane>,
    index: usize,
}

impl Placement {
    pub fn handle(&self) -> &MediaWorkerHandle {
        &self.plane.slots[self.index].handle
    }

    /// Which worker (0-based), for logs and tests.
    pub fn worker(&self) -> usize {
        self.index
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.plane.slots[self.index]
            .peers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl MediaPlane {
    /// A worker for a new peer, counted into its load: the one with the fewest peers now; of
    /// equals, one of `room_workers` (the workers the room's other peers are on, so small
    /// classes stay together), else the first.
    pub fn place(self: &Arc<Self>, room_workers: &[usize]) -> Placement {
        let index = (0..self.slots.len())
            .min_by_key(|&i| {
                let load = self.slots[i].peers.load(Ordering::Relaxed);
                (load, !room_workers.contains(&i), i)
            })
            .unwrap_or(0);
        self.slots[index].peers.fetch_add(1, Ordering::Relaxed);
        Placement {
            plane: self.clone(),
            index,
        }
    }

    /// Worker `index`'s handle.
    pub fn handle(&self, index: usize) -> Option<&MediaWorkerHandle> {
        self.slots.get(index).map(|s| &s.handle)
    }

    /// Each worker's placed peers, in worker order.
    pub fn loads(&self) -> Vec<usize> {
        self.slots
            .iter()
            .map(|s| s.peers.load(Ordering::Relaxed))
            .collect()
    }

    /// The workers' counters, summed.
    pub fn stats(&self) -> SfuStats {
        let mut sum = SfuStats::default();
        for slot in &self.slots {
            sum += slot.handle.stats();
        }
        sum
    }

    /// The media part of `/metrics`.
    pub fn render_metrics(&self) -> String {
        let s = self.stats();
        let mut out = String::new();
        let gauges = [
            (
                "lectern_media_workers",
                "Media worker threads (one UDP port each).",
                self.slots.len() as u64,
            ),
            (
                "lectern_media_peers",
                "WebRTC peer connections on the media workers.",
                s.peers as u64,
            ),
        ];
        for (name, help, v) in gauges {
            write_metric(&mut out, name, help, "gauge", v);
        }
        let counters = [
            (
                "lectern_media_rtp_received_total",
                "RTP packets received from publishers.",
                s.rtp_received,
            ),
            (
                "lectern_media_rtp_forwarded_total",
                "RTP packets sent to subscribers (one per subscriber).",
                s.rtp_forwarded,
            ),
            (
                "lectern_media_rtp_denied_total",
                "RTP packets dropped: the publisher may not publish that kind (muted, no stage).",
                s.rtp_denied,
            ),
            (
                "lectern_media_keyframe_requests_total",
                "Keyframe requests (PLI/FIR) sent to publishers after coalescing.",
                s.keyframe_requests_sent,
            ),
            (
                "lectern_media_layer_switches_total",
                "Subscribers switched to another simulcast layer of a video.",
                s.layer_switches,
            ),
            (
                "lectern_media_downlink_cuts_total",
                "Subscribers whose link was found congested and their video capped a layer down.",
                s.downlink_cuts,
            ),
            (
                "lectern_media_speaker_changes_total",
                "Active-speaker changes reported to rooms.",
                s.speaker_changes,
            ),
            (
                "lectern_media_datagrams_unmatched_total",
                "UDP datagrams no peer accepted.",
                s.datagrams_unmatched,
            ),
            (
                "lectern_media_rtp_relayed_total",
                "RTP packets handed to another media worker (once per packet and worker with \
                 peers of its room).",
                s.rtp_relayed,
            ),
            (
                "lectern_media_datagrams_sent_total",
                "UDP datagrams the media workers sent.",
                s.udp_sent,
            ),
            (
                "lectern_media_datagrams_send_failed_total",
                "UDP datagrams the kernel refused for their destination (skipped).",
                s.udp_send_failed,
            ),
            (
                "lectern_media_datagrams_send_dropped_total",
                "UDP datagrams dropped: a worker's send queue was full while its socket was.",
                s.udp_send_dropped,
            ),
            (
                "lectern_media_send_calls_total",
                "sendmmsg system calls of the media workers (batches of datagrams).",
                s.udp_send_calls,
            ),
            (
                "lectern_media_recv_calls_total",
                "recvmmsg system calls of the media workers.",
                s.udp_recv_calls,
            ),
            (
                "lectern_media_socket_overflow_total",
                "UDP datagrams the kernel dropped before a media worker read them (its socket's \
                 receive buffer full: the worker is short of CPU; joins fail while this grows).",
                s.udp_recv_overflow,
            ),
            (
                "lectern_media_stale_shed_total",
                "Publishers' RTP packets a media worker did not send on because they waited too \
                 long (over 250 ms in its socket, or relayed that late by another worker): the \
                 worker fell behind and caught up by skipping media too old to be of use.",
                s.rtp_shed,
            ),
            (
                "lectern_media_subscriber_sends_total",
                "Passes through a subscriber's connection that sent the RTP written to it (once \
                 per subscriber and batch of received packets; RTP forwarded over this is the \
                 mean batch).",
                s.subscriber_sends,
            ),
        ];
        for (name, help, v) in counters {
            write_metric(&mut out, name, help, "counter", v);
        }
        out
    }
}

/// How many workers `media.workers` asks for: 0 means one per core.
pub fn worker_count(config: &Config) -> usize {
    match config.media.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Start the media workers. Their events arrive on the returned channel; the workers are
/// returned for shutdown.
#[allow(clippy::type_complexity)]
pub fn start(
    config: &Config,
) -> Result<
    (
        Vec<MediaWorker>,
        Arc<MediaPlane>,
        mpsc::UnboundedReceiver<WorkerEvent>,
    ),
    SfuError,
> {
    let (tx, rx) = mpsc::unbounded_channel();
    let base = config.media_bind();
    let mut workers = Vec::new();
    for i in 0..worker_count(config) {
        // One port per worker from media.bind's port up (port 0: each picks a free one).
        let port = match base.port() {
            0 => 0,
            p => p
                .checked_add(u16::try_from(i).unwrap_or(u16::MAX))
                .ok_or_else(|| SfuError::Config(format!("no port left for media worker {i}")))?,
        };
        let mut worker_config = WorkerConfig::new(SocketAddr::new(base.ip(), port));
        worker_config.public_ips = config.media_public_ips();
        worker_config.name = format!("media-{i}");
        // Each worker numbers tracks in its own range (see `Placement` on recording).
        worker_config.track_id_base = (i as u64) << 40;
        let tx = tx.clone();
        // The sink runs on the worker thread: hand the event over and return at once.
        let worker = MediaWorker::spawn(worker_config, move |event| {
            let _ = tx.send(event);
        })?;
        info!(media.worker = i, media.addr = %worker.local_addr(), "media worker listening");
        workers.push(worker);
    }
    // Every worker relays with every other: a room's peers may be on any of them.
    if workers.len() > 1 {
        for (i, worker) in workers.iter().enumerate() {
            for (j, other) in workers.iter().enumerate().filter(|(j, _)| *j != i) {
                worker.handle().send(Command::Link {
                    own: LinkId(i as u32),
                    other: LinkId(j as u32),
                    to: other.handle(),
                })?;
            }
        }
    }
    let plane = MediaPlane {
        slots: workers
            .iter()
            .map(|w| Slot {
                handle: w.handle(),
                peers: AtomicUsize::new(0),
            })
            .collect(),
    };
    Ok((workers, Arc::new(plane), rx))
}

/// Route worker events to the room tasks of the participants they concern: `room_task` gives a
/// running room's command channel (the room registry's lookup, which never starts a room).
pub async fn dispatch<C: From<WorkerEvent>>(
    mut events: mpsc::UnboundedReceiver<WorkerEvent>,
    room_task: impl Fn(&RoomId) -> Option<mpsc::Sender<C>>,
) {
    while let Some(event) = events.recv().await {
        let room = match &event {
            WorkerEvent::Answer { peer, .. }
            | WorkerEvent::Failed { peer, .. }
            | WorkerEvent::Media(
                MediaEvent::Offer { peer, .. }
                | MediaEvent::Connected { peer }
                | MediaEvent::Disconnected { peer }
                | MediaEvent::TrackPublished { peer, .. }
                | MediaEvent::TrackUnpublished { peer, .. },
            ) => &peer.room,
            WorkerEvent::Media(
                MediaEvent::ActiveSpeaker { room, .. } | MediaEvent::NetworkQuality { room, .. },
            ) => room,
        };
        let room = RoomId::new(room.as_str());
        match room_task(&room) {
            Some(tx) => {
                let _ = tx.send(C::from(event)).await;
            }
            None => debug!(room.id = %room, "media event for a room that is gone"),
        }
    }
}

/// The protocol message for a worker event addressed to a client, if any.
pub fn to_client(event: &WorkerEvent) -> Option<ServerMessage> {
    match event {
        WorkerEvent::Answer { sdp, .. } => Some(ServerMessage::SfuAnswer { sdp: sdp.clone() }),
        WorkerEvent::Media(MediaEvent::Offer { sdp, tracks, .. }) => {
            Some(ServerMessage::SfuOffer {
                sdp: sdp.clone(),
                tracks: tracks
                    .iter()
                    .map(|t| MediaTrack {
                        mid: t.mid.clone(),
                        participant_id: ParticipantId::new(t.publisher.participant.as_str()),
                        kind: match t.kind {
                            lectern_sfu::MediaKind::Audio => MediaKind::Audio,
                            lectern_sfu::MediaKind::Video => MediaKind::Video,
                        },
                    })
                    .collect(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(room: &str, participant: &str) -> PeerId {
        peer_id(&RoomId::new(room), &ParticipantId::new(participant))
    }

    /// The same participant in two rooms gets two peers, and each event reaches the room of
    /// its peer (or the room it names), not the other.
    #[tokio::test]
    async fn events_reach_the_room_of_their_peer() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (a_tx, mut a_rx) = mpsc::channel::<WorkerEvent>(8);
        let (b_tx, mut b_rx) = mpsc::channel::<WorkerEvent>(8);
        let events = [
            WorkerEvent::Answer {
                peer: peer("algebra.s1", "same"),
                sdp: "answer".into(),
            },
            WorkerEvent::Media(MediaEvent::Connected {
                peer: peer("algebra.s1.b", "same"),
            }),
            WorkerEvent::Media(MediaEvent::ActiveSpeaker {
                room: lectern_sfu::RoomId::from("algebra.s1.b"),
                participant: Some(lectern_sfu::ParticipantId::from("same")),
            }),
            WorkerEvent::Media(MediaEvent::Disconnected {
                peer: peer("gone", "same"),
            }),
        ];
        for event in events.iter().cloned() {
            tx.send(event).unwrap();
        }
        drop(tx);
        dispatch(rx, move |room: &RoomId| match room.as_str() {
            "algebra.s1" => Some(a_tx.clone()),
            "algebra.s1.b" => Some(b_tx.clone()),
            _ => None,
        })
        .await;
        assert_eq!(a_rx.try_recv().ok().as_ref(), Some(&events[0]));
        assert!(a_rx.try_recv().is_err());
        assert_eq!(b_rx.try_recv().ok().as_ref(), Some(&events[1]));
        assert_eq!(b_rx.try_recv().ok().as_ref(), Some(&events[2]));
        assert!(b_rx.try_recv().is_err());
    }

    /// An offered track names its publisher's participant id as it is.
    #[test]
    fn offered_tracks_name_the_publisher() {
        let event = WorkerEvent::Media(MediaEvent::Offer {
            peer: peer("algebra.s1", "student"),
            sdp: "offer".into(),
            tracks: vec![lectern_sfu::OfferedTrack {
                mid: "0".into(),
                publisher: peer("algebra.s1", "teacher a.b"),
                kind: lectern_sfu::MediaKind::Video,
            }],
        });
        let Some(ServerMessage::SfuOffer { tracks, .. }) = to_client(&event) else {
            panic!("not an sfu_offer");
        };
        assert_eq!(
            tracks,
            vec![MediaTrack {
                mid: "0".into(),
                participant_id: ParticipantId::new("teacher a.b"),
                kind: MediaKind::Video,
            }]
        );
    }
}
