//! `lectern quiz ...`: import, list and publish quizzes and read their results, on the store
//! directly (the same service as the REST APIs; docs/QUIZZES.md).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use lectern_server::clock::wall_ms;
use lectern_server::quizzes::{self, QuizFormat};
use lectern_store::Store;

use crate::explain;

#[derive(Debug, Subcommand)]
pub enum QuizCommand {
    /// Create a quiz from a file: GIFT (.gift, .txt) or the quiz JSON (.json); other names by
    /// their content. Prints the new quiz's id.
    Import {
        #[arg(long)]
        course: String,
        file: PathBuf,
        /// The title of a GIFT quiz (GIFT has none); default "Imported quiz".
        #[arg(long)]
        title: Option<String>,
        /// Publish it to students at once.
        #[arg(long)]
        publish: bool,
    },
    /// List a course's quizzes (id, published, questions, max score, title).
    List {
        #[arg(long)]
        course: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish a quiz to students, or take it back with --unpublish.
    Publish {
        #[arg(long)]
        course: String,
        quiz: i64,
        #[arg(long)]
        unpublish: bool,
    },
    /// Every student's results on a quiz: a table, or CSV with --csv.
    Results {
        #[arg(long)]
        course: String,
        quiz: i64,
        #[arg(long)]
        csv: bool,
    },
}

pub async fn run(store: &Store, command: QuizCommand) -> anyhow::Result<()> {
    match command {
        QuizCommand::Import {
            course,
            file,
            title,
            publish,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let format = QuizFormat::guess(name, &text);
            let quiz = quizzes::parse_quiz(&text, format, title.as_deref()).map_err(explain)?;
            let detail = quizzes::create_quiz(store, &course, &quiz, publish, wall_ms())
                .await
                .map_err(explain)?;
            eprintln!(
                "imported quiz {:?} ({} questions, {}) into {course}",
                detail.quiz.title,
                detail.quiz.question_count,
                if publish {
                    "published"
                } else {
                    "not published"
                }
            );
            println!("{}", detail.quiz.id);
        }
        QuizCommand::List { course, json } => {
            let list = quizzes::list_quizzes(store, &course)
                .await
                .map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for q in list {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        q.id,
                        if q.published { "published" } else { "draft" },
                        q.question_count,
                        q.max_score,
                        q.title
                    );
                }
            }
        }
        QuizCommand::Publish {
            course,
            quiz,
            unpublish,
        } => {
            let detail =
                quizzes::change_quiz(store, &course, quiz, None, Some(!unpublish), wall_ms())
                    .await
                    .map_err(explain)?;
            println!(
                "quiz {} is {}",
                detail.quiz.id,
                if detail.quiz.published {
                    "published"
                } else {
                    "not published"
                }
            );
        }
        QuizCommand::Results { course, quiz, csv } => {
            let results = quizzes::results(store, &course, quiz)
                .await
                .map_err(explain)?;
            if csv {
                print!("{}", quizzes::results_csv(&results).map_err(explain)?);
            } else {
                let score = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
                for r in &results.students {
                    println!(
                        "{}\t{}\t{}/{}\t{}\t{}",
                        r.member_id,
                        r.name,
                        r.submitted,
                        r.attempts,
                        score(r.best_score),
                        results.quiz.max_score
                    );
                }
            }
        }
    }
    Ok(())
}
