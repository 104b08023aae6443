//! The course discussion board through the member API (`/course/v1`) of the real server: the
//! permission matrix (students, staff, observers, private questions, locked topics, tokens of
//! another course), unread counts, search visibility, live updates over Server-Sent Events, and
//! moving a live chat message into a topic.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use lectern_proto::{ClassMode, Role};
use lectern_store::{Course, Store};
use lectern_tests::{DEADLINE, TestServer, wait_until};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ALGEBRA: &str = "algebra.2026-09-01T10:00";
const PHYSICS: &str = "physics.2026-09-01T10:00";

/// A server with the courses `algebra`, `physics` and `clinic` (the course of the ad-hoc room
/// `clinic`).
async fn server() -> anyhow::Result<TestServer> {
    let s = TestServer::start().await;
    let store = Store::open(&s.server.config().store_url()).await?;
    for id in ["algebra", "physics", "clinic"] {
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
    store.close().await;
    Ok(s)
}

#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// One request over a fresh connection; the body is JSON (or null when empty).
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(addr).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
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
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).with_context(|| format!("not JSON: {body}"))?
    };
    Ok(Answer { status, body })
}

/// A member with a join token for a room of a course.
struct Member {
    addr: SocketAddr,
    token: String,
    course: &'static str,
}

impl Member {
    fn new(s: &TestServer, room: &str, sub: &str, role: Role) -> Member {
        let course = if room.starts_with("physics") {
            "physics"
        } else if room.starts_with("clinic") {
            "clinic"
        } else {
            "algebra"
        };
        Member {
            addr: s.addr,
            token: s.token(room, sub, &format!("Name of {sub}"), role),
            course,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/course/v1/courses/{}/board{rest}", self.course)
    }

    async fn get(&self, rest: &str) -> anyhow::Result<Answer> {
        call(self.addr, "GET", &self.path(rest), Some(&self.token), None).await
    }

    async fn send(&self, method: &str, rest: &str, body: Value) -> anyhow::Result<Answer> {
        let body = body.to_string();
        call(
            self.addr,
            method,
            &self.path(rest),
            Some(&self.token),
            Some(&body),
        )
        .await
    }

    async fn delete(&self, rest: &str) -> anyhow::Result<Answer> {
        call(
            self.addr,
            "DELETE",
            &self.path(rest),
            Some(&self.token),
            None,
        )
        .await
    }

    /// Creates a topic and returns its id.
    async fn topic(&self, title: &str, body: &str, private: bool) -> anyhow::Result<i64> {
        let answer = self
            .send(
                "POST",
                "/topics",
                json!({"title": title, "body": body, "private": private}),
            )
            .await?;
        if answer.status != 201 {
            bail!("creating a topic: {answer:?}");
        }
        answer.body["id"].as_i64().context("topic id")
    }

    async fn reply(&self, topic: i64, body: &str) -> anyhow::Result<Answer> {
        self.send(
            "POST",
            &format!("/topics/{topic}/replies"),
            json!({"body": body}),
        )
        .await
    }

    /// The ids of the topics in this member's list, in order.
    async fn listed(&self) -> anyhow::Result<Vec<i64>> {
        let answer = self.get("/topics").await?;
        assert_eq!(answer.status, 200, "{answer:?}");
        Ok(answer.body["topics"]
            .as_array()
            .context("topics")?
            .iter()
            .filter_map(|t| t["topic"]["id"].as_i64())
            .collect())
    }

    async fn search(&self, q: &str) -> anyhow::Result<Vec<i64>> {
        let answer = self.get(&format!("/search?q={q}")).await?;
        assert_eq!(answer.status, 200, "{answer:?}");
        Ok(answer.body["hits"]
            .as_array()
            .context("hits")?
            .iter()
            .filter_map(|h| h["topic_id"].as_i64())
            .collect())
    }
}

#[tokio::test]
async fn board_permission_matrix() -> anyhow::Result<()> {
    let s = server().await?;
    let grace = Member::new(&s, ALGEBRA, "grace", Role::Instructor);
    let tina = Member::new(&s, ALGEBRA, "tina", Role::Ta);
    let ada = Member::new(&s, ALGEBRA, "ada", Role::Student);
    let alan = Member::new(&s, ALGEBRA, "alan", Role::Student);
    let olga = Member::new(&s, ALGEBRA, "olga", Role::Observer);

    let ada_topic = ada
        .topic("Ring axioms", "Is a ring commutative?", false)
        .await?;
    let alan_topic = alan.topic("Homework 3", "Due when?", false).await?;

    // A student cannot pin, lock, edit or delete another's topic.
    for change in [json!({"pinned": true}), json!({"locked": true})] {
        let answer = alan
            .send("PATCH", &format!("/topics/{ada_topic}"), change)
            .await?;
        assert_eq!(
            (answer.status, answer.code()),
            (403, "forbidden"),
            "{answer:?}"
        );
    }
    // Not even their own: pinning and locking are for staff.
    let answer = alan
        .send(
            "PATCH",
            &format!("/topics/{alan_topic}"),
            json!({"pinned": true}),
        )
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = alan
        .send(
            "PATCH",
            &format!("/topics/{ada_topic}"),
            json!({"title": "Mine now"}),
        )
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(
        alan.delete(&format!("/topics/{ada_topic}")).await?.status,
        403
    );
    // Staff may not rewrite a student's words either, only moderate.
    let answer = grace
        .send(
            "PATCH",
            &format!("/topics/{ada_topic}"),
            json!({"body": "edited"}),
        )
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");

    // The author edits their own topic.
    let answer = ada
        .send(
            "PATCH",
            &format!("/topics/{ada_topic}"),
            json!({"title": "Ring axioms (edited)"}),
        )
        .await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["title"], "Ring axioms (edited)");
    assert_eq!(answer.body["body"], "Is a ring commutative?");
    assert!(answer.body["edited_at"].is_string(), "{answer:?}");

    // Staff pin and lock; pinned topics come first.
    let answer = grace
        .send(
            "PATCH",
            &format!("/topics/{ada_topic}"),
            json!({"pinned": true}),
        )
        .await?;
    assert_eq!((answer.status, &answer.body["pinned"]), (200, &json!(true)));
    assert_eq!(alan.listed().await?, [ada_topic, alan_topic]);
    let answer = tina
        .send(
            "PATCH",
            &format!("/topics/{ada_topic}"),
            json!({"locked": true}),
        )
        .await?;
    assert_eq!((answer.status, &answer.body["locked"]), (200, &json!(true)));

    // A locked topic refuses students' replies, its author's included, with a readable reason;
    // staff still reply.
    for student in [&alan, &ada] {
        let answer = student.reply(ada_topic, "one more thing").await?;
        assert_eq!(
            (answer.status, answer.code()),
            (409, "locked"),
            "{answer:?}"
        );
        let message = answer.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("locked"), "{message}");
    }
    let answer = grace
        .reply(ada_topic, "No: commutativity is extra.")
        .await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    grace
        .send(
            "PATCH",
            &format!("/topics/{ada_topic}"),
            json!({"locked": false}),
        )
        .await?;

    // Replies: only the author edits, the author or staff delete.
    let answer = alan.reply(ada_topic, "Thanks!").await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    let alan_reply = answer.body["id"].as_i64().context("reply id")?;
    let answer = ada
        .send(
            "PATCH",
            &format!("/replies/{alan_reply}"),
            json!({"body": "hijack"}),
        )
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(
        ada.delete(&format!("/replies/{alan_reply}")).await?.status,
        403
    );
    let answer = alan
        .send(
            "PATCH",
            &format!("/replies/{alan_reply}"),
            json!({"body": "Thanks a lot!"}),
        )
        .await?;
    assert_eq!(
        (answer.status, &answer.body["body"]),
        (200, &json!("Thanks a lot!"))
    );
    assert_eq!(
        grace
            .delete(&format!("/replies/{alan_reply}"))
            .await?
            .status,
        204
    );
    let thread = alan.get(&format!("/topics/{ada_topic}")).await?;
    assert_eq!(thread.status, 200, "{thread:?}");
    let replies = thread.body["replies"].as_array().context("replies")?;
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1]["deleted"], true);
    assert_eq!(replies[1]["body"], "");
    assert_eq!(thread.body["topic"]["reply_count"], 1);
    // Staff delete any topic; its text is gone and it leaves the list.
    assert_eq!(
        tina.delete(&format!("/topics/{alan_topic}")).await?.status,
        204
    );
    assert_eq!(alan.listed().await?, [ada_topic]);
    let gone = alan.get(&format!("/topics/{alan_topic}")).await?;
    assert_eq!(
        (
            gone.body["topic"]["deleted"].clone(),
            gone.body["topic"]["title"].clone()
        ),
        (json!(true), json!(""))
    );
    assert_eq!(alan.reply(alan_topic, "hello?").await?.code(), "deleted");

    // A private question: staff and its asker read it, nobody else, nor through search.
    let private = ada
        .topic("My grade", "Why zebra points on quiz 2?", true)
        .await?;
    assert_eq!(alan.get(&format!("/topics/{private}")).await?.status, 404);
    assert_eq!(alan.reply(private, "peek").await?.status, 404);
    assert!(!alan.listed().await?.contains(&private));
    assert!(alan.search("zebra").await?.is_empty());
    assert_eq!(ada.search("zebra").await?, [private]);
    assert_eq!(grace.search("zebra").await?, [private]);
    let answer = grace.get(&format!("/topics/{private}")).await?;
    assert_eq!(
        (answer.status, &answer.body["topic"]["private"]),
        (200, &json!(true))
    );
    let answer = tina.reply(private, "A zebra answer for you").await?;
    assert_eq!(answer.status, 201);
    assert!(alan.search("zebra").await?.is_empty());
    assert_eq!(ada.search("zebra").await?, [private, private]);

    // Observers read but do not post.
    assert_eq!(olga.listed().await?, [ada_topic]);
    let answer = olga
        .send("POST", "/topics", json!({"title": "Hi", "body": "there"}))
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(olga.reply(ada_topic, "me too").await?.status, 403);

    // Tokens: none, forged, or for another course.
    let path = "/course/v1/courses/algebra/board/topics";
    let answer = call(s.addr, "GET", path, None, None).await?;
    assert_eq!((answer.status, answer.code()), (401, "unauthorized"));
    let answer = call(s.addr, "GET", path, Some("not.a.token"), None).await?;
    assert_eq!(answer.status, 401);
    let physicist = Member::new(&s, PHYSICS, "pia", Role::Instructor);
    let answer = call(s.addr, "GET", path, Some(&physicist.token), None).await?;
    assert_eq!(
        (answer.status, answer.code()),
        (403, "forbidden"),
        "{answer:?}"
    );
    let answer = call(
        s.addr,
        "GET",
        &format!("/course/v1/courses/algebra/board/topics/{ada_topic}"),
        Some(&physicist.token),
        None,
    )
    .await?;
    assert_eq!(answer.status, 403);
    // A topic of another course is not found in this one.
    let physics_topic = physicist.topic("Waves", "Read chapter 2", false).await?;
    assert_eq!(
        ada.get(&format!("/topics/{physics_topic}")).await?.status,
        404
    );
    assert_eq!(
        ada.delete(&format!("/topics/{physics_topic}"))
            .await?
            .status,
        404
    );

    // Unknown ids and bad input.
    for rest in ["/topics/999999", "/topics/abc", "/topics/-1", "/topics/0"] {
        let answer = ada.get(rest).await?;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "not_found"),
            "{rest}: {answer:?}"
        );
    }
    assert_eq!(ada.reply(999_999, "x").await?.status, 404);
    assert_eq!(ada.delete("/replies/999999").await?.status, 404);
    for (input, field) in [
        (json!({"title": "", "body": "b"}), "title"),
        (json!({"title": "   ", "body": "b"}), "title"),
        (json!({"title": "t".repeat(201), "body": "b"}), "title"),
        (json!({"title": "t", "body": "b".repeat(10_001)}), "body"),
        (json!({"title": "t", "body": " \n "}), "body"),
        (json!({"title": "a\nb", "body": "b"}), "title"),
    ] {
        let answer = ada.send("POST", "/topics", input).await?;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_input"),
            "{answer:?}"
        );
        assert_eq!(
            answer.body["error"]["details"][0]["field"], field,
            "{answer:?}"
        );
    }
    let ok = ada
        .send(
            "POST",
            "/topics",
            json!({"title": "é".repeat(200), "body": "b".repeat(10_000)}),
        )
        .await?;
    assert_eq!(ok.status, 201, "the limits themselves are allowed");
    for raw in [
        "{",
        "[]",
        r#"{"title": "t", "body": "b", "extra": 1}"#,
        r#"{"title": 5}"#,
    ] {
        let answer = call(s.addr, "POST", path, Some(&ada.token), Some(raw)).await?;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_input"),
            "{raw}: {answer:?}"
        );
    }
    let answer = ada
        .send("PATCH", &format!("/topics/{ada_topic}"), json!({}))
        .await?;
    assert_eq!(answer.status, 400);
    for q in ["", "%22%22", "*", "x".repeat(201).as_str()] {
        let answer = ada.get(&format!("/search?q={q}")).await?;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_input"),
            "{q}: {answer:?}"
        );
    }
    assert_eq!(ada.get("/topics?limit=0").await?.status, 400);
    assert_eq!(ada.get("/topics?limit=101").await?.status, 400);
    assert_eq!(ada.get("/topics?offset=-1").await?.status, 400);
    assert_eq!(ada.get("/topics?offset=99999999999").await?.status, 400);
    let answer = call(
        s.addr,
        "GET",
        "/course/v1/courses/nosuch/board/topics",
        Some(&Member::new(&s, "nosuch.2026-09-01T10:00", "x", Role::Student).token),
        None,
    )
    .await?;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));
    s.server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unread_counts_are_per_member_and_cleared_by_reading() -> anyhow::Result<()> {
    let s = server().await?;
    let grace = Member::new(&s, ALGEBRA, "grace", Role::Instructor);
    let ada = Member::new(&s, ALGEBRA, "ada", Role::Student);
    let alan = Member::new(&s, ALGEBRA, "alan", Role::Student);

    let topic = grace.topic("Exam dates", "June 3rd", false).await?;
    let unread = |a: &Answer| {
        (
            a.body["unread_total"].clone(),
            a.body["topics"][0]["unread"].clone(),
        )
    };
    assert_eq!(unread(&ada.get("/topics").await?), (json!(1), json!(1)));
    assert_eq!(unread(&grace.get("/topics").await?), (json!(0), json!(0)));

    let thread = ada.get(&format!("/topics/{topic}")).await?;
    assert_eq!(thread.body["unread"], 1, "{thread:?}");
    assert_eq!(unread(&ada.get("/topics").await?), (json!(0), json!(0)));

    alan.reply(topic, "Which room?").await?;
    grace.reply(topic, "Room 101").await?;
    assert_eq!(unread(&ada.get("/topics").await?), (json!(2), json!(2)));
    // Alan's own reply is not unread for him; the topic and Grace's reply are.
    assert_eq!(unread(&alan.get("/topics").await?), (json!(2), json!(2)));
    ada.get(&format!("/topics/{topic}")).await?;
    assert_eq!(unread(&ada.get("/topics").await?), (json!(0), json!(0)));
    assert_eq!(unread(&alan.get("/topics").await?), (json!(2), json!(2)));
    s.server.shutdown().await;
    Ok(())
}

/// A Server-Sent Events subscription over a raw connection (chunked transfer decoded here).
struct Events {
    stream: TcpStream,
    raw: Vec<u8>,
    text: String,
    head_done: bool,
}

impl Events {
    async fn open(addr: SocketAddr, path: &str, token: Option<&str>) -> anyhow::Result<Events> {
        let mut stream = TcpStream::connect(addr).await?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{auth}\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        let mut events = Events {
            stream,
            raw: Vec::new(),
            text: String::new(),
            head_done: false,
        };
        let (kind, _) = events.next().await?;
        assert_eq!(kind, "ready");
        Ok(events)
    }

    /// Moves complete chunks from `raw` to `text`.
    fn decode(&mut self) -> anyhow::Result<()> {
        if !self.head_done {
            let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(());
            };
            let head = String::from_utf8_lossy(&self.raw[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") || !head.contains("text/event-stream") {
                bail!("not an event stream: {head}");
            }
            assert!(head.contains("transfer-encoding: chunked"), "{head}");
            self.raw.drain(..end + 4);
            self.head_done = true;
        }
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return Ok(());
            };
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&self.raw[..line_end]).trim(), 16)?;
            if self.raw.len() < line_end + 2 + size + 2 {
                return Ok(());
            }
            let chunk = &self.raw[line_end + 2..line_end + 2 + size];
            self.text.push_str(&String::from_utf8_lossy(chunk));
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// The next event (name, data as JSON), skipping keep-alive comments; fails at the deadline.
    async fn next(&mut self) -> anyhow::Result<(String, Value)> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            self.decode()?;
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Ok((name, serde_json::from_str(&data)?));
                }
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .context("no board event before the deadline")??;
            if n == 0 {
                bail!("the event stream ended");
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// Events up to the first one `pred` accepts; the accepted one is last.
    async fn until(
        &mut self,
        pred: impl Fn(&str, &Value) -> bool,
    ) -> anyhow::Result<Vec<(String, Value)>> {
        let mut seen = Vec::new();
        loop {
            let (name, data) = self.next().await?;
            let done = pred(&name, &data);
            seen.push((name, data));
            if done {
                return Ok(seen);
            }
        }
    }
}

#[tokio::test]
async fn board_events_reach_open_pages_and_never_leak_private_topics() -> anyhow::Result<()> {
    let s = server().await?;
    let grace = Member::new(&s, ALGEBRA, "grace", Role::Instructor);
    let ada = Member::new(&s, ALGEBRA, "ada", Role::Student);
    let alan = Member::new(&s, ALGEBRA, "alan", Role::Student);
    let events = "/course/v1/courses/algebra/board/events";
    let mut alan_events = Events::open(s.addr, events, Some(&alan.token)).await?;
    let mut grace_events = Events::open(s.addr, events, Some(&grace.token)).await?;

    // Ada asks staff privately, then opens a public topic. Staff get both; Alan gets the public
    // one, and since one channel carries both in order, the private one would have come first.
    let private = ada.topic("Private", "my grade", true).await?;
    let public = ada.topic("Public", "the homework", false).await?;
    let seen = grace_events
        .until(|name, d| name == "topic_created" && d["topic"]["id"] == private)
        .await?;
    assert_eq!(
        seen.last().map(|e| e.1["type"].clone()),
        Some(json!("topic_created"))
    );
    let seen = alan_events
        .until(|name, d| name == "topic_created" && d["topic"]["id"] == public)
        .await?;
    assert!(
        seen.iter().all(|(_, d)| d["topic"]["id"] != private),
        "Alan received Ada's private topic: {seen:?}"
    );

    // A reply to the private topic reaches staff only; a new reply to the public topic reaches
    // Alan's open page.
    let answer = grace.reply(private, "Let's talk after class").await?;
    assert_eq!(answer.status, 201);
    let answer = grace.reply(public, "Due Friday").await?;
    let reply_id = answer.body["id"].as_i64().context("reply id")?;
    let seen = alan_events
        .until(|name, d| name == "reply_created" && d["reply"]["id"] == reply_id)
        .await?;
    assert_eq!(seen.len(), 1, "only the public reply: {seen:?}");
    assert_eq!(seen[0].1["topic_id"], public);
    assert_eq!(seen[0].1["reply"]["body"], "Due Friday");

    // Staff moderation shows up as updates and deletions.
    grace
        .send(
            "PATCH",
            &format!("/topics/{public}"),
            json!({"pinned": true}),
        )
        .await?;
    let (name, data) = alan_events.next().await?;
    assert_eq!(
        (name.as_str(), &data["topic"]["pinned"]),
        ("topic_updated", &json!(true))
    );
    grace.delete(&format!("/replies/{reply_id}")).await?;
    let (name, data) = alan_events.next().await?;
    assert_eq!(
        (name.as_str(), &data["reply"]["deleted"]),
        ("reply_deleted", &json!(true))
    );

    // A page (EventSource) uses the ticket of `events_url` instead of the token.
    let list = ada.get("/topics").await?;
    let url = list.body["events_url"]
        .as_str()
        .context("events_url")?
        .to_owned();
    assert!(url.starts_with(events) && url.contains("ticket="), "{url}");
    let mut ada_page = Events::open(s.addr, &url, None).await?;
    let answer = alan.reply(public, "Thanks").await?;
    let (name, data) = ada_page.next().await?;
    assert_eq!(
        (name.as_str(), &data["reply"]["id"]),
        ("reply_created", &answer.body["id"])
    );
    // Ada's ticket reads her private topic's events too; a forged or foreign ticket reads none.
    let answer = grace.reply(private, "Room 4").await?;
    let (_, data) = ada_page.next().await?;
    assert_eq!(data["reply"]["id"], answer.body["id"]);
    let forged = url.replacen("ticket=", "ticket=x", 1);
    let answer = call(s.addr, "GET", &forged, None, None).await?;
    assert_eq!((answer.status, answer.code()), (403, "forbidden"));
    let foreign = url.replacen("/courses/algebra/", "/courses/physics/", 1);
    assert_eq!(call(s.addr, "GET", &foreign, None, None).await?.status, 403);
    let answer = call(s.addr, "GET", events, None, None).await?;
    assert_eq!(answer.status, 401);
    let physicist = Member::new(&s, PHYSICS, "pia", Role::Student);
    assert_eq!(
        call(s.addr, "GET", events, Some(&physicist.token), None)
            .await?
            .status,
        403
    );

    // Shutdown ends the open streams instead of waiting on them.
    s.server.shutdown().await;
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, alan_events.stream.read_to_end(&mut rest)).await??;
    Ok(())
}

#[tokio::test]
async fn staff_move_a_live_chat_message_into_a_topic() -> anyhow::Result<()> {
    let s = server().await?;
    // `clinic` is an ad-hoc room (no schedule): its course is `clinic`.
    let mut grace_ws = s.join("clinic", "grace", Role::Instructor).await;
    grace_ws.ok(json!({"type": "class_start"})).await?;
    let mut ada_ws = s.join("clinic", "ada", Role::Student).await;
    let ack = ada_ws
        .ok(json!({"type": "chat_send", "text": "Why is the sky blue?\nAsking for a friend"}))
        .await?;
    let public_seq = ack["seq"].as_u64().context("seq")?;
    let ack = ada_ws
        .ok(json!({"type": "chat_send", "to": {"kind": "staff"}, "text": "Can I retake the quiz?"}))
        .await?;
    let staff_seq = ack["seq"].as_u64().context("seq")?;
    let ack = grace_ws
        .ok(json!({"type": "chat_send", "to": {"kind": "participant", "id": "ada"}, "text": "ok"}))
        .await?;
    let direct_seq = ack["seq"].as_u64().context("seq")?;

    let grace = Member::new(&s, "clinic", "grace", Role::Instructor);
    let ada = Member::new(&s, "clinic", "ada", Role::Student);
    let alan = Member::new(&s, "clinic", "alan", Role::Student);

    // Students may not move chat messages.
    let answer = ada
        .send(
            "POST",
            "/from-chat",
            json!({"room": "clinic", "seq": public_seq}),
        )
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");

    // The room task stores chat in batches: wait until the last message is there (batches are
    // stored in order, so the earlier ones are too).
    let store = Store::open(&s.server.config().store_url()).await?;
    let room = lectern_proto::RoomId("clinic".to_owned());
    wait_until("the chat messages are stored", || {
        let (store, room) = (store.clone(), room.clone());
        async move {
            store
                .chat_log(&room, direct_seq - 1, 1)
                .await
                .is_ok_and(|m| !m.is_empty())
        }
    })
    .await?;
    store.close().await;
    let answer = grace
        .send(
            "POST",
            "/from-chat",
            json!({"room": "clinic", "seq": public_seq}),
        )
        .await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    let moved = Some(answer.body);
    let topic = moved.context("moved")?;
    assert_eq!(topic["title"], "Why is the sky blue?");
    assert_eq!(topic["author"]["member_id"], "grace");
    assert_eq!(topic["private"], false);
    let body = topic["body"].as_str().unwrap_or("");
    assert!(
        body.starts_with("> Why is the sky blue?\n> Asking for a friend\n"),
        "{body}"
    );
    assert!(body.contains("Name of ada"), "{body}");
    assert_eq!(topic["source"]["room"], "clinic");
    assert_eq!(topic["source"]["seq"], public_seq);
    assert_eq!(topic["source"]["author_name"], "Name of ada");
    assert!(topic["source"]["session_key"].is_null());
    let topic_id = topic["id"].as_i64().context("id")?;
    // Every member sees it, and students may answer it.
    assert!(alan.listed().await?.contains(&topic_id));
    assert_eq!(
        alan.reply(topic_id, "Rayleigh scattering").await?.status,
        201
    );

    // Once only.
    let answer = grace
        .send(
            "POST",
            "/from-chat",
            json!({"room": "clinic", "seq": public_seq}),
        )
        .await?;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "conflict"),
        "{answer:?}"
    );

    // A question to the staff becomes a private topic of its sender.
    let answer = grace
        .send(
            "POST",
            "/from-chat",
            json!({"room": "clinic", "seq": staff_seq, "title": "Quiz retake"}),
        )
        .await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    let private = Some(answer.body);
    let private = private.context("private")?;
    assert_eq!(private["private"], true);
    assert_eq!(private["private_to"], "ada");
    assert_eq!(private["title"], "Quiz retake");
    let private_id = private["id"].as_i64().context("id")?;
    assert_eq!(ada.get(&format!("/topics/{private_id}")).await?.status, 200);
    assert_eq!(
        alan.get(&format!("/topics/{private_id}")).await?.status,
        404
    );

    // A message to one participant stays private; unknown seqs and other courses' rooms fail.
    let answer = grace
        .send(
            "POST",
            "/from-chat",
            json!({"room": "clinic", "seq": direct_seq}),
        )
        .await?;
    assert_eq!(answer.status, 409, "{answer:?}");
    for seq in [json!(0), json!(99_999), json!(u64::MAX)] {
        let answer = grace
            .send("POST", "/from-chat", json!({"room": "clinic", "seq": seq}))
            .await?;
        assert_eq!(answer.status, 404, "{seq}: {answer:?}");
    }
    let answer = grace
        .send("POST", "/from-chat", json!({"room": ALGEBRA, "seq": 1}))
        .await?;
    assert_eq!(answer.status, 403, "{answer:?}");
    let answer = grace
        .send("POST", "/from-chat", json!({"room": "", "seq": 1}))
        .await?;
    assert_eq!(answer.status, 400, "{answer:?}");
    s.server.shutdown().await;
    Ok(())
}
