//! WebRTC signalling: between a participant's connection and the media worker their peer is
//! placed on (a room's peers may be on several: the workers relay to each other). The room task adds a participant's peer on their first `media_offer` (or
//! `media_start`), never in the lobby, with the permissions the room computes; relays answers,
//! offers and candidates; turns the room's media intents into permission changes; and gives
//! each connection its ICE servers right after its welcome.

use std::collections::{HashMap, VecDeque};

use lectern_proto::{
    ClientMessage, ErrorCode, NetworkQuality, ParticipantId, ParticipantQuality, RequestId,
    ServerMessage,
};
use lectern_room::{ConnId, Input, MediaIntent};
use tracing::debug;

use super::task::RoomTask;

/// `media_view`: longest mid accepted (str0m's are a few digits) and largest size, per side.
const MAX_MID_LEN: usize = 32;
const MAX_VIEW: u32 = 16_384;

/// The room's participants that have a peer on a media worker, the worker each is on, and
/// the requests waiting for the SFU's answer.
#[derive(Debug, Default)]
pub(super) struct MediaPeers {
    /// Each participant with a peer, and its worker.
    peers: HashMap<ParticipantId, crate::media::Placement>,
    /// Each participant's `media_offer`s handed to the SFU and not answered yet, oldest first
    /// (the worker answers its commands in order: each `Answer`, or `Failed` of an
    /// `AcceptOffer`, is the front one's).
    pending_offer: HashMap<ParticipantId, VecDeque<Option<RequestId>>>,
    /// Each participant's network quality as the SFU last reported it (never `unknown`:
    /// those are removed).
    quality: HashMap<ParticipantId, NetworkQuality>,
}

impl RoomTask {
    fn send(&mut self, conn: ConnId, message: &ServerMessage) {
        self.outbox.send([conn], message);
    }

    /// Right after its welcome, a connection learns its ICE servers (when media is enabled):
    /// TURN credentials run on the wall clock, which the TURN server checks them against.
    pub(super) fn send_media_config(&mut self, conn: ConnId, participant_id: &ParticipantId) {
        if self.env.media.is_none() {
            return;
        }
        let now_secs = crate::clock::wall_ms() / 1000;
        let ice_servers =
            crate::turn::ice_servers(&self.env.settings.turn, participant_id, now_secs);
        self.send(conn, &ServerMessage::MediaConfig { ice_servers });
    }

    /// A hello with `media_start`: right after the welcome (and the `media_config`), the
    /// participant's peer starts as a `media_start` request would start it, when the welcome let
    /// them into the class (in the lobby, the client asks once it is let in). The SFU's offer
    /// then follows the welcome without waiting for a round trip to the client.
    pub(super) fn media_start_after_welcome(&mut self, conn: ConnId, id: &ParticipantId) {
        if !self.media_start_at_welcome.remove(&conn) || self.env.media.is_none() {
            return;
        }
        if self.room.participant(id).is_none_or(|p| p.in_lobby) {
            return;
        }
        debug!(room.id = %self.room_id, "media started at the welcome");
        self.media_request(conn, None, ClientMessage::MediaStart);
    }

    pub(super) fn media_request(
        &mut self,
        conn: ConnId,
        request_id: Option<RequestId>,
        message: ClientMessage,
    ) {
        let Some(id) = self.room.participant_for_conn(conn).cloned() else {
            return;
        };
        let refuse = |code: ErrorCode, message: &str| ServerMessage::Error {
            code,
            message: message.to_owned(),
            request_id,
        };
        let Some(plane) = self.env.media.clone() else {
            let error = refuse(ErrorCode::Internal, "media is disabled on this server");
            return self.send(conn, &error);
        };
        if self.room.participant(&id).is_some_and(|p| p.in_lobby) {
            let error = refuse(
                ErrorCode::InLobby,
                "media starts when you are let into the class",
            );
            return self.send(conn, &error);
        }
        // A fresh start: the client made a new peer connection, so the old peer goes.
        if let ClientMessage::MediaStart = message {
            self.drop_media_peer(&id);
        }
        let peer = crate::media::peer_id(&self.room_id, &id);
        let has_peer = self.media.peers.contains_key(&id);
        // A new peer is placed on the least loaded worker.
        if !has_peer
            && matches!(
                message,
                ClientMessage::MediaStart | ClientMessage::MediaOffer { .. }
            )
        {
            let room_workers = self.media_workers();
            let placement = plane.place(&room_workers);
            let worker = placement.worker();
            debug!(room.id = %self.room_id, media.worker = worker, "media peer placed");
            self.media.peers.insert(id.clone(), placement);
            if !room_workers.contains(&worker) {
                self.record_on_worker(worker);
            }
        }
        let Some(handle) = self.media.peers.get(&id).map(|p| p.handle().clone()) else {
            let error = refuse(ErrorCode::InvalidMessage, "send a media_offer first");
            return self.send(conn, &error);
        };
        let result = match message {
            // The SFU offers the room's tracks right after adding the peer (if there are any).
            ClientMessage::MediaStart => {
                let (audio, video) = self.room.media_permissions(&id).unwrap_or((false, false));
                handle
                    .add_peer(peer.clone())
                    .and_then(|()| handle.set_publish_permission(peer.clone(), audio, video))
            }
            ClientMessage::MediaOffer { sdp } => {
                let mut result = Ok(());
                if !has_peer {
                    let (audio, video) = self.room.media_permissions(&id).unwrap_or((false, false));
                    result = handle
                        .add_peer(peer.clone())
                        .and_then(|()| handle.set_publish_permission(peer.clone(), audio, video));
                }
                // Acknowledged once the SFU's answer is sent.
                return match result.and_then(|()| handle.accept_offer(peer, sdp)) {
                    Ok(()) => self
                        .media
                        .pending_offer
                        .entry(id)
                        .or_default()
                        .push_back(request_id),
                    Err(e) => self.send(conn, &refuse(ErrorCode::Internal, &e.to_string())),
                };
            }
            ClientMessage::MediaAnswer { sdp } => handle.accept_answer(peer, sdp),
            ClientMessage::MediaCandidate { candidate } => {
                handle.add_remote_candidate(peer, candidate)
            }
            ClientMessage::MediaView {
                mid,
                width,
                height,
                paused,
            } => {
                if mid.is_empty()
                    || mid.len() > MAX_MID_LEN
                    || width > MAX_VIEW
                    || height > MAX_VIEW
                {
                    let error = refuse(
                        ErrorCode::InvalidMessage,
                        "media_view needs a mid of an sfu_offer and a size up to 16384",
                    );
                    return self.send(conn, &error);
                }
                handle.set_view_size(peer, mid, width, height, paused)
            }
            _ => return,
        };
        match (result, request_id) {
            (Ok(()), Some(request_id)) => self.send(
                conn,
                &ServerMessage::Ack {
                    request_id,
                    seq: None,
                },
            ),
            (Ok(()), None) => {}
            (Err(e), _) => self.send(conn, &refuse(ErrorCode::Internal, &e.to_string())),
        }
    }

    /// A report from the media worker about one of this room's participants.
    pub(super) fn media_event(&mut self, event: lectern_sfu::WorkerEvent) {
        use lectern_sfu::{MediaEvent, WorkerEvent};
        let peer = match &event {
            WorkerEvent::Answer { peer, .. }
            | WorkerEvent::Failed { peer, .. }
            | WorkerEvent::Media(MediaEvent::Offer { peer, .. }) => peer,
            WorkerEvent::Media(MediaEvent::ActiveSpeaker { participant, .. }) => {
                let participant_id = participant.as_ref().map(|p| ParticipantId::new(p.as_str()));
                let now = self.env.clock.now_ms();
                return self
                    .room
                    .handle(now, Input::ActiveSpeaker { participant_id });
            }
            WorkerEvent::Media(MediaEvent::NetworkQuality { changes, .. }) => {
                return self.network_quality(changes.clone());
            }
            WorkerEvent::Media(other) => {
                debug!(event = ?other, "media event");
                return;
            }
        };
        let id = ParticipantId::new(peer.participant.as_str());
        let Some(conn) = self.room.conn_of(&id) else {
            return;
        };
        match &event {
            WorkerEvent::Failed { command, error, .. } => {
                // Only the failure of an offer answers (and ends) that offer: any other
                // failure (a `media_view` of a mid just stopped, an answer, a candidate) is
                // reported on its own and leaves the client's pending offer alone.
                let request_id = match command {
                    lectern_sfu::CommandKind::AcceptOffer => self.answered_offer(&id),
                    _ => None,
                };
                let (code, message) = match error {
                    lectern_sfu::SfuError::InvalidSdp(_)
                    | lectern_sfu::SfuError::InvalidCandidate(_)
                    | lectern_sfu::SfuError::UnknownMid(_)
                    | lectern_sfu::SfuError::NoPendingOffer => (
                        ErrorCode::InvalidMessage,
                        format!("media: {}", error.code()),
                    ),
                    // What moved in the client's own SDP, and what to do instead.
                    lectern_sfu::SfuError::RenegotiationUnsupported(_) => (
                        ErrorCode::RenegotiationUnsupported,
                        format!(
                            "media: {error}. Nothing changed: offer again with the extmap ids \
                             and payload types of the first negotiation, or start over with a \
                             new peer connection (media_start, then your own media_offer at once)"
                        ),
                    ),
                    _ => (ErrorCode::Internal, format!("media: {}", error.code())),
                };
                let message = ServerMessage::Error {
                    code,
                    message,
                    request_id,
                };
                self.send(conn, &message);
            }
            // An SFU offer made while the client's own offer was pending lost the glare: the
            // SFU dropped it and offers again after its answer, so the client never sees it.
            WorkerEvent::Media(MediaEvent::Offer { .. })
                if self.media.pending_offer.contains_key(&id) =>
            {
                debug!("dropping an SFU offer that crossed the client's offer");
            }
            _ => {
                if let Some(message) = crate::media::to_client(&event) {
                    if matches!(message, ServerMessage::SfuOffer { .. }) {
                        debug!(conn = conn.0, "sfu offer sent");
                    }
                    self.send(conn, &message);
                }
                if let WorkerEvent::Answer { .. } = event
                    && let Some(request_id) = self.answered_offer(&id)
                {
                    self.send(
                        conn,
                        &ServerMessage::Ack {
                            request_id,
                            seq: None,
                        },
                    );
                }
            }
        }
    }

    /// The SFU answered (or refused) the participant's oldest pending `media_offer`: its
    /// request id, if it had one.
    fn answered_offer(&mut self, id: &ParticipantId) -> Option<RequestId> {
        let queue = self.media.pending_offer.get_mut(id)?;
        let request_id = queue.pop_front().flatten();
        if queue.is_empty() {
            self.media.pending_offer.remove(id);
        }
        request_id
    }

    /// The SFU measured new network qualities: the changes go to every connection of the room
    /// in one `network_quality`. A report about a peer the room no longer has is stale.
    fn network_quality(
        &mut self,
        changes: Vec<(lectern_sfu::ParticipantId, lectern_sfu::NetworkQuality)>,
    ) {
        let mut participants = Vec::new();
        for (participant, quality) in changes {
            let id = ParticipantId::new(participant.as_str());
            if !self.media.peers.contains_key(&id) {
                continue;
            }
            let quality = match quality {
                lectern_sfu::NetworkQuality::Good => NetworkQuality::Good,
                lectern_sfu::NetworkQuality::Fair => NetworkQuality::Fair,
                lectern_sfu::NetworkQuality::Poor => NetworkQuality::Poor,
                lectern_sfu::NetworkQuality::Unknown => NetworkQuality::Unknown,
            };
            let before = if quality == NetworkQuality::Unknown {
                self.media.quality.remove(&id)
            } else {
                self.media.quality.insert(id.clone(), quality)
            };
            if before.unwrap_or(NetworkQuality::Unknown) != quality {
                participants.push(ParticipantQuality {
                    participant_id: id,
                    quality,
                });
            }
        }
        self.send_quality(participants);
    }

    /// Sends these quality changes to every connection of the room.
    fn send_quality(&mut self, participants: Vec<ParticipantQuality>) {
        if participants.is_empty() {
            return;
        }
        let to: Vec<ConnId> = self
            .room
            .roster()
            .iter()
            .filter_map(|p| self.room.conn_of(&p.id))
            .collect();
        self.outbox
            .send(to, &ServerMessage::NetworkQuality { participants });
    }

    /// Right after a welcome: the current network quality of everyone measured.
    pub(super) fn send_current_quality(&mut self, conn: ConnId) {
        if self.media.quality.is_empty() {
            return;
        }
        let mut participants: Vec<ParticipantQuality> = self
            .media
            .quality
            .iter()
            .map(|(id, quality)| ParticipantQuality {
                participant_id: id.clone(),
                quality: *quality,
            })
            .collect();
        participants.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        self.send(conn, &ServerMessage::NetworkQuality { participants });
    }

    /// The room changed what a participant may publish, or they left.
    pub(super) fn media_intent(&mut self, intent: MediaIntent) {
        match intent {
            MediaIntent::Publish {
                participant_id,
                audio,
                video,
            } => {
                debug!(participant.id = %participant_id, audio, video, "media intent: publish");
                if let Some(placement) = self.media.peers.get(&participant_id) {
                    let peer = crate::media::peer_id(&self.room_id, &participant_id);
                    let _ = placement
                        .handle()
                        .set_publish_permission(peer, audio, video);
                }
            }
            MediaIntent::Stop { participant_id } => {
                debug!(participant.id = %participant_id, "media intent: stop");
                self.drop_media_peer(&participant_id);
            }
        }
    }

    /// The workers the room's media peers are on (each once, in order).
    pub(super) fn media_workers(&self) -> Vec<usize> {
        let mut workers: Vec<usize> = self.media.peers.values().map(|p| p.worker()).collect();
        workers.sort_unstable();
        workers.dedup();
        workers
    }

    /// The participants with a media peer.
    pub(super) fn media_participants(&self) -> Vec<ParticipantId> {
        self.media.peers.keys().cloned().collect()
    }

    pub(super) fn drop_media_peer(&mut self, id: &ParticipantId) {
        self.media.pending_offer.remove(id);
        // Without a media session their quality is unknown again.
        if self.media.quality.remove(id).is_some() {
            self.send_quality(vec![ParticipantQuality {
                participant_id: id.clone(),
                quality: NetworkQuality::Unknown,
            }]);
        }
        if let Some(placement) = self.media.peers.remove(id) {
            let _ = placement
                .handle()
                .remove_peer(crate::media::peer_id(&self.room_id, id));
            // The room's last peer on that worker: it stops recording the room (a peer
            // placed there again records it again).
            let worker = placement.worker();
            drop(placement);
            if !self.media_workers().contains(&worker) {
                self.stop_recording_on_worker(worker);
            }
        }
    }
}
