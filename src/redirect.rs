//! `Redirect`: the owned answer of a resolve.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::click_id::ClickId;
use crate::link::Tags;
use crate::rules::{RouteTarget, Routing};
use crate::template;

/// Cache lifetime sent with 301/308 unless a link sets its own.
pub const PERMANENT_MAX_AGE: u32 = 86_400;

/// The answer to one request: status, `Location`, and which link (if any) matched.
///
/// A `Redirect` owns everything it holds (reference-counted slices of the snapshot's storage), so
/// it may outlive a reload and cross `.await` points; it never holds a lock or a guard.
///
/// Caching, via [`Redirect::cache_control`] and [`into_response`](Redirect::into_response):
/// 301/308 get `max-age=86400` (browsers may skip us for a day), 302/303/307 get `no-store` so
/// every click reaches the server. A link's `cache_seconds` overrides both (`0` = `no-store`).
#[derive(Debug, Clone)]
pub struct Redirect {
    pub(crate) status: StatusCode,
    pub(crate) location: HeaderValue,
    pub(crate) cache_seconds: Option<u32>,
    pub(crate) template: bool,
    pub(crate) click_id: Option<ClickId>,
    pub(crate) link: Option<MatchedLink>,
}

/// The link a request matched, as carried by a [`Redirect`].
#[derive(Debug, Clone)]
pub struct MatchedLink {
    pub(crate) key: Bytes,
    pub(crate) index: u32,
    pub(crate) tags: Option<Tags>,
    pub(crate) version: u64,
    pub(crate) prefix: bool,
    /// `F_QUERY | F_PATH` of the snapshot entry.
    pub(crate) forward: u8,
    /// Length of the raw path tail below a prefix key (forwarded when `forward_path`).
    pub(crate) suffix_len: u32,
    pub(crate) routing: Option<Arc<Routing>>,
    pub(crate) cap: Option<Arc<AtomicU64>>,
}

impl MatchedLink {
    /// The link's key as stored (lower-cased in a case-insensitive table; without `/*` for a
    /// prefix key).
    pub fn key(&self) -> &str {
        std::str::from_utf8(&self.key).unwrap_or("")
    }

    /// The key bytes, shared with the snapshot (cloning them does not copy).
    pub fn key_bytes(&self) -> &Bytes {
        &self.key
    }

    /// Whether the link is a `/*` prefix key.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// The link's tags.
    pub fn tags(&self) -> &[(Box<str>, Box<str>)] {
        self.tags.as_deref().unwrap_or(&[])
    }

    /// The tags as a shared slice (cloning does not copy).
    pub fn tags_shared(&self) -> Option<&Tags> {
        self.tags.as_ref()
    }

    /// Position of the link in its snapshot (see [`Snapshot::link`](crate::Snapshot::link)).
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// Version of the snapshot that answered.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The link's targeting rules, split, cap and bot target, if any.
    pub fn routing(&self) -> Option<&Arc<Routing>> {
        self.routing.as_ref()
    }

    /// Visitors this link has sent on so far, when it has `max_clicks` (counted by the gate;
    /// survives reloads while the key keeps its cap).
    pub fn cap_count(&self) -> Option<u64> {
        self.cap
            .as_ref()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Takes one unit of the link's click cap: `true` if it was below `max_clicks` (the visitor
    /// may be sent on), `false` once the cap is reached. Links without a cap always pass. Exact
    /// under any number of threads: one `fetch_add` on the link's counter is the linearisation
    /// point, so exactly `max_clicks` calls ever return `true`.
    pub fn take_cap(&self) -> bool {
        let (Some(c), Some(max)) = (
            &self.cap,
            self.routing.as_ref().and_then(|r| r.max_clicks()),
        ) else {
            return true;
        };
        use std::sync::atomic::Ordering::Relaxed;
        // Once full, stay read-only: no more writes to a hot cache line.
        if c.load(Relaxed) >= max {
            return false;
        }
        c.fetch_add(1, Relaxed) < max
    }
}

/// `Cache-Control` for a redirect with `status` and a link's own lifetime, if any.
pub(crate) fn cache_control(status: StatusCode, cache_seconds: Option<u32>) -> HeaderValue {
    match cache_seconds {
        Some(0) => NO_STORE.clone(),
        Some(s) => {
            HeaderValue::from_str(&format!("max-age={s}")).unwrap_or_else(|_| NO_STORE.clone())
        }
        None if matches!(
            status,
            StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
        ) =>
        {
            PERMANENT.clone()
        }
        None => NO_STORE.clone(),
    }
}

static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
static PERMANENT: HeaderValue = HeaderValue::from_static("max-age=86400");

impl Redirect {
    /// The redirect status (301, 302, 303, 307 or 308).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `Location` to send.
    pub fn location(&self) -> &HeaderValue {
        &self.location
    }

    /// The matched link, or `None` when the table's default answered.
    pub fn link(&self) -> Option<&MatchedLink> {
        self.link.as_ref()
    }

    /// Whether a link matched.
    pub fn matched(&self) -> bool {
        self.link.is_some()
    }

    /// Whether the table's default answered (no link matched).
    pub fn is_default(&self) -> bool {
        self.link.is_none()
    }

    /// The `Cache-Control` value for this redirect.
    pub fn cache_control(&self) -> HeaderValue {
        cache_control(self.status, self.cache_seconds)
    }

    /// Whether the link's target has `{click_id}`/`{key}` placeholders not yet expanded.
    pub fn is_template(&self) -> bool {
        self.template
    }

    /// The click id expanded into the `Location`, if the target was a template.
    pub fn click_id(&self) -> Option<ClickId> {
        self.click_id
    }

    /// Expands `{click_id}` and `{key}` in a template target with `id` (no-op otherwise).
    /// [`LinkTable::resolve`](crate::LinkTable::resolve) does this with a fresh id (feature
    /// `os`); the click pipeline's `Gate` does it with the id it records.
    pub fn expand(&mut self, id: ClickId) {
        if !self.template {
            return;
        }
        let key = self.link.as_ref().map(MatchedLink::key).unwrap_or("");
        let enc = id.encode();
        let id_str = std::str::from_utf8(&enc).unwrap_or("");
        self.location = template::expand(&self.location, id_str, key);
        self.template = false;
        self.click_id = Some(id);
    }

    /// Sends this redirect to another target of the same link (a rule, split variant, overflow or
    /// bot target), forwarding path and query as the link does. `path`/`query` are the
    /// request's, as given to resolve.
    pub fn retarget(&mut self, t: &RouteTarget, path: &str, query: Option<&str>) {
        let (forward, suffix_len) = self
            .link
            .as_ref()
            .map_or((0, 0), |l| (l.forward, l.suffix_len as usize));
        let suffix = (forward & 2 != 0 && suffix_len > 0 && suffix_len <= path.len())
            .then(|| path.get(path.len() - suffix_len..))
            .flatten();
        let query = query.filter(|q| !q.is_empty() && forward & 1 != 0);
        self.location = if suffix.is_some() || query.is_some() {
            crate::location::build(t.as_str(), suffix, query)
        } else {
            t.location().clone()
        };
        self.template = t.is_template();
    }

    /// Replaces the `Location` (used by template expansion and rules).
    pub fn set_location(&mut self, location: HeaderValue) {
        self.location = location;
    }

    /// An `http::Response` with status, `Location`, `Cache-Control` and the given body.
    pub fn into_response_with<B>(self, body: B) -> Response<B> {
        let cache = self.cache_control();
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(header::LOCATION, self.location);
        h.insert(header::CACHE_CONTROL, cache);
        resp
    }

    /// An `http::Response<()>` with status, `Location` and `Cache-Control`.
    pub fn into_response(self) -> Response<()> {
        self.into_response_with(())
    }
}

impl From<Redirect> for Response<()> {
    fn from(r: Redirect) -> Self {
        r.into_response()
    }
}
