//! `FnSink`: a closure as a sink, with an optional flush.

use super::{ClickSink, SinkError};
use crate::click::Click;

/// A sink made of closures: one for `write`, optionally one for `flush`.
///
/// ```
/// use linkgate::{FnSink, SinkError};
/// let sink = FnSink::new(|batch: &[linkgate::Click]| {
///     for c in batch { println!("{}", c.click_id); }
///     Ok::<(), SinkError>(())
/// });
/// ```
pub struct FnSink<W, F = fn() -> Result<(), SinkError>> {
    write: W,
    flush: Option<F>,
}

impl<W> FnSink<W>
where
    W: FnMut(&[Click]) -> Result<(), SinkError> + Send + 'static,
{
    /// A sink that calls `write` for each batch.
    pub fn new(write: W) -> Self {
        FnSink { write, flush: None }
    }
}

impl<W, F> FnSink<W, F>
where
    W: FnMut(&[Click]) -> Result<(), SinkError> + Send + 'static,
    F: FnMut() -> Result<(), SinkError> + Send + 'static,
{
    /// Adds a flush closure.
    pub fn with_flush<G>(self, flush: G) -> FnSink<W, G>
    where
        G: FnMut() -> Result<(), SinkError> + Send + 'static,
    {
        FnSink {
            write: self.write,
            flush: Some(flush),
        }
    }
}

impl<W, F> std::fmt::Debug for FnSink<W, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnSink")
            .field("flush", &self.flush.is_some())
            .finish()
    }
}

impl<W, F> ClickSink for FnSink<W, F>
where
    W: FnMut(&[Click]) -> Result<(), SinkError> + Send + 'static,
    F: FnMut() -> Result<(), SinkError> + Send + 'static,
{
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        (self.write)(batch)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        match &mut self.flush {
            Some(f) => f(),
            None => Ok(()),
        }
    }
}
