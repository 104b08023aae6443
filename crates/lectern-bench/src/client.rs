//! One simulated participant: a WebSocket that says hello, then sends chat when told to and
//! timestamps every chat delivery it receives.
//!
//! Receiving is the hot path (N deliveries per message), so frames are not JSON-parsed: the
//! receiver finds the `bench t=` marker in the raw text and reads the digits after it. Other
//! frames are told apart by their type alone ([`lectern_proto::peek_server_type`]: a full decode
//! of every `participant_joined` and every `welcome` snapshot while hundreds of clients join
//! would cost the tool measurable CPU); only a `closing` is decoded, for its reason. What the
//! client sends is built from `lectern-proto` types and encoded with its `encode_client`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use lectern_bots::Histogram;
use lectern_proto::{
    ChatTarget, ClientFrame, ClientMessage, PROTOCOL_VERSION, ServerMessage, decode_server,
    encode_client, peek_server_type, server_type,
};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The marker that starts a bench chat text: `bench t=<ns since the shared epoch> s=<sender>`.
const MARK: &str = "bench t=";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A chat frame that cannot be written for this long means the server stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// State shared by the orchestrator and every client.
#[derive(Debug)]
pub struct Shared {
    /// Time zero for the timestamps embedded in chat texts.
    pub epoch: Instant,
    /// The steady window, in ns since `epoch`; a message counts when it was *sent* in it.
    window_start_ns: AtomicU64,
    window_end_ns: AtomicU64,
    /// Messages sent within the window.
    pub sent_in_window: AtomicU64,
    /// Deliveries of in-window messages to participants other than the sender.
    pub delivered_to_others: AtomicU64,
    /// Deliveries of in-window messages back to their own sender.
    pub delivered_to_sender: AtomicU64,
    /// With [`Shared::with_live_latency`]: the latency of every delivery, in or out of the
    /// window, for a run that reads it while it goes on (`soak`).
    live_latency: Option<Mutex<Histogram>>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            window_start_ns: AtomicU64::new(u64::MAX),
            window_end_ns: AtomicU64::new(u64::MAX),
            sent_in_window: AtomicU64::new(0),
            delivered_to_others: AtomicU64::new(0),
            delivered_to_sender: AtomicU64::new(0),
            live_latency: None,
        }
    }

    /// Also record every delivery's latency in a histogram that [`Shared::live_latency`]
    /// copies out at any time.
    pub fn with_live_latency() -> Self {
        Self {
            live_latency: Some(Mutex::new(Histogram::default())),
            ..Self::new()
        }
    }

    /// A copy of the latencies (µs) of every delivery so far, with
    /// [`Shared::with_live_latency`].
    pub fn live_latency(&self) -> Option<Histogram> {
        let live = self.live_latency.as_ref()?;
        Some(live.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn set_window(&self, start_ns: u64, end_ns: u64) {
        self.window_start_ns.store(start_ns, Ordering::Relaxed);
        self.window_end_ns.store(end_ns, Ordering::Relaxed);
    }

    pub fn window_start_ns(&self) -> u64 {
        self.window_start_ns.load(Ordering::Relaxed)
    }

    fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.window_start_ns.load(Ordering::Relaxed)
            && t_ns < self.window_end_ns.load(Ordering::Relaxed)
    }
}

/// Who this client is and where it connects.
#[derive(Debug)]
pub struct ClientSpec {
    pub index: usize,
    pub url: String,
    pub token: String,
}

/// Why a client's connection ended before the run told it to stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Ended {
    /// The server sent `closing` with this reason (e.g. `slow_consumer`).
    Closing(String),
    /// The server closed the socket without a `closing` message; `code` is `None` for a close
    /// frame without one (labelled 1005, "no status received", as a browser reports it).
    Closed { code: Option<u16>, reason: String },
    /// The socket failed or ended without a close frame.
    Disconnected(String),
}

impl Ended {
    /// A short label to count ends by: `closing <reason>`, `close <code> [<reason>]`, or the
    /// error. The same words as `lectern_bots::Bot::signalling_ended`.
    pub fn label(&self) -> String {
        match self {
            Ended::Closing(reason) => format!("closing {reason}"),
            Ended::Closed {
                code: Some(code),
                reason,
            } if reason.is_empty() => format!("close {code}"),
            Ended::Closed {
                code: Some(code),
                reason,
            } => format!("close {code} {reason}"),
            Ended::Closed { code: None, .. } => "close 1005".to_owned(),
            Ended::Disconnected(why) => why.clone(),
        }
    }
}

/// What one client saw. Latencies are of in-window messages, in microseconds.
#[derive(Debug, Default)]
pub struct ClientReport {
    pub latencies_us: Vec<u32>,
    /// Send times (ns since the epoch) of the same deliveries, index for index.
    pub sent_at_ns: Vec<u64>,
    pub delivered_total: u64,
    pub delivered_in_window: u64,
    pub sent_total: u64,
    pub acks: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub ended: Option<Ended>,
}

/// Connect, say hello and wait for the welcome (holding a `connecting` permit meanwhile), report
/// the outcome on `welcomed`, then run until `stop`.
pub async fn run(
    spec: ClientSpec,
    shared: Arc<Shared>,
    connecting: Arc<Semaphore>,
    welcomed: mpsc::UnboundedSender<Result<usize, String>>,
    mut sends: mpsc::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) -> ClientReport {
    let permit = connecting.acquire_owned().await;
    let ws = match tokio::time::timeout(CONNECT_TIMEOUT, join(&spec)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            let _ = welcomed.send(Err(format!("client {}: {e:#}", spec.index)));
            return ClientReport::default();
        }
        Err(_) => {
            let _ = welcomed.send(Err(format!(
                "client {}: no welcome within {CONNECT_TIMEOUT:?}",
                spec.index
            )));
            return ClientReport::default();
        }
    };
    drop(permit);
    let _ = welcomed.send(Ok(spec.index));

    let (mut sink, mut stream) = ws.split();
    let mut report = ClientReport::default();
    let mut request_id: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    handle_text(text.as_str(), spec.index, &shared, &mut report);
                    if report.ended.is_some() {
                        return report;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    report.ended = Some(Ended::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                    return report;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    report.ended = Some(Ended::Disconnected(e.to_string()));
                    return report;
                }
                None => {
                    report.ended = Some(Ended::Disconnected("end of stream".to_owned()));
                    return report;
                }
            },
            Some(()) = sends.recv() => {
                request_id += 1;
                let t_ns = shared.now_ns();
                let frame = ClientFrame {
                    request_id: Some(request_id),
                    message: ClientMessage::ChatSend {
                        to: ChatTarget::Everyone,
                        text: format!("{MARK}{t_ns} s={}", spec.index),
                    },
                };
                let text = encode_client(&frame);
                match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::text(text))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        report.ended = Some(Ended::Disconnected(e.to_string()));
                        return report;
                    }
                    Err(_) => {
                        report.ended = Some(Ended::Disconnected("send timed out".to_owned()));
                        return report;
                    }
                }
                report.sent_total += 1;
                if shared.in_window(t_ns) {
                    shared.sent_in_window.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(None))).await;
    report
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(spec: &ClientSpec) -> anyhow::Result<Ws> {
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every socket
    // read: with one small frame per read that memset was a quarter of this tool's CPU.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE);
    // Nagle off: we measure latency, and chat frames are small.
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(spec.url.as_str(), Some(config), true)
            .await
            .context("WebSocket connect")?;
    let hello = ClientFrame {
        request_id: None,
        message: ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: spec.token.clone(),
            last_seq: None,
            media_start: false,
        },
    };
    ws.send(Message::text(encode_client(&hello)))
        .await
        .context("sending hello")?;
    while let Some(frame) = ws.next().await {
        match frame.context("waiting for welcome")? {
            Message::Text(text) => match peek_server_type(text.as_str()) {
                Some(server_type::WELCOME) => return Ok(ws),
                Some(server_type::ERROR | server_type::CLOSING) => {
                    bail!("refused: {}", text.as_str())
                }
                _ => {}
            },
            Message::Close(frame) => bail!("closed before welcome: {frame:?}"),
            _ => {}
        }
    }
    bail!("connection ended before welcome")
}

fn handle_text(text: &str, me: usize, shared: &Shared, report: &mut ClientReport) {
    if let Some((t_ns, sender)) = parse_bench_chat(text) {
        let now = shared.now_ns();
        report.delivered_total += 1;
        let latency_us = now.saturating_sub(t_ns) / 1_000;
        if let Some(live) = &shared.live_latency {
            live.lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(latency_us);
        }
        if shared.in_window(t_ns) {
            report.delivered_in_window += 1;
            report
                .latencies_us
                .push(u32::try_from(latency_us).unwrap_or(u32::MAX));
            report.sent_at_ns.push(t_ns);
            if sender == Some(me) {
                shared.delivered_to_sender.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.delivered_to_others.fetch_add(1, Ordering::Relaxed);
            }
        }
        return;
    }
    match peek_server_type(text) {
        Some(server_type::ACK) => report.acks += 1,
        Some(server_type::ERROR) => {
            report.errors += 1;
            if report.first_error.is_none() {
                report.first_error = Some(text.chars().take(300).collect());
            }
        }
        Some(server_type::CLOSING) => {
            let reason = match decode_server(text) {
                Ok(ServerMessage::Closing { reason, .. }) => wire_name(&reason),
                _ => "unknown".to_owned(),
            };
            report.ended = Some(Ended::Closing(reason));
        }
        _ => {}
    }
}

/// The wire name of a protocol value that is a plain string on the wire (a close reason).
fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".to_owned(),
    }
}

/// The send timestamp and sender index of a bench chat delivery, found without parsing JSON.
fn parse_bench_chat(text: &str) -> Option<(u64, Option<usize>)> {
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let t_ns = rest[..digits].parse().ok()?;
    let sender = rest[digits..].strip_prefix(" s=").and_then(|s| {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        s[..n].parse().ok()
    });
    Some((t_ns, sender))
}

#[cfg(test)]
mod tests {
    use lectern_proto::{ChatMessage, CloseReason, ParticipantId, Role, RoomEvent, encode_server};

    use super::*;

    /// A chat event as the server delivers it, with a bench text sent at `t_ns` by client 3.
    fn chat(t_ns: u64) -> String {
        encode_server(&ServerMessage::Event {
            seq: 12,
            at: 1_700_000_000_000,
            event: RoomEvent::Chat {
                message: ChatMessage {
                    seq: 12,
                    from: ParticipantId::new("bench-3"),
                    from_name: "Bench 3".into(),
                    from_role: Role::Student,
                    to: ChatTarget::Everyone,
                    text: format!("{MARK}{t_ns} s=3"),
                    sent_at: 1_700_000_000_000,
                },
            },
        })
    }

    fn ack() -> String {
        encode_server(&ServerMessage::Ack {
            request_id: 1,
            seq: None,
        })
    }

    fn closing(reason: CloseReason) -> String {
        encode_server(&ServerMessage::Closing {
            reason,
            message: "too slow".into(),
        })
    }

    #[test]
    fn reads_the_timestamp_and_sender_from_a_raw_chat_event() {
        assert_eq!(
            parse_bench_chat(&chat(123_456_789)),
            Some((123_456_789, Some(3)))
        );
        assert_eq!(parse_bench_chat("bench t=5"), Some((5, None)));
        assert_eq!(parse_bench_chat(&ack()), None);
    }

    #[test]
    fn counts_acks_and_errors_by_their_type() {
        let shared = Shared::new();
        let mut report = ClientReport::default();
        handle_text(&ack(), 7, &shared, &mut report);
        let error = encode_server(&ServerMessage::error(
            lectern_proto::ErrorCode::RateLimited,
            Some(2),
        ));
        handle_text(&error, 7, &shared, &mut report);
        assert_eq!((report.acks, report.errors), (1, 1));
        assert_eq!(report.first_error.as_deref(), Some(error.as_str()));
        assert_eq!(report.ended, None);
    }

    #[test]
    fn counts_in_window_deliveries_by_send_time() {
        let shared = Shared::new();
        shared.set_window(100_000_000, 200_000_000);
        let mut report = ClientReport::default();
        handle_text(&chat(123_456_789), 7, &shared, &mut report);
        assert_eq!(report.delivered_total, 1);
        assert_eq!(report.delivered_in_window, 1);
        assert_eq!(shared.delivered_to_others.load(Ordering::Relaxed), 1);
        handle_text(&chat(123_456_789), 3, &shared, &mut report);
        assert_eq!(shared.delivered_to_sender.load(Ordering::Relaxed), 1);
        handle_text(&chat(99), 7, &shared, &mut report);
        assert_eq!(report.delivered_total, 3);
        assert_eq!(report.delivered_in_window, 2);
        handle_text(&closing(CloseReason::SlowConsumer), 7, &shared, &mut report);
        assert_eq!(report.ended, Some(Ended::Closing("slow_consumer".into())));
        assert!(shared.live_latency().is_none());
    }

    #[test]
    fn live_latency_counts_every_delivery_whatever_the_window() {
        let shared = Shared::with_live_latency();
        shared.set_window(100_000_000, 200_000_000);
        let mut report = ClientReport::default();
        handle_text(&chat(123_456_789), 7, &shared, &mut report);
        handle_text(&chat(99), 7, &shared, &mut report);
        handle_text(&ack(), 7, &shared, &mut report);
        assert_eq!(shared.live_latency().map(|h| h.count()), Some(2));
        assert_eq!(report.delivered_in_window, 1);
    }

    #[test]
    fn labels_group_ends_by_code_and_reason() {
        let closed = |code, reason: &str| Ended::Closed {
            code,
            reason: reason.to_owned(),
        };
        assert_eq!(closed(Some(1000), "").label(), "close 1000");
        assert_eq!(
            closed(Some(1013), "slow_consumer").label(),
            "close 1013 slow_consumer"
        );
        assert_eq!(closed(None, "").label(), "close 1005");
        assert_eq!(
            Ended::Closing("replaced".into()).label(),
            "closing replaced"
        );
    }
}
