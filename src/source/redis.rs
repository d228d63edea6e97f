//! `RedisSource` and `RedisLinkStore`: links in a Redis hash, change notification over pub/sub
//! (feature `redis`). The schema and the rules are documented on [`RedisSource`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ErrorKind, RedisError, ServerErrorKind};
use serde::Deserialize;

use super::{LinkSource, Notifier};
use crate::error::{LoadError, MAX_REPORTED_ERRORS};
use crate::format::Format;
use crate::link::{Link, Origin};
use crate::set::LinkSet;

/// The Redis a config points at unless told otherwise.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// Where the links live in Redis and how to talk to it; makes a [`RedisSource`] (to load) and a
/// [`RedisLinkStore`] (to write).
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{Link, LinkTable, RedisLinksConfig, Reloader};
///
/// let redis = RedisLinksConfig::new("links").url("redis://127.0.0.1:6379/");
///
/// // Every instance: a table kept in step with the hash.
/// let table = LinkTable::new();
/// let reloader = Reloader::builder(table.clone(), redis.source()?)
///     .resync_every(Duration::from_secs(30))
///     .spawn()?;
///
/// // The admin side: change links, then tell every instance.
/// let store = redis.store()?;
/// store.put(&Link::new("/go/summer-deal", "https://store.com/p/456")?)?;
/// store.delete("/go/old-deal")?;
/// store.publish()?;
/// # drop(reloader);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `url` | `redis://127.0.0.1:6379/` (`redis://[user:password@]host:port/db`) |
/// | `channel` | `<hash>:changed` |
/// | `version_key` | `<hash>:version` |
/// | `connect_timeout` | 2 s |
/// | `io_timeout` | 5 s (read and write, every command) |
/// | `scan_count` | 1000 (`HSCAN ... COUNT`) |
/// | `max_scan_attempts` | 5 |
/// | `load_retry_for` | 2 s |
/// | `allow_missing` | `false` |
/// | `parse_threads` | the number of cores, at most 4 (only while loading a hash of more than one page) |
#[derive(Clone)]
#[must_use]
pub struct RedisLinksConfig {
    url: String,
    hash: String,
    channel: Option<String>,
    version_key: Option<String>,
    connect_timeout: Duration,
    io_timeout: Duration,
    scan_count: usize,
    max_scan_attempts: u32,
    load_retry_for: Duration,
    allow_missing: bool,
    parse_threads: usize,
}

impl fmt::Debug for RedisLinksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLinksConfig")
            .field("url", &redact(&self.url))
            .field("hash", &self.hash)
            .field("channel", &self.channel_name())
            .field("version_key", &self.version_key_name())
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("scan_count", &self.scan_count)
            .field("max_scan_attempts", &self.max_scan_attempts)
            .field("load_retry_for", &self.load_retry_for)
            .field("allow_missing", &self.allow_missing)
            .field("parse_threads", &self.parse_threads)
            .finish()
    }
}

/// The URL without its credentials (`redis://***@host:6379/`).
pub(crate) fn redact(url: &str) -> Cow<'_, str> {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => Cow::Owned(format!("{}://***{}", &url[..s], &url[at..])),
        _ => Cow::Borrowed(url),
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the subscriber wakes up to check whether it should stop.
const SUB_POLL: Duration = Duration::from_millis(500);

impl RedisLinksConfig {
    /// Links in the hash `hash`, on `redis://127.0.0.1:6379/`.
    pub fn new(hash: impl Into<String>) -> Self {
        RedisLinksConfig {
            url: DEFAULT_REDIS_URL.into(),
            hash: hash.into(),
            channel: None,
            version_key: None,
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            scan_count: 1000,
            max_scan_attempts: 5,
            load_retry_for: Duration::from_secs(2),
            allow_missing: false,
            parse_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
    /// The Redis URL: `redis://[user:password@]host:port/db` (or `unix:///path`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }
    /// The pub/sub channel (default `<hash>:changed`).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }
    /// The version counter key (default `<hash>:version`).
    pub fn version_key(mut self, key: impl Into<String>) -> Self {
        self.version_key = Some(key.into());
        self
    }
    /// TCP connect (and handshake) timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d.max(Duration::from_millis(1));
        self
    }
    /// Read and write timeout of every command.
    pub fn io_timeout(mut self, d: Duration) -> Self {
        self.io_timeout = d.max(Duration::from_millis(1));
        self
    }
    /// Fields asked per `HSCAN` call.
    pub fn scan_count(mut self, n: usize) -> Self {
        self.scan_count = n.max(1);
        self
    }
    /// Scans of one load before it gives up because the hash keeps changing.
    pub fn max_scan_attempts(mut self, n: u32) -> Self {
        self.max_scan_attempts = n.max(1);
        self
    }
    /// How long one load keeps reconnecting (100 ms doubling backoff) before it fails.
    pub fn load_retry_for(mut self, d: Duration) -> Self {
        self.load_retry_for = d;
        self
    }
    /// Threads that parse the pages of a hash bigger than one `HSCAN` page, while the
    /// reloader's thread keeps reading from Redis (0: parse on the reloader's thread).
    pub fn parse_threads(mut self, n: usize) -> Self {
        self.parse_threads = n;
        self
    }
    /// Accept a hash that does not exist while the version key is unset as an empty link set.
    /// Off by default: that is what a Redis restarted without its data looks like, and loading it
    /// would empty every table.
    pub fn allow_missing(mut self, on: bool) -> Self {
        self.allow_missing = on;
        self
    }

    /// The hash.
    pub fn hash(&self) -> &str {
        &self.hash
    }
    /// The pub/sub channel.
    pub fn channel_name(&self) -> Cow<'_, str> {
        match &self.channel {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Owned(format!("{}:changed", self.hash)),
        }
    }
    /// The version counter key.
    pub fn version_key_name(&self) -> Cow<'_, str> {
        match &self.version_key {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(format!("{}:version", self.hash)),
        }
    }

    /// A source for a [`Reloader`](crate::Reloader). Checks the URL; does not connect.
    pub fn source(&self) -> Result<RedisSource, LoadError> {
        let client = Client::open(self.url.as_str())
            .map_err(|e| LoadError::Source(format!("redis URL: {e}")))?;
        Ok(RedisSource {
            addr: addr_of(&client),
            cfg: self.clone(),
            channel: self.channel_name().into_owned(),
            version_key: self.version_key_name().into_owned(),
            client,
            con: None,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A store to change the links. Checks the URL; connects on first use.
    pub fn store(&self) -> Result<RedisLinkStore, RedisStoreError> {
        let client = Client::open(self.url.as_str()).map_err(|e| RedisStoreError {
            addr: "(bad URL)".into(),
            source: e,
        })?;
        Ok(RedisLinkStore {
            addr: addr_of(&client),
            cfg: self.clone(),
            channel: self.channel_name().into_owned(),
            version_key: self.version_key_name().into_owned(),
            client,
            con: Mutex::new(None),
            auto_publish: false,
        })
    }

    fn connect(&self, client: &Client) -> Result<Connection, RedisError> {
        connect(client, self.connect_timeout, self.io_timeout)
    }
}

/// A connection with a bounded connect (and handshake) and read/write timeouts on every command.
pub(crate) fn connect(
    client: &Client,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<Connection, RedisError> {
    let con = client.get_connection_with_timeout(connect_timeout)?;
    con.set_read_timeout(Some(io_timeout))?;
    con.set_write_timeout(Some(io_timeout))?;
    Ok(con)
}

/// `host:port` (never the password) for messages.
pub(crate) fn addr_of(client: &Client) -> String {
    client.get_connection_info().addr().to_string()
}

/// Whether reconnecting and trying again could help.
pub(crate) fn retryable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == ErrorKind::Io
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
            )
        )
}

/// Sleeps `d` in slices, returning early (with `false`) once `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding: Link -> (field, value)
// ---------------------------------------------------------------------------------------------

fn push_pct(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        let _ = write!(out, "%{b:02X}");
    }
}

/// The hash field for a link: its key, escaped so that loading it gives back exactly
/// [`Link::key`] (a literal `%`, `?`, `#`, a trailing `/`... survive the key normalisation).
pub(crate) fn field_of(link: &Link) -> String {
    let key = link.key();
    let (body, prefix) = if link.is_prefix() {
        (&key[..key.len() - 2], true)
    } else {
        (key, false)
    };
    let mut out = String::with_capacity(key.len() + 4);
    for c in body.chars() {
        if matches!(c, '%' | '?' | '#') || c.is_control() || c.is_whitespace() {
            push_pct(&mut out, c);
        } else {
            out.push(c);
        }
    }
    if !prefix && out.ends_with("/*") {
        out.pop();
        out.push_str("%2A");
    }
    // Normalisation drops one trailing `/`: write one more.
    if body.len() > 1 && body.ends_with('/') {
        out.push('/');
    }
    if prefix {
        out.push_str("/*");
    }
    out
}

/// Whole seconds as a number, else an RFC 3339 time with milliseconds (the JSON link format
/// takes both; before 1970 only whole seconds, so a fraction there is rounded down).
fn push_instant(out: &mut String, name: &str, ms: i64) {
    if ms % 1000 == 0 || ms < 0 {
        let _ = write!(out, ",\"{name}\":{}", ms.div_euclid(1000));
    } else {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
        let _ = write!(
            out,
            ",\"{name}\":\"{}\"",
            humantime::format_rfc3339_millis(t)
        );
    }
}

fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // serde_json escapes exactly as JSON requires; serialising a str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// The hash value for a link: a JSON object without `key`.
pub(crate) fn value_of(link: &Link) -> String {
    let mut out = String::with_capacity(link.target().len() + 48);
    out.push_str("{\"target\":");
    push_json_str(&mut out, link.target());
    let _ = write!(out, ",\"status\":{}", link.status().as_u16());
    if link.forward_query() {
        out.push_str(",\"forward_query\":true");
    }
    if link.forward_path() {
        out.push_str(",\"forward_path\":true");
    }
    if let Some(c) = link.cache_seconds() {
        let _ = write!(out, ",\"cache_seconds\":{c}");
    }
    if let Some(t) = link.not_before() {
        push_instant(&mut out, "not_before", t);
    }
    if let Some(t) = link.not_after() {
        push_instant(&mut out, "not_after", t);
    }
    if !link.tags().is_empty() {
        out.push_str(",\"tags\":{");
        for (i, (n, v)) in link.tags().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, n);
            out.push(':');
            push_json_str(&mut out, v);
        }
        out.push('}');
    }
    out.push('}');
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding: HSCAN pages -> LinkSet
// ---------------------------------------------------------------------------------------------

/// Validates a value as one JSON object and reads its optional `key`.
#[derive(Deserialize)]
struct KeyOnly<'a> {
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
}

/// Shows a field in a message: quoted, shortened, control characters escaped.
fn show(field: &str) -> String {
    let short = crate::link::truncate(field, 120);
    format!("{short:?}")
}

#[derive(Default)]
struct Collector {
    links: Vec<Link>,
    entries: usize,
    errors: Vec<String>,
    total_errors: usize,
}

/// A field and its value as text, or what is wrong with them.
fn pair_text(pair: &[Vec<u8>]) -> Result<(&str, &str), (String, &'static str)> {
    let (Some(f), Some(v)) = (pair.first(), pair.get(1)) else {
        return Err(("?".into(), "HSCAN returned a field without a value"));
    };
    let Ok(field) = std::str::from_utf8(f) else {
        return Err((
            String::from_utf8_lossy(f).into_owned(),
            "the field is not UTF-8",
        ));
    };
    match std::str::from_utf8(v) {
        Ok(value) => Ok((field, value)),
        Err(_) => Err((field.to_owned(), "the value is not UTF-8")),
    }
}

/// Appends `value` (a JSON object without `key`) with `"key": field` added.
fn push_with_key(text: &mut String, field: &str, value: &str) {
    let rest = &value.trim_start()[1..];
    text.push_str("{\"key\":");
    push_json_str(text, field);
    if !rest.trim_start().starts_with('}') {
        text.push(',');
    }
    text.push_str(rest);
}

/// The common subset of a JSON link entry, read without copies: what most values hold.
///
/// Only a speed-up: a value this does not take exactly (a `key`, a time window, an unknown
/// field, any error) goes to the JSON link-file parser itself ([`Collector::single`]), which
/// has the last word on the format and writes the error messages. `tags` is a `BTreeMap`
/// there too, so the tags come out in the same order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common<'a> {
    #[serde(borrow)]
    target: Cow<'a, str>,
    status: Option<u16>,
    #[serde(default)]
    forward_query: bool,
    #[serde(default)]
    forward_path: bool,
    cache_seconds: Option<u32>,
    #[serde(default, borrow)]
    tags: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

/// A link from a value in the common subset, or `None` to take the JSON link-file parser.
fn common(field: &str, value: &str) -> Option<Link> {
    let c: Common<'_> = serde_json::from_str(value).ok()?;
    let mut b = Link::builder(field, c.target)
        .forward_query(c.forward_query)
        .forward_path(c.forward_path);
    if let Some(s) = c.status {
        b = b.status(s);
    }
    if let Some(s) = c.cache_seconds {
        b = b.cache_seconds(s);
    }
    for (n, v) in c.tags {
        b = b.tag(n, v);
    }
    b.build().ok()
}

impl Collector {
    fn clear(&mut self) {
        self.links.clear();
        self.entries = 0;
        self.errors.clear();
        self.total_errors = 0;
    }

    fn merge(&mut self, mut other: Collector) {
        if self.links.is_empty() {
            std::mem::swap(&mut self.links, &mut other.links);
        } else {
            self.links.append(&mut other.links);
        }
        self.entries += other.entries;
        self.total_errors += other.total_errors;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
    }

    fn error(&mut self, field: &str, what: impl fmt::Display) {
        self.total_errors += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(format!("field {}: {what}", show(field)));
        }
    }

    /// Adds one `HSCAN` page (`field, value, field, value...`); entry numbers from `base`.
    fn page(&mut self, base: usize, items: &[Vec<u8>]) {
        for (p, pair) in items.chunks(2).enumerate() {
            let index = base + p;
            self.entries += 1;
            let (field, value) = match pair_text(pair) {
                Ok(fv) => fv,
                Err((field, what)) => {
                    self.error(&field, what);
                    continue;
                }
            };
            let trimmed = value.trim_start();
            if !trimmed.starts_with('{') {
                self.compact(field, trimmed, index);
            } else if let Some(link) = common(field, value) {
                self.links.push(link.with_origin(Origin::Index(index)));
            } else {
                self.single(field, value, index);
            }
        }
    }

    /// One JSON entry through the JSON link-file parser: exactly one object, `key` (if any)
    /// equal to the field; errors name the field.
    fn single(&mut self, field: &str, value: &str, index: usize) {
        let key_given = match serde_json::from_str::<KeyOnly<'_>>(value) {
            Err(e) => {
                self.error(field, format_args!("the value is not one JSON object: {e}"));
                return;
            }
            Ok(KeyOnly { key: Some(k) }) if k != field => {
                self.error(
                    field,
                    format_args!("`key` {} differs from the field", show(&k)),
                );
                return;
            }
            Ok(k) => k.key.is_some(),
        };
        let mut text = String::with_capacity(value.len() + field.len() + 16);
        text.push('[');
        if key_given {
            text.push_str(value);
        } else {
            push_with_key(&mut text, field, value);
        }
        text.push(']');
        match Format::Json.parse(text.as_bytes()) {
            Ok(set) if set.links.len() == 1 => {
                for link in set.links {
                    self.links.push(link.with_origin(Origin::Index(index)));
                }
            }
            Ok(_) => self.error(field, "the value is not one JSON object"),
            Err(LoadError::Invalid { errors, total }) => {
                for e in &errors {
                    self.error(field, &e.problem);
                }
                self.total_errors += total.saturating_sub(errors.len());
            }
            Err(other) => self.error(field, other),
        }
    }

    /// `target[ status]`.
    fn compact(&mut self, field: &str, value: &str, index: usize) {
        let mut words = value.split_ascii_whitespace();
        let Some(target) = words.next() else {
            self.error(
                field,
                "empty value (expected a JSON object or `target [status]`)",
            );
            return;
        };
        let mut b = Link::builder(field, target).origin(Origin::Index(index));
        if let Some(s) = words.next() {
            match s.parse::<u16>() {
                Ok(s) => b = b.status(s),
                Err(_) => {
                    self.error(field, format_args!("status `{s}` is not a number"));
                    return;
                }
            }
        }
        if words.next().is_some() {
            self.error(
                field,
                "expected a JSON object or `target [status]`, found more words",
            );
            return;
        }
        match b.build() {
            Ok(l) => self.links.push(l),
            Err(e) => self.error(field, e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RedisSource
// ---------------------------------------------------------------------------------------------

/// Links from a Redis hash, reloaded on pub/sub notification (feature `redis`).
///
/// Made by [`RedisLinksConfig::source`] (or [`RedisSource::new`]); changed through a
/// [`RedisLinkStore`]. Uses the synchronous client on the reloader's own thread plus one
/// subscriber thread: no async runtime is needed.
///
/// # Schema
///
/// | Redis key | type | content |
/// |---|---|---|
/// | `<hash>` (e.g. `links`) | hash | field = the link key (`/go/summer-deal`), value = the link |
/// | `<hash>:version` | string (integer) | bumped (`INCR`) by every write of [`RedisLinkStore`] and by [`publish`](RedisLinkStore::publish) |
/// | `<hash>:changed` | pub/sub channel | any message means "reload" |
///
/// A value is one link as a JSON object, the same shape as one entry of the JSON link-file
/// format, except that `key` is optional (the field is the key; if `key` is given it must equal
/// the field):
///
/// ```json
/// {"target": "https://store.com/p/123?ref=aff_01", "status": 301, "forward_query": true,
///  "cache_seconds": 60, "not_before": "2026-12-01T00:00:00Z", "not_after": 1767225600,
///  "tags": {"campaign": "summer"}}
/// ```
///
/// or the compact form `target[ status]` (`https://store.com/p/123 301`). Unknown JSON fields
/// are errors, as in link files.
///
/// # Consistency
///
/// A load reads the whole hash with `HSCAN ... COUNT 1000` (never one blocking `HGETALL`;
/// pages of a big hash are parsed by helper threads while the next one is read), and
/// reads `<hash>:version` before and after the scan (with `HLEN`, in one `MULTI`). If the version
/// moved, or the number of fields scanned differs from `HLEN` (a field seen twice while Redis
/// rehashed), the scan is repeated, up to [`max_scan_attempts`](RedisLinksConfig::max_scan_attempts)
/// times; so a load never mixes two writers' batches. This holds for writers that bump the
/// version in the same transaction as their change, as [`RedisLinkStore`] does; if you write
/// the hash by hand, `INCR <hash>:version` in the same `MULTI`.
///
/// Every entry is checked (UTF-8, JSON, a valid [`Link`]): one bad entry fails the whole load
/// with [`LoadError::Source`] naming each bad field, and the table keeps serving its last good
/// snapshot. A hash that does not exist while `<hash>:version` is unset too (a Redis restarted
/// without persistence, a wrong database number) is refused as well, rather than emptying every
/// table: see [`allow_missing`](RedisLinksConfig::allow_missing).
///
/// # Notification and resync
///
/// [`watch`](LinkSource::watch) subscribes to `<hash>:changed` on a dedicated connection in a
/// `linkgate-redis-sub` thread; every message wakes the [`Reloader`](crate::Reloader). Pub/sub
/// is fire-and-forget, so keep the reloader's periodic full re-sync as the safety net:
/// `resync_every(Duration::from_secs(30))` is a good default.
///
/// When Redis goes away the subscriber reconnects with backoff (100 ms doubling to 5 s) and,
/// once subscribed again, asks for one reload, so changes made while it was disconnected are
/// picked up. A load retries its connection with the same backoff for at most
/// [`load_retry_for`](RedisLinksConfig::load_retry_for), then fails with
/// [`LoadError::Source`]; the old table keeps serving. Every connection has connect, read and
/// write timeouts: nothing waits forever.
///
/// The version key and the hash are two keys: on Redis Cluster give them one hash slot with a
/// hash tag (`{links}` makes `{links}:version` and `{links}:changed`).
pub struct RedisSource {
    cfg: RedisLinksConfig,
    addr: String,
    channel: String,
    version_key: String,
    client: Client,
    con: Option<Connection>,
    stop: Arc<AtomicBool>,
}

impl fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSource")
            .field("addr", &self.addr)
            .field("hash", &self.cfg.hash)
            .field("channel", &self.channel)
            .field("connected", &self.con.is_some())
            .finish()
    }
}

enum ScanError {
    /// The hash changed during the scan.
    Moved,
    /// Neither the hash nor the version key exists.
    Missing,
    Redis(RedisError),
}

impl From<RedisError> for ScanError {
    fn from(e: RedisError) -> Self {
        ScanError::Redis(e)
    }
}

impl RedisSource {
    /// Links in the hash `hash` at `url` (`redis://127.0.0.1:6379/`), other settings at their
    /// defaults. Checks the URL; does not connect.
    pub fn new(url: &str, hash: impl Into<String>) -> Result<RedisSource, LoadError> {
        RedisLinksConfig::new(hash).url(url).source()
    }

    /// The settings.
    pub fn config(&self) -> &RedisLinksConfig {
        &self.cfg
    }

    fn scan(&mut self, out: &mut Collector) -> Result<(), ScanError> {
        if self.con.is_none() {
            self.con = Some(self.cfg.connect(&self.client)?);
        }
        let Some(con) = self.con.as_mut() else {
            unreachable!("connected above")
        };
        out.clear();
        let before: Option<u64> = redis::cmd("GET").arg(&self.version_key).query(con)?;
        let hscan = |cursor: u64| {
            redis::cmd("HSCAN")
                .arg(&self.cfg.hash)
                .arg(cursor)
                .arg("COUNT")
                .arg(self.cfg.scan_count)
                .get_packed_command()
        };
        let recv = |con: &mut Connection| -> Result<(u64, Vec<Vec<u8>>), RedisError> {
            let reply = con.recv_response()?.extract_error()?;
            Ok(redis::from_redis_value(reply)?)
        };
        con.send_packed_command(&hscan(0))?;
        let (mut next, mut items) = recv(con)?;
        if next == 0 || self.cfg.parse_threads == 0 {
            // Small hash (or no helpers): parse here, the next HSCAN on its way meanwhile.
            let mut base = 0;
            loop {
                if next != 0 {
                    con.send_packed_command(&hscan(next))?;
                }
                out.page(base, &items);
                base += items.len().div_ceil(2);
                if next == 0 {
                    break;
                }
                (next, items) = recv(con)?;
            }
        } else {
            // Big hash: this thread talks to Redis, helpers parse the pages.
            std::thread::scope(|scope| -> Result<(), RedisError> {
                let threads = self.cfg.parse_threads;
                let (tx, rx) = crossbeam_channel::bounded::<(usize, Vec<Vec<u8>>)>(2 * threads);
                let helpers: Vec<_> = (0..threads)
                    .map(|_| {
                        let rx = rx.clone();
                        scope.spawn(move || {
                            let mut c = Collector::default();
                            for (base, items) in rx {
                                c.page(base, &items);
                            }
                            c
                        })
                    })
                    .collect();
                drop(rx);
                let mut base = 0;
                let fetched = loop {
                    if next != 0 {
                        if let Err(e) = con.send_packed_command(&hscan(next)) {
                            break Err(e);
                        }
                    }
                    let n = items.len().div_ceil(2);
                    if tx.send((base, items)).is_err() {
                        break Ok(()); // a helper panicked: join below says so
                    }
                    base += n;
                    if next == 0 {
                        break Ok(());
                    }
                    match recv(con) {
                        Ok(page) => (next, items) = page,
                        Err(e) => break Err(e),
                    }
                };
                drop(tx);
                for h in helpers {
                    match h.join() {
                        Ok(c) => out.merge(c),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                fetched
            })?;
        }
        let (after, len): (Option<u64>, usize) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&self.version_key)
            .cmd("HLEN")
            .arg(&self.cfg.hash)
            .query(con)?;
        if before != after || out.entries != len {
            return Err(ScanError::Moved);
        }
        if len == 0 && after.is_none() && !self.cfg.allow_missing {
            return Err(ScanError::Missing);
        }
        Ok(())
    }
}

impl Drop for RedisSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl LinkSource for RedisSource {
    fn load(&mut self) -> Result<LinkSet, LoadError> {
        let start = Instant::now();
        let mut delay = BACKOFF_MIN;
        let mut moved = 0;
        let mut out = Collector::default();
        loop {
            // A connection kept from the last load may have died since (a Redis restart):
            // its first failure is retried at once, on a new connection.
            let stale = self.con.is_some();
            match self.scan(&mut out) {
                Ok(()) => break,
                Err(ScanError::Moved) => {
                    moved += 1;
                    if moved >= self.cfg.max_scan_attempts {
                        return Err(LoadError::Source(format!(
                            "redis {} hash `{}`: the hash changed during each of {moved} scans; \
                             the next notification or resync tries again",
                            self.addr, self.cfg.hash
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5 * u64::from(moved)));
                }
                Err(ScanError::Missing) => {
                    return Err(LoadError::Source(format!(
                        "redis {} hash `{}`: the hash does not exist and `{}` is unset: refusing \
                         to load no links (Redis restarted without its data, or the wrong \
                         database?); write the links, or set allow_missing",
                        self.addr, self.cfg.hash, self.version_key
                    )));
                }
                Err(ScanError::Redis(e)) => {
                    // Whatever went wrong, the connection may be mid-reply: start afresh.
                    self.con = None;
                    if !retryable(&e) || start.elapsed() + delay > self.cfg.load_retry_for {
                        return Err(LoadError::Source(format!(
                            "redis {} hash `{}`: {e}",
                            self.addr, self.cfg.hash
                        )));
                    }
                    if !stale {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(BACKOFF_MAX);
                    }
                }
            }
        }
        if out.total_errors > 0 {
            let mut msg = format!(
                "redis hash `{}`: {} invalid entr{}",
                self.cfg.hash,
                out.total_errors,
                if out.total_errors == 1 { "y" } else { "ies" }
            );
            for e in &out.errors {
                msg.push_str("\n  ");
                msg.push_str(e);
            }
            if out.total_errors > out.errors.len() {
                let _ = write!(
                    msg,
                    "\n  ... and {} more",
                    out.total_errors - out.errors.len()
                );
            }
            return Err(LoadError::Source(msg));
        }
        Ok(LinkSet::from(out.links))
    }

    fn watch(&mut self, notifier: Notifier) -> Result<(), LoadError> {
        let sub = Subscriber {
            cfg: self.cfg.clone(),
            client: self.client.clone(),
            channel: self.channel.clone(),
            notifier,
            stop: self.stop.clone(),
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("linkgate-redis-sub".into())
            .spawn(move || sub.run(tx))
            .map_err(|e| LoadError::Source(format!("starting the redis subscriber: {e}")))?;
        // Subscribed before the first load (no change can fall in between), unless Redis is
        // down: then the subscriber keeps trying and asks for a reload once it is in.
        let _ = rx.recv_timeout(self.cfg.connect_timeout + self.cfg.io_timeout);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("redis {} hash `{}`", self.addr, self.cfg.hash)
    }
}

struct Subscriber {
    cfg: RedisLinksConfig,
    client: Client,
    channel: String,
    notifier: Notifier,
    stop: Arc<AtomicBool>,
}

impl Subscriber {
    fn run(self, first: crossbeam_channel::Sender<()>) {
        let mut first = Some(first);
        let mut delay = BACKOFF_MIN;
        while !self.stop.load(Ordering::SeqCst) {
            let _ = self.session(&mut first, &mut delay);
            // Unblocks `watch` after a failed first attempt.
            first = None;
            if !sleep_unless(&self.stop, delay) {
                return;
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection: subscribe, then forward messages until it fails or we are stopped.
    fn session(
        &self,
        first: &mut Option<crossbeam_channel::Sender<()>>,
        delay: &mut Duration,
    ) -> Result<(), RedisError> {
        let mut con = self.cfg.connect(&self.client)?;
        let mut sub = con.as_pubsub();
        sub.subscribe(&self.channel)?;
        *delay = BACKOFF_MIN;
        match first.take() {
            // `watch` is waiting: the first load comes next anyway.
            Some(tx) => {
                let _ = tx.send(());
            }
            // Reconnected: pick up what changed while we were away.
            None => self.notifier.notify(),
        }
        sub.set_read_timeout(Some(SUB_POLL))?;
        let mut idle = Instant::now();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            match sub.get_message() {
                Ok(_) => {
                    self.notifier.notify();
                    idle = Instant::now();
                }
                Err(e) if e.is_timeout() => {
                    // A quiet channel, or a dead peer? Ask now and then.
                    if idle.elapsed() >= self.cfg.io_timeout {
                        sub.set_read_timeout(Some(self.cfg.io_timeout))?;
                        sub.ping::<redis::Value>()?;
                        sub.set_read_timeout(Some(SUB_POLL))?;
                        idle = Instant::now();
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RedisLinkStore
// ---------------------------------------------------------------------------------------------

/// A Redis command failed (feature `redis`). The change may or may not have been applied if
/// the connection broke mid-command; every [`RedisLinkStore`] operation is safe to repeat.
#[derive(Debug, thiserror::Error)]
#[error("redis {addr}: {source}")]
pub struct RedisStoreError {
    addr: String,
    #[source]
    source: RedisError,
}

impl RedisStoreError {
    /// Whether Redis could not be reached (or the connection broke): retrying later may help.
    pub fn is_connection(&self) -> bool {
        retryable(&self.source)
    }
}

/// Writes links into the hash a [`RedisSource`] reads (feature `redis`): the admin side.
///
/// Every write is one `MULTI`/`EXEC` transaction that also bumps `<hash>:version`, so a
/// concurrent load never sees half of it. Writes do **not** notify the instances by themselves:
/// batch your changes, then call [`publish`](RedisLinkStore::publish) once (or turn on
/// [`auto_publish`](RedisLinkStore::auto_publish) to publish in the same transaction as each
/// write). Until someone publishes, instances pick the change up at their next resync.
///
/// Fields are written in the canonical form ([`RedisLinkStore::field`]): the normalised key,
/// escaped to load back unchanged. Methods take `&self` (one connection behind a mutex,
/// reconnected on demand) and are safe to repeat after an error.
pub struct RedisLinkStore {
    cfg: RedisLinksConfig,
    addr: String,
    channel: String,
    version_key: String,
    client: Client,
    con: Mutex<Option<Connection>>,
    auto_publish: bool,
}

impl fmt::Debug for RedisLinkStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLinkStore")
            .field("addr", &self.addr)
            .field("hash", &self.cfg.hash)
            .field("channel", &self.channel)
            .field("auto_publish", &self.auto_publish)
            .finish()
    }
}

/// HSET arguments per command inside one `put_many` transaction.
const PUT_CHUNK: usize = 1000;

impl RedisLinkStore {
    /// A store for the hash `hash` at `url`, other settings at their defaults. Checks the URL;
    /// connects on first use.
    pub fn new(url: &str, hash: impl Into<String>) -> Result<RedisLinkStore, RedisStoreError> {
        RedisLinksConfig::new(hash).url(url).store()
    }

    /// Also `PUBLISH` on the channel in the transaction of every write.
    #[must_use]
    pub fn auto_publish(mut self, on: bool) -> Self {
        self.auto_publish = on;
        self
    }

    /// The settings.
    pub fn config(&self) -> &RedisLinksConfig {
        &self.cfg
    }

    /// The hash field a link is stored under: its normalised key, escaped so that it loads back
    /// as the same key.
    pub fn field(link: &Link) -> String {
        field_of(link)
    }

    /// The hash value a link is stored as: a JSON object without `key`.
    pub fn value(link: &Link) -> String {
        value_of(link)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.con.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, source: RedisError) -> RedisStoreError {
        RedisStoreError {
            addr: self.addr.clone(),
            source,
        }
    }

    /// Runs `f` on the connection; a broken cached connection is replaced once.
    fn with_con<T>(
        &self,
        f: impl Fn(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, RedisStoreError> {
        let mut guard = self.lock();
        let cached = guard.is_some();
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(self.cfg.connect(&self.client).map_err(|e| self.err(e))?);
            }
            let Some(con) = guard.as_mut() else {
                unreachable!("connected above")
            };
            match f(con) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    *guard = None;
                    if !(cached && attempt == 0 && retryable(&e)) {
                        return Err(self.err(e));
                    }
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    fn finish(&self, p: &mut redis::Pipeline) {
        p.cmd("INCR").arg(&self.version_key).ignore();
        if self.auto_publish {
            // The payload is informative only; subscribers reload on any message.
            p.cmd("PUBLISH").arg(&self.channel).arg("write").ignore();
        }
    }

    /// Adds or replaces one link (under its canonical field). A field written by hand for the
    /// same key in another spelling (`/go/Deal/` for `/go/Deal`) would stay and make loads fail
    /// as a duplicate key: [`delete`](Self::delete) removes both spellings.
    pub fn put(&self, link: &Link) -> Result<(), RedisStoreError> {
        self.put_many(std::slice::from_ref(link))
    }

    /// Adds or replaces links in one transaction (one round trip).
    ///
    /// Redis runs a transaction without interruption: for bulk imports of many thousands of
    /// links, call this per chunk (say 10 000) so Redis stays responsive.
    pub fn put_many(&self, links: &[Link]) -> Result<(), RedisStoreError> {
        if links.is_empty() {
            return Ok(());
        }
        let mut p = redis::pipe();
        p.atomic();
        for chunk in links.chunks(PUT_CHUNK) {
            p.cmd("HSET").arg(&self.cfg.hash);
            for l in chunk {
                p.arg(field_of(l)).arg(value_of(l));
            }
            p.ignore();
        }
        self.finish(&mut p);
        self.with_con(|c| p.exec(c))
    }

    /// Removes the link with this key. The key is matched as written and in its canonical form
    /// (`/go/Deal/` removes the field `/go/Deal`). Returns whether a field was removed.
    pub fn delete(&self, key: &str) -> Result<bool, RedisStoreError> {
        self.delete_many(&[key]).map(|n| n > 0)
    }

    /// Removes links by key in one transaction; returns how many fields were removed.
    pub fn delete_many(&self, keys: &[&str]) -> Result<usize, RedisStoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("HDEL").arg(&self.cfg.hash);
        for &k in keys {
            p.arg(k);
            if let Ok(l) = Link::builder(k, "/").build() {
                let f = field_of(&l);
                if f != k {
                    p.arg(f);
                }
            }
        }
        self.finish(&mut p);
        self.with_con(|c| p.query::<(usize,)>(c)).map(|(n,)| n)
    }

    /// Removes every link (the hash), keeping the version counter: instances load an empty set
    /// once this is published (unless their table's `max_removed_fraction` guard refuses).
    pub fn clear(&self) -> Result<(), RedisStoreError> {
        let mut p = redis::pipe();
        p.atomic().cmd("DEL").arg(&self.cfg.hash).ignore();
        self.finish(&mut p);
        self.with_con(|c| p.exec(c))
    }

    /// Deletes the hash and the version key (tests, teardown). Publishes nothing: loads then
    /// fail as for a missing hash, and tables keep serving.
    pub fn destroy(&self) -> Result<(), RedisStoreError> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("DEL")
            .arg(&self.cfg.hash)
            .arg(&self.version_key)
            .ignore();
        self.with_con(|c| p.exec(c))
    }

    /// Bumps the version and tells every subscribed instance to reload (`INCR` + `PUBLISH`, one
    /// transaction). Returns how many subscribers received the message.
    pub fn publish(&self) -> Result<usize, RedisStoreError> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("INCR")
            .arg(&self.version_key)
            .cmd("PUBLISH")
            .arg(&self.channel)
            .arg("publish");
        self.with_con(|c| p.query::<(u64, usize)>(c))
            .map(|(_, n)| n)
    }

    /// The version counter now (0 if unset).
    pub fn version(&self) -> Result<u64, RedisStoreError> {
        self.with_con(|c| {
            redis::cmd("GET")
                .arg(&self.version_key)
                .query::<Option<u64>>(c)
        })
        .map(Option::unwrap_or_default)
    }

    /// Number of links (fields) in the hash.
    pub fn len(&self) -> Result<usize, RedisStoreError> {
        self.with_con(|c| redis::cmd("HLEN").arg(&self.cfg.hash).query(c))
    }

    /// Whether the hash holds no links.
    pub fn is_empty(&self) -> Result<bool, RedisStoreError> {
        self.len().map(|n| n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let cfg = RedisLinksConfig::new("links").url("redis://user:s3cret@10.0.0.5:6379/2");
        let d = format!("{cfg:?}");
        assert!(
            !d.contains("s3cret") && d.contains("redis://***@10.0.0.5:6379/2"),
            "{d}"
        );
        let d = format!("{:?}", RedisLinksConfig::new("links"));
        assert!(d.contains("redis://127.0.0.1:6379/"), "{d}");
    }

    #[test]
    fn fields_load_back_as_the_same_key() {
        let keys = [
            "/go/summer-deal",
            "/go/100%25",
            "/go/x//",
            "/go/%3Fq%23f",
            "/go/%2A",
            "/go/a%2Fb",
            "/go/%C2%A0nbsp",
            "/go/%C2%85nel",
            "/",
            "/*",
            "/go/docs/*",
            "/go//*",
            "/go/%2A/*",
            "/Go/Case",
            "/go/caf%C3%A9",
        ];
        for k in keys {
            let l = Link::builder(k, "/t").build().unwrap();
            let f = field_of(&l);
            let back = Link::builder(f.clone(), "/t")
                .build()
                .unwrap_or_else(|e| panic!("{k} -> {f}: {e}"));
            assert_eq!(back.key(), l.key(), "{k} -> {f}");
            assert_eq!(back.is_prefix(), l.is_prefix(), "{k} -> {f}");
        }
    }

    fn load_one(field: &str, value: &str) -> Result<Vec<Link>, Vec<String>> {
        let mut c = Collector::default();
        c.page(0, &[field.as_bytes().to_vec(), value.as_bytes().to_vec()]);
        if c.total_errors > 0 {
            Err(c.errors)
        } else {
            Ok(c.links)
        }
    }

    #[test]
    fn values_load_back_as_the_same_link() {
        let links = [
            Link::builder("/go/a", "https://a.example/?q=%22x%22&r=1")
                .status(301)
                .forward_query(true)
                .cache_seconds(0)
                .not_before(1_700_000_000_000)
                .not_after(1_700_000_000_123)
                .tag("campaign", "summer \u{e9}")
                .tag("aff", "01")
                .build()
                .unwrap(),
            Link::builder("/go/docs/*", "/docs")
                .forward_path(true)
                .build()
                .unwrap(),
            Link::new("/go/q\"uote\\back%25", "/t").unwrap(),
        ];
        for l in &links {
            let got = load_one(&field_of(l), &value_of(l)).unwrap();
            assert_eq!(got.len(), 1);
            let g = &got[0];
            assert_eq!(
                (
                    g.key(),
                    g.target(),
                    g.status(),
                    g.forward_query(),
                    g.forward_path()
                ),
                (
                    l.key(),
                    l.target(),
                    l.status(),
                    l.forward_query(),
                    l.forward_path()
                )
            );
            assert_eq!(
                (g.cache_seconds(), g.not_before(), g.not_after()),
                (l.cache_seconds(), l.not_before(), l.not_after())
            );
            let mut a = g.tags().to_vec();
            let mut b = l.tags().to_vec();
            a.sort();
            b.sort();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn value_forms_and_errors() {
        let ok = [
            ("/go/a", r#"{"target":"/x"}"#, "/x", 302),
            (
                "/go/a",
                "  {\n \"target\": \"/x\",\n \"status\": 308\n}",
                "/x",
                308,
            ),
            ("/go/a", r#"{"key":"/go/a","target":"/x"}"#, "/x", 302),
            ("/go/a", "https://a.example/ 301", "https://a.example/", 301),
            ("/go/a", "/x", "/x", 302),
        ];
        for (f, v, target, status) in ok {
            let l = load_one(f, v).unwrap_or_else(|e| panic!("{v}: {e:?}"));
            assert_eq!((l[0].target(), l[0].status().as_u16()), (target, status));
        }
        let bad = [
            (r#"{"target":"/x""#, "JSON"),
            (
                r#"{"target":"/x"}, {"key":"/go/evil","target":"/y"}"#,
                "JSON",
            ),
            (r#"{"key":"/go/b","target":"/x"}"#, "differs"),
            (r#"{"target":"/x","stauts":301}"#, "unknown field"),
            (r#"{"target":"javascript:alert(1)"}"#, "scheme"),
            (r#"{}"#, "target"),
            ("/x 200", "status"),
            ("/x 301 extra", "more words"),
            ("/x abc", "not a number"),
            ("", "empty"),
        ];
        for (v, needle) in bad {
            let e = load_one("/go/a", v).expect_err(v).join("\n");
            assert!(e.contains(needle) && e.contains("/go/a"), "{v}: {e}");
        }
    }

    #[test]
    fn the_common_subset_reads_like_the_json_link_file_parser() {
        let values = [
            r#"{"target":"/x"}"#,
            r#"{"target":"https://a.example/p?q=1","status":301,"forward_query":true}"#,
            r#"{"status":308,"target":"/x","cache_seconds":0,"tags":{"z":"1","a":"2","m":"\u00e9"}}"#,
            r#"{"target":"/x","tags":{"a":"1","a":"2"},"status":null,"cache_seconds":null}"#,
            r#"{"target":"/x","tags":{}}"#,
            "{ \"target\" : \"/x\\/y\" ,\n \"forward_query\": false }",
        ];
        for v in values {
            let fast = common("/go/a", v)
                .unwrap_or_else(|| panic!("{v}: not in the common subset"))
                .with_origin(Origin::Index(0));
            let mut c = Collector::default();
            c.single("/go/a", v, 0);
            assert_eq!(c.errors, Vec::<String>::new(), "{v}");
            assert_eq!(c.links, vec![fast], "{v}");
        }
        let prefix = r#"{"target":"/docs","forward_path":true}"#;
        let fast = common("/go/docs/*", prefix)
            .unwrap()
            .with_origin(Origin::Index(0));
        let mut c = Collector::default();
        c.single("/go/docs/*", prefix, 0);
        assert_eq!(c.links, vec![fast]);
        // Left to the JSON link-file parser.
        for v in [
            r#"{"key":"/go/a","target":"/x"}"#,
            r#"{"target":"/x","not_before":"2026-01-01T00:00:00Z"}"#,
            r#"{"target":"/x","not_after":1767225600}"#,
            r#"{"target":"/x","bogus":1}"#,
            r#"{"target":"javascript:x"}"#,
            r#"{"target":"/x"} {"target":"/y"}"#,
        ] {
            assert!(common("/go/a", v).is_none(), "{v}");
        }
    }

    #[test]
    fn values_cannot_merge_across_entries() {
        let mut c = Collector::default();
        let items: Vec<Vec<u8>> = [
            "/go/a",
            r#"{"target":"/a","x":[1"#,
            "/go/b",
            r#"{"target":"/b"}]}"#,
            "/go/c",
            r#"{"target":"/c"}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        c.page(0, &items);
        assert_eq!(c.total_errors, 2, "{:?}", c.errors);
        assert!(c.errors[0].contains("\"/go/a\"") && c.errors[1].contains("\"/go/b\""));
        assert_eq!(c.links.len(), 1);
        assert_eq!(c.links[0].key(), "/go/c");
    }

    #[test]
    fn one_bad_entry_in_a_page_names_its_field() {
        let mut c = Collector::default();
        let mut items = Vec::new();
        for i in 0..10 {
            items.push(format!("/go/{i}").into_bytes());
            let t = if i == 7 { "ftp://x" } else { "/ok" };
            items.push(format!("{{\n\"target\": \"{t}\"\n}}").into_bytes());
        }
        c.page(0, &items);
        assert_eq!(c.total_errors, 1);
        assert!(c.errors[0].contains("\"/go/7\""), "{:?}", c.errors);
        assert_eq!(c.entries, 10);
    }
}
