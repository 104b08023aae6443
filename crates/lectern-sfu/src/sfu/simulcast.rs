//! Which simulcast layer each subscriber is sent: from how big it shows the video and, when a
//! receiver reports one, its bandwidth estimate (the choice itself is `crate::layers`).

use std::collections::HashMap;
use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid};
use tracing::debug;

use super::Sfu;
use crate::layers::{self, LAYER_CHECK_INTERVAL, Layer, ViewSize};
use crate::peer::{OutState, PeerKey, TrackId};
use crate::{MediaKind, PeerId, SfuError};

/// What audio is assumed to take from a subscriber's bandwidth (Opus voice with headers).
const AUDIO_BITRATE: u64 = 64_000;

impl Sfu {
    /// How big a subscriber shows one of the videos it receives (`mid` of the SFU's offer), in
    /// device pixels; 0x0 when it is not shown. The subscriber is sent the smallest simulcast
    /// layer that fills that size (within its bandwidth estimate); without simulcast this
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
        let (source, track, view, old) = (out.source, out.track, out.view, out.target);
        let budget = self.video_budgets(sub).get(&(source, track)).copied();
        let Some(layers) = self.layers_of(source, track) else {
            return;
        };
        let target = layers::choose(layers, now, view, budget);
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
            debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, layer = target, ?budget, ?view, "simulcast layer chosen");
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
    pub(super) fn choose_layers(&mut self, now: Instant) {
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
}
