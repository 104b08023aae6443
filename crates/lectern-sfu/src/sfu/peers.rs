//! Peers joining and leaving: one str0m `Rtc` per participant of a room.

use std::time::Instant;

use str0m::{Candidate, IceCreds, Rtc};
use tracing::info;

use super::Sfu;
use crate::peer::{Peer, PeerKey, TrackOut};
use crate::{PeerId, SfuError};

/// The most video packets kept for resending (NACK, RTX) on each stream the SFU sends; str0m
/// keeps them 3 s, up to this many (its default: 1,000). Each takes ~430 B of str0m's
/// bookkeeping besides the payload (shared with the other subscribers), which made it the
/// largest part of a subscriber's memory: 152 packets (one of the sizes str0m's buffer grows
/// through, so none is wasted) is 64 KiB, ~0.85 s of a 1.5 Mbit/s camera (~180 packets/s)
/// and the whole 3 s of a 400 kbit/s layer. A browser NACKs as soon as it sees the gap and
/// again each round trip, so that is several tries on any usable link; a packet older than
/// that is late for a live picture, and the browser asks for a keyframe instead.
/// `tests/media/forwarding.rs` (`a_loss_nacked_late_is_still_resent`) resends from 140
/// packets back.
pub(crate) const RTX_PACKETS_VIDEO: usize = 152;

/// The SFU runs a full ICE agent, not ICE-lite, although it has a reachable address and
/// browsers could do all the checking. With ICE-lite, a browser answering the SFU's offer
/// is the controlling agent, and Chromium nominates a lite peer's pair (USE-CANDIDATE) only
/// on a check of a pair that is already selected and writable, i.e. on its second check,
/// one ping interval (~48 ms) after the first; str0m, lite and controlled, has no path to
/// send on until that nomination, so its DTLS ServerHello waited for it (docs/BENCHMARKS.md,
/// "Join speed"). As a full agent that made the offer, the SFU is controlling: the
/// browser's first check creates a (peer-reflexive) pair, str0m checks it back at once (a
/// triggered check), nominates it when the answer comes, and sends DTLS on it, one round
/// trip after the browser's first check. The SFU checks only addresses that sent it an
/// authenticated check: the client's candidates are not used (`crate::sdp::without_candidates`).
const ICE_LITE: bool = false;

impl Sfu {
    /// Create the peer connection of a participant joining a room. It may publish nothing until
    /// [`Sfu::set_publish_permission`] says so. If the room already has published tracks, an
    /// [`MediaEvent::Offer`](crate::MediaEvent::Offer) for them follows; otherwise the
    /// browser's first offer starts things.
    pub fn add_peer(&mut self, now: Instant, id: PeerId) -> Result<(), SfuError> {
        if self.by_id.contains_key(&id) {
            return Err(SfuError::DuplicateParticipant(id));
        }
        let creds = IceCreds::new();
        let rtc = Rtc::builder()
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .set_local_ice_credentials(creds.clone())
            // Full ICE, not ICE-lite: see `ICE_LITE`.
            .set_ice_lite(ICE_LITE)
            // Forward RTP packets as they are: no depacketizing, one payload for everyone.
            .set_rtp_mode(true)
            // Codecs every browser decodes; a publisher's choice must suit all subscribers.
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            // Loss and round-trip time for the network quality (see `crate::quality`).
            .set_stats_interval(Some(crate::quality::STATS_INTERVAL))
            // Video resends (NACK/RTX) per outgoing stream: see `RTX_PACKETS_VIDEO`.
            .set_send_buffer_video(RTX_PACKETS_VIDEO)
            .build(now);
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        let mut peer = Peer::new(id.clone(), rtc, creds.ufrag.clone(), now);
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

        let first_here = !self.has_local_peers(&id.room);
        // Subscribe to what the room already publishes (here, or mirrored from a linked SFU).
        let members = self.rooms.entry(id.room.clone()).or_default();
        for &other in members.iter() {
            let Some(publisher) = self.peers.get_mut(&other) else {
                continue;
            };
            for track in publisher.tracks_in.iter_mut().filter(|t| t.announced) {
                track.subscribers.push(key);
                peer.tracks_out.push(TrackOut::new(
                    other,
                    track.id,
                    publisher.id.clone(),
                    track.kind,
                ));
            }
        }
        members.push(key);
        self.by_id.insert(id.clone(), key);
        self.by_ufrag.insert(creds.ufrag, key);
        self.peers.insert(key, Box::new(peer));
        info!(room.id = %id.room, participant.id = %id.participant, "media peer added");
        self.arm_quality_check(now);
        if first_here {
            self.relay_room_joined(&id.room);
        }
        self.want_offer(key);
        self.finish(now);
        Ok(())
    }

    /// Drop a participant's peer connection: its tracks stop for everyone (subscribers get an
    /// offer removing them) and it stops receiving. Unknown peers are ignored.
    pub fn remove_peer(&mut self, now: Instant, id: &PeerId) {
        let Some(key) = self.by_id.remove(id) else {
            return;
        };
        let tracks: Vec<_> = self
            .peers
            .get(&key)
            .map(|p| p.tracks_in.iter().map(|t| t.id).collect())
            .unwrap_or_default();
        for track in tracks {
            self.stop_recording_track(now, key, track);
        }
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        if let Some(members) = self.rooms.get_mut(&peer.id.room) {
            members.retain(|k| *k != key);
            if members.is_empty() {
                self.rooms.remove(&peer.id.room);
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
        self.clear_speaker(&peer.id.room, key);
        if peer.tracks_in.iter().any(|t| t.announced) {
            self.relay_tracks_changed(&peer.id.room);
        }
        if !self.has_local_peers(&peer.id.room) {
            self.relay_room_left(&peer.id.room);
        }
        info!(room.id = %id.room, participant.id = %id.participant, "media peer removed");
        self.finish(now);
    }
}
