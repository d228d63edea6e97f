//! The tower layer in plain hyper 1 (hyper-util's TowerToHyperService), on 127.0.0.1:0.

mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use linkgate::{LinkgateLayer, PeerAddr};
use tokio::sync::oneshot;
use tower::ServiceBuilder;

async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/" => (StatusCode::OK, "linkgate hyper example\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    Ok(r)
}

async fn serve(gate: linkgate::Gate) -> support::Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = oneshot::channel::<()>();
    let h = tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    let (stream, peer) = conn.unwrap();
                    let svc = ServiceBuilder::new()
                        .map_request(move |mut req: Request<Incoming>| {
                            req.extensions_mut().insert(PeerAddr(peer));
                            req
                        })
                        .layer(LinkgateLayer::new(gate.clone()))
                        .service_fn(app);
                    let conn = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move { let _ = conn.await; });
                }
                _ = &mut rx => break,
            }
        }
        drop(listener);
        graceful.shutdown().await;
    });
    (base, tx, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_conformance_both_unknown_policies() {
    support::conformance_both_policies("hyper", serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_reload_while_serving_and_graceful_shutdown() {
    support::reload_then_graceful_shutdown("hyper-reload", serve).await;
}
