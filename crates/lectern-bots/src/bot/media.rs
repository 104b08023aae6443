//! What a publishing bot sends: generated VP8 and Opus, keyframes on request.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::warn;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpSender;

use super::peer::{is_keyframe_request, rand_u32};
use super::{PublishOptions, Shared, now_us};
use crate::payload::{self, PacketInfo};

/// Once connected, send generated media on one track until aborted.
pub(super) async fn send_media(
    kind: RtpCodecKind,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    shared: Arc<Shared>,
    options: PublishOptions,
) {
    while !shared.connected.load(Ordering::Relaxed) {
        if shared.failed.load(Ordering::Relaxed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pt = match sender.get_parameters().await {
        Ok(p) => match p.rtp_parameters.codecs.first() {
            Some(c) => c.payload_type,
            None => {
                warn!("the publisher's track has no negotiated codec");
                return;
            }
        },
        Err(e) => {
            warn!(error = %e, "reading the sender's parameters");
            return;
        }
    };
    let Some(ssrc) = track.ssrcs().await.first().copied() else {
        return;
    };
    let video = kind == RtpCodecKind::Video;
    if video {
        // Keyframe requests arrive as events on the local track.
        let (track, shared) = (track.clone(), shared.clone());
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(packets) = event
                    && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
                {
                    shared
                        .sent
                        .keyframe_requests
                        .fetch_add(1, Ordering::Relaxed);
                    shared.keyframe_wanted.store(true, Ordering::Relaxed);
                }
            }
        });
    }
    let period = if video {
        Duration::from_secs(1) / options.fps.max(1)
    } else {
        Duration::from_millis(20)
    };
    let ts_step = if video {
        90_000 / options.fps.max(1)
    } else {
        960
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = rand_u32() as u16;
    let mut timestamp = rand_u32();
    let mut last_keyframe = Instant::now();
    for frame in 0u32.. {
        tick.tick().await;
        let (size, count, keyframe) = if video {
            let periodic = options
                .keyframe_interval
                .is_some_and(|i| last_keyframe.elapsed() >= i);
            let keyframe =
                frame == 0 || periodic || shared.keyframe_wanted.swap(false, Ordering::Relaxed);
            if keyframe {
                last_keyframe = Instant::now();
            }
            let bytes = (options.video_bitrate / 8 / options.fps.max(1)) as usize
                * if keyframe { 3 } else { 1 };
            let count = bytes.div_ceil(options.max_payload).max(1);
            (bytes / count, count as u16, keyframe)
        } else {
            (options.audio_payload, 1, false)
        };
        let sent_us = now_us();
        for index in 0..count {
            let info = PacketInfo {
                frame,
                index,
                count,
                sent_us,
                keyframe,
            };
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: video && index + 1 == count,
                    payload_type: pt,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload: Bytes::from(payload::build(video, &info, size)),
            };
            seq = seq.wrapping_add(1);
            if track.write_rtp(packet).await.is_err() {
                shared.sent.write_errors.fetch_add(1, Ordering::Relaxed);
                if shared.failed.load(Ordering::Relaxed) {
                    return;
                }
            } else if video {
                shared.sent.video_packets.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.sent.audio_packets.fetch_add(1, Ordering::Relaxed);
            }
        }
        timestamp = timestamp.wrapping_add(ts_step);
        if video {
            shared.sent.frames.fetch_add(1, Ordering::Relaxed);
            shared
                .sent
                .keyframes
                .fetch_add(u64::from(keyframe), Ordering::Relaxed);
        }
    }
}
