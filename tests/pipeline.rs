//! The click pipeline: accounting, retries, panics, blocking sinks, shutdown, templates.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};
use http::HeaderValue;
use linkgate::{
    Click, ClickId, ClickRecorder, Decision, FullPolicy, Gate, IpPolicy, JsonLinesSink, Link,
    LinkTable, MemorySink, Recorded, RetryPolicy, SinkError, Stats,
};

fn click(i: u64) -> Click {
    Click::new(
        i as i64,
        ClickId::at(i as i64),
        format!("/go/{}", i % 10),
        HeaderValue::from_static("https://a.example/"),
        302,
    )
}

fn fast_retry(n: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: n,
        initial_backoff: Duration::from_micros(100),
        max_backoff: Duration::from_millis(1),
    }
}

fn balanced(s: &Stats) -> bool {
    s.delivered + s.dropped + s.failed <= s.recorded
        && s.recorded == s.delivered + s.dropped + s.failed + s.in_flight
}

#[test]
fn accounting_holds_at_every_instant_under_flood() {
    // A sink 10x slower than the producers; tiny channel so drops happen.
    let sink = |_b: &[Click]| {
        std::thread::sleep(Duration::from_micros(200));
        Ok::<(), SinkError>(())
    };
    let (rec, guard) = ClickRecorder::builder(sink)
        .capacity(256)
        .max_batch(64)
        .spawn()
        .unwrap();
    let total = 200_000u64;
    std::thread::scope(|s| {
        for t in 0..2 {
            let rec = rec.clone();
            s.spawn(move || {
                for i in 0..total / 2 {
                    rec.record(click(t * total + i));
                }
            });
        }
        let mut checks = 0;
        loop {
            let st = rec.stats();
            assert!(balanced(&st), "{st:?}");
            // No click is ever counted delivered/dropped/failed before it is counted recorded
            // (in_flight would go negative); the queue never exceeds its capacity.
            assert!(
                st.delivered + st.dropped + st.failed <= st.recorded,
                "{st:?}"
            );
            assert!(st.queue_len <= 256, "{st:?}");
            checks += 1;
            if st.recorded == total {
                break;
            }
            std::thread::yield_now();
        }
        assert!(checks > 1);
    });
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!(st.in_flight, 0);
    assert_eq!(st.recorded, total);
    assert_eq!(st.dropped, st.recorded - st.delivered - st.failed);
    assert!(st.dropped > 0 && st.delivered > 0, "{st:?}");
    assert_eq!(st.failed, 0);
}

#[test]
fn graceful_shutdown_loses_nothing_one_million_clicks() {
    let dir = tempdir("shutdown");
    let path = dir.join("clicks.jsonl");
    let (rec, guard) = ClickRecorder::builder(JsonLinesSink::open(&path).unwrap())
        .capacity(1 << 20)
        .spawn()
        .unwrap();
    let n = 1_000_000u64;
    for i in 0..n {
        assert_eq!(rec.record(click(i)), Recorded::Queued);
    }
    let st = guard.shutdown(Duration::from_secs(60));
    assert_eq!(
        (
            st.recorded,
            st.delivered,
            st.dropped,
            st.failed,
            st.in_flight
        ),
        (n, n, 0, 0, 0)
    );
    // Recording after shutdown is counted, not lost.
    assert_eq!(rec.record(click(0)), Recorded::Closed);
    let st = rec.stats();
    assert_eq!((st.dropped_closed, st.recorded), (1, n + 1));
    assert!(balanced(&st));

    let text = std::fs::read_to_string(&path).unwrap();
    let mut ids = HashSet::with_capacity(n as usize);
    let mut lines = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(ids.insert(v["click_id"].as_str().unwrap().to_string()));
        lines += 1;
    }
    assert_eq!(lines, n);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sink_errors_then_recovery_all_delivered_retries_counted() {
    let fails = Arc::new(AtomicU32::new(3));
    let got = MemorySink::new();
    let (f, mut g) = (fails.clone(), got.clone());
    let sink = move |b: &[Click]| {
        if f.load(Ordering::SeqCst) > 0 {
            f.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError::Transient("broker down".into()));
        }
        linkgate::ClickSink::write(&mut g, b)
    };
    let (rec, guard) = ClickRecorder::builder(sink)
        .retry(fast_retry(10))
        .max_batch(1000)
        .spawn()
        .unwrap();
    for i in 0..500 {
        rec.record(click(i));
    }
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!((st.delivered, st.failed, st.retries), (500, 0, 3), "{st:?}");
    assert_eq!(got.len(), 500);
    assert!(st.last_error.unwrap().contains("broker down"));
}

#[test]
fn retries_exhausted_count_failed_and_permanent_errors_skip_retry() {
    let (rec, guard) =
        ClickRecorder::builder(|_: &[Click]| Err(SinkError::Transient("down".into())))
            .retry(fast_retry(3))
            .spawn()
            .unwrap();
    for i in 0..10 {
        rec.record(click(i));
    }
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!((st.failed, st.delivered, st.in_flight), (10, 0, 0));
    assert_eq!(st.retries % 2, 0, "2 retries per batch: {st:?}");
    let (rec, guard) =
        ClickRecorder::builder(|_: &[Click]| Err(SinkError::Permanent("400 bad request".into())))
            .retry(fast_retry(5))
            .spawn()
            .unwrap();
    rec.record(click(1));
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!((st.failed, st.retries), (1, 0));
    assert!(st.last_error.unwrap().contains("400 bad request"));
}

#[test]
fn panicking_sink_is_caught_and_draining_goes_on() {
    let built = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::<u64>::new()));
    let make = {
        let (built, seen) = (built.clone(), seen.clone());
        move || {
            built.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            Box::new(move |b: &[Click]| {
                if b.iter().any(|c| c.ts == 13) {
                    panic!("sink bug on click 13");
                }
                seen.lock().unwrap().extend(b.iter().map(|c| c.ts as u64));
                Ok(())
            }) as Box<dyn linkgate::ClickSink>
        }
    };
    let first = make.clone();
    let (rec, guard) = ClickRecorder::builder(first())
        .max_batch(1)
        .sink_factory(make)
        .spawn()
        .unwrap();
    for i in 0..30 {
        rec.record(click(i));
    }
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!(
        (st.recorded, st.delivered, st.failed),
        (30, 29, 1),
        "{st:?}"
    );
    assert!(st.last_error.unwrap().contains("sink bug on click 13"));
    assert_eq!(
        built.load(Ordering::SeqCst),
        2,
        "factory rebuilt the sink once"
    );
    assert_eq!(seen.lock().unwrap().len(), 29);
}

/// A sink that blocks until the test lets it go.
fn blocking_sink(
    release: Receiver<()>,
    entered: crossbeam_channel::Sender<()>,
) -> impl FnMut(&[Click]) -> Result<(), SinkError> + Send {
    move |_b| {
        let _ = entered.try_send(());
        let _ = release.recv();
        Ok(())
    }
}

#[test]
fn blocked_sink_never_blocks_requests_drops_are_counted() {
    let (release_tx, release_rx) = bounded::<()>(0);
    let (entered_tx, entered_rx) = bounded::<()>(1);
    let (rec, guard) = ClickRecorder::builder(blocking_sink(release_rx, entered_tx))
        .capacity(100)
        .max_batch(10)
        .spawn()
        .unwrap();
    rec.record(click(0));
    entered_rx.recv().unwrap(); // the drain is now stuck inside the sink
    let mut outcomes = [0u32; 2];
    for i in 1..=10_000 {
        match rec.record(click(i)) {
            Recorded::Queued => outcomes[0] += 1,
            Recorded::Dropped => outcomes[1] += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        outcomes[0], 100,
        "exactly the channel's capacity was queued"
    );
    assert_eq!(outcomes[1], 9_900);
    let st = rec.stats();
    assert_eq!((st.dropped, st.in_flight, st.queue_len), (9_900, 101, 100));
    drop(release_tx); // unblock for good
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!(
        (st.recorded, st.delivered, st.dropped, st.in_flight),
        (10_001, 101, 9_900, 0)
    );
}

#[test]
fn shutdown_with_a_stuck_sink_reports_instead_of_hanging() {
    let (_release_tx, release_rx) = bounded::<()>(0);
    let (entered_tx, entered_rx) = bounded::<()>(1);
    let (rec, guard) = ClickRecorder::builder(blocking_sink(release_rx, entered_tx))
        .max_batch(1)
        .spawn()
        .unwrap();
    rec.record(click(0));
    entered_rx.recv().unwrap();
    for i in 1..=5 {
        rec.record(click(i));
    }
    let st = guard.shutdown(Duration::from_millis(50));
    assert_eq!(
        (st.recorded, st.failed, st.in_flight, st.delivered),
        (6, 5, 1, 0),
        "{st:?}"
    );
    assert!(st.last_error.unwrap().contains("sink blocked"));
}

#[test]
fn block_policy_waits_at_most_its_timeout() {
    let (release_tx, release_rx) = bounded::<()>(0);
    let (entered_tx, entered_rx) = bounded::<()>(1);
    let timeout = Duration::from_millis(30);
    let (rec, guard) = ClickRecorder::builder(blocking_sink(release_rx, entered_tx))
        .capacity(1)
        .max_batch(1)
        .full_policy(FullPolicy::Block { timeout })
        .spawn()
        .unwrap();
    rec.record(click(0));
    entered_rx.recv().unwrap();
    assert_eq!(rec.record(click(1)), Recorded::Queued);
    let t = Instant::now();
    assert_eq!(rec.record(click(2)), Recorded::Dropped);
    assert!(t.elapsed() >= timeout);
    drop(release_tx);
    let st = guard.shutdown(Duration::from_secs(10));
    assert_eq!((st.delivered, st.dropped), (2, 1));
}

#[test]
fn gate_expands_templates_and_records_the_same_id() {
    let table = LinkTable::from_links(vec![
        Link::builder(
            "/go/t",
            "https://s.example/p?ref=aff&sub={click_id}&k={key}",
        )
        .tag("affiliate", "aff_7")
        .build()
        .unwrap(),
        Link::new("/go/plain", "https://p.example/").unwrap(),
    ])
    .unwrap();
    let sink = MemorySink::new();
    let (rec, guard) = ClickRecorder::builder(sink.clone()).spawn().unwrap();
    let gate = Gate::builder(table, rec)
        .prefix("/go/")
        .country_header(http::HeaderName::from_static("cf-ipcountry"))
        .clock(|| 1_795_914_123_456)
        .build();
    let req = http::Request::get("/GO/T?utm=1")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .header("referer", "https://blog.example/post")
        .header("cf-ipcountry", "DE")
        .body(())
        .unwrap();
    let (parts, _) = req.into_parts();
    let Decision::Redirect(h) = gate.handle(&parts, Some("2001:db8:1:2:3::9".parse().unwrap()))
    else {
        panic!()
    };
    let loc = h.redirect.location().to_str().unwrap().to_string();
    assert_eq!(
        loc,
        format!("https://s.example/p?ref=aff&sub={}&k=%2Fgo%2Ft", h.click_id)
    );
    // Plain links: no template work, same id recorded.
    let (p2, _) = http::Request::get("/go/plain")
        .body(())
        .unwrap()
        .into_parts();
    let Decision::Redirect(h2) = gate.handle(&p2, None) else {
        panic!()
    };
    assert_eq!(h2.redirect.location(), "https://p.example/");
    // Outside the prefix and unknown keys.
    let (p3, _) = http::Request::get("/about").body(()).unwrap().into_parts();
    assert!(matches!(gate.handle(&p3, None), Decision::Pass));
    let (p4, _) = http::Request::get("/go/nope")
        .body(())
        .unwrap()
        .into_parts();
    let Decision::Redirect(h4) = gate.handle(&p4, None) else {
        panic!()
    };
    assert!(h4.redirect.is_default());
    let (p5, _) = http::Request::post("/go/t").body(()).unwrap().into_parts();
    assert!(matches!(gate.handle(&p5, None), Decision::Pass));
    drop(guard);

    let clicks = sink.clicks();
    assert_eq!(clicks.len(), 3);
    let c = &clicks[0];
    assert_eq!(c.click_id, h.click_id);
    assert_eq!(c.location.to_str().unwrap(), loc);
    assert_eq!(c.key_str(), "/go/t");
    assert_eq!(c.ts, 1_795_914_123_456);
    assert_eq!(c.ip.unwrap().to_string(), "2001:db8:1::");
    assert_eq!(c.country.as_ref().unwrap(), "DE");
    assert_eq!(c.query(), Some("utm=1"));
    assert_eq!(&*c.tags.as_ref().unwrap()[0].1, "aff_7");
    assert!(c.matched);
    assert_eq!(clicks[1].click_id, h2.click_id);
    assert!(!clicks[2].matched);
    assert_eq!(clicks[2].key_str(), "/go/nope");
    let json = String::from_utf8(c.to_json()).unwrap();
    assert!(
        json.starts_with("{\"ts\":\"2026-11-29T01:02:03.456Z\""),
        "{json}"
    );
}

#[test]
fn gate_ip_policies_and_trusted_proxies() {
    let table = LinkTable::from_links(vec![Link::new("/go/a", "/a").unwrap()]).unwrap();
    let sink = MemorySink::new();
    let (rec, guard) = ClickRecorder::builder(sink.clone()).spawn().unwrap();
    let proxies = ["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
    let gate = Gate::builder(table.clone(), rec.clone())
        .trusted_proxies(proxies)
        .ip_policy(IpPolicy::Raw)
        .build();
    let req = |xff: &str| {
        http::Request::get("/go/a")
            .header("x-forwarded-for", xff)
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let peer_proxy = Some("10.1.2.3".parse().unwrap());
    let peer_other = Some("198.51.100.7".parse().unwrap());
    assert_eq!(
        gate.client_ip(&req("203.0.113.5, 10.9.9.9"), peer_proxy)
            .unwrap()
            .to_string(),
        "203.0.113.5"
    );
    assert_eq!(
        gate.client_ip(&req("203.0.113.5"), peer_other)
            .unwrap()
            .to_string(),
        "198.51.100.7"
    );
    let fwd = http::Request::get("/go/a")
        .header("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert_eq!(
        gate.client_ip(&fwd, Some("::1".parse().unwrap()))
            .unwrap()
            .to_string(),
        "2001:db8::7"
    );
    // Without trusted proxies the header is ignored.
    let plain = Gate::builder(table, rec).build();
    assert_eq!(
        plain
            .client_ip(&req("203.0.113.5"), peer_proxy)
            .unwrap()
            .to_string(),
        "10.1.2.3"
    );
    let _ = plain.handle(
        &req("1.2.3.4"),
        Some("::ffff:203.0.113.77".parse().unwrap()),
    );
    drop(guard);
    assert_eq!(sink.clicks()[0].ip.unwrap().to_string(), "203.0.113.0");
    assert!("10.0.0.0/33".parse::<linkgate::TrustedProxy>().is_err());
}

#[test]
fn ten_million_click_ids_unique_and_monotonic_per_thread() {
    let per_thread = 5_000_000usize;
    let all: Vec<Vec<u128>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    let mut v = Vec::with_capacity(per_thread);
                    for _ in 0..per_thread {
                        v.push(ClickId::generate().as_u128());
                    }
                    assert!(
                        v.windows(2).all(|w| w[0] < w[1]),
                        "not monotonic within a thread"
                    );
                    v
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids: Vec<u128> = all.into_iter().flatten().collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate click ids");
    assert_eq!(n, 10_000_000);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("linkgate-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `ClickSink::attach` hands the sink the pipeline's batch size before the first write, and the
/// shutdown deadline once a shutdown has begun (what a sink waiting for acknowledgements needs).
#[test]
fn attach_gives_the_batch_size_and_the_shutdown_deadline() {
    struct Probe {
        ctx: Option<linkgate::DrainContext>,
        seen: crossbeam_channel::Sender<(&'static str, usize, bool)>,
    }
    impl linkgate::ClickSink for Probe {
        fn attach(&mut self, ctx: &linkgate::DrainContext) {
            self.ctx = Some(ctx.clone());
        }
        fn write(&mut self, _batch: &[Click]) -> Result<(), SinkError> {
            let ctx = self.ctx.as_ref().expect("attached before the first write");
            let _ = self
                .seen
                .send(("write", ctx.max_batch(), ctx.shutdown_deadline().is_some()));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            let ctx = self.ctx.as_ref().expect("attached");
            let _ = self
                .seen
                .send(("flush", ctx.max_batch(), ctx.shutdown_deadline().is_some()));
            Ok(())
        }
    }
    let (tx, rx) = bounded(16);
    let probe = Probe {
        ctx: None,
        seen: tx,
    };
    let (rec, guard) = ClickRecorder::builder(probe).max_batch(77).spawn().unwrap();
    rec.record(Click::new(
        0,
        ClickId::at(0),
        "/go/a",
        HeaderValue::from_static("/a"),
        302,
    ));
    assert_eq!(rx.recv().unwrap(), ("write", 77, false));
    let stats = guard.shutdown(Duration::from_secs(5));
    assert_eq!(rx.recv().unwrap(), ("flush", 77, true));
    assert_eq!((stats.recorded, stats.delivered), (1, 1));
}
