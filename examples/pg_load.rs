//! Figures for `PostgresSource` (the numbers in BENCHMARKS.md, "Link sources: PostgreSQL").
//!
//! ```sh
//! cargo run --release --features postgres --example pg_load            # 1 000 000 links
//! LINKGATE_POSTGRES='host=... user=... dbname=...' LINKS=200000 ROUNDS=20 \
//!     cargo run --release --features postgres --example pg_load
//! ```
//!
//! (a) Full load: COPY a million links (≈20-byte keys, ≈60-byte targets) into a table, then time
//! `PostgresSource::load` + `LinkTable::reload`, into an empty table and again over a full one,
//! with the peak RSS of each (VmHWM, reset in between through `/proc/self/clear_refs`).
//! (b) Propagation: 8 `LinkTable`s, each with its own `Reloader` + `PostgresSource` (hence its own
//! listener), on a small table; one `UPDATE` per round, timed until all 8 tables resolve the new
//! target. The tables are dropped at the end.

#[cfg(not(feature = "postgres"))]
fn main() {
    eprintln!("pg_load needs `--features postgres`");
}

#[cfg(feature = "postgres")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench::run()
}

#[cfg(feature = "postgres")]
mod bench {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use linkgate::{LinkSource, LinkTable, PostgresSource, Reloader};
    use postgres::{Client, Config, NoTls};

    type Res<T> = Result<T, Box<dyn std::error::Error>>;

    fn env_usize(name: &str, default: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn status_kb(field: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// CPU seconds (user + system) of a process, all threads, from `/proc/<pid>/stat`.
    fn cpu_secs(pid: &str) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    fn loadavg() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn mib(kb: u64) -> String {
        format!("{:.0} MiB", kb as f64 / 1024.0)
    }

    /// Resets VmHWM to the current RSS (Linux ≥ 4.0).
    fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    struct DropTable<'a>(&'a str, String);
    impl Drop for DropTable<'_> {
        fn drop(&mut self) {
            if let Ok(mut c) = self.1.parse::<Config>().and_then(|c| c.connect(NoTls)) {
                let _ = c.batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.0));
            }
        }
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    fn ms(d: Duration) -> String {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }

    struct Run {
        before: String,
        loaded: Duration,
        swapped: Duration,
        total: Duration,
        cpu_load: String,
        cpu_reload: String,
        cpu_server: String,
        hwm: u64,
        rss: u64,
    }

    pub(super) fn run() -> Res<()> {
        let conninfo = std::env::var("LINKGATE_POSTGRES")
            .unwrap_or_else(|_| PostgresSource::DEFAULT_CONNECTION.into());
        let n = env_usize("LINKS", 1_000_000);
        let rounds = env_usize("ROUNDS", 50);
        let mut admin: Client = conninfo.parse::<Config>()?.connect(NoTls)?;
        let version: String = admin.query_one("SHOW server_version", &[])?.get(0);
        let big = format!("lg_bench_big_{}", std::process::id());
        let small = format!("lg_bench_small_{}", std::process::id());
        let _drop_big = DropTable(&big, conninfo.clone());
        let _drop_small = DropTable(&small, conninfo.clone());

        // ---- (a) full load ----------------------------------------------------------------
        let mut big_config: Config = conninfo.parse()?;
        big_config.application_name("pg_load_big");
        let mut source = PostgresSource::from_config(big_config).table(&big)?;
        source.install_schema(&mut admin)?;
        let t = Instant::now();
        {
            let mut w = admin.copy_in(&format!("COPY \"{big}\" (key, target) FROM STDIN"))?;
            let mut buf = Vec::with_capacity(1 << 20);
            for i in 0..n {
                // key ≈ 20 B, target ≈ 60 B
                writeln!(
                    buf,
                    "/go/p{i:07}-{:06x}\thttps://shop.example.com/products/{i:07}?ref=aff_{:04}&utm=pg",
                    (i as u64).wrapping_mul(0x9e37_79b9) & 0xff_ffff,
                    i % 9973
                )?;
                if buf.len() > (1 << 20) - 256 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
            w.write_all(&buf)?;
            w.finish()?;
        }
        admin.batch_execute(&format!("VACUUM ANALYZE \"{big}\""))?;
        let copy_time = t.elapsed();
        let (avg_key, avg_target): (f64, f64) = {
            let r = admin.query_one(
                &format!(
                    "SELECT avg(octet_length(key))::float8, avg(octet_length(target))::float8 FROM \"{big}\""
                ),
                &[],
            )?;
            (r.get(0), r.get(1))
        };
        let table_size: String = admin
            .query_one(
                &format!("SELECT pg_size_pretty(pg_total_relation_size('\"{big}\"'))"),
                &[],
            )?
            .get(0);

        let load_before = loadavg();
        let table = LinkTable::new();
        let rss_before = status_kb("VmRSS:");
        // The load connection's server process, when the server runs on this machine.
        let server_pid = |admin: &mut Client| -> Option<String> {
            let r = admin
                .query_opt(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_load_big-load'",
                    &[],
                )
                .ok()??;
            let pid: i32 = r.get(0);
            Some(pid.to_string())
        };
        let can_reset = reset_peak();
        let mut runs = Vec::new();
        for run in 0..3 {
            if run > 0 {
                reset_peak();
            }
            let spid = server_pid(&mut admin);
            let server0 = spid.as_deref().and_then(cpu_secs);
            let cpu0 = cpu_secs("self");
            let t0 = Instant::now();
            let set = source.load()?;
            let loaded = t0.elapsed();
            let cpu1 = cpu_secs("self");
            let server1 = server_pid(&mut admin).as_deref().and_then(cpu_secs);
            let links = set.len();
            let t1 = Instant::now();
            table.reload(set)?;
            let swapped = t1.elapsed();
            let cpu2 = cpu_secs("self");
            let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{:.2} s", b - a),
                _ => "n/a".to_string(),
            };
            runs.push(Run {
                before: if run == 0 {
                    "empty".to_string()
                } else {
                    format!("{links} links")
                },
                loaded,
                swapped,
                total: t0.elapsed(),
                cpu_load: diff(cpu0, cpu1),
                cpu_reload: diff(cpu1, cpu2),
                // The first load opens the connection: no server figure for it.
                cpu_server: if server0.is_some() {
                    diff(server0, server1)
                } else {
                    "n/a".into()
                },
                hwm: status_kb("VmHWM:"),
                rss: status_kb("VmRSS:"),
            });
        }
        assert_eq!(table.len(), n);
        drop(table);
        let load_after_a = loadavg();

        // ---- (b) propagation --------------------------------------------------------------
        let small_source = PostgresSource::new(&conninfo)?.table(&small)?;
        small_source.install_schema(&mut admin)?;
        admin.batch_execute(&format!(
            "INSERT INTO \"{small}\" (key, target) SELECT '/go/s' || i, 'https://s.example/' || i \
             FROM generate_series(1, 100) i"
        ))?;
        let instances = 8;
        let mut tables = Vec::new();
        let mut reloaders = Vec::new();
        for _ in 0..instances {
            let t = LinkTable::new();
            let r = Reloader::builder(t.clone(), PostgresSource::new(&conninfo)?.table(&small)?)
                .resync_every(Duration::from_secs(3600))
                .spawn()?;
            tables.push(t);
            reloaders.push(r);
        }
        let ready = Instant::now();
        while tables.iter().any(|t| t.len() != 100) {
            assert!(
                ready.elapsed() < Duration::from_secs(30),
                "instances did not load"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let update = admin.prepare(&format!(
            "UPDATE \"{small}\" SET target = $1 WHERE key = '/go/s1'"
        ))?;
        let mut lat = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let want = format!("https://s.example/round-{round}");
            let t0 = Instant::now();
            admin.execute(&update, &[&want])?;
            let mut pending: Vec<&LinkTable> = tables.iter().collect();
            while !pending.is_empty() {
                pending.retain(|t| t.resolve("/go/s1").location().as_bytes() != want.as_bytes());
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "round {round} stuck"
                );
                std::thread::yield_now();
            }
            lat.push(t0.elapsed());
            // Let the reloaders go idle before the next round.
            std::thread::sleep(Duration::from_millis(20));
        }
        let failures: u64 = reloaders.iter().map(|r| r.stats().reload_failures).sum();
        drop(reloaders);
        lat.sort();

        // ---- report -----------------------------------------------------------------------
        println!(
            "PostgreSQL {version}; {n} links (avg key {avg_key:.1} B, avg target {avg_target:.1} B), table + index {table_size}"
        );
        println!("COPY + VACUUM ANALYZE: {:.2} s", copy_time.as_secs_f64());
        println!();
        println!("(a) full load: PostgresSource::load + LinkTable::reload");
        println!(
            "RSS before the first load: {}{}",
            mib(rss_before),
            if can_reset {
                ""
            } else {
                " (VmHWM could not be reset: peaks are cumulative)"
            }
        );
        println!();
        println!(
            "| run | table before | load (SELECT + rows → Links) | reload (build + swap) | **total** | CPU: load (client) / server / reload | peak RSS (VmHWM) | RSS after |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for (i, r) in runs.iter().enumerate() {
            println!(
                "| {} | {} | {:.2} s | {:.2} s | **{:.2} s** | {} / {} / {} | {} | {} |",
                i + 1,
                r.before,
                r.loaded.as_secs_f64(),
                r.swapped.as_secs_f64(),
                r.total.as_secs_f64(),
                r.cpu_load,
                r.cpu_server,
                r.cpu_reload,
                mib(r.hwm),
                mib(r.rss)
            );
        }
        println!("load average during (a): {load_before} before, {load_after_a} after");
        println!();
        println!(
            "(b) propagation: {instances} tables × (Reloader + PostgresSource), 100 links, {rounds} rounds of one UPDATE"
        );
        println!(
            "p50 {} | p95 {} | p99 {} | max {} | min {} | reload failures {failures} | load average after: {}",
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.95)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap()),
            ms(lat[0]),
            loadavg()
        );
        Ok(())
    }
}
