//! `lectern recording ...`: list, show, export and delete recordings, on the store directly.

use anyhow::Context;
use clap::Subcommand;
use lectern_server::config::Config;
use lectern_store::Store;

use crate::explain;

#[derive(Debug, Subcommand)]
pub enum RecordingCommand {
    /// List a course's recordings, newest first (id, state, start, duration, title).
    List {
        #[arg(long)]
        course: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one recording (JSON).
    Get { id: String },
    /// Delete a recording and its files.
    Delete { id: String },
    /// Make (again) the one-file export of a recording, with a progress bar: a WebM with the
    /// stage and every voice mixed, and the public chat as WebVTT and JSON, in the recording's
    /// folder. Prints the path.
    Export {
        id: String,
        /// Also copy the WebM here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

pub async fn run(config: &Config, store: &Store, command: RecordingCommand) -> anyhow::Result<()> {
    match command {
        RecordingCommand::List { course, json } => {
            let list = lectern_server::recordings::list_recordings(store, &course)
                .await
                .map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    let secs = r.duration_ms / 1000;
                    println!(
                        "{}\t{}\t{}\t{}:{:02}:{:02}\t{}",
                        r.id,
                        r.state,
                        r.started_at,
                        secs / 3600,
                        secs / 60 % 60,
                        secs % 60,
                        r.title
                    );
                }
            }
        }
        RecordingCommand::Get { id } => {
            let r = lectern_server::recordings::get_recording(store, &id)
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        RecordingCommand::Export { id, out } => {
            let recording = lectern_server::recordings::require_recording(store, &id)
                .await
                .map_err(explain)?;
            let dir =
                lectern_server::recordings::recording_dir(&config.recordings_dir(), &recording);
            let bar = indicatif::ProgressBar::new(1000);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "exporting {bar:40} {percent:>3}% {elapsed_precise} (about {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let shown = bar.clone();
            let jobs =
                std::sync::Arc::new(lectern_server::recordings::export::ExportJobs::default());
            let result =
                lectern_server::recordings::export::export(&jobs, &id, dir.clone(), move |f| {
                    shown.set_position((f * 1000.0) as u64);
                })
                .await;
            bar.finish_and_clear();
            let bytes = result.map_err(|e| anyhow::anyhow!("the export failed: {e}"))?;
            let path = dir.join(lectern_server::recordings::export::EXPORT_FILE);
            if let Some(out) = out {
                std::fs::copy(&path, &out)
                    .with_context(|| format!("copying the export to {}", out.display()))?;
                println!("{}", out.display());
            } else {
                println!("{}", path.display());
            }
            eprintln!("{bytes} bytes");
        }
        RecordingCommand::Delete { id } => {
            lectern_server::recordings::delete_recording(store, &config.recordings_dir(), &id)
                .await
                .map_err(explain)?;
            println!("deleted recording {id}");
        }
    }
    Ok(())
}
