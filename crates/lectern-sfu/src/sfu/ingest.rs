//! Forwarding, step one: a publisher's RTP packet is taken in once.
//!
//! Forwarding is two steps with one seam between them:
//!
//! 1. **Ingest** ([`Sfu::ingest`], this file), once per received packet, whoever receives
//!    it: route it to its track and simulcast layer, drop it if its kind may not be published,
//!    and do the bookkeeping that belongs to the publisher's side: the layer's bit rate,
//!    picture size and activity, the run of packets it belongs to, and the speech levels the
//!    active speaker is decided from. Loss on the publisher's leg is already repaired when a
//!    packet gets here: str0m NACKs the publisher for gaps, and a retransmission arrives as
//!    the packet it replaces.
//! 2. **Deliver** ([`Sfu::deliver`], `deliver.rs`), per subscriber of the track: whether this
//!    subscriber is sent this packet (its target layer, from a keyframe), the header rewritten
//!    for it (payload type, sequence number, timestamp, VP8 picture ids), and the write to its
//!    `Rtc`, where str0m keeps it for retransmission and encrypts it.
//!
//! The seam is [`Ingested`]: everything a delivery needs, read out of the packet once, with
//! the payload shared (`Arc<[u8]>`, decrypted once by str0m; never copied). [`Sfu::forward`]
//! is the one place it is crossed. Another consumer of media plugs in there, fed once per
//! ingested packet and never per subscriber: a recorder takes each `Ingested` (its run says
//! where a new sequence space or layer starts, `keyframe_start` where a decoder can begin),
//! and subscribers on another media worker are sent the `Ingested` (the payload `Arc`
//! crosses threads as it is) for that worker's deliver step, with the publisher's `PeerKey`
//! and `TrackId` mapped to that worker's own mirror (`relay.rs`).

use std::sync::Arc;
use std::time::Instant;

use str0m::format::{Codec, PayloadParams};
use str0m::media::Pt;
use str0m::rtp::{ExtensionValues, RtpPacket, Vp8Descriptor};

use super::Sfu;
use crate::MediaKind;
use crate::layers::{self, LAYER_CHECK_INTERVAL, Run};
use crate::peer::{Peer, PeerKey, TrackId};
use crate::speaker::SPEAKER_INTERVAL;

/// One RTP packet from a publisher, taken in once: routed to its track and layer, accounted
/// for, and read for what every delivery of it needs. Consumers take it by reference; a
/// linked SFU is handed a copy (see `relay.rs`).
#[derive(Clone)]
pub(super) struct Ingested {
    /// The publisher's peer.
    pub source: PeerKey,
    /// The publisher's track (one m-line it sends on) and its kind.
    pub track: TrackId,
    pub kind: MediaKind,
    /// The simulcast layer: an index into the track's layers (0 without simulcast).
    pub layer: usize,
    /// The run of packets it belongs to (layer, sequence space, pause generation): a
    /// consumer re-bases sequence numbers and timestamps, and waits for a keyframe, when
    /// the run changes.
    pub run: Run,
    /// The publisher's payload type and the codec parameters it stands for.
    pub pt: Pt,
    pub params: PayloadParams,
    /// VP8 video: whether the packet starts a keyframe. `None` for codecs not inspected
    /// (audio), which may be forwarded from any packet.
    pub keyframe_start: Option<bool>,
    /// VP8 video: the payload descriptor (picture ids to rewrite on a layer switch).
    pub vp8: Option<Vp8Descriptor>,
    /// The publisher's extended sequence number and RTP timestamp.
    pub seq: u64,
    pub rtp_time: u32,
    /// When the packet arrived.
    pub arrived: Instant,
    pub marker: bool,
    /// The header extension values worth passing on (see `forwarded_extensions`).
    pub ext: ExtensionValues,
    /// The decrypted payload, shared by every consumer.
    pub payload: Arc<[u8]>,
    /// The first packet sent on after packets of its layer were shed (see `shed.rs`): each
    /// subscriber's numbering continues right after the last packet it was sent, so it sees
    /// no gap to NACK.
    pub resumes: bool,
}

impl Sfu {
    /// Forward one RTP packet from a publisher: take it in once, then deliver it to every
    /// subscriber of its track. See the module docs for the two steps.
    pub(super) fn forward(&mut self, now: Instant, key: PeerKey, packet: RtpPacket) {
        let Some(mut packet) = self.ingest(now, key, packet) else {
            return;
        };
        if !self.recordings.is_empty() {
            self.record(now, &packet);
        }
        // Stale (the worker fell behind): taken in and recorded, but sent no further.
        if !self.passes_shed(now, &mut packet, self.shedding) {
            return;
        }
        if !self.relay_to.is_empty() {
            self.relay(&packet);
        }
        self.deliver(now, &packet);
    }

    /// Take in one RTP packet from publisher `key`. `None` if it goes nowhere: not routed to
    /// a published track and layer, of a kind the publisher may not publish, or of a payload
    /// type not negotiated.
    pub(super) fn ingest(
        &mut self,
        now: Instant,
        key: PeerKey,
        packet: RtpPacket,
    ) -> Option<Ingested> {
        self.stats.rtp_received += 1;
        let peer = self.peers.get_mut(&key)?;
        let (track_id, layer_index) = peer.route(packet.header.ssrc, now)?;
        let i = peer.track_in_index(track_id)?;
        let kind = peer.tracks_in[i].kind;
        if !peer.permission.allows(kind) {
            self.stats.rtp_denied += 1;
            return None;
        }
        let pt = packet.header.payload_type;
        let peer: &mut Peer = peer;
        let Peer { rtc, tracks_in, .. } = peer;
        let track = &mut tracks_in[i];

        // Speech levels, for the active speaker.
        if kind == MediaKind::Audio {
            track.levels.add(packet.header.ext_vals.audio_level);
            if track.levels.speech_packets > 0 && self.next_speaker_check.is_none() {
                self.next_speaker_check = Some(now + SPEAKER_INTERVAL);
            }
        }
        let params = track.params_for(rtc, pt)?;

        // Keyframes: only VP8 is inspected.
        let is_vp8 = kind == MediaKind::Video && params.spec().codec == Codec::Vp8;
        let vp8 = if is_vp8 {
            Vp8Descriptor::parse(&packet.payload).ok()
        } else {
            None
        };
        let keyframe_start =
            is_vp8.then(|| vp8.is_some_and(|d| d.starts_keyframe(&packet.payload)));

        // The layer: its rate, activity and picture size (read from its keyframes).
        let layer = &mut track.layers[layer_index];
        layer.heard(now, packet.payload.len());
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

        Some(Ingested {
            source: key,
            track: track_id,
            kind,
            layer: layer_index,
            run,
            pt,
            params,
            keyframe_start,
            vp8,
            seq: *packet.seq_no,
            rtp_time: packet.header.timestamp,
            arrived: packet.timestamp,
            marker: packet.header.marker,
            ext: forwarded_extensions(&packet.header.ext_vals),
            payload: packet.payload,
            resumes: false,
        })
    }
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
