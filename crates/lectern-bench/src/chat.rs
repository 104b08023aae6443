//! `lectern-bench chat`: fan-out latency and server cost of chat in one big room.
//!
//! Timeline: connect N clients (bounded concurrency) and wait for every welcome; then send at the
//! target rate for `warmup + duration` seconds. Messages *sent* in the last `duration` seconds
//! (the steady window) are the ones measured; after the window, sending stops and the tool waits
//! (at most `--drain` seconds) for their last deliveries. Server CPU is read at the window's start
//! and once the last delivery arrived, so it covers all the work those messages caused.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use lectern_proto::Role;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::client::{self, ClientReport, ClientSpec, Ended, Shared};
use crate::procfs::{self, CpuTimes, Proc};
use crate::report::{ChatSummary, Latency, ServerMetrics};
use crate::server::{Metrics, Server, ServerArgs};
use crate::token::{self, TokenMinter};

/// Longest run the tool accepts, so it always stops by itself.
const MAX_RUN_SECONDS: f64 = 3600.0;
const MAX_CLIENTS: usize = 20_000;
const REPORT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Participants in the room (one instructor, the rest students). A comma-separated list
    /// (`100,1000`) runs once per size, each with a fresh server, and then prints the server's
    /// memory per participant: the slope of RSS over room size between the smallest and the
    /// largest.
    #[arg(long = "clients", value_delimiter = ',', default_value = "100")]
    client_counts: Vec<usize>,
    /// Run the list of `--clients` sizes this many times over, alternating (`100,1000` with
    /// `--repeat 3`: 100, 1000, 100, 1000, 100, 1000), each run with a fresh server; the
    /// memory per participant is then taken from each size's median RSS. RSS after a join storm
    /// differs from one run to the next by several MiB (how the allocator's heap was laid out
    /// while hundreds of connections joined at once), so a single pair is a noisy figure.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The room size of the run under way (one of `client_counts`).
    #[arg(skip)]
    clients: usize,
    /// Chat messages per second, in total over all senders.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Length of the measured steady window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of sending before the window starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// How many participants send (spread evenly; default: all), so that no one participant
    /// exceeds the server's per-participant chat rate limit.
    #[arg(long)]
    senders: Option<usize>,
    /// Clients connecting (WebSocket handshake + hello) at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Most seconds to wait after the window for deliveries still in flight; later ones count
    /// as missing.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    #[command(flatten)]
    server: ServerArgs,
    /// Room id [default: a random `bench-…` name].
    #[arg(long)]
    room: Option<String>,
    /// Also write every in-window delivery as CSV (`sent_ms,latency_us,receiver`; sent_ms from
    /// the window's start), to see when slow deliveries happen.
    #[arg(long)]
    latency_csv: Option<PathBuf>,
}

impl ChatArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if self.client_counts.is_empty()
            || self
                .client_counts
                .iter()
                .any(|n| !(2..=MAX_CLIENTS).contains(n))
        {
            bail!("--clients must be between 2 and {MAX_CLIENTS} (or a list of such sizes)");
        }
        if (self.client_counts.len() > 1 || self.repeat > 1) && self.server.attaches() {
            bail!(
                "several --clients sizes or --repeat need a server of their own each (not --url)"
            );
        }
        if !(1..=100).contains(&self.repeat) {
            bail!("--repeat must be from 1 to 100");
        }
        if !(self.rate > 0.0 && self.rate <= 1_000_000.0) {
            bail!("--rate must be positive (at most 1,000,000)");
        }
        if !(self.duration > 0.0 && self.warmup >= 0.0 && self.drain >= 0.0)
            || self.duration + self.warmup + self.drain > MAX_RUN_SECONDS
        {
            bail!(
                "--duration must be positive, --warmup and --drain non-negative, \
                 and together at most {MAX_RUN_SECONDS} s"
            );
        }
        let smallest = self.client_counts.iter().copied().min().unwrap_or(0);
        if self.senders == Some(0) || self.senders.is_some_and(|s| s > smallest) {
            bail!("--senders must be between 1 and --clients");
        }
        if self.connect_concurrency == 0 {
            bail!("--connect-concurrency must be at least 1");
        }
        Ok(())
    }

    fn sender_count(&self) -> usize {
        self.senders.unwrap_or(self.clients)
    }
}

pub async fn run(mut args: ChatArgs) -> anyhow::Result<()> {
    args.validate()?;
    let mut summaries = Vec::new();
    for _ in 0..args.repeat {
        for clients in args.client_counts.clone() {
            args.clients = clients;
            summaries.push(run_one(&args).await?);
        }
    }
    let sizes: Vec<_> = summaries
        .iter()
        .map(|s| (s.clients, s.server_rss_mib_end))
        .collect();
    if let Some(slope) = RssSlope::of(&sizes) {
        slope.print();
    }
    Ok(())
}

/// Server memory per participant: how RSS grew from the smallest room to the largest.
#[derive(Debug, PartialEq, serde::Serialize)]
struct RssSlope {
    clients: [usize; 2],
    /// The median of each size's runs (with `--repeat`; else its one run).
    server_rss_mib_end: [f64; 2],
    /// From the medians.
    rss_kib_per_participant: f64,
    /// Each repetition's own figure: its run of the largest size against its run of the
    /// smallest, in the order run.
    rss_kib_per_participant_each: Vec<f64>,
}

impl RssSlope {
    /// From each run's (room size, server RSS at its end in MiB), in the order run; none
    /// without two sizes whose RSS was read (a server not spawned by this tool).
    fn of(runs: &[(usize, Option<f64>)]) -> Option<RssSlope> {
        let small = runs.iter().map(|r| r.0).min()?;
        let large = runs.iter().map(|r| r.0).max()?;
        let participants = large.checked_sub(small).filter(|n| *n > 0)?;
        let of_size = |size: usize| -> Option<Vec<f64>> {
            runs.iter().filter(|r| r.0 == size).map(|r| r.1).collect()
        };
        let (smalls, larges) = (of_size(small)?, of_size(large)?);
        let kib = |a: f64, b: f64| (b - a) * 1024.0 / participants as f64;
        let (a, b) = (median(&smalls), median(&larges));
        Some(RssSlope {
            clients: [small, large],
            server_rss_mib_end: [a, b],
            rss_kib_per_participant: kib(a, b),
            rss_kib_per_participant_each: smalls
                .iter()
                .zip(&larges)
                .map(|(&a, &b)| kib(a, b))
                .collect(),
        })
    }

    fn print(&self) {
        let each: Vec<String> = self
            .rss_kib_per_participant_each
            .iter()
            .map(|k| format!("{k:.1}"))
            .collect();
        println!(
            "server memory per participant: {:.1} KiB (RSS {:.1} MiB at {} clients, {:.1} MiB \
             at {}; each run: {} KiB)",
            self.rss_kib_per_participant,
            self.server_rss_mib_end[0],
            self.clients[0],
            self.server_rss_mib_end[1],
            self.clients[1],
            each.join(", ")
        );
        println!(
            "{}",
            serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    }
}

/// The middle value (the mean of the two middle ones for an even count); `values` not empty.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

async fn run_one(args: &ChatArgs) -> anyhow::Result<ChatSummary> {
    let per_sender = args.rate / args.sender_count() as f64;
    if args.server.attaches() && per_sender > 5.0 {
        eprintln!(
            "note: each sender sends {per_sender:.2} msg/s; the server's default \
             per-participant limit is 5/s (raise it or pass more --senders)"
        );
    }
    let mut server = Server::start_or_attach(&args.server, args.clients, per_sender).await?;
    // Whatever happens (error, Ctrl-C), a spawned server is stopped before we return.
    let outcome = tokio::select! {
        outcome = measure(args, &mut server) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    server.shutdown().await;
    let summary = outcome?;
    summary.print_table();
    println!("{}", summary.to_json_line());
    Ok(summary)
}

async fn measure(args: &ChatArgs, server: &mut Server) -> anyhow::Result<ChatSummary> {
    let ticks = procfs::clock_ticks_per_second();
    let server_proc = server.pid().map(Proc::Pid);
    let room = args
        .room
        .clone()
        .unwrap_or_else(|| token::random_room("bench"));
    let minter = TokenMinter::new(server.secret(), room);
    let shared = Arc::new(Shared::new());
    let connecting = Arc::new(Semaphore::new(args.connect_concurrency));
    let (welcomed_tx, mut welcomed_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let sender_count = args.sender_count();

    // Senders are spread evenly over the clients.
    let mut senders = Vec::with_capacity(sender_count);
    let mut handles = Vec::with_capacity(args.clients);
    let connect_started = Instant::now();
    eprintln!(
        "connecting {} clients ({} at a time)",
        args.clients, args.connect_concurrency
    );
    for index in 0..args.clients {
        let role = if index == 0 {
            Role::Instructor
        } else {
            Role::Student
        };
        let sub = format!("bench-{index}");
        let spec = ClientSpec {
            index,
            url: server.ws_url(),
            token: minter.mint(&sub, &format!("Bench {index}"), role)?,
        };
        let (send_tx, send_rx) = mpsc::channel(16);
        if senders.len() < sender_count && index * sender_count / args.clients >= senders.len() {
            senders.push(send_tx);
        }
        handles.push(tokio::spawn(client::run(
            spec,
            shared.clone(),
            connecting.clone(),
            welcomed_tx.clone(),
            send_rx,
            stop_rx.clone(),
        )));
    }
    drop(welcomed_tx);

    let result = drive(
        args,
        server,
        &shared,
        senders,
        &mut welcomed_rx,
        connect_started,
        ticks,
        server_proc,
    )
    .await;

    // Stop every client and collect what it saw (also after an error, so nothing lingers).
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + REPORT_TIMEOUT;
    let mut reports = Vec::with_capacity(handles.len());
    for handle in handles {
        let abort = handle.abort_handle();
        match tokio::time::timeout_at(deadline, handle).await {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => eprintln!("a client task failed: {e}"),
            Err(_) => abort.abort(),
        }
    }
    let window = result?;
    if let Some(path) = &args.latency_csv {
        write_latency_csv(path, &shared, &reports)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summarize(args, sender_count, &shared, window, reports))
}

fn write_latency_csv(
    path: &std::path::Path,
    shared: &Shared,
    reports: &[ClientReport],
) -> std::io::Result<()> {
    use std::io::Write as _;
    let start_ns = shared.window_start_ns();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "sent_ms,latency_us,receiver")?;
    for (receiver, report) in reports.iter().enumerate() {
        for (&t_ns, &latency) in report.sent_at_ns.iter().zip(&report.latencies_us) {
            let sent_ms = t_ns.saturating_sub(start_ns) as f64 / 1e6;
            writeln!(out, "{sent_ms:.3},{latency},{receiver}")?;
        }
    }
    out.flush()
}

/// Samples taken during the run, before the client reports are in.
#[derive(Debug)]
struct WindowSamples {
    connect_s: f64,
    server_cpu: Option<CpuTimes>,
    server_rss_kib: Option<u64>,
    bench_cpu_s: f64,
    span_s: f64,
    sends_skipped: u64,
    metrics_start: Option<Metrics>,
    metrics_end: Option<Metrics>,
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &ChatArgs,
    server: &mut Server,
    shared: &Arc<Shared>,
    senders: Vec<mpsc::Sender<()>>,
    welcomed: &mut mpsc::UnboundedReceiver<Result<usize, String>>,
    connect_started: Instant,
    ticks: u64,
    server_proc: Option<Proc>,
) -> anyhow::Result<WindowSamples> {
    // Every client answers once (welcomed or failed) within its own connect timeout, after
    // waiting its turn for a permit; this deadline only guards against a wedged run.
    let connect_deadline = tokio::time::Instant::now()
        + Duration::from_secs(30)
        + Duration::from_millis(60) * u32::try_from(args.clients).unwrap_or(u32::MAX);
    let mut ok = 0usize;
    let mut errors = Vec::new();
    while ok + errors.len() < args.clients {
        match tokio::time::timeout_at(connect_deadline, welcomed.recv()).await {
            Ok(Some(Ok(_))) => ok += 1,
            Ok(Some(Err(e))) => errors.push(e),
            Ok(None) => break,
            Err(_) => {
                errors.push("connect phase timed out".to_owned());
                break;
            }
        }
    }
    if !errors.is_empty() || ok < args.clients {
        server.check_alive()?;
        bail!(
            "only {ok} of {} clients were welcomed; first errors:\n  {}",
            args.clients,
            errors
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    eprintln!("all {ok} clients welcomed in {connect_s:.2} s; warming up");

    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.duration);
    let since_epoch =
        |t: Instant| u64::try_from(t.duration_since(shared.epoch).as_nanos()).unwrap_or(u64::MAX);
    shared.set_window(since_epoch(window_start), since_epoch(window_end));
    let pacer = tokio::spawn(pace(senders, args.rate, start, window_end));

    tokio::time::sleep_until(window_start.into()).await;
    let server_cpu_start = server_proc.and_then(|p| p.cpu_times(ticks));
    let bench_cpu_start = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let span_start = Instant::now();
    let metrics_start = server.metrics().await.ok();
    eprintln!("steady window: {} s", args.duration);

    tokio::time::sleep_until(window_end.into()).await;
    let sends_skipped = pacer.await.context("the pacer task failed")?;
    server.check_alive()?;

    // Wait for the window's messages to reach everyone (or the drain deadline).
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain);
    let receivers_other = (args.clients - 1) as u64;
    loop {
        let sent = shared.sent_in_window.load(Ordering::Relaxed);
        let others = shared.delivered_to_others.load(Ordering::Relaxed);
        let own = shared.delivered_to_sender.load(Ordering::Relaxed);
        if (others >= sent * receivers_other && (own == 0 || own >= sent))
            || Instant::now() >= drain_deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server_cpu_end = server_proc.and_then(|p| p.cpu_times(ticks));
    let bench_cpu_end = Proc::Myself.cpu_times(ticks).unwrap_or_default();
    let span_s = span_start.elapsed().as_secs_f64();
    let server_rss_kib = server_proc.and_then(Proc::rss_kib);
    let metrics_end = server.metrics().await.ok();
    Ok(WindowSamples {
        connect_s,
        server_cpu: server_cpu_start
            .zip(server_cpu_end)
            .map(|(start, end)| end.since(start)),
        server_rss_kib,
        bench_cpu_s: bench_cpu_end.since(bench_cpu_start).total().as_secs_f64(),
        span_s,
        sends_skipped,
        metrics_start,
        metrics_end,
    })
}

/// Send message k at `start + k / rate` until `end`, round-robin over the senders. A sender
/// whose queue is full (its client is behind on writing) skips that message. Returns the number
/// skipped.
async fn pace(senders: Vec<mpsc::Sender<()>>, rate: f64, start: Instant, end: Instant) -> u64 {
    let mut skipped = 0;
    if senders.is_empty() {
        return skipped;
    }
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        if due >= end {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let sender = &senders[(k % senders.len() as u64) as usize];
        if sender.try_send(()).is_err() {
            skipped += 1;
        }
    }
    skipped
}

fn summarize(
    args: &ChatArgs,
    senders: usize,
    shared: &Shared,
    w: WindowSamples,
    reports: Vec<ClientReport>,
) -> ChatSummary {
    let messages_sent = shared.sent_in_window.load(Ordering::Relaxed);
    let own = shared.delivered_to_sender.load(Ordering::Relaxed);
    let sender_receives_own = own > 0;
    let receivers = if sender_receives_own {
        args.clients
    } else {
        args.clients - 1
    } as u64;
    let expected = messages_sent * receivers;
    let deliveries: u64 = reports.iter().map(|r| r.delivered_in_window).sum();
    let mut latencies: Vec<u32> = Vec::with_capacity(deliveries as usize);
    for r in &reports {
        latencies.extend_from_slice(&r.latencies_us);
    }
    let mut drop_reasons: Vec<String> = Vec::new();
    let mut clients_dropped = 0;
    for ended in reports.iter().filter_map(|r| r.ended.as_ref()) {
        clients_dropped += 1;
        let reason = match ended {
            Ended::Closing(reason) => format!("closing: {reason}"),
            Ended::Closed { .. } | Ended::Disconnected(_) => {
                format!("disconnected: {}", ended.label())
            }
        };
        if !drop_reasons.contains(&reason) && drop_reasons.len() < 5 {
            drop_reasons.push(reason);
        }
    }
    let delta = |name: &str| {
        let end = w.metrics_end.as_ref()?.get(name)?;
        let start = w.metrics_start.as_ref()?.get(name).unwrap_or(0.0);
        Some(end - start)
    };
    let per_delivery = |cpu_s: f64| (deliveries > 0).then(|| cpu_s * 1e6 / deliveries as f64);
    ChatSummary {
        clients: args.clients,
        senders,
        target_rate_per_s: args.rate,
        warmup_s: args.warmup,
        window_s: args.duration,
        connect_s: w.connect_s,
        messages_sent,
        deliveries,
        expected_deliveries: expected,
        missing_deliveries: expected.saturating_sub(deliveries),
        sender_receives_own,
        deliveries_per_s: deliveries as f64 / args.duration,
        latency_ms: Latency::from_micros(&mut latencies),
        server_cpu_s: w.server_cpu.map(|c| c.total().as_secs_f64()),
        server_cpu_user_s: w.server_cpu.map(|c| c.user.as_secs_f64()),
        server_cpu_system_s: w.server_cpu.map(|c| c.system.as_secs_f64()),
        server_cpu_us_per_delivery: w
            .server_cpu
            .and_then(|c| per_delivery(c.total().as_secs_f64())),
        server_rss_mib_end: w.server_rss_kib.map(|k| k as f64 / 1024.0),
        bench_cpu_s: w.bench_cpu_s,
        bench_cpu_percent: 100.0 * w.bench_cpu_s / w.span_s.max(1e-9),
        bench_cpu_us_per_delivery: per_delivery(w.bench_cpu_s),
        clients_dropped,
        drop_reasons,
        sends_skipped: w.sends_skipped,
        acks: reports.iter().map(|r| r.acks).sum(),
        errors: reports.iter().map(|r| r.errors).sum(),
        first_error: reports.iter().find_map(|r| r.first_error.clone()),
        metrics: ServerMetrics {
            ws_connections_end: w
                .metrics_end
                .as_ref()
                .and_then(|m| m.get("lectern_ws_connections")),
            messages_in: delta("lectern_messages_in_total"),
            messages_out: delta("lectern_messages_out_total"),
            slow_clients_dropped: delta("lectern_slow_clients_dropped_total"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rss_slope_is_taken_between_the_smallest_and_the_largest_room() {
        let slope = RssSlope::of(&[(1000, Some(50.0)), (100, Some(20.0)), (500, Some(99.0))])
            .expect("two sizes");
        assert_eq!(slope.clients, [100, 1000]);
        assert_eq!(slope.server_rss_mib_end, [20.0, 50.0]);
        // 30 MiB over 900 participants.
        assert!((slope.rss_kib_per_participant - 30.0 * 1024.0 / 900.0).abs() < 1e-9);
        assert_eq!(RssSlope::of(&[(100, Some(20.0))]), None);
        assert_eq!(RssSlope::of(&[(100, Some(20.0)), (100, Some(21.0))]), None);
        assert_eq!(RssSlope::of(&[(100, None), (1000, Some(50.0))]), None);
    }

    #[test]
    fn with_repeats_the_slope_is_taken_between_medians_and_each_pair_is_kept() {
        let runs = [
            (100, Some(20.0)),
            (1000, Some(50.0)),
            (100, Some(21.0)),
            (1000, Some(44.0)),
            (100, Some(19.0)),
            (1000, Some(47.0)),
        ];
        let slope = RssSlope::of(&runs).expect("two sizes");
        assert_eq!(slope.server_rss_mib_end, [20.0, 47.0]);
        assert!((slope.rss_kib_per_participant - 27.0 * 1024.0 / 900.0).abs() < 1e-9);
        let each: Vec<f64> = [30.0, 23.0, 28.0]
            .iter()
            .map(|mib| mib * 1024.0 / 900.0)
            .collect();
        assert_eq!(slope.rss_kib_per_participant_each.len(), 3);
        for (got, want) in slope.rss_kib_per_participant_each.iter().zip(&each) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
