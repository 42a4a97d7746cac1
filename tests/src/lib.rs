//! End-to-end tests of nbfleet live in `tests/`: they start the `nbfleet-local` binary against
//! moto and drive it over HTTP, as a user would.

use std::path::PathBuf;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What template.yaml says, from `scripts/check-template.py --facts`: per function (by binary
/// name) its routes, its resolved environment and its IAM actions; the instance role's policy.
pub fn template_facts() -> serde_json::Value {
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/check-template.py"))
        .arg("--facts")
        .output()
        .expect("run scripts/check-template.py (make venv first)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the facts are JSON")
}
