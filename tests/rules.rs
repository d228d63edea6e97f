//! Targeting rules, splits, caps, bot policies and `explain`, through the public `Gate`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use linkgate::{
    BotDetector, BotPolicy, ClickId, ClickRecorder, Decision, Device, DrainGuard, Gate, Link,
    LinkTable, MemorySink, Rule, UnknownPolicy,
};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// 2026-06-01T00:00:00Z
const NOW: i64 = 1_780_272_000_000;

fn now() -> i64 {
    NOW
}

fn gate(links: Vec<Link>) -> (Gate, DrainGuard, MemorySink) {
    gate_with(links, |b| b)
}

fn gate_with(
    links: Vec<Link>,
    f: impl FnOnce(linkgate::GateBuilder) -> linkgate::GateBuilder,
) -> (Gate, DrainGuard, MemorySink) {
    let sink = MemorySink::new();
    let (rec, guard) = ClickRecorder::builder(sink.clone()).spawn().unwrap();
    let table = LinkTable::from_links(links).unwrap();
    let b = Gate::builder(table, rec)
        .prefix("/go/")
        .country_header(http::HeaderName::from_static("cf-ipcountry"))
        .clock(now);
    (f(b).build(), guard, sink)
}

fn get(gate: &Gate, uri: &str, headers: &[(&str, &str)]) -> (Option<String>, Option<ClickId>) {
    let mut req = http::Request::get(uri);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let (parts, _) = req.body(()).unwrap().into_parts();
    match gate.handle(&parts, Some("203.0.113.7".parse().unwrap())) {
        Decision::Redirect(h) => (
            Some(h.redirect.location().to_str().unwrap().to_string()),
            Some(h.click_id),
        ),
        _ => (None, None),
    }
}

fn app_link() -> Link {
    Link::builder("/go/app", "https://example.com/app?ref=aff_01")
        .rule(Rule::new("ios", "https://apps.apple.com/app/id1").device(Device::Ios))
        .rule(
            Rule::new("dach-de", "https://example.de/app")
                .country("DE")
                .country("at")
                .language("de"),
        )
        .rule(
            Rule::new("launch-week", "https://example.com/launch")
                .after(NOW - 1000)
                .before(NOW + 1000),
        )
        .build()
        .unwrap()
}

#[test]
fn first_matching_rule_wins_and_is_recorded() {
    let (g, guard, sink) = gate(vec![app_link()]);
    // iPhone in Germany speaking German: `ios` comes first.
    let (loc, _) = get(
        &g,
        "/go/app",
        &[
            ("user-agent", IPHONE),
            ("cf-ipcountry", "DE"),
            ("accept-language", "de-DE,de;q=0.9"),
        ],
    );
    assert_eq!(loc.as_deref(), Some("https://apps.apple.com/app/id1"));
    // Android in Austria speaking German: `dach-de`.
    let (loc, _) = get(
        &g,
        "/go/app",
        &[
            ("user-agent", ANDROID),
            ("cf-ipcountry", "AT"),
            ("accept-language", "de-AT"),
        ],
    );
    assert_eq!(loc.as_deref(), Some("https://example.de/app"));
    // Desktop in Austria speaking English: language fails, the time window matches.
    let (loc, _) = get(
        &g,
        "/go/app",
        &[
            ("user-agent", DESKTOP),
            ("cf-ipcountry", "AT"),
            ("accept-language", "en-GB,de;q=0.5"),
        ],
    );
    assert_eq!(loc.as_deref(), Some("https://example.com/launch"));
    let stats = g.stats();
    assert_eq!((stats.redirects, stats.rule_matches), (3, 3));
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
    let rules: Vec<_> = sink
        .clicks()
        .iter()
        .map(|c| c.rule().map(str::to_string))
        .collect();
    assert_eq!(
        rules,
        [
            Some("ios".into()),
            Some("dach-de".into()),
            Some("launch-week".into())
        ]
    );
    let json = String::from_utf8(sink.clicks()[0].to_json()).unwrap();
    assert!(json.contains(r#""rule":"ios","variant":null"#), "{json}");
}

#[test]
fn no_rule_matches_outside_the_window_falls_back_to_the_target() {
    fn later() -> i64 {
        NOW + 5000
    }
    let (g, _guard, _sink) = gate_with(vec![app_link()], |b| b.clock(later));
    let (loc, _) = get(&g, "/go/app", &[("user-agent", DESKTOP)]);
    assert_eq!(loc.as_deref(), Some("https://example.com/app?ref=aff_01"));
    // No country header configured → a country rule never matches; explain says why.
    let (parts, _) = http::Request::get("/go/app")
        .header("user-agent", DESKTOP)
        .body(())
        .unwrap()
        .into_parts();
    let e = g.explain(&parts, None);
    let text = e.to_string();
    assert!(
        text.contains("rule `ios`: no match (device is desktop)"),
        "{text}"
    );
    assert!(text.contains("rule `dach-de`: no match (country"), "{text}");
    assert!(
        text.contains("rule `launch-week`: no match (outside"),
        "{text}"
    );
    assert!(
        text.contains("answer: 302 → https://example.com/app?ref=aff_01"),
        "{text}"
    );
    assert_eq!(g.stats().redirects, 1, "explain records nothing");
}

#[test]
fn split_is_weighted_deterministic_and_recorded() {
    let link = Link::builder("/go/offer", "https://example.com/default")
        .variant("a", 1, "https://a.example/?sub={click_id}")
        .variant("b", 2, "https://b.example/")
        .variant("c", 7, "https://c.example/")
        .build()
        .unwrap();
    let routing = link.routing().unwrap().clone();
    let (g, guard, sink) = gate(vec![link]);
    let n = 100_000;
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..n {
        let (loc, id) = get(&g, "/go/offer", &[("user-agent", DESKTOP)]);
        let loc = loc.unwrap();
        let v = routing.variant_for(id.unwrap()).unwrap();
        // The Location is the variant the id picks (templates expanded with the same id).
        assert_eq!(
            loc,
            v.target().replace("{click_id}", &id.unwrap().to_string())
        );
        *counts.entry(v.name().to_string()).or_default() += 1;
    }
    // Expected 10 %, 20 %, 70 %; binomial sd at n = 100 000 is ≤ 145: allow 5 sd.
    for (name, p) in [("a", 0.1), ("b", 0.2), ("c", 0.7)] {
        let expect = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let got = f64::from(counts[name]);
        assert!((got - expect).abs() < 5.0 * sd, "{name}: {got} vs {expect}");
    }
    assert_eq!(g.stats().split_choices, n as u64);
    drop(g);
    let stats = guard.shutdown(Duration::from_secs(10));
    assert_eq!(stats.delivered, n as u64);
    for c in sink.clicks() {
        assert_eq!(
            c.variant(),
            Some(routing.variant_for(c.click_id).unwrap().name())
        );
    }
}

#[test]
fn cap_is_exact_under_two_threads_and_survives_reload() {
    let max = 10_000u64;
    let link = |target: &str| {
        Link::builder("/go/capped", target)
            .max_clicks(max)
            .overflow("https://example.com/sold-out")
            .build()
            .unwrap()
    };
    let (g, guard, _sink) = gate(vec![link("https://example.com/deal")]);
    let g = Arc::new(g);
    let per_thread = 8_000u64;
    let counts: Vec<(u64, u64)> = (0..2)
        .map(|_| {
            let g = g.clone();
            std::thread::spawn(move || {
                let (mut to_target, mut overflow) = (0, 0);
                for _ in 0..per_thread {
                    match get(&g, "/go/capped", &[("user-agent", DESKTOP)])
                        .0
                        .as_deref()
                    {
                        Some("https://example.com/deal") => to_target += 1,
                        Some("https://example.com/sold-out") => overflow += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                (to_target, overflow)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let target: u64 = counts.iter().map(|c| c.0).sum();
    let overflow: u64 = counts.iter().map(|c| c.1).sum();
    assert_eq!(target, max, "exactly max_clicks sent to the target");
    assert_eq!(overflow, 2 * per_thread - max);
    assert_eq!(g.stats().capped, overflow);
    // A reload that changes the target keeps the count: still capped.
    g.table()
        .reload(vec![link("https://example.com/deal-v2")])
        .unwrap();
    assert_eq!(
        get(&g, "/go/capped", &[]).0.as_deref(),
        Some("https://example.com/sold-out")
    );
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
}

#[test]
fn capped_link_without_overflow_answers_as_unknown() {
    let link = Link::builder("/go/one", "https://example.com/one")
        .max_clicks(1)
        .build()
        .unwrap();
    let (g, _guard, _sink) = gate(vec![link.clone()]);
    assert_eq!(
        get(&g, "/go/one", &[]).0.as_deref(),
        Some("https://example.com/one")
    );
    assert_eq!(
        get(&g, "/go/one", &[]).0.as_deref(),
        Some("/"),
        "table default"
    );
    let (g, _guard2, _sink) = gate_with(vec![link], |b| b.unknown(UnknownPolicy::Pass));
    assert!(get(&g, "/go/one", &[]).0.is_some());
    assert_eq!(get(&g, "/go/one", &[]).0, None, "passed to the app");
}

#[test]
fn bot_policies() {
    let link = || {
        Link::builder("/go/p", "https://store.com/p/1?ref=aff_01")
            .variant("x", 1, "https://store.com/p/1?ref=aff_01&v=x")
            .variant("y", 1, "https://store.com/p/1?ref=aff_01&v=y")
            .build()
            .unwrap()
    };
    let bots = BotDetector::builder().build().unwrap();

    // Flag (default): served like a human, recorded with the verdict.
    let (g, guard, sink) = gate_with(vec![link()], |b| b.bots(bots.clone()));
    get(&g, "/go/p", &[("user-agent", GOOGLEBOT)]);
    get(&g, "/go/p", &[("user-agent", DESKTOP)]);
    get(&g, "/go/p", &[]);
    assert_eq!(g.stats().bots, 2);
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
    let clicks = sink.clicks();
    assert_eq!(clicks[0].bot, Some(true));
    assert!(
        clicks[0]
            .bot_reason()
            .is_some_and(|r| r.to_ascii_lowercase().contains("googlebot"))
    );
    assert_eq!((clicks[1].bot, clicks[1].bot_reason()), (Some(false), None));
    assert_eq!(
        (clicks[2].bot, clicks[2].bot_reason()),
        (Some(true), Some("no user-agent"))
    );

    // Redirect: the plain product URL, no split, no affiliate tag.
    let (g, guard, sink) = gate_with(vec![link()], |b| {
        b.bots(bots.clone()).bot_policy(BotPolicy::Redirect)
    });
    assert_eq!(
        get(&g, "/go/p", &[("user-agent", GOOGLEBOT)]).0.as_deref(),
        Some("https://store.com/p/1")
    );
    assert!(
        get(&g, "/go/p", &[("user-agent", DESKTOP)])
            .0
            .unwrap()
            .contains("ref=aff_01&v=")
    );
    assert_eq!(g.stats().bots_redirected, 1);
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
    assert_eq!(sink.clicks()[0].variant(), None);

    // DontRecord: served, counted, not recorded.
    let (g, guard, sink) = gate_with(vec![link()], |b| {
        b.bots(bots.clone()).bot_policy(BotPolicy::DontRecord)
    });
    assert!(get(&g, "/go/p", &[("user-agent", GOOGLEBOT)]).0.is_some());
    get(&g, "/go/p", &[("user-agent", DESKTOP)]);
    assert_eq!(g.stats().bots_not_recorded, 1);
    drop(g);
    let stats = guard.shutdown(Duration::from_secs(5));
    assert_eq!((stats.recorded, sink.len()), (1, 1));

    // record_clicks(false): bots and people served and counted as before, nothing recorded.
    let (g, guard, sink) = gate_with(vec![link()], |b| b.bots(bots.clone()).record_clicks(false));
    assert!(get(&g, "/go/p", &[("user-agent", DESKTOP)]).0.is_some());
    assert!(get(&g, "/go/p", &[("user-agent", GOOGLEBOT)]).0.is_some());
    let (parts, _) = http::Request::get("/go/p").body(()).unwrap().into_parts();
    assert!(!g.explain(&parts, None).recorded);
    assert_eq!((g.stats().redirects, g.stats().bots), (2, 1));
    drop(g);
    let stats = guard.shutdown(Duration::from_secs(5));
    assert_eq!((stats.recorded, stats.dropped, sink.len()), (0, 0, 0));
}

#[test]
fn explain_names_the_missing_or_expired_link() {
    let link = Link::builder("/go/old", "https://example.com/old")
        .not_after(NOW - 1)
        .build()
        .unwrap();
    let (g, _guard, _sink) = gate(vec![link]);
    let (parts, _) = http::Request::get("/go/OLD/")
        .body(())
        .unwrap()
        .into_parts();
    let e = g.explain(&parts, None);
    assert_eq!(e.key.as_deref(), Some("/go/old"));
    assert_eq!(e.link.as_deref(), Some("/go/old"));
    assert!(e.why_unmatched.unwrap().contains("not live"));
    let (parts, _) = http::Request::get("/go/nope")
        .body(())
        .unwrap()
        .into_parts();
    let e = g.explain(&parts, None);
    assert_eq!(e.why_unmatched.as_deref(), Some("no link has this key"));
    assert_eq!(e.location.as_deref(), Some("/"));
    assert!(e.recorded);
    assert_eq!(g.stats().redirects, 0);
}

#[test]
fn json_rules_load_and_route() {
    let set = linkgate::Format::Json
        .parse(
            br#"[{"key": "/go/app", "target": "https://example.com/app",
                "rules": [{"name": "android", "device": ["android"], "target": "https://play.example/app"}],
                "split": [{"name": "a", "weight": 1, "target": "https://example.com/a"},
                          {"name": "b", "weight": 1, "target": "https://example.com/b"}]}]"#,
        )
        .unwrap();
    let (g, _guard, _sink) = gate(set.links);
    assert_eq!(
        get(&g, "/go/app", &[("user-agent", ANDROID)]).0.as_deref(),
        Some("https://play.example/app")
    );
    let loc = get(&g, "/go/app", &[("user-agent", IPHONE)]).0.unwrap();
    assert!(
        loc == "https://example.com/a" || loc == "https://example.com/b",
        "{loc}"
    );
}

static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(NOW);

fn test_clock() -> i64 {
    CLOCK.load(std::sync::atomic::Ordering::SeqCst)
}

/// A click flagged in a flood keeps its rule or variant label, gains the reason, and shares a
/// label set built ahead with every other click so labelled (no allocation per flagged click).
#[test]
fn flood_flagged_clicks_keep_their_routing_labels_and_share_them() {
    use linkgate::FloodDetector;
    let flood = FloodDetector::builder()
        .limit(1)
        .memory_bytes(1 << 16)
        .build()
        .unwrap();
    let link = Link::builder("/go/app", "https://example.com/app?ref=aff_01")
        .rule(Rule::new("ios", "https://apps.apple.com/app/id1").device(Device::Ios))
        .variant("a", 1, "https://example.com/app?ref=aff_01&v=a")
        .variant("b", 1, "https://example.com/app?ref=aff_01&v=b")
        .build()
        .unwrap();
    let (g, guard, sink) = gate_with(vec![link], |b| b.flood(flood));
    for ua in [IPHONE, IPHONE, IPHONE, DESKTOP, DESKTOP, DESKTOP, DESKTOP] {
        assert!(get(&g, "/go/app", &[("user-agent", ua)]).0.is_some());
    }
    get(&g, "/go/nope", &[("user-agent", DESKTOP)]);
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
    let clicks = sink.clicks();
    assert_eq!(clicks.len(), 8);
    let labels: Vec<_> = clicks
        .iter()
        .map(|c| (c.suspicious, c.suspicious_reason(), c.rule(), c.variant()))
        .collect();
    assert_eq!(labels[0], (Some(false), None, Some("ios"), None));
    for l in &labels[1..3] {
        assert_eq!(*l, (Some(true), Some("flood:source"), Some("ios"), None));
    }
    for l in &labels[3..7] {
        assert_eq!((l.0, l.1, l.2), (Some(true), Some("flood:source"), None));
        assert!(matches!(l.3, Some("a" | "b")), "{l:?}");
    }
    assert_eq!(labels[7], (Some(true), Some("flood:source"), None, None));
    let notes = |i: usize| clicks[i].notes.clone().unwrap();
    assert!(Arc::ptr_eq(&notes(1), &notes(2)), "one shared label set");
    for (i, j) in [(3, 4), (3, 5), (3, 6), (4, 5), (4, 6), (5, 6)] {
        if clicks[i].variant() == clicks[j].variant() {
            assert!(Arc::ptr_eq(&notes(i), &notes(j)), "clicks {i} and {j}");
        }
    }
}

/// The gate hashes the visitor before routing (to fetch the filter's line early): what it
/// inserts must still be exactly the key of the click it records, whatever routing did to it.
#[test]
fn unique_filter_remembers_each_click_by_its_recorded_fields() {
    use linkgate::{UniqueFilter, VisitorKey};
    let unique = Arc::new(
        UniqueFilter::builder()
            .window(Duration::from_secs(3600))
            .memory_bytes(1 << 20)
            .build()
            .unwrap(),
    );
    let links = vec![
        Link::new("/go/a", "https://a.example/").unwrap(),
        Link::builder("/go/one", "https://example.com/one")
            .max_clicks(1)
            .build()
            .unwrap(),
    ];
    let (g, guard, sink) = gate_with(links, |b| b.unique(unique.clone()));
    // 600 bytes with a two-byte character across byte 512, where a click's User-Agent is cut.
    let mut long = "a".repeat(511).into_bytes();
    long.extend_from_slice("é".as_bytes());
    long.resize(600, b'b');
    let long = http::HeaderValue::from_bytes(&long).unwrap();
    let desktop = http::HeaderValue::from_static(DESKTOP);
    let requests = [
        ("/go/A/", Some(&desktop)),
        ("/go/one", Some(&desktop)),
        ("/go/One/", Some(&desktop)), // capped: answered with the default, keyed by its path
        ("/go/nope", Some(&desktop)), // unknown
        ("/go/a", Some(&long)),
        ("/go/a", None),
    ];
    for (path, ua) in requests {
        let mut req = http::Request::get(path);
        if let Some(ua) = ua {
            req = req.header("user-agent", ua.clone());
        }
        let (parts, _) = req.body(()).unwrap().into_parts();
        assert!(matches!(
            g.handle(&parts, Some("203.0.113.7".parse().unwrap())),
            Decision::Redirect(_)
        ));
    }
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
    let clicks = sink.clicks();
    let keys: Vec<_> = clicks.iter().map(|c| c.key.clone()).collect();
    assert_eq!(
        keys,
        ["/go/a", "/go/one", "/go/One/", "/go/nope", "/go/a", "/go/a"]
    );
    assert_eq!(clicks[4].user_agent.as_ref().map(|v| v.len()), Some(511));
    for c in &clicks {
        assert_eq!(c.unique, Some(true), "{:?}: a first click", c.key);
        let ua = c.user_agent.as_ref().map_or(&[][..], |v| v.as_bytes());
        let v = VisitorKey::from_click_ip(c.ip.as_ref(), ua, &c.key);
        assert!(
            !unique.would_be_unique(v, NOW),
            "{:?}: the filter holds the recorded click's visitor",
            c.key
        );
    }
}

#[test]
fn unique_and_flood_flags_through_the_gate() {
    use linkgate::{FloodDetector, UniqueFilter};
    let unique = UniqueFilter::builder()
        .window(Duration::from_secs(3600))
        .memory_bytes(1 << 20)
        .build()
        .unwrap();
    let flood = FloodDetector::builder()
        .limit(3)
        .window(Duration::from_secs(60))
        .memory_bytes(1 << 16)
        .build()
        .unwrap();
    let links = vec![
        Link::new("/go/a", "https://a.example/").unwrap(),
        Link::new("/go/b", "https://b.example/").unwrap(),
    ];
    let (g, guard, sink) = gate_with(links, |b| b.clock(test_clock).unique(unique).flood(flood));
    let hit = |path: &str, ua: &str, ip: &str| {
        let (parts, _) = http::Request::get(path)
            .header("user-agent", ua)
            .body(())
            .unwrap()
            .into_parts();
        assert!(matches!(
            g.handle(&parts, Some(ip.parse().unwrap())),
            Decision::Redirect(_)
        ));
    };
    // A dry run changes nothing.
    let (parts, _) = http::Request::get("/go/a")
        .header("user-agent", DESKTOP)
        .body(())
        .unwrap()
        .into_parts();
    let e = g.explain(&parts, Some("198.51.100.1".parse().unwrap()));
    assert_eq!((e.unique, e.suspicious), (Some(true), Some(false)));
    hit("/go/a", DESKTOP, "198.51.100.1"); // 1: unique
    hit("/go/a", DESKTOP, "198.51.100.1"); // 2: same visitor, same key
    hit("/go/b", DESKTOP, "198.51.100.1"); // 3: other key: unique
    hit("/go/a", IPHONE, "198.51.100.1"); // 4: other UA: unique, but the 4th click of the source
    hit("/go/a", DESKTOP, "198.51.100.99"); // 5: same /24 when anonymised: same visitor; other source
    CLOCK.fetch_add(2 * 3600 * 1000, std::sync::atomic::Ordering::SeqCst);
    hit("/go/a", DESKTOP, "198.51.100.1"); // 6: window passed: unique again, flood window too
    let stats = g.stats();
    assert_eq!((stats.duplicates, stats.suspicious), (2, 1));
    drop(g);
    let _ = guard.shutdown(Duration::from_secs(5));
    let clicks = sink.clicks();
    let uniques: Vec<_> = clicks.iter().map(|c| c.unique).collect();
    assert_eq!(
        uniques,
        [
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(false),
            Some(true)
        ]
    );
    let sus: Vec<_> = clicks
        .iter()
        .map(|c| (c.suspicious, c.suspicious_reason()))
        .collect();
    assert_eq!(sus[3], (Some(true), Some("flood:source")));
    assert!(
        sus.iter()
            .enumerate()
            .all(|(i, s)| i == 3 || *s == (Some(false), None))
    );
    let json = String::from_utf8(clicks[3].to_json()).unwrap();
    assert!(
        json.contains(r#""suspicious":true,"suspicious_reason":"flood:source""#),
        "{json}"
    );
}

/// The gate remembers, per thread, what each User-Agent alone decides (bot verdict, device):
/// a remembered answer must be exactly the computed one, and one gate's answers never serve
/// another gate with another detector. Every browser User-Agent of `tests/data` and a few bots,
/// three rounds (the first computes, the others are answered from memory), on two gates whose
/// detectors disagree about Googlebot and curl.
#[test]
fn remembered_user_agents_get_what_the_detector_and_rules_say() {
    const BROWSERS: &str = include_str!("data/browser-user-agents.txt");
    let mut uas: Vec<&str> = BROWSERS.lines().filter(|l| !l.trim().is_empty()).collect();
    uas.extend([
        GOOGLEBOT,
        "curl/8.5.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Twitterbot/1.0",
        IPHONE,
        ANDROID,
        DESKTOP,
    ]);
    let link = || {
        Link::builder("/go/app", "https://example.com/app")
            .rule(Rule::new("ios", "https://example.com/ios").device(Device::Ios))
            .rule(Rule::new("android", "https://example.com/android").device(Device::Android))
            .build()
            .unwrap()
    };
    let strict = BotDetector::builder().build().unwrap();
    let lenient = BotDetector::builder()
        .add_pattern(linkgate::UaClass::Human, "Googlebot")
        .unwrap()
        .add_pattern(linkgate::UaClass::Human, "curl/8")
        .unwrap()
        .build()
        .unwrap();
    assert!(strict.classify_ua(b"curl/8.5.0").is_bot());
    assert!(lenient.classify_ua(b"curl/8.5.0").is_human());
    let (g1, guard1, sink1) = gate_with(vec![link()], |b| b.bots(strict.clone()));
    let (g2, guard2, sink2) = gate_with(vec![link()], |b| b.bots(lenient.clone()));
    let rounds = 3;
    for _ in 0..rounds {
        for ua in &uas {
            for g in [&g1, &g2] {
                let (loc, _) = get(g, "/go/app", &[("user-agent", ua)]);
                let want = match Device::from_user_agent(ua.as_bytes()) {
                    Some(Device::Ios) => "https://example.com/ios",
                    Some(Device::Android) => "https://example.com/android",
                    _ => "https://example.com/app",
                };
                assert_eq!(loc.as_deref(), Some(want), "{ua}");
            }
        }
    }
    drop((g1, g2));
    let _ = guard1.shutdown(Duration::from_secs(5));
    let _ = guard2.shutdown(Duration::from_secs(5));
    for (sink, detector) in [(sink1, &strict), (sink2, &lenient)] {
        let clicks = sink.clicks();
        assert_eq!(clicks.len(), rounds * uas.len());
        for (i, c) in clicks.iter().enumerate() {
            let ua = uas[i % uas.len()];
            let v = detector.classify_ua(ua.as_bytes());
            assert_eq!(c.bot, Some(!v.is_human()), "{ua}");
            assert_eq!(
                c.bot_reason(),
                v.reason_str().filter(|_| !v.is_human()),
                "{ua}"
            );
        }
    }
}
