//! The plain HTTP endpoints: health, readiness, metrics, and the web client with its CSP.

use lectern_proto::Role;
use lectern_tests::{TestServer, metric_value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP/1.1 GET, so the tests need no HTTP client crate.
async fn get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(lectern_tests::DEADLINE, stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

#[tokio::test]
async fn health_readiness_metrics_and_client() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let (status, _, body) = get(s.addr, "/healthz").await?;
    assert_eq!((status, body.trim()), (200, "ok"));
    assert_eq!(get(s.addr, "/readyz").await?.0, 200);

    let _ada = s.join("r", "ada", Role::Student).await;
    let (status, _, body) = get(s.addr, "/metrics").await?;
    assert_eq!(status, 200);
    assert_eq!(metric_value(&body, "lectern_ws_connections"), 1);
    assert_eq!(metric_value(&body, "lectern_rooms"), 1);
    assert!(metric_value(&body, "lectern_messages_in_total") >= 1);
    assert!(body.contains("# TYPE lectern_slow_clients_dropped_total counter"));

    let (status, head, body) = get(s.addr, "/").await?;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    assert!(head.contains("content-security-policy: default-src 'self'; script-src 'self'"));
    assert!(!body.contains("<script>"), "inline script in the page");
    let (status, head, _) = get(s.addr, "/protocol.js").await?;
    assert_eq!(status, 200);
    assert!(head.contains("text/javascript"));
    assert_eq!(get(s.addr, "/nope").await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn keepalive_pings_live_clients_and_drops_silent_ones() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_WEBSOCKET_PING_INTERVAL_SECS", "1"),
        ("LECTERN_WEBSOCKET_IDLE_TIMEOUT_SECS", "3"),
    ])
    .await;
    let mut lively = s.join("r", "ada", Role::Student).await;
    let silent = s.join("r", "bob", Role::Student).await;
    // A client that reads (and so answers pings) outlives the idle timeout more than twice over.
    // The idle timeout is three ping intervals, so one pong delayed by a loaded CI machine (the
    // cause of an earlier flaky failure with a two-interval timeout) does not close it.
    // (At least one ping: the exact count depends on how busy the machine is.)
    let pings = lively.read_for(std::time::Duration::from_secs(7)).await?;
    assert!(pings >= 1, "no pings");
    assert!(!lively.closed);
    // One that never answers is closed by the server.
    lectern_tests::wait_until("the silent client to be dropped", || async {
        s.metric("lectern_ws_connections").await == 1
    })
    .await?;
    drop(silent);
    Ok(())
}
