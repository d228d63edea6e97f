//! A resolve of a static link allocates nothing (counting global allocator).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use linkgate::{Link, LinkTable};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator; only counts allocations on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn static_resolve_does_not_allocate() {
    let mut links: Vec<Link> = (0..10_000)
        .map(|i| {
            Link::new(
                format!("/go/offer-{i}"),
                format!("https://store.example.com/p/{i}?ref=aff_01"),
            )
            .unwrap()
        })
        .collect();
    links.push(
        Link::builder("/go/tagged", "https://t.example/")
            .tag("campaign", "x")
            .build()
            .unwrap(),
    );
    links.push(
        Link::builder("/go/docs/*", "https://docs.example/")
            .build()
            .unwrap(),
    );
    let table = LinkTable::from_links(links).unwrap();
    let long_key = format!("/go/{}", "k".repeat(200));
    table
        .reload(vec![
            Link::new(&long_key, "https://long.example/").unwrap(),
            Link::new("/go/a", "/a").unwrap(),
        ])
        .unwrap();
    // Made on the reloaded table: its first resolve below follows the rollback.
    let mut reader = table.reader();
    assert_eq!(reader.snapshot().len(), 2);
    table.rollback();
    // Warm up this thread's arc-swap slot.
    let _ = table.resolve("/go/offer-1");

    let paths = [
        "/go/offer-1",
        "/GO/Offer%2D9999/",
        "/go/tagged",
        "/go/docs/a/b",
        "/go/unknown",
        "/go/offer-5?x=1",
    ];
    let n = allocs_during(|| {
        for _ in 0..1000 {
            for p in paths {
                let r = table.resolve(p);
                std::hint::black_box(r.location());
                let uri: http::Uri = http::Uri::from_static("/go/offer-77?utm=1");
                std::hint::black_box(table.resolve_uri(&uri).status());
            }
        }
    });
    assert_eq!(n, 0, "resolve allocated {n} times");
    // The borrowing reader: no allocation either, including when it follows a reload.
    let n = allocs_during(|| {
        for _ in 0..1000 {
            for p in paths {
                let r = reader.resolve(p);
                std::hint::black_box((r.location(), r.key(), r.tags(), r.status()));
            }
        }
    });
    assert_eq!(n, 0, "TableReader::resolve allocated {n} times");
    // A forwarded query builds a new Location: that allocates (the dynamic path), as documented.
    table
        .reload(vec![
            Link::builder("/go/q", "/t?a=1")
                .forward_query(true)
                .build()
                .unwrap(),
        ])
        .unwrap();
    assert!(allocs_during(|| drop(table.resolve("/go/q?b=2"))) > 0);
}
