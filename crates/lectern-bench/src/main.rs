//! `lectern-bench`: load tools for a Lectern server. Not tests: they measure and report.
//!
//! `lectern-bench chat` opens N WebSocket participants in one room, sends chat at a fixed total
//! rate spread over many senders, and measures fan-out latency (each receiver records
//! `now - sent` from a timestamp embedded in the chat text), missing deliveries, and the server's
//! CPU per delivered message and memory. It either spawns `lectern` itself (temp SQLite file,
//! random secret, class live at once) or attaches to a running server on 127.0.0.1.
//!
//! `lectern-bench media` connects one webrtc-rs bot instructor (VP8 + Opus) and N bot students
//! (`lectern-bots`) to a spawned `lectern` and measures server CPU per forwarded RTP packet,
//! loss, one-way latency and server memory per student. With `--servers lectern,janus` it also
//! runs the same load against Janus's VideoRoom (Debian `janus`) and prints the CPU ratio.
//!
//! `lectern-bench soak` holds one class for a long time (default 300 students for 30 minutes:
//! a publishing bot instructor, 100 bot students receiving media, chat-only students of whom
//! most never send a frame) and prints a row per interval: disconnects by who and why, server
//! RSS and CPU, chat delivery latency, media packets and loss per student.
//!
//! Only loopback is ever a target, and every phase has a deadline, so a run always ends by
//! itself. See `docs/BENCHMARKS.md` for the figures measured with it.

mod chat;
mod client;
mod janus;
mod joins;
mod media;
mod procfs;
mod recording;
mod report;
mod server;
mod soak;
mod token;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lectern-bench",
    version,
    about = "Load tools for a Lectern server"
)]
struct Cli {
    /// Tokio worker threads for the load generator (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat fan-out: N participants in one room, M chat messages per second in total.
    Chat(chat::ChatArgs),
    /// Media forwarding: one bot publisher (VP8 + Opus) to N bot subscribers; server CPU per
    /// forwarded packet, loss, latency, memory per subscriber.
    Media(media::MediaArgs),
    /// Joins per second into a cluster: --rooms classes of --per-room students filling at once,
    /// each student entering through a node picked in turn (redirects followed), for each
    /// --nodes cluster size on one PostgreSQL and one Redis.
    #[command(
        after_help = "Three nodes against one (PostgreSQL and Redis on 127.0.0.1):\n  \
                      cargo build --release -p lectern-server -p lectern-bench\n  \
                      target/release/lectern-bench joins --nodes 1,3 --rooms 30 --per-room 20"
    )]
    Joins(joins::JoinsArgs),
    /// Soak: hold one class for --minutes; per interval, disconnects, server memory and CPU,
    /// chat latency, media loss.
    ///
    /// One instructor (a bot publishing VP8 + Opus, and a chat connection), --students students
    /// in the same room: --media-students webrtc-rs bots receiving the lecture, the rest
    /// chat-only WebSocket clients of whom --chatters send chat and the others never send a
    /// frame (silent listeners, as most students are). Chat at --chat-rate from the instructor
    /// and random chatters. Every --interval-secs one row: students connected, disconnects and
    /// reconnects so far with the new ones by who and why (`closing` reason, close code or
    /// error), server RSS and CPU (/proc), this tool's CPU, the server's WebSocket count
    /// (/metrics), chat sent, delivered and latency p50/p99, media packets per student against
    /// those published, loss (unrepaired sequence gaps) and students that received nothing. A
    /// summary and one JSON line at the end. Stops by itself (Ctrl-C: early, with the summary).
    #[command(after_help = "The full soak (about 32 minutes; not for CI):\n  \
                      cargo build --release -p lectern-server -p lectern-bench\n  \
                      target/release/lectern-bench soak --students 300 --media-students 100 --minutes 30")]
    Soak(soak::SoakArgs),
    /// Internal: one share of the students of `media --procs`, driven by the parent over
    /// stdin/stdout.
    #[command(hide = true)]
    MediaStudents(media::StudentsArgs),
}

static THREADS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

/// `--threads` as given, for child processes.
pub(crate) fn threads_arg() -> Option<usize> {
    THREADS.get().copied().flatten()
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The variable that turns on this tool's own log (the bots' webrtc-rs included), filtered as
/// `RUST_LOG` is. Not `RUST_LOG` itself: a spawned server inherits that.
const LOG_ENV: &str = "LECTERN_BENCH_LOG";

fn run(cli: Cli) -> anyhow::Result<()> {
    raise_nofile_limit();
    if let Ok(filter) = std::env::var(LOG_ENV) {
        init_log(&filter)?;
    }
    let _ = THREADS.set(cli.threads);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = cli.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.build().context("starting the tokio runtime")?;
    match cli.command {
        Command::Chat(args) => runtime.block_on(chat::run(args)),
        Command::Media(args) => runtime.block_on(media::run(args)),
        Command::MediaStudents(args) => runtime.block_on(media::students(args)),
        Command::Soak(args) => runtime.block_on(soak::run(args)),
        Command::Joins(args) => runtime.block_on(joins::run(args)),
    }
}

/// This process's log to `lectern-bench-PID.log` in the system's temp dir (one file per
/// process: `media --procs` runs several).
fn init_log(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("{LOG_ENV} is not a log filter"))?;
    let path = std::env::temp_dir().join(format!("lectern-bench-{}.log", std::process::id()));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .init();
    eprintln!(
        "this process (pid {}) logs to {}",
        std::process::id(),
        path.display()
    );
    Ok(())
}

/// Each client is a socket here and another one in a spawned server (which inherits the limit):
/// 1,000 clients need more than the usual soft limit of 1,024 descriptors.
fn raise_nofile_limit() {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < hard => match rlimit::increase_nofile_limit(hard) {
            Ok(now) => eprintln!("raised the open-file limit from {soft} to {now}"),
            Err(e) => eprintln!("could not raise the open-file limit ({soft}): {e}"),
        },
        Ok(_) => {}
        Err(e) => eprintln!("could not read the open-file limit: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn chat_and_soak_take_the_server_flags_together() {
        let url = "ws://127.0.0.1:9000/ws";
        let parses = |cmd: &str, flags: &[&str]| {
            let argv = ["lectern-bench", cmd]
                .into_iter()
                .chain(flags.iter().copied());
            Cli::try_parse_from(argv).is_ok()
        };
        for cmd in ["chat", "soak"] {
            assert!(parses(cmd, &[]), "{cmd}");
            assert!(parses(cmd, &["--server-bin", "/bin/true"]), "{cmd}");
            assert!(
                parses(cmd, &["--url", url, "--secret", "s", "--server-pid", "1"]),
                "{cmd}"
            );
            assert!(!parses(cmd, &["--url", url]), "{cmd}: --url needs --secret");
            assert!(
                !parses(cmd, &["--secret", "s"]),
                "{cmd}: --secret needs --url"
            );
            assert!(
                !parses(cmd, &["--server-pid", "1"]),
                "{cmd}: --server-pid needs --url"
            );
            assert!(
                !parses(
                    cmd,
                    &["--url", url, "--secret", "s", "--server-bin", "/bin/true"]
                ),
                "{cmd}: --server-bin or --url"
            );
        }
    }
}
