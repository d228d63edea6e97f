//! PostgresSource + Reloader against a real PostgreSQL (feature `postgres-tests`).
//!
//! Connection from `LINKGATE_POSTGRES` (default `host=127.0.0.1 user=postgres dbname=test`).
//! Every test works on a table of its own (dropped at the end) and tags its connections with an
//! `application_name` of its own, so tests can run in parallel and kill only their own sessions.
//! Propagation is observed through `on_reload` outcomes; `resync_every` is an hour, so only a
//! notification (or the listener's resync after a reconnect) can explain a reload.
#![cfg(feature = "postgres-tests")]

#[path = "support/postgres.rs"]
mod pg;
use pg::{admin, conninfo};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, unbounded};
use linkgate::{
    EntryProblem, LinkError, LinkSource, LinkTable, LoadError, PostgresConfigError, PostgresSource,
    ReloadOutcome, Reloader,
};
use postgres::Config;

const GUARD: Duration = Duration::from_secs(20);

/// A table (and `application_name` prefix) unique to this test; dropped on drop.
struct TestTable {
    name: String,
}

impl TestTable {
    fn new(tag: &str) -> TestTable {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("lgt_{tag}_{}_{nanos}", std::process::id());
        let t = TestTable { name };
        t.source().ensure_schema().unwrap();
        t
    }

    /// A source on this table whose sessions are named `<table>-listen` / `<table>-load`.
    fn source(&self) -> PostgresSource {
        let mut cfg: Config = conninfo().parse().unwrap();
        cfg.application_name(&self.name);
        PostgresSource::from_config(cfg).table(&self.name).unwrap()
    }

    fn exec(&self, sql: &str) {
        let sql = sql.replace("$T", &format!("\"{}\"", self.name));
        admin()
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Terminates this test's sessions named `<table>-<role>`, waiting until they are gone.
    fn kill(&self, role: &str) -> usize {
        let app = format!("{}-{role}", self.name);
        let rows = admin()
            .query(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&app],
            )
            .unwrap();
        rows.iter().filter(|r| r.get::<_, bool>(0)).count()
    }

    fn sessions(&self, role: &str) -> Vec<i32> {
        let app = format!("{}-{role}", self.name);
        admin()
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.name));
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Reloaded(usize),
    Unchanged,
    Failed(String),
}

fn start(t: &TestTable, table: &LinkTable) -> (Reloader, Receiver<Seen>) {
    let (tx, rx) = unbounded();
    let r = Reloader::builder(table.clone(), t.source())
        .resync_every(Duration::from_secs(3600))
        .on_reload(move |o| {
            let _ = tx.send(match o {
                ReloadOutcome::Reloaded(r) => Seen::Reloaded(r.links),
                ReloadOutcome::Unchanged => Seen::Unchanged,
                ReloadOutcome::Failed(e) => Seen::Failed(e.to_string()),
                _ => Seen::Unchanged,
            });
        })
        .spawn()
        .unwrap();
    (r, rx)
}

/// Waits for outcomes until `done` holds after one of them; `recv_timeout` is only the guard.
fn until(rx: &Receiver<Seen>, what: &str, mut done: impl FnMut(&Seen) -> bool) -> Seen {
    let end = Instant::now() + GUARD;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let seen = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no reload outcome `{what}` within {GUARD:?}"));
        if done(&seen) {
            return seen;
        }
    }
}

fn location(table: &LinkTable, path: &str) -> String {
    table.resolve(path).location().to_str().unwrap().to_string()
}

#[test]
fn insert_update_delete_propagate_through_notify() {
    let t = TestTable::new("crud");
    t.exec(
        "INSERT INTO $T (key, target) VALUES \
         ('/go/a', 'https://a.example/1'), ('/go/b', 'https://b.example/1')",
    );
    let table = LinkTable::new();
    let (reloader, rx) = start(&t, &table);
    assert_eq!(until(&rx, "first load", |_| true), Seen::Reloaded(2));
    assert_eq!(location(&table, "/go/a"), "https://a.example/1");

    // INSERT
    t.exec("INSERT INTO $T (key, target, status) VALUES ('/go/c', 'https://c.example/', 301)");
    until(&rx, "insert", |_| !table.resolve("/go/c").is_default());
    let r = table.resolve("/go/c");
    assert_eq!(r.status().as_u16(), 301);
    assert_eq!(r.location(), "https://c.example/");

    // UPDATE
    t.exec("UPDATE $T SET target = 'https://a.example/2' WHERE key = '/go/a'");
    until(&rx, "update", |_| {
        location(&table, "/go/a") == "https://a.example/2"
    });

    // DELETE
    t.exec("DELETE FROM $T WHERE key = '/go/b'");
    until(&rx, "delete", |_| table.resolve("/go/b").is_default());
    assert_eq!(table.len(), 2);

    // A bulk statement in a transaction; then TRUNCATE + COPY-like refill in one transaction.
    t.exec(
        "BEGIN; UPDATE $T SET target = target || '?v=3'; \
         INSERT INTO $T (key, target) SELECT '/go/n' || i, 'https://n.example/' || i \
         FROM generate_series(1, 100) i; COMMIT;",
    );
    until(&rx, "bulk", |s| *s == Seen::Reloaded(102));
    assert_eq!(location(&table, "/go/a"), "https://a.example/2?v=3");
    assert_eq!(location(&table, "/go/n42"), "https://n.example/42");

    let stats = reloader.stats();
    assert_eq!(stats.reload_failures, 0, "{stats:?}");
    assert!(stats.reloads >= 5, "{stats:?}");
}

#[test]
fn a_bulk_statement_sends_one_notification() {
    let t = TestTable::new("bulk");
    t.exec(
        "INSERT INTO $T (key, target) SELECT '/go/k' || i, 'https://k.example/' || i \
         FROM generate_series(1, 1000) i",
    );
    let mut listener = admin();
    listener.batch_execute("LISTEN linkgate_links").unwrap();
    t.exec("UPDATE $T SET status = 301");
    t.exec("TRUNCATE $T");
    // The payload is `schema.table`; other tests' tables notify on the same channel.
    let suffix = format!(".{}", t.name);
    let mut ours = Vec::new();
    let mut n = listener.notifications();
    let mut it = n.timeout_iter(Duration::from_millis(500));
    use postgres::fallible_iterator::FallibleIterator;
    while let Some(note) = it.next().unwrap() {
        if note.payload().ends_with(&suffix) {
            ours.push(note.payload().to_string());
        }
    }
    assert_eq!(ours, [format!("public{suffix}"), format!("public{suffix}")]);
}

#[test]
fn columns_map_to_link_fields() {
    let t = TestTable::new("cols");
    t.exec(
        "INSERT INTO $T (key, target, status, forward_query, forward_path, cache_seconds, \
         not_before, not_after, tags) VALUES \
         ('/go/docs/*', 'https://docs.example/', 308, true, true, 60, \
          '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', '{\"campaign\": \"summer\", \"aff\": \"01\"}'), \
         ('/go/plain', '/local/path', DEFAULT, DEFAULT, DEFAULT, NULL, '-infinity', 'infinity', DEFAULT)",
    );
    let mut source = t.source();
    let mut links = source.load().unwrap().links;
    links.sort_by(|a, b| a.key().cmp(b.key()));
    let (docs, plain) = (&links[0], &links[1]);
    assert_eq!(docs.key(), "/go/docs/*");
    assert_eq!(docs.status().as_u16(), 308);
    assert!(docs.forward_query() && docs.forward_path());
    assert_eq!(docs.cache_seconds(), Some(60));
    assert_eq!(docs.not_before(), Some(1_767_225_600_000));
    assert_eq!(docs.not_after(), Some(1_798_761_600_000));
    let tags: Vec<(&str, &str)> = docs.tags().iter().map(|(n, v)| (&**n, &**v)).collect();
    assert_eq!(tags, [("aff", "01"), ("campaign", "summer")]);
    assert_eq!(plain.target(), "/local/path");
    assert_eq!(plain.status().as_u16(), 302);
    assert_eq!((plain.not_before(), plain.not_after()), (None, None));
    assert!(plain.tags().is_empty() && !plain.forward_query());
    assert!(
        source
            .describe()
            .starts_with(&format!("postgres table {} on ", t.name))
    );

    // The prepared SELECT survives schema changes: a type change is absorbed by the casts, a
    // missing column fails the load (naming it) and the next load prepares afresh.
    t.exec("ALTER TABLE $T ALTER COLUMN status TYPE integer");
    assert_eq!(source.load().unwrap().len(), 2);
    t.exec("ALTER TABLE $T DROP COLUMN tags");
    let err = source.load().unwrap_err().to_string();
    assert!(err.contains("tags"), "{err}");
    t.exec("ALTER TABLE $T ADD COLUMN tags jsonb NOT NULL DEFAULT '{}'");
    assert_eq!(source.load().unwrap().len(), 2);

    // Typed configuration errors.
    for bad in ["links; drop table x", "a.b.c", "1x"] {
        assert!(matches!(
            PostgresSource::default().table(bad),
            Err(PostgresConfigError::TableName { .. })
        ));
    }
}

#[test]
fn an_invalid_row_fails_the_reload_naming_its_key_and_the_old_table_serves() {
    let t = TestTable::new("invalid");
    t.exec(
        "INSERT INTO $T (key, target) VALUES \
         ('/go/a', 'https://a.example/'), ('/go/b', 'https://b.example/')",
    );
    let table = LinkTable::new();
    let (reloader, rx) = start(&t, &table);
    assert_eq!(until(&rx, "first load", |_| true), Seen::Reloaded(2));

    // The schema's checks allow it; the link validation does not.
    t.exec("INSERT INTO $T (key, target) VALUES ('/go/evil', 'javascript:x')");
    let seen = until(&rx, "failure", |s| matches!(s, Seen::Failed(_)));
    let Seen::Failed(msg) = seen else {
        unreachable!()
    };
    assert!(
        msg.contains("/go/evil") && msg.contains("javascript"),
        "{msg}"
    );
    assert_eq!(table.len(), 2);
    assert_eq!(location(&table, "/go/a"), "https://a.example/");
    assert!(table.resolve("/go/evil").is_default());
    assert_eq!(reloader.stats().reload_failures, 1);

    // The load itself: one entry error, with the key and the field.
    let err = t.source().load().unwrap_err();
    let LoadError::Invalid { errors, total } = &err else {
        panic!("{err}")
    };
    assert_eq!(*total, 1);
    let EntryProblem::Link(LinkError::Field { field, reason }) = &errors[0].problem else {
        panic!("{err}")
    };
    assert_eq!(*field, "row");
    assert!(
        reason.starts_with("key `/go/evil`: target scheme `javascript`"),
        "{reason}"
    );

    // Other row-level problems name their key too; fixing the rows heals the table.
    t.exec(
        "INSERT INTO $T (key, target, tags) VALUES ('/go/t', 'https://t.example/', '{\"n\": 1}'); \
         INSERT INTO $T (key, target, cache_seconds) VALUES ('/go/c', 'https://c.example/', -1)",
    );
    let err = t.source().load().unwrap_err().to_string();
    assert!(err.contains("3 invalid entries"), "{err}");
    for needle in [
        "key `/go/t`: tags: tag `n`",
        "key `/go/c`: cache_seconds -1",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    t.exec("DELETE FROM $T WHERE key IN ('/go/evil', '/go/t', '/go/c')");
    until(&rx, "healed", |s| *s == Seen::Unchanged);
    assert_eq!(table.len(), 2);
}

#[test]
fn a_killed_listener_reconnects_and_resyncs_and_the_table_never_goes_empty() {
    let t = TestTable::new("kill");
    t.exec(
        "INSERT INTO $T (key, target) SELECT '/go/k' || i, 'https://k.example/' || i \
         FROM generate_series(1, 50) i",
    );
    let table = LinkTable::new();
    let (reloader, rx) = start(&t, &table);
    assert_eq!(until(&rx, "first load", |_| true), Seen::Reloaded(50));

    // From now on the table must never serve fewer than 50 links.
    let stop = Arc::new(AtomicBool::new(false));
    let low = Arc::new(AtomicUsize::new(usize::MAX));
    let sampler = {
        let (table, stop, low) = (table.clone(), stop.clone(), low.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                low.fetch_min(table.len(), Ordering::Relaxed);
                if table.resolve("/go/k1").is_default() {
                    low.store(0, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
        })
    };

    // 1. Kill the listener, then change a row at once: the NOTIFY goes nowhere, yet the change
    //    arrives (reconnect + one resync).
    let old = t.sessions("listen");
    assert_eq!(old.len(), 1, "one listener session");
    assert_eq!(t.kill("listen"), 1);
    t.exec("UPDATE $T SET target = 'https://k.example/new' WHERE key = '/go/k1'");
    until(&rx, "resync after reconnect", |_| {
        location(&table, "/go/k1") == "https://k.example/new"
    });
    let new = t.sessions("listen");
    assert_eq!(new.len(), 1);
    assert_ne!(new, old, "a new listener session");
    // ...and notifications flow again on the new session.
    t.exec("UPDATE $T SET target = 'https://k.example/newer' WHERE key = '/go/k2'");
    until(&rx, "notify after reconnect", |_| {
        location(&table, "/go/k2") == "https://k.example/newer"
    });

    // 1b. PostgreSQL itself may hand a fresh listener notifications committed just before its
    //     LISTEN (from the queue tail), so 1. can pass without the resync. A change that sends
    //     no notification at all, followed by a kill, can only arrive through the resync.
    t.exec(
        "BEGIN; ALTER TABLE $T DISABLE TRIGGER linkgate_links_notify; \
         UPDATE $T SET target = 'https://k.example/silent' WHERE key = '/go/k5'; \
         ALTER TABLE $T ENABLE TRIGGER linkgate_links_notify; COMMIT;",
    );
    assert_eq!(t.kill("listen"), 1);
    until(&rx, "silent change after reconnect", |_| {
        location(&table, "/go/k5") == "https://k.example/silent"
    });

    // 2. Kill the load connection: the next load reconnects by itself.
    assert_eq!(t.kill("load"), 1);
    t.exec("UPDATE $T SET target = 'https://k.example/3' WHERE key = '/go/k3'");
    until(&rx, "load after its connection died", |_| {
        location(&table, "/go/k3") == "https://k.example/3"
    });

    // 3. Both at once.
    assert_eq!(t.kill("listen") + t.kill("load"), 2);
    t.exec("UPDATE $T SET target = 'https://k.example/4' WHERE key = '/go/k4'");
    until(&rx, "both killed", |_| {
        location(&table, "/go/k4") == "https://k.example/4"
    });

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(
        low.load(Ordering::Relaxed),
        50,
        "the table went below 50 links"
    );
    let stats = reloader.stats();
    assert_eq!(stats.reload_failures, 0, "{stats:?}");
    drop(reloader);
}
