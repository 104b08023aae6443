//! A scheduled session's room runs its lifecycle by the server's clock, over real WebSockets:
//! the lobby with the scheduled times in the welcome, auto-start at the scheduled start, the
//! end warning, late join, and closing for everyone after the grace period. The test moves the
//! server's clock to a second before each moment instead of waiting for it.

use lectern_proto::Role;
use lectern_schedule::jiff::{SignedDuration, Timestamp};
use lectern_server::courses::{self, NewCourse, ScheduleSpec};
use lectern_store::Store;
use lectern_tests::{Client, TestServer};

const MIN: u64 = 60_000;

/// A course `physics` (UTC) with auto-start, a 1-minute warning and 1-minute grace, and one
/// 2-minute session an hour from now. Returns the session's room and its start (Unix ms).
async fn course_with_a_session(s: &TestServer, auto_start: bool) -> anyhow::Result<(String, u64)> {
    let store = Store::open(&s.server.config().store_url()).await?;
    let input = NewCourse {
        id: "physics".into(),
        title: "Physics I".into(),
        timezone: "UTC".into(),
        lobby_minutes: Some(10),
        warning_minutes: Some(1),
        grace_minutes: Some(1),
        auto_start: Some(auto_start),
        record_sessions: None,
        recording_downloads: None,
        class_mode: None,
    };
    courses::create_course(&store, input, lectern_server::clock::wall_ms()).await?;
    let start = Timestamp::now()
        .checked_add(SignedDuration::from_hours(1))?
        .in_tz("UTC")?;
    let date = start.date();
    let hhmm = format!("{:02}:{:02}", start.hour(), start.minute());
    let spec = ScheduleSpec {
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec(),
        start: hhmm.clone(),
        duration_minutes: 2,
        first_date: date.to_string(),
        last_date: date.to_string(),
        exceptions: vec![],
        extra: vec![],
    };
    courses::add_schedule(&store, "physics", spec, lectern_server::clock::wall_ms()).await?;
    store.close().await;
    let starts_at = date
        .at(start.hour(), start.minute(), 0, 0)
        .in_tz("UTC")?
        .timestamp()
        .as_millisecond();
    Ok((format!("physics.{date}T{hhmm}"), u64::try_from(starts_at)?))
}

/// The session's attendance once `count` participants have left (the room commits in batches).
async fn wait_for_attendance(
    store: &Store,
    key: &str,
    now: Timestamp,
    count: usize,
) -> anyhow::Result<courses::AttendanceReport> {
    let ended = |r: &courses::AttendanceReport| {
        r.attendees
            .iter()
            .filter(|a| a.last_leave.is_some() && !a.still_present)
            .count()
    };
    lectern_tests::wait_until("every stay to end", || async move {
        courses::attendance(store, "physics", key, None, now)
            .await
            .is_ok_and(|r| ended(&r) >= count)
    })
    .await?;
    Ok(courses::attendance(store, "physics", key, None, now).await?)
}

async fn join(s: &TestServer, room: &str, sub: &str, role: Role) -> anyhow::Result<Client> {
    let token = s.token(room, sub, sub, role);
    let mut client = Client::connect(s.addr, Some(room)).await?;
    client.hello(&token, None).await?;
    Ok(client)
}

fn in_lobby(welcome: &serde_json::Value, id: &str) -> bool {
    welcome["snapshot"]["roster"]
        .as_array()
        .and_then(|r| r.iter().find(|p| p["id"] == id))
        .map(|p| p["in_lobby"] == true)
        .expect("in the roster")
}

#[tokio::test]
async fn the_schedule_starts_warns_and_closes_the_room() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let (room, starts_at) = course_with_a_session(&s, true).await?;
    let ends_at = starts_at + 2 * MIN;
    let clock = s.server.clock();

    // Two seconds before the start: the room is open, the student waits in the lobby, and the
    // welcome says when the class starts and ends.
    clock.set_now(starts_at - 2_000);
    let mut ada = join(&s, &room, "ada", Role::Student).await?;
    let snap = &ada.welcome["snapshot"];
    assert_eq!(snap["class_state"], "not_started", "{snap}");
    assert_eq!(snap["scheduled_start"], starts_at);
    assert_eq!(snap["scheduled_end"], ends_at);
    assert_eq!(snap["warns_at"], ends_at - MIN);
    assert_eq!(snap["closes_at"], ends_at + MIN);
    assert_eq!(snap["title"], "Physics I");
    assert!(in_lobby(&ada.welcome, "ada"));
    let mut grace = join(&s, &room, "grace", Role::Instructor).await?;

    // The class starts by itself at the scheduled time: no `by`, and the lobby is let in.
    let started = ada.wait_event("class_started").await?;
    assert!(started["event"].get("by").is_none(), "{started}");
    assert!(started["at"].as_u64().unwrap() >= starts_at);
    let snap = ada.wait_for(|m| m["type"] == "snapshot").await?;
    assert_eq!(snap["snapshot"]["class_state"], "live");
    grace.wait_event("class_started").await?;

    // Joining late is allowed, straight into the class.
    clock.set_now(starts_at + 30_000);
    let mut bob = join(&s, &room, "bob", Role::Student).await?;
    assert_eq!(bob.welcome["snapshot"]["class_state"], "live");
    assert!(!in_lobby(&bob.welcome, "bob"));

    // The warning, a minute before the end, to everyone.
    clock.set_now(ends_at - MIN - 1_000);
    for c in [&mut ada, &mut bob, &mut grace] {
        let warning = c.wait_event("class_ending_soon").await?;
        assert_eq!(warning["event"]["ends_at"], ends_at);
        assert_eq!(warning["event"]["closes_at"], ends_at + MIN);
    }

    // After the end and the grace period the room closes for everyone, staff included.
    clock.set_now(ends_at + MIN - 1_000);
    for c in [&mut ada, &mut bob] {
        c.wait_event("class_ended").await?;
        let closing = c.wait_for(|m| m["type"] == "closing").await?;
        assert_eq!(closing["reason"], "class_ended");
        c.wait_closed().await?;
    }
    let ended = grace.wait_event("class_ended").await?;
    assert!(ended["event"].get("by").is_none(), "{ended}");
    let closing = grace.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "class_ended");
    grace.wait_closed().await?;

    // A late hello is refused: the session is over.
    let token = s.token(&room, "ada", "ada", Role::Student);
    let mut late = Client::connect(s.addr, Some(&room)).await?;
    let err = late.hello(&token, None).await.expect_err("room closed");
    assert!(err.to_string().contains("session_not_open"), "{err}");

    // The closing ended everyone's attendance: nobody is still present, each stay ends at
    // the close, and the late joiner has less time than the early one.
    let store = Store::open(&s.server.config().store_url()).await?;
    let key = room.strip_prefix("physics.").expect("session key");
    let closes = Timestamp::from_millisecond(i64::try_from(ends_at + MIN)?)?;
    let report = wait_for_attendance(&store, key, clock.now(), 3).await?;
    let row = |id: &str| {
        report
            .attendees
            .iter()
            .find(|r| r.member_id == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {report:?}"))
    };
    let (ada, bob) = (row("ada"), row("bob"));
    for r in [&ada, &bob, &row("grace")] {
        assert!(!r.still_present, "{r:?}");
        let left: Timestamp = r.last_leave.as_deref().expect("left").parse()?;
        assert!(left >= closes, "{r:?}");
    }
    assert_eq!(ada.status.as_str(), "present");
    assert!(ada.seconds_present <= 182, "{ada:?}");
    assert!(bob.seconds_present <= 150, "{bob:?}");
    assert!(ada.seconds_present > bob.seconds_present, "{ada:?} {bob:?}");
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn without_auto_start_the_lobby_waits_for_staff() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let (room, starts_at) = course_with_a_session(&s, false).await?;
    let clock = s.server.clock();
    clock.set_now(starts_at - 1_000);
    let mut ada = join(&s, &room, "ada", Role::Student).await?;
    let mut grace = join(&s, &room, "grace", Role::Instructor).await?;
    // Well past the start: still the lobby. A marker from staff proves the room has handled
    // the moment (any input runs the schedule first) without a class_started before it.
    clock.set_now(starts_at + 5_000);
    grace
        .ok(serde_json::json!({"type": "set_media", "media": {"mic": true, "camera": false, "screen": false}}))
        .await?;
    let first = ada
        .wait_for(|m| m["type"] == "event" && m["event"]["kind"] != "participant_joined")
        .await?;
    assert_eq!(first["event"]["kind"], "media_changed", "{first}");
    grace.ok(serde_json::json!({"type": "class_start"})).await?;
    let started = ada.wait_event("class_started").await?;
    assert_eq!(started["event"]["by"], "grace");
    Ok(())
}

/// The demo course: created once with its roster and a weekly schedule whose session is open
/// now; a restart during the session reuses it, a restart after it sets up a new one, and the
/// printed kind of link (minted for that session) is admitted over a real WebSocket at once.
#[tokio::test]
async fn the_demo_course_always_has_a_session_open_now() -> anyhow::Result<()> {
    let s = TestServer::start().await;
    let store = Store::open(&s.server.config().store_url()).await?;
    let spec = courses::DemoSpec {
        course_id: "demo".into(),
        title: "Demo class".into(),
        session_minutes: 12 * 60,
        auto_start: false,
    };
    let now = Timestamp::now();
    let first = courses::ensure_demo_course(&store, &spec, now).await?;
    assert_eq!(courses::list_members(&store, "demo").await?.len(), 3);
    courses::check_join(&store, &first.room, now).await?;
    let later = now.checked_add(SignedDuration::from_hours(2))?;
    let again = courses::ensure_demo_course(&store, &spec, later).await?;
    assert_eq!(
        again.room, first.room,
        "a restart during the session keeps it"
    );
    let next_day = now.checked_add(SignedDuration::from_hours(13))?;
    let renewed = courses::ensure_demo_course(&store, &spec, next_day).await?;
    assert_ne!(renewed.room, first.room);
    courses::check_join(&store, &renewed.room, next_day).await?;
    assert_eq!(courses::list_schedules(&store, "demo").await?.len(), 1);
    assert_eq!(courses::list_members(&store, "demo").await?.len(), 3);

    // Back to now: a link for the current session joins at once, into the lobby.
    let current = courses::ensure_demo_course(&store, &spec, now).await?;
    courses::check_join(&store, &current.room, now).await?;
    let auth = lectern_server::auth::Authenticator::new(
        &s.server.config().auth,
        lectern_tests::SECRET.as_bytes().to_vec(),
    )?;
    let link = courses::mint_link(
        &store,
        &auth,
        "http://localhost",
        "demo",
        "demo-student-1",
        courses::LinkRequest {
            session: Some(current.session_key.clone()),
        },
        now,
    )
    .await?;
    store.close().await;
    let mut ada = Client::connect(s.addr, Some(&current.room)).await?;
    let welcome = ada.hello(&link.token, None).await?;
    assert_eq!(welcome["snapshot"]["title"], "Demo class");
    assert!(in_lobby(&welcome, "demo-student-1"));
    assert!(welcome["snapshot"]["scheduled_start"].as_u64().is_some());
    Ok(())
}
