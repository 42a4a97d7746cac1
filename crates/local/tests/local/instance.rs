//! One emulated instance for tests of what runs on it: a moto account, a sandbox, the
//! instance's credentials, and the notebook it serves.

use jiff::Timestamp;
use nbfleet_aws::ParameterSecrets;
use nbfleet_core::ports::Secrets;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Config, Notebook, report, scripts};
use nbfleet_local::moto;
use nbfleet_local::runner::{Credentials, RunOutput, Runner, Sandbox, instance_credentials};
use std::path::PathBuf;
use std::time::Duration;

/// One emulated instance: its moto account, sandbox and credentials. Stops Jupyter when dropped.
pub struct Instance {
    pub cfg: Config,
    pub secrets: ParameterSecrets,
    pub runner: Runner,
    pub sandbox: Sandbox,
    pub creds: Credentials,
    pub nb: Notebook,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.sandbox.stop_jupyter();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An instance for a notebook launched with `body`, with `secret` stored as its parameter.
pub async fn instance(body: &str, secret: Option<&str>) -> Instance {
    let endpoint = moto::endpoint_from_env();
    let account = moto::fresh_account();
    let cfg = nbfleet_core::config::from_vars([("NBFLEET_TABLE".to_string(), "t".to_string())]).unwrap();
    let spec = parse_launch(body.as_bytes(), &cfg).unwrap();
    let nb = Notebook::new(
        &spec,
        &nbfleet_core::identity::Principal::named("alice"),
        1,
        idle_policy(&spec, &cfg),
        Timestamp::now(),
    );
    let secrets = ParameterSecrets::new(moto::clients(&endpoint, &account).ssm);
    if let Some(value) = secret {
        secrets
            .put(&cfg.secret_parameter(&nb.name), value, &nb.name)
            .await
            .unwrap();
    }
    let runner = Runner::new(
        repo_root().join("target/local-tests").join(&account),
        repo_root().join(".venv"),
        &endpoint,
        moto::REGION,
    );
    let sandbox = runner.sandbox("i-0123456789abcdef0").unwrap();
    let creds = instance_credentials(&endpoint, &account).await.unwrap();
    Instance {
        cfg,
        secrets,
        runner,
        sandbox,
        creds,
        nb,
    }
}

impl Instance {
    pub async fn run(&self, script: &scripts::Script) -> RunOutput {
        // A command id of its own, as SSM gives each command (runs may overlap).
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("cmd-{}-{n}", &script.sha256()[..12]);
        self.runner
            .run(
                &self.sandbox,
                &id,
                &script.text,
                &self.creds,
                Duration::from_secs(300),
            )
            .await
            .unwrap()
    }

    /// Runs the bootstrap and insists it succeeded.
    pub async fn bootstrap(&self) -> report::BootstrapReport {
        let script = scripts::bootstrap(&self.nb, &self.cfg, moto::REGION).unwrap();
        let out = self.run(&script).await;
        assert_eq!(
            out.exit_code,
            Some(0),
            "bootstrap failed\nstderr: {}\njupyter log: {}",
            out.stderr,
            self.sandbox.jupyter_log()
        );
        assert_eq!(
            out.sha256,
            script.sha256(),
            "the runner ran other bytes than were rendered"
        );
        report::parse_bootstrap(&out.stdout).unwrap()
    }

    /// Runs `code` with the project's Python (jupyter_client, tornado), with Jupyter's port,
    /// the sandbox home and `token` as its first arguments, then `more`; insists it succeeded and
    /// answers its stdout.
    pub fn python(&self, token: &str, code: &str, more: &[&str]) -> String {
        let out = std::process::Command::new(repo_root().join(".venv/bin/python3"))
            .args(["-c", code, &self.sandbox.port().unwrap().to_string()])
            .arg(self.sandbox.home())
            .arg(token)
            .args(more)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the health check as rendered for this notebook.
    pub async fn health_check(&self) -> RunOutput {
        self.run(&scripts::health_check(&self.nb, &self.cfg, moto::REGION).unwrap())
            .await
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.sandbox.port().unwrap())
    }
}
