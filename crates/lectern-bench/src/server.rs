//! The server under test: a `lectern` process this tool spawns, or one already running on
//! 127.0.0.1. Also reads its Prometheus metrics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::token;

/// How long a spawned server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-participant chat limit given to a spawned server, as a multiple of each sender's mean
/// rate (room for scheduling jitter, and for a sender picked a few times in a row), never below
/// the server's defaults (5/s, burst 10).
const RATE_LIMIT_HEADROOM: f64 = 4.0;
/// Room places a spawned server allows beyond the load's participants.
const SPARE_PLACES: usize = 10;

/// Which server to load, for the subcommands that spawn one or attach to a running one.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The `lectern` binary to spawn [default: target/release/lectern of this workspace, or
    /// $CARGO_TARGET_DIR/release/lectern].
    #[arg(long, conflicts_with = "url")]
    server_bin: Option<PathBuf>,
    /// Load a server that is already running instead: ws://127.0.0.1:PORT/ws. Its room must
    /// start live (`room.auto_start`) and allow the load's size.
    #[arg(long, requires = "secret")]
    url: Option<String>,
    /// The running server's HS256 join-token secret (with --url).
    #[arg(long, requires = "url")]
    secret: Option<String>,
    /// The running server's pid (with --url), for its CPU and memory figures.
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
}

impl ServerArgs {
    /// Whether a running server is loaded (`--url`) rather than one this tool spawns.
    pub fn attaches(&self) -> bool {
        self.url.is_some()
    }
}

/// Settings for a server this tool starts.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    pub bin: PathBuf,
    pub max_participants: usize,
    pub chat_per_second: u32,
    pub chat_burst: u32,
    /// More `LECTERN_*` settings, applied after (so over) the ones above (e.g. a PostgreSQL
    /// store and a cluster for `joins`).
    pub env: Vec<(String, String)>,
}

impl SpawnConfig {
    /// Room for `participants` (and a few more), and chat limits for senders of
    /// `chat_per_sender` messages per second on average (0: the server's defaults).
    pub fn for_load(bin: PathBuf, participants: usize, chat_per_sender: f64) -> SpawnConfig {
        let chat_per_second = (chat_per_sender * RATE_LIMIT_HEADROOM).ceil().max(5.0) as u32;
        SpawnConfig {
            bin,
            max_participants: participants + SPARE_PLACES,
            chat_per_second,
            chat_burst: chat_per_second.saturating_mul(2).max(10),
            env: Vec::new(),
        }
    }
}

/// A server to load: its port, its pid when known, and the process when we spawned it.
#[derive(Debug)]
pub struct Server {
    port: u16,
    pid: Option<u32>,
    secret: String,
    spawned: Option<Spawned>,
}

#[derive(Debug)]
struct Spawned {
    /// `kill_on_drop`, so an early return or a panic still stops the server.
    child: Child,
    /// Holds the SQLite file and the server's log; removed when dropped (after the kill).
    dir: tempfile::TempDir,
}

impl Server {
    /// The server the command line names: the one at `--url` (with `--secret`), or else
    /// `--server-bin` spawned with room for `participants` and chat senders of `chat_per_sender`
    /// messages per second (see [`SpawnConfig::for_load`]). Says which on stderr.
    pub async fn start_or_attach(
        args: &ServerArgs,
        participants: usize,
        chat_per_sender: f64,
    ) -> anyhow::Result<Server> {
        let server = match &args.url {
            Some(url) => {
                let secret = args
                    .secret
                    .clone()
                    .context("--secret is required with --url")?;
                Server::attach(url, secret, args.server_pid)?
            }
            None => {
                let bin = server_bin(args.server_bin.as_deref())?;
                let config = SpawnConfig::for_load(bin, participants, chat_per_sender);
                eprintln!("starting {}", config.bin.display());
                Server::spawn(&config, token::random_alphanumeric(48)).await?
            }
        };
        eprintln!(
            "server {} (pid {})",
            server.ws_url(),
            server
                .pid()
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string())
        );
        Ok(server)
    }

    /// Start `lectern serve` on a free loopback port with a fresh store and a random secret.
    pub async fn spawn(config: &SpawnConfig, secret: String) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("lectern-bench-")
            .tempdir()
            .context("creating a temp dir for the server")?;
        let db = dir.path().join("bench.db");
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).context("creating the server log")?;
        let mut child = Command::new(&config.bin)
            .arg("serve")
            .env("LECTERN_SERVER_LISTEN", "127.0.0.1:0")
            .env("LECTERN_STORE_URL", format!("sqlite://{}", db.display()))
            .env("LECTERN_AUTH_HS256_SECRET", &secret)
            .env("LECTERN_DEMO_ENABLED", "false")
            .env("LECTERN_ROOM_AUTO_START", "true")
            .env("LECTERN_SERVER_DATA_DIR", dir.path())
            .env(
                "LECTERN_ROOM_MAX_PARTICIPANTS",
                config.max_participants.to_string(),
            )
            .env(
                "LECTERN_LIMITS_CHAT_PER_SECOND",
                config.chat_per_second.to_string(),
            )
            .env("LECTERN_LIMITS_CHAT_BURST", config.chat_burst.to_string())
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", config.bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(port) = parse_listening_port(&line) {
                    return Ok(Some(port));
                }
                seen.push(line);
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let port = match port {
            Ok(Ok(Some(port))) => port,
            outcome => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let why = match outcome {
                    Err(_) => format!("did not print `listening on` within {START_TIMEOUT:?}"),
                    Ok(Err(e)) => format!("stdout could not be read: {e}"),
                    _ => "exited before printing `listening on`".to_owned(),
                };
                let stderr = excerpt(&std::fs::read_to_string(&log_path).unwrap_or_default());
                bail!(
                    "the server {why}.\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
                    excerpt(&seen.join("\n"))
                );
            }
        };
        // Keep draining stdout (logs may go there) so the server never blocks on a full pipe.
        let mut stdout_log = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .await
            .context("opening the server log")?;
        tokio::spawn(async move {
            let mut rest = lines.into_inner();
            let _ = tokio::io::copy(&mut rest, &mut stdout_log).await;
        });
        Ok(Server {
            port,
            pid: Some(pid),
            secret,
            spawned: Some(Spawned { child, dir }),
        })
    }

    /// A server already running on 127.0.0.1, given its WebSocket URL and join-token secret.
    pub fn attach(url: &str, secret: String, pid: Option<u32>) -> anyhow::Result<Server> {
        Ok(Server {
            port: parse_loopback_ws_url(url)?,
            pid,
            secret,
            spawned: None,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The spawned server's data directory (its store, log and recordings).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.spawned.as_ref().map(|s| s.dir.path())
    }

    /// Copy a spawned server's log out of its temp dir (which goes with the server) to
    /// `lectern-bench-server-PID.log` in the system's temp dir, for a run that failed; returns
    /// where. Run the bench with `RUST_LOG=lectern_sfu=debug` to have the SFU's story of every
    /// peer in it.
    pub fn keep_log(&self) -> Option<std::path::PathBuf> {
        let dir = self.data_dir()?;
        let to = std::env::temp_dir().join(format!(
            "lectern-bench-server-{}.log",
            self.pid.unwrap_or_default()
        ));
        std::fs::copy(dir.join("server.log"), &to).ok()?;
        Some(to)
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Fail early (with the log) if a spawned server has died.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(spawned) = &mut self.spawned
            && let Some(status) = spawned.child.try_wait()?
        {
            let log =
                std::fs::read_to_string(spawned.dir.path().join("server.log")).unwrap_or_default();
            bail!("the server exited ({status}); its log:\n{}", excerpt(&log));
        }
        Ok(())
    }

    /// Stop a spawned server (SIGKILL) and remove its temp dir. Attached servers are left alone.
    pub async fn shutdown(mut self) {
        if let Some(mut spawned) = self.spawned.take() {
            let _ = spawned.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), spawned.child.wait()).await;
            drop(spawned.dir);
        }
    }

    /// The `/metrics` page, summed per metric name over label sets.
    pub async fn metrics(&self) -> anyhow::Result<Metrics> {
        let text = tokio::time::timeout(METRICS_TIMEOUT, http_get(self.port, "/metrics"))
            .await
            .context("GET /metrics timed out")??;
        Ok(Metrics { text })
    }
}

/// A scraped Prometheus text page.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    text: String,
}

impl Metrics {
    /// The sum of all samples of `name` (any labels), or `None` if the page has none.
    pub fn get(&self, name: &str) -> Option<f64> {
        let mut found = None;
        for line in self.text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            let value = if let Some(labelled) = rest.strip_prefix('{') {
                labelled.split_once('}').map(|(_, v)| v)
            } else if rest.starts_with(' ') {
                Some(rest)
            } else {
                None
            };
            if let Some(v) = value.and_then(|v| v.split_ascii_whitespace().next())
                && let Ok(v) = v.parse::<f64>()
            {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }
}

/// A minimal HTTP/1.0 GET to 127.0.0.1 (1.0 so the body is never chunked).
async fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .context("connecting for /metrics")?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("GET {path}: {status}");
    }
    Ok(body.to_owned())
}

/// The port from a line containing `listening on http://127.0.0.1:PORT`.
fn parse_listening_port(line: &str) -> Option<u16> {
    const MARK: &str = "listening on http://127.0.0.1:";
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The port of a `ws://127.0.0.1:PORT/...` URL. Any other host is refused: this tool only ever
/// loads a server on this machine's loopback.
fn parse_loopback_ws_url(url: &str) -> anyhow::Result<u16> {
    let Some(rest) = url.strip_prefix("ws://127.0.0.1:") else {
        bail!("--url must look like ws://127.0.0.1:PORT/ws (only 127.0.0.1 is allowed), got {url}");
    };
    let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path != "ws" {
        bail!("--url must end in /ws, got {url}");
    }
    port.parse()
        .with_context(|| format!("bad port in --url {url}"))
}

/// The server binary to spawn: `--server-bin` if given (it must exist), else
/// [`default_server_bin`].
pub fn server_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(bin) if bin.is_file() => Ok(bin.to_path_buf()),
        Some(bin) => bail!(
            "no server binary at {}; build it with: cargo build --release -p lectern-server",
            bin.display()
        ),
        None => default_server_bin(),
    }
}

/// The default server binary: `target/release/lectern` of the workspace (or `$CARGO_TARGET_DIR`).
fn default_server_bin() -> anyhow::Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/lectern"));
    }
    let root = workspace_root();
    candidates.push(root.join("target/release/lectern"));
    for candidate in &candidates {
        if candidate.is_file() {
            return Ok(candidate.clone());
        }
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "no server binary at {}.\nBuild it first: cargo build --release -p lectern-server \
         (or pass --server-bin PATH, or --url/--secret for a running server)",
        looked.join(" or ")
    )
}

/// The nearest ancestor of the current dir with a `[workspace]` Cargo.toml, else the workspace
/// this tool was built in.
fn workspace_root() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if is_workspace_root(dir) {
                return dir.to_path_buf();
            }
        }
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"));
    built_in
        .ancestors()
        .find(|d| is_workspace_root(d))
        .unwrap_or(built_in)
        .to_path_buf()
}

fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|s| s.contains("[workspace]"))
        .unwrap_or(false)
}

/// The first and last lines of a log: an error message comes first, a backtrace after it.
fn excerpt(text: &str) -> String {
    const EACH: usize = 12;
    let all: Vec<&str> = text.lines().collect();
    if all.len() <= 2 * EACH {
        return all.join("\n");
    }
    format!(
        "{}\n[... {} lines ...]\n{}",
        all[..EACH].join("\n"),
        all.len() - 2 * EACH,
        all[all.len() - EACH..].join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_in_a_log_line() {
        assert_eq!(
            parse_listening_port(
                "2026-01-01T00:00:00Z  INFO lectern: listening on http://127.0.0.1:41234"
            ),
            Some(41234)
        );
        assert_eq!(
            parse_listening_port("listening on http://127.0.0.1:8080 (ws at /ws)"),
            Some(8080)
        );
        assert_eq!(parse_listening_port("starting"), None);
    }

    #[test]
    fn only_loopback_urls() {
        assert_eq!(
            parse_loopback_ws_url("ws://127.0.0.1:9000/ws").ok(),
            Some(9000)
        );
        assert!(parse_loopback_ws_url("ws://10.0.0.1:9000/ws").is_err());
        assert!(parse_loopback_ws_url("ws://example.com:9000/ws").is_err());
        assert!(parse_loopback_ws_url("ws://127.0.0.1:9000/other").is_err());
    }

    #[test]
    fn a_spawned_server_fits_the_load() {
        let quiet = SpawnConfig::for_load(PathBuf::from("lectern"), 50, 0.0);
        assert_eq!(quiet.max_participants, 60);
        assert_eq!((quiet.chat_per_second, quiet.chat_burst), (5, 10));
        let busy = SpawnConfig::for_load(PathBuf::from("lectern"), 100, 2.1);
        assert_eq!((busy.chat_per_second, busy.chat_burst), (9, 18));
    }

    #[test]
    fn a_given_server_bin_must_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("lectern");
        assert!(server_bin(Some(&bin)).is_err());
        std::fs::write(&bin, "").expect("write");
        assert_eq!(server_bin(Some(&bin)).ok(), Some(bin));
    }

    #[test]
    fn sums_metrics_over_labels() {
        let m = Metrics {
            text: "# HELP lectern_messages_out_total x\n\
                   # TYPE lectern_messages_out_total counter\n\
                   lectern_messages_out_total{kind=\"event\"} 10\n\
                   lectern_messages_out_total{kind=\"ack\"} 5\n\
                   lectern_messages_out_total_extra 99\n\
                   lectern_ws_connections 3\n"
                .to_owned(),
        };
        assert_eq!(m.get("lectern_messages_out_total"), Some(15.0));
        assert_eq!(m.get("lectern_ws_connections"), Some(3.0));
        assert_eq!(m.get("lectern_slow_clients_dropped_total"), None);
    }
}
