#![no_main]
//! Arbitrary bytes into the NginxMap parser; a parsed set is loaded and every key resolved.

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; panics and bad Locations are bugs.
    if let Ok(set) = linkgate::Format::NginxMap.parse(data) {
        common::exercise(set);
    }
});
