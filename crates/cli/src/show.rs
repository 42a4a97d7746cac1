//! How notebooks read in a terminal.

use serde_json::Value;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn hhmm(t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%H:%M UTC").to_string())
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
pub fn table(all: &Value) -> String {
    let rows: Vec<[String; 6]> = all["notebooks"]
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
                        idle["planned_stop"].as_str().map(hhmm).unwrap_or_default(),
                        s(idle, "reason").to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return "no notebooks yet: nbfleet up NAME\n".into();
    }
    let head = ["NAME", "STATE", "TYPE", "COST", "STOPS", "WHY"].map(String::from);
    let mut width = [0usize; 5];
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
        t.push_str(&r[5]);
        t.push('\n');
    }
    t
}

/// `status`: everything about one notebook.
pub fn status(view: &Value) -> String {
    let nb = &view["notebook"];
    let mut t = format!(
        "{}: {} since {}\n  type:        {}\n  owner:       {}\n",
        s(nb, "name"),
        s(nb, "state"),
        s(nb, "state_since"),
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
        line(
            &mut t,
            "stops at:",
            &idle["planned_stop"].as_str().map(hhmm).unwrap_or_default(),
        );
    }
    if nb["failure"].is_object() {
        t.push_str(&format!("  {}\n", failure(nb).replace('\n', "\n  ")));
    }
    if let Some(history) = view["history"].as_array().filter(|h| !h.is_empty()) {
        t.push_str("  history:\n");
        for h in history.iter().rev().take(5) {
            t.push_str(&format!("    {}\n", h));
        }
    }
    t
}
