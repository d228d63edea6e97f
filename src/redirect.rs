//! `Redirect`: the owned answer of a resolve.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::click_id::ClickId;
use crate::link::Tags;
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
        match self.cache_seconds {
            Some(0) => NO_STORE.clone(),
            Some(s) => {
                HeaderValue::from_str(&format!("max-age={s}")).unwrap_or_else(|_| NO_STORE.clone())
            }
            None if matches!(
                self.status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            ) =>
            {
                PERMANENT.clone()
            }
            None => NO_STORE.clone(),
        }
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
