//! JSON (feature `json`): an array of link objects, or an object with `links` and an optional
//! `default`.
//!
//! ```json
//! [
//!   {"key": "/go/summer-deal", "target": "https://store.com/p/123?ref=aff_01",
//!    "status": 302, "forward_query": false, "forward_path": false, "cache_seconds": 60,
//!    "not_before": "2026-12-01T00:00:00Z", "not_after": 1767225600,
//!    "tags": {"campaign": "summer"}}
//! ]
//! ```
//! or `{"default": "https://store.com/", "default_status": 302, "links": [ ... ]}`. Unknown fields
//! are errors (a typo must not silently drop a setting). Times are RFC 3339 UTC strings or Unix
//! seconds.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::clock::parse_instant;
use crate::error::{Errors, LoadError};
use crate::link::{DefaultRedirect, Link, Origin};
use crate::set::LinkSet;

use super::{line_col, syntax};

#[derive(Deserialize)]
#[serde(untagged)]
enum Instant {
    Secs(i64),
    Text(String),
}

impl Instant {
    fn ms(&self) -> Result<i64, String> {
        match self {
            Instant::Secs(s) => s.checked_mul(1000).ok_or_else(|| "out of range".into()),
            Instant::Text(t) => parse_instant(t),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    key: String,
    target: String,
    status: Option<u16>,
    #[serde(default)]
    forward_query: bool,
    #[serde(default)]
    forward_path: bool,
    cache_seconds: Option<u32>,
    not_before: Option<Instant>,
    not_after: Option<Instant>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc<'a> {
    default: Option<String>,
    default_status: Option<u16>,
    #[serde(borrow)]
    links: Vec<&'a RawValue>,
}

fn json_error(text: &str, base: usize, e: &serde_json::Error) -> LoadError {
    // serde_json positions are relative to the slice it parsed.
    let (l0, c0) = line_col(text.as_bytes(), base);
    let line = l0 + e.line().saturating_sub(1);
    let column = if e.line() <= 1 {
        c0 + e.column().saturating_sub(1)
    } else {
        e.column()
    };
    syntax(line, column.max(1), format!("JSON: {e}"))
}

/// Parses a JSON link file.
pub(crate) fn parse(text: &str) -> Result<LinkSet, LoadError> {
    let mut set = LinkSet::default();
    let raws: Vec<&RawValue> = if text.trim_start().starts_with('{') {
        let d: Doc<'_> = serde_json::from_str(text).map_err(|e| json_error(text, 0, &e))?;
        if let Some(t) = d.default {
            let mut def =
                DefaultRedirect::new(t).map_err(|e| syntax(1, 1, format!("default: {e}")))?;
            if let Some(s) = d.default_status {
                def = def
                    .with_status(s)
                    .map_err(|e| syntax(1, 1, format!("default_status: {e}")))?;
            }
            set.default = Some(def);
        }
        d.links
    } else if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| json_error(text, 0, &e))?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        let (line, column) = line_col(text.as_bytes(), text.len() - text.trim_start().len());
        return Err(syntax(
            line,
            column,
            "JSON: expected an array of links or an object with `links`",
        ));
    };
    let mut errors = Errors::default();
    let mut seen = (0usize, 1usize);
    for (i, raw) in raws.iter().enumerate() {
        let base = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        // Count lines only since the previous entry: counting from the start for every entry
        // made big files quadratic.
        let bytes = text.as_bytes();
        let line = seen.1 + bytes[seen.0..base].iter().filter(|&&b| b == b'\n').count();
        let column = base
            - bytes[..base]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        seen = (base, line);
        let origin = Origin::Line { line, column };
        let spec: Spec = match serde_json::from_str(raw.get()) {
            Ok(s) => s,
            Err(e) => {
                errors.push(
                    origin,
                    crate::LinkError::Field {
                        field: "link",
                        reason: format!("entry {i}: {e}"),
                    },
                );
                continue;
            }
        };
        let mut b = Link::builder(spec.key, spec.target)
            .forward_query(spec.forward_query)
            .forward_path(spec.forward_path)
            .origin(origin);
        if let Some(s) = spec.status {
            b = b.status(s);
        }
        if let Some(c) = spec.cache_seconds {
            b = b.cache_seconds(c);
        }
        let times = [
            ("not_before", &spec.not_before),
            ("not_after", &spec.not_after),
        ];
        let mut bad = false;
        for (field, t) in times {
            match t.as_ref().map(Instant::ms) {
                None => {}
                Some(Ok(ms)) if field == "not_before" => b = b.not_before(ms),
                Some(Ok(ms)) => b = b.not_after(ms),
                Some(Err(reason)) => {
                    errors.push(origin, crate::LinkError::Field { field, reason });
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        for (n, v) in spec.tags {
            b = b.tag(n, v);
        }
        match b.build() {
            Ok(l) => set.links.push(l),
            Err(e) => errors.push(origin, e),
        }
    }
    errors.into_result()?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_doc() {
        let set = parse(r#"[{"key":"/go/a","target":"https://a.example/","status":301,"tags":{"campaign":"x"},"not_before":"2026-01-01T00:00:00Z"}]"#).unwrap();
        assert_eq!(set.links[0].status().as_u16(), 301);
        assert_eq!(set.links[0].not_before(), Some(1_767_225_600_000));
        let set =
            parse(r#"{"default":"https://d.example/","links":[{"key":"/go/a","target":"/x"}]}"#)
                .unwrap();
        assert_eq!(set.default.unwrap().target(), "https://d.example/");
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            (
                "[\n{\"key\":\"/go/a\",\"target\":\"/x\"},\n{\"key\":\"/go/b\",\"target\":\"data:x\"}]",
                "scheme",
                "line 3, column 1",
            ),
            (
                "[\n{\"key\":\"/go/a\",\"targt\":\"/x\"}]",
                "unknown field",
                "line 2",
            ),
            ("[\n{\"key\":\"/go/a\",\"target\":\"/x\"}", "JSON", "line 2"),
            ("42", "expected an array", "line 1"),
        ];
        for (input, needle, pos) in cases {
            let msg = parse(input).unwrap_err().to_string();
            assert!(
                msg.contains(needle) && msg.contains(pos),
                "{input:?} -> {msg}"
            );
        }
    }
}
