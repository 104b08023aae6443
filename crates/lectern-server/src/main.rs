//! `lectern`: run the server, or mint a join token.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lectern_proto::Role;
use lectern_server::Server;
use lectern_server::auth::{Authenticator, parse_ttl};
use lectern_server::config::Config;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("configuration")?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.filter.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).context("log.filter")?)
        .with_writer(std::io::stderr)
        .init();
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
            let base = if config.server.public_url.is_empty() {
                format!("http://{}", config.server.listen)
            } else {
                config.server.public_url.trim_end_matches('/').to_owned()
            };
            println!("{token}");
            println!("{base}/#token={token}");
            Ok(())
        }
    }
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
    let server = Server::start(config).await?;
    println!("lectern listening on {}", server.public_url());
    if demo.enabled {
        let ttl = demo.link_hours.max(1) * 3600;
        println!(
            "Demo class \"{}\" (room {}): open these links in separate browser windows",
            demo.title, demo.room
        );
        for (label, sub, name, role) in [
            (
                "instructor",
                "demo-instructor",
                "Instructor Grace",
                Role::Instructor,
            ),
            ("student 1 ", "demo-student-1", "Student Ada", Role::Student),
            (
                "student 2 ",
                "demo-student-2",
                "Student Alan",
                Role::Student,
            ),
        ] {
            let token = server.mint_token(&demo.room, sub, name, role, ttl)?;
            println!("  {label}: {}", server.join_link(&token));
        }
    }
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
