//! FileSource + Reloader against the ways files really get replaced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use linkgate::{FileSource, LinkTable, ReloadOutcome, Reloader};

#[derive(Debug, PartialEq)]
enum Seen {
    Reloaded(usize),
    Unchanged,
    Failed(String),
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("linkgate-fs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn map(host: &str, n: usize) -> String {
    let mut s = String::from("map $uri $affiliate_url {\n");
    for i in 0..n {
        s.push_str(&format!("  /go/k{i} https://{host}.example/{i};\n"));
    }
    s.push_str("}\n");
    s
}

fn start(path: &Path, table: &LinkTable) -> (Reloader, Receiver<Seen>) {
    let (tx, rx) = unbounded();
    let source = FileSource::new(path)
        .unwrap()
        .settle(Duration::from_millis(20))
        .poll_interval(Duration::from_millis(20));
    let r = Reloader::builder(table.clone(), source)
        .resync_every(Duration::from_secs(3600))
        .on_reload(move |o| {
            let _ = tx.send(match o {
                ReloadOutcome::Reloaded(r) => Seen::Reloaded(r.links),
                ReloadOutcome::Unchanged => Seen::Unchanged,
                ReloadOutcome::Failed(e) => Seen::Failed(e.to_string()),
                _ => Seen::Unchanged,
            });
        })
        .spawn()
        .unwrap();
    (r, rx)
}

/// Next outcome that is not `Unchanged` (watch events may fire more than once per change).
fn next(rx: &Receiver<Seen>) -> Seen {
    loop {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no reload outcome within 20 s")
        {
            Seen::Unchanged => continue,
            s => return s,
        }
    }
}

fn loc(t: &LinkTable, p: &str) -> String {
    t.resolve(p).location().to_str().unwrap().to_string()
}

#[test]
fn rename_into_place_and_trigger_and_unchanged() {
    let d = dir("rename");
    let path = d.join("links.map");
    std::fs::write(&path, map("a", 10)).unwrap();
    let table = LinkTable::new();
    let (r, rx) = start(&path, &table);
    assert_eq!(next(&rx), Seen::Reloaded(10));
    assert_eq!(loc(&table, "/go/k3"), "https://a.example/3");
    // Deploy-tool style: write elsewhere, rename over.
    let tmp = d.join("links.map.tmp");
    std::fs::write(&tmp, map("b", 12)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(next(&rx), Seen::Reloaded(12));
    assert_eq!(loc(&table, "/go/k11"), "https://b.example/11");
    // An explicit trigger with unchanged content is skipped by the content hash.
    let before = r.stats();
    r.trigger();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        Seen::Unchanged
    );
    let after = r.stats();
    assert_eq!(after.reloads, before.reloads);
    assert!(after.unchanged > before.unchanged);
    assert!(after.last_success.is_some());
    drop(r);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn truncated_half_written_file_is_never_served() {
    let d = dir("trunc");
    let path = d.join("links.map");
    let full = map("a", 50);
    std::fs::write(&path, &full).unwrap();
    let table = LinkTable::builder().max_removed_fraction(0.5).build();
    let (r, rx) = start(&path, &table);
    assert_eq!(next(&rx), Seen::Reloaded(50));
    // In-place truncate-then-write, with the writer stalled mid-file (mid-line).
    let new = map("b", 50);
    let cut = new.len() / 2 + 7;
    std::fs::write(&path, &new[..cut]).unwrap();
    match next(&rx) {
        Seen::Failed(e) => assert!(e.contains("links.map"), "{e}"),
        other => panic!("half-written file was not rejected: {other:?}"),
    }
    assert_eq!(
        loc(&table, "/go/k49"),
        "https://a.example/49",
        "old table keeps serving"
    );
    assert_eq!(r.stats().reload_failures, 1);
    // A file cut at a line boundary *parses*: the removal guard refuses it.
    let lines: Vec<&str> = new.lines().collect();
    std::fs::write(&path, format!("{}\n}}\n", lines[..10].join("\n"))).unwrap();
    match next(&rx) {
        Seen::Failed(e) => assert!(e.contains("refusing reload"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(table.len(), 50);
    // The writer finishes: the new table goes live.
    std::fs::write(&path, &new).unwrap();
    assert_eq!(next(&rx), Seen::Reloaded(50));
    assert_eq!(loc(&table, "/go/k49"), "https://b.example/49");
    drop(r);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn deleted_file_keeps_serving_and_comes_back() {
    let d = dir("delete");
    let path = d.join("links.csv");
    std::fs::write(&path, "key,target\n/go/a,https://a.example/\n").unwrap();
    let table = LinkTable::new();
    let (r, rx) = start(&path, &table);
    assert_eq!(next(&rx), Seen::Reloaded(1));
    std::fs::remove_file(&path).unwrap();
    match next(&rx) {
        Seen::Failed(e) => assert!(e.contains("No such file"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(loc(&table, "/go/a"), "https://a.example/");
    assert!(r.stats().last_error.unwrap().contains("links.csv"));
    std::fs::write(&path, "key,target\n/go/a,https://a2.example/\n").unwrap();
    assert_eq!(next(&rx), Seen::Reloaded(1));
    assert_eq!(loc(&table, "/go/a"), "https://a2.example/");
    drop(r);
    std::fs::remove_dir_all(d).unwrap();
}

#[cfg(unix)]
#[test]
fn kubernetes_configmap_symlink_flip() {
    use std::os::unix::fs::symlink;
    // ConfigMap layout: links.json -> ..data/links.json, ..data -> ..2026_v1
    let d = dir("k8s");
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::write(
        d.join("..v1/links.json"),
        r#"[{"key":"/go/a","target":"https://v1.example/"}]"#,
    )
    .unwrap();
    symlink("..v1", d.join("..data")).unwrap();
    symlink("..data/links.json", d.join("links.json")).unwrap();
    let table = LinkTable::new();
    let (r, rx) = start(&d.join("links.json"), &table);
    assert_eq!(next(&rx), Seen::Reloaded(1));
    assert_eq!(loc(&table, "/go/a"), "https://v1.example/");
    // The kubelet writes ..v2, points a temp link at it and renames it over ..data.
    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(
        d.join("..v2/links.json"),
        r#"[{"key":"/go/a","target":"https://v2.example/"}]"#,
    )
    .unwrap();
    symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..v1")).unwrap();
    assert_eq!(next(&rx), Seen::Reloaded(1));
    assert_eq!(loc(&table, "/go/a"), "https://v2.example/");
    drop(r);
    std::fs::remove_dir_all(d).unwrap();
}
