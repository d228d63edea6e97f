//! linkgate with plain hyper 1 + hyper-util, no framework: the tower layer through
//! `TowerToHyperService` (one service per connection, built with `LinkgateLayer::with_peer`),
//! HTTP/1.1 with keep-alive, graceful shutdown through hyper-util's `GracefulShutdown`.
//!
//! ```sh
//! cargo run --release --example hyper -- --threads 1
//! ```

mod common;

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use linkgate::LinkgateLayer;
use tower::ServiceBuilder;

/// The "app" behind the redirects.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/" => (
            StatusCode::OK,
            "linkgate hyper example: try /go/summer-deal\n",
        ),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    Ok(resp)
}

fn main() -> ExitCode {
    let setup = match common::setup("hyper") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = match common::runtime(setup.threads) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let layer = LinkgateLayer::new(setup.gate.clone());
    let addr = setup.args.listen;
    let served: std::io::Result<()> = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let graceful = GracefulShutdown::new();
        let signal = common::shutdown_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    let (stream, peer) = match conn {
                        Ok(c) => c,
                        Err(e) => { tracing::warn!("accept: {e}"); continue; }
                    };
                    let _ = stream.set_nodelay(true);
                    // One service per connection, which knows its peer address.
                    let svc = ServiceBuilder::new().layer(layer.with_peer(peer)).service_fn(app);
                    let conn = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!("connection: {e}");
                        }
                    });
                }
                _ = &mut signal => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight connections still open after 10 s");
        }
        Ok(())
    });
    drop(rt);
    common::served(setup, served)
}
