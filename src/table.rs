//! `LinkTable`: the current snapshot behind an atomic pointer, and everything that replaces it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::error::LoadError;
use crate::link::DefaultRedirect;
use crate::reader::TableReader;
use crate::redirect::Redirect;
use crate::set::LinkSet;
use crate::snapshot::{BuildOptions, Diff, Snapshot};

/// What a successful reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Keys that are new.
    pub added: usize,
    /// Keys that are gone.
    pub removed: usize,
    /// Keys whose link changed.
    pub changed: usize,
    /// Links in the new table.
    pub links: usize,
    /// Version of the snapshot now serving.
    pub version: u64,
}

/// The link table: resolves paths against the current [`Snapshot`] and swaps in new ones.
///
/// # Guarantees
/// - **Readers never block and never see a torn state.** A resolve does one atomic load of the
///   current snapshot (arc-swap) and answers from that snapshot alone: during a reload it returns
///   the old or the new target, never a mix.
/// - **Writers never wait for readers.** A reload builds and validates the whole new snapshot off
///   the request path, then publishes it with one atomic store. Concurrent reloads are serialised
///   among themselves (a writer mutex), never against readers.
/// - **All-or-nothing.** Any invalid entry, duplicate key or redirect loop fails the whole reload;
///   the old snapshot keeps serving and the error lists every bad entry (up to a cap) with its
///   line or index.
/// - **Zero allocation for static links.** Every static target's `Location` is prebuilt at load;
///   a resolve of such a link allocates nothing and validates nothing. Forwarded paths/queries
///   build their `Location` per request.
/// - **No open redirect.** Every destination comes from the table; nothing in the request can name
///   a destination (only `forward_path`/`forward_query` append to a link's own target, encoded).
/// - **Memory.** The table keeps the current snapshot and the previous one (for
///   [`rollback`](LinkTable::rollback)); older snapshots are freed when the last [`Redirect`]
///   that points into them is dropped, and when every [`TableReader`] that last answered from
///   them has resolved again or been dropped.
///
/// For a thread that resolves many requests, [`reader`](LinkTable::reader) gives a
/// [`TableReader`]: the same answers, borrowed instead of reference-counted.
///
/// Cloning a `LinkTable` is cheap and shares the table.
///
/// ```
/// use linkgate::{Link, LinkTable};
/// let table = LinkTable::new();
/// table.reload(vec![Link::new("/go/a", "https://a.example/")?])?;
/// assert_eq!(table.resolve("/go/A/").location(), "https://a.example/");
/// assert!(table.resolve("/go/nope").is_default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LinkTable {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) current: ArcSwap<Snapshot>,
    previous: Mutex<Option<Arc<Snapshot>>>,
    writer: Mutex<()>,
    options: BuildOptions,
    max_removed_fraction: Option<f64>,
    clock: Option<fn() -> i64>,
    versions: AtomicU64,
}

/// Builds a [`LinkTable`].
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `case_sensitive` | `false` (nginx `map` ignores case) |
/// | `default_redirect` | `302 → /` |
/// | `own_hosts` | none (only same-site `/...` targets are checked for loops) |
/// | `max_removed_fraction` | none (no guard) |
/// | `clock` | the OS clock (feature `os`); none without it, and then links with a time window never match |
#[derive(Debug, Clone)]
#[must_use]
pub struct TableBuilder {
    options: BuildOptions,
    max_removed_fraction: Option<f64>,
    clock: Option<fn() -> i64>,
}

impl TableBuilder {
    /// Match keys case-sensitively.
    pub fn case_sensitive(mut self, on: bool) -> Self {
        self.options.case_sensitive = on;
        self
    }
    /// The answer for unknown paths when the loaded set declares none.
    pub fn default_redirect(mut self, default: DefaultRedirect) -> Self {
        self.options.default = default;
        self
    }
    /// Hosts that serve this table: absolute targets on them are followed when checking for
    /// redirect loops.
    pub fn own_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.own_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }
    /// Refuse a reload that removes more than this share (0.0–1.0) of the current links unless
    /// it is forced: protects against a truncated file wiping the table.
    pub fn max_removed_fraction(mut self, fraction: f64) -> Self {
        self.max_removed_fraction = Some(fraction.clamp(0.0, 1.0));
        self
    }
    /// The clock used for `not_before`/`not_after` (Unix milliseconds).
    pub fn clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = Some(clock);
        self
    }
    /// An empty table with these settings.
    pub fn build(self) -> LinkTable {
        let empty = Snapshot::empty(&self.options, 0);
        LinkTable {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(empty),
                previous: Mutex::new(None),
                writer: Mutex::new(()),
                options: self.options,
                max_removed_fraction: self.max_removed_fraction,
                clock: self.clock,
                versions: AtomicU64::new(0),
            }),
        }
    }
}

impl Default for LinkTable {
    fn default() -> Self {
        LinkTable::new()
    }
}

/// Expands a template target with a fresh click id (feature `os`; without it the placeholders
/// stay for [`Redirect::expand`]).
fn finish(mut r: Redirect) -> Redirect {
    #[cfg(feature = "os")]
    if r.is_template() {
        r.expand(crate::click_id::ClickId::generate());
    }
    #[cfg(not(feature = "os"))]
    let _ = &mut r;
    r
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave their data inconsistent: recover.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LinkTable {
    /// An empty table with default settings (every path gets `302 → /`).
    pub fn new() -> LinkTable {
        LinkTable::builder().build()
    }

    /// A builder for a table with other settings.
    pub fn builder() -> TableBuilder {
        TableBuilder {
            options: BuildOptions {
                case_sensitive: false,
                default: DefaultRedirect::default(),
                own_hosts: Vec::new(),
            },
            max_removed_fraction: None,
            clock: crate::clock::default_clock(),
        }
    }

    /// A table loaded with `links` (a `Vec<Link>` or a [`LinkSet`]).
    pub fn from_links(links: impl Into<LinkSet>) -> Result<LinkTable, LoadError> {
        let t = LinkTable::new();
        t.reload(links)?;
        Ok(t)
    }

    #[inline]
    pub(crate) fn now(&self, snap: &Snapshot) -> Option<i64> {
        if snap.needs_clock() {
            self.shared.clock.map(|c| c())
        } else {
            None
        }
    }

    /// Resolves a request path (a query string after `?` is used by `forward_query` links only).
    ///
    /// Always answers: the matched link, or the table's default. Never blocks, never allocates
    /// for a static link.
    pub fn resolve(&self, path: &str) -> Redirect {
        let snap = self.shared.current.load();
        let now = self.now(&snap);
        finish(snap.resolve_at(path, now))
    }

    /// A per-thread reader that resolves without taking reference counts: the fastest way to
    /// resolve many requests on one thread (see [`TableReader`]).
    pub fn reader(&self) -> TableReader {
        TableReader::new(self.clone(), self.shared.clone())
    }

    /// Resolves with an explicit time (Unix milliseconds) for `not_before`/`not_after`.
    pub fn resolve_at(&self, path: &str, now_ms: i64) -> Redirect {
        finish(self.shared.current.load().resolve_at(path, Some(now_ms)))
    }

    /// Resolves the path and query of a request.
    pub fn resolve_request(&self, parts: &http::request::Parts) -> Redirect {
        self.resolve_uri(&parts.uri)
    }

    /// Resolves the path and query of a URI.
    pub fn resolve_uri(&self, uri: &http::Uri) -> Redirect {
        finish(self.resolve_uri_raw(uri))
    }

    /// Resolves without expanding templates (the gate expands with the id it records).
    pub(crate) fn resolve_uri_raw(&self, uri: &http::Uri) -> Redirect {
        let snap = self.shared.current.load();
        let now = self.now(&snap);
        // `Uri::path` never holds the query, and `http` drops a fragment when it parses.
        snap.resolve_parts(uri.path(), uri.query(), now)
    }

    /// The snapshot serving now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.current.load_full()
    }

    /// Version of the snapshot serving now (0 for the initial empty table).
    pub fn version(&self) -> u64 {
        self.shared.current.load().version()
    }

    /// Number of links serving now.
    pub fn len(&self) -> usize {
        self.shared.current.load().len()
    }

    /// Whether the table has no links.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds and validates a snapshot from `links` without publishing it.
    pub fn prepare(&self, links: impl Into<LinkSet>) -> Result<Snapshot, LoadError> {
        let version = self.shared.versions.fetch_add(1, Ordering::Relaxed) + 1;
        let current = self.shared.current.load();
        Snapshot::build(links.into(), &self.shared.options, version, Some(&current))
    }

    /// Builds, validates and publishes a new snapshot; the `max_removed_fraction` guard applies.
    pub fn reload(&self, links: impl Into<LinkSet>) -> Result<ReloadReport, LoadError> {
        let snap = self.prepare(links)?;
        self.swap(snap)
    }

    /// Like [`reload`](LinkTable::reload), ignoring the `max_removed_fraction` guard.
    pub fn reload_forced(&self, links: impl Into<LinkSet>) -> Result<ReloadReport, LoadError> {
        let snap = self.prepare(links)?;
        Ok(self
            .publish(snap, false)
            .unwrap_or_else(|_| unreachable!("unguarded publish")))
    }

    /// Publishes a prepared snapshot; the `max_removed_fraction` guard applies.
    pub fn swap(&self, snapshot: Snapshot) -> Result<ReloadReport, LoadError> {
        self.publish(snapshot, true)
    }

    fn publish(&self, snapshot: Snapshot, guarded: bool) -> Result<ReloadReport, LoadError> {
        let _writer = lock(&self.shared.writer);
        let old = self.shared.current.load_full();
        let (added, removed, changed) = old.diff_counts(&snapshot);
        if guarded {
            if let Some(max) = self.shared.max_removed_fraction {
                if !old.is_empty() && removed as f64 > max * old.len() as f64 {
                    return Err(LoadError::TooManyRemoved {
                        removed,
                        current: old.len(),
                        max_fraction: max,
                    });
                }
            }
        }
        let report = ReloadReport {
            added,
            removed,
            changed,
            links: snapshot.len(),
            version: snapshot.version(),
        };
        let new = Arc::new(snapshot);
        let old = self.shared.current.swap(new);
        // The snapshot before `old` is dropped here, on the writer's thread, not a reader's.
        let _dropped = lock(&self.shared.previous).replace(old);
        Ok(report)
    }

    /// Swaps the previous snapshot back in (instant undo of a bad deploy). Calling it again
    /// re-applies the undone snapshot. Returns the version now serving, or `None` if there is no
    /// previous snapshot.
    pub fn rollback(&self) -> Option<u64> {
        let _writer = lock(&self.shared.writer);
        let mut prev = lock(&self.shared.previous);
        let back = prev.take()?;
        let version = back.version();
        let undone = self.shared.current.swap(back);
        *prev = Some(undone);
        Some(version)
    }

    /// What publishing `new` would change, before it is applied.
    pub fn diff(&self, new: &Snapshot) -> Diff {
        self.shared.current.load().diff(new)
    }
}
