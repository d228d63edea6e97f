//! Target templates: `{click_id}` and `{key}` placeholders expanded per click (the affiliate
//! sub-id / postback pattern: `https://store.com/p/1?ref=aff&sub={click_id}`).
//!
//! Only these two exact tokens are placeholders; any other `{...}` is literal text. Inserted
//! values are percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`), so a key can never add a
//! parameter or change the host. Targets without placeholders never reach this module: they keep
//! the zero-allocation path.

use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The click id placeholder.
pub const CLICK_ID: &str = "{click_id}";
/// The link key placeholder.
pub const KEY: &str = "{key}";

const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Whether a target has placeholders.
pub(crate) fn is_template(target: &str) -> bool {
    target.contains(CLICK_ID) || target.contains(KEY)
}

/// Expands the placeholders of `location`.
pub(crate) fn expand(location: &HeaderValue, click_id: &str, key: &str) -> HeaderValue {
    let Ok(t) = location.to_str() else {
        return location.clone();
    };
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix(CLICK_ID) {
            out.extend(utf8_percent_encode(click_id, VALUE));
            rest = after;
        } else if let Some(after) = tail.strip_prefix(KEY) {
            out.extend(utf8_percent_encode(key, VALUE));
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).unwrap_or_else(|_| location.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_encodes() {
        let t = HeaderValue::from_static("https://s.com/p?sub={click_id}&k={key}&x={other}");
        let v = expand(&t, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "/go/a&b=c d");
        assert_eq!(
            v,
            "https://s.com/p?sub=01ARZ3NDEKTSV4RRFFQ69G5FAV&k=%2Fgo%2Fa%26b%3Dc%20d&x={other}"
        );
        assert!(is_template("x{key}") && !is_template("x{keys"));
    }
}
