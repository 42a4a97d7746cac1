//! Any bytes as a Slack request: the signature check, the form and the command grammar never
//! panic; a forged signature never verifies; an accepted command names a valid notebook.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbfleet_core::slack::{Command, SlashRequest, sign, verify};

fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let (head, body) = data.split_at(data.len().min(80));
    let head = String::from_utf8_lossy(head);
    let mut parts = head.splitn(2, '\n');
    let (ts, sig) = (parts.next(), parts.next());
    // Random headers essentially never verify; the real signature always does.
    if verify(b"secret", ts, sig, body, now).is_ok() {
        assert_eq!(sig.map(str::to_string), ts.map(|t| sign(b"secret", t.trim(), body)));
    }
    assert!(verify(b"secret", Some("1800000000"), Some(&sign(b"secret", "1800000000", body)), body, now).is_ok());
    if let Ok(req) = SlashRequest::parse(body) {
        if let Ok(Command::Start(name) | Command::Stop(name) | Command::Status(name)) = Command::parse(&req.text) {
            assert!(nbfleet_core::validate::validate_name(&name).is_ok());
        }
    }
    let _ = Command::parse(&String::from_utf8_lossy(body));
});
