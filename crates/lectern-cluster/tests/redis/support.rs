//! Connecting to Redis, waiting on conditions, and a private `redis-server` to kill.

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use lectern_cluster::Redis;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The shared Redis these tests use.
pub fn redis_url() -> String {
    std::env::var("LECTERN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh random key prefix, so parallel tests and runs never see each other's keys.
pub fn random_prefix() -> String {
    format!("lectern-test:{:016x}:", rand::random::<u64>())
}

fn skip_allowed() -> bool {
    std::env::var("LECTERN_SKIP_REDIS").is_ok_and(|v| v == "1")
}

/// Connects to `url` with `prefix`. `None` (the test skips) only if Redis is unreachable and
/// `LECTERN_SKIP_REDIS=1`; otherwise an unreachable Redis fails the test with a clear message.
pub async fn connect_to(url: &str, prefix: &str) -> Option<Redis> {
    match Redis::connect(url, prefix).await {
        Ok(redis) => Some(redis),
        Err(e) if skip_allowed() => {
            eprintln!("SKIPPED: Redis at {url} is unreachable ({e}) and LECTERN_SKIP_REDIS=1");
            None
        }
        Err(e) => panic!(
            "Redis at {url} is unreachable: {e}. These tests need a running Redis \
             (set LECTERN_TEST_REDIS_URL, or LECTERN_SKIP_REDIS=1 to skip them)"
        ),
    }
}

/// Connects to the shared Redis with `prefix`.
pub async fn connect(prefix: &str) -> Option<Redis> {
    connect_to(&redis_url(), prefix).await
}

/// A plain connection for what the library does not do (inspecting and deleting keys).
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("redis url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("raw redis connection")
}

/// Deletes every key under `prefix` (the fencing counters and the node index never expire).
pub async fn cleanup(url: &str, prefix: &str) {
    let mut conn = raw(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// Polls `condition` every 10 ms until it holds; panics with `what` if `within` passes first.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(within, what, || {
        let fut = condition();
        async move { fut.await.then_some(()) }
    })
    .await;
}

/// Polls `probe` every 10 ms until it gives a value; panics with `what` if `within` passes first.
pub async fn wait_for<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A `redis-server` of the test's own, on a free port, killed on drop.
pub struct OwnRedis {
    child: Child,
    port: u16,
    pub url: String,
}

impl OwnRedis {
    /// Starts one, or `None` (the test skips, with a message) if `redis-server` is not installed.
    pub async fn start() -> Option<OwnRedis> {
        let which = std::process::Command::new("sh")
            .args(["-c", "command -v redis-server"])
            .output();
        if !which.is_ok_and(|o| o.status.success()) {
            eprintln!("SKIPPED: no redis-server binary on this machine to start and kill");
            return None;
        }
        // A port the kernel just handed out and we released: free unless someone races us.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = spawn_redis(port).await;
        Some(OwnRedis {
            child,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill redis-server");
    }

    /// Starts a fresh, empty server on the same port (after [`OwnRedis::kill`]).
    pub async fn restart(&mut self) {
        self.child = spawn_redis(self.port).await;
    }
}

/// Starts `redis-server` on `port`, without persistence, and waits until it answers.
async fn spawn_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("redis url");
    wait_until(
        Duration::from_secs(10),
        "the private redis-server answers",
        || {
            let client = client.clone();
            async move {
                match client.get_multiplexed_async_connection().await {
                    Ok(mut c) => redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    child
}
