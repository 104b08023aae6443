//! Support for Lectern's integration tests: a real server on `127.0.0.1:0` with its own SQLite
//! file, and real WebSocket clients that speak the protocol. Waits have deadlines; nothing
//! sleeps blindly.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use lectern_proto::Role;
use lectern_server::Server;
use lectern_server::config::Config;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The HS256 secret every test server uses, so tests can also forge tokens by hand.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Settings for a test server: loopback, any port, a SQLite file in `dir`, no demo.
pub fn test_config(dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = vec![
        ("LECTERN_SERVER_LISTEN".into(), "127.0.0.1:0".into()),
        ("LECTERN_SERVER_DATA_DIR".into(), dir.display().to_string()),
        ("LECTERN_AUTH_HS256_SECRET".into(), SECRET.into()),
        ("LECTERN_DEMO_ENABLED".into(), "false".into()),
        ("LECTERN_SERVER_SHUTDOWN_TIMEOUT_SECS".into(), "5".into()),
    ];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Config::from_layers(None, vars).expect("valid test config")
}

/// A server running in this process.
#[derive(Debug)]
pub struct TestServer {
    pub server: Server,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    /// Start with extra `LECTERN_*` settings.
    pub async fn start_with(extra: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(test_config(dir.path(), extra))
            .await
            .expect("server starts");
        let addr = server.local_addr();
        TestServer { server, addr, dir }
    }

    pub fn token(&self, room: &str, sub: &str, name: &str, role: Role) -> String {
        self.server
            .mint_token(room, sub, name, role, 3600)
            .expect("mint")
    }

    /// Connect and complete the hello; panics unless welcomed.
    pub async fn join(&self, room: &str, sub: &str, role: Role) -> Client {
        let token = self.token(room, sub, &display_name(sub), role);
        let mut client = Client::connect(self.addr, None).await.expect("connect");
        client.hello(&token, None).await.expect("welcome");
        client
    }

    pub async fn metric(&self, name: &str) -> u64 {
        metric_value(&self.server.metrics_text(), name)
    }
}

/// A readable display name for a test participant id.
pub fn display_name(sub: &str) -> String {
    format!("Name of {sub}")
}

/// Read one counter or gauge from Prometheus text.
pub fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// A protocol client over a real WebSocket. Every message received is kept in `received`.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub received: Vec<Value>,
    /// Which of `received` a `wait_for` has already returned.
    taken: Vec<bool>,
    next_request_id: u64,
    pub welcome: Value,
    pub closed: bool,
    /// The code of the server's close frame, once one arrived (none when the socket just ended).
    pub close_code: Option<u16>,
}

impl Client {
    /// Open `/ws` (with `?room=` when given), without sending anything.
    pub async fn connect(addr: SocketAddr, room: Option<&str>) -> anyhow::Result<Client> {
        let url = match room {
            Some(r) => format!("ws://{addr}/ws?room={r}"),
            None => format!("ws://{addr}/ws"),
        };
        Self::connect_url(&url).await
    }

    /// Open this WebSocket URL (e.g. a `redirect`'s), without sending anything.
    pub async fn connect_url(url: &str) -> anyhow::Result<Client> {
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .context("connect timed out")??;
        Ok(Client {
            ws,
            received: Vec::new(),
            taken: Vec::new(),
            next_request_id: 1,
            welcome: Value::Null,
            closed: false,
            close_code: None,
        })
    }

    /// Send a hello and wait for the welcome (or fail with the error received).
    pub async fn hello(&mut self, token: &str, last_seq: Option<u64>) -> anyhow::Result<Value> {
        let mut hello = json!({"type": "hello", "protocol_version": 1, "token": token});
        if let Some(s) = last_seq {
            hello["last_seq"] = json!(s);
        }
        self.send(&hello).await?;
        let reply = self
            .wait_for(|m| m["type"] == "welcome" || m["type"] == "error")
            .await?;
        if reply["type"] == "error" {
            bail!("refused: {}", reply);
        }
        self.welcome = reply.clone();
        Ok(reply)
    }

    pub async fn send(&mut self, value: &Value) -> anyhow::Result<()> {
        self.send_text(value.to_string()).await
    }

    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, message: Message) -> anyhow::Result<()> {
        self.ws.send(message).await?;
        Ok(())
    }

    /// Send a request with a fresh request id and wait for its ack or error (or the
    /// `chat_page` or `attendance` that answers it instead).
    pub async fn request(&mut self, mut value: Value) -> anyhow::Result<Value> {
        let id = self.next_request_id;
        self.next_request_id += 1;
        value["request_id"] = json!(id);
        self.send(&value).await?;
        self.wait_for(|m| {
            (m["type"] == "ack"
                || m["type"] == "error"
                || m["type"] == "chat_page"
                || m["type"] == "attendance")
                && m["request_id"] == json!(id)
        })
        .await
    }

    /// Like [`Client::request`], but fails unless acknowledged.
    pub async fn ok(&mut self, value: Value) -> anyhow::Result<Value> {
        let reply = self.request(value.clone()).await?;
        if reply["type"] != "ack" {
            bail!("{value} refused: {reply}");
        }
        Ok(reply)
    }

    /// Receive one message (or `None` when the connection closed).
    async fn recv_one(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            let next = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .map_err(|_| anyhow!("nothing received within {DEADLINE:?}"))?;
            match next {
                Some(Ok(Message::Close(frame))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    self.closed = true;
                    return Ok(None);
                }
                None | Some(Err(_)) => {
                    self.closed = true;
                    return Ok(None);
                }
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    self.received.push(v.clone());
                    self.taken.push(false);
                    return Ok(Some(v));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The oldest received message that matches and that no earlier `wait_for` returned,
    /// waiting up to [`DEADLINE`] for it. Messages that do not match stay available.
    pub async fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let mut checked = 0;
        loop {
            while checked < self.received.len() {
                if !self.taken[checked] && pred(&self.received[checked]) {
                    self.taken[checked] = true;
                    return Ok(self.received[checked].clone());
                }
                checked += 1;
            }
            if self.closed || self.recv_one().await?.is_none() {
                bail!("connection closed; received: {:?}", self.received);
            }
        }
    }

    /// Wait for a sequenced event of this kind.
    pub async fn wait_event(&mut self, kind: &str) -> anyhow::Result<Value> {
        self.wait_for(|m| m["type"] == "event" && m["event"]["kind"] == kind)
            .await
    }

    /// Keep reading (and so answering pings) for `period`; returns how many pings arrived.
    pub async fn read_for(&mut self, period: Duration) -> anyhow::Result<usize> {
        let end = tokio::time::Instant::now() + period;
        let mut pings = 0;
        while !self.closed {
            let next = match tokio::time::timeout_at(end, self.ws.next()).await {
                Err(_) => break,
                Ok(next) => next,
            };
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => self.closed = true,
                Some(Ok(Message::Ping(_))) => {
                    pings += 1;
                    // tungstenite queues the pong; flush it now, as a browser would answer.
                    self.ws.flush().await?;
                }
                Some(Ok(Message::Text(t))) => {
                    self.received.push(serde_json::from_str(&t)?);
                    self.taken.push(false);
                }
                Some(Ok(_)) => {}
            }
        }
        Ok(pings)
    }

    /// Read until the server closes the connection; returns everything received on the way.
    pub async fn wait_closed(&mut self) -> anyhow::Result<()> {
        while !self.closed {
            self.recv_one().await?;
        }
        Ok(())
    }

    /// Chat texts received as events, in order.
    pub fn chat_texts(&self) -> Vec<String> {
        self.received
            .iter()
            .filter(|m| m["type"] == "event" && m["event"]["kind"] == "chat")
            .filter_map(|m| m["event"]["message"]["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The highest event sequence number received so far.
    pub fn last_seq(&self) -> u64 {
        let from_events = self
            .received
            .iter()
            .filter(|m| m["type"] == "event")
            .filter_map(|m| m["seq"].as_u64())
            .max()
            .unwrap_or(0);
        let from_snapshots = self
            .received
            .iter()
            .filter_map(|m| match m["type"].as_str() {
                Some("welcome") | Some("snapshot") => m["snapshot"]["seq"].as_u64(),
                Some("replay_done") => m["seq"].as_u64(),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        from_events.max(from_snapshots)
    }

    /// Drop the connection abruptly (no close frame), like a lost network.
    pub fn drop_abruptly(self) {
        drop(self.ws);
    }

    /// Close politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Poll `cond` until it holds or the deadline passes.
pub async fn wait_until<F, Fut>(what: &str, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while start.elapsed() < DEADLINE {
        if cond().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out waiting for {what}")
}

/// The environment variable that tells a test binary re-run as a child server where its data is.
const CHILD_DIR_VAR: &str = "LECTERN_TEST_CHILD_DIR";

/// In a test run as a child process ([`spawn_child_server`]): serve from the data directory the
/// parent gave, with these extra settings, print the address and run until killed (or, after
/// SIGUSR1, until drained). Returns at
/// once when the test runs on its own (it is `#[ignore]`d, so only when asked for).
pub async fn serve_as_child(extra: &[(&str, &str)]) {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    let config = test_config(std::path::Path::new(&dir), extra);
    // Like `lectern serve`: SIGUSR1 drains the node, which then returns (exit status 0) once no
    // room runs in it.
    let drain = lectern_server::drain_signal().expect("SIGUSR1 handler");
    let server = Server::start(config).await.expect("child server starts");
    println!("CHILD_ADDR={}", server.local_addr());
    server.run(std::future::pending(), drain).await;
}

/// Runs this test binary's `test` (one that calls [`serve_as_child`]) as a child process serving
/// from `dir`, so that a test can `kill -9` a server; waits for its address.
pub fn spawn_child_server(
    test: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(std::process::Child, SocketAddr)> {
    spawn_child_server_with_env(test, dir, &[])
}

/// [`spawn_child_server`] with extra environment variables for the child (for its test to read).
pub fn spawn_child_server_with_env(
    test: &str,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(std::process::Child, SocketAddr)> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe()?)
        .args([test, "--exact", "--ignored", "--nocapture"])
        .env(CHILD_DIR_VAR, dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("CHILD_ADDR=") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(DEADLINE)?;
    Ok((child, addr.parse()?))
}

/// A PostgreSQL schema of its own for one test, on the server at `LECTERN_TEST_POSTGRES_URL`
/// (default `postgres://postgres@127.0.0.1:5432/test`); [`PostgresSchema::url`] is a store URL
/// whose every connection uses it. Drop it with [`PostgresSchema::remove`].
#[derive(Debug)]
pub struct PostgresSchema {
    server: String,
    schema: String,
    url: String,
}

impl PostgresSchema {
    /// A new schema; `None` (after saying so) when `LECTERN_SKIP_POSTGRES=1`. Fails with what to
    /// start when PostgreSQL cannot be reached.
    pub async fn create() -> anyhow::Result<Option<PostgresSchema>> {
        if std::env::var("LECTERN_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!("skipped: this test needs PostgreSQL (LECTERN_SKIP_POSTGRES=1)");
            return Ok(None);
        }
        let server = std::env::var("LECTERN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!("lectern_test_{:016x}", rand_u64());
        let mut conn = Self::connect(&server).await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await?;
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options[search_path]={schema}");
        Ok(Some(PostgresSchema {
            server,
            schema,
            url,
        }))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the schema and everything in it.
    pub async fn remove(&self) -> anyhow::Result<()> {
        let mut conn = Self::connect(&self.server).await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await?;
        Ok(())
    }

    async fn connect(server: &str) -> anyhow::Result<sqlx::PgConnection> {
        let attempt = tokio::time::timeout(
            DEADLINE,
            <sqlx::PgConnection as sqlx::Connection>::connect(server),
        )
        .await;
        match attempt {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => bail!(
                "PostgreSQL is not reachable ({err}): start it (e.g. `pg_ctlcluster 15 main \
                 start`) and set LECTERN_TEST_POSTGRES_URL if it is not at \
                 postgres://postgres@127.0.0.1:5432/test, or set LECTERN_SKIP_POSTGRES=1"
            ),
            Err(_) => bail!("PostgreSQL did not answer within {DEADLINE:?}"),
        }
    }
}

/// A random number for names, from the standard library's randomly seeded hasher.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
