//! `Click`: one record per redirect served, and its JSON form.

use bytes::Bytes;
use http::HeaderValue;
use http::uri::PathAndQuery;

use crate::click_id::ClickId;
use crate::ip::ClickIp;
use crate::link::Tags;
pub use crate::notes::ClickNotes;

use std::sync::Arc;

/// Longest `User-Agent` / `Referer` a click keeps, in bytes.
pub const MAX_HEADER_BYTES: usize = 512;

/// One redirect served.
///
/// Built by [`Gate::handle`](crate::Gate::handle) in the request path without copying: header
/// values, the key and the query are reference-counted slices of the request and the snapshot.
/// `user_agent` and `referer` are cut to [`MAX_HEADER_BYTES`].
///
/// Its JSON form ([`Click::write_json`]) has exactly these fields, absent values as `null`:
/// `ts` (RFC 3339 UTC, milliseconds), `click_id`, `key`, `location`, `status`, `ip`,
/// `user_agent`, `referer`, `country`, `query`, `tags` (an object), `matched`, `bot`,
/// `bot_reason`, `unique`, `suspicious`, `suspicious_reason`, `rule`, `variant`.
///
/// The click-intelligence labels (`bot_reason`, `suspicious_reason`, `rule`, `variant`) live in
/// one shared [`ClickNotes`], so a plain click stays small in the channel and a routed click
/// costs one reference count, not an allocation.
///
/// ```
/// # use linkgate::{Click, ClickId};
/// let click = Click::new(1_764_378_123_456, ClickId::at(1_764_378_123_456), "/go/a", http::HeaderValue::from_static("https://a.example/"), 302);
/// let json = String::from_utf8(click.to_json()).unwrap();
/// assert!(json.starts_with(r#"{"ts":"2025-11-29T01:02:03.456Z","click_id":""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// When the redirect was served, Unix milliseconds (UTC).
    pub ts: i64,
    /// The click's id (also in the `Location` for `{click_id}` templates).
    pub click_id: ClickId,
    /// The matched link's key, or the request path when no link matched.
    pub key: Bytes,
    /// The `Location` actually sent.
    pub location: HeaderValue,
    /// The status actually sent.
    pub status: u16,
    /// The visitor's address as the IP policy allows.
    pub ip: Option<ClickIp>,
    /// `User-Agent`, at most [`MAX_HEADER_BYTES`].
    pub user_agent: Option<HeaderValue>,
    /// `Referer`, at most [`MAX_HEADER_BYTES`].
    pub referer: Option<HeaderValue>,
    /// The country header's value (e.g. `CF-IPCountry`), if configured.
    pub country: Option<HeaderValue>,
    /// The request's path and query (only the query is serialised).
    pub path_and_query: Option<PathAndQuery>,
    /// The link's tags.
    pub tags: Option<Tags>,
    /// `false` when no link matched and the default redirect was served.
    pub matched: bool,
    /// Bot verdict, when bot detection runs.
    pub bot: Option<bool>,
    /// Unique-visitor verdict, when duplicate detection runs.
    pub unique: Option<bool>,
    /// Click-flood verdict, when flood detection runs.
    pub suspicious: Option<bool>,
    /// Labels explaining the verdicts and the routing (`None` when there are none). Shared:
    /// every click a rule or split variant routes holds the same `Arc` (no allocation per
    /// click); [`notes_mut`](Click::notes_mut) copies on write.
    pub notes: Option<Arc<ClickNotes>>,
}

impl Click {
    /// A click with the required fields; the rest empty.
    pub fn new(
        ts: i64,
        click_id: ClickId,
        key: impl Into<Bytes>,
        location: HeaderValue,
        status: u16,
    ) -> Click {
        Click {
            ts,
            click_id,
            key: key.into(),
            location,
            status,
            ip: None,
            user_agent: None,
            referer: None,
            country: None,
            path_and_query: None,
            tags: None,
            matched: true,
            bot: None,
            unique: None,
            suspicious: None,
            notes: None,
        }
    }

    /// The labels, created on first use (and copied first if shared).
    pub fn notes_mut(&mut self) -> &mut ClickNotes {
        Arc::make_mut(self.notes.get_or_insert_with(Default::default))
    }

    /// Why the click counts as a bot, if it does and a reason is known.
    pub fn bot_reason(&self) -> Option<&str> {
        label(self.notes.as_ref()?.bot_reason.as_ref())
    }

    /// Why the click is suspicious, if it is.
    pub fn suspicious_reason(&self) -> Option<&str> {
        label(self.notes.as_ref()?.suspicious_reason.as_ref())
    }

    /// The targeting rule that chose the target, if one matched.
    pub fn rule(&self) -> Option<&str> {
        label(self.notes.as_ref()?.rule.as_ref())
    }

    /// The split variant chosen, if any.
    pub fn variant(&self) -> Option<&str> {
        label(self.notes.as_ref()?.variant.as_ref())
    }

    /// The key as text.
    pub fn key_str(&self) -> &str {
        std::str::from_utf8(&self.key).unwrap_or("")
    }

    /// The incoming query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query.as_ref().and_then(PathAndQuery::query)
    }

    /// The JSON object, without a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(384);
        self.write_json(&mut v);
        v
    }

    /// Appends the JSON object (no newline) to `out`. Hand-written: no intermediate values.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":\"");
        write_rfc3339_ms(self.ts, out);
        out.extend_from_slice(b"\",\"click_id\":\"");
        out.extend_from_slice(&self.click_id.encode());
        out.extend_from_slice(b"\",\"key\":");
        json_str(&self.key, out);
        out.extend_from_slice(b",\"location\":");
        json_str(self.location.as_bytes(), out);
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b",\"ip\":");
        match &self.ip {
            // The usual case, written without `fmt` (4 small integers; `Display` costs more than
            // the rest of the line's numbers together).
            Some(ClickIp::Addr(std::net::IpAddr::V4(v4))) => {
                let mut num = itoa::Buffer::new();
                out.push(b'"');
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    out.extend_from_slice(num.format(octet).as_bytes());
                }
                out.push(b'"');
            }
            Some(ip) => {
                out.push(b'"');
                use std::io::Write;
                let _ = write!(out, "{ip}");
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        for (name, v) in [
            (&b",\"user_agent\":"[..], &self.user_agent),
            (b",\"referer\":", &self.referer),
            (b",\"country\":", &self.country),
        ] {
            out.extend_from_slice(name);
            match v {
                Some(h) => json_str(h.as_bytes(), out),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b",\"query\":");
        match self.query() {
            Some(q) => json_str(q.as_bytes(), out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"tags\":");
        tags_json(self.tags.as_deref(), out);
        out.extend_from_slice(if self.matched {
            b",\"matched\":true"
        } else {
            b",\"matched\":false"
        });
        let notes = self.notes.as_deref();
        let bool_field = |out: &mut Vec<u8>, name: &[u8], v: Option<bool>| {
            out.extend_from_slice(name);
            out.extend_from_slice(match v {
                Some(true) => b"true",
                Some(false) => b"false",
                None => b"null",
            });
        };
        let label_field = |out: &mut Vec<u8>, name: &[u8], v: Option<&Bytes>| {
            out.extend_from_slice(name);
            match v {
                Some(b) => json_str(b, out),
                None => out.extend_from_slice(b"null"),
            }
        };
        bool_field(out, b",\"bot\":", self.bot);
        label_field(
            out,
            b",\"bot_reason\":",
            notes.and_then(|n| n.bot_reason.as_ref()),
        );
        bool_field(out, b",\"unique\":", self.unique);
        bool_field(out, b",\"suspicious\":", self.suspicious);
        label_field(
            out,
            b",\"suspicious_reason\":",
            notes.and_then(|n| n.suspicious_reason.as_ref()),
        );
        label_field(out, b",\"rule\":", notes.and_then(|n| n.rule.as_ref()));
        label_field(
            out,
            b",\"variant\":",
            notes.and_then(|n| n.variant.as_ref()),
        );
        out.push(b'}');
    }
}

fn label(b: Option<&Bytes>) -> Option<&str> {
    std::str::from_utf8(b?).ok()
}

/// The tags as a JSON object (`{}` when there are none).
pub(crate) fn tags_json(tags: Option<&[(Box<str>, Box<str>)]>, out: &mut Vec<u8>) {
    match tags {
        Some(tags) if !tags.is_empty() => {
            out.push(b'{');
            for (i, (n, v)) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(n.as_bytes(), out);
                out.push(b':');
                json_str(v.as_bytes(), out);
            }
            out.push(b'}');
        }
        _ => out.extend_from_slice(b"{}"),
    }
}

/// A JSON string literal. Bytes that are not valid UTF-8 (header values may carry obs-text)
/// become U+FFFD; control characters are escaped.
fn json_str(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    // Fast path: plain printable ASCII (nearly every key, URL and user agent) is copied as is.
    // The scan has no early exit, so it vectorises (16–32 bytes per step instead of one).
    let special = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\') | (b >= 0x7f)
    });
    if !special {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => escape_into(s, out),
        Err(_) => escape_into(&String::from_utf8_lossy(bytes), out),
    }
    out.push(b'"');
}

fn escape_into(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => {
                out.extend_from_slice(&b[start..i]);
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds (proleptic Gregorian, UTC).
pub(crate) fn write_rfc3339_ms(unix_ms: i64, out: &mut Vec<u8>) {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as u32;
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let mut buf = [0u8; 24];
    let digits = |buf: &mut [u8], mut v: u32| {
        for slot in buf.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut buf[0..4], y);
    buf[4] = b'-';
    digits(&mut buf[5..7], m);
    buf[7] = b'-';
    digits(&mut buf[8..10], d);
    buf[10] = b'T';
    digits(&mut buf[11..13], h);
    buf[13] = b':';
    digits(&mut buf[14..16], mi);
    buf[16] = b':';
    digits(&mut buf[17..19], s);
    buf[19] = b'.';
    digits(&mut buf[20..23], ms);
    buf[23] = b'Z';
    out.extend_from_slice(&buf);
}

/// Cuts a header value to `max` bytes (copying only when it is longer).
pub(crate) fn bounded(v: &HeaderValue, max: usize) -> HeaderValue {
    let b = v.as_bytes();
    if b.len() <= max {
        return v.clone();
    }
    HeaderValue::from_bytes(bounded_bytes(b, max)).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The first `max` bytes of `b` or fewer, not cutting a UTF-8 sequence in half: the bytes
/// [`bounded`] keeps.
pub(crate) fn bounded_bytes(b: &[u8], max: usize) -> &[u8] {
    if b.len() <= max {
        return b;
    }
    let mut end = max;
    while end > 0 && (b[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> String {
        let mut v = Vec::new();
        write_rfc3339_ms(ms, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rfc3339() {
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(1_795_914_123_456), "2026-11-29T01:02:03.456Z");
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ts(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        // Cross-check against humantime for many instants.
        for ms in (0..4_000_000_000_000i64).step_by(7_777_777_777) {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
            assert_eq!(ts(ms), humantime::format_rfc3339_millis(t).to_string());
        }
    }

    #[test]
    fn json_ip_is_what_display_prints() {
        let ip_json = |ip: ClickIp| {
            let mut c = Click::new(
                0,
                ClickId::from(0),
                "/k",
                HeaderValue::from_static("/"),
                302,
            );
            c.ip = Some(ip);
            let mut out = Vec::new();
            c.write_json(&mut out);
            String::from_utf8(out).unwrap()
        };
        let ips = [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "203.0.113.0",
            "2001:db8::",
        ];
        for ip in ips {
            let ip: ClickIp = ip.parse().unwrap();
            let out = ip_json(ip);
            assert!(out.contains(&format!(",\"ip\":\"{ip}\",")), "{out}");
        }
        let out = ip_json(ClickIp::Hashed(0xabc));
        assert!(out.contains(",\"ip\":\"00000000000000000000000000000abc\","));
    }

    #[test]
    fn json_shape_and_escaping() {
        let mut c = Click::new(
            1_795_914_123_456,
            ClickId::from(0),
            "/go/a\"b",
            HeaderValue::from_static("https://a.example/?q=1"),
            302,
        );
        c.user_agent = Some(HeaderValue::from_static("Mozilla/5.0 \\ \"x\""));
        c.ip = Some(ClickIp::Addr("203.0.113.0".parse().unwrap()));
        c.path_and_query = Some(PathAndQuery::from_static("/go/a?utm=1"));
        c.tags = Some(vec![("campaign".into(), "s\u{1}x".into())].into());
        c.bot = Some(false);
        let s = String::from_utf8(c.to_json()).unwrap();
        assert_eq!(
            s,
            r#"{"ts":"2026-11-29T01:02:03.456Z","click_id":"00000000000000000000000000","key":"/go/a\"b","location":"https://a.example/?q=1","status":302,"ip":"203.0.113.0","user_agent":"Mozilla/5.0 \\ \"x\"","referer":null,"country":null,"query":"utm=1","tags":{"campaign":"s\u0001x"},"matched":true,"bot":false,"bot_reason":null,"unique":null,"suspicious":null,"suspicious_reason":null,"rule":null,"variant":null}"#
        );
        c.suspicious = Some(true);
        let n = c.notes_mut();
        n.bot_reason = Some(Bytes::from_static(b"ua:googlebot"));
        n.variant = Some(Bytes::from_static(b"b"));
        let s = String::from_utf8(c.to_json()).unwrap();
        assert!(s.ends_with(r#""bot":false,"bot_reason":"ua:googlebot","unique":null,"suspicious":true,"suspicious_reason":null,"rule":null,"variant":"b"}"#), "{s}");
        assert_eq!(
            (c.bot_reason(), c.variant(), c.rule()),
            (Some("ua:googlebot"), Some("b"), None)
        );
        let obs = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        c.referer = Some(obs);
        assert!(
            String::from_utf8(c.to_json())
                .unwrap()
                .contains("caf\u{fffd}")
        );
    }

    #[test]
    fn bounded_headers() {
        let long = HeaderValue::from_str(&"a".repeat(600)).unwrap();
        assert_eq!(bounded(&long, 512).len(), 512);
        let short = HeaderValue::from_static("abc");
        assert_eq!(bounded(&short, 512), "abc");
        let mut utf = "a".repeat(511).into_bytes();
        utf.extend_from_slice("é".as_bytes());
        let v = HeaderValue::from_bytes(&utf).unwrap();
        assert_eq!(bounded(&v, 512).len(), 511);
        for v in [&long, &short, &v] {
            assert_eq!(bounded_bytes(v.as_bytes(), 512), bounded(v, 512).as_bytes());
        }
    }
}
