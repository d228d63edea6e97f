//! Bot and link-preview detection from the User-Agent and a few request headers.
//!
//! One [`BotDetector`] holds every pattern compiled once, in three parts that each look at the
//! whole pattern list at once (never a loop over patterns):
//! 1. a q-gram prefilter (`prefilter.rs`) that proves "no pattern can match" for almost every
//!    browser User-Agent in a stride-2 scan of 4-byte grams plus one SIMD search for the few
//!    short literals — this is the whole cost for most human traffic;
//! 2. otherwise, one Aho-Corasick automaton holding the plain-literal patterns (1 478 of the
//!    1 514 bundled ones), searched with overlapping matches so a preview pattern anywhere wins
//!    over a bot pattern seen earlier;
//! 3. and, unless step 2 already found the highest class the regexes could give, one
//!    [`regex::bytes::RegexSet`] holding the other patterns (36 bundled: anchors, classes,
//!    alternations).
//!
//! Precedence when several patterns match: an explicit [`UaClass::Human`] pattern (an allow-list
//! entry you add) > [`UaClass::Preview`] > [`UaClass::Bot`]; among patterns of the same class the
//! literal whose match ends first wins, then the regex listed first.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use http::header::{HeaderMap, HeaderName, USER_AGENT};
use http::{Method, request::Parts};
use regex::bytes::{RegexBuilder, RegexSet, RegexSetBuilder};

use super::prefilter::{Prefilter, required_literals};

/// The bundled pattern list, generated from `crawler-user-agents.json` by the `generated_*`
/// test in `tests/bots.rs` (MIT licence in the file header and in `crawler-user-agents.LICENSE`).
const CRAWLER_PATTERNS: &str = include_str!("crawler_patterns.txt");

/// Link-preview fetchers that the bundled list lacks (each checked against the 952 real browser
/// User-Agents of `tests/data`: none matches). The list also classifies its `social-preview`
/// entries (Slackbot, facebookexternalhit, Facebot, Twitterbot, Discordbot, WhatsApp,
/// TelegramBot, LinkedInBot, SkypeUriPreview, `pinterest\.com\/bot`, redditbot, Iframely,
/// Embedly, vkShare, Viber, Mastodon, `Bluesky\/`, `Snap URL Preview Service`, ...) as previews.
///
/// A bare `Snapchat` is deliberately absent: it is also in the User-Agent of Snapchat's in-app
/// browser, i.e. of humans (one is in the browser test list). Snapchat's fetcher says
/// `Snap URL Preview Service` / `SnapURLPreview/`, both in the bundled list.
const EXTRA_PREVIEW: &[&str] = &[
    "Pinterestbot",        // Pinterest's fetcher; the list only has `pinterest\.com\/bot`
    "Cardyb",              // Bluesky's link-card service
    "Google-PageRenderer", // Google Docs / Sheets link previews
    "kakaotalk-scrap",     // KakaoTalk
    "Pleroma",             // fediverse servers fetching link cards
    "Akkoma",
];

/// HTTP client libraries and tools that the bundled list lacks or only matches at the start of
/// the User-Agent (`^curl`). Same browser-list check as [`EXTRA_PREVIEW`].
const EXTRA_BOT: &[&str] = &[
    "curl/",
    "libcurl",
    "libwww", // the list has `libwww-perl`
    "Java/",  // java.net.HttpURLConnection's default `Java/1.8.0_151`
    "Apache-HttpClient/",
    "python-urllib3",
    "undici",
    "GuzzleHttp",
    "PostmanRuntime/",
    r"\(dart:io\)", // Dart's default `Dart/3.3 (dart:io)`
];

const REASON_EMPTY_UA: &str = "empty user-agent";
const REASON_NO_UA: &str = "no user-agent";
const REASON_HEAD: &str = "HEAD request";
const REASON_PREFETCH: &str = "prefetch";

/// What sent a request, as far as the User-Agent and headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UaClass {
    /// A person's browser: count the click.
    Human,
    /// A crawler, monitor, scanner, script, HTTP library or headless browser: not a click.
    Bot,
    /// A link-preview fetcher (Slack, Facebook, X, Discord, WhatsApp, Telegram, ...): someone
    /// shared the link, nobody clicked it.
    Preview,
}

impl UaClass {
    /// Precedence among matching patterns: Human (explicit allow-list) > Preview > Bot.
    const fn rank(self) -> u8 {
        match self {
            UaClass::Bot => 1,
            UaClass::Preview => 2,
            UaClass::Human => 3,
        }
    }

    /// `"human"`, `"bot"` or `"preview"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            UaClass::Human => "human",
            UaClass::Bot => "bot",
            UaClass::Preview => "preview",
        }
    }
}

impl fmt::Display for UaClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a [`Verdict`] was reached: the pattern that matched (as written in the list) or a fixed
/// reason such as `"HEAD request"`. Cloning a bundled reason copies a `&'static str`; a
/// reason from a pattern you added clones an `Arc<str>`.
#[derive(Clone)]
pub struct BotReason(ReasonRepr);

#[derive(Clone)]
enum ReasonRepr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl BotReason {
    /// The reason as shared bytes (free for the bundled reasons), for a click's `bot_reason`.
    pub fn to_bytes(&self) -> bytes::Bytes {
        match &self.0 {
            ReasonRepr::Static(s) => bytes::Bytes::from_static(s.as_bytes()),
            ReasonRepr::Shared(s) => bytes::Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            ReasonRepr::Static(s) => s,
            ReasonRepr::Shared(s) => s,
        }
    }
}

impl PartialEq for BotReason {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BotReason {}

impl std::hash::Hash for BotReason {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for BotReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for BotReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for BotReason {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for BotReason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for BotReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The outcome of a classification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Human, bot or link preview.
    pub class: UaClass,
    /// The pattern that matched or a fixed reason (`"no user-agent"`, `"empty user-agent"`,
    /// `"HEAD request"`, `"prefetch"`); `None` for a human no pattern matched.
    pub reason: Option<BotReason>,
}

impl Verdict {
    const HUMAN: Verdict = Verdict {
        class: UaClass::Human,
        reason: None,
    };

    const fn fixed(class: UaClass, reason: &'static str) -> Verdict {
        Verdict {
            class,
            reason: Some(BotReason(ReasonRepr::Static(reason))),
        }
    }

    /// `class == Human`.
    pub fn is_human(&self) -> bool {
        self.class == UaClass::Human
    }

    /// `class == Bot`.
    pub fn is_bot(&self) -> bool {
        self.class == UaClass::Bot
    }

    /// `class == Preview`.
    pub fn is_preview(&self) -> bool {
        self.class == UaClass::Preview
    }

    /// The reason text, if any.
    pub fn reason_str(&self) -> Option<&str> {
        self.reason.as_ref().map(BotReason::as_str)
    }
}

/// A pattern the [`BotDetectorBuilder`] refused. Every variant names the pattern.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BotPatternError {
    /// Not a valid pattern for Rust's `regex` crate (look-around and backreferences, for
    /// instance, are not supported).
    #[error("bot pattern `{pattern}` is not a valid regex: {source}")]
    Invalid {
        /// The pattern as given.
        pattern: String,
        /// The regex crate's error (its message points at the offending part).
        #[source]
        source: regex::Error,
    },
    /// The pattern is empty or matches the empty string, so it would match every User-Agent.
    #[error("bot pattern `{pattern}` matches the empty string, so it would match every User-Agent")]
    MatchesEmpty {
        /// The pattern as given.
        pattern: String,
    },
    /// [`BotDetectorBuilder::remove_pattern`] named a pattern that is not in the list.
    #[error("cannot remove bot pattern `{pattern}`: it is not in the list")]
    NotFound {
        /// The pattern as given.
        pattern: String,
    },
    /// The patterns are valid one by one but the combined automaton could not be built (too
    /// large for the regex crate's size limit, for instance).
    #[error("cannot compile the bot pattern set: {message}")]
    Build {
        /// What went wrong.
        message: String,
    },
}

#[derive(Clone)]
struct Entry {
    class: UaClass,
    pattern: BotReason,
}

/// Builds a [`BotDetector`]: starts from the bundled patterns; add, reclassify or remove
/// patterns, then [`build`](Self::build).
///
/// ```
/// use linkgate::{BotDetector, UaClass};
///
/// let detector = BotDetector::builder()
///     .add_pattern(UaClass::Bot, r"^MyUptimeChecker/\d")?   // a regex
///     .add_pattern(UaClass::Human, "MetaIAB Facebook")?     // reclassify a bundled pattern
///     .remove_pattern("Java/")                              // drop a bundled pattern
///     .build()?;
/// assert!(detector.classify_ua(b"MyUptimeChecker/2.1").is_bot());
/// assert!(detector.classify_ua(b"Java/1.8.0_151").is_human());
/// # Ok::<(), linkgate::BotPatternError>(())
/// ```
#[derive(Clone)]
pub struct BotDetectorBuilder {
    entries: Vec<Entry>,
    case_insensitive: bool,
    prefilter: bool,
    not_found: Vec<String>,
}

impl fmt::Debug for BotDetectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotDetectorBuilder")
            .field("patterns", &self.entries.len())
            .field("case_insensitive", &self.case_insensitive)
            .field("prefilter", &self.prefilter)
            .finish()
    }
}

impl BotDetectorBuilder {
    fn with_defaults() -> Self {
        let mut entries = Vec::with_capacity(1600);
        for line in CRAWLER_PATTERNS.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (class, pattern) = line
                .split_once('\t')
                .expect("crawler_patterns.txt: `<class>\\t<pattern>`");
            let class = match class {
                "bot" => UaClass::Bot,
                "preview" => UaClass::Preview,
                other => panic!("crawler_patterns.txt: unknown class `{other}`"),
            };
            entries.push(Entry {
                class,
                pattern: BotReason(ReasonRepr::Static(pattern)),
            });
        }
        let mut b = BotDetectorBuilder {
            entries,
            case_insensitive: false,
            prefilter: true,
            not_found: Vec::new(),
        };
        for (class, list) in [(UaClass::Preview, EXTRA_PREVIEW), (UaClass::Bot, EXTRA_BOT)] {
            for p in list {
                b.put(class, BotReason(ReasonRepr::Static(p)));
            }
        }
        b
    }

    /// Replaces an entry with the same text, or appends.
    fn put(&mut self, class: UaClass, pattern: BotReason) {
        match self.entries.iter_mut().find(|e| e.pattern == pattern) {
            Some(e) => e.class = class,
            None => self.entries.push(Entry { class, pattern }),
        }
    }

    /// Adds `pattern` with `class`, or changes the class of an identical pattern already in the
    /// list. The pattern is a regex in the syntax of Rust's `regex` crate, matched anywhere in
    /// the User-Agent bytes with ASCII-only classes and case folding (`\d` is `[0-9]`, as in
    /// RE2); a pattern without regex syntax (backslash-escaped punctuation allowed) is a
    /// literal and goes to the Aho-Corasick automaton.
    ///
    /// A [`UaClass::Human`] pattern is an allow-list entry: it wins over every bot and preview
    /// pattern.
    ///
    /// # Errors
    /// [`BotPatternError::Invalid`] if the regex does not compile, [`BotPatternError::MatchesEmpty`]
    /// if it matches the empty string (it would match every User-Agent).
    pub fn add_pattern(mut self, class: UaClass, pattern: &str) -> Result<Self, BotPatternError> {
        validate(pattern)?;
        self.put(class, BotReason(ReasonRepr::Shared(Arc::from(pattern))));
        Ok(self)
    }

    /// Removes the pattern with exactly this text (as written in the list, e.g.
    /// `pinterest\.com\/bot`). A pattern that is not in the list makes [`build`](Self::build)
    /// fail with [`BotPatternError::NotFound`], so a typo does not go unnoticed.
    pub fn remove_pattern(mut self, pattern: &str) -> Self {
        let before = self.entries.len();
        self.entries.retain(|e| e.pattern.as_str() != pattern);
        if self.entries.len() == before {
            self.not_found.push(pattern.to_owned());
        }
        self
    }

    /// Removes every pattern (the bundled ones included), to start from an empty list.
    pub fn clear_patterns(mut self) -> Self {
        self.entries.clear();
        self
    }

    /// Matches ASCII letters case-insensitively (default: `false`, case-sensitive).
    ///
    /// The bundled list is written for case-sensitive matching (it spells out variants such as
    /// `[wW]get` and `S[eE][mM]rushBot`); on the test lists both modes give the same recall
    /// (100 %) and false-positive rate (0 %), and case-sensitive is faster (79 vs 161 ns for a
    /// desktop Chrome User-Agent in BENCHMARKS.md) and cannot turn short names such as
    /// `Yeti` or `Sonic` into matches on ordinary lower-case words.
    pub fn case_insensitive(mut self, yes: bool) -> Self {
        self.case_insensitive = yes;
        self
    }

    /// Runs the q-gram prefilter before the automata (default: `true`). It never changes a
    /// verdict, only skips the automata when no pattern can match; turning it off is for
    /// comparison (tests, benchmarks): a desktop Chrome User-Agent then costs the full automaton
    /// pass, several times slower.
    pub fn prefilter(mut self, yes: bool) -> Self {
        self.prefilter = yes;
        self
    }

    /// Compiles the patterns into the prefilter, one Aho-Corasick automaton and one `RegexSet`.
    ///
    /// Cost: ~5 ms and ~1.2 MB for the bundled list (see BENCHMARKS.md); do it once and share
    /// the detector.
    ///
    /// # Errors
    /// [`BotPatternError::NotFound`] for the first [`remove_pattern`](Self::remove_pattern) that
    /// removed nothing; [`BotPatternError::Build`] if the automaton is too large.
    pub fn build(self) -> Result<BotDetector, BotPatternError> {
        if let Some(pattern) = self.not_found.into_iter().next() {
            return Err(BotPatternError::NotFound { pattern });
        }
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut lit_slots = Vec::new();
        let mut regexes: Vec<&str> = Vec::new();
        let mut re_slots = Vec::new();
        let mut triggers: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let slot = Slot {
                rank: e.class.rank(),
                entry: u32::try_from(i).expect("fewer than 2^32 patterns"),
            };
            match literal_of(e.pattern.as_str()) {
                Some(lit) => {
                    triggers.push(Some(vec![lit.clone()]));
                    literals.push(lit);
                    lit_slots.push(slot);
                }
                None => {
                    triggers.push(required_literals(e.pattern.as_str()));
                    regexes.push(e.pattern.as_str());
                    re_slots.push(slot);
                }
            }
        }
        let prefilter = self.prefilter.then(|| {
            Prefilter::new(
                triggers
                    .iter()
                    .map(|t| t.as_ref().map(|v| v.iter().map(Vec::as_slice).collect())),
                self.case_insensitive,
            )
        });
        let ac = if literals.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(self.case_insensitive)
                    .build(&literals)
                    .map_err(|e| BotPatternError::Build {
                        message: e.to_string(),
                    })?,
            )
        };
        let set = if regexes.is_empty() {
            None
        } else {
            match RegexSetBuilder::new(&regexes)
                .unicode(false)
                .case_insensitive(self.case_insensitive)
                .build()
            {
                Ok(set) => Some(set),
                Err(source) => {
                    // Name the culprit (bundled patterns are not validated one by one up front).
                    for p in &regexes {
                        validate(p)?;
                    }
                    return Err(BotPatternError::Build {
                        message: source.to_string(),
                    });
                }
            }
        };
        let top = |slots: &[Slot]| slots.iter().map(|s| s.rank).max().unwrap_or(0);
        let lit_top = top(&lit_slots);
        let re_top = top(&re_slots);
        Ok(BotDetector {
            inner: Arc::new(Inner {
                prefilter,
                ac,
                lit_slots,
                set,
                re_slots,
                top_rank: lit_top.max(re_top),
                re_top_rank: re_top,
                entries: self.entries,
                case_insensitive: self.case_insensitive,
                literal_count: literals.len(),
            }),
        })
    }
}

/// Which entry a literal or regex stands for, and its precedence.
#[derive(Clone, Copy)]
struct Slot {
    rank: u8,
    entry: u32,
}

struct Inner {
    prefilter: Option<Prefilter>,
    ac: Option<AhoCorasick>,
    lit_slots: Vec<Slot>,
    set: Option<RegexSet>,
    re_slots: Vec<Slot>,
    /// Highest rank of any pattern: a match of that rank ends the search.
    top_rank: u8,
    /// Highest rank in the regex set: skip the set when the literal pass reached it.
    re_top_rank: u8,
    entries: Vec<Entry>,
    case_insensitive: bool,
    literal_count: usize,
}

/// Classifies requests as human clicks, bots or link-preview fetchers.
///
/// ```
/// use linkgate::{BotDetector, UaClass};
///
/// let detector = BotDetector::default();
/// let chrome = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
///                (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
/// assert_eq!(detector.classify_ua(chrome).class, UaClass::Human);
///
/// let v = detector.classify_ua(b"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)");
/// assert_eq!((v.class, v.reason_str()), (UaClass::Preview, Some("Slackbot")));
/// assert!(detector.classify_ua(b"curl/8.5.0").is_bot());
/// ```
///
/// **Patterns.** [`default`](Self::default) uses the bundled list: the 1 498 patterns of
/// [monperrus/crawler-user-agents](https://github.com/monperrus/crawler-user-agents) (MIT;
/// its `social-preview` entries are previews, the rest bots) plus a few HTTP libraries and
/// link-preview fetchers it lacks. Matching is case-sensitive by default
/// ([`BotDetectorBuilder::case_insensitive`]). On the test lists in `tests/data` it flags
/// 100 % of 2 116 real crawler User-Agents and none of 952 real browser User-Agents.
///
/// A User-Agent is whatever the client sends: this catches honest and lazy automation
/// (crawlers, monitors, scripts, libraries, preview fetchers), not a bot that impersonates a
/// browser.
///
/// **Cost** (BENCHMARKS.md, 2.1 GHz shared Xeon): a browser User-Agent usually stops at the
/// prefilter: ~70–135 ns for a desktop Chrome one (111 bytes) depending on machine load, about
/// 1 ns per byte; no allocation. A User-Agent that passes it (bots, ~1 % of browsers) also pays
/// the automata, ~0.8–1.3 µs. `prefilter(false)` makes every User-Agent pay that. Building the
/// bundled detector takes ~5 ms; `default()` builds it once per process and then hands out
/// clones.
///
/// **Memory.** ~1.2 MB of heap for the bundled list (Aho-Corasick contiguous NFA, `RegexSet`,
/// 72 KiB of prefilter tables, the pattern list), shared by all clones; the `RegexSet` adds a
/// lazy-DFA cache per thread that uses it (~0.2 MB after both test lists).
///
/// **Threads.** `BotDetector` is `Send + Sync` and cloning is an `Arc` clone: share one
/// detector between threads (clone it or put it in an `Arc`); classification takes `&self`
/// and never blocks.
#[derive(Clone)]
pub struct BotDetector {
    inner: Arc<Inner>,
}

impl fmt::Debug for BotDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotDetector")
            .field("literal_patterns", &self.inner.literal_count)
            .field("regex_patterns", &self.inner.re_slots.len())
            .field("case_insensitive", &self.inner.case_insensitive)
            .field(
                "prefilter",
                &self.inner.prefilter.as_ref().map(|p| {
                    let (grams, short, simd, always_open) = p.shape();
                    format!(
                        "{grams} grams, {short} short literals{}{}",
                        if simd { " (SIMD)" } else { "" },
                        if always_open { ", always open" } else { "" }
                    )
                }),
            )
            .finish()
    }
}

impl Default for BotDetector {
    /// The bundled patterns, case-sensitive. Built on first use, then shared.
    fn default() -> Self {
        static DEFAULT: OnceLock<BotDetector> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                BotDetectorBuilder::with_defaults()
                    .build()
                    .expect("bundled bot patterns compile (checked by tests/bots.rs)")
            })
            .clone()
    }
}

impl BotDetector {
    /// A builder holding the bundled patterns.
    pub fn builder() -> BotDetectorBuilder {
        BotDetectorBuilder::with_defaults()
    }

    /// Classifies a request: a missing or empty `User-Agent` is a bot (`"no user-agent"`), a
    /// `HEAD` request is a bot (`"HEAD request"`), a browser prefetch or prerender
    /// (`Sec-Purpose`, `Purpose` or `X-Moz` containing `prefetch`, or `X-Purpose: preview`) is
    /// a bot (`"prefetch"`); otherwise the `User-Agent` decides ([`classify_ua`](Self::classify_ua)).
    /// With several `User-Agent` headers, the first one not classified human decides.
    pub fn classify_request(&self, parts: &Parts) -> Verdict {
        self.classify_headers(&parts.method, &parts.headers)
    }

    /// [`classify_request`](Self::classify_request) from the method and headers alone.
    pub fn classify_headers(&self, method: &Method, headers: &HeaderMap) -> Verdict {
        let mut uas = headers.get_all(USER_AGENT).iter();
        let first = match uas.next() {
            Some(ua) if !is_blank(ua.as_bytes()) => ua,
            _ => return Verdict::fixed(UaClass::Bot, REASON_NO_UA),
        };
        if method == Method::HEAD {
            return Verdict::fixed(UaClass::Bot, REASON_HEAD);
        }
        if is_prefetch(headers) {
            return Verdict::fixed(UaClass::Bot, REASON_PREFETCH);
        }
        let verdict = self.classify_ua(first.as_bytes());
        if !verdict.is_human() {
            return verdict;
        }
        for ua in uas {
            let v = self.classify_ua(ua.as_bytes());
            if !v.is_human() {
                return v;
            }
        }
        verdict
    }

    /// [`classify_headers`](Self::classify_headers) from headers the gate already scanned.
    /// `known` is the gate's memo of [`ua_match`](Self::ua_match) for the (only) User-Agent:
    /// used when set, filled when computed.
    #[cfg(feature = "os")]
    pub(crate) fn classify_facts(
        &self,
        method: &Method,
        facts: &crate::facts::Facts<'_>,
        headers: &HeaderMap,
        known: &mut Option<Option<u32>>,
    ) -> Verdict {
        if facts.user_agents > 1 {
            return self.classify_headers(method, headers);
        }
        let ua = match facts.user_agent {
            Some(ua) if !is_blank(ua.as_bytes()) => ua,
            _ => return Verdict::fixed(UaClass::Bot, REASON_NO_UA),
        };
        if method == Method::HEAD {
            return Verdict::fixed(UaClass::Bot, REASON_HEAD);
        }
        if facts.prefetch {
            return Verdict::fixed(UaClass::Bot, REASON_PREFETCH);
        }
        self.verdict_of(*known.get_or_insert_with(|| self.ua_match(ua.as_bytes())))
    }

    /// Classifies a `User-Agent` value. An empty (or all-whitespace) one is a bot
    /// (`"empty user-agent"`); otherwise the highest-precedence matching pattern decides
    /// (Human allow-list > Preview > Bot), and no match means human.
    pub fn classify_ua(&self, ua: &[u8]) -> Verdict {
        if is_blank(ua) {
            return Verdict::fixed(UaClass::Bot, REASON_EMPTY_UA);
        }
        self.verdict_of(self.ua_match(ua))
    }

    /// The entry of the highest-precedence pattern matching a non-blank `ua`, `None` if no
    /// pattern matches (a human). What the gate memoises per User-Agent (see `ua_memo.rs`).
    pub(crate) fn ua_match(&self, ua: &[u8]) -> Option<u32> {
        let inner = &*self.inner;
        if let Some(p) = &inner.prefilter {
            if !p.may_match(ua) {
                return None;
            }
        }
        let mut best = Slot { rank: 0, entry: 0 };
        if let Some(ac) = &inner.ac {
            for m in ac.find_overlapping_iter(ua) {
                let slot = inner.lit_slots[m.pattern().as_usize()];
                if slot.rank > best.rank {
                    best = slot;
                    if best.rank == inner.top_rank {
                        break;
                    }
                }
            }
        }
        if best.rank < inner.re_top_rank {
            if let Some(set) = &inner.set {
                if set.is_match(ua) {
                    for i in set.matches(ua).iter() {
                        let slot = inner.re_slots[i];
                        if slot.rank > best.rank {
                            best = slot;
                        }
                    }
                }
            }
        }
        (best.rank != 0).then_some(best.entry)
    }

    /// The verdict for what [`ua_match`](Self::ua_match) returned.
    fn verdict_of(&self, entry: Option<u32>) -> Verdict {
        match entry {
            None => Verdict::HUMAN,
            Some(i) => {
                let entry = &self.inner.entries[i as usize];
                Verdict {
                    class: entry.class,
                    reason: Some(entry.pattern.clone()),
                }
            }
        }
    }

    /// The patterns, in list order, with their class.
    pub fn patterns(&self) -> impl ExactSizeIterator<Item = (UaClass, &str)> + '_ {
        self.inner
            .entries
            .iter()
            .map(|e| (e.class, e.pattern.as_str()))
    }

    /// How many patterns went to the Aho-Corasick automaton (literals) and how many to the
    /// `RegexSet`.
    pub fn pattern_counts(&self) -> (usize, usize) {
        (self.inner.literal_count, self.inner.re_slots.len())
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<BotDetector>();
    send_sync::<Verdict>();
    send_sync::<BotPatternError>();
};

fn is_blank(v: &[u8]) -> bool {
    v.iter().all(u8::is_ascii_whitespace)
}

/// Browser prefetch / prerender signals: `Sec-Purpose: prefetch` (`prefetch;prerender`),
/// legacy `Purpose: prefetch`, Firefox's `X-Moz: prefetch`, Safari's `X-Purpose: preview`.
fn is_prefetch(headers: &HeaderMap) -> bool {
    const PURPOSE: HeaderName = HeaderName::from_static("purpose");
    const SEC_PURPOSE: HeaderName = HeaderName::from_static("sec-purpose");
    const X_MOZ: HeaderName = HeaderName::from_static("x-moz");
    const X_PURPOSE: HeaderName = HeaderName::from_static("x-purpose");
    let has_token = |name: &HeaderName, token: &[u8]| {
        headers.get_all(name).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b';' || b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
        })
    };
    has_token(&SEC_PURPOSE, b"prefetch")
        || has_token(&PURPOSE, b"prefetch")
        || has_token(&X_MOZ, b"prefetch")
        || has_token(&X_PURPOSE, b"preview")
}

/// Checks a user pattern the way [`BotDetectorBuilder::build`] will compile it.
fn validate(pattern: &str) -> Result<(), BotPatternError> {
    if literal_of(pattern).is_some_and(|l| !l.is_empty()) {
        return Ok(());
    }
    let re = RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .map_err(|source| BotPatternError::Invalid {
            pattern: pattern.to_owned(),
            source,
        })?;
    if re.is_match(b"") {
        return Err(BotPatternError::MatchesEmpty {
            pattern: pattern.to_owned(),
        });
    }
    Ok(())
}

/// The bytes `pattern` matches if it is a plain literal: no regex syntax except escaped ASCII
/// punctuation (`Googlebot\/`, `Unshorten\.It\!`), which Rust's regex reads as the character
/// itself — except `\<` and `\>`, which it reads as word boundaries.
fn literal_of(pattern: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        let c = match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() && e != '<' && e != '>' => e,
                _ => return None,
            },
            '.' | '^' | '$' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' => {
                return None;
            }
            c => c,
        };
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_detection() {
        assert_eq!(literal_of(r"Googlebot\/").unwrap(), b"Googlebot/");
        assert_eq!(literal_of(r"Unshorten\.It\!").unwrap(), b"Unshorten.It!");
        assert_eq!(
            literal_of("Yahoo Link Preview").unwrap(),
            b"Yahoo Link Preview"
        );
        for re in [
            r"^curl", r"[wW]get", r"a|b", r"x\d", r"\<word", "a.b", "a{2}", r"x$",
        ] {
            assert!(literal_of(re).is_none(), "{re}");
        }
    }

    #[test]
    fn literal_and_regex_agree() {
        // A literal's meaning in the AC automaton equals the regex crate's reading of it.
        for p in [r"Googlebot\/", r"Unshorten\.It\!", r"a\-b c\#", "Яндекс"] {
            let re = RegexBuilder::new(p).unicode(false).build().unwrap();
            let lit = literal_of(p).unwrap();
            assert!(re.is_match(&lit), "{p}");
        }
    }
}
