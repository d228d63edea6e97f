//! # linkgate
//!
//! Redirect links (affiliate, vanity, short links) served from inside your app: an in-memory,
//! lock-free [`LinkTable`] that resolves a path in nanoseconds and is swapped atomically on reload.
//!
//! ```
//! use linkgate::{Format, Link, LinkTable};
//!
//! // Load links from an nginx map (the format nginx users already have)...
//! let set = Format::NginxMap.parse(b"
//!     map $uri $affiliate_url {
//!         /go/summer-deal https://store.com/p/123?ref=aff_01;
//!         default         https://store.com/;
//!     }")?;
//! let table = LinkTable::from_links(set)?;
//!
//! // ...resolve request paths: case, percent-encoding and a trailing slash don't matter.
//! let r = table.resolve("/go/Summer%2DDeal/?utm_source=x");
//! assert_eq!(r.status(), 302);
//! assert_eq!(r.location(), "https://store.com/p/123?ref=aff_01");
//! assert!(table.resolve("/go/unknown").is_default());
//!
//! // ...and reload atomically: readers see the old table or the new one, never a mix.
//! let report = table.reload(vec![
//!     Link::builder("/go/summer-deal", "https://store.com/p/456?ref=aff_01").status(301).build()?,
//! ])?;
//! assert_eq!((report.changed, report.version), (1, 2));
//! let response: http::Response<()> = table.resolve("/go/summer-deal").into_response();
//! assert_eq!(response.headers()["location"], "https://store.com/p/456?ref=aff_01");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//! | feature | default | what |
//! |---|---|---|
//! | `os` | yes | threads, files, the OS clock and randomness: [`load_file`], the wall clock for link time windows |
//! | `json` | yes | the JSON link-file format (serde) |
//!
//! With `--no-default-features` the core (`Link`, `LinkTable`, `resolve`, nginx-map and CSV
//! formats) builds for `wasm32-unknown-unknown`, for edge workers.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

mod clock;
mod error;
mod format;
mod key;
mod link;
mod location;
mod redirect;
mod set;
mod snapshot;
mod table;
mod target;

#[cfg(feature = "os")]
pub use clock::system_now_ms;
pub use error::{EntryError, EntryProblem, LinkError, LoadError, MAX_REPORTED_ERRORS, SyntaxError};
pub use format::Format;
#[cfg(feature = "os")]
pub use format::load_file;
pub use key::{INLINE_KEY, MAX_KEY_LEN};
pub use link::{DefaultRedirect, Link, LinkBuilder, MAX_TAGS, Origin, Tags};
pub use redirect::{MatchedLink, PERMANENT_MAX_AGE, Redirect};
pub use set::LinkSet;
pub use snapshot::{Diff, Snapshot};
pub use table::{LinkTable, ReloadReport, TableBuilder};
pub use target::{MAX_TARGET_LEN, TargetError};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<LinkTable>();
    check::<Snapshot>();
    check::<Redirect>();
    check::<Link>();
    check::<LoadError>();
}
