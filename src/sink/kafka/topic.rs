//! Creating the sink's topic when it is missing (Kafka's admin API), without an async runtime.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

/// Outcome of [`create_topic`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Created {
    /// The broker created it.
    New,
    /// It was already there.
    Existed,
}

/// Creates `topic` (`partitions`, `replication`) unless it exists, waiting at most 5 s and never
/// past `until`.
pub(super) fn create_topic(
    config: &ClientConfig,
    topic: &str,
    partitions: i32,
    replication: i32,
    until: Instant,
) -> Result<Created, String> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("creating topic {topic:?}: no time left"));
    }
    let timeout = left.min(Duration::from_secs(5));
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| format!("creating the admin client: {e}"))?;
    let opts = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let fut = admin.create_topics([&new], &opts);
    // librdkafka answers every admin request by its request timeout, give or take its timer
    // granularity: allow a margin, but never past `until`.
    let results = block_on(fut, (timeout + Duration::from_secs(1)).min(left))
        .ok_or_else(|| format!("creating topic {topic:?}: no answer within {timeout:?}"))?
        .map_err(|e| format!("creating topic {topic:?}: {e}"))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(Created::New),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(Created::Existed),
        Some(Err((_, code))) => Err(format!("creating topic {topic:?}: {code}")),
        None => Err(format!("creating topic {topic:?}: empty answer")),
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread until it is ready or `limit` has passed.
fn block_on<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let until = Instant::now() + limit;
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= until {
            return None;
        }
        std::thread::park_timeout(until - now);
    }
}
