//! The sans-IO SFU core: one [`Sfu`] type, its `impl` split by concern over the files of
//! `sfu/` (as `Room` is in `lectern-room`):
//!
//! - this file: configuration, the state, construction, timers and the polls;
//! - `outbox`: draining str0m after every change (datagrams to send, events to handle);
//! - `demux`: datagrams in, routed to their peer (by ufrag, then by address);
//! - `events`: str0m's events, dispatched to the concerns below; connectivity;
//! - `peers`: peers joining and leaving;
//! - `tracks`: publish permission, published tracks and who subscribes to them;
//! - `negotiation`: offers, answers and candidates (SDP helpers in `crate::sdp`);
//! - `ingest`, `deliver`: RTP forwarding in two steps, a publisher's packet taken in once
//!   (`ingest`), then delivered to each subscriber (`deliver`). Their seam, `Ingested`, is where
//!   a consumer fed once per packet (a recorder, another worker's subscribers: `relay`) plugs
//!   in; see `ingest`;
//! - `relay`: a room over several linked SFUs: packets handed once to each other SFU with
//!   peers of the room, delivered there through mirrors of the remote publishers;
//! - `keyframes`: keyframe requests to publishers, coalesced;
//! - `simulcast`: which layer each subscriber is sent;
//! - `downlink`: a subscriber whose link congests gets its video capped (and a smaller layer);
//! - `pause`: a subscriber pauses a video it does not show at all;
//! - `speakers`: each room's active speaker;
//! - `quality`: each peer's network quality, from str0m's statistics.

mod deliver;
mod demux;
mod downlink;
mod events;
mod ingest;
mod keyframes;
mod negotiation;
mod outbox;
mod pause;
mod peers;
mod quality;
mod record;
mod relay;
mod shed;
mod simulcast;
mod speakers;
mod tracks;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::Input;
use str0m::config::{CryptoProvider, DtlsCert};
use tracing::warn;

use crate::peer::{Peer, PeerKey, PeerMap};
use crate::{MediaEvent, PeerId, RoomId, SfuError, SfuStats, Transmit};

pub use self::record::RecordedFrame;
pub use self::relay::{LinkId, RelayMessage};

use self::deliver::flush_held_when_due;
use self::keyframes::send_due_keyframe_requests;
use self::outbox::{LocalAddr, Outbox};

/// Default for [`SfuConfig::keyframe_request_interval`].
pub const DEFAULT_KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// How one [`Sfu`] (one media worker) is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuConfig {
    /// The local UDP socket addresses datagrams arrive on and leave from (a worker's socket).
    /// Each needs a concrete IP unless `public_ips` is set.
    pub sockets: Vec<SocketAddr>,
    /// `media.public_ips`: with a 1:1 NAT, the public addresses to advertise instead of the
    /// socket's own IP (same port). Empty: advertise the socket address itself.
    pub public_ips: Vec<IpAddr>,
    /// At most one keyframe request per publisher track per interval; extra requests inside
    /// the interval are coalesced into one sent when it ends.
    pub keyframe_request_interval: Duration,
    /// The first number given to a published track ([`RecordedFrame::track`]): linked SFUs
    /// that record parts of one room each take their own range, so that a participant's
    /// tracks never share a number across them.
    pub track_id_base: u64,
}

impl SfuConfig {
    pub fn new(sockets: Vec<SocketAddr>) -> Self {
        SfuConfig {
            sockets,
            public_ips: Vec::new(),
            keyframe_request_interval: DEFAULT_KEYFRAME_REQUEST_INTERVAL,
            track_id_base: 0,
        }
    }
}

/// The SFU of one media worker: every peer of the rooms placed on it, one str0m
/// [`Rtc`](str0m::Rtc) each.
///
/// Sans-IO: time comes in as `now`, datagrams in through [`Sfu::handle_receive`], and
/// everything produced is drained with [`Sfu::poll_transmit`] and [`Sfu::poll_event`]. See the
/// crate docs for the contract.
pub struct Sfu {
    crypto: Arc<CryptoProvider>,
    /// One DTLS certificate for every peer of this SFU (generating one per peer costs a few
    /// milliseconds of CPU per join).
    cert: DtlsCert,
    keyframe_interval: Duration,
    next_key: u64,
    next_track: u64,
    peers: PeerMap<Box<Peer>>,
    /// The API's names of peers -> the SFU's own handles.
    by_id: HashMap<PeerId, PeerKey>,
    /// Remote address -> peer: the demultiplexer for everything but STUN.
    by_addr: HashMap<SocketAddr, PeerKey>,
    /// Our ICE ufrag -> peer: the demultiplexer for STUN, including unseen addresses.
    by_ufrag: HashMap<String, PeerKey>,
    rooms: HashMap<RoomId, Vec<PeerKey>>,
    outbox: Outbox,
    /// Peers whose m-lines changed during the current call; offered to at its end.
    offer_wanted: Vec<PeerKey>,
    events: VecDeque<MediaEvent>,
    stats: SfuStats,
    /// Each room's active speaker (see `speaker`).
    speakers: HashMap<RoomId, PeerKey>,
    /// When to decide speakers next; set by the first speech packet after a decision.
    next_speaker_check: Option<Instant>,
    /// When to reconsider every subscriber's simulcast layers next.
    next_layer_check: Option<Instant>,
    /// When to decide every peer's network quality next; set while there are peers.
    next_quality_check: Option<Instant>,
    /// Rooms being recorded (see `record`), and their frames waiting to be polled.
    recordings: HashMap<RoomId, record::RoomRecording>,
    recorded: VecDeque<RecordedFrame>,
    /// The SFUs this one relays with (see `relay`).
    links: Vec<LinkId>,
    /// Rooms whose media linked SFUs joined: each packet of the room's publishers here is
    /// handed once to each of them.
    relay_to: HashMap<RoomId, Vec<LinkId>>,
    /// Mirrors of other SFUs' publishers: (link, their `PeerKey`) -> ours.
    mirrors: HashMap<(LinkId, u64), PeerKey>,
    /// Mirrored tracks: (link, their `TrackId`) -> our mirror and track; looked up per
    /// relayed packet.
    mirror_tracks:
        HashMap<(LinkId, u64), (PeerKey, crate::peer::TrackId), rustc_hash::FxBuildHasher>,
    /// The datagram being handled is stale media: its RTP is shed (see `shed.rs`).
    shedding: bool,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("peers", &self.peers.len())
            .field("rooms", &self.rooms.len())
            .finish_non_exhaustive()
    }
}
impl Sfu {
    pub fn new(config: SfuConfig) -> Result<Sfu, SfuError> {
        if config.sockets.is_empty() {
            return Err(SfuError::Config("no media socket".into()));
        }
        let mut local = Vec::new();
        for &socket in &config.sockets {
            let same_family: Vec<IpAddr> = config
                .public_ips
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == socket.is_ipv4())
                .collect();
            if same_family.is_empty() {
                if socket.ip().is_unspecified() {
                    return Err(SfuError::Config(format!(
                        "socket {socket} has no concrete IP and no public IP of its family"
                    )));
                }
                local.push(LocalAddr {
                    socket,
                    advertised: socket,
                });
            }
            for ip in same_family {
                local.push(LocalAddr {
                    socket,
                    advertised: SocketAddr::new(ip, socket.port()),
                });
            }
        }
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| SfuError::Config("cannot generate a DTLS certificate".into()))?;
        Ok(Sfu {
            crypto,
            cert,
            keyframe_interval: config.keyframe_request_interval,
            next_key: 0,
            next_track: config.track_id_base,
            peers: PeerMap::default(),
            by_id: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            rooms: HashMap::new(),
            outbox: Outbox {
                local,
                transmits: VecDeque::new(),
                rtc_events: VecDeque::new(),
                relay: VecDeque::new(),
                batching: false,
                unsent: Vec::new(),
                unsent_since: None,
            },
            offer_wanted: Vec::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
            speakers: HashMap::new(),
            next_speaker_check: None,
            next_layer_check: None,
            next_quality_check: None,
            recordings: HashMap::new(),
            recorded: VecDeque::new(),
            links: Vec::new(),
            relay_to: HashMap::new(),
            mirrors: HashMap::new(),
            mirror_tracks: HashMap::default(),
            shedding: false,
        })
    }

    /// The addresses advertised as ICE candidates (one host candidate each).
    pub fn advertised_addrs(&self) -> Vec<SocketAddr> {
        self.outbox.local.iter().map(|l| l.advertised).collect()
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            peers: self.by_id.len(),
            ..self.stats
        }
    }

    pub fn has_peer(&self, peer: &PeerId) -> bool {
        self.by_id.contains_key(peer)
    }

    /// Every peer here.
    pub fn peers(&self) -> Vec<PeerId> {
        self.by_id.keys().cloned().collect()
    }

    /// Advance time: str0m timers (retransmissions, reports, ICE consent) and coalesced
    /// keyframe requests that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.outbox.unsent.is_empty() {
            self.send_unsent(now);
        }
        for (&key, peer) in self.peers.iter_mut() {
            if !peer.rtc.is_alive() {
                if peer.mirror.is_some() {
                    // A mirror's requests go to its SFU (see `relay`).
                    send_due_keyframe_requests(now, key, peer, &mut self.outbox, &mut self.stats);
                }
                continue;
            }
            send_due_keyframe_requests(now, key, peer, &mut self.outbox, &mut self.stats);
            flush_held_when_due(now, key, peer, &mut self.outbox, &mut self.stats);
            if peer.timeout <= now {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    warn!(room.id = %peer.id.room, participant.id = %peer.id.participant, error = %e, "peer failed");
                    peer.rtc.disconnect();
                }
                self.outbox.drain(key, peer);
            }
        }
        if self.next_speaker_check.is_some_and(|t| t <= now) {
            self.next_speaker_check = None;
            self.decide_speakers();
        }
        if self.next_layer_check.is_some_and(|t| t <= now) {
            self.next_layer_check = None;
            self.choose_layers(now);
        }
        if self.next_quality_check.is_some_and(|t| t <= now) {
            self.check_quality(now);
        }
        self.recording_timeouts(now);
        self.finish(now);
    }

    /// A batch of inputs starts: until [`Sfu::end_batch`], RTP forwarded to a subscriber is
    /// written to its `Rtc` and sent at the batch's end (a subscriber with `MAX_PER_PASS` packets
    /// waiting is sent them at once), so that str0m's fixed cost per send pass (a timeout, and a walk through
    /// ICE, DTLS, SCTP and the session per poll) is paid once per subscriber and batch instead
    /// of once per packet. Meant for what one read of the socket returned, or a run of
    /// relayed messages: between the two calls, hand the `Sfu` only
    /// [`Sfu::handle_receive`] and [`Sfu::handle_relay`]. Outside a batch every packet is sent
    /// as it is forwarded. Repeating the call is harmless.
    pub fn begin_batch(&mut self) {
        self.outbox.batching = true;
    }

    /// The batch started by [`Sfu::begin_batch`] ends: each subscriber written to during it is
    /// handed `now` and drained once, and what that produced is handled. Poll as after any
    /// input. Without an open batch it does nothing.
    pub fn end_batch(&mut self, now: Instant) {
        self.outbox.batching = false;
        if !self.outbox.unsent.is_empty() {
            self.send_unsent(now);
            self.finish(now);
        }
    }

    /// Send what waits in subscribers' `Rtc`s for the end of a batch.
    fn send_unsent(&mut self, now: Instant) {
        self.outbox.unsent_since = None;
        // The list is kept (not reallocated per batch); nothing is added to it meanwhile.
        let mut unsent = std::mem::take(&mut self.outbox.unsent);
        for key in unsent.drain(..) {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.unsent == 0 {
                continue;
            }
            if !peer.rtc.is_alive() {
                peer.unsent = 0;
                continue;
            }
            self.outbox.send_pass(key, peer, now, &mut self.stats);
        }
        self.outbox.unsent = unsent;
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.transmits.pop_front()
    }

    /// The next event for the signalling layer, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When to call [`Sfu::handle_timeout`] next; `None` when there are no peers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // A plain loop: it scans every peer, and is called after every datagram.
        let mut next = None;
        for p in self.peers.values() {
            let own = p.rtc.is_alive() && p.mirror.is_none();
            // A mirror has no connection of its own to time, only keyframe requests.
            if !own && p.mirror.is_none() {
                continue;
            }
            if own {
                next = earliest(next, Some(p.timeout));
                next = earliest(next, p.flush_at);
            }
            for track in &p.tracks_in {
                for layer in &track.layers {
                    next = earliest(next, layer.keyframe_due.map(|(d, _)| d));
                }
            }
        }
        next = earliest(next, self.next_speaker_check);
        next = earliest(next, self.next_layer_check);
        next = earliest(next, self.next_quality_check);
        next = earliest(next, self.outbox.unsent_since);
        earliest(next, self.recording_timeout())
    }

    fn key(&self, peer: &PeerId) -> Result<PeerKey, SfuError> {
        self.by_id
            .get(peer)
            .copied()
            .ok_or_else(|| SfuError::UnknownParticipant(peer.clone()))
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
