//! Readers during reloads see one whole snapshot or the other, never a mix.

use std::sync::atomic::{AtomicBool, Ordering};

use linkgate::{Link, LinkTable};

const KEYS: usize = 2_000;

fn generation(tag: &str) -> Vec<Link> {
    (0..KEYS)
        .map(|i| Link::new(format!("/go/k{i}"), format!("https://{tag}.example/{i}")).unwrap())
        .collect()
}

#[test]
fn readers_never_see_a_torn_table() {
    let table = LinkTable::from_links(generation("a")).unwrap();
    let (a, b) = (
        table.prepare(generation("a")).unwrap(),
        table.prepare(generation("b")).unwrap(),
    );
    drop((a, b));
    let stop = AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (table, stop) = (&table, &stop);
                s.spawn(move || {
                    let mut reader = table.reader();
                    let mut n = 0u64;
                    let mut i = r;
                    while !stop.load(Ordering::Relaxed) {
                        // Each snapshot is all-`a` or all-`b`: check a whole read against one.
                        let snap = table.snapshot();
                        let first = snap.resolve_at("/go/k0", None);
                        let generation_tag =
                            if first.location().to_str().unwrap().starts_with("https://a.") {
                                "a"
                            } else {
                                "b"
                            };
                        for _ in 0..16 {
                            i = (i + 7919) % KEYS;
                            let loc = snap.resolve_at(&format!("/go/k{i}"), None);
                            assert_eq!(
                                loc.location().to_str().unwrap(),
                                format!("https://{generation_tag}.example/{i}")
                            );
                        }
                        // And through the table: every answer is a whole link of either generation.
                        let r = table.resolve(&format!("/go/k{i}"));
                        let l = r.location().to_str().unwrap();
                        assert!(
                            l == format!("https://a.example/{i}")
                                || l == format!("https://b.example/{i}"),
                            "{l}"
                        );
                        assert!(r.matched());
                        // A reader: the link and the version it reports come from one snapshot
                        // (`a` serves odd versions, `b` even ones: see the reload loop below).
                        let b = reader.resolve(&format!("/go/k{i}"));
                        let tag = if b.version() % 2 == 0 { "b" } else { "a" };
                        assert_eq!(b.location(), &format!("https://{tag}.example/{i}"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for round in 0..50 {
            let tag = if round % 2 == 0 { "b" } else { "a" };
            let report = table.reload(generation(tag)).unwrap();
            assert_eq!((report.added, report.removed, report.changed), (0, 0, KEYS));
        }
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert!(reads > 0);
    // Versions: 1 = the first `a`, 2 and 3 went to the two `prepare`s, then 4 + round.
    assert_eq!(table.version(), 53);
}
