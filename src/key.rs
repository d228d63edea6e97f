//! Key normalisation: the one place that turns a stored key or a request path into the bytes the
//! table hashes. Loading and resolving both go through [`normalize`], so a key always matches the
//! requests it was written for.
//!
//! Rules, in order:
//! 1. the query string and fragment are never part of the key (cut at the first `?` or `#`);
//! 2. percent-escapes are decoded exactly once (`%2D` → `-`, `%252D` → `%2D`); an invalid escape
//!    (`%G1`, a lone `%`) makes the path unmatchable: it resolves to the default;
//! 3. ASCII letters are lower-cased unless the table is case-sensitive (nginx `map` matches strings
//!    ignoring case);
//! 4. one trailing `/` is dropped (`/go/deal/` finds `/go/deal`; the root `/` stays `/`).
//!
//! The decoded bytes go to a stack buffer of [`INLINE_KEY`] bytes; only keys longer than that
//! (up to [`MAX_KEY_LEN`]) touch the heap.

use smallvec::SmallVec;

/// Longest key a link may have, in bytes after normalisation.
pub const MAX_KEY_LEN: usize = 1024;
/// Keys up to this length are normalised without any heap allocation.
pub const INLINE_KEY: usize = 256;

/// The buffer a normalised key lives in.
pub(crate) type KeyBuf = SmallVec<[u8; INLINE_KEY]>;

/// Why a path could not be normalised in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded path is longer than the limit; the buffer holds the first `limit` bytes.
    TooLong,
}

/// Splits `path` into the part before `?`/`#` and the query (without `?` and without fragment).
pub(crate) fn split_query(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'?' || b == b'#') {
        None => (path, None),
        Some(i) if path.as_bytes()[i] == b'#' => (&path[..i], None),
        Some(i) => {
            let rest = &path[i + 1..];
            let q = match rest.find('#') {
                Some(j) => &rest[..j],
                None => rest,
            };
            (&path[..i], Some(q))
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises `path` (already cut before `?`/`#`) into `out`, decoding at most `limit` bytes.
///
/// On [`Stop::TooLong`], `out` holds the first `limit` decoded (and case-folded) bytes, which is
/// what prefix (`/*`) keys are matched against.
pub(crate) fn normalize(
    path: &[u8],
    case_sensitive: bool,
    limit: usize,
    out: &mut KeyBuf,
) -> Result<(), Stop> {
    out.clear();
    // Fast path, the common case: no escapes. One copy and an in-place case fold.
    if !path.contains(&b'%') {
        let take = path.len().min(limit);
        out.extend_from_slice(&path[..take]);
        if !case_sensitive {
            out.make_ascii_lowercase();
        }
        if path.len() > limit {
            return Err(Stop::TooLong);
        }
        if out.len() > 1 && out.last() == Some(&b'/') {
            out.pop();
        }
        return Ok(());
    }
    let mut i = 0;
    while i < path.len() {
        if out.len() == limit {
            return Err(Stop::TooLong);
        }
        let mut b = path[i];
        if b == b'%' {
            match (
                path.get(i + 1).and_then(|&h| hex(h)),
                path.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    b = h << 4 | l;
                    i += 3;
                }
                _ => return Err(Stop::BadEscape),
            }
        } else {
            i += 1;
        }
        if !case_sensitive {
            b = b.to_ascii_lowercase();
        }
        out.push(b);
    }
    if out.len() > 1 && out.last() == Some(&b'/') {
        out.pop();
    }
    Ok(())
}

/// `path` itself (without one trailing `/`) when it is already what [`normalize`] would make of
/// it: no `%`, no upper-case letter in a case-insensitive table, and at most `limit` bytes.
/// Lets a resolve hash the request's own bytes instead of copying them.
#[inline]
pub(crate) fn as_is(path: &[u8], case_sensitive: bool, limit: usize) -> Option<&[u8]> {
    if path.len() > limit {
        return None;
    }
    // No early exit, so the loop vectorises: keys are short and usually clean.
    let upper = if case_sensitive { 0 } else { 0xff };
    let mut bad = 0u8;
    for &b in path {
        bad |= u8::from(b == b'%') | (u8::from(b.is_ascii_uppercase()) & upper);
    }
    if bad != 0 {
        return None;
    }
    match path {
        [rest @ .., b'/'] if !rest.is_empty() => Some(rest),
        _ => Some(path),
    }
}

/// Byte offset in the raw `path` at which the first `decoded_len` decoded bytes end.
///
/// Used to hand the *raw* (still encoded) remainder of a path to a `forward_path` target, so a
/// decoded `%2F` or `%3F` never changes the meaning of what is appended.
pub(crate) fn raw_offset(path: &[u8], decoded_len: usize) -> usize {
    let mut raw = 0;
    for _ in 0..decoded_len {
        raw += if path.get(raw) == Some(&b'%') { 3 } else { 1 };
    }
    raw.min(path.len())
}

/// Normalises a key for storage: returns the normalised key and whether it is a prefix (`/*`) key,
/// or a description of what is wrong with it.
pub(crate) fn normalize_stored(key: &str, case_sensitive: bool) -> Result<(String, bool), String> {
    if !key.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if key.len() > MAX_KEY_LEN * 3 {
        return Err(format!("longer than {MAX_KEY_LEN} bytes"));
    }
    // Visible ASCII other than `?` and `#` cannot fail the three checks below: one branch-free
    // pass decides whether they need to run (they name the first bad character).
    let plain = key.bytes().fold(true, |ok, b| {
        ok & (0x21..=0x7e).contains(&b) & (b != b'?') & (b != b'#')
    });
    if !plain {
        if let Some((i, c)) = key.char_indices().find(|(_, c)| c.is_control()) {
            return Err(format!("control character {c:?} at byte {i}"));
        }
        if let Some((i, _)) = key.char_indices().find(|(_, c)| c.is_whitespace()) {
            return Err(format!("whitespace at byte {i}"));
        }
        if key.contains(['?', '#']) {
            return Err("a query string or fragment is never part of a key".into());
        }
    }
    let (body, prefix) = match key.strip_suffix("/*") {
        Some(body) => (body, true),
        None => (key, false),
    };
    let mut buf = KeyBuf::new();
    match normalize(body.as_bytes(), case_sensitive, MAX_KEY_LEN + 1, &mut buf) {
        Ok(()) => {}
        Err(Stop::BadEscape) => {
            return Err("invalid percent-escape (write a literal `%` as `%25`)".into());
        }
        Err(Stop::TooLong) => return Err(format!("longer than {MAX_KEY_LEN} bytes")),
    }
    if buf.len() > MAX_KEY_LEN {
        return Err(format!("longer than {MAX_KEY_LEN} bytes"));
    }
    let s = String::from_utf8(buf.to_vec())
        .map_err(|_| "percent-escapes decode to invalid UTF-8".to_string())?;
    if s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("percent-escapes decode to a control character or space".into());
    }
    // `/*` alone is the catch-all prefix: the empty string before the first `/`.
    let s = if prefix && s == "/" { String::new() } else { s };
    Ok((s, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_is_agrees_with_normalize() {
        let paths = [
            "",
            "/",
            "//",
            "/go/a",
            "/go/a/",
            "/go/a//",
            "/go/A",
            "/GO/a/",
            "/go/%41",
            "/go/a%",
            "/go/ä",
            "/go/a-b_c.d~e",
            "/go/Z",
            "/go/z",
            "/go/[@`{]",
        ];
        for cs in [false, true] {
            for limit in [0, 3, 5, 6, MAX_KEY_LEN] {
                for p in paths {
                    let Some(k) = as_is(p.as_bytes(), cs, limit) else {
                        let has_upper = !cs && p.bytes().any(|b| b.is_ascii_uppercase());
                        assert!(p.contains('%') || has_upper || p.len() > limit, "{p:?}");
                        continue;
                    };
                    let mut b = KeyBuf::new();
                    assert_eq!(normalize(p.as_bytes(), cs, limit, &mut b), Ok(()), "{p:?}");
                    assert_eq!(k, &b[..], "{p:?} case_sensitive={cs} limit={limit}");
                }
            }
        }
    }

    fn norm(p: &str) -> Result<String, Stop> {
        let mut b = KeyBuf::new();
        normalize(p.as_bytes(), false, MAX_KEY_LEN, &mut b)
            .map(|_| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn table_of_cases() {
        let cases: &[(&str, Result<&str, Stop>)] = &[
            ("/go/summer-deal", Ok("/go/summer-deal")),
            ("/go/summer%2Ddeal", Ok("/go/summer-deal")),
            ("/go/summer%2ddeal", Ok("/go/summer-deal")),
            ("/GO/Summer-Deal", Ok("/go/summer-deal")),
            ("/go/summer-deal/", Ok("/go/summer-deal")),
            ("/go/summer-deal//", Ok("/go/summer-deal/")),
            ("/", Ok("/")),
            ("/go/a%2Fb", Ok("/go/a/b")),
            ("/go/%252D", Ok("/go/%2d")),
            ("/go/%", Err(Stop::BadEscape)),
            ("/go/%4", Err(Stop::BadEscape)),
            ("/go/%G1", Err(Stop::BadEscape)),
            ("/go/caf%C3%A9", Ok("/go/café")),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input).as_deref().map_err(|e| *e), *want, "{input}");
        }
    }

    #[test]
    fn case_sensitive_keeps_case() {
        let mut b = KeyBuf::new();
        normalize(b"/Go/X", true, 64, &mut b).unwrap();
        assert_eq!(&b[..], b"/Go/X");
    }

    #[test]
    fn too_long_keeps_prefix() {
        let mut b = KeyBuf::new();
        assert_eq!(
            normalize(b"/ab%63def", false, 4, &mut b),
            Err(Stop::TooLong)
        );
        assert_eq!(&b[..], b"/abc");
        assert_eq!(raw_offset(b"/ab%63def", 4), 6);
    }

    #[test]
    fn split_query_cases() {
        assert_eq!(split_query("/a?b=1#f"), ("/a", Some("b=1")));
        assert_eq!(split_query("/a#f?x"), ("/a", None));
        assert_eq!(split_query("/a"), ("/a", None));
        assert_eq!(split_query("/a?"), ("/a", Some("")));
    }

    #[test]
    fn stored_keys() {
        assert_eq!(
            normalize_stored("/Go/Deal/", false).unwrap(),
            ("/go/deal".into(), false)
        );
        assert_eq!(
            normalize_stored("/go/docs/*", false).unwrap(),
            ("/go/docs".into(), true)
        );
        assert_eq!(normalize_stored("/*", false).unwrap(), ("".into(), true));
        for bad in [
            "go/x",
            "/go/ x",
            "/go/\tx",
            "/go/x?y",
            "/go/50%off",
            "/go/%0a",
            "/go/%20",
        ] {
            assert!(normalize_stored(bad, false).is_err(), "{bad:?}");
        }
        assert!(normalize_stored(&format!("/{}", "a".repeat(MAX_KEY_LEN)), false).is_err());
        assert!(normalize_stored(&format!("/{}", "a".repeat(MAX_KEY_LEN - 1)), false).is_ok());
    }
}
