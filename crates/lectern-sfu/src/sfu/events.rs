//! str0m's events, handled after the drain that produced them and dispatched to the concern
//! each belongs to; connectivity changes reported to the driver.

use std::time::Instant;

use str0m::bwe::BweKind;
use str0m::{Event, IceConnectionState};
use tracing::{info, trace};

use super::Sfu;
use crate::peer::{HELD_FLUSH_DELAY, OutState, PeerKey};
use crate::{MediaEvent, MediaKind};

impl Sfu {
    /// End of every public call: handle what str0m produced, then make the offers that the
    /// call made necessary (one per peer, however many tracks changed), then report peers that
    /// died.
    pub(super) fn finish(&mut self, now: Instant) {
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

    fn process_rtc_events(&mut self, now: Instant) {
        while let Some((key, event)) = self.outbox.rtc_events.pop_front() {
            self.on_rtc_event(now, key, event);
        }
    }

    fn on_rtc_event(&mut self, now: Instant, key: PeerKey, event: Event) {
        if self.note_stats(now, key, &event) {
            return;
        }
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
                    self.remove_track_in(now, key, changed.mid);
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
                // Not used for layer choice (see `Sfu::media_budget`); kept for diagnosis.
                if let Some(peer) = self.peers.get(&key) {
                    trace!(room.id = %peer.id.room, participant.id = %peer.id.participant, estimate = estimate.as_u64(), "bandwidth estimate");
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
        if peer.connected() && !peer.up_reported {
            peer.up_reported = true;
            peer.down_reported = false;
            let first = peer.holding;
            if first {
                peer.flush_at = Some(now + HELD_FLUSH_DELAY);
            }
            info!(room.id = %peer.id.room, participant.id = %peer.id.participant, "media connected");
            self.events.push_back(MediaEvent::Connected {
                peer: peer.id.clone(),
            });
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
            info!(room.id = %peer.id.room, participant.id = %peer.id.participant, "media disconnected");
            self.events.push_back(MediaEvent::Disconnected {
                peer: peer.id.clone(),
            });
        }
    }

    fn check_alive(&mut self) {
        for peer in self.peers.values_mut() {
            if !peer.rtc.is_alive() && !peer.down_reported {
                peer.up_reported = false;
                peer.down_reported = true;
                self.events.push_back(MediaEvent::Disconnected {
                    peer: peer.id.clone(),
                });
            }
        }
    }
}
