//! `MemorySink`: clicks kept in a shared `Vec`, for tests and dashboards.

use std::sync::{Arc, Mutex};

use super::{ClickSink, SinkError};
use crate::click::Click;

/// Appends every click to a shared `Vec`; clone the sink (or call [`MemorySink::clicks`]) to read
/// them while the pipeline runs. Memory grows without bound: for tests, demos and small
/// dashboards, not production traffic.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    clicks: Arc<Mutex<Vec<Click>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the clicks delivered so far.
    pub fn clicks(&self) -> Vec<Click> {
        self.clicks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Number of clicks delivered so far.
    pub fn len(&self) -> usize {
        self.clicks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no click was delivered yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ClickSink for MemorySink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        self.clicks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(batch);
        Ok(())
    }
}
