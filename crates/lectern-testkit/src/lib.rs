//! Test support shared by Lectern's test crates (a dev-dependency only).
//!
//! [`OwnRedis`] is a `redis-server` of a test's own, on a free port and without persistence,
//! which the test kills and starts again (empty, on the same port) to see what the nodes do
//! while Redis is away and after it restarts. The machine's shared Redis is never touched.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a started server has to answer `PING`.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` of the test's own, killed on drop.
#[derive(Debug)]
pub struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts one and waits until it answers. `None`, after saying so on stderr, when the
    /// machine has no `redis-server` binary (the test then skips).
    ///
    /// # Panics
    /// If the server does not start or answer within 10 s.
    pub async fn start() -> Option<OwnRedis> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!(
                "SKIPPED: this test needs the `redis-server` binary to start and kill \
                 (apt-get install redis-server)"
            );
            return None;
        }
        // A port the kernel just handed out and we released: free unless someone races us.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart().await;
        Some(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts a fresh, empty server on the same port (after [`OwnRedis::kill`]) and waits
    /// until it answers `PING`.
    ///
    /// # Panics
    /// If it does not start or answer within 10 s.
    pub async fn restart(&mut self) {
        self.kill().await;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            // Nothing on disk: a restart is an empty Redis, as on a machine that keeps nothing.
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while !answers_ping(self.port).await {
            assert!(
                start.elapsed() < START_DEADLINE,
                "redis-server on port {} did not answer PING within {START_DEADLINE:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether a Redis on `port` answers `PING` with `+PONG`.
async fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply)).await,
        Ok(Ok(_)) if &reply == b"+PONG\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_killed_server_stops_answering_and_a_restarted_one_answers_again() {
        let Some(mut redis) = OwnRedis::start().await else {
            return;
        };
        assert!(answers_ping(redis.port).await);
        redis.kill().await;
        assert!(
            !answers_ping(redis.port).await,
            "killed, it must not answer"
        );
        redis.restart().await;
        assert!(answers_ping(redis.port).await);
        assert!(redis.url().starts_with("redis://127.0.0.1:"));
    }
}
