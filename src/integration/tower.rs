//! tower integration (feature `tower`): [`LinkgateLayer`] and the [`LinkgateService`] it makes.
//!
//! Works in axum as `Router::layer(LinkgateLayer::new(gate))` and in plain hyper 1 through
//! `hyper_util::service::TowerToHyperService`.
//!
//! Behaviour, for every request:
//! - path under the gate's prefix, GET/HEAD, a link matches → the redirect (status, `Location`,
//!   `Cache-Control`, empty body; HEAD the same, no body), click recorded;
//! - under the prefix, no link matches → the table's default redirect, or the inner service with
//!   [`UnknownPolicy::Pass`](crate::UnknownPolicy::Pass) (your app's 404);
//! - under the prefix, another method → the inner service, or `405` with
//!   [`MethodPolicy::NotAllowed`](crate::MethodPolicy::NotAllowed);
//! - anything else → the inner service, untouched.
//!
//! The client address is the connection's peer, read from the request extensions: axum's
//! `ConnectInfo<SocketAddr>` (feature `axum`; serve with `into_make_service_with_connect_info`),
//! a [`PeerAddr`], or a bare `SocketAddr`. `Forwarded`/`X-Forwarded-For` count only from trusted
//! proxies ([`GateBuilder::trusted_proxies`](crate::GateBuilder::trusted_proxies)).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::gate::{Decision, Gate};

/// The peer address of a connection, for servers that are not axum: insert it into each
/// request's extensions (`req.extensions_mut().insert(PeerAddr(addr))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A `tower::Layer` that serves linkgate redirects in front of an inner service.
///
/// ```no_run
/// # async fn run(gate: linkgate::Gate) -> std::io::Result<()> {
/// use axum::{Router, routing::get};
/// let app = Router::new()
///     .route("/", get(|| async { "home" }))
///     .layer(linkgate::LinkgateLayer::new(gate));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LinkgateLayer {
    gate: Gate,
    peer: Option<SocketAddr>,
}

impl LinkgateLayer {
    /// A layer around `gate`.
    pub fn new(gate: Gate) -> Self {
        LinkgateLayer { gate, peer: None }
    }

    /// The same layer for one connection whose peer is `peer` (plain hyper: build the service
    /// per connection with this instead of inserting a [`PeerAddr`] into every request, which
    /// allocates the request's extension map). An address in the request's extensions still
    /// wins.
    pub fn with_peer(&self, peer: SocketAddr) -> Self {
        LinkgateLayer {
            gate: self.gate.clone(),
            peer: Some(peer),
        }
    }
}

impl<S> Layer<S> for LinkgateLayer {
    type Service = LinkgateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LinkgateService {
            gate: self.gate.clone(),
            peer: self.peer,
            inner,
        }
    }
}

/// The service made by [`LinkgateLayer`].
#[derive(Debug, Clone)]
pub struct LinkgateService<S> {
    gate: Gate,
    peer: Option<SocketAddr>,
    inner: S,
}

impl<S> LinkgateService<S> {
    /// Wraps `inner` directly (without a layer).
    pub fn new(gate: Gate, inner: S) -> Self {
        LinkgateService {
            gate,
            peer: None,
            inner,
        }
    }
}

fn peer<B>(req: &Request<B>) -> Option<IpAddr> {
    let ext = req.extensions();
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    ext.get::<PeerAddr>()
        .map(|p| p.0.ip())
        .or_else(|| ext.get::<SocketAddr>().map(SocketAddr::ip))
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LinkgateService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Cheap pre-check: most app traffic never builds a decision.
        if !self.gate.covers(req.uri().path()) {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let peer = peer(&req).or(self.peer.map(|p| p.ip()));
        let (parts, body) = req.into_parts();
        match self.gate.handle(&parts, peer) {
            Decision::Pass => {
                ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
            }
            d => ResponseFuture::ready(d.into_response(ResBody::default())),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`LinkgateService`]: the inner service's, or a ready redirect.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] fut: F },
        Ready { resp: Option<Response<B>> },
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn inner(fut: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner { fut },
        }
    }
    fn ready(resp: Option<Response<B>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready { resp },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx),
            KindProj::Ready { resp } => match resp.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // `Decision::into_response` answers for every non-Pass decision; polled twice.
                None => Poll::Pending,
            },
        }
    }
}
