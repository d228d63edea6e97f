//! linkgate in an axum app: one `.layer(...)`.
//!
//! ```sh
//! cargo run --release --example axum            # then: curl -i http://127.0.0.1:8080/go/summer-deal
//! cargo run --release --example axum -- --help  # flags shared with the hyper and actix examples
//! ```

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::{Router, http::StatusCode, routing::get};
use linkgate::LinkgateLayer;

fn main() -> ExitCode {
    let setup = match common::setup("axum") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = match common::runtime(setup.threads) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let app = Router::new()
        .route(
            "/",
            get(|| async { "linkgate axum example: try /go/summer-deal\n" }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(LinkgateLayer::new(setup.gate.clone()));
    let addr = setup.args.listen;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(common::shutdown_signal())
        .await
    });
    drop(rt);
    common::served(setup, served)
}
