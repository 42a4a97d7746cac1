//! Rendering the shell scripts that run on instances (`crates/core/scripts/*.sh`).
//!
//! A template is a complete bash script with one marker line; rendering replaces it with
//! `NAME='value'` assignments. Values are validated before they get here, and checked again
//! against a strict character set and single-quoted, so nothing a user typed can become shell
//! syntax. Secrets are never rendered: the script fetches its own from Parameter Store.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::record::{Notebook, SecretKind};
use crate::validate::AccessMode;
use sha2::{Digest, Sha256};

const BOOTSTRAP: &str = include_str!("../scripts/bootstrap.sh");
const HEALTH: &str = include_str!("../scripts/health.sh");
const PROBE: &str = include_str!("../scripts/probe.sh");
const HOOK: &str = include_str!("../scripts/hook.sh");
/// The files a template pastes in with a `# @@NBFLEET_INCLUDE <file>@@` line: `fetch_secret`,
/// shared by the bootstrap and the health check, and the `nbfleet-busy` command the bootstrap
/// installs.
const INCLUDES: [(&str, &str); 2] = [
    ("fetch-secret.sh", include_str!("../scripts/fetch-secret.sh")),
    ("nbfleet-busy", include_str!("../scripts/nbfleet-busy")),
];
const MARKER: &str = "# @@NBFLEET_VALUES@@";

/// Which script a command runs, as recorded for the SSM status-change event to read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptKind {
    Bootstrap,
    Health,
    Probe,
    /// The owner's pre-stop hook: the stop waits for its end (or its deadline).
    PreStop,
    /// The owner's on-start hook, after every Ready.
    OnStart,
}

/// A rendered script: the exact bytes sent to SSM and run on the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub kind: ScriptKind,
    pub text: String,
}

impl Script {
    /// SHA-256 of the script, hex: what was sent and what ran can be compared by it.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }
}

/// The first-boot script for `nb`: installs and configures Jupyter, prints its report.
pub fn bootstrap(nb: &Notebook, cfg: &Config, region: &str) -> Result<Script> {
    let kind = match nb.secret_kind {
        SecretKind::Password => "password",
        SecretKind::Token => "token",
    };
    let mode = match nb.access.mode {
        AccessMode::Ssm => "ssm",
        AccessMode::Cidr => "cidr",
    };
    let secret = cfg.secret_parameter(&nb.name);
    let fallback_seconds = (u64::from(nb.idle.instance_fallback_minutes) * 60).to_string();
    let text = render(
        &with_includes(BOOTSTRAP)?,
        &[
            ("NB_NAME", &nb.name),
            ("SECRET_PARAM", &secret),
            ("SECRET_KIND", kind),
            ("ACCESS_MODE", mode),
            ("AWS_REGION_NAME", region),
            ("FALLBACK_SECONDS", &fallback_seconds),
        ],
    )?;
    Ok(Script {
        kind: ScriptKind::Bootstrap,
        text,
    })
}

/// The after-restart (and after-credential-change) script for `nb`: takes the secret from
/// Parameter Store again, Jupyter is up over HTTPS with it; prints the served fingerprint.
pub fn health_check(nb: &Notebook, cfg: &Config, region: &str) -> Result<Script> {
    let text = render(
        &with_includes(HEALTH)?,
        &[
            ("NB_NAME", &nb.name),
            ("SECRET_PARAM", &cfg.secret_parameter(&nb.name)),
            ("AWS_REGION_NAME", region),
        ],
    )?;
    Ok(Script {
        kind: ScriptKind::Health,
        text,
    })
}

/// The idle probe: one compact JSON line about kernels, terminals and GPUs. The same bytes for
/// every notebook, so one SendCommand can carry it to 50 instances.
pub fn probe() -> Result<Script> {
    let text = render(PROBE, &[])?;
    Ok(Script {
        kind: ScriptKind::Probe,
        text,
    })
}

/// `template` with each include line replaced by its file.
/// The owner's `hook` (pre-stop or on-start) for `nb`, run as the notebook user under a limit
/// of `timeout_seconds`. The hook's text travels hex-encoded: nothing in it is shell syntax in
/// the rendered script.
pub fn hook(nb: &Notebook, kind: ScriptKind, hook: &str, timeout_seconds: u32) -> Result<Script> {
    let name = match kind {
        ScriptKind::PreStop => "pre_stop",
        ScriptKind::OnStart => "on_start",
        _ => return Err(Error::internal("not a hook")),
    };
    let text = render(
        HOOK,
        &[
            ("NB_NAME", &nb.name),
            ("HOOK_NAME", name),
            ("HOOK_HEX", &hex::encode(hook.as_bytes())),
            ("HOOK_TIMEOUT", &timeout_seconds.to_string()),
        ],
    )?;
    Ok(Script { kind, text })
}

fn with_includes(template: &str) -> Result<String> {
    let mut text = template.to_string();
    for (file, content) in INCLUDES {
        text = text.replace(&format!("# @@NBFLEET_INCLUDE {file}@@"), content.trim_end());
    }
    if text.contains("# @@NBFLEET_INCLUDE") {
        return Err(Error::internal("script template includes an unknown file"));
    }
    Ok(text)
}

fn render(template: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut block = String::new();
    for (name, value) in values {
        block.push_str(&format!("{name}={}\n", quote(name, value)?));
    }
    if template.matches(MARKER).count() != 1 {
        return Err(Error::internal(
            "script template must hold exactly one values marker",
        ));
    }
    Ok(template.replacen(MARKER, block.trim_end(), 1))
}

/// Single-quotes `value` for bash after checking it holds only characters nbfleet's validated
/// values can contain. Anything else is a bug upstream, refused rather than escaped.
fn quote(name: &str, value: &str) -> Result<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._/:@-".contains(c);
    if value.is_empty() || !value.chars().all(safe) {
        return Err(Error::internal(format!(
            "refusing to render {name}: unexpected characters"
        )));
    }
    Ok(format!("'{value}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::test_config;
    use crate::record::tests::sample;
    use jiff::Timestamp;

    fn nb() -> Notebook {
        sample(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn the_bootstrap_carries_its_values_quoted_at_the_top() {
        let s = bootstrap(&nb(), &test_config(), "eu-west-1").unwrap();
        assert!(s.text.starts_with("#!/bin/bash\n"));
        for line in [
            "NB_NAME='nb-1'",
            "SECRET_PARAM='/nbfleet/notebooks/nb-1/secret'",
            "SECRET_KIND='token'",
            "ACCESS_MODE='ssm'",
            "AWS_REGION_NAME='eu-west-1'",
        ] {
            assert!(s.text.lines().any(|l| l == line), "missing {line}");
        }
        assert!(!s.text.contains(MARKER));
    }

    #[test]
    fn the_production_rendering_never_allows_root() {
        let s = bootstrap(&nb(), &test_config(), "us-east-1").unwrap();
        assert!(!s.text.contains("allow_root"));
        let health = health_check(&nb(), &test_config(), "us-east-1").unwrap();
        assert!(!health.text.contains("allow_root"));
    }

    #[test]
    fn the_tutorials_notebookapp_keys_are_not_used() {
        let s = bootstrap(&nb(), &test_config(), "us-east-1").unwrap();
        assert!(!s.text.contains("c.NotebookApp"));
        assert!(
            s.text
                .contains("c.PasswordIdentityProvider.allow_password_change = False")
        );
    }

    #[test]
    fn the_bootstrap_installs_nbfleet_busy_whole() {
        let s = bootstrap(&nb(), &test_config(), "eu-west-1").unwrap();
        assert!(s.text.contains(INCLUDES[1].1.trim_end()));
        assert!(with_includes("# @@NBFLEET_INCLUDE nope.sh@@").is_err());
    }

    #[test]
    fn a_hook_travels_hex_encoded_so_nothing_in_it_is_shell_syntax_in_the_script() {
        let hostile = "echo '$(id)'; rm -rf / # \n`reboot`";
        let s = hook(&nb(), ScriptKind::PreStop, hostile, 120).unwrap();
        assert!(!s.text.contains("reboot") && !s.text.contains("$(id)"));
        assert!(
            s.text
                .lines()
                .any(|l| l == format!("HOOK_HEX='{}'", hex::encode(hostile)))
        );
        assert!(s.text.lines().any(|l| l == "HOOK_TIMEOUT='120'"));
        assert!(hook(&nb(), ScriptKind::Probe, "x", 1).is_err());
    }

    #[test]
    fn hostile_values_are_refused_not_rendered() {
        for bad in ["a'b", "$(id)", "`id`", "a b", "a\nb", "a;b", "", "a\"b", "a\\b"] {
            let err = render("x\n# @@NBFLEET_VALUES@@\n", &[("V", bad)]).unwrap_err();
            assert_eq!(err.status(), 500, "{bad:?}");
        }
    }

    #[test]
    fn a_hostile_region_cannot_reach_the_script() {
        assert!(bootstrap(&nb(), &test_config(), "us-east-1'; reboot; '").is_err());
    }

    #[test]
    fn the_health_check_is_rendered_and_hashable() {
        let s = health_check(&nb(), &test_config(), "eu-west-1").unwrap();
        assert_eq!(s.kind, ScriptKind::Health);
        for line in [
            "NB_NAME='nb-1'",
            "SECRET_PARAM='/nbfleet/notebooks/nb-1/secret'",
            "AWS_REGION_NAME='eu-west-1'",
        ] {
            assert!(s.text.lines().any(|l| l == line), "missing {line}");
        }
        assert_eq!(s.sha256().len(), 64);
        assert_eq!(
            s.sha256(),
            health_check(&nb(), &test_config(), "eu-west-1").unwrap().sha256()
        );
    }

    #[test]
    fn the_bootstrap_and_the_health_check_fetch_the_secret_with_the_same_function() {
        let boot = bootstrap(&nb(), &test_config(), "eu-west-1").unwrap();
        let health = health_check(&nb(), &test_config(), "eu-west-1").unwrap();
        for s in [&boot, &health] {
            assert!(s.text.contains("fetch_secret() {"));
            assert!(s.text.lines().any(|l| l == "fetch_secret"));
            assert!(!s.text.contains("@@NBFLEET_INCLUDE"));
        }
    }
}
