//! `Link`: one validated redirect rule, and its builder.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

use crate::error::LinkError;
use crate::key;
use crate::rules::{Routing, RoutingSpec, Rule};
use crate::target::{self, TargetKind};

/// Where an entry came from, for error messages: a line (and column) of a file, or an index in a
/// list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// 1-based line and column in a link file.
    Line {
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
    },
    /// 0-based position in a list of links (JSON array, `Vec<Link>`).
    Index(usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line { line, column } => write!(f, "line {line}, column {column}"),
            Origin::Index(i) => write!(f, "entry {i}"),
        }
    }
}

/// A link's free-form tags (campaign, affiliate id...), carried into every click it serves.
pub type Tags = Arc<[(Box<str>, Box<str>)]>;

/// Most tags one link may carry.
pub const MAX_TAGS: usize = 32;

/// One redirect rule: the path it answers, where it sends the visitor and how.
///
/// A `Link` is always valid: [`Link::builder`]`(..).build()` checks every field and names the one
/// that is wrong (see [`LinkError`]).
///
/// | field | default | meaning |
/// |---|---|---|
/// | `key` | — | the path it answers, e.g. `/go/summer-deal`; a key ending in `/*` also answers every path below it |
/// | `target` | — | absolute `http(s)://` URL, or a same-site path starting with one `/` |
/// | `status` | 302 | 301, 302, 303, 307 or 308 |
/// | `forward_query` | off | append the request's query string; the target's own parameters always win |
/// | `forward_path` | off | for a `/*` key, append the rest of the path (`/go/docs/a/b` → target + `/a/b`) |
/// | `cache_seconds` | by status | `Cache-Control: max-age` for this link; `0` means `no-store` |
/// | `not_before`/`not_after` | none | Unix milliseconds; outside the window the link resolves as unknown |
/// | `tags` | none | free-form `name=value` pairs copied into clicks |
///
/// ```
/// use linkgate::Link;
/// let link = Link::builder("/go/summer-deal", "https://store.com/p/123?ref=aff_01")
///     .status(301)
///     .tag("campaign", "summer")
///     .build()?;
/// assert_eq!(link.key(), "/go/summer-deal");
/// assert_eq!(link.status().as_u16(), 301);
/// # Ok::<(), linkgate::LinkError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Link {
    key: Box<str>,
    prefix: bool,
    target: Box<str>,
    relative: bool,
    status: StatusCode,
    forward_query: bool,
    forward_path: bool,
    cache_seconds: Option<u32>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    tags: Option<Tags>,
    routing: Option<Arc<Routing>>,
    origin: Option<Origin>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Link");
        d.field("key", &self.key())
            .field("target", &self.target)
            .field("status", &self.status.as_u16());
        if self.forward_query {
            d.field("forward_query", &true);
        }
        if self.forward_path {
            d.field("forward_path", &true);
        }
        if let Some(c) = self.cache_seconds {
            d.field("cache_seconds", &c);
        }
        if let Some(t) = self.not_before {
            d.field("not_before", &t);
        }
        if let Some(t) = self.not_after {
            d.field("not_after", &t);
        }
        if !self.tags().is_empty() {
            d.field("tags", &self.tags());
        }
        if let Some(r) = &self.routing {
            d.field("routing", r);
        }
        d.finish()
    }
}

impl Link {
    /// Starts a link answering `key` with a redirect to `target`.
    pub fn builder(key: impl Into<String>, target: impl Into<String>) -> LinkBuilder {
        LinkBuilder {
            key: key.into(),
            target: target.into(),
            status: 302,
            forward_query: false,
            forward_path: false,
            cache_seconds: None,
            not_before: None,
            not_after: None,
            tags: Vec::new(),
            routing: RoutingSpec::default(),
            origin: None,
        }
    }

    /// A `302` link with every other field at its default.
    pub fn new(key: impl Into<String>, target: impl Into<String>) -> Result<Link, LinkError> {
        Link::builder(key, target).build()
    }

    /// The key as normalised (percent-decoded once, one trailing `/` dropped), with `/*` for a
    /// prefix key. Case is kept as written; a case-insensitive table folds it when it loads.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The normalised key without a trailing `/*`: what the table matches.
    pub(crate) fn match_key(&self) -> &str {
        if self.prefix {
            let k = &self.key[..self.key.len() - 2];
            // `/*` is stored as `/*`; its match key is the empty prefix.
            if k.is_empty() { "" } else { k }
        } else {
            &self.key
        }
    }

    /// Whether the key ends in `/*` and so answers every path below it.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// The target exactly as given.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the target is a same-site path (`/...`) rather than an absolute URL.
    pub fn is_relative(&self) -> bool {
        self.relative
    }

    /// The redirect status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Whether the request's query string is appended to the target.
    pub fn forward_query(&self) -> bool {
        self.forward_query
    }

    /// Whether the rest of the path below a `/*` key is appended to the target.
    pub fn forward_path(&self) -> bool {
        self.forward_path
    }

    /// The per-link cache lifetime, if set.
    pub fn cache_seconds(&self) -> Option<u32> {
        self.cache_seconds
    }

    /// Unix milliseconds before which the link resolves as unknown.
    pub fn not_before(&self) -> Option<i64> {
        self.not_before
    }

    /// Unix milliseconds after which the link resolves as unknown.
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }

    /// Whether the link is live at `now_ms` (Unix milliseconds).
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        self.not_before.is_none_or(|t| now_ms >= t) && self.not_after.is_none_or(|t| now_ms < t)
    }

    /// The tags, in the order given.
    pub fn tags(&self) -> &[(Box<str>, Box<str>)] {
        self.tags.as_deref().unwrap_or(&[])
    }

    pub(crate) fn tags_arc(&self) -> Option<&Tags> {
        self.tags.as_ref()
    }

    /// Targeting rules, split, cap and bot target, if any (see [`crate::rules`]).
    pub fn routing(&self) -> Option<&Arc<Routing>> {
        self.routing.as_ref()
    }

    /// Same link with another routing (used by [`apply_routing`](crate::apply_routing)).
    pub fn with_routing(mut self, routing: Option<Arc<Routing>>) -> Link {
        self.routing = routing;
        self
    }

    /// Where the link came from (file line or list index), if known.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// Same link, remembering where it came from (used in load errors).
    pub fn with_origin(mut self, origin: Origin) -> Link {
        self.origin = Some(origin);
        self
    }
}

/// Builds a [`Link`]; [`build`](LinkBuilder::build) validates every field.
#[derive(Debug, Clone)]
#[must_use]
pub struct LinkBuilder {
    key: String,
    target: String,
    status: u16,
    forward_query: bool,
    forward_path: bool,
    cache_seconds: Option<u32>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    tags: Vec<(String, String)>,
    routing: RoutingSpec,
    origin: Option<Origin>,
}

impl LinkBuilder {
    /// Redirect status: 301, 302 (default), 303, 307 or 308.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    /// Append the request's query string to the target (the target's own parameters win).
    pub fn forward_query(mut self, on: bool) -> Self {
        self.forward_query = on;
        self
    }
    /// Append the path below a `/*` key to the target.
    pub fn forward_path(mut self, on: bool) -> Self {
        self.forward_path = on;
        self
    }
    /// `Cache-Control: max-age` for this link, overriding the status default (`0` = `no-store`).
    pub fn cache_seconds(mut self, seconds: u32) -> Self {
        self.cache_seconds = Some(seconds);
        self
    }
    /// The link resolves as unknown before this instant (Unix milliseconds).
    pub fn not_before(mut self, unix_ms: i64) -> Self {
        self.not_before = Some(unix_ms);
        self
    }
    /// The link resolves as unknown from this instant on (Unix milliseconds).
    pub fn not_after(mut self, unix_ms: i64) -> Self {
        self.not_after = Some(unix_ms);
        self
    }
    /// Adds a tag copied into every click of this link.
    pub fn tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((name.into(), value.into()));
        self
    }
    /// Adds a targeting rule (tried in the order added; first match wins).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.routing.rules.push(rule);
        self
    }
    /// Adds a split variant: `weight` out of the sum of all weights goes to `target`.
    pub fn variant(
        mut self,
        name: impl Into<String>,
        weight: u32,
        target: impl Into<String>,
    ) -> Self {
        self.routing
            .split
            .push((name.into(), weight, target.into()));
        self
    }
    /// Sends at most this many visitors to the link's targets (counted by the gate).
    pub fn max_clicks(mut self, n: u64) -> Self {
        self.routing.max_clicks = Some(n);
        self
    }
    /// Where visitors go once `max_clicks` is reached (default: the link answers as unknown).
    pub fn overflow(mut self, target: impl Into<String>) -> Self {
        self.routing.overflow = Some(target.into());
        self
    }
    /// Where bots go under `BotPolicy::Redirect` (feature `fraud`) (default: the target
    /// without its query string).
    pub fn bot_target(mut self, target: impl Into<String>) -> Self {
        self.routing.bot_target = Some(target.into());
        self
    }
    /// Records where this entry came from, for error messages.
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Validates every field and returns the link, or the first problem found.
    pub fn build(self) -> Result<Link, LinkError> {
        let (normalised, prefix) =
            key::normalize_stored(&self.key, true).map_err(|reason| LinkError::Key {
                key: truncate(&self.key, 80),
                reason,
            })?;
        let kind = target::validate(&self.target)?;
        let status = match self.status {
            301 | 302 | 303 | 307 | 308 => {
                StatusCode::from_u16(self.status).map_err(|_| LinkError::Status {
                    status: self.status,
                })?
            }
            other => return Err(LinkError::Status { status: other }),
        };
        if self.forward_path && !prefix {
            return Err(LinkError::ForwardPath {
                key: truncate(&self.key, 80),
            });
        }
        if let (Some(nb), Some(na)) = (self.not_before, self.not_after) {
            if na <= nb {
                return Err(LinkError::Window {
                    not_before: nb,
                    not_after: na,
                });
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(LinkError::Tag {
                name: self.tags[MAX_TAGS].0.clone(),
                reason: format!("more than {MAX_TAGS} tags"),
            });
        }
        for (name, value) in &self.tags {
            let bad = |reason: &str| LinkError::Tag {
                name: truncate(name, 40),
                reason: reason.to_string(),
            };
            if name.is_empty() || name.len() > 64 {
                return Err(bad("name must be 1 to 64 bytes"));
            }
            if value.len() > 256 {
                return Err(bad("value is longer than 256 bytes"));
            }
            if name.chars().chain(value.chars()).any(char::is_control) {
                return Err(bad("control character in name or value"));
            }
        }
        let tags = (!self.tags.is_empty()).then(|| {
            self.tags
                .into_iter()
                .map(|(n, v)| (n.into_boxed_str(), v.into_boxed_str()))
                .collect::<Tags>()
        });
        let key = if prefix {
            if normalised.is_empty() {
                "/*".to_string()
            } else {
                format!("{normalised}/*")
            }
        } else {
            normalised
        };
        Ok(Link {
            key: key.into_boxed_str(),
            prefix,
            target: self.target.into_boxed_str(),
            relative: kind == TargetKind::Relative,
            status,
            forward_query: self.forward_query,
            forward_path: self.forward_path,
            cache_seconds: self.cache_seconds,
            not_before: self.not_before,
            not_after: self.not_after,
            tags,
            routing: self.routing.build()?,
            origin: self.origin,
        })
    }
}

/// The table's answer for paths no link matches (nginx `map`'s `default`).
///
/// Defaults to `302 → /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRedirect {
    pub(crate) target: Box<str>,
    pub(crate) status: StatusCode,
}

impl DefaultRedirect {
    /// A `302` to `target`, validated like a link target.
    pub fn new(target: impl Into<String>) -> Result<Self, LinkError> {
        let target = target.into();
        target::validate(&target)?;
        Ok(DefaultRedirect {
            target: target.into_boxed_str(),
            status: StatusCode::FOUND,
        })
    }

    /// Same, with another redirect status.
    pub fn with_status(mut self, status: u16) -> Result<Self, LinkError> {
        self.status = match status {
            301 | 302 | 303 | 307 | 308 => {
                StatusCode::from_u16(status).map_err(|_| LinkError::Status { status })?
            }
            other => return Err(LinkError::Status { status: other }),
        };
        Ok(self)
    }

    /// The target.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl Default for DefaultRedirect {
    fn default() -> Self {
        DefaultRedirect {
            target: "/".into(),
            status: StatusCode::FOUND,
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_normalises() {
        let l = Link::builder("/Go/Summer%2DDeal/", "https://store.com/p/123?ref=aff_01")
            .build()
            .unwrap();
        assert_eq!(l.key(), "/Go/Summer-Deal");
        assert_eq!(l.status(), StatusCode::FOUND);
        let p = Link::builder("/go/docs/*", "https://docs.example/")
            .forward_path(true)
            .build()
            .unwrap();
        assert!(p.is_prefix());
        assert_eq!(p.match_key(), "/go/docs");
        let all = Link::builder("/*", "https://x.example/").build().unwrap();
        assert_eq!(all.match_key(), "");
    }

    #[test]
    fn each_field_is_named() {
        let cases: Vec<(LinkBuilder, &str)> = vec![
            (Link::builder("go/x", "/a"), "key"),
            (Link::builder("/go/x", "javascript:alert(1)"), "target"),
            (Link::builder("/go/x", "/a").status(200), "status"),
            (Link::builder("/go/x", "/a").status(404), "status"),
            (
                Link::builder("/go/x", "/a").forward_path(true),
                "forward_path",
            ),
            (
                Link::builder("/go/x", "/a").not_before(10).not_after(5),
                "not_after",
            ),
            (Link::builder("/go/x", "/a").tag("", "v"), "tag"),
            (Link::builder("/go/x", "/a").tag("n", "v\n"), "tag"),
            (
                Link::builder("/go/x", "/a").tag("n", "v".repeat(300)),
                "tag",
            ),
        ];
        for (b, field) in cases {
            let msg = b.clone().build().expect_err(&format!("{b:?}")).to_string();
            assert!(msg.contains(field), "{msg:?} should name {field}");
        }
        let mut many = Link::builder("/go/x", "/a");
        for i in 0..=MAX_TAGS {
            many = many.tag(format!("t{i}"), "v");
        }
        assert!(many.build().is_err());
    }

    #[test]
    fn windows() {
        let l = Link::builder("/go/x", "/a")
            .not_before(100)
            .not_after(200)
            .build()
            .unwrap();
        assert!(!l.is_live_at(99));
        assert!(l.is_live_at(100));
        assert!(l.is_live_at(199));
        assert!(!l.is_live_at(200));
    }

    #[test]
    fn default_redirect() {
        assert_eq!(DefaultRedirect::default().target(), "/");
        assert!(DefaultRedirect::new("//evil").is_err());
        assert!(
            DefaultRedirect::new("/x")
                .unwrap()
                .with_status(200)
                .is_err()
        );
    }
}
