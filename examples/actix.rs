//! linkgate in an actix-web app: one `.wrap(...)`.
//!
//! ```sh
//! cargo run --release --example actix            # then: curl -i http://127.0.0.1:8080/go/summer-deal
//! ```
//!
//! actix-web stops accepting on SIGINT/SIGTERM and finishes in-flight requests (its own signal
//! handling); then the click pipeline is shut down and the final stats printed.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use linkgate::integration::actix::LinkgateMiddleware;

fn main() -> ExitCode {
    let setup = match common::setup("actix") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let gate = setup.gate.clone();
    let addr = setup.args.listen;
    let threads = setup.threads;
    let served = actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .wrap(LinkgateMiddleware::new(gate.clone()))
                .route(
                    "/",
                    web::get().to(|| async {
                        HttpResponse::Ok().body("linkgate actix example: try /go/summer-deal\n")
                    }),
                )
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().body("not found\n")
                }))
        })
        .workers(threads)
        .shutdown_timeout(10)
        .client_request_timeout(Duration::from_secs(5))
        .bind(addr)?
        .run()
        .await
    });
    common::served(setup, served)
}
