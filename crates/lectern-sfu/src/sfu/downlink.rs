//! Each subscriber's downlink (the rules are in `crate::downlink`): its video statistics are
//! checked for congestion as they arrive; on congestion each simulcast video it is sent gets a
//! ceiling one layer down, the layer that no longer fits is stopped at once (and its resend
//! cache emptied), and the smaller layer's keyframe asked for once the queue in front of the
//! link drained; the ceilings are lifted after their hold (see `choose_layers`).

use std::time::{Duration, Instant};

use str0m::stats::MediaEgressStats;
use tracing::{debug, info};

use super::Sfu;
use super::peers::RTX_PACKETS_VIDEO;
use crate::MediaKind;
use crate::downlink::{Congestion, Sample, resends};
use crate::peer::{OutState, PeerKey};

/// Fewest packets written to an m-line between two statistics for its resends to count as a
/// loss measurement for the network quality (a handful of audio packets says little).
const MIN_PACKETS_FOR_LOSS: u64 = 20;

/// A video's resend cache as the SFU configures it (`peers::RTX_PACKETS_VIDEO`, str0m's 3 s
/// and 15% cap), given again when it is emptied at a cut.
const RTX_AGE: Duration = Duration::from_secs(3);
const RTX_RATIO_CAP: Option<f32> = Some(0.15);

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
        let (sample, unsent) = match out.egress_seen {
            Some((packets, written, unsent)) => {
                let written = out.written.saturating_sub(written);
                let sent = s.packets.saturating_sub(packets);
                let (resent, unsent) = resends(sent, written, unsent);
                let sample = Sample {
                    written,
                    resent,
                    report_loss: s.loss,
                    rtt: s.rtt,
                };
                (sample, unsent)
            }
            None => (Sample::default(), 0),
        };
        out.egress_seen = Some((s.packets, out.written, unsent));
        if sample.written >= MIN_PACKETS_FOR_LOSS {
            peer.quality_window
                .note_loss(Some(sample.resent as f32 / sample.written as f32));
        }
        if out.kind != MediaKind::Video {
            return None;
        }
        // What a false cut on an open link (a receiver short of CPU) or a late one is decided
        // from; only samples that show something, to keep the log short.
        if sample.resent > 0 || sample.report_loss.is_some_and(|l| l > 0.0) {
            debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, mid = %s.mid, written = sample.written, resent = sample.resent, report_loss = ?sample.report_loss, rtt = ?sample.rtt, "downlink sample with loss");
        }
        peer.downlink.congested(now, &sample)
    }

    /// Subscriber `key`'s link is congested: each simulcast video it is sent gets a ceiling one
    /// layer below the one it gets, and one whose layer is now above its ceiling is stopped at
    /// once (not one more packet of it: the queue in front of the link drains, and the smaller
    /// layer's keyframe is asked for after that, see `Downlink::draining`). What was sent of
    /// the stopped layer is forgotten: resends of what the link dropped of it are not answered.
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
            // What was sent of the stopped layer is no use to the subscriber once the smaller
            // one starts at its keyframe, and resending what the link dropped of it (its
            // browser asks until that keyframe is decoded) would fill the queue the keyframe
            // has to cross: forget it, so those NACKs go unanswered.
            if let Some(tx) = peer.rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(RTX_PACKETS_VIDEO, RTX_AGE, RTX_RATIO_CAP);
            }
            // Its keyframe is asked for once the queue in front of the link drained
            // (`choose_layers`): sent now, it would wait behind that queue, or be dropped.
            debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, mid = %mid, layer = out.target, ceiling, "layer stopped for a smaller one");
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
