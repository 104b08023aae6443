//! Signalling: the browser's offers and candidates, the SFU's offers and the answers to them.
//! The SDP text helpers live in `crate::sdp`.

use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::Direction;
use str0m::{Candidate, Rtc};
use tracing::debug;

use super::Sfu;
use crate::peer::{IdleLine, OutState, Peer, PeerKey, TrackOut};
use crate::sdp::{
    Numbering, Writer, candidates_in_every_mline, without_candidates,
    without_transport_cc_on_send_only,
};
use crate::{MediaEvent, MediaKind, OfferedTrack, PeerId, SfuError};

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
        // The m-lines we only send on get no transport-cc (see `crate::sdp`).
        let offer = SdpOffer::from_sdp_string(&without_transport_cc_on_send_only(
            &without_candidates(sdp),
            Writer::Browser,
        ))
        .map_err(|e| SfuError::InvalidSdp(e.to_string()));
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
        let answer = SdpAnswer::from_sdp_string(&without_transport_cc_on_send_only(
            &without_candidates(sdp),
            Writer::Browser,
        ))
        .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
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
        for out in peer.tracks_out.iter_mut() {
            out.state = match (out.state, accepted) {
                (OutState::Negotiating(mid), true) => {
                    out.reused = false;
                    if out.source_gone {
                        OutState::ToIdle(mid)
                    } else {
                        opened.push((out.source, out.track));
                        OutState::Open(mid)
                    }
                }
                (OutState::Negotiating(_), false) => {
                    release_line(&mut peer.rtc, &mut peer.idle_lines, out);
                    OutState::ToOpen
                }
                (OutState::NegotiatingIdle(mid), false) => OutState::ToIdle(mid),
                (other, _) => other,
            };
        }
        if accepted {
            retire_idle(peer);
        }
        peer.tracks_out
            .retain(|o| !(o.source_gone && o.state == OutState::ToOpen));
        peer.forget_negotiated();
        self.outbox.settle(key, peer, now);
        if accepted && !peer.ice_up {
            // Checks the browser sent before its answer arrived: answered and checked back now.
            self.outbox.ice_now(key, peer, now);
        }
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
        for (source, track) in opened {
            let n = self.peers.get(&key).and_then(|p| {
                p.tracks_out
                    .iter()
                    .position(|o| o.source == source && o.track == track)
            });
            if let Some(n) = n {
                self.retarget(now, key, n, true);
            }
        }
        self.want_offer(key);
        self.finish(now);
        Ok(())
    }

    /// A trickled ICE candidate from the browser (`candidate:...` as in `RTCIceCandidate`):
    /// checked and then not used. An empty string (end of candidates) is accepted. The SFU
    /// needs no candidates: checks from any address are answered and checked back
    /// (peer-reflexive), and it sends checks to no address that has not checked it first
    /// (see `crate::sdp::without_candidates`).
    pub fn add_remote_candidate(
        &mut self,
        _now: Instant,
        peer_id: &PeerId,
        candidate: &str,
    ) -> Result<(), SfuError> {
        self.key(peer_id)?;
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            return Ok(());
        }
        Candidate::from_sdp_string(line).map_err(|e| SfuError::InvalidCandidate(e.to_string()))?;
        Ok(())
    }

    /// Forget our pending offer, if any (str0m invalidates it when it accepts the browser's
    /// offer): its m-lines are to be offered again. A line made inactive stays so in str0m (it
    /// applies a direction when the offer is made), so the answer to the browser's offer
    /// already says so and the line is idle once that is answered. A line taken up again goes
    /// back to the idle ones, inactive, as the browser last agreed; its track is offered again.
    fn abandon_offer(&mut self, key: PeerKey) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        let abandoned = peer.pending_offer.take().is_some();
        peer.app_line_offered = false;
        for out in &mut peer.tracks_out {
            out.state = match out.state {
                OutState::Negotiating(_) => {
                    release_line(&mut peer.rtc, &mut peer.idle_lines, out);
                    OutState::ToOpen
                }
                OutState::NegotiatingIdle(mid) => OutState::ToIdle(mid),
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

    /// If m-lines must be opened or made idle and no offer is in flight, make an offer.
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
            .any(|o| matches!(o.state, OutState::ToOpen | OutState::ToIdle(_)));
        if !wanted {
            return;
        }
        // Only a line str0m has, inactive, can be taken up (the browser could have rejected
        // one in its own offer).
        let peer: &mut Peer = peer;
        let Peer {
            rtc,
            idle_lines,
            tracks_out,
            ..
        } = peer;
        idle_lines.retain(|l| {
            rtc.media(l.mid)
                .is_some_and(|m| !m.disabled() && m.direction() == Direction::Inactive)
        });
        let mut api = rtc.sdp_api();
        // A data channel keeps an m-line that is never stopped in every later description, and
        // goes first, so it is the bundle's tag: Chrome refuses a description whose m-lines are
        // all stopped ("no bundle group") and tears the transport down (DTLS failed) when the
        // tagged line is stopped. Our media lines are made idle, not stopped, but a browser may
        // still reject one of them.
        let add_app_line = !peer.app_line;
        if add_app_line {
            api.add_channel("lectern".to_string());
        }
        let mut offered = Vec::new();
        for n in 0..tracks_out.len() {
            match tracks_out[n].state {
                OutState::ToOpen => {
                    let (kind, source) = (tracks_out[n].kind, tracks_out[n].source);
                    let mid = match pick_idle_line(idle_lines, tracks_out, kind, source) {
                        Some(i) => {
                            // The line keeps the stream id (msid) of the publisher it was added
                            // for: str0m cannot change it. Picked first when it is this
                            // publisher's own, so audio and video stay grouped (lip sync) in
                            // the common case of a camera switched off and on again; for
                            // another publisher, the browser groups it with that stream id
                            // (nothing else: clients learn whose media a mid carries from
                            // `tracks`, and a line is picked whose stream id no line in use
                            // shares when there is one).
                            let line = idle_lines.remove(i);
                            let mid = line.mid;
                            api.set_direction(mid, Direction::SendOnly);
                            tracks_out[n].take_line(line);
                            mid
                        }
                        None => {
                            // The stream id groups a publisher's audio and video (lip sync). It
                            // is the SFU's own number for the publisher's peer: an SDP-safe
                            // token that carries no name or room (clients learn whose media a
                            // mid is from the signalling).
                            let out = &mut tracks_out[n];
                            let stream = format!("p{}", out.source.0);
                            let mid = api.add_media(
                                out.kind.to_str0m(),
                                Direction::SendOnly,
                                Some(stream.clone()),
                                Some(format!("{stream}-{}-{}", out.kind.as_str(), out.track.0)),
                                None,
                            );
                            out.state = OutState::Negotiating(mid);
                            mid
                        }
                    };
                    let out = &tracks_out[n];
                    offered.push(OfferedTrack {
                        mid: mid.to_string(),
                        publisher: out.publisher.clone(),
                        kind: out.kind,
                    });
                }
                OutState::ToIdle(mid) => {
                    // Inactive, not stopped: kept for the next track of its kind (`IdleLine`).
                    api.set_direction(mid, Direction::Inactive);
                    tracks_out[n].state = OutState::NegotiatingIdle(mid);
                }
                _ => {}
            }
        }
        let reused = tracks_out.iter().filter(|o| o.reused).count();
        match api.apply() {
            Some((offer, pending)) => {
                peer.pending_offer = Some(pending);
                peer.app_line_offered = add_app_line;
                debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, offered = offered.len(), reused, idle = peer.idle_lines.len(), "offer to subscriber");
                self.events.push_back(MediaEvent::Offer {
                    peer: peer.id.clone(),
                    sdp: candidates_in_every_mline(&without_transport_cc_on_send_only(
                        &offer.to_sdp_string(),
                        Writer::Sfu,
                    )),
                    tracks: offered,
                });
            }
            None => {
                // Only lines str0m has inactive already (the answer to a browser's offer said
                // so after ours was dropped): nothing to negotiate, they are idle.
                retire_idle(peer);
            }
        }
        self.outbox.drain(key, peer);
    }
}

/// A line taken up again whose offer was dropped or failed: back to the idle ones, inactive in
/// str0m again without an offer (str0m applies a direction when it is set; the offer only tells
/// the other side, which never agreed to this one). The output may get another line, or a new
/// one, in the next offer.
fn release_line(rtc: &mut Rtc, idle_lines: &mut Vec<IdleLine>, out: &mut TrackOut) {
    let (OutState::Negotiating(mid), true) = (out.state, out.reused) else {
        return;
    };
    rtc.sdp_api().set_direction(mid, Direction::Inactive);
    idle_lines.push(out.idle_line(mid));
    out.reused = false;
    out.stream_source = out.source;
    out.restart_numbering();
}

/// Outputs whose line was answered inactive leave `tracks_out`; the line joins the idle ones.
fn retire_idle(peer: &mut Peer) {
    let Peer {
        tracks_out,
        idle_lines,
        ..
    } = peer;
    tracks_out.retain(|o| match o.state {
        OutState::NegotiatingIdle(mid) => {
            idle_lines.push(o.idle_line(mid));
            false
        }
        _ => true,
    });
}

/// The idle line of `kind` to take up for a track of `source`: one carrying that publisher's
/// stream id first, then one whose stream id no line in use shares, then any.
fn pick_idle_line(
    idle_lines: &[IdleLine],
    tracks_out: &[TrackOut],
    kind: MediaKind,
    source: PeerKey,
) -> Option<usize> {
    let shared = |stream: PeerKey| {
        tracks_out
            .iter()
            .any(|o| o.stream_source == stream && o.state != OutState::ToOpen)
    };
    idle_lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind == kind)
        .min_by_key(|(_, l)| match l.stream_source {
            s if s == source => 0,
            s if !shared(s) => 1,
            _ => 2,
        })
        .map(|(i, _)| i)
}

/// Whether an SDP has an application m-line that is not rejected (port 0).
fn has_app_line(sdp: &str) -> bool {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m=application "))
        .any(|rest| !rest.starts_with("0 "))
}
