//! `lectern-bench media`: the SFU's cost per forwarded packet with webrtc-rs bots.
//!
//! For each N in `--subscribers`: start a fresh `lectern` (a child process, so its `/proc`
//! figures are the server's alone), connect one bot instructor publishing Opus (20 ms) and VP8
//! (`--bitrate`, `--fps`), read the server's RSS, connect N bot students, wait until all of
//! them receive, let `--warmup` seconds pass, then measure a steady window of `--duration`
//! seconds:
//!
//! - server forwarded = the server's own `lectern_media_rtp_forwarded_total` (from `/metrics`)
//!   over the window; students received = RTP packets received by all students in the window;
//! - server CPU per forwarded packet = server `utime + stime` over the window ÷ server
//!   forwarded (the definition), and also ÷ students received;
//! - loss = 1 − received ÷ (packets the publisher sent in the window × N), split into the
//!   uplink's share (1 − server received ÷ published: lost before the server read it, e.g. in
//!   its UDP receive buffer), the server's (1 − server forwarded ÷ (server received × N)) and
//!   the students' (1 − received ÷ server forwarded), plus the sequence gaps still open (not repaired by NACK) at the end of the
//!   window plus one second;
//! - latency = one-way time from the publisher's send to the student's receive (both bots read
//!   the same wall clock), over the window's packets, p50/p99;
//! - memory = (server RSS with N students − RSS with the publisher alone) ÷ N.
//!
//! Bots run on this tool's tokio runtime (`--threads`); their CPU is reported too, since on a
//! small machine they compete with the server. With `--procs K` the students are spread over
//! this process and K − 1 child processes of this binary (`lectern-bench media-students`, a
//! hidden subcommand): each child joins its share, says `ready` on stdout, takes its first
//! snapshot when the parent writes `start` on its stdin and its second on `stop`, then prints
//! its counts and latency histogram as one JSON line, which the parent merges.
//!
//! `--servers lectern,janus` runs the same load, for each N back to back, against Janus's
//! VideoRoom (Debian's `janus`, started by this tool from a config folder it writes; see
//! [`crate::janus`]). The bots are the same `lectern-bots` media code with Janus's signalling;
//! Janus's ICE and its bots use the host's IPv4 address (Janus gathers nothing on loopback).
//! Janus exports no forwarded-packet counter, so its CPU per packet is per packet the students
//! received, and the Lectern/Janus ratio is printed on that basis for both.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use anyhow::{Context as _, bail};
use lectern_bots::{Bot, BotOptions, Histogram, PublishOptions};
use lectern_proto::Role;

use crate::janus::{self, Janus};
use crate::procfs::{self, Proc};
use crate::server::{self, Server, SpawnConfig};
use crate::token::{self, TokenMinter};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a student process may take to join its share and see media on every student.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a student process may take to report after `stop`.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PROCS: usize = 32;
/// The environment variable that hands the token secret to student processes.
const SECRET_ENV: &str = "LECTERN_BENCH_MEDIA_SECRET";
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
    /// OS processes for the students: this one and `--procs` − 1 children of this binary, each
    /// with an equal share and `--connect-concurrency` ÷ `--procs` joins at a time.
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// The `lectern` binary to spawn [default: target/release/lectern of this workspace, or
    /// $CARGO_TARGET_DIR/release/lectern].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Servers to load, one after the other for each N with the same settings: `lectern`,
    /// `janus` (Janus's VideoRoom, the Debian `janus` package, tuned as its docs advise for
    /// many handles: see `--janus-event-loops`), `janus-default` (the same Janus at its
    /// default, a thread per handle), e.g. `lectern,janus,janus-default`.
    #[arg(long, value_delimiter = ',', default_value = "lectern")]
    servers: Vec<ServerKind>,
    /// The `janus` binary to spawn.
    #[arg(long, default_value = janus::DEFAULT_BIN)]
    janus_bin: PathBuf,
    /// The local IPv4 address Janus's ICE and its bots use [default: this host's source
    /// address towards its default route]. Janus gathers no candidates on loopback.
    #[arg(long)]
    janus_ip: Option<Ipv4Addr>,
    /// Janus's `debug_level` (3 = warnings; 5 and up for ICE/DTLS details). Its log is printed
    /// when a Janus run fails.
    #[arg(long, default_value_t = 3)]
    janus_debug_level: u8,
    /// Janus's `event_loops` for the `janus` server (a pool of loops shared by all handles)
    /// [default: one per core]. `janus-default` always runs without it.
    #[arg(long)]
    janus_event_loops: Option<u16>,
}

/// A server `media` can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Lectern,
    /// Lectern with the class recorded (the same load; see `recording`).
    #[serde(rename = "lectern-rec")]
    LecternRec,
    /// Janus with `event_loops` (one per core unless `--janus-event-loops`).
    Janus,
    /// Janus at its defaults: a thread per handle.
    #[serde(rename = "janus-default")]
    #[value(name = "janus-default")]
    JanusDefault,
}

impl ServerKind {
    fn is_janus(self) -> bool {
        matches!(self, ServerKind::Janus | ServerKind::JanusDefault)
    }
}

/// The server of one run, as the run needs it.
enum UnderTest<'a> {
    /// The server, and whether the class is recorded.
    Lectern(&'a mut Server, bool),
    /// Janus, and which configuration (`Janus` or `JanusDefault`).
    Janus(&'a mut Janus, ServerKind),
}

impl UnderTest<'_> {
    fn pid(&self) -> anyhow::Result<u32> {
        match self {
            UnderTest::Lectern(s, _) => s.pid().context("the spawned server has no pid"),
            UnderTest::Janus(j, _) => Ok(j.pid()),
        }
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self {
            UnderTest::Lectern(s, _) => s.check_alive(),
            UnderTest::Janus(j, _) => j.check_alive(),
        }
    }

    /// Lectern's counters (received, forwarded); Janus has none.
    async fn counters(&self) -> anyhow::Result<Option<(f64, f64)>> {
        match self {
            UnderTest::Lectern(s, _) => {
                let m = s.metrics().await.context("reading /metrics")?;
                let get = |name: &str| {
                    m.get(name)
                        .with_context(|| format!("the server's /metrics has no {name}"))
                };
                Ok(Some((
                    get("lectern_media_rtp_received_total")?,
                    get("lectern_media_rtp_forwarded_total")?,
                )))
            }
            UnderTest::Janus(..) => Ok(None),
        }
    }
}

/// Where students join: what [`join_students`] and a student process need.
#[derive(Debug, Clone)]
enum Target {
    Lectern {
        url: String,
        room: String,
        secret: String,
    },
    Janus {
        url: String,
        room: u64,
        feed: u64,
        /// The local address Janus's ICE uses (not loopback, see [`janus::media_ip`]).
        ip: Ipv4Addr,
    },
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MediaRun {
    pub server: ServerKind,
    pub subscribers: usize,
    pub window_s: f64,
    pub published_packets: u64,
    pub expected: u64,
    pub procs: usize,
    /// RTP packets the server received in the window (its own counter; 0 for Janus, which
    /// has none).
    pub server_received: u64,
    /// RTP packets the server wrote to students in the window (its own counter).
    pub server_forwarded: u64,
    /// RTP packets all students received in the window.
    pub received: u64,
    pub received_per_s: f64,
    pub loss_pct: f64,
    /// Loss between the publisher and the server's read (e.g. its UDP receive buffer): 1 −
    /// server received ÷ published.
    pub uplink_loss_pct: f64,
    /// Loss in the server: 1 − server forwarded ÷ (server received × N), both its counters.
    pub server_loss_pct: f64,
    /// Loss after the server's send: 1 − received ÷ server forwarded.
    pub student_loss_pct: f64,
    pub open_gaps: u64,
    pub bad_payloads: u64,
    pub server_cpu_s: f64,
    /// Server CPU ÷ server forwarded (the definition).
    pub server_cpu_us_per_packet: f64,
    /// Server CPU ÷ packets the students received.
    pub server_cpu_us_per_received: f64,
    pub server_cpu_pct: f64,
    pub tool_cpu_pct: f64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    pub rss_base_kib: u64,
    pub rss_kib: u64,
    pub rss_per_subscriber_kib: f64,
    /// With the class recorded: the recordings folder's growth in the window.
    pub recording_kib_per_s: f64,
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
    if args.procs == 0 || args.procs > MAX_PROCS {
        bail!("--procs takes a number from 1 to {MAX_PROCS}");
    }
    let bin = server::server_bin(args.server_bin.as_deref())?;
    if args.servers.is_empty() {
        bail!("--servers takes lectern, janus or both");
    }
    let janus_loops = match args.janus_event_loops {
        Some(0) => bail!("--janus-event-loops takes 1 or more (leave it out for one per core)"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get().min(64) as u16),
    };
    let mut runs = Vec::new();
    for &n in &args.subscribers {
        for &kind in &args.servers {
            let result = match kind {
                ServerKind::Lectern | ServerKind::LecternRec => {
                    // No chat in this load: the server's default chat limits.
                    let config = SpawnConfig::for_load(bin.clone(), n, 0.0);
                    eprintln!("N={n}: starting {}", config.bin.display());
                    let mut server = Server::spawn(&config, token::random_alphanumeric(48)).await?;
                    let under_test =
                        UnderTest::Lectern(&mut server, kind == ServerKind::LecternRec);
                    let result = one_run(&args, under_test, n).await;
                    if result.is_err()
                        && let Some(log) = server.keep_log()
                    {
                        eprintln!("N={n}: the server's log is kept at {}", log.display());
                    }
                    server.shutdown().await;
                    result
                }
                ServerKind::Janus | ServerKind::JanusDefault => {
                    let event_loops = (kind == ServerKind::Janus).then_some(janus_loops);
                    eprintln!(
                        "N={n}: starting {} (event_loops: {})",
                        args.janus_bin.display(),
                        event_loops.map_or("default".to_owned(), |l| l.to_string())
                    );
                    let ip = match args.janus_ip {
                        Some(ip) => ip,
                        None => janus::media_ip()?,
                    };
                    let mut janus =
                        Janus::spawn(&args.janus_bin, args.janus_debug_level, ip, event_loops)
                            .await?;
                    let result = one_run(&args, UnderTest::Janus(&mut janus, kind), n).await;
                    if result.is_err() {
                        eprintln!("N={n}: the end of janus's log:\n{}", janus.log_tail());
                    }
                    janus.shutdown().await;
                    result
                }
            };
            let run = result.with_context(|| format!("the {kind:?} run with {n} students"))?;
            print_run(&run);
            runs.push(run);
        }
    }
    print_table(&runs);
    print_ratios(&runs, janus_loops);
    print_recording_cost(&runs);
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.server != b.server {
            continue;
        }
        let slope = (b.rss_kib as f64 - a.rss_kib as f64) / (b.subscribers - a.subscribers) as f64;
        println!(
            "{:?} RSS slope between N={} and N={}: {:.0} KiB per student",
            a.server, a.subscribers, b.subscribers, slope
        );
    }
    println!("{}", serde_json::to_string(&runs)?);
    Ok(())
}

async fn one_run(
    args: &MediaArgs,
    mut server: UnderTest<'_>,
    n: usize,
) -> anyhow::Result<MediaRun> {
    let pid = server.pid()?;
    let ticks = procfs::clock_ticks_per_second();
    let publish = PublishOptions {
        video_bitrate: args.bitrate,
        fps: args.fps,
        ..PublishOptions::default()
    };
    let mut recording = None;
    let recordings_dir = match &server {
        UnderTest::Lectern(s, true) => s.data_dir().map(|d| d.join("recordings")),
        _ => None,
    };
    let (teacher, target, kind) = match &server {
        UnderTest::Lectern(server, record) => {
            let room = token::random_room("bench");
            let minter = TokenMinter::new(server.secret(), room.clone());
            let url = server.ws_url();
            let teacher = Bot::publish(
                bot_options(&minter, &url, "teacher", Role::Instructor)?,
                publish,
            )
            .await?;
            if *record {
                teacher.wait_connected(CONNECT_TIMEOUT).await?;
                let token = minter.mint("ta", "TA", Role::Ta)?;
                recording = Some(crate::recording::start(&url, token).await?);
            }
            let target = Target::Lectern {
                url,
                room,
                secret: server.secret().to_owned(),
            };
            let kind = if *record {
                ServerKind::LecternRec
            } else {
                ServerKind::Lectern
            };
            (teacher, target, kind)
        }
        UnderTest::Janus(janus, kind) => {
            let (url, ip) = (janus.ws_url(), janus.media_ip());
            let (teacher, room, feed) = janus::publish(&url, ip, publish).await?;
            (
                teacher,
                Target::Janus {
                    url,
                    room,
                    feed,
                    ip,
                },
                *kind,
            )
        }
    };
    teacher.wait_connected(CONNECT_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_base_kib = Proc::Pid(pid)
        .rss_kib()
        .context("reading the server's RSS")?;

    // Shares: this process takes the first, each child one of the others.
    let procs = args.procs.min(n);
    let shares = split(n, procs);
    let concurrency = (args.connect_concurrency / procs).max(1);
    let started = Instant::now();
    let mut children = Vec::new();
    for (k, share) in shares.iter().enumerate().skip(1) {
        let child = StudentProc::spawn(k, share.clone(), &target, concurrency)
            .with_context(|| format!("starting student process {k}"))?;
        children.push(child);
    }
    let own = async {
        let students = join_students(&target, shares[0].clone(), concurrency).await?;
        wait_receiving(&students).await?;
        Ok::<_, anyhow::Error>(students)
    };
    let others = async {
        for c in &mut children {
            c.wait_ready().await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (students, ready) = tokio::join!(own, others);
    let students = students.context("the students of the parent process")?;
    ready?;
    server.check_alive()?;
    eprintln!(
        "N={n}: {n} students in {procs} process(es) receiving after {:.1} s; warming up",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;

    let published = |bot: &Bot| {
        let c = bot.sent();
        c.video_packets.load(std::sync::atomic::Ordering::Relaxed)
            + c.audio_packets.load(std::sync::atomic::Ordering::Relaxed)
    };

    let counters0 = server.counters().await?;
    let cpu0 = Proc::Pid(pid)
        .cpu_times(ticks)
        .context("reading the server's CPU")?;
    let tool0 = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let sent0 = published(&teacher);
    let disk0 = recordings_dir
        .as_deref()
        .map_or(0, crate::recording::dir_bytes);
    let (packets0, latency0) = snapshot(&students);
    for c in &mut children {
        c.send("start").await?;
    }
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    for c in &mut children {
        c.send("stop").await?;
    }
    let (packets1, latency1) = snapshot(&students);
    let sent1 = published(&teacher);
    let tool1 = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let cpu1 = Proc::Pid(pid)
        .cpu_times(ticks)
        .context("reading the server's CPU")?;
    let counters1 = server.counters().await?;
    let window = t0.elapsed().as_secs_f64();
    let disk1 = recordings_dir
        .as_deref()
        .map_or(0, crate::recording::dir_bytes);
    drop(recording);
    let rss_kib = Proc::Pid(pid)
        .rss_kib()
        .context("reading the server's RSS")?;
    server.check_alive()?;

    tokio::time::sleep(GAP_GRACE).await;
    let mut total = ShareReport {
        packets: packets1 - packets0,
        tool_cpu_s: tool1.since(tool0).total().as_secs_f64(),
        ..ShareReport::default()
    };
    for s in &students {
        for t in s.received() {
            total.open_gaps += t.seq.lost();
            total.bad_payloads += t.bad_payloads;
        }
    }
    let mut latency = latency1.since(&latency0);
    for c in &mut children {
        let r = c.report().await?;
        latency.merge(&Histogram::from_buckets(&r.latency, r.latency_max));
        total.packets += r.packets;
        total.open_gaps += r.open_gaps;
        total.bad_payloads += r.bad_payloads;
        total.tool_cpu_s += r.tool_cpu_s;
    }
    teacher.close().await;
    for s in students {
        s.close().await;
    }

    let (server_received, server_forwarded) = match (counters0, counters1) {
        (Some((r0, f0)), Some((r1, f1))) => ((r1 - r0).max(0.0) as u64, (f1 - f0).max(0.0) as u64),
        _ => (0, 0),
    };
    let counted = !kind.is_janus();
    let received = total.packets;
    let published_packets = sent1 - sent0;
    let expected = published_packets * n as u64;
    let server_cpu = cpu1.since(cpu0).total().as_secs_f64();
    let pct_short = |got: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            (1.0 - got as f64 / of as f64).max(0.0) * 100.0
        }
    };
    let per = |cpu: f64, packets: u64| {
        if packets == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / packets as f64
        }
    };
    let unknown = |v: f64| if counted { v } else { f64::NAN };
    Ok(MediaRun {
        server: kind,
        subscribers: n,
        window_s: window,
        published_packets,
        expected,
        procs,
        server_received,
        server_forwarded,
        received,
        received_per_s: received as f64 / window,
        loss_pct: pct_short(received, expected),
        uplink_loss_pct: unknown(pct_short(server_received, published_packets)),
        server_loss_pct: unknown(pct_short(server_forwarded, server_received * n as u64)),
        student_loss_pct: unknown(pct_short(received, server_forwarded)),
        open_gaps: total.open_gaps,
        bad_payloads: total.bad_payloads,
        server_cpu_s: server_cpu,
        server_cpu_us_per_packet: unknown(per(server_cpu, server_forwarded)),
        server_cpu_us_per_received: per(server_cpu, received),
        server_cpu_pct: server_cpu / window * 100.0,
        tool_cpu_pct: total.tool_cpu_s / window * 100.0,
        latency_p50_us: latency.quantile(0.5).unwrap_or(0),
        latency_p99_us: latency.quantile(0.99).unwrap_or(0),
        latency_max_us: latency.max(),
        rss_base_kib,
        rss_kib,
        rss_per_subscriber_kib: rss_kib.saturating_sub(rss_base_kib) as f64 / n as f64,
        recording_kib_per_s: disk1.saturating_sub(disk0) as f64 / 1024.0 / window,
    })
}

pub(crate) fn bot_options(
    minter: &TokenMinter,
    url: &str,
    sub: &str,
    role: Role,
) -> anyhow::Result<BotOptions> {
    Ok(BotOptions {
        url: url.to_owned(),
        token: minter.mint(sub, sub, role)?,
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    })
}

/// `n` students in `parts` consecutive ranges whose sizes differ by at most one.
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for k in 0..parts {
        let len = n / parts + usize::from(k < n % parts);
        out.push(start..start + len);
        start += len;
    }
    out
}

/// Join the students numbered `range`, `concurrency` at a time.
async fn join_students(
    target: &Target,
    range: Range<usize>,
    concurrency: usize,
) -> anyhow::Result<Vec<Bot>> {
    let mut students: Vec<Bot> = Vec::with_capacity(range.len());
    let mut pending = range.map(|i| format!("s{i:04}"));
    loop {
        let batch: Vec<String> = pending.by_ref().take(concurrency.max(1)).collect();
        if batch.is_empty() {
            break;
        }
        let mut joins = Vec::new();
        for sub in batch {
            match target {
                Target::Lectern { url, room, secret } => {
                    let minter = TokenMinter::new(secret, room.clone());
                    let o = bot_options(&minter, url, &sub, Role::Student)?;
                    joins.push(tokio::spawn(async move {
                        let began = Instant::now();
                        let bot = Bot::subscribe(o).await?;
                        if let Err(e) = bot.wait_connected(CONNECT_TIMEOUT).await {
                            // Which side gave up, and when: the peer connection (webrtc-rs)
                            // or the WebSocket (the server's close, if it sent one).
                            let websocket = bot.signalling_ended();
                            return Err(anyhow::Error::new(e).context(format!(
                                "student {sub}, {:.1} s after it began joining (its WebSocket: {})",
                                began.elapsed().as_secs_f64(),
                                websocket.as_deref().unwrap_or("open")
                            )));
                        }
                        Ok::<Bot, anyhow::Error>(bot)
                    }));
                }
                &Target::Janus {
                    ref url,
                    room,
                    feed,
                    ip,
                } => {
                    let url = url.clone();
                    joins.push(tokio::spawn(async move {
                        let bot = janus::subscribe(&url, ip, room, feed).await?;
                        bot.wait_connected(CONNECT_TIMEOUT).await?;
                        Ok::<Bot, anyhow::Error>(bot)
                    }));
                }
            }
        }
        for j in joins {
            let joined = students.len();
            let bot = j.await.context("a student task")?.with_context(|| {
                // The students already joined: whether they are still connected says if the
                // failure is this student's alone or the whole process's.
                let failed = students.iter().filter(|s| s.has_failed()).count();
                let closed = students
                    .iter()
                    .filter(|s| s.signalling_ended().is_some())
                    .count();
                format!(
                    "after {joined} students of this process had joined \
                     ({failed} of them with a failed peer connection, {closed} with a closed WebSocket)"
                )
            })?;
            students.push(bot);
        }
    }
    Ok(students)
}

async fn wait_receiving(students: &[Bot]) -> anyhow::Result<()> {
    let receiving = |s: &Bot| {
        let r = s.received();
        r.iter().any(|t| t.kind == "video" && t.packets > 0)
            && r.iter().any(|t| t.kind == "audio" && t.packets > 0)
    };
    let waited = wait_for("every student to receive audio and video", || {
        students.iter().all(receiving)
    })
    .await;
    if waited.is_err() {
        // Say who waited and for what, so that a run that never gets every student receiving
        // can be told apart: no connection, no offer, an offer with nothing arriving at the
        // socket, or packets that webrtc-rs took in but the bot never read.
        let waiting: Vec<&Bot> = students.iter().filter(|s| !receiving(s)).collect();
        eprintln!(
            "{} of {} students never received both audio and video; the first of them:",
            waiting.len(),
            students.len()
        );
        for s in waiting.iter().take(5) {
            let offered: Vec<String> = s
                .offered()
                .iter()
                .map(|t| format!("{} mid {}", t.kind, t.mid))
                .collect();
            let received: Vec<String> = s
                .received()
                .iter()
                .map(|t| {
                    format!(
                        "{} mid {} {} packets, {} keyframes, first a keyframe {:?}",
                        t.kind,
                        t.mid.as_deref().unwrap_or("?"),
                        t.packets,
                        t.keyframes,
                        t.first_is_keyframe
                    )
                })
                .collect();
            let (streams, transport) = s.inbound().await;
            let inbound: Vec<String> = streams
                .iter()
                .map(|i| {
                    format!(
                        "{} mid {} ssrc {}: {} packets, {} discarded, {} PLI, {} NACK",
                        i.kind, i.mid, i.ssrc, i.packets, i.discarded, i.plis, i.nacks
                    )
                })
                .collect();
            eprintln!(
                "  {}: connected {}, failed {}, offered {offered:?}, received {received:?}, \
                 webrtc-rs inbound {inbound:?}, transport packets received {transport:?}, \
                 signalling ended {:?}, errors {:?}",
                s.participant_id(),
                s.is_connected(),
                s.has_failed(),
                s.signalling_ended(),
                s.errors()
            );
        }
    }
    waited
}

fn snapshot(students: &[Bot]) -> (u64, Histogram) {
    let mut packets = 0;
    let mut latency = Histogram::default();
    for s in students {
        for t in s.received() {
            packets += t.packets;
            latency.merge(&t.latency_us);
        }
    }
    (packets, latency)
}

/// What one student process measured over the window: its stdout's last line.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ShareReport {
    packets: u64,
    open_gaps: u64,
    bad_payloads: u64,
    tool_cpu_s: f64,
    /// Non-empty latency buckets, `(index, count)`.
    latency: Vec<(usize, u64)>,
    latency_max: u64,
}

/// A child `lectern-bench media-students` process, driven over its stdin and stdout.
struct StudentProc {
    k: usize,
    share: Range<usize>,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl StudentProc {
    fn spawn(
        k: usize,
        share: Range<usize>,
        target: &Target,
        concurrency: usize,
    ) -> anyhow::Result<StudentProc> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut cmd = tokio::process::Command::new(exe);
        if let Some(threads) = crate::threads_arg() {
            cmd.arg("--threads").arg(threads.to_string());
        }
        cmd.arg("media-students");
        match target {
            Target::Lectern { url, room, secret } => {
                cmd.arg("--url")
                    .arg(url)
                    .arg("--room")
                    .arg(room)
                    .env(SECRET_ENV, secret);
            }
            Target::Janus {
                url,
                room,
                feed,
                ip,
            } => {
                cmd.arg("--url")
                    .arg(url)
                    .arg("--room")
                    .arg(room.to_string())
                    .arg("--janus-feed")
                    .arg(feed.to_string())
                    .arg("--janus-ip")
                    .arg(ip.to_string());
            }
        }
        cmd.arg("--first")
            .arg(share.start.to_string())
            .arg("--count")
            .arg(share.len().to_string())
            .arg("--connect-concurrency")
            .arg(concurrency.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok(StudentProc {
            k,
            share,
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    fn name(&self) -> String {
        format!(
            "student process {} (students {}..{}, pid {})",
            self.k,
            self.share.start,
            self.share.end,
            self.child.id().unwrap_or(0)
        )
    }

    async fn next_line(&mut self, timeout: Duration, waiting_for: &str) -> anyhow::Result<String> {
        match tokio::time::timeout(timeout, self.stdout.next_line()).await {
            Err(_) => bail!(
                "{} did not report {waiting_for} within {} s",
                self.name(),
                timeout.as_secs()
            ),
            Ok(Err(e)) => Err(e).with_context(|| format!("reading from {}", self.name())),
            Ok(Ok(None)) => bail!(
                "{} exited before reporting {waiting_for} (its error is above)",
                self.name()
            ),
            Ok(Ok(Some(line))) => Ok(line),
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let line = self.next_line(READY_TIMEOUT, "ready").await?;
        if line.trim() != "ready" {
            bail!("{} said {line:?} instead of ready", self.name());
        }
        Ok(())
    }

    async fn send(&mut self, command: &str) -> anyhow::Result<()> {
        let name = self.name();
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .with_context(|| format!("writing {command} to {name}"))?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn report(&mut self) -> anyhow::Result<ShareReport> {
        let line = self.next_line(REPORT_TIMEOUT, "its counts").await?;
        let report = serde_json::from_str(&line)
            .with_context(|| format!("parsing the report of {}", self.name()))?;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        Ok(report)
    }
}

/// The hidden `media-students` subcommand: a share of the students of a `media --procs` run.
#[derive(Debug, clap::Args)]
pub struct StudentsArgs {
    /// `ws://127.0.0.1:PORT/ws` of the server.
    #[arg(long)]
    url: String,
    /// The room to join.
    #[arg(long)]
    room: String,
    /// Number of the first student of this share.
    #[arg(long)]
    first: usize,
    /// Students in this share.
    #[arg(long)]
    count: usize,
    #[arg(long, default_value_t = 4)]
    connect_concurrency: usize,
    /// The server is Janus (`--url` its WebSocket, `--room` its numeric room) and this is the
    /// publisher's feed id.
    #[arg(long)]
    janus_feed: Option<u64>,
    /// With `--janus-feed`: the local address Janus's ICE uses; the students bind to it.
    #[arg(long)]
    janus_ip: Option<Ipv4Addr>,
}

/// Join the share, print `ready`, snapshot on `start` and `stop` (stdin), print a
/// [`ShareReport`] as JSON and exit. A closed stdin (the parent died) ends the process.
pub async fn students(args: StudentsArgs) -> anyhow::Result<()> {
    if !args.url.starts_with("ws://127.0.0.1:") {
        bail!("--url must be ws://127.0.0.1:PORT/ws");
    }
    if args.count == 0 || args.count > MAX_SUBSCRIBERS {
        bail!("--count takes a number from 1 to {MAX_SUBSCRIBERS}");
    }
    let target = match args.janus_feed {
        Some(feed) => Target::Janus {
            url: args.url.clone(),
            room: args
                .room
                .parse()
                .context("--room of janus must be a number")?,
            feed,
            ip: args.janus_ip.context("--janus-feed needs --janus-ip")?,
        },
        None => Target::Lectern {
            url: args.url.clone(),
            room: args.room.clone(),
            secret: std::env::var(SECRET_ENV)
                .with_context(|| format!("{SECRET_ENV} is not set"))?,
        },
    };
    let ticks = procfs::clock_ticks_per_second();
    let range = args.first..args.first + args.count;
    let students = join_students(&target, range.clone(), args.connect_concurrency)
        .await
        .with_context(|| format!("students {}..{}", range.start, range.end))?;
    wait_receiving(&students).await?;
    say("ready")?;
    expect("start").await?;
    let tool0 = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let (packets0, latency0) = snapshot(&students);
    expect("stop").await?;
    let (packets1, latency1) = snapshot(&students);
    let tool1 = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    tokio::time::sleep(GAP_GRACE).await;
    let (mut open_gaps, mut bad_payloads) = (0, 0);
    for s in &students {
        for t in s.received() {
            open_gaps += t.seq.lost();
            bad_payloads += t.bad_payloads;
        }
    }
    let latency = latency1.since(&latency0);
    let report = ShareReport {
        packets: packets1 - packets0,
        open_gaps,
        bad_payloads,
        tool_cpu_s: tool1.since(tool0).total().as_secs_f64(),
        latency: latency.nonzero_buckets(),
        latency_max: latency.max(),
    };
    say(&serde_json::to_string(&report)?)?;
    for s in students {
        s.close().await;
    }
    Ok(())
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
        "{:?} N={}: server forwarded {} / students received {} ({:.0} pkt/s), {:.2} µs server CPU/forwarded pkt ({:.2} ÷ received), loss {:.3}% (uplink {:.3}%, server {:.3}%, students {:.3}%), gaps {}, p50 {} µs, p99 {} µs, {:.0} KiB/student",
        r.server,
        r.subscribers,
        r.server_forwarded,
        r.received,
        r.received_per_s,
        r.server_cpu_us_per_packet,
        r.server_cpu_us_per_received,
        r.loss_pct,
        r.uplink_loss_pct,
        r.server_loss_pct,
        r.student_loss_pct,
        r.open_gaps,
        r.latency_p50_us,
        r.latency_p99_us,
        r.rss_per_subscriber_kib
    );
}

/// Where the loss happened: before the server's send, after it (the students), or nowhere.
fn loss_side(r: &MediaRun) -> String {
    // The server publishes its counters every 100 ms, so over a 10 s window up to ~1% either
    // way is counter skew, not loss.
    let noise = 100.0 / (r.window_s * 10.0).max(1.0);
    let mut sides = Vec::new();
    if r.uplink_loss_pct > noise {
        sides.push("uplink (publisher → server read)");
    }
    if r.server_loss_pct > noise {
        sides.push("server");
    }
    if r.student_loss_pct > noise {
        sides.push("students");
    }
    match sides.as_slice() {
        [] if r.loss_pct > noise => "unclear".into(),
        [] => "none".into(),
        _ => sides.join(" + "),
    }
}

/// For each N run with and without recording: the extra server CPU recording costs.
fn print_recording_cost(runs: &[MediaRun]) {
    for rec in runs.iter().filter(|r| r.server == ServerKind::LecternRec) {
        let Some(plain) = runs
            .iter()
            .find(|r| r.server == ServerKind::Lectern && r.subscribers == rec.subscribers)
        else {
            continue;
        };
        println!(
            "recording at N={}: server CPU {:.1}% -> {:.1}% ({:+.1}%), {:.2} -> {:.2} µs per forwarded packet ({:+.1}%), disk {:.0} KiB/s, RSS {:.1} -> {:.1} MiB",
            rec.subscribers,
            plain.server_cpu_pct,
            rec.server_cpu_pct,
            (rec.server_cpu_pct / plain.server_cpu_pct - 1.0) * 100.0,
            plain.server_cpu_us_per_packet,
            rec.server_cpu_us_per_packet,
            (rec.server_cpu_us_per_packet / plain.server_cpu_us_per_packet - 1.0) * 100.0,
            rec.recording_kib_per_s,
            plain.rss_kib as f64 / 1024.0,
            rec.rss_kib as f64 / 1024.0,
        );
    }
}

fn print_table(runs: &[MediaRun]) {
    println!(
        "| server | N | procs | server forwarded | students received | loss % (uplink / server / students) | loss side | server CPU µs/pkt (÷ forwarded / ÷ received) | server CPU % | tool CPU % | open gaps | bad payloads | latency p50 / p99 (ms) | RSS base → with N (MiB) | KiB per student |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        println!(
            "| {:?} | {} | {} | {} | {} | {:.3} ({:.3} / {:.3} / {:.3}) | {} | {:.2} / {:.2} | {:.0} | {:.0} | {} | {} | {:.2} / {:.2} | {:.1} → {:.1} | {:.0} |",
            r.server,
            r.subscribers,
            r.procs,
            r.server_forwarded,
            r.received,
            r.loss_pct,
            r.uplink_loss_pct,
            r.server_loss_pct,
            r.student_loss_pct,
            loss_side(r),
            r.server_cpu_us_per_packet,
            r.server_cpu_us_per_received,
            r.server_cpu_pct,
            r.tool_cpu_pct,
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

/// For each N measured on Lectern and on a Janus configuration: Lectern's CPU per packet the
/// students received ÷ that Janus's (the only basis both have), and the other figures side by
/// side; one row per Janus configuration (`janus_loops`: the tuned one's `event_loops`).
fn print_ratios(runs: &[MediaRun], janus_loops: u16) {
    let pairs: Vec<(&MediaRun, &MediaRun)> = runs
        .iter()
        .filter(|l| l.server == ServerKind::Lectern)
        .flat_map(|l| {
            runs.iter()
                .filter(|j| j.server.is_janus() && j.subscribers == l.subscribers)
                .map(move |j| (l, j))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!();
    println!(
        "| N | procs | Janus | CPU µs per received pkt, Lectern / Janus | ratio Lectern/Janus | Lectern µs per forwarded pkt | loss % Lectern / Janus | latency p50 / p99 ms, Lectern | latency p50 / p99 ms, Janus | KiB per student Lectern / Janus |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (l, j) in pairs {
        let config = match j.server {
            ServerKind::Janus => format!("event_loops = {janus_loops}"),
            _ => "default (thread per handle)".to_owned(),
        };
        println!(
            "| {} | {} | {} | {:.2} / {:.2} | {:.2} | {:.2} | {:.3} / {:.3} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} / {:.0} |",
            l.subscribers,
            l.procs,
            config,
            l.server_cpu_us_per_received,
            j.server_cpu_us_per_received,
            l.server_cpu_us_per_received / j.server_cpu_us_per_received,
            l.server_cpu_us_per_packet,
            l.loss_pct,
            j.loss_pct,
            l.latency_p50_us as f64 / 1000.0,
            l.latency_p99_us as f64 / 1000.0,
            j.latency_p50_us as f64 / 1000.0,
            j.latency_p99_us as f64 / 1000.0,
            l.rss_per_subscriber_kib,
            j.rss_per_subscriber_kib
        );
    }
}

/// One line to the parent on stdout (blocking: a few short lines per run).
fn say(line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Wait for the parent to write `word` on stdin (read on a blocking thread).
async fn expect(word: &'static str) -> anyhow::Result<()> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| (n, line))
    })
    .await
    .context("the stdin reader")??;
    match line {
        (0, _) => bail!("stdin closed while waiting for {word}"),
        (_, l) if l.trim() == word => Ok(()),
        (_, l) => bail!("expected {word} on stdin, got {l:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_every_student_once() {
        assert_eq!(split(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(split(5, 1), vec![0..5]);
        let parts = split(200, 7);
        assert_eq!(parts.iter().map(|r| r.len()).sum::<usize>(), 200);
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn share_report_round_trips() {
        let r = ShareReport {
            packets: 7,
            latency: vec![(3, 2)],
            latency_max: 3,
            ..ShareReport::default()
        };
        let back: ShareReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(
            (back.packets, back.latency, back.latency_max),
            (7, vec![(3, 2)], 3)
        );
    }
}
