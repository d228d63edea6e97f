//! actix-web integration (feature `actix`): the [`LinkgateMiddleware`] transform and the
//! [`LinkgateService`] it wraps around your app.
//!
//! Same behaviour as the tower layer (`LinkgateLayer`, feature `tower`), for every request:
//! - path under the gate's prefix, GET/HEAD, a link matches → the redirect (status, `Location`,
//!   `Cache-Control`, empty body; HEAD the same, no body), click recorded;
//! - under the prefix, no link matches → the table's default redirect, or the inner service with
//!   [`UnknownPolicy::Pass`](crate::UnknownPolicy::Pass) (your app's 404);
//! - under the prefix, another method → the inner service, or `405` with `Allow: GET, HEAD` with
//!   [`MethodPolicy::NotAllowed`](crate::MethodPolicy::NotAllowed);
//! - anything else → the inner service, untouched (no copy, no conversion).
//!
//! actix-web 4 is built on `http` 0.2 while linkgate speaks `http` 1: for a request under the
//! prefix the method, URI (path and query) and headers are copied once, at the boundary, into an
//! `http` 1 [`Parts`](http::request::Parts) for [`Gate::handle`]; the gate's answer is copied
//! back (status as a number, header values as bytes). No actix type reaches the core.
//!
//! The client address is the connection's peer ([`ServiceRequest::peer_addr`]);
//! `Forwarded`/`X-Forwarded-For` count only from trusted proxies
//! ([`GateBuilder::trusted_proxies`](crate::GateBuilder::trusted_proxies)).

use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use futures_util::future::{Either, MapOk, Ready, TryFutureExt, ready};

use crate::gate::{Decision, Gate};

/// actix-web middleware that serves linkgate redirects in front of your app; the same behaviour
/// as the tower layer.
///
/// Requests outside the gate's prefix go to the app untouched. Under the prefix, the request's
/// method, URI and headers are copied once into an `http` 1 request head (actix-web 4 uses
/// `http` 0.2) and handed to [`Gate::handle`]; see the [module docs](self) for the full
/// behaviour.
///
/// ```no_run
/// use actix_web::{App, HttpServer, web};
/// use linkgate::{ClickRecorder, Gate, JsonLinesSink, Link, LinkTable, LinkgateMiddleware};
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let table = LinkTable::from_links(vec![
///         Link::new("/go/summer-deal", "https://store.com/p/123?ref=aff_01").unwrap(),
///     ])
///     .unwrap();
///     let (recorder, guard) = ClickRecorder::builder(JsonLinesSink::open("clicks.jsonl")?).spawn()?;
///     let gate = Gate::builder(table, recorder).prefix("/go/").build();
///
///     HttpServer::new(move || {
///         App::new()
///             .wrap(LinkgateMiddleware::new(gate.clone()))
///             .route("/", web::get().to(|| async { "home" }))
///     })
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await?;
///     guard.shutdown(std::time::Duration::from_secs(5)); // flush the clicks
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct LinkgateMiddleware {
    gate: Gate,
}

impl LinkgateMiddleware {
    /// A middleware around `gate`.
    pub fn new(gate: Gate) -> Self {
        LinkgateMiddleware { gate }
    }
}

impl<S, B> Transform<S, ServiceRequest> for LinkgateMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = S::Error;
    type Transform = LinkgateService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(LinkgateService {
            gate: self.gate.clone(),
            service,
        }))
    }
}

/// The service made by [`LinkgateMiddleware`]: answers redirects, passes everything else to `S`.
#[derive(Debug, Clone)]
pub struct LinkgateService<S> {
    gate: Gate,
    service: S,
}

/// Maps the inner service's response into the left side of the body.
type IntoLeft<B> = fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>;

impl<S, B> Service<ServiceRequest> for LinkgateService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = S::Error;
    type Future = Either<MapOk<S::Future, IntoLeft<B>>, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // Cheap pre-check on the raw path: most app traffic is never copied or converted.
        if self.gate.covers(req.path()) {
            let decision = match to_parts(&req) {
                Some(parts) => self.gate.handle(&parts, req.peer_addr().map(|a| a.ip())),
                // Not representable as an `http` 1 request head: not ours.
                None => Decision::Pass,
            };
            if let Some(resp) = decision.into_response(()) {
                let resp = req.into_response(to_actix(resp)).map_into_right_body();
                return Either::Right(ready(Ok(resp)));
            }
        }
        let into_left: IntoLeft<B> = ServiceResponse::map_into_left_body;
        Either::Left(self.service.call(req).map_ok(into_left))
    }
}

/// The request head as `http` 1 `Parts`: method, path and query, headers (one copy).
fn to_parts(req: &ServiceRequest) -> Option<http::request::Parts> {
    let method = http::Method::from_bytes(req.method().as_str().as_bytes()).ok()?;
    let uri = req.uri();
    // Only the path and query matter to the gate (an absolute-form URI keeps them too).
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let (mut parts, ()) = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .body(())
        .ok()?
        .into_parts();
    let src = req.headers();
    parts.headers.reserve(src.len());
    for (name, value) in src.iter() {
        // Both sides validate names and values with the same rules; skip anything that differs.
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            parts.headers.append(n, v);
        }
    }
    Some(parts)
}

/// The gate's `http` 1 response as an actix response with an empty body.
fn to_actix(resp: http::Response<()>) -> HttpResponse<BoxBody> {
    let status =
        StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::new(status);
    let headers = out.headers_mut();
    for (name, value) in resp.headers() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    out
}
