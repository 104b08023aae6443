//! The server's side of the media plane: one `lectern-sfu` media worker, and the glue that
//! carries WebRTC signalling between room tasks and the worker.
//!
//! Room tasks send commands straight to the worker (its handle never blocks). The worker reports
//! answers, offers and failures on its own thread; a dispatcher task hands each one to the room
//! task of the participant it concerns, which sends it down that participant's connection.
//! A participant's peer is keyed by room and participant id, so the same `sub` in two rooms gets
//! two peers.

use std::sync::Arc;

use lectern_proto::{MediaKind, MediaTrack, ParticipantId, RoomId, ServerMessage};
use lectern_sfu::{MediaEvent, MediaWorker, WorkerConfig, WorkerEvent};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::config::Config;
use crate::rooms::RoomCommand;
use crate::server::Shared;

/// Separates the room from the participant in a peer key. Join tokens cannot contain control
/// characters (see `auth::check_claims`), so the split is unambiguous.
const SEPARATOR: char = '\u{1f}';

/// The SFU's id for this participant of this room.
pub fn peer_key(room: &RoomId, participant: &ParticipantId) -> lectern_sfu::ParticipantId {
    lectern_sfu::ParticipantId::from(format!("{room}{SEPARATOR}{participant}"))
}

/// The room and participant of a peer key.
pub fn split_key(key: &lectern_sfu::ParticipantId) -> Option<(RoomId, ParticipantId)> {
    let (room, participant) = key.as_str().split_once(SEPARATOR)?;
    Some((RoomId::new(room), ParticipantId::new(participant)))
}

/// Start the media worker. Its events arrive on the returned channel.
pub fn start(
    config: &Config,
) -> Result<(MediaWorker, mpsc::UnboundedReceiver<WorkerEvent>), lectern_sfu::SfuError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut worker_config = WorkerConfig::new(config.media_bind());
    worker_config.public_ips = config.media_public_ips();
    // The sink runs on the worker thread: hand the event over and return at once.
    let worker = MediaWorker::spawn(worker_config, move |event| {
        let _ = tx.send(event);
    })?;
    info!(media.addr = %worker.local_addr(), "media worker listening");
    Ok((worker, rx))
}

/// Route worker events to the room tasks of the participants they concern.
pub async fn dispatch(shared: Arc<Shared>, mut events: mpsc::UnboundedReceiver<WorkerEvent>) {
    while let Some(event) = events.recv().await {
        let key = match &event {
            WorkerEvent::Answer { participant, .. } | WorkerEvent::Failed { participant, .. } => {
                participant
            }
            WorkerEvent::Media(media) => match media {
                MediaEvent::Offer { participant, .. }
                | MediaEvent::Connected { participant }
                | MediaEvent::Disconnected { participant }
                | MediaEvent::TrackPublished { participant, .. }
                | MediaEvent::TrackUnpublished { participant, .. } => participant,
            },
        };
        let Some((room, _)) = split_key(key) else {
            continue;
        };
        match shared.registry.get(&room) {
            Some(tx) => {
                let _ = tx.send(RoomCommand::Media(event)).await;
            }
            None => debug!(room.id = %room, "media event for a room that is gone"),
        }
    }
}

/// The protocol message for a worker event addressed to a client, if any.
pub fn to_client(event: &WorkerEvent) -> Option<ServerMessage> {
    match event {
        WorkerEvent::Answer { sdp, .. } => Some(ServerMessage::SfuAnswer { sdp: sdp.clone() }),
        WorkerEvent::Media(MediaEvent::Offer { sdp, tracks, .. }) => {
            Some(ServerMessage::SfuOffer {
                sdp: sdp.clone(),
                tracks: tracks
                    .iter()
                    .filter_map(|t| {
                        let (_, participant_id) = split_key(&t.publisher)?;
                        Some(MediaTrack {
                            mid: t.mid.clone(),
                            participant_id,
                            kind: match t.kind {
                                lectern_sfu::MediaKind::Audio => MediaKind::Audio,
                                lectern_sfu::MediaKind::Video => MediaKind::Video,
                            },
                        })
                    })
                    .collect(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let key = peer_key(
            &RoomId::new("algebra.2026-09-01T10:00"),
            &ParticipantId::new("a b"),
        );
        let (room, who) = split_key(&key).expect("splits");
        assert_eq!(room.as_str(), "algebra.2026-09-01T10:00");
        assert_eq!(who.as_str(), "a b");
    }
}
