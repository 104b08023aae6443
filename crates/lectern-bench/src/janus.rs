//! The reference server for `lectern-bench media --servers lectern,janus`: Janus (Debian's
//! `janus` package) with only its VideoRoom plugin and WebSocket transport, started as a child
//! process from a config folder written into a temp dir, and the Janus signalling the bots use
//! (session, handle, `join`/`publish` for the publisher, `join` as subscriber and `start` for
//! each student, keepalives).
//!
//! The bots' media side is `lectern-bots` ([`Bot::publish_offer`], [`Bot::subscribe_to_offer`]):
//! only the signalling differs from a Lectern run. SDPs carry the candidates (no trickle).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use lectern_bots::{Bot, PublishOptions};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// How long Janus may take to answer on its WebSocket after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one Janus request may take to be answered (including its asynchronous event).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Below Janus's default 60 s session timeout.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);
const PLUGINS_DIR: &str = "/usr/lib/x86_64-linux-gnu/janus/plugins";
const TRANSPORTS_DIR: &str = "/usr/lib/x86_64-linux-gnu/janus/transports";
/// The Debian package's binary.
pub const DEFAULT_BIN: &str = "/usr/bin/janus";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Janus process this tool started. Killed on drop (`kill_on_drop`), so an error or a panic
/// still stops it.
#[derive(Debug)]
pub struct Janus {
    child: Child,
    ip: Ipv4Addr,
    port: u16,
    pid: u32,
    /// Holds the config folder and Janus's log; removed when dropped (after the kill).
    dir: tempfile::TempDir,
}

impl Janus {
    /// Write a minimal config folder, start `bin -F <folder>` and wait until its WebSocket
    /// transport answers an `info` request.
    /// `debug_level`: Janus's log level (3 = warnings; 5 and up for ICE/DTLS details).
    /// `ip`: the only address Janus gathers ICE candidates on (see [`media_ip`]).
    /// `event_loops`: Janus's `event_loops` (`general` section): `Some(n)` runs every handle on
    /// a pool of `n` loops, as Janus's docs advise for many handles; `None` keeps its default,
    /// a thread per handle.
    pub async fn spawn(
        bin: &Path,
        debug_level: u8,
        ip: Ipv4Addr,
        event_loops: Option<u16>,
    ) -> anyhow::Result<Janus> {
        let dir = tempfile::Builder::new()
            .prefix("lectern-bench-janus-")
            .tempdir()
            .context("creating a temp dir for janus")?;
        let port = free_port()?;
        write_configs(dir.path(), port, debug_level, ip, event_loops)?;
        let log_path = dir.path().join("janus.log");
        let log = std::fs::File::create(&log_path).context("creating the janus log")?;
        let log2 = log.try_clone()?;
        let mut child = Command::new(bin)
            .arg("-F")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (install it with `apt-get install janus`)",
                    bin.display()
                )
            })?;
        let pid = child.id().context("janus exited at once")?;
        let url = format!("ws://127.0.0.1:{port}/");
        let end = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "janus exited ({status}) while starting; its log:\n{}",
                    tail(&log_path)
                );
            }
            let attempt = tokio::time::timeout(Duration::from_secs(2), async {
                let mut c = Conn::connect(&url).await?;
                c.call(json!({"janus": "info"})).await
            })
            .await;
            if let Ok(Ok(_)) = attempt {
                break;
            }
            if Instant::now() > end {
                let _ = child.start_kill();
                let _ = child.wait().await;
                bail!(
                    "janus did not answer on {url} within {START_TIMEOUT:?}; its log:\n{}",
                    tail(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Janus {
            child,
            ip,
            port,
            pid,
            dir,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// The address Janus's ICE uses, for the bots to bind to.
    pub fn media_ip(&self) -> Ipv4Addr {
        self.ip
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines of Janus's log (for an error report).
    pub fn log_tail(&self) -> String {
        tail(&self.dir.path().join("janus.log"))
    }

    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!(
                "janus exited ({status}); its log:\n{}",
                tail(&self.dir.path().join("janus.log"))
            );
        }
        Ok(())
    }

    pub async fn shutdown(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// This host's IPv4 source address towards its default route (no packet is sent: a UDP
/// `connect` only picks the route). Janus skips loopback interfaces when it gathers ICE
/// candidates, so its media and its bots use this address; datagrams between two local
/// addresses still go through the kernel's loopback path.
pub fn media_ip() -> anyhow::Result<Ipv4Addr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").context("binding a probe socket")?;
    // TEST-NET-2 (RFC 5737): never answered, only routed.
    s.connect("198.51.100.1:9")
        .context("this host has no IPv4 route to pick janus's address from; pass --janus-ip")?;
    match s.local_addr()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Ok(ip),
        other => bail!("the probe picked {other}, not a usable address for janus; pass --janus-ip"),
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Janus's main config, the VideoRoom's (no rooms: the bench creates one) and the WebSocket
/// transport's (plain `ws` on 127.0.0.1:`port`). Every other plugin and transport is disabled.
fn write_configs(
    dir: &Path,
    port: u16,
    debug_level: u8,
    ip: Ipv4Addr,
    event_loops: Option<u16>,
) -> anyhow::Result<()> {
    let disabled_plugins = list_disabled(PLUGINS_DIR, "libjanus_videoroom.so")?;
    let disabled_transports = list_disabled(TRANSPORTS_DIR, "libjanus_websockets.so")?;
    let event_loops = match event_loops {
        Some(n) => format!("\tevent_loops = {n}\n"),
        None => String::new(),
    };
    let main = format!(
        "general: {{\n\
         \tconfigs_folder = \"{configs}\"\n\
         \tplugins_folder = \"{PLUGINS_DIR}\"\n\
         \ttransports_folder = \"{TRANSPORTS_DIR}\"\n\
         \tdebug_level = {debug_level}\n\
         \tsession_timeout = 60\n\
         {event_loops}\
         }}\n\
         media: {{\n}}\n\
         nat: {{\n\
         \tnice_debug = false\n\
         \tice_enforce_list = \"{ip}\"\n\
         }}\n\
         plugins: {{\n\tdisable = \"{disabled_plugins}\"\n}}\n\
         transports: {{\n\tdisable = \"{disabled_transports}\"\n}}\n\
         loggers: {{\n\tdisable = \"libjanus_jsonlog.so\"\n}}\n\
         events: {{\n\tbroadcast = false\n}}\n",
        configs = dir.display(),
    );
    let videoroom = "general: {\n}\n";
    let websockets = format!(
        "general: {{\n\
         \tjson = \"compact\"\n\
         \tws = true\n\
         \tws_port = {port}\n\
         \tws_ip = \"127.0.0.1\"\n\
         \twss = false\n\
         }}\n\
         admin: {{\n\tadmin_ws = false\n\tadmin_wss = false\n}}\n"
    );
    for (name, text) in [
        ("janus.jcfg", main.as_str()),
        ("janus.plugin.videoroom.jcfg", videoroom),
        ("janus.transport.websockets.jcfg", websockets.as_str()),
    ] {
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

/// The `.so` files in `folder` other than `keep`, comma-separated (Janus's `disable` list).
fn list_disabled(folder: &str, keep: &str) -> anyhow::Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {folder} (is the janus package installed?)"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so") && n != keep)
        .collect();
    if !PathBuf::from(folder).join(keep).exists() {
        bail!("{folder}/{keep} is missing (is the janus package installed?)");
    }
    names.sort();
    Ok(names.join(","))
}

static TRANSACTIONS: AtomicU64 = AtomicU64::new(1);

/// One WebSocket to Janus speaking its JSON API.
struct Conn {
    ws: Ws,
    session: Option<u64>,
    handle: Option<u64>,
}

impl Conn {
    async fn connect(url: &str) -> anyhow::Result<Conn> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "janus-protocol".parse().expect("a valid header value"),
        );
        let (ws, _) =
            tokio::time::timeout(REQUEST_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .with_context(|| {
                    format!("janus did not accept a WebSocket within {REQUEST_TIMEOUT:?}")
                })?
                .with_context(|| format!("connecting to janus at {url}"))?;
        Ok(Conn {
            ws,
            session: None,
            handle: None,
        })
    }

    /// Send `msg` (with a fresh transaction and this connection's session and handle) and
    /// return the reply for it, skipping `ack`s and unrelated events. A Janus `error` or a
    /// plugin error becomes an error.
    async fn call(&mut self, mut msg: Value) -> anyhow::Result<Value> {
        let tx = format!("t{}", TRANSACTIONS.fetch_add(1, Ordering::Relaxed));
        msg["transaction"] = json!(tx);
        if let Some(s) = self.session {
            msg["session_id"] = json!(s);
        }
        if let Some(h) = self.handle {
            msg["handle_id"] = json!(h);
        }
        let what = msg["janus"].as_str().unwrap_or("?").to_owned();
        let reply = tokio::time::timeout(REQUEST_TIMEOUT, async {
            self.ws
                .send(Message::text(msg.to_string()))
                .await
                .with_context(|| format!("sending `{what}` to janus"))?;
            loop {
                let m = next_json(&mut self.ws).await?;
                if m["transaction"].as_str() != Some(tx.as_str()) {
                    continue;
                }
                match m["janus"].as_str() {
                    Some("ack") => continue,
                    Some("error") => bail!(
                        "janus refused `{what}`: {} {}",
                        m["error"]["code"],
                        m["error"]["reason"]
                    ),
                    Some(_) => return Ok(m),
                    None => bail!("a janus reply without a `janus` field: {m}"),
                }
            }
        })
        .await
        .with_context(|| format!("janus did not answer `{what}` within {REQUEST_TIMEOUT:?}"))??;
        let data = &reply["plugindata"]["data"];
        if let Some(code) = data.get("error_code") {
            bail!("the videoroom refused `{what}`: {code} {}", data["error"]);
        }
        Ok(reply)
    }

    /// `create` a session and `attach` the VideoRoom plugin.
    async fn attach(url: &str) -> anyhow::Result<Conn> {
        let mut c = Conn::connect(url).await?;
        let r = c.call(json!({"janus": "create"})).await?;
        c.session = Some(
            r["data"]["id"]
                .as_u64()
                .with_context(|| format!("no session id in janus's reply: {r}"))?,
        );
        let r = c
            .call(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}))
            .await?;
        c.handle = Some(
            r["data"]["id"]
                .as_u64()
                .with_context(|| format!("no handle id in janus's reply: {r}"))?,
        );
        Ok(c)
    }

    /// A VideoRoom request with an optional JSEP; returns the reply's plugin data and JSEP SDP.
    async fn message(
        &mut self,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<(Value, Option<String>)> {
        let mut msg = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let r = self.call(msg).await?;
        let sdp = r["jsep"]["sdp"].as_str().map(str::to_owned);
        Ok((r["plugindata"]["data"].clone(), sdp))
    }

    /// Keep the session alive until the socket closes (Janus killed): a task that sends a
    /// keepalive every [`KEEPALIVE_EVERY`] and reads (and drops) whatever Janus sends.
    fn keep_alive(self) {
        let Conn {
            mut ws, session, ..
        } = self;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEEPALIVE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let tx = format!("k{}", TRANSACTIONS.fetch_add(1, Ordering::Relaxed));
                        let m = json!({"janus": "keepalive", "session_id": session, "transaction": tx});
                        if ws.send(Message::text(m.to_string())).await.is_err() {
                            return;
                        }
                    }
                    m = next_json(&mut ws) => if m.is_err() { return },
                }
            }
        });
    }
}

async fn next_json(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => bail!("janus closed the WebSocket"),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .with_context(|| format!("janus sent something other than JSON: {t}"));
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Create a room for one VP8 + Opus publisher, join it as publisher and publish. Returns the
/// publishing bot, the room and the publisher's feed id.
pub async fn publish(
    url: &str,
    ip: Ipv4Addr,
    publish: PublishOptions,
) -> anyhow::Result<(Bot, u64, u64)> {
    let mut c = Conn::attach(url).await?;
    let (data, _) = c
        .message(
            json!({
                "request": "create",
                "publishers": 1,
                "videocodec": "vp8",
                "audiocodec": "opus",
                "bitrate": publish.video_bitrate + 200_000,
                "notify_joining": false,
            }),
            None,
        )
        .await
        .context("creating the janus room")?;
    let room = data["room"]
        .as_u64()
        .with_context(|| format!("no room id in janus's `created`: {data}"))?;
    let (data, _) = c
        .message(
            json!({"request": "join", "ptype": "publisher", "room": room, "display": "teacher"}),
            None,
        )
        .await
        .context("joining the janus room as publisher")?;
    let feed = data["id"]
        .as_u64()
        .with_context(|| format!("no publisher id in janus's `joined`: {data}"))?;
    let (pending, offer) = Bot::publish_offer(ip.into(), publish)
        .await
        .context("the publisher's offer")?;
    let (_, answer) = c
        .message(
            json!({"request": "publish"}),
            Some(json!({"type": "offer", "sdp": offer, "trickle": false})),
        )
        .await
        .context("publishing to janus")?;
    let answer = answer.context("janus's reply to `publish` has no SDP answer")?;
    let bot = pending
        .start(answer)
        .await
        .context("applying janus's answer")?;
    c.keep_alive();
    Ok((bot, room, feed))
}

/// Join `room` as a subscriber to `feed`, answer Janus's offer and `start`.
pub async fn subscribe(url: &str, ip: Ipv4Addr, room: u64, feed: u64) -> anyhow::Result<Bot> {
    let mut c = Conn::attach(url).await?;
    let (_, offer) = c
        .message(
            json!({"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": feed}]}),
            None,
        )
        .await
        .context("joining the janus room as subscriber")?;
    let offer = offer.context("janus's reply to the subscriber's `join` has no SDP offer")?;
    let (bot, answer) = Bot::subscribe_to_offer(ip.into(), offer)
        .await
        .context("answering janus's offer")?;
    c.message(
        json!({"request": "start", "room": room}),
        Some(json!({"type": "answer", "sdp": answer, "trickle": false})),
    )
    .await
    .context("`start` on janus")?;
    c.keep_alive();
    Ok(bot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_keep_only_the_videoroom_and_websockets() {
        if !Path::new(PLUGINS_DIR)
            .join("libjanus_videoroom.so")
            .exists()
        {
            return; // janus is not installed here
        }
        let dir = tempfile::tempdir().unwrap();
        write_configs(dir.path(), 12345, 3, Ipv4Addr::new(192, 0, 2, 2), Some(2)).unwrap();
        let main = std::fs::read_to_string(dir.path().join("janus.jcfg")).unwrap();
        assert!(main.contains("nice_debug = false"));
        let general = &main[..main.find("media:").unwrap()];
        assert!(general.contains("\tevent_loops = 2\n"), "{general}");
        assert!(!main.contains("libjanus_videoroom.so"));
        assert!(!main.contains("libjanus_websockets.so\""));
        let ws =
            std::fs::read_to_string(dir.path().join("janus.transport.websockets.jcfg")).unwrap();
        assert!(ws.contains("ws_port = 12345") && ws.contains("127.0.0.1"));

        write_configs(dir.path(), 12345, 3, Ipv4Addr::new(192, 0, 2, 2), None).unwrap();
        let main = std::fs::read_to_string(dir.path().join("janus.jcfg")).unwrap();
        assert!(!main.contains("event_loops"), "{main}");
    }
}
