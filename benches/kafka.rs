//! Kafka sink figures (see BENCHMARKS.md, "Kafka sink").
//!
//! Run: `cargo bench --features kafka --bench kafka`
//! (starts its own tansu broker, in-memory engine, on a free port; or set
//! `LINKGATE_KAFKA_BROKERS`; `LINKGATE_BENCH_RUNS` (default 3) and `LINKGATE_BENCH_CLICKS`
//! (default 300 000) change the sizes).
//!
//! Sections, each repeated `RUNS` times, every figure printed with the no-op baseline of the
//! same run:
//! - `throughput`: one thread records `CLICKS` realistic clicks (a prebuilt click cloned with a
//!   fresh id; `FullPolicy::Block`, so nothing is dropped and the sink sets the pace) into a
//!   pipeline with `max_batch` 1 024; clicks/s = clicks / (first `record` → `shutdown`
//!   returned, i.e. every click acknowledged; each producer has written one warm-up message
//!   before the clock starts, so connecting is not counted). Sinks: the no-op `()`, `KafkaSink` with its
//!   defaults, and two rdkafka-only baselines without linkgate (the same JSON payload, key and
//!   header): `rdkafka batch-wait` sends 1 024 messages and waits for their reports, like the
//!   sink; `rdkafka pipelined` sends everything back to back and waits once at the end (the
//!   ceiling of librdkafka + tansu here). CPU seconds of this process and of tansu are printed
//!   per run (`/proc/<pid>/stat`).
//! - `settings`: the Kafka sink per producer-setting variant (`linger.ms`, compression,
//!   idempotence off) and with the pipeline's `max_batch` at 8 192, each beside `()` and beside
//!   rdkafka pipelined with the same settings.
//! - `record_cost`: one thread records at a paced 50 000 clicks/s for 2 s, each `record` call
//!   timed with `Instant` (clone outside the timed region), while the drain writes to `()` or
//!   to Kafka: median and p99 ns per call.

#[path = "../tests/support/tansu.rs"]
mod tansu;

#[path = "common/click.rs"]
mod click;
use click::realistic_click;
use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use linkgate::{ClickId, ClickRecorder, ClickSink, FullPolicy, KafkaSink, Stats};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};

const PARTITIONS: i32 = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

struct Cpu {
    tansu: Option<u32>,
    start: (f64, f64),
}

impl Cpu {
    fn start(tansu: Option<u32>) -> Cpu {
        Cpu {
            tansu,
            start: (
                cpu_seconds(std::process::id()),
                tansu.map_or(f64::NAN, cpu_seconds),
            ),
        }
    }
    fn report(&self) -> String {
        let me = cpu_seconds(std::process::id()) - self.start.0;
        let t = self.tansu.map_or(f64::NAN, cpu_seconds) - self.start.1;
        format!("cpu: bench {me:.2} s, tansu {t:.2} s")
    }
}

struct Env {
    brokers: String,
    tansu_pid: Option<u32>,
    topic_n: u32,
}

impl Env {
    fn topic(&mut self, what: &str) -> String {
        self.topic_n += 1;
        let t = format!("bench-{what}-{}-{}", std::process::id(), self.topic_n);
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .expect("admin client");
        let new = NewTopic::new(&t, PARTITIONS, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let fut = admin.create_topics([&new], &opts);
        let r = futures_lite_block_on(fut).expect("create topic");
        assert!(r[0].is_ok(), "create topic: {:?}", r[0]);
        t
    }
}

/// A minimal executor for the admin future (rdkafka completes it from its own thread).
fn futures_lite_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct W(std::thread::Thread);
    impl Wake for W {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(W(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// Records `n` clicks as fast as the pipeline takes them; returns (clicks/s, final stats).
fn pump<S: ClickSink>(sink: S, n: usize) -> (f64, Stats) {
    pump_batch(sink, n, 1024)
}

fn pump_batch<S: ClickSink>(sink: S, n: usize, max_batch: usize) -> (f64, Stats) {
    let template = realistic_click(1_764_378_123_456);
    let (rec, guard) = ClickRecorder::builder(sink)
        .max_batch(max_batch)
        .capacity(1 << 16)
        .full_policy(FullPolicy::Block {
            timeout: Duration::from_secs(60),
        })
        .spawn()
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let mut c = template.clone();
        c.click_id = ClickId::from(i as u128 + 1);
        rec.record(c);
    }
    let stats = guard.shutdown(Duration::from_secs(120));
    let secs = start.elapsed().as_secs_f64();
    (stats.delivered as f64 / secs, stats)
}

fn kafka_sink(env: &mut Env, settings: &[(&str, &str)]) -> KafkaSink {
    let topic = env.topic("sink");
    let mut b = KafkaSink::builder(&env.brokers, topic);
    for (k, v) in settings {
        b = b.set(*k, *v);
    }
    let mut sink = b.build().unwrap();
    // Connected, producer id and metadata fetched before the clock starts: sustained rate only.
    sink.write(&[realistic_click(0)]).expect("warm-up write");
    sink
}

// ---- rdkafka alone ---------------------------------------------------------------------------

#[derive(Default)]
struct Acks {
    done: Mutex<(usize, usize)>,
    cv: Condvar,
}

struct AckContext(Arc<Acks>);
impl ClientContext for AckContext {}
impl ProducerContext for AckContext {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        let mut d = self.0.done.lock().unwrap();
        if r.is_ok() {
            d.0 += 1;
        } else {
            d.1 += 1;
        }
        self.0.cv.notify_all();
    }
}

impl Acks {
    fn wait_for(&self, n: usize) -> (usize, usize) {
        let mut d = self.done.lock().unwrap();
        while d.0 + d.1 < n {
            d = self.cv.wait(d).unwrap();
        }
        *d
    }
}

/// rdkafka with the sink's settings, no linkgate: the same payload, key and header per message.
/// `batch`: wait for all reports after every `batch` messages (`None`: only at the end).
fn rdkafka_alone(env: &mut Env, n: usize, batch: Option<usize>, settings: &[(&str, &str)]) -> f64 {
    let topic = env.topic("raw");
    let acks = Arc::new(Acks::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &env.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .set("queue.buffering.max.messages", "100000");
    for (k, v) in settings {
        config.set(*k, *v);
    }
    let producer: ThreadedProducer<AckContext> = config
        .create_with_context(AckContext(acks.clone()))
        .unwrap();
    let click = realistic_click(1_764_378_123_456);
    let payload = click.to_json();
    let id = click.click_id.encode();
    // Warm-up (connection, producer id, metadata) before the clock starts, as for the sink.
    producer
        .send(
            BaseRecord::to(&topic)
                .key(&click.key[..])
                .payload(&payload[..]),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    acks.wait_for(1);
    *acks.done.lock().unwrap() = (0, 0);
    let start = Instant::now();
    for i in 0..n {
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: "click_id",
            value: Some(&id[..]),
        });
        let mut rec = BaseRecord::to(&topic)
            .key(&click.key[..])
            .payload(&payload[..])
            .headers(headers);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
        if let Some(b) = batch {
            if (i + 1) % b == 0 {
                acks.wait_for(i + 1);
            }
        }
    }
    let (ok, failed) = acks.wait_for(n);
    assert_eq!((ok, failed), (n, 0));
    n as f64 / start.elapsed().as_secs_f64()
}

// ---- record cost -----------------------------------------------------------------------------

/// Records at `rate` clicks/s for `secs`, timing each call; returns (median ns, p99 ns, stats).
fn record_cost<S: ClickSink>(sink: S, rate: u64, secs: u64) -> (u64, u64, Stats) {
    let template = realistic_click(1_764_378_123_456);
    let (rec, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .capacity(1 << 17)
        .spawn()
        .unwrap();
    let total = rate * secs;
    let mut ns = Vec::with_capacity(total as usize);
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let mut c = template.clone();
        c.click_id = ClickId::from(i as u128 + 1);
        let t = Instant::now();
        black_box(rec.record(c));
        ns.push(t.elapsed().as_nanos() as u64);
    }
    let stats = guard.shutdown(Duration::from_secs(60));
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 - 1.0) * p) as usize];
    (q(0.5), q(0.99), stats)
}

fn check(label: &str, s: &Stats, n: usize) {
    assert_eq!(
        (s.delivered, s.dropped, s.failed),
        (n as u64, 0, 0),
        "{label}: {s:?}"
    );
}

fn spread(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.0}, min {:.0}, max {:.0}",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = env_usize("LINKGATE_BENCH_RUNS", 3);
    let n = env_usize("LINKGATE_BENCH_CLICKS", 300_000);
    let local = tansu::external_brokers()
        .is_none()
        .then(tansu::Tansu::start);
    let mut env = Env {
        brokers: tansu::external_brokers().unwrap_or_else(|| local.as_ref().unwrap().brokers()),
        tansu_pid: local.as_ref().and_then(tansu::Tansu::pid),
        topic_n: 0,
    };
    println!(
        "brokers {} (tansu pid {:?}), {n} clicks per run, {runs} runs",
        env.brokers, env.tansu_pid
    );
    let json_len = realistic_click(0).to_json().len();
    let mut buf = Vec::with_capacity(1024);
    let t = Instant::now();
    for _ in 0..200_000 {
        buf.clear();
        black_box(realistic_click(0)).write_json(&mut buf);
    }
    println!(
        "click JSON: {json_len} B, build + write_json {:.0} ns/click",
        t.elapsed().as_nanos() as f64 / 200_000.0
    );

    if std::env::var_os("LINKGATE_BENCH_SETTINGS_ONLY").is_none() {
        throughput(&mut env, runs, n);
    }
    settings(&mut env, runs, n);
    if std::env::var_os("LINKGATE_BENCH_SETTINGS_ONLY").is_none() {
        record_costs(&mut env, runs);
    }
}

fn throughput(env: &mut Env, runs: usize, n: usize) {
    println!("\n== throughput (clicks/s, batch 1024)");
    let (mut noop, mut kafka, mut raw_batch, mut raw_pipe) = (vec![], vec![], vec![], vec![]);
    for r in 1..=runs {
        let (a, s) = pump((), n);
        check("noop", &s, n);
        let sink = kafka_sink(env, &[]);
        let ks = sink.stats();
        let cpu = Cpu::start(env.tansu_pid);
        let (b, s) = pump(sink, n);
        let cpu_kafka = cpu.report();
        check("kafka", &s, n);
        let cpu = Cpu::start(env.tansu_pid);
        let c = rdkafka_alone(env, n, Some(1024), &[]);
        let cpu_raw_batch = cpu.report();
        let cpu = Cpu::start(env.tansu_pid);
        let d = rdkafka_alone(env, n, None, &[]);
        let cpu_raw_pipe = cpu.report();
        println!(
            "run {r}: () {a:.0} | KafkaSink {b:.0} ({:.3} of ()) [{cpu_kafka}; batches {} retries {} queue_full {}] \
             | rdkafka batch-wait {c:.0} [{cpu_raw_batch}] | rdkafka pipelined {d:.0} [{cpu_raw_pipe}] \
             | KafkaSink / rdkafka batch-wait {:.2}",
            b / a,
            s.batches,
            s.retries,
            ks.queue_full(),
            b / c
        );
        noop.push(a);
        kafka.push(b);
        raw_batch.push(c);
        raw_pipe.push(d);
    }
    println!("()                  {}", spread(&noop));
    println!("KafkaSink           {}", spread(&kafka));
    println!("rdkafka batch-wait  {}", spread(&raw_batch));
    println!("rdkafka pipelined   {}", spread(&raw_pipe));
}

fn settings(env: &mut Env, runs: usize, n: usize) {
    println!("\n== settings (KafkaSink clicks/s; () of the same run in brackets)");
    type Variant<'a> = (&'a str, &'a [(&'a str, &'a str)], usize);
    let variants: &[Variant<'_>] = &[
        ("defaults (linger.ms=1)", &[], 1024),
        ("linger.ms=0", &[("linger.ms", "0")], 1024),
        ("linger.ms=5", &[("linger.ms", "5")], 1024),
        ("compression lz4", &[("compression.type", "lz4")], 1024),
        (
            "no idempotence (acks=all)",
            &[("enable.idempotence", "false")],
            1024,
        ),
        ("pipeline max_batch 8192", &[], 8192),
    ];
    for (name, settings, max_batch) in variants {
        let mut v = vec![];
        let mut base = vec![];
        let mut raw = vec![];
        for _ in 0..runs {
            base.push(pump_batch((), n, *max_batch).0);
            let sink = kafka_sink(env, settings);
            let (b, s) = pump_batch(sink, n, *max_batch);
            check(name, &s, n);
            v.push(b);
            raw.push(rdkafka_alone(env, n, None, settings));
        }
        println!(
            "{name:<26} {} [() {}] [rdkafka pipelined, same settings: {}]",
            spread(&v),
            spread(&base),
            spread(&raw)
        );
    }
}

fn record_costs(env: &mut Env, runs: usize) {
    println!("\n== record_cost (ns per record call at 50 000 clicks/s for 2 s)");
    for r in 1..=runs {
        let (m0, p0, s0) = record_cost((), 50_000, 2);
        let sink = kafka_sink(env, &[]);
        let (m1, p1, s1) = record_cost(sink, 50_000, 2);
        check("noop", &s0, 100_000);
        check("kafka", &s1, 100_000);
        println!(
            "run {r}: () median {m0} p99 {p0} | KafkaSink median {m1} p99 {p1} | ratio median {:.2}, p99 {:.2}",
            m1 as f64 / m0 as f64,
            p1 as f64 / p0 as f64
        );
    }
}
