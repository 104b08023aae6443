//! The WebSocket opening handshake (RFC 6455, section 4.2) over HTTP/1.1, done here rather than
//! with axum's `WebSocketUpgrade` so that the connection's two directions can go separate ways:
//!
//! - reading stays with tungstenite (a [`Socket`]: unmasking, reassembling fragments, limits);
//!   its own writes (the pongs and close replies it would send) go nowhere, and the reader asks
//!   the writer for them instead;
//! - writing is raw bytes ([`WriteSide`]): every message is framed once for all its recipients
//!   (`ws_frame`), and the connection's writer writes the shared frames as they are, all that is
//!   queued in one vectored write. A long message goes out as fragments of
//!   `websocket.send_fragment_bytes` each, which every WebSocket client reassembles.
//!
//! The upgraded connection is split in two with `tokio::io::split`.
//!
//! Only HTTP/1.1 upgrades are accepted (browsers and reverse proxies use them for `ws://` and
//! `wss://`); an HTTP/2 extended CONNECT gets 400.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::debug;

/// The reading side of an accepted WebSocket connection.
pub type Socket = WebSocketStream<ReadSide>;

/// The writing side of an accepted WebSocket connection: raw bytes, already framed.
pub type WriteSide = Pin<Box<dyn AsyncWrite + Send>>;

/// The connection's read half. Writes to it (tungstenite's automatic pongs and close replies)
/// are dropped: the writer sends those.
pub struct ReadSide {
    io: Pin<Box<dyn AsyncRead + Send>>,
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Split an upgraded connection into its read side and write side.
///
/// Not `TcpStream::into_split`: axum's server hands hyper the socket inside hyper-util's
/// private `Rewind`, so `Upgraded::downcast` cannot reach the `TcpStream`.
fn split(upgraded: hyper::upgrade::Upgraded) -> (ReadSide, WriteSide) {
    let (read, write) = tokio::io::split(TokioIo::new(upgraded));
    let read = ReadSide { io: Box::pin(read) };
    (read, Box::pin(write))
}

/// Why a request could not be upgraded, as the client is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    #[error("a WebSocket handshake is an HTTP/1.1 GET request")]
    NotGet,
    #[error("missing or wrong header `Connection: upgrade`")]
    Connection,
    #[error("missing or wrong header `Upgrade: websocket`")]
    Upgrade,
    #[error("this server speaks WebSocket version 13 (`Sec-WebSocket-Version: 13`)")]
    Version,
    #[error("missing or malformed header `Sec-WebSocket-Key`")]
    Key,
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for UpgradeError {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeError::Version => StatusCode::UPGRADE_REQUIRED,
            UpgradeError::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, format!("{self}\n")).into_response();
        if self == UpgradeError::Version {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// A request checked to be a WebSocket handshake, not yet answered.
pub struct Handshake {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Handshake {
    /// Check the handshake headers and take the connection's upgrade handle from `request`.
    pub fn check(request: &mut Request<Body>) -> Result<Handshake, UpgradeError> {
        if request.method() != Method::GET || request.version() != Version::HTTP_11 {
            return Err(UpgradeError::NotGet);
        }
        let headers = request.headers();
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(UpgradeError::Connection);
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return Err(UpgradeError::Upgrade);
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(UpgradeError::Version);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .map(HeaderValue::as_bytes)
            .filter(|k| valid_key(k))
            .ok_or(UpgradeError::Key)?;
        let accept =
            HeaderValue::from_str(&derive_accept_key(key)).map_err(|_| UpgradeError::Key)?;
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(UpgradeError::NotUpgradable)?;
        Ok(Handshake { accept, on_upgrade })
    }

    /// Answer `101 Switching Protocols` and run `serve` on the connection's read and write
    /// sides once the client has it. `config` is for reading (tungstenite never writes here).
    pub fn accept<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket, WriteSide) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Handshake { accept, on_upgrade } = self;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    debug!(error = %e, "WebSocket upgrade failed");
                    return;
                }
            };
            let (read, write) = split(upgraded);
            let socket = WebSocketStream::from_raw_socket(read, Role::Server, Some(config)).await;
            serve(socket, write).await;
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        response
    }
}

/// Whether a comma-separated header (e.g. `Connection: keep-alive, Upgrade`) lists `token`.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// A `Sec-WebSocket-Key` is 16 random bytes in base64: 24 characters ending in `==`.
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::builder().method(Method::GET).uri("/ws");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).expect("request")
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn each_missing_header_has_its_own_error() {
        // Without hyper's upgrade handle (no real connection) a good request gets this far.
        assert_eq!(
            Handshake::check(&mut request(&GOOD)).err(),
            Some(UpgradeError::NotUpgradable)
        );
        let cases = [
            (0, UpgradeError::Connection),
            (1, UpgradeError::Upgrade),
            (2, UpgradeError::Version),
            (3, UpgradeError::Key),
        ];
        for (skip, expected) in cases {
            let headers: Vec<_> = GOOD
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, h)| *h)
                .collect();
            assert_eq!(
                Handshake::check(&mut request(&headers)).err(),
                Some(expected)
            );
        }
        let mut post = request(&GOOD);
        *post.method_mut() = Method::POST;
        assert_eq!(
            Handshake::check(&mut post).err(),
            Some(UpgradeError::NotGet)
        );
    }

    #[test]
    fn keys_are_checked_and_answered_as_rfc_6455_says() {
        assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!valid_key(b"short=="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let mut old = request(&GOOD);
        old.headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let response = Handshake::check(&mut old)
            .err()
            .expect("refused")
            .into_response();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_VERSION], "13");
    }
}
