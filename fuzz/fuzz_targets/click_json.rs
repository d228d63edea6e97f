#![no_main]
//! Arbitrary bytes into `Click::from_json` (what the spool replays); a click that parses must
//! print JSON that parses back to the same click and the same bytes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; panics and a JSON form that does not round-trip are bugs.
    if let Ok(c) = linkgate::Click::from_json(data) {
        let json = c.to_json();
        let back = linkgate::Click::from_json(&json).expect("to_json output parses");
        assert_eq!(back, c);
        assert_eq!(back.to_json(), json);
    }
});
