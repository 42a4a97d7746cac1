//! The rendered instance scripts pass `bash -n` and shellcheck (Debian's package; `make test`
//! installs it), in both access modes and both credential kinds, and so do the probe and the
//! `nbfleet-busy` command the bootstrap installs.

use jiff::Timestamp;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Notebook, scripts};
use std::io::Write;
use std::process::{Command, Stdio};

fn rendered() -> Vec<(String, String)> {
    let cfg = nbfleet_core::config::from_vars([("NBFLEET_TABLE".to_string(), "t".to_string())]).unwrap();
    let mut out = Vec::new();
    for body in [
        r#"{"name":"ssm-token"}"#,
        r#"{"name":"cidr-pw","password":"correct horse","access":{"mode":"cidr","cidrs":["203.0.113.0/24"]}}"#,
    ] {
        let spec = parse_launch(body.as_bytes(), &cfg).unwrap();
        let nb = Notebook::new(
            &spec,
            &nbfleet_core::identity::Principal::named("alice"),
            1,
            idle_policy(&spec, &cfg),
            Timestamp::UNIX_EPOCH,
        );
        out.push((
            format!("bootstrap {body}"),
            scripts::bootstrap(&nb, &cfg, "us-east-1").unwrap().text,
        ));
        out.push((
            format!("health {body}"),
            scripts::health_check(&nb, &cfg, "us-east-1").unwrap().text,
        ));
    }
    out.push(("probe".into(), scripts::probe().unwrap().text));
    out.push((
        "nbfleet-busy".into(),
        include_str!("../../../core/scripts/nbfleet-busy").into(),
    ));
    out.push((
        "systemctl shim".into(),
        include_str!("../../shims/systemctl").into(),
    ));
    out
}

fn check(cmd: &str, args: &[&str], what: &str, text: &str) {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}); `make test` installs it"));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} refuses the {what} script:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rendered_scripts_pass_bash_n() {
    for (what, text) in rendered() {
        check("bash", &["-n"], &what, &text);
    }
}

#[test]
fn rendered_scripts_pass_shellcheck() {
    for (what, text) in rendered() {
        check(
            "shellcheck",
            &["--shell=bash", "--severity=style", "-"],
            &what,
            &text,
        );
    }
}

#[test]
fn the_bootstrap_takes_jupyter_server_2_or_newer_and_an_older_one_is_replaced() {
    // The bootstrap's own version check, run against this machine's jupyter_server (2.x) and
    // against a jupyter_server 1.x placed in front of it.
    let (_, bootstrap) = &rendered()[0];
    let check = bootstrap
        .lines()
        .find_map(|l| l.strip_prefix("JUPYTER_OK='"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("the bootstrap's jupyter_server check");
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python3");
    let passes = |pythonpath: Option<&std::path::Path>| {
        let mut c = Command::new(python);
        c.args(["-c", check]);
        if let Some(p) = pythonpath {
            c.env("PYTHONPATH", p);
        }
        c.status().unwrap().success()
    };
    assert!(passes(None), "this machine's jupyter_server 2 passes");
    let old = std::env::temp_dir().join(format!("nbfleet-old-jupyter-{}", std::process::id()));
    std::fs::create_dir_all(old.join("jupyter_server")).unwrap();
    std::fs::write(
        old.join("jupyter_server/__init__.py"),
        "__version__ = \"1.24.0\"\n",
    )
    .unwrap();
    assert!(
        !passes(Some(&old)),
        "jupyter_server 1.24 is refused, so the bootstrap installs a current one"
    );
    std::fs::remove_dir_all(&old).unwrap();
    assert!(
        bootstrap.contains("pip install --quiet --upgrade 'jupyter_server>=2' jupyterlab"),
        "and what it installs is 2 or newer"
    );
}
