//! Shared by the fuzz targets: build a table from a parsed set and check every answer.
#![allow(dead_code)]

use linkgate::{LinkSet, LinkTable, Redirect};

/// Every `Location` must be visible ASCII and never protocol-relative.
pub fn check_location(path: &str, r: &Redirect) {
    let loc = r.location().as_bytes();
    assert!(!loc.is_empty(), "empty Location for {path:?}");
    if let Some(at) = loc.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        panic!(
            "Location for {path:?} has byte 0x{:02x} at {at}: {:?}",
            loc[at],
            String::from_utf8_lossy(loc)
        );
    }
    assert!(
        !loc.starts_with(b"//") && !loc.starts_with(b"/\\"),
        "protocol-relative Location for {path:?}: {:?}",
        String::from_utf8_lossy(loc)
    );
}

/// Builds a table from a successfully parsed set (a build error is fine) and resolves every key,
/// plus variants of it that exercise prefix keys, forwarded paths and queries, and the default.
pub fn exercise(set: LinkSet) {
    let keys: Vec<String> = set.links.iter().map(|l| l.key().to_string()).collect();
    let Ok(table) = LinkTable::from_links(set) else {
        return;
    };
    let mut paths = vec!["/".to_string(), "/__linkgate_fuzz_unknown__".to_string()];
    for key in &keys {
        paths.push(key.clone());
        let body = key.strip_suffix("/*").unwrap_or(key);
        paths.push(format!("{body}/"));
        paths.push(format!("{body}/a/%2F/b?ref=x&q=%00"));
        paths.push(format!("{body}//evil.example?x=1"));
        paths.push(format!("{body}/\\evil.example"));
    }
    for p in &paths {
        let r = table.resolve(p);
        check_location(p, &r);
        let _ = r.cache_control();
        // Fixed instants on both sides of any `not_before`/`not_after` window, independent of
        // the OS clock.
        for now in [i64::MIN, 0, 1_767_225_600_000, i64::MAX] {
            check_location(p, &table.resolve_at(p, now));
        }
    }
}
