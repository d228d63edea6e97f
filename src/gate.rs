//! `Gate`: the whole request path in one function — resolve → expand → click → record.
//!
//! Framework-free: it takes `http::request::Parts` and the peer address and returns a
//! [`Decision`]; the tower and actix integrations are thin wrappers around it.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{FORWARDED, REFERER, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Response, StatusCode, request::Parts};

use crate::click::{Click, MAX_HEADER_BYTES, bounded};
use crate::click_id::ClickId;
use crate::ip::{IpPolicy, canonical};
use crate::recorder::{ClickRecorder, Recorded};
use crate::redirect::Redirect;
use crate::table::LinkTable;

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

/// The gate's verdict for one request.
#[derive(Debug)]
#[non_exhaustive]
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
    proxies: Vec<TrustedProxy>,
    clock: fn() -> i64,
}

impl GateBuilder {
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
    /// The clock for click timestamps (Unix ms); for tests.
    pub fn clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }
    /// The gate.
    pub fn build(self) -> Gate {
        Gate { b: Arc::new(self) }
    }
}

/// Ties a [`LinkTable`] and a [`ClickRecorder`]: resolves a request, expands a template target
/// with the click's id, builds the [`Click`] (zero-copy header clones) and records it — in one
/// call, without locks or I/O. Cheap to clone; shares the table and recorder.
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
            proxies: Vec::new(),
            clock: crate::clock::system_now_ms,
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
        let mut redirect = b.table.resolve_uri_raw(&parts.uri);
        if redirect.is_default() && b.unknown == UnknownPolicy::Pass {
            return Decision::Pass;
        }
        let ts = (b.clock)();
        let click_id = ClickId::at(ts);
        redirect.expand(click_id);
        if redirect.is_default() && !b.record_unmatched {
            return Decision::Redirect(Handled {
                redirect,
                click_id,
                recorded: None,
            });
        }
        let click = self.click(parts, peer, &redirect, ts, click_id);
        let recorded = Some(b.recorder.record(click));
        Decision::Redirect(Handled {
            redirect,
            click_id,
            recorded,
        })
    }

    fn click(
        &self,
        parts: &Parts,
        peer: Option<IpAddr>,
        r: &Redirect,
        ts: i64,
        click_id: ClickId,
    ) -> Click {
        let b = &self.b;
        let h = &parts.headers;
        let key = match r.link() {
            Some(l) => l.key_bytes().clone(),
            None => {
                let p = parts.uri.path().as_bytes();
                Bytes::copy_from_slice(&p[..p.len().min(crate::key::MAX_KEY_LEN)])
            }
        };
        Click {
            ts,
            click_id,
            key,
            location: r.location().clone(),
            status: r.status().as_u16(),
            ip: self.client_ip(parts, peer).and_then(|ip| b.ip.apply(ip)),
            user_agent: h.get(USER_AGENT).map(|v| bounded(v, MAX_HEADER_BYTES)),
            referer: h.get(REFERER).map(|v| bounded(v, MAX_HEADER_BYTES)),
            country: b
                .country
                .as_ref()
                .and_then(|n| h.get(n))
                .map(|v| bounded(v, 16)),
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
