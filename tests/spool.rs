//! The spool: outages longer than the retry window, replay order, restarts, a full spool,
//! corrupt lines, the directory lock and the shutdown deadline. No external service: the sink
//! is a closure whose availability the test flips, in front of a `MemorySink`.
#![cfg(feature = "spool")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;
use linkgate::{
    Click, ClickId, ClickRecorder, ClickSink, DrainBuilder, MemorySink, RetryPolicy, SinkError,
    SpoolConfig, SpoolError, Stats,
};

/// Click number `i`: its key says `i`, so order can be checked; all lines have the same length.
fn click(i: u64) -> Click {
    Click::new(
        1_795_914_123_456 + i as i64,
        ClickId::at(1_795_914_123_456 + i as i64),
        format!("/go/{i:06}"),
        HeaderValue::from_static("https://a.example/"),
        302,
    )
}

fn number(c: &Click) -> u64 {
    c.key_str()[4..].parse().unwrap()
}

fn numbers(sink: &MemorySink) -> Vec<u64> {
    sink.clicks().iter().map(number).collect()
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_micros(100),
        max_backoff: Duration::from_millis(1),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("linkgate-spool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    v
}

/// A sink that fails with a transient error while `up` is false, else hands the batch to `mem`.
fn flaky(up: &Arc<AtomicBool>, mem: &MemorySink) -> impl ClickSink {
    let (up, mut mem) = (up.clone(), mem.clone());
    move |b: &[Click]| {
        if up.load(Ordering::SeqCst) {
            mem.write(b)
        } else {
            Err(SinkError::Transient("broker down".into()))
        }
    }
}

/// A sink that is always down: every write is a transient error.
fn down() -> impl ClickSink {
    |_: &[Click]| Err::<(), _>(SinkError::Transient("down".into()))
}

/// Records clicks `0..n` against a sink that is down and shuts down: all `n` wait in `dir`.
fn spool_while_down(dir: &Path, n: u64) {
    let (rec, guard) = builder(down(), dir).spawn().unwrap();
    for i in 0..n {
        rec.record(click(i));
    }
    assert_eq!(guard.shutdown(Duration::from_secs(10)).spooled, n);
}

/// A sink that takes at least 1 ms per batch, and the memory it writes to.
fn slow_sink() -> (MemorySink, impl ClickSink) {
    let mem = MemorySink::new();
    let mut slow_mem = mem.clone();
    let slow = move |b: &[Click]| {
        std::thread::sleep(Duration::from_millis(1));
        slow_mem.write(b)
    };
    (mem, slow)
}

fn builder<S: ClickSink>(sink: S, dir: &Path) -> DrainBuilder<S> {
    ClickRecorder::builder(sink)
        .max_batch(16)
        .max_delay(Duration::from_millis(1))
        .retry(fast_retry())
        .spool(
            SpoolConfig::new(dir)
                .segment_bytes(4096)
                .probe_interval(Duration::from_millis(2)),
        )
}

/// The invariant, to the click.
fn balanced(s: &Stats) -> bool {
    s.recorded == s.delivered + s.dropped + s.failed + s.spooled + s.in_flight
}

fn wait_until(what: &str, rec: &ClickRecorder, mut done: impl FnMut(&Stats) -> bool) -> Stats {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let s = rec.stats();
        assert!(balanced(&s), "{s:?}");
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}: {s:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn outage_is_spooled_then_replayed_in_order_before_newer_clicks() {
    let dir = tempdir("outage");
    let up = Arc::new(AtomicBool::new(false));
    let mem = MemorySink::new();
    let (rec, guard) = builder(flaky(&up, &mem), &dir).spawn().unwrap();
    for i in 0..600 {
        rec.record(click(i));
    }
    let s = wait_until("600 spooled", &rec, |s| s.spooled == 600);
    assert_eq!((s.failed, s.delivered, s.dropped), (0, 0, 0), "{s:?}");
    assert_eq!(s.spooled_total, 600);
    assert!(s.last_error.unwrap().contains("broker down"));
    let on_disk = segments(&dir);
    assert!(on_disk.len() > 1, "segments of 4 KiB: {on_disk:?}");
    let lines: usize = on_disk
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    assert_eq!(lines, 600);
    assert!(mem.is_empty());

    // The sink comes back while newer clicks arrive: the sink must still see record order.
    up.store(true, Ordering::SeqCst);
    for i in 600..700 {
        rec.record(click(i));
    }
    let s = wait_until("all delivered", &rec, |s| {
        s.delivered == 700 && s.spool_bytes == 0
    });
    assert_eq!((s.spooled, s.spool_bytes, s.failed), (0, 0, 0), "{s:?}");
    assert!(segments(&dir).is_empty(), "{:?}", segments(&dir));
    for i in 700..750 {
        rec.record(click(i));
    }
    let s = guard.shutdown(Duration::from_secs(10));
    assert_eq!(numbers(&mem), (0..750).collect::<Vec<_>>());
    assert_eq!(
        (
            s.recorded,
            s.delivered,
            s.spooled,
            s.failed,
            s.dropped,
            s.in_flight
        ),
        (750, 750, 0, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.replayed >= 600 && s.replayed <= 700, "{s:?}");
    assert_eq!(s.spooled_total, s.replayed);
    assert_eq!((s.recovered, s.spool_corrupt), (0, 0));
}

#[test]
fn a_full_spool_counts_the_excess_failed() {
    let dir = tempdir("full");
    let line = click(0).to_json().len() as u64 + 1;
    let up = Arc::new(AtomicBool::new(false));
    let mem = MemorySink::new();
    let (rec, guard) = ClickRecorder::builder(flaky(&up, &mem))
        .max_batch(8)
        .retry(fast_retry())
        .spool(SpoolConfig::new(&dir).max_bytes(10 * line + line / 2))
        .spawn()
        .unwrap();
    for i in 0..30 {
        rec.record(click(i));
    }
    let s = wait_until("all accounted", &rec, |s| s.spooled + s.failed == 30);
    assert_eq!((s.spooled, s.failed, s.spool_bytes), (10, 20, 10 * line));
    assert!(s.last_error.unwrap().contains("spool full"));
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!(
        (s.recorded, s.spooled, s.failed, s.in_flight),
        (30, 10, 20, 0)
    );

    // What fitted is exactly the first ten clicks, replayed by the next pipeline.
    up.store(true, Ordering::SeqCst);
    let (rec, guard) = ClickRecorder::builder(flaky(&up, &mem))
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    wait_until("recovered", &rec, |s| s.recovered == 10);
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!((s.recorded, s.recovered, s.spool_bytes), (0, 10, 0));
    assert_eq!(numbers(&mem), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_restart_replays_the_previous_run_first() {
    let dir = tempdir("restart");
    let up = Arc::new(AtomicBool::new(false));
    let mem = MemorySink::new();
    let (rec, guard) = builder(flaky(&up, &mem), &dir).spawn().unwrap();
    for i in 0..200 {
        rec.record(click(i));
    }
    // Shut down with the sink still down: nothing is lost, all of it waits on disk.
    let s1 = guard.shutdown(Duration::from_secs(5));
    assert!(balanced(&s1), "{s1:?}");
    assert_eq!(
        (s1.recorded, s1.spooled, s1.failed, s1.in_flight),
        (200, 200, 0, 0),
        "{s1:?}"
    );
    assert!(!segments(&dir).is_empty());

    up.store(true, Ordering::SeqCst);
    let (rec, guard) = builder(flaky(&up, &mem), &dir).spawn().unwrap();
    for i in 200..250 {
        rec.record(click(i));
    }
    wait_until("old and new delivered", &rec, |s| {
        s.recovered == 200 && s.delivered == 50
    });
    let s2 = guard.shutdown(Duration::from_secs(5));
    // The previous run's clicks are outside this run's invariant.
    assert_eq!(
        (
            s2.recorded,
            s2.delivered,
            s2.spooled,
            s2.recovered,
            s2.failed
        ),
        (50, 50, 0, 200, 0),
        "{s2:?}"
    );
    assert_eq!(numbers(&mem), (0..250).collect::<Vec<_>>());
    assert!(segments(&dir).is_empty());
}

#[test]
fn corrupt_lines_are_skipped_counted_and_named() {
    let dir = tempdir("corrupt");
    let up = Arc::new(AtomicBool::new(false));
    let mem = MemorySink::new();
    let (rec, guard) = ClickRecorder::builder(flaky(&up, &mem))
        .retry(fast_retry())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    for i in 0..20 {
        rec.record(click(i));
    }
    assert_eq!(guard.shutdown(Duration::from_secs(5)).spooled, 20);
    let segs = segments(&dir);
    assert_eq!(segs.len(), 1);
    // A garbage line in the middle, and a last line torn by a crash mid-write.
    let text = std::fs::read_to_string(&segs[0]).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(5, "not json at all");
    let torn = &lines[7][..40];
    let mut out = lines.join("\n");
    out.push('\n');
    out.push_str(torn);
    std::fs::write(&segs[0], out).unwrap();

    up.store(true, Ordering::SeqCst);
    let (rec, guard) = ClickRecorder::builder(flaky(&up, &mem))
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    let s = wait_until("replayed", &rec, |s| s.spool_bytes == 0);
    assert_eq!((s.recovered, s.spool_corrupt), (20, 2), "{s:?}");
    let err = s.last_error.unwrap();
    let name = segs[0].file_name().unwrap().to_str().unwrap();
    assert!(err.contains(&format!("{name}:22:")), "{err}");
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!((s.recorded, s.failed), (0, 0));
    assert_eq!(numbers(&mem), (0..20).collect::<Vec<_>>());
}

#[test]
fn the_lock_keeps_a_second_pipeline_out() {
    let dir = tempdir("lock");
    let (_rec, guard) = ClickRecorder::builder(())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    let err = ClickRecorder::builder(())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<SpoolError>());
    assert!(
        matches!(inner, Some(SpoolError::Locked { dir: d }) if *d == dir),
        "{err:?}"
    );
    let _ = guard.shutdown(Duration::from_secs(5));
    let (_rec, guard) = ClickRecorder::builder(())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .expect("the lock is released at shutdown");
    let _ = guard.shutdown(Duration::from_secs(5));
}

#[test]
fn a_directory_that_cannot_be_created_fails_at_spawn() {
    let dir = tempdir("notadir");
    let file = dir.join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = ClickRecorder::builder(())
        .spool(SpoolConfig::new(file.join("spool")))
        .spawn()
        .unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<SpoolError>());
    assert!(
        matches!(inner, Some(SpoolError::Io { op: "create", .. })),
        "{err:?}"
    );
}

#[test]
fn permanent_errors_are_failed_not_spooled() {
    let dir = tempdir("permanent");
    let sink = |_: &[Click]| Err::<(), _>(SinkError::Permanent("400 bad request".into()));
    let (rec, guard) = builder(sink, &dir).spawn().unwrap();
    for i in 0..50 {
        rec.record(click(i));
    }
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!(
        (s.recorded, s.failed, s.spooled, s.in_flight),
        (50, 50, 0, 0)
    );
    assert!(segments(&dir).is_empty());
}

#[test]
fn the_shutdown_deadline_stops_a_long_replay_and_leaves_the_rest_on_disk() {
    let dir = tempdir("deadline");
    spool_while_down(&dir, 2000);

    // A slow sink: 200 batches of 10 take at least 200 ms, the shutdown allows 50 ms.
    let (mem, slow) = slow_sink();
    let (rec, guard) = builder(slow, &dir).max_batch(10).spawn().unwrap();
    wait_until("the replay started", &rec, |s| s.recovered > 0);
    for i in 2000..2030 {
        rec.record(click(i));
    }
    let s2 = guard.shutdown(Duration::from_millis(50));
    assert!(s2.recovered < 2000, "{s2:?}");
    assert!(s2.spool_bytes > 0);
    // This run's own clicks were queued behind the replay: spooled, not failed.
    assert_eq!((s2.recorded, s2.failed, s2.in_flight), (30, 0, 0), "{s2:?}");
    assert_eq!(s2.delivered + s2.spooled, 30, "{s2:?}");

    let (rec, guard) = builder(mem.clone(), &dir).spawn().unwrap();
    wait_until("the rest recovered", &rec, |s| s.spool_bytes == 0);
    let s3 = guard.shutdown(Duration::from_secs(5));
    // The replay position was saved after each delivered batch: the third run resumes where the
    // second stopped, without duplicates, and the order is the record order throughout.
    assert_eq!(
        s2.recovered + s2.delivered + s3.recovered,
        2030,
        "{s2:?} {s3:?}"
    );
    assert_eq!(numbers(&mem), (0..2030).collect::<Vec<_>>());
}

#[test]
fn no_spool_no_change() {
    // Without a spool a batch that exhausts its retries is failed, as before.
    let sink = |_: &[Click]| Err::<(), _>(SinkError::Transient("broker down".into()));
    let (rec, guard) = ClickRecorder::builder(sink)
        .retry(fast_retry())
        .spawn()
        .unwrap();
    for i in 0..10 {
        rec.record(click(i));
    }
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!((s.recorded, s.failed, s.spooled), (10, 10, 0));
}

#[test]
fn a_sink_that_fails_again_mid_replay_keeps_the_rest_spooled_in_order() {
    use std::sync::atomic::AtomicI64;
    let dir = tempdir("flap");
    // budget < 0: up; budget > 0: that many more batches, then down again; 0: down.
    let budget = Arc::new(AtomicI64::new(0));
    let mem = MemorySink::new();
    let sink = {
        let (budget, mut mem) = (budget.clone(), mem.clone());
        move |b: &[Click]| {
            let left = budget.load(Ordering::SeqCst);
            if left == 0 {
                return Err(SinkError::Transient("broker down".into()));
            }
            if left > 0 {
                budget.fetch_sub(1, Ordering::SeqCst);
            }
            mem.write(b)
        }
    };
    let (rec, guard) = builder(sink, &dir).spawn().unwrap();
    for i in 0..500 {
        rec.record(click(i));
    }
    wait_until("500 spooled", &rec, |s| s.spooled == 500);
    budget.store(5, Ordering::SeqCst);
    let s = wait_until("a partial replay", &rec, |s| {
        s.batches == 5
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("stays in the spool"))
    });
    // Five batches (a batch stops at a segment's end) went through, the rest is still on disk.
    assert!(s.replayed > 0 && s.replayed == s.delivered, "{s:?}");
    assert_eq!((s.spooled + s.delivered, s.failed), (500, 0), "{s:?}");
    let left = s.spooled;
    for i in 500..520 {
        rec.record(click(i));
    }
    wait_until("newer clicks spooled behind", &rec, |s| {
        s.spooled == left + 20
    });
    budget.store(-1, Ordering::SeqCst);
    let s = wait_until("all delivered", &rec, |s| {
        s.delivered == 520 && s.spool_bytes == 0
    });
    assert_eq!((s.spooled, s.failed, s.spool_bytes), (0, 0, 0), "{s:?}");
    let s = guard.shutdown(Duration::from_secs(5));
    assert!(balanced(&s) && s.in_flight == 0, "{s:?}");
    assert_eq!(numbers(&mem), (0..520).collect::<Vec<_>>());
}

#[test]
fn a_long_replay_moves_new_clicks_to_the_spool_instead_of_dropping_them() {
    let dir = tempdir("relieve");
    spool_while_down(&dir, 2000);

    let (mem, slow) = slow_sink();
    // A channel of 64: without the hand-over, 500 new clicks during a replay of at least
    // 125 ms would mostly be dropped.
    let (rec, guard) = builder(slow, &dir).capacity(64).spawn().unwrap();
    wait_until("the replay started", &rec, |s| s.recovered > 0);
    for i in 2000..2500 {
        while rec.stats().queue_len >= 60 {
            std::thread::yield_now();
        }
        rec.record(click(i));
    }
    let s = wait_until("everything delivered", &rec, |s| {
        s.delivered + s.dropped == 500 && s.spool_bytes == 0
    });
    assert!(s.spooled_total > 0, "{s:?}");
    assert_eq!((s.recovered, s.spooled, s.failed), (2000, 0, 0), "{s:?}");
    let _ = guard.shutdown(Duration::from_secs(5));
    let got = numbers(&mem);
    assert_eq!(&got[..2000], &(0..2000).collect::<Vec<_>>()[..]);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "record order kept");
}

#[test]
fn a_saved_replay_position_is_resumed_and_a_stale_one_ignored() {
    // The state a crash mid-replay leaves: a segment and a cursor 40 lines into it.
    let dir = tempdir("cursor");
    let (rec, guard) = ClickRecorder::builder(down())
        .retry(fast_retry())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    for i in 0..100 {
        rec.record(click(i));
    }
    assert_eq!(guard.shutdown(Duration::from_secs(5)).spooled, 100);
    let segs = segments(&dir);
    assert_eq!(segs.len(), 1);
    let seq: u64 = segs[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let text = std::fs::read_to_string(&segs[0]).unwrap();
    let offset: usize = text.lines().take(40).map(|l| l.len() + 1).sum();
    let saved = text.clone();

    std::fs::write(dir.join("cursor"), format!("{seq} {offset} 40\n")).unwrap();
    let mem = MemorySink::new();
    let (rec, guard) = ClickRecorder::builder(mem.clone())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!((s.recovered, s.spool_bytes), (60, 0), "{s:?}");
    assert_eq!(numbers(&mem), (40..100).collect::<Vec<_>>());
    drop(rec);

    // A cursor about another segment (left from an older one) does not skip anything.
    std::fs::write(&segs[0], &saved).unwrap();
    std::fs::write(dir.join("cursor"), format!("{} {offset} 40\n", seq + 7)).unwrap();
    let mem = MemorySink::new();
    let (_rec, guard) = ClickRecorder::builder(mem.clone())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!(s.recovered, 100, "{s:?}");
    assert_eq!(numbers(&mem), (0..100).collect::<Vec<_>>());

    // Segment numbers are never reused, so a leftover cursor cannot skip part of a new segment.
    std::fs::write(dir.join("cursor"), format!("{} 5 1\n", seq + 8)).unwrap();
    let (rec, guard) = ClickRecorder::builder(down())
        .retry(fast_retry())
        .spool(SpoolConfig::new(&dir))
        .spawn()
        .unwrap();
    rec.record(click(7));
    assert_eq!(guard.shutdown(Duration::from_secs(5)).spooled, 1);
    let segs = segments(&dir);
    let new_seq: u64 = segs[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(new_seq > seq + 8, "{segs:?}");
}

#[test]
fn a_flapping_sink_under_a_flood_keeps_exact_counts_and_per_thread_order() {
    use std::sync::atomic::AtomicU64;
    let dir = tempdir("flood");
    let calls = Arc::new(AtomicU64::new(0));
    let healed = Arc::new(AtomicBool::new(false));
    let mem = MemorySink::new();
    let sink = {
        let (calls, healed, mut mem) = (calls.clone(), healed.clone(), mem.clone());
        move |b: &[Click]| {
            // Five calls out of every fifteen fail, until the test heals the sink.
            let c = calls.fetch_add(1, Ordering::SeqCst);
            if !healed.load(Ordering::SeqCst) && (c / 5) % 3 == 2 {
                return Err(SinkError::Transient("flap".into()));
            }
            mem.write(b)
        }
    };
    let (rec, guard) = builder(sink, &dir).capacity(256).spawn().unwrap();
    let per_thread = 20_000u64;
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let rec = rec.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    rec.record(click(t * 100_000 + i));
                }
            });
        }
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let st = rec.stats();
            assert!(balanced(&st), "{st:?}");
            assert!(
                st.delivered + st.dropped + st.failed + st.spooled <= st.recorded,
                "{st:?}"
            );
            if st.recorded == 2 * per_thread {
                break;
            }
            assert!(Instant::now() < end, "{st:?}");
            std::thread::yield_now();
        }
    });
    healed.store(true, Ordering::SeqCst);
    let st = guard.shutdown(Duration::from_secs(30));
    assert!(st.spooled_total > 0, "the outages were spooled: {st:?}");
    assert_eq!((st.spooled, st.in_flight, st.failed), (0, 0, 0), "{st:?}");
    assert_eq!(st.recorded, st.delivered + st.dropped, "{st:?}");
    let got = numbers(&mem);
    assert_eq!(got.len() as u64, st.delivered, "each click delivered once");
    for t in 0..2u64 {
        let mine: Vec<u64> = got.iter().copied().filter(|n| n / 100_000 == t).collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "thread {t}: record order kept through the spool"
        );
    }
}

#[test]
fn a_failing_disk_write_counts_the_batch_failed_with_the_reason() {
    // A directory squatting on the first segment's name makes creating that segment fail.
    let dir = tempdir("diskfail");
    let squat = dir.join(format!("{:020}.jsonl", 1));
    std::fs::create_dir_all(&squat).unwrap();
    let up = Arc::new(AtomicBool::new(false));
    let mem = MemorySink::new();
    let (rec, guard) = builder(flaky(&up, &mem), &dir).spawn().unwrap();
    for i in 0..10 {
        rec.record(click(i));
    }
    let s = wait_until("all accounted", &rec, |s| s.failed == 10);
    assert_eq!(
        (s.spooled, s.spooled_total, s.spool_bytes),
        (0, 0, 0),
        "{s:?}"
    );
    let err = s.last_error.unwrap();
    assert!(
        err.contains("cannot create") && err.contains(&squat.display().to_string()),
        "{err}"
    );
    // The sink comes back: new clicks flow again.
    up.store(true, Ordering::SeqCst);
    for i in 10..20 {
        rec.record(click(i));
    }
    let s = guard.shutdown(Duration::from_secs(5));
    assert_eq!(
        (s.recorded, s.delivered, s.failed, s.in_flight),
        (20, 10, 10, 0),
        "{s:?}"
    );
    assert_eq!(numbers(&mem), (10..20).collect::<Vec<_>>());
}
