//! `CountingSink`: per-key click counts in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{ClickSink, SinkError};
use crate::click::Click;

/// Counts clicks per key (matched and unmatched separately), readable while running via a clone.
/// Memory is one entry per distinct key seen (unmatched paths included: bound them with the
/// gate's `record_unmatched(false)` if unknown paths are attacker-controlled).
#[derive(Debug, Clone, Default)]
pub struct CountingSink {
    counts: Arc<Mutex<HashMap<(Bytes, bool), u64>>>,
}

impl CountingSink {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clicks counted for a matched link key.
    pub fn count(&self, key: &str) -> u64 {
        let m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(Bytes::copy_from_slice(key.as_bytes()), true))
            .copied()
            .unwrap_or(0)
    }

    /// All counts: `(key, matched) → clicks`.
    pub fn counts(&self) -> HashMap<(String, bool), u64> {
        let m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|((k, matched), n)| ((String::from_utf8_lossy(k).into_owned(), *matched), *n))
            .collect()
    }

    /// Total clicks counted.
    pub fn total(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl ClickSink for CountingSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for c in batch {
            *m.entry((c.key.clone(), c.matched)).or_insert(0) += 1;
        }
        Ok(())
    }
}
