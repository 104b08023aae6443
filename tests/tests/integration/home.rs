//! The course home through the member API (`/course/v1/courses/{course}/home`) of the real
//! server: the next session's state and a join link only once its lobby is open (and that the
//! link admits), past sessions with a student's own attendance only and the counts for staff,
//! recordings ready to watch, the staff-only attendance list, and tokens of another course.
//! The test moves the server's clock instead of waiting for a session.

use lectern_proto::Role;
use lectern_schedule::jiff::{SignedDuration, Timestamp};
use lectern_server::courses::{self, MemberView, NewCourse, ScheduleSpec};
use lectern_store::{Course, Recording, RecordingState, Store};
use lectern_tests::{Client, DEADLINE, TestServer};
use serde_json::{Value, json};

use crate::board::{Answer, call};

const MIN: u64 = 60_000;
const RECORDING: &str = "rec_0000000000000000000000a1";

/// Course `algebra` (UTC, lobby 10 and grace 1 minute) with one 30-minute session a day for
/// three days, the first an hour from now; students ada and alan, instructor grace. Course
/// `physics` exists too. Returns the three session keys and the first start (Unix ms).
async fn setup(s: &TestServer) -> anyhow::Result<(Vec<String>, u64)> {
    let store = Store::open(&s.server.config().store_url()).await?;
    let input = NewCourse {
        id: "algebra".into(),
        title: "Algebra I".into(),
        timezone: "UTC".into(),
        lobby_minutes: Some(10),
        warning_minutes: Some(1),
        grace_minutes: Some(1),
        auto_start: Some(false),
        record_sessions: None,
        recording_downloads: None,
        class_mode: None,
    };
    let made = lectern_server::clock::wall_ms();
    courses::create_course(&store, input, made).await?;
    store
        .create_course(&Course {
            id: "physics".into(),
            title: "Physics".into(),
            timezone: "UTC".into(),
            lobby_minutes: 15,
            warning_minutes: 5,
            grace_minutes: 10,
            auto_start: false,
            record_sessions: false,
            recording_downloads: false,
            class_mode: lectern_proto::ClassMode::Lecture,
            created_at: 1,
        })
        .await?;
    let start = Timestamp::now()
        .checked_add(SignedDuration::from_hours(1))?
        .in_tz("UTC")?;
    let first = start.date();
    let last = first.checked_add(SignedDuration::from_hours(48))?;
    let hhmm = format!("{:02}:{:02}", start.hour(), start.minute());
    let spec = ScheduleSpec {
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec(),
        start: hhmm.clone(),
        duration_minutes: 30,
        first_date: first.to_string(),
        last_date: last.to_string(),
        exceptions: vec![],
        extra: vec![],
    };
    courses::add_schedule(&store, "algebra", spec, made).await?;
    for (id, name, role) in [
        ("ada", "Ada Lovelace", "student"),
        ("alan", "Alan Turing", "student"),
        ("grace", "Grace Hopper", "instructor"),
    ] {
        let member = MemberView {
            member_id: id.into(),
            name: name.into(),
            email: None,
            role: role.into(),
        };
        courses::add_member(&store, "algebra", member).await?;
    }
    let keys: Vec<String> = (0..3)
        .map(|d| {
            let date = first.checked_add(SignedDuration::from_hours(24 * d))?;
            Ok(format!("{date}T{hhmm}"))
        })
        .collect::<anyhow::Result<_>>()?;
    // A finished recording of the first session.
    let starts_at = first
        .at(start.hour(), start.minute(), 0, 0)
        .in_tz("UTC")?
        .timestamp()
        .as_millisecond();
    let starts_at = u64::try_from(starts_at)?;
    store
        .create_recording(&Recording {
            id: RECORDING.into(),
            room_id: format!("algebra.{}", keys[0]),
            course_id: "algebra".into(),
            title: "Algebra I".into(),
            state: RecordingState::Ready,
            started_at: starts_at + MIN,
            ended_at: Some(starts_at + 20 * MIN),
            duration_ms: 19 * MIN,
            bytes: 1000,
            interrupted: false,
            stop_reason: Some("stopped".into()),
            error: None,
            dir: RECORDING.into(),
        })
        .await?;
    store.close().await;
    Ok((keys, starts_at))
}

async fn home(s: &TestServer, token: &str) -> anyhow::Result<Answer> {
    call(
        s.addr,
        "GET",
        "/course/v1/courses/algebra/home",
        Some(token),
        None,
    )
    .await
}

/// The home, which must be a 200.
async fn home_ok(s: &TestServer, token: &str) -> anyhow::Result<Value> {
    let r = home(s, token).await?;
    assert_eq!(r.status, 200, "{}", r.body);
    Ok(r.body)
}

/// The token in a link's fragment.
fn token_of(link: &str) -> String {
    link.split_once("#token=")
        .map(|(_, t)| t.to_owned())
        .unwrap_or_else(|| panic!("no token in {link}"))
}

#[tokio::test]
async fn the_course_home_shows_the_next_and_past_sessions_to_each_member() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let (keys, starts_at) = setup(&s).await?;
    let room = |i: usize| format!("algebra.{}", keys[i]);
    // Tokens like those of join links: for a room of the course.
    let ada = s.token(&room(0), "ada", "Ada Lovelace", Role::Student);
    let alan = s.token(&room(0), "alan", "Alan Turing", Role::Student);
    let grace = s.token(&room(0), "grace", "Grace Hopper", Role::Instructor);

    // An hour ahead: upcoming, no join link yet, nothing past.
    let h = home_ok(&s, &ada).await?;
    assert_eq!(h["course"]["title"], "Algebra I", "{h}");
    assert_eq!(h["course"]["timezone"], "UTC");
    assert_eq!(h["viewer"]["member_id"], "ada");
    assert_eq!(h["viewer"]["staff"], false);
    assert_eq!(h["next_session"]["session_key"], keys[0].as_str(), "{h}");
    assert_eq!(h["next_session"]["state"], "upcoming");
    assert!(h["next_session"]["join_url"].is_null(), "{h}");
    assert_eq!(h["past_sessions"], json!([]));

    // Five minutes before the start the lobby is open: a join link for this member.
    let clock = s.server.clock();
    clock.set_now(starts_at - 5 * MIN);
    let h = home_ok(&s, &ada).await?;
    assert_eq!(h["next_session"]["state"], "lobby_open", "{h}");
    let join_url = h["next_session"]["join_url"].as_str().unwrap().to_owned();
    assert!(
        join_url.starts_with("http://localhost/#token="),
        "{join_url}"
    );

    // Live: the instructor starts the class, Ada comes in with the home's link.
    clock.set_now(starts_at + MIN);
    let h = home_ok(&s, &grace).await?;
    assert_eq!(h["next_session"]["state"], "live", "{h}");
    let grace_link = token_of(h["next_session"]["join_url"].as_str().unwrap());
    let mut teacher = Client::connect(s.addr, Some(&room(0))).await?;
    teacher.hello(&grace_link, None).await?;
    teacher.ok(json!({"type": "class_start"})).await?;
    let h = home_ok(&s, &ada).await?;
    let ada_link = token_of(h["next_session"]["join_url"].as_str().unwrap());
    let mut student = Client::connect(s.addr, Some(&room(0))).await?;
    let welcome = student.hello(&ada_link, None).await?;
    assert_eq!(welcome["participant_id"], "ada", "{welcome}");
    student.close().await;
    teacher.close().await;

    // After the first session's room closed: it is past; the next is tomorrow's.
    clock.set_now(starts_at + 40 * MIN);
    let counts = |h: &Value| h["past_sessions"][0]["attendance_counts"].clone();
    // The room commits attendance in batches: wait for it.
    let started = tokio::time::Instant::now();
    let h = loop {
        let h = home_ok(&s, &grace).await?;
        if counts(&h) == json!({"present": 1, "late": 0, "absent": 1}) {
            break h;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "staff never saw Ada present: {h}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(h["viewer"]["staff"], true);
    assert_eq!(h["next_session"]["session_key"], keys[1].as_str(), "{h}");
    assert_eq!(h["next_session"]["state"], "upcoming");
    let past = &h["past_sessions"][0];
    assert_eq!(past["session_key"], keys[0].as_str());
    assert!(past["your_attendance"].is_null(), "{h}");
    let recording = &past["recordings"][0];
    assert_eq!(recording["id"], RECORDING, "{h}");
    assert_eq!(
        recording["replay_url"],
        format!("http://localhost/replay.html?recording={RECORDING}#token={grace}")
    );

    // A student sees their own attendance only, never the counts.
    let h = home_ok(&s, &ada).await?;
    let past = &h["past_sessions"][0];
    assert_eq!(past["your_attendance"], "present", "{h}");
    assert!(past["attendance_counts"].is_null(), "{h}");
    assert_eq!(past["recordings"][0]["id"], RECORDING);
    let h = home_ok(&s, &alan).await?;
    assert_eq!(h["past_sessions"][0]["your_attendance"], "absent", "{h}");
    assert!(!h.to_string().contains("ada"), "{h}");

    // The attendance list: staff only.
    let path = format!("/course/v1/courses/algebra/sessions/{}/attendance", keys[0]);
    let r = call(s.addr, "GET", &path, Some(&grace), None).await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ada", "alan"], "{}", r.body);
    let r = call(s.addr, "GET", &path, Some(&ada), None).await?;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);

    // Paging the past: one at a time, newest first.
    clock.set_now(starts_at + 24 * 60 * MIN + 40 * MIN);
    let r = call(
        s.addr,
        "GET",
        "/course/v1/courses/algebra/home?past_limit=1",
        Some(&ada),
        None,
    )
    .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["past_sessions"][0]["session_key"], keys[1].as_str());
    assert_eq!(r.body["past_sessions"][0]["your_attendance"], "absent");
    assert_eq!(r.body["past_has_more"], true);
    assert_eq!(r.body["next_session"]["session_key"], keys[2].as_str());
    let r = call(
        s.addr,
        "GET",
        "/course/v1/courses/algebra/home?past_limit=0",
        Some(&ada),
        None,
    )
    .await?;
    assert_eq!((r.status, r.code()), (400, "invalid_input"), "{}", r.body);

    // Another course's token, no token, a bad token.
    let physics = s.token("physics.2026-09-01T10:00", "ada", "Ada", Role::Student);
    let r = home(&s, &physics).await?;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
    let r = call(s.addr, "GET", "/course/v1/courses/algebra/home", None, None).await?;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = home(&s, "not-a-token").await?;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = call(
        s.addr,
        "GET",
        "/course/v1/courses/nosuch/home",
        Some(&s.token("nosuch.x", "ada", "Ada", Role::Student)),
        None,
    )
    .await?;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    Ok(())
}
