//! `FanoutSink`: the same clicks to several sinks.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ClickSink, SinkError};
use crate::click::Click;

/// Writes every batch to each of several sinks; one failing doesn't stop the others.
///
/// Accounting: the pipeline counts a batch `delivered` only when **every** child has taken it.
/// When some children fail, `write` returns an error and the pipeline retries the batch; on that
/// retry only the children that have not yet taken it are written again (a child that succeeded
/// does not see the batch twice). If the pipeline gives up, the batch counts `failed` in the
/// pipeline while the children that took it keep it. Per-child delivered/failed counts are in
/// [`FanoutStats`]. A panic in one child is caught and treated as that child's error.
pub struct FanoutSink {
    children: Vec<Box<dyn ClickSink>>,
    done: Vec<bool>,
    current: Option<(u128, usize)>,
    stats: FanoutStats,
}

/// Per-child counters of a [`FanoutSink`], readable while it runs (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct FanoutStats {
    delivered: Arc<Vec<AtomicU64>>,
    errors: Arc<Vec<AtomicU64>>,
}

impl FanoutStats {
    /// Clicks child `i` has taken.
    pub fn delivered(&self, i: usize) -> u64 {
        self.delivered
            .get(i)
            .map_or(0, |a| a.load(Ordering::Relaxed))
    }
    /// Failed `write` calls of child `i`.
    pub fn errors(&self, i: usize) -> u64 {
        self.errors.get(i).map_or(0, |a| a.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for FanoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutSink")
            .field("children", &self.children.len())
            .finish()
    }
}

impl FanoutSink {
    /// A fan-out over `children`.
    pub fn new(children: Vec<Box<dyn ClickSink>>) -> Self {
        let n = children.len();
        FanoutSink {
            children,
            done: vec![false; n],
            current: None,
            stats: FanoutStats {
                delivered: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
                errors: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
            },
        }
    }

    /// The per-child counters.
    pub fn stats(&self) -> FanoutStats {
        self.stats.clone()
    }
}

impl ClickSink for FanoutSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        let id = (
            batch.first().map_or(0, |c| c.click_id.as_u128()),
            batch.len(),
        );
        if self.current != Some(id) {
            self.current = Some(id);
            self.done.iter_mut().for_each(|d| *d = false);
        }
        let mut first_err = None;
        let mut failed = 0;
        for (i, child) in self.children.iter_mut().enumerate() {
            if self.done[i] {
                continue;
            }
            let r = catch_unwind(AssertUnwindSafe(|| child.write(batch)))
                .unwrap_or_else(|_| Err(SinkError::Transient("sink panicked".into())));
            match r {
                Ok(()) => {
                    self.done[i] = true;
                    self.stats.delivered[i].fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    failed += 1;
                    self.stats.errors[i].fetch_add(1, Ordering::Relaxed);
                    first_err.get_or_insert(format!("sink {i}: {e}"));
                }
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(SinkError::Transient(format!(
                "{failed} of {} sinks failed; {e}",
                self.children.len()
            ))),
        }
    }

    fn attach(&mut self, ctx: &super::DrainContext) {
        for c in &mut self.children {
            c.attach(ctx);
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut first = Ok(());
        for c in &mut self.children {
            if let Err(e) = c.flush() {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}
