//! Lectern's signalling over the WebSocket: the join (with redirects) and the session that
//! answers the SFU's offers and trickles candidates.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use lectern_proto::{
    ClientFrame, ClientMessage, DecodeError, PROTOCOL_VERSION, RequestId, ServerMessage,
    decode_server, encode_client,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use super::{BotOptions, OfferedTrack, Shared, Ws, lock};
use crate::BotError;

/// Send one client message.
pub(super) async fn send(
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
pub(super) async fn join(
    options: &BotOptions,
) -> Result<(Ws, String, VecDeque<ServerMessage>, String), BotError> {
    let mut url = options.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let hello = ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: options.token.clone(),
            last_seq: None,
            media_start: false,
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
pub(super) async fn next_message(ws: &mut Ws) -> Result<ServerMessage, BotError> {
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
pub(super) async fn signalling(
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

pub(super) async fn handle_message(
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

#[cfg(test)]
mod signalling_tests {
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    use lectern_proto::{CloseReason, ParticipantId, Role, decode_client, encode_server};

    use super::*;
    use crate::bot::Bot;

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
