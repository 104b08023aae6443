//! Each subscriber's downlink (the rules are in `crate::downlink`): its video statistics are
//! checked for congestion as they arrive; on congestion each simulcast video it is sent gets a
//! ceiling one layer down, the layer that no longer fits is stopped at once and the smaller
//! layer's keyframe asked for; after their hold the link is probed (a filler of copies on each
//! capped video, see `deliver.rs`), and the ceilings are lifted once a probe passes.

use std::time::Instant;

use str0m::stats::MediaEgressStats;
use tracing::{debug, info};

use super::Sfu;
use crate::MediaKind;
use crate::downlink::{Congestion, Filler, ProbeTick, Sample, Verdict};
use crate::layers;
use crate::peer::{OutState, Peer, PeerKey};

/// Fewest packets written to an m-line between two statistics for its resends to count as a
/// loss measurement for the network quality (a handful of audio packets says little).
const MIN_PACKETS_FOR_LOSS: u64 = 20;

impl Sfu {
    /// An m-line's statistics towards subscriber `key`: the resent share counts as loss for the
    /// network quality; a video's loss (NACKed resends, receiver reports) and round trip are
    /// checked for congestion, or for the end of a probe: what they mean is returned. A probe's
    /// copies count neither as written (the resent share is of the video) nor as resends.
    pub(super) fn note_downlink(
        &mut self,
        now: Instant,
        key: PeerKey,
        s: &MediaEgressStats,
    ) -> Option<Verdict> {
        let peer = self.peers.get_mut(&key)?;
        let out = peer
            .tracks_out
            .iter_mut()
            .find(|o| matches!(o.state, OutState::Open(m) if m == s.mid))?;
        let sample = match out.egress_seen {
            Some((packets, written, copies)) => {
                let written = out.written.saturating_sub(written);
                Sample {
                    written: written.saturating_sub(out.copies.saturating_sub(copies)),
                    resent: s.packets.saturating_sub(packets).saturating_sub(written),
                    report_loss: s.loss,
                    rtt: s.rtt,
                }
            }
            None => Sample::default(),
        };
        out.egress_seen = Some((s.packets, out.written, out.copies));
        if sample.written >= MIN_PACKETS_FOR_LOSS {
            peer.quality_window
                .note_loss(Some(sample.resent as f32 / sample.written as f32));
        }
        if out.kind != MediaKind::Video {
            return None;
        }
        peer.downlink.verdict(now, &sample)
    }

    /// What a video statistics sample of subscriber `key` meant for its link.
    pub(super) fn on_verdict(&mut self, now: Instant, key: PeerKey, verdict: Verdict) {
        match verdict {
            Verdict::Congested(why) => self.on_congestion(now, key, why),
            Verdict::ProbeFailed(why) => {
                self.stats.downlink_probes_failed += 1;
                if let Some(peer) = self.peers.get_mut(&key) {
                    stop_fillers(peer);
                    info!(room.id = %peer.id.room, participant.id = %peer.id.participant, ?why, hold_s = peer.downlink.hold_secs(), "downlink probe failed: the smaller layers stay");
                }
            }
            Verdict::ProbePassed => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    stop_fillers(peer);
                    lift_ceilings(peer);
                    info!(room.id = %peer.id.room, participant.id = %peer.id.participant, "downlink probe passed: back to the larger layers");
                }
            }
        }
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
        stop_fillers(peer);
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

    /// Start the probes whose hold is over, and give up on those that got too few receiver
    /// reports. A probe gives each capped video a filler worth the larger layer it would go to
    /// without its ceiling; with none to go to (its view is small), the ceilings are lifted at
    /// once.
    pub(super) fn probe_downlinks(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.downlink.capped())
            .map(|(&k, _)| k)
            .collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            match peer.downlink.tick(now) {
                ProbeTick::Idle => {}
                ProbeTick::GaveUp => {
                    self.stats.downlink_probes_failed += 1;
                    stop_fillers(peer);
                    info!(room.id = %peer.id.room, participant.id = %peer.id.participant, "downlink probe got too few receiver reports: failed");
                }
                ProbeTick::Start => {
                    self.stats.downlink_probes += 1;
                    let fillers: Vec<(usize, f32)> = (0..peer.tracks_out.len())
                        .filter_map(|n| Some((n, self.probe_ratio(now, key, n)?)))
                        .collect();
                    let Some(peer) = self.peers.get_mut(&key) else {
                        continue;
                    };
                    if fillers.is_empty() {
                        peer.downlink.lift(now);
                        lift_ceilings(peer);
                        info!(room.id = %peer.id.room, participant.id = %peer.id.participant, "downlink ceilings lifted: no larger layer to probe for");
                        continue;
                    }
                    for &(n, ratio) in &fillers {
                        peer.tracks_out[n].filler = Some(Filler::new(ratio));
                    }
                    info!(room.id = %peer.id.room, participant.id = %peer.id.participant, videos = fillers.len(), "downlink probed for the larger layers");
                }
            }
        }
    }

    /// For output `n` of `sub`, a capped simulcast video being sent: the ratio of the bit rate
    /// of the layer it would get without its ceiling to that of the layer it gets (`None`: the
    /// same layer, nothing to probe for). Rates not measured yet count as four times.
    fn probe_ratio(&self, now: Instant, sub: PeerKey, n: usize) -> Option<f32> {
        let out = self.peers.get(&sub)?.tracks_out.get(n)?;
        if out.kind != MediaKind::Video
            || out.ceiling.is_none()
            || !matches!(out.state, OutState::Open(_))
            || out.paused
        {
            return None;
        }
        let current = usize::from(out.keyframe_gen?.layer);
        let source = self.peers.get(&out.source)?;
        let layers = &source.tracks_in[source.track_in_index(out.track)?].layers;
        let up = layers::choose(layers, now, out.view, None);
        if up == current {
            return None;
        }
        let (from, to) = (layers.get(current)?.rate.bps, layers.get(up)?.rate.bps);
        if from == 0 || to == 0 {
            return Some(4.0);
        }
        Some(to as f32 / from as f32)
    }
}

/// A probe of `peer`'s link ended: no more copies.
fn stop_fillers(peer: &mut Peer) {
    for out in &mut peer.tracks_out {
        out.filler = None;
    }
}

/// `peer`'s videos go back to the layer their view asks for, switched at its next keyframe as
/// any switch up (`choose_layers`).
fn lift_ceilings(peer: &mut Peer) {
    for out in &mut peer.tracks_out {
        out.ceiling = None;
    }
}
