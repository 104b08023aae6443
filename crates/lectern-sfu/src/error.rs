use crate::PeerId;

/// Why an SFU call was refused. Internals (str0m's error) are carried as text: the caller logs
/// it once and tells the client a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfuError {
    #[error("{0} has no peer on this media worker")]
    UnknownParticipant(PeerId),
    #[error("{0} already has a peer on this media worker")]
    DuplicateParticipant(PeerId),
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// A later offer numbers header extensions or payload types otherwise than the first
    /// negotiation of each; the SFU cannot follow (the text says what moved).
    #[error("the offer renumbers what was negotiated before: {0}")]
    RenegotiationUnsupported(String),
    #[error("no offer from the SFU is waiting for an answer")]
    NoPendingOffer,
    #[error("no video with mid {0:?} is sent to this participant")]
    UnknownMid(String),
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    #[error("invalid media configuration: {0}")]
    Config(String),
    #[error("the media worker has stopped")]
    WorkerGone,
}

impl SfuError {
    /// A stable, short code for clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SfuError::UnknownParticipant(_) => "unknown_participant",
            SfuError::DuplicateParticipant(_) => "duplicate_participant",
            SfuError::InvalidSdp(_) => "invalid_sdp",
            SfuError::Negotiation(_) => "negotiation_failed",
            SfuError::RenegotiationUnsupported(_) => "renegotiation_unsupported",
            SfuError::NoPendingOffer => "no_pending_offer",
            SfuError::UnknownMid(_) => "unknown_mid",
            SfuError::InvalidCandidate(_) => "invalid_candidate",
            SfuError::Config(_) => "config",
            SfuError::WorkerGone => "worker_gone",
        }
    }
}
