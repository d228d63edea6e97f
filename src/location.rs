//! Building a `Location` that depends on the request: `forward_path` and `forward_query`.
//!
//! Whatever is copied from the request is percent-encoded where it is not plain visible URI text,
//! so the result is always a valid `HeaderValue`. Backslashes are always encoded (browsers read
//! them as `/`), and a suffix can never turn a same-site path into `//host` (protocol-relative).

use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Bytes re-encoded when a request path is appended to a target.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'#')
    .add(b'?');

/// Bytes re-encoded when a request query is appended to a target.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'#');

/// Splits a target into (path part, query without `?`, fragment with `#`).
fn split_target(target: &str) -> (&str, Option<&str>, &str) {
    let (before_frag, frag) = match target.find('#') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    };
    match before_frag.find('?') {
        Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..]), frag),
        None => (before_frag, None, frag),
    }
}

fn param_name(pair: &str) -> std::borrow::Cow<'_, str> {
    let name = pair.split('=').next().unwrap_or("");
    percent_decode_str(name).decode_utf8_lossy()
}

/// The target with `suffix` appended to its path and `query` merged into its query string.
///
/// The target's own parameters always win: an incoming parameter whose (decoded) name the target
/// already has is dropped, so `?ref=attacker` or `?r%65f=attacker` never replaces `ref=aff_01`.
pub(crate) fn build(target: &str, suffix: Option<&str>, query: Option<&str>) -> HeaderValue {
    let (path, own_query, fragment) = split_target(target);
    let mut out = String::with_capacity(
        target.len() + suffix.map_or(0, str::len) + query.map_or(0, str::len) + 8,
    );
    out.push_str(path);
    if let Some(suffix) = suffix {
        // Never let the suffix start a second slash run: `/` + `//evil` must not become `//evil`.
        let trimmed = suffix.trim_start_matches(['/', '\\']);
        if !trimmed.is_empty() || !suffix.is_empty() {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.extend(utf8_percent_encode(trimmed, PATH));
        }
    }
    let mut first = true;
    if let Some(q) = own_query {
        out.push('?');
        out.push_str(q);
        first = false;
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let name = param_name(pair);
            let taken = own_query.is_some_and(|own| {
                own.split('&')
                    .filter(|p| !p.is_empty())
                    .any(|p| param_name(p) == name)
            });
            if taken {
                continue;
            }
            out.push(if first { '?' } else { '&' });
            first = false;
            out.extend(utf8_percent_encode(pair, QUERY));
        }
    }
    out.push_str(fragment);
    // Every byte is visible ASCII by construction; the fallback is never expected to run.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
        .unwrap_or_else(|_| HeaderValue::from_static("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(t: &str, s: Option<&str>, q: Option<&str>) -> String {
        build(t, s, q).to_str().unwrap().to_string()
    }

    #[test]
    fn query_merge_target_wins() {
        let t = "https://store.com/p/123?ref=aff_01";
        assert_eq!(
            b(t, None, Some("utm=x")),
            "https://store.com/p/123?ref=aff_01&utm=x"
        );
        assert_eq!(
            b(t, None, Some("ref=attacker&utm=x")),
            "https://store.com/p/123?ref=aff_01&utm=x"
        );
        assert_eq!(
            b(t, None, Some("r%65f=attacker")),
            "https://store.com/p/123?ref=aff_01"
        );
        assert_eq!(
            b("https://s.com/p", None, Some("a=1&&b=2")),
            "https://s.com/p?a=1&b=2"
        );
        assert_eq!(
            b("https://s.com/p#top", None, Some("a=1")),
            "https://s.com/p?a=1#top"
        );
        assert_eq!(
            b("https://s.com/p", None, Some("a=<x>\\")),
            "https://s.com/p?a=%3Cx%3E%5C"
        );
    }

    #[test]
    fn path_suffix() {
        assert_eq!(
            b("https://docs.example/v2", Some("/a/b"), None),
            "https://docs.example/v2/a/b"
        );
        assert_eq!(
            b("https://docs.example/v2/", Some("/a"), None),
            "https://docs.example/v2/a"
        );
        assert_eq!(
            b("https://docs.example/v2?x=1", Some("/a"), Some("y=2")),
            "https://docs.example/v2/a?x=1&y=2"
        );
        assert_eq!(b("/", Some("//evil.example"), None), "/evil.example");
        assert_eq!(b("/", Some("/\\evil.example"), None), "/evil.example");
        assert_eq!(b("/d", Some("/a?b#c"), None), "/d/a%3Fb%23c");
        assert_eq!(b("/d", Some("/é"), None), "/d/%C3%A9");
    }
}
