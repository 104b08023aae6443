//! `lectern-bench media`: the SFU's cost per forwarded packet with webrtc-rs bots.
//!
//! For each N in `--subscribers`: start a fresh `lectern` (a child process, so its `/proc`
//! figures are the server's alone), connect one bot instructor publishing Opus (20 ms) and VP8
//! (`--bitrate`, `--fps`), read the server's RSS, connect N bot students, wait until all of
//! them receive, let `--warmup` seconds pass, then measure a steady window of `--duration`
//! seconds:
//!
//! - forwarded packets = RTP packets received by all students in the window (what was really
//!   delivered, not what the server says it sent);
//! - server CPU per forwarded packet = server `utime + stime` over the window ÷ forwarded;
//! - loss = 1 − forwarded ÷ (packets the publisher sent in the window × N), and the sequence
//!   gaps still open (not repaired by NACK) at the end of the window plus one second;
//! - latency = one-way time from the publisher's send to the student's receive (both bots read
//!   the same wall clock), over the window's packets, p50/p99;
//! - memory = (server RSS with N students − RSS with the publisher alone) ÷ N.
//!
//! Bots run on this tool's tokio runtime (`--threads`); their CPU is reported too, since on a
//! small machine they compete with the server.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use lectern_bots::{Bot, BotOptions, Histogram, PublishOptions};
use lectern_proto::Role;

use crate::procfs::{self, Proc};
use crate::server::{self, Server, SpawnConfig};
use crate::token::{self, TokenMinter};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_SUBSCRIBERS: usize = 2_000;
/// After the window, how long gaps may still be filled by retransmissions.
const GAP_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// Numbers of bot students, one run (and one fresh server) each, e.g. `50,100,200`.
    #[arg(long, value_delimiter = ',', default_value = "50")]
    subscribers: Vec<usize>,
    /// Length of the measured steady window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of media after every student receives and before the window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Video bit rate of the publisher in bits per second.
    #[arg(long, default_value_t = 1_500_000)]
    bitrate: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Students connecting at the same time.
    #[arg(long, default_value_t = 16)]
    connect_concurrency: usize,
    /// The `lectern` binary to spawn [default: target/release/lectern of this workspace, or
    /// $CARGO_TARGET_DIR/release/lectern].
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MediaRun {
    pub subscribers: usize,
    pub window_s: f64,
    pub published_packets: u64,
    pub expected: u64,
    pub forwarded: u64,
    pub forwarded_per_s: f64,
    pub loss_pct: f64,
    pub open_gaps: u64,
    pub bad_payloads: u64,
    pub server_cpu_s: f64,
    pub server_cpu_us_per_packet: f64,
    pub server_cpu_pct: f64,
    pub tool_cpu_pct: f64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    pub rss_base_kib: u64,
    pub rss_kib: u64,
    pub rss_per_subscriber_kib: f64,
}

pub async fn run(args: MediaArgs) -> anyhow::Result<()> {
    if args.subscribers.is_empty()
        || args
            .subscribers
            .iter()
            .any(|&n| n == 0 || n > MAX_SUBSCRIBERS)
    {
        bail!("--subscribers takes numbers from 1 to {MAX_SUBSCRIBERS}");
    }
    if !(args.duration > 0.0
        && args.duration <= 600.0
        && args.warmup >= 0.0
        && args.warmup <= 600.0)
    {
        bail!("--duration must be in (0, 600] and --warmup in [0, 600] seconds");
    }
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => server::default_server_bin()?,
    };
    let mut runs = Vec::new();
    for &n in &args.subscribers {
        let config = SpawnConfig {
            bin: bin.clone(),
            max_participants: n + 10,
            chat_per_second: 5,
            chat_burst: 10,
        };
        eprintln!("N={n}: starting {}", config.bin.display());
        let mut server = Server::spawn(&config, token::random_alphanumeric(48)).await?;
        let result = one_run(&args, &mut server, n).await;
        server.shutdown().await;
        let run = result.with_context(|| format!("the run with {n} students"))?;
        print_run(&run);
        runs.push(run);
    }
    print_table(&runs);
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let slope = (b.rss_kib as f64 - a.rss_kib as f64) / (b.subscribers - a.subscribers) as f64;
        println!(
            "RSS slope between N={} and N={}: {:.0} KiB per student",
            a.subscribers, b.subscribers, slope
        );
    }
    println!("{}", serde_json::to_string(&runs)?);
    Ok(())
}

async fn one_run(args: &MediaArgs, server: &mut Server, n: usize) -> anyhow::Result<MediaRun> {
    let pid = server.pid().context("the spawned server has no pid")?;
    let ticks = procfs::clock_ticks_per_second();
    let room = format!("bench-{}", token::random_alphanumeric(8).to_lowercase());
    let minter = TokenMinter::new(server.secret(), room);
    let url = server.ws_url();
    let options = |sub: &str, role: Role| -> anyhow::Result<BotOptions> {
        Ok(BotOptions {
            url: url.clone(),
            token: minter.mint(sub, sub, role)?,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        })
    };

    let publish = PublishOptions {
        video_bitrate: args.bitrate,
        fps: args.fps,
        ..PublishOptions::default()
    };
    let teacher = Bot::publish(options("teacher", Role::Instructor)?, publish).await?;
    teacher.wait_connected(CONNECT_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_base_kib = Proc::Pid(pid)
        .rss_kib()
        .context("reading the server's RSS")?;

    // Students, `connect_concurrency` at a time.
    let started = Instant::now();
    let mut students: Vec<Bot> = Vec::with_capacity(n);
    let mut pending = (0..n)
        .map(|i| format!("s{i:04}"))
        .collect::<Vec<_>>()
        .into_iter();
    loop {
        let batch: Vec<String> = pending
            .by_ref()
            .take(args.connect_concurrency.max(1))
            .collect();
        if batch.is_empty() {
            break;
        }
        let mut joins = Vec::new();
        for sub in batch {
            let o = options(&sub, Role::Student)?;
            joins.push(tokio::spawn(async move {
                let bot = Bot::subscribe(o).await?;
                bot.wait_connected(CONNECT_TIMEOUT).await?;
                Ok::<Bot, lectern_bots::BotError>(bot)
            }));
        }
        for j in joins {
            let joined = students.len();
            let bot = j
                .await
                .context("a student task")?
                .with_context(|| format!("after {joined} students had joined"))?;
            students.push(bot);
        }
        server.check_alive()?;
    }
    wait_for("every student to receive audio and video", || {
        students.iter().all(|s| {
            let r = s.received();
            r.iter().any(|t| t.kind == "video" && t.packets > 0)
                && r.iter().any(|t| t.kind == "audio" && t.packets > 0)
        })
    })
    .await?;
    eprintln!(
        "N={n}: {} students receiving after {:.1} s; warming up",
        students.len(),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;

    let snapshot = |students: &[Bot]| {
        let mut packets = 0;
        let mut latency = Histogram::default();
        for s in students {
            for t in s.received() {
                packets += t.packets;
                latency.merge(&t.latency_us);
            }
        }
        (packets, latency)
    };
    let published = |bot: &Bot| {
        let c = bot.sent();
        c.video_packets.load(std::sync::atomic::Ordering::Relaxed)
            + c.audio_packets.load(std::sync::atomic::Ordering::Relaxed)
    };

    let cpu0 = Proc::Pid(pid)
        .cpu_times(ticks)
        .context("reading the server's CPU")?;
    let tool0 = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let sent0 = published(&teacher);
    let (packets0, latency0) = snapshot(&students);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let cpu1 = Proc::Pid(pid)
        .cpu_times(ticks)
        .context("reading the server's CPU")?;
    let tool1 = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let sent1 = published(&teacher);
    let (packets1, latency1) = snapshot(&students);
    let window = t0.elapsed().as_secs_f64();
    let rss_kib = Proc::Pid(pid)
        .rss_kib()
        .context("reading the server's RSS")?;
    server.check_alive()?;

    tokio::time::sleep(GAP_GRACE).await;
    let (mut open_gaps, mut bad_payloads) = (0, 0);
    for s in &students {
        for t in s.received() {
            open_gaps += t.seq.lost();
            bad_payloads += t.bad_payloads;
        }
    }
    teacher.close().await;
    for s in students {
        s.close().await;
    }

    let forwarded = packets1 - packets0;
    let published_packets = sent1 - sent0;
    let expected = published_packets * n as u64;
    let latency = latency1.since(&latency0);
    let server_cpu = cpu1.since(cpu0).total().as_secs_f64();
    let tool_cpu = tool1.since(tool0).total().as_secs_f64();
    Ok(MediaRun {
        subscribers: n,
        window_s: window,
        published_packets,
        expected,
        forwarded,
        forwarded_per_s: forwarded as f64 / window,
        loss_pct: if expected == 0 {
            0.0
        } else {
            (1.0 - forwarded as f64 / expected as f64).max(0.0) * 100.0
        },
        open_gaps,
        bad_payloads,
        server_cpu_s: server_cpu,
        server_cpu_us_per_packet: if forwarded == 0 {
            f64::NAN
        } else {
            server_cpu * 1e6 / forwarded as f64
        },
        server_cpu_pct: server_cpu / window * 100.0,
        tool_cpu_pct: tool_cpu / window * 100.0,
        latency_p50_us: latency.quantile(0.5).unwrap_or(0),
        latency_p99_us: latency.quantile(0.99).unwrap_or(0),
        latency_max_us: latency.max(),
        rss_base_kib,
        rss_kib,
        rss_per_subscriber_kib: rss_kib.saturating_sub(rss_base_kib) as f64 / n as f64,
    })
}

/// Poll `cond` every 50 ms until it holds, for at most [`CONNECT_TIMEOUT`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + CONNECT_TIMEOUT;
    while !cond() {
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn print_run(r: &MediaRun) {
    eprintln!(
        "N={}: {:.0} pkt/s delivered, {:.2} µs server CPU/pkt, loss {:.3}%, gaps {}, p50 {} µs, p99 {} µs, {:.0} KiB/student",
        r.subscribers,
        r.forwarded_per_s,
        r.server_cpu_us_per_packet,
        r.loss_pct,
        r.open_gaps,
        r.latency_p50_us,
        r.latency_p99_us,
        r.rss_per_subscriber_kib
    );
}

fn print_table(runs: &[MediaRun]) {
    println!(
        "| N | delivered pkt/s | server CPU µs/pkt | server CPU % | tool CPU % | loss % | open gaps | bad payloads | latency p50 / p99 (ms) | RSS base → with N (MiB) | KiB per student |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        println!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.0} | {:.3} | {} | {} | {:.2} / {:.2} | {:.1} → {:.1} | {:.0} |",
            r.subscribers,
            r.forwarded_per_s,
            r.server_cpu_us_per_packet,
            r.server_cpu_pct,
            r.tool_cpu_pct,
            r.loss_pct,
            r.open_gaps,
            r.bad_payloads,
            r.latency_p50_us as f64 / 1000.0,
            r.latency_p99_us as f64 / 1000.0,
            r.rss_base_kib as f64 / 1024.0,
            r.rss_kib as f64 / 1024.0,
            r.rss_per_subscriber_kib
        );
    }
}
