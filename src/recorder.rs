//! `ClickRecorder`: the request-path end of the click pipeline, and its counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use crossbeam_utils::CachePadded;

use crate::click::Click;
use crate::shard::SHARDS;

/// What `record` does when the channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Drop the new click and count it in `dropped`; the request is not delayed (default).
    #[default]
    DropNewest,
    /// Wait up to `timeout` for room, then drop and count. Bounds the delay a request can see.
    Block {
        /// Longest wait.
        timeout: Duration,
    },
}

/// What happened to one recorded click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// In the channel, on its way to the sink.
    Queued,
    /// The channel was full: counted in `dropped`.
    Dropped,
    /// The pipeline is shutting down or gone: counted in `dropped` and `dropped_closed`.
    Closed,
}

/// Why [`ClickRecorder::try_record`] handed the click back (nothing was counted).
#[derive(Debug)]
#[non_exhaustive]
pub enum TryRecordError {
    /// The channel is full.
    Full(Box<Click>),
    /// The pipeline is shutting down or gone.
    Closed(Box<Click>),
}

/// A counter split over cache lines so request threads don't contend on one line.
#[derive(Debug, Default)]
pub(crate) struct Sharded([CachePadded<AtomicU64>; SHARDS]);

impl Sharded {
    pub(crate) fn add(&self, n: u64) {
        let i = crate::shard::index();
        self.0[i].fetch_add(n, Ordering::SeqCst);
    }
    fn sub(&self, n: u64) {
        let i = crate::shard::index();
        self.0[i].fetch_sub(n, Ordering::SeqCst);
    }
    pub(crate) fn sum(&self) -> u64 {
        self.0
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .fold(0u64, u64::wrapping_add)
    }
}

/// State shared by recorders, the drain thread and the guard.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) recorded: Sharded,
    pub(crate) dropped: Sharded,
    pub(crate) dropped_closed: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) batches: AtomicU64,
    /// Clicks of this process in the spool now (a gauge).
    pub(crate) spooled: AtomicU64,
    pub(crate) spooled_total: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) recovered_failed: AtomicU64,
    pub(crate) spool_corrupt: AtomicU64,
    pub(crate) spool_bytes: AtomicU64,
    pub(crate) closing: AtomicBool,
    pub(crate) sleeping: AtomicBool,
    pub(crate) max_batch: usize,
    pub(crate) last_error: Mutex<Option<String>>,
    pub(crate) drain: OnceLock<Thread>,
    /// The channel's receiving end (the drain thread and, at a shutdown timeout, the guard).
    pub(crate) rx: Receiver<Click>,
    /// When a shutdown must be over.
    pub(crate) deadline: OnceLock<Instant>,
}

impl Shared {
    pub(crate) fn new(rx: Receiver<Click>, max_batch: usize) -> Shared {
        Shared {
            recorded: Sharded::default(),
            dropped: Sharded::default(),
            dropped_closed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            spooled_total: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            recovered_failed: AtomicU64::new(0),
            spool_corrupt: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            max_batch,
            last_error: Mutex::new(None),
            drain: OnceLock::new(),
            rx,
            deadline: OnceLock::new(),
        }
    }

    pub(crate) fn begin_shutdown(&self, timeout: Duration) {
        let _ = self.deadline.set(Instant::now() + timeout);
        self.closing.store(true, Ordering::SeqCst);
    }

    pub(crate) fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|d| Instant::now() >= *d)
    }

    pub(crate) fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        let done = self.delivered.load(Ordering::SeqCst)
            + self.dropped.sum()
            + self.failed.load(Ordering::SeqCst)
            + self.spooled.load(Ordering::SeqCst);
        self.recorded.sum().saturating_sub(done)
    }

    pub(crate) fn wake_drain(&self) {
        if let Some(t) = self.drain.get() {
            t.unpark();
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        // Terminal counters first, `recorded` last: every click is counted recorded before it
        // can be counted anything else, so in_flight is never negative. `spooled` is read after
        // `delivered` and `failed`: a click leaving the spool is taken off `spooled` before it
        // is added to those, so it is never seen twice.
        let delivered = self.delivered.load(Ordering::SeqCst);
        let dropped = self.dropped.sum();
        let failed = self.failed.load(Ordering::SeqCst);
        let spooled = self.spooled.load(Ordering::SeqCst);
        let dropped_closed = self.dropped_closed.load(Ordering::SeqCst);
        let retries = self.retries.load(Ordering::SeqCst);
        let batches = self.batches.load(Ordering::SeqCst);
        let queue_len = self.rx.len() as u64;
        let recorded = self.recorded.sum();
        Stats {
            recorded,
            delivered,
            dropped,
            dropped_closed,
            failed,
            in_flight: recorded.saturating_sub(delivered + dropped + failed + spooled),
            spooled,
            spooled_total: self.spooled_total.load(Ordering::SeqCst),
            replayed: self.replayed.load(Ordering::SeqCst),
            recovered: self.recovered.load(Ordering::SeqCst),
            recovered_failed: self.recovered_failed.load(Ordering::SeqCst),
            spool_corrupt: self.spool_corrupt.load(Ordering::SeqCst),
            spool_bytes: self.spool_bytes.load(Ordering::SeqCst),
            retries,
            batches,
            queue_len,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Counters of a click pipeline.
///
/// At every instant `recorded = delivered + dropped + failed + spooled + in_flight` (read in an
/// order that keeps `in_flight ≥ 0`); after a graceful shutdown `in_flight = 0`. Without a
/// spool `spooled` is always 0 and this is `recorded = delivered + dropped + failed + in_flight`.
///
/// Every counter except `spooled`, `in_flight`, `queue_len` and `spool_bytes` (gauges) only
/// grows. A click of this process that goes to the spool is counted in `spooled` (and
/// `spooled_total`); when it is replayed it leaves `spooled` for `delivered` (and `replayed`) or
/// `failed`. Clicks in the spool that an *earlier* process recorded are outside this process's
/// `recorded` and are counted only in `recovered` / `recovered_failed` (and `spool_corrupt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Clicks handed to `record`.
    pub recorded: u64,
    /// Clicks a sink accepted.
    pub delivered: u64,
    /// Clicks dropped: channel full, or recorded after shutdown began (`dropped_closed`).
    pub dropped: u64,
    /// The part of `dropped` recorded after shutdown began.
    pub dropped_closed: u64,
    /// Clicks a sink gave up on after retries (or refused for good, or panicked on).
    pub failed: u64,
    /// Clicks in the channel or in a batch being written.
    pub in_flight: u64,
    /// Clicks recorded by this process that are in the spool on disk now (a gauge; feature
    /// `spool`). After a shutdown these wait for the next start.
    pub spooled: u64,
    /// Clicks of this process ever appended to the spool.
    pub spooled_total: u64,
    /// Clicks of this process delivered from the spool (part of `delivered`).
    pub replayed: u64,
    /// Clicks spooled by an earlier process and delivered by this one (not in `recorded`).
    pub recovered: u64,
    /// Clicks spooled by an earlier process that the sink refused for good or panicked on (not
    /// in `recorded`).
    pub recovered_failed: u64,
    /// Spool lines skipped because they do not parse as a click (a torn write after a crash);
    /// file and line are in `last_error`. If the line was this process's, that click is also
    /// counted `failed`.
    pub spool_corrupt: u64,
    /// Bytes of the spool's segments on disk now.
    pub spool_bytes: u64,
    /// Batch write attempts that were retried.
    pub retries: u64,
    /// Batches delivered.
    pub batches: u64,
    /// Clicks waiting in the channel now.
    pub queue_len: u64,
    /// The last sink error, if any.
    pub last_error: Option<String>,
}

/// The request-path handle of a click pipeline: cheap to clone, never blocks by default.
///
/// `record` increments a per-thread-sharded counter and does one `try_send` on a bounded
/// crossbeam channel: no lock, no syscall, no allocation beyond the click itself. When the
/// channel is full the click is dropped and counted ([`FullPolicy::DropNewest`], the default) or
/// the request waits at most a bounded time ([`FullPolicy::Block`]). Every click ends up counted as
/// delivered, dropped or failed, or, with a spool, spooled on disk until it is delivered (see
/// [`Stats`]).
///
/// Created with its drain thread by [`ClickRecorder::builder`].
#[derive(Clone)]
pub struct ClickRecorder {
    pub(crate) tx: Sender<Click>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) full: FullPolicy,
}

impl std::fmt::Debug for ClickRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickRecorder")
            .field("full", &self.full)
            .field("queued", &self.tx.len())
            .finish()
    }
}

impl ClickRecorder {
    /// Records a click; never panics, and never waits unless the policy is `Block`.
    #[inline]
    pub fn record(&self, click: Click) -> Recorded {
        let s = &*self.shared;
        s.recorded.add(1);
        if s.closing.load(Ordering::SeqCst) {
            return self.closed();
        }
        let sent = match self.full {
            FullPolicy::DropNewest => match self.tx.try_send(click) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(Recorded::Dropped),
                Err(TrySendError::Disconnected(_)) => Err(Recorded::Closed),
            },
            FullPolicy::Block { timeout } => match self.tx.send_timeout(click, timeout) {
                Ok(()) => Ok(()),
                Err(SendTimeoutError::Timeout(_)) => Err(Recorded::Dropped),
                Err(SendTimeoutError::Disconnected(_)) => Err(Recorded::Closed),
            },
        };
        match sent {
            Ok(()) => {
                if s.sleeping.load(Ordering::Relaxed) && self.tx.len() >= s.max_batch {
                    s.wake_drain();
                }
                Recorded::Queued
            }
            Err(Recorded::Closed) => self.closed(),
            Err(_) => {
                s.dropped.add(1);
                Recorded::Dropped
            }
        }
    }

    fn closed(&self) -> Recorded {
        self.shared.dropped_closed.fetch_add(1, Ordering::SeqCst);
        self.shared.dropped.add(1);
        Recorded::Closed
    }

    /// Records a click if there is room right now, or hands it back (nothing is counted then).
    pub fn try_record(&self, click: Click) -> Result<(), TryRecordError> {
        let s = &*self.shared;
        if s.closing.load(Ordering::SeqCst) {
            return Err(TryRecordError::Closed(Box::new(click)));
        }
        s.recorded.add(1);
        match self.tx.try_send(click) {
            Ok(()) => {
                if s.sleeping.load(Ordering::Relaxed) && self.tx.len() >= s.max_batch {
                    s.wake_drain();
                }
                Ok(())
            }
            Err(e) => {
                s.recorded.sub(1);
                Err(match e {
                    TrySendError::Full(c) => TryRecordError::Full(Box::new(c)),
                    TrySendError::Disconnected(c) => TryRecordError::Closed(Box::new(c)),
                })
            }
        }
    }

    /// The pipeline's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}
