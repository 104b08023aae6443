//! One simulated participant: a WebSocket session speaking Lectern's protocol plus one
//! webrtc-rs peer connection, either publishing generated VP8 + Opus or receiving and checking.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use lectern_proto::{
    ClientFrame, ClientMessage, DecodeError, PROTOCOL_VERSION, RequestId, ServerMessage,
    decode_server, encode_client,
};
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
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::BotError;
use crate::payload::{self, PacketInfo};
use crate::stats::TrackStats;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where and as whom a bot joins.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// The server's WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws`.
    pub url: String,
    /// A join token (JWT) for the room.
    pub token: String,
    /// The local address the bot's UDP socket binds to (one socket per bot, any port).
    pub bind_ip: IpAddr,
}

/// What a publishing bot sends.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub video: bool,
    pub audio: bool,
    /// Video bit rate in bits per second (delta frames; keyframes are three times larger).
    pub video_bitrate: u32,
    pub fps: u32,
    /// A keyframe at this interval besides the first one and those asked for by PLI/FIR.
    /// `None`: only on request.
    pub keyframe_interval: Option<Duration>,
    /// Largest RTP payload in bytes.
    pub max_payload: usize,
    /// Opus payload bytes per 20 ms packet (160 = 64 kbit/s).
    pub audio_payload: usize,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            video: true,
            audio: true,
            video_bitrate: 1_500_000,
            fps: 30,
            keyframe_interval: Some(Duration::from_secs(3)),
            max_payload: 1100,
            audio_payload: 160,
        }
    }
}

/// Counters of a publishing bot.
#[derive(Debug, Default)]
pub struct PublishCounters {
    pub video_packets: AtomicU64,
    pub audio_packets: AtomicU64,
    pub frames: AtomicU64,
    pub keyframes: AtomicU64,
    /// PLI/FIR received from the SFU.
    pub keyframe_requests: AtomicU64,
    /// `write_rtp` calls that failed (the track was not bound yet or the connection closed).
    pub write_errors: AtomicU64,
}

/// A track the SFU offered this bot (from `sfu_offer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTrack {
    pub mid: String,
    pub participant_id: String,
    pub kind: String,
}

#[derive(Debug, Default)]
struct Shared {
    connected: AtomicBool,
    failed: AtomicBool,
    tracks: Mutex<Vec<TrackStats>>,
    offered: Mutex<Vec<OfferedTrack>>,
    errors: Mutex<Vec<String>>,
    /// Why the WebSocket ended, once it has (see [`Bot::signalling_ended`]).
    ended: Mutex<Option<String>>,
    keyframe_wanted: AtomicBool,
    sent: PublishCounters,
}

/// A connected bot. Dropping it stops its tasks; [`Bot::close`] also closes the peer
/// connection politely.
pub struct Bot {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    participant_id: String,
    joined_url: String,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("participant_id", &self.participant_id)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Microseconds since the Unix epoch: the clock both ends of a latency sample read.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Bot {
    /// Join and publish: offers send-only VP8 and/or Opus, and starts sending once connected.
    pub async fn publish(options: BotOptions, publish: PublishOptions) -> Result<Bot, BotError> {
        Self::start(options, Some(publish)).await
    }

    /// Join and receive whatever the SFU offers; every packet is checked and counted.
    pub async fn subscribe(options: BotOptions) -> Result<Bot, BotError> {
        Self::start(options, None).await
    }

    async fn start(options: BotOptions, publish: Option<PublishOptions>) -> Result<Bot, BotError> {
        let (mut ws, participant_id, early, joined_url) = join(&options).await?;
        let shared = Arc::new(Shared::default());
        let (pc, candidates_rx) = new_pc(options.bind_ip, &shared).await?;

        let mut tasks = Vec::new();
        let mut outgoing = Vec::new();
        if let Some(publish) = &publish {
            for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
                let wanted = match kind {
                    RtpCodecKind::Video => publish.video,
                    _ => publish.audio,
                };
                if !wanted {
                    continue;
                }
                let track = Arc::new(TrackLocalStaticRTP::new(local_track(kind)));
                let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
                outgoing.push((kind, track, sender));
            }
        } else {
            // Something to offer so the SFU can answer and then offer what there is to receive.
            pc.create_data_channel("lectern", None).await?;
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| BotError::Protocol("no local description".into()))?
            .sdp;
        send(&mut ws, Some(1), ClientMessage::MediaOffer { sdp }).await?;

        tasks.push(tokio::spawn(signalling(
            ws,
            early,
            pc.clone(),
            shared.clone(),
            candidates_rx,
        )));
        if let Some(publish) = publish {
            for (kind, track, sender) in outgoing {
                tasks.push(tokio::spawn(send_media(
                    kind,
                    track,
                    sender,
                    shared.clone(),
                    publish.clone(),
                )));
            }
        }
        debug!(bot.participant = %participant_id, "bot joined");
        Ok(Bot {
            pc,
            shared,
            tasks,
            participant_id,
            joined_url,
        })
    }

    /// The WebSocket URL the bot joined at: its `url`, or where redirects sent it (several
    /// nodes).
    pub fn joined_url(&self) -> &str {
        &self.joined_url
    }

    /// The participant id the server gave this bot.
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Whether the peer connection failed or closed after connecting.
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Wait (up to `deadline`) until the peer connection is connected.
    pub async fn wait_connected(&self, deadline: Duration) -> Result<(), BotError> {
        let end = Instant::now() + deadline;
        while !self.is_connected() {
            if self.has_failed() {
                return Err(BotError::Closed);
            }
            if Instant::now() > end {
                return Err(BotError::Timeout("the peer connection"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// A copy of the statistics of every track received so far, each with its publisher's
    /// participant id taken from the last `sfu_offer` that announced its `mid` (the SFU reuses
    /// the m-line of an ended track for the next one).
    pub fn received(&self) -> Vec<TrackStats> {
        let mut tracks = lock(&self.shared.tracks).clone();
        let offered = lock(&self.shared.offered);
        for t in &mut tracks {
            t.publisher = offered
                .iter()
                .rev()
                .find(|o| Some(&o.mid) == t.mid.as_ref())
                .map(|o| o.participant_id.clone())
                .unwrap_or_default();
        }
        tracks
    }

    /// Packets received on all tracks so far.
    pub fn packets_received(&self) -> u64 {
        lock(&self.shared.tracks).iter().map(|t| t.packets).sum()
    }

    /// Tracks the SFU has offered this bot.
    pub fn offered(&self) -> Vec<OfferedTrack> {
        lock(&self.shared.offered).clone()
    }

    /// `error` messages (their codes) the server sent this bot.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }

    /// Why the bot's WebSocket ended: the server's `closing` reason if it sent one, then
    /// `close CODE [REASON]` (1005 for a close frame without a code) or the socket error, e.g.
    /// `closing removed, then close 1000 removed`. `None` while it is open (or after
    /// [`Bot::close`]). The peer connection may outlive the socket for a while.
    pub fn signalling_ended(&self) -> Option<String> {
        lock(&self.shared.ended).clone()
    }

    /// What a publishing bot has sent.
    pub fn sent(&self) -> &PublishCounters {
        &self.shared.sent
    }

    /// Stop sending and receiving and close the peer connection (the WebSocket goes with it).
    pub async fn close(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Err(e) = self.pc.close().await {
            debug!(error = %e, "closing a bot's peer connection");
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// VP8 and Opus only (what the SFU negotiates), NACK and reports from the default
/// interceptors, and one interceptor that hands keyframe requests to the publisher.
fn media_setup() -> Result<(MediaEngine, Registry), BotError> {
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

fn local_track(kind: RtpCodecKind) -> MediaStreamTrack {
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
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_us());
    h.finish() as u32
}

/// Marks inbound RTCP that carries a PLI or FIR for delivery to the application (the
/// publisher's track), leaving every packet in place for the other interceptors.
#[derive(Default)]
struct KeyframeRequestTap {
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

fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

struct Handler {
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

/// Send one client message.
async fn send(
    ws: &mut Ws,
    request_id: Option<RequestId>,
    message: ClientMessage,
) -> Result<(), BotError> {
    let frame = ClientFrame {
        request_id,
        message,
    };
    ws.send(Message::text(encode_client(&frame))).await?;
    Ok(())
}

/// Redirects (several nodes) a bot follows while joining, at most.
pub const MAX_REDIRECTS: usize = 3;

/// Opens the WebSocket and says hello until welcomed, following `redirect`s (only to `ws://`
/// and `wss://` URLs, at most [`MAX_REDIRECTS`]). Returns the socket, the participant id, the
/// messages that came before the welcome, and the URL joined at.
async fn join(
    options: &BotOptions,
) -> Result<(Ws, String, VecDeque<ServerMessage>, String), BotError> {
    let mut url = options.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let hello = ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: options.token.clone(),
            last_seq: None,
        };
        send(&mut ws, None, hello).await?;
        let mut early = VecDeque::new();
        let mut redirect = None;
        loop {
            match next_message(&mut ws).await {
                Ok(ServerMessage::Welcome { participant_id, .. }) => {
                    return Ok((ws, participant_id.0, early, url));
                }
                Ok(ServerMessage::Error { code, .. }) => {
                    return Err(BotError::Refused {
                        what: "hello",
                        code,
                    });
                }
                Ok(ServerMessage::Redirect { url, .. }) => redirect = Some(url),
                Ok(m) => early.push_back(m),
                // The socket closes after a redirect's `closing`.
                Err(_) if redirect.is_some() => break,
                Err(e) => return Err(e),
            }
        }
        let next = redirect.unwrap_or_default();
        if !(next.starts_with("ws://") || next.starts_with("wss://")) {
            return Err(BotError::Protocol(format!(
                "refusing to follow a redirect to a non-WebSocket URL ({} characters)",
                next.len()
            )));
        }
        debug!("bot follows a redirect");
        url = next;
    }
    Err(BotError::Protocol(format!(
        "more than {MAX_REDIRECTS} redirects while joining"
    )))
}

/// The wire name of a protocol value that is a plain string on the wire (an error code, a
/// close reason, a media kind), as the bot reports it.
pub(crate) fn wire_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Read the next server message, skipping control frames and message types this bot does not
/// know (a newer server's).
async fn next_message(ws: &mut Ws) -> Result<ServerMessage, BotError> {
    loop {
        match ws.next().await {
            None => return Err(BotError::Closed),
            // A close frame without a code reads as 1005 ("no status received", RFC 6455), as
            // a browser's `CloseEvent` reports it.
            Some(Ok(Message::Close(frame))) => {
                return Err(BotError::ClosedWith {
                    code: frame.as_ref().map_or(1005, |f| f.code.into()),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                });
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => match decode_server(&t) {
                Ok(message) => return Ok(message),
                Err(DecodeError::UnknownType { type_name, .. }) => {
                    debug!(message.type = %type_name, "bot skips an unknown server message");
                }
                Err(e) => return Err(e.into()),
            },
            Some(Ok(_)) => ws.flush().await?,
        }
    }
}

/// Owns the WebSocket: applies the SFU's answers and offers, answers offers, trickles our
/// candidates, and records errors. Ends when the socket closes.
async fn signalling(
    mut ws: Ws,
    mut early: VecDeque<ServerMessage>,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    mut candidates: mpsc::UnboundedReceiver<String>,
) {
    // The reason of a `closing` message, kept for when the socket then ends.
    let mut closing: Option<String> = None;
    let ended = |closing: Option<String>, why: String| {
        let why = match closing {
            Some(reason) => format!("closing {reason}, then {why}"),
            None => why,
        };
        *lock(&shared.ended) = Some(why);
    };
    // A close frame as `close CODE [REASON]`, anything else as its error.
    let why = |e: BotError| match e {
        BotError::ClosedWith { code, reason } if reason.is_empty() => format!("close {code}"),
        BotError::ClosedWith { code, reason } => format!("close {code} {reason}"),
        e => e.to_string(),
    };
    loop {
        let message = if let Some(m) = early.pop_front() {
            m
        } else {
            tokio::select! {
                m = next_message(&mut ws) => match m {
                    Ok(m) => m,
                    Err(e) => {
                        debug!(error = %e, "bot signalling ended");
                        ended(closing, why(e));
                        return;
                    }
                },
                Some(candidate) = candidates.recv() => {
                    let m = ClientMessage::MediaCandidate { candidate };
                    if let Err(e) = send(&mut ws, None, m).await {
                        ended(closing, format!("sending a candidate: {e}"));
                        return;
                    }
                    continue;
                }
            }
        };
        if let ServerMessage::Closing { reason, .. } = &message {
            closing = Some(wire_name(reason));
        }
        if let Err(e) = handle_message(&mut ws, &pc, &shared, &message).await {
            warn!(error = %e, "bot signalling");
            lock(&shared.errors).push(e.to_string());
        }
    }
}

async fn handle_message(
    ws: &mut Ws,
    pc: &Arc<dyn PeerConnection>,
    shared: &Shared,
    m: &ServerMessage,
) -> Result<(), BotError> {
    match m {
        ServerMessage::SfuAnswer { sdp } => {
            pc.set_remote_description(RTCSessionDescription::answer(sdp.clone())?)
                .await?;
        }
        ServerMessage::SfuOffer { sdp, tracks } => {
            lock(&shared.offered).extend(tracks.iter().map(|t| OfferedTrack {
                mid: t.mid.clone(),
                participant_id: t.participant_id.0.clone(),
                kind: wire_name(&t.kind),
            }));
            pc.set_remote_description(RTCSessionDescription::offer(sdp.clone())?)
                .await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer).await?;
            let answer = pc
                .local_description()
                .await
                .ok_or_else(|| BotError::Protocol("no local answer".into()))?
                .sdp;
            send(ws, None, ClientMessage::MediaAnswer { sdp: answer }).await?;
        }
        ServerMessage::Error { code, .. } => {
            lock(&shared.errors).push(wire_name(code));
        }
        _ => {}
    }
    Ok(())
}

/// Once connected, send generated media on one track until aborted.
async fn send_media(
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

/// A publishing bot whose offer is made but not yet answered: for signalling other than
/// Lectern's (e.g. a reference SFU in `lectern-bench`). [`Bot::publish_offer`] makes it.
pub struct PendingPublish {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    outgoing: Vec<(RtpCodecKind, Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>)>,
    publish: PublishOptions,
}

impl std::fmt::Debug for PendingPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPublish").finish_non_exhaustive()
    }
}

impl PendingPublish {
    /// Apply the remote answer and start sending once connected.
    pub async fn start(self, answer_sdp: String) -> Result<Bot, BotError> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer_sdp)?)
            .await?;
        let mut tasks = Vec::new();
        for (kind, track, sender) in self.outgoing {
            tasks.push(tokio::spawn(send_media(
                kind,
                track,
                sender,
                self.shared.clone(),
                self.publish.clone(),
            )));
        }
        Ok(Bot {
            pc: self.pc,
            shared: self.shared,
            tasks,
            participant_id: String::new(),
            joined_url: String::new(),
        })
    }
}

/// How long [`Bot::publish_offer`] and [`Bot::subscribe_to_offer`] wait for the bot's first
/// ICE candidate (host candidates on loopback come at once).
const GATHER_WAIT: Duration = Duration::from_secs(2);

/// A bot's peer connection (bound to `bind_ip`, events into `shared`), with the receiver of
/// its local ICE candidates.
async fn new_pc(
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
async fn local_sdp_with_candidates(
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
fn add_candidates(sdp: &str, candidates: &[String]) -> String {
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

impl Bot {
    /// A publisher for signalling other than Lectern's: makes the send-only VP8 + Opus offer
    /// (its candidates written into it) and returns it with the pending bot, which
    /// [`PendingPublish::start`] completes with the remote answer.
    pub async fn publish_offer(
        bind_ip: IpAddr,
        publish: PublishOptions,
    ) -> Result<(PendingPublish, String), BotError> {
        let shared = Arc::new(Shared::default());
        let (pc, mut candidates) = new_pc(bind_ip, &shared).await?;
        let mut outgoing = Vec::new();
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            let wanted = match kind {
                RtpCodecKind::Video => publish.video,
                _ => publish.audio,
            };
            if wanted {
                let track = Arc::new(TrackLocalStaticRTP::new(local_track(kind)));
                let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
                outgoing.push((kind, track, sender));
            }
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let sdp = local_sdp_with_candidates(&pc, &mut candidates).await?;
        Ok((
            PendingPublish {
                pc,
                shared,
                outgoing,
                publish,
            },
            sdp,
        ))
    }

    /// A receiver for signalling other than Lectern's: answers `offer_sdp` and returns the bot
    /// with its answer (candidates written into it). Packets are checked and counted as with
    /// [`Bot::subscribe`].
    pub async fn subscribe_to_offer(
        bind_ip: IpAddr,
        offer_sdp: String,
    ) -> Result<(Bot, String), BotError> {
        let shared = Arc::new(Shared::default());
        let (pc, mut candidates) = new_pc(bind_ip, &shared).await?;
        pc.set_remote_description(RTCSessionDescription::offer(offer_sdp)?)
            .await?;
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        let sdp = local_sdp_with_candidates(&pc, &mut candidates).await?;
        Ok((
            Bot {
                pc,
                shared,
                tasks: Vec::new(),
                participant_id: String::new(),
                joined_url: String::new(),
            },
            sdp,
        ))
    }
}

#[cfg(test)]
mod signalling_tests {
    use lectern_proto::{CloseReason, ParticipantId, Role, decode_client, encode_server};

    use super::*;

    async fn read_message(
        ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    ) -> ClientMessage {
        loop {
            if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
                return decode_client(&t).unwrap().message;
            }
        }
    }

    async fn write_message(
        ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        message: ServerMessage,
    ) {
        ws.send(Message::text(encode_server(&message)))
            .await
            .unwrap();
    }

    /// A server that welcomes the bot, reads its offer, then says `closing` and closes the
    /// socket with 1008: the bot reports both.
    #[tokio::test]
    async fn the_reason_the_websocket_ended_is_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let hello = read_message(&mut ws).await;
            assert!(
                matches!(&hello, ClientMessage::Hello { protocol_version, token, .. }
                    if *protocol_version == PROTOCOL_VERSION && token == "t"),
                "{hello:?}"
            );
            let welcome = ServerMessage::Welcome {
                protocol_version: PROTOCOL_VERSION,
                participant_id: ParticipantId::new("p1"),
                role: Role::Student,
                rejoined: false,
                snapshot: None,
            };
            write_message(&mut ws, welcome).await;
            while !matches!(
                read_message(&mut ws).await,
                ClientMessage::MediaOffer { .. }
            ) {}
            let closing = ServerMessage::Closing {
                reason: CloseReason::Removed,
                message: "x".into(),
            };
            write_message(&mut ws, closing).await;
            let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1008.into(),
                reason: "removed".into(),
            };
            ws.send(Message::Close(Some(frame))).await.unwrap();
            // Let the close handshake finish before the socket drops.
            let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        });
        let bot = Bot::subscribe(BotOptions {
            url: format!("ws://127.0.0.1:{port}/ws"),
            token: "t".into(),
            bind_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        })
        .await
        .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        let ended = loop {
            if let Some(why) = bot.signalling_ended() {
                break why;
            }
            assert!(Instant::now() < end, "the bot never noticed the close");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(ended, "closing removed, then close 1008 removed");
        server.await.unwrap();
    }
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
