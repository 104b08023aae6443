//! Forwarding, step two: a packet taken in (`Ingested`, see `ingest.rs`) is delivered to each
//! subscriber of its track. Per subscriber only the header is made (payload type, sequence
//! number, timestamp, VP8 picture ids; str0m sets SSRC, MID and transport-cc) around the
//! shared payload; nothing is allocated or copied here per packet and subscriber. Of a
//! simulcast track each subscriber is sent one layer: its target, from a keyframe.

use std::time::Instant;

use str0m::Rtc;
use str0m::media::Mid;
use str0m::rtp::RtpWrite;
use tracing::debug;

use super::Sfu;
use super::ingest::Ingested;
use super::outbox::Outbox;
use crate::peer::{MAX_HELD, OutState, Peer, PeerKey};
use crate::{MediaKind, SfuStats};

impl Sfu {
    /// Deliver `packet` to every subscriber of its track (once the track was offered to them).
    pub(super) fn deliver(&mut self, now: Instant, packet: &Ingested) {
        let Some(publisher) = self.peers.get(&packet.source) else {
            return;
        };
        let Some(i) = publisher.track_in_index(packet.track) else {
            return;
        };
        let track = &publisher.tracks_in[i];
        if !track.announced || track.subscribers.is_empty() {
            return;
        }
        let clock_rate = packet.params.spec().clock_rate.get();
        let subscriber_count = track.subscribers.len();
        // By index: delivering borrows the subscriber's peer mutably, and changes nobody's
        // subscriptions (str0m's events are handled after the drain).
        for n in 0..subscriber_count {
            let Some(&sub) = self
                .peers
                .get(&packet.source)
                .and_then(|p| p.tracks_in.get(i))
                .and_then(|t| t.subscribers.get(n))
            else {
                break;
            };
            self.deliver_to(now, packet, sub, clock_rate);
        }
    }

    /// Deliver `packet` to subscriber `sub`, if it is to be sent it now: connected (or, for
    /// video, held while it connects for the first time; see `Peer::held`), the m-line open,
    /// and the packet of the run it is sent, or the keyframe that starts its target layer.
    fn deliver_to(&mut self, now: Instant, packet: &Ingested, sub_key: PeerKey, clock_rate: u32) {
        let Some(sub) = self.peers.get_mut(&sub_key) else {
            return;
        };
        let hold = sub.holding;
        if !sub.rtc.is_alive()
            || (hold && packet.kind != MediaKind::Video)
            || !(hold || sub.connected())
        {
            return;
        }
        let sub: &mut Peer = sub;
        let Peer {
            rtc,
            tracks_out,
            held,
            downlink,
            ..
        } = sub;
        let Some(out) = tracks_out
            .iter_mut()
            .find(|o| o.source == packet.source && o.track == packet.track)
        else {
            return;
        };
        let OutState::Open(mid) = out.state else {
            return;
        };
        if out.paused {
            return;
        }
        let run = packet.run;
        if out.keyframe_gen != Some(run) || out.drop_run {
            // Not the run being forwarded (or one stopped because the subscriber's link is
            // congested): start it only if it is the target layer, and (video) only at a
            // keyframe. Until then the current run goes on, unless stopped. A subscriber
            // shown nothing of this video yet takes any layer's keyframe: the target may be a
            // layer the browser has not started (it adds the large ones as its bandwidth
            // estimate grows) or has paused, and the switch to it comes at its own keyframe.
            let nothing_yet = out.keyframe_gen.is_none() && out.kind == MediaKind::Video;
            if out.target != packet.layer && !nothing_yet {
                return;
            }
            // A layer stopped for a congested link: the smaller one waits for the queue in
            // front of the link to drain (see `crate::downlink::DRAIN_MIN`).
            if out.drop_run && downlink.draining(now) {
                return;
            }
            if out.kind == MediaKind::Video {
                if packet.keyframe_start == Some(false) {
                    self.stats.rtp_awaiting_keyframe += 1;
                    if nothing_yet {
                        // Ask for a keyframe of this layer (it is sending), as often as the
                        // interval allows, until one comes: the one asked for when the video
                        // was opened may have been lost, or asked of another layer.
                        self.keyframe_wanted(now, packet.source, packet.track, packet.layer);
                    }
                    return;
                }
                if out.keyframe_gen.is_some_and(|r| r.layer != run.layer) {
                    self.stats.layer_switches += 1;
                }
                debug!(room.id = %sub.id.room, participant.id = %sub.id.participant, layer = packet.layer, "video run starts at a keyframe");
            }
            if out.drop_run {
                downlink.resumed(now);
            }
            out.keyframe_gen = Some(run);
            out.drop_run = false;
        }

        // The header for this subscriber, around the shared payload.
        let Some(pt) = out.map_pt(rtc, packet.pt, packet.params) else {
            return;
        };
        if packet.resumes {
            // After shed packets (see `shed.rs`): no gap for the subscriber to NACK.
            out.seq.rebase();
        }
        let Some(seq_out) = out.seq.rewrite(packet.seq, run) else {
            return;
        };
        let ts_out = out.ts.rewrite(packet.rtp_time, run, now, clock_rate);
        let mut write = RtpWrite::new(
            pt,
            seq_out.into(),
            ts_out,
            packet.arrived,
            packet.payload.clone(),
        )
        .marker(packet.marker)
        .ext_vals(packet.ext.clone())
        .nackable(packet.kind == MediaKind::Video);
        if let Some(patch) = packet.vp8.as_ref().and_then(|d| out.vp8.patch(d, run)) {
            write = write.vp8_patch(patch);
        }

        if hold {
            if held.len() < MAX_HELD {
                held.push((mid, write));
            } else {
                // Connecting takes too long: drop this video's share and start again from a
                // keyframe once connected. Nothing of it was sent yet, so its numbering starts
                // again too: the packets dropped must not use up the numbers before a wrap (see
                // `FIRST_SEQ_MASK`).
                held.retain(|(m, _)| *m != mid);
                out.keyframe_gen = None;
                out.restart_numbering();
                debug!(room.id = %sub.id.room, participant.id = %sub.id.participant, "video held while connecting given up");
            }
            return;
        }
        if !write_rtp(rtc, mid, write) {
            return;
        }
        out.written += 1;
        self.stats.rtp_forwarded += 1;
        self.outbox.written(sub_key, sub, now, &mut self.stats);
    }
}

/// Hand one packet for a subscriber to str0m, on the stream of `mid`. False if there is none
/// (the m-line went away).
fn write_rtp(rtc: &mut Rtc, mid: Mid, write: RtpWrite) -> bool {
    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(mid, None) else {
        return false;
    };
    stream.write_rtp(write);
    true
}

/// When its time comes (`Peer::flush_at`), send a subscriber the video held while it connected
/// for the first time, and stop holding.
pub(super) fn flush_held_when_due(
    now: Instant,
    key: PeerKey,
    peer: &mut Peer,
    outbox: &mut Outbox,
    stats: &mut SfuStats,
) {
    if peer.flush_at.is_none_or(|t| t > now) {
        return;
    }
    peer.flush_at = None;
    peer.holding = false;
    debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, held = peer.held.len(), "held video sent");
    // One at a time, as when forwarding live: str0m's send queue keeps the capacity it grew
    // to, ~20 KiB per subscriber for a whole hold at once.
    for (mid, write) in std::mem::take(&mut peer.held) {
        if write_rtp(&mut peer.rtc, mid, write) {
            if let Some(out) = peer
                .tracks_out
                .iter_mut()
                .find(|o| matches!(o.state, OutState::Open(m) if m == mid))
            {
                out.written += 1;
            }
            stats.rtp_forwarded += 1;
            stats.subscriber_sends += 1;
            outbox.send_written(key, peer, now);
        }
    }
}
