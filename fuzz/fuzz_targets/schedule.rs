//! Any JSON as a schedule: parsed or refused by field; a parsed one answers for any instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbfleet_core::schedule::Schedule;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(s) = Schedule::parse(&value) {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let _ = (s.closes_at(at), s.opened_at(at), s.describe());
    }
});
