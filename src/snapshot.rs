//! `Snapshot`: one immutable, validated generation of a link table.
//!
//! Layout (chosen for memory and for a resolve that touches few cache lines):
//! - key and target bytes of all links packed into 64 KiB chunks of shared [`Bytes`];
//! - one compact `Entry` (64 bytes) per link, whose `Location` is a prebuilt [`HeaderValue`]
//!   pointing into its chunk, so a resolve clones a refcount instead of copying or validating;
//! - two `hashbrown::HashTable<Slot>` (exact keys, `/*` prefix keys), hashed with foldhash. A slot
//!   holds the entry's index *and* where its key bytes are, so a lookup fetches the key bytes and
//!   the entry at the same time (two cache misses that overlap) instead of one after the other.
//!
//! Chunks are per 64 KiB, not one per table, so two threads resolving different links rarely
//! touch the same refcount (one shared count would bounce a cache line between cores on every hit).

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use hashbrown::HashTable;
use http::{HeaderValue, StatusCode};

use crate::error::{EntryProblem, Errors, LoadError};
use crate::key::{self, KeyBuf, Stop};
use crate::link::{DefaultRedirect, Link, Origin, Tags};
use crate::location;
use crate::reader::Resolved;
use crate::redirect::{MatchedLink, Redirect};
use crate::rules::Routing;
use crate::set::LinkSet;
use crate::target;

const CHUNK: usize = 64 * 1024;
pub(crate) const NONE: u32 = u32::MAX;

/// One hash-table slot: the entry's index and its key's position, `chunk << 16 | offset` (every
/// key starts below 64 KiB into its chunk), or `NONE` where that does not fit (past 65 536
/// chunks, i.e. 4 GiB of keys and targets), and the lookup reads the position from the entry.
#[derive(Debug, Clone, Copy)]
struct Slot {
    idx: u32,
    pos: u32,
}

const F_QUERY: u8 = 1;
const F_PATH: u8 = 2;
const F_PREFIX: u8 = 4;
const F_RELATIVE: u8 = 8;
const F_TEMPLATE: u8 = 16;

/// 64 bytes, aligned to a cache line: a hit reads one line of it, never two.
#[derive(Debug)]
#[repr(align(64))]
struct Entry {
    location: HeaderValue,
    chunk: u32,
    key_off: u32,
    key_len: u16,
    status: StatusCode,
    flags: u8,
    /// `NONE` = by status.
    cache: u32,
    /// Index into `extras`, or `NONE`.
    extras: u32,
}

#[derive(Debug)]
struct Extras {
    tags: Option<Tags>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    routing: Option<Arc<Routing>>,
    /// Clicks sent on so far, for a link with `max_clicks`; the same counter is handed from
    /// snapshot to snapshot for as long as the key keeps a cap.
    cap: Option<Arc<AtomicU64>>,
}

impl Extras {
    fn live(&self, now: Option<i64>) -> bool {
        if self.not_before.is_none() && self.not_after.is_none() {
            return true;
        }
        // Without a clock, a link with a window is never served (safer than serving it late).
        let Some(now) = now else { return false };
        self.not_before.is_none_or(|t| now >= t) && self.not_after.is_none_or(|t| now < t)
    }
}

/// Options a snapshot is built with (they come from the [`LinkTable`](crate::LinkTable)).
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    pub(crate) case_sensitive: bool,
    pub(crate) default: DefaultRedirect,
    pub(crate) own_hosts: Vec<String>,
}

/// One immutable generation of a link table: every link validated, every `Location` prebuilt.
///
/// Built by [`LinkTable::prepare`](crate::LinkTable::prepare) (or `reload`), published with one
/// atomic pointer store, and freed when the last reader and the table's rollback slot let go.
#[derive(Debug)]
pub struct Snapshot {
    version: u64,
    case_sensitive: bool,
    state: foldhash::fast::RandomState,
    exact: HashTable<Slot>,
    prefixes: HashTable<Slot>,
    entries: Vec<Entry>,
    chunks: Vec<Bytes>,
    extras: Vec<Extras>,
    /// Decode limit: longest key that can match + 1.
    limit: usize,
    max_prefix: usize,
    /// One copy per shard, each with its own refcount: misses from different cores do not
    /// bounce one cache line.
    default_locations: Box<[HeaderValue]>,
    default_status: StatusCode,
    content_hash: u64,
    /// Whether any link has a time window (computed once; resolve reads the clock only then).
    needs_clock: bool,
}

/// What a lookup found.
enum Found<'p> {
    Exact(u32),
    Prefix(u32, &'p str),
    Nothing,
}

impl Snapshot {
    pub(crate) fn empty(opts: &BuildOptions, version: u64) -> Snapshot {
        Snapshot::build(LinkSet::default(), opts, version, None)
            .unwrap_or_else(|_| unreachable!("an empty set is valid"))
    }

    pub(crate) fn build(
        set: LinkSet,
        opts: &BuildOptions,
        version: u64,
        prev: Option<&Snapshot>,
    ) -> Result<Snapshot, LoadError> {
        let content_hash = set.content_hash();
        let LinkSet { links, default, .. } = set;
        let default = default.unwrap_or_else(|| opts.default.clone());
        let n = links.len();
        let mut errors = Errors::default();

        // 1. Pack key and target bytes into chunks.
        let mut chunk_bufs: Vec<Vec<u8>> = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let mut layout: Vec<(u32, u32, u16, u16)> = Vec::with_capacity(n);
        let mut match_keys_folded = String::new();
        for link in &links {
            let mk: &str = link.match_key();
            let fold_needed = !opts.case_sensitive && mk.bytes().any(|b| b.is_ascii_uppercase());
            let mk = if fold_needed {
                match_keys_folded.clear();
                match_keys_folded.push_str(mk);
                match_keys_folded.make_ascii_lowercase();
                match_keys_folded.as_str()
            } else {
                mk
            };
            let need = mk.len() + link.target().len();
            if cur.len() + need > cur.capacity() {
                if !cur.is_empty() {
                    chunk_bufs.push(std::mem::take(&mut cur));
                }
                cur = Vec::with_capacity(CHUNK.max(need));
            }
            let off = cur.len() as u32;
            cur.extend_from_slice(mk.as_bytes());
            cur.extend_from_slice(link.target().as_bytes());
            layout.push((
                chunk_bufs.len() as u32,
                off,
                mk.len() as u16,
                link.target().len() as u16,
            ));
        }
        if !cur.is_empty() {
            chunk_bufs.push(cur);
        }
        let chunks: Vec<Bytes> = chunk_bufs.into_iter().map(Bytes::from).collect();

        // 2. Entries, hash tables, duplicates.
        let state = foldhash::fast::RandomState::default();
        let mut snap = Snapshot {
            version,
            case_sensitive: opts.case_sensitive,
            state,
            exact: HashTable::with_capacity(links.iter().filter(|l| !l.is_prefix()).count()),
            prefixes: HashTable::new(),
            entries: Vec::with_capacity(n),
            chunks,
            extras: Vec::new(),
            limit: 2,
            max_prefix: 0,
            default_locations: Box::new([]),
            default_status: default.status,
            content_hash,
            needs_clock: false,
        };
        snap.default_locations = (0..crate::shard::SHARDS)
            .map(|_| {
                let v = HeaderValue::from_str(&default.target)
                    .unwrap_or_else(|_| HeaderValue::from_static("/"));
                // A fresh `Bytes` allocates its shared refcount on the first clone; take that
                // allocation here so resolving the default never allocates.
                drop(v.clone());
                v
            })
            .collect();
        let mut max_exact = 1;
        let mut max_prefix = None::<usize>;
        let mut entry_link: Vec<u32> = Vec::with_capacity(n);
        for (i, (link, &(chunk, off, klen, tlen))) in links.iter().zip(&layout).enumerate() {
            let origin = link.origin().unwrap_or(Origin::Index(i));
            let t_off = off as usize + klen as usize;
            let location = match HeaderValue::from_maybe_shared(
                snap.chunks[chunk as usize].slice(t_off..t_off + tlen as usize),
            ) {
                Ok(v) => v,
                Err(_) => {
                    // Unreachable for a validated Link; reported rather than trusted.
                    errors.push(
                        origin,
                        crate::LinkError::Field {
                            field: "target",
                            reason: "not a valid header value".into(),
                        },
                    );
                    continue;
                }
            };
            let extras = if link.tags().is_empty()
                && link.not_before().is_none()
                && link.not_after().is_none()
                && link.routing().is_none()
            {
                NONE
            } else {
                snap.extras.push(Extras {
                    tags: link.tags_arc().cloned(),
                    not_before: link.not_before(),
                    not_after: link.not_after(),
                    routing: link.routing().cloned(),
                    cap: None,
                });
                (snap.extras.len() - 1) as u32
            };
            let flags = (link.forward_query() as u8 * F_QUERY)
                | (link.forward_path() as u8 * F_PATH)
                | (link.is_prefix() as u8 * F_PREFIX)
                | (link.is_relative() as u8 * F_RELATIVE)
                | (crate::template::is_template(link.target()) as u8 * F_TEMPLATE);
            let idx = snap.entries.len() as u32;
            snap.entries.push(Entry {
                location,
                chunk,
                key_off: off,
                key_len: klen,
                status: link.status(),
                flags,
                cache: link.cache_seconds().unwrap_or(NONE),
                extras,
            });
            entry_link.push(i as u32);
            let key = snap.key_of(idx);
            let hash = snap.state.hash_one(key);
            let table = if link.is_prefix() {
                &snap.prefixes
            } else {
                &snap.exact
            };
            if let Some(first) = table.find(hash, |s| snap.key_of(s.idx) == key) {
                let l = entry_link[first.idx as usize] as usize;
                let first_origin = links[l].origin().unwrap_or(Origin::Index(l));
                errors.push(
                    origin,
                    EntryProblem::Duplicate {
                        key: link.key().to_string(),
                        first: first_origin,
                    },
                );
                snap.entries.pop();
                entry_link.pop();
                continue;
            }
            let (entries, chunks, state) = (&snap.entries, &snap.chunks, &snap.state);
            let hasher = |s: &Slot| {
                let e = &entries[s.idx as usize];
                state.hash_one(
                    &chunks[e.chunk as usize]
                        [e.key_off as usize..e.key_off as usize + e.key_len as usize],
                )
            };
            let slot = Slot {
                idx,
                pos: if chunk < 1 << 16 && off < 1 << 16 {
                    chunk << 16 | off
                } else {
                    NONE
                },
            };
            if link.is_prefix() {
                snap.prefixes.insert_unique(hash, slot, hasher);
                max_prefix = Some(max_prefix.unwrap_or(0).max(klen as usize));
            } else {
                snap.exact.insert_unique(hash, slot, hasher);
                max_exact = max_exact.max(klen as usize);
            }
        }
        snap.max_prefix = max_prefix.unwrap_or(0);
        // Click caps: keep counting where the previous generation left off.
        for idx in 0..snap.entries.len() as u32 {
            let x = snap.entries[idx as usize].extras;
            if x == NONE
                || snap.extras[x as usize]
                    .routing
                    .as_ref()
                    .is_none_or(|r| r.max_clicks().is_none())
            {
                continue;
            }
            let prefix = snap.entries[idx as usize].flags & F_PREFIX != 0;
            let counter = prev
                .and_then(|p| p.cap_counter(snap.key_of(idx), prefix))
                .unwrap_or_default();
            snap.extras[x as usize].cap = Some(counter);
        }
        snap.needs_clock = snap
            .extras
            .iter()
            .any(|x| x.not_before.is_some() || x.not_after.is_some());
        snap.limit = match max_prefix {
            Some(p) => max_exact.max(p + 1) + 1,
            None => max_exact + 1,
        };
        snap.entries.shrink_to_fit();
        if errors.is_empty() {
            snap.check_loops(&links, &opts.own_hosts, &mut errors);
        }
        errors.into_result()?;
        Ok(snap)
    }

    fn key_of(&self, idx: u32) -> &[u8] {
        let e = &self.entries[idx as usize];
        &self.chunks[e.chunk as usize][e.key_off as usize..e.key_off as usize + e.key_len as usize]
    }

    fn target_of(&self, idx: u32) -> &str {
        self.entries[idx as usize].location.to_str().unwrap_or("")
    }

    fn find(&self, table: &HashTable<Slot>, key: &[u8]) -> Option<u32> {
        let hash = self.state.hash_one(key);
        table.find(hash, |s| self.slot_is(s, key)).map(|s| s.idx)
    }

    /// Whether `s` holds `key`. The entry's key length and the key bytes are both addressed from
    /// the slot alone, so their loads do not wait for each other.
    #[inline]
    fn slot_is(&self, s: &Slot, key: &[u8]) -> bool {
        if s.pos == NONE {
            return self.key_of(s.idx) == key;
        }
        let len = self.entries[s.idx as usize].key_len as usize;
        let off = (s.pos & 0xffff) as usize;
        let bytes = self.chunks[(s.pos >> 16) as usize].get(off..off + key.len());
        bytes == Some(key) && len == key.len()
    }

    /// The cap counter of the link stored under `key` (as stored), if it has one.
    fn cap_counter(&self, key: &[u8], prefix: bool) -> Option<Arc<AtomicU64>> {
        let table = if prefix { &self.prefixes } else { &self.exact };
        let e = &self.entries[self.find(table, key)? as usize];
        (e.extras != NONE)
            .then(|| self.extras[e.extras as usize].cap.clone())
            .flatten()
    }

    fn live(&self, idx: u32, now: Option<i64>) -> bool {
        let e = &self.entries[idx as usize];
        e.extras == NONE || self.extras[e.extras as usize].live(now)
    }

    /// Finds the link for a path (before `?`). Exact keys win over prefix keys; the longest
    /// prefix wins among prefix keys.
    fn lookup<'p>(&self, path: &'p str, now: Option<i64>) -> Found<'p> {
        self.lookup_with(path, |i| self.live(i, now))
    }

    /// For [`Gate::explain`](crate::Gate::explain): the normalised key, and the link the path
    /// names ignoring time windows with whether it is live at `now`.
    #[cfg_attr(not(feature = "os"), allow(dead_code))]
    pub(crate) fn explain_lookup(
        &self,
        path: &str,
        now: Option<i64>,
    ) -> (Option<String>, Option<(usize, bool)>) {
        let mut buf = KeyBuf::new();
        let norm = key::normalize(path.as_bytes(), self.case_sensitive, usize::MAX, &mut buf)
            .ok()
            .map(|_| String::from_utf8_lossy(&buf).into_owned());
        let found = match self.lookup_with(path, |_| true) {
            Found::Exact(i) | Found::Prefix(i, _) => Some((i as usize, self.live(i, now))),
            Found::Nothing => None,
        };
        (norm, found)
    }

    #[inline(always)]
    fn lookup_with<'p>(&self, path: &'p str, live: impl Fn(u32) -> bool) -> Found<'p> {
        let raw = path.as_bytes();
        let mut buf = KeyBuf::new();
        // Most paths are already normal: hash them where they are, without a copy.
        let (buf, res): (&[u8], _) = match key::as_is(raw, self.case_sensitive, self.limit) {
            Some(k) => (k, Ok(())),
            None => {
                let res = key::normalize(raw, self.case_sensitive, self.limit, &mut buf);
                (&buf, res)
            }
        };
        if res == Err(Stop::BadEscape) {
            return Found::Nothing;
        }
        if res.is_ok() {
            if let Some(i) = self.find(&self.exact, buf) {
                if live(i) {
                    return Found::Exact(i);
                }
            }
        }
        if self.prefixes.is_empty() {
            return Found::Nothing;
        }
        if res.is_ok() {
            if let Some(i) = self.find(&self.prefixes, buf) {
                if live(i) {
                    return Found::Prefix(i, &path[key::raw_offset(raw, buf.len())..]);
                }
            }
        }
        let top = buf.len().min(self.max_prefix + 1);
        for pos in (0..top).rev() {
            if buf[pos] != b'/' {
                continue;
            }
            let raw_pos = key::raw_offset(raw, pos);
            // A decoded `%2F` is not a boundary: only a real `/` in the request splits the path.
            if raw.get(raw_pos) != Some(&b'/') {
                continue;
            }
            if let Some(i) = self.find(&self.prefixes, &buf[..pos]) {
                if live(i) {
                    return Found::Prefix(i, &path[raw_pos..]);
                }
            }
        }
        Found::Nothing
    }

    /// Resolves a path (which may carry `?query`); see [`LinkTable::resolve`](crate::LinkTable::resolve).
    pub fn resolve_at(&self, path: &str, now_ms: Option<i64>) -> Redirect {
        let (path, query) = key::split_query(path);
        self.resolve_parts(path, query, now_ms)
    }

    pub(crate) fn resolve_parts(
        &self,
        path: &str,
        query: Option<&str>,
        now: Option<i64>,
    ) -> Redirect {
        // Its own match rather than `resolve_borrowed(..).into_redirect()`: that measured 3–9 %
        // slower on this hot path (gate_vs_resolve/resolve_request, 4 alternated pairs).
        match self.lookup(path, now) {
            Found::Exact(i) => self.hit(i, None, query),
            Found::Prefix(i, suffix) => self.hit(i, Some(suffix), query),
            Found::Nothing => self.default_redirect(),
        }
    }

    /// Whether any link has a time window (resolve then needs the clock).
    pub(crate) fn needs_clock(&self) -> bool {
        self.needs_clock
    }

    fn hit(&self, i: u32, suffix: Option<&str>, query: Option<&str>) -> Redirect {
        let (location, suffix_len) = self.hit_location(i, suffix, query);
        self.redirect_of(i, location.into_owned(), suffix_len)
    }

    /// The `Location` of entry `i` for a request (borrowed from the snapshot unless the path
    /// tail or the query is forwarded), and the length of the forwarded path tail.
    #[inline]
    fn hit_location(
        &self,
        i: u32,
        suffix: Option<&str>,
        query: Option<&str>,
    ) -> (Cow<'_, HeaderValue>, u32) {
        let e = &self.entries[i as usize];
        let suffix = suffix.filter(|s| !s.is_empty() && e.flags & F_PATH != 0);
        let query = query.filter(|q| !q.is_empty() && e.flags & F_QUERY != 0);
        let location = if suffix.is_some() || query.is_some() {
            Cow::Owned(location::build(self.target_of(i), suffix, query))
        } else {
            Cow::Borrowed(&e.location)
        };
        (location, suffix.map_or(0, |s| s.len() as u32))
    }

    /// The owned [`Redirect`] for entry `i` with `location`.
    pub(crate) fn redirect_of(&self, i: u32, location: HeaderValue, suffix_len: u32) -> Redirect {
        let e = &self.entries[i as usize];
        let off = e.key_off as usize;
        let x = (e.extras != NONE).then(|| &self.extras[e.extras as usize]);
        Redirect {
            status: e.status,
            location,
            cache_seconds: self.cache_seconds(i),
            template: e.flags & F_TEMPLATE != 0,
            click_id: None,
            link: Some(MatchedLink {
                key: self.chunks[e.chunk as usize].slice(off..off + e.key_len as usize),
                index: i,
                tags: x.and_then(|x| x.tags.clone()),
                version: self.version,
                prefix: e.flags & F_PREFIX != 0,
                forward: e.flags & (F_QUERY | F_PATH),
                suffix_len,
                routing: x.and_then(|x| x.routing.clone()),
                cap: x.and_then(|x| x.cap.clone()),
            }),
        }
    }

    /// Resolves without taking any reference count: the answer borrows this snapshot. See
    /// [`TableReader`](crate::TableReader).
    #[inline]
    pub(crate) fn resolve_borrowed(
        &self,
        path: &str,
        query: Option<&str>,
        now: Option<i64>,
    ) -> Resolved<'_> {
        let (found, suffix) = match self.lookup(path, now) {
            Found::Exact(i) => (i, None),
            Found::Prefix(i, suffix) => (i, Some(suffix)),
            Found::Nothing => {
                let loc = &self.default_locations[0];
                return Resolved::new(self, NONE, Cow::Borrowed(loc), 0);
            }
        };
        let (location, suffix_len) = self.hit_location(found, suffix, query);
        Resolved::new(self, found, location, suffix_len)
    }

    /// Status of entry `i`, or the default's for `NONE`.
    pub(crate) fn status_of(&self, i: u32) -> StatusCode {
        if i == NONE {
            self.default_status
        } else {
            self.entries[i as usize].status
        }
    }

    /// The link's own cache lifetime, if it sets one (`NONE` = the default: none).
    pub(crate) fn cache_seconds(&self, i: u32) -> Option<u32> {
        let c = self.entries.get(i as usize)?.cache;
        (c != NONE).then_some(c)
    }

    /// Whether entry `i` has `{click_id}`/`{key}` placeholders.
    #[cfg_attr(not(feature = "os"), allow(dead_code))]
    pub(crate) fn is_template(&self, i: u32) -> bool {
        self.entries
            .get(i as usize)
            .is_some_and(|e| e.flags & F_TEMPLATE != 0)
    }

    /// The stored key of entry `i` (lower-cased in a case-insensitive table; without `/*`).
    pub(crate) fn stored_key(&self, i: u32) -> &str {
        std::str::from_utf8(self.key_of(i)).unwrap_or("")
    }

    /// Tags of entry `i`.
    pub(crate) fn tags_of(&self, i: u32) -> &[(Box<str>, Box<str>)] {
        let e = &self.entries[i as usize];
        if e.extras == NONE {
            return &[];
        }
        self.extras[e.extras as usize]
            .tags
            .as_deref()
            .unwrap_or(&[])
    }

    /// The table's default answer.
    pub fn default_redirect(&self) -> Redirect {
        Redirect {
            status: self.default_status,
            location: self.default_locations[crate::shard::index() % self.default_locations.len()]
                .clone(),
            cache_seconds: None,
            template: false,
            click_id: None,
            link: None,
        }
    }

    /// The version of this snapshot (increases with every snapshot a table prepares).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of links.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no links.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A hash of the links and default this snapshot was built from (order-independent);
    /// equal sets of links give equal hashes.
    pub fn content_hash(&self) -> u64 {
        self.content_hash
    }

    /// The link at `index` (as rebuilt from the snapshot; keys are lower-cased in a
    /// case-insensitive table).
    pub fn link(&self, index: usize) -> Option<Link> {
        let e = self.entries.get(index)?;
        let key = std::str::from_utf8(self.key_of(index as u32)).ok()?;
        let key = if e.flags & F_PREFIX != 0 {
            format!("{key}/*")
        } else {
            key.to_string()
        };
        let mut b = Link::builder(key, self.target_of(index as u32))
            .status(e.status.as_u16())
            .forward_query(e.flags & F_QUERY != 0)
            .forward_path(e.flags & F_PATH != 0);
        if e.cache != NONE {
            b = b.cache_seconds(e.cache);
        }
        if e.extras != NONE {
            let x = &self.extras[e.extras as usize];
            if let Some(t) = x.not_before {
                b = b.not_before(t);
            }
            if let Some(t) = x.not_after {
                b = b.not_after(t);
            }
            for (n, v) in x.tags.as_deref().unwrap_or(&[]) {
                b = b.tag(n.to_string(), v.to_string());
            }
            return b.build().ok().map(|l| l.with_routing(x.routing.clone()));
        }
        b.build().ok()
    }

    /// Every link, in load order.
    pub fn links(&self) -> impl Iterator<Item = Link> + '_ {
        (0..self.len()).filter_map(|i| self.link(i))
    }

    /// The default redirect's target and status.
    pub fn default_target(&self) -> (&str, StatusCode) {
        (
            self.default_locations[0].to_str().unwrap_or("/"),
            self.default_status,
        )
    }

    fn same_entry(&self, i: u32, other: &Snapshot, j: u32) -> bool {
        let (a, b) = (&self.entries[i as usize], &other.entries[j as usize]);
        let extras_eq = match (a.extras, b.extras) {
            (NONE, NONE) => true,
            (NONE, _) | (_, NONE) => false,
            (x, y) => {
                let (x, y) = (&self.extras[x as usize], &other.extras[y as usize]);
                x.tags == y.tags && x.not_before == y.not_before && x.not_after == y.not_after
            }
        };
        a.location == b.location
            && a.status == b.status
            && a.flags == b.flags
            && a.cache == b.cache
            && extras_eq
    }

    /// The entry of `self` with the key and kind (exact or `/*` prefix) of `other`'s entry `j`.
    ///
    /// A reload usually keeps the file's order, so entry `j` of the old table is tried first: a
    /// sequential compare of neighbouring memory instead of a hash lookup at a random place
    /// (keys are unique per kind within a snapshot, so a match there is the only one).
    fn find_same_kind(&self, other: &Snapshot, j: u32) -> Option<u32> {
        let key = other.key_of(j);
        let kind = other.entries[j as usize].flags & F_PREFIX;
        if let Some(e) = self.entries.get(j as usize) {
            if e.flags & F_PREFIX == kind && self.key_of(j) == key {
                return Some(j);
            }
        }
        if kind != 0 {
            self.find(&self.prefixes, key)
        } else {
            self.find(&self.exact, key)
        }
    }

    /// What replacing `self` by `new` changes, key by key.
    pub fn diff(&self, new: &Snapshot) -> Diff {
        let mut d = Diff::default();
        let name = |s: &Snapshot, i: u32| {
            let k = String::from_utf8_lossy(s.key_of(i)).into_owned();
            if s.entries[i as usize].flags & F_PREFIX != 0 {
                format!("{k}/*")
            } else {
                k
            }
        };
        for j in 0..new.len() as u32 {
            match self.find_same_kind(new, j) {
                None => d.added.push(name(new, j)),
                Some(i) if !self.same_entry(i, new, j) => d.changed.push(name(new, j)),
                Some(_) => {}
            }
        }
        for i in 0..self.len() as u32 {
            if new.find_same_kind(self, i).is_none() {
                d.removed.push(name(self, i));
            }
        }
        d
    }

    /// Counts of [`diff`](Snapshot::diff) without collecting keys.
    pub(crate) fn diff_counts(&self, new: &Snapshot) -> (usize, usize, usize) {
        let (mut added, mut changed) = (0, 0);
        for j in 0..new.len() as u32 {
            match self.find_same_kind(new, j) {
                None => added += 1,
                Some(i) if !self.same_entry(i, new, j) => changed += 1,
                Some(_) => {}
            }
        }
        // Every new key is either added or matches exactly one old key.
        let removed = self.len() - (new.len() - added);
        (added, removed, changed)
    }

    /// Rejects cycles of links whose targets point back into the table (same-site paths, or
    /// absolute URLs on one of `own_hosts`).
    fn check_loops(&self, links: &[Link], own_hosts: &[String], errors: &mut Errors) {
        let n = self.entries.len();
        let mut next = vec![NONE; n];
        let mut any = false;
        for (i, slot) in next.iter_mut().enumerate() {
            if self.entries[i].flags & F_RELATIVE == 0 && own_hosts.is_empty() {
                continue;
            }
            if let Some(path) = target::own_path(self.target_of(i as u32), own_hosts) {
                match self.lookup(path, None) {
                    Found::Exact(j) | Found::Prefix(j, _) => {
                        *slot = j;
                        any = true;
                    }
                    Found::Nothing => {}
                }
            }
        }
        if !any {
            return;
        }
        // 0 = unvisited, 1 = on the current walk, 2 = done.
        let mut state = vec![0u8; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            let mut walk = Vec::new();
            let mut cur = start as u32;
            loop {
                if cur == NONE || state[cur as usize] == 2 {
                    break;
                }
                if state[cur as usize] == 1 {
                    let from = walk.iter().position(|&w| w == cur).unwrap_or(0);
                    let mut chain: Vec<String> = walk[from..]
                        .iter()
                        .map(|&w| links[w as usize].key().to_string())
                        .collect();
                    chain.push(links[cur as usize].key().to_string());
                    let origin = links[cur as usize]
                        .origin()
                        .unwrap_or(Origin::Index(cur as usize));
                    errors.push(origin, EntryProblem::Loop { chain });
                    break;
                }
                state[cur as usize] = 1;
                walk.push(cur);
                cur = next[cur as usize];
            }
            for w in walk {
                state[w as usize] = 2;
            }
        }
    }
}

/// What a reload would change, key by key (see [`LinkTable::diff`](crate::LinkTable::diff)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Keys only in the new table.
    pub added: Vec<String>,
    /// Keys only in the current table.
    pub removed: Vec<String>,
    /// Keys in both whose link differs.
    pub changed: Vec<String>,
}

impl Diff {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[cfg(test)]
mod lookups {
    use super::*;
    use std::cell::Cell;

    fn snapshot_of(links: Vec<Link>) -> Snapshot {
        let opts = BuildOptions {
            case_sensitive: false,
            default: DefaultRedirect::default(),
            own_hosts: vec![],
        };
        Snapshot::build(links.into(), &opts, 1, None).unwrap()
    }

    #[test]
    fn probes_per_hit_are_about_one() {
        let snap = snapshot_of(
            (0..100_000)
                .map(|i| {
                    Link::new(
                        format!("/go/aff-{i:07}-xyz"),
                        format!("https://s.example/{i}"),
                    )
                    .unwrap()
                })
                .collect(),
        );
        let calls = Cell::new(0u64);
        for i in 0..100_000 {
            let key = format!("/go/aff-{i:07}-xyz");
            let hash = snap.state.hash_one(key.as_bytes());
            let found = snap.exact.find(hash, |s| {
                calls.set(calls.get() + 1);
                snap.slot_is(s, key.as_bytes())
            });
            assert!(found.is_some());
        }
        let per = calls.get() as f64 / 100_000.0;
        assert!(per < 1.2, "{per} key comparisons per hit");
    }

    /// The slot's own key position and the entry's (the fallback past 65 536 chunks) agree, for
    /// each key, a key one byte shorter or longer, and a key not in the table, across chunks.
    #[test]
    fn slot_position_and_entry_agree() {
        let snap = snapshot_of(
            (0..3_000)
                .map(|i| {
                    Link::new(
                        format!("/go/k{i}"),
                        format!("https://s.example/{}", "x".repeat(i % 90)),
                    )
                    .unwrap()
                })
                .collect(),
        );
        assert!(
            snap.chunks.len() > 1,
            "the test needs keys in several chunks"
        );
        let mut seen = 0;
        for s in snap.exact.iter() {
            let key = snap.key_of(s.idx).to_vec();
            let fallback = Slot {
                idx: s.idx,
                pos: NONE,
            };
            let mut longer = key.clone();
            longer.push(b'7');
            for probe in [&key[..], &key[..key.len() - 1], &longer[..], b"/go/none"] {
                let want = probe == &key[..];
                assert_eq!(
                    snap.slot_is(s, probe),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(probe)
                );
                assert_eq!(snap.slot_is(&fallback, probe), want);
            }
            seen += 1;
        }
        assert_eq!(seen, 3_000);
    }
}

#[cfg(test)]
mod layout {
    use super::Entry;

    #[test]
    fn an_entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
        assert_eq!(std::mem::align_of::<Entry>(), 64);
    }
}
