//! RTP from a publisher to every subscriber of its track.

use std::time::Instant;

use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::Mid;
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};
use tracing::debug;

use super::Sfu;
use super::outbox::Outbox;
use crate::layers::{self, LAYER_CHECK_INTERVAL, Run};
use crate::peer::{MAX_HELD, OutState, Peer, PeerKey};
use crate::speaker::SPEAKER_INTERVAL;
use crate::{MediaKind, SfuStats};

impl Sfu {
    /// Forward one RTP packet from a publisher to every subscriber of its track. The payload
    /// is shared (`Arc`), not copied; per subscriber only the header is rewritten (payload
    /// type, sequence number, timestamp; str0m sets SSRC, MID and transport-cc) before SRTP.
    /// Of a simulcast track, each subscriber is sent one layer: its target, from a keyframe.
    pub(super) fn forward(&mut self, now: Instant, key: PeerKey, packet: RtpPacket) {
        self.stats.rtp_received += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some((track_id, layer_index)) = peer.route(packet.header.ssrc, now) else {
            return;
        };
        let Some(i) = peer.track_in_index(track_id) else {
            return;
        };
        let kind = peer.tracks_in[i].kind;
        if !peer.permission.allows(kind) {
            self.stats.rtp_denied += 1;
            return;
        }
        let pt_in = packet.header.payload_type;
        let Peer { rtc, tracks_in, .. } = peer;
        let track = &mut tracks_in[i];
        if kind == MediaKind::Audio {
            track.levels.add(packet.header.ext_vals.audio_level);
            if track.levels.speech_packets > 0 && self.next_speaker_check.is_none() {
                self.next_speaker_check = Some(now + SPEAKER_INTERVAL);
            }
        }
        let Some(params) = track.params_for(rtc, pt_in) else {
            return;
        };
        let is_vp8 = kind == MediaKind::Video && params.spec().codec == Codec::Vp8;
        let vp8 = if is_vp8 {
            Vp8Descriptor::parse(&packet.payload).ok()
        } else {
            None
        };
        // Codecs not inspected are forwarded from the first packet (`None`).
        let keyframe_start =
            is_vp8.then(|| vp8.is_some_and(|d| d.starts_keyframe(&packet.payload)));
        let layer = &mut track.layers[layer_index];
        layer.rate.add(now, packet.payload.len());
        layer.last_packet = now;
        if keyframe_start == Some(true)
            && let Some((w, h)) = layers::vp8_keyframe_size(&packet.payload)
        {
            (layer.width, layer.height) = (w, h);
        }
        let run = Run {
            generation: track.generation,
            layer: layer_index as u8,
            epoch: layer.epoch,
        };
        if track.layers.len() > 1 && self.next_layer_check.is_none() {
            self.next_layer_check = Some(now + LAYER_CHECK_INTERVAL);
        }
        if !track.announced || track.subscribers.is_empty() {
            return;
        }
        let clock_rate = params.spec().clock_rate.get();
        let subscriber_count = track.subscribers.len();
        let ext = forwarded_extensions(&packet.header.ext_vals);
        let seq_in = *packet.seq_no;

        for n in 0..subscriber_count {
            let Some(&sub_key) = self
                .peers
                .get(&key)
                .and_then(|p| p.tracks_in.get(i))
                .and_then(|t| t.subscribers.get(n))
            else {
                break;
            };
            let Some(sub) = self.peers.get_mut(&sub_key) else {
                continue;
            };
            // Video for a subscriber connecting for the first time is held (`Peer::held`).
            let hold = sub.holding;
            if !sub.rtc.is_alive()
                || (hold && kind != MediaKind::Video)
                || !(hold || sub.connected())
            {
                continue;
            }
            let Peer {
                rtc,
                tracks_out,
                held,
                ..
            } = sub;
            let Some(out) = tracks_out
                .iter_mut()
                .find(|o| o.source == key && o.track == track_id)
            else {
                continue;
            };
            let OutState::Open(mid) = out.state else {
                continue;
            };
            if out.keyframe_gen != Some(run) {
                // Not the run being forwarded: start it only if it is the target layer, and
                // (video) only at a keyframe. Until then the current run goes on.
                if out.target != layer_index {
                    continue;
                }
                if out.kind == MediaKind::Video {
                    if keyframe_start == Some(false) {
                        self.stats.rtp_awaiting_keyframe += 1;
                        continue;
                    }
                    if out.keyframe_gen.is_some_and(|r| r.layer != run.layer) {
                        self.stats.layer_switches += 1;
                    }
                    debug!(participant.id = %sub.participant, layer = layer_index, "video run starts at a keyframe");
                }
                out.keyframe_gen = Some(run);
            }
            let Some(pt) = out.map_pt(rtc, pt_in, params) else {
                continue;
            };
            let Some(seq_out) = out.seq.rewrite(seq_in, run) else {
                continue;
            };
            let ts_out = out
                .ts
                .rewrite(packet.header.timestamp, run, now, clock_rate);
            let mut write = RtpWrite::new(
                pt,
                seq_out.into(),
                ts_out,
                packet.timestamp,
                packet.payload.clone(),
            )
            .marker(packet.header.marker)
            .ext_vals(ext.clone())
            .nackable(kind == MediaKind::Video);
            if let Some(patch) = vp8.as_ref().and_then(|d| out.vp8.patch(d, run)) {
                write = write.vp8_patch(patch);
            }
            if hold {
                if held.len() < MAX_HELD {
                    held.push((mid, write));
                } else {
                    // Connecting takes too long: drop this video's share and start again
                    // from a keyframe once connected. Nothing of it was sent yet.
                    held.retain(|(m, _)| *m != mid);
                    out.keyframe_gen = None;
                }
                continue;
            }
            if !write_rtp(rtc, mid, write) {
                continue;
            }
            self.stats.rtp_forwarded += 1;
            self.outbox.settle(sub_key, sub, now);
        }
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

/// The header extension values worth passing from publisher to subscriber. str0m writes MID,
/// RID, transport-cc and abs-send-time itself.
fn forwarded_extensions(src: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: src.audio_level,
        voice_activity: src.voice_activity,
        video_orientation: src.video_orientation,
        video_content_type: src.video_content_type,
        abs_capture_time: src.abs_capture_time,
        play_delay_min: src.play_delay_min,
        play_delay_max: src.play_delay_max,
        ..ExtensionValues::default()
    }
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
    debug!(participant.id = %peer.participant, held = peer.held.len(), "held video sent");
    // One at a time, as when forwarding live: str0m's send queue keeps the capacity it grew
    // to, ~20 KiB per subscriber for a whole hold at once.
    for (mid, write) in std::mem::take(&mut peer.held) {
        if write_rtp(&mut peer.rtc, mid, write) {
            stats.rtp_forwarded += 1;
            outbox.settle(key, peer, now);
        }
    }
}
