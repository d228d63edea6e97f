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
//! | `spool` | no | `SpoolConfig`: an on-disk spool that carries clicks through long sink outages |
//! | `tower`, `axum`, `actix` | no | the middleware (`LinkgateLayer`, `LinkgateMiddleware`) |
//! | `redis` | no | `RedisSource`, `RedisLinkStore`, `RedisStreamSink` |
//! | `postgres` | no | `PostgresSource`, `PostgresSink` |
//! | `amqp` | no | `AmqpSink`: clicks to RabbitMQ with publisher confirms (lapin; Rust 1.88) |
//! | `webhook` | no | `WebhookSink`: HMAC-SHA256-signed JSON batches over HTTP (ureq), `verify_signature` |
//! | `webhook-rustls` | no | `https://` webhook URLs |
//! | `kafka` | no | `KafkaSink` (rdkafka with a bundled, statically linked librdkafka) |
//! | `fraud` | no | `BotDetector`, `UniqueFilter`, `FloodDetector`; `BotPolicy` and the flags in `Gate` |
//!
//! With `--no-default-features` the core (`Link`, `LinkTable`, `resolve`, nginx-map and CSV
//! formats) builds for `wasm32-unknown-unknown`, for edge workers.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
// Two documented exceptions, both measured: `fraud::sizing::advise_huge_pages` (an `madvise`
// call) and `fraud::prefetch::prefetch` (a cache-line prefetch hint).
#![deny(unsafe_code)]

#[cfg(feature = "os")]
mod click;
mod click_id;
#[cfg(all(feature = "os", feature = "json"))]
mod click_json;
mod clock;
#[cfg(feature = "os")]
mod drain;
mod error;
#[cfg(feature = "os")]
mod facts;
mod format;
#[cfg(feature = "fraud")]
mod fraud;
#[cfg(feature = "os")]
mod gate;
#[cfg(any(feature = "tower", feature = "actix"))]
pub mod integration;
#[cfg(feature = "os")]
mod ip;
mod key;
mod link;
mod location;
mod notes;
mod reader;
#[cfg(feature = "os")]
mod recorder;
mod redirect;
pub mod rules;
mod set;
mod shard;
#[cfg(feature = "os")]
pub mod sink;
mod snapshot;
#[cfg(feature = "os")]
pub mod source;
#[cfg(feature = "spool")]
mod spool;
mod table;
mod target;
mod template;
#[cfg(feature = "os")]
mod ua_memo;

#[cfg(feature = "os")]
pub use click::{Click, ClickNotes, MAX_HEADER_BYTES};
pub use click_id::{ClickId, ParseClickIdError};
#[cfg(all(feature = "os", feature = "json"))]
pub use click_json::ClickParseError;
#[cfg(feature = "os")]
pub use clock::{fast_now_ms, system_now_ms};
#[cfg(feature = "os")]
pub use drain::{DrainBuilder, DrainContext, DrainGuard, RetryPolicy};
pub use error::{EntryError, EntryProblem, LinkError, LoadError, MAX_REPORTED_ERRORS, SyntaxError};
pub use format::Format;
#[cfg(feature = "json")]
pub use format::apply_routing;
#[cfg(feature = "os")]
pub use format::load_file;
#[cfg(feature = "fraud")]
pub use fraud::{BotDetector, BotDetectorBuilder, BotPatternError, BotReason, UaClass, Verdict};
#[cfg(feature = "fraud")]
pub use fraud::{
    FLOOD_SOURCE, FLOOD_SOURCE_KEY, FloodDetector, FloodDetectorBuilder, FloodVerdict,
    StateConfigError, UniqueFilter, UniqueFilterBuilder, VisitorKey,
};
#[cfg(all(feature = "os", feature = "fraud"))]
pub use gate::BotPolicy;
#[cfg(feature = "os")]
pub use gate::{
    BadProxy, Decision, ExplainedOutcome, Explanation, Gate, GateBuilder, GateStats, Handled,
    MethodPolicy, TrustedProxy, UnknownPolicy,
};
#[cfg(feature = "actix")]
pub use integration::actix::LinkgateMiddleware;
#[cfg(feature = "tower")]
pub use integration::tower::{LinkgateLayer, LinkgateService, PeerAddr};
#[cfg(feature = "os")]
pub use ip::{ClickIp, IpPolicy, ParseClickIpError, anonymize};
pub use key::{INLINE_KEY, MAX_KEY_LEN};
pub use link::{DefaultRedirect, Link, LinkBuilder, MAX_TAGS, Origin, Tags};
pub use reader::{Resolved, TableReader};
#[cfg(feature = "os")]
pub use recorder::{ClickRecorder, FullPolicy, Recorded, Stats, TryRecordError};
pub use redirect::{MatchedLink, PERMANENT_MAX_AGE, Redirect};
pub use rules::{Device, Routing, Rule};
pub use set::LinkSet;
#[cfg(feature = "postgres")]
pub use sink::PostgresSink;
#[cfg(feature = "amqp")]
pub use sink::{AmqpConfigError, AmqpSink};
#[cfg(feature = "webhook")]
pub use sink::{
    BATCH_ID_HEADER, SIGNATURE_HEADER, SignatureError, WebhookConfigError, WebhookSink,
    sign_webhook, verify_signature,
};
#[cfg(feature = "os")]
pub use sink::{
    ClickSink, CountingSink, FanoutSink, FanoutStats, FnSink, JsonLinesSink, MemorySink, SinkError,
};
#[cfg(feature = "kafka")]
pub use sink::{KafkaSink, KafkaSinkBuilder, KafkaSinkError, KafkaStats};
#[cfg(feature = "redis")]
pub use sink::{RedisSinkConfigError, RedisStreamSink};
pub use snapshot::{Diff, Snapshot};
#[cfg(feature = "redis")]
pub use source::{
    DEFAULT_REDIS_URL, RedisLinkStore, RedisLinksConfig, RedisSource, RedisStoreError,
};
#[cfg(feature = "os")]
pub use source::{
    FileSource, LinkSource, Notifier, ReloadOutcome, Reloader, ReloaderBuilder, ReloaderStats,
};
#[cfg(feature = "postgres")]
pub use source::{PostgresConfigError, PostgresSource};
#[cfg(feature = "spool")]
pub use spool::{SpoolConfig, SpoolError};
pub use table::{LinkTable, ReloadReport, TableBuilder};
pub use target::{MAX_TARGET_LEN, TargetError};
pub use template::{CLICK_ID as CLICK_ID_PLACEHOLDER, KEY as KEY_PLACEHOLDER};

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
    #[cfg(feature = "fraud")]
    {
        check::<UniqueFilter>();
        check::<FloodDetector>();
        check::<VisitorKey>();
    }
}
