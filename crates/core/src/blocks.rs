//! Slack messages in Block Kit: every notice as a section with its text, a line of what the
//! record says (state, type, cost so far) and, where a person can act, buttons; always with a
//! plain-text fallback (`text`, what notifications and old clients show). The buttons' clicks
//! come back as `block_actions` (`crate::slack::Click`), named by [`Button`]'s `action_id` and
//! carrying the notebook's name as their value.
//!
//! Slack's limits are kept here: 3,000 characters a section, 50 blocks a message, 75 a
//! button's label.

use crate::ports::Notice;
use crate::text::slack_escape;
use serde_json::{Value, json};

/// Slack's limit on a section's text.
pub const SECTION_MAX: usize = 3000;
/// Slack's limit on blocks in one message.
pub const BLOCKS_MAX: usize = 50;
/// The prefix of every nbfleet `action_id`.
const PREFIX: &str = "nbfleet_";

/// What a button does to the notebook named in its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// Put the automatic stop off by this many minutes (60 or 240).
    Extend(u32),
    /// Stop it now (on a "stopping soon" notice).
    StopNow,
    /// Stop it (a failed notebook's instance, if it still runs).
    Stop,
    Start,
    /// Delete it, keeping a snapshot of its disk (asks first).
    Delete,
}

/// The minutes the "Keep running" buttons offer.
const EXTENSIONS: [u32; 2] = [60, 240];

impl Button {
    pub fn action_id(self) -> String {
        let what = match self {
            Button::Extend(m) => return format!("{PREFIX}extend_{m}"),
            Button::StopNow => "stop_now",
            Button::Stop => "stop",
            Button::Start => "start",
            Button::Delete => "delete",
        };
        format!("{PREFIX}{what}")
    }

    /// The button an `action_id` names; only the ones nbfleet sends.
    pub fn parse(action_id: &str) -> Option<Button> {
        let what = action_id.strip_prefix(PREFIX)?;
        match what {
            "stop_now" => Some(Button::StopNow),
            "stop" => Some(Button::Stop),
            "start" => Some(Button::Start),
            "delete" => Some(Button::Delete),
            _ => {
                let m: u32 = what.strip_prefix("extend_")?.parse().ok()?;
                EXTENSIONS.contains(&m).then_some(Button::Extend(m))
            }
        }
    }

    pub fn label(self) -> String {
        match self {
            Button::Extend(m) => format!("Keep running {} h", m / 60),
            Button::StopNow => "Stop now".into(),
            Button::Stop => "Stop".into(),
            Button::Start => "Start".into(),
            Button::Delete => "Delete".into(),
        }
    }

    /// The button, for the notebook `name`.
    pub fn block(self, name: &str) -> Value {
        let mut b = json!({
            "type": "button",
            "action_id": self.action_id(),
            "text": {"type": "plain_text", "text": self.label()},
            "value": name,
        });
        match self {
            Button::StopNow | Button::Stop => b["style"] = json!("danger"),
            Button::Start => b["style"] = json!("primary"),
            Button::Delete => {
                b["style"] = json!("danger");
                b["confirm"] = json!({
                    "title": {"type": "plain_text", "text": "Delete the notebook?"},
                    "text": {"type": "mrkdwn", "text": format!(
                        "*{name}* is terminated. Its disk is kept as a snapshot (`/notebook snapshots`), which costs until you delete it."
                    )},
                    "confirm": {"type": "plain_text", "text": "Delete"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                });
            }
            Button::Extend(_) => {}
        }
        b
    }
}

/// The buttons a notice offers its reader.
pub fn buttons(notice: &Notice) -> Vec<Button> {
    match notice {
        Notice::StoppingSoon { .. } => vec![Button::Extend(60), Button::Extend(240), Button::StopNow],
        Notice::Stopped { .. } | Notice::LongStopped { .. } => vec![Button::Start],
        Notice::Failed { .. } => vec![Button::Stop, Button::Delete],
        _ => Vec::new(),
    }
}

/// What the record says when a notice goes out (absent for a notice about no notebook, or one
/// whose record could not be read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Whose notebook (or budget) it is: a bot sends the notice to them.
    pub owner_id: Option<String>,
    pub state: Option<String>,
    pub instance_type: Option<String>,
    pub cost_usd: Option<f64>,
    /// The run a Stopped notice ends: its hours and what they cost (`None`: no price).
    pub run: Option<(f64, Option<f64>)>,
}

impl Facts {
    fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(s) = &self.state {
            parts.push(s.clone());
        }
        if let Some(t) = &self.instance_type {
            parts.push(t.clone());
        }
        if let Some((hours, usd)) = self.run {
            let usd = usd.map_or("no price".to_string(), |u| format!("${u:.2}"));
            parts.push(format!("this run {hours:.1} h, {usd}"));
        }
        if let Some(c) = self.cost_usd {
            parts.push(format!("${c:.2} so far"));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// `text` cut to fit a section, at a character boundary, saying so.
fn fit(text: &str) -> String {
    if text.chars().count() <= SECTION_MAX {
        return text.to_string();
    }
    let kept: String = text.chars().take(SECTION_MAX - 1).collect();
    format!("{kept}…")
}

/// A section of mrkdwn `text` (escaped: a notebook's or a hook's words are shown as written).
pub fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": fit(&slack_escape(text))}})
}

/// A context line of mrkdwn (escaped).
pub fn context(text: &str) -> Value {
    own_context(&slack_escape(text))
}

/// A context line of nbfleet's own mrkdwn, not escaped (a `<@USER>` in it stays a mention).
fn own_context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(text)}]})
}

/// An actions block of `buttons` for the notebook `name`.
pub fn actions(name: &str, buttons: &[Button]) -> Value {
    let elements: Vec<Value> = buttons.iter().map(|b| b.block(name)).collect();
    json!({"type": "actions", "block_id": format!("{PREFIX}{name}"), "elements": elements})
}

/// The whole message of `notice`: `text` (the fallback) and its blocks.
pub fn notice(notice: &Notice, facts: &Facts) -> Value {
    let text = notice.text();
    let mut blocks = vec![section(&text)];
    if let Some(line) = facts.line() {
        blocks.push(context(&line));
    }
    let buttons = buttons(notice);
    if !buttons.is_empty() {
        blocks.push(actions(notice.name(), &buttons));
    }
    json!({"text": fit(&slack_escape(&text)), "blocks": blocks})
}

/// The message a click leaves in place of the one it was on: the original's blocks without
/// its buttons, and a line of what happened (`outcome`: nbfleet's own mrkdwn, not escaped, so
/// that the clicker's `<@USER>` is a mention). Sent to the click's `response_url` with
/// `replace_original`.
pub fn after_click(original: Option<&Value>, outcome: &str) -> Value {
    let mut blocks: Vec<Value> = original
        .and_then(|m| m["blocks"].as_array())
        .map(|all| all.iter().filter(|b| b["type"] != "actions").cloned().collect())
        .unwrap_or_default();
    blocks.truncate(BLOCKS_MAX - 1);
    blocks.push(own_context(outcome));
    json!({"replace_original": true, "text": fit(outcome), "blocks": blocks})
}

/// A reply only the clicker sees, leaving the message as it was.
pub fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": fit(&slack_escape(text))})
}

/// Checks a message against the Block Kit shapes nbfleet uses: for tests, and for anyone who
/// changes a message. The error names the first thing Slack would refuse.
pub fn check(message: &Value) -> Result<(), String> {
    let text = message["text"].as_str().ok_or("no fallback text")?;
    if text.is_empty() {
        return Err("an empty fallback text".into());
    }
    let blocks = message["blocks"].as_array().ok_or("no blocks")?;
    if blocks.is_empty() || blocks.len() > BLOCKS_MAX {
        return Err(format!("{} blocks (1 to {BLOCKS_MAX})", blocks.len()));
    }
    for b in blocks {
        match b["type"].as_str() {
            Some("section") => {
                let t = b["text"]["text"].as_str().ok_or("a section without text")?;
                if b["text"]["type"] != "mrkdwn" || t.chars().count() > SECTION_MAX || t.is_empty() {
                    return Err(format!("a section's text: {t:?}"));
                }
            }
            Some("context") => {
                let elements = b["elements"].as_array().ok_or("a context without elements")?;
                if elements.is_empty() || elements.len() > 10 {
                    return Err("a context needs 1 to 10 elements".into());
                }
            }
            Some("actions") => {
                let elements = b["elements"].as_array().ok_or("actions without elements")?;
                if elements.is_empty() || elements.len() > 25 {
                    return Err("actions need 1 to 25 elements".into());
                }
                for e in elements {
                    let id = e["action_id"].as_str().ok_or("a button without action_id")?;
                    let label = e["text"]["text"].as_str().ok_or("a button without a label")?;
                    if e["type"] != "button" || Button::parse(id).is_none() || label.chars().count() > 75 {
                        return Err(format!("a button: {e}"));
                    }
                    if e["value"].as_str().is_none_or(|v| v.is_empty() || v.len() > 2000) {
                        return Err(format!("a button's value: {e}"));
                    }
                }
            }
            other => return Err(format!("a block of type {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn facts() -> Facts {
        Facts {
            owner_id: Some("AIDAALICE".into()),
            state: Some("Ready".into()),
            instance_type: Some("g5.xlarge".into()),
            cost_usd: Some(3.456),
            run: None,
        }
    }

    fn every_notice() -> Vec<Notice> {
        let name = || "exp-1".to_string();
        vec![
            Notice::Ready {
                name: name(),
                connect: None,
                fingerprint: Some("ab".repeat(32)),
            },
            Notice::StoppingSoon {
                name: name(),
                stop_at: at("2026-12-06T16:40:00Z"),
                reason: "idle since 15:30 UTC".into(),
            },
            Notice::Stopped {
                name: name(),
                reason: "stopped: idle since 15:30 UTC".into(),
            },
            Notice::Started {
                name: name(),
                reason: "started: its schedule opened".into(),
            },
            Notice::Failed {
                name: name(),
                error: "the bootstrap exited 1: pip failed".into(),
            },
            Notice::Orphan {
                name: name(),
                instance_id: "i-0123".into(),
            },
            Notice::DeleteHeld {
                name: name(),
                error: "SnapshotLimitExceeded".into(),
            },
            Notice::CredentialNotApplied {
                name: name(),
                error: "timed out".into(),
            },
            Notice::JupyterRestarted {
                name: name(),
                why: "connection refused".into(),
            },
            Notice::OnStartHookFailed {
                name: name(),
                detail: "exited 2".into(),
            },
            Notice::LongStopped {
                name: name(),
                detail: "has been stopped for 14 days".into(),
            },
            Notice::SnapshotRetention {
                name: name(),
                detail: "deleted after 90 days".into(),
            },
            Notice::Budget {
                owner: "alice".into(),
                spent_cents: 8_100,
                budget_cents: 10_000,
            },
        ]
    }

    #[test]
    fn every_notice_is_a_valid_message_with_its_text_as_the_fallback() {
        for n in every_notice() {
            let m = notice(&n, &facts());
            check(&m).unwrap_or_else(|e| panic!("{n:?}: {e}\n{m:#}"));
            assert_eq!(m["text"], slack_escape(&n.text()));
            assert_eq!(
                m["blocks"][1]["elements"][0]["text"],
                "Ready · g5.xlarge · $3.46 so far"
            );
        }
    }

    /// Golden: the "stopping soon" notice, the one people act on most.
    #[test]
    fn stopping_soon_offers_keep_running_and_stop_now() {
        let n = &every_notice()[1];
        let m = notice(n, &facts());
        let ids: Vec<&str> = m["blocks"][2]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["nbfleet_extend_60", "nbfleet_extend_240", "nbfleet_stop_now"]
        );
        assert_eq!(m["blocks"][2]["elements"][0]["text"]["text"], "Keep running 1 h");
        assert_eq!(m["blocks"][2]["elements"][1]["text"]["text"], "Keep running 4 h");
        assert_eq!(m["blocks"][2]["elements"][0]["value"], "exp-1");
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "*exp-1* stops at 16:40 UTC: idle since 15:30 UTC\nTo keep it: `/notebook extend exp-1 60` or `nbfleet extend exp-1 60`."
        );
    }

    #[test]
    fn stopped_offers_start_and_failed_offers_stop_and_a_confirmed_delete() {
        let all = every_notice();
        let ids = |n: &Notice| -> Vec<String> { buttons(n).iter().map(|b| b.action_id()).collect() };
        assert_eq!(ids(&all[2]), ["nbfleet_start"]);
        assert_eq!(ids(&all[4]), ["nbfleet_stop", "nbfleet_delete"]);
        let delete = Button::Delete.block("exp-1");
        assert_eq!(delete["confirm"]["confirm"]["text"], "Delete");
        for quiet in [&all[0], &all[3], &all[5], &all[12]] {
            assert!(ids(quiet).is_empty(), "{quiet:?}");
        }
    }

    #[test]
    fn only_the_buttons_nbfleet_sends_parse() {
        for b in [
            Button::Extend(60),
            Button::Extend(240),
            Button::StopNow,
            Button::Stop,
            Button::Start,
            Button::Delete,
        ] {
            assert_eq!(Button::parse(&b.action_id()), Some(b));
        }
        for bad in [
            "nbfleet_extend_100000",
            "nbfleet_extend_",
            "extend_60",
            "nbfleet_reboot",
            "",
            "nbfleet_extend_-1",
        ] {
            assert_eq!(Button::parse(bad), None, "{bad}");
        }
    }

    /// Golden: the Stopped notice tells what the run it ends cost, and offers Start.
    #[test]
    fn stopped_says_what_the_run_cost() {
        let stopped = &every_notice()[2];
        let facts = Facts {
            state: Some("Stopped".into()),
            run: Some((2.5, Some(3.0175))),
            ..facts()
        };
        let m = notice(stopped, &facts);
        check(&m).unwrap();
        assert_eq!(
            m["blocks"][1]["elements"][0]["text"],
            "Stopped · g5.xlarge · this run 2.5 h, $3.02 · $3.46 so far"
        );
        let unpriced = notice(
            stopped,
            &Facts {
                run: Some((1.0, None)),
                ..facts
            },
        );
        assert_eq!(
            unpriced["blocks"][1]["elements"][0]["text"],
            "Stopped · g5.xlarge · this run 1.0 h, no price · $3.46 so far"
        );
    }

    #[test]
    fn a_long_text_is_cut_to_a_section_and_markup_in_it_is_shown_as_written() {
        let n = Notice::Failed {
            name: "exp-1".into(),
            error: format!("<!channel> {}", "x".repeat(5000)),
        };
        let m = notice(&n, &Facts::default());
        check(&m).unwrap();
        let t = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(t.chars().count(), SECTION_MAX);
        assert!(t.contains("&lt;!channel&gt;") && t.ends_with('…'));
        assert_eq!(
            m["blocks"].as_array().unwrap().len(),
            2,
            "no facts line without facts"
        );
    }

    #[test]
    fn a_click_replaces_the_buttons_with_what_happened() {
        let original = notice(&every_notice()[1], &facts());
        let after = after_click(Some(&original), "extended to 17:40 UTC by <@U123>");
        assert_eq!(after["replace_original"], true);
        let blocks = after["blocks"].as_array().unwrap();
        assert!(blocks.iter().all(|b| b["type"] != "actions"));
        assert_eq!(blocks.len(), 3);
        check(&after).unwrap();
        let alone = after_click(None, "stopped by <@U123>");
        assert_eq!(alone["blocks"].as_array().unwrap().len(), 1);
    }
}
