//! One simulated participant: a WebSocket session speaking Lectern's protocol plus one
//! webrtc-rs peer connection, either publishing generated VP8 + Opus or receiving and checking.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lectern_proto::ClientMessage;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::task::JoinHandle;
use tracing::debug;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::PeerConnection;

use crate::BotError;
use crate::stats::TrackStats;

mod external;
mod media;
mod peer;
mod signalling;

pub use self::external::PendingPublish;
use self::media::send_media;
use self::peer::{local_track, new_pc};
pub(crate) use self::signalling::wire_name;
use self::signalling::{join, send, signalling};

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

/// One inbound RTP stream as webrtc-rs counts it (see [`Bot::inbound`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundStream {
    pub kind: String,
    pub mid: String,
    pub ssrc: u32,
    pub packets: u64,
    pub discarded: u64,
    pub plis: u32,
    pub nacks: u32,
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
                return Err(BotError::PeerConnectionFailed);
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

    /// What webrtc-rs itself took in, from one stats report: per inbound RTP stream (one per
    /// SSRC it bound, at its first packet) the kind, mid, packets received and discarded (its
    /// track's queue was full), and PLIs and NACKs sent; and the datagrams its transport
    /// received in all (before SRTP). A stream missing here never got a packet through SRTP to
    /// webrtc-rs's RTP layer; one counted here but not in [`Bot::received`] was lost between
    /// webrtc-rs and the bot's reader; far more datagrams than the streams and the data channel
    /// account for means packets it could not decrypt. For diagnostics when a student waits
    /// for media.
    pub async fn inbound(&self) -> (Vec<InboundStream>, Option<u64>) {
        let report = self
            .pc
            .get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None)
            .await;
        let mut streams: Vec<InboundStream> = report
            .inbound_rtp_streams()
            .map(|s| {
                let r = &s.received_rtp_stream_stats;
                InboundStream {
                    kind: if r.rtp_stream_stats.kind == RtpCodecKind::Video {
                        "video"
                    } else {
                        "audio"
                    }
                    .to_owned(),
                    mid: s.mid.clone(),
                    ssrc: r.rtp_stream_stats.ssrc,
                    packets: r.packets_received,
                    discarded: s.packets_discarded,
                    plis: s.pli_count,
                    nacks: s.nack_count,
                }
            })
            .collect();
        streams.sort_by(|a, b| a.mid.cmp(&b.mid));
        (streams, report.transport().map(|t| t.packets_received))
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
