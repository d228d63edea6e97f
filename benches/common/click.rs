//! The request data the click benches share: a desktop Chrome `User-Agent`, a blog `Referer`,
//! and one realistic click (include with `#[path = "common/click.rs"] mod click;`).
#![allow(dead_code)]

use http::HeaderValue;
use http::uri::PathAndQuery;
use linkgate::{Click, ClickId, ClickIp};

pub const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
pub const REFERER: &str = "https://www.example-blog.com/2025/11/best-laptop-deals-this-week/";
pub const STATIC_KEY: &str = "/go/aff-0004242-kqz";

/// A click as the gate builds it for `STATIC_KEY` (headers shared with one `Parts`).
pub fn realistic_click(ms: i64) -> Click {
    let mut c = Click::new(
        ms,
        ClickId::at(ms),
        STATIC_KEY,
        HeaderValue::from_static("https://store.example.com/p/0004242?ref=aff_4242&utm=abcdefgh"),
        302,
    );
    c.ip = Some(ClickIp::Addr("203.0.113.0".parse().unwrap()));
    c.user_agent = Some(HeaderValue::from_static(UA));
    c.referer = Some(HeaderValue::from_static(REFERER));
    c.path_and_query = Some(PathAndQuery::from_static(
        "/go/aff-0004242-kqz?utm_source=blog",
    ));
    c
}
