//! Property tests: every key resolves to its target under any case / percent-encoding /
//! trailing-slash variant, against a HashMap model.

use std::collections::HashMap;

use linkgate::{Link, LinkTable};
use proptest::prelude::*;

fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~-]{1,12}"
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..4).prop_map(|s| format!("/{}", s.join("/")))
}

/// A request path for `key` with random case flips, percent-encodings and a trailing slash.
fn variant(key: &str, seed: &[u8], slash: bool) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        let r = seed[i % seed.len()].wrapping_add(i as u8);
        match (c, r % 4) {
            ('/', _) => out.push('/'),
            (c, 0) => out.push_str(&format!("%{:02X}", c as u32)),
            (c, 1) => out.push_str(&format!("%{:02x}", c as u32)),
            (c, 2) => out.push(c.to_ascii_uppercase()),
            (c, _) => out.push(c.to_ascii_lowercase()),
        }
    }
    if slash {
        out.push('/');
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_key_resolves_under_any_variant(
        keys in prop::collection::hash_set(key(), 1..60),
        seed in prop::collection::vec(any::<u8>(), 1..16),
        slash in any::<bool>(),
    ) {
        // Model: lower-cased keys; duplicates after folding are rejected by the table, so dedupe.
        let mut model: HashMap<String, String> = HashMap::new();
        let mut links = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if model.contains_key(&k.to_ascii_lowercase()) {
                continue;
            }
            let target = format!("https://t.example/{i}");
            model.insert(k.to_ascii_lowercase(), target.clone());
            links.push(Link::new(k.clone(), target).unwrap());
        }
        let table = LinkTable::from_links(links).unwrap();
        let mut reader = table.reader();
        for (k, target) in &model {
            let path = variant(k, &seed, slash);
            let r = table.resolve(&path);
            prop_assert!(r.matched(), "{} ({}) did not match", path, k);
            prop_assert_eq!(r.location().to_str().unwrap(), target.as_str());
            let with_query = format!("{path}?ref=attacker#x");
            let r2 = table.resolve(&with_query);
            prop_assert_eq!(r2.location().to_str().unwrap(), target.as_str());
            // The borrowing reader answers the same.
            let b = reader.resolve(&with_query);
            prop_assert_eq!(b.location().to_str().unwrap(), target.as_str());
            prop_assert_eq!(b.key(), Some(k.as_str()));
        }
    }

    #[test]
    fn arbitrary_paths_never_panic_and_locations_are_visible_ascii(path in ".{0,300}") {
        let table = LinkTable::from_links(vec![
            Link::builder("/go/*", "/base").forward_path(true).forward_query(true).build().unwrap(),
            Link::new("/go/a", "https://a.example/").unwrap(),
        ]).unwrap();
        let r = table.resolve(&path);
        let loc = r.location().as_bytes();
        prop_assert!(loc.iter().all(|b| (0x21..=0x7e).contains(b)), "{:?}", r.location());
        prop_assert!(!loc.starts_with(b"//") && !loc.starts_with(b"/\\"));
        let mut reader = table.reader();
        let b = reader.resolve(&path);
        prop_assert_eq!(b.location(), r.location());
    }
}
