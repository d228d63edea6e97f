//! Click intelligence: tell human clicks from bots, scripts and link-preview fetchers.
//!
//! - [`BotDetector`]: classifies a request (User-Agent, method, prefetch headers) as
//!   [`UaClass::Human`], [`UaClass::Bot`] or [`UaClass::Preview`] with one automaton pass.

mod bots;
mod prefilter;

pub use bots::{BotDetector, BotDetectorBuilder, BotPatternError, BotReason, UaClass, Verdict};
