//! The store commands of the `lectern` binary: API keys, courses, roster import (all or
//! nothing, every bad line named), schedules, sessions and join links, with no server running.

use std::path::Path;
use std::process::{Command, Output};

use lectern_proto::Role;
use lectern_schedule::jiff::{SignedDuration, Timestamp};
use lectern_server::auth::Authenticator;
use lectern_server::config::Config;

const SECRET: &str = "cli-test-secret-cli-test-secret-cli-0002";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lectern"))
        .current_dir(dir)
        .env_remove("LECTERN_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .env("LECTERN_SERVER_DATA_DIR", dir.join("data"))
        .env("LECTERN_AUTH_HS256_SECRET", SECRET)
        .env("LECTERN_SERVER_PUBLIC_URL", "https://class.example.edu")
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
fn courses_rosters_schedules_and_links_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let key = ok(d, &["apikey", "create", "--name", "ops"]);
    let key = key.trim();
    assert!(key.starts_with("lectern_") && key.len() > 40, "{key}");
    let store_url = format!("sqlite://{}", d.join("data/lectern.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = lectern_store::Store::open(&store_url).await.expect("store");
        assert!(store.verify_api_key(key).await.expect("verify").is_some());
        store.close().await;
    });

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
            "Europe/Paris",
        ],
    );
    assert!(ok(d, &["course", "list"]).starts_with("algebra\tEurope/Paris\tAlgebra"));
    let bad = run(
        d,
        &[
            "course",
            "create",
            "--id",
            "x",
            "--title",
            "X",
            "--timezone",
            "Nowhere/Land",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Nowhere/Land"));

    std::fs::write(
        d.join("bad.csv"),
        "member_id,name,role\nada,Ada,student\nbob,,student\ncy,Cy,wizard\n",
    )
    .expect("write");
    let out = run(d, &["roster", "import", "--course", "algebra", "bad.csv"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: name"), "{stderr}");
    assert!(stderr.contains("line 4: role"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");

    std::fs::write(
        d.join("ok.csv"),
        "member_id,name,role,email\nada,Ada Lovelace,student,ada@example.org\ngrace,Grace,instructor,\n",
    )
    .expect("write");
    let out = ok(d, &["roster", "import", "--course", "algebra", "ok.csv"]);
    assert!(out.contains("imported 2"), "{out}");

    ok(
        d,
        &[
            "schedule",
            "add",
            "--course",
            "algebra",
            "--days",
            "tue,thu",
            "--start",
            "10:00",
            "--minutes",
            "90",
            "--from",
            "2026-09-01",
            "--to",
            "2026-12-15",
            "--except",
            "2026-10-22,2026-11-12",
        ],
    );
    let sessions = ok(
        d,
        &[
            "session",
            "list",
            "--course",
            "algebra",
            "--from",
            "2026-10-20",
            "--to",
            "2026-10-30",
        ],
    );
    let lines: Vec<&str> = sessions.lines().collect();
    assert_eq!(
        lines,
        [
            "2026-10-20T10:00\t2026-10-20T08:00:00Z\t2026-10-20T09:30:00Z\talgebra.2026-10-20T10:00",
            "2026-10-27T10:00\t2026-10-27T09:00:00Z\t2026-10-27T10:30:00Z\talgebra.2026-10-27T10:00",
            "2026-10-29T10:00\t2026-10-29T09:00:00Z\t2026-10-29T10:30:00Z\talgebra.2026-10-29T10:00",
        ]
    );

    // A daily schedule from today on, so the next session is always ahead.
    let today = Timestamp::now().in_tz("Europe/Paris").expect("zone").date();
    let later = today
        .checked_add(SignedDuration::from_hours(24 * 30))
        .expect("date");
    let (first, last) = (today.to_string(), later.to_string());
    ok(
        d,
        &[
            "schedule",
            "add",
            "--course",
            "algebra",
            "--days",
            "mon,tue,wed,thu,fri,sat,sun",
            "--start",
            "23:30",
            "--minutes",
            "20",
            "--from",
            &first,
            "--to",
            &last,
        ],
    );
    let out = ok(d, &["link", "--course", "algebra", "--member", "grace"]);
    let mut lines = out.lines();
    let token = lines.next().expect("token");
    assert_eq!(
        lines.next(),
        Some(format!("https://class.example.edu/#token={token}").as_str())
    );
    assert_eq!(
        lines.next(),
        Some(format!("https://class.example.edu/course.html#token={token}").as_str())
    );
    let auth =
        Authenticator::new(&Config::defaults().auth, SECRET.as_bytes().to_vec()).expect("auth");
    let (room, who) = auth.verify(token, None).expect("valid token");
    assert!(room.as_str().starts_with("algebra.20"), "{room}");
    assert_eq!(who.role, Role::Instructor);
    assert_eq!(who.name, "Grace");

    let out = run(d, &["link", "--course", "algebra", "--member", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));

    // A member's calendar feed: two URLs with the same secret token; revocable once.
    let out = ok(d, &["feed", "--course", "algebra", "--member", "grace"]);
    let mut lines = out.lines();
    let calendar = lines.next().expect("calendar URL");
    let join = lines.next().expect("join URL");
    let home = lines.next().expect("course home URL");
    let base = calendar
        .strip_suffix("/calendar.ics")
        .expect("ends with calendar.ics");
    assert!(
        base.starts_with("https://class.example.edu/api/v1/feeds/feed_"),
        "{calendar}"
    );
    assert_eq!(join, format!("{base}/join"));
    assert_eq!(home, format!("{base}/home"));
    ok(
        d,
        &[
            "feed", "--course", "algebra", "--member", "grace", "--revoke",
        ],
    );
    let out = run(
        d,
        &[
            "feed", "--course", "algebra", "--member", "grace", "--revoke",
        ],
    );
    assert!(!out.status.success());
    let out = run(d, &["feed", "--course", "algebra", "--member", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));
}

#[test]
fn recordings_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(
        d,
        &[
            "course",
            "create",
            "--id",
            "physics",
            "--title",
            "Physics",
            "--timezone",
            "UTC",
            "--record-sessions",
            "--recording-downloads",
        ],
    );
    let store_url = format!("sqlite://{}", d.join("data/lectern.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = lectern_store::Store::open(&store_url).await.expect("store");
        let course = store
            .course("physics")
            .await
            .expect("read")
            .expect("course");
        assert!(course.record_sessions && course.recording_downloads);
        store.close().await;
    });
    assert_eq!(
        ok(d, &["recording", "list", "--course", "physics", "--json"]).trim(),
        "[]"
    );
    for args in [
        &["recording", "list", "--course", "nope"][..],
        &["recording", "get", "rec_000000000000000000000000"],
        &["recording", "export", "../../etc"],
        &["recording", "delete", "rec_000000000000000000000000"],
    ] {
        let out = run(d, args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not_found"), "{args:?}: {stderr}");
    }
}
