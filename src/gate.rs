//! `Gate`: the whole request path in one function — resolve → expand → click → record.
//!
//! Framework-free: it takes `http::request::Parts` and the peer address and returns a
//! [`Decision`]; the tower and actix integrations are thin wrappers around it.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::FORWARDED;
use http::{HeaderName, HeaderValue, Method, Response, StatusCode, request::Parts};

use crate::click::{Click, MAX_HEADER_BYTES, bounded};
use crate::click_id::ClickId;
use crate::facts::Facts;
#[cfg(feature = "fraud")]
use crate::fraud::{BotDetector, FloodDetector, UaClass, UniqueFilter, Verdict, VisitorKey};
use crate::ip::{ClickIp, IpPolicy, canonical};
use crate::recorder::Sharded;
use crate::recorder::{ClickRecorder, Recorded};
use crate::redirect::Redirect;
use crate::rules::{RuleStep, Visitor};
use crate::table::LinkTable;
use crate::ua_memo::{UaFacts, UaMemo};

/// What happens to a path under the prefix that no link matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownPolicy {
    /// Serve the table's default redirect (like nginx `map`'s `default`), recorded as an
    /// unmatched click (default).
    #[default]
    Redirect,
    /// Hand the request to the app (which answers, e.g., 404). Nothing is recorded.
    Pass,
}

/// What happens to methods other than GET and HEAD under the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MethodPolicy {
    /// Hand them to the app (default).
    #[default]
    Pass,
    /// Answer `405 Method Not Allowed` with `Allow: GET, HEAD`.
    NotAllowed,
}

/// What the gate does with a request classified as a bot or link preview (feature `fraud`).
///
/// Under `Flag` and `DontRecord` a bot goes through rules, split and the click cap like any
/// visitor (it is served the same page, so it uses up a cap unit); use `Redirect` to keep bots
/// out of caps and splits.
#[cfg(feature = "fraud")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BotPolicy {
    /// Serve it like any visitor and record the click with `bot: true` and the reason
    /// (default): honest numbers, nothing hidden.
    #[default]
    Flag,
    /// Send it to the link's `bot_target`, or — when the link has none — to the link's target
    /// without its query string (the plain product URL without the affiliate tag); the click is
    /// recorded with `bot: true`. Rules, split and cap are skipped (bots never use up a cap).
    Redirect,
    /// Serve it like any visitor but record nothing (counted in [`GateStats::bots_not_recorded`]).
    DontRecord,
}

/// Counters of what a [`Gate`] decided (sharded: no contention between request threads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateStats {
    /// Redirects served (matched or default).
    pub redirects: u64,
    /// Of those, default redirects (no live link matched, or a capped link without overflow).
    pub unmatched: u64,
    /// Requests classified as bots (crawlers, scripts, empty UA, HEAD, prefetch).
    pub bots: u64,
    /// Requests classified as link-preview fetchers (counted in `bots` too).
    pub previews: u64,
    /// Bot clicks not recorded (`BotPolicy::DontRecord`).
    pub bots_not_recorded: u64,
    /// Bots sent to the bot target (`BotPolicy::Redirect`).
    pub bots_redirected: u64,
    /// Requests a targeting rule routed.
    pub rule_matches: u64,
    /// Requests routed by a split variant.
    pub split_choices: u64,
    /// Requests to a link whose `max_clicks` was reached.
    pub capped: u64,
    /// Clicks flagged `unique: false`.
    pub duplicates: u64,
    /// Clicks flagged `suspicious: true`.
    pub suspicious: u64,
}

#[derive(Debug, Default)]
struct Counters {
    redirects: Sharded,
    unmatched: Sharded,
    bots: Sharded,
    previews: Sharded,
    bots_not_recorded: Sharded,
    bots_redirected: Sharded,
    rule_matches: Sharded,
    split_choices: Sharded,
    capped: Sharded,
    duplicates: Sharded,
    suspicious: Sharded,
}

/// The gate's verdict for one request.
#[derive(Debug)]
#[non_exhaustive]
// `Redirect` is much larger than the other variants; boxing it would add one allocation per
// redirect served, to save copying ~200 bytes once per request.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Not ours: hand the request to the app untouched.
    Pass,
    /// Answer with this redirect (its click is already recorded).
    Redirect(Handled),
    /// Answer `405` (method policy [`MethodPolicy::NotAllowed`]).
    MethodNotAllowed,
}

/// A redirect the gate served.
#[derive(Debug)]
#[non_exhaustive]
pub struct Handled {
    /// The redirect (templates expanded with `click_id`).
    pub redirect: Redirect,
    /// The click's id.
    pub click_id: ClickId,
    /// What the recorder did with the click (`None` when unmatched clicks are not recorded).
    pub recorded: Option<Recorded>,
}

impl Decision {
    /// The HTTP response for `Redirect` and `MethodNotAllowed`; `None` for `Pass`. `body` is used
    /// for both (empty bodies are what redirects normally carry).
    pub fn into_response<B>(self, body: B) -> Option<Response<B>> {
        match self {
            Decision::Pass => None,
            Decision::Redirect(h) => Some(h.redirect.into_response_with(body)),
            Decision::MethodNotAllowed => {
                let mut r = Response::new(body);
                *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                r.headers_mut()
                    .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                Some(r)
            }
        }
    }
}

/// A trusted proxy address or network (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    net: IpAddr,
    bits: u8,
}

/// A trusted-proxy string that is not an address or CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy `{0}` is not an IP address or CIDR network (e.g. 10.0.0.0/8)")]
pub struct BadProxy(String);

impl std::str::FromStr for TrustedProxy {
    type Err = BadProxy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadProxy(s.to_string());
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(TrustedProxy { net, bits })
    }
}

impl TrustedProxy {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = if self.bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.bits)
                };
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = if self.bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.bits)
                };
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// Configures a [`Gate`].
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `prefix` | `/` (every path; matched ignoring ASCII case unless the table is case-sensitive) |
/// | `unknown` | [`UnknownPolicy::Redirect`] |
/// | `methods` | [`MethodPolicy::Pass`] |
/// | `ip_policy` | [`IpPolicy::Anonymize`] |
/// | `country_header` | none (e.g. `cf-ipcountry`) |
/// | `record_unmatched` | `true` (default-redirect clicks are recorded with `matched: false`) |
/// | `record_clicks` | `true` (`false`: serve only, record nothing) |
/// | `trusted_proxies` | none: the peer address is the client |
#[derive(Debug, Clone)]
#[must_use]
pub struct GateBuilder {
    table: LinkTable,
    recorder: ClickRecorder,
    prefix: String,
    unknown: UnknownPolicy,
    methods: MethodPolicy,
    ip: IpPolicy,
    country: Option<HeaderName>,
    record_unmatched: bool,
    record_clicks: bool,
    proxies: Vec<TrustedProxy>,
    clock: fn() -> i64,
    #[cfg(feature = "fraud")]
    bots: Option<BotDetector>,
    #[cfg(feature = "fraud")]
    bot_policy: BotPolicy,
    #[cfg(feature = "fraud")]
    unique: Option<Arc<UniqueFilter>>,
    #[cfg(feature = "fraud")]
    flood: Option<Arc<FloodDetector>>,
    counters: Arc<Counters>,
    /// Set anew by [`build`](Self::build): a gate's memo entries are its own.
    memo: UaMemo,
}

impl GateBuilder {
    /// Classify every click with this detector (feature `fraud`): the click gets `bot` and
    /// `bot_reason`, and [`bot_policy`](Self::bot_policy) decides what bots get.
    #[cfg(feature = "fraud")]
    pub fn bots(mut self, detector: BotDetector) -> Self {
        self.bots = Some(detector);
        self
    }
    /// Mark repeat clicks of a visitor (anonymised IP + User-Agent) on a key within the
    /// filter's window `unique: false` (feature `fraud`). Checked for every recorded click.
    ///
    /// Pass an `Arc<UniqueFilter>` and keep a clone to call
    /// [`UniqueFilter::rotate`] from a housekeeping thread: then no request ever pays for
    /// clearing a generation (about 10 ms at the default size, once per window/7).
    #[cfg(feature = "fraud")]
    pub fn unique(mut self, filter: impl Into<Arc<UniqueFilter>>) -> Self {
        self.unique = Some(filter.into());
        self
    }
    /// Flag clicks beyond the detector's limit per source (IPv4 address or IPv6 /64, the
    /// client's full address, before anonymisation) `suspicious: true` with the reason
    /// (feature `fraud`). The redirect is served all the same.
    #[cfg(feature = "fraud")]
    pub fn flood(mut self, detector: impl Into<Arc<FloodDetector>>) -> Self {
        self.flood = Some(detector.into());
        self
    }
    /// What bots get (default [`BotPolicy::Flag`]); needs [`bots`](Self::bots).
    #[cfg(feature = "fraud")]
    pub fn bot_policy(mut self, p: BotPolicy) -> Self {
        self.bot_policy = p;
        self
    }
    /// Only paths starting with this prefix are handled (e.g. `/go/`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// What to do with unknown keys under the prefix.
    pub fn unknown(mut self, p: UnknownPolicy) -> Self {
        self.unknown = p;
        self
    }
    /// What to do with methods other than GET/HEAD under the prefix.
    pub fn methods(mut self, p: MethodPolicy) -> Self {
        self.methods = p;
        self
    }
    /// How the visitor's IP is recorded.
    pub fn ip_policy(mut self, p: IpPolicy) -> Self {
        self.ip = p;
        self
    }
    /// Record this request header as the click's country (e.g. `cf-ipcountry`).
    pub fn country_header(mut self, h: HeaderName) -> Self {
        self.country = Some(h);
        self
    }
    /// Whether default-redirect ("404") clicks are recorded.
    pub fn record_unmatched(mut self, on: bool) -> Self {
        self.record_unmatched = on;
        self
    }
    /// Whether to record clicks at all (default `true`). With `false` the gate serves every
    /// request exactly as before (rules, caps, bot policy, [`stats`](Gate::stats)) but builds
    /// and records no [`Click`](crate::Click), and [`Handled::recorded`] is `None`: to measure
    /// what click logging costs, or for a replica whose clicks another instance records.
    ///
    /// ```
    /// use linkgate::{ClickRecorder, Decision, Gate, Link, LinkTable, MemorySink};
    /// let table = LinkTable::from_links(vec![Link::new("/go/a", "https://a.example/")?])?;
    /// let sink = MemorySink::new();
    /// let (recorder, guard) = ClickRecorder::builder(sink.clone()).spawn()?;
    /// let gate = Gate::builder(table, recorder).record_clicks(false).build();
    /// let (parts, _) = http::Request::get("/go/a").body(())?.into_parts();
    /// let Decision::Redirect(h) = gate.handle(&parts, None) else { panic!() };
    /// assert_eq!((h.redirect.location().to_str()?, h.recorded), ("https://a.example/", None));
    /// assert_eq!(gate.stats().redirects, 1);
    /// drop(gate);
    /// drop(guard);
    /// assert!(sink.clicks().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_clicks(mut self, on: bool) -> Self {
        self.record_clicks = on;
        self
    }
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers are believed.
    ///
    /// Without this, those headers are ignored and the TCP peer is the client: anyone can send
    /// `X-Forwarded-For: 1.2.3.4`, so trusting it from an arbitrary peer would let visitors
    /// forge their address (and dodge flood and duplicate detection). With it, the client is the
    /// right-most address in the chain that is not itself a trusted proxy.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = TrustedProxy>) -> Self {
        self.proxies = proxies.into_iter().collect();
        self
    }
    /// The clock for click timestamps (Unix ms; default [`fast_now_ms`](crate::fast_now_ms)).
    pub fn clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }
    /// The gate.
    pub fn build(mut self) -> Gate {
        // The default clock calibrates on its first read: do that here, not in a request.
        let _ = crate::clock::fast_now_ms();
        // A clone of this builder may hold another bot detector: never share its memo.
        self.memo = UaMemo::new();
        Gate { b: Arc::new(self) }
    }
}

/// Ties a [`LinkTable`] and a [`ClickRecorder`]: resolves a request, expands a template target
/// with the click's id, builds the [`Click`] (zero-copy header clones) and records it — in one
/// call, without locks or I/O. Cheap to clone; shares the table and recorder.
///
/// **Memory per thread.** What a `User-Agent` alone decides (the bot verdict, the device the
/// targeting rules ask for) is remembered per thread in 256 slots, one User-Agent of up to 304
/// bytes each (direct-mapped by hash, compared byte for byte; a User-Agent takes its slot when
/// it misses there twice in a row, so one-off User-Agents do not evict common ones): 86 KiB for
/// each thread that calls [`handle`](Self::handle) with a bot detector or a device rule in
/// play, allocated on the first such call and freed when the thread ends. A remembered answer
/// is exactly the computed one; one gate never answers from another's entries.
///
/// ```
/// use linkgate::{ClickRecorder, Decision, Gate, Link, LinkTable, MemorySink};
/// let table = LinkTable::from_links(vec![Link::new("/go/a", "https://a.example/?sub={click_id}")?])?;
/// let sink = MemorySink::new();
/// let (recorder, guard) = ClickRecorder::builder(sink.clone()).spawn()?;
/// let gate = Gate::builder(table, recorder).prefix("/go/").build();
///
/// let (parts, _) = http::Request::get("/go/a").body(())?.into_parts();
/// let Decision::Redirect(h) = gate.handle(&parts, Some("203.0.113.9".parse()?)) else { panic!() };
/// assert_eq!(h.redirect.location(), format!("https://a.example/?sub={}", h.click_id).as_str());
/// drop(guard); // flushes
/// assert_eq!(sink.clicks()[0].click_id, h.click_id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gate {
    // One shared allocation: servers clone the service (and so the gate) per request.
    b: Arc<GateBuilder>,
}

impl Gate {
    /// Starts configuring a gate.
    pub fn builder(table: LinkTable, recorder: ClickRecorder) -> GateBuilder {
        GateBuilder {
            table,
            recorder,
            prefix: "/".into(),
            unknown: UnknownPolicy::Redirect,
            methods: MethodPolicy::Pass,
            ip: IpPolicy::Anonymize,
            country: None,
            record_unmatched: true,
            record_clicks: true,
            proxies: Vec::new(),
            clock: crate::clock::fast_now_ms,
            #[cfg(feature = "fraud")]
            bots: None,
            #[cfg(feature = "fraud")]
            bot_policy: BotPolicy::Flag,
            #[cfg(feature = "fraud")]
            unique: None,
            #[cfg(feature = "fraud")]
            flood: None,
            counters: Arc::default(),
            memo: UaMemo::new(),
        }
    }

    /// The table.
    pub fn table(&self) -> &LinkTable {
        &self.b.table
    }

    /// The recorder.
    pub fn recorder(&self) -> &ClickRecorder {
        &self.b.recorder
    }

    /// Whether `path` is under the prefix.
    pub fn covers(&self, path: &str) -> bool {
        let p = self.b.prefix.as_bytes();
        path.len() >= p.len() && path.as_bytes()[..p.len()].eq_ignore_ascii_case(p)
    }

    /// Decides what to do with one request. `peer` is the TCP peer address.
    ///
    /// In order: prefix and method checks → resolve → bot classification and policy (feature
    /// `fraud`) → click cap → targeting rules → split → template expansion → the click (with
    /// every verdict and label) → `record`. Nothing here blocks or does I/O.
    pub fn handle(&self, parts: &Parts, peer: Option<IpAddr>) -> Decision {
        let b = &self.b;
        let path = parts.uri.path();
        if !self.covers(path) {
            return Decision::Pass;
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return match b.methods {
                MethodPolicy::Pass => Decision::Pass,
                MethodPolicy::NotAllowed => Decision::MethodNotAllowed,
            };
        }
        // The client address serves only the click and its checks: a gate that records no
        // clicks does not work it out.
        let client = if b.record_clicks {
            self.client_ip(parts, peer)
        } else {
            None
        };
        #[cfg(feature = "fraud")]
        self.prefetch_source(client);
        let facts = Facts::scan(&parts.headers, b.country.as_ref());
        // The address as the click records it.
        let ip = client.and_then(|c| b.ip.apply(c));
        // The unique filter's line for the key the click most likely carries, loading while
        // the table is searched (see `prefetch_visitor`).
        #[cfg(feature = "fraud")]
        let early = self.checks_visitors().then(|| {
            let path_key = unmatched_key(parts);
            let v = self.prefetch_visitor_for(path_key, &facts, client, ip.as_ref());
            (path_key, v)
        });
        let mut redirect = b.table.resolve_uri_raw(&parts.uri);
        if redirect.is_default() && b.unknown == UnknownPolicy::Pass {
            return Decision::Pass;
        }
        let ts = (b.clock)();
        let click_id = ClickId::at(ts);
        let mut out = Outcome::default();
        #[cfg(feature = "fraud")]
        let (visitor, matched) = (
            self.prefetch_visitor(&facts, client, ip.as_ref(), &redirect, early),
            redirect.matched(),
        );
        if !self.route(parts, &facts, &mut redirect, ts, click_id, &mut out, None) {
            return Decision::Pass;
        }
        redirect.expand(click_id);
        if !self.records(&redirect, &out) {
            self.count(&redirect, &out);
            return Decision::Redirect(Handled {
                redirect,
                click_id,
                recorded: None,
            });
        }
        let mut click = self.click(parts, &facts, ip, &redirect, ts, click_id);
        // `route` changes the click's key only when it answers a capped link with the default.
        #[cfg(feature = "fraud")]
        let visitor = visitor.filter(|_| redirect.matched() == matched);
        #[cfg(feature = "fraud")]
        self.check_visitor(&mut out, client, &click, visitor, ts, false);
        self.count(&redirect, &out);
        out.apply(&mut click);
        let recorded = Some(b.recorder.record(click));
        Decision::Redirect(Handled {
            redirect,
            click_id,
            recorded,
        })
    }

    /// The gate's counters now.
    pub fn stats(&self) -> GateStats {
        let c = &*self.b.counters;
        GateStats {
            redirects: c.redirects.sum(),
            unmatched: c.unmatched.sum(),
            bots: c.bots.sum(),
            previews: c.previews.sum(),
            bots_not_recorded: c.bots_not_recorded.sum(),
            bots_redirected: c.bots_redirected.sum(),
            rule_matches: c.rule_matches.sum(),
            split_choices: c.split_choices.sum(),
            capped: c.capped.sum(),
            duplicates: c.duplicates.sum(),
            suspicious: c.suspicious.sum(),
        }
    }

    /// Whether this answer gets a click recorded.
    fn records(&self, r: &Redirect, out: &Outcome) -> bool {
        let b = &self.b;
        b.record_clicks && !out.dont_record && (b.record_unmatched || !r.is_default())
    }

    fn count(&self, r: &Redirect, out: &Outcome) {
        let c = &*self.b.counters;
        c.redirects.add(1);
        if r.is_default() {
            c.unmatched.add(1);
        }
        if out.bot == Some(true) {
            c.bots.add(1);
            if out.preview {
                c.previews.add(1);
            }
            if out.dont_record {
                c.bots_not_recorded.add(1);
            }
            if out.bot_redirected {
                c.bots_redirected.add(1);
            }
        }
        if out.capped {
            c.capped.add(1);
        } else if out.rule().is_some() {
            c.rule_matches.add(1);
        }
        if out.variant().is_some() {
            c.split_choices.add(1);
        }
        if out.unique == Some(false) {
            c.duplicates.add(1);
        }
        if out.suspicious == Some(true) {
            c.suspicious.add(1);
        }
    }

    /// Bots, cap, rules and split for a resolved request; `false` means "pass to the app" (a
    /// capped link without overflow under [`UnknownPolicy::Pass`]). `trace` (from `explain`)
    /// makes it a dry run: the cap is only looked at, not taken.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn route(
        &self,
        parts: &Parts,
        facts: &Facts<'_>,
        redirect: &mut Redirect,
        ts: i64,
        click_id: ClickId,
        out: &mut Outcome,
        trace: Option<&mut Vec<RuleStep>>,
    ) -> bool {
        // What the User-Agent alone decides is remembered per thread (`ua_memo.rs`), when this
        // request needs any of it.
        #[cfg(feature = "fraud")]
        let bots = self.b.bots.is_some();
        #[cfg(not(feature = "fraud"))]
        let bots = false;
        let needed = facts.user_agent.is_some()
            && (bots
                || redirect
                    .link()
                    .and_then(|l| l.routing())
                    .is_some_and(|r| r.uses_device()));
        let (mut known, ticket) = if needed {
            self.b
                .memo
                .get(facts.recorded_user_agent(), || facts.ua_digest())
        } else {
            (UaFacts::default(), None)
        };
        let before = known;
        let routed = self.route_known(parts, facts, redirect, ts, click_id, out, trace, &mut known);
        if let Some(t) = ticket.filter(|_| known != before) {
            self.b.memo.put(t, facts.recorded_user_agent(), known);
        }
        routed
    }

    /// [`route`](Self::route) with what is known of the User-Agent (`known`, from the memo),
    /// adding what it computes.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn route_known(
        &self,
        parts: &Parts,
        facts: &Facts<'_>,
        redirect: &mut Redirect,
        ts: i64,
        click_id: ClickId,
        out: &mut Outcome,
        trace: Option<&mut Vec<RuleStep>>,
        known: &mut UaFacts,
    ) -> bool {
        let b = &self.b;
        let path = parts.uri.path();
        let query = parts.uri.query();
        #[cfg(feature = "fraud")]
        if let Some(d) = &b.bots {
            let v: Verdict = d.classify_facts(&parts.method, facts, &parts.headers, &mut known.bot);
            out.bot = Some(!v.is_human());
            if !v.is_human() {
                out.preview = v.class == UaClass::Preview;
                out.bot_reason = v.reason.as_ref().map(|r| r.to_bytes());
                match b.bot_policy {
                    BotPolicy::Flag => {}
                    BotPolicy::DontRecord => out.dont_record = true,
                    BotPolicy::Redirect => {
                        if redirect.matched() {
                            let routed = redirect
                                .link()
                                .and_then(|l| l.routing())
                                .and_then(|r| r.bot_target().cloned());
                            match routed {
                                Some(t) => redirect.retarget(&t, path, query),
                                None => strip_query(redirect),
                            }
                            out.bot_redirected = true;
                            return true;
                        }
                    }
                }
            }
        }
        let Some(routing) = redirect.link().and_then(|l| l.routing()).cloned() else {
            return true;
        };
        let capped = if trace.is_some() {
            routing
                .max_clicks()
                .is_some_and(|max| redirect.link().and_then(|l| l.cap_count()) >= Some(max))
        } else {
            !redirect.link().is_none_or(|l| l.take_cap())
        };
        if capped {
            out.capped = true;
            match routing.overflow() {
                Some(t) => {
                    redirect.retarget(t, path, query);
                    out.rule = Some(Bytes::from_static(b"max_clicks:overflow"));
                }
                None if b.unknown == UnknownPolicy::Pass => return false,
                None => *redirect = b.table.snapshot().default_redirect(),
            }
            return true;
        }
        let visitor = Visitor {
            user_agent: facts.user_agent.map(HeaderValue::as_bytes),
            country: facts.country.map(HeaderValue::as_bytes),
            accept_language: facts.accept_language.map(HeaderValue::as_bytes),
            now_ms: ts,
        };
        let (choice, label) = routing.choose_labelled(&visitor, &mut known.device, click_id, trace);
        if let Some(t) = choice.target {
            redirect.retarget(t, path, query);
        }
        out.notes = choice.notes.cloned();
        #[cfg(feature = "fraud")]
        {
            out.label = label.map(|i| (routing, i));
        }
        #[cfg(not(feature = "fraud"))]
        let _ = label;
        true
    }

    /// A dry run of [`handle`](Self::handle): the whole decision for this request, step by
    /// step, without recording a click, taking a cap or touching any counter. For support staff
    /// ("my link goes to the wrong page"). The split variant depends on the click id: this
    /// uses a fresh one; [`explain_with_id`](Self::explain_with_id) replays a recorded click.
    ///
    /// ```
    /// use linkgate::{ClickRecorder, Device, Gate, Link, LinkTable, Rule};
    /// let link = Link::builder("/go/app", "https://example.com/app")
    ///     .rule(Rule::new("ios", "https://apps.apple.com/app/id1").device(Device::Ios))
    ///     .build()?;
    /// let (recorder, _guard) = ClickRecorder::builder(()).spawn()?;
    /// let gate = Gate::builder(LinkTable::from_links(vec![link])?, recorder).prefix("/go/").build();
    /// let (parts, _) = http::Request::get("/go/App/")
    ///     .header("user-agent", "Mozilla/5.0 (Linux; Android 14)")
    ///     .body(())?
    ///     .into_parts();
    /// let e = gate.explain(&parts, None);
    /// assert_eq!(e.key.as_deref(), Some("/go/app"));
    /// assert_eq!(e.location.as_deref(), Some("https://example.com/app"));
    /// println!("{e}"); // rule `ios`: no match (device is android) ...
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn explain(&self, parts: &Parts, peer: Option<IpAddr>) -> Explanation {
        let ts = (self.b.clock)();
        self.explain_with_id(parts, peer, ClickId::at(ts))
    }

    /// [`explain`](Self::explain) with a given click id (e.g. from a recorded click, to see
    /// which split variant it got).
    pub fn explain_with_id(
        &self,
        parts: &Parts,
        peer: Option<IpAddr>,
        click_id: ClickId,
    ) -> Explanation {
        let b = &self.b;
        let path = parts.uri.path();
        let ts = (b.clock)();
        let mut e = Explanation {
            path: parts.uri.to_string(),
            client_ip: self.client_ip(parts, peer),
            key: None,
            link: None,
            why_unmatched: None,
            bot: None,
            cap: None,
            capped: false,
            rules: Vec::new(),
            rule: None,
            variant: None,
            unique: None,
            suspicious: None,
            outcome: Outcome::default().into(),
            status: None,
            location: None,
            recorded: false,
        };
        if !self.covers(path) {
            e.why_unmatched = Some(format!("path is not under the prefix `{}`", b.prefix));
            return e;
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            e.why_unmatched = Some(format!(
                "method {} is not GET or HEAD: {}",
                parts.method,
                match b.methods {
                    MethodPolicy::Pass => "passed to the app",
                    MethodPolicy::NotAllowed => "answered 405",
                }
            ));
            return e;
        }
        let snap = b.table.snapshot();
        let (norm, found) = snap.explain_lookup(path, Some(ts));
        e.key = norm;
        match found {
            Some((i, live)) => {
                let link = snap.link(i);
                e.link = link.as_ref().map(|l| l.key().to_string());
                if !live {
                    let window = link
                        .map(|l| {
                            format!(
                                "not_before {:?}, not_after {:?}",
                                l.not_before(),
                                l.not_after()
                            )
                        })
                        .unwrap_or_default();
                    e.why_unmatched =
                        Some(format!("the link exists but is not live now ({window})"));
                }
            }
            None => e.why_unmatched = Some("no link has this key".into()),
        }
        let mut redirect = b.table.resolve_uri_raw(&parts.uri);
        if redirect.is_default() && b.unknown == UnknownPolicy::Pass {
            e.why_unmatched = e.why_unmatched.map(|w| format!("{w}; passed to the app"));
            return e;
        }
        if let Some(l) = redirect.link() {
            e.cap = l
                .routing()
                .and_then(|r| r.max_clicks())
                .map(|max| (l.cap_count().unwrap_or(0), max));
        }
        let facts = Facts::scan(&parts.headers, b.country.as_ref());
        let mut out = Outcome::default();
        let mut steps = Vec::new();
        if !self.route(
            parts,
            &facts,
            &mut redirect,
            ts,
            click_id,
            &mut out,
            Some(&mut steps),
        ) {
            e.capped = true;
            e.why_unmatched =
                Some("max_clicks reached, no overflow target: passed to the app".into());
            return e;
        }
        redirect.expand(click_id);
        #[cfg(feature = "fraud")]
        if !out.dont_record {
            let client = self.client_ip(parts, peer);
            let ip = client.and_then(|c| b.ip.apply(c));
            let click = self.click(parts, &facts, ip, &redirect, ts, click_id);
            self.check_visitor(&mut out, client, &click, None, ts, true);
        }
        e.rules = steps;
        e.capped = out.capped;
        e.bot = out.bot.map(|bot| {
            (
                bot,
                out.bot_reason
                    .as_ref()
                    .map(|r| String::from_utf8_lossy(r).into_owned()),
            )
        });
        e.rule = out.rule().map(|r| String::from_utf8_lossy(r).into_owned());
        e.variant = out
            .variant()
            .map(|r| String::from_utf8_lossy(r).into_owned());
        e.unique = out.unique;
        e.suspicious = out.suspicious;
        e.status = Some(redirect.status().as_u16());
        e.location = redirect.location().to_str().ok().map(str::to_string);
        e.recorded = self.records(&redirect, &out);
        e.outcome = out.into();
        e
    }

    /// Starts loading the flood sketch's rows for this source, unless they depend on the link
    /// (per-key counting): their misses then overlap the resolve and the rules.
    #[cfg(feature = "fraud")]
    fn prefetch_source(&self, client: Option<IpAddr>) {
        if let (Some(f), Some(ip)) = (&self.b.flood, client) {
            if !f.per_key() {
                f.prefetch(ip, None);
            }
        }
    }

    /// The unique filter's key for the click this request will record (`ip` as the click
    /// records it) once the link is known, with its cache line (and the flood sketch's rows
    /// when they depend on the link) loading, so that their misses overlap the rules and the
    /// click instead of following them. `early` is set when the gate has such checks: the
    /// request's own path as a click key, and what [`prefetch_visitor_for`] returned for it
    /// before the resolve. The key of a link is that path whenever the path is already normal
    /// (`/go/summer-deal`), and a default-redirect click carries the path, so the line is
    /// usually on its way already. Returns the key for [`check_visitor`](Self::check_visitor).
    ///
    /// [`prefetch_visitor_for`]: Self::prefetch_visitor_for
    #[cfg(feature = "fraud")]
    fn prefetch_visitor(
        &self,
        facts: &Facts<'_>,
        client: Option<IpAddr>,
        ip: Option<&ClickIp>,
        r: &Redirect,
        early: Option<(&[u8], Option<VisitorKey>)>,
    ) -> Option<VisitorKey> {
        let (path_key, early) = early?;
        // The key the click will carry (see `click`).
        let key = match r.link() {
            Some(l) => &l.key_bytes()[..],
            None => return early,
        };
        if key == path_key {
            return early;
        }
        self.prefetch_visitor_for(key, facts, client, ip)
    }

    /// Whether clicks get a unique check or a per-key flood check: the checks whose state
    /// depends on the click's key.
    #[cfg(feature = "fraud")]
    #[inline]
    fn checks_visitors(&self) -> bool {
        let b = &self.b;
        b.unique.is_some() || b.flood.as_ref().is_some_and(|f| f.per_key())
    }

    /// Starts loading what the unique and per-key flood checks of a click with `key` need,
    /// and returns its unique-filter key (`None` without a unique filter).
    #[cfg(feature = "fraud")]
    #[inline]
    fn prefetch_visitor_for(
        &self,
        key: &[u8],
        facts: &Facts<'_>,
        client: Option<IpAddr>,
        ip: Option<&ClickIp>,
    ) -> Option<VisitorKey> {
        let b = &self.b;
        if let (Some(f), Some(c)) = (b.flood.as_ref().filter(|f| f.per_key()), client) {
            f.prefetch(c, Some(key));
        }
        let u = b.unique.as_ref()?;
        let v = VisitorKey::from_click_ip_digest(ip, facts.ua_digest(), key);
        u.prefetch(v);
        Some(v)
    }

    /// Unique-visitor and flood checks for a click about to be recorded (`dry`: look only).
    /// `visitor` is the click's unique-filter key if already computed.
    #[cfg(feature = "fraud")]
    fn check_visitor(
        &self,
        out: &mut Outcome,
        client: Option<IpAddr>,
        click: &Click,
        visitor: Option<VisitorKey>,
        ts: i64,
        dry: bool,
    ) {
        let b = &self.b;
        if let Some(u) = &b.unique {
            let v = visitor.unwrap_or_else(|| {
                let ua = click
                    .user_agent
                    .as_ref()
                    .map_or(&[][..], HeaderValue::as_bytes);
                VisitorKey::from_click_ip(click.ip.as_ref(), ua, &click.key)
            });
            out.unique = Some(if dry {
                u.would_be_unique(v, ts)
            } else {
                u.check_and_insert(v, ts)
            });
        }
        if let (Some(f), Some(ip)) = (&b.flood, client) {
            let reason = if dry {
                f.peek(ip, Some(&click.key), ts).reason
            } else {
                f.check_flag(ip, Some(&click.key), ts)
            };
            out.suspicious = Some(reason.is_some());
            out.suspicious_reason = reason;
        }
    }

    #[inline]
    fn click(
        &self,
        parts: &Parts,
        facts: &Facts<'_>,
        ip: Option<ClickIp>,
        r: &Redirect,
        ts: i64,
        click_id: ClickId,
    ) -> Click {
        let key = match r.link() {
            Some(l) => l.key_bytes().clone(),
            None => Bytes::copy_from_slice(unmatched_key(parts)),
        };
        Click {
            ts,
            click_id,
            key,
            location: r.location().clone(),
            status: r.status().as_u16(),
            ip,
            user_agent: facts.user_agent.map(|v| bounded(v, MAX_HEADER_BYTES)),
            referer: facts.referer.map(|v| bounded(v, MAX_HEADER_BYTES)),
            country: facts.country.map(|v| bounded(v, 16)),
            path_and_query: parts
                .uri
                .query()
                .and_then(|_| parts.uri.path_and_query().cloned()),
            tags: r.link().and_then(|l| l.tags_shared().cloned()),
            matched: r.matched(),
            bot: None,
            unique: None,
            suspicious: None,
            notes: None,
        }
    }

    /// The client address: the peer, or — when the peer is a trusted proxy — the right-most
    /// untrusted address of `Forwarded` (`for=`) or `X-Forwarded-For`.
    pub fn client_ip(&self, parts: &Parts, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        let trusted = |ip: IpAddr| self.b.proxies.iter().any(|p| p.contains(ip));
        if self.b.proxies.is_empty() || !trusted(peer) {
            return Some(peer);
        }
        let mut chain: Vec<IpAddr> = Vec::new();
        let fwd = parts.headers.get_all(FORWARDED);
        if fwd.iter().next().is_some() {
            for v in fwd.iter().filter_map(|v| v.to_str().ok()) {
                for elem in v.split(',') {
                    for pair in elem.split(';') {
                        let (k, val) = pair.split_once('=').unwrap_or(("", ""));
                        if k.trim().eq_ignore_ascii_case("for") {
                            let val = val.trim().trim_matches('"');
                            let host = match val.strip_prefix('[') {
                                Some(rest) => rest.split(']').next().unwrap_or(""),
                                None => val.split(':').next().unwrap_or(""),
                            };
                            if let Ok(ip) = host.parse() {
                                chain.push(ip);
                            }
                        }
                    }
                }
            }
        } else {
            for v in parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
            {
                chain.extend(v.split(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()));
            }
        }
        Some(
            chain
                .into_iter()
                .rev()
                .find(|ip| !trusted(*ip))
                .unwrap_or(peer),
        )
    }
}

/// The verdicts and labels one request collects on its way through the gate.
#[derive(Debug, Default, Clone)]
struct Outcome {
    bot: Option<bool>,
    preview: bool,
    bot_reason: Option<Bytes>,
    dont_record: bool,
    bot_redirected: bool,
    capped: bool,
    /// Set only for a cap overflow (`max_clicks:overflow`); routing labels are in `notes`.
    rule: Option<Bytes>,
    unique: Option<bool>,
    suspicious: Option<bool>,
    suspicious_reason: Option<&'static str>,
    /// The routing choice's shared labels (rule or variant).
    notes: Option<Arc<crate::ClickNotes>>,
    /// The routing and the index of the choice's label, when it has one (`notes` is set):
    /// where its flagged label sets are.
    #[cfg(feature = "fraud")]
    label: Option<(Arc<crate::rules::Routing>, usize)>,
}

impl Outcome {
    fn apply(self, c: &mut Click) {
        c.bot = self.bot;
        c.unique = self.unique;
        c.suspicious = self.suspicious;
        if self.bot_reason.is_none() && self.rule.is_none() {
            // The common cases share a label set (no allocation): the rule's or variant's, or
            // for a click flagged in a flood, the one built ahead with its reason added.
            match self.suspicious_reason {
                None => {
                    c.notes = self.notes;
                    return;
                }
                #[cfg(feature = "fraud")]
                Some(reason) => {
                    if let Some(flagged) = self.flagged_notes(reason) {
                        c.notes = Some(flagged.clone());
                        return;
                    }
                }
                #[cfg(not(feature = "fraud"))]
                Some(_) => {}
            }
        }
        let (rule, variant) = (self.rule().cloned(), self.variant().cloned());
        let n = c.notes_mut();
        n.bot_reason = self.bot_reason;
        n.suspicious_reason = self
            .suspicious_reason
            .map(|r| Bytes::from_static(r.as_bytes()));
        n.rule = rule;
        n.variant = variant;
    }

    /// The shared label set for this click's labels plus the flood reason `reason`, if one was
    /// built ahead.
    #[cfg(feature = "fraud")]
    fn flagged_notes(&self, reason: &str) -> Option<&Arc<crate::ClickNotes>> {
        let r = crate::fraud::flood_reason_index(reason)?;
        match (&self.notes, &self.label) {
            (None, _) => Some(&crate::fraud::flagged_only()[r]),
            (Some(_), Some((routing, i))) => routing.flood_notes(*i).map(|n| &n[r]),
            (Some(_), None) => None,
        }
    }

    /// The rule label: the cap's overflow, or the rule the routing chose.
    fn rule(&self) -> Option<&Bytes> {
        self.rule
            .as_ref()
            .or_else(|| self.notes.as_deref().and_then(|n| n.rule.as_ref()))
    }

    /// The split variant the routing chose.
    fn variant(&self) -> Option<&Bytes> {
        self.notes.as_deref().and_then(|n| n.variant.as_ref())
    }
}

/// Opaque per-request state kept in an [`Explanation`] (for future fields).
#[derive(Debug, Clone, Default)]
pub struct ExplainedOutcome {
    bot_redirected: bool,
    dont_record: bool,
}

impl From<Outcome> for ExplainedOutcome {
    fn from(o: Outcome) -> Self {
        ExplainedOutcome {
            bot_redirected: o.bot_redirected,
            dont_record: o.dont_record,
        }
    }
}

/// The decision trace of one request, from [`Gate::explain`]; `Display` prints it for people.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Explanation {
    /// The request URI as received.
    pub path: String,
    /// The client address the gate would use (after trusted proxies).
    pub client_ip: Option<IpAddr>,
    /// The key after normalisation (`None` when the path cannot be a key, e.g. a bad escape).
    pub key: Option<String>,
    /// The key of the link the path names (even when it is not live).
    pub link: Option<String>,
    /// Why no link answers (or why the request passes to the app).
    pub why_unmatched: Option<String>,
    /// Bot verdict and reason, when bot detection runs.
    pub bot: Option<(bool, Option<String>)>,
    /// `(sent so far, max_clicks)` for a capped link.
    pub cap: Option<(u64, u64)>,
    /// Whether the cap is reached.
    pub capped: bool,
    /// Every rule tried, in order, with its outcome.
    pub rules: Vec<RuleStep>,
    /// The rule that routed the request.
    pub rule: Option<String>,
    /// The split variant chosen.
    pub variant: Option<String>,
    /// Unique-visitor verdict (`None` when not checked: a dry run never inserts).
    pub unique: Option<bool>,
    /// Flood verdict (`None` when not checked).
    pub suspicious: Option<bool>,
    /// Internal flags of the outcome.
    pub outcome: ExplainedOutcome,
    /// Status of the redirect that would be sent (`None`: passed to the app).
    pub status: Option<u16>,
    /// `Location` that would be sent.
    pub location: Option<String>,
    /// Whether a click would be recorded.
    pub recorded: bool,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "request: {}", self.path)?;
        if let Some(ip) = self.client_ip {
            writeln!(f, "client: {ip}")?;
        }
        writeln!(
            f,
            "key after normalisation: {}",
            self.key.as_deref().unwrap_or("(none)")
        )?;
        match (&self.link, &self.why_unmatched) {
            (Some(l), None) => writeln!(f, "link: {l}")?,
            (Some(l), Some(w)) => writeln!(f, "link: {l} — {w}")?,
            (None, Some(w)) => writeln!(f, "no link: {w}")?,
            (None, None) => {}
        }
        if let Some((bot, reason)) = &self.bot {
            let action = if !*bot {
                ""
            } else if self.outcome.bot_redirected {
                " → sent to the bot target"
            } else if self.outcome.dont_record {
                " → not recorded"
            } else {
                " → flagged"
            };
            writeln!(
                f,
                "bot: {bot}{}{action}",
                reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )?;
        }
        if let Some((n, max)) = self.cap {
            writeln!(
                f,
                "cap: {n} of {max} sent{}",
                if self.capped { " — reached" } else { "" }
            )?;
        }
        for step in &self.rules {
            match &step.outcome {
                Ok(()) => writeln!(f, "rule `{}`: match", step.rule)?,
                Err(why) => writeln!(f, "rule `{}`: no match ({why})", step.rule)?,
            }
        }
        if let Some(v) = &self.variant {
            writeln!(f, "split variant: {v}")?;
        }
        if let Some(u) = self.unique {
            writeln!(f, "unique: {u}")?;
        }
        if let Some(s) = self.suspicious {
            writeln!(f, "suspicious: {s}")?;
        }
        match (self.status, &self.location) {
            (Some(s), Some(l)) => write!(
                f,
                "answer: {s} → {l}{}",
                if self.recorded {
                    " (click recorded)"
                } else {
                    " (not recorded)"
                }
            ),
            _ => write!(f, "answer: passed to the app"),
        }
    }
}

/// The key a click without a link records: the request path, cut to the longest key.
fn unmatched_key(parts: &Parts) -> &[u8] {
    let p = parts.uri.path().as_bytes();
    &p[..p.len().min(crate::key::MAX_KEY_LEN)]
}

/// Sends a redirect to its `Location` without the query string (and fragment).
#[cfg(feature = "fraud")]
fn strip_query(r: &mut Redirect) {
    let loc = r.location().as_bytes();
    if let Some(q) = loc.iter().position(|&b| b == b'?' || b == b'#') {
        if let Ok(v) = HeaderValue::from_bytes(&loc[..q]) {
            r.set_location(v);
        }
    }
}
