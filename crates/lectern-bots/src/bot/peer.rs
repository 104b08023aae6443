//! The bot's webrtc-rs peer connection: codecs and interceptors, the event handler that keeps
//! what arrives, and the local description with its candidates.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    Registry, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use tracing::debug;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::{Shared, lock, now_us};
use crate::BotError;
use crate::stats::TrackStats;

/// VP8 and Opus only (what the SFU negotiates), NACK and reports from the default
/// interceptors, and one interceptor that hands keyframe requests to the publisher.
pub(super) fn media_setup() -> Result<(MediaEngine, Registry), BotError> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8(),
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    let registry = registry.with(Slot::from(14_000), KeyframeRequestTap::default());
    Ok((engine, registry))
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

pub(super) fn local_track(kind: RtpCodecKind) -> MediaStreamTrack {
    let name = if kind == RtpCodecKind::Video {
        "video"
    } else {
        "audio"
    };
    MediaStreamTrack::new(
        "bot".to_owned(),
        format!("bot-{name}"),
        format!("bot-{name}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(rand_u32()),
                ..Default::default()
            },
            codec: if kind == RtpCodecKind::Video {
                vp8()
            } else {
                opus()
            },
            ..Default::default()
        }],
    )
}

/// Not cryptographic: distinct SSRCs and initial sequence numbers per bot.
pub(super) fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_us());
    h.finish() as u32
}

/// Marks inbound RTCP that carries a PLI or FIR for delivery to the application (the
/// publisher's track), leaving every packet in place for the other interceptors.
#[derive(Default)]
pub(super) struct KeyframeRequestTap {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

pub(super) fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

pub(super) struct Handler {
    shared: Arc<Shared>,
    candidates: mpsc::UnboundedSender<String>,
    /// Set right after the connection is built; used to find a new track's `mid`.
    pc: std::sync::OnceLock<std::sync::Weak<dyn PeerConnection>>,
}

/// The `mid` of the transceiver that receives `track`.
async fn mid_of(
    pc: Option<Arc<dyn PeerConnection>>,
    track: &Arc<dyn TrackRemote>,
) -> Option<String> {
    let pc = pc?;
    let id = track.track_id().await;
    for t in pc.get_transceivers().await {
        if let Ok(Some(receiver)) = t.receiver().await
            && receiver.track().track_id().await == id
        {
            return t.mid().await.ok().flatten();
        }
    }
    None
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send(init.candidate);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        debug!(?state, "bot peer connection");
        match state {
            RTCPeerConnectionState::Connected => {
                self.shared.connected.store(true, Ordering::Relaxed);
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.shared.connected.store(false, Ordering::Relaxed);
                self.shared.failed.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = if track.kind().await == RtpCodecKind::Video {
            "video"
        } else {
            "audio"
        };
        let stream_id = track.stream_id().await.to_string();
        let index = {
            let mut tracks = lock(&self.shared.tracks);
            tracks.push(TrackStats {
                kind: kind.to_owned(),
                stream_id,
                ..Default::default()
            });
            tracks.len() - 1
        };
        let shared = self.shared.clone();
        let pc = self.pc.get().and_then(std::sync::Weak::upgrade);
        tokio::spawn(async move {
            let mid = mid_of(pc, &track).await;
            lock(&shared.tracks)[index].mid = mid;
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let now = now_us();
                    lock(&shared.tracks)[index].record(
                        packet.header.sequence_number,
                        &packet.payload,
                        now,
                    );
                }
            }
        });
    }
}

/// How long [`Bot::publish_offer`] and [`Bot::subscribe_to_offer`] wait for the bot's first
/// ICE candidate (host candidates on loopback come at once).
pub(super) const GATHER_WAIT: Duration = Duration::from_secs(2);

/// A bot's peer connection (bound to `bind_ip`, events into `shared`), with the receiver of
/// its local ICE candidates.
pub(super) async fn new_pc(
    bind_ip: IpAddr,
    shared: &Arc<Shared>,
) -> Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<String>), BotError> {
    let (candidates_tx, candidates_rx) = mpsc::unbounded_channel();
    let handler = Arc::new(Handler {
        shared: shared.clone(),
        candidates: candidates_tx,
        pc: std::sync::OnceLock::new(),
    });
    let (media_engine, registry) = media_setup()?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(handler.clone())
        .with_udp_addrs(vec![std::net::SocketAddr::new(bind_ip, 0)])
        .build()
        .await?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let _ = handler.pc.set(Arc::downgrade(&pc));
    Ok((pc, candidates_rx))
}

/// The local description with the bot's candidates written into it (for peers that take a
/// complete SDP rather than trickled candidates): waits for the first candidate, then takes
/// what has arrived 100 ms later.
pub(super) async fn local_sdp_with_candidates(
    pc: &Arc<dyn PeerConnection>,
    candidates: &mut mpsc::UnboundedReceiver<String>,
) -> Result<String, BotError> {
    let mut found = Vec::new();
    if let Ok(Some(c)) = tokio::time::timeout(GATHER_WAIT, candidates.recv()).await {
        found.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Ok(c) = candidates.try_recv() {
        found.push(c);
    }
    let sdp = pc
        .local_description()
        .await
        .ok_or_else(|| BotError::Protocol("no local description".into()))?
        .sdp;
    if sdp.contains("a=candidate:") {
        return Ok(sdp);
    }
    if found.is_empty() {
        return Err(BotError::Timeout("the bot's ICE candidates"));
    }
    Ok(add_candidates(&sdp, &found))
}

/// `sdp` with `a=<candidate>` lines at the end of every media section.
pub(super) fn add_candidates(sdp: &str, candidates: &[String]) -> String {
    let lines: String = candidates
        .iter()
        .map(|c| format!("a={}\r\n", c.trim_start_matches("a=")))
        .collect();
    let mut out = String::with_capacity(sdp.len() + lines.len() * 4);
    let mut in_media = false;
    for line in sdp.split_terminator("\r\n") {
        if line.starts_with("m=") {
            if in_media {
                out.push_str(&lines);
            }
            in_media = true;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if in_media {
        out.push_str(&lines);
    }
    out
}

#[cfg(test)]
mod external_tests {
    use super::add_candidates;

    #[test]
    fn candidates_go_at_the_end_of_every_media_section() {
        let sdp = "v=0\r\nm=video 9 UDP\r\na=mid:0\r\nm=audio 9 UDP\r\na=mid:1\r\n";
        let out = add_candidates(sdp, &["candidate:1 1 udp 1 127.0.0.1 5000 typ host".into()]);
        assert_eq!(
            out,
            "v=0\r\nm=video 9 UDP\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n\
             m=audio 9 UDP\r\na=mid:1\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"
        );
    }
}
