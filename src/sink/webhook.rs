//! `WebhookSink`: each batch POSTed as one signed JSON array.

use std::io::Read;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::redact::{redact_text, redact_url};
use super::signature::{SIGNATURE_HEADER, sign};
use super::{ClickSink, SinkError};
use crate::click::Click;

/// The request header naming a batch: the same value on every retry of the same batch.
pub const BATCH_ID_HEADER: &str = "X-Linkgate-Batch-Id";

/// Longest excerpt of a refusing response's body kept in the error, in characters.
const EXCERPT_CHARS: usize = 200;

/// POSTs each batch of clicks to an HTTP endpoint as one JSON array, signed with HMAC-SHA256.
///
/// # The request
/// ```text
/// POST <url>
/// Content-Type: application/json
/// X-Linkgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
/// X-Linkgate-Batch-Id: <32 hex digits>
/// X-Linkgate-Click-Count: <clicks in the body>
///
/// [{"ts":"...","click_id":"...",...},{...}]
/// ```
/// The body is `[` + the clicks' [`Click::write_json`] objects joined by `,` + `]`, in batch
/// order. `X-Linkgate-Batch-Id` is derived from the batch's click ids (SHA-256, first 16 bytes),
/// so a retried batch carries the same id: receivers can use it as an idempotency key.
///
/// # Verifying (receivers)
/// 1. Take the raw body bytes, before parsing.
/// 2. Parse the header `t=<t>,v1=<sig>` (there may be several `v1`, during a secret rotation).
/// 3. Compute `hex(HMAC-SHA256(secret, "<t>" + "." + body))` and compare it with each `v1` in
///    **constant time**.
/// 4. Reject when `|now − t|` exceeds a tolerance (e.g. 300 s): this bounds replays.
/// 5. Dedupe by batch id and by `click_id`.
///
/// Rust receivers call [`verify_signature`](crate::verify_signature), which does 2–4.
///
/// # Outcomes
/// | response | result |
/// |---|---|
/// | 2xx | delivered |
/// | 408, 429, 5xx; connection error; timeout | [`SinkError::Transient`]: the drain retries the batch |
/// | any other status (4xx, 3xx: redirects are not followed) | [`SinkError::Permanent`] with the status and the first 200 characters of the response body: counted `failed` |
///
/// # Delivery semantics
/// **At-least-once.** A batch counts delivered only on a 2xx answer. A request that timed out may
/// still have been processed by the receiver, and is sent again: receivers must tolerate
/// duplicates (same batch id, same `click_id`s). Order: batches are sent one at a time, in drain
/// order; a retried batch is sent before any later one.
///
/// # Blocking and connections
/// The drain thread makes the request (a blocking `ureq` client): the request path never waits
/// for it. Connections are kept alive and reused between batches. Every request is bounded by
/// [`timeout`](WebhookSink::timeout) (default 30 s, connect 5 s), so a hung receiver cannot stall
/// the drain longer than that per attempt.
///
/// Plain `http://` URLs work with the `webhook` feature; `https://` needs `webhook-rustls`.
/// The secret and any password in the URL never appear in `Debug` output or errors.
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{ClickRecorder, WebhookSink};
/// let sink = WebhookSink::new("http://127.0.0.1:9000/clicks", b"a long random secret".to_vec())?
///     .timeout(Duration::from_secs(10));
/// let (recorder, guard) = ClickRecorder::builder(sink).spawn()?;
/// // ... recorder.record(click) on each redirect ...
/// let stats = guard.shutdown(Duration::from_secs(15));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WebhookSink {
    url: String,
    secret: Vec<u8>,
    headers: Vec<(String, String)>,
    connect_timeout: Duration,
    timeout: Duration,
    agent: Option<ureq::Agent>,
    body: Vec<u8>,
}

/// Why a [`WebhookSink`] could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("webhook URL {url:?} is not an absolute http(s) URL")]
    BadUrl {
        /// The URL, password redacted.
        url: String,
    },
    /// `https://` needs the `webhook-rustls` feature.
    #[error("webhook URL {url:?} is https: enable the `webhook-rustls` feature")]
    TlsDisabled {
        /// The URL, password redacted.
        url: String,
    },
    /// The HMAC secret is empty.
    #[error("the webhook secret is empty")]
    EmptySecret,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &redact_url(&self.url))
            .field(
                "secret",
                &format_args!("<{} bytes redacted>", self.secret.len()),
            )
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("connected", &self.agent.is_some())
            .finish()
    }
}

impl WebhookSink {
    /// A sink that POSTs to `url` and signs with `secret` (use 32 random bytes or more).
    ///
    /// Nothing is connected yet: the first batch opens the connection.
    pub fn new(
        url: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Result<Self, WebhookConfigError> {
        let url = url.into();
        let secret = secret.into();
        let uri: http::Uri = url.parse().map_err(|_| WebhookConfigError::BadUrl {
            url: redact_url(&url),
        })?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http"), Some(_)) => {}
            (Some("https"), Some(_)) if cfg!(feature = "webhook-rustls") => {}
            (Some("https"), Some(_)) => {
                return Err(WebhookConfigError::TlsDisabled {
                    url: redact_url(&url),
                });
            }
            _ => {
                return Err(WebhookConfigError::BadUrl {
                    url: redact_url(&url),
                });
            }
        }
        if secret.is_empty() {
            return Err(WebhookConfigError::EmptySecret);
        }
        Ok(WebhookSink {
            url,
            secret,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            agent: None,
            body: Vec::new(),
        })
    }

    /// Longest a whole request may take: connect, send, response and its body (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self.agent = None;
        self
    }

    /// Longest connection setup may take (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self.agent = None;
        self
    }

    /// Adds a header to every request (e.g. `Authorization`); its value is never logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn agent(&mut self) -> &ureq::Agent {
        self.agent.get_or_insert_with(|| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(self.timeout))
                .timeout_connect(Some(self.connect_timeout))
                .user_agent(concat!("linkgate/", env!("CARGO_PKG_VERSION")))
                .build()
                .into()
        })
    }
}

/// The batch id: the first 16 bytes of SHA-256 over the click ids, in hex.
fn batch_id(batch: &[Click]) -> String {
    let mut h = Sha256::new();
    for c in batch {
        h.update(c.click_id.encode());
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &digest[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl ClickSink for WebhookSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        body.push(b'[');
        for (i, c) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            c.write_json(&mut body);
        }
        body.push(b']');
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = sign(&self.secret, now, &body);
        let url = redact_url(&self.url);
        // Cheap: an `Agent` is a handle on a shared pool.
        let agent = self.agent().clone();
        let mut req = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .header(BATCH_ID_HEADER, batch_id(batch))
            .header("X-Linkgate-Click-Count", batch.len().to_string());
        for (n, v) in &self.headers {
            req = req.header(n, v);
        }
        let result = req.send(&body[..]);
        self.body = body;
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                // Drop the agent: a fresh pool after a connection-level failure.
                self.agent = None;
                return Err(SinkError::Transient(format!(
                    "webhook POST {url}: {}",
                    redact_text(&e.to_string(), &self.url)
                )));
            }
        };
        let status = resp.status().as_u16();
        let reader = resp.body_mut().as_reader();
        if (200..300).contains(&status) {
            // Read the (small) answer so the connection can be reused; its content is ignored.
            let _ = std::io::copy(&mut reader.take(64 * 1024), &mut std::io::sink());
            return Ok(());
        }
        let mut raw = Vec::new();
        let _ = reader.take(4 * 1024).read_to_end(&mut raw);
        let excerpt = excerpt(&raw);
        let msg = format!("webhook POST {url} answered {status}: {excerpt:?}");
        if status == 408 || status == 429 || (500..600).contains(&status) {
            Err(SinkError::Transient(msg))
        } else {
            Err(SinkError::Permanent(msg))
        }
    }
}

/// The first [`EXCERPT_CHARS`] characters of a response body, control characters as spaces.
fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClickId;

    #[test]
    fn config_errors() {
        assert!(matches!(
            WebhookSink::new("ftp://h/", b"k".to_vec()),
            Err(WebhookConfigError::BadUrl { .. })
        ));
        assert!(matches!(
            WebhookSink::new("/relative", b"k".to_vec()),
            Err(WebhookConfigError::BadUrl { .. })
        ));
        assert_eq!(
            WebhookSink::new("http://h/", Vec::new()).unwrap_err(),
            WebhookConfigError::EmptySecret
        );
        #[cfg(not(feature = "webhook-rustls"))]
        assert!(matches!(
            WebhookSink::new("https://u:pw@h/", b"k".to_vec()),
            Err(WebhookConfigError::TlsDisabled { url }) if url == "https://u:***@h/"
        ));
        let sink = WebhookSink::new("http://u:pw@h/", b"topsecret".to_vec())
            .unwrap()
            .header("Authorization", "Bearer abc");
        let dbg = format!("{sink:?}");
        assert!(
            !dbg.contains("pw@") && !dbg.contains("topsecret") && !dbg.contains("abc"),
            "{dbg}"
        );
    }

    #[test]
    fn batch_id_is_stable_and_content_derived() {
        let click = |i: u128| {
            Click::new(
                0,
                ClickId::from(i),
                "/k",
                http::HeaderValue::from_static("/t"),
                302,
            )
        };
        let a = [click(1), click(2)];
        let b = [click(1), click(2)];
        let c = [click(1), click(3)];
        assert_eq!(batch_id(&a), batch_id(&b));
        assert_ne!(batch_id(&a), batch_id(&c));
        assert_eq!(batch_id(&a).len(), 32);
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(b"bad\r\nrequest"), "bad  request");
        let long = "x".repeat(1000);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), EXCERPT_CHARS + 1);
    }
}
