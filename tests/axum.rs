//! The tower layer in a real axum server on 127.0.0.1:0, driven by a real HTTP client.

mod support;

use std::net::SocketAddr;

use axum::{Router, http::StatusCode, routing::get};
use linkgate::{LinkgateLayer, UnknownPolicy};
use tokio::sync::oneshot;

async fn serve(gate: linkgate::Gate) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/", get(|| async { "linkgate axum example\n" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(LinkgateLayer::new(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let h = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (base, tx, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_conformance_both_unknown_policies() {
    for unknown in [UnknownPolicy::Redirect, UnknownPolicy::Pass] {
        let p = support::pipeline("axum", unknown);
        let (base, stop, h) = serve(p.gate.clone()).await;
        let (n, served) = support::conformance(&base, unknown).await;
        stop.send(()).unwrap();
        h.await.unwrap();
        let (stats, lines) = p.finish();
        assert_eq!((stats.recorded, stats.delivered), (n, n));
        support::check_clicks(&lines, &served);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_reload_while_serving_and_graceful_shutdown() {
    let p = support::pipeline("axum-reload", UnknownPolicy::Redirect);
    let (base, stop, h) = serve(p.gate.clone()).await;
    let requests = support::reload_under_load(&base, &p.table, 50).await;
    assert!(requests > 0);
    // Shut down while a burst is in flight: every request that got its 302 left its click.
    let burst = support::burst(&base, 200).await;
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
        "{} clicks for {} + {ok} redirects",
        lines.len(),
        requests
    );
}
