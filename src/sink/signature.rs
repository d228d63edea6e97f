//! The webhook signature scheme: HMAC-SHA256 over `"<t>.<body>"`, and its verification.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The request header that carries a webhook batch's signature.
pub const SIGNATURE_HEADER: &str = "X-Linkgate-Signature";

/// Why [`verify_signature`] rejected a webhook request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=<unix seconds>,v1=<64 hex digits>[,v1=...]`.
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    Malformed(&'static str),
    /// The timestamp is further from `now` than the tolerance allows (a replay, or a clock far
    /// off).
    #[error(
        "signature timestamp {timestamp} is {age_secs} s away from now (tolerance {tolerance_secs} s)"
    )]
    OutsideTolerance {
        /// The header's `t`.
        timestamp: u64,
        /// `|now − t|` in seconds.
        age_secs: u64,
        /// The tolerance that was allowed.
        tolerance_secs: u64,
    },
    /// No `v1` value matches the HMAC of this body under this secret.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Computes the header value `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
///
/// This is what [`WebhookSink`](crate::WebhookSink) sends in [`SIGNATURE_HEADER`]; it is public
/// so that senders and receivers in tests can produce reference values.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut out = String::with_capacity(90);
    out.push_str("t=");
    out.push_str(itoa::Buffer::new().format(timestamp));
    out.push_str(",v1=");
    for b in mac(secret, timestamp, body).finalize().into_bytes() {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Checks a webhook request's [`SIGNATURE_HEADER`] value against its body: what a receiver of
/// [`WebhookSink`](crate::WebhookSink) batches runs before trusting them.
///
/// `body` must be the exact bytes received (before any JSON parsing); `now` is the receiver's
/// clock in Unix seconds; `tolerance` bounds how old (or how far in the future) the signed
/// timestamp may be — 5 minutes is a common choice. The comparison of the HMAC is constant-time
/// (`hmac`'s `verify_slice`). Several `v1=` values are accepted (any one matching passes), so a
/// sender can sign with an old and a new secret while they rotate.
///
/// The timestamp limits replays of a captured request to the tolerance window; inside it, the
/// receiver dedupes by `X-Linkgate-Batch-Id` (and by `click_id`, as for every at-least-once
/// sink).
///
/// ```
/// use std::time::Duration;
/// use linkgate::{sign_webhook, verify_signature, SignatureError};
/// let body = br#"[{"click_id":"01JDXYZ"}]"#;
/// let header = sign_webhook(b"s3cret", 1_764_378_000, body);
/// let tolerance = Duration::from_secs(300);
/// assert_eq!(verify_signature(b"s3cret", &header, body, 1_764_378_010, tolerance), Ok(()));
/// assert_eq!(verify_signature(b"other", &header, body, 1_764_378_010, tolerance), Err(SignatureError::Mismatch));
/// assert!(verify_signature(b"s3cret", &header, body, 1_764_379_000, tolerance).is_err());
/// ```
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("a part without '='"))?;
        match k {
            "t" => {
                let t = v
                    .parse::<u64>()
                    .map_err(|_| SignatureError::Malformed("t is not unix seconds"))?;
                if timestamp.replace(t).is_some() {
                    return Err(SignatureError::Malformed("t given twice"));
                }
            }
            "v1" => candidates
                .push(decode_hex32(v).ok_or(SignatureError::Malformed("v1 is not 64 hex digits"))?),
            // Unknown schemes are ignored so that a sender can add one without breaking receivers.
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed("no t"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1"));
    }
    let age = now.abs_diff(t);
    if age > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance {
            timestamp: t,
            age_secs: age,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    let expected = mac(secret, t, body);
    // Constant-time per candidate; the number of candidates is public anyway.
    if candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length: this cannot fail.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(itoa::Buffer::new().format(timestamp).as_bytes());
    m.update(b".");
    m.update(body);
    m
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(s[2 * i])? << 4 | nib(s[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Duration = Duration::from_secs(300);

    #[test]
    fn known_vector() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1700000000.[]",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"key", 1_700_000_000, b"[]"),
            "t=1700000000,v1=2afce10b4f37880815b715635811bcfa4d5334e7213eea5bc2e130e1008055c3"
        );
    }

    /// header, body, now, expected
    type Case<'a> = (String, &'a [u8], u64, Result<(), SignatureError>);

    #[test]
    fn verify_table() {
        let body = b"[1,2,3]";
        let h = sign(b"k", 1000, body);
        let good = &h[h.find("v1=").unwrap()..];
        let cases: Vec<Case<'_>> = vec![
            (h.clone(), body, 1000, Ok(())),
            (h.clone(), body, 1300, Ok(())),
            (h.clone(), body, 700, Ok(())),
            (h.clone(), b"[1,2,4]", 1000, Err(SignatureError::Mismatch)),
            (
                h.clone(),
                body,
                1301,
                Err(SignatureError::OutsideTolerance {
                    timestamp: 1000,
                    age_secs: 301,
                    tolerance_secs: 300,
                }),
            ),
            // Another timestamp with the same MAC: the MAC covers t.
            (
                format!("t=1001,{good}"),
                body,
                1000,
                Err(SignatureError::Mismatch),
            ),
            // Rotation: one bad and one good v1.
            (
                format!("t=1000,v1={},{good}", "0".repeat(64)),
                body,
                1000,
                Ok(()),
            ),
            (format!("{h},v0=zz"), body, 1000, Ok(())),
            (
                "".into(),
                body,
                1000,
                Err(SignatureError::Malformed("a part without '='")),
            ),
            (
                "t=1000".into(),
                body,
                1000,
                Err(SignatureError::Malformed("no v1")),
            ),
            (
                good.into(),
                body,
                1000,
                Err(SignatureError::Malformed("no t")),
            ),
            (
                "t=x,v1=00".into(),
                body,
                1000,
                Err(SignatureError::Malformed("t is not unix seconds")),
            ),
            (
                "t=1,v1=00".into(),
                body,
                1000,
                Err(SignatureError::Malformed("v1 is not 64 hex digits")),
            ),
            (
                format!("t=1000,t=1000,{good}"),
                body,
                1000,
                Err(SignatureError::Malformed("t given twice")),
            ),
        ];
        for (header, body, now, want) in cases {
            assert_eq!(
                verify_signature(b"k", &header, body, now, TOL),
                want,
                "header {header:?} now {now}"
            );
        }
        let upper = h.to_uppercase().replace("T=", "t=").replace("V1=", "v1=");
        assert_eq!(verify_signature(b"k", &upper, body, 1000, TOL), Ok(()));
    }
}
