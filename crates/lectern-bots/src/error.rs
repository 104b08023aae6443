//! The bots' typed error.

/// What can go wrong while a bot joins, negotiates or runs.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The WebSocket could not be opened or broke.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server answered a request with an `error` message.
    #[error("the server refused {what}: {}", crate::bot::wire_name(.code))]
    Refused {
        what: &'static str,
        code: lectern_proto::ErrorCode,
    },
    /// The server sent a message the bot cannot decode.
    #[error("undecodable server message: {0}")]
    Decode(#[from] lectern_proto::DecodeError),
    /// The server sent something the bot cannot use (an SDP that does not apply).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The WebRTC stack (webrtc-rs) failed.
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// A step did not finish within its deadline.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The WebSocket closed (without a close frame) before the step finished.
    #[error("the connection closed")]
    Closed,
    /// The peer connection (ICE or DTLS) failed or was closed before it connected: webrtc-rs
    /// gave up, whatever became of the WebSocket.
    #[error("the peer connection failed")]
    PeerConnectionFailed,
    /// The server closed the WebSocket with this close frame (code 1005 when it had none).
    #[error("the server closed the connection (code {code}, reason {reason:?})")]
    ClosedWith { code: u16, reason: String },
}
