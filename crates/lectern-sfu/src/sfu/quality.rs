//! Each peer's network quality, decided every `QUALITY_INTERVAL` from the statistics str0m
//! reported since the last decision (the rules are in `crate::quality`); changes are reported
//! per room, in one event.

use std::collections::HashMap;
use std::time::Instant;

use str0m::Event;

use super::Sfu;
use crate::peer::PeerKey;
use crate::quality::{NetworkQuality, QUALITY_INTERVAL};
use crate::{MediaEvent, ParticipantId, RoomId};

impl Sfu {
    /// Folds one of str0m's statistics events into the peer's window; `false` if `event` is
    /// not one.
    pub(super) fn note_stats(&mut self, now: Instant, key: PeerKey, event: &Event) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return matches!(
                event,
                Event::PeerStats(_) | Event::MediaEgressStats(_) | Event::MediaIngressStats(_)
            );
        };
        let window = &mut peer.quality_window;
        match event {
            Event::PeerStats(s) => {
                window.note_loss(s.egress_loss_fraction);
                window.note_loss(s.ingress_loss_fraction);
                window.note_rtt(s.rtt);
                let ice_rtt = s
                    .selected_candidate_pair
                    .as_ref()
                    .and_then(|p| p.current_round_trip_time);
                window.note_rtt(ice_rtt);
            }
            Event::MediaEgressStats(s) => {
                // Receiver reports count a packet repaired by a resend as received, so
                // their loss misses what NACKs repair; transport-cc feedback would not, but
                // it is not negotiated where the SFU only sends (`crate::sdp`). The resends
                // str0m made since the last statistics show that loss instead (it resends
                // nothing unasked while its bandwidth estimator, which probes with resends,
                // is off); `note_downlink` counts them.
                window.note_loss(s.loss);
                window.note_rtt(s.rtt);
                if let Some(why) = self.note_downlink(now, key, s) {
                    self.on_congestion(now, key, why);
                }
            }
            Event::MediaIngressStats(s) => {
                window.note_loss(s.loss);
                window.note_rtt(s.rtt);
            }
            _ => return false,
        }
        true
    }

    /// Arms the quality timer when the first peer arrives.
    pub(super) fn arm_quality_check(&mut self, now: Instant) {
        if self.next_quality_check.is_none() {
            self.next_quality_check = Some(now + QUALITY_INTERVAL);
        }
    }

    /// Decides every peer's quality for the window that just ended, reports the changes of
    /// each room in one [`MediaEvent::NetworkQuality`], and starts the next window.
    pub(super) fn check_quality(&mut self, now: Instant) {
        let mut changes: HashMap<RoomId, Vec<(ParticipantId, NetworkQuality)>> = HashMap::new();
        let mut keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        keys.sort();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let window = std::mem::take(&mut peer.quality_window);
            let quality = if peer.connected() && peer.rtc.is_alive() {
                window.quality().unwrap_or(peer.quality)
            } else {
                NetworkQuality::Unknown
            };
            if quality != peer.quality {
                peer.quality = quality;
                changes
                    .entry(peer.id.room.clone())
                    .or_default()
                    .push((peer.id.participant.clone(), quality));
            }
        }
        let mut rooms: Vec<_> = changes.into_iter().collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        for (room, changes) in rooms {
            self.stats.quality_changes += changes.len() as u64;
            self.events
                .push_back(MediaEvent::NetworkQuality { room, changes });
        }
        self.next_quality_check = (!self.peers.is_empty()).then(|| now + QUALITY_INTERVAL);
    }

    /// A peer's current quality (for tests and the driver).
    pub fn network_quality(&self, peer: &crate::PeerId) -> Option<NetworkQuality> {
        let key = self.by_id.get(peer)?;
        self.peers.get(key).map(|p| p.quality)
    }
}
