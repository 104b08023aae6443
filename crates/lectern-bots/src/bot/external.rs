//! Bots for signalling other than Lectern's (a reference SFU in `lectern-bench`): the offer is
//! made here and the answer comes from the caller.

use std::net::IpAddr;
use std::sync::Arc;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};
use webrtc::rtp_transceiver::RtpSender;

use super::media::send_media;
use super::peer::{local_sdp_with_candidates, local_track, new_pc};
use super::{Bot, PublishOptions, Shared};
use crate::BotError;

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
