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
//! or `{"default": "https://store.com/", "default_status": 302, "links": [ ... ]}`.
//!
//! Routing (see [`crate::rules`]) — rules are tried in order, first match wins; a value or a list
//! of values per condition; `after`/`before` are instants like `not_before`:
//! ```json
//! {"key": "/go/app", "target": "https://example.com/app",
//!  "rules": [{"name": "ios", "device": "ios", "target": "https://apps.apple.com/app/id1"},
//!            {"name": "dach", "country": ["DE", "AT", "CH"], "language": "de",
//!             "after": "2026-12-01T00:00:00Z", "target": "https://example.de/app"}],
//!  "split": [{"name": "a", "weight": 70, "target": "https://example.com/app?v=a"},
//!            {"name": "b", "weight": 30, "target": "https://example.com/app?v=b"}],
//!  "max_clicks": 10000, "overflow": "https://example.com/sold-out",
//!  "bot_target": "https://example.com/app"}
//! ```
//! Unknown fields
//! are errors (a typo must not silently drop a setting). Times are RFC 3339 UTC strings or Unix
//! seconds.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::clock::parse_instant;
use crate::error::{Errors, LoadError};
use crate::link::{DefaultRedirect, Link, LinkBuilder, Origin};
use crate::rules::Rule;
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
    // The routing fields again, not `#[serde(flatten)] RoutingJson`: serde ignores
    // `deny_unknown_fields` with `flatten`, and a typo must stay an error.
    #[serde(default)]
    rules: Vec<RuleJson>,
    #[serde(default)]
    split: Vec<VariantJson>,
    max_clicks: Option<u64>,
    overflow: Option<String>,
    bot_target: Option<String>,
}

/// The routing fields of a link (also the value type of a routing side file).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingJson {
    #[serde(default)]
    rules: Vec<RuleJson>,
    #[serde(default)]
    split: Vec<VariantJson>,
    max_clicks: Option<u64>,
    overflow: Option<String>,
    bot_target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    name: String,
    target: String,
    #[serde(default)]
    device: OneOrMany,
    #[serde(default)]
    country: OneOrMany,
    #[serde(default)]
    language: OneOrMany,
    after: Option<Instant>,
    before: Option<Instant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantJson {
    name: String,
    weight: u32,
    target: String,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn iter(&self) -> std::slice::Iter<'_, String> {
        match self {
            OneOrMany::None => [].iter(),
            OneOrMany::One(s) => std::slice::from_ref(s).iter(),
            OneOrMany::Many(v) => v.iter(),
        }
    }
}

impl RoutingJson {
    /// Adds these settings to a link builder.
    pub(crate) fn apply(self, mut b: LinkBuilder) -> Result<LinkBuilder, crate::LinkError> {
        for r in self.rules {
            let mut rule = Rule::new(r.name.clone(), r.target);
            for d in r.device.iter() {
                rule = rule.device(d.parse().map_err(|e: crate::LinkError| {
                    crate::LinkError::Rule {
                        rule: r.name.clone(),
                        field: "device",
                        reason: e.to_string(),
                    }
                })?);
            }
            for c in r.country.iter() {
                rule = rule.country(c);
            }
            for l in r.language.iter() {
                rule = rule.language(l);
            }
            for (field, t) in [("after", &r.after), ("before", &r.before)] {
                if let Some(t) = t {
                    let ms = t.ms().map_err(|reason| crate::LinkError::Rule {
                        rule: r.name.clone(),
                        field,
                        reason,
                    })?;
                    rule = if field == "after" {
                        rule.after(ms)
                    } else {
                        rule.before(ms)
                    };
                }
            }
            b = b.rule(rule);
        }
        for v in self.split {
            b = b.variant(v.name, v.weight, v.target);
        }
        if let Some(n) = self.max_clicks {
            b = b.max_clicks(n);
        }
        if let Some(t) = self.overflow {
            b = b.overflow(t);
        }
        if let Some(t) = self.bot_target {
            b = b.bot_target(t);
        }
        Ok(b)
    }
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
        let routing = RoutingJson {
            rules: spec.rules,
            split: spec.split,
            max_clicks: spec.max_clicks,
            overflow: spec.overflow,
            bot_target: spec.bot_target,
        };
        let b = match routing.apply(b) {
            Ok(b) => b,
            Err(e) => {
                errors.push(origin, e);
                continue;
            }
        };
        match b.build() {
            Ok(l) => set.links.push(l),
            Err(e) => errors.push(origin, e),
        }
    }
    errors.into_result()?;
    Ok(set)
}

/// Adds routing (rules, split, caps, bot target) from a JSON side file to links loaded from a
/// format without routing fields (CSV, nginx map).
///
/// The side file is one JSON object: link key → the routing fields of the JSON link format.
/// Keys match after the usual normalisation (case, trailing `/`, percent-encoding). A key that
/// names no link is an error (a typo must not silently drop a rule), and so is a bad rule; each
/// error names the key and its line in the side file. Nothing is applied unless all of it is
/// valid.
///
/// ```
/// use linkgate::{Format, apply_routing};
/// let set = Format::Csv.parse(b"key,target\n/go/app,https://example.com/app\n")?;
/// let set = apply_routing(set, r#"{"/go/app": {"rules": [
///     {"name": "android", "device": "android", "target": "https://play.google.com/store/apps/details?id=x"}]}}"#)?;
/// assert_eq!(set.links[0].routing().unwrap().rules()[0].name(), "android");
/// # Ok::<(), linkgate::LoadError>(())
/// ```
pub fn apply_routing(mut set: LinkSet, side_file: &str) -> Result<LinkSet, LoadError> {
    let map: BTreeMap<String, &RawValue> =
        serde_json::from_str(side_file).map_err(|e| json_error(side_file, 0, &e))?;
    let fold = |k: &str| {
        Link::new(k, "/")
            .map(|l| l.key().to_ascii_lowercase())
            .map_err(|e| e.to_string())
    };
    let mut index = std::collections::HashMap::with_capacity(set.links.len());
    for (i, l) in set.links.iter().enumerate() {
        index.insert(l.key().to_ascii_lowercase(), i);
    }
    let mut errors = Errors::default();
    let mut updates = Vec::with_capacity(map.len());
    for (key, raw) in map {
        let base = raw.get().as_ptr() as usize - side_file.as_ptr() as usize;
        let (line, column) = line_col(side_file.as_bytes(), base);
        let origin = Origin::Line { line, column };
        let field = |reason: String| crate::LinkError::Field {
            field: "routing",
            reason,
        };
        let Some(&i) = fold(&key).ok().and_then(|k| index.get(&k)) else {
            errors.push(origin, field(format!("key `{key}` names no link")));
            continue;
        };
        let routing: RoutingJson = match serde_json::from_str(raw.get()) {
            Ok(r) => r,
            Err(e) => {
                errors.push(origin, field(format!("key `{key}`: {e}")));
                continue;
            }
        };
        // Validated exactly as in a JSON link file: through the link's builder.
        let link = &set.links[i];
        let built = routing
            .apply(Link::builder(link.key(), link.target()))
            .and_then(|b| b.build());
        match built {
            Ok(l) => updates.push((i, l.routing().cloned())),
            Err(e) => errors.push(origin, e),
        }
    }
    errors.into_result()?;
    for (i, routing) in updates {
        set.links[i] = set.links[i].clone().with_routing(routing);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_fields_and_side_file() {
        let set = parse(r#"[{"key":"/go/a","target":"https://a.example/","rules":[{"name":"de","country":["DE","at"],"language":"de","target":"https://a.example/de"},{"name":"ios","device":"ios","target":"https://apps.apple.com/x"}],"split":[{"name":"x","weight":1,"target":"/x"},{"name":"y","weight":3,"target":"/y"}],"max_clicks":5,"overflow":"/sold-out"}]"#).unwrap();
        let r = set.links[0].routing().unwrap();
        assert_eq!(
            (r.rules().len(), r.split().len(), r.max_clicks()),
            (2, 2, Some(5))
        );
        let bad = parse("[\n{\"key\":\"/go/a\",\"target\":\"/a\",\"rules\":[{\"name\":\"r\",\"device\":\"toaster\",\"target\":\"/b\"}]}]")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("line 2") && bad.contains("rule `r`") && bad.contains("toaster"),
            "{bad}"
        );
        let bad = parse(
            r#"[{"key":"/go/a","target":"/a","rules":[{"name":"r","target":"javascript:x"}]}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("rule `r`, target"), "{bad}");

        let csv = crate::Format::Csv
            .parse(b"key,target\n/go/a,/a\n/go/b,/b\n")
            .unwrap();
        let side = "{\n  \"/GO/B/\": {\"split\": [{\"name\":\"p\",\"weight\":1,\"target\":\"/p\"},{\"name\":\"q\",\"weight\":1,\"target\":\"/q\"}]},\n  \"/go/zzz\": {\"max_clicks\": 1}\n}";
        let err = apply_routing(csv.clone(), side).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("/go/zzz"), "{err}");
        let ok = apply_routing(
            csv,
            &side.replace(",\n  \"/go/zzz\": {\"max_clicks\": 1}", ""),
        )
        .unwrap();
        assert!(ok.links[0].routing().is_none());
        assert_eq!(ok.links[1].routing().unwrap().split().len(), 2);
    }

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
