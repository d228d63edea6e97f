//! A real HTTP webhook receiver on 127.0.0.1 (hyper 1 on its own tokio runtime) for the
//! `WebhookSink` tests and bench. It verifies every request's signature with the crate's
//! `verify_signature`, answers with a status chosen per request, and records what it accepted.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use linkgate::{BATCH_ID_HEADER, SIGNATURE_HEADER, verify_signature};

/// What to answer to request number `n` (0-based): a status, and an optional delay first.
pub type Respond = dyn Fn(u64) -> (u16, Option<Duration>) + Send + Sync;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub status: u16,
    pub batch_id: String,
    pub signature: String,
    pub content_type: String,
    pub count_header: usize,
    pub body: Bytes,
}

pub struct State {
    secret: Vec<u8>,
    respond: Box<Respond>,
    parse: bool,
    pub requests: AtomicU64,
    pub bad_signatures: AtomicU64,
    /// Clicks (counted from `X-Linkgate-Click-Count`) in requests answered 2xx.
    pub accepted_clicks: AtomicU64,
    /// `click_id`s of the clicks in requests answered 2xx (when parsing), duplicates kept.
    pub accepted_ids: Mutex<Vec<String>>,
    /// Every request (body kept only when parsing).
    pub seen: Mutex<Vec<Seen>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver; `parse` = parse each accepted body as JSON and collect the click ids
    /// (off in the bench, which counts clicks from the header).
    pub fn start(
        secret: &[u8],
        parse: bool,
        respond: impl Fn(u64) -> (u16, Option<Duration>) + Send + Sync + 'static,
    ) -> Receiver {
        let state = Arc::new(State {
            secret: secret.to_vec(),
            respond: Box::new(respond),
            parse,
            requests: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            accepted_clicks: AtomicU64::new(0),
            accepted_ids: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        let (stream, _) = tokio::select! {
                            r = listener.accept() => r.unwrap(),
                            _ = &mut stop_rx => break,
                        };
                        let st = st.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req| handle(st.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .unwrap();
        Receiver {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/clicks", self.addr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn handle(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let n = st.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let signature = header(SIGNATURE_HEADER);
    let batch_id = header(BATCH_ID_HEADER);
    let content_type = header("content-type");
    let count_header: usize = header("x-linkgate-click-count").parse().unwrap_or(0);
    let body = req.into_body().collect().await?.to_bytes();
    let reply = |status: u16, text: &'static str| {
        Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(text.as_bytes())))
            .unwrap())
    };
    if verify_signature(
        &st.secret,
        &signature,
        &body,
        now_secs(),
        Duration::from_secs(300),
    )
    .is_err()
    {
        st.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return reply(401, "bad signature");
    }
    let (status, delay) = (st.respond)(n);
    if (200..300).contains(&status) {
        st.accepted_clicks
            .fetch_add(count_header as u64, Ordering::SeqCst);
        if st.parse {
            let clicks: Vec<serde_json::Value> =
                serde_json::from_slice(&body).expect("the body is a JSON array of clicks");
            assert_eq!(clicks.len(), count_header, "X-Linkgate-Click-Count");
            let mut ids = st.accepted_ids.lock().unwrap();
            ids.extend(
                clicks
                    .iter()
                    .map(|c| c["click_id"].as_str().unwrap().to_string()),
            );
        }
    }
    st.seen.lock().unwrap().push(Seen {
        status,
        batch_id,
        signature,
        content_type,
        count_header,
        body: if st.parse { body } else { Bytes::new() },
    });
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match status {
        200..=299 => reply(status, "ok"),
        400 => reply(400, "bad request: schema v2 expected\r\n(see docs)"),
        _ => reply(status, "try later"),
    }
}
