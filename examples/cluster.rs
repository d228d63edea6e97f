//! Many instances, one Redis: how fast a link change reaches every instance, and what a full
//! load of a big hash costs.
//!
//! Starts `--instances` in-process "instances" (each its own `LinkTable` + `Reloader` with a
//! `RedisSource`, serving HTTP on its own 127.0.0.1 port with axum), all on one Redis hash.
//! Each of `--rounds` rounds changes one link through `RedisLinkStore`, publishes, and polls
//! every instance over HTTP until it redirects to the new target. Then it writes `--big` links
//! into a second hash and times a full load (HSCAN + parse) and the swap into a table, with the
//! process's peak RSS. Both hashes are deleted at the end.
//!
//! ```sh
//! cargo run --release --features redis --example cluster
//! cargo run --release --features redis --example cluster -- --redis redis://10.0.0.5:6379/ \
//!     --instances 8 --rounds 50 --big 1000000     # --big 0 skips the big load
//! ```

#[cfg(feature = "redis")]
fn main() -> std::process::ExitCode {
    real::main()
}

#[cfg(not(feature = "redis"))]
fn main() {
    eprintln!("build with --features redis");
}

#[cfg(feature = "redis")]
mod real {
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use axum::Router;
    use axum::body::Body;
    use axum::http::Uri;
    use clap::Parser;
    use crossbeam_channel::{Receiver, unbounded};
    use linkgate::{
        Link, LinkSource, LinkTable, RedisLinkStore, RedisLinksConfig, ReloadOutcome, Reloader,
    };
    use tokio::sync::oneshot;

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    /// Propagation of link changes through Redis to many instances, and a big full load.
    #[derive(Debug, Parser)]
    struct Args {
        /// Redis URL.
        #[arg(long, default_value = "redis://127.0.0.1:6379/")]
        redis: String,
        /// In-process instances, each with its own table, reloader and HTTP port.
        #[arg(long, default_value_t = 8)]
        instances: usize,
        /// Change-and-publish rounds.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
        /// Links in the shared hash during the rounds (besides the probe link).
        #[arg(long, default_value_t = 1000)]
        links: usize,
        /// Links for the full-load measurement (0 skips it).
        #[arg(long, default_value_t = 1_000_000)]
        big: usize,
        /// HSCAN COUNT of the sources.
        #[arg(long, default_value_t = 1000)]
        scan_count: usize,
        /// Page-parsing helper threads of the big load (default: cores, at most 4).
        #[arg(long)]
        parse_threads: Option<usize>,
    }

    const PROBE: &str = "/go/probe";

    /// Deletes the run's hashes however we leave.
    struct Cleanup(Vec<Arc<RedisLinkStore>>);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for s in &self.0 {
                if let Err(e) = s.destroy() {
                    eprintln!("cleanup of {}: {e}", s.config().hash());
                }
            }
        }
    }

    struct Instance {
        base: String,
        table: LinkTable,
        reloader: Reloader,
        swaps: Receiver<Instant>,
        stop: Option<oneshot::Sender<()>>,
    }

    pub(super) fn main() -> ExitCode {
        let args = Args::parse();
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("tokio runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match rt.block_on(run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn run_id() -> String {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("linkgate-cluster:{}:{nanos}", std::process::id())
    }

    async fn serve(table: LinkTable) -> Result<(String, oneshot::Sender<()>), BoxError> {
        let app = Router::new().fallback(move |uri: Uri| {
            let table = table.clone();
            async move { table.resolve_uri(&uri).into_response_with(Body::empty()) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok((base, tx))
    }

    fn probe(target: &str) -> Result<Link, BoxError> {
        Ok(Link::new(PROBE, target)?)
    }

    /// Polls `base + PROBE` until it redirects to `target`; returns when it first did.
    async fn until_serving(
        client: &reqwest::Client,
        base: &str,
        target: &str,
        give_up: Duration,
    ) -> Result<Instant, BoxError> {
        let url = format!("{base}{PROBE}");
        let deadline = Instant::now() + give_up;
        loop {
            let r = client.get(&url).send().await?;
            let now = Instant::now();
            if r.headers().get("location").and_then(|v| v.to_str().ok()) == Some(target) {
                return Ok(now);
            }
            if now > deadline {
                return Err(format!("{base} still does not serve {target}").into());
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    fn pct(sorted: &[f64], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[i.clamp(1, sorted.len()) - 1]
    }

    fn summary(name: &str, v: &mut [f64]) {
        v.sort_by(f64::total_cmp);
        println!(
            "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
            v.len(),
            pct(v, 50.0),
            pct(v, 99.0),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory() -> (f64, f64) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU seconds (user + system, all threads) of this process so far.
    fn client_cpu() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the `(comm)`: state is the 1st, utime the 12th, stime the 13th; in ticks
        // of 1/100 s (USER_HZ on Linux).
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
    }

    /// CPU seconds (user + system) of the Redis server so far (`INFO cpu`).
    fn redis_cpu(con: &mut redis::Connection) -> f64 {
        let info: String = redis::cmd("INFO").arg("cpu").query(con).unwrap_or_default();
        info.lines()
            .filter(|l| l.starts_with("used_cpu_user:") || l.starts_with("used_cpu_sys:"))
            .filter_map(|l| {
                l.split_once(':')
                    .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            })
            .sum()
    }

    /// One full load (`RedisSource::load`) and swap (`LinkTable::reload`), timed, with the CPU
    /// it took and the peak RSS.
    fn full_load(
        label: &str,
        source: &mut linkgate::RedisSource,
        table: &LinkTable,
        info: &mut redis::Connection,
    ) -> Result<(), BoxError> {
        let peak_ok = reset_peak();
        let (rss0, _) = memory();
        let (c0, r0) = (client_cpu(), redis_cpu(info));
        let t = Instant::now();
        let set = source.load()?;
        let load = t.elapsed();
        let (c1, r1) = (client_cpu(), redis_cpu(info));
        let (rss_set, _) = memory();
        let t2 = Instant::now();
        let report = table.reload(set)?;
        let swap = t2.elapsed();
        let total = t.elapsed();
        let c2 = client_cpu();
        let (rss1, hwm1) = memory();
        println!(
            "big: {label}: {} links ({} added, {} changed): HSCAN+parse {:.2} s, build+swap {:.2} s, \
             total {:.2} s",
            report.links,
            report.added,
            report.changed,
            load.as_secs_f64(),
            swap.as_secs_f64(),
            total.as_secs_f64()
        );
        println!(
            "big:   CPU: load {:.2} s (this process) + {:.2} s (redis-server), build+swap {:.2} s",
            c1 - c0,
            r1 - r0,
            c2 - c1
        );
        println!(
            "big:   RSS before {rss0:.0} MiB, with the loaded set {rss_set:.0} MiB, after the swap \
             {rss1:.0} MiB, peak {hwm1:.0} MiB{}",
            if peak_ok {
                ""
            } else {
                " (peak since start: /proc/self/clear_refs not writable)"
            }
        );
        Ok(())
    }

    /// Resets the peak RSS (VmHWM) to the current RSS, so the next reading is this phase's peak.
    fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    async fn run(args: Args) -> Result<(), BoxError> {
        if args.instances == 0 {
            return Err("--instances must be at least 1".into());
        }
        let id = run_id();
        let cfg = RedisLinksConfig::new(&id)
            .url(&args.redis)
            .scan_count(args.scan_count);
        let store = Arc::new(cfg.store()?);
        let mut cleanup = Cleanup(vec![store.clone()]);
        println!(
            "redis {}  hash {id}  instances {}  rounds {}  links {}  big {}  HSCAN COUNT {}",
            args.redis, args.instances, args.rounds, args.links, args.big, args.scan_count
        );

        let mut links: Vec<Link> = (0..args.links)
            .map(|i| Link::new(format!("/go/l{i}"), format!("https://shop.example/p/{i}")))
            .collect::<Result<_, _>>()?;
        links.push(probe("https://start.example/")?);
        store.put_many(&links)?;
        store.publish()?;
        drop(links);

        // The instances.
        let mut instances = Vec::new();
        for _ in 0..args.instances {
            let table = LinkTable::new();
            let (tx, swaps) = unbounded();
            let reloader = Reloader::builder(table.clone(), cfg.source()?)
                .resync_every(Duration::from_secs(30))
                .on_reload(move |o| match o {
                    ReloadOutcome::Reloaded(_) => {
                        let _ = tx.send(Instant::now());
                    }
                    ReloadOutcome::Failed(e) => eprintln!("reload failed: {e}"),
                    _ => {}
                })
                .spawn()?;
            let (base, stop) = serve(table.clone()).await?;
            instances.push(Instance {
                base,
                table,
                reloader,
                swaps,
                stop: Some(stop),
            });
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(4)
            .build()?;
        for i in &instances {
            until_serving(
                &client,
                &i.base,
                "https://start.example/",
                Duration::from_secs(30),
            )
            .await?;
        }
        println!(
            "{} instances serving {} links each: {}",
            instances.len(),
            instances[0].table.len(),
            instances
                .iter()
                .map(|i| i.base.trim_start_matches("http://"))
                .collect::<Vec<_>>()
                .join(" ")
        );

        // Rounds: change, publish, poll every instance.
        let mut all = Vec::new(); // until the last instance serves it, per round
        let mut each = Vec::new(); // per instance and round, over HTTP
        let mut swapped = Vec::new(); // per instance and round, when the table swapped
        for round in 0..args.rounds {
            let target = format!("https://round-{round}.example/");
            for i in &instances {
                while i.swaps.try_recv().is_ok() {}
            }
            let t0 = Instant::now();
            store.put(&probe(&target)?)?;
            store.publish()?;
            let polls = instances.iter().map(|i| {
                let (client, base, target) = (client.clone(), i.base.clone(), target.clone());
                tokio::spawn(async move {
                    until_serving(&client, &base, &target, Duration::from_secs(30)).await
                })
            });
            let mut line = Vec::new();
            for h in polls.collect::<Vec<_>>() {
                let t = ms(h.await??.duration_since(t0));
                each.push(t);
                line.push(format!("{t:.1}"));
            }
            for i in &instances {
                if let Some(t) = i.swaps.try_iter().find(|&t| t >= t0) {
                    swapped.push(ms(t.duration_since(t0)));
                }
            }
            let worst = line
                .iter()
                .filter_map(|s| s.parse::<f64>().ok())
                .fold(0.0, f64::max);
            all.push(worst);
            println!(
                "round {round:>3}: all in {worst:>6.1} ms  [{}]",
                line.join(" ")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!();
        summary(
            &format!("propagation to all {} instances (HTTP)", instances.len()),
            &mut all,
        );
        summary("propagation per instance (HTTP)", &mut each);
        summary("publish to table swap per instance", &mut swapped);
        let failures: u64 = instances
            .iter()
            .map(|i| i.reloader.stats().reload_failures)
            .sum();
        println!("reload failures: {failures}");

        for mut i in instances {
            if let Some(s) = i.stop.take() {
                let _ = s.send(());
            }
            drop(i.reloader);
        }

        if args.big > 0 {
            let mut big_cfg = RedisLinksConfig::new(format!("{id}:big"))
                .url(&args.redis)
                .scan_count(args.scan_count);
            if let Some(n) = args.parse_threads {
                big_cfg = big_cfg.parse_threads(n);
            }
            let big_store = Arc::new(big_cfg.store()?);
            cleanup.0.push(big_store.clone());
            big(&args, &big_cfg, &big_store)?;
        }
        drop(cleanup);
        println!("\ndeleted the run's hashes");
        Ok(())
    }

    fn big_link(i: usize, generation: u32) -> Result<Link, BoxError> {
        Ok(Link::new(
            format!("/go/b{i}"),
            format!(
                "https://shop.example/p/{i}?ref=aff_{:02}&g={generation}",
                i % 100
            ),
        )?)
    }

    fn big(args: &Args, cfg: &RedisLinksConfig, store: &RedisLinkStore) -> Result<(), BoxError> {
        let n = args.big;
        println!("\nbig: writing {n} links into hash {}", cfg.hash());
        let t = Instant::now();
        const CHUNK: usize = 10_000;
        for start in (0..n).step_by(CHUNK) {
            let chunk = (start..(start + CHUNK).min(n))
                .map(|i| big_link(i, 1))
                .collect::<Result<Vec<_>, _>>()?;
            store.put_many(&chunk)?;
        }
        println!(
            "big: written in {:.2} s (put_many, {CHUNK} per transaction); HLEN {}",
            t.elapsed().as_secs_f64(),
            store.len()?
        );

        let table = LinkTable::new();
        let mut source = cfg.source()?;
        let mut info = redis::Client::open(args.redis.as_str())?
            .get_connection_with_timeout(Duration::from_secs(2))?;
        full_load("first load, empty table", &mut source, &table, &mut info)?;

        // A second full load that swaps 1M for 1M (1 % changed): old + new snapshot at once.
        let changed = (n / 100).max(1);
        let upd = (0..changed)
            .map(|i| big_link(i * (n / changed), 2))
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in upd.chunks(CHUNK) {
            store.put_many(chunk)?;
        }
        full_load("reload over the full table", &mut source, &table, &mut info)?;
        drop(table);
        let (rss_end, _) = memory();
        println!("big: RSS after dropping the table {rss_end:.0} MiB");
        Ok(())
    }
}
