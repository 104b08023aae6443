//! Several nodes (issue 14): three `lectern` processes on loopback sharing one PostgreSQL schema
//! and one Redis (a random key prefix per test). Rooms spread by load; a class whose members
//! first hit different nodes ends up on one node, with chat and media; `kill -9` of the hosting
//! node moves the class to a survivor with nothing acknowledged lost; a node cut off from Redis
//! stops its rooms and sends its clients away instead of running them twice.
//!
//! Needs PostgreSQL and Redis (skipped with `LECTERN_SKIP_POSTGRES=1` / `LECTERN_SKIP_REDIS=1`).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lectern_bots::{Bot, BotOptions, PublishOptions};
use lectern_cluster::{LeaseConfig, Leases, NodeId, Redis};
use lectern_proto::Role;
use lectern_tests::{Client, DEADLINE, PostgresSchema, test_config, wait_until};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const CHILD_TEST: &str = "cluster::node_child";
const STORE_VAR: &str = "LECTERN_TEST_CLUSTER_STORE";
const REDIS_VAR: &str = "LECTERN_TEST_CLUSTER_REDIS";
const PREFIX_VAR: &str = "LECTERN_TEST_CLUSTER_PREFIX";
const NODE_VAR: &str = "LECTERN_TEST_CLUSTER_NODE";
/// `room.idle_close_secs` and `room.grace_secs` of the node, when set.
const IDLE_VAR: &str = "LECTERN_TEST_CLUSTER_IDLE_CLOSE";
/// `room.auto_start` of the node (`true` unless set).
pub(crate) const AUTO_START_VAR: &str = "LECTERN_TEST_CLUSTER_AUTO_START";
/// `cluster.lease_ttl_ms` of the node, when set.
pub(crate) const LEASE_TTL_VAR: &str = "LECTERN_TEST_CLUSTER_LEASE_TTL";

pub(crate) fn redis_url() -> String {
    std::env::var("LECTERN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Run as a child: one node of the test's cluster.
#[tokio::test]
#[ignore = "run by the cluster tests as a child process"]
async fn node_child() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let (store, redis, prefix, node, idle, ttl) = (
        var(STORE_VAR),
        var(REDIS_VAR),
        var(PREFIX_VAR),
        var(NODE_VAR),
        var(IDLE_VAR),
        var(LEASE_TTL_VAR),
    );
    let auto_start = std::env::var(AUTO_START_VAR).unwrap_or_else(|_| "true".into());
    let mut settings = vec![
        ("LECTERN_STORE_URL", store.as_str()),
        ("LECTERN_CLUSTER_REDIS_URL", &redis),
        ("LECTERN_CLUSTER_KEY_PREFIX", &prefix),
        ("LECTERN_CLUSTER_NODE_ID", &node),
        ("LECTERN_ROOM_AUTO_START", &auto_start),
        ("LECTERN_LIMITS_CHAT_PER_SECOND", "1000"),
        ("LECTERN_LIMITS_CHAT_BURST", "1000"),
    ];
    if !idle.is_empty() {
        settings.push(("LECTERN_ROOM_IDLE_CLOSE_SECS", &idle));
        settings.push(("LECTERN_ROOM_GRACE_SECS", &idle));
    }
    if !ttl.is_empty() {
        settings.push(("LECTERN_CLUSTER_LEASE_TTL_MS", &ttl));
    }
    lectern_tests::serve_as_child(&settings).await;
}

/// Runs `test` with engines of its own (skipped, saying so, without them), then drops the
/// schema whatever the outcome.
pub(crate) async fn with_engines(
    test: impl AsyncFnOnce(&Engines) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some(engines) = Engines::start().await? else {
        return Ok(());
    };
    let result = test(&engines).await;
    engines.schema.remove().await?;
    result
}

/// The shared engines of one test: a PostgreSQL schema and a Redis key prefix.
pub(crate) struct Engines {
    pub(crate) schema: PostgresSchema,
    pub(crate) prefix: String,
    pub(crate) redis: Redis,
}

impl Engines {
    /// `None` (after saying so) when either engine is skipped; a clear error when one is absent.
    pub(crate) async fn start() -> anyhow::Result<Option<Engines>> {
        if std::env::var("LECTERN_SKIP_REDIS").is_ok_and(|v| v == "1") {
            eprintln!("skipped: this test needs Redis (LECTERN_SKIP_REDIS=1)");
            return Ok(None);
        }
        let prefix = format!("lectern-test-{:x}:", random());
        let redis = Redis::connect(&redis_url(), &prefix)
            .await
            .with_context(|| {
                format!(
                    "Redis is not reachable at {}: start it (e.g. `redis-server --daemonize yes`), \
                 set LECTERN_TEST_REDIS_URL, or set LECTERN_SKIP_REDIS=1",
                    redis_url()
                )
            })?;
        let Some(schema) = PostgresSchema::create().await? else {
            return Ok(None);
        };
        Ok(Some(Engines {
            schema,
            prefix,
            redis,
        }))
    }

    /// A node named `id` whose Redis is at `redis` (the real one, or a proxy in front of it).
    pub(crate) fn node(&self, id: &str, redis: &str) -> anyhow::Result<Node> {
        self.node_with(id, redis, &[])
    }

    /// [`Engines::node`] with more variables for the child (e.g. [`IDLE_VAR`]).
    pub(crate) fn node_with(
        &self,
        id: &str,
        redis: &str,
        more: &[(&str, &str)],
    ) -> anyhow::Result<Node> {
        self.node_on(id, self.schema.url(), redis, more)
    }

    /// [`Engines::node_with`] whose store is at `store` (this test's schema, maybe through a
    /// proxy).
    pub(crate) fn node_on(
        &self,
        id: &str,
        store: &str,
        redis: &str,
        more: &[(&str, &str)],
    ) -> anyhow::Result<Node> {
        let dir = tempfile::tempdir()?;
        let mut env = vec![
            (STORE_VAR, store),
            (REDIS_VAR, redis),
            (PREFIX_VAR, self.prefix.as_str()),
            (NODE_VAR, id),
        ];
        env.extend_from_slice(more);
        let (child, addr) =
            lectern_tests::spawn_child_server_with_env(CHILD_TEST, dir.path(), &env)?;
        Ok(Node {
            id: id.to_owned(),
            child,
            addr,
            _dir: dir,
        })
    }

    /// Which node holds the room's lease, if any.
    pub(crate) async fn host(&self, room: &str) -> anyhow::Result<Option<String>> {
        let (leases, _) = Leases::new(
            self.redis.clone(),
            NodeId::new("observer")?,
            LeaseConfig::default(),
        )?;
        Ok(leases.holder(room).await?.map(|h| h.node.to_string()))
    }
}

pub(crate) struct Node {
    id: String,
    pub(crate) child: std::process::Child,
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Node {
    pub(crate) fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn token(room: &str, sub: &str, role: Role) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let auth = lectern_server::auth::Authenticator::new(
        &test_config(dir.path(), &[]).auth,
        lectern_tests::SECRET.as_bytes().to_vec(),
    )?;
    Ok(auth.mint(room, sub, sub, role, 600)?)
}

/// Says hello at `url`, following redirects (and retrying a room that is between nodes) until
/// welcomed. Returns the client and the URL it was welcomed at.
pub(crate) async fn join(
    url: &str,
    token: &str,
    last_seq: Option<u64>,
) -> anyhow::Result<(Client, String)> {
    let start = Instant::now();
    let mut at = url.to_owned();
    let mut redirects = 0;
    let mut visited = Vec::new();
    while start.elapsed() < DEADLINE * 2 {
        let mut hello = json!({"type": "hello", "protocol_version": 1, "token": token});
        if let Some(seq) = last_seq {
            hello["last_seq"] = json!(seq);
        }
        let Ok(mut client) = Client::connect_url(&at).await else {
            // Sent to a node that just died (its registry entry not expired yet): start over
            // from the first address, as the web client does.
            at = url.to_owned();
            redirects = 0;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        client.send(&hello).await?;
        let reply = client
            .wait_for(|m| {
                matches!(
                    m["type"].as_str(),
                    Some("welcome" | "error" | "redirect" | "closing")
                )
            })
            .await?;
        match reply["type"].as_str() {
            Some("welcome") => {
                client.welcome = reply;
                return Ok((client, at));
            }
            Some("redirect") => {
                redirects += 1;
                visited.push(at.clone());
                assert!(
                    redirects <= 3,
                    "too many redirects: {reply} after {visited:?}"
                );
                at = reply["url"].as_str().context("redirect url")?.to_owned();
                assert!(at.starts_with("ws://"), "{reply}");
            }
            Some("closing") if reply["reason"] == "room_moved" => {
                // Between nodes: retry from the first address shortly.
                at = url.to_owned();
                redirects = 0;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => bail!("hello refused: {reply}"),
        }
    }
    bail!("not welcomed within {:?}", DEADLINE * 2)
}

pub(crate) fn chat_seqs(messages: &[Value]) -> Vec<(u64, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap_or(0),
                m["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn bot(url: &str, room: &str, sub: &str, role: Role) -> anyhow::Result<BotOptions> {
    Ok(BotOptions {
        url: url.to_owned(),
        token: token(room, sub, role)?,
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    })
}

fn video_packets(bot: &Bot, publisher: &str) -> u64 {
    bot.received()
        .iter()
        .filter(|t| t.publisher == publisher && t.kind == "video")
        .map(|t| t.packets)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_spread_a_class_meets_on_one_node_and_survives_kill9_of_it() -> anyhow::Result<()> {
    with_engines(three_nodes).await
}

async fn three_nodes(engines: &Engines) -> anyhow::Result<()> {
    let redis = redis_url();
    let mut nodes = [
        engines.node("node-a", &redis)?,
        engines.node("node-b", &redis)?,
        engines.node("node-c", &redis)?,
    ];

    // Rooms opened through one node spread over the cluster by load.
    let mut kept = Vec::new();
    let mut hosts = HashSet::new();
    for i in 0..6 {
        let room = format!("spread-{i}");
        let (client, _) = join(&nodes[0].url(), &token(&room, "ada", Role::Student)?, None).await?;
        kept.push(client);
        let host = engines
            .host(&room)
            .await?
            .context("a hosted room has a lease")?;
        hosts.insert(host);
    }
    assert!(hosts.len() > 1, "six rooms all on {hosts:?}");

    // A class: the instructor (a publishing bot) enters through node A; students through B
    // and C are sent to the same node.
    let room = "cluster-class";
    let teacher = Bot::publish(
        bot(&nodes[0].url(), room, "grace", Role::Instructor)?,
        PublishOptions::default(),
    )
    .await?;
    teacher.wait_connected(DEADLINE).await?;
    let host = engines.host(room).await?.context("the class is hosted")?;
    let host_index = nodes
        .iter()
        .position(|n| n.id == host)
        .context("known host")?;
    let others: Vec<usize> = (0..3).filter(|i| *i != host_index).collect();
    let host_url = format!("ws://{}/ws", nodes[host_index].addr);
    assert!(
        teacher.joined_url().starts_with(&host_url),
        "{}",
        teacher.joined_url()
    );

    let viewer = Bot::subscribe(bot(&nodes[others[0]].url(), room, "bob", Role::Student)?).await?;
    assert!(
        viewer.joined_url().starts_with(&host_url),
        "{}",
        viewer.joined_url()
    );
    viewer.wait_connected(DEADLINE).await?;
    wait_until("the student bot to receive the lecture", || async {
        video_packets(&viewer, "grace") >= 60
    })
    .await?;

    let ada_token = token(room, "ada", Role::Student)?;
    let cy_token = token(room, "cy", Role::Student)?;
    let (mut ada, ada_at) = join(&nodes[others[0]].url(), &ada_token, None).await?;
    let (mut cy, cy_at) = join(&nodes[others[1]].url(), &cy_token, None).await?;
    assert!(ada_at.starts_with(&host_url) && cy_at.starts_with(&host_url));
    let mut acked = Vec::new();
    for i in 0..10 {
        let text = format!("before the crash {i}");
        let ack = ada.ok(json!({"type": "chat_send", "text": text})).await?;
        acked.push((ack["seq"].as_u64().context("seq")?, text));
    }
    let last = acked.last().cloned().context("messages")?;
    cy.wait_for(|m| m["type"] == "event" && m["event"]["message"]["text"] == last.1)
        .await?;

    // kill -9 of the hosting node.
    let killed_at = Instant::now();
    nodes[host_index].kill();
    drop(teacher);
    drop(viewer);
    ada.wait_closed().await?;
    let survivor = nodes[others[0]].url();
    let survivor2 = nodes[others[1]].url();
    // The clients come back through the nodes they first used, with what they had seen.
    let (mut ada, _) = join(&survivor, &ada_token, Some(ada.last_seq())).await?;
    let after_kill_chat = killed_at.elapsed();
    let (cy2, _) = join(&survivor2, &cy_token, None).await?;
    let new_host = engines
        .host(room)
        .await?
        .context("the class is hosted again")?;
    assert_ne!(new_host, host, "the class must have moved");
    let restored = chat_seqs(
        cy2.welcome["snapshot"]["chat"]
            .as_array()
            .context("a snapshot with chat")?,
    );
    assert_eq!(restored, acked, "acknowledged messages lost or changed");
    let ack = ada
        .ok(json!({"type": "chat_send", "text": "after the crash"}))
        .await?;
    assert!(
        ack["seq"].as_u64().unwrap_or(0) > last.0,
        "{ack} reuses a sequence number"
    );

    // Media again: the instructor and a student come back through survivors.
    let teacher = Bot::publish(
        bot(&survivor, room, "grace", Role::Instructor)?,
        PublishOptions::default(),
    )
    .await?;
    let viewer = Bot::subscribe(bot(&survivor2, room, "bob", Role::Student)?).await?;
    teacher.wait_connected(DEADLINE).await?;
    viewer.wait_connected(DEADLINE).await?;
    wait_until("media after the failover", || async {
        video_packets(&viewer, "grace") >= 30
    })
    .await?;
    println!(
        "cluster failover: kill -9 to chat back {:?}, to media back {:?}",
        after_kill_chat,
        killed_at.elapsed()
    );
    teacher.close().await;
    viewer.close().await;
    drop(kept);
    Ok(())
}

/// A TCP proxy in front of Redis (or PostgreSQL) whose connections the test can cut (a network partition).
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    pub(crate) cut: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *cut_rx.borrow() {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, cut })
    }
}

// The proxy runs on this test's runtime while the main thread waits for the children to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_stops_its_rooms_and_sends_clients_away() -> anyhow::Result<()> {
    with_engines(partition).await
}

async fn partition(engines: &Engines) -> anyhow::Result<()> {
    let target: SocketAddr = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .context("LECTERN_TEST_REDIS_URL must be redis://IP:PORT for this test")?;
    let proxy = Proxy::start(target).await?;
    let cut_off = engines.node("node-p", &format!("redis://{}", proxy.addr))?;
    let healthy = engines.node("node-q", &redis_url())?;

    // `placed=1` makes node P host the room (no placement elsewhere).
    let room = "partitioned";
    let ada_token = token(room, "ada", Role::Student)?;
    let placed = format!("ws://{}/ws?room={room}&placed=1", cut_off.addr);
    let (mut ada, at) = join(&placed, &ada_token, None).await?;
    assert_eq!(at, placed);
    assert_eq!(engines.host(room).await?.as_deref(), Some("node-p"));
    let ack = ada
        .ok(json!({"type": "chat_send", "text": "before the cut"}))
        .await?;
    let before = ack["seq"].as_u64().context("seq")?;

    let _ = proxy.cut.send(true);
    let cut_at = Instant::now();
    let closing = ada.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "room_moved", "{closing}");
    ada.wait_closed().await?;
    println!(
        "partitioned node stopped its room {:?} after the cut",
        cut_at.elapsed()
    );

    // Node Q takes the room over (once P's lease expired in Redis) with the chat intact; P
    // does not run it any more.
    let (mut ada, _) = join(&healthy.url(), &ada_token, Some(ada.last_seq())).await?;
    assert_eq!(engines.host(room).await?.as_deref(), Some("node-q"));
    let ack = ada
        .ok(json!({"type": "chat_send", "text": "after the cut"}))
        .await?;
    assert!(ack["seq"].as_u64().unwrap_or(0) > before, "{ack}");
    let mut bob = Client::connect_url(&placed).await?;
    bob.send(&json!({"type": "hello", "protocol_version": 1, "token": token(room, "bob", Role::Student)?}))
        .await?;
    let reply = bob
        .wait_for(|m| m["type"] == "welcome" || m["type"] == "closing")
        .await?;
    assert_ne!(
        reply["type"], "welcome",
        "the cut-off node must not host the room again: {reply}"
    );
    Ok(())
}

pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_takes_no_new_rooms_keeps_its_class_and_exits_when_empty()
-> anyhow::Result<()> {
    with_engines(drain).await
}

async fn drain(engines: &Engines) -> anyhow::Result<()> {
    let redis = redis_url();
    let idle = [(IDLE_VAR, "1")];
    let mut a = engines.node_with("node-a", &redis, &idle)?;
    let b = engines.node_with("node-b", &redis, &idle)?;

    // A class on A (placed=1 makes A host it), with two students chatting.
    let room = "drain-class";
    let placed = format!("{}?room={room}&placed=1", a.url());
    let (mut ada, ada_at) = join(&placed, &token(room, "ada", Role::Student)?, None).await?;
    assert!(ada_at.starts_with(&a.url()), "{ada_at}");
    assert_eq!(engines.host(room).await?.as_deref(), Some("node-a"));

    // SIGUSR1: A drains.
    let pid = a.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-USR1", &pid])
        .status()?;
    assert!(status.success(), "kill -USR1 failed");
    wait_until("A's /readyz to say it is draining", || async {
        http_get(a.addr, "/readyz")
            .await
            .is_ok_and(|(status, body)| status == 503 && body.contains("draining"))
    })
    .await?;
    let metrics = http_get(a.addr, "/metrics").await?.1;
    assert_eq!(
        lectern_tests::metric_value(&metrics, "lectern_cluster_draining"),
        1
    );

    // A new room opened through A (even with placed=1) is hosted on B.
    for (i, url) in [a.url(), format!("{}?placed=1", a.url())]
        .iter()
        .enumerate()
    {
        let new_room = format!("drain-new-{i}");
        let (client, at) = join(url, &token(&new_room, "cy", Role::Student)?, None).await?;
        assert!(at.starts_with(&b.url()), "{new_room} welcomed at {at}");
        assert_eq!(engines.host(&new_room).await?.as_deref(), Some("node-b"));
        client.close().await;
    }

    // The class on A goes on: chat, and a second student (a first hit) joins it there.
    let (mut bo, bo_at) = join(&a.url(), &token(room, "bo", Role::Student)?, None).await?;
    assert!(bo_at.starts_with(&a.url()), "{bo_at}");
    ada.ok(json!({"type": "chat_send", "text": "still here"}))
        .await?;
    bo.wait_for(|m| m["type"] == "event" && m["event"]["message"]["text"] == "still here")
        .await?;
    assert!(a.child.try_wait()?.is_none(), "A exited with a class in it");

    // Everyone leaves: the room closes after idle_close_secs and A exits on its own.
    ada.close().await;
    bo.close().await;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = a.child.try_wait()? {
            break status;
        }
        if start.elapsed() > DEADLINE * 2 {
            bail!("the drained node did not exit within {:?}", DEADLINE * 2);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "the drained node exited with {status}");
    assert_eq!(
        engines.host(room).await?,
        None,
        "the lease was not released"
    );
    drop(b);
    Ok(())
}

/// `GET path` on the node at `addr`: the status and the body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::AsyncReadExt;
    let mut tcp = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await?;
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await?;
    let status = reply
        .split_whitespace()
        .nth(1)
        .context("a status line")?
        .parse()?;
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// An admin API call (`POST`, JSON body) to one node, with `key`.
async fn admin_post(
    node: &Node,
    key: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let reply = crate::api::call(node.addr, "POST", path, Some(key), Some(body)).await?;
    let json = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    Ok((reply.status, json))
}

/// An admin API key in the cluster's shared store.
async fn admin_key(engines: &Engines) -> anyhow::Result<String> {
    let store = lectern_store::Store::open(engines.schema.url()).await?;
    let (_, key) =
        lectern_server::courses::create_api_key(&store, "tests", lectern_server::clock::wall_ms())
            .await?;
    store.close().await;
    Ok(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_on_any_node_acts_on_a_room_hosted_elsewhere() -> anyhow::Result<()> {
    with_engines(room_actions_across_nodes).await
}

async fn room_actions_across_nodes(engines: &Engines) -> anyhow::Result<()> {
    let redis = redis_url();
    // A lease that outlives the 5 s of a command timeout, so the host paused below still holds
    // the room when it is killed.
    let lobby = [(AUTO_START_VAR, "false"), (LEASE_TTL_VAR, "30000")];
    let mut nodes = [
        engines.node_with("node-a", &redis, &lobby)?,
        engines.node_with("node-b", &redis, &lobby)?,
        engines.node_with("node-c", &redis, &lobby)?,
    ];
    let key = admin_key(engines).await?;
    let room = "cross-node-class";
    let base = format!("/api/v1/rooms/{room}");

    let (mut grace, _) = join(
        &nodes[0].url(),
        &token(room, "grace", Role::Instructor)?,
        None,
    )
    .await?;
    let (mut ada, _) = join(&nodes[0].url(), &token(room, "ada", Role::Student)?, None).await?;
    let host = engines.host(room).await?.context("the class is hosted")?;
    let host_index = nodes
        .iter()
        .position(|n| n.id == host)
        .context("known host")?;
    let others: Vec<usize> = (0..3).filter(|i| *i != host_index).collect();
    let (b, c) = (&nodes[others[0]], &nodes[others[1]]);

    // Admit through B: Ada, in the lobby on the host, is let in.
    let (status, body) = admin_post(
        b,
        &key,
        &format!("{base}/admit"),
        &json!({"participant": "ada"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let admitted = ada.wait_event("admitted").await?;
    assert!(admitted["event"].get("by").is_none(), "{admitted}");
    ada.wait_for(|m| m["type"] == "snapshot").await?;
    // Refusals come back from the host typed: unknown participant, an instructor.
    let (status, body) = admin_post(
        c,
        &key,
        &format!("{base}/admit"),
        &json!({"participant": "zed"}),
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    let (status, body) = admin_post(
        c,
        &key,
        &format!("{base}/remove"),
        &json!({"participant": "grace"}),
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("conflict")),
        "{body}"
    );

    // Remove through C: Bob is sent away.
    grace.ok(json!({"type": "class_start"})).await?;
    let (mut bob, _) = join(&c.url(), &token(room, "bob", Role::Student)?, None).await?;
    let (status, body) = admin_post(
        c,
        &key,
        &format!("{base}/remove"),
        &json!({"participant": "bob"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let closing = bob.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "removed");

    // End through B: Ada is sent away, the instructor sees the class end.
    let (status, body) = admin_post(b, &key, &format!("{base}/end"), &json!({})).await?;
    assert_eq!(status, 200, "{body}");
    grace.wait_event("class_ended").await?;
    let closing = ada.wait_for(|m| m["type"] == "closing").await?;
    assert_eq!(closing["reason"], "class_ended");

    // A room nobody hosts.
    let (status, body) = admin_post(b, &key, "/api/v1/rooms/nowhere/end", &json!({})).await?;
    assert_eq!(status, 404, "{body}");

    // The host is paused (SIGSTOP: still subscribed, never answers): a 503 that says the action
    // may or may not have happened.
    let pid = nodes[host_index].child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()?;
    assert!(status.success(), "kill -STOP failed");
    let end = format!("{base}/end");
    let (status, body) = admin_post(&nodes[others[0]], &key, &end, &json!({})).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("unavailable")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
    assert!(
        message.contains(&host) && message.contains("may or may not"),
        "{message}"
    );

    // The host is killed (its lease not expired yet): a 503 that says nothing was done. Redis
    // drops the dead subscriber as soon as the kernel closes its socket.
    nodes[host_index].kill();
    let last = std::cell::RefCell::new(Value::Null);
    wait_until("a 503 saying the host is gone", || async {
        let Ok((status, body)) = admin_post(&nodes[others[0]], &key, &end, &json!({})).await else {
            return false;
        };
        let gone = status == 503
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nothing was done"));
        *last.borrow_mut() = body;
        gone
    })
    .await?;
    let last = last.into_inner();
    let message = last["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(&host), "{message}");
    assert_eq!(engines.host(room).await?.as_deref(), Some(host.as_str()));
    drop(grace);
    Ok(())
}

/// A room whose load fails (the store refuses its row) gives its lease back at once instead of
/// holding it for a whole TTL (60 s here, longer than any wait in this test), so the next hello
/// can open it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_fails_to_load_releases_its_lease() -> anyhow::Result<()> {
    with_engines(failed_load).await
}

async fn failed_load(engines: &Engines) -> anyhow::Result<()> {
    use sqlx::Connection;
    let node = engines.node_with("node-a", &redis_url(), &[(LEASE_TTL_VAR, "60000")])?;
    let room = "broken-room";
    // The node ran its migrations before it printed its address.
    let mut db = sqlx::PgConnection::connect(engines.schema.url()).await?;
    sqlx::query(
        "CREATE FUNCTION refuse_room() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
    )
    .execute(&mut db)
    .await?;
    sqlx::query(
        "CREATE TRIGGER refuse_room BEFORE INSERT ON rooms FOR EACH ROW \
         WHEN (NEW.id = 'broken-room') EXECUTE FUNCTION refuse_room()",
    )
    .execute(&mut db)
    .await?;

    let mut client = Client::connect_url(&node.url()).await?;
    let hello = json!({"type": "hello", "protocol_version": 1, "token": token(room, "ada", Role::Student)?});
    client.send(&hello).await?;
    let refused = client.wait_for(|m| m["type"] == "error").await?;
    assert_eq!(refused["code"], "store_unavailable", "{refused}");
    wait_until("the failed room's lease to be released", || async {
        matches!(engines.host(room).await, Ok(None))
    })
    .await?;

    // Once the store takes the room again, the next hello opens it.
    sqlx::query("DROP TRIGGER refuse_room ON rooms")
        .execute(&mut db)
        .await?;
    let (_ada, _) = join(&node.url(), &token(room, "ada", Role::Student)?, None).await?;
    assert_eq!(engines.host(room).await?.as_deref(), Some("node-a"));
    db.close().await?;
    Ok(())
}
