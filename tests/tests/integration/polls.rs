//! Live polls over real WebSockets (issue 13): the instructor asks, two students answer once,
//! the instructor sees the results live, shares them; the class sees counts only. The polls are
//! stored with the session and read back through the REST API, which a student's token may not.

use lectern_tests::{Client, DEADLINE};
use serde_json::json;

use crate::api::{Api, call, open_session};

#[tokio::test]
async fn a_poll_runs_in_class_and_is_stored_with_the_session() -> anyhow::Result<()> {
    let api = Api::start().await;
    api.course("algebra").await;
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
    for member in ["ada", "alan", "grace"] {
        let link = format!("/api/v1/courses/algebra/members/{member}/link");
        let r = api.send("POST", &link, &json!({"session": key})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        tokens.insert(member, r.json()["token"].as_str().unwrap().to_owned());
    }
    let connect = |member: &'static str| {
        let (addr, room, token) = (api.s.addr, room.clone(), tokens[member].clone());
        async move {
            let mut c = Client::connect(addr, Some(&room)).await?;
            c.hello(&token, None).await?;
            anyhow::Ok(c)
        }
    };
    let mut grace = connect("grace").await?;
    grace.ok(json!({"type": "class_start"})).await?;
    let mut ada = connect("ada").await?;
    let mut alan = connect("alan").await?;

    // A student may not ask; an invalid poll is refused with its typed error.
    let refused = ada
        .request(json!({"type": "poll_start", "question": "Q?", "options": ["a", "b"]}))
        .await?;
    assert_eq!(refused["code"], "not_permitted", "{refused}");
    let refused = grace
        .request(json!({"type": "poll_start", "question": "Q?", "options": ["a", " a "]}))
        .await?;
    assert_eq!(refused["code"], "poll_invalid", "{refused}");

    let ack = grace
        .ok(
            json!({"type": "poll_start", "question": "Which method converges fastest?",
                   "options": ["Bisection", "Newton", "Secant"]}),
        )
        .await?;
    let poll_id = ack["seq"].as_u64().expect("poll_started's seq");
    for c in [&mut ada, &mut alan] {
        let e = c.wait_event("poll_started").await?;
        assert_eq!(e["event"]["poll"]["poll_id"], poll_id);
        assert_eq!(e["event"]["poll"]["options"][1], "Newton");
    }

    let answered = ada
        .ok(json!({"type": "poll_answer", "poll_id": poll_id, "choices": [1]}))
        .await?;
    assert!(answered.get("seq").is_none(), "{answered}");
    let again = ada
        .request(json!({"type": "poll_answer", "poll_id": poll_id, "choices": [0]}))
        .await?;
    assert_eq!(again["code"], "already_answered", "{again}");
    alan.ok(json!({"type": "poll_answer", "poll_id": poll_id, "choices": [1]}))
        .await?;
    let results = grace
        .wait_for(|m| m["type"] == "poll_results" && m["results"]["answered"] == 2)
        .await?;
    assert_eq!(results["results"]["counts"], json!([0, 2, 0]), "{results}");
    assert_eq!(results["results"]["votes"][0]["participant_id"], "alan");

    // A late student sees the open poll without answers; Ada, reloading, sees her own.
    let mut ada = {
        ada.close().await;
        connect("ada").await?
    };
    let poll = &ada.welcome["snapshot"]["poll"];
    assert_eq!(poll["open"], true, "{poll}");
    assert_eq!(poll["my_choices"], json!([1]), "{poll}");
    assert!(poll.get("results").is_none(), "{poll}");

    let shared = grace
        .ok(json!({"type": "poll_share", "poll_id": poll_id}))
        .await?;
    for c in [&mut ada, &mut alan] {
        let e = c.wait_event("poll_shared").await?;
        assert_eq!(e["seq"], shared["seq"]);
        assert_eq!(e["event"]["counts"], json!([0, 2, 0]));
        assert_eq!(e["event"]["answered"], 2);
    }
    // Nothing a student received named who chose what.
    for c in [&ada, &alan] {
        let seen = serde_json::to_string(&c.received)?;
        assert!(
            !seen.contains("poll_results") && !seen.contains("votes"),
            "{seen}"
        );
    }

    // An anonymous poll: staff see counts only, and the store keeps no identity.
    let ack = grace
        .ok(
            json!({"type": "poll_start", "question": "Too fast?", "options": ["Yes", "No"],
                   "anonymous": true}),
        )
        .await?;
    let anon_id = ack["seq"].as_u64().unwrap();
    ada.wait_event("poll_started").await?;
    ada.ok(json!({"type": "poll_answer", "poll_id": anon_id, "choices": [0]}))
        .await?;
    let results = grace
        .wait_for(|m| m["type"] == "poll_results" && m["results"]["poll_id"] == anon_id)
        .await?;
    assert!(results["results"].get("votes").is_none(), "{results}");
    grace
        .ok(json!({"type": "poll_end", "poll_id": anon_id}))
        .await?;

    // The REST API: staff read the session's polls; a student's token gets 403.
    let path = format!("/api/v1/courses/algebra/sessions/{key}/polls");
    let start = tokio::time::Instant::now();
    let polls = loop {
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let polls = r.json();
        let done = polls
            .as_array()
            .is_some_and(|p| p.len() == 2 && p[1]["ended_at"].is_string() && p[1]["answered"] == 1);
        if done {
            break polls;
        }
        assert!(start.elapsed() < DEADLINE, "polls never stored: {polls}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let first = &polls[0];
    assert_eq!(first["poll_id"], poll_id);
    assert_eq!(first["question"], "Which method converges fastest?");
    assert_eq!(first["asked_by"], "grace");
    assert_eq!(first["answered"], 2);
    assert_eq!(first["options"][1], json!({"text": "Newton", "count": 2}));
    assert!(first["shared_at"].is_string(), "{first}");
    let names: Vec<&str> = first["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["participant_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "alan"]);
    let anon = &polls[1];
    assert_eq!(anon["anonymous"], true);
    assert_eq!(anon["options"][0]["count"], 1);
    assert_eq!(anon["answers"], json!([]), "{anon}");

    let as_staff = call(api.s.addr, "GET", &path, Some(&tokens["grace"]), None).await?;
    assert_eq!(as_staff.status, 200, "{}", as_staff.body);
    assert_eq!(as_staff.json(), polls);
    let as_student = call(api.s.addr, "GET", &path, Some(&tokens["ada"]), None).await?;
    assert_eq!(
        (as_student.status, as_student.code()),
        (403, "forbidden".to_owned()),
        "{}",
        as_student.body
    );
    let nobody = call(api.s.addr, "GET", &path, None, None).await?;
    assert_eq!(nobody.status, 401);

    // The class ending closes an open poll for everyone still here.
    let ack = grace
        .ok(json!({"type": "poll_start", "question": "Last one?", "options": ["a", "b"]}))
        .await?;
    grace.ok(json!({"type": "class_end"})).await?;
    let ended = grace
        .wait_for(|m| {
            m["type"] == "event"
                && m["event"]["kind"] == "poll_ended"
                && m["event"]["poll_id"] == ack["seq"]
        })
        .await?;
    assert!(ended["event"].get("by").is_none(), "{ended}");
    grace.close().await;
    Ok(())
}
