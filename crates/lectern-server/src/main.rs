//! `lectern`: run the server, mint a join token, or manage courses, rosters, schedules, API
//! keys, recordings and quizzes in the store (through the same service layer as the REST API;
//! no server needed).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lectern_proto::Role;
use lectern_schedule::jiff::Timestamp;
use lectern_server::Server;
use lectern_server::auth::{Authenticator, parse_ttl};
use lectern_server::clock::wall_ms;
use lectern_server::config::Config;
use lectern_server::courses::{self, LinkRequest, NewCourse, ScheduleSpec, ServiceError};
use lectern_store::Store;

/// Opt-in, for comparison only: measured on the chat load it used more memory than glibc's
/// malloc, not less (docs/BENCHMARKS.md, "What still holds memory per chat participant").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod quiz_cli;
mod recording_cli;

#[derive(Debug, Parser)]
#[command(
    name = "lectern",
    version,
    about = "Lectern: live classes, self-hosted."
)]
struct Cli {
    /// A TOML file with the settings to change (see config/default.toml). Also LECTERN_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print a join token and link for one participant.
    Token {
        #[arg(long)]
        room: String,
        /// instructor, ta, student or observer.
        #[arg(long, default_value = "student")]
        role: String,
        #[arg(long)]
        name: String,
        /// Stable participant id (defaults to one derived from the role and name).
        #[arg(long)]
        sub: Option<String>,
        /// How long the token is valid: 90s, 30m, 2h, 7d.
        #[arg(long, default_value = "2h")]
        ttl: String,
    },
    /// Admin API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Courses.
    #[command(subcommand)]
    Course(CourseCommand),
    /// Course rosters.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// Course schedules.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Course sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Recordings of classes.
    #[command(subcommand)]
    Recording(recording_cli::RecordingCommand),
    /// Quizzes: import (GIFT or JSON), list, publish, results.
    #[command(subcommand)]
    Quiz(quiz_cli::QuizCommand),
    /// Print a join token, its join link and its course home link for a course member and a
    /// session.
    Link {
        #[arg(long)]
        course: String,
        #[arg(long)]
        member: String,
        /// Session key, e.g. 2026-09-01T10:00 (default: the next session).
        #[arg(long)]
        session: Option<String>,
    },
    /// Create (or replace) a member's personal calendar feed and print its URL; --revoke ends it.
    Feed {
        #[arg(long)]
        course: String,
        #[arg(long)]
        member: String,
        /// Revoke the member's feed instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Print the attendance of one session (a table, or CSV with --csv).
    Attendance {
        #[arg(long)]
        course: String,
        /// Session key, e.g. 2026-09-01T10:00.
        #[arg(long)]
        session: String,
        /// A first join later than the start plus this many minutes is late.
        #[arg(long, default_value_t = courses::DEFAULT_LATE_AFTER_MINUTES)]
        late_after_minutes: u32,
        /// CSV with a header row instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Print the chat transcript of one session (plain text, or JSON with --json).
    Transcript {
        #[arg(long)]
        course: String,
        /// Session key, e.g. 2026-09-01T10:00.
        #[arg(long)]
        session: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ApikeyCommand {
    /// Create a key and print it (once: only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum CourseCommand {
    /// Create a course.
    Create {
        /// Lowercase letters, digits, '-' and '_'.
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        /// IANA timezone, e.g. Europe/Paris.
        #[arg(long)]
        timezone: String,
        #[arg(long)]
        lobby_minutes: Option<u32>,
        #[arg(long)]
        warning_minutes: Option<u32>,
        #[arg(long)]
        grace_minutes: Option<u32>,
        #[arg(long)]
        auto_start: bool,
        /// Record every class of the course as it goes live.
        #[arg(long)]
        record_sessions: bool,
        /// Students may download the course's recordings (staff always may).
        #[arg(long)]
        recording_downloads: bool,
        /// Hold the course's classes as seminars: a gallery of everyone's camera, everyone
        /// allowed to speak (default: lectures, with one stage).
        #[arg(long)]
        seminar: bool,
    },
    /// List the courses.
    List,
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Import members from a CSV file (columns member_id,name,role[,email]); all or nothing.
    Import {
        #[arg(long)]
        course: String,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// Add a weekly schedule in the course's timezone.
    Add {
        #[arg(long)]
        course: String,
        /// Weekdays, e.g. tue,thu.
        #[arg(long, value_delimiter = ',')]
        days: Vec<String>,
        /// Local start time, HH:MM.
        #[arg(long)]
        start: String,
        /// Session length in minutes.
        #[arg(long)]
        minutes: u32,
        /// First date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last date (inclusive), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Dates without a class, e.g. 2026-11-11,2026-12-08.
        #[arg(long, value_delimiter = ',')]
        except: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SessionCommand {
    /// List sessions (default: from now, the next 120 days).
    List {
        #[arg(long)]
        course: String,
        /// RFC 3339 time or a date.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 time or a date.
        #[arg(long)]
        to: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("configuration")?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.filter.clone());
    // Colour only on a terminal: a log written to a file or a pipe stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).context("log.filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(config)),
        Command::Token {
            room,
            role,
            name,
            sub,
            ttl,
        } => {
            let Some(role) = Role::parse(&role) else {
                bail!("--role must be instructor, ta, student or observer");
            };
            let Some(ttl) = parse_ttl(&ttl) else {
                bail!("--ttl must look like 90s, 30m, 2h or 7d");
            };
            let secret = lectern_server::resolve_secret(&config)?;
            let auth = Authenticator::new(&config.auth, secret)?;
            let sub = sub.unwrap_or_else(|| slug(&format!("{role}-{name}")));
            let token = auth.mint(&room, &sub, &name, role, ttl)?;
            let base = public_base(&config);
            warn_link_base(&config);
            println!("{token}");
            println!("{base}/#token={token}");
            Ok(())
        }
        command => runtime.block_on(admin(config, command)),
    }
}

/// The base URL for join links printed by the CLI.
fn public_base(config: &Config) -> String {
    if config.server.public_url.is_empty() {
        format!("http://{}", config.server.listen)
    } else {
        config.server.public_url.trim_end_matches('/').to_owned()
    }
}

/// Without `server.public_url`, a printed link is only a guess from `server.listen`: says so on
/// stderr, and that it cannot work when the server picks its port (`:0`) or listens on every
/// address. Stdout keeps the token and the link, for scripts.
fn warn_link_base(config: &Config) {
    if !config.server.public_url.is_empty() {
        return;
    }
    let listen = config.listen_addr();
    let why = if listen.port() == 0 {
        "picks a free port when it starts, so this link cannot work"
    } else if listen.ip().is_unspecified() {
        "is every address, so this link cannot work"
    } else {
        "may not be where participants reach the server"
    };
    eprintln!(
        "warning: server.public_url (LECTERN_SERVER_PUBLIC_URL) is not set, so the link below is built \
         from server.listen ({}), which {why}; set server.public_url to the address participants open",
        config.server.listen
    );
}

/// A service error with every detail (e.g. each bad CSV line) on its own line.
fn explain(err: ServiceError) -> anyhow::Error {
    match err {
        ServiceError::InvalidInput { message, details } => {
            let mut text = message;
            for d in details {
                let place = match (d.line, d.field) {
                    (Some(line), _) => format!("line {line}"),
                    (None, Some(field)) => field,
                    (None, None) => "input".to_owned(),
                };
                text.push_str(&format!("\n  {place}: {}", d.reason));
            }
            anyhow::anyhow!(text)
        }
        ServiceError::Internal(detail) => anyhow::anyhow!("internal error: {detail}"),
        other => anyhow::anyhow!("{}: {other}", other.code()),
    }
}

/// The store commands: open the configured store, run, close.
async fn admin(config: Config, command: Command) -> anyhow::Result<()> {
    let store = Store::open(&config.store_url())
        .await
        .context("opening the store")?;
    let result = run_admin(&config, &store, command).await;
    store.close().await;
    result
}

async fn run_admin(config: &Config, store: &Store, command: Command) -> anyhow::Result<()> {
    let now = wall_ms();
    match command {
        Command::Serve | Command::Token { .. } => bail!("not a store command"),
        Command::Apikey(ApikeyCommand::Create { name }) => {
            let (record, key) = courses::create_api_key(store, &name, now)
                .await
                .map_err(explain)?;
            eprintln!(
                "API key {} ({}) created. It is shown only this once:",
                record.id, record.name
            );
            println!("{key}");
        }
        Command::Course(CourseCommand::Create {
            id,
            title,
            timezone,
            lobby_minutes,
            warning_minutes,
            grace_minutes,
            auto_start,
            record_sessions,
            recording_downloads,
            seminar,
        }) => {
            let input = NewCourse {
                id,
                title,
                timezone,
                lobby_minutes,
                warning_minutes,
                grace_minutes,
                auto_start: Some(auto_start),
                record_sessions: Some(record_sessions),
                recording_downloads: Some(recording_downloads),
                class_mode: Some(if seminar {
                    courses::CourseClassMode::Seminar
                } else {
                    courses::CourseClassMode::Lecture
                }),
            };
            let course = courses::create_course(store, input, now)
                .await
                .map_err(explain)?;
            println!(
                "created course {} ({}, {})",
                course.id, course.title, course.timezone
            );
        }
        Command::Course(CourseCommand::List) => {
            for c in courses::list_courses(store).await.map_err(explain)? {
                println!("{}\t{}\t{}", c.id, c.timezone, c.title);
            }
        }
        Command::Roster(RosterCommand::Import { course, file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let report = courses::import_roster(store, &course, &text)
                .await
                .map_err(explain)?;
            println!("imported {} member(s) into {course}", report.imported);
        }
        Command::Schedule(ScheduleCommand::Add {
            course,
            days,
            start,
            minutes,
            from,
            to,
            except,
        }) => {
            let spec = ScheduleSpec {
                days,
                start,
                duration_minutes: minutes,
                first_date: from,
                last_date: to,
                exceptions: except,
                extra: Vec::new(),
            };
            let schedule = courses::add_schedule(store, &course, spec, now)
                .await
                .map_err(explain)?;
            println!("added schedule {} to {course}", schedule.id);
        }
        Command::Session(SessionCommand::List { course, from, to }) => {
            let sessions = courses::sessions(
                store,
                &course,
                from.as_deref(),
                to.as_deref(),
                Timestamp::now(),
            )
            .await
            .map_err(explain)?;
            for s in sessions {
                println!("{}\t{}\t{}\t{}", s.session_key, s.start, s.end, s.room);
            }
        }
        Command::Recording(command) => recording_cli::run(config, store, command).await?,
        Command::Quiz(command) => quiz_cli::run(store, command).await?,
        Command::Link {
            course,
            member,
            session,
        } => {
            let secret = lectern_server::resolve_secret(config)?;
            let auth = Authenticator::new(&config.auth, secret)?;
            warn_link_base(config);
            let link = courses::mint_link(
                store,
                &auth,
                &public_base(config),
                &course,
                &member,
                LinkRequest { session },
                Timestamp::now(),
            )
            .await
            .map_err(explain)?;
            eprintln!(
                "session {} (room {}), valid until {}",
                link.session_key, link.room, link.expires_at
            );
            println!("{}", link.token);
            println!("{}", link.link);
            println!("{}", link.home_link);
        }
        Command::Feed {
            course,
            member,
            revoke,
        } => {
            if revoke {
                courses::revoke_member_feed(store, &course, &member)
                    .await
                    .map_err(explain)?;
                eprintln!("calendar feed of {member} revoked");
            } else {
                let feed = courses::create_member_feed(
                    store,
                    &public_base(config),
                    &course,
                    &member,
                    wall_ms(),
                )
                .await
                .map_err(explain)?;
                eprintln!(
                    "calendar feed of {member} (shown once; each event opens the second URL, \
                     the third opens the course home)"
                );
                println!("{}", feed.calendar_url);
                println!("{}", feed.join_url);
                println!("{}", feed.home_url);
            }
        }
        Command::Attendance {
            course,
            session,
            late_after_minutes,
            csv,
        } => {
            let report = courses::attendance(
                store,
                &course,
                &session,
                Some(late_after_minutes),
                Timestamp::now(),
            )
            .await
            .map_err(explain)?;
            if csv {
                print!("{}", courses::attendance_csv(&report).map_err(explain)?);
            } else {
                eprintln!(
                    "session {} (room {}), {} to {}; late after {} min",
                    report.session_key,
                    report.room,
                    report.start,
                    report.end,
                    report.late_after_minutes
                );
                for row in &report.attendees {
                    let roster = if row.on_roster {
                        ""
                    } else {
                        " (not on roster)"
                    };
                    println!(
                        "{}\t{}\t{}\t{} min\t{}\t{}{roster}",
                        row.member_id,
                        row.status.as_str(),
                        row.first_join.as_deref().unwrap_or("-"),
                        row.minutes_present,
                        row.last_leave.as_deref().unwrap_or(if row.still_present {
                            "(still in the room)"
                        } else {
                            "-"
                        }),
                        row.name,
                    );
                }
            }
        }
        Command::Transcript {
            course,
            session,
            json,
        } => {
            let entries = courses::transcript(store, &course, &session)
                .await
                .map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                print!("{}", courses::transcript_text(&entries));
            }
        }
    }
    Ok(())
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let demo = config.demo.clone();
    let config_for_demo = config.clone();
    let stop = shutdown_signal()?;
    let drain = lectern_server::drain_signal().context("SIGUSR1 handler")?;
    let server = Server::start(config).await?;
    println!("lectern listening on {}", server.public_url());
    match server.media_addrs().as_slice() {
        [] => println!("media is disabled (media.enabled = false)"),
        addrs => {
            let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            println!("media (WebRTC over UDP) on {}", addrs.join(", "));
        }
    }
    if demo.enabled {
        print_demo_links(&config_for_demo, &demo, &server).await?;
    }
    // SIGUSR1 drains: no new rooms here, exit (status 0) once the rooms running here closed.
    server.run(stop, drain).await;
    Ok(())
}

/// Sets up the demo course (roster, a weekly schedule whose session is open now; see
/// `courses::ensure_demo_course`) and prints join links for its current session.
async fn print_demo_links(
    config: &Config,
    demo: &lectern_server::config::DemoConfig,
    server: &Server,
) -> anyhow::Result<()> {
    let store = Store::open(&config.store_url()).await?;
    let spec = courses::DemoSpec {
        course_id: demo.course.clone(),
        title: demo.title.clone(),
        session_minutes: u32::try_from(demo.link_hours.saturating_mul(60)).unwrap_or(u32::MAX),
        auto_start: config.room.auto_start,
    };
    let now = Timestamp::now();
    let session = courses::ensure_demo_course(&store, &spec, now)
        .await
        .context("setting up the demo course")?;
    let auth = Authenticator::new(&config.auth, lectern_server::resolve_secret(config)?)?;
    println!(
        "Demo course \"{}\" ({}), session {} (room {}): open these links in separate browser windows",
        demo.title, demo.course, session.local_start, session.room
    );
    let labels = ["instructor", "student 1 ", "student 2 "];
    for (label, (member, _, _)) in labels.into_iter().zip(courses::DEMO_MEMBERS) {
        let request = LinkRequest {
            session: Some(session.session_key.clone()),
        };
        let link = courses::mint_link(
            &store,
            &auth,
            server.public_url(),
            &demo.course,
            member,
            request,
            now,
        )
        .await?;
        println!("  {label}: {}", link.link);
    }
    store.close().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (not when the
/// future is first polled), so a signal that arrives while the server starts is not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
