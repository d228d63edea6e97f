//! The drain's side of the spool: when to spool, when to probe, how to replay, and the counts.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::store::{ReadBatch, Store};
use super::{SpoolConfig, SpoolError};
use crate::click::Click;
use crate::drain::{Drain, Written};
use crate::recorder::Shared;
use crate::sink::ClickSink;

/// The spool as the drain thread holds it.
#[derive(Debug)]
pub(crate) struct Spooler {
    store: Store,
    probe_interval: Duration,
    /// `Some(when to probe next)` while the sink counts as down.
    down: Option<Instant>,
    /// The one immediate probe a shutdown gets has been made.
    shutdown_probed: bool,
    /// Channel length at which, during a replay, a batch is moved to the spool.
    relieve_at: usize,
}

impl Spooler {
    pub(crate) fn open(cfg: &SpoolConfig, capacity: usize) -> Result<Spooler, SpoolError> {
        Ok(Spooler {
            store: Store::open(cfg)?,
            probe_interval: cfg.probe_interval.max(Duration::from_millis(1)),
            down: None,
            shutdown_probed: false,
            relieve_at: (capacity / 2).max(1),
        })
    }

    /// Publishes the gauges known at open (bytes left by an earlier process).
    pub(crate) fn publish(&self, s: &Shared) {
        s.spool_bytes.store(self.store.bytes(), SeqCst);
    }
}

impl<S: ClickSink> Drain<S> {
    /// Replays (or probes a down sink) when it is time. `true` if it did something, so the loop
    /// goes round again instead of parking.
    pub(crate) fn spool_work(&mut self) -> bool {
        let closing = self.shared.closing.load(SeqCst);
        let past = self.shared.past_deadline();
        let Some(sp) = &mut self.spool else {
            return false;
        };
        if sp.store.is_empty() {
            sp.down = None;
            return false;
        }
        if past {
            return false;
        }
        match sp.down {
            Some(at) => {
                let first_at_shutdown = closing && !sp.shutdown_probed;
                if Instant::now() < at && !first_at_shutdown {
                    return false;
                }
                sp.shutdown_probed |= closing;
                self.replay_one(1);
            }
            None => {
                self.relieve_channel();
                self.replay_one(self.retry.max_attempts);
            }
        }
        true
    }

    /// Sends the next spooled batch to the sink with `attempts` attempts, and accounts for it.
    fn replay_one(&mut self, attempts: u32) {
        let Some(sp) = &mut self.spool else { return };
        let b = match sp.store.read(self.max_batch) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                sp.down = Some(Instant::now() + sp.probe_interval);
                self.shared
                    .set_error(format!("spool replay: {}", e.chain()));
                return;
            }
        };
        let written = if b.clicks.is_empty() {
            Written::Ok
        } else {
            self.write(&b.clicks, attempts)
        };
        let s = &*self.shared;
        let n = b.clicks.len() as u64;
        match written {
            Written::Ok => {
                if b.own {
                    s.spooled.fetch_sub(n, SeqCst);
                    s.replayed.fetch_add(n, SeqCst);
                    s.delivered.fetch_add(n, SeqCst);
                } else {
                    s.recovered.fetch_add(n, SeqCst);
                }
                if n > 0 {
                    s.batches.fetch_add(1, SeqCst);
                }
            }
            Written::GaveUp { attempts, error } => {
                s.set_error(format!(
                    "spool replay: batch of {n} failed after {attempts} attempt(s): {error}; \
                     the sink counts as down, the batch stays in the spool"
                ));
                if let Some(sp) = &mut self.spool {
                    sp.down = Some(Instant::now() + sp.probe_interval);
                }
                return;
            }
            Written::Failed(why) => {
                if b.own {
                    s.spooled.fetch_sub(n, SeqCst);
                    s.failed.fetch_add(n, SeqCst);
                } else {
                    s.recovered_failed.fetch_add(n, SeqCst);
                }
                s.set_error(format!("spool replay: {why}"));
            }
        }
        // The sink answered: it is up.
        if let Some(sp) = &mut self.spool {
            sp.down = None;
        }
        self.count_corrupt(&b);
        self.commit(&b);
    }

    fn count_corrupt(&self, b: &ReadBatch) {
        let Some(first) = b.corrupt.first() else {
            return;
        };
        let s = &*self.shared;
        let k = b.corrupt.len() as u64;
        if b.own {
            s.spooled.fetch_sub(k, SeqCst);
            s.failed.fetch_add(k, SeqCst);
        }
        s.spool_corrupt.fetch_add(k, SeqCst);
        let more = match b.corrupt.last() {
            Some(last) if k > 1 => format!("; {k} such lines, the last {last}"),
            _ => String::new(),
        };
        s.set_error(format!(
            "spool: skipped a line that is not a click: {first}{more}"
        ));
    }

    fn commit(&mut self, b: &ReadBatch) {
        let Some(sp) = &mut self.spool else { return };
        if let Err(e) = sp.store.commit(b) {
            self.shared.set_error(e.chain());
        }
        self.shared.spool_bytes.store(sp.store.bytes(), SeqCst);
    }

    /// During a replay, moves a batch from a half-full channel to the tail of the spool so that
    /// new clicks are not dropped while old ones are replayed.
    fn relieve_channel(&mut self) {
        let Some(sp) = &self.spool else { return };
        if self.shared.rx.len() < sp.relieve_at {
            return;
        }
        let batch: Vec<Click> = self.shared.rx.try_iter().take(self.max_batch).collect();
        if !batch.is_empty() {
            self.append(&batch, None);
        }
    }

    /// A channel batch goes behind the spooled ones while the spool is not empty (the sink is
    /// down, or the shutdown deadline stopped the replay). `true` if it was taken.
    pub(crate) fn spool_takes(&mut self, batch: &[Click]) -> bool {
        match &self.spool {
            Some(sp) if !sp.store.is_empty() => {
                self.append(batch, None);
                true
            }
            _ => false,
        }
    }

    /// A channel batch exhausted its retries: spool it and mark the sink down. Hands `why` back
    /// when there is no spool (the caller counts the batch failed).
    pub(crate) fn spool_gave_up(&mut self, batch: &[Click], why: String) -> Option<String> {
        let Some(sp) = self.spool.as_mut() else {
            return Some(why);
        };
        sp.down = Some(Instant::now() + sp.probe_interval);
        self.append(batch, Some(&why));
        None
    }

    /// Whether a shutdown may end as far as the spool is concerned.
    pub(crate) fn spool_idle(&self) -> bool {
        match &self.spool {
            None => true,
            Some(sp) => {
                sp.store.is_empty()
                    || self.shared.past_deadline()
                    || (sp.down.is_some() && sp.shutdown_probed)
            }
        }
    }

    /// At the shutdown deadline: spools what is still queued. `false` without a spool.
    pub(crate) fn spool_queued(&mut self) -> bool {
        if self.spool.is_none() {
            return false;
        }
        // One append (one fsync) for all of it: the guard waits only a little past the deadline.
        let batch: Vec<Click> = self.shared.rx.try_iter().collect();
        if !batch.is_empty() {
            self.append(&batch, Some("not delivered before the shutdown deadline"));
        }
        true
    }

    /// How long the drain may park: not past the next probe.
    pub(crate) fn spool_park(&self, d: Duration) -> Duration {
        match self.spool.as_ref().and_then(|sp| sp.down) {
            Some(at) => d.min(at.saturating_duration_since(Instant::now())),
            None => d,
        }
    }

    /// Appends to the spool and accounts: what fits is `spooled`, the rest `failed`.
    fn append(&mut self, batch: &[Click], why: Option<&str>) {
        let Some(sp) = &mut self.spool else { return };
        let r = sp.store.append(batch);
        let s = &*self.shared;
        let (n, k) = (batch.len() as u64, r.written as u64);
        s.spooled.fetch_add(k, SeqCst);
        s.spooled_total.fetch_add(k, SeqCst);
        s.spool_bytes.store(sp.store.bytes(), SeqCst);
        let why = why.map(|w| format!("{w}; ")).unwrap_or_default();
        match r.error {
            Some(e) => {
                s.failed.fetch_add(n - k, SeqCst);
                s.set_error(format!(
                    "{why}{k} of {n} clicks spooled, {} counted failed: {e}",
                    n - k
                ));
            }
            None if !why.is_empty() => s.set_error(format!("{why}spooled")),
            None => {}
        }
    }
}
