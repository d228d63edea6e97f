//! Shared by the HTTP integration tests: the links, the click pipeline, and one conformance
//! suite every server (axum, hyper) must pass.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use linkgate::{
    ClickRecorder, DrainGuard, Gate, JsonLinesSink, Link, LinkTable, Stats, UnknownPolicy,
};

pub fn links(generation: &str) -> Vec<Link> {
    vec![
        Link::new("/go/summer-deal", "https://store.com/p/123?ref=aff_01").unwrap(),
        Link::builder("/go/q", "https://store.com/q?ref=aff_01")
            .forward_query(true)
            .build()
            .unwrap(),
        Link::new("/go/t", "https://store.com/t?sub={click_id}").unwrap(),
        Link::new("/go/gen", format!("https://{generation}.example/")).unwrap(),
    ]
}

pub struct Pipeline {
    pub table: LinkTable,
    pub gate: Gate,
    pub guard: DrainGuard,
    pub clicks: PathBuf,
    pub dir: PathBuf,
}

pub fn pipeline(name: &str, unknown: UnknownPolicy) -> Pipeline {
    let dir = std::env::temp_dir().join(format!(
        "linkgate-{name}-{}-{:?}",
        std::process::id(),
        unknown
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let clicks = dir.join("clicks.jsonl");
    let table = LinkTable::from_links(links("a")).unwrap();
    let (rec, guard) = ClickRecorder::builder(JsonLinesSink::open(&clicks).unwrap())
        .spawn()
        .unwrap();
    let gate = Gate::builder(table.clone(), rec)
        .prefix("/go/")
        .unknown(unknown)
        .build();
    Pipeline {
        table,
        gate,
        guard,
        clicks,
        dir,
    }
}

impl Pipeline {
    /// Shuts the pipeline down and returns the stats and the click lines.
    pub fn finish(self) -> (Stats, Vec<serde_json::Value>) {
        drop(self.gate);
        let stats = self.guard.shutdown(Duration::from_secs(10));
        let text = std::fs::read_to_string(&self.clicks).unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let _ = std::fs::remove_dir_all(&self.dir);
        (stats, lines)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, url: String) -> (u16, Option<String>, String) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, loc, r.text().await.unwrap())
}

/// The behaviour every integration must have. Returns how many redirects it was served (each
/// must have left exactly one click).
pub async fn conformance(base: &str, unknown: UnknownPolicy) -> (u64, Vec<(String, String)>) {
    let c = client();
    let mut served = Vec::new();
    let mut expect = |path: &str, loc: &str| served.push((path.to_string(), loc.to_string()));
    for path in [
        "/go/summer-deal",
        "/GO/Summer%2DDeal",
        "/go/summer-deal/",
        "/go/summer-deal?ref=attacker",
    ] {
        let (s, l, _) = get(&c, format!("{base}{path}")).await;
        assert_eq!(
            (s, l.as_deref()),
            (302, Some("https://store.com/p/123?ref=aff_01")),
            "{path}"
        );
        expect("/go/summer-deal", "https://store.com/p/123?ref=aff_01");
    }
    let (s, l, _) = get(&c, format!("{base}/go/q?ref=evil&utm_source=x")).await;
    assert_eq!(
        (s, l.as_deref()),
        (302, Some("https://store.com/q?ref=aff_01&utm_source=x"))
    );
    expect("/go/q", "https://store.com/q?ref=aff_01&utm_source=x");
    let (s, l, _) = get(&c, format!("{base}/go/t")).await;
    assert_eq!(s, 302);
    let l = l.unwrap();
    assert!(
        l.starts_with("https://store.com/t?sub=")
            && l.len() == "https://store.com/t?sub=".len() + 26,
        "{l}"
    );
    expect("/go/t", &l);
    // Unknown key under the prefix.
    let (s, l, body) = get(&c, format!("{base}/go/nope")).await;
    match unknown {
        UnknownPolicy::Redirect => {
            assert_eq!((s, l.as_deref()), (302, Some("/")));
            expect("/go/nope", "/");
        }
        _ => assert_eq!((s, l, body.as_str()), (404, None, "not found\n")),
    }
    // Outside the prefix: the app.
    let (s, l, body) = get(&c, format!("{base}/")).await;
    assert_eq!((s, l), (200, None));
    assert!(body.contains("example"), "{body}");
    assert_eq!(get(&c, format!("{base}/elsewhere")).await.0, 404);
    // HEAD: same status and Location, no body.
    let r = c
        .head(format!("{base}/go/summer-deal"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(
        r.headers()["location"],
        "https://store.com/p/123?ref=aff_01"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.bytes().await.unwrap().is_empty());
    expect("/go/summer-deal", "https://store.com/p/123?ref=aff_01");
    // Other methods pass through to the app (which has no POST route under /go/).
    let r = c
        .post(format!("{base}/go/summer-deal"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status().as_u16(), 302);
    (served.len() as u64, served)
}

/// Every served redirect left exactly one click with the right fields.
pub fn check_clicks(lines: &[serde_json::Value], served: &[(String, String)]) {
    assert_eq!(lines.len(), served.len(), "one click per redirect");
    for (line, (key, loc)) in lines.iter().zip(served) {
        assert_eq!(line["key"], key.as_str());
        assert_eq!(line["location"], loc.as_str());
        assert_eq!(line["status"], 302);
        assert_eq!(line["matched"], key != "/go/nope");
        assert_eq!(line["ip"], "127.0.0.0");
        if key == "/go/t" {
            assert!(
                loc.ends_with(line["click_id"].as_str().unwrap()),
                "template id == click id"
            );
        }
    }
}

/// Requests from `workers` tasks while the table flips between two generations `reloads` times;
/// every answer is one whole generation's target.
pub async fn reload_under_load(base: &str, table: &LinkTable, reloads: usize) -> u64 {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (base, stop) = (base.to_string(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, l, _) = get(&c, format!("{base}/go/gen")).await;
                assert_eq!(s, 302);
                let l = l.unwrap();
                assert!(
                    l == "https://a.example/" || l == "https://b.example/",
                    "{l}"
                );
                n += 1;
            }
            n
        }));
    }
    let c = client();
    for i in 0..reloads {
        let g = if i % 2 == 0 { "b" } else { "a" };
        table.reload(links(g)).unwrap();
        // Pace the reloads with a request of our own: it must see the generation just published.
        let (_, l, _) = get(&c, format!("{base}/go/gen")).await;
        assert_eq!(l.unwrap(), format!("https://{g}.example/"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

/// Fires `n` concurrent requests and returns how many got a 302.
pub async fn burst(base: &str, n: usize) -> tokio::task::JoinHandle<u64> {
    let base = base.to_string();
    tokio::spawn(async move {
        let c = client();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (c, url) = (c.clone(), format!("{base}/go/summer-deal"));
            set.spawn(async move { matches!(c.get(url).send().await, Ok(r) if r.status() == 302) });
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            ok += r.unwrap() as u64;
        }
        ok
    })
}

/// A running server: its base URL, the switch that starts its graceful shutdown, its task.
pub type Running = (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// The conformance suite under both unknown-link policies against servers made by `serve`.
pub async fn conformance_both_policies<F, Fut>(name: &str, serve: F)
where
    F: Fn(Gate) -> Fut,
    Fut: Future<Output = Running>,
{
    for unknown in [UnknownPolicy::Redirect, UnknownPolicy::Pass] {
        let p = pipeline(name, unknown);
        let (base, stop, h) = serve(p.gate.clone()).await;
        let (n, served) = conformance(&base, unknown).await;
        stop.send(()).unwrap();
        h.await.unwrap();
        let (stats, lines) = p.finish();
        assert_eq!((stats.recorded, stats.delivered), (n, n));
        check_clicks(&lines, &served);
    }
}

/// Reloads while requests run, then a graceful shutdown with a burst in flight: every request
/// that got its 302 left its click, and every click was written.
pub async fn reload_then_graceful_shutdown<F, Fut>(name: &str, serve: F)
where
    F: Fn(Gate) -> Fut,
    Fut: Future<Output = Running>,
{
    let p = pipeline(name, UnknownPolicy::Redirect);
    let (base, stop, h) = serve(p.gate.clone()).await;
    let requests = reload_under_load(&base, &p.table, 50).await;
    assert!(requests > 0);
    let burst = burst(&base, 200).await;
    tokio::task::yield_now().await;
    stop.send(()).unwrap();
    let ok = burst.await.unwrap();
    h.await.unwrap();
    let (stats, lines) = p.finish();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.delivered, stats.recorded);
    assert_eq!(lines.len() as u64, stats.recorded);
    assert!(
        lines.len() as u64 >= ok + requests,
        "{} clicks for {requests} + {ok} redirects",
        lines.len()
    );
}
