//! Click sinks into RabbitMQ and webhooks (see BENCHMARKS.md, "Click sinks: RabbitMQ and
//! webhooks").
//!
//! Run (RabbitMQ at `LINKGATE_AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`):
//! `cargo bench --features amqp,webhook --bench sinks_amqp_webhook`
//! Environment: `RUNS` (default 3), `CLICKS` per throughput run (default 200 000), `RATE` of the
//! request-path runs in clicks/s (default 20 000), `SECONDS` per request-path run (default 3).
//!
//! Two sections, each measuring the no-op `()` sink in the same run as the baseline:
//! - **throughput**: one thread records `CLICKS` prebuilt clicks (cloned from a pool outside the
//!   timed region) with `FullPolicy::Block`, so the producer waits for the sink; the figure is
//!   `CLICKS / (time from the first record to the end of guard.shutdown)`, i.e. clicks delivered
//!   per second, end to end, at batch 1 024. AMQP: persistent messages, publisher confirms, a
//!   durable exchange and a durable bound queue (deleted after each run). Webhook: a local hyper
//!   receiver (`tests/support/receiver.rs`) that verifies each batch's HMAC and answers 200.
//! - **request path**: one thread records at a paced `RATE` for `SECONDS` while the sink drains
//!   (default `FullPolicy::DropNewest`); each `record` call is timed alone with `Instant` (the
//!   click clone outside), medians and p99 printed with the timer's own cost.
//!
//! AMQP is measured twice: into a default (classic version 1) queue, and into a queue that a
//! `rabbitmqctl set_policy` puts on classic queue version 2 (`queue-version: 2`, RabbitMQ ≥
//! 3.10; the policy is scoped to the bench's queue names and cleared at the end).
//!
//! And a third time with transient messages (`AmqpSink::persistent(false)`, CQv1).
//!
//! `PROBE=1` instead splits an AMQP batch's time into the publish phase and the confirm phase
//! with lapin alone (no pipeline), for persistent/transient messages and queue versions 1/2.
//!
//! `PROBE=depth` asks whether the broker could go faster with more work in flight than the
//! sink's one batch: lapin alone publishes 40 batches of 1 024 persistent messages with
//! confirms (the sink's JSON bodies, `mandatory`), keeping 1, 2 or 4 batches unconfirmed at a
//! time, into 1, 2 or 4 durable queues (round-robin routing keys on one direct exchange,
//! one channel per queue), and prints messages/s for each setting, 2 rounds.

#[path = "../tests/support/receiver.rs"]
mod receiver;

#[path = "common/click.rs"]
mod click;
use click::{REFERER, UA};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use linkgate::{
    AmqpSink, Click, ClickId, ClickIp, ClickRecorder, ClickSink, FullPolicy, Stats, WebhookSink,
};

const SECRET: &[u8] = b"bench secret, 32 bytes or more..";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn amqp_url() -> String {
    std::env::var("LINKGATE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Realistic clicks (≈ 520 bytes of JSON each), distinct ids.
fn pool(n: usize) -> Vec<Click> {
    (0..n)
        .map(|i| {
            let mut c = Click::new(
                linkgate::system_now_ms(),
                ClickId::generate(),
                format!("/go/aff-{:07}-kqz", i % 10_000),
                HeaderValue::from_static(
                    "https://store.example.com/p/123456?ref=aff_01&utm_source=blog",
                ),
                302,
            );
            c.ip = Some(ClickIp::Addr("203.0.113.0".parse().unwrap()));
            c.user_agent = Some(HeaderValue::from_static(UA));
            c.referer = Some(HeaderValue::from_static(REFERER));
            c.country = Some(HeaderValue::from_static("DE"));
            c
        })
        .collect()
}

/// Unique exchange + queue names, and their deletion.
struct AmqpNames {
    exchange: String,
    queue: String,
}

impl AmqpNames {
    /// `v2`: a queue name matched by the `linkgate-bench-cqv2` policy (classic queue version 2).
    fn new(run: usize, v2: bool) -> AmqpNames {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let kind = if v2 { "cqv2" } else { "q" };
        AmqpNames {
            exchange: format!("linkgate-bench.ex.{run}.{nanos}"),
            queue: format!("linkgate-bench.{kind}.{run}.{nanos}"),
        }
    }

    fn sink(&self) -> AmqpSink {
        AmqpSink::new(amqp_url())
            .unwrap()
            .exchange(&self.exchange)
            .declare_exchange("direct")
            .routing_key("click")
            .bind_queue(&self.queue)
    }
}

impl Drop for AmqpNames {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Ok(conn) = Connection::connect(&amqp_url(), ConnectionProperties::default()).await
            else {
                return;
            };
            if let Ok(ch) = conn.create_channel().await {
                let _ = ch
                    .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
                let _ = ch
                    .exchange_delete(
                        self.exchange.as_str().into(),
                        ExchangeDeleteOptions::default(),
                    )
                    .await;
            }
            let _ = conn.close(200, "bench done".into()).await;
        });
    }
}

/// The 1-minute load average (the machine is shared: a figure's context).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_default()
}

/// A RabbitMQ policy putting the bench's `linkgate-bench.cqv2.*` queues on classic queue
/// version 2 (RabbitMQ ≥ 3.10), set with `rabbitmqctl` and cleared on drop.
struct Cqv2Policy;

impl Cqv2Policy {
    fn set() -> Cqv2Policy {
        let ok = std::process::Command::new("rabbitmqctl")
            .args([
                "set_policy",
                "--apply-to",
                "queues",
                "linkgate-bench-cqv2",
                "^linkgate-bench\\.cqv2\\.",
                r#"{"queue-version":2}"#,
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            println!("(rabbitmqctl set_policy failed: the CQv2 figures are for a version 1 queue)");
        }
        Cqv2Policy
    }
}

impl Drop for Cqv2Policy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["clear_policy", "linkgate-bench-cqv2"])
            .output();
    }
}

/// Records `clicks` (clones) with `Block`; returns delivered clicks/s and the stats.
fn throughput<S: ClickSink>(sink: S, clicks: &[Click]) -> (f64, Stats) {
    let (recorder, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .capacity(65_536)
        .full_policy(FullPolicy::Block {
            timeout: Duration::from_secs(60),
        })
        .spawn()
        .unwrap();
    let start = Instant::now();
    for c in clicks {
        recorder.record(c.clone());
    }
    let stats = guard.shutdown(Duration::from_secs(120));
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(stats.delivered, clicks.len() as u64, "{stats:?}");
    (stats.delivered as f64 / secs, stats)
}

/// Paced recording; returns (median ns, p99 ns, stats).
fn request_path<S: ClickSink>(
    sink: S,
    clicks: &[Click],
    rate: u64,
    secs: u64,
) -> (u64, u64, Stats) {
    let (recorder, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .spawn()
        .unwrap();
    let total = (rate * secs) as usize;
    let mut times = Vec::with_capacity(total);
    let start = Instant::now();
    for i in 0..total {
        // Pace in bursts of 100 clicks.
        if i % 100 == 0 {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let c = clicks[i % clicks.len()].clone();
        let t = Instant::now();
        black_box(recorder.record(c));
        times.push(t.elapsed().as_nanos() as u64);
    }
    let stats = guard.shutdown(Duration::from_secs(60));
    times.sort_unstable();
    (times[times.len() / 2], times[times.len() * 99 / 100], stats)
}

fn timer_cost() -> u64 {
    let mut v: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn summary(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "median {:.0}, min {:.0}, max {:.0}",
        s[s.len() / 2],
        s[0],
        s[s.len() - 1]
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is parsed.
    match std::env::var("PROBE").as_deref() {
        Ok("depth") => return probe_depth(),
        Ok(_) => return probe(),
        Err(_) => {}
    }
    let runs = env("RUNS", 3) as usize;
    let n = env("CLICKS", 200_000) as usize;
    let rate = env("RATE", 20_000);
    let secs = env("SECONDS", 3);
    let clicks = pool(n);
    let json_bytes: usize = clicks.iter().map(|c| c.to_json().len()).sum::<usize>() / n;
    println!(
        "# throughput: {n} clicks per run, batch 1024, {runs} runs, ~{json_bytes} B of JSON per click"
    );
    let receiver = receiver::Receiver::start(SECRET, false, |_| (200, None));
    let _policy = Cqv2Policy::set();
    let (mut base, mut amqp, mut amqp2, mut amqpt, mut hook) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let (b, _) = throughput((), &clicks);
        let names = AmqpNames::new(run, false);
        let (a, sa) = throughput(names.sink(), &clicks);
        drop(names);
        let names = AmqpNames::new(run, true);
        let (a2, sa2) = throughput(names.sink(), &clicks);
        drop(names);
        let names = AmqpNames::new(run, false);
        let (at, sat) = throughput(names.sink().persistent(false), &clicks);
        drop(names);
        let (w, sw) = throughput(WebhookSink::new(receiver.url(), SECRET).unwrap(), &clicks);
        println!(
            "run {run}: () {b:.0}/s | amqp {a:.0}/s ({} batches, {} retries) | amqp CQv2 {a2:.0}/s ({} batches, {} retries) | amqp transient {at:.0}/s ({} batches, {} retries) | webhook {w:.0}/s ({} batches, {} retries) | load {}",
            sa.batches,
            sa.retries,
            sa2.batches,
            sa2.retries,
            sat.batches,
            sat.retries,
            sw.batches,
            sw.retries,
            loadavg()
        );
        base.push(b);
        amqp.push(a);
        amqp2.push(a2);
        amqpt.push(at);
        hook.push(w);
    }
    let ratio =
        |v: &[f64]| -> Vec<f64> { v.iter().zip(&base).map(|(x, b)| x / b * 1000.0).collect() };
    println!("()        clicks/s: {}", summary(&base));
    println!(
        "amqp      clicks/s: {}  (per mille of (): {})",
        summary(&amqp),
        summary(&ratio(&amqp))
    );
    println!(
        "amqp CQv2 clicks/s: {}  (per mille of (): {})",
        summary(&amqp2),
        summary(&ratio(&amqp2))
    );
    println!(
        "amqp transient clicks/s: {}  (per mille of (): {})",
        summary(&amqpt),
        summary(&ratio(&amqpt))
    );
    println!(
        "webhook   clicks/s: {}  (per mille of (): {})",
        summary(&hook),
        summary(&ratio(&hook))
    );
    println!(
        "webhook receiver: {} requests, {} bad signatures, {} clicks accepted",
        receiver
            .state
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        receiver
            .state
            .bad_signatures
            .load(std::sync::atomic::Ordering::SeqCst),
        receiver
            .state
            .accepted_clicks
            .load(std::sync::atomic::Ordering::SeqCst),
    );

    println!(
        "\n# request path: record() at {rate} clicks/s for {secs} s per run, timer cost {} ns",
        timer_cost()
    );
    let pool_small = &clicks[..50_000.min(n)];
    for run in 0..runs {
        let (bm, b99, bs) = request_path((), pool_small, rate, secs);
        let names = AmqpNames::new(100 + run, false);
        let (am, a99, sa) = request_path(names.sink(), pool_small, rate, secs);
        drop(names);
        let (wm, w99, sw) = request_path(
            WebhookSink::new(receiver.url(), SECRET).unwrap(),
            pool_small,
            rate,
            secs,
        );
        println!(
            "run {run}: () median {bm} ns p99 {b99} ns (dropped {}) | amqp median {am} ns p99 {a99} ns (dropped {}, delivered {}) | webhook median {wm} ns p99 {w99} ns (dropped {}, delivered {})",
            bs.dropped, sa.dropped, sa.delivered, sw.dropped, sw.delivered
        );
    }
}

/// PROBE=1: where does an AMQP batch's time go? (publish phase vs confirm phase, variants)
fn probe() {
    use lapin::BasicProperties;
    use lapin::options::*;
    use lapin::types::FieldTable;
    let clicks = pool(1024);
    let bodies: Vec<Vec<u8>> = clicks.iter().map(|c| c.to_json()).collect();
    let sink_alone = |persistent: bool| {
        let names = AmqpNames::new(900, false);
        let mut sink = names.sink().persistent(persistent);
        sink.write(&clicks).unwrap();
        let t = Instant::now();
        for _ in 0..40 {
            sink.write(&clicks).unwrap();
        }
        println!(
            "AmqpSink::write alone, persistent {persistent}, CQv1: {:.0} msgs/s (load {})",
            40.0 * 1024.0 / t.elapsed().as_secs_f64(),
            loadavg()
        );
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // name, persistent, confirms, queue v2, channels, via a direct exchange + binding, with the
    // sink's properties (content_type, message_id, timestamp) and mandatory
    let variants = [
        (
            "persistent, confirms, CQv1",
            true,
            true,
            false,
            1,
            false,
            false,
        ),
        (
            "persistent, confirms, CQv1, exchange+props+mandatory",
            true,
            true,
            false,
            1,
            true,
            true,
        ),
        (
            "persistent, confirms, CQv2",
            true,
            true,
            true,
            1,
            false,
            false,
        ),
        (
            "persistent, confirms, CQv2, 4 channels",
            true,
            true,
            true,
            4,
            false,
            false,
        ),
        (
            "transient, confirms, CQv1",
            false,
            true,
            false,
            1,
            false,
            false,
        ),
        (
            "transient, confirms, CQv1, exchange",
            false,
            true,
            false,
            1,
            true,
            false,
        ),
        (
            "transient, confirms, CQv1, props+mandatory",
            false,
            true,
            false,
            1,
            false,
            true,
        ),
        (
            "transient, confirms, CQv1, exchange+props+mandatory",
            false,
            true,
            false,
            1,
            true,
            true,
        ),
        (
            "transient, confirms, CQv2",
            false,
            true,
            true,
            1,
            false,
            false,
        ),
        (
            "persistent, no confirms, CQv1",
            true,
            false,
            false,
            1,
            false,
            false,
        ),
    ];
    for round in 0..2 {
        println!("-- round {round}");
        sink_alone(true);
        sink_alone(false);
        for (name, persistent, confirm, v2, channels, routed, props) in variants {
            rt.block_on(async {
                let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
                    .await
                    .unwrap();
                let mut chs = Vec::new();
                for _ in 0..channels {
                    let ch = conn.create_channel().await.unwrap();
                    if confirm {
                        ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
                    }
                    chs.push(ch);
                }
                let q = format!("linkgate-probe.{}", std::process::id());
                let ex = format!("linkgate-probe-ex.{}", std::process::id());
                let mut args = FieldTable::default();
                if v2 {
                    args.insert("x-queue-version".into(), lapin::types::AMQPValue::LongInt(2));
                }
                let opts = QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                chs[0].queue_declare(q.as_str().into(), opts, args).await.unwrap();
                let (exchange, key) = if routed {
                    let opts = ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    };
                    let kind = lapin::ExchangeKind::Direct;
                    chs[0]
                        .exchange_declare(ex.as_str().into(), kind, opts, FieldTable::default())
                        .await
                        .unwrap();
                    chs[0]
                        .queue_bind(
                            q.as_str().into(),
                            ex.as_str().into(),
                            "click".into(),
                            QueueBindOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .unwrap();
                    (ex.clone(), "click".to_string())
                } else {
                    (String::new(), q.clone())
                };
                let (mut tp, mut tc) = (Duration::ZERO, Duration::ZERO);
                let batches = 40;
                for _ in 0..batches {
                    let t0 = Instant::now();
                    let pubs = bodies.iter().zip(&clicks).enumerate().map(|(i, (b, c))| {
                        let mut p = BasicProperties::default()
                            .with_delivery_mode(if persistent { 2 } else { 1 });
                        if props {
                            let id = c.click_id.encode();
                            p = p
                                .with_content_type("application/json".into())
                                .with_message_id(std::str::from_utf8(&id).unwrap().into())
                                .with_timestamp((c.ts / 1000) as u64);
                        }
                        chs[i % channels].basic_publish(
                            exchange.as_str().into(),
                            key.as_str().into(),
                            BasicPublishOptions {
                                mandatory: props,
                                immediate: false,
                            },
                            b,
                            p,
                        )
                    });
                    let confirms = futures_util::future::join_all(pubs).await;
                    let t1 = Instant::now();
                    for c in confirms {
                        let _ = c.unwrap().await.unwrap();
                    }
                    tp += t1 - t0;
                    tc += t1.elapsed();
                }
                let n = (batches * 1024) as f64;
                println!(
                    "{name}: {:.0} msgs/s; per batch of 1024: publish {:.1} ms, confirms {:.1} ms (load {})",
                    n / (tp + tc).as_secs_f64(),
                    tp.as_secs_f64() * 1000.0 / batches as f64,
                    tc.as_secs_f64() * 1000.0 / batches as f64,
                    loadavg()
                );
                let _ = chs[0]
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
                if routed {
                    let _ = chs[0]
                        .exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
                        .await;
                }
                conn.close(200, "".into()).await.unwrap();
            });
        }
    }
}

/// PROBE=depth: does the broker confirm faster with more batches in flight, or more queues?
fn probe_depth() {
    use lapin::options::*;
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Channel, ExchangeKind, PublisherConfirm};
    use std::collections::VecDeque;

    async fn publish(
        chs: &[Channel],
        ex: &str,
        queues: usize,
        bodies: &[Vec<u8>],
    ) -> Vec<PublisherConfirm> {
        let pubs = bodies.iter().enumerate().map(|(j, b)| {
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into());
            let opts = BasicPublishOptions {
                mandatory: true,
                immediate: false,
            };
            let key = format!("click.{}", j % queues);
            chs[j % chs.len()].basic_publish(ex.into(), key.into(), opts, b, props)
        });
        futures_util::future::join_all(pubs)
            .await
            .into_iter()
            .map(|c| c.unwrap())
            .collect()
    }

    let bodies: Vec<Vec<u8>> = pool(1024).iter().map(|c| c.to_json()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let batches = 40;
    for round in 0..2 {
        for (queues, depth) in [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (4, 1), (4, 2)] {
            rt.block_on(async {
                let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
                    .await
                    .unwrap();
                let mut chs = Vec::new();
                for _ in 0..queues {
                    let ch = conn.create_channel().await.unwrap();
                    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
                    chs.push(ch);
                }
                let ex = format!("linkgate-depth-ex.{}", std::process::id());
                let durable = ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                chs[0]
                    .exchange_declare(ex.as_str().into(), ExchangeKind::Direct, durable, FieldTable::default())
                    .await
                    .unwrap();
                let mut names = Vec::new();
                for i in 0..queues {
                    let q = format!("linkgate-depth.{}.{i}", std::process::id());
                    let durable = QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    };
                    chs[0].queue_declare(q.as_str().into(), durable, FieldTable::default()).await.unwrap();
                    chs[0]
                        .queue_bind(
                            q.as_str().into(),
                            ex.as_str().into(),
                            format!("click.{i}").into(),
                            QueueBindOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .unwrap();
                    names.push(q);
                }
                let t = Instant::now();
                let mut in_flight: VecDeque<Vec<PublisherConfirm>> = VecDeque::new();
                for _ in 0..batches {
                    if in_flight.len() == depth {
                        for c in in_flight.pop_front().unwrap() {
                            assert!(c.await.unwrap().is_ack());
                        }
                    }
                    in_flight.push_back(publish(&chs, &ex, queues, &bodies).await);
                }
                while let Some(b) = in_flight.pop_front() {
                    for c in b {
                        assert!(c.await.unwrap().is_ack());
                    }
                }
                let rate = (batches * 1024) as f64 / t.elapsed().as_secs_f64();
                println!(
                    "round {round}: {queues} queue(s), {depth} batch(es) in flight: {rate:.0} msgs/s (load {})",
                    loadavg()
                );
                for q in &names {
                    let _ = chs[0].queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
                }
                let _ = chs[0].exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default()).await;
                conn.close(200, "".into()).await.unwrap();
            });
        }
    }
}
