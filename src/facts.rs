//! The request headers the gate looks at, found in one pass over the header map (instead of a
//! hash lookup per header per consumer: bots, rules and the click each read the User-Agent).

use std::cell::Cell;

use http::header::{ACCEPT_LANGUAGE, REFERER, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::click::{MAX_HEADER_BYTES, bounded_bytes};
use crate::ua_memo::ua_digest;

/// What one request says about its visitor.
#[derive(Debug, Default, Clone)]
pub(crate) struct Facts<'a> {
    /// The first `User-Agent`.
    pub(crate) user_agent: Option<&'a HeaderValue>,
    /// How many `User-Agent` headers there are.
    pub(crate) user_agents: u8,
    pub(crate) referer: Option<&'a HeaderValue>,
    pub(crate) accept_language: Option<&'a HeaderValue>,
    /// The configured country header's first value.
    pub(crate) country: Option<&'a HeaderValue>,
    /// A browser prefetch / prerender / preview signal (see `BotDetector::classify_request`).
    pub(crate) prefetch: bool,
    /// [`ua_digest`](Self::ua_digest), once computed.
    digest: Cell<Option<u64>>,
}

impl<'a> Facts<'a> {
    pub(crate) fn scan(headers: &'a HeaderMap, country: Option<&HeaderName>) -> Facts<'a> {
        let mut f = Facts::default();
        for (name, value) in headers {
            if name == USER_AGENT {
                f.user_agent.get_or_insert(value);
                f.user_agents = f.user_agents.saturating_add(1);
            } else if name == REFERER {
                f.referer.get_or_insert(value);
            } else if name == ACCEPT_LANGUAGE {
                f.accept_language.get_or_insert(value);
            } else if country == Some(name) {
                f.country.get_or_insert(value);
            } else if !f.prefetch {
                f.prefetch = match name.as_str() {
                    "sec-purpose" | "purpose" | "x-moz" => has_token(value, b"prefetch"),
                    "x-purpose" => has_token(value, b"preview"),
                    _ => false,
                };
            }
        }
        f
    }

    /// The first User-Agent as a click records it (cut at [`MAX_HEADER_BYTES`]; empty if
    /// none).
    pub(crate) fn recorded_user_agent(&self) -> &'a [u8] {
        self.user_agent
            .map_or(&[][..], |v| bounded_bytes(v.as_bytes(), MAX_HEADER_BYTES))
    }

    /// The `ua_digest` of [`recorded_user_agent`](Self::recorded_user_agent), computed on
    /// first use: the unique filter's key and the gate's User-Agent memo share it.
    #[inline]
    pub(crate) fn ua_digest(&self) -> u64 {
        if let Some(d) = self.digest.get() {
            return d;
        }
        let d = ua_digest(self.recorded_user_agent());
        self.digest.set(Some(d));
        d
    }
}

/// Whether a `;`/`,`-separated header value holds `token` (ASCII case-insensitive).
pub(crate) fn has_token(v: &HeaderValue, token: &[u8]) -> bool {
    v.as_bytes()
        .split(|&b| b == b';' || b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_finds_everything() {
        let (parts, _) = http::Request::get("/")
            .header("user-agent", "a")
            .header("User-Agent", "b")
            .header("referer", "https://r.example/")
            .header("accept-language", "de")
            .header("cf-ipcountry", "AT")
            .header("sec-purpose", "prefetch;prerender")
            .body(())
            .unwrap()
            .into_parts();
        let c = HeaderName::from_static("cf-ipcountry");
        let f = Facts::scan(&parts.headers, Some(&c));
        assert_eq!(f.user_agent.unwrap(), "a");
        assert_eq!(f.user_agents, 2);
        assert_eq!(f.referer.unwrap(), "https://r.example/");
        assert_eq!(f.accept_language.unwrap(), "de");
        assert_eq!(f.country.unwrap(), "AT");
        assert!(f.prefetch);
        let f = Facts::scan(&parts.headers, None);
        assert!(f.country.is_none());
        let (parts, _) = http::Request::get("/")
            .header("x-purpose", "prefetch")
            .body(())
            .unwrap()
            .into_parts();
        assert!(!Facts::scan(&parts.headers, None).prefetch);
    }
}
