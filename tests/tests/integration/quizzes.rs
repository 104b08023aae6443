//! Quizzes through the member API (`/course/v1/courses/{course}/quizzes...`) and the admin API
//! of the real server: the permission matrix (a student never reads a key before submitting,
//! never another student's attempt, never the staff results; unpublished quizzes are hidden;
//! non-members get 401/403), attempt limits, the due date and the time limit by the server's
//! clock, racing submissions graded once, GIFT import, results as JSON and CSV, statistics.

use std::net::SocketAddr;

use anyhow::Context;
use lectern_proto::{ClassMode, Role};
use lectern_store::{Course, CourseMember, Store};
use lectern_tests::{DEADLINE, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ALGEBRA: &str = "algebra.2026-09-01T10:00";
const PHYSICS: &str = "physics.2026-09-01T10:00";

/// The authored quiz: every kind of question, keys, feedback and an explanation.
fn week1(max_attempts: Option<u32>, time_limit: Option<u32>, due_at: Option<i64>) -> Value {
    json!({
        "title": "Week 1",
        "description": "Warm-up",
        "settings": {"max_attempts": max_attempts, "time_limit_secs": time_limit, "due_at": due_at},
        "questions": [
            {"id": "capital", "text": "Capital of Norway?", "explanation": "Since 1814.",
             "type": "single_choice",
             "choices": [{"text": "Oslo", "correct": true, "feedback": "Yes, Oslo."},
                         {"text": "Bergen", "feedback": "West coast."}]},
            {"id": "even", "text": "Which are even?", "points": 2, "type": "multiple_choice",
             "choices": [{"text": "2", "weight": 0.5}, {"text": "4", "weight": 0.5},
                         {"text": "5", "weight": -1}]},
            {"id": "pi", "text": "Seven and a quarter, as a decimal?", "type": "numeric",
             "answers": [{"value": 7.25, "tolerance": 0.005}]},
            {"id": "author", "text": "Who wrote Hamlet?", "type": "short_text",
             "answers": [{"text": "Shakespeare"}]}
        ]
    })
}

/// Text that only the keys, weights, feedback and explanations of [`week1`] contain.
const SECRETS: [&str; 9] = [
    "\"correct\"",
    "\"weight\"",
    "\"feedback\"",
    "\"explanation\"",
    "Since 1814",
    "Yes, Oslo",
    "West coast",
    "Shakespeare",
    "7.25",
];

fn assert_no_keys(what: &str, body: &Value) {
    let text = body.to_string();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
}

/// The right answers to [`week1`] (full marks: 5).
fn right_answers() -> Value {
    json!({"answers": [
        {"question": "capital", "type": "single_choice", "choice": 0},
        {"question": "even", "type": "multiple_choice", "choices": [0, 1]},
        {"question": "pi", "type": "numeric", "value": 7.25},
        {"question": "author", "type": "short_text", "text": " shakespeare "}
    ]})
}

async fn server() -> anyhow::Result<TestServer> {
    let s = TestServer::start().await;
    let store = Store::open(&s.server.config().store_url()).await?;
    for id in ["algebra", "physics"] {
        store
            .create_course(&Course {
                id: id.to_owned(),
                title: id.to_owned(),
                timezone: "UTC".to_owned(),
                lobby_minutes: 15,
                warning_minutes: 5,
                grace_minutes: 10,
                auto_start: false,
                record_sessions: false,
                recording_downloads: false,
                class_mode: ClassMode::Lecture,
                created_at: 1,
            })
            .await?;
    }
    for (id, role) in [
        ("ada", Role::Student),
        ("alan", Role::Student),
        ("carl", Role::Student),
        ("grace", Role::Instructor),
    ] {
        store
            .add_member(
                "algebra",
                &CourseMember {
                    member_id: id.to_owned(),
                    name: format!("Name of {id}"),
                    email: None,
                    role,
                },
            )
            .await?;
    }
    store.close().await;
    Ok(s)
}

#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    text: String,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// One request over a fresh connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(addr).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no end of head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    let json = if content_type.starts_with("application/json") {
        serde_json::from_str(body).with_context(|| format!("not JSON: {body}"))?
    } else {
        Value::Null
    };
    Ok(Answer {
        status,
        content_type,
        text: body.to_owned(),
        body: json,
    })
}

/// A member of a course with their join token.
struct Member {
    addr: SocketAddr,
    token: String,
    course: &'static str,
}

impl Member {
    fn new(s: &TestServer, room: &str, sub: &str, role: Role) -> Member {
        Member {
            addr: s.addr,
            token: s.token(room, sub, &format!("Name of {sub}"), role),
            course: if room.starts_with("physics") {
                "physics"
            } else {
                "algebra"
            },
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/course/v1/courses/{}/quizzes{rest}", self.course)
    }

    async fn get(&self, rest: &str) -> anyhow::Result<Answer> {
        call(
            self.addr,
            "GET",
            &self.path(rest),
            Some(&self.token),
            "application/json",
            "",
        )
        .await
    }

    async fn send(&self, method: &str, rest: &str, body: &Value) -> anyhow::Result<Answer> {
        let body = body.to_string();
        call(
            self.addr,
            method,
            &self.path(rest),
            Some(&self.token),
            "application/json",
            &body,
        )
        .await
    }

    /// Creates a quiz (published or not) and returns its id.
    async fn create(&self, quiz: &Value, published: bool) -> anyhow::Result<i64> {
        let answer = self
            .send("POST", &format!("?published={published}"), quiz)
            .await?;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["quiz"]["id"].as_i64().context("quiz id")
    }

    async fn start(&self, quiz: i64) -> anyhow::Result<Answer> {
        self.send("POST", &format!("/{quiz}/attempts"), &json!({}))
            .await
    }

    async fn submit(&self, quiz: i64, attempt: i64, answers: &Value) -> anyhow::Result<Answer> {
        self.send(
            "POST",
            &format!("/{quiz}/attempts/{attempt}/submit"),
            answers,
        )
        .await
    }

    async fn listed(&self) -> anyhow::Result<Vec<i64>> {
        let answer = self.get("").await?;
        assert_eq!(answer.status, 200, "{answer:?}");
        Ok(answer.body["quizzes"]
            .as_array()
            .context("quizzes")?
            .iter()
            .filter_map(|q| q["quiz"]["id"].as_i64())
            .collect())
    }
}

#[tokio::test]
async fn quiz_permission_matrix() -> anyhow::Result<()> {
    let s = server().await?;
    let grace = Member::new(&s, ALGEBRA, "grace", Role::Instructor);
    let tina = Member::new(&s, ALGEBRA, "tina", Role::Ta);
    let ada = Member::new(&s, ALGEBRA, "ada", Role::Student);
    let alan = Member::new(&s, ALGEBRA, "alan", Role::Student);
    let olga = Member::new(&s, ALGEBRA, "olga", Role::Observer);
    let pia = Member::new(&s, PHYSICS, "pia", Role::Instructor);

    // Only staff author.
    let answer = ada.send("POST", "", &week1(Some(2), None, None)).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (403, "forbidden"),
        "{answer:?}"
    );
    let quiz = grace.create(&week1(Some(2), None, None), false).await?;

    // Unpublished: hidden from students, as if it did not exist.
    assert!(ada.listed().await?.is_empty());
    assert_eq!(tina.listed().await?, [quiz]);
    assert_eq!(ada.get(&format!("/{quiz}")).await?.status, 404);
    assert_eq!(ada.start(quiz).await?.status, 404);
    let answer = ada
        .send("PATCH", &format!("/{quiz}"), &json!({"published": true}))
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = grace
        .send("PATCH", &format!("/{quiz}"), &json!({"published": true}))
        .await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(ada.listed().await?, [quiz]);

    // Staff read the keys; a student reads the quiz without them.
    let answer = grace.get(&format!("/{quiz}")).await?;
    assert_eq!(
        answer.body["authored"]["questions"][3]["answers"][0]["text"],
        "Shakespeare"
    );
    let answer = ada.get(&format!("/{quiz}")).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["mine"]["attempts_left"], 2);
    assert_no_keys("the quiz for a student", &answer.body);
    let list = ada.get("").await?;
    assert_no_keys("the list for a student", &list.body);

    // Starting gives the questions without keys; starting again continues the same attempt.
    let started = ada.start(quiz).await?;
    assert_eq!(started.status, 201, "{started:?}");
    assert_no_keys("a started attempt", &started.body);
    assert_eq!(
        started.body["quiz"]["questions"].as_array().map(Vec::len),
        Some(4)
    );
    assert!(started.body["result"].is_null());
    let attempt = started.body["id"].as_i64().context("attempt id")?;
    let again = ada.start(quiz).await?;
    assert_eq!(
        (again.status, again.body["id"].as_i64()),
        (200, Some(attempt))
    );
    let open = ada.get(&format!("/{quiz}/attempts/{attempt}")).await?;
    assert_eq!(open.status, 200);
    assert_no_keys("an open attempt", &open.body);

    // Another student can neither read nor submit it; observers do not attempt.
    let answer = alan.get(&format!("/{quiz}/attempts/{attempt}")).await?;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = alan.submit(quiz, attempt, &right_answers()).await?;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = olga.start(quiz).await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = olga.get("").await?;
    assert_eq!(answer.body["quizzes"][0]["mine"]["blocked"], "observer");

    // Results, statistics, edits and deletion are staff only.
    for rest in [
        format!("/{quiz}/results"),
        format!("/{quiz}/results?format=csv"),
        format!("/{quiz}/stats"),
    ] {
        let answer = ada.get(&rest).await?;
        assert_eq!(
            (answer.status, answer.code()),
            (403, "forbidden"),
            "{rest}: {answer:?}"
        );
        assert_no_keys("a refusal", &answer.body);
    }
    let answer = ada
        .send(
            "PATCH",
            &format!("/{quiz}"),
            &json!({"quiz": week1(None, None, None)}),
        )
        .await?;
    assert_eq!(answer.status, 403);
    let answer = ada.send("DELETE", &format!("/{quiz}"), &json!({})).await?;
    assert_eq!(answer.status, 403);

    // Not a member of the course: no token, a forged one, another course's.
    let path = "/course/v1/courses/algebra/quizzes";
    let answer = call(s.addr, "GET", path, None, "application/json", "").await?;
    assert_eq!((answer.status, answer.code()), (401, "unauthorized"));
    let answer = call(
        s.addr,
        "GET",
        path,
        Some("not.a.token"),
        "application/json",
        "",
    )
    .await?;
    assert_eq!(answer.status, 401);
    for rest in [
        "",
        &format!("/{quiz}"),
        &format!("/{quiz}/attempts/{attempt}"),
    ] {
        let answer = call(
            s.addr,
            "GET",
            &format!("{path}{rest}"),
            Some(&pia.token),
            "application/json",
            "",
        )
        .await?;
        assert_eq!(
            (answer.status, answer.code()),
            (403, "forbidden"),
            "{answer:?}"
        );
    }
    // The quiz does not exist in another course, even for its staff.
    let answer = pia.get(&format!("/{quiz}")).await?;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = pia.get(&format!("/{quiz}/results")).await?;
    assert_eq!(answer.status, 404, "{answer:?}");

    // Submitting grades at once, with feedback, explanation and solution; once only.
    let done = ada.submit(quiz, attempt, &right_answers()).await?;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body["score"], 5.0);
    assert_eq!(
        done.body["result"]["questions"][0]["explanation"],
        "Since 1814."
    );
    assert_eq!(
        done.body["result"]["questions"][0]["feedback"][0],
        "Yes, Oslo."
    );
    assert_eq!(
        done.body["result"]["questions"][3]["solution"]["accepted"][0],
        "Shakespeare"
    );
    let answer = ada.submit(quiz, attempt, &right_answers()).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "already_submitted"),
        "{answer:?}"
    );
    // The submitted attempt is readable by its student, still not by another.
    let mine = ada.get(&format!("/{quiz}/attempts/{attempt}")).await?;
    assert_eq!(mine.body["result"]["score"], 5.0);
    let answer = alan.get(&format!("/{quiz}/attempts/{attempt}")).await?;
    assert_eq!(answer.status, 404);
    let listed = ada.get(&format!("/{quiz}/attempts")).await?;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    let listed = alan.get(&format!("/{quiz}/attempts")).await?;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(0));
    // Staff read anyone's attempt.
    let answer = tina.get(&format!("/{quiz}/attempts/{attempt}")).await?;
    assert_eq!(answer.status, 200);

    // Bad answers are refused as a whole, with a reason.
    let second = ada.start(quiz).await?;
    assert_eq!(second.status, 201, "{second:?}");
    let second_id = second.body["id"].as_i64().context("attempt id")?;
    let answer = ada
        .submit(
            quiz,
            second_id,
            &json!({"answers": [{"question": "capital", "type": "single_choice", "choice": 9}]}),
        )
        .await?;
    assert_eq!(
        (answer.status, answer.code()),
        (400, "invalid_input"),
        "{answer:?}"
    );
    let wrong = json!({"answers": [
        {"question": "capital", "type": "single_choice", "choice": 1},
        {"question": "even", "type": "multiple_choice", "choices": [0, 2]}
    ]});
    let answer = ada.submit(quiz, second_id, &wrong).await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["score"], 0.0);

    // Two attempts used of two.
    let answer = ada.start(quiz).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "no_attempts_left"),
        "{answer:?}"
    );
    let state = ada.get(&format!("/{quiz}")).await?;
    assert_eq!(state.body["mine"]["attempts_left"], 0);
    assert_eq!(state.body["mine"]["best_score"], 5.0);
    assert_eq!(state.body["mine"]["blocked"], "no_attempts_left");

    // Staff: results (every roster student, with or without attempts) and statistics.
    let results = grace.get(&format!("/{quiz}/results")).await?;
    assert_eq!(results.status, 200, "{results:?}");
    let students = results.body["students"].as_array().context("students")?;
    let ids: Vec<&str> = students
        .iter()
        .filter_map(|r| r["member_id"].as_str())
        .collect();
    assert_eq!(ids, ["ada", "alan", "carl"]);
    assert_eq!(students[0]["best_score"], 5.0);
    assert_eq!(students[0]["last_score"], 0.0);
    assert_eq!(students[0]["submitted"], 2);
    let csv = grace.get(&format!("/{quiz}/results?format=csv")).await?;
    assert!(csv.content_type.starts_with("text/csv"), "{csv:?}");
    let mut lines = csv.text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "member_id,name,on_roster,attempts,submitted,best_score,last_score,max_score,last_submitted_at"
        )
    );
    assert!(
        lines
            .next()
            .unwrap_or("")
            .starts_with("ada,Name of ada,true,2,2,5,0,5,")
    );
    let stats = grace.get(&format!("/{quiz}/stats")).await?;
    assert_eq!(stats.body["submitted_attempts"], 2);
    let capital = &stats.body["questions"][0];
    assert_eq!(capital["share_correct"], 0.5);
    assert_eq!(capital["choices"][0]["count"], 1);
    assert_eq!(capital["choices"][1]["count"], 1);
    let even = &stats.body["questions"][1];
    assert_eq!(even["mean_score"], 1.0);
    assert_eq!(even["choices"][2]["count"], 1);

    // Deleting takes the attempts with it.
    let answer = grace
        .send("DELETE", &format!("/{quiz}"), &json!({}))
        .await?;
    assert_eq!(answer.status, 204);
    assert_eq!(
        ada.get(&format!("/{quiz}/attempts/{attempt}"))
            .await?
            .status,
        404
    );
    Ok(())
}

#[tokio::test]
async fn time_limit_due_date_and_racing_submissions() -> anyhow::Result<()> {
    let s = server().await?;
    let clock = s.server.clock();
    let grace = Member::new(&s, ALGEBRA, "grace", Role::Instructor);
    let ada = Member::new(&s, ALGEBRA, "ada", Role::Student);
    let alan = Member::new(&s, ALGEBRA, "alan", Role::Student);

    // A time limit of 60 s: the deadline is given; past it (and the grace), submitting fails.
    let timed = grace.create(&week1(None, Some(60), None), true).await?;
    let started = ada.start(timed).await?;
    let attempt = started.body["id"].as_i64().context("attempt id")?;
    let started_at = started.body["started_at"].as_u64().context("started_at")?;
    assert_eq!(
        started.body["deadline_at"].as_u64(),
        Some(started_at + 60_000)
    );
    clock.set_now(started_at + 120_000);
    let answer = ada.submit(timed, attempt, &right_answers()).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "time_up"),
        "{answer:?}"
    );
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("60 seconds")
    );
    // The expired attempt is not continued: starting gives a new one.
    let next = ada.start(timed).await?;
    assert_eq!(next.status, 201, "{next:?}");
    assert_ne!(next.body["id"].as_i64(), Some(attempt));

    // Two simultaneous submissions of one attempt: one is graded, the other refused.
    let raced = alan.start(timed).await?;
    let raced = raced.body["id"].as_i64().context("attempt id")?;
    let answers = right_answers();
    let (a, b) = tokio::join!(
        alan.submit(timed, raced, &answers),
        alan.submit(timed, raced, &answers),
    );
    let (a, b) = (a?, b?);
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let results = grace.get(&format!("/{timed}/results")).await?;
    let alan_row = results.body["students"]
        .as_array()
        .context("students")?
        .iter()
        .find(|r| r["member_id"] == "alan")
        .cloned()
        .context("alan")?;
    assert_eq!(
        (alan_row["attempts"].clone(), alan_row["submitted"].clone()),
        (json!(1), json!(1))
    );

    // A due date: past it, neither starting nor submitting.
    let now_secs = i64::try_from(clock.now_ms() / 1000)?;
    let due = grace
        .create(&week1(None, None, Some(now_secs + 3600)), true)
        .await?;
    let open = ada.start(due).await?;
    let open = open.body["id"].as_i64().context("attempt id")?;
    clock.set_now(u64::try_from(now_secs + 7200)? * 1000);
    let answer = ada.submit(due, open, &right_answers()).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "past_due"),
        "{answer:?}"
    );
    let answer = alan.start(due).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "past_due"),
        "{answer:?}"
    );
    let state = alan.get(&format!("/{due}")).await?;
    assert_eq!(state.body["mine"]["can_attempt"], false);
    Ok(())
}

#[tokio::test]
async fn gift_import_and_validation_errors() -> anyhow::Result<()> {
    let s = server().await?;
    let grace = Member::new(&s, ALGEBRA, "grace", Role::Instructor);
    let gift = "::Capitals::Which city is the capital of Norway? {=Oslo ~Bergen}\n\n\
                The Earth orbits the Sun. {T}\n";
    let answer = call(
        s.addr,
        "POST",
        "/course/v1/courses/algebra/quizzes?title=Week%202",
        Some(&grace.token),
        "text/plain",
        gift,
    )
    .await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.body["quiz"]["title"], "Week 2");
    assert_eq!(answer.body["quiz"]["question_count"], 2);
    assert_eq!(answer.body["quiz"]["published"], false);

    // Errors name the GIFT line, or the question.
    let answer = call(
        s.addr,
        "POST",
        "/course/v1/courses/algebra/quizzes?format=gift",
        Some(&grace.token),
        "application/json",
        "Q? {=a ~b}\n\nBroken {",
    )
    .await?;
    assert_eq!(
        (answer.status, answer.code()),
        (400, "invalid_input"),
        "{answer:?}"
    );
    assert_eq!(answer.body["error"]["details"][0]["line"], 3);
    let mut bad = week1(None, None, None);
    bad["questions"][2]["answers"][0]["tolerance"] = json!(-1);
    let answer = grace.send("POST", "", &bad).await?;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["error"]["details"][0]["field"], "questions.pi");
    let answer = grace.send("POST", "", &json!({"title": "x"})).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (400, "invalid_input"),
        "{answer:?}"
    );
    Ok(())
}

#[tokio::test]
async fn admin_api_authors_quizzes_and_reads_results() -> anyhow::Result<()> {
    let s = server().await?;
    let store = Store::open(&s.server.config().store_url()).await?;
    let (_, key) =
        lectern_server::courses::create_api_key(&store, "tests", lectern_server::clock::wall_ms())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    let admin = |method: &'static str, path: String, content_type: &'static str, body: String| {
        let key = key.clone();
        async move {
            call(
                s.addr,
                method,
                &format!("/api/v1{path}"),
                Some(&key),
                content_type,
                &body,
            )
            .await
        }
    };

    let answer = call(
        s.addr,
        "GET",
        "/api/v1/courses/algebra/quizzes",
        None,
        "",
        "",
    )
    .await?;
    assert_eq!(answer.status, 401);
    let answer = admin(
        "POST",
        "/courses/algebra/quizzes?format=gift&published=true".into(),
        "text/plain",
        "Capital of Norway? {=Oslo ~Bergen}".into(),
    )
    .await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    let quiz = answer.body["quiz"]["id"].as_i64().context("quiz id")?;
    let answer = admin(
        "GET",
        format!("/courses/algebra/quizzes/{quiz}"),
        "",
        String::new(),
    )
    .await?;
    assert_eq!(
        answer.body["authored"]["questions"][0]["choices"][0]["correct"],
        true
    );
    let answer = admin(
        "PATCH",
        format!("/courses/algebra/quizzes/{quiz}"),
        "application/json",
        json!({"quiz": week1(Some(1), None, None)}).to_string(),
    )
    .await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["quiz"]["question_count"], 4);
    assert_eq!(answer.body["quiz"]["published"], true);

    // A student takes it through the member API; the admin API reads the results.
    let ada = Member::new(&s, ALGEBRA, "ada", Role::Student);
    let started = ada.start(quiz).await?;
    let attempt = started.body["id"].as_i64().context("attempt id")?;
    assert_eq!(
        ada.submit(quiz, attempt, &right_answers()).await?.status,
        200
    );
    let answer = admin("GET", "/courses/algebra/quizzes".into(), "", String::new()).await?;
    assert_eq!(answer.body[0]["id"], quiz);
    let answer = admin(
        "GET",
        format!("/courses/algebra/quizzes/{quiz}/results?format=csv"),
        "",
        String::new(),
    )
    .await?;
    assert!(
        answer.text.contains("\nada,Name of ada,true,1,1,5,5,5,"),
        "{answer:?}"
    );
    let answer = admin(
        "GET",
        format!("/courses/algebra/quizzes/{quiz}/stats"),
        "",
        String::new(),
    )
    .await?;
    assert_eq!(answer.body["questions"][0]["share_correct"], 1.0);
    let answer = admin(
        "GET",
        format!("/courses/physics/quizzes/{quiz}"),
        "",
        String::new(),
    )
    .await?;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = admin(
        "DELETE",
        format!("/courses/algebra/quizzes/{quiz}"),
        "",
        String::new(),
    )
    .await?;
    assert_eq!(answer.status, 204);
    Ok(())
}

/// A quiz launched live in class (docs/PROTOCOL.md "Live quizzes") over real WebSockets and the
/// REST API: a student may not launch; an unpublished or unknown quiz is refused; everyone sees
/// `quiz_live` (a late joiner in the snapshot); staff see the submitted count; an attempt
/// started in the live window takes no submission after `ends_at` plus the grace, and the room
/// ends the quiz by itself at `ends_at`.
#[tokio::test]
async fn a_quiz_launched_live_in_class_ends_attempts_at_its_end() -> anyhow::Result<()> {
    use crate::api::{Api, open_session};
    use lectern_tests::Client;

    let api = Api::start().await;
    api.course("algebra").await;
    let key = open_session(&api, "algebra").await?;
    let room = format!("algebra.{key}");
    let roster = "member_id,name,role\n\
                  ada,Ada Lovelace,student\n\
                  alan,Alan Turing,student\n\
                  carl,Carl Gauss,student\n\
                  grace,Grace Hopper,instructor\n";
    let r = api
        .csv("/api/v1/courses/algebra/members/import", roster)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut members = std::collections::HashMap::new();
    for member in ["ada", "alan", "carl", "grace"] {
        let link = format!("/api/v1/courses/algebra/members/{member}/link");
        let r = api.send("POST", &link, &json!({"session": key})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let token = r.json()["token"].as_str().context("token")?.to_owned();
        members.insert(
            member,
            Member {
                addr: api.s.addr,
                token,
                course: "algebra",
            },
        );
    }
    let connect = |member: &'static str| {
        let (addr, room, token) = (api.s.addr, room.clone(), members[member].token.clone());
        async move {
            let mut c = Client::connect(addr, Some(&room)).await?;
            c.hello(&token, None).await?;
            anyhow::Ok(c)
        }
    };
    let published = members["grace"]
        .create(&week1(None, None, None), true)
        .await?;
    let draft = members["grace"]
        .create(&week1(None, None, None), false)
        .await?;

    let mut grace = connect("grace").await?;
    grace.ok(json!({"type": "class_start"})).await?;
    let mut ada = connect("ada").await?;

    let launch = |quiz: i64| json!({"type": "quiz_launch", "quiz_id": quiz, "duration_secs": 60});
    let refused = ada.request(launch(published)).await?;
    assert_eq!(refused["code"], "not_permitted", "{refused}");
    for quiz in [draft, 999_999] {
        let refused = grace.request(launch(quiz)).await?;
        assert_eq!(refused["code"], "quiz_unavailable", "{refused}");
    }
    let refused = grace
        .request(json!({"type": "quiz_launch", "quiz_id": published, "duration_secs": 5}))
        .await?;
    assert_eq!(refused["code"], "quiz_invalid", "{refused}");

    grace.ok(launch(published)).await?;
    let live = ada.wait_event("quiz_live").await?;
    let quiz = &live["event"]["quiz"];
    assert_eq!(quiz["quiz_id"], published, "{live}");
    assert_eq!(quiz["title"], "Week 1");
    let ends_at = quiz["ends_at"].as_u64().context("ends_at")?;
    let progress =
        |n: u64| move |m: &Value| m["type"] == "quiz_progress" && m["submitted"] == json!(n);
    grace.wait_for(progress(0)).await?;
    // A late joiner finds it in the snapshot.
    let mut alan = Client::connect(api.s.addr, Some(&room)).await?;
    let welcome = alan.hello(&members["alan"].token, None).await?;
    assert_eq!(welcome["snapshot"]["live_quiz"]["quiz_id"], published);

    // Two attempts started while it is live: the deadline is the quiz's end.
    let ada_attempt = members["ada"].start(published).await?;
    assert_eq!(ada_attempt.status, 201, "{ada_attempt:?}");
    assert_eq!(ada_attempt.body["deadline_at"].as_u64(), Some(ends_at));
    let carl_attempt = members["carl"].start(published).await?;
    let id_of = |a: &Answer| a.body["id"].as_i64().context("attempt id");

    // Ada submits in time: staff see the count.
    let done = members["ada"]
        .submit(published, id_of(&ada_attempt)?, &right_answers())
        .await?;
    assert_eq!(done.status, 200, "{done:?}");
    grace.wait_for(progress(1)).await?;

    // Past the end plus the grace, Carl's attempt is refused; the room ended the quiz.
    let clock = api.s.server.clock();
    clock.set_now(ends_at + 6_000);
    let ended = ada.wait_event("quiz_ended").await?;
    assert_eq!(ended["event"]["quiz_id"], published);
    assert!(ended["event"].get("by").is_none(), "{ended}");
    let late = members["carl"]
        .submit(published, id_of(&carl_attempt)?, &right_answers())
        .await?;
    assert_eq!((late.status, late.code()), (409, "time_up"), "{late:?}");
    // An attempt started after the end follows the quiz's own rules (no time limit).
    let after = members["alan"].start(published).await?;
    assert_eq!(after.status, 201, "{after:?}");
    assert!(after.body["deadline_at"].is_null(), "{after:?}");
    let _ = &mut alan;
    Ok(())
}
