//! A real Kafka-protocol broker for tests and benches: `tansu` (in-memory storage engine) on
//! 127.0.0.1, one per test on a free port, stopped by PID on drop (also when the test panics).
//!
//! The binary: `$LINKGATE_TANSU`, else `tansu` on `PATH`, else `~/.cargo/bin/tansu`
//! (`.ci/run` installs it with `cargo install tansu --features dynostore`).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The brokers of an external cluster to use instead of spawning tansu, if set.
pub fn external_brokers() -> Option<String> {
    std::env::var("LINKGATE_KAFKA_BROKERS")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Where the tansu binary is.
pub fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LINKGATE_TANSU") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("tansu");
            if p.is_file() {
                return p;
            }
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cargo/bin/tansu")
}

/// A free TCP port on 127.0.0.1 (bound and released: the broker takes it right after).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A running tansu broker; killed (by PID) when dropped.
pub struct Tansu {
    child: Option<Child>,
    pub port: u16,
}

impl Tansu {
    /// Starts a broker on a free port.
    pub fn start() -> Tansu {
        Tansu::start_on(free_port())
    }

    /// Starts a broker on `port` (e.g. the port of a broker that was stopped: a fresh, empty
    /// cluster at the same address) and waits until it accepts connections.
    pub fn start_on(port: u16) -> Tansu {
        let bin = tansu_binary();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start tansu ({}): {e}; install it with `cargo install tansu --features dynostore` \
                     or set LINKGATE_TANSU / LINKGATE_KAFKA_BROKERS",
                    bin.display()
                )
            });
        let mut broker = Tansu {
            child: Some(child),
            port,
        };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "tansu on port {} exited before accepting connections: {status}",
                    self.port
                );
            }
            assert!(
                Instant::now() < until,
                "tansu on port {} did not come up in 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `bootstrap.servers` for this broker.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the broker (SIGKILL: no goodbye to clients) and waits until the port is closed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}
