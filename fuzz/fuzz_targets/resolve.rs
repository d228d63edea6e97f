#![no_main]
//! Arbitrary request paths (lossy UTF-8) against a fixed table with exact, relative and `/*`
//! prefix links that forward the path and query. Checks that nothing in the request can make a
//! bad or off-site `Location`.

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use linkgate::{Link, LinkTable};

mod common;

/// (key, target, forward_path, forward_query)
const LINKS: &[(&str, &str, bool, bool)] = &[
    ("/go/docs/*", "https://docs.example/v2", true, true),
    ("/go/site/*", "/local", true, true),
    ("/go/local", "/local", false, true),
    ("/go/summer-deal", "https://store.com/p/123?ref=aff_01", false, true),
    ("/go/winter", "https://store.com/c/winter?ref=aff_01#top", false, false),
    ("/go/x", "https://x.example/", false, false),
    ("/go/caf%C3%A9", "https://cafe.example/menu", false, false),
];

static TABLE: LazyLock<LinkTable> = LazyLock::new(|| {
    let links = LINKS
        .iter()
        .map(|&(key, target, path, query)| {
            Link::builder(key, target)
                .forward_path(path)
                .forward_query(query)
                .build()
                .expect("fixed link is valid")
        })
        .collect::<Vec<_>>();
    LinkTable::from_links(links).expect("fixed table is valid")
});

/// The part of a target a forwarded path or query may never change: scheme, host and the path
/// as written (everything before `?`/`#`).
fn fixed_part(target: &str) -> &str {
    &target[..target.find(['?', '#']).unwrap_or(target.len())]
}

fuzz_target!(|data: &[u8]| {
    let path = String::from_utf8_lossy(data);
    let r = TABLE.resolve(&path);
    common::check_location(&path, &r);
    let loc = r.location().to_str().expect("visible ASCII was checked");

    let Some(m) = r.link() else {
        assert_eq!(loc, "/", "default Location for {path:?}");
        return;
    };
    // The matched key as stored: lower-cased, percent-decoded, without `/*`.
    let &(_, target, _, _) = LINKS
        .iter()
        .find(|(k, ..)| {
            Link::new(*k, "/").unwrap().key().trim_end_matches("/*").to_ascii_lowercase() == m.key()
        })
        .unwrap_or_else(|| panic!("{path:?} matched unknown key {:?}", m.key()));
    let fixed = fixed_part(target);
    assert!(
        loc.starts_with(fixed),
        "{path:?} -> {loc:?} does not keep the target's scheme/host/path {fixed:?}"
    );
    // The next byte after the fixed part must not extend the host (`https://x.example.evil/`,
    // `https://docs.example@evil/`): for a host-only fixed part it is `/`, `?`, `#` or the end.
    if let Some(after) = fixed.strip_prefix("https://") {
        if !after.contains('/') {
            let next = loc.as_bytes().get(fixed.len());
            assert!(
                matches!(next, None | Some(b'/' | b'?' | b'#')),
                "{path:?} -> {loc:?} extends the host of {target:?}"
            );
        }
    }
    if target.starts_with('/') {
        // Same-site stays same-site: one leading `/`, no scheme, no backslash anywhere.
        assert!(loc.starts_with('/'), "{path:?} -> {loc:?} left the site");
        assert!(!loc.contains('\\'), "{path:?} -> {loc:?} has a backslash");
    }
    if !r.status().is_redirection() {
        panic!("{path:?} -> status {}", r.status());
    }
});
