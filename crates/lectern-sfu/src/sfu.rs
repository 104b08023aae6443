//! The sans-IO SFU core: peers, demultiplexing, forwarding, policy and renegotiation.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::BweKind;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::ice::StunMessage;
use str0m::media::{Direction, KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tracing::{debug, info, trace, warn};

use crate::layers::{self, LAYER_CHECK_INTERVAL, Layer, Run, ViewSize};
use crate::peer::{
    HELD_FLUSH_DELAY, MAX_ADDRS_PER_PEER, MAX_HELD, OutState, Peer, PeerKey, TrackId, TrackIn,
    TrackOut,
};
use crate::sdp::{Numbering, candidates_in_every_mline};
use crate::speaker::{self, LevelWindow, SPEAKER_INTERVAL};
use crate::{
    MediaEvent, MediaKind, OfferedTrack, ParticipantId, PublishPermission, RoomId, SfuError,
    SfuStats, Transmit,
};

/// Default for [`SfuConfig::keyframe_request_interval`].
pub const DEFAULT_KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// What audio is assumed to take from a subscriber's bandwidth (Opus voice with headers).
const AUDIO_BITRATE: u64 = 64_000;

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
}

impl SfuConfig {
    pub fn new(sockets: Vec<SocketAddr>) -> Self {
        SfuConfig {
            sockets,
            public_ips: Vec::new(),
            keyframe_request_interval: DEFAULT_KEYFRAME_REQUEST_INTERVAL,
        }
    }
}

/// A local socket and the address advertised for it in candidates.
#[derive(Debug, Clone, Copy)]
struct LocalAddr {
    socket: SocketAddr,
    advertised: SocketAddr,
}

/// What str0m produced while being drained, kept apart from `peers` so both can be borrowed.
struct Outbox {
    local: Vec<LocalAddr>,
    transmits: VecDeque<Transmit>,
    /// str0m events not handled yet. Handling one may touch other peers, so events are queued
    /// and handled after the drain that produced them, never inside it.
    rtc_events: VecDeque<(PeerKey, Event)>,
}

impl Outbox {
    /// Poll `peer` until str0m returns its next timeout (str0m requires a full drain after
    /// every mutation).
    fn drain(&mut self, key: PeerKey, peer: &mut Peer) {
        while peer.rtc.is_alive() {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    peer.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // str0m sends from the advertised address; the socket may differ (NAT).
                    let source = self
                        .local
                        .iter()
                        .find(|l| l.advertised == t.source)
                        .map_or(t.source, |l| l.socket);
                    self.transmits.push_back(Transmit {
                        source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Ok(Output::Event(e)) => self.rtc_events.push_back((key, e)),
                Err(e) => {
                    warn!(participant.id = %peer.participant, error = %e, "peer failed");
                    peer.rtc.disconnect();
                    return;
                }
            }
        }
    }

    /// Drain, then let str0m act on `now` if it asks to (queued RTP leaves on a timeout).
    fn settle(&mut self, key: PeerKey, peer: &mut Peer, now: Instant) {
        self.drain(key, peer);
        // Bounded: str0m asks again at most a couple of times for the same instant.
        for _ in 0..3 {
            if !peer.rtc.is_alive() || peer.timeout > now {
                return;
            }
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                warn!(participant.id = %peer.participant, error = %e, "peer failed");
                peer.rtc.disconnect();
                return;
            }
            self.drain(key, peer);
        }
    }
}

/// The SFU of one media worker: every peer of the rooms placed on it, one str0m [`Rtc`] each.
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
    peers: HashMap<PeerKey, Peer>,
    by_participant: HashMap<ParticipantId, PeerKey>,
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
            next_track: 0,
            peers: HashMap::new(),
            by_participant: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            rooms: HashMap::new(),
            outbox: Outbox {
                local,
                transmits: VecDeque::new(),
                rtc_events: VecDeque::new(),
            },
            offer_wanted: Vec::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
            speakers: HashMap::new(),
            next_speaker_check: None,
            next_layer_check: None,
        })
    }

    /// The addresses advertised as ICE candidates (one host candidate each).
    pub fn advertised_addrs(&self) -> Vec<SocketAddr> {
        self.outbox.local.iter().map(|l| l.advertised).collect()
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            peers: self.peers.len(),
            ..self.stats
        }
    }

    pub fn has_peer(&self, participant: &ParticipantId) -> bool {
        self.by_participant.contains_key(participant)
    }

    /// Every participant with a peer here.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.by_participant.keys().cloned().collect()
    }

    /// Create the peer connection of a participant joining `room`. It may publish nothing until
    /// [`Sfu::set_publish_permission`] says so. If the room already has published tracks, an
    /// [`MediaEvent::Offer`] for them follows; otherwise the browser's first offer starts things.
    pub fn add_peer(
        &mut self,
        now: Instant,
        room: RoomId,
        participant: ParticipantId,
    ) -> Result<(), SfuError> {
        if self.by_participant.contains_key(&participant) {
            return Err(SfuError::DuplicateParticipant(participant));
        }
        let creds = IceCreds::new();
        let rtc = Rtc::builder()
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .set_local_ice_credentials(creds.clone())
            // The SFU has a reachable address: browsers run the checks, we answer them, and
            // any source address that passes a check (peer-reflexive) is accepted.
            .set_ice_lite(true)
            // Forward RTP packets as they are: no depacketizing, one payload for everyone.
            .set_rtp_mode(true)
            // Codecs every browser decodes; a publisher's choice must suit all subscribers.
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        let mut peer = Peer {
            participant: participant.clone(),
            room: room.clone(),
            rtc,
            ufrag: creds.ufrag.clone(),
            addrs: Vec::new(),
            timeout: now,
            dtls_up: false,
            ice_up: false,
            up_reported: false,
            down_reported: false,
            holding: true,
            held: Vec::new(),
            flush_at: None,
            permission: PublishPermission::NONE,
            pending_offer: None,
            numbering: Numbering::default(),
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            ssrc_routes: Vec::new(),
            bandwidth: None,
        };
        let advertised = self.advertised_addrs();
        for addr in advertised {
            match Candidate::host(addr, "udp") {
                Ok(c) => {
                    peer.rtc.add_local_candidate(c);
                }
                Err(e) => return Err(SfuError::Config(format!("bad local candidate: {e}"))),
            }
            self.outbox.drain(key, &mut peer);
        }

        // Subscribe to what the room already publishes.
        let members = self.rooms.entry(room.clone()).or_default();
        for &other in members.iter() {
            let Some(publisher) = self.peers.get_mut(&other) else {
                continue;
            };
            for track in publisher.tracks_in.iter_mut().filter(|t| t.announced) {
                track.subscribers.push(key);
                peer.tracks_out.push(TrackOut::new(
                    other,
                    track.id,
                    publisher.participant.clone(),
                    track.kind,
                ));
            }
        }
        members.push(key);
        self.by_participant.insert(participant.clone(), key);
        self.by_ufrag.insert(creds.ufrag, key);
        self.peers.insert(key, peer);
        info!(room.id = %room, participant.id = %participant, "media peer added");
        self.want_offer(key);
        self.finish(now);
        Ok(())
    }

    /// Drop a participant's peer connection: its tracks stop for everyone (subscribers get an
    /// offer removing them) and it stops receiving. Unknown participants are ignored.
    pub fn remove_peer(&mut self, now: Instant, participant: &ParticipantId) {
        let Some(key) = self.by_participant.remove(participant) else {
            return;
        };
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        if let Some(members) = self.rooms.get_mut(&peer.room) {
            members.retain(|k| *k != key);
            if members.is_empty() {
                self.rooms.remove(&peer.room);
            }
        }
        for addr in &peer.addrs {
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
        }
        if self.by_ufrag.get(&peer.ufrag) == Some(&key) {
            self.by_ufrag.remove(&peer.ufrag);
        }
        // Say goodbye (RTCP BYE, DTLS close_notify); events of a leaving peer are dropped.
        if peer.rtc.is_alive() && peer.rtc.close().is_ok() {
            self.outbox.settle(key, &mut peer, now);
        }
        self.outbox.rtc_events.retain(|(k, _)| *k != key);

        for out in &peer.tracks_out {
            if let Some(publisher) = self.peers.get_mut(&out.source)
                && let Some(i) = publisher.track_in_index(out.track)
            {
                publisher.tracks_in[i].subscribers.retain(|k| *k != key);
            }
        }
        for track in &peer.tracks_in {
            for &sub in &track.subscribers {
                self.stop_track_out(sub, key, track.id);
            }
        }
        self.clear_speaker(&peer.room, key);
        info!(room.id = %peer.room, participant.id = %participant, "media peer removed");
        self.finish(now);
    }

    /// Accept the browser's offer (the first one, or a renegotiation) and return the answer.
    ///
    /// If the SFU had an offer of its own pending (glare), the browser's offer wins: ours is
    /// abandoned and made again after this answer, as a new [`MediaEvent::Offer`]. Deliver the
    /// returned answer before any event polled after this call.
    ///
    /// An offer that renumbers header extensions or payload types negotiated before is
    /// refused ([`SfuError::RenegotiationUnsupported`]) and changes nothing.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let key = self.key(participant)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        // str0m would answer it with the old numbers (and without the moved extensions).
        if let Some(moved) = peer.numbering.renumbered_by(&Numbering::of_sdp(sdp)) {
            debug!(participant.id = %participant, moved, "offer renumbers the negotiation: refused");
            return Err(SfuError::RenegotiationUnsupported(moved));
        }
        // str0m invalidates our pending offer when it accepts one: forget it here as well.
        let abandoned = peer.pending_offer.take().is_some();
        for out in &mut peer.tracks_out {
            out.state = match out.state {
                OutState::Negotiating(_) => OutState::ToOpen,
                OutState::NegotiatingStop(mid) => OutState::ToStop(mid),
                other => other,
            };
        }
        peer.tracks_out
            .retain(|o| !(o.source_gone && o.state == OutState::ToOpen));
        let result = peer.rtc.sdp_api().accept_offer(offer);
        peer.forget_negotiated();
        self.outbox.settle(key, peer, now);
        if abandoned {
            debug!(participant.id = %participant, "offer glare: the browser's offer wins");
        }
        self.refresh_ufrag(key);
        // Our own changes (abandoned or queued) are offered after the answer.
        self.want_offer(key);
        self.finish(now);
        let answer = result
            .map(|answer| answer.to_sdp_string())
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.numbering.record(&Numbering::of_sdp(&answer));
        }
        Ok(candidates_in_every_mline(&answer))
    }

    /// Accept the browser's answer to the SFU's last [`MediaEvent::Offer`].
    pub fn accept_answer(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        sdp: &str,
    ) -> Result<(), SfuError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let key = self.key(participant)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        let pending = peer.pending_offer.take().ok_or(SfuError::NoPendingOffer)?;
        let result = peer.rtc.sdp_api().accept_answer(pending, answer);
        let accepted = result.is_ok();
        if accepted {
            peer.numbering.record(&Numbering::of_sdp(sdp));
        }
        let mut opened = Vec::new();
        for (n, out) in peer.tracks_out.iter_mut().enumerate() {
            out.state = match (out.state, accepted) {
                (OutState::Negotiating(mid), true) if out.source_gone => OutState::ToStop(mid),
                (OutState::Negotiating(mid), true) => {
                    opened.push(n);
                    OutState::Open(mid)
                }
                (OutState::Negotiating(_), false) => OutState::ToOpen,
                (OutState::NegotiatingStop(mid), false) => OutState::ToStop(mid),
                (other, _) => other,
            };
        }
        if accepted {
            peer.tracks_out
                .retain(|o| !matches!(o.state, OutState::NegotiatingStop(_)));
        }
        peer.forget_negotiated();
        self.outbox.settle(key, peer, now);
        if let Err(e) = result {
            // Not re-offered at once (a broken client would loop); the next change or the
            // browser's next offer brings the m-lines back.
            self.finish(now);
            return Err(SfuError::Negotiation(e.to_string()));
        }
        // A subscriber that just got a track (late joiner) needs a keyframe to show anything:
        // of the layer it is to be sent. Before its first connection it is asked for now,
        // and held until then (see `Peer::held`): ICE and DTLS take about as long as a
        // publisher takes to send it.
        for n in opened {
            self.retarget(now, key, n, true);
        }
        self.want_offer(key);
        self.finish(now);
        Ok(())
    }

    /// A trickled ICE candidate from the browser (`candidate:...` as in `RTCIceCandidate`).
    /// An empty string (end of candidates) is accepted and ignored. The SFU is ICE-lite, so
    /// candidates are optional: checks from any address are answered.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        candidate: &str,
    ) -> Result<(), SfuError> {
        let key = self.key(participant)?;
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            return Ok(());
        }
        let candidate = Candidate::from_sdp_string(line)
            .map_err(|e| SfuError::InvalidCandidate(e.to_string()))?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        peer.rtc.add_remote_candidate(candidate);
        self.outbox.settle(key, peer, now);
        self.finish(now);
        Ok(())
    }

    /// Set what a participant may publish (the room's media intent). Takes effect on the next
    /// packet: denied media is dropped before it is forwarded to anyone. Allowing a track for
    /// the first time offers it to the room's subscribers; allowing it again resumes
    /// forwarding at once and asks the publisher for a keyframe.
    pub fn set_publish_permission(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        audio: bool,
        video: bool,
    ) -> Result<(), SfuError> {
        let key = self.key(participant)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        let old = peer.permission;
        let new = PublishPermission { audio, video };
        peer.permission = new;
        debug!(participant.id = %participant, audio, video, "publish permission");
        let mut to_announce = Vec::new();
        let mut resumed = Vec::new();
        for track in &mut peer.tracks_in {
            if new.allows(track.kind) && !old.allows(track.kind) {
                if track.announced {
                    track.generation = track.generation.wrapping_add(1);
                    resumed.push(track.id);
                } else {
                    to_announce.push(track.id);
                }
            }
        }
        for track in to_announce {
            self.announce(key, track);
        }
        for track in resumed {
            self.request_keyframe(now, key, track, None, KeyframeRequestKind::Pli);
        }
        if !audio {
            let room = self.peers[&key].room.clone();
            self.clear_speaker(&room, key);
        }
        self.finish(now);
        Ok(())
    }

    /// A datagram arrived on `destination` (one of the configured sockets) from `source`.
    /// Returns whether a peer took it.
    ///
    /// Demultiplexing: STUN requests go by the ufrag in their USERNAME (so checks from
    /// addresses nobody signalled still find their peer); everything else by the remote
    /// address map that those checks fill. Only datagrams that match neither fall back to
    /// asking each peer (`Rtc::accepts`), and a match is remembered.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        // Behind a 1:1 NAT the packet was sent to the advertised (public) address.
        let destination = self
            .outbox
            .local
            .iter()
            .find(|l| l.socket == destination && l.advertised.is_ipv4() == source.is_ipv4())
            .map_or(destination, |l| l.advertised);
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            trace!(len = contents.len(), "not a WebRTC datagram");
            self.stats.datagrams_unmatched += 1;
            return false;
        };
        let input = Input::Receive(now, receive);

        let stun_ufrag = stun_local_ufrag(contents);
        let mut key = match stun_ufrag {
            Some(ufrag) => self.by_ufrag.get(ufrag).copied(),
            None => self.by_addr.get(&source).copied(),
        };
        let mut remember = stun_ufrag.is_some();
        if key.is_none() {
            self.stats.demux_scans += 1;
            key = self
                .peers
                .iter()
                .find(|(_, p)| p.rtc.is_alive() && p.rtc.accepts(&input))
                .map(|(k, _)| *k);
            remember = true;
        }
        let Some(key) = key else {
            trace!(len = contents.len(), "no peer accepts the datagram");
            self.stats.datagrams_unmatched += 1;
            return false;
        };
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        if !peer.rtc.is_alive() {
            return false;
        }
        let sent_before = self.outbox.transmits.len();
        if let Err(e) = peer.rtc.handle_input(input) {
            warn!(participant.id = %peer.participant, error = %e, "peer failed");
            peer.rtc.disconnect();
        }
        self.outbox.drain(key, peer);
        if remember {
            // A STUN request is only trusted once str0m answered it, i.e. its
            // MESSAGE-INTEGRITY checked out: a spoofed check must not steal an address.
            let trusted = stun_ufrag.is_none()
                || self
                    .outbox
                    .transmits
                    .iter()
                    .skip(sent_before)
                    .any(|t| t.destination == source);
            if trusted {
                self.remember_addr(source, key);
            }
        }
        self.finish(now);
        true
    }

    /// Advance time: str0m timers (retransmissions, reports, ICE consent) and coalesced
    /// keyframe requests that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (&key, peer) in self.peers.iter_mut() {
            if !peer.rtc.is_alive() {
                continue;
            }
            for i in 0..peer.tracks_in.len() {
                for l in 0..peer.tracks_in[i].layers.len() {
                    match peer.tracks_in[i].layers[l].keyframe_due {
                        Some((due, kind)) if due <= now => {
                            peer.tracks_in[i].layers[l].keyframe_due = None;
                            if send_keyframe_request(peer, i, l, kind, now) {
                                self.stats.keyframe_requests_sent += 1;
                            }
                            self.outbox.drain(key, peer);
                        }
                        _ => {}
                    }
                }
            }
            if peer.flush_at.is_some_and(|t| t <= now) {
                peer.flush_at = None;
                peer.holding = false;
                debug!(participant.id = %peer.participant, held = peer.held.len(), "held video sent");
                // One at a time, as when forwarding live: str0m's send queue keeps the
                // capacity it grew to, ~20 KiB per subscriber for a whole hold at once.
                for (mid, write) in std::mem::take(&mut peer.held) {
                    if write_rtp(&mut peer.rtc, mid, write) {
                        self.stats.rtp_forwarded += 1;
                        self.outbox.settle(key, peer, now);
                    }
                }
            }
            if peer.timeout <= now {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    warn!(participant.id = %peer.participant, error = %e, "peer failed");
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
        self.finish(now);
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
        self.peers
            .values()
            .filter(|p| p.rtc.is_alive())
            .flat_map(|p| {
                let due = p
                    .tracks_in
                    .iter()
                    .flat_map(|t| &t.layers)
                    .filter_map(|l| l.keyframe_due.map(|(d, _)| d));
                std::iter::once(p.timeout).chain(due).chain(p.flush_at)
            })
            .chain(self.next_speaker_check)
            .chain(self.next_layer_check)
            .min()
    }

    /// Every room's speaker for the window that just ended; reset the windows.
    fn decide_speakers(&mut self) {
        let mut candidates = Vec::new();
        for (room, keys) in &self.rooms {
            candidates.clear();
            for key in keys {
                let Some(peer) = self.peers.get_mut(key) else {
                    continue;
                };
                let allowed = peer.permission.allows(MediaKind::Audio);
                let mut window = LevelWindow::default();
                let mut publishes_audio = false;
                for track in &mut peer.tracks_in {
                    let levels = std::mem::take(&mut track.levels);
                    if track.kind == MediaKind::Audio && allowed {
                        publishes_audio = true;
                        window.speech_packets += levels.speech_packets;
                        window.loudness += levels.loudness;
                    }
                }
                if publishes_audio {
                    candidates.push((*key, window));
                }
            }
            let current = self.speakers.get(room).copied();
            let new = match speaker::decide(current, &candidates) {
                Some(new) => Some(new),
                // Keep the current speaker through silence, unless they no longer publish
                // audio that may be heard.
                None if current.is_some_and(|c| !candidates.iter().any(|(k, _)| *k == c)) => None,
                None => continue,
            };
            match new {
                Some(key) => self.speakers.insert(room.clone(), key),
                None => self.speakers.remove(room),
            };
            let participant = new
                .and_then(|k| self.peers.get(&k))
                .map(|p| p.participant.clone());
            self.stats.speaker_changes += 1;
            self.events.push_back(MediaEvent::ActiveSpeaker {
                room: room.clone(),
                participant,
            });
        }
    }

    /// A peer that may no longer be heard (gone, microphone stopped, muted) stops being its
    /// room's speaker at once.
    fn clear_speaker(&mut self, room: &RoomId, key: PeerKey) {
        if self.speakers.get(room) == Some(&key) {
            self.speakers.remove(room);
            self.stats.speaker_changes += 1;
            self.events.push_back(MediaEvent::ActiveSpeaker {
                room: room.clone(),
                participant: None,
            });
        }
    }

    fn key(&self, participant: &ParticipantId) -> Result<PeerKey, SfuError> {
        self.by_participant
            .get(participant)
            .copied()
            .ok_or_else(|| SfuError::UnknownParticipant(participant.clone()))
    }

    fn remember_addr(&mut self, addr: SocketAddr, key: PeerKey) {
        match self.by_addr.insert(addr, key) {
            Some(old) if old == key => return,
            Some(old) => {
                // The address moved to another peer (a NAT reused the port).
                if let Some(p) = self.peers.get_mut(&old) {
                    p.addrs.retain(|a| *a != addr);
                }
            }
            None => {}
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.addrs.push(addr);
        if peer.addrs.len() > MAX_ADDRS_PER_PEER {
            let oldest = peer.addrs.remove(0);
            if self.by_addr.get(&oldest) == Some(&key) {
                self.by_addr.remove(&oldest);
            }
        }
    }

    /// An ICE restart changes our ufrag: keep the STUN demultiplexer in step.
    fn refresh_ufrag(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let ufrag = peer.rtc.direct_api().local_ice_credentials().ufrag;
        if ufrag != peer.ufrag {
            if self.by_ufrag.get(&peer.ufrag) == Some(&key) {
                self.by_ufrag.remove(&peer.ufrag);
            }
            self.by_ufrag.insert(ufrag.clone(), key);
            peer.ufrag = ufrag;
        }
    }

    fn check_alive(&mut self) {
        for peer in self.peers.values_mut() {
            if !peer.rtc.is_alive() && !peer.down_reported {
                peer.up_reported = false;
                peer.down_reported = true;
                self.events.push_back(MediaEvent::Disconnected {
                    participant: peer.participant.clone(),
                });
            }
        }
    }

    /// End of every public call: handle what str0m produced, then make the offers that the
    /// call made necessary (one per peer, however many tracks changed), then report peers that
    /// died.
    fn finish(&mut self, now: Instant) {
        loop {
            self.process_rtc_events(now);
            if self.offer_wanted.is_empty() {
                break;
            }
            for key in std::mem::take(&mut self.offer_wanted) {
                self.maybe_offer(key);
            }
        }
        self.check_alive();
    }

    fn want_offer(&mut self, key: PeerKey) {
        if !self.offer_wanted.contains(&key) {
            self.offer_wanted.push(key);
        }
    }

    fn process_rtc_events(&mut self, now: Instant) {
        while let Some((key, event)) = self.outbox.rtc_events.pop_front() {
            self.on_rtc_event(now, key, event);
        }
    }

    fn on_rtc_event(&mut self, now: Instant, key: PeerKey, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(now, key, packet),
            Event::KeyframeRequest(req) => {
                let Some(peer) = self.peers.get(&key) else {
                    return;
                };
                let source = peer.tracks_out.iter().find_map(|o| match o.state {
                    OutState::Open(mid) if mid == req.mid => Some((o.source, o.track, o.target)),
                    _ => None,
                });
                if let Some((source, track, layer)) = source {
                    self.request_keyframe(now, source, track, Some(layer), req.kind);
                }
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                self.add_track_in(key, added.mid, MediaKind::from_str0m(added.kind));
            }
            Event::MediaChanged(changed) => {
                let Some(peer) = self.peers.get(&key) else {
                    return;
                };
                let known = peer.tracks_in.iter().any(|t| t.mid == changed.mid);
                let receiving = changed.direction.is_receiving();
                if known && !receiving {
                    self.remove_track_in(key, changed.mid);
                } else if !known && receiving {
                    let kind = peer.rtc.media(changed.mid).map(|m| m.kind());
                    if let Some(kind) = kind {
                        self.add_track_in(key, changed.mid, MediaKind::from_str0m(kind));
                    }
                }
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    trace!(participant.id = %peer.participant, estimate = estimate.as_u64(), "bandwidth estimate");
                    peer.bandwidth = Some(estimate.as_u64());
                }
            }
            Event::Connected => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.dtls_up = true;
                }
                self.on_connectivity(now, key);
            }
            Event::IceConnectionStateChange(state) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.ice_up = matches!(
                        state,
                        IceConnectionState::Connected | IceConnectionState::Completed
                    );
                }
                self.on_connectivity(now, key);
            }
            Event::Closed => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.ice_up = false;
                }
                self.on_connectivity(now, key);
            }
            _ => {}
        }
    }

    /// Report connectivity changes once per change; on (re)connect, ask every publisher this
    /// peer subscribes to for a keyframe.
    fn on_connectivity(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let participant = peer.participant.clone();
        if peer.connected() && !peer.up_reported {
            peer.up_reported = true;
            peer.down_reported = false;
            let first = peer.holding;
            if first {
                peer.flush_at = Some(now + HELD_FLUSH_DELAY);
            }
            info!(participant.id = %participant, "media connected");
            self.events.push_back(MediaEvent::Connected { participant });
            // A keyframe for each video without one yet (the first time, the held video
            // starts with one), and for all of them after a connection was lost.
            let open: Vec<usize> = (0..peer.tracks_out.len())
                .filter(|&n| {
                    let out = &peer.tracks_out[n];
                    matches!(out.state, OutState::Open(_)) && (!first || out.keyframe_gen.is_none())
                })
                .collect();
            for n in open {
                self.retarget(now, key, n, true);
            }
        } else if !peer.connected() && peer.up_reported {
            peer.up_reported = false;
            peer.down_reported = true;
            info!(participant.id = %participant, "media disconnected");
            self.events
                .push_back(MediaEvent::Disconnected { participant });
        }
    }

    fn add_track_in(&mut self, key: PeerKey, mid: Mid, kind: MediaKind) {
        let id = TrackId(self.next_track);
        self.next_track += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.tracks_in.push(TrackIn::new(id, mid, kind));
        peer.ssrc_routes.clear();
        let allowed = peer.permission.allows(kind);
        debug!(participant.id = %peer.participant, kind = kind.as_str(), allowed, "track published");
        self.events.push_back(MediaEvent::TrackPublished {
            participant: peer.participant.clone(),
            mid: mid.to_string(),
            kind,
        });
        if allowed {
            self.announce(key, id);
        }
    }

    fn remove_track_in(&mut self, key: PeerKey, mid: Mid) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = peer.tracks_in.iter().position(|t| t.mid == mid) else {
            return;
        };
        let track = peer.tracks_in.remove(i);
        peer.ssrc_routes.clear();
        self.events.push_back(MediaEvent::TrackUnpublished {
            participant: peer.participant.clone(),
            mid: mid.to_string(),
            kind: track.kind,
        });
        let still_audible = peer.tracks_in.iter().any(|t| t.kind == MediaKind::Audio);
        let room = peer.room.clone();
        for &sub in &track.subscribers {
            self.stop_track_out(sub, key, track.id);
        }
        if !still_audible {
            self.clear_speaker(&room, key);
        }
    }

    /// Offer a publisher's track to every other peer of its room.
    fn announce(&mut self, key: PeerKey, track_id: TrackId) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let (room, publisher) = (peer.room.clone(), peer.participant.clone());
        let Some(i) = peer.track_in_index(track_id) else {
            return;
        };
        let kind = peer.tracks_in[i].kind;
        let subscribers: Vec<PeerKey> = self
            .rooms
            .get(&room)
            .map(|m| m.iter().copied().filter(|k| *k != key).collect())
            .unwrap_or_default();
        for &sub in &subscribers {
            if let Some(s) = self.peers.get_mut(&sub) {
                s.tracks_out
                    .push(TrackOut::new(key, track_id, publisher.clone(), kind));
            }
        }
        let peer = self.peers.get_mut(&key).expect("checked above");
        let track = &mut peer.tracks_in[i];
        track.announced = true;
        track.subscribers.extend_from_slice(&subscribers);
        for sub in subscribers {
            self.want_offer(sub);
        }
    }

    /// The source of `sub`'s copy of a track went away: stop that m-line.
    fn stop_track_out(&mut self, sub: PeerKey, source: PeerKey, track: TrackId) {
        let Some(peer) = self.peers.get_mut(&sub) else {
            return;
        };
        for out in peer.tracks_out.iter_mut() {
            if out.source == source && out.track == track {
                out.source_gone = true;
                if let OutState::Open(mid) = out.state {
                    out.state = OutState::ToStop(mid);
                }
            }
        }
        peer.tracks_out
            .retain(|o| !(o.source_gone && o.state == OutState::ToOpen));
        self.want_offer(sub);
    }

    /// If m-lines must be added or stopped and no offer is in flight, make an offer.
    fn maybe_offer(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.pending_offer.is_some() || !peer.rtc.is_alive() {
            return;
        }
        let wanted = peer
            .tracks_out
            .iter()
            .any(|o| matches!(o.state, OutState::ToOpen | OutState::ToStop(_)));
        if !wanted {
            return;
        }
        let mut api = peer.rtc.sdp_api();
        let mut offered = Vec::new();
        for out in &mut peer.tracks_out {
            match out.state {
                OutState::ToOpen => {
                    // The stream id groups a publisher's audio and video (lip sync). It is the
                    // SFU's own number for the publisher's peer: an SDP-safe token that carries
                    // no name or room (clients learn whose media a mid is from the signalling).
                    let stream = format!("p{}", out.source.0);
                    let mid = api.add_media(
                        out.kind.to_str0m(),
                        Direction::SendOnly,
                        Some(stream.clone()),
                        Some(format!("{stream}-{}-{}", out.kind.as_str(), out.track.0)),
                        None,
                    );
                    out.state = OutState::Negotiating(mid);
                    offered.push(OfferedTrack {
                        mid: mid.to_string(),
                        publisher: out.publisher.clone(),
                        kind: out.kind,
                    });
                }
                OutState::ToStop(mid) => {
                    api.stop_media(mid);
                    out.state = OutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        match api.apply() {
            Some((offer, pending)) => {
                peer.pending_offer = Some(pending);
                debug!(participant.id = %peer.participant, added = offered.len(), "offer to subscriber");
                self.events.push_back(MediaEvent::Offer {
                    participant: peer.participant.clone(),
                    sdp: candidates_in_every_mline(&offer.to_sdp_string()),
                    tracks: offered,
                });
            }
            None => {
                // Only stops of m-lines str0m already considers stopped: nothing to negotiate.
                peer.tracks_out
                    .retain(|o| !matches!(o.state, OutState::NegotiatingStop(_)));
            }
        }
        self.outbox.drain(key, peer);
    }

    /// Ask a publisher for a keyframe on one track (on one of its simulcast layers, or on all
    /// of them), at most once per layer and interval.
    fn request_keyframe(
        &mut self,
        now: Instant,
        key: PeerKey,
        track: TrackId,
        layer: Option<usize>,
        kind: KeyframeRequestKind,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = peer.track_in_index(track) else {
            return;
        };
        let t = &peer.tracks_in[i];
        if t.kind != MediaKind::Video || !peer.permission.allows(MediaKind::Video) {
            return;
        }
        let wanted = match layer {
            Some(l) if l < t.layers.len() => l..l + 1,
            Some(_) => return,
            None => 0..t.layers.len(),
        };
        let mut sent = false;
        for l in wanted {
            let layer = &mut peer.tracks_in[i].layers[l];
            if let Some(last) = layer.last_keyframe_request {
                let next = last + self.keyframe_interval;
                if now < next {
                    self.stats.keyframe_requests_coalesced += 1;
                    let kind = match layer.keyframe_due {
                        Some((_, KeyframeRequestKind::Fir)) => KeyframeRequestKind::Fir,
                        _ => kind,
                    };
                    layer.keyframe_due = Some((next, kind));
                    continue;
                }
            }
            if send_keyframe_request(peer, i, l, kind, now) {
                self.stats.keyframe_requests_sent += 1;
                sent = true;
            }
        }
        if sent {
            self.outbox.settle(key, peer, now);
        }
    }

    /// How big a subscriber shows one of the videos it receives (`mid` of the SFU's offer), in
    /// device pixels; 0x0 when it is not shown. The subscriber is sent the smallest simulcast
    /// layer that fills that size (within its bandwidth estimate); without simulcast this
    /// changes nothing.
    pub fn set_view_size(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        mid: &str,
        width: u32,
        height: u32,
    ) -> Result<(), SfuError> {
        let key = self.key(participant)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        let n = peer
            .tracks_out
            .iter()
            .position(|o| match o.state {
                OutState::Open(m) | OutState::Negotiating(m) => *m == *mid,
                _ => false,
            })
            .ok_or_else(|| SfuError::UnknownMid(mid.to_string()))?;
        peer.tracks_out[n].view = Some(ViewSize { width, height });
        if matches!(peer.tracks_out[n].state, OutState::Open(_)) {
            self.retarget(now, key, n, false);
        }
        self.finish(now);
        Ok(())
    }

    /// Choose the layer for output `n` of subscriber `sub` now; if it changed (or `announce`
    /// says the subscriber needs a picture at once), ask the publisher for a keyframe of it.
    /// Only when the keyframe can reach the subscriber (connected, or held while it connects
    /// for the first time): a lost one is wasted, and browsers ignore a second request that
    /// comes soon after (300 ms in libwebrtc).
    fn retarget(&mut self, now: Instant, sub: PeerKey, n: usize, announce: bool) {
        let Some(peer) = self.peers.get(&sub) else {
            return;
        };
        let Some(out) = peer.tracks_out.get(n) else {
            return;
        };
        let (source, track, view, old) = (out.source, out.track, out.view, out.target);
        let budget = self.video_budgets(sub).get(&(source, track)).copied();
        let Some(layers) = self.layers_of(source, track) else {
            return;
        };
        let target = layers::choose(layers, now, view, budget);
        let Some(peer) = self.peers.get_mut(&sub) else {
            return;
        };
        // A subscriber still connecting for the first time gets its video held (see
        // `Peer::held`), so its keyframe is worth asking for already.
        let may_send = peer.connected() || peer.holding;
        if target != old {
            debug!(participant.id = %peer.participant, layer = target, ?budget, ?view, "simulcast layer chosen");
        }
        if let Some(out) = peer.tracks_out.get_mut(n) {
            out.target = target;
        }
        if may_send && (announce || target != old) {
            self.request_keyframe(now, source, track, Some(target), KeyframeRequestKind::Pli);
        }
    }

    fn layers_of(&self, source: PeerKey, track: TrackId) -> Option<&[Layer]> {
        let peer = self.peers.get(&source)?;
        let i = peer.track_in_index(track)?;
        Some(&peer.tracks_in[i].layers)
    }

    /// The bandwidth each simulcast video sent to `sub` may use: its estimate, less what its
    /// audio and single-stream videos take, shared equally. Empty without an estimate.
    fn video_budgets(&self, sub: PeerKey) -> HashMap<(PeerKey, TrackId), u64> {
        let mut budgets = HashMap::new();
        let Some(peer) = self.peers.get(&sub) else {
            return budgets;
        };
        let Some(estimate) = peer.bandwidth else {
            return budgets;
        };
        let mut fixed = 0u64;
        let mut simulcast = Vec::new();
        for out in &peer.tracks_out {
            if !matches!(out.state, OutState::Open(_)) {
                continue;
            }
            match (out.kind, self.layers_of(out.source, out.track)) {
                (MediaKind::Audio, _) => fixed += AUDIO_BITRATE,
                (MediaKind::Video, Some(layers)) if layers.len() > 1 => {
                    simulcast.push((out.source, out.track));
                }
                (MediaKind::Video, Some(layers)) => {
                    fixed += layers.first().map_or(0, |l| l.rate.bps);
                }
                (MediaKind::Video, None) => {}
            }
        }
        if !simulcast.is_empty() {
            let share = estimate.saturating_sub(fixed) / simulcast.len() as u64;
            budgets.extend(simulcast.into_iter().map(|k| (k, share)));
        }
        budgets
    }

    /// Reconsider every subscriber's simulcast layers: views, estimates and the layers a
    /// publisher sends all change. A subscriber still waiting for the keyframe of its layer
    /// asks again (a request may have been ignored or its keyframe lost).
    fn choose_layers(&mut self, now: Instant) {
        let mut retarget = Vec::new();
        let mut waiting = Vec::new();
        for (&sub, peer) in &self.peers {
            if !peer.connected() {
                continue;
            }
            let budgets = self.video_budgets(sub);
            for (n, out) in peer.tracks_out.iter().enumerate() {
                if out.kind != MediaKind::Video || !matches!(out.state, OutState::Open(_)) {
                    continue;
                }
                let Some(layers) = self.layers_of(out.source, out.track) else {
                    continue;
                };
                if layers.len() > 1 {
                    let budget = budgets.get(&(out.source, out.track)).copied();
                    if layers::choose(layers, now, out.view, budget) != out.target {
                        retarget.push((sub, n));
                    } else if out.keyframe_gen.map(|r| usize::from(r.layer)) != Some(out.target) {
                        waiting.push((out.source, out.track, out.target));
                    }
                }
            }
        }
        for (sub, n) in retarget {
            self.retarget(now, sub, n, false);
        }
        for (source, track, layer) in waiting {
            self.request_keyframe(now, source, track, Some(layer), KeyframeRequestKind::Pli);
        }
        if self
            .peers
            .values()
            .any(|p| p.tracks_in.iter().any(|t| t.layers.len() > 1))
        {
            self.next_layer_check = Some(now + LAYER_CHECK_INTERVAL);
        }
    }

    /// Forward one RTP packet from a publisher to every subscriber of its track. The payload
    /// is shared (`Arc`), not copied; per subscriber only the header is rewritten (payload
    /// type, sequence number, timestamp; str0m sets SSRC, MID and transport-cc) before SRTP.
    /// Of a simulcast track, each subscriber is sent one layer: its target, from a keyframe.
    fn forward(&mut self, now: Instant, key: PeerKey, packet: RtpPacket) {
        self.stats.rtp_received += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some((track_id, layer_index)) = peer.route(packet.header.ssrc, now) else {
            return;
        };
        let Some(i) = peer.track_in_index(track_id) else {
            return;
        };
        let kind = peer.tracks_in[i].kind;
        if !peer.permission.allows(kind) {
            self.stats.rtp_denied += 1;
            return;
        }
        let pt_in = packet.header.payload_type;
        let Peer { rtc, tracks_in, .. } = peer;
        let track = &mut tracks_in[i];
        if kind == MediaKind::Audio {
            track.levels.add(packet.header.ext_vals.audio_level);
            if track.levels.speech_packets > 0 && self.next_speaker_check.is_none() {
                self.next_speaker_check = Some(now + SPEAKER_INTERVAL);
            }
        }
        let Some(params) = track.params_for(rtc, pt_in) else {
            return;
        };
        let is_vp8 = kind == MediaKind::Video && params.spec().codec == Codec::Vp8;
        let vp8 = if is_vp8 {
            Vp8Descriptor::parse(&packet.payload).ok()
        } else {
            None
        };
        // Codecs not inspected are forwarded from the first packet (`None`).
        let keyframe_start =
            is_vp8.then(|| vp8.is_some_and(|d| d.starts_keyframe(&packet.payload)));
        let layer = &mut track.layers[layer_index];
        layer.rate.add(now, packet.payload.len());
        layer.last_packet = now;
        if keyframe_start == Some(true)
            && let Some((w, h)) = layers::vp8_keyframe_size(&packet.payload)
        {
            (layer.width, layer.height) = (w, h);
        }
        let run = Run {
            generation: track.generation,
            layer: layer_index as u8,
            epoch: layer.epoch,
        };
        if track.layers.len() > 1 && self.next_layer_check.is_none() {
            self.next_layer_check = Some(now + LAYER_CHECK_INTERVAL);
        }
        if !track.announced || track.subscribers.is_empty() {
            return;
        }
        let clock_rate = params.spec().clock_rate.get();
        let subscriber_count = track.subscribers.len();
        let ext = forwarded_extensions(&packet.header.ext_vals);
        let seq_in = *packet.seq_no;

        for n in 0..subscriber_count {
            let Some(&sub_key) = self
                .peers
                .get(&key)
                .and_then(|p| p.tracks_in.get(i))
                .and_then(|t| t.subscribers.get(n))
            else {
                break;
            };
            let Some(sub) = self.peers.get_mut(&sub_key) else {
                continue;
            };
            // Video for a subscriber connecting for the first time is held (`Peer::held`).
            let hold = sub.holding;
            if !sub.rtc.is_alive()
                || (hold && kind != MediaKind::Video)
                || !(hold || sub.connected())
            {
                continue;
            }
            let Peer {
                rtc,
                tracks_out,
                held,
                ..
            } = sub;
            let Some(out) = tracks_out
                .iter_mut()
                .find(|o| o.source == key && o.track == track_id)
            else {
                continue;
            };
            let OutState::Open(mid) = out.state else {
                continue;
            };
            if out.keyframe_gen != Some(run) {
                // Not the run being forwarded: start it only if it is the target layer, and
                // (video) only at a keyframe. Until then the current run goes on.
                if out.target != layer_index {
                    continue;
                }
                if out.kind == MediaKind::Video {
                    if keyframe_start == Some(false) {
                        self.stats.rtp_awaiting_keyframe += 1;
                        continue;
                    }
                    if out.keyframe_gen.is_some_and(|r| r.layer != run.layer) {
                        self.stats.layer_switches += 1;
                    }
                    debug!(participant.id = %sub.participant, layer = layer_index, "video run starts at a keyframe");
                }
                out.keyframe_gen = Some(run);
            }
            let Some(pt) = out.map_pt(rtc, pt_in, params) else {
                continue;
            };
            let Some(seq_out) = out.seq.rewrite(seq_in, run) else {
                continue;
            };
            let ts_out = out
                .ts
                .rewrite(packet.header.timestamp, run, now, clock_rate);
            let mut write = RtpWrite::new(
                pt,
                seq_out.into(),
                ts_out,
                packet.timestamp,
                packet.payload.clone(),
            )
            .marker(packet.header.marker)
            .ext_vals(ext.clone())
            .nackable(kind == MediaKind::Video);
            if let Some(patch) = vp8.as_ref().and_then(|d| out.vp8.patch(d, run)) {
                write = write.vp8_patch(patch);
            }
            if hold {
                if held.len() < MAX_HELD {
                    held.push((mid, write));
                } else {
                    // Connecting takes too long: drop this video's share and start again
                    // from a keyframe once connected. Nothing of it was sent yet.
                    held.retain(|(m, _)| *m != mid);
                    out.keyframe_gen = None;
                }
                continue;
            }
            if !write_rtp(rtc, mid, write) {
                continue;
            }
            self.stats.rtp_forwarded += 1;
            self.outbox.settle(sub_key, sub, now);
        }
    }
}

/// Hand one packet for a subscriber to str0m, on the stream of `mid`. False if there is none
/// (the m-line went away).
fn write_rtp(rtc: &mut Rtc, mid: Mid, write: RtpWrite) -> bool {
    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(mid, None) else {
        return false;
    };
    stream.write_rtp(write);
    true
}

/// Ask str0m to send PLI/FIR for layer `l` of track `i` of `peer`. False if the publisher
/// has not sent anything on it yet (its first frame is a keyframe anyway).
fn send_keyframe_request(
    peer: &mut Peer,
    i: usize,
    l: usize,
    kind: KeyframeRequestKind,
    now: Instant,
) -> bool {
    let track = &mut peer.tracks_in[i];
    let mid = track.mid;
    let Some(layer) = track.layers.get_mut(l) else {
        return false;
    };
    let mut api = peer.rtc.direct_api();
    let Some(rx) = api.stream_rx_by_mid(mid, layer.rid) else {
        return false;
    };
    rx.request_keyframe(kind);
    layer.last_keyframe_request = Some(now);
    trace!(participant.id = %peer.participant, ?kind, layer = l, "keyframe request");
    true
}

/// The header extension values worth passing from publisher to subscriber. str0m writes MID,
/// RID, transport-cc and abs-send-time itself.
fn forwarded_extensions(src: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: src.audio_level,
        voice_activity: src.voice_activity,
        video_orientation: src.video_orientation,
        video_content_type: src.video_content_type,
        abs_capture_time: src.abs_capture_time,
        play_delay_min: src.play_delay_min,
        play_delay_max: src.play_delay_max,
        ..ExtensionValues::default()
    }
}

/// The local (our) ufrag of a STUN binding request: `USERNAME` is `ours:theirs`.
fn stun_local_ufrag(contents: &[u8]) -> Option<&str> {
    // Same test str0m uses to tell STUN from DTLS/RTP on a shared port (RFC 7983).
    if contents.len() < 20 || contents[0] >= 2 {
        return None;
    }
    let msg = StunMessage::parse(contents).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    let username = msg.username()?;
    username.split(':').next().filter(|u| !u.is_empty())
}
