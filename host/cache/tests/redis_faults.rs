//! Redis going away under a running replica. The test starts its own
//! `redis-server` on a free loopback port (installed by `.ci/setup`), kills
//! it, and starts it again on the same port, while one `RedisCoordination`
//! and one `RedisQueue` live on: calls fail with an error while the server
//! is gone, and the same objects work again once it is back.
//!
//! No wall-clock bound is asserted tighter than "gives up by itself well
//! within 30 s"; the timeout in the settings is what keeps it short.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking, with a message saying what broke"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use org_mesh_cache::redis::{RedisCoordination, RedisQueue, RedisSettings};
use org_mesh_cache::{CacheError, Claim, Coordination, WorkQueue};
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_millis(500);
/// How long a failing call may take before the test calls it hung.
const GIVES_UP_WITHIN: Duration = Duration::from_secs(30);

/// A redis-server of this test, killed when dropped.
struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// Starts a server on `port` keeping its append-only file in `dir`, and
    /// waits until it answers.
    fn start(dir: &Path, port: u16) -> Server {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "yes", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server ({e}); .ci/setup installs it"));
        let mut server = Server {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
        };
        server.wait_until_it_answers();
        server
    }

    fn wait_until_it_answers(&mut self) {
        let started = Instant::now();
        loop {
            if answers_ping(self.port) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited with {status} before answering; its log:\n{log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "redis-server on port {} did not answer within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops (`STOP`) or resumes (`CONT`) the server: a stopped server keeps
    /// its connections open and answers nothing, like one behind a network
    /// partition.
    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running server");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kills the server at once, as a crash would, and waits for it to go.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped process ignores the kill until it runs again.
        if self.child.is_some() {
            self.signal("CONT");
        }
        self.kill();
    }
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Awaits a call that must fail, and says how.
async fn fails<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, CacheError>>,
) -> String {
    match tokio::time::timeout(GIVES_UP_WITHIN, call).await {
        Err(_) => panic!("{what} still had no answer after {GIVES_UP_WITHIN:?}"),
        Ok(Ok(value)) => panic!("{what} succeeded with no server: {value:?}"),
        Ok(Err(CacheError::Backend { backend, message })) => {
            assert_eq!(backend, "redis");
            message
        }
        Ok(Err(other)) => panic!("{what} failed with a non-backend error: {other}"),
    }
}

/// Retries `ping` until the server is reachable again through the same
/// object, for at most 30 s.
async fn back(c: &Arc<dyn Coordination>, q: &Arc<dyn WorkQueue>) {
    let started = Instant::now();
    loop {
        let pinged = c.ping().await;
        let measured = q.depth().await;
        if pinged.is_ok() && measured.is_ok() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the same objects did not reach the restarted server within 30 s: {pinged:?} {measured:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_while_redis_is_down_and_the_same_objects_work_after_it_restarts() {
    let dir = TempDir::new().expect("a temporary folder");
    let port = free_port();
    let mut server = Server::start(dir.path(), port);
    let settings = RedisSettings {
        url: format!("redis://127.0.0.1:{port}/"),
        prefix: "org-mesh-fault:".into(),
        timeout: TIMEOUT,
    };
    let c: Arc<dyn Coordination> = Arc::new(
        RedisCoordination::connect(&settings)
            .await
            .expect("connecting the coordination"),
    );
    let q: Arc<dyn WorkQueue> = Arc::new(
        RedisQueue::connect(&settings, "work", "replicas")
            .await
            .expect("connecting the queue"),
    );

    c.kv_set("plugin", "cursor", b"page-7")
        .await
        .expect("kv_set");
    assert_eq!(
        c.claim_delivery("held", Duration::from_secs(600))
            .await
            .expect("claim"),
        Claim::New
    );
    let before = q.push(b"accepted before the crash").await.expect("push");

    server.kill();

    let ping = fails("ping", c.ping()).await;
    assert!(ping.contains("PING"), "{ping}");
    let claim = fails("claim", c.claim_delivery("d", Duration::from_secs(60))).await;
    assert!(claim.contains("claiming delivery"), "{claim}");
    let read = fails("kv_get", c.kv_get("plugin", "cursor")).await;
    assert!(read.contains("cursor"), "{read}");
    fails("try_lock", c.try_lock("sync", Duration::from_secs(60))).await;
    fails("bump", c.bump_twin_version()).await;
    fails("push", q.push(b"x")).await;
    let next = fails("next", q.next("replica", Duration::from_millis(200))).await;
    assert!(next.contains("stream:work"), "{next}");
    fails("depth", q.depth()).await;

    // Same port, same folder: the append-only file brings the data back.
    let mut server = Server::start(dir.path(), port);
    back(&c, &q).await;
    assert_eq!(
        c.kv_get("plugin", "cursor").await.expect("kv_get"),
        Some(b"page-7".to_vec())
    );
    assert_eq!(
        c.claim_delivery("held", Duration::from_secs(600))
            .await
            .expect("claim"),
        Claim::InProgress
    );
    assert_eq!(c.bump_twin_version().await.expect("bump"), 1);
    let work = q
        .next("replica", Duration::from_secs(5))
        .await
        .expect("next")
        .expect("the item accepted before the crash");
    assert_eq!(work.id, before);
    q.ack(&work.id).await.expect("ack");

    // A restart that lost everything, as without persistence: the queue
    // finds its group gone and creates it again.
    server.kill();
    fails("ping", c.ping()).await;
    let empty = TempDir::new().expect("a temporary folder");
    let _server = Server::start(empty.path(), port);
    back(&c, &q).await;
    assert_eq!(c.kv_get("plugin", "cursor").await.expect("kv_get"), None);
    assert_eq!(
        q.next("replica", Duration::from_millis(100))
            .await
            .expect("next after the group was lost"),
        None
    );
    let after = q.push(b"accepted after").await.expect("push");
    let work = q
        .next("replica", Duration::from_secs(5))
        .await
        .expect("next")
        .expect("the new item");
    assert_eq!(work.id, after);
    q.ack(&after).await.expect("ack");
    assert_eq!(q.depth().await.expect("depth"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_time_out_while_redis_hangs_and_work_again_when_it_resumes() {
    let dir = TempDir::new().expect("a temporary folder");
    let port = free_port();
    let server = Server::start(dir.path(), port);
    let settings = RedisSettings {
        url: format!("redis://127.0.0.1:{port}/"),
        prefix: "org-mesh-hang:".into(),
        timeout: TIMEOUT,
    };
    let c: Arc<dyn Coordination> = Arc::new(
        RedisCoordination::connect(&settings)
            .await
            .expect("connecting the coordination"),
    );
    let q: Arc<dyn WorkQueue> = Arc::new(
        RedisQueue::connect(&settings, "work", "replicas")
            .await
            .expect("connecting the queue"),
    );
    assert_eq!(
        q.next("replica", Duration::from_millis(50))
            .await
            .expect("next"),
        None
    );

    server.signal("STOP");
    let ping = fails("ping", c.ping()).await;
    assert!(ping.contains("PING"), "{ping}");
    fails("kv_set", c.kv_set("plugin", "k", b"v")).await;
    fails("push", q.push(b"x")).await;
    fails("next", q.next("replica", Duration::from_millis(200))).await;
    server.signal("CONT");

    back(&c, &q).await;
    c.kv_set("plugin", "k", b"v").await.expect("kv_set");
    let id = q.push(b"after the pause").await.expect("push");
    let work = q
        .next("replica", Duration::from_secs(5))
        .await
        .expect("next")
        .expect("the pushed item");
    assert_eq!(work.id, id);
    q.ack(&id).await.expect("ack");
}
