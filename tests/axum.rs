//! The tower layer in a real axum server on 127.0.0.1:0, driven by a real HTTP client.

mod support;

use std::net::SocketAddr;

use axum::{Router, http::StatusCode, routing::get};
use linkgate::LinkgateLayer;
use tokio::sync::oneshot;

async fn serve(gate: linkgate::Gate) -> support::Running {
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
    support::conformance_both_policies("axum", serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_reload_while_serving_and_graceful_shutdown() {
    support::reload_then_graceful_shutdown("axum-reload", serve).await;
}
