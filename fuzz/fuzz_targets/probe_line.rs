//! Any probe output: read as an observation or as unknown, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nbfleet_core::report::parse_probe(&String::from_utf8_lossy(data));
});
