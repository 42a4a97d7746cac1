//! How notebooks read in a terminal: times in the reader's own zone, with how long ago (or
//! how soon) they are, and history as sentences, never raw JSON.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The clock and zone times are shown against.
#[derive(Clone)]
pub struct Clock {
    pub now: Timestamp,
    pub tz: TimeZone,
}

impl Clock {
    /// Now, in the user's own zone (`TZ`, else the system's).
    pub fn local() -> Self {
        Clock {
            now: Timestamp::now(),
            tz: TimeZone::system(),
        }
    }

    /// `18:19 (2 min ago)`, `19:05 (in 45 min)`; a time on another day carries its date.
    pub fn when(&self, t: &str) -> String {
        let Ok(t) = t.parse::<Timestamp>() else {
            return String::new();
        };
        let local = t.to_zoned_datetime(self.tz.clone());
        let today = self.now.to_zoned_datetime(self.tz.clone()).date() == local.date();
        let clock = local.strftime(if today { "%H:%M" } else { "%b %-d %H:%M" });
        match self.now.duration_since(t).as_secs() {
            s if s >= 0 => format!("{clock} ({} ago)", span(s)),
            s => format!("{clock} (in {})", span(s)),
        }
    }

    /// Only how long ago: `2 min ago` (the table's short form of [`Clock::when`]).
    fn ago(&self, t: &str) -> String {
        t.parse::<Timestamp>()
            .map(|t| format!("{} ago", span(self.now.duration_since(t).as_secs().max(0))))
            .unwrap_or_default()
    }

    /// Only the wall clock, in the zone: `18:19`.
    fn hhmm(&self, t: &str) -> String {
        t.parse::<Timestamp>()
            .map(|t| t.to_zoned_datetime(self.tz.clone()).strftime("%H:%M").to_string())
            .unwrap_or_default()
    }
}

/// A span of `n` seconds, roughly: `less than a minute`, `12 min`, `3 h`, `2 days`.
fn span(n: i64) -> String {
    let n = n.abs();
    match n {
        0..60 => "less than a minute".to_string(),
        60..7200 => format!("{} min", n / 60),
        7200..172_800 => format!("{} h", n / 3600),
        _ => format!("{} days", n / 86_400),
    }
}

/// One history entry as a sentence: what happened, and why.
fn happened(h: &Value) -> String {
    let reason = s(h, "reason");
    let with = |what: &str| match reason {
        "" => what.to_string(),
        r => format!("{what}: {r}"),
    };
    match (&h["action"], &h["verdict"]) {
        (Value::Object(a), _) if a.contains_key("Warn") => with("warned"),
        (Value::String(a), Value::String(verdict)) => match a.as_str() {
            "Stop" => format!("stopped: {}", reason.strip_prefix("stopped: ").unwrap_or(reason)),
            _ => with(&verdict.to_lowercase()),
        },
        (Value::String(a), _) => match a.as_str() {
            "snapshot" => format!("snapshot {} kept", s(h, "snapshot_id")),
            "credential" => with(&format!("credential {}", s(h, "status").replace('_', " "))),
            "restart_jupyter" => with("Jupyter restarted"),
            "pre_stop_hook" => with("pre-stop hook"),
            "on_start_hook" => with("on-start hook"),
            "start" => with("started"),
            "start_fallback" => with(&format!("started as {}", s(h, "to"))),
            "restore" => format!("restored from {}", s(h, "snapshot_id")),
            "modify" => format!("changed by {}: {}", s(h, "by"), changes(h)),
            other => with(other),
        },
        _ => with("noted"),
    }
}

fn usd(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "no price".into(), |x| format!("${x:.2}"))
}

/// `costs`: one line per notebook or owner, the total, and how the saved figure is estimated.
pub fn costs(c: &Value) -> String {
    let mut t = format!(
        "since {} ({})\n{:<40} {:>10} {:>9} {:>9} {:>10} {:>10}\n",
        s(c, "since").get(..10).unwrap_or(""),
        s(c, "by"),
        "",
        "COMPUTE",
        "DISK",
        "SNAPSHOT",
        "TOTAL",
        "SAVED"
    );
    let line = |g: &Value| {
        format!(
            "{:<40} {:>10} {:>9} {:>9} {:>10} {:>10}\n",
            s(g, "key"),
            usd(&g["compute_usd"]),
            usd(&g["disk_usd"]),
            usd(&g["snapshot_usd"]),
            usd(&g["total_usd"]),
            usd(&g["saved_usd"])
        )
    };
    for g in c["groups"].as_array().into_iter().flatten() {
        t.push_str(&line(g));
    }
    t.push_str(&line(&c["total"]));
    t.push_str(&format!(
        "saved: {}\nprices: {}\n",
        s(c, "saved_rule"),
        s(c, "price_source")
    ));
    t
}

/// `costs --plot`: a bar per day, spend (█) and saved (░), to one scale.
pub fn plot(c: &Value) -> String {
    const WIDTH: f64 = 40.0;
    let days = c["days"].as_array().cloned().unwrap_or_default();
    let max = days
        .iter()
        .flat_map(|d| [d["total_usd"].as_f64(), d["saved_usd"].as_f64()])
        .flatten()
        .fold(0.0_f64, f64::max);
    let bar = |x: Option<f64>, glyph: &str| match (x, max > 0.0) {
        (Some(x), true) => glyph.repeat(((x / max) * WIDTH).round() as usize),
        _ => String::new(),
    };
    let mut t = String::from("day         spent (█) and saved (░), per day\n");
    for d in &days {
        let (spent, saved) = (d["total_usd"].as_f64(), d["saved_usd"].as_f64());
        t.push_str(&format!(
            "{}  {} {}\n",
            s(d, "day"),
            bar(spent, "█"),
            usd(&d["total_usd"])
        ));
        t.push_str(&format!(
            "{:<10}  {} {}\n",
            "",
            bar(saved, "░"),
            usd(&d["saved_usd"])
        ));
    }
    t.push_str(&format!(
        "total {} · saved {} ({})\n",
        usd(&c["total"]["total_usd"]),
        usd(&c["total"]["saved_usd"]),
        s(c, "saved_rule")
    ));
    t
}

/// `snapshots`: one line per snapshot, newest first, with what it costs a month.
pub fn snapshots(all: &Value) -> String {
    let list = all["snapshots"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no snapshots (a delete keeps one unless --no-snapshot)\n".into();
    }
    let mut t = format!(
        "{:<24} {:<20} {:>7} {:<20} {:>10}\n",
        "SNAPSHOT", "NOTEBOOK", "SIZE", "TAKEN", "PER MONTH"
    );
    for s in &list {
        let month = s["monthly_usd"]
            .as_f64()
            .map_or_else(|| "no price".into(), |m| format!("≤ ${m:.2}"));
        let taken = s["created"].as_str().map_or("", |c| c.get(..16).unwrap_or(c));
        t.push_str(&format!(
            "{:<24} {:<20} {:>4} GB {:<20} {:>10}\n",
            s["snapshot_id"].as_str().unwrap_or("?"),
            s["notebook"].as_str().unwrap_or("?"),
            s["size_gb"],
            taken.replace('T', " "),
            month
        ));
    }
    t.push_str(&format!(
        "restore one: nbfleet up NAME --restore SNAPSHOT · prices: {}\n",
        s(all, "price_source")
    ));
    t
}

/// What a check found: the verdict and why, and what the sweep would do now.
pub fn check(name: &str, d: &Value, clock: &Clock) -> String {
    let action = match &d["action"] {
        Value::String(a) if a == "Stop" => "stop it (the warning has gone out)".to_string(),
        Value::Object(w) if w.contains_key("Warn") => {
            format!("warn that it stops at {}", clock.when(s(&w["Warn"], "stop_at")))
        }
        _ => "nothing".to_string(),
    };
    let mut t = format!(
        "{name}: {} - {}\n",
        s(d, "verdict").to_lowercase(),
        s(d, "reason")
    );
    t.push_str(&format!("the sweep would: {action}\n"));
    if d["planned_stop"].is_string() {
        t.push_str(&format!("stops at: {}\n", clock.when(s(d, "planned_stop"))));
    }
    t
}

/// The instance types on offer, cheapest first.
pub fn types(offers: &Value) -> String {
    let mut list = offers.as_array().cloned().unwrap_or_default();
    list.sort_by(|a, b| {
        let price = |v: &Value| v["usd_per_hour"].as_f64().unwrap_or(f64::INFINITY);
        price(a).total_cmp(&price(b))
    });
    let mut t = format!("{:<16} {:>10}\n", "TYPE", "PER HOUR");
    for o in &list {
        let price = o["usd_per_hour"]
            .as_f64()
            .map_or_else(|| "no price".into(), |p| format!("${p:.3}"));
        let default = if o["default"] == true {
            "  (the default)"
        } else {
            ""
        };
        t.push_str(&format!("{:<16} {:>10}{default}\n", s(o, "instance_type"), price));
    }
    t
}

/// A change's history entry as `field old → new, …` (hooks as which are set).
pub fn changes(entry: &Value) -> String {
    let value = |v: &Value| match v {
        Value::Null => "none".to_string(),
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("pre_stop_timeout_seconds") => {
            let set: Vec<&str> = ["pre_stop", "on_start"]
                .into_iter()
                .filter(|k| !o[*k].is_null())
                .collect();
            if set.is_empty() {
                "none".into()
            } else {
                set.join(" and ")
            }
        }
        Value::Object(_) => "a schedule".to_string(),
        other => other.to_string(),
    };
    entry["changes"]
        .as_object()
        .map(|all| {
            all.iter()
                .map(|(k, c)| format!("{k} {} → {}", value(&c["from"]), value(&c["to"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn cost(view: &Value) -> String {
    view["cost"]["cost_usd"]
        .as_f64()
        .map_or_else(|| "?".into(), |c| format!("${c:.2}"))
}

/// After `up`: how to connect and the certificate to expect (the token was shown when the launch
/// was accepted).
pub fn ready(nb: &Value) -> String {
    let name = s(nb, "name");
    let mut t = format!("{name} is {}", s(nb, "state"));
    if nb["state"] == "Failed" {
        return format!("{t}\n{}", failure(nb));
    }
    if let Some(url) = nb["connect"]["url"].as_str() {
        t.push_str(&format!("\n  url:         {url}"));
    }
    if let Some(fp) = nb["cert_fingerprint"].as_str() {
        t.push_str(&format!("\n  certificate: sha256 {fp}"));
    }
    if nb["state"] == "Ready" {
        t.push_str(&format!("\n  open it:     nbfleet open {name}"));
    }
    t
}

/// Why a notebook failed, with the end of its script's stderr.
pub fn failure(nb: &Value) -> String {
    let f = &nb["failure"];
    let mut t = format!("failed: {}", f["reason"].as_str().unwrap_or("unknown reason"));
    if let Some(code) = f["exit_code"].as_i64() {
        t.push_str(&format!(" (exit code {code})"));
    }
    if let Some(tail) = f["stderr_tail"].as_str().filter(|t| !t.is_empty()) {
        t.push_str("\nlast lines of the script's stderr:\n");
        for line in tail.lines() {
            t.push_str(&format!("  | {line}\n"));
        }
    }
    t
}

/// `ls`: one line per notebook.
pub fn table(all: &Value, clock: &Clock) -> String {
    let rows: Vec<[String; 8]> = all["notebooks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    let nb = &v["notebook"];
                    let idle = &nb["idle_status"];
                    [
                        s(nb, "name").to_string(),
                        s(nb, "state").to_string(),
                        s(nb, "instance_type").to_string(),
                        cost(v),
                        clock.ago(s(idle, "last_active_at")),
                        clock.ago(s(idle, "checked_at")),
                        idle["planned_stop"]
                            .as_str()
                            .map(|t| clock.hhmm(t))
                            .unwrap_or_default(),
                        s(idle, "reason").to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return "no notebooks yet: nbfleet up NAME\n".into();
    }
    let head = [
        "NAME", "STATE", "TYPE", "COST", "ACTIVE", "CHECKED", "STOPS", "WHY",
    ]
    .map(String::from);
    let mut width = [0usize; 7];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut t = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        for (w, c) in width.iter().zip(r.iter()) {
            t.push_str(&format!("{c:<w$}  "));
        }
        t.push_str(&r[7]);
        t.push('\n');
    }
    t
}

/// `status`: everything about one notebook.
pub fn status(view: &Value, clock: &Clock) -> String {
    let nb = &view["notebook"];
    let mut t = format!(
        "{}: {} since {}\n  type:        {}\n  owner:       {}\n",
        s(nb, "name"),
        s(nb, "state"),
        clock.when(s(nb, "state_since")),
        s(nb, "instance_type"),
        s(nb, "owner")
    );
    let line = |t: &mut String, k: &str, v: &str| {
        if !v.is_empty() {
            t.push_str(&format!("  {k:<12} {v}\n"));
        }
    };
    line(&mut t, "instance:", s(nb, "instance_id"));
    line(&mut t, "url:", nb["connect"]["url"].as_str().unwrap_or(""));
    line(&mut t, "certificate:", s(nb, "cert_fingerprint"));
    if nb["gpu"].is_object() {
        let g = &nb["gpu"];
        line(
            &mut t,
            "gpu:",
            &format!("{} × {} ({} MiB)", g["count"], s(g, "name"), g["memory_mib"]),
        );
    }
    line(
        &mut t,
        "cost:",
        &format!("{} over {} h", cost(view), view["cost"]["running_hours"]),
    );
    let idle = &nb["idle_status"];
    if idle.is_object() {
        line(
            &mut t,
            "idle:",
            &format!("{}: {}", s(idle, "verdict"), s(idle, "reason")),
        );
        line(&mut t, "stops at:", &clock.when(s(idle, "planned_stop")));
        line(&mut t, "checked:", &clock.when(s(idle, "checked_at")));
        line(&mut t, "last active:", &clock.when(s(idle, "last_active_at")));
    }
    if let Some(change) = nb["credential_change"].as_object() {
        let detail = change.get("detail").and_then(Value::as_str).unwrap_or("");
        line(&mut t, "credential:", detail);
    }
    if nb["failure"].is_object() {
        t.push_str(&format!("  {}\n", failure(nb).replace('\n', "\n  ")));
    }
    if let Some(history) = view["history"].as_array().filter(|h| !h.is_empty()) {
        t.push_str("  history (newest first):\n");
        for h in history.iter().rev().take(8) {
            t.push_str(&format!("    {}  {}\n", clock.when(s(h, "at")), happened(h)));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paris_at(now: &str) -> Clock {
        Clock {
            now: now.parse().unwrap(),
            tz: TimeZone::get("Europe/Paris").unwrap(),
        }
    }

    #[test]
    fn times_read_in_the_users_zone_with_how_long_ago_or_how_soon() {
        let c = paris_at("2026-12-05T17:21:00Z");
        assert_eq!(c.when("2026-12-05T17:19:00Z"), "18:19 (2 min ago)");
        assert_eq!(c.when("2026-12-05T18:06:00Z"), "19:06 (in 45 min)");
        assert_eq!(
            c.when("2026-12-05T17:20:59.999999999Z"),
            "18:20 (less than a minute ago)"
        );
        assert_eq!(c.when("2026-12-02T09:00:00Z"), "Dec 2 10:00 (3 days ago)");
        assert_eq!(c.when("not a time"), "");
    }

    #[test]
    fn ls_shows_when_each_notebook_was_last_active_and_last_checked() {
        let all = json!({"notebooks": [{"notebook": {"name": "exp", "state": "Ready",
            "instance_type": "g5.xlarge", "idle_status": {
                "last_active_at": "2026-12-05T17:09:00Z", "checked_at": "2026-12-05T17:19:00Z",
                "planned_stop": "2026-12-05T18:09:00Z",
                "reason": "editing: exp/a.ipynb saved at 17:09 UTC"}}}]});
        let t = table(&all, &paris_at("2026-12-05T17:21:00Z"));
        let lines: Vec<&str> = t.lines().collect();
        let head: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            head,
            [
                "NAME", "STATE", "TYPE", "COST", "ACTIVE", "CHECKED", "STOPS", "WHY"
            ]
        );
        // ACTIVE, then CHECKED, each in its own column.
        assert!(lines[1].contains("12 min ago  2 min ago  "), "{t}");
        assert!(
            lines[1].contains("19:09") && lines[1].ends_with("saved at 17:09 UTC"),
            "{t}"
        );
        let never = json!({"notebooks": [{"notebook": {"name": "new", "state": "Launching"}}]});
        assert!(!table(&never, &paris_at("2026-12-05T17:21:00Z")).contains("ago"));
    }

    #[test]
    fn status_shows_history_as_sentences_never_json() {
        let view = json!({
            "notebook": {"name": "exp", "state": "Ready", "state_since": "2026-12-05T16:00:00Z",
                "idle_status": {"verdict": "Active", "reason": "CPU 180 % outside Jupyter (threshold 20 %)",
                    "checked_at": "2026-12-05T17:19:00Z", "last_active_at": "2026-12-05T17:19:00Z"}},
            "cost": {"cost_usd": 1.0, "running_hours": 1.3},
            "history": [
                {"at": "2026-12-05T16:05:00Z", "verdict": "Active", "action": "None", "reason": "kernel activity at 16:04 UTC"},
                {"at": "2026-12-05T16:40:00Z", "verdict": "Idle", "action": {"Warn": {"stop_at": "2026-12-05T16:50:00Z"}}, "reason": "idle since 15:40 UTC"},
                {"at": "2026-12-05T16:45:00Z", "action": "restart_jupyter", "reason": "URLError: refused"},
                {"at": "2026-12-05T16:46:00Z", "action": "credential", "status": "applied", "reason": "Jupyter takes the new credential"},
                {"at": "2026-12-05T16:50:00Z", "verdict": "Idle", "action": "Stop", "reason": "stopped: idle since 15:40 UTC"},
                {"at": "2026-12-05T16:50:01Z", "action": "pre_stop_hook", "status": "succeeded", "reason": "succeeded: saved 3 files"},
            ]
        });
        let shown = status(&view, &paris_at("2026-12-05T17:21:00Z"));
        assert!(shown.contains("exp: Ready since 17:00 (81 min ago)"), "{shown}");
        assert!(shown.contains("checked:     18:19 (2 min ago)"), "{shown}");
        assert!(
            shown.contains("17:46 (35 min ago)  credential applied: Jupyter takes the new credential"),
            "{shown}"
        );
        assert!(
            shown.contains("17:45 (36 min ago)  Jupyter restarted: URLError: refused"),
            "{shown}"
        );
        assert!(
            shown.contains("17:40 (41 min ago)  warned: idle since 15:40 UTC"),
            "{shown}"
        );
        assert!(
            shown.contains("17:05 (76 min ago)  active: kernel activity"),
            "{shown}"
        );
        assert!(
            shown.contains("17:50 (31 min ago)  stopped: idle since 15:40 UTC\n"),
            "{shown}"
        );
        assert!(
            shown.contains("17:50 (30 min ago)  pre-stop hook: succeeded: saved 3 files"),
            "{shown}"
        );
        assert!(!shown.contains('{'), "no JSON: {shown}");
    }

    #[test]
    fn a_change_reads_as_each_field_from_old_to_new() {
        let entry = json!({"action": "modify", "by": "ana", "changes": {
            "instance_type": {"from": "g5.xlarge", "to": "g6.xlarge"},
            "idle_timeout_minutes": {"from": 60, "to": 45},
            "schedule": {"from": null, "to": {"tz": "UTC", "windows": []}},
            "hooks": {"from": {"pre_stop": null, "pre_stop_timeout_seconds": 120, "on_start": null},
                      "to": {"pre_stop": "18 bytes", "pre_stop_timeout_seconds": 120, "on_start": null}},
        }});
        let shown = changes(&entry);
        for part in [
            "instance_type g5.xlarge → g6.xlarge",
            "idle_timeout_minutes 60 → 45",
            "schedule none → a schedule",
            "hooks none → pre_stop",
        ] {
            assert!(shown.contains(part), "{part}: {shown}");
        }
        assert_eq!(happened(&entry), format!("changed by ana: {shown}"));
    }

    #[test]
    fn snapshots_show_their_notebook_size_and_monthly_cost_or_no_price() {
        let all = json!({"price_source": "bundled, us-east-1", "snapshots": [
            {"snapshot_id": "snap-0123456789abcdef0", "notebook": "exp", "size_gb": 100,
             "created": "2026-12-05T16:00:00Z", "monthly_usd": 5.0},
            {"snapshot_id": "snap-0a1b2c3d", "notebook": "old", "size_gb": 50,
             "created": "2026-11-01T09:30:00Z", "monthly_usd": null},
        ]});
        let shown = snapshots(&all);
        assert!(shown.contains("snap-0123456789abcdef0   exp"), "{shown}");
        assert!(shown.contains("100 GB 2026-12-05 16:00"), "{shown}");
        assert!(shown.contains("≤ $5.00"), "{shown}");
        assert!(shown.contains("no price"), "{shown}");
        assert!(shown.contains("nbfleet up NAME --restore SNAPSHOT"), "{shown}");
        assert!(snapshots(&json!({"snapshots": []})).starts_with("no snapshots"));
    }

    #[test]
    fn costs_show_each_group_and_the_estimates_rule_and_the_plot_scales_to_the_biggest_day() {
        let c = json!({"since": "2026-12-01T00:00:00Z", "by": "notebook", "saved_rule": "an estimate: …",
            "price_source": "bundled", "groups": [
                {"key": "exp", "compute_usd": 2.01, "disk_usd": 0.04, "snapshot_usd": 0.0, "total_usd": 2.05, "saved_usd": 2.01},
                {"key": "far", "compute_usd": null, "disk_usd": 0.0, "snapshot_usd": 0.0, "total_usd": null, "saved_usd": 0.0}],
            "total": {"key": "total", "compute_usd": null, "total_usd": null, "saved_usd": 2.01},
            "days": [{"day": "2026-12-01", "total_usd": 4.0, "saved_usd": 2.0},
                     {"day": "2026-12-02", "total_usd": 1.0, "saved_usd": 0.0}]});
        let shown = costs(&c);
        assert!(
            shown.contains("exp") && shown.contains("$2.05") && shown.contains("no price"),
            "{shown}"
        );
        assert!(shown.contains("saved: an estimate"), "{shown}");
        let drawn = plot(&c);
        assert!(
            drawn.contains(&format!("2026-12-01  {} $4.00", "█".repeat(40))),
            "{drawn}"
        );
        assert!(drawn.contains(&format!("{} $2.00", "░".repeat(20))), "{drawn}");
        assert!(
            drawn.contains(&format!("2026-12-02  {} $1.00", "█".repeat(10))),
            "{drawn}"
        );
    }
}
