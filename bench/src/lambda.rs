//! `make bench`, the Lambda part: cold start, peak memory and artefact size of each handler
//! binary, against a minimal Python handler, and what nbfleet itself costs a month.
//!
//! Each handler's release `bootstrap` (from `LAMBDA_DIR`, default `target/lambda`) runs as a
//! Lambda custom runtime would run it, against [`runtime_api`]: a local stand-in for the Lambda
//! Runtime API that serves one real-shaped event from `bench/events/` and records when things
//! happen. The handlers' SDK clients talk to moto (`MOTO_ENDPOINT`, as set by
//! `scripts/with-moto.sh`), which `bench/python/helper.py provision` first fills with the table
//! and parameters the handlers need, so every invocation is a real one.
//!
//! Per run:
//! - cold start: from just before `exec` to the handler's first
//!   `GET /2018-06-01/runtime/invocation/next` (request line read);
//! - invocation: from the event handed over to its response (or error) POSTed back;
//! - peak RSS: `VmHWM` of the process once it polls for the next event, i.e. over init and one
//!   full invocation; then the process is killed.
//!
//! The Python baseline (`bench/python/bootstrap.py`, run with `BENCH_BASELINE_PYTHON`, default
//! `target/bench/baseline-venv/bin/python`: a venv holding boto3 and nothing else, as a Lambda
//! Python runtime does, never the project venv, whose SAM CLI pulls in awscrt and pyopenssl that
//! botocore then imports) builds the same boto3 clients and answers one event after one
//! DynamoDB call. Its `python -VV` and packages are written with the figures. Runs are interleaved (one run of every target per round, `BENCH_RUNS` rounds, default
//! 20) so that the machine's noise spreads evenly.
//!
//! Writes `target/bench/lambda.json` and `target/bench/lambda.md` (`BENCH_OUT` moves both); the
//! markdown holds the summary table of every figure of `make bench` (the sweep's too, read from
//! `target/bench/sweep.json`, which `sweep-bench` writes first) with targets and pass/fail, the
//! details, and the monthly cost ([`cost`]); the pipeline bench's rows come from
//! `target/bench/pipeline.json`. Exits 1 if a target is missed.

mod cost;
#[path = "../../crates/local/src/deployment.rs"]
mod deployment;
mod runtime_api;
mod sandbox;

use runtime_api::{Outcome, Run};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The Rust handlers, in the order each round runs them (launch first: the later events of a
/// round refer to the notebook and instance it made), with their event files.
const HANDLERS: &[(&str, &str)] = &[
    ("nbfleet-launch", "bench/events/launch.json"),
    ("nbfleet-events", "bench/events/ec2-running.json"),
    ("nbfleet-lifecycle", "bench/events/lifecycle.json"),
    ("nbfleet-read", "bench/events/read.json"),
    ("nbfleet-sweep", "bench/events/sweep.json"),
    ("nbfleet-slack", "bench/events/slack.json"),
];

/// The Python baselines: (name, whether it builds the lambda client too, as slack does).
const PYTHON: &[(&str, bool)] = &[
    ("python (ec2, ssm, dynamodb)", false),
    ("python (+ lambda)", true),
];

/// The local values of the variables `template.yaml` gives the functions: the moto resources
/// `helper.py provision` makes (as `crates/local/src/deployment.rs` names them), else the template's
/// parameter defaults. A variable the template sets that is not here stops the bench.
const LOCAL_VALUES: &[(&str, &str)] = &[
    ("NBFLEET_TABLE", deployment::TABLE),
    ("NBFLEET_INSTANCE_TYPES", "g5.xlarge,g6.xlarge,g4dn.xlarge"),
    ("NBFLEET_FALLBACK", ""),
    // Empty: moto's default VPC and subnets.
    ("NBFLEET_SUBNETS", ""),
    ("NBFLEET_VPC_ID", ""),
    ("NBFLEET_INSTANCE_PROFILE", deployment::INSTANCE_PROFILE),
    ("NBFLEET_AMI_PARAMETER", deployment::AMI_PARAMETER),
    ("NBFLEET_SECRET_PREFIX", "/nbfleet"),
    ("NBFLEET_TUNNEL_DOCUMENT", "AWS-StartPortForwardingSession"),
    // moto keeps the key id a SecureString names without asking KMS.
    ("NBFLEET_SECRETS_KEY", "alias/nbfleet-bench"),
    ("NBFLEET_IDLE_TIMEOUT_MINUTES", "60"),
    ("NBFLEET_VOLUME_GB", "100"),
    ("NBFLEET_VOLUME_GB_MAX", "2000"),
    ("NBFLEET_MAX_RUNTIME_MINUTES", "720"),
    ("NBFLEET_RUNTIME_CEILING_MINUTES", "1440"),
    ("NBFLEET_WARNING_MINUTES", "10"),
    ("NBFLEET_ORPHAN_GRACE_MINUTES", "30"),
    ("NBFLEET_ALLOW_WORLD", "false"),
    ("NBFLEET_ADMINS", ""),
    ("NBFLEET_OWNER_MODE", "person"),
    ("NBFLEET_SLACK_OWNERS", ""),
    ("NBFLEET_SLACK_RESPONSE_HOSTS", ""),
    ("NBFLEET_PRICES", ""),
    ("NBFLEET_BUDGETS", ""),
    ("NBFLEET_STOPPED_NOTICE_DAYS", "14"),
    ("NBFLEET_DELETE_STOPPED_AFTER_DAYS", "0"),
    ("NBFLEET_SNAPSHOT_RETENTION_DAYS", "0"),
    ("NBFLEET_ACCOUNT_ID", "123456789012"),
    ("NBFLEET_PARTITION", "aws"),
    (
        "NBFLEET_SLACK_WEBHOOK_PARAMETER",
        deployment::SLACK_WEBHOOK_PARAMETER,
    ),
    (
        "NBFLEET_SLACK_SIGNING_SECRET_PARAMETER",
        deployment::SLACK_SIGNING_SECRET_PARAMETER,
    ),
    ("NBFLEET_SLACK_TEAMS", deployment::SLACK_TEAM),
    ("NBFLEET_SLACK_USERS", ""),
];

/// The hello-world Rust Lambda's name in the tables.
const HELLO: &str = "hello-world Rust (lambda_runtime, tokio, serde_json)";

/// Targets (issue 23 raised them): a cold start at most a quarter of the Python baseline's and
/// twice the hello-world Rust Lambda's, peak RSS and zip size.
const COLD_START_RATIO_MAX: f64 = 0.25;
/// A handler's cold start, as a multiple of the hello-world Rust Lambda's.
const HELLO_RATIO_MAX: f64 = 2.0;
const PEAK_RSS_MAX_MB: f64 = 16.0;
const ZIP_MAX_MB: f64 = 4.0;
/// At its MemorySize, a function's peak RSS leaves at least half of the setting free (the
/// sweep's and the list's memory grow with the fleet).
const SETTING_RSS_SHARE_MAX: f64 = 0.5;
/// The steps of a handler's start that `nbfleet_aws::lambda_setup` logs ("cold start").
const INIT_PHASES: [&str; 5] = [
    "logging_us",
    "config_us",
    "sdk_config_us",
    "clients_us",
    "ports_us",
];

/// One function's figures.
struct Figures {
    name: String,
    memory_mb: u32,
    runs: Vec<Run>,
    zip_bytes: Option<u64>,
    raw_bytes: Option<u64>,
    /// The Python baseline it is compared with.
    baseline: Option<usize>,
    /// The runs at the template's MemorySize (memory and CPU as Lambda gives them), or why
    /// there are none.
    at_setting: Result<Vec<Run>, String>,
    /// The median of each step of the start, in µs, from the handler's "cold start" log lines.
    phases: BTreeMap<String, f64>,
}

fn main() {
    let lambda_dir = PathBuf::from(env_or("LAMBDA_DIR", "target/lambda"));
    let python = PathBuf::from(env_or("BENCH_PYTHON", ".venv/bin/python"));
    let baseline = PathBuf::from(env_or(
        "BENCH_BASELINE_PYTHON",
        "target/bench/baseline-venv/bin/python",
    ));
    let baseline_versions = describe_python(&baseline);
    let out = PathBuf::from(env_or("BENCH_OUT", "target/bench"));
    let runs: usize = env_or("BENCH_RUNS", "20").parse().expect("BENCH_RUNS: a number");
    let moto = std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        fail("MOTO_ENDPOINT is not set: run me through scripts/with-moto.sh");
    });
    std::fs::create_dir_all(out.join("logs")).expect("create the output folder");
    let template = std::fs::read_to_string("template.yaml")
        .expect("read template.yaml (run me from the repository root)");

    let base_env = |name: &str, memory: u32| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", "/tmp"),
            ("LANG", "C.UTF-8"),
            ("AWS_LAMBDA_FUNCTION_NAME", name),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", &moto),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory.to_string()));
        env
    };

    eprintln!("lambda-bench: provisioning moto at {moto}");
    helper(&python, &["provision"], &moto, None);

    let mut figures: Vec<Figures> = Vec::new();
    let mut targets: Vec<(usize, runtime_api::Target)> = Vec::new();
    for (fn_name, event) in HANDLERS {
        let bin = lambda_dir.join(fn_name).join("bootstrap");
        if !bin.is_file() {
            fail(&format!(
                "no {} (make build ARCH=x86_64, or LAMBDA_DIR=...)",
                bin.display()
            ));
        }
        let (vars, memory_mb) = template_function(&template, fn_name);
        let mut env = base_env(fn_name, memory_mb);
        for var in vars {
            let value = LOCAL_VALUES
                .iter()
                .find(|(k, _)| *k == var)
                .unwrap_or_else(|| {
                    fail(&format!(
                        "template.yaml sets {var}, which lambda-bench has no local value for"
                    ))
                })
                .1;
            env.push((var, value.to_string()));
        }
        targets.push((
            figures.len(),
            runtime_api::Target {
                name: fn_name.to_string(),
                program: bin.clone(),
                args: vec![],
                env,
                event: read(event),
                log: out.join("logs").join(format!("{fn_name}.log")),
                sandbox: None,
            },
        ));
        figures.push(Figures {
            name: fn_name.to_string(),
            memory_mb,
            runs: vec![],
            zip_bytes: None,
            raw_bytes: std::fs::metadata(&bin).ok().map(|m| m.len()),
            baseline: None,
            at_setting: Err("not run".into()),
            phases: BTreeMap::new(),
        });
    }
    // The hello-world Rust Lambda (bench/src/hello.rs): what a Rust function cannot beat.
    let hello = figures.len();
    let hello_bin = lambda_dir.join("hello-lambda").join("bootstrap");
    if !hello_bin.is_file() {
        fail(&format!("no {} (make hello-lambda)", hello_bin.display()));
    }
    targets.push((
        hello,
        runtime_api::Target {
            name: HELLO.into(),
            program: hello_bin.clone(),
            args: vec![],
            env: base_env("nbfleet-hello", 256),
            event: read("bench/events/sweep.json"),
            log: out.join("logs").join("hello-lambda.log"),
            sandbox: None,
        },
    ));
    figures.push(Figures {
        name: HELLO.into(),
        memory_mb: 256,
        runs: vec![],
        zip_bytes: None,
        raw_bytes: std::fs::metadata(&hello_bin).ok().map(|m| m.len()),
        baseline: None,
        at_setting: Err("not run".into()),
        phases: BTreeMap::new(),
    });
    let python_first = figures.len();
    for (name, lambda_client) in PYTHON {
        let mut env = base_env("nbfleet-python-baseline", 256);
        env.push(("NBFLEET_TABLE".into(), deployment::TABLE.into()));
        env.push((
            "NBFLEET_BENCH_LAMBDA_CLIENT".into(),
            if *lambda_client { "1" } else { "0" }.into(),
        ));
        targets.push((
            figures.len(),
            runtime_api::Target {
                name: name.to_string(),
                program: baseline.clone(),
                args: vec!["bench/python/bootstrap.py".into()],
                env,
                event: read("bench/events/sweep.json"),
                log: out.join("logs").join("python-baseline.log"),
                sandbox: None,
            },
        ));
        figures.push(Figures {
            name: name.to_string(),
            memory_mb: 256,
            runs: vec![],
            zip_bytes: None,
            raw_bytes: None,
            baseline: None,
            at_setting: Err("not run".into()),
            phases: BTreeMap::new(),
        });
    }
    for f in figures.iter_mut().take(hello) {
        f.baseline = Some(python_first + usize::from(f.name == "nbfleet-slack"));
    }

    // The runs, interleaved.
    let mut instance_id = String::from("i-0b22a22eec53b9321");
    for round in 0..runs {
        eprint!("lambda-bench: round {}/{runs}:", round + 1);
        for (i, target) in &targets {
            let run = run_in_round(target, round, &mut instance_id, &python, &moto);
            if round == 0 {
                log_first(&out, target, &run);
            }
            figures[*i].runs.push(run);
        }
        eprintln!();
    }
    for (i, target) in &targets {
        figures[*i].phases = init_phases(&target.log);
    }

    // Each handler again at the template's MemorySize: memory capped there, and the CPU share
    // Lambda gives that setting.
    let setting_runs: usize = env_or("BENCH_SETTING_RUNS", "5")
        .parse()
        .expect("BENCH_SETTING_RUNS: a number");
    let mut sandboxes: BTreeMap<u32, Result<Arc<sandbox::Sandbox>, String>> = BTreeMap::new();
    let mut at_setting: Vec<(usize, runtime_api::Target)> = Vec::new();
    for (i, target) in targets.iter().filter(|(i, _)| *i < hello) {
        let memory_mb = figures[*i].memory_mb;
        let sandbox = sandboxes
            .entry(memory_mb)
            .or_insert_with(|| sandbox::Sandbox::new(memory_mb).map(Arc::new))
            .clone();
        match sandbox {
            Err(why) => figures[*i].at_setting = Err(why),
            Ok(sandbox) => {
                figures[*i].at_setting = Ok(vec![]);
                // Launch at its most: with a password, which it hashes with argon2 (19 MiB).
                let event = match target.name.as_str() {
                    "nbfleet-launch" => read("bench/events/launch-password.json"),
                    _ => target.event.clone(),
                };
                at_setting.push((
                    *i,
                    runtime_api::Target {
                        sandbox: Some(sandbox),
                        event,
                        ..target.clone()
                    },
                ));
            }
        }
    }
    // Interleaved like the runs above, a round of every handler at a time, so that each round's
    // later events find the notebook its launch made.
    for round in runs..runs + setting_runs {
        eprint!(
            "lambda-bench: at the MemorySize, round {}/{setting_runs}:",
            round + 1 - runs
        );
        for (i, target) in &at_setting {
            let run = run_in_round(target, round, &mut instance_id, &python, &moto);
            if let Ok(r) = &mut figures[*i].at_setting {
                r.push(run);
            }
        }
        eprintln!();
    }
    drop(at_setting);
    drop(sandboxes);

    // Zipped sizes.
    let bins: Vec<String> = figures[..hello]
        .iter()
        .map(|f| lambda_dir.join(&f.name).join("bootstrap").display().to_string())
        .collect();
    let mut args = vec!["zip-size"];
    args.extend(bins.iter().map(String::as_str));
    let sizes = helper(&python, &args, &moto, None);
    for (f, line) in figures.iter_mut().zip(sizes.lines()) {
        f.zip_bytes = line.trim().parse().ok();
    }

    // What one record weighs, for the DynamoDB part of the cost.
    let item_bytes: Option<u64> =
        helper_try(&python, &["item-size", "bench-r0"], &moto).and_then(|s| s.trim().parse().ok());
    let sweep_json = out.join("sweep.json");
    let sweep: Option<Value> = std::fs::read_to_string(&sweep_json)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    if sweep.is_none() {
        eprintln!(
            "lambda-bench: no {} (run sweep-bench first): no sweep rows and no cost",
            sweep_json.display()
        );
    }
    let sweep_fn = figures
        .iter()
        .find(|f| f.name == "nbfleet-sweep")
        .expect("sweep figures");
    let costs = sweep.as_ref().map(|s| {
        cost::monthly(&cost::Inputs {
            sweep: s,
            sweep_invocation_s: median(&invoke_ms(
                sweep_fn.at_setting.as_deref().unwrap_or(&sweep_fn.runs),
            )) / 1000.0,
            memory_mb: sweep_fn.memory_mb,
            item_bytes: item_bytes.unwrap_or(0),
        })
    });

    let pipeline: Option<Value> = std::fs::read_to_string(out.join("pipeline.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    if pipeline.is_none() {
        eprintln!("lambda-bench: no pipeline.json (run pipeline-bench first): no pipeline rows");
    }
    let (mut md, failed) = render(
        &figures,
        sweep.as_ref(),
        pipeline.as_ref(),
        costs.as_ref(),
        runs,
        setting_runs,
        item_bytes,
    );
    md.push_str(&format!(
        "\nThe Python baseline ran on `{}` ({}), with: {}.\n",
        baseline.display(),
        baseline_versions.0,
        baseline_versions.1
    ));
    let json = to_json(&figures, sweep.as_ref(), costs.as_ref(), runs, item_bytes);
    std::fs::write(out.join("lambda.md"), &md).expect("write lambda.md");
    std::fs::write(
        out.join("lambda.json"),
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write lambda.json");
    print!("{md}");
    if failed > 0 {
        eprintln!("lambda-bench: {failed} figure(s) miss their target");
        std::process::exit(1);
    }
}

/// Runs `target` once on its event for `round`; a launch's run names the instance the round's
/// later events are about.
fn run_in_round(
    target: &runtime_api::Target,
    round: usize,
    instance_id: &mut String,
    python: &Path,
    moto: &str,
) -> Run {
    let event = event_for(&target.event, round, instance_id, python, moto);
    let run = runtime_api::run_once(target, &event);
    if target.name == "nbfleet-launch"
        && let Some(id) = find_instance_id(&run)
    {
        *instance_id = id;
    }
    eprint!(
        " {} {:.0}ms",
        short(&target.name),
        run.cold_ms().unwrap_or(f64::NAN)
    );
    run
}

/// `python -VV` of `python`, and its installed packages (`name==version`, comma-separated);
/// stops the bench when it cannot run.
fn describe_python(python: &Path) -> (String, String) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(python)
            .args(args)
            .output()
            .unwrap_or_else(|e| fail(&format!("{}: {e} (`make bench` makes it)", python.display())));
        if !out.status.success() {
            fail(&format!("{} {args:?} failed", python.display()));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let version = run(&["-VV"]).replace('\n', " ");
    let packages = run(&["-m", "pip", "freeze", "--all"])
        .lines()
        .filter(|l| !l.starts_with("pip==") && !l.starts_with("setuptools=="))
        .collect::<Vec<_>>()
        .join(", ");
    (version, packages)
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn fail(why: &str) -> ! {
    eprintln!("lambda-bench: {why}");
    std::process::exit(2)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("read {path}: {e}")))
}

fn short(name: &str) -> &str {
    name.strip_prefix("nbfleet-").unwrap_or(name)
}

/// Runs `bench/python/helper.py` with moto's endpoint and the dummy credentials; stops the bench
/// if it fails.
fn helper(python: &Path, args: &[&str], moto: &str, stdin: Option<&str>) -> String {
    helper_run(python, args, moto, stdin).unwrap_or_else(|e| fail(&format!("helper.py {}: {e}", args[0])))
}

fn helper_try(python: &Path, args: &[&str], moto: &str) -> Option<String> {
    helper_run(python, args, moto, None)
        .map_err(|e| eprintln!("lambda-bench: helper.py {}: {e}", args[0]))
        .ok()
}

fn helper_run(python: &Path, args: &[&str], moto: &str, stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = Command::new(python)
        .arg("bench/python/helper.py")
        .args(args)
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .envs(deployment::HELPER_ENV)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("exited with {}", out.status));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// The event of one run: `{{run}}` and `{{instance_id}}` filled in, and a Slack request signed
/// now (Slack's signature is only good for 5 minutes).
fn event_for(template: &str, round: usize, instance_id: &str, python: &Path, moto: &str) -> String {
    let text = template
        .replace("{{run}}", &round.to_string())
        .replace("{{instance_id}}", instance_id);
    if !text.contains("{{slack_signature}}") {
        return text;
    }
    let event: Value = serde_json::from_str(&text).expect("slack event is JSON");
    let body = event["body"].as_str().unwrap_or_default();
    let signed = helper(
        python,
        &["sign-slack", deployment::SLACK_SIGNING_SECRET],
        moto,
        Some(body),
    );
    let mut lines = signed.lines();
    let (ts, sig) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    text.replace("{{slack_timestamp}}", ts)
        .replace("{{slack_signature}}", sig)
}

/// The instance a launch answered with (`notebook.instance_id` in the API answer's body), for
/// the EC2 event of the same round.
fn find_instance_id(run: &Run) -> Option<String> {
    let outer: Value = serde_json::from_str(run.response.as_deref()?).ok()?;
    let body: Value = serde_json::from_str(outer["body"].as_str()?).ok()?;
    body["notebook"]["instance_id"].as_str().map(String::from)
}

/// The first round's responses, for a reader who wants to see that the invocations were real.
fn log_first(out: &Path, target: &runtime_api::Target, run: &Run) {
    let line = format!(
        "{}: {}: {}\n",
        target.name,
        run.outcome.label(),
        run.response.as_deref().unwrap_or("")
    );
    let path = out.join("logs").join("first-responses.log");
    let mut all = if target.name == HANDLERS[0].0 {
        String::new()
    } else {
        std::fs::read_to_string(&path).unwrap_or_default()
    };
    all.push_str(&line);
    let _ = std::fs::write(path, all);
}

/// The NBFLEET_* variables `template.yaml` gives the function whose CodeUri is
/// `target/lambda/<fn_name>/` (the Globals' and its own), and its MemorySize.
fn template_function(template: &str, fn_name: &str) -> (Vec<String>, u32) {
    let lines: Vec<&str> = template.lines().collect();
    let top = |l: &str| !l.starts_with(' ') && !l.is_empty() && !l.starts_with('#');
    let resource =
        |l: &str| l.starts_with("  ") && l.as_bytes().get(2).is_some_and(|b| b.is_ascii_alphabetic());
    let var = |l: &str| {
        let t = l.trim_start();
        t.starts_with("NBFLEET_")
            .then(|| t.split(':').next().unwrap_or_default().to_string())
    };
    let memory = |l: &str| {
        l.trim_start()
            .strip_prefix("MemorySize:")
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let globals_at = lines
        .iter()
        .position(|l| l.starts_with("Globals:"))
        .expect("template.yaml has Globals");
    let globals_end = lines[globals_at + 1..]
        .iter()
        .position(|l| top(l))
        .map_or(lines.len(), |p| globals_at + 1 + p);
    let globals = &lines[globals_at..globals_end];
    let code_uri = format!("CodeUri: target/lambda/{fn_name}/");
    let at = lines
        .iter()
        .position(|l| l.trim() == code_uri)
        .unwrap_or_else(|| fail(&format!("template.yaml has no function with {code_uri}")));
    let start = lines[..at]
        .iter()
        .rposition(|l| resource(l))
        .expect("resource start");
    let end = lines[at..]
        .iter()
        .position(|l| resource(l) || top(l))
        .map_or(lines.len(), |p| at + p);
    let block = &lines[start..end];
    let mut vars: Vec<String> = globals.iter().chain(block).filter_map(|l| var(l)).collect();
    vars.sort();
    vars.dedup();
    let mem = block
        .iter()
        .find_map(|l| memory(l))
        .or_else(|| globals.iter().find_map(|l| memory(l)))
        .unwrap_or(128);
    (vars, mem)
}

fn cold_ms(runs: &[Run]) -> Vec<f64> {
    runs.iter().filter_map(Run::cold_ms).collect()
}

fn invoke_ms(runs: &[Run]) -> Vec<f64> {
    runs.iter().filter_map(Run::invoke_ms).collect()
}

fn rss_mb(runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r.hwm_kb)
        .map(|kb| kb as f64 / 1024.0)
        .collect()
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn median(v: &[f64]) -> f64 {
    let v = sorted(v);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min(v: &[f64]) -> f64 {
    sorted(v).first().copied().unwrap_or(f64::NAN)
}

fn max(v: &[f64]) -> f64 {
    sorted(v).last().copied().unwrap_or(f64::NAN)
}

fn stats(v: &[f64]) -> Value {
    json!({ "n": v.len(), "min": min(v), "median": median(v), "max": max(v) })
}

fn outcomes(runs: &[Run]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in runs {
        *m.entry(r.outcome.label()).or_default() += 1;
    }
    m
}

fn outcome_text(runs: &[Run]) -> String {
    outcomes(runs)
        .iter()
        .map(|(k, n)| format!("{n}× {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The median of each of [`INIT_PHASES`] over the "cold start" lines of a handler's log.
fn init_phases(log: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "cold start")
        .collect();
    INIT_PHASES
        .iter()
        .filter_map(|k| {
            let v: Vec<f64> = lines.iter().filter_map(|l| l["fields"][k].as_f64()).collect();
            (!v.is_empty()).then(|| (k.to_string(), median(&v)))
        })
        .collect()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// Whether all `runs` invocations of a function ran and answered as a working function does:
/// a response (an API function's with a 2xx status), never an error, a crash or a timeout. A
/// figure measured on anything less does not pass.
fn all_answered(runs: &[Run], expected: usize) -> bool {
    runs.len() == expected
        && runs.iter().all(|r| match r.outcome {
            runtime_api::Outcome::Response(None) => true,
            runtime_api::Outcome::Response(Some(status)) => (200..300).contains(&status),
            _ => false,
        })
}

fn mark(ok: bool) -> &'static str {
    if ok { "pass" } else { "**FAIL**" }
}

/// The sweep rounds of `sweep.json` that are steady, as (n, calls, wall s).
fn steady_rounds(sweep: &Value) -> Vec<(u64, u64, f64)> {
    sweep["rounds"]
        .as_array()
        .map(|rounds| {
            rounds
                .iter()
                .filter(|r| r["round"] == "steady")
                .map(|r| {
                    let calls = r["calls"]
                        .as_object()
                        .map(|c| c.values().filter_map(Value::as_u64).sum())
                        .unwrap_or(0);
                    (
                        r["n"].as_u64().unwrap_or(0),
                        calls,
                        r["wall_s"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The markdown section and the number of figures that miss their target.
fn render(
    figures: &[Figures],
    sweep: Option<&Value>,
    pipeline: Option<&Value>,
    costs: Option<&Vec<cost::Monthly>>,
    runs: usize,
    setting_runs: usize,
    item_bytes: Option<u64>,
) -> (String, usize) {
    let mut failed = 0;
    let mut s = String::new();
    let _ = writeln!(s, "## Summary: every figure, its target, pass or fail\n");
    let _ = writeln!(s, "| figure | measured | target | result |\n|---|---|---|---|");
    for f in figures.iter().filter(|f| f.baseline.is_some()) {
        let py = &figures[f.baseline.expect("baseline")];
        let (rust, python) = (median(&cold_ms(&f.runs)), median(&cold_ms(&py.runs)));
        let ratio = rust / python;
        let ok = ratio <= COLD_START_RATIO_MAX && all_answered(&f.runs, runs) && all_answered(&py.runs, runs);
        failed += usize::from(!ok);
        let _ = writeln!(
            s,
            "| {} cold start, median of {runs} (vs {}) | {rust:.1} ms vs {python:.1} ms = {ratio:.3} | ≤ {COLD_START_RATIO_MAX} of Python | {} |",
            f.name,
            py.name,
            mark(ok)
        );
    }
    if let Some(hello) = figures.iter().find(|f| f.name == HELLO) {
        let floor = median(&cold_ms(&hello.runs));
        for f in figures.iter().filter(|f| f.baseline.is_some()) {
            let rust = median(&cold_ms(&f.runs));
            let ratio = rust / floor;
            let ok =
                ratio <= HELLO_RATIO_MAX && all_answered(&f.runs, runs) && all_answered(&hello.runs, runs);
            failed += usize::from(!ok);
            let _ = writeln!(
                s,
                "| {} cold start vs the hello-world Rust Lambda, medians of {runs} | {rust:.1} ms vs {floor:.1} ms = {ratio:.1}× | ≤ {HELLO_RATIO_MAX}× | {} |",
                f.name,
                mark(ok)
            );
        }
    }
    for f in figures.iter().filter(|f| f.baseline.is_some()) {
        let peak = max(&rss_mb(&f.runs));
        let ok = peak <= PEAK_RSS_MAX_MB && all_answered(&f.runs, runs) && rss_mb(&f.runs).len() == runs;
        failed += usize::from(!ok);
        let _ = writeln!(
            s,
            "| {} peak RSS over init + one invocation (max of {runs}) | {peak:.1} MB | ≤ {PEAK_RSS_MAX_MB} MB | {} |",
            f.name,
            mark(ok)
        );
    }
    for f in figures.iter().filter(|f| f.baseline.is_some()) {
        let share = f64::from(f.memory_mb) / f64::from(sandbox::MB_PER_VCPU) * 100.0;
        let (measured, ok) = match &f.at_setting {
            Ok(r) => {
                let peak = max(&rss_mb(r));
                let ok = all_answered(r, setting_runs)
                    && rss_mb(r).len() == setting_runs
                    && peak <= f64::from(f.memory_mb) * SETTING_RSS_SHARE_MAX;
                let m = format!(
                    "cold {:.0} ms, invocation {:.0} ms (medians), peak RSS {peak:.1} MB; {}",
                    median(&cold_ms(r)),
                    median(&invoke_ms(r)),
                    outcome_text(r)
                );
                (m, ok)
            }
            Err(why) => (format!("not measured: {why}"), false),
        };
        failed += usize::from(!ok);
        let _ = writeln!(
            s,
            "| {} at its MemorySize, {} MB ({share:.0} % of a core), {setting_runs} runs | {measured} | every run answers, peak RSS ≤ {:.0} MB | {} |",
            f.name,
            f.memory_mb,
            f64::from(f.memory_mb) * SETTING_RSS_SHARE_MAX,
            mark(ok)
        );
    }
    for f in figures.iter().filter(|f| f.baseline.is_some()) {
        let zipped = f.zip_bytes.map_or(f64::NAN, mb);
        let ok = zipped <= ZIP_MAX_MB;
        failed += usize::from(!ok);
        let _ = writeln!(
            s,
            "| {} deployment zip | {zipped:.2} MB | ≤ {ZIP_MAX_MB} MB | {} |",
            f.name,
            mark(ok)
        );
    }
    let steady = sweep.map(steady_rounds).unwrap_or_default();
    if steady.is_empty() {
        failed += 1;
        let _ = writeln!(
            s,
            "| sweep, steady rounds: AWS calls | no results | ≤ 0.05 × N + 5 | {} |",
            mark(false)
        );
    }
    for (n, calls, _) in steady {
        let target = n / 20 + 5;
        let ok = calls <= target;
        failed += usize::from(!ok);
        let _ = writeln!(
            s,
            "| sweep, steady round, N = {n}: AWS calls | {calls} | ≤ 0.05 × N + 5 = {target} | {} |",
            mark(ok)
        );
    }
    // The pipeline bench's rows, as it wrote them.
    if pipeline
        .and_then(|p| p["summary"].as_array())
        .is_none_or(|rows| rows.is_empty())
    {
        failed += 1;
        let _ = writeln!(
            s,
            "| pipeline overhead | no results | as pipeline-bench states | {} |",
            mark(false)
        );
    }
    for row in pipeline
        .and_then(|p| p["summary"].as_array())
        .into_iter()
        .flatten()
    {
        let ok = row["ok"].as_bool() == Some(true);
        failed += usize::from(!ok);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            row["figure"].as_str().unwrap_or_default(),
            row["measured"].as_str().unwrap_or_default(),
            row["target"].as_str().unwrap_or_default(),
            mark(ok)
        );
    }
    if let Some(costs) = costs {
        for c in costs {
            let _ = writeln!(
                s,
                "| nbfleet's own cost a month, N = {} notebooks, 5-minute sweep (arm64) | ${:.4} | — (reported) | — |",
                c.n, c.total_arm64
            );
        }
    }

    let _ = writeln!(
        s,
        "\n## Lambda handlers: cold start, invocation, memory, size\n\n\
         Release binaries from `make build` (cargo lambda, {arch}), run as a custom runtime against a \
         local stand-in for the Lambda Runtime API on this machine; their AWS clients talk to moto. \
         Cold start: from exec to the first `GET /runtime/invocation/next`. Invocation: from the event \
         handed over to the response POSTed back (moto answers, so it is moto's time mostly). Peak \
         RSS: `VmHWM` after one invocation. {runs} runs each, interleaved. The Python baseline \
         (`bench/python/bootstrap.py`, in a venv with boto3 only, as a Lambda Python runtime has it) \
         imports boto3, builds the same clients and answers one event after one DynamoDB GetItem. Outcome: what each invocation answered (HTTP status for the \
         API functions).\n",
        arch = std::env::consts::ARCH
    );
    let _ = writeln!(
        s,
        "| function | memory MB | cold ms min / median / max | invocation ms min / median / max | peak RSS MB min / max | zip MB (binary MB) | outcome |\n|---|---|---|---|---|---|---|"
    );
    for f in figures {
        let (c, i, r) = (cold_ms(&f.runs), invoke_ms(&f.runs), rss_mb(&f.runs));
        let size = match (f.zip_bytes, f.raw_bytes) {
            (Some(z), Some(b)) => format!("{:.2} ({:.2})", mb(z), mb(b)),
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} | {size} | {} |",
            f.name,
            f.memory_mb,
            min(&c),
            median(&c),
            max(&c),
            min(&i),
            median(&i),
            max(&i),
            min(&r),
            max(&r),
            outcome_text(&f.runs)
        );
    }
    let _ = writeln!(
        s,
        "\nWhere a handler's cold start goes (medians of {runs}, µs), from the \"cold start\" line \
         each one logs: the JSON log set up, nbfleet's configuration read from the environment, the \
         SDK's configuration loaded (this is where the TLS roots are read and parsed, from one CA \
         bundle: `nbfleet_aws::tls`), the SDK clients built, the ports made. \"Rest\" is the cold \
         start less those: exec and the dynamic loader, the Tokio runtime, lambda_runtime's setup \
         and its first poll; the hello-world Rust Lambda's whole cold start is that part alone.\n"
    );
    let _ = writeln!(
        s,
        "| function | cold start | logging | configuration | SDK configuration | clients | ports | rest |\n|---|---|---|---|---|---|---|---|"
    );
    for f in figures.iter().filter(|f| !f.phases.is_empty()) {
        let cold = median(&cold_ms(&f.runs)) * 1000.0;
        let phase = |k: &str| f.phases.get(k).copied().unwrap_or(f64::NAN);
        let rest = cold - INIT_PHASES.iter().map(|k| phase(k)).sum::<f64>();
        let _ = writeln!(
            s,
            "| {} | {cold:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {rest:.0} |",
            f.name,
            phase("logging_us"),
            phase("config_us"),
            phase("sdk_config_us"),
            phase("clients_us"),
            phase("ports_us"),
        );
    }
    if let (Some(costs), Some(sweep)) = (costs, sweep) {
        s.push('\n');
        s.push_str(&cost::render(costs, sweep, item_bytes));
    }
    (s, failed)
}

fn to_json(
    figures: &[Figures],
    sweep: Option<&Value>,
    costs: Option<&Vec<cost::Monthly>>,
    runs: usize,
    item_bytes: Option<u64>,
) -> Value {
    let fns: Vec<Value> = figures
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "memory_mb": f.memory_mb,
                "cold_start_ms": stats(&cold_ms(&f.runs)),
                "invocation_ms": stats(&invoke_ms(&f.runs)),
                "peak_rss_mb": stats(&rss_mb(&f.runs)),
                "zip_bytes": f.zip_bytes,
                "binary_bytes": f.raw_bytes,
                "outcomes": outcomes(&f.runs),
                "baseline": f.baseline.map(|b| figures[b].name.clone()),
                "cold_start_ratio": f.baseline.map(|b| median(&cold_ms(&f.runs)) / median(&cold_ms(&figures[b].runs))),
                "init_phases_us": f.phases,
                "at_memory_setting": match &f.at_setting {
                    Ok(r) => json!({
                        "cold_start_ms": stats(&cold_ms(r)),
                        "invocation_ms": stats(&invoke_ms(r)),
                        "peak_rss_mb": stats(&rss_mb(r)),
                        "outcomes": outcomes(r),
                    }),
                    Err(why) => json!({ "not_measured": why }),
                },
            })
        })
        .collect();
    json!({
        "runs": runs,
        "arch": std::env::consts::ARCH,
        "targets": {
            "cold_start_ratio_max": COLD_START_RATIO_MAX,
            "peak_rss_max_mb": PEAK_RSS_MAX_MB,
            "zip_max_mb": ZIP_MAX_MB,
            "hello_ratio_max": HELLO_RATIO_MAX,
            "setting_rss_share_max": SETTING_RSS_SHARE_MAX,
        },
        "functions": fns,
        "record_item_bytes": item_bytes,
        "sweep_steady": sweep.map(|s| steady_rounds(s).iter().map(|(n, c, w)| json!({"n": n, "calls": c, "wall_s": w})).collect::<Vec<_>>()),
        "monthly_cost": costs.map(|c| c.iter().map(cost::Monthly::to_json).collect::<Vec<_>>()),
    })
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Response(Some(status)) => format!("HTTP {status}"),
            Outcome::Response(None) => "ok".into(),
            Outcome::Error(kind) => format!("error {kind}"),
            Outcome::InitError(kind) => format!("init error {kind}"),
            Outcome::Exited(code) => format!("exited ({code})"),
            Outcome::TimedOut(phase) => format!("timed out ({phase})"),
        }
    }
}

/// How long a run may take, phase by phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const INVOKE_TIMEOUT: Duration = Duration::from_secs(150);
const NEXT_TIMEOUT: Duration = Duration::from_secs(10);
