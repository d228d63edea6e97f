//! `TableReader` gives the same answers as `LinkTable::resolve`, and sees every reload.

use linkgate::{ClickId, DefaultRedirect, Link, LinkTable, Redirect, Resolved};

fn table() -> LinkTable {
    let links = vec![
        Link::new("/go/summer-deal", "https://store.com/p/123?ref=aff_01").unwrap(),
        Link::builder("/go/perm", "https://perm.example/")
            .status(301)
            .build()
            .unwrap(),
        Link::builder("/go/short-cache", "https://c.example/")
            .cache_seconds(60)
            .tag("campaign", "summer")
            .tag("aff", "01")
            .build()
            .unwrap(),
        Link::builder("/go/q", "https://q.example/p?ref=aff")
            .forward_query(true)
            .build()
            .unwrap(),
        Link::builder("/go/docs/*", "https://docs.example/v2")
            .forward_path(true)
            .forward_query(true)
            .build()
            .unwrap(),
        Link::new("/go/tpl", "https://t.example/?sub={click_id}&k={key}").unwrap(),
        Link::builder("/go/past", "https://past.example/")
            .not_after(1_000)
            .build()
            .unwrap(),
        Link::builder("/go/live", "https://live.example/")
            .not_before(1_000)
            .build()
            .unwrap(),
    ];
    let table = LinkTable::builder()
        .default_redirect(DefaultRedirect::new("https://home.example/").unwrap())
        .build();
    table.reload(links).unwrap();
    table
}

const PATHS: &[&str] = &[
    "/go/summer-deal",
    "/GO/Summer%2Ddeal/",
    "/go/summer-deal?ref=attacker",
    "/go/perm",
    "/go/short-cache",
    "/go/q",
    "/go/q?b=2&ref=x",
    "/go/docs",
    "/go/docs/a/b?x=1",
    "/go/docs%2Fa",
    "/go/past",
    "/go/live",
    "/go/nope",
    "/go/bad%zz",
    "/",
    "",
];

/// The facts two answers must share (a template's click id differs between two resolves, so
/// it is replaced by `ID`).
type Facts = (
    u16,
    String,
    Option<String>,
    Option<usize>,
    String,
    Vec<String>,
);

fn facts_from(
    status: http::StatusCode,
    location: &http::HeaderValue,
    click_id: Option<ClickId>,
    key: Option<&str>,
    index: Option<usize>,
    cache_control: http::HeaderValue,
    tags: &[(Box<str>, Box<str>)],
) -> Facts {
    let loc = location.to_str().unwrap();
    let loc = match click_id {
        Some(id) => loc.replace(&id.to_string(), "ID"),
        None => loc.to_owned(),
    };
    (
        status.as_u16(),
        loc,
        key.map(str::to_owned),
        index,
        cache_control.to_str().unwrap().to_owned(),
        tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    )
}

fn facts(r: &Redirect) -> Facts {
    let link = r.link();
    facts_from(
        r.status(),
        r.location(),
        r.click_id(),
        link.map(|l| l.key()),
        link.map(|l| l.index()),
        r.cache_control(),
        link.map_or(&[][..], |l| l.tags()),
    )
}

fn borrowed_facts(r: &Resolved<'_>) -> Facts {
    facts_from(
        r.status(),
        r.location(),
        r.click_id(),
        r.key(),
        r.index(),
        r.cache_control(),
        r.tags(),
    )
}

#[test]
fn reader_answers_like_resolve() {
    let table = table();
    let mut reader = table.reader();
    for p in PATHS {
        let owned = table.resolve(p);
        let borrowed = reader.resolve(p);
        assert_eq!(borrowed_facts(&borrowed), facts(&owned), "path {p:?}");
        assert_eq!(borrowed.matched(), owned.matched(), "{p}");
        assert_eq!(borrowed.is_default(), owned.is_default(), "{p}");
        assert_eq!(borrowed.version(), table.version());
        // And its owned form is the same redirect, with the same click id.
        let converted = borrowed.to_redirect();
        assert_eq!(facts(&converted), facts(&owned), "to_redirect {p:?}");
        assert_eq!(converted.click_id(), borrowed.click_id());
        assert!(!converted.is_template());
        assert_eq!(
            converted.link().map(|l| l.version()),
            owned.link().map(|l| l.version())
        );
        // The response carries the same headers.
        let (a, b) = (owned.into_response(), borrowed.into_response());
        assert_eq!(a.status(), b.status(), "{p}");
        assert_eq!(a.headers()["cache-control"], b.headers()["cache-control"]);
        if !p.starts_with("/go/tpl") {
            assert_eq!(a.headers()["location"], b.headers()["location"], "{p}");
        }
    }
    // Through a URI too (query from the URI).
    let uri: http::Uri = "/go/docs/x?y=1".parse().unwrap();
    assert_eq!(
        reader.resolve_uri(&uri).location(),
        "https://docs.example/v2/x?y=1"
    );
    assert_eq!(
        reader.resolve("/go/q?b=2&ref=x").location(),
        "https://q.example/p?ref=aff&b=2"
    );
}

#[test]
fn reader_expands_templates_with_a_fresh_id() {
    let table = table();
    let mut reader = table.reader();
    let a = reader.resolve("/go/tpl").to_redirect();
    let b = reader.resolve("/go/tpl").to_redirect();
    let (ia, ib) = (a.click_id().unwrap(), b.click_id().unwrap());
    assert_ne!(ia, ib);
    assert_eq!(
        a.location().to_str().unwrap(),
        format!("https://t.example/?sub={ia}&k=%2Fgo%2Ftpl")
    );
}

#[test]
fn reader_sees_every_reload_and_rollback() {
    let table = table();
    let mut reader = table.reader();
    let mut clone = reader.clone();
    assert_eq!(
        reader.resolve("/go/new").location(),
        "https://home.example/"
    );
    table
        .reload_forced(vec![Link::new("/go/new", "https://new.example/").unwrap()])
        .unwrap();
    // No wait, no second call: the first resolve after `reload` returns answers from the new table.
    let r = reader.resolve("/go/new");
    assert_eq!(r.location(), "https://new.example/");
    assert_eq!(r.version(), table.version());
    assert!(clone.resolve("/go/summer-deal").is_default());
    table.rollback().unwrap();
    assert!(reader.resolve("/go/new").is_default());
    assert!(reader.resolve("/go/summer-deal").matched());
    assert_eq!(reader.snapshot().version(), table.version());
    assert_eq!(reader.table().version(), table.version());
}

#[test]
fn reader_can_move_to_another_thread() {
    let table = table();
    let mut reader = table.reader();
    let loc = std::thread::spawn(move || {
        reader
            .resolve("/go/summer-deal")
            .location()
            .to_str()
            .unwrap()
            .to_owned()
    })
    .join()
    .unwrap();
    assert_eq!(loc, "https://store.com/p/123?ref=aff_01");
}
