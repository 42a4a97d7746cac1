//! `nbfleet`: GPU Jupyter notebooks on AWS from a terminal.
//!
//! It talks to a deployed nbfleet API (`--api-url`, `NBFLEET_API_URL`, or `api_url` in
//! `~/.config/nbfleet/config`), signing with SigV4 from the standard AWS credential chain, or to
//! the local stack (`--local`). Progress goes to stderr; results to stdout (`--json` for scripts).

mod api;
mod commands;
mod open;
mod show;
mod sigv4;

use api::{Api, CliError, Exit};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes: 0 ok · 1 failed (a notebook that failed, a certificate that does not match, a missing tool) \
· 2 bad input · 3 no such notebook · 4 conflict (not possible in its state) · 5 not authorised or no \
credentials · 6 AWS or the API unavailable or throttling";

#[derive(Parser)]
#[command(name = "nbfleet", version, about = "GPU Jupyter notebooks on AWS, stopped when idle.", after_help = EXIT_CODES)]
struct Cli {
    /// The nbfleet API (the stack's ApiUrl output).
    #[arg(long, global = true, env = "NBFLEET_API_URL")]
    api_url: Option<String>,
    /// Use the local stack (`make local`) instead of AWS.
    #[arg(long, global = true)]
    local: bool,
    /// JSON on stdout, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// No progress, only results and errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// How a password is given: typed at a prompt, or piped in.
#[derive(clap::Args)]
struct PasswordArgs {
    /// Ask for the password (no echo).
    #[arg(long, conflicts_with = "password_stdin")]
    password_prompt: bool,
    /// Read the password from the first line of stdin (for scripts).
    #[arg(long)]
    password_stdin: bool,
}

/// The hooks a launch sets or a change replaces.
#[derive(clap::Args)]
struct HookArgs {
    /// A shell script (a file, at most 4 KB) run as the notebook user before every stop.
    #[arg(long, value_name = "FILE")]
    pre_stop_hook: Option<std::path::PathBuf>,
    /// How long the pre-stop hook may run, in seconds (1 to 600; 120 by default).
    #[arg(long, value_name = "SECONDS")]
    pre_stop_timeout: Option<u32>,
    /// A shell script (a file, at most 4 KB) run as the notebook user after every start.
    #[arg(long, value_name = "FILE")]
    on_start_hook: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Launch a notebook and wait until it is ready (or failed).
    Up {
        name: String,
        /// Instance type (the operator's default if not given).
        #[arg(long = "type")]
        instance_type: Option<String>,
        /// Idle timeout (`idle_timeout_minutes`): 30m, 2h or minutes.
        #[arg(long)]
        idle: Option<String>,
        /// Open Jupyter to these networks (cidr mode) instead of an SSM port-forward.
        #[arg(long)]
        cidr: Vec<String>,
        /// A password instead of a token.
        #[command(flatten)]
        password: PasswordArgs,
        /// Return once the launch is accepted.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        hooks: HookArgs,
        /// Make the disk from a snapshot: its id, or a notebook's name for its latest one
        /// (alone: the latest snapshot of the notebook NAME itself).
        #[arg(long, value_name = "SNAPSHOT|NAME", num_args = 0..=1, default_missing_value = "")]
        restore: Option<String>,
    },
    /// The disks delete kept (yours; an admin sees all), or `snapshots rm ID` to delete one.
    Snapshots {
        #[command(subcommand)]
        action: Option<SnapshotAction>,
    },
    /// What your notebooks cost (an admin: everyone's) and what automatic stops saved: per
    /// notebook or owner, since a day (the first of the month by default).
    Costs {
        /// A day (2026-11-01) or a time.
        #[arg(long)]
        since: Option<String>,
        /// Group by `notebook` (the default) or `owner`.
        #[arg(long, value_name = "owner|notebook")]
        by: Option<String>,
        /// Draw spend and savings per day for the last 30 days.
        #[arg(long, conflicts_with = "since")]
        plot: bool,
    },
    /// List notebooks: state, type, cost to date, planned stop, and why.
    Ls,
    /// Everything about one notebook, including why it still runs or why it stopped.
    Status { name: String },
    /// Connect: a port-forward in ssm mode, the URL in cidr mode; the certificate is checked.
    Open {
        name: String,
        /// Print the URL without opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Local port the browser connects to (default: the notebook's port; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Check the certificate, print Jupyter's own https URL and exit, instead of serving
        /// the pinned proxy (for scripts; a browser would warn about the self-signed certificate).
        #[arg(long)]
        direct: bool,
    },
    /// Replace a notebook's token (or, for a password notebook, its password): the running
    /// Jupyter takes it without a restart, and signs out browsers that used the old one.
    Credential {
        name: String,
        /// The new password, for a password notebook.
        #[command(flatten)]
        password: PasswordArgs,
        /// Return once the change is accepted, without waiting for Jupyter to take it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Start a stopped notebook.
    Start {
        name: String,
        #[arg(long)]
        wait: bool,
    },
    /// Stop a notebook (its disk is kept).
    Stop {
        name: String,
        #[arg(long)]
        wait: bool,
        /// Stop without running the notebook's pre-stop hook.
        #[arg(long)]
        no_hook: bool,
    },
    /// Change a notebook: its idle rules, schedule and hooks any time, its disk (grow only),
    /// its instance type while it is stopped. Each change is kept in its history.
    Set {
        name: String,
        /// A new instance type (stop the notebook first).
        #[arg(long = "type")]
        instance_type: Option<String>,
        /// A bigger disk, in GB (a disk never shrinks).
        #[arg(long, value_name = "GB")]
        volume_gb: Option<u32>,
        /// The idle timeout: 30m, 2h or minutes.
        #[arg(long)]
        idle: Option<String>,
        /// How long before an automatic stop the warning goes out: 10m or minutes.
        #[arg(long)]
        warning: Option<String>,
        /// The cap on one run: 8h or minutes (0: none, within the operator's ceiling).
        #[arg(long)]
        max_runtime: Option<String>,
        /// GPU utilisation (percent) that counts as activity.
        #[arg(long, value_name = "PCT")]
        gpu_threshold: Option<u32>,
        /// CPU outside Jupyter (percent of one core) that counts as activity; 0 is off.
        #[arg(long, value_name = "PCT")]
        cpu_threshold: Option<u32>,
        /// Whether open browser tabs count as activity.
        #[arg(long, value_name = "BOOL")]
        count_connections: Option<bool>,
        /// A weekly schedule, as a JSON file (`{"tz": …, "windows": […]}`).
        #[arg(long, value_name = "FILE", conflicts_with = "no_schedule")]
        schedule: Option<std::path::PathBuf>,
        /// Remove the schedule.
        #[arg(long)]
        no_schedule: bool,
        /// New hooks (the one not given is kept).
        #[command(flatten)]
        hooks: HookArgs,
        /// Remove both hooks.
        #[arg(long, conflicts_with_all = ["pre_stop_hook", "on_start_hook", "pre_stop_timeout"])]
        no_hooks: bool,
    },
    /// Put off the idle stop.
    Extend { name: String, minutes: u32 },
    /// Run the idle probe now and say what the sweep would decide, and why (nothing is stopped).
    Check { name: String },
    /// The instance types a launch may ask for, with their prices (the default first).
    Types,
    /// Delete a notebook: snapshot its disk (unless --no-snapshot) and terminate it.
    Rm {
        name: String,
        #[arg(long)]
        no_snapshot: bool,
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotAction {
    /// Delete one of your snapshots (its disk is then gone for good).
    Rm { id: String },
}

/// How output is shown.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

/// `api_url = …` from `~/.config/nbfleet/config` (or `$XDG_CONFIG_HOME/nbfleet/config`).
fn profile_api_url() -> Option<String> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))?;
    let text = std::fs::read_to_string(dir.join("nbfleet/config")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "api_url").then(|| v.trim().trim_matches('"').to_string())
    })
}

async fn api(cli: &Cli) -> Result<Api, CliError> {
    if cli.local {
        let port = std::env::var("NBFLEET_LOCAL_PORT").unwrap_or_else(|_| "9000".into());
        let user = std::env::var("USER").unwrap_or_else(|_| "local".into());
        return Ok(Api::local(&format!("http://127.0.0.1:{port}"), &user));
    }
    match cli.api_url.clone().or_else(profile_api_url) {
        Some(url) => Api::deployed(&url).await,
        None => Err(CliError::new(
            Exit::BadInput,
            "no API: pass --api-url, set NBFLEET_API_URL, put api_url = … in ~/.config/nbfleet/config, or use --local",
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::BadInput.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let out = Out {
        json: cli.json,
        quiet: cli.quiet,
    };
    let result = match api(&cli).await {
        Ok(api) => commands::run(&api, out, cli.command).await,
        Err(f) => Err(f),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"error": {"exit": f.exit as u8, "message": f.message}})
                );
            }
            eprintln!("nbfleet: {}", nbfleet_core::text::plain(&f.message));
            f.exit.into()
        }
    }
}
