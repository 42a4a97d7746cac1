//! The local runner: executes a rendered instance script on this machine, as an instance would
//! under SSM Run Command. It runs the exact bytes that were sent; only the environment differs,
//! the way a different machine would:
//!
//! - each instance gets a sandbox directory as its home, its own unit directory, and a port;
//! - a `systemctl` shim comes first on PATH (systemd is not running here), then the project
//!   venv (its awscli and Python stand in for the DLAMI's);
//! - the script gets credentials for the instance's moto account through `sts:AssumeRole`,
//!   as an instance profile would hand them over;
//! - Jupyter refuses to run as root, and everything here runs as root: a config overlay on
//!   `JUPYTER_CONFIG_PATH` adds `allow_root`. The rendered script never contains it.

use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const SYSTEMCTL_SHIM: &str = include_str!("../shims/systemctl");
const UNIT: &str = "nbfleet-jupyter";

/// Temporary AWS credentials for one moto account.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Credentials for `account`, as an instance role in that account would receive them.
pub async fn instance_credentials(endpoint: &str, account: &str) -> io::Result<Credentials> {
    let conf = crate::moto::sdk_config(endpoint);
    let sts = aws_sdk_sts::Client::new(&conf);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/nbfleet-instance"))
        .role_session_name("nbfleet-local-instance")
        .send()
        .await
        .map_err(|e| io::Error::other(format!("sts:AssumeRole into {account}: {e:?}")))?;
    let c = out
        .credentials
        .ok_or_else(|| io::Error::other("AssumeRole returned no credentials"))?;
    Ok(Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
    })
}

/// What a script run left behind.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The exit code; `None` if the run was killed (timeout).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// SHA-256 of the bytes that ran.
    pub sha256: String,
}

/// Runs scripts for local instances under one base directory.
#[derive(Debug, Clone)]
pub struct Runner {
    base: PathBuf,
    venv: PathBuf,
    endpoint: String,
    region: String,
}

impl Runner {
    /// `base`: where sandboxes live; `venv`: the project venv (python, awscli, jupyterlab);
    /// `endpoint`: the moto server the scripts' awscli talks to.
    pub fn new(base: impl Into<PathBuf>, venv: impl Into<PathBuf>, endpoint: &str, region: &str) -> Self {
        Runner {
            base: base.into(),
            venv: venv.into(),
            endpoint: endpoint.into(),
            region: region.into(),
        }
    }

    /// Where the local stand-in for snapshot `id`'s contents is kept.
    fn disk(&self, id: &str) -> PathBuf {
        self.base.with_file_name("snapshots").join(id)
    }

    /// Keeps a copy of `instance_id`'s home as snapshot `id`'s contents (moto's snapshots hold
    /// none). Done once per snapshot.
    pub fn keep_disk(&self, instance_id: &str, id: &str) -> io::Result<()> {
        let to = self.disk(id);
        if to.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&to)?;
        copy_tree(&self.sandbox(instance_id)?.home(), &to)
    }

    /// Puts snapshot `id`'s contents in `instance_id`'s home, as a disk made from it would have
    /// them, once: a home with anything in it (a local stack started again) is left alone.
    /// False when nothing was put there.
    pub fn restore_disk(&self, instance_id: &str, id: &str) -> io::Result<bool> {
        let (from, home) = (self.disk(id), self.sandbox(instance_id)?.home());
        if !from.exists() || std::fs::read_dir(&home)?.next().is_some() {
            return Ok(false);
        }
        copy_tree(&from, &home)?;
        Ok(true)
    }

    /// The sandbox of `instance_id`, made on first use.
    pub fn sandbox(&self, instance_id: &str) -> io::Result<Sandbox> {
        let dir = self.base.join(instance_id);
        let sb = Sandbox { dir: dir.clone() };
        for d in [sb.home(), sb.units(), sb.run(), sb.shims(), sb.overlay()] {
            std::fs::create_dir_all(d)?;
        }
        // Called for every command and EC2 change while scripts and Jupyter may be reading
        // these: never rewritten in place.
        put_file(&sb.shims().join("systemctl"), SYSTEMCTL_SHIM, 0o755)?;
        put_file(
            &sb.overlay().join("jupyter_server_config.json"),
            r#"{"ServerApp": {"allow_root": true}}"#,
            0o644,
        )?;
        if !sb.port_file().exists() {
            sb.new_port()?;
        }
        Ok(sb)
    }

    /// Runs `script` in `sb` the way the SSM agent runs AWS-RunShellScript: written to
    /// `_script.sh` in a directory of its own and run with `sh` as root, with a time limit.
    pub async fn run(
        &self,
        sb: &Sandbox,
        command_id: &str,
        script: &str,
        creds: &Credentials,
        limit: Duration,
    ) -> io::Result<RunOutput> {
        let dir = sb.dir.join("commands").join(command_id);
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("_script.sh");
        std::fs::write(&file, script)?;
        let path = format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            sb.shims().display(),
            self.venv.join("bin").display()
        );
        let child = Command::new("/bin/sh")
            .arg(&file)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", sb.home())
            .env("LANG", "C.UTF-8")
            .env("NBFLEET_HOME", sb.home())
            .env("NBFLEET_USER", "root")
            .env("NBFLEET_PORT", sb.port()?.to_string())
            .env("NBFLEET_UNIT_DIR", sb.units())
            .env("NBFLEET_RUN_DIR", sb.run())
            .env("NBFLEET_PYTHON", self.venv.join("bin/python3"))
            .env("NBFLEET_BIN_DIR", sb.shims())
            // The root filesystem is this machine's, not the notebook's: never grow it.
            .env("NBFLEET_GROW_ROOT", "0")
            .env("JUPYTER_CONFIG_PATH", sb.overlay())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
            .env("AWS_SESSION_TOKEN", &creds.session_token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        // What ran is what is on disk: hash the file, not the argument.
        let script = std::fs::read(&file)?;
        let sha256 = hex::encode(Sha256::digest(&script));
        match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(out) => {
                let out = out?;
                Ok(RunOutput {
                    exit_code: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    sha256,
                })
            }
            Err(_) => Ok(RunOutput {
                exit_code: None,
                stdout: String::new(),
                stderr: format!("timed out after {} s", limit.as_secs()),
                sha256,
            }),
        }
    }
}

impl Runner {
    /// Stops every sandbox's Jupyter (the stack is going away, and its instances with it).
    pub fn stop_all(&self) {
        let Ok(entries) = std::fs::read_dir(&self.base) else {
            return;
        };
        for entry in entries.flatten() {
            Sandbox { dir: entry.path() }.stop_jupyter();
        }
    }
}

/// One local instance's directory: its home, units, run state and port.
#[derive(Debug, Clone)]
pub struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }
    fn units(&self) -> PathBuf {
        self.dir.join("units")
    }
    fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    fn shims(&self) -> PathBuf {
        self.dir.join("shims")
    }
    fn overlay(&self) -> PathBuf {
        self.dir.join("overlay")
    }
    fn port_file(&self) -> PathBuf {
        self.dir.join("port")
    }

    /// The port Jupyter listens on, the local stand-in for the instance's address.
    pub fn port(&self) -> io::Result<u16> {
        std::fs::read_to_string(self.port_file())?
            .trim()
            .parse()
            .map_err(|_| io::Error::other("unreadable port file"))
    }

    /// Picks a new free port, as a restarted instance gets a new IP.
    pub fn new_port(&self) -> io::Result<u16> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        std::fs::write(self.port_file(), port.to_string())?;
        Ok(port)
    }

    /// Whether this instance's Jupyter process is alive.
    pub fn jupyter_running(&self) -> bool {
        self.jupyter_pid()
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The pid of the process group the shim runs Jupyter in, if it runs.
    pub fn jupyter_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.run().join(format!("{UNIT}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills this instance's Jupyter and its kernels, as stopping the instance would.
    pub fn stop_jupyter(&self) {
        if let Some(pid) = self.jupyter_pid() {
            // The shim starts Jupyter in its own process group: take the whole group down.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = std::fs::remove_file(self.run().join(format!("{UNIT}.pid")));
        }
    }

    /// Puts an executable `name` first on the PATH of this instance's scripts (a fake
    /// `nvidia-smi`, say), as a real machine would have it installed.
    pub fn install_command(&self, name: &str, script: &str) -> io::Result<()> {
        put_file(&self.shims().join(name), script, 0o755)
    }

    /// Takes the instance's SSM agent offline (or back online): SendCommand then refuses it,
    /// as SSM refuses an instance whose agent is not registered.
    pub fn set_agent_offline(&self, offline: bool) -> io::Result<()> {
        let marker = self.dir.join("agent-offline");
        match offline {
            true => std::fs::write(marker, b""),
            false => std::fs::remove_file(marker).or_else(|e| match e.kind() {
                io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            }),
        }
    }

    /// Whether the instance's SSM agent is offline ([`Sandbox::set_agent_offline`]).
    pub fn agent_offline(&self) -> bool {
        self.dir.join("agent-offline").exists()
    }

    /// Whether the machine asked to power off (`systemctl poweroff`) since the last call.
    pub fn take_poweroff(&self) -> bool {
        std::fs::remove_file(self.run().join("poweroff")).is_ok()
    }

    /// Jupyter's own log, for diagnosing a failed run.
    pub fn jupyter_log(&self) -> String {
        std::fs::read_to_string(self.run().join(format!("{UNIT}.log"))).unwrap_or_default()
    }
}

/// Puts `text` at `path` with `mode`, unless it is there already; atomically (a reader sees the
/// old file or the new one, never a half-written one).
/// Copies what is in `from` into `to`, keeping modes and links (`cp -a`).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from.join("."))
        .arg(to)
        .status()?;
    match status.success() {
        true => Ok(()),
        false => Err(io::Error::other(format!(
            "cp -a {} {} failed",
            from.display(),
            to.display()
        ))),
    }
}

fn put_file(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path)
}
