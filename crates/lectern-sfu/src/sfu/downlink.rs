//! Each subscriber's downlink (the rules are in `crate::downlink`): its video statistics are
//! checked for congestion as they arrive; on congestion each simulcast video it is sent gets a
//! ceiling one layer down, the layer that no longer fits is stopped at once and the smaller
//! layer's keyframe asked for; the ceilings are lifted after their hold (see `choose_layers`).

use std::time::Instant;

use str0m::stats::MediaEgressStats;
use tracing::{debug, info};

use super::Sfu;
use crate::MediaKind;
use crate::downlink::{Congestion, Sample};
use crate::peer::{OutState, PeerKey};

/// Fewest packets written to an m-line between two statistics for its resends to count as a
/// loss measurement for the network quality (a handful of audio packets says little).
const MIN_PACKETS_FOR_LOSS: u64 = 20;

impl Sfu {
    /// An m-line's statistics towards subscriber `key`: the resent share counts as loss for the
    /// network quality; a video's loss (NACKed resends, receiver reports) and round trip are
    /// checked for congestion, which is returned.
    pub(super) fn note_downlink(
        &mut self,
        now: Instant,
        key: PeerKey,
        s: &MediaEgressStats,
    ) -> Option<Congestion> {
        let peer = self.peers.get_mut(&key)?;
        let out = peer
            .tracks_out
            .iter_mut()
            .find(|o| matches!(o.state, OutState::Open(m) if m == s.mid))?;
        let sample = match out.egress_seen {
            Some((packets, written)) => {
                let written = out.written.saturating_sub(written);
                Sample {
                    written,
                    resent: s.packets.saturating_sub(packets).saturating_sub(written),
                    report_loss: s.loss,
                    rtt: s.rtt,
                }
            }
            None => Sample::default(),
        };
        out.egress_seen = Some((s.packets, out.written));
        if sample.written >= MIN_PACKETS_FOR_LOSS {
            peer.quality_window
                .note_loss(Some(sample.resent as f32 / sample.written as f32));
        }
        if out.kind != MediaKind::Video {
            return None;
        }
        peer.downlink.congested(now, &sample)
    }

    /// Subscriber `key`'s link is congested: each simulcast video it is sent gets a ceiling one
    /// layer below the one it gets, and one whose layer is now above its ceiling is stopped at
    /// once (not one more packet of it: the queue in front of the link drains while the smaller
    /// layer's keyframe is asked for and comes). Resends of what the link dropped are still
    /// answered: str0m caps them at 15% of what it sends, and a receiver that waits for the
    /// gaps before the keyframe to fill, as str0m's does, goes on sooner.
    pub(super) fn on_congestion(&mut self, now: Instant, key: PeerKey, why: Congestion) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.downlink.cut(now);
        self.stats.downlink_cuts += 1;
        info!(room.id = %peer.id.room, participant.id = %peer.id.participant, ?why, "downlink congested: videos one layer down");
        for n in 0..peer.tracks_out.len() {
            let Some(ceiling) = self.ceiling_below_current(key, n) else {
                continue;
            };
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            peer.tracks_out[n].ceiling = Some(ceiling);
            self.retarget(now, key, n, false);
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let out = &mut peer.tracks_out[n];
            let (OutState::Open(mid), Some(run)) = (out.state, out.keyframe_gen) else {
                continue;
            };
            if usize::from(run.layer) == out.target {
                continue;
            }
            out.drop_run = true;
            debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, mid = %mid, layer = out.target, ceiling, "layer stopped for a smaller one");
            let (source, track, layer) = (out.source, out.track, out.target);
            self.keyframe_wanted(now, source, track, layer);
        }
    }

    /// For output `n` of `sub`, a simulcast video being sent (not already stopped for a smaller
    /// layer): the tallest picture of its publisher's layers below the one it gets now.
    fn ceiling_below_current(&self, sub: PeerKey, n: usize) -> Option<u16> {
        let out = self.peers.get(&sub)?.tracks_out.get(n)?;
        if out.kind != MediaKind::Video
            || !matches!(out.state, OutState::Open(_))
            || out.paused
            || out.drop_run
        {
            return None;
        }
        let run = out.keyframe_gen?;
        let source = self.peers.get(&out.source)?;
        let layers = &source.tracks_in[source.track_in_index(out.track)?].layers;
        let current = layers.get(usize::from(run.layer))?.height;
        let below = layers
            .iter()
            .map(|l| l.height)
            .filter(|&h| h < current)
            .max();
        // Already on the smallest: it stays (and, with a ceiling of 0, stays the smallest).
        Some(below.unwrap_or(0))
    }

    /// Lift the ceilings whose hold is over: the videos go back to the layer their view asks
    /// for, switched at its next keyframe as any switch up.
    pub(super) fn lift_downlink_ceilings(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            if peer.downlink.lift_if_due(now) {
                for out in &mut peer.tracks_out {
                    out.ceiling = None;
                }
                info!(room.id = %peer.id.room, participant.id = %peer.id.participant, "downlink ceilings lifted: trying the larger layers again");
            }
        }
    }
}
