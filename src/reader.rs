//! `TableReader` and `Resolved`: resolving without touching a shared reference count.

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arc_swap::cache::Cache;
use http::{HeaderValue, Response, StatusCode, header};

use crate::key;
use crate::redirect::{Redirect, cache_control};
use crate::snapshot::{NONE, Snapshot};
use crate::table::{LinkTable, Shared};

/// A per-thread handle on a [`LinkTable`] that resolves without any atomic read-modify-write.
///
/// [`LinkTable::resolve`] returns an owned [`Redirect`]: it pins the current snapshot (two atomic
/// operations in `arc-swap`) and clones the `Location` and the key out of it (two reference
/// counts taken, and dropped again with the `Redirect`). Each of those locked instructions is a
/// full barrier on x86: for a table in cache they are most of a resolve's time (BENCHMARKS.md:
/// 77 ns owned against 18.5 ns borrowed), for a table much bigger than the cache about a tenth.
/// A `TableReader` keeps its own `Arc` of the snapshot it last used and, on each resolve, only
/// compares it with the table's current pointer (one plain load); the answer, a [`Resolved`],
/// borrows from that snapshot instead of cloning out of it.
///
/// # Guarantees
/// - **Freshness:** every resolve first compares its snapshot with the table's current pointer
///   (the relaxed load `arc_swap::Cache` does), so it follows a reload on its next resolve once
///   the new pointer is visible to its thread: at once on the thread that called `reload`, on
///   other threads as soon as the store reaches them (the time any atomic store takes; there is
///   no polling interval). When the pointer differs, the new snapshot is taken with a full,
///   synchronising load, so a resolve never sees a mix of two snapshots.
/// - **Never blocks, never allocates** for a static link (forwarded query/path and templates
///   build their `Location`, as with `resolve`).
/// - **Memory:** a reader holds the snapshot it last resolved against until its next resolve or
///   until it is dropped, so an idle reader keeps one old snapshot alive after a reload. Keep
///   readers per worker thread (or per connection), not in long-lived idle places.
/// - **One per thread:** `resolve` takes `&mut self` (it may refresh the cached snapshot), so a
///   reader is not shared between threads; make one per thread with [`LinkTable::reader`] or
///   `clone()`. It is `Send`, so it may move with a task.
///
/// ```
/// use linkgate::{Link, LinkTable};
///
/// let table = LinkTable::from_links(vec![Link::new("/go/a", "https://a.example/")?])?;
/// let mut reader = table.reader();
/// let r = reader.resolve("/go/A/");
/// assert_eq!(r.location(), "https://a.example/");
/// assert_eq!(r.key(), Some("/go/a"));
/// let response = r.into_response(); // or r.to_redirect() for an owned Redirect
/// assert_eq!(response.status(), 302);
///
/// table.reload(vec![Link::new("/go/a", "https://b.example/")?])?;
/// assert_eq!(reader.resolve("/go/a").location(), "https://b.example/");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TableReader {
    /// The same shared state `cache` watches: `Cache` does not hand back what it watches, and
    /// the reader needs the table's clock and [`table`](TableReader::table).
    table: LinkTable,
    cache: Cache<Current, Arc<Snapshot>>,
}

/// The table's shared state, dereferencing to its current-snapshot pointer (what
/// `arc_swap::Cache` watches).
#[derive(Debug, Clone)]
pub(crate) struct Current(pub(crate) Arc<Shared>);

impl Deref for Current {
    type Target = ArcSwap<Snapshot>;
    fn deref(&self) -> &ArcSwap<Snapshot> {
        &self.0.current
    }
}

impl TableReader {
    pub(crate) fn new(table: LinkTable, shared: Arc<Shared>) -> TableReader {
        TableReader {
            table,
            cache: Cache::new(Current(shared)),
        }
    }

    /// Resolves a request path (a query after `?` is used by `forward_query` links only); the
    /// same answer as [`LinkTable::resolve`], borrowed instead of owned.
    #[inline]
    pub fn resolve(&mut self, path: &str) -> Resolved<'_> {
        let (path, query) = key::split_query(path);
        self.resolve_parts(path, query)
    }

    /// Resolves the path and query of a request.
    #[inline]
    pub fn resolve_request(&mut self, parts: &http::request::Parts) -> Resolved<'_> {
        self.resolve_uri(&parts.uri)
    }

    /// Resolves the path and query of a URI.
    #[inline]
    pub fn resolve_uri(&mut self, uri: &http::Uri) -> Resolved<'_> {
        self.resolve_parts(uri.path(), uri.query())
    }

    #[inline]
    fn resolve_parts(&mut self, path: &str, query: Option<&str>) -> Resolved<'_> {
        let snap: &Snapshot = self.cache.load();
        let now = self.table.now(snap);
        snap.resolve_borrowed(path, query, now).finish()
    }

    /// The snapshot this reader answers from now (after checking for a newer one).
    pub fn snapshot(&mut self) -> &Snapshot {
        self.cache.load()
    }

    /// The table this reader reads.
    pub fn table(&self) -> &LinkTable {
        &self.table
    }
}

/// The answer of a [`TableReader`]: a [`Redirect`] that borrows from its snapshot.
///
/// It carries the same facts as a `Redirect` (status, `Location`, the matched link's key, tags,
/// index and cache lifetime) and turns into one with [`to_redirect`](Resolved::to_redirect) when
/// it must outlive the reader's next resolve (across an `.await`, into a click).
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    snap: &'a Snapshot,
    /// Entry index, or `NONE` for the default.
    index: u32,
    suffix_len: u32,
    location: Cow<'a, HeaderValue>,
    click_id: Option<crate::ClickId>,
}

impl<'a> Resolved<'a> {
    pub(crate) fn new(
        snap: &'a Snapshot,
        index: u32,
        location: Cow<'a, HeaderValue>,
        suffix_len: u32,
    ) -> Resolved<'a> {
        Resolved {
            snap,
            index,
            suffix_len,
            location,
            click_id: None,
        }
    }

    /// Expands a template target with a fresh click id (feature `os`), as `LinkTable::resolve`
    /// does.
    #[inline]
    fn finish(self) -> Self {
        #[cfg(feature = "os")]
        if self.snap.is_template(self.index) {
            return self.expand_fresh();
        }
        self
    }

    #[cfg(feature = "os")]
    #[cold]
    fn expand_fresh(mut self) -> Self {
        let id = crate::ClickId::generate();
        let enc = id.encode();
        let id_str = std::str::from_utf8(&enc).unwrap_or("");
        let key = self.key().unwrap_or("");
        self.location = Cow::Owned(crate::template::expand(&self.location, id_str, key));
        self.click_id = Some(id);
        self
    }

    /// The redirect status (301, 302, 303, 307 or 308).
    pub fn status(&self) -> StatusCode {
        self.snap.status_of(self.index)
    }

    /// The `Location` to send.
    pub fn location(&self) -> &HeaderValue {
        &self.location
    }

    /// Whether a link matched.
    pub fn matched(&self) -> bool {
        self.index != NONE
    }

    /// Whether the table's default answered (no link matched).
    pub fn is_default(&self) -> bool {
        self.index == NONE
    }

    /// The matched link's key as stored (lower-cased in a case-insensitive table; without `/*`
    /// for a prefix key), or `None` for the default.
    pub fn key(&self) -> Option<&'a str> {
        self.matched().then(|| self.snap.stored_key(self.index))
    }

    /// The matched link's tags (empty for the default).
    pub fn tags(&self) -> &'a [(Box<str>, Box<str>)] {
        if self.matched() {
            self.snap.tags_of(self.index)
        } else {
            &[]
        }
    }

    /// Position of the matched link in its snapshot (see [`Snapshot::link`]).
    pub fn index(&self) -> Option<usize> {
        self.matched().then_some(self.index as usize)
    }

    /// Version of the snapshot that answered.
    pub fn version(&self) -> u64 {
        self.snap.version()
    }

    /// The click id expanded into the `Location`, if the target was a template.
    pub fn click_id(&self) -> Option<crate::ClickId> {
        self.click_id
    }

    /// The `Cache-Control` value for this redirect (see [`Redirect::cache_control`]).
    pub fn cache_control(&self) -> HeaderValue {
        cache_control(self.status(), self.snap.cache_seconds(self.index))
    }

    /// The owned [`Redirect`] with the same answer (takes the reference counts a `Redirect`
    /// holds).
    pub fn to_redirect(&self) -> Redirect {
        self.clone().into_redirect()
    }

    /// The owned [`Redirect`] with the same answer; a `Location` this answer built (forwarded
    /// path or query, template) moves into it instead of being cloned.
    pub fn into_redirect(self) -> Redirect {
        let mut r = if self.matched() {
            self.snap
                .redirect_of(self.index, self.location.into_owned(), self.suffix_len)
        } else {
            // Not the borrowed copy: the default's per-shard copies keep misses on different
            // cores off one refcount.
            self.snap.default_redirect()
        };
        if let Some(id) = self.click_id {
            r.template = false;
            r.click_id = Some(id);
        }
        r
    }

    /// An `http::Response` with status, `Location`, `Cache-Control` and the given body.
    pub fn into_response_with<B>(self, body: B) -> Response<B> {
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status();
        let cache = self.cache_control();
        let h = resp.headers_mut();
        h.insert(header::LOCATION, self.location.into_owned());
        h.insert(header::CACHE_CONTROL, cache);
        resp
    }

    /// An `http::Response<()>` with status, `Location` and `Cache-Control`.
    pub fn into_response(self) -> Response<()> {
        self.into_response_with(())
    }
}
