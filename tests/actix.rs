//! The actix-web middleware against a real in-process actix-web server, driven over TCP with
//! reqwest; clicks go through a real pipeline into a JSON-lines file that is checked afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use linkgate::{
    ClickRecorder, DefaultRedirect, DrainGuard, Gate, IpPolicy, JsonLinesSink, Link, LinkTable,
    LinkgateMiddleware, MethodPolicy, UnknownPolicy,
};
use reqwest::StatusCode;
use reqwest::header::{ALLOW, CACHE_CONTROL, LOCATION};

/// A click as found in the file: (key, location, status, matched).
type Expected = (String, String, u64, bool);

fn table() -> LinkTable {
    let table = LinkTable::builder()
        .default_redirect(DefaultRedirect::new("https://store.com/").unwrap())
        .build();
    table
        .reload(vec![
            Link::new("/go/summer-deal", "https://store.com/p/123?ref=aff_01").unwrap(),
            Link::builder("/go/shoe", "https://store.com/p/9?ref=aff_01")
                .forward_query(true)
                .build()
                .unwrap(),
            Link::new("/go/track", "https://t.example/c?sub={click_id}").unwrap(),
            Link::builder("/go/old", "https://store.com/new")
                .status(301)
                .build()
                .unwrap(),
        ])
        .unwrap();
    table
}

fn click_file(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "linkgate-actix-{name}-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// A gate over `table()` recording into `path`.
fn gate(
    path: &Path,
    configure: impl FnOnce(linkgate::GateBuilder) -> linkgate::GateBuilder,
) -> (Gate, DrainGuard) {
    let (recorder, guard) = ClickRecorder::builder(JsonLinesSink::open(path).unwrap())
        .spawn()
        .unwrap();
    let builder = Gate::builder(table(), recorder)
        .prefix("/go/")
        .ip_policy(IpPolicy::Raw);
    (configure(builder).build(), guard)
}

struct Server {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts the app behind the middleware on its own actix system; returns once it is bound.
    fn start(gate: Gate) -> Server {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(LinkgateMiddleware::new(gate.clone()))
                        .route("/about", web::get().to(|| async { "about page" }))
                        .route("/go/{key}", web::post().to(|| async { "app post" }))
                        .default_service(web::to(|| async {
                            HttpResponse::NotFound().body("app 404")
                        }))
                })
                .workers(1)
                .bind(("127.0.0.1", 0))?;
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle())).unwrap();
                server.await
            })
        });
        let (addr, handle) = rx.recv().expect("server failed to bind");
        Server {
            addr,
            handle,
            thread,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        self.thread.join().unwrap().unwrap();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> &str {
    r.headers()
        .get(LOCATION)
        .expect("no Location")
        .to_str()
        .unwrap()
}

/// Shuts the pipeline down (flushing) and checks one line per expected click, in order.
fn check_clicks(guard: DrainGuard, path: &Path, expected: &[Expected]) -> Vec<serde_json::Value> {
    let stats = guard.shutdown(Duration::from_secs(5));
    assert_eq!(stats.delivered, expected.len() as u64, "{stats:?}");
    let text = std::fs::read_to_string(path).unwrap();
    let clicks: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(clicks.len(), expected.len(), "{text}");
    for (c, (key, loc, status, matched)) in clicks.iter().zip(expected) {
        assert_eq!(c["key"], key.as_str(), "{c}");
        assert_eq!(c["location"], loc.as_str(), "{c}");
        assert_eq!(c["status"], *status, "{c}");
        assert_eq!(c["matched"], *matched, "{c}");
    }
    let _ = std::fs::remove_file(path);
    clicks
}

#[tokio::test]
async fn redirects_record_clicks_and_pass_the_rest() {
    let path = click_file("redirect");
    let (gate, guard) = gate(&path, |b| b);
    let server = Server::start(gate);
    let http = client();
    let mut expected: Vec<Expected> = Vec::new();
    let mut served = |key: &str, loc: &str, status: u64, matched: bool| {
        expected.push((key.into(), loc.into(), status, matched));
    };

    // A matched key: status, exact Location, Cache-Control, empty body.
    let r = http
        .get(server.url("/go/summer-deal"))
        .header("user-agent", "actix-test/1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "https://store.com/p/123?ref=aff_01");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert!(r.bytes().await.unwrap().is_empty());
    served(
        "/go/summer-deal",
        "https://store.com/p/123?ref=aff_01",
        302,
        true,
    );

    // Case and percent-escape variants, trailing slash; the prefix ignores case too.
    for p in [
        "/GO/Summer%2DDeal",
        "/go/SUMMER-DEAL/",
        "/Go/summer%2ddeal?x=1",
    ] {
        let r = http.get(server.url(p)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{p}");
        assert_eq!(location(&r), "https://store.com/p/123?ref=aff_01", "{p}");
        served(
            "/go/summer-deal",
            "https://store.com/p/123?ref=aff_01",
            302,
            true,
        );
    }

    // A permanent redirect carries a cache lifetime.
    let r = http.get(server.url("/go/old")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(&r), "https://store.com/new");
    assert_eq!(r.headers()[CACHE_CONTROL], "max-age=86400");
    served("/go/old", "https://store.com/new", 301, true);

    // Query forwarding: the target's own parameter wins.
    let r = http
        .get(server.url("/go/shoe?ref=attacker&utm_source=mail"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let shoe = "https://store.com/p/9?ref=aff_01&utm_source=mail";
    assert_eq!(location(&r), shoe);
    served("/go/shoe", shoe, 302, true);

    // A `{click_id}` template: the Location carries the recorded click's id.
    let r = http.get(server.url("/go/track")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let tracked = location(&r).to_string();
    let click_id = tracked
        .strip_prefix("https://t.example/c?sub=")
        .expect("template expanded")
        .to_string();
    assert!(!click_id.is_empty() && !click_id.contains('{'), "{tracked}");
    served("/go/track", &tracked, 302, true);

    // HEAD: same status and Location, no body.
    let r = http
        .head(server.url("/go/summer-deal"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "https://store.com/p/123?ref=aff_01");
    assert!(r.bytes().await.unwrap().is_empty());
    served(
        "/go/summer-deal",
        "https://store.com/p/123?ref=aff_01",
        302,
        true,
    );

    // Unknown key under UnknownPolicy::Redirect: the table's default, recorded as unmatched.
    let r = http.get(server.url("/go/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "https://store.com/");
    served("/go/nope", "https://store.com/", 302, false);

    // Outside the prefix: the app, untouched.
    let r = http.get(server.url("/about")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(LOCATION).is_none());
    assert_eq!(r.text().await.unwrap(), "about page");
    for p in ["/gone", "/go", "/summer-deal"] {
        let r = http.get(server.url(p)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
        assert_eq!(r.text().await.unwrap(), "app 404", "{p}");
    }

    // Another method under the prefix (MethodPolicy::Pass): the app answers.
    let r = http
        .post(server.url("/go/summer-deal"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "app post");

    drop(http); // close the pooled keep-alive connections so the graceful stop is immediate
    server.stop().await;
    let clicks = check_clicks(guard, &path, &expected);
    assert_eq!(clicks[0]["ip"], "127.0.0.1");
    assert_eq!(clicks[0]["user_agent"], "actix-test/1");
    assert_eq!(clicks[5]["query"], "ref=attacker&utm_source=mail");
    assert_eq!(clicks[6]["click_id"], click_id.as_str());
}

#[tokio::test]
async fn pass_and_not_allowed_policies() {
    let path = click_file("pass");
    let (gate, guard) = gate(&path, |b| {
        b.unknown(UnknownPolicy::Pass)
            .methods(MethodPolicy::NotAllowed)
            .trusted_proxies(["127.0.0.1".parse().unwrap()])
    });
    let server = Server::start(gate);
    let http = client();

    // Unknown key under UnknownPolicy::Pass: the app's 404, nothing recorded.
    let r = http.get(server.url("/go/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().get(LOCATION).is_none());
    assert_eq!(r.text().await.unwrap(), "app 404");

    // Known keys still redirect; the peer is a trusted proxy, so X-Forwarded-For names the client.
    let r = http
        .get(server.url("/GO/Summer%2DDeal"))
        .header("x-forwarded-for", "198.51.100.4, 203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "https://store.com/p/123?ref=aff_01");

    // Another method under the prefix (MethodPolicy::NotAllowed): 405 with Allow, app not called.
    let r = http
        .post(server.url("/go/summer-deal"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[ALLOW], "GET, HEAD");
    assert!(r.bytes().await.unwrap().is_empty());

    // Outside the prefix: the app.
    let r = http.get(server.url("/about")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "about page");

    drop(http); // close the pooled keep-alive connections so the graceful stop is immediate
    server.stop().await;
    let clicks = check_clicks(
        guard,
        &path,
        &[(
            "/go/summer-deal".into(),
            "https://store.com/p/123?ref=aff_01".into(),
            302,
            true,
        )],
    );
    assert_eq!(clicks[0]["ip"], "203.0.113.7");
}
