//! Which simulcast layer each subscriber is sent: from how big it shows the video and, when its
//! link was found congested, the ceiling it got (`sfu/downlink.rs`; the choice itself is
//! `crate::layers`).

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid};
use tracing::debug;

use super::{Sfu, earliest};
use crate::layers::{self, LAYER_CHECK_INTERVAL, Layer, ViewSize};
use crate::peer::{OutState, PeerKey, TrackId};
use crate::{MediaKind, PeerId, SfuError};

impl Sfu {
    /// How big a subscriber shows one of the videos it receives (`mid` of the SFU's offer), in
    /// device pixels; 0x0 when it is not shown. The subscriber is sent the smallest simulcast
    /// layer that fills that size (under its congestion ceiling, if any); without simulcast this
    /// changes nothing.
    pub fn set_view_size(
        &mut self,
        now: Instant,
        peer_id: &PeerId,
        mid: &str,
        width: u32,
        height: u32,
    ) -> Result<(), SfuError> {
        let key = self.key(peer_id)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        let Some(n) = peer.tracks_out.iter().position(|o| match o.state {
            OutState::Open(m) | OutState::Negotiating(m) => *m == *mid,
            _ => false,
        }) else {
            // A video being stopped or stopped already (its publisher left the stage): the
            // browser measured it before it learned so. Nothing to do, and no error: the mid
            // is one of this peer connection's.
            let known = peer
                .rtc
                .media(Mid::from(mid))
                .is_some_and(|m| *m.mid() == *mid);
            return if known {
                Ok(())
            } else {
                Err(SfuError::UnknownMid(mid.to_string()))
            };
        };
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
    pub(super) fn retarget(&mut self, now: Instant, sub: PeerKey, n: usize, announce: bool) {
        let Some(peer) = self.peers.get(&sub) else {
            return;
        };
        let Some(out) = peer.tracks_out.get(n) else {
            return;
        };
        if out.paused {
            return; // no layer, no keyframe for a video not shown (see `pause`)
        }
        let (source, track, view, ceiling, old) =
            (out.source, out.track, out.view, out.ceiling, out.target);
        let Some(layers) = self.layers_of(source, track) else {
            return;
        };
        let target = layers::choose(layers, now, view, ceiling);
        let heard = layers.len();
        let Some(peer) = self.peers.get_mut(&sub) else {
            return;
        };
        // A subscriber still connecting for the first time gets its video held (see
        // `Peer::held`), so its keyframe is worth asking for already.
        let may_send = peer.connected() || peer.holding;
        if announce {
            debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, layer = target, layers = heard, may_send, "video needs a keyframe");
        } else if target != old {
            debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, layer = target, ?ceiling, ?view, "simulcast layer chosen");
        }
        if let Some(out) = peer.tracks_out.get_mut(n) {
            out.target = target;
        }
        // While the queue in front of a congested link drains, its keyframe waits (see
        // `choose_layers`, which asks once the drain is over).
        let draining = peer.downlink.draining(now);
        if may_send && (announce || target != old) && !draining {
            self.request_keyframe(now, source, track, Some(target), KeyframeRequestKind::Pli);
        }
    }

    fn layers_of(&self, source: PeerKey, track: TrackId) -> Option<&[Layer]> {
        let peer = self.peers.get(&source)?;
        let i = peer.track_in_index(track)?;
        Some(&peer.tracks_in[i].layers)
    }

    /// Reconsider every subscriber's simulcast layers: views, estimates and the layers a
    /// publisher sends all change. A subscriber still waiting for the keyframe of its layer
    /// asks again (a request may have been ignored or its keyframe lost).
    pub(super) fn choose_layers(&mut self, now: Instant) {
        self.lift_downlink_ceilings(now);
        let mut retarget = Vec::new();
        let mut waiting = Vec::new();
        let mut drained_at = None;
        for (&sub, peer) in &self.peers {
            if !peer.connected() {
                continue;
            }
            let draining = peer.downlink.draining(now);
            if draining {
                drained_at = earliest(drained_at, peer.downlink.drained_at());
            }
            for (n, out) in peer.tracks_out.iter().enumerate() {
                if out.kind != MediaKind::Video || !matches!(out.state, OutState::Open(_)) {
                    continue;
                }
                let Some(layers) = self.layers_of(out.source, out.track) else {
                    continue;
                };
                if layers.len() > 1 {
                    if layers::choose(layers, now, out.view, out.ceiling) != out.target {
                        retarget.push((sub, n));
                    } else if !draining
                        && (out.drop_run
                            || out.keyframe_gen.map(|r| usize::from(r.layer)) != Some(out.target))
                    {
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
            self.next_layer_check = earliest(Some(now + LAYER_CHECK_INTERVAL), drained_at);
        }
    }
}
