//! `RedisSource` + `RedisLinkStore` against a real Redis (`LINKGATE_REDIS_URL`, default
//! `redis://127.0.0.1:6379/`), and against a `redis-server` of our own that we kill and restart.
//!
//! ```sh
//! cargo test --features redis-tests --test redis_source
//! ```
#![cfg(feature = "redis-tests")]

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::{RedisServer, free_port, unique, url};

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use linkgate::{Link, LinkTable, RedisLinkStore, RedisLinksConfig, ReloadOutcome, Reloader};

/// Failure guard only: every wait below ends on an event long before this.
const GUARD: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Seen {
    Reloaded,
    Unchanged,
    Failed(String),
}

/// One "instance": its own table and reloader, outcomes reported on a channel.
struct Instance {
    table: LinkTable,
    reloader: Reloader,
    rx: Receiver<Seen>,
}

fn instance(cfg: &RedisLinksConfig, resync: Duration) -> Instance {
    let table = LinkTable::new();
    let (tx, rx) = unbounded();
    let reloader = Reloader::builder(table.clone(), cfg.source().unwrap())
        .resync_every(resync)
        .on_reload(move |o| {
            let _ = tx.send(match o {
                ReloadOutcome::Reloaded(_) => Seen::Reloaded,
                ReloadOutcome::Unchanged => Seen::Unchanged,
                ReloadOutcome::Failed(e) => Seen::Failed(e.to_string()),
                _ => Seen::Unchanged,
            });
        })
        .spawn()
        .unwrap();
    Instance {
        table,
        reloader,
        rx,
    }
}

impl Instance {
    fn serves(&self, path: &str) -> String {
        let r = self.table.resolve(path);
        if r.is_default() {
            "<default>".into()
        } else {
            r.location().to_str().unwrap().to_string()
        }
    }

    /// Waits (on reload outcomes) until `path` resolves to `target`.
    fn wait_serving(&self, path: &str, target: &str) {
        let deadline = Instant::now() + GUARD;
        while self.serves(path) != target {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.rx.recv_timeout(left).is_err() {
                panic!(
                    "{path} still serves {} (want {target}); {:?}",
                    self.serves(path),
                    self.reloader.stats()
                );
            }
        }
    }

    /// Forgets outcomes seen so far.
    fn drain(&self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Waits for the next failed reload and returns its message.
    fn wait_failed(&self) -> String {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Seen::Failed(msg)) => return msg,
                Ok(_) => {}
                Err(_) => panic!("no failed reload; {:?}", self.reloader.stats()),
            }
        }
    }
}

fn gen_links(generation: &str, n: usize) -> Vec<Link> {
    let mut v = vec![
        Link::builder(
            "/go/summer-deal",
            format!("https://{generation}.store.com/p/123"),
        )
        .status(301)
        .tag("gen", generation)
        .build()
        .unwrap(),
        Link::builder("/go/docs/*", format!("https://{generation}.docs.example/"))
            .forward_path(true)
            .build()
            .unwrap(),
    ];
    for i in 0..n {
        v.push(
            Link::new(
                format!("/go/n{i}"),
                format!("https://{generation}.example/{i}"),
            )
            .unwrap(),
        );
    }
    v
}

fn raw(cfg_url: &str) -> redis::Connection {
    let c = redis::Client::open(cfg_url).unwrap();
    c.get_connection_with_timeout(Duration::from_secs(2))
        .unwrap()
}

#[test]
fn put_delete_publish_reach_three_tables() {
    let hash = unique("propagate");
    let cfg = RedisLinksConfig::new(&hash).url(url());
    let store = cfg.store().unwrap();
    // More than one HSCAN page, plus one entry in the compact form written by hand.
    store.put_many(&gen_links("a", 2500)).unwrap();
    let mut con = raw(&url());
    redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(&hash)
        .arg("/go/compact")
        .arg("https://compact.example/ 308")
        .ignore()
        .cmd("INCR")
        .arg(format!("{hash}:version"))
        .ignore()
        .exec(&mut con)
        .unwrap();

    let instances: Vec<Instance> = (0..3)
        .map(|_| instance(&cfg, Duration::from_secs(3600)))
        .collect();
    for i in &instances {
        i.wait_serving("/go/summer-deal", "https://a.store.com/p/123");
        i.wait_serving("/go/compact", "https://compact.example/");
        assert_eq!(i.table.len(), 2503);
        assert_eq!(i.table.resolve("/go/compact").status(), 308);
        assert_eq!(
            i.serves("/go/docs/a/b"),
            "https://a.docs.example/a/b",
            "prefix key with forward_path"
        );
    }

    // A change, a deletion, one publish.
    store
        .put(&Link::new("/go/summer-deal", "https://b.store.com/p/456").unwrap())
        .unwrap();
    assert!(
        store.delete("/go/n7/").unwrap(),
        "the key is matched in canonical form"
    );
    assert!(!store.delete("/go/never-there").unwrap());
    let receivers = store.publish().unwrap();
    assert!(receivers >= 3, "3 subscribers, got {receivers}");
    for i in &instances {
        i.wait_serving("/go/summer-deal", "https://b.store.com/p/456");
        i.wait_serving("/go/n7", "<default>");
        assert_eq!(i.serves("/go/n8"), "https://a.example/8");
        assert_eq!(i.table.len(), 2502);
    }

    // auto_publish: a write that notifies by itself.
    let auto = cfg.store().unwrap().auto_publish(true);
    auto.put(&Link::new("/go/auto", "https://auto.example/").unwrap())
        .unwrap();
    for i in &instances {
        i.wait_serving("/go/auto", "https://auto.example/");
        assert_eq!(i.reloader.stats().reload_failures, 0);
    }
    assert_eq!(store.len().unwrap(), 2503);
    store.destroy().unwrap();
}

#[test]
fn a_bad_entry_fails_the_reload_and_the_old_table_keeps_serving() {
    let hash = unique("bad-entry");
    let cfg = RedisLinksConfig::new(&hash).url(url());
    let store = cfg.store().unwrap();
    store.put_many(&gen_links("a", 10)).unwrap();
    let inst = [
        instance(&cfg, Duration::from_secs(3600)),
        instance(&cfg, Duration::from_secs(3600)),
    ];
    for i in &inst {
        i.wait_serving("/go/summer-deal", "https://a.store.com/p/123");
        i.drain();
    }

    // A good change and a bad entry in the same batch: nothing of it may be served.
    let mut con = raw(&url());
    redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(&hash)
        .arg("/go/summer-deal")
        .arg(r#"{"target": "https://b.store.com/p/123"}"#)
        .arg("/go/bad")
        .arg(r#"{"target": "javascript:alert(1)"}"#)
        .ignore()
        .cmd("INCR")
        .arg(format!("{hash}:version"))
        .ignore()
        .exec(&mut con)
        .unwrap();
    store.publish().unwrap();
    for i in &inst {
        let msg = i.wait_failed();
        assert!(
            msg.contains("\"/go/bad\"") && msg.contains("1 invalid entry"),
            "{msg}"
        );
        assert_eq!(i.serves("/go/summer-deal"), "https://a.store.com/p/123");
        assert_eq!(i.table.len(), 12);
        let stats = i.reloader.stats();
        assert_eq!(stats.reload_failures, 1, "{stats:?}");
        assert!(stats.last_error.unwrap().contains("/go/bad"));
    }

    // Fixed: the whole batch goes live.
    store.delete("/go/bad").unwrap();
    store.publish().unwrap();
    for i in &inst {
        i.wait_serving("/go/summer-deal", "https://b.store.com/p/123");
        assert_eq!(i.table.len(), 12);
    }
    store.destroy().unwrap();
}

#[test]
fn redis_restart_tables_keep_serving_and_catch_up() {
    let mut server = RedisServer::start(free_port(), GUARD);
    let hash = unique("restart");
    let cfg = RedisLinksConfig::new(&hash)
        .url(server.url())
        .connect_timeout(Duration::from_millis(500))
        .io_timeout(Duration::from_secs(2))
        .load_retry_for(Duration::from_millis(300));
    let store: RedisLinkStore = cfg.store().unwrap();
    store.put_many(&gen_links("a", 50)).unwrap();
    // No periodic resync: whatever arrives below comes from the subscriber.
    let instances: Vec<Instance> = (0..3)
        .map(|_| instance(&cfg, Duration::from_secs(3600)))
        .collect();
    for i in &instances {
        i.wait_serving("/go/summer-deal", "https://a.store.com/p/123");
        i.drain();
    }

    server.kill();

    // Down: loads fail, tables serve, writes and publish are impossible.
    for i in &instances {
        i.reloader.trigger();
        let msg = i.wait_failed();
        assert!(msg.contains("redis 127.0.0.1:"), "{msg}");
        assert_eq!(i.serves("/go/summer-deal"), "https://a.store.com/p/123");
        assert_eq!(i.table.len(), 52);
    }
    let e = store.publish().expect_err("publish while Redis is down");
    assert!(e.is_connection(), "{e}");
    assert!(store.put(&gen_links("x", 0)[0]).is_err());

    // Back, empty (no persistence): the subscribers reconnect; the load they ask for finds no
    // hash and no version key, and is refused rather than emptying the tables.
    let server2 = RedisServer::start(server.port, GUARD);
    let channel = cfg.channel_name().into_owned();
    let mut con = raw(&server2.url());
    let deadline = Instant::now() + GUARD;
    loop {
        let (_, n): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(&mut con)
            .unwrap();
        if n == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscribers did not reconnect ({n}/3)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in &instances {
        assert_eq!(i.serves("/go/summer-deal"), "https://a.store.com/p/123");
    }

    // Re-put the links with a change and publish: every table catches up.
    store.put_many(&gen_links("b", 50)).unwrap();
    assert_eq!(store.publish().unwrap(), 3);
    for i in &instances {
        i.wait_serving("/go/summer-deal", "https://b.store.com/p/123");
        assert_eq!(i.table.len(), 52);
    }
    drop(instances);
    drop(server2);
}

#[test]
fn a_missing_hash_is_refused_unless_allowed() {
    let hash = unique("missing");
    let cfg = RedisLinksConfig::new(&hash).url(url());
    let inst = instance(&cfg, Duration::from_secs(3600));
    let msg = inst.wait_failed();
    assert!(msg.contains("does not exist"), "{msg}");

    let allowed = instance(&cfg.clone().allow_missing(true), Duration::from_secs(3600));
    match allowed.rx.recv_timeout(GUARD) {
        Ok(Seen::Unchanged | Seen::Reloaded) => {}
        Ok(Seen::Failed(m)) => panic!("{m}"),
        Err(_) => panic!("no outcome"),
    }
    assert_eq!(allowed.table.len(), 0);
}
