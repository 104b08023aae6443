//! `lectern quiz ...` on the store, with no server running: GIFT and JSON import (format by
//! extension, then by content), errors naming the line, list, publish, results as a table and
//! as CSV.

use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lectern"))
        .current_dir(dir)
        .env_remove("LECTERN_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .env("LECTERN_SERVER_DATA_DIR", dir.join("data"))
        .env(
            "LECTERN_AUTH_HS256_SECRET",
            "cli-test-secret-cli-test-secret-cli-0003",
        )
        .env("LECTERN_LOG_FILTER", "warn")
        .args(args)
        .output()
        .expect("run lectern")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn quizzes_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(
        d,
        &[
            "course",
            "create",
            "--id",
            "algebra",
            "--title",
            "Algebra",
            "--timezone",
            "UTC",
        ],
    );
    std::fs::write(
        d.join("roster.csv"),
        "member_id,name,role\nada,Ada Lovelace,student\ngrace,Grace Hopper,instructor\n",
    )
    .expect("write roster");
    ok(
        d,
        &["roster", "import", "--course", "algebra", "roster.csv"],
    );

    std::fs::write(
        d.join("week1.gift"),
        "// Week 1\n::Capitals::Capital of Norway? {=Oslo ~Bergen}\n\nThe Earth is flat. {F}\n",
    )
    .expect("write gift");
    let id = ok(
        d,
        &[
            "quiz",
            "import",
            "--course",
            "algebra",
            "--title",
            "Week 1",
            "week1.gift",
        ],
    );
    let id = id.trim();
    assert!(id.parse::<i64>().is_ok(), "{id}");

    // JSON by extension; a file without one by its content.
    let json = r#"{"title": "Week 2", "questions": [{"id": "pi", "text": "Pi?",
        "type": "numeric", "answers": [{"value": 3.14, "tolerance": 0.01}]}]}"#;
    std::fs::write(d.join("week2.json"), json).expect("write json");
    ok(
        d,
        &[
            "quiz",
            "import",
            "--course",
            "algebra",
            "--publish",
            "week2.json",
        ],
    );
    std::fs::write(d.join("week3"), json.replace("Week 2", "Week 3")).expect("write");
    ok(d, &["quiz", "import", "--course", "algebra", "week3"]);

    let list = ok(d, &["quiz", "list", "--course", "algebra"]);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert_eq!(rows[0][1..], ["draft", "2", "2", "Week 1"]);
    assert_eq!(rows[1][1..], ["published", "1", "1", "Week 2"]);
    assert_eq!(rows[2][4], "Week 3");

    ok(d, &["quiz", "publish", "--course", "algebra", id]);
    let list = ok(d, &["quiz", "list", "--course", "algebra", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list[0]["published"], true);

    // Results: every roster student, none submitted yet.
    let table = ok(d, &["quiz", "results", "--course", "algebra", id]);
    assert_eq!(table.trim(), "ada\tAda Lovelace\t0/0\t-\t2");
    let csv = ok(d, &["quiz", "results", "--course", "algebra", id, "--csv"]);
    assert_eq!(
        csv,
        "member_id,name,on_roster,attempts,submitted,best_score,last_score,max_score,\
         last_submitted_at\nada,Ada Lovelace,true,0,0,,,2,\n"
    );

    // Errors name the line; a quiz of another course is not found.
    std::fs::write(d.join("bad.gift"), "Q? {=a ~b}\n\nBroken {\n").expect("write");
    let out = run(d, &["quiz", "import", "--course", "algebra", "bad.gift"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    let out = run(d, &["quiz", "results", "--course", "nope", id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}
