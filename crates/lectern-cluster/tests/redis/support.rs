//! Connecting to Redis, waiting on conditions, and a private `redis-server` to kill
//! (`lectern_testkit::OwnRedis`).

use std::future::Future;
use std::time::Duration;

use lectern_cluster::Redis;
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

pub use lectern_testkit::OwnRedis;
