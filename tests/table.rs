//! Black-box behaviour of `LinkTable` through the public API.

use linkgate::{DefaultRedirect, EntryProblem, Format, Link, LinkTable, LoadError};

fn link(k: &str, t: &str) -> Link {
    Link::new(k, t).unwrap()
}

fn loc(t: &LinkTable, path: &str) -> String {
    t.resolve(path).location().to_str().unwrap().to_string()
}

#[test]
fn resolves_variants_of_a_key() {
    let t = LinkTable::from_links(vec![link(
        "/go/summer-deal",
        "https://store.com/p/123?ref=aff_01",
    )])
    .unwrap();
    for path in [
        "/go/summer-deal",
        "/go/summer-deal/",
        "/GO/Summer-Deal",
        "/go/summer%2Ddeal",
        "/go/summer%2ddeal",
        "/go/%73ummer-deal",
        "/go/summer-deal?ref=attacker",
        "/go/summer-deal#frag",
    ] {
        let r = t.resolve(path);
        assert!(r.matched(), "{path}");
        assert_eq!(r.location(), "https://store.com/p/123?ref=aff_01", "{path}");
        assert_eq!(r.status(), 302);
        assert_eq!(r.link().unwrap().key(), "/go/summer-deal");
    }
    for path in [
        "/go/summer-deal//",
        "/go/summer-dea",
        "/go/summer%252Ddeal",
        "/go/summer%2",
        "/go",
        "",
    ] {
        assert!(t.resolve(path).is_default(), "{path}");
    }
}

#[test]
fn default_redirect_and_response() {
    let t = LinkTable::new();
    let r = t.resolve("/anything");
    assert!(r.is_default() && !r.matched());
    assert_eq!(
        (r.status().as_u16(), r.location().to_str().unwrap()),
        (302, "/")
    );
    let t = LinkTable::builder()
        .default_redirect(
            DefaultRedirect::new("https://store.com/")
                .unwrap()
                .with_status(307)
                .unwrap(),
        )
        .build();
    let resp = t.resolve("/x").into_response();
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()["location"], "https://store.com/");
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

#[test]
fn cache_control_by_status_and_override() {
    let t = LinkTable::from_links(vec![
        Link::builder("/p", "/a").status(301).build().unwrap(),
        Link::builder("/q", "/a")
            .status(308)
            .cache_seconds(60)
            .build()
            .unwrap(),
        Link::builder("/r", "/a").status(302).build().unwrap(),
        Link::builder("/s", "/a")
            .status(301)
            .cache_seconds(0)
            .build()
            .unwrap(),
    ])
    .unwrap();
    let cc = |p: &str| {
        t.resolve(p).into_response().headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(cc("/p"), "max-age=86400");
    assert_eq!(cc("/q"), "max-age=60");
    assert_eq!(cc("/r"), "no-store");
    assert_eq!(cc("/s"), "no-store");
}

#[test]
fn case_sensitive_tables() {
    let t = LinkTable::builder().case_sensitive(true).build();
    t.reload(vec![link("/go/Deal", "/a"), link("/go/deal", "/b")])
        .unwrap();
    assert_eq!(loc(&t, "/go/Deal"), "/a");
    assert_eq!(loc(&t, "/go/deal"), "/b");
    assert!(t.resolve("/go/DEAL").is_default());
    // In a case-insensitive table the same two keys collide.
    let err =
        LinkTable::from_links(vec![link("/go/Deal", "/a"), link("/go/deal", "/b")]).unwrap_err();
    match err {
        LoadError::Invalid { errors, .. } => {
            assert!(matches!(errors[0].problem, EntryProblem::Duplicate { .. }));
            let msg = errors[0].to_string();
            assert!(msg.contains("entry 1") && msg.contains("entry 0"), "{msg}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn forward_query_target_wins() {
    let t = LinkTable::from_links(vec![
        Link::builder("/go/q", "https://store.com/p/1?ref=aff_01")
            .forward_query(true)
            .build()
            .unwrap(),
        link("/go/noq", "https://store.com/p/2?ref=aff_01"),
    ])
    .unwrap();
    assert_eq!(
        loc(&t, "/go/q?utm_source=x&ref=attacker"),
        "https://store.com/p/1?ref=aff_01&utm_source=x"
    );
    assert_eq!(
        loc(&t, "/go/q?REF=x"),
        "https://store.com/p/1?ref=aff_01&REF=x"
    );
    assert_eq!(loc(&t, "/go/q"), "https://store.com/p/1?ref=aff_01");
    assert_eq!(
        loc(&t, "/go/noq?utm_source=x"),
        "https://store.com/p/2?ref=aff_01"
    );
    let req = http::Request::get("/go/q?a=%3Cb%3E").body(()).unwrap();
    let (parts, _) = req.into_parts();
    assert_eq!(
        t.resolve_request(&parts).location(),
        "https://store.com/p/1?ref=aff_01&a=%3Cb%3E"
    );
}

#[test]
fn forward_path_prefix_keys() {
    let t = LinkTable::from_links(vec![
        Link::builder("/go/docs/*", "https://docs.example/v2")
            .forward_path(true)
            .build()
            .unwrap(),
        link("/go/docs/old", "https://docs.example/v1/old"),
        Link::builder("/go/*", "https://store.com/")
            .build()
            .unwrap(),
        Link::builder("/s/*", "/")
            .forward_path(true)
            .build()
            .unwrap(),
    ])
    .unwrap();
    assert_eq!(loc(&t, "/go/docs/a/b"), "https://docs.example/v2/a/b");
    assert_eq!(loc(&t, "/GO/DOCS/a/B"), "https://docs.example/v2/a/B");
    assert_eq!(loc(&t, "/go/docs"), "https://docs.example/v2");
    assert_eq!(loc(&t, "/go/docs/old"), "https://docs.example/v1/old");
    assert_eq!(loc(&t, "/go/docs/x%2Fy"), "https://docs.example/v2/x%2Fy");
    // A decoded %2F is not a boundary of the prefix key.
    assert_eq!(loc(&t, "/go/docs%2Fx"), "https://store.com/");
    // Without forward_path the suffix is not appended.
    assert_eq!(loc(&t, "/go/anything/else"), "https://store.com/");
    // A same-site target never becomes protocol-relative.
    assert_eq!(loc(&t, "/s//evil.example"), "/evil.example");
    assert_eq!(loc(&t, "/s/%5Cevil.example"), "/%5Cevil.example");
    let long = format!("/go/docs/{}", "x/".repeat(3000));
    assert!(loc(&t, &long).starts_with("https://docs.example/v2/x/x/"));
    assert!(
        t.resolve(&format!("/nothere/{}", "y".repeat(5000)))
            .is_default()
    );
}

#[test]
fn time_windows() {
    let t = LinkTable::from_links(vec![
        Link::builder("/go/w", "/live")
            .not_before(1_000)
            .not_after(2_000)
            .build()
            .unwrap(),
        Link::builder("/go/*", "/fallback").build().unwrap(),
    ])
    .unwrap();
    assert_eq!(t.resolve_at("/go/w", 999).location(), "/fallback");
    assert_eq!(t.resolve_at("/go/w", 1_000).location(), "/live");
    assert_eq!(t.resolve_at("/go/w", 2_000).location(), "/fallback");
    // The OS clock says 2026+: the window is long over.
    assert_eq!(loc(&t, "/go/w"), "/fallback");
}

#[test]
fn reload_reports_and_keeps_old_on_error() {
    let t =
        LinkTable::from_links(vec![link("/a", "/1"), link("/b", "/2"), link("/c", "/3")]).unwrap();
    assert_eq!(t.version(), 1);
    let r = t
        .reload(vec![link("/a", "/1"), link("/b", "/22"), link("/d", "/4")])
        .unwrap();
    assert_eq!(
        (r.added, r.removed, r.changed, r.links, r.version),
        (1, 1, 1, 3, 2)
    );
    // A bad entry fails the whole reload; the old table keeps serving.
    let bad = vec![
        link("/a", "/9"),
        Link::new("/e", "/5").unwrap(),
        link("/a", "/10"),
    ];
    let err = t.reload(bad).unwrap_err();
    assert!(err.to_string().contains("duplicate key `/a`"), "{err}");
    assert_eq!(loc(&t, "/a"), "/1");
    assert_eq!(t.version(), 2);
}

#[test]
fn errors_list_every_bad_entry_with_line() {
    let text = b"/go/a javascript:x;\n/go/b /ok;\n/go/c //evil;\ngo/d /x;\n";
    let err = Format::NginxMap.parse(text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("3 invalid entries"), "{msg}");
    for needle in [
        "line 1",
        "line 3",
        "line 4",
        "scheme",
        "protocol-relative",
        "must start with `/`",
    ] {
        assert!(msg.contains(needle), "{needle} missing in {msg}");
    }
    let many: String = (0..500).map(|i| format!("/go/{i} data:x;\n")).collect();
    match Format::NginxMap.parse(many.as_bytes()).unwrap_err() {
        LoadError::Invalid { errors, total } => assert_eq!((errors.len(), total), (100, 500)),
        e => panic!("{e}"),
    }
}

#[test]
fn removal_guard_and_force() {
    let t = LinkTable::builder().max_removed_fraction(0.5).build();
    let links: Vec<Link> = (0..10).map(|i| link(&format!("/k{i}"), "/t")).collect();
    t.reload(links.clone()).unwrap();
    let err = t.reload(links[..4].to_vec()).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::TooManyRemoved {
                removed: 6,
                current: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(t.len(), 10);
    t.reload(links[..5].to_vec()).unwrap();
    assert_eq!(t.reload_forced(Vec::<Link>::new()).unwrap().removed, 5);
    assert!(t.is_empty());
}

#[test]
fn rollback_and_diff() {
    let t = LinkTable::from_links(vec![link("/a", "/1"), link("/b", "/2")]).unwrap();
    let next = t
        .prepare(vec![
            link("/a", "/1"),
            link("/b", "/changed"),
            link("/c", "/3"),
        ])
        .unwrap();
    let d = t.diff(&next);
    assert_eq!(
        (d.added, d.removed, d.changed),
        (vec!["/c".to_string()], vec![], vec!["/b".to_string()])
    );
    t.swap(next).unwrap();
    assert_eq!(loc(&t, "/b"), "/changed");
    assert_eq!(t.rollback(), Some(1));
    assert_eq!(loc(&t, "/b"), "/2");
    assert!(t.resolve("/c").is_default());
    assert_eq!(t.rollback(), Some(2));
    assert_eq!(loc(&t, "/b"), "/changed");
    assert_eq!(LinkTable::new().rollback(), None);
}

#[test]
fn redirect_loops_are_rejected_with_the_chain() {
    let err = LinkTable::from_links(vec![
        link("/go/a", "/go/b"),
        link("/go/b", "/go/c/"),
        link("/go/c", "/go/A"),
    ])
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("redirect loop: /go/a -> /go/b -> /go/c -> /go/a"),
        "{msg}"
    );
    // Self-loop through an own host.
    let t = LinkTable::builder().own_hosts(["links.example"]).build();
    let err = t
        .reload(vec![link("/go/x", "https://LINKS.example/go/x?utm=1")])
        .unwrap_err();
    assert!(err.to_string().contains("/go/x -> /go/x"), "{err}");
    // Chains that end are fine; other hosts are not followed.
    LinkTable::from_links(vec![
        link("/go/a", "/go/b"),
        link("/go/b", "https://other.example/go/a"),
    ])
    .unwrap();
    // A prefix key that catches its own target loops too.
    assert!(LinkTable::from_links(vec![Link::new("/go/*", "/go/home").unwrap()]).is_err());
}

#[test]
fn snapshot_round_trips_links() {
    let links = vec![
        Link::builder("/go/x", "https://a.example/?q=1")
            .status(308)
            .cache_seconds(5)
            .tag("campaign", "c1")
            .build()
            .unwrap(),
        Link::builder("/go/d/*", "https://d.example/")
            .forward_path(true)
            .forward_query(true)
            .not_after(99)
            .build()
            .unwrap(),
    ];
    let t = LinkTable::from_links(links.clone()).unwrap();
    let back: Vec<Link> = t.snapshot().links().collect();
    assert_eq!(back, links);
    let r = t.resolve("/go/x");
    assert_eq!(r.link().unwrap().tags()[0].1.as_ref(), "c1");
}

#[test]
fn sample_links_file_loads() {
    let set =
        linkgate::load_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/links.map")).unwrap();
    assert!(set.links.len() >= 14);
    let t = LinkTable::from_links(set).unwrap();
    assert_eq!(
        loc(&t, "/go/summer-deal"),
        "https://store.com/p/123?ref=aff_01"
    );
    assert_eq!(loc(&t, "/go/nope"), "https://store.com/");
}

static CLOCK_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn counting_clock() -> i64 {
    CLOCK_READS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    1_000
}

#[test]
fn the_clock_is_read_only_when_a_link_has_a_time_window() {
    use std::sync::atomic::Ordering::SeqCst;
    let links: Vec<Link> = (0..1000)
        .map(|i| {
            Link::builder(format!("/t/{i}"), "/x")
                .tag("c", "v")
                .build()
                .unwrap()
        })
        .collect();
    let t = LinkTable::builder().clock(counting_clock).build();
    t.reload(links).unwrap();
    assert!(t.resolve("/t/5").matched());
    assert_eq!(
        CLOCK_READS.load(SeqCst),
        0,
        "tagged links without windows need no clock"
    );
    t.reload(vec![
        Link::builder("/w", "/x")
            .not_before(500)
            .not_after(2_000)
            .build()
            .unwrap(),
    ])
    .unwrap();
    assert!(t.resolve("/w").matched());
    assert_eq!(CLOCK_READS.load(SeqCst), 1);
}

#[test]
fn diff_matches_keys_by_kind_whatever_the_order() {
    // The diff tries the same index in the old table first; order changes, an exact key where
    // the old table has the same key as a `/*` prefix, and different lengths must not fool it.
    let t = LinkTable::from_links(vec![
        link("/a", "/1"),
        link("/p/*", "/x"),
        link("/b", "/2"),
        link("/c", "/3"),
    ])
    .unwrap();
    let next_links = || {
        vec![
            link("/b", "/22"),
            link("/p", "/y"),
            link("/a", "/1"),
            link("/p/*", "/x"),
            link("/d", "/4"),
        ]
    };
    let next = t.prepare(next_links()).unwrap();
    let d = t.diff(&next);
    assert_eq!(
        (d.added, d.removed, d.changed),
        (
            vec!["/p".to_string(), "/d".to_string()],
            vec!["/c".to_string()],
            vec!["/b".to_string()]
        )
    );
    let r = t.swap(next).unwrap();
    assert_eq!((r.added, r.removed, r.changed), (2, 1, 1));
    // The same links again, in the same order: nothing changed.
    let r = t.reload(next_links()).unwrap();
    assert_eq!((r.added, r.removed, r.changed, r.links), (0, 0, 0, 5));
}
