//! Bot detection (`BotDetector`): accuracy on real User-Agent lists, previews, HTTP libraries,
//! browsers, request-level rules, custom patterns — and the generator of the bundled list.
//!
//! Data (copied from `../shared/data`, licences beside them): `tests/data/crawler-user-agents.json`
//! (monperrus/crawler-user-agents, MIT) and `tests/data/browser-user-agents.txt` (Intoli
//! user-agents, BSD-2-Clause).
//!
//! Regenerate `src/fraud/crawler_patterns.txt` after updating the JSON:
//! `LINKGATE_REGEN_PATTERNS=1 cargo test --test bots generated_patterns`.
#![cfg(feature = "fraud")]

use std::collections::BTreeSet;

use http::{Method, Request};
use linkgate::{BotDetector, BotPatternError, UaClass, Verdict};
use serde_json::Value;

const CRAWLERS_JSON: &str = include_str!("data/crawler-user-agents.json");
const CRAWLERS_LICENSE: &str = include_str!("data/crawler-user-agents.LICENSE");
const BROWSERS: &str = include_str!("data/browser-user-agents.txt");
const GENERATED: &str = include_str!("../src/fraud/crawler_patterns.txt");
const UPSTREAM: &str = "commit 7c7f9f2, 2026-07-02";

/// Upstream patterns Rust's `regex` crate rejects, with their equivalent supported form and why.
/// The generator writes the rewritten form; a rejected pattern missing here fails the test
/// (never dropped silently). Empty for commit 7c7f9f2: see `special_patterns_exact_list`.
const REWRITES: &[(&str, &str, &str)] = &[];

/// The exact list of upstream patterns that needed special handling (rejected by the `regex`
/// crate as written). Checked against the data by compiling every pattern.
const SPECIAL: &[&str] = &[];

struct Crawler {
    pattern: String,
    preview: bool,
    instances: Vec<String>,
    depends_on: Vec<String>,
}

fn crawlers() -> Vec<Crawler> {
    let v: Value = serde_json::from_str(CRAWLERS_JSON).unwrap();
    let strs = |e: &Value, k: &str| -> Vec<String> {
        e.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| Crawler {
            pattern: e["pattern"].as_str().unwrap().to_owned(),
            preview: strs(e, "tags").iter().any(|t| t == "social-preview"),
            instances: strs(e, "instances"),
            depends_on: strs(e, "depends_on"),
        })
        .collect()
}

fn browsers() -> Vec<&'static str> {
    BROWSERS.lines().filter(|l| !l.trim().is_empty()).collect()
}

fn only(patterns: &[(UaClass, &str)]) -> Result<BotDetector, BotPatternError> {
    let mut b = BotDetector::builder().clear_patterns();
    for (class, p) in patterns {
        b = b.add_pattern(*class, p)?;
    }
    b.build()
}

fn rejected_by_regex(pattern: &str) -> bool {
    match only(&[(UaClass::Bot, pattern)]) {
        Ok(_) => false,
        Err(BotPatternError::Invalid { .. }) => true,
        Err(e) => panic!("{pattern}: unexpected {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The bundled list: generator, special handling.

fn generate() -> String {
    let crawlers = crawlers();
    let mut rewritten = Vec::new();
    let mut unhandled = Vec::new();
    let mut body = String::new();
    for c in &crawlers {
        assert!(
            !c.pattern.contains(['\t', '\n', '\r']),
            "{:?}: tab or newline in pattern",
            c.pattern
        );
        let mut pattern = c.pattern.as_str();
        if rejected_by_regex(pattern) {
            match REWRITES.iter().find(|(from, _, _)| *from == pattern) {
                Some((from, to, why)) => {
                    assert!(!rejected_by_regex(to), "rewrite of {from:?} still rejected");
                    rewritten.push(format!("#   {from}  =>  {to}  ({why})\n"));
                    pattern = to;
                }
                None => unhandled.push(pattern.to_owned()),
            }
        }
        let class = if c.preview { "preview" } else { "bot" };
        body.push_str(&format!("{class}\t{pattern}\n"));
    }
    assert!(
        unhandled.is_empty(),
        "patterns rejected by the regex crate and not handled in REWRITES: {unhandled:#?}"
    );
    let mut out = String::new();
    out.push_str(
        "# Bot and link-preview User-Agent patterns for linkgate's BotDetector (src/fraud/bots.rs).\n\
         # One per line: `<class>\\t<pattern>`; class `preview` for the entries tagged\n\
         # `social-preview` upstream, `bot` for the rest. Patterns are upstream's regexes (RE2\n\
         # syntax), compiled with Rust's regex crate (ASCII classes, case-sensitive by default).\n\
         #\n\
         # GENERATED from tests/data/crawler-user-agents.json by the `generated_patterns` test in\n\
         # tests/bots.rs: LINKGATE_REGEN_PATTERNS=1 cargo test --test bots generated_patterns\n\
         # Do not edit: add or remove patterns with BotDetector::builder() instead.\n\
         #\n",
    );
    out.push_str(&format!(
        "# Source: https://github.com/monperrus/crawler-user-agents ({UPSTREAM}), {} patterns.\n",
        crawlers.len()
    ));
    if rewritten.is_empty() {
        out.push_str("# Patterns rejected by Rust's regex crate (rewritten below): none.\n");
    } else {
        out.push_str(
            "# Patterns rejected by Rust's regex crate, rewritten to an equivalent form:\n",
        );
        for r in &rewritten {
            out.push_str(r);
        }
    }
    out.push_str("#\n# Licence of the patterns (also in crawler-user-agents.LICENSE):\n#\n");
    for line in CRAWLERS_LICENSE.lines() {
        out.push_str(if line.is_empty() { "#" } else { "# " });
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    out
}

#[test]
fn generated_patterns_match_the_json() {
    let expected = generate();
    if std::env::var_os("LINKGATE_REGEN_PATTERNS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/fraud/crawler_patterns.txt"
        );
        std::fs::write(path, &expected).unwrap();
        eprintln!("wrote {path}; rebuild to embed it");
        return;
    }
    assert!(
        GENERATED == expected,
        "src/fraud/crawler_patterns.txt is stale: LINKGATE_REGEN_PATTERNS=1 cargo test --test bots generated_patterns"
    );
}

#[test]
fn special_patterns_exact_list() {
    // Every upstream pattern, compiled alone exactly as the detector compiles it.
    let crawlers = crawlers();
    assert_eq!(crawlers.len(), 1498);
    let rejected: Vec<&str> = crawlers
        .iter()
        .map(|c| c.pattern.as_str())
        .filter(|p| rejected_by_regex(p))
        .collect();
    assert_eq!(rejected, SPECIAL, "patterns needing special handling");
    let rewritten: Vec<&str> = REWRITES.iter().map(|r| r.0).collect();
    assert_eq!(rewritten, SPECIAL, "each special pattern has a rewrite");

    // The README warns about look-around: such a pattern is a typed error naming it.
    for p in [r"AdsBot-Google(?!-)", r"(?<!Headless)Chrome", r"(bot)\1"] {
        match only(&[(UaClass::Bot, p)]) {
            Err(e @ BotPatternError::Invalid { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(p), "{msg}");
                assert!(std::error::Error::source(&e).is_some());
            }
            other => panic!("{p}: {other:?}"),
        }
    }
}

#[test]
fn each_instance_matches_its_own_pattern() {
    // Rust's regex reads every upstream pattern as upstream means it: each entry's example
    // User-Agents match that entry alone (or the entries it declares `depends_on`).
    let crawlers = crawlers();
    let mut failures = Vec::new();
    for c in &crawlers {
        if c.instances.is_empty() {
            continue;
        }
        let mut pats = vec![(UaClass::Bot, c.pattern.as_str())];
        pats.extend(c.depends_on.iter().map(|d| {
            let dep = crawlers
                .iter()
                .find(|x| x.pattern.eq_ignore_ascii_case(d) || x.pattern.contains(d.as_str()))
                .map_or(d.as_str(), |x| x.pattern.as_str());
            (UaClass::Bot, dep)
        }));
        let det = only(&pats).unwrap();
        for ua in &c.instances {
            if det.classify_ua(ua.as_bytes()).is_human() {
                failures.push((c.pattern.clone(), ua.clone()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn bundled_list_shape() {
    let d = BotDetector::default();
    let (literals, regexes) = d.pattern_counts();
    println!(
        "bundled: {literals} literal patterns (Aho-Corasick), {regexes} regex patterns (RegexSet)"
    );
    // 36 upstream patterns use regex syntax (anchors, classes, alternation, `\d`, `[\s\S]*`);
    // every other pattern, bundled or extra, is a literal for the Aho-Corasick automaton.
    assert_eq!(regexes, 36);
    assert!(literals >= 1462 + 10, "{literals}");
    let previews = d.patterns().filter(|(c, _)| *c == UaClass::Preview).count();
    assert!(previews >= 80, "{previews}");
    assert_eq!(d.patterns().len(), literals + regexes);
}

// ---------------------------------------------------------------------------------------------
// Accuracy on the lists.

struct Score {
    instances: usize,
    flagged: usize,
    as_preview_of_tagged: (usize, usize),
    browsers: usize,
    false_positives: Vec<(String, Verdict)>,
    missed: Vec<(String, String)>,
}

impl Score {
    fn recall(&self) -> f64 {
        self.flagged as f64 / self.instances as f64
    }
    fn fp_rate(&self) -> f64 {
        self.false_positives.len() as f64 / self.browsers as f64
    }
    fn precision(&self) -> f64 {
        self.flagged as f64 / (self.flagged + self.false_positives.len()) as f64
    }
}

fn score(d: &BotDetector) -> Score {
    let mut s = Score {
        instances: 0,
        flagged: 0,
        as_preview_of_tagged: (0, 0),
        browsers: 0,
        false_positives: Vec::new(),
        missed: Vec::new(),
    };
    for c in crawlers() {
        for ua in &c.instances {
            s.instances += 1;
            let v = d.classify_ua(ua.as_bytes());
            if v.is_human() {
                s.missed.push((c.pattern.clone(), ua.clone()));
            } else {
                s.flagged += 1;
            }
            if c.preview {
                s.as_preview_of_tagged.1 += 1;
                s.as_preview_of_tagged.0 += usize::from(v.is_preview());
            }
        }
    }
    for ua in browsers() {
        s.browsers += 1;
        let v = d.classify_ua(ua.as_bytes());
        if !v.is_human() {
            s.false_positives.push((ua.to_owned(), v));
        }
    }
    s
}

#[test]
fn accuracy_on_real_user_agents() {
    let sensitive = score(&BotDetector::default());
    let insensitive = score(
        &BotDetector::builder()
            .case_insensitive(true)
            .build()
            .unwrap(),
    );
    for (name, s) in [
        ("case-sensitive (default)", &sensitive),
        ("case-insensitive", &insensitive),
    ] {
        println!(
            "{name}: recall {}/{} = {:.2} %, false positives {}/{} = {:.2} %, precision {:.2} %, \
             social-preview instances classified Preview {}/{}",
            s.flagged,
            s.instances,
            100.0 * s.recall(),
            s.false_positives.len(),
            s.browsers,
            100.0 * s.fp_rate(),
            100.0 * s.precision(),
            s.as_preview_of_tagged.0,
            s.as_preview_of_tagged.1,
        );
        for (ua, v) in &s.false_positives {
            println!("  false positive: {ua} -> {v:?}");
        }
        for (p, ua) in &s.missed {
            println!("  missed: {p} : {ua}");
        }
    }
    assert_eq!(sensitive.instances, 2116);
    assert_eq!(sensitive.browsers, 952);
    assert!(sensitive.recall() >= 0.99, "recall {}", sensitive.recall());
    assert!(
        sensitive.fp_rate() <= 0.005,
        "fp rate {}",
        sensitive.fp_rate()
    );
    // Every instance of an upstream `social-preview` entry is a Preview.
    assert_eq!(
        sensitive.as_preview_of_tagged.0,
        sensitive.as_preview_of_tagged.1
    );
}

// ---------------------------------------------------------------------------------------------
// Tables.

fn check(d: &BotDetector, cases: &[(&str, UaClass, Option<&str>)]) {
    for (ua, class, reason) in cases {
        let v = d.classify_ua(ua.as_bytes());
        assert_eq!(v.class, *class, "{ua}: {v:?}");
        if let Some(r) = reason {
            assert_eq!(v.reason_str(), Some(*r), "{ua}");
        }
    }
}

#[test]
fn link_previews() {
    use UaClass::Preview;
    check(
        &BotDetector::default(),
        &[
            (
                "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                Preview,
                Some("Slackbot"),
            ),
            (
                "Slackbot 1.0 (+https://api.slack.com/robots)",
                Preview,
                Some("Slackbot"),
            ),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                Preview,
                Some("facebookexternalhit"),
            ),
            ("Facebot", Preview, Some("Facebot")),
            ("Twitterbot/1.0", Preview, Some("Twitterbot")),
            (
                "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
                Preview,
                Some("Discordbot"),
            ),
            ("WhatsApp/2.23.20.0 A", Preview, Some("WhatsApp")),
            (
                "TelegramBot (like TwitterBot)",
                Preview,
                Some("TelegramBot"),
            ),
            // Contains a generic HTTP-library token too: the preview wins.
            (
                "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
                Preview,
                Some("LinkedInBot"),
            ),
            (
                "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
                Preview,
                Some("SkypeUriPreview"),
            ),
            (
                "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
                Preview,
                None,
            ),
            (
                "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
                Preview,
                Some("redditbot"),
            ),
            (
                "Iframely/1.3.1 (+https://iframely.com/docs/about)",
                Preview,
                Some("Iframely"),
            ),
            (
                "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
                Preview,
                Some("Embedly"),
            ),
            (
                "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
                Preview,
                Some("vkShare"),
            ),
            (
                "Viber/15.2.0.9 CFNetwork/1390 Darwin/22.0.0",
                Preview,
                Some("Viber"),
            ),
            (
                "http.rb/5.1.1 (Mastodon/4.2.8; +https://mastodon.social/)",
                Preview,
                Some("Mastodon"),
            ),
            (
                "Mozilla/5.0 (compatible; Cardyb/1.1; +mailto:support@bsky.app)",
                Preview,
                Some("Cardyb"),
            ),
            (
                "Mozilla/5.0 (compatible; SnapURLPreview/1.0; +https://www.snapchat.com)",
                Preview,
                None,
            ),
            (
                "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko; Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/)) Chrome/56.0.2924.87 Safari/537.36",
                Preview,
                Some("Google-PageRenderer"),
            ),
            // iMessage: a Safari User-Agent with preview tokens appended.
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
                Preview,
                None,
            ),
        ],
    );
}

#[test]
fn bots_and_http_libraries() {
    use UaClass::Bot;
    check(
        &BotDetector::default(),
        &[
            ("curl/8.5.0", Bot, Some("curl/")),
            ("curl", Bot, Some("^curl")),
            ("PHP-Curl-Class/9.0 curl/7.61.1", Bot, None),
            ("python-requests/2.31.0", Bot, Some("python-requests")),
            ("Go-http-client/1.1", Bot, Some("Go-http-client")),
            ("Go-http-client/2.0", Bot, Some("Go-http-client")),
            ("Wget/1.21.4", Bot, Some("[wW]get")),
            ("okhttp/4.12.0", Bot, Some("okhttp")),
            ("axios/1.6.8", Bot, Some("axios")),
            (
                "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
                Bot,
                Some("node-fetch"),
            ),
            ("libwww-perl/6.72", Bot, None),
            ("Java/17.0.2", Bot, Some("Java/")),
            ("Dart/3.3 (dart:io)", Bot, Some(r"\(dart:io\)")),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
                Bot,
                Some("HeadlessChrome"),
            ),
            (
                "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
                Bot,
                Some("PhantomJS"),
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                Bot,
                Some(r"Googlebot\/"),
            ),
            (
                "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                Bot,
                None,
            ),
            (
                "AdsBot-Google (+http://www.google.com/adsbot.html)",
                Bot,
                Some("AdsBot-Google([^-]|$)"),
            ),
        ],
    );
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

#[test]
fn real_browsers_are_human() {
    use UaClass::Human;
    check(
        &BotDetector::default(),
        &[
            (CHROME, Human, None),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                Human,
                None,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
                Human,
                None,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                Human,
                None,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                Human,
                None,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
                Human,
                None,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
                Human,
                None,
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
                Human,
                None,
            ),
            // Snapchat's in-app browser is a person (hence no bare `Snapchat` preview pattern).
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.6.1 Mobile/15E148 Snapchat/14.25.0.48 (like Safari/8624.5.1.10.3, panda)",
                Human,
                None,
            ),
        ],
    );
    let d = BotDetector::default();
    assert!(
        browsers().iter().any(|ua| ua.contains("Snapchat")),
        "the browser list has a Snapchat in-app browser"
    );
    // A bare `Snapchat` preview pattern would flag it.
    let with_snapchat = BotDetector::builder()
        .add_pattern(UaClass::Preview, "Snapchat")
        .unwrap()
        .build()
        .unwrap();
    let flagged = browsers()
        .into_iter()
        .filter(|ua| d.classify_ua(ua.as_bytes()).is_human())
        .filter(|ua| with_snapchat.classify_ua(ua.as_bytes()).is_preview())
        .count();
    assert_eq!(flagged, 1);
}

#[test]
fn empty_user_agent() {
    let d = BotDetector::default();
    for ua in ["", " ", "\t"] {
        let v = d.classify_ua(ua.as_bytes());
        assert_eq!(
            (v.class, v.reason_str()),
            (UaClass::Bot, Some("empty user-agent"))
        );
    }
}

fn request(method: Method, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = Request::builder().method(method).uri("/go/x");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

#[test]
fn request_rules() {
    let d = BotDetector::default();
    type Case<'a> = (Method, &'a [(&'a str, &'a str)], UaClass, Option<&'a str>);
    let cases: &[Case<'_>] = &[
        (Method::GET, &[("user-agent", CHROME)], UaClass::Human, None),
        (
            Method::POST,
            &[("user-agent", CHROME)],
            UaClass::Human,
            None,
        ),
        (Method::GET, &[], UaClass::Bot, Some("no user-agent")),
        (
            Method::GET,
            &[("user-agent", "")],
            UaClass::Bot,
            Some("no user-agent"),
        ),
        (
            Method::GET,
            &[("user-agent", "  ")],
            UaClass::Bot,
            Some("no user-agent"),
        ),
        (
            Method::HEAD,
            &[("user-agent", CHROME)],
            UaClass::Bot,
            Some("HEAD request"),
        ),
        (
            Method::GET,
            &[("user-agent", CHROME), ("sec-purpose", "prefetch")],
            UaClass::Bot,
            Some("prefetch"),
        ),
        (
            Method::GET,
            &[
                ("user-agent", CHROME),
                ("sec-purpose", "prefetch;prerender"),
            ],
            UaClass::Bot,
            Some("prefetch"),
        ),
        (
            Method::GET,
            &[("user-agent", CHROME), ("Purpose", "Prefetch")],
            UaClass::Bot,
            Some("prefetch"),
        ),
        (
            Method::GET,
            &[("user-agent", CHROME), ("x-moz", "prefetch")],
            UaClass::Bot,
            Some("prefetch"),
        ),
        (
            Method::GET,
            &[("user-agent", CHROME), ("x-purpose", "preview")],
            UaClass::Bot,
            Some("prefetch"),
        ),
        (
            Method::GET,
            &[("user-agent", CHROME), ("sec-purpose", "prerendering-soon")],
            UaClass::Human,
            None,
        ),
        (
            Method::GET,
            &[("user-agent", "curl/8.5.0")],
            UaClass::Bot,
            Some("curl/"),
        ),
        (
            Method::GET,
            &[("user-agent", "Twitterbot/1.0")],
            UaClass::Preview,
            Some("Twitterbot"),
        ),
        // A second User-Agent header cannot hide a bot behind a browser one.
        (
            Method::GET,
            &[
                ("user-agent", CHROME),
                ("user-agent", "python-requests/2.31"),
            ],
            UaClass::Bot,
            Some("python-requests"),
        ),
    ];
    for (method, headers, class, reason) in cases {
        let parts = request(method.clone(), headers);
        let v = d.classify_request(&parts);
        assert_eq!(
            (v.class, v.reason_str()),
            (*class, *reason),
            "{method} {headers:?}"
        );
        assert_eq!(d.classify_headers(&parts.method, &parts.headers), v);
    }
}

#[test]
fn user_added_and_removed_patterns() {
    let d = BotDetector::builder()
        .add_pattern(UaClass::Bot, r"^ZqxProbe/\d+")
        .unwrap()
        .add_pattern(UaClass::Preview, "AcmeChat-Unfurl")
        .unwrap()
        .add_pattern(UaClass::Human, "AcmeKiosk")
        .unwrap()
        .add_pattern(UaClass::Bot, "MetaIAB Facebook") // reclassify a bundled preview
        .unwrap()
        .remove_pattern("Java/")
        .remove_pattern(r"pinterest\.com\/bot")
        .build()
        .unwrap();
    let default_len = BotDetector::default().patterns().len();
    assert_eq!(d.patterns().len(), default_len + 3 - 2);
    assert!(
        d.patterns()
            .any(|p| p == (UaClass::Bot, "MetaIAB Facebook"))
    );
    assert!(!d.patterns().any(|(_, p)| p == "Java/"));
    check(
        &d,
        &[
            (
                "ZqxProbe/3 (+https://zqx.example)",
                UaClass::Bot,
                Some(r"^ZqxProbe/\d+"),
            ),
            ("x ZqxProbe/3", UaClass::Human, None),
            (
                "AcmeChat-Unfurl/1.0",
                UaClass::Preview,
                Some("AcmeChat-Unfurl"),
            ),
            // An explicit Human pattern wins over a bundled bot pattern.
            ("AcmeKiosk curl/8.0", UaClass::Human, None),
            (
                "Mozilla/5.0 (Linux; Android 16; wv) Chrome/146.0 Mobile Safari/537.36 MetaIAB Facebook",
                UaClass::Bot,
                Some("MetaIAB Facebook"),
            ),
            ("Java/17.0.2", UaClass::Human, None),
            // `pinterest\.com\/bot` is gone but the added `Pinterestbot` literal still matches.
            (
                "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
                UaClass::Preview,
                Some("Pinterestbot"),
            ),
            (CHROME, UaClass::Human, None),
        ],
    );
    let v = d.classify_ua(b"ZqxProbe/3");
    assert!(matches!(v.reason, Some(ref r) if r == r"^ZqxProbe/\d+"));

    // Case-insensitive mode covers literals and regexes.
    let ci = BotDetector::builder()
        .clear_patterns()
        .add_pattern(UaClass::Bot, "acmebot")
        .unwrap()
        .add_pattern(UaClass::Bot, r"^crawl\d")
        .unwrap()
        .case_insensitive(true)
        .build()
        .unwrap();
    assert!(ci.classify_ua(b"x AcmeBot/1").is_bot());
    assert!(ci.classify_ua(b"CRAWL7").is_bot());
    assert!(
        BotDetector::default()
            .classify_ua(b"GOOGLEBOT/2.1")
            .is_human()
    );

    // An empty list classifies everything non-empty as human.
    let empty = BotDetector::builder().clear_patterns().build().unwrap();
    assert!(empty.classify_ua(b"curl/8").is_human());
    assert!(empty.classify_ua(b"").is_bot());
}

#[test]
fn pattern_errors() {
    let err = BotDetector::builder()
        .add_pattern(UaClass::Bot, "Foo(?=bar)")
        .unwrap_err();
    match &err {
        BotPatternError::Invalid { pattern, source } => {
            assert_eq!(pattern, "Foo(?=bar)");
            assert!(!source.to_string().is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("`Foo(?=bar)`"), "{err}");

    for p in ["", "x*", "^", "(a|)"] {
        assert!(
            matches!(
                BotDetector::builder().add_pattern(UaClass::Bot, p),
                Err(BotPatternError::MatchesEmpty { ref pattern }) if pattern == p
            ),
            "{p:?}"
        );
    }
    match BotDetector::builder().remove_pattern("NoSuchBot").build() {
        Err(BotPatternError::NotFound { pattern }) => assert_eq!(pattern, "NoSuchBot"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shared_between_threads() {
    let d = std::sync::Arc::new(BotDetector::default());
    let uas: Vec<&str> = browsers();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let d = d.clone();
            let uas = &uas;
            s.spawn(move || {
                for ua in uas {
                    assert!(d.classify_ua(ua.as_bytes()).is_human());
                }
            });
        }
    });
    let unique: BTreeSet<&str> = uas.iter().copied().collect();
    assert_eq!(unique.len(), uas.len());
}

#[test]
fn prefilter_never_changes_a_verdict() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let mut rng = StdRng::seed_from_u64(7);
    let crawlers = crawlers();
    let browsers = browsers();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for c in &crawlers {
        for ua in &c.instances {
            let ua = ua.as_bytes();
            // Shift the match against the scan stride and cut it at both ends.
            for cut in 0..4.min(ua.len()) {
                corpus.push(ua[cut..].to_vec());
                corpus.push(ua[..ua.len() - cut].to_vec());
            }
            // Embed it in a browser User-Agent at a random offset.
            let b = browsers[rng.random_range(0..browsers.len())].as_bytes();
            let at = rng.random_range(0..=b.len());
            corpus.push([&b[..at], ua, &b[at..]].concat());
        }
        // The pattern text itself, bare and surrounded (literal patterns match themselves).
        let p = c.pattern.replace('\\', "");
        corpus.push(p.as_bytes().to_vec());
        corpus.push(format!("x{p}yz").into_bytes());
    }
    corpus.extend(browsers.iter().map(|b| b.as_bytes().to_vec()));
    // Case variants for the case-insensitive detectors.
    let n = corpus.len();
    for i in 0..n {
        if i % 3 == 0 {
            corpus.push(corpus[i].to_ascii_uppercase());
            corpus.push(corpus[i].to_ascii_lowercase());
        }
    }
    for ci in [false, true] {
        let fast = BotDetector::builder().case_insensitive(ci).build().unwrap();
        let full = BotDetector::builder()
            .case_insensitive(ci)
            .prefilter(false)
            .build()
            .unwrap();
        assert!(!format!("{fast:?}").contains("always open"), "{fast:?}");
        let mut flagged = 0;
        for ua in &corpus {
            let (a, b) = (fast.classify_ua(ua), full.classify_ua(ua));
            assert_eq!(
                a,
                b,
                "case_insensitive={ci}: {:?}",
                String::from_utf8_lossy(ua)
            );
            flagged += usize::from(!a.is_human());
        }
        println!(
            "prefilter equivalence (case_insensitive={ci}): {} User-Agents, {flagged} flagged; {fast:?}",
            corpus.len()
        );
    }
}
