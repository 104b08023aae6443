//! `lectern-bench joins`: how fast classes fill when their students arrive through any node of a
//! cluster (issue 14's "joins per second over three nodes").
//!
//! For each `--nodes` count K: K `lectern serve` processes sharing one fresh PostgreSQL schema
//! and one Redis key prefix. K = 1 is the same single node on PostgreSQL and Redis, so the
//! comparison is like for like. `--rooms` classes of `--per-room` students each; student `s` of
//! class `r` says hello to node `(r + s) % K`, so on three nodes about two thirds of the students
//! reach a node that does not host their class and follow its `redirect`. `--concurrency` joins
//! run at a time, in an order that interleaves the classes, so classes are placed while others
//! fill. Every student stays connected until the run ends.
//!
//! Measured per join: from the first WebSocket connect to the `welcome`, redirects and retries
//! included (a `closing` with `room_moved` while a class is being placed starts over from the
//! first node, as the web client does). Reported per K: joins per second over the fill (first
//! connect to last welcome), join latency p50/p99/max, redirects and retries per join, classes
//! hosted per node, and the nodes' CPU (summed) per join.
//!
//! The Redis keys live under a random `lectern-bench-…:` prefix; leases and registry entries
//! expire by themselves, the per-room fencing counters stay (a few bytes per class).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use lectern_proto::Role;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::procfs::{self, CpuTimes, Proc};
use crate::report::Latency;
use crate::server::{Server, SpawnConfig, server_bin};
use crate::token::{self, TokenMinter};

const MAX_NODES: usize = 8;
const MAX_JOINS: usize = 20_000;
/// One join (redirects and retries included) gives up after this.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Most redirects one join follows before it counts as failed (the web client allows 3).
const MAX_REDIRECTS: u32 = 3;
/// Pause before starting over after `room_moved` (a class being placed by another join).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, clap::Args)]
pub struct JoinsArgs {
    /// Cluster sizes to measure, one run each, in this order.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    nodes: Vec<usize>,
    /// Classes filled at once.
    #[arg(long, default_value_t = 30)]
    rooms: usize,
    /// Students per class.
    #[arg(long, default_value_t = 20)]
    per_room: usize,
    /// Joins (connect + hello + redirects) under way at the same time.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The PostgreSQL server; each run creates a schema of its own there and drops it after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// The Redis the nodes share.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The `lectern` binary [default: target/release/lectern of this workspace, or
    /// $CARGO_TARGET_DIR/release/lectern].
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// One cluster size's figures.
#[derive(Debug, Serialize)]
struct Row {
    nodes: usize,
    joins: usize,
    failed: usize,
    first_error: Option<String>,
    seconds: f64,
    joins_per_second: f64,
    latency_ms: Option<Latency>,
    redirects_per_join: f64,
    retries_per_join: f64,
    /// Classes hosted by each node at the end (`lectern_cluster_rooms_hosted`).
    rooms_per_node: Vec<f64>,
    /// The nodes' CPU (user + system, summed) per join, in milliseconds.
    cpu_ms_per_join: f64,
}

pub async fn run(args: JoinsArgs) -> anyhow::Result<()> {
    if args.nodes.is_empty() || args.nodes.iter().any(|k| !(1..=MAX_NODES).contains(k)) {
        bail!("--nodes takes cluster sizes from 1 to {MAX_NODES}");
    }
    let joins = args.rooms.saturating_mul(args.per_room);
    if joins == 0 || joins > MAX_JOINS {
        bail!("--rooms × --per-room must be between 1 and {MAX_JOINS}");
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let bin = server_bin(args.server_bin.as_deref())?;
    let mut rows = Vec::new();
    for &nodes in &args.nodes {
        eprintln!(
            "{nodes} node(s): {} classes × {} students, {} at a time",
            args.rooms, args.per_room, args.concurrency
        );
        let schema = Schema::create(&args.postgres_url).await?;
        let row = fill(&args, &bin, nodes, schema.url()).await;
        schema.drop().await;
        rows.push(row?);
    }
    print_table(&rows);
    for row in &rows {
        println!("{}", serde_json::to_string(row)?);
    }
    Ok(())
}

/// One run: start `nodes` nodes, fill the classes, read the figures, stop the nodes.
async fn fill(args: &JoinsArgs, bin: &Path, nodes: usize, store: &str) -> anyhow::Result<Row> {
    let secret = token::random_alphanumeric(48);
    let prefix = format!(
        "lectern-bench-{}:",
        token::random_alphanumeric(8).to_lowercase()
    );
    let mut servers = Vec::new();
    for i in 0..nodes {
        let mut config = SpawnConfig::for_load(bin.to_path_buf(), args.per_room, 0.0);
        config.env = vec![
            ("LECTERN_STORE_URL".into(), store.to_owned()),
            ("LECTERN_CLUSTER_REDIS_URL".into(), args.redis_url.clone()),
            ("LECTERN_CLUSTER_KEY_PREFIX".into(), prefix.clone()),
            ("LECTERN_CLUSTER_NODE_ID".into(), format!("bench-{i}")),
        ];
        servers.push(Server::spawn(&config, secret.clone()).await?);
    }
    let urls: Vec<String> = servers.iter().map(Server::ws_url).collect();
    let ticks = procfs::clock_ticks_per_second();
    let cpu = |servers: &[Server]| {
        servers
            .iter()
            .filter_map(|s| Proc::Pid(s.pid()?).cpu_times(ticks))
            .fold(CpuTimes::default(), |sum, t| CpuTimes {
                user: sum.user + t.user,
                system: sum.system + t.system,
            })
    };

    // Every token first, so signing is not measured.
    let room_tag = token::random_alphanumeric(6).to_lowercase();
    let mut plan = Vec::new();
    for s in 0..args.per_room {
        for r in 0..args.rooms {
            let minter = TokenMinter::new(&secret, format!("joins-{room_tag}-{r}"));
            let sub = format!("s{s}");
            let token = minter.mint(&sub, &sub, Role::Student)?;
            plan.push((urls[(r + s) % nodes].clone(), token));
        }
    }

    let cpu_before = cpu(&servers);
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (url, token) in plan {
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            join(&url, &token).await
        }));
    }
    let (mut latencies, mut kept) = (Vec::new(), Vec::new());
    let (mut redirects, mut retries, mut failed) = (0u64, 0u64, 0usize);
    let mut first_error = None;
    let mut last_welcome = started;
    for task in tasks {
        match task.await.context("a join task panicked")? {
            Ok(joined) => {
                latencies.push(u32::try_from(joined.took.as_micros()).unwrap_or(u32::MAX));
                redirects += u64::from(joined.redirects);
                retries += u64::from(joined.retries);
                last_welcome = last_welcome.max(joined.welcomed);
                kept.push(joined.ws);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let cpu_used = cpu(&servers).since(cpu_before);
    let seconds = last_welcome.duration_since(started).as_secs_f64();
    let mut rooms_per_node = Vec::new();
    for server in &servers {
        let hosted = server
            .metrics()
            .await
            .ok()
            .and_then(|m| m.get("lectern_cluster_rooms_hosted"));
        rooms_per_node.push(hosted.unwrap_or(f64::NAN));
    }
    for mut ws in kept {
        let _ = ws.close(None).await;
    }
    for server in servers {
        server.shutdown().await;
    }
    let joined = latencies.len();
    let per_join = |n: u64| n as f64 / joined.max(1) as f64;
    Ok(Row {
        nodes,
        joins: joined,
        failed,
        first_error,
        seconds,
        joins_per_second: joined as f64 / seconds.max(f64::EPSILON),
        latency_ms: Latency::from_micros(&mut latencies),
        redirects_per_join: per_join(redirects),
        retries_per_join: per_join(retries),
        rooms_per_node,
        cpu_ms_per_join: cpu_used.total().as_secs_f64() * 1_000.0 / joined.max(1) as f64,
    })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Joined {
    ws: Ws,
    took: Duration,
    welcomed: Instant,
    redirects: u32,
    retries: u32,
}

/// Hello at `first`, following redirects and starting over after `room_moved`, until welcomed.
async fn join(first: &str, token: &str) -> anyhow::Result<Joined> {
    let started = Instant::now();
    let hello = serde_json::json!({"type": "hello", "protocol_version": 1, "token": token});
    let hello = Message::text(hello.to_string());
    let (mut at, mut redirects, mut retries) = (first.to_owned(), 0, 0);
    tokio::time::timeout(JOIN_TIMEOUT, async {
        loop {
            let (mut ws, _) = tokio_tungstenite::connect_async(at.as_str())
                .await
                .with_context(|| format!("connecting to {at}"))?;
            ws.send(hello.clone()).await?;
            match answer(&mut ws).await? {
                Answer::Welcome => {
                    return Ok(Joined {
                        ws,
                        took: started.elapsed(),
                        welcomed: Instant::now(),
                        redirects,
                        retries,
                    });
                }
                Answer::Redirect(url) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        bail!("more than {MAX_REDIRECTS} redirects, the last to {url}");
                    }
                    at = url;
                }
                Answer::Moved => {
                    retries += 1;
                    at = first.to_owned();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    })
    .await
    .with_context(|| format!("not welcomed within {JOIN_TIMEOUT:?}"))?
}

enum Answer {
    Welcome,
    Redirect(String),
    Moved,
}

/// The server's answer to a hello (frames before it, if any, are skipped).
async fn answer(ws: &mut Ws) -> anyhow::Result<Answer> {
    while let Some(frame) = ws.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let message: serde_json::Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("welcome") => return Ok(Answer::Welcome),
            Some("redirect") => {
                let url = message["url"].as_str().context("a redirect without url")?;
                return Ok(Answer::Redirect(url.to_owned()));
            }
            Some("closing") if message["reason"] == "room_moved" => return Ok(Answer::Moved),
            Some("closing" | "error") => bail!("hello refused: {message}"),
            _ => {}
        }
    }
    bail!("the connection closed before an answer to the hello")
}

fn print_table(rows: &[Row]) {
    println!(
        "| nodes | joins | failed | joins/s | p50 ms | p99 ms | max ms | redirects/join | retries/join | classes per node | CPU ms/join |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let latency = |f: fn(&Latency) -> f64| {
            row.latency_ms
                .as_ref()
                .map_or_else(|| "n/a".to_owned(), |l| format!("{:.1}", f(l)))
        };
        let per_node: Vec<String> = row.rooms_per_node.iter().map(|n| format!("{n}")).collect();
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} |",
            row.nodes,
            row.joins,
            row.failed,
            row.joins_per_second,
            latency(|l| l.p50),
            latency(|l| l.p99),
            latency(|l| l.max),
            row.redirects_per_join,
            row.retries_per_join,
            per_node.join(" / "),
            row.cpu_ms_per_join,
        );
    }
    if let Some(error) = rows.iter().find_map(|r| r.first_error.as_deref()) {
        eprintln!("first failed join: {error}");
    }
}

/// A PostgreSQL schema of one run's own, dropped after it.
struct Schema {
    server: String,
    name: String,
    url: String,
}

impl Schema {
    async fn create(server: &str) -> anyhow::Result<Schema> {
        use sqlx::Connection as _;
        let name = format!(
            "lectern_bench_{}",
            token::random_alphanumeric(12).to_lowercase()
        );
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .with_context(|| format!("PostgreSQL at {server} (--postgres-url)"))?;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options[search_path]={name}");
        Ok(Schema {
            server: server.to_owned(),
            name,
            url,
        })
    }

    fn url(&self) -> &str {
        &self.url
    }

    /// Drops the schema; a failure is only reported (the figures are already taken).
    async fn drop(self) {
        use sqlx::Connection as _;
        let dropped = async {
            let mut conn = sqlx::PgConnection::connect(&self.server).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(&mut conn)
                .await?;
            conn.close().await
        };
        if let Err(e) = dropped.await {
            eprintln!("could not drop schema {}: {e}", self.name);
        }
    }
}
