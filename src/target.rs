//! Target validation: what may ever be sent as a `Location`.
//!
//! A target is either an absolute `http`/`https` URL with a host and no userinfo, or a same-site
//! path that starts with exactly one `/`. Checks run on raw bytes *before* any URL parsing, because
//! WHATWG-style parsers silently strip tab/CR/LF (`java\tscript:` would become `javascript:`) and
//! treat `\` like `/` (`/\evil.example` would become protocol-relative).

use http::Uri;

/// Longest target accepted, in bytes.
pub const MAX_TARGET_LEN: usize = 8 * 1024;

/// Why a target was rejected. Every message names the offending byte or part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The target is empty.
    #[error("target is empty")]
    Empty,
    /// Longer than [`MAX_TARGET_LEN`].
    #[error("target is {len} bytes long; at most {MAX_TARGET_LEN} are allowed")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// An ASCII control character (CR, LF, NUL, TAB, DEL...).
    #[error("target has control character 0x{byte:02x} at byte {at}")]
    Control {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// A non-ASCII byte.
    #[error(
        "target has a non-ASCII character at byte {at}: percent-encode paths and queries \
         (UTF-8 `é` is `%C3%A9`) and write international host names in punycode (`xn--...`)"
    )]
    NonAscii {
        /// Its offset.
        at: usize,
    },
    /// A space.
    #[error("target has a space at byte {at}: percent-encode it as `%20`")]
    Space {
        /// Its offset.
        at: usize,
    },
    /// A backslash, which browsers read as `/`.
    #[error(
        "target has a backslash at byte {at}: browsers treat it as `/`; percent-encode it as `%5C`"
    )]
    Backslash {
        /// Its offset.
        at: usize,
    },
    /// `//host` or `/\host`: a protocol-relative URL that leaves the site.
    #[error("target starts with `//`: a protocol-relative URL; write `https://host/...` instead")]
    ProtocolRelative,
    /// A scheme other than `http`/`https`, or no scheme and no leading `/`.
    #[error(
        "target scheme `{scheme}` is not allowed: only http:// and https:// URLs or paths starting with `/`"
    )]
    Scheme {
        /// What stood before the first `:` (truncated).
        scheme: String,
    },
    /// `https:host` or `https:/host`: the scheme is not followed by `//`.
    #[error("target scheme must be followed by `//` (as in `https://host/`)")]
    MissingSlashes,
    /// No host after `https://`.
    #[error("target has no host")]
    NoHost,
    /// `https://user@host/`: userinfo hides the real host from readers.
    #[error("target has userinfo (`...@host`): the real host would be `{host}`")]
    Userinfo {
        /// The host a browser would go to.
        host: String,
    },
    /// The host has characters that are not allowed in a host name.
    #[error("target host `{host}` is not a valid host name")]
    BadHost {
        /// The host.
        host: String,
    },
    /// `http::Uri` rejected it.
    #[error("target is not a valid URI: {reason}")]
    Uri {
        /// The parser's message.
        reason: String,
    },
}

/// What kind of target passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// `http(s)://host/...`
    Absolute,
    /// `/path` on the same site.
    Relative,
}

/// Checks a target and returns its kind. `HeaderValue::from_str` succeeds for every accepted target.
pub(crate) fn validate(target: &str) -> Result<TargetKind, TargetError> {
    let bytes = target.as_bytes();
    if bytes.is_empty() {
        return Err(TargetError::Empty);
    }
    // Raw bytes first, before anything interprets the string. The common case (every byte
    // visible ASCII, no `\`) is one branch-free pass; the loop below names the first bad byte.
    let plain = bytes.iter().fold(true, |ok, &b| {
        ok & (0x21..=0x7e).contains(&b) & (b != b'\\')
    });
    if !plain {
        for (at, &byte) in bytes.iter().enumerate() {
            match byte {
                0..=0x1f | 0x7f => return Err(TargetError::Control { byte, at }),
                0x80.. => return Err(TargetError::NonAscii { at }),
                b' ' => return Err(TargetError::Space { at }),
                b'\\' => return Err(TargetError::Backslash { at }),
                _ => {}
            }
        }
    }
    if bytes.len() > MAX_TARGET_LEN {
        return Err(TargetError::TooLong { len: bytes.len() });
    }
    let kind = if bytes[0] == b'/' {
        if bytes.get(1) == Some(&b'/') {
            return Err(TargetError::ProtocolRelative);
        }
        TargetKind::Relative
    } else {
        let colon = target.find(':').ok_or_else(|| TargetError::Scheme {
            scheme: target.chars().take(16).collect(),
        })?;
        let scheme = &target[..colon];
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(TargetError::Scheme {
                scheme: scheme.chars().take(16).collect(),
            });
        }
        let rest = target[colon + 1..]
            .strip_prefix("//")
            .ok_or(TargetError::MissingSlashes)?;
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            return Err(TargetError::Userinfo {
                host: authority[at + 1..].to_string(),
            });
        }
        let host = host_of(authority);
        if host.is_empty() {
            return Err(TargetError::NoHost);
        }
        let ok = if host.starts_with('[') {
            host.ends_with(']')
                && host[1..host.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        } else {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if !ok {
            return Err(TargetError::BadHost {
                host: host.to_string(),
            });
        }
        TargetKind::Absolute
    };
    let uri: Uri = target
        .parse()
        .map_err(|e: http::uri::InvalidUri| TargetError::Uri {
            reason: e.to_string(),
        })?;
    if kind == TargetKind::Absolute && uri.host().is_none() {
        return Err(TargetError::NoHost);
    }
    // No `HeaderValue` check: the byte loop above admits only 0x21..=0x7E (minus `\`), all of
    // which a header value accepts (`every_admitted_byte_is_a_header_value_byte` proves it), and
    // the snapshot builds the real `Location` from these bytes, checked again, at load time.
    Ok(kind)
}

/// The host part of an authority (`host:port` → `host`, `[::1]:80` → `[::1]`).
pub(crate) fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        authority.split(':').next().unwrap_or("")
    }
}

/// For a target on one of `own_hosts` (or a relative one), the path it points to; else `None`.
pub(crate) fn own_path<'a>(target: &'a str, own_hosts: &[String]) -> Option<&'a str> {
    let path_and_rest = if target.starts_with('/') {
        target
    } else {
        let rest = &target[target.find("://")? + 3..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = host_of(&rest[..end]);
        if !own_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return None;
        }
        if end == rest.len() { "/" } else { &rest[end..] }
    };
    let end = path_and_rest
        .find(['?', '#'])
        .unwrap_or(path_and_rest.len());
    Some(if end == 0 { "/" } else { &path_and_rest[..end] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn every_admitted_byte_is_a_header_value_byte() {
        // `validate` skips a `HeaderValue` check because its byte loop already implies it.
        for b in 0u8..=255 {
            let admitted = validate(&format!("/{}", b as char)).is_ok()
                || validate(&format!("/x{}", b as char)).is_ok();
            if admitted {
                assert!(
                    HeaderValue::from_bytes(&[b'/', b]).is_ok(),
                    "byte {b:#04x} is admitted but not a header value byte"
                );
            }
        }
        assert!(validate("/a~b!$&'()*+,;=:@").is_ok());
    }

    #[test]
    fn accepts() {
        for ok in [
            "https://store.com/p/123?ref=aff_01",
            "http://store.com",
            "HTTPS://Store.com/x",
            "https://store.com:8443/x#frag",
            "https://[2001:db8::1]/x",
            "/local/path?x=1",
            "/",
            "https://store.com/p?sub={click_id}",
        ] {
            assert!(validate(ok).is_ok(), "{ok}: {:?}", validate(ok));
        }
    }

    #[test]
    fn rejects_every_known_trick() {
        use TargetError as E;
        type Check = fn(&TargetError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::Empty)),
            ("javascript:alert(1)", |e| matches!(e, E::Scheme { .. })),
            ("JavaScript:alert(1)", |e| matches!(e, E::Scheme { .. })),
            ("java\tscript:alert(1)", |e| {
                matches!(e, E::Control { byte: 9, .. })
            }),
            ("\x01https://store.com/", |e| {
                matches!(e, E::Control { at: 0, .. })
            }),
            (" https://store.com/", |e| matches!(e, E::Space { at: 0 })),
            ("data:text/html,hi", |e| matches!(e, E::Scheme { .. })),
            ("file:///etc/passwd", |e| matches!(e, E::Scheme { .. })),
            ("ftp://x.com/", |e| matches!(e, E::Scheme { .. })),
            ("//evil.example", |e| matches!(e, E::ProtocolRelative)),
            ("/\\evil.example", |e| matches!(e, E::Backslash { at: 1 })),
            ("https:\\\\evil.example", |e| {
                matches!(e, E::Backslash { .. })
            }),
            ("https:evil.example", |e| matches!(e, E::MissingSlashes)),
            ("https:/evil.example", |e| matches!(e, E::MissingSlashes)),
            ("https://store.com@evil.example/", |e| {
                matches!(e, E::Userinfo { .. })
            }),
            ("https:///path", |e| matches!(e, E::NoHost)),
            ("https://st ore.com/", |e| matches!(e, E::Space { .. })),
            ("https://store.com/\r\nSet-Cookie:x", |e| {
                matches!(e, E::Control { byte: 13, .. })
            }),
            ("https://store.com/\0", |e| {
                matches!(e, E::Control { byte: 0, .. })
            }),
            ("https://store.com/\x7f", |e| {
                matches!(e, E::Control { byte: 0x7f, .. })
            }),
            ("https://café.com/", |e| {
                matches!(e, E::NonAscii { at: 11 })
            }),
            ("https://store.com/é", |e| matches!(e, E::NonAscii { .. })),
            ("https://sto_re.com/", |e| matches!(e, E::BadHost { .. })),
            ("store.com/x", |e| matches!(e, E::Scheme { .. })),
        ];
        for (input, check) in cases {
            let err = validate(input).expect_err(input);
            assert!(check(&err), "{input:?} gave {err:?}");
        }
        let long = format!("https://store.com/{}", "a".repeat(MAX_TARGET_LEN));
        assert!(matches!(validate(&long), Err(E::TooLong { .. })));
        assert!(
            TargetError::NonAscii { at: 3 }
                .to_string()
                .contains("punycode")
        );
    }

    #[test]
    fn own_paths() {
        let own = vec!["links.example".to_string()];
        assert_eq!(own_path("/go/a?x", &own), Some("/go/a"));
        assert_eq!(
            own_path("https://LINKS.example/go/b#f", &own),
            Some("/go/b")
        );
        assert_eq!(own_path("https://links.example", &own), Some("/"));
        assert_eq!(own_path("https://other.example/go/b", &own), None);
    }
}
