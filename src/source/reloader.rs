//! `Reloader`: runs a [`LinkSource`] on a background thread and swaps its links into a table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};

use super::{LinkSource, Notifier};
use crate::error::LoadError;
use crate::table::{LinkTable, ReloadReport};

/// What one reload attempt did.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// A new snapshot is serving.
    Reloaded(ReloadReport),
    /// The source's content hash equals the serving one: nothing to do.
    Unchanged,
    /// The load or the validation failed; the last good table keeps serving.
    Failed(LoadError),
}

/// Counters of a [`Reloader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloaderStats {
    /// Successful reloads (new snapshot published).
    pub reloads: u64,
    /// Failed attempts (the old table kept serving).
    pub reload_failures: u64,
    /// Attempts skipped because the content was unchanged.
    pub unchanged: u64,
    /// When the last reload succeeded.
    pub last_success: Option<SystemTime>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Version of the snapshot serving now.
    pub version: u64,
}

type Callback = Box<dyn FnMut(&ReloadOutcome) + Send>;

#[derive(Debug, Default)]
struct Shared {
    reloads: AtomicU64,
    failures: AtomicU64,
    unchanged: AtomicU64,
    last_success: Mutex<Option<SystemTime>>,
    last_error: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// Configures a [`Reloader`].
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `resync_every` | 60 s (a full re-read even without a change notification: the safety net) |
/// | `on_reload` | none |
/// | `force` | `false` (the table's `max_removed_fraction` guard applies) |
#[must_use]
pub struct ReloaderBuilder<S> {
    table: LinkTable,
    source: S,
    resync: Duration,
    callback: Option<Callback>,
    force: bool,
}

impl<S> std::fmt::Debug for ReloaderBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloaderBuilder")
            .field("resync", &self.resync)
            .field("force", &self.force)
            .finish()
    }
}

impl<S: LinkSource> ReloaderBuilder<S> {
    /// Re-read the source this often even without a notification.
    pub fn resync_every(mut self, d: Duration) -> Self {
        self.resync = d.max(Duration::from_millis(10));
        self
    }
    /// Called on the reloader's thread after every attempt (log it, export metrics...).
    pub fn on_reload(mut self, f: impl FnMut(&ReloadOutcome) + Send + 'static) -> Self {
        self.callback = Some(Box::new(f));
        self
    }
    /// Bypass the table's `max_removed_fraction` guard.
    pub fn force(mut self, on: bool) -> Self {
        self.force = on;
        self
    }

    /// Starts the watch and the `linkgate-reload` thread; the first load happens at once on
    /// that thread.
    pub fn spawn(mut self) -> Result<Reloader, LoadError> {
        let (tx, rx) = bounded(1);
        let notifier = Notifier { tx };
        self.source.watch(notifier.clone())?;
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            table: self.table.clone(),
            source: self.source,
            rx,
            resync: self.resync,
            callback: self.callback,
            force: self.force,
            shared: shared.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("linkgate-reload".into())
            .spawn(move || worker.run())
            .map_err(|e| LoadError::Source(format!("starting the reload thread: {e}")))?;
        Ok(Reloader {
            table: self.table,
            notifier,
            shared,
            handle: Some(handle),
        })
    }
}

/// Keeps a [`LinkTable`] in step with a [`LinkSource`] from a background thread
/// (`linkgate-reload`).
///
/// Each attempt loads the whole source, skips it if the content hash is unchanged, otherwise
/// builds and validates a new snapshot and publishes it with one atomic swap. A failed load or
/// validation leaves the last good table serving and is counted and reported; the table's
/// `max_removed_fraction` guard applies. Requests never wait for any of this.
///
/// The thread is synchronous and owns the source: async sources (Redis, PostgreSQL) drive their
/// client on a small runtime of their own, so no runtime of yours is needed or blocked.
/// Dropping the reloader stops the thread after its current attempt.
pub struct Reloader {
    table: LinkTable,
    notifier: Notifier,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Reloader {
    /// Starts configuring a reloader of `table` from `source`.
    pub fn builder<S: LinkSource>(table: LinkTable, source: S) -> ReloaderBuilder<S> {
        ReloaderBuilder {
            table,
            source,
            resync: Duration::from_secs(60),
            callback: None,
            force: false,
        }
    }

    /// Asks for a reload now (what the examples do on `SIGHUP`).
    pub fn trigger(&self) {
        self.notifier.notify();
    }

    /// A handle that can trigger reloads from elsewhere (a signal handler thread...).
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// The counters now.
    pub fn stats(&self) -> ReloaderStats {
        let s = &self.shared;
        ReloaderStats {
            reloads: s.reloads.load(Ordering::SeqCst),
            reload_failures: s.failures.load(Ordering::SeqCst),
            unchanged: s.unchanged.load(Ordering::SeqCst),
            last_success: *s.last_success.lock().unwrap_or_else(|e| e.into_inner()),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            version: self.table.version(),
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.notifier.notify();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Worker<S> {
    table: LinkTable,
    source: S,
    rx: Receiver<()>,
    resync: Duration,
    callback: Option<Callback>,
    force: bool,
    shared: Arc<Shared>,
}

impl<S: LinkSource> Worker<S> {
    fn run(mut self) {
        loop {
            self.attempt();
            match self.rx.recv_timeout(self.resync) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn attempt(&mut self) {
        let outcome = match self.source.load() {
            Err(e) => ReloadOutcome::Failed(e),
            Ok(set) => {
                let hash = set.content_hash();
                if self.table.snapshot().content_hash() == hash {
                    ReloadOutcome::Unchanged
                } else {
                    let r = if self.force {
                        self.table.reload_forced(set)
                    } else {
                        self.table.reload(set)
                    };
                    match r {
                        Ok(report) => ReloadOutcome::Reloaded(report),
                        Err(e) => ReloadOutcome::Failed(e),
                    }
                }
            }
        };
        let s = &self.shared;
        match &outcome {
            ReloadOutcome::Reloaded(_) => {
                s.reloads.fetch_add(1, Ordering::SeqCst);
                *s.last_success.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
            }
            ReloadOutcome::Unchanged => {
                s.unchanged.fetch_add(1, Ordering::SeqCst);
            }
            ReloadOutcome::Failed(e) => {
                *s.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("{}: {e}", self.source.describe()));
                s.failures.fetch_add(1, Ordering::SeqCst);
            }
        }
        if let Some(cb) = &mut self.callback {
            cb(&outcome);
        }
    }
}
