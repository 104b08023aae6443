//! `media --servers lectern,lectern-rec`: the same load with the class recorded. A staff
//! connection sends `recording_start` once the instructor publishes and holds the class
//! recorded for the run; the recordings folder's growth gives the disk write rate.

use std::path::Path;

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use lectern_proto::{
    ClientFrame, ClientMessage, PROTOCOL_VERSION, encode_client, peek_server_type, server_type,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A staff connection that started recording; dropping it leaves the recording running until
/// the server stops (the room keeps recording while the class is live).
pub struct Recording {
    _ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recording")
    }
}

/// Say hello with `token` (a staff member's) at `url`, then start recording and wait for the
/// server's `ack`.
pub async fn start(url: &str, token: String) -> anyhow::Result<Recording> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("WebSocket connect")?;
    let frames = [
        ClientFrame {
            request_id: None,
            message: ClientMessage::Hello {
                protocol_version: PROTOCOL_VERSION,
                token,
                last_seq: None,
                media_start: false,
            },
        },
        ClientFrame {
            request_id: Some(1),
            message: ClientMessage::RecordingStart,
        },
    ];
    for frame in &frames {
        ws.send(Message::text(encode_client(frame))).await?;
    }
    while let Some(frame) = ws.next().await {
        if let Message::Text(text) = frame.context("waiting for the recording's ack")? {
            match peek_server_type(text.as_str()) {
                Some(server_type::ACK) => return Ok(Recording { _ws: ws }),
                Some(server_type::ERROR | server_type::CLOSING) => {
                    bail!("recording refused: {}", text.as_str())
                }
                _ => {}
            }
        }
    }
    bail!("the connection ended before recording started")
}

/// Bytes of every file under `dir` (0 if it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
