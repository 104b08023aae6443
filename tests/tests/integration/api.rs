//! The admin REST API under /api/v1 against the real server: API-key auth, courses, rosters
//! (including CSV imports with bad rows), schedules and sessions across a DST change, the
//! calendar feed, join links accepted by the WebSocket endpoint, and the OpenAPI document.

use std::net::SocketAddr;

use icalendar::parser::{read_calendar, unfold};
use lectern_proto::Role;
use lectern_schedule::jiff::{SignedDuration, Timestamp};
use lectern_server::courses;
use lectern_store::Store;
use lectern_tests::{Client, DEADLINE, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status, lowercase head, body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    head: String,
    /// The head as sent (header values keep their case).
    raw_head: String,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The stable error code of a JSON error body.
    pub(crate) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// A minimal HTTP/1.1 request over a fresh connection, so the tests need no HTTP client crate.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: &str,
) -> anyhow::Result<Reply> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let reply = read_reply(&mut stream).await?;
    assert!(
        !reply.head.contains("transfer-encoding: chunked"),
        "{}",
        reply.head
    );
    Ok(reply)
}

/// Reads a whole response, up to the server closing the connection.
async fn read_reply(stream: &mut tokio::net::TcpStream) -> anyhow::Result<Reply> {
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let raw_head = head.to_owned();
    let head = head.to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        status,
        head,
        raw_head,
        body: body.to_owned(),
    })
}

/// A JSON request: `key` (an API key or a join token) as the bearer token when given, `body`
/// serialized, or no body at all when `None`.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Reply> {
    let body = body.map(Value::to_string).unwrap_or_default();
    request(addr, method, path, key, "application/json", &body).await
}

/// The server and an admin key created through the service layer (as `lectern apikey create`
/// does), on a second handle to the server's database file.
pub(crate) struct Api {
    pub(crate) s: TestServer,
    key: String,
}

impl Api {
    pub(crate) async fn start() -> Api {
        let s = TestServer::start().await;
        let store = Store::open(&s.server.config().store_url()).await.unwrap();
        let (_, key) = courses::create_api_key(&store, "tests", lectern_server::clock::wall_ms())
            .await
            .unwrap();
        store.close().await;
        Api { s, key }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        call(self.s.addr, "GET", path, Some(&self.key), None)
            .await
            .unwrap()
    }

    pub(crate) async fn send(&self, method: &str, path: &str, body: &Value) -> Reply {
        call(self.s.addr, method, path, Some(&self.key), Some(body))
            .await
            .unwrap()
    }

    pub(crate) async fn csv(&self, path: &str, body: &str) -> Reply {
        request(self.s.addr, "POST", path, Some(&self.key), "text/csv", body)
            .await
            .unwrap()
    }

    pub(crate) async fn course(&self, id: &str) {
        let r = self
            .send(
                "POST",
                "/api/v1/courses",
                &json!({"id": id, "title": "Algebra I", "timezone": "Europe/Paris"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

#[tokio::test]
async fn requests_without_an_api_key_are_refused() -> anyhow::Result<()> {
    let api = Api::start().await;
    let addr = api.s.addr;
    let r = call(addr, "GET", "/api/v1/courses", None, None).await?;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "unauthorized");
    assert!(r.head.contains("www-authenticate: bearer"), "{}", r.head);

    for bad in ["nope", "lectern_0000", ""] {
        let r = call(addr, "GET", "/api/v1/courses", Some(bad), None).await?;
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized".to_owned()),
            "{bad}"
        );
    }

    // A student's (or even an instructor's) join token is not an API key.
    let course = json!({"id": "x", "title": "X", "timezone": "UTC"});
    for role in [Role::Student, Role::Instructor] {
        let token = api.s.token("algebra.2026-09-01T10:00", "ada", "Ada", role);
        let r = call(addr, "GET", "/api/v1/courses", Some(&token), None).await?;
        assert_eq!((r.status, r.code()), (401, "unauthorized".to_owned()));
        let r = call(addr, "POST", "/api/v1/courses", Some(&token), Some(&course)).await?;
        assert_eq!(r.status, 401);
    }

    // Every endpoint in the OpenAPI document exists and is behind the key (except the
    // document itself): no 404 or 405 for a listed route.
    let doc = call(addr, "GET", "/api/v1/openapi.json", None, None).await?;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    let paths = doc["paths"].as_object().expect("paths");
    let mut probed = 0;
    for (path, item) in paths {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = path
                .replace("{id}", "algebra")
                .replace("{member}", "ada")
                .replace("{session_key}", "2026-09-01T10:00")
                .replace("{token}", "feed_0000")
                .replace("{quiz}", "1")
                .replace("{room}", "algebra.2026-09-01T10:00");
            let url = format!("/api/v1{concrete}");
            let r = call(addr, &method.to_uppercase(), &url, None, Some(&json!({}))).await?;
            // Member feeds need no key (a calendar app sends none): an unknown token is 404.
            let expected = if path == "/openapi.json" {
                200
            } else if path.starts_with("/feeds/") {
                404
            } else {
                401
            };
            assert_eq!(r.status, expected, "{method} {url}: {}", r.body);
            probed += 1;
        }
    }
    assert_eq!(probed, 36);
    for path in [
        "/courses",
        "/courses/{id}",
        "/courses/{id}/members",
        "/courses/{id}/members/{member}",
        "/courses/{id}/members/import",
        "/courses/{id}/schedules",
        "/courses/{id}/sessions",
        "/courses/{id}/members/{member}/link",
        "/courses/{id}/calendar.ics",
        "/courses/{id}/members/{member}/calendar",
        "/feeds/{token}/calendar.ics",
        "/feeds/{token}/join",
        "/feeds/{token}/home",
        "/courses/{id}/recordings",
        "/recordings/{id}",
        "/recordings/{id}/download",
        "/courses/{id}/sessions/{session_key}/polls",
        "/rooms/{room}/end",
        "/rooms/{room}/admit",
        "/rooms/{room}/remove",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    Ok(())
}

#[tokio::test]
async fn recordings_are_listed_and_deleted_with_typed_errors() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
    let r = api.get("/api/v1/courses/algebra/recordings").await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    let r = api.get("/api/v1/courses/nope/recordings").await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    for id in ["rec_000000000000000000000000", "../etc", "x"] {
        let r = api.get(&format!("/api/v1/recordings/{id}")).await;
        assert_eq!((r.status, r.code()), (404, "not_found".to_owned()), "{id}");
    }
    // A recording in the store (as a class would leave it), its folder on disk.
    let store = Store::open(&api.s.server.config().store_url()).await?;
    let id = "rec_0123456789abcdef01234567";
    let mut row = lectern_store::Recording {
        id: id.into(),
        room_id: "algebra.2026-09-01T10:00".into(),
        course_id: "algebra".into(),
        title: "Algebra I".into(),
        state: lectern_store::RecordingState::Recording,
        started_at: 1_790_000_000_000,
        ended_at: None,
        duration_ms: 0,
        bytes: 0,
        interrupted: false,
        stop_reason: None,
        error: None,
        dir: id.into(),
    };
    store.create_recording(&row).await?;
    let dir = api.s.server.config().recordings_dir().join(id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("events.jsonl"), "{}\n")?;
    let r = api.get("/api/v1/courses/algebra/recordings").await;
    assert_eq!(r.json()[0]["id"], id);
    assert_eq!(r.json()[0]["state"], "recording");
    assert_eq!(
        r.json()[0]["replay_path"],
        format!("/replay.html?recording={id}")
    );
    // Not while it is being recorded.
    let r = call(
        api.s.addr,
        "DELETE",
        &format!("/api/v1/recordings/{id}"),
        Some(&api.key),
        None,
    )
    .await?;
    assert_eq!((r.status, r.code()), (409, "conflict".to_owned()));
    row.state = lectern_store::RecordingState::Ready;
    store
        .update_recording(
            id,
            &lectern_store::RecordingUpdate {
                state: row.state,
                ended_at: Some(row.started_at + 1),
                duration_ms: 1,
                bytes: 3,
                interrupted: false,
                stop_reason: Some("stopped".into()),
                error: None,
            },
        )
        .await?;
    store.close().await;
    let r = api.get(&format!("/api/v1/recordings/{id}")).await;
    assert_eq!((r.status, r.json()["state"].clone()), (200, json!("ready")));
    let r = call(
        api.s.addr,
        "DELETE",
        &format!("/api/v1/recordings/{id}"),
        Some(&api.key),
        None,
    )
    .await?;
    assert_eq!(r.status, 204);
    assert!(!dir.exists(), "its files went too");
    let r = api.get(&format!("/api/v1/recordings/{id}")).await;
    assert_eq!(r.status, 404);
    Ok(())
}

#[tokio::test]
async fn courses_and_errors() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
    let r = api.get("/api/v1/courses/algebra").await;
    assert_eq!(r.status, 200);
    let course = r.json();
    assert_eq!(course["title"], "Algebra I");
    assert_eq!(course["timezone"], "Europe/Paris");
    assert_eq!(course["lobby_minutes"], 15);
    assert_eq!(course["class_mode"], "lecture");
    assert_eq!(api.get("/api/v1/courses").await.json()[0]["id"], "algebra");

    let seminar = json!({"id": "debate", "title": "Debate", "timezone": "UTC",
                         "class_mode": "seminar"});
    let r = api.send("POST", "/api/v1/courses", &seminar).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["class_mode"], "seminar");
    let r = api.get("/api/v1/courses/debate").await;
    assert_eq!(r.json()["class_mode"], "seminar");

    let again = json!({"id": "algebra", "title": "Again", "timezone": "Europe/Paris"});
    let r = api.send("POST", "/api/v1/courses", &again).await;
    assert_eq!((r.status, r.code()), (409, "conflict".to_owned()));

    let r = api.get("/api/v1/courses/nope").await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));

    let geo = json!({"id": "geo", "title": "Geo", "timezone": "Mars/Olympus"});
    let r = api.send("POST", "/api/v1/courses", &geo).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_owned()));
    assert_eq!(r.json()["error"]["details"][0]["field"], "timezone");

    // Malformed input of every kind is a JSON 4xx, never a 5xx.
    for (method, path, content_type, body) in [
        ("POST", "/api/v1/courses", "application/json", "{not json"),
        (
            "POST",
            "/api/v1/courses",
            "application/json",
            r#"{"id": 5}"#,
        ),
        (
            "POST",
            "/api/v1/courses",
            "application/json",
            r#"{"id":"BAD ID","title":"x","timezone":"UTC"}"#,
        ),
        (
            "POST",
            "/api/v1/courses",
            "application/json",
            r#"{"id":"circus","title":"x","timezone":"UTC","class_mode":"circus"}"#,
        ),
        ("POST", "/api/v1/courses", "text/plain", "{}"),
        (
            "POST",
            "/api/v1/courses/algebra/schedules",
            "application/json",
            r#"{"days":["tue"]}"#,
        ),
        (
            "GET",
            "/api/v1/courses/algebra/sessions?from=yesterday",
            "application/json",
            "",
        ),
        (
            "POST",
            "/api/v1/courses/algebra/members/import",
            "text/csv",
            "\u{0}\u{1}",
        ),
        (
            "PATCH",
            "/api/v1/courses/algebra/members/ada",
            "application/json",
            r#"{"role":"god"}"#,
        ),
        ("PUT", "/api/v1/courses", "application/json", "{}"),
        ("GET", "/api/v1/no-such-thing", "application/json", ""),
    ] {
        let r = request(api.s.addr, method, path, Some(&api.key), content_type, body).await?;
        assert!(
            (400..500).contains(&r.status),
            "{method} {path} {body:?}: {} {}",
            r.status,
            r.body
        );
        assert!(
            !r.code().is_empty(),
            "{method} {path}: not a JSON error: {}",
            r.body
        );
    }

    // The body limit answers 413 in JSON.
    let huge = "x".repeat(MAX_BODY_BYTES + 10);
    let r = api
        .csv("/api/v1/courses/algebra/members/import", &huge)
        .await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large".to_owned()));
    Ok(())
}

/// The API's request body limit (`MAX_BODY_BYTES` in the server's api.rs).
const MAX_BODY_BYTES: usize = 1 << 20;

#[tokio::test]
async fn roster_add_change_remove_and_csv_import() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
    let members = "/api/v1/courses/algebra/members";

    let grace = json!({"member_id": "grace", "name": "Grace Hopper", "role": "instructor"});
    let r = api.send("POST", members, &grace).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api.send("POST", members, &grace).await;
    assert_eq!(r.status, 409);
    let invalid = json!({"member_id": "x", "name": "", "role": "wizard"});
    let r = api.send("POST", members, &invalid).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["details"].as_array().unwrap().len(), 2);

    // A CSV with bad rows: every bad line reported, nothing imported.
    let bad = "member_id,name,role,email\n\
               ada,Ada Lovelace,student,ada@example.org\n\
               bob,,student,\n\
               cy,Cy,wizard,\n\
               ada,Ada twice,student,\n\
               dee,Dee,ta,not-an-email\n";
    let r = api.csv(&format!("{members}/import"), bad).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input".to_owned()),
        "{}",
        r.body
    );
    let details = r.json()["error"]["details"].clone();
    let lines: Vec<u64> = details
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6], "{details}");
    assert!(details[1]["reason"].as_str().unwrap().contains("wizard"));
    let roster = api.get(members).await.json();
    assert_eq!(
        roster.as_array().unwrap().len(),
        1,
        "half-imported: {roster}"
    );

    let good = "member_id,name,role,email\n\
                ada,Ada Lovelace,student,ada@example.org\n\
                alan,Alan Turing,student,\n\
                grace,Grace B. Hopper,instructor,grace@example.org\n";
    let r = api.csv(&format!("{members}/import"), good).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["imported"], 3);
    let roster = api.get(members).await.json();
    let ids: Vec<&str> = roster
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ada", "alan", "grace"]);
    assert_eq!(roster[2]["name"], "Grace B. Hopper");

    let r = api
        .send("PATCH", &format!("{members}/ada"), &json!({"role": "ta"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["role"], "ta");
    let alan = format!("{members}/alan");
    let r = call(api.s.addr, "DELETE", &alan, Some(&api.key), None).await?;
    assert_eq!(r.status, 204);
    let r = call(api.s.addr, "DELETE", &alan, Some(&api.key), None).await?;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    assert_eq!(api.get(members).await.json().as_array().unwrap().len(), 2);
    Ok(())
}

#[tokio::test]
async fn sessions_keep_local_time_across_dst_and_feed_the_calendar() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
    let r = api
        .send(
            "POST",
            "/api/v1/courses/algebra/schedules",
            &json!({
                "days": ["tue", "thu"], "start": "10:00", "duration_minutes": 90,
                "first_date": "2026-09-01", "last_date": "2026-12-15",
                "exceptions": ["2026-11-12"]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let schedules = api.get("/api/v1/courses/algebra/schedules").await.json();
    assert_eq!(schedules[0]["spec"]["days"], json!(["tue", "thu"]));

    // Paris leaves summer time on Sunday 2026-10-25: 10:00 local is 08:00Z before, 09:00Z after.
    let r = api
        .get("/api/v1/courses/algebra/sessions?from=2026-10-20&to=2026-11-14")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sessions = r.json();
    let rows: Vec<(String, String)> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["session_key"].as_str().unwrap().to_owned(),
                s["start"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("2026-10-20T10:00", "2026-10-20T08:00:00Z"),
        ("2026-10-22T10:00", "2026-10-22T08:00:00Z"),
        ("2026-10-27T10:00", "2026-10-27T09:00:00Z"),
        ("2026-10-29T10:00", "2026-10-29T09:00:00Z"),
        ("2026-11-03T10:00", "2026-11-03T09:00:00Z"),
        ("2026-11-05T10:00", "2026-11-05T09:00:00Z"),
        ("2026-11-10T10:00", "2026-11-10T09:00:00Z"),
        // 2026-11-12 is an exception.
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(sessions[0]["room"], "algebra.2026-10-20T10:00");
    assert_eq!(sessions[2]["end"], "2026-10-27T10:30:00Z");

    let r = api.get("/api/v1/courses/algebra/calendar.ics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.head.contains("content-type: text/calendar"), "{}", r.head);
    assert!(r.body.starts_with("BEGIN:VCALENDAR\r\n"));
    assert!(
        r.body.contains("DTSTART;TZID=Europe/Paris:20261027T100000"),
        "{}",
        r.body
    );
    let unfolded = unfold(&r.body);
    let calendar = read_calendar(&unfolded).map_err(anyhow::Error::msg)?;
    let events = calendar
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .count();
    // Tue/Thu from 2026-09-01 to 2026-12-15 is 31 sessions, minus one exception.
    assert_eq!(events, 30);
    assert_eq!(
        calendar
            .components
            .iter()
            .filter(|c| c.name == "VTIMEZONE")
            .count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_minted_link_admits_the_member_to_the_session_room() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
    // Sessions every day, starting two days ago, at a time that makes one of them open now
    // (it started three minutes ago, local time in Paris).
    let started = Timestamp::now()
        .checked_sub(SignedDuration::from_mins(3))?
        .in_tz("Europe/Paris")?;
    let start = format!("{:02}:{:02}", started.hour(), started.minute());
    let today = started.date();
    let two_days_ago = today.checked_sub(SignedDuration::from_hours(48))?;
    let last = today.checked_add(SignedDuration::from_hours(24 * 30))?;
    let r = api
        .send(
            "POST",
            "/api/v1/courses/algebra/schedules",
            &json!({
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": start,
                "duration_minutes": 60,
                "first_date": two_days_ago.to_string(), "last_date": last.to_string()
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ada_member = json!({"member_id": "ada", "name": "Ada Lovelace", "role": "student"});
    let r = api
        .send("POST", "/api/v1/courses/algebra/members", &ada_member)
        .await;
    assert_eq!(r.status, 201);

    let ada_link = "/api/v1/courses/algebra/members/ada/link";
    let r = call(api.s.addr, "POST", ada_link, Some(&api.key), None).await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let link = r.json();
    let key = link["session_key"].as_str().unwrap().to_owned();
    let room = format!("algebra.{key}");
    assert_eq!(link["room"], room.as_str());
    let token = link["token"].as_str().unwrap();
    assert_eq!(
        link["link"].as_str().unwrap(),
        format!("http://localhost/#token={token}")
    );

    let mut ada = Client::connect(api.s.addr, Some(&room)).await?;
    let welcome = ada.hello(token, None).await?;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let text = welcome.to_string();
    assert!(text.contains("Ada Lovelace"), "{text}");
    assert!(text.contains("student"), "{text}");
    ada.close().await;

    // Tomorrow's session exists, but its room is not open yet: a clear refusal naming the
    // next session.
    let tomorrow = started.date().checked_add(SignedDuration::from_hours(24))?;
    let tomorrows_session = json!({"session": format!("{tomorrow}T{start}")});
    let r = api.send("POST", ada_link, &tomorrows_session).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let early = r.json();
    let room = early["room"].as_str().unwrap().to_owned();
    let mut ada = Client::connect(api.s.addr, Some(&room)).await?;
    let err = ada
        .hello(early["token"].as_str().unwrap(), None)
        .await
        .expect_err("tomorrow's room is not open");
    let text = err.to_string();
    assert!(text.contains("session_not_open"), "{text}");
    assert!(text.contains("the open session is"), "{text}");

    // An explicit session, an unknown one, an unknown member, a session that is over.
    let r = api.send("POST", ada_link, &json!({"session": key})).await;
    assert_eq!(r.status, 200);
    let unknown = json!({"session": "1999-01-01T10:00"});
    let r = api.send("POST", ada_link, &unknown).await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    let bob_link = "/api/v1/courses/algebra/members/bob/link";
    let r = api.send("POST", bob_link, &json!({})).await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    let over = format!("{two_days_ago}T{start}");
    let r = api.send("POST", ada_link, &json!({"session": over})).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input".to_owned()),
        "{}",
        r.body
    );
    Ok(())
}

/// GET with extra headers (e.g. `Accept`).
async fn get_with(api: &Api, path: &str, extra: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(api.s.addr).await.unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\n{extra}\r\n",
        api.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    read_reply(&mut stream).await.unwrap()
}

/// Polls the attendance until `cond` holds for it (the room commits in batches).
async fn attendance_when(api: &Api, path: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let start = tokio::time::Instant::now();
    loop {
        let r = api.get(path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let report = r.json();
        if cond(&report) {
            return report;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "attendance never got there: {report}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn attendee<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["member_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {report}"))
}

#[tokio::test]
async fn session_attendance_merges_reconnects_and_the_transcript_has_the_chat() -> anyhow::Result<()>
{
    let api = Api::start().await;
    api.course("algebra").await;
    // A session that started three minutes ago (local time in Paris) and lasts an hour.
    let key = open_session(&api, "algebra").await?;
    let room = format!("algebra.{key}");
    let roster = "member_id,name,role\n\
                  ada,Ada Lovelace,student\n\
                  alan,Alan Turing,student\n\
                  grace,Grace Hopper,instructor\n";
    let r = api
        .csv("/api/v1/courses/algebra/members/import", roster)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let mut tokens = std::collections::HashMap::new();
    let session = json!({"session": key});
    for member in ["ada", "grace"] {
        let link = format!("/api/v1/courses/algebra/members/{member}/link");
        let r = api.send("POST", &link, &session).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["room"], room.as_str());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        assert_eq!(
            r.json()["home_link"],
            format!("http://localhost/course.html#token={token}")
        );
        tokens.insert(member, token);
    }

    // The instructor starts the class; Ada comes, chats, loses her connection, comes back.
    let mut grace = Client::connect(api.s.addr, Some(&room)).await?;
    grace.hello(&tokens["grace"], None).await?;
    grace.ok(json!({"type": "class_start"})).await?;
    let mut ada = Client::connect(api.s.addr, Some(&room)).await?;
    ada.hello(&tokens["ada"], None).await?;
    ada.ok(json!({"type": "chat_send", "text": "Good morning"}))
        .await?;
    ada.ok(json!({"type": "chat_send", "to": {"kind": "staff"}, "text": "Which page?"}))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ada.close().await;

    let path = format!("/api/v1/courses/algebra/sessions/{key}/attendance");
    let report =
        attendance_when(&api, &path, |r| !attendee(r, "ada")["last_leave"].is_null()).await;
    assert_eq!(attendee(&report, "ada")["still_present"], false);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    let mut ada = Client::connect(api.s.addr, Some(&room)).await?;
    ada.hello(&tokens["ada"], None).await?;
    let report =
        attendance_when(&api, &path, |r| attendee(r, "ada")["still_present"] == true).await;
    assert!(attendee(&report, "ada")["last_leave"].is_null());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ada.close().await;
    let report =
        attendance_when(&api, &path, |r| !attendee(r, "ada")["last_leave"].is_null()).await;

    // Who is listed: the two students, not the instructor.
    let ids: Vec<&str> = report["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ada", "alan"], "{report}");
    assert_eq!(report["session_key"], key.as_str());
    assert_eq!(report["late_after_minutes"], 10);
    let ada_row = attendee(&report, "ada");
    assert_eq!(ada_row["status"], "present", "{report}");
    assert_eq!(ada_row["on_roster"], true);
    let alan = attendee(&report, "alan");
    assert_eq!(alan["status"], "absent");
    assert!(alan["first_join"].is_null() && alan["last_leave"].is_null());
    assert_eq!(alan["seconds_present"], 0);

    // Two stays in the store; the time present is their sum, not first join to last leave.
    let store = Store::open(&api.s.server.config().store_url()).await?;
    let stays: Vec<_> = store
        .attendance(&lectern_proto::RoomId::new(room.clone()))
        .await?
        .into_iter()
        .filter(|i| i.participant_id.as_str() == "ada")
        .collect();
    store.close().await;
    assert_eq!(stays.len(), 2, "{stays:?}");
    let present_ms: u64 = stays.iter().map(|i| i.left_at.unwrap() - i.joined_at).sum();
    let span_ms = stays[1].left_at.unwrap() - stays[0].joined_at;
    assert!(span_ms >= present_ms + 1000, "{stays:?}");
    assert_eq!(ada_row["seconds_present"], present_ms / 1000, "{report}");
    assert_eq!(ada_row["minutes_present"], present_ms / 60_000);
    let first: Timestamp = ada_row["first_join"].as_str().unwrap().parse()?;
    let last: Timestamp = ada_row["last_leave"].as_str().unwrap().parse()?;
    assert_eq!(first.as_millisecond() as u64, stays[0].joined_at);
    assert_eq!(last.as_millisecond() as u64, stays[1].left_at.unwrap());

    // A strict threshold makes the same arrival late.
    let strict = api
        .get(&format!("{path}?late_after_minutes=0"))
        .await
        .json();
    assert_eq!(attendee(&strict, "ada")["status"], "late", "{strict}");

    // CSV, asked for by query or by Accept.
    let header = "member_id,name,role,on_roster,first_join,last_leave,still_present,\
                  minutes_present,seconds_present,status";
    for r in [
        api.get(&format!("{path}?format=csv")).await,
        get_with(&api, &path, "Accept: text/csv\r\n").await,
    ] {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.head.contains("content-type: text/csv"), "{}", r.head);
        let lines: Vec<&str> = r.body.lines().collect();
        assert_eq!(lines.len(), 3, "{}", r.body);
        assert_eq!(lines[0], header);
        let ada_csv: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(ada_csv[..4], ["ada", "Ada Lovelace", "student", "true"]);
        assert_eq!(ada_csv[4], ada_row["first_join"].as_str().unwrap());
        assert_eq!(ada_csv[8], (present_ms / 1000).to_string());
        assert_eq!(ada_csv[9], "present");
        assert_eq!(lines[2], "alan,Alan Turing,student,true,,,false,0,0,absent");
    }

    // The transcript: the public message and the private one with its audience.
    let tpath = format!("/api/v1/courses/algebra/sessions/{key}/transcript");
    let r = api.get(&tpath).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let transcript = r.json();
    let messages = transcript.as_array().unwrap();
    assert_eq!(messages.len(), 2, "{transcript}");
    assert_eq!(messages[0]["text"], "Good morning");
    assert_eq!(messages[0]["from"], "ada");
    assert_eq!(messages[0]["from_name"], "Ada Lovelace");
    assert_eq!(messages[0]["to"], "everyone");
    assert_eq!(messages[0]["deleted"], false);
    assert_eq!(messages[1]["text"], "Which page?");
    assert_eq!(messages[1]["to"], "staff");
    let r = api.get(&format!("{tpath}?format=txt")).await;
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-type: text/plain"), "{}", r.head);
    assert!(
        r.body
            .contains("Ada Lovelace (ada, student) -> everyone: Good morning"),
        "{}",
        r.body
    );
    assert!(r.body.contains("-> staff: Which page?"), "{}", r.body);

    // Bad input is a JSON 4xx.
    let r = api
        .get("/api/v1/courses/algebra/sessions/1999-01-01T10:00/attendance")
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    let r = api.get(&format!("{path}?format=xml")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_owned()));
    let r = api.get(&format!("{path}?late_after_minutes=-1")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_owned()));
    let r = api.get(&format!("{path}?late_after_minutes=5000")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_owned()));
    let r = api.get(&format!("{tpath}?format=pdf")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_owned()));
    let r = api.get("/api/v1/courses/nope/sessions/x/transcript").await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    grace.close().await;
    Ok(())
}

/// A daily schedule whose session today started three minutes ago (Paris time), so its room is
/// open now. Returns that session's key.
pub(crate) async fn open_session(api: &Api, course: &str) -> anyhow::Result<String> {
    let started = Timestamp::now()
        .checked_sub(SignedDuration::from_mins(3))?
        .in_tz("Europe/Paris")?;
    let start = format!("{:02}:{:02}", started.hour(), started.minute());
    let today = started.date();
    let r = api
        .send(
            "POST",
            &format!("/api/v1/courses/{course}/schedules"),
            &json!({
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": start,
                "duration_minutes": 60,
                "first_date": today.to_string(), "last_date": today.to_string()
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    Ok(format!("{today}T{start}"))
}

/// A member of course A gets no join link or token for course B, through the API or the
/// service layer; A's token does not open B's room either.
#[tokio::test]
async fn a_member_of_one_course_cannot_get_into_another() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("course-a").await;
    api.course("course-b").await;
    let key_a = open_session(&api, "course-a").await?;
    let key_b = open_session(&api, "course-b").await?;
    let ada_member = json!({"member_id": "ada", "name": "Ada", "role": "student"});
    let r = api
        .send("POST", "/api/v1/courses/course-a/members", &ada_member)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bob_member = json!({"member_id": "bob", "name": "Bob", "role": "instructor"});
    let r = api
        .send("POST", "/api/v1/courses/course-b/members", &bob_member)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Her own course: a link. The other course: not found, with or without a session.
    let empty = json!({});
    let r = api
        .send("POST", "/api/v1/courses/course-a/members/ada/link", &empty)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token_a = r.json()["token"].as_str().unwrap().to_owned();
    for body in [json!({}), json!({"session": key_b})] {
        let r = api
            .send("POST", "/api/v1/courses/course-b/members/ada/link", &body)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (404, "not_found".to_owned()),
            "{}",
            r.body
        );
        assert!(!r.body.contains("token"), "{}", r.body);
    }
    // Nor can course A's endpoint hand out course B's member or session.
    let r = api
        .send("POST", "/api/v1/courses/course-a/members/bob/link", &empty)
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));

    // The service layer (shared with the CLI) refuses the same way.
    let store = Store::open(&api.s.server.config().store_url()).await?;
    let auth = lectern_server::auth::Authenticator::new(
        &api.s.server.config().auth,
        lectern_tests::SECRET.as_bytes().to_vec(),
    )?;
    let refused = courses::mint_link(
        &store,
        &auth,
        "http://localhost",
        "course-b",
        "ada",
        courses::LinkRequest { session: None },
        Timestamp::now(),
    )
    .await
    .expect_err("ada is not in course B");
    assert!(
        matches!(
            refused,
            courses::ServiceError::NotFound { what: "member", .. }
        ),
        "{refused:?}"
    );
    store.close().await;

    // A's token names A's room: it cannot be used for B's room.
    let room_b = format!("course-b.{key_b}");
    let mut ada = Client::connect(api.s.addr, Some(&room_b)).await?;
    let err = ada.hello(&token_a, None).await.expect_err("wrong room");
    assert!(err.to_string().contains("wrong_room"), "{err}");
    let mut ada = Client::connect(api.s.addr, Some(&format!("course-a.{key_a}"))).await?;
    ada.hello(&token_a, None).await?;
    Ok(())
}

/// The path of an absolute URL on the test server.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_owned(), |i| rest[i..].to_owned())
}

/// A member's own calendar feed: reachable without an API key through its unguessable URL,
/// every event carrying the member's join link, which opens their session; revocable, and
/// replaced when created again.
#[tokio::test]
async fn a_member_feed_carries_their_own_join_link_and_can_be_revoked() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
    let key = open_session(&api, "algebra").await?;
    for (id, name) in [("ada", "Ada Lovelace"), ("bob", "Bob")] {
        let member = json!({"member_id": id, "name": name, "role": "student"});
        let r = api
            .send("POST", "/api/v1/courses/algebra/members", &member)
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let addr = api.s.addr;
    let anon = |method: &'static str, path: String| async move {
        call(addr, method, &path, None, None).await
    };

    // Creating a feed needs the admin key; the member must be on the roster.
    let ada_calendar = "/api/v1/courses/algebra/members/ada/calendar";
    let empty = json!({});
    let r = anon("POST", ada_calendar.into()).await?;
    assert_eq!(r.status, 401);
    let zed_calendar = "/api/v1/courses/algebra/members/zed/calendar";
    let r = api.send("POST", zed_calendar, &empty).await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    let r = api.send("POST", ada_calendar, &empty).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let feed = r.json();
    let calendar_url = feed["calendar_url"].as_str().unwrap().to_owned();
    let join_url = feed["join_url"].as_str().unwrap().to_owned();
    let home_url = feed["home_url"].as_str().unwrap().to_owned();
    assert!(
        calendar_url.starts_with("http://localhost/api/v1/feeds/feed_"),
        "{calendar_url}"
    );
    assert!(calendar_url.ends_with("/calendar.ics"));
    let bob_calendar = "/api/v1/courses/algebra/members/bob/calendar";
    let bob_feed = api.send("POST", bob_calendar, &empty).await.json();
    assert_ne!(bob_feed["calendar_url"], feed["calendar_url"]);

    // The feed, without a key, parsed by an independent parser: every event links to Ada's
    // own join URL.
    let r = anon("GET", path_of(&calendar_url)).await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.head.contains("content-type: text/calendar"), "{}", r.head);
    let unfolded = unfold(&r.body);
    let calendar = read_calendar(&unfolded).map_err(anyhow::Error::msg)?;
    let events: Vec<_> = calendar
        .components
        .iter()
        .filter(|c| c.name.as_str() == "VEVENT")
        .collect();
    assert_eq!(events.len(), 1);
    for event in &events {
        let url = event
            .properties
            .iter()
            .find(|p| p.name.as_str() == "URL")
            .map(|p| p.val.as_str().to_owned());
        assert_eq!(url.as_deref(), Some(join_url.as_str()), "{}", r.body);
        let description = event
            .properties
            .iter()
            .find(|p| p.name.as_str() == "DESCRIPTION")
            .map(|p| p.val.as_str().to_owned())
            .unwrap_or_default();
        assert!(
            description.contains(&format!("Course home: {home_url}")),
            "{description}"
        );
    }

    // The home URL opens Ada's course home with a token for the course.
    let r = anon("GET", path_of(&home_url)).await?;
    assert_eq!(r.status, 303, "{}", r.body);
    let home_location = r
        .raw_head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("location"))
                .map(|(_, value)| value.trim().to_owned())
        })
        .expect("a Location header");
    assert!(
        home_location.starts_with("http://localhost/course.html#token="),
        "{home_location}"
    );
    let home_token = home_location.split_once("#token=").unwrap().1;
    let r = call(
        addr,
        "GET",
        "/course/v1/courses/algebra/home",
        Some(home_token),
        None,
    )
    .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["viewer"]["member_id"], "ada", "{}", r.body);

    // The join URL opens Ada's session with a fresh token for her.
    let r = anon("GET", path_of(&join_url)).await?;
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r
        .raw_head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("location"))
                .map(|(_, value)| value.trim())
        })
        .expect("a Location header")
        .to_owned();
    let token = location
        .split_once("#token=")
        .map(|(_, t)| t.to_owned())
        .expect("token in the fragment");
    let mut ada = Client::connect(addr, Some(&format!("algebra.{key}"))).await?;
    let welcome = ada.hello(&token, None).await?;
    assert_eq!(welcome["participant_id"], "ada", "{welcome}");
    ada.close().await;

    // Unknown tokens get a plain 404 (no key needed to ask, nothing echoed).
    for path in [
        "/api/v1/feeds/feed_0000/calendar.ics",
        "/api/v1/feeds/feed_0000/join",
    ] {
        let r = anon("GET", path.to_owned()).await?;
        assert_eq!(
            (r.status, r.code()),
            (404, "not_found".to_owned()),
            "{path}"
        );
        assert!(!r.body.contains("feed_0000"), "{}", r.body);
    }

    // Creating it again replaces the old URL; revoking ends it.
    let r = api.send("POST", ada_calendar, &empty).await;
    assert_eq!(r.status, 201);
    let renewed = r.json()["calendar_url"].as_str().unwrap().to_owned();
    assert_eq!(anon("GET", path_of(&calendar_url)).await?.status, 404);
    assert_eq!(anon("GET", path_of(&join_url)).await?.status, 404);
    assert_eq!(anon("GET", path_of(&renewed)).await?.status, 200);
    let r = api.send("DELETE", ada_calendar, &empty).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(anon("GET", path_of(&renewed)).await?.status, 404);
    let r = api.send("DELETE", ada_calendar, &empty).await;
    assert_eq!(r.status, 404);
    // Bob's feed is untouched; removing Bob from the roster ends it.
    let bob_url = path_of(bob_feed["calendar_url"].as_str().unwrap());
    assert_eq!(anon("GET", bob_url.clone()).await?.status, 200);
    let r = api
        .send("DELETE", "/api/v1/courses/algebra/members/bob", &empty)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(anon("GET", bob_url).await?.status, 404);
    Ok(())
}
