//! A `redis-server` of a test's own on 127.0.0.1, killed with SIGKILL when dropped (even when the
//! test fails). `LINKGATE_REDIS_SERVER` names the binary (default `redis-server` on `PATH`).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared Redis the service tests use: `LINKGATE_REDIS_URL`, default 127.0.0.1:6379.
pub fn url() -> String {
    std::env::var("LINKGATE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A key name no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("linkgate-test:{name}:{}:{nanos}", std::process::id())
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct RedisServer {
    pub port: u16,
    /// `Some`: an append-only file in this directory, so a restarted server keeps its data.
    aof_dir: Option<PathBuf>,
    /// How long a start may take before the test fails.
    guard: Duration,
    child: Option<Child>,
}

impl RedisServer {
    /// In memory only: after a kill, a server started on the same port is empty.
    pub fn start(port: u16, guard: Duration) -> RedisServer {
        RedisServer::spawn(port, None, guard)
    }

    /// With an append-only file (`appendfsync no`) in its own temp directory `dir_name`, reloaded
    /// on [`restart`](Self::restart).
    ///
    /// Redis `write()`s the AOF buffer in `beforeSleep`, *before* it sends the replies of that
    /// event-loop turn (with `appendfsync no` it never postpones that write), so every command
    /// it acknowledged is in the kernel's page cache and survives a `SIGKILL` of the process (not
    /// an OS crash: that would need `appendfsync always`, which costs one disk flush per read
    /// event and made the sink's outage test six times slower on this machine's disk).
    pub fn start_persistent(port: u16, dir_name: &str, guard: Duration) -> RedisServer {
        let dir = std::env::temp_dir().join(dir_name.replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        RedisServer::spawn(port, Some(dir), guard)
    }

    fn spawn(port: u16, aof_dir: Option<PathBuf>, guard: Duration) -> RedisServer {
        let mut s = RedisServer {
            port,
            aof_dir,
            guard,
            child: None,
        };
        s.restart();
        s
    }

    /// Starts the server (again) on its port and waits until it answers `PING`.
    pub fn restart(&mut self) {
        let bin = std::env::var("LINKGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &self.aof_dir {
            Some(dir) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "no", "--dir"])
                .arg(dir),
            None => cmd
                .args(["--appendonly", "no", "--dir"])
                .arg(std::env::temp_dir()),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + self.guard;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let ok = redis::Client::open(self.url())
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
                if ok.is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: no goodbye to the clients, no final write of the data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.aof_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
