//! What each command does: one API call, then (where asked) waiting for the state it leads to.

use crate::api::{Api, CliError, Exit};
use crate::{Command, Out, PasswordArgs, SnapshotAction, open, show};
use indicatif::{ProgressBar, ProgressStyle};
use nbfleet_core::text::plain;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub async fn run(api: &Api, out: Out, command: Command) -> Result<(), CliError> {
    match command {
        Command::Up {
            name,
            instance_type,
            idle,
            cidr,
            password: pw,
            no_wait,
            hooks,
            restore,
        } => {
            let mut body = json!({ "name": name });
            if let Some(from) = restore {
                body["restore_from"] = json!(if from.is_empty() { name.clone() } else { from });
            }
            if hooks.given() {
                body["hooks"] = hooks.over(serde_json::Map::new())?;
            }
            if let Some(t) = instance_type {
                body["instance_type"] = json!(t);
            }
            if let Some(idle) = idle {
                body["idle_timeout_minutes"] = json!(minutes("--idle", &idle)?);
            }
            if !cidr.is_empty() {
                body["access"] = json!({"mode": "cidr", "cidrs": cidr});
            }
            if let Some(pw) = password(&pw)? {
                body["password"] = json!(pw);
            }
            let launched = api.call("POST", "/notebooks", Some(&body)).await?;
            let token = launched["token"].as_str().map(str::to_string);
            // The token is shown as soon as the launch is accepted, so that a wait cut short
            // (Ctrl-C, a lost connection, a failed launch) never loses it.
            if let (Some(t), false) = (&token, out.json) {
                println!("{name}: launch accepted; its Jupyter token (shown once; keep it): {t}");
            }
            let nb = if no_wait {
                launched["notebook"].clone()
            } else {
                let accepted = launched["notebook"]["state"].as_str().unwrap_or_default();
                match wait(api, out, &name, accepted, &["Ready", "Failed"]).await {
                    Ok(nb) => nb,
                    Err(e) => {
                        if out.json {
                            println!("{}", json!({ "notebook": launched["notebook"], "token": token }));
                        }
                        return Err(e);
                    }
                }
            };
            if out.json {
                println!("{}", json!({ "notebook": nb, "token": token }));
            } else {
                println!("{}", plain(&show::ready(&nb)));
            }
            if nb["state"] == "Failed" {
                return Err(CliError::new(Exit::Failed, format!("{name} failed")));
            }
            Ok(())
        }
        Command::Snapshots { action: None } => {
            let all = api.call("GET", "/snapshots", None).await?;
            if out.json {
                println!("{all}");
            } else {
                print!("{}", plain(&show::snapshots(&all)));
            }
            Ok(())
        }
        Command::Snapshots {
            action: Some(SnapshotAction::Rm { id }),
        } => {
            let answer = api.call("DELETE", &format!("/snapshots/{id}"), None).await?;
            if out.json {
                println!("{answer}");
            } else {
                println!("{id} deleted");
            }
            Ok(())
        }
        Command::Costs { since, by, plot } => {
            let mut query = Vec::new();
            let since = match plot {
                true => {
                    Some((jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 29)).to_string())
                }
                false => since,
            };
            if let Some(s) = since {
                query.push(format!("since={s}"));
            }
            if let Some(b) = by {
                query.push(format!("by={b}"));
            }
            let path = match query.is_empty() {
                true => "/costs".to_string(),
                false => format!("/costs?{}", query.join("&")),
            };
            let costs = api.call("GET", &path, None).await?;
            if out.json {
                println!("{costs}");
            } else if plot {
                print!("{}", plain(&show::plot(&costs)));
            } else {
                print!("{}", plain(&show::costs(&costs)));
            }
            Ok(())
        }
        Command::Ls => {
            let all = api.call("GET", "/notebooks", None).await?;
            if out.json {
                println!("{all}");
            } else {
                print!("{}", plain(&show::table(&all, &show::Clock::local())));
            }
            Ok(())
        }
        Command::Status { name } => {
            let one = api.call("GET", &format!("/notebooks/{name}"), None).await?;
            if out.json {
                println!("{one}");
            } else {
                print!("{}", plain(&show::status(&one, &show::Clock::local())));
            }
            Ok(())
        }
        Command::Open {
            name,
            no_browser,
            port,
            direct,
        } => {
            open::open(
                api,
                out,
                &name,
                open::How {
                    no_browser,
                    port,
                    direct,
                },
            )
            .await
        }
        Command::Start { name, wait: w } => {
            act(api, out, &name, ("start", "starting"), w, &["Ready", "Failed"]).await
        }
        Command::Stop {
            name,
            wait: w,
            no_hook,
        } => {
            let verb = if no_hook { "stop?hook=false" } else { "stop" };
            act(api, out, &name, (verb, "stopping"), w, &["Stopped", "Failed"]).await
        }
        Command::Rm {
            name,
            no_snapshot,
            wait: w,
        } => {
            let path = format!(
                "/notebooks/{name}{}",
                if no_snapshot { "?snapshot=false" } else { "" }
            );
            let answer = api.call("DELETE", &path, None).await?;
            finish(api, out, &name, answer, "deleting", w, &["Terminated"]).await
        }
        Command::Credential {
            name,
            password: pw,
            no_wait,
        } => {
            let body = match password(&pw)? {
                Some(pw) => json!({ "password": pw }),
                None => json!({}),
            };
            let answer = api
                .call("POST", &format!("/notebooks/{name}/credential"), Some(&body))
                .await?;
            let token = answer["token"].as_str().map(str::to_string);
            if let (Some(t), false) = (&token, out.json) {
                println!("{name}: new Jupyter token (shown once; keep it): {t}");
            }
            let nb = match no_wait {
                true => answer["notebook"].clone(),
                false => credential_settled(api, &name).await?,
            };
            let change = &nb["credential_change"];
            if out.json {
                println!("{}", json!({ "notebook": nb, "token": token }));
            } else {
                println!("{name}: {}", plain(change["detail"].as_str().unwrap_or("?")));
            }
            if change["status"] == "failed" {
                return Err(CliError::new(
                    Exit::Failed,
                    format!("{name}: the running Jupyter did not take the new credential"),
                ));
            }
            Ok(())
        }
        Command::Set {
            name,
            instance_type,
            volume_gb,
            idle,
            warning,
            max_runtime,
            gpu_threshold,
            cpu_threshold,
            count_connections,
            schedule,
            no_schedule,
            hooks,
            no_hooks,
        } => {
            let mut body = serde_json::Map::new();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(v) = value {
                    body.insert(key.into(), v);
                }
            };
            put("instance_type", instance_type.map(|t| json!(t)));
            put("volume_gb", volume_gb.map(|gb| json!(gb)));
            put("gpu_threshold_pct", gpu_threshold.map(|p| json!(p)));
            put("cpu_threshold_pct", cpu_threshold.map(|p| json!(p)));
            put("count_connections", count_connections.map(|b| json!(b)));
            for (key, flag, value) in [
                ("idle_timeout_minutes", "--idle", idle),
                ("warning_minutes", "--warning", warning),
                ("max_runtime_minutes", "--max-runtime", max_runtime),
            ] {
                if let Some(v) = value {
                    body.insert(key.into(), json!(minutes(flag, &v)?));
                }
            }
            if let Some(file) = schedule {
                let text = read("the schedule", &file)?;
                let schedule: Value = serde_json::from_str(&text).map_err(|e| {
                    CliError::new(Exit::BadInput, format!("{}: not JSON: {e}", file.display()))
                })?;
                body.insert("schedule".into(), schedule);
            } else if no_schedule {
                body.insert("schedule".into(), Value::Null);
            }
            if no_hooks {
                body.insert("hooks".into(), Value::Null);
            } else if hooks.given() {
                // A change replaces the hooks whole: start from the ones the notebook has.
                let current = api.call("GET", &format!("/notebooks/{name}"), None).await?;
                let had = current["notebook"]["hooks"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                body.insert("hooks".into(), hooks.over(had)?);
            }
            if body.is_empty() {
                return Err(CliError::new(
                    Exit::BadInput,
                    "nothing to change: see `nbfleet set --help`",
                ));
            }
            let answer = api
                .call("PATCH", &format!("/notebooks/{name}"), Some(&Value::Object(body)))
                .await?;
            if out.json {
                println!("{answer}");
            } else {
                let one = api.call("GET", &format!("/notebooks/{name}"), None).await?;
                let changed = one["history"]
                    .as_array()
                    .and_then(|h| h.iter().rev().find(|e| e["action"] == "modify"))
                    .map(show::changes)
                    .unwrap_or_default();
                println!(
                    "{name}: {}",
                    if changed.is_empty() {
                        "nothing changed".into()
                    } else {
                        changed
                    }
                );
            }
            Ok(())
        }
        Command::Extend { name, minutes } => {
            let body = json!({ "minutes": minutes });
            let answer = api
                .call("POST", &format!("/notebooks/{name}/extend"), Some(&body))
                .await?;
            if out.json {
                println!("{answer}");
            } else {
                let until = answer["notebook"]["snoozed_until"].as_str().unwrap_or("?");
                println!("{name}: the idle stop is put off until {until}");
            }
            Ok(())
        }
        Command::Check { name } => {
            let decision = api
                .call("POST", &format!("/notebooks/{name}/check"), None)
                .await?;
            if out.json {
                println!("{decision}");
            } else {
                print!("{}", plain(&show::check(&name, &decision, &show::Clock::local())));
            }
            Ok(())
        }
        Command::Types => {
            let offers = api.call("GET", "/types", None).await?;
            if out.json {
                println!("{offers}");
            } else {
                print!("{}", plain(&show::types(&offers)));
            }
            Ok(())
        }
    }
}

/// start or stop, then say what the answer means.
async fn act(
    api: &Api,
    out: Out,
    name: &str,
    (verb, doing): (&str, &str),
    w: bool,
    until: &[&str],
) -> Result<(), CliError> {
    let before = api.call("GET", &format!("/notebooks/{name}"), None).await?;
    let answer = api
        .call("POST", &format!("/notebooks/{name}/{verb}"), None)
        .await?;
    let (was, now) = (&before["notebook"]["state"], &answer["notebook"]["state"]);
    if was == now && !out.json {
        println!("{name} is already {}", now.as_str().unwrap_or("?").to_lowercase());
        return Ok(());
    }
    finish(api, out, name, answer, doing, w, until).await
}

async fn finish(
    api: &Api,
    out: Out,
    name: &str,
    answer: Value,
    doing: &str,
    w: bool,
    until: &[&str],
) -> Result<(), CliError> {
    let nb = if w {
        let accepted = answer["notebook"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        wait(api, out, name, &accepted, until).await?
    } else {
        answer["notebook"].clone()
    };
    if out.json {
        println!("{}", json!({ "notebook": nb }));
    } else if w {
        println!("{name} is {}", nb["state"].as_str().unwrap_or("?"));
    } else {
        println!("{name}: {doing} ({})", nb["state"].as_str().unwrap_or("?"));
    }
    if nb["state"] == "Failed" {
        return Err(CliError::new(Exit::Failed, show::failure(&nb)));
    }
    Ok(())
}

/// Polls until the notebook reaches one of `until`, showing each state it passes with the time
/// it took, from `accepted` (the state the request's answer gave: a state left before the first
/// poll is shown all the same). Returns the record.
pub async fn wait(
    api: &Api,
    out: Out,
    name: &str,
    accepted: &str,
    until: &[&str],
) -> Result<Value, CliError> {
    let bar = if out.quiet || out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    let mut since = Instant::now();
    let mut current = accepted.to_string();
    let every = if api.is_local() { 500 } else { 2000 };
    loop {
        let nb = match api.call("GET", &format!("/notebooks/{name}"), None).await {
            Ok(v) => v["notebook"].clone(),
            // Deleted notebooks stay as Terminated records; a 404 here means it never existed.
            Err(f) => {
                bar.finish_and_clear();
                return Err(f);
            }
        };
        let state = nb["state"].as_str().unwrap_or("?").to_string();
        if state != current {
            if !current.is_empty() {
                let line = format!("  ✓ {current:<12} {:>6.1} s", since.elapsed().as_secs_f64());
                // Not a terminal (a pipe, a log): the bar draws nothing, so say it plainly.
                if bar.is_hidden() && !out.quiet && !out.json {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            current = state.clone();
            since = Instant::now();
        }
        if until.contains(&state.as_str()) {
            bar.finish_and_clear();
            if !out.quiet && !out.json {
                eprintln!("  ✓ {state:<12} after {:.1} s", start.elapsed().as_secs_f64());
            }
            return Ok(nb);
        }
        bar.set_message(format!(
            "{name}: {state} ({:.0} s)",
            since.elapsed().as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(every)).await;
    }
}

/// The password to send, if asked for: typed at a prompt (no echo) or read from stdin's first
/// line.
fn password(how: &PasswordArgs) -> Result<Option<String>, CliError> {
    if how.password_prompt {
        let pw = rpassword::prompt_password("Jupyter password: ")
            .map_err(|e| CliError::new(Exit::BadInput, format!("cannot read a password: {e}")))?;
        return Ok(Some(pw));
    }
    if how.password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| {
            CliError::new(
                Exit::BadInput,
                format!("cannot read the password from stdin: {e}"),
            )
        })?;
        return Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()));
    }
    Ok(None)
}

/// Polls until the running Jupyter has taken (or failed to take) the new credential; a
/// notebook that is not running settles at once (its next start takes it).
async fn credential_settled(api: &Api, name: &str) -> Result<Value, CliError> {
    let every = Duration::from_millis(if api.is_local() { 500 } else { 2000 });
    let give_up = Instant::now() + Duration::from_secs(180);
    loop {
        let nb = api.call("GET", &format!("/notebooks/{name}"), None).await?["notebook"].clone();
        if nb["credential_change"]["status"] != "applying" || Instant::now() > give_up {
            return Ok(nb);
        }
        tokio::time::sleep(every).await;
    }
}

/// `30m`, `2h` or a number of minutes.
impl crate::HookArgs {
    fn given(&self) -> bool {
        self.pre_stop_hook.is_some() || self.on_start_hook.is_some() || self.pre_stop_timeout.is_some()
    }

    /// `hooks` with the ones given here put over them, as a `hooks` field.
    fn over(self, mut hooks: serde_json::Map<String, Value>) -> Result<Value, CliError> {
        for (key, file) in [("pre_stop", self.pre_stop_hook), ("on_start", self.on_start_hook)] {
            if let Some(file) = file {
                hooks.insert(key.into(), json!(read("the hook", &file)?));
            }
        }
        if let Some(seconds) = self.pre_stop_timeout {
            hooks.insert("pre_stop_timeout_seconds".into(), json!(seconds));
        }
        Ok(Value::Object(hooks))
    }
}

/// A file the user named, read whole (`what` says what it is, for the error).
fn read(what: &str, file: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(file).map_err(|e| {
        CliError::new(
            Exit::BadInput,
            format!("cannot read {what} {}: {e}", file.display()),
        )
    })
}

/// `30m`, `2h` or `45` (minutes), given to `flag`.
fn minutes(flag: &str, s: &str) -> Result<u32, CliError> {
    let bad = || {
        CliError::new(
            Exit::BadInput,
            format!("{flag} {s:?}: give minutes, like 30m, 2h or 45"),
        )
    };
    let (n, unit) = match s.strip_suffix('h') {
        Some(n) => (n, 60),
        None => (s.strip_suffix('m').unwrap_or(s), 1),
    };
    n.trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    #[test]
    fn idle_takes_minutes_or_hours() {
        assert_eq!(super::minutes("--idle", "30m").unwrap(), 30);
        assert_eq!(super::minutes("--idle", "2h").unwrap(), 120);
        assert_eq!(super::minutes("--idle", "45").unwrap(), 45);
        assert!(super::minutes("--idle", "soon").is_err());
        // Too many hours to count in minutes is an error, not a wrapped-around small number.
        assert!(super::minutes("--idle", "4294967295h").is_err());
        assert!(super::minutes("--idle", "71582789h").is_err());
    }
}
