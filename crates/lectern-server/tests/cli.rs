//! The `lectern` binary as a new user meets it: `serve` prints the URL and demo join links and
//! stops cleanly on SIGTERM; `token` prints a token and link; bad settings stop it with a
//! message naming the key. (Everything else is in the workspace's `tests/` binary.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lectern_proto::Role;
use lectern_server::auth::Authenticator;
use lectern_server::config::Config;
use lectern_server::courses;

const SECRET: &str = "cli-test-secret-cli-test-secret-cli-0001";

fn lectern(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern"));
    cmd.current_dir(dir)
        .env_remove("LECTERN_CONFIG")
        .env("LECTERN_SERVER_LISTEN", "127.0.0.1:0")
        .env("LECTERN_LOG_FILTER", "warn");
    cmd
}

#[test]
fn serve_prints_demo_links_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = lectern(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lectern");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines
        .iter()
        .filter(|l: &&String| l.contains("/#token="))
        .count()
        < 3
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("no demo links within 20 s; got {lines:?}"),
        }
    }
    assert!(
        lines[0].starts_with("lectern listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    let links: Vec<&String> = lines.iter().filter(|l| l.contains("/#token=")).collect();
    assert!(links[0].contains("instructor"));
    // The generated secret was kept in the data directory and signs the printed links.
    let secret =
        std::fs::read_to_string(dir.path().join("lectern-data/hs256.secret")).expect("secret file");
    let auth = Authenticator::new(&Config::defaults().auth, secret.trim().as_bytes().to_vec())
        .expect("auth");
    // Every link is for the same session of the demo course, and that session's room is open
    // now: the join window check (the one a hello goes through) lets each of them in.
    let header = lines
        .iter()
        .find(|l| l.starts_with("Demo course"))
        .expect("a demo header line");
    let mut rooms = Vec::new();
    for (link, role) in links
        .iter()
        .zip([Role::Instructor, Role::Student, Role::Student])
    {
        let token = link.split("#token=").nth(1).expect("token");
        let (room, who) = auth.verify(token, None).expect("printed link verifies");
        assert_eq!(who.role, role);
        rooms.push(room.as_str().to_owned());
    }
    assert!(rooms.iter().all(|r| r == &rooms[0]), "{rooms:?}");
    let room = &rooms[0];
    assert!(room.starts_with("demo."), "{room}");
    assert!(header.contains(room.as_str()), "{header}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = format!(
            "sqlite://{}",
            dir.path().join("lectern-data/lectern.db").display()
        );
        let store = lectern_store::Store::open(&url).await.expect("store");
        let now = lectern_schedule::jiff::Timestamp::now();
        courses::check_join(&store, room, now)
            .await
            .expect("the demo session is open now");
        let roster = courses::list_members(&store, "demo").await.expect("roster");
        assert_eq!(roster.len(), 3);
        let schedules = courses::list_schedules(&store, "demo")
            .await
            .expect("schedule");
        assert_eq!(schedules.len(), 1);
        assert_eq!(schedules[0].spec.days.len(), 1, "weekly, on one day");
        store.close().await;
    });

    // SIGTERM: a graceful stop with exit status 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lectern did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.path().join("lectern-data/lectern.db").exists());
}

#[test]
fn token_command_prints_a_verifiable_token_and_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = lectern(dir.path())
        .env("LECTERN_AUTH_HS256_SECRET", SECRET)
        .env("LECTERN_SERVER_PUBLIC_URL", "https://class.example.edu")
        .args([
            "token",
            "--room",
            "algebra",
            "--role",
            "ta",
            "--name",
            "Ada Lovelace",
            "--ttl",
            "2h",
        ])
        .output()
        .expect("run token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = stdout.lines();
    let token = lines.next().expect("token line");
    assert_eq!(
        lines.next(),
        Some(format!("https://class.example.edu/#token={token}").as_str())
    );
    let auth =
        Authenticator::new(&Config::defaults().auth, SECRET.as_bytes().to_vec()).expect("auth");
    let (room, who) = auth.verify(token, Some("algebra")).expect("valid");
    assert_eq!(room.as_str(), "algebra");
    assert_eq!(who.role, Role::Ta);
    assert_eq!(who.name, "Ada Lovelace");

    let bad = lectern(dir.path())
        .env("LECTERN_AUTH_HS256_SECRET", SECRET)
        .args(["token", "--room", "r", "--role", "principal", "--name", "X"])
        .output()
        .expect("run token");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--role"));
}

#[test]
fn token_without_public_url_warns_that_the_link_needs_it() {
    // Told to pick a free port (`:0`) and with no public URL, the link cannot work: the admin
    // is told which setting the link needs. With a public URL, no such warning.
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["token", "--room", "r", "--role", "student", "--name", "Ada"];
    let out = lectern(dir.path())
        .env("LECTERN_AUTH_HS256_SECRET", SECRET)
        .args(args)
        .output()
        .expect("run token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("server.public_url"), "{stderr}");
    assert!(stderr.contains("cannot work"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 2, "token and link: {stdout}");

    let out = lectern(dir.path())
        .env("LECTERN_AUTH_HS256_SECRET", SECRET)
        .env("LECTERN_SERVER_PUBLIC_URL", "https://class.example.edu")
        .args(args)
        .output()
        .expect("run token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("server.public_url"), "{stderr}");
}

#[test]
fn bad_configuration_stops_with_a_readable_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("typo.toml"), "[room]\nauto_strat = true\n").expect("write");
    let out = lectern(dir.path())
        .args(["--config", "typo.toml"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("room.auto_strat"), "{stderr}");

    std::fs::write(
        dir.path().join("bad.toml"),
        "[limits]\nmax_chat_chars = \"lots\"\n",
    )
    .expect("write");
    let out = lectern(dir.path())
        .args(["--config", "bad.toml"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_chat_chars"), "{stderr}");
}

#[test]
fn unknown_environment_variables_are_named_in_a_plain_warning() {
    // A variable meant for a script or another tool (the e2e harness sets LECTERN_BIN) must not
    // keep the server from starting; a typo is named so the admin sees it. The log goes to a
    // pipe here, so it carries no colour codes.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = lectern(dir.path())
        .env("LECTERN_AUTH_HS256_SECRET", SECRET)
        .env("LECTERN_BIN", "/usr/local/bin/lectern")
        .env("LECTERN_ROOM_AUTO_STRAT", "true")
        .args(["token", "--room", "r", "--role", "student", "--name", "Ada"])
        .output()
        .expect("run token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("LECTERN_BIN"), "{stderr}");
    assert!(stderr.contains("LECTERN_ROOM_AUTO_STRAT"), "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a piped log: {stderr:?}"
    );
}
