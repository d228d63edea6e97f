//! Where links come from, and the [`Reloader`] that keeps a [`LinkTable`](crate::LinkTable) in
//! step with them.
//!
//! A [`LinkSource`] does a full load on demand and, optionally, tells the reloader when it may
//! have changed (through a [`Notifier`]). The reloader runs on its own thread: it loads, builds
//! and validates a whole new snapshot, swaps it in, and reports every outcome. Sources with no
//! push notification are re-read on the reloader's resync interval.

mod file;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod reloader;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresConfigError, PostgresSource};
#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_REDIS_URL, RedisLinkStore, RedisLinksConfig, RedisSource, RedisStoreError,
};
pub use file::FileSource;
pub use reloader::{ReloadOutcome, Reloader, ReloaderBuilder, ReloaderStats};

use crossbeam_channel::Sender;

use crate::error::LoadError;
use crate::set::LinkSet;

/// Wakes a [`Reloader`]: "the source may have changed". Cheap to clone; never blocks (a wake-up
/// already pending absorbs the next ones).
#[derive(Debug, Clone)]
pub struct Notifier {
    pub(crate) tx: Sender<()>,
}

impl Notifier {
    /// Asks for a reload.
    pub fn notify(&self) {
        let _ = self.tx.try_send(());
    }
}

/// A place links are loaded from: a file, Redis, PostgreSQL...
///
/// `load` is called on the reloader's thread only; it may block (I/O), never on a request.
pub trait LinkSource: Send + 'static {
    /// Reads the whole set of links.
    fn load(&mut self) -> Result<LinkSet, LoadError>;

    /// Arranges for `notifier.notify()` to be called when the source may have changed (a file
    /// watch, a pub/sub subscription...). Called once, before the first load. The default does
    /// nothing: the source is then only re-read on the reloader's resync interval.
    fn watch(&mut self, notifier: Notifier) -> Result<(), LoadError> {
        let _ = notifier;
        Ok(())
    }

    /// A short description for logs ("file links.map", "redis hash links").
    fn describe(&self) -> String {
        "link source".into()
    }
}
