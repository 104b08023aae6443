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

/// The binary embeds the client file by file: a new module in web-client/ that is not added to
/// the server's list would load in no browser (the page's imports would 404).
#[tokio::test]
async fn every_web_client_file_is_served_as_on_disk() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-client");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("html") => "text/html",
            _ => continue, // package.json, tsconfig.json, node_modules/: not part of the page
        };
        let (status, head, body) = get(s.addr, &format!("/{name}")).await?;
        assert_eq!(status, 200, "/{name} is not served");
        assert!(
            head.contains(&format!("content-type: {content_type}")),
            "/{name}: {head}"
        );
        assert!(
            body == std::fs::read_to_string(&path)?,
            "/{name} differs from web-client/{name}"
        );
        checked.push(name.to_owned());
    }
    assert!(
        ["index.html", "app.js", "protocol.js"]
            .iter()
            .all(|f| checked.iter().any(|c| c == f)),
        "web-client/ not found at {}: {checked:?}",
        dir.display()
    );
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

#[tokio::test]
async fn a_listener_in_a_busy_class_is_pinged_and_kept() -> anyhow::Result<()> {
    // A student who never types, while the instructor chats several times per ping interval:
    // the server must still ping them (pings are not put off by outbound traffic), so their
    // pongs keep the connection alive past the idle timeout.
    let s = TestServer::start_with(&[
        ("LECTERN_WEBSOCKET_PING_INTERVAL_SECS", "1"),
        ("LECTERN_WEBSOCKET_IDLE_TIMEOUT_SECS", "3"),
        ("LECTERN_ROOM_AUTO_START", "true"),
    ])
    .await;
    let mut teacher = s.join("r", "tina", Role::Instructor).await;
    let mut listener = s.join("r", "lena", Role::Student).await;
    let chatter = tokio::spawn(async move {
        let end = tokio::time::Instant::now() + std::time::Duration::from_secs(8);
        let mut n = 0;
        while tokio::time::Instant::now() < end {
            n += 1;
            teacher
                .send(&serde_json::json!({"type": "chat_send", "text": format!("point {n}")}))
                .await?;
            // The teacher reads too (answering pings), as a browser would.
            teacher
                .read_for(std::time::Duration::from_millis(250))
                .await?;
        }
        anyhow::Ok(teacher)
    });
    let pings = listener.read_for(std::time::Duration::from_secs(8)).await?;
    let teacher = chatter.await??;
    assert!(!listener.closed, "the listener was cut off");
    assert!(pings >= 2, "only {pings} pings in 8 s of a busy class");
    assert!(
        listener.chat_texts().len() >= 10,
        "{:?}",
        listener.chat_texts()
    );
    teacher.close().await;
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_soon() -> anyhow::Result<()> {
    // A client that keeps sending (its library's own keepalive Pings) but never reads: its
    // connection looks alive to the reader, and the server's writes pile up in socket buffers.
    // It must be dropped after a bounded time (an unanswered Ping, or a write that cannot
    // complete), not when megabytes of buffers have filled.
    let s = TestServer::start_with(&[
        ("LECTERN_WEBSOCKET_PING_INTERVAL_SECS", "1"),
        ("LECTERN_WEBSOCKET_IDLE_TIMEOUT_SECS", "60"),
        ("LECTERN_WEBSOCKET_WRITE_TIMEOUT_SECS", "2"),
        ("LECTERN_ROOM_AUTO_START", "true"),
    ])
    .await;
    let mut teacher = s.join("r", "tina", Role::Instructor).await;
    let mut stalled = s.join("r", "stan", Role::Student).await;
    let pinger = tokio::spawn(async move {
        for _ in 0..40 {
            if stalled
                .send_raw(tokio_tungstenite::tungstenite::Message::Ping(
                    Default::default(),
                ))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
    let chatter = async {
        for n in 0..20 {
            teacher
                .send(&serde_json::json!({"type": "chat_send", "text": format!("point {n}")}))
                .await?;
            teacher
                .read_for(std::time::Duration::from_millis(300))
                .await?;
        }
        anyhow::Ok(())
    };
    let dropped = async {
        lectern_tests::wait_until("the stalled client to be dropped", || async {
            s.metric("lectern_slow_clients_dropped_total").await == 1
        })
        .await
    };
    let (chat, dropped) = tokio::join!(chatter, dropped);
    chat?;
    dropped?;
    lectern_tests::wait_until("only the teacher to be connected", || async {
        s.metric("lectern_ws_connections").await == 1
    })
    .await?;
    pinger.abort();
    Ok(())
}

/// One node drains too: `/readyz` says so, rooms still open (there is nowhere else to send a
/// class), and the node is drained once its last room has closed.
#[tokio::test]
async fn a_single_node_drains_when_its_rooms_have_closed() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_IDLE_CLOSE_SECS", "1"),
        ("LECTERN_ROOM_GRACE_SECS", "1"),
    ])
    .await;
    let ada = s.join("r", "ada", Role::Student).await;
    s.server.drain();
    let (status, _, body) = get(s.addr, "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    assert_eq!(s.metric("lectern_cluster_draining").await, 1);
    let bo = s.join("other-room", "bo", Role::Student).await;
    ada.close().await;
    bo.close().await;
    tokio::time::timeout(lectern_tests::DEADLINE, s.server.drained()).await?;
    assert_eq!(s.metric("lectern_rooms").await, 0);
    Ok(())
}
