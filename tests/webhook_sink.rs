//! `WebhookSink` through a real click pipeline against a real HTTP receiver on 127.0.0.1 that
//! verifies every signature with `linkgate::verify_signature`.
//!
//! ```sh
//! cargo test --features webhook --test webhook_sink
//! ```
#![cfg(feature = "webhook")]

#[path = "support/pipeline.rs"]
mod pipeline;
#[path = "support/receiver.rs"]
mod receiver;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::HeaderValue;
use linkgate::{
    Click, ClickId, ClickRecorder, FullPolicy, Recorded, RetryPolicy, SignatureError, Stats,
    WebhookSink, verify_signature,
};
use receiver::Receiver;

const SECRET: &[u8] = b"test secret: 32 bytes or more...";
/// Failure guard only: every shutdown below ends long before this.
const GUARD: Duration = Duration::from_secs(60);

fn click(i: usize) -> Click {
    let mut c = Click::new(
        linkgate::system_now_ms(),
        ClickId::generate(),
        format!("/go/{}", i % 97),
        HeaderValue::from_static("https://store.example/p/1?ref=aff"),
        302,
    );
    c.user_agent = Some(HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64)"));
    c
}

/// Records `n` clicks (waiting for room rather than dropping) and returns their ids and the
/// final stats.
fn run(sink: WebhookSink, n: usize, retry: RetryPolicy) -> (HashSet<String>, Stats) {
    let (recorder, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .full_policy(FullPolicy::Block { timeout: GUARD })
        .retry(retry)
        .spawn()
        .unwrap();
    let mut ids = HashSet::with_capacity(n);
    for i in 0..n {
        let c = click(i);
        ids.insert(String::from_utf8(c.click_id.encode().to_vec()).unwrap());
        assert_eq!(recorder.record(c), Recorded::Queued);
    }
    let stats = guard.shutdown(GUARD);
    assert!(pipeline::reconciles(&stats), "{stats:?}");
    (ids, stats)
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 20,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
    }
}

#[test]
fn hundred_thousand_clicks_arrive_signed_and_complete() {
    let rx = Receiver::start(SECRET, true, |_| (200, None));
    let sink = WebhookSink::new(rx.url(), SECRET).unwrap();
    let (ids, stats) = run(sink, 100_000, RetryPolicy::default());
    assert_eq!(
        (stats.recorded, stats.delivered, stats.failed),
        (100_000, 100_000, 0),
        "{stats:?}"
    );
    let st = &rx.state;
    assert_eq!(st.bad_signatures.load(Ordering::SeqCst), 0);
    let got = st.accepted_ids.lock().unwrap();
    assert_eq!(got.len(), 100_000, "no duplicates without retries");
    let got: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(got, ids);
    let seen = st.seen.lock().unwrap();
    assert_eq!(seen.len() as u64, stats.batches);
    for s in seen.iter() {
        assert_eq!(s.content_type, "application/json");
        assert!(s.count_header >= 1 && s.count_header <= 1024);
        assert_eq!(s.batch_id.len(), 32);
        assert!(s.body.starts_with(b"[{") && s.body.ends_with(b"}]"));
    }
    let batch_ids: HashSet<&str> = seen.iter().map(|s| s.batch_id.as_str()).collect();
    assert_eq!(batch_ids.len(), seen.len(), "batch ids are distinct");
}

#[test]
fn unavailable_receiver_is_retried_until_it_accepts() {
    // 503 for the first 5 requests, then 200.
    let rx = Receiver::start(SECRET, true, |n| (if n < 5 { 503 } else { 200 }, None));
    let sink = WebhookSink::new(rx.url(), SECRET).unwrap();
    let (ids, stats) = run(sink, 5_000, patient());
    assert_eq!((stats.delivered, stats.failed), (5_000, 0), "{stats:?}");
    assert!(stats.retries >= 5, "{stats:?}");
    let got: HashSet<String> = rx
        .state
        .accepted_ids
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    assert_eq!(got, ids);
    // The refused attempts were the same batch: same id, then accepted under that id.
    let seen = rx.state.seen.lock().unwrap();
    assert!(seen[..5].iter().all(|s| s.status == 503));
    assert!(
        seen[..6]
            .iter()
            .all(|s| s.batch_id == seen[0].batch_id && s.body == seen[0].body)
    );
    assert_eq!(seen[5].status, 200);
}

#[test]
fn client_error_is_counted_failed_with_the_reason_and_not_retried() {
    let rx = Receiver::start(SECRET, true, |_| (400, None));
    let sink = WebhookSink::new(rx.url(), SECRET).unwrap();
    let (_, stats) = run(sink, 3_000, patient());
    assert_eq!((stats.delivered, stats.failed), (0, 3_000), "{stats:?}");
    assert_eq!(stats.retries, 0, "a 4xx is not retried");
    let seen = rx.state.seen.lock().unwrap();
    assert_eq!(rx.state.requests.load(Ordering::SeqCst), seen.len() as u64);
    let sent: usize = seen.iter().map(|s| s.count_header).sum();
    assert_eq!(sent, 3_000, "each batch sent once");
    let err = stats.last_error.unwrap();
    assert!(err.contains("answered 400"), "{err}");
    assert!(
        err.contains("bad request: schema v2 expected  (see docs)"),
        "{err}"
    );
}

#[test]
fn retryable_statuses_and_timeouts_are_retried() {
    // 429, 408, 500 each once, then a response slower than the sink's timeout (the receiver has
    // already taken the batch: it will see it twice), then 200.
    let rx = Receiver::start(SECRET, true, |n| match n {
        0 => (429, None),
        1 => (408, None),
        2 => (500, None),
        3 => (200, Some(Duration::from_secs(3))),
        _ => (200, None),
    });
    let sink = WebhookSink::new(rx.url(), SECRET)
        .unwrap()
        .timeout(Duration::from_millis(300));
    let (ids, stats) = run(sink, 100, patient());
    assert_eq!((stats.delivered, stats.failed), (100, 0), "{stats:?}");
    assert_eq!(stats.retries, 4, "{stats:?}");
    let timed_out = rx.state.seen.lock().unwrap()[3].count_header;
    let got = rx.state.accepted_ids.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        100 + timed_out,
        "the timed-out batch arrives twice: at-least-once"
    );
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), ids);
}

#[test]
fn tampered_or_stale_requests_fail_verification() {
    let rx = Receiver::start(SECRET, true, |_| (200, None));
    let sink = WebhookSink::new(rx.url(), SECRET).unwrap();
    run(sink, 10, RetryPolicy::default());
    let seen = rx.state.seen.lock().unwrap()[0].clone();
    let t: u64 = seen.signature[2..seen.signature.find(',').unwrap()]
        .parse()
        .unwrap();
    let tol = Duration::from_secs(300);
    assert_eq!(
        verify_signature(SECRET, &seen.signature, &seen.body, t, tol),
        Ok(())
    );
    let mut tampered = seen.body.to_vec();
    let at = tampered.iter().position(|&b| b == b'3').unwrap();
    tampered[at] = b'4';
    assert_eq!(
        verify_signature(SECRET, &seen.signature, &tampered, t, tol),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(b"another secret", &seen.signature, &seen.body, t, tol),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        verify_signature(SECRET, &seen.signature, &seen.body, t + 301, tol),
        Err(SignatureError::OutsideTolerance { age_secs: 301, .. })
    ));
    // A receiver with another secret rejects every request: nothing is accepted.
    let strict = Receiver::start(b"not the sender's secret", true, |_| (200, None));
    let sink = WebhookSink::new(strict.url(), SECRET).unwrap();
    let (_, stats) = run(sink, 10, RetryPolicy::default());
    assert_eq!((stats.delivered, stats.failed), (0, 10), "401 is permanent");
    let requests = strict.state.requests.load(Ordering::SeqCst);
    assert!(requests >= 1);
    assert_eq!(strict.state.bad_signatures.load(Ordering::SeqCst), requests);
    assert!(strict.state.accepted_ids.lock().unwrap().is_empty());
}

#[test]
fn dead_receiver_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = WebhookSink::new(format!("http://u:hunter2@127.0.0.1:{port}/"), SECRET).unwrap();
    let (_, stats) = run(
        sink,
        10,
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        },
    );
    assert_eq!((stats.failed, stats.retries), (10, 2), "{stats:?}");
    let err = stats.last_error.unwrap();
    assert!(
        err.contains("after 3 attempt(s)") && !err.contains("hunter2"),
        "{err}"
    );
}
