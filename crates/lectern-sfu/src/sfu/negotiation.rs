//! Signalling: the browser's offers and candidates, the SFU's offers and the answers to them.
//! The SDP text helpers live in `crate::sdp`.

use std::time::Instant;

use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::Direction;
use tracing::debug;

use super::Sfu;
use crate::peer::{OutState, PeerKey};
use crate::sdp::{Numbering, candidates_in_every_mline};
use crate::{MediaEvent, OfferedTrack, PeerId, SfuError};

impl Sfu {
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
        peer_id: &PeerId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()));
        if offer.is_err() && !self.has_peer(peer_id) {
            return offer.map(|_| String::new());
        }
        let key = self.key(peer_id)?;
        // The browser ignores our offers while its own is pending (it wins the glare), so an
        // offer of ours still pending now was never answered and never will be: abandon it,
        // and offer its changes again after this, even if this offer is refused (else the
        // peer would wait for that answer forever and never be offered anything again).
        let abandoned = self.abandon_offer(key);
        self.want_offer(key);
        let offer = match offer {
            Ok(offer) => offer,
            Err(e) => {
                self.finish(now);
                return Err(e);
            }
        };
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        // str0m would answer it with the old numbers (and without the moved extensions).
        if let Some(moved) = peer.numbering.renumbered_by(&Numbering::of_sdp(sdp)) {
            debug!(room.id = %peer_id.room, participant.id = %peer_id.participant, moved, "offer renumbers the negotiation: refused");
            self.finish(now);
            return Err(SfuError::RenegotiationUnsupported(moved));
        }
        let result = peer.rtc.sdp_api().accept_offer(offer);
        peer.forget_negotiated();
        self.outbox.settle(key, peer, now);
        if abandoned {
            debug!(room.id = %peer_id.room, participant.id = %peer_id.participant, "offer glare: the browser's offer wins");
        }
        self.refresh_ufrag(key);
        // Our own changes (abandoned or queued) are offered after the answer (`want_offer`
        // above).
        self.finish(now);
        let answer = result
            .map(|answer| answer.to_sdp_string())
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.numbering.record(&Numbering::of_sdp(&answer));
            peer.app_line |= has_app_line(&answer);
        }
        Ok(candidates_in_every_mline(&answer))
    }

    /// Accept the browser's answer to the SFU's last [`MediaEvent::Offer`].
    pub fn accept_answer(
        &mut self,
        now: Instant,
        peer_id: &PeerId,
        sdp: &str,
    ) -> Result<(), SfuError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let key = self.key(peer_id)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        let pending = peer.pending_offer.take().ok_or(SfuError::NoPendingOffer)?;
        let result = peer.rtc.sdp_api().accept_answer(pending, answer);
        let accepted = result.is_ok();
        if accepted {
            peer.numbering.record(&Numbering::of_sdp(sdp));
            peer.app_line |= peer.app_line_offered && has_app_line(sdp);
        }
        peer.app_line_offered = false;
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
        peer_id: &PeerId,
        candidate: &str,
    ) -> Result<(), SfuError> {
        let key = self.key(peer_id)?;
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

    /// Forget our pending offer, if any (str0m invalidates it when it accepts the browser's
    /// offer): its m-lines are to be offered again. Stops stay applied in str0m (it stops an
    /// m-line when the offer is made), so the answer to the browser's offer already rejects
    /// them (port 0) and the browser stops them there.
    fn abandon_offer(&mut self, key: PeerKey) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        let abandoned = peer.pending_offer.take().is_some();
        peer.app_line_offered = false;
        for out in &mut peer.tracks_out {
            out.state = match out.state {
                OutState::Negotiating(_) => OutState::ToOpen,
                OutState::NegotiatingStop(mid) => OutState::ToStop(mid),
                other => other,
            };
        }
        peer.tracks_out
            .retain(|o| !(o.source_gone && o.state == OutState::ToOpen));
        abandoned
    }

    pub(super) fn want_offer(&mut self, key: PeerKey) {
        if !self.offer_wanted.contains(&key) {
            self.offer_wanted.push(key);
        }
    }

    /// If m-lines must be added or stopped and no offer is in flight, make an offer.
    pub(super) fn maybe_offer(&mut self, key: PeerKey) {
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
        // A data channel keeps an m-line in every later description: the one that stops this
        // subscriber's last track would otherwise have none, and Chrome refuses it. It goes
        // first, so it is the bundle's tag: Chrome tears the transport down (DTLS failed) when
        // the tagged m-line is stopped, as the first track's would be when it ends.
        let add_app_line = !peer.app_line;
        if add_app_line {
            api.add_channel("lectern".to_string());
        }
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
                peer.app_line_offered = add_app_line;
                debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, added = offered.len(), "offer to subscriber");
                self.events.push_back(MediaEvent::Offer {
                    peer: peer.id.clone(),
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
}

/// Whether an SDP has an application m-line that is not rejected (port 0).
fn has_app_line(sdp: &str) -> bool {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m=application "))
        .any(|rest| !rest.starts_with("0 "))
}
