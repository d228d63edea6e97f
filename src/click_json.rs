//! Reading a [`Click`] back from the JSON that [`Click::write_json`] emits.
//!
//! The spool stores clicks as JSON lines and replays them through this parser; it is public so
//! that consumers of a JSON-lines file or a broker can rebuild clicks too.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::HeaderValue;
use http::uri::PathAndQuery;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::click::{Click, ClickNotes};
use crate::click_id::{ClickId, ParseClickIdError};
use crate::ip::ParseClickIpError;
use crate::link::Tags;

/// Why a JSON text is not a click.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClickParseError {
    /// Not a JSON object of the click's shape (a missing required field, a wrong type, a
    /// truncated line...). The error names the field or the column.
    #[error("not a click object")]
    Json(#[source] serde_json::Error),
    /// `ts` is not `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[error("`ts` is not an RFC 3339 UTC time with milliseconds: `{0}`")]
    Timestamp(String),
    /// `click_id` is not a ULID.
    #[error("bad `click_id`")]
    ClickId(#[source] ParseClickIdError),
    /// `ip` is neither an IP address nor 32 hex digits.
    #[error("bad `ip`")]
    Ip(#[source] ParseClickIpError),
    /// A field that becomes a header value holds a character a header cannot carry.
    #[error("`{field}` cannot be a header value: `{value}`")]
    Header {
        /// The JSON field.
        field: &'static str,
        /// Its value (cut to 80 characters).
        value: String,
    },
    /// `query` holds a character a URI query cannot carry.
    #[error("`query` is not a valid URI query: `{0}`")]
    Query(String),
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    click_id: Cow<'a, str>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    location: Cow<'a, str>,
    status: u16,
    #[serde(default, borrow)]
    ip: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    referer: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    country: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    query: Option<Cow<'a, str>>,
    #[serde(default)]
    tags: Option<TagList>,
    #[serde(default = "yes")]
    matched: bool,
    #[serde(default)]
    bot: Option<bool>,
    #[serde(default, borrow)]
    bot_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    unique: Option<bool>,
    #[serde(default)]
    suspicious: Option<bool>,
    #[serde(default, borrow)]
    suspicious_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    rule: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    variant: Option<Cow<'a, str>>,
}

fn yes() -> bool {
    true
}

/// The `tags` object in document order (a map type would sort it).
struct TagList(Vec<(Box<str>, Box<str>)>);

impl<'de> Deserialize<'de> for TagList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TagList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string tags")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TagList, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
                    v.push((k.into(), val.into()));
                }
                Ok(TagList(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl Click {
    /// Parses one click from its JSON form ([`Click::write_json`]); fields it does not know are
    /// ignored, and the optional ones (everything but `ts`, `click_id`, `key`, `location`,
    /// `status`) may be missing.
    ///
    /// `from_json(&c.to_json()) == c` up to this normalisation, which is exactly what the JSON
    /// form does not keep:
    /// - `path_and_query` is rebuilt as `{key}?{query}` when `query` is set (`/?{query}` if the
    ///   key is not a valid path), and is `None` otherwise: only the query is serialised, so
    ///   [`Click::query`] round-trips, the original request path does not.
    /// - bytes that were not UTF-8 (in the key, a header, a label) come back as U+FFFD.
    /// - empty `tags` come back as `None`; a [`ClickNotes`] without any label as `None`.
    /// - `ts` must be within years 0000–9999 (what the 4-digit form can print).
    ///
    /// ```
    /// # use linkgate::{Click, ClickId};
    /// let c = Click::new(1_764_378_123_456, ClickId::at(1_764_378_123_456), "/go/a",
    ///     http::HeaderValue::from_static("https://a.example/"), 302);
    /// assert_eq!(Click::from_json(&c.to_json())?, c);
    /// assert!(Click::from_json(br#"{"ts":"2025-11-29T01:02:03.456Z""#).is_err());
    /// # Ok::<(), linkgate::ClickParseError>(())
    /// ```
    pub fn from_json(json: &[u8]) -> Result<Click, ClickParseError> {
        let raw: Raw<'_> = serde_json::from_slice(json).map_err(ClickParseError::Json)?;
        let ts =
            parse_rfc3339_ms(&raw.ts).ok_or_else(|| ClickParseError::Timestamp(cut(&raw.ts)))?;
        let click_id = raw
            .click_id
            .parse::<ClickId>()
            .map_err(ClickParseError::ClickId)?;
        let location = header("location", &raw.location)?;
        let mut c = Click::new(
            ts,
            click_id,
            Bytes::from(raw.key.into_owned()),
            location,
            raw.status,
        );
        c.ip = match raw.ip.as_deref() {
            Some(s) => Some(s.parse().map_err(ClickParseError::Ip)?),
            None => None,
        };
        c.user_agent = opt_header("user_agent", raw.user_agent.as_deref())?;
        c.referer = opt_header("referer", raw.referer.as_deref())?;
        c.country = opt_header("country", raw.country.as_deref())?;
        if let Some(q) = raw.query.as_deref() {
            let path = if c.key.starts_with(b"/") {
                c.key_str()
            } else {
                "/"
            };
            let pq = [format!("{path}?{q}"), format!("/?{q}")]
                .into_iter()
                .filter_map(|s| PathAndQuery::try_from(s).ok())
                .find(|pq| pq.query() == Some(q))
                .ok_or_else(|| ClickParseError::Query(cut(q)))?;
            c.path_and_query = Some(pq);
        }
        c.tags = raw
            .tags
            .filter(|t| !t.0.is_empty())
            .map(|t| t.0.into_iter().collect::<Tags>());
        c.matched = raw.matched;
        c.bot = raw.bot;
        c.unique = raw.unique;
        c.suspicious = raw.suspicious;
        let label = |v: Option<Cow<'_, str>>| v.map(|s| Bytes::from(s.into_owned()));
        let notes = ClickNotes {
            bot_reason: label(raw.bot_reason),
            suspicious_reason: label(raw.suspicious_reason),
            rule: label(raw.rule),
            variant: label(raw.variant),
        };
        if !notes.is_empty() {
            c.notes = Some(std::sync::Arc::new(notes));
        }
        Ok(c)
    }
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

fn header(field: &'static str, v: &str) -> Result<HeaderValue, ClickParseError> {
    HeaderValue::from_str(v).map_err(|_| ClickParseError::Header {
        field,
        value: cut(v),
    })
}

fn opt_header(
    field: &'static str,
    v: Option<&str>,
) -> Result<Option<HeaderValue>, ClickParseError> {
    v.map(|v| header(field, v)).transpose()
}

/// Unix milliseconds from exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (the form `write_rfc3339_ms`
/// prints), validating every field.
pub(crate) fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_len = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d < 1
        || d > month_len[(m - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::write_rfc3339_ms;

    #[test]
    fn timestamps_round_trip() {
        let min = parse_rfc3339_ms("0000-01-01T00:00:00.000Z").unwrap();
        let max = parse_rfc3339_ms("9999-12-31T23:59:59.999Z").unwrap();
        for ms in (min..=max).step_by(987_654_321_987) {
            let mut v = Vec::new();
            write_rfc3339_ms(ms, &mut v);
            assert_eq!(parse_rfc3339_ms(std::str::from_utf8(&v).unwrap()), Some(ms));
        }
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        for bad in [
            "2025-02-29T00:00:00.000Z",
            "2025-13-01T00:00:00.000Z",
            "2025-01-01T24:00:00.000Z",
            "2025-01-01T00:00:00.000",
            "2025-01-01 00:00:00.000Z",
            "+025-01-01T00:00:00.000Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn click_ip_parses_what_it_prints() {
        use crate::ip::ClickIp;
        for ip in [
            ClickIp::Addr("203.0.113.0".parse().unwrap()),
            ClickIp::Addr("2001:db8:abcd::".parse().unwrap()),
            ClickIp::Hashed(0),
            ClickIp::Hashed(u128::MAX),
            ClickIp::Hashed(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        ] {
            assert_eq!(ip.to_string().parse::<ClickIp>(), Ok(ip));
        }
        assert!("nope".parse::<ClickIp>().is_err());
        assert!(
            "0123456789abcdef0123456789abcdeg"
                .parse::<ClickIp>()
                .is_err()
        );
    }
}
