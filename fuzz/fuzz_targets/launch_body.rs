//! Any bytes as a `POST /notebooks` body: parsed and validated, or refused with a 4xx, never a
//! panic; what is accepted holds the invariants the rest of nbfleet relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbfleet_core::validate::{parse_launch, validate_name};

fuzz_target!(|body: &[u8]| {
    let cfg = nbfleet_core::config::from_vars([("NBFLEET_TABLE".to_string(), "t".to_string())]).unwrap();
    match parse_launch(body, &cfg) {
        Ok(spec) => {
            assert!(validate_name(&spec.name).is_ok());
            assert!(cfg.instance_types.contains(&spec.instance_type));
            assert!(cfg.idle_timeout_minutes.contains(spec.idle_timeout_minutes));
        }
        Err(e) => assert!((400..500).contains(&e.status()), "{e:?} is not a 4xx"),
    }
});
