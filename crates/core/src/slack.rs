//! Slack slash commands, the pure part: verifying a request (HMAC-SHA256 over
//! `v0:{timestamp}:{raw body}`, compared in constant time, within 5 minutes either way), reading
//! its form, the `/notebook` grammar, and who may use it. The signing secret comes in as an
//! argument; nothing here does I/O.
//!
//! Nothing from the text reaches a shell: a command is parsed into typed fields, each checked
//! against the same strict patterns as the HTTP API (names by [`validate_name`]).

use crate::identity::Principal;
use crate::validate::validate_name;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::Sha256;

/// How far a request's timestamp may be from now, either way.
pub const WINDOW_SECONDS: i64 = 5 * 60;

/// Why a request was refused before it was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("missing the {0} header")]
    MissingHeader(&'static str),
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request is more than 5 minutes old or ahead")]
    OutsideWindow,
    #[error("the signature does not match")]
    BadSignature,
}

/// Checks Slack's `X-Slack-Signature` (`v0=<hex>`) for `body` as sent, at `now`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), Rejected> {
    let timestamp = timestamp.ok_or(Rejected::MissingHeader("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(Rejected::MissingHeader("X-Slack-Signature"))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| Rejected::BadTimestamp)?;
    if (now.as_second() - ts).abs() > WINDOW_SECONDS {
        return Err(Rejected::OutsideWindow);
    }
    verify_signature(secret, timestamp, signature, body)
}

/// Checks only the signature, at any age: for a slow command's job, which carries the request
/// it came from and may be delivered again hours later (its freshness was checked when the
/// request came in).
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), Rejected> {
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Rejected::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Rejected::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).map_err(|_| Rejected::BadSignature)
}

/// The Jupyter token of a notebook launched by the signed request whose signature is
/// `signature`: 48 hex characters of HMAC-SHA256 under the signing secret. The acknowledgement
/// shows it to the user at once and the job (which may run twice, or hours later) launches with
/// the same one, without the token ever travelling in the job's payload. Unguessable without the
/// signing secret, and one per request.
pub fn launch_token(secret: &[u8], signature: &str) -> crate::password::Secret {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"nbfleet-launch-token:");
    mac.update(signature.as_bytes());
    let bytes = mac.finalize().into_bytes();
    crate::password::Secret::new(hex::encode(&bytes[..24]))
}

/// The signature Slack would send for `body` at `timestamp`: for tests and local tools.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The host Slack's `response_url`s are on.
pub const RESPONSE_HOST: &str = "hooks.slack.com";

/// Checks that `url` is an `https://` URL on Slack's hooks host (or one of `extra_hosts`, which
/// the operator adds for a Slack of their own), with no user, password or port: nbfleet posts
/// answers (tokens among them) there, and must never post them anywhere else.
pub fn check_response_url(url: &str, extra_hosts: &[String]) -> Result<(), String> {
    let host = url
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .unwrap_or_default();
    let ok = !host.is_empty()
        && !host.contains(['@', ':'])
        && (host == RESPONSE_HOST || extra_hosts.iter().any(|h| h == host));
    if ok {
        Ok(())
    } else {
        Err(format!("response_url {url:?} is not on {RESPONSE_HOST}"))
    }
}

/// The fields of a slash-command request nbfleet uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashRequest {
    pub team_id: String,
    pub user_id: String,
    pub text: String,
    pub response_url: String,
}

/// Whether `team` and `user` may use nbfleet from Slack: the team must be listed; an empty user
/// list lets every user of a listed team in.
fn allowed(team: &str, user: &str, teams: &[String], users: &[String]) -> bool {
    teams.iter().any(|t| t == team) && (users.is_empty() || users.iter().any(|u| u == user))
}

/// Whether `s` is shaped like a Slack team or user id (`T0123ABCD`, `U0123ABCD`).
fn slack_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whom a Slack user acts as: the owner the operator mapped them to (`NBFLEET_SLACK_OWNERS`),
/// so that they own what they launched from the CLI too; otherwise their Slack identity
/// (`slack:TEAM:USER`), which owns only what they launch from Slack. An admin only where the
/// operator lists the user in `NBFLEET_SLACK_ADMINS`.
pub fn owner(team_id: &str, user_id: &str, slack: &crate::config::Slack) -> Principal {
    let name = format!("slack:{team_id}:{user_id}");
    Principal {
        id: slack.owners.get(user_id).cloned().unwrap_or_else(|| name.clone()),
        name,
        admin: slack.admins.iter().any(|a| a == user_id),
    }
}

impl SlashRequest {
    /// Reads the `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Result<SlashRequest, String> {
        let mut req = SlashRequest {
            team_id: String::new(),
            user_id: String::new(),
            text: String::new(),
            response_url: String::new(),
        };
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "team_id" => req.team_id = v.into_owned(),
                "user_id" => req.user_id = v.into_owned(),
                "text" => req.text = v.into_owned(),
                "response_url" => req.response_url = v.into_owned(),
                _ => {}
            }
        }
        if !slack_id(&req.team_id) || !slack_id(&req.user_id) {
            return Err("the request has no valid team_id or user_id".into());
        }
        if !req.response_url.starts_with("https://") {
            return Err("the request has no https response_url".into());
        }
        Ok(req)
    }

    /// The owner nbfleet records for notebooks launched from Slack.
    /// Whom this user acts as (see [`owner`]).
    pub fn owner(&self, slack: &crate::config::Slack) -> Principal {
        owner(&self.team_id, &self.user_id, slack)
    }

    /// Whether this team and user may use `/notebook`: the team must be listed; an empty user
    /// list lets every user of a listed team in.
    pub fn allowed(&self, teams: &[String], users: &[String]) -> bool {
        allowed(&self.team_id, &self.user_id, teams, users)
    }
}

/// A button pressed on one of nbfleet's messages: Slack's `block_actions` interaction, whose
/// form-encoded body has one field, `payload` (JSON). Signed like a slash command.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    pub team_id: String,
    pub user_id: String,
    pub button: crate::blocks::Button,
    /// The notebook the button is for (its value).
    pub notebook: String,
    pub response_url: String,
    /// When Slack saw the click: with the user and the button, it names the click, so a click
    /// delivered twice is acted on once.
    pub action_ts: String,
    /// The message the button was on, when Slack sends it (to put back without its buttons).
    pub message: Option<serde_json::Value>,
}

/// Whether a form-encoded body is an interaction (it has a `payload`), not a slash command.
pub fn is_interaction(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(k, _)| k == "payload")
}

impl Click {
    /// Reads the body of an interaction request. Only `block_actions` on nbfleet's own buttons
    /// are taken; anything else is an error that says what it was.
    pub fn parse(body: &[u8]) -> Result<Click, String> {
        let payload = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or("the interaction has no payload")?;
        let p: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
        if p["type"] != "block_actions" {
            return Err(format!("an interaction of type {} is not handled", p["type"]));
        }
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let action = &p["actions"][0];
        let button = crate::blocks::Button::parse(action["action_id"].as_str().unwrap_or_default())
            .ok_or_else(|| format!("{} is not an nbfleet button", action["action_id"]))?;
        let notebook = text(&action["value"]);
        validate_name(&notebook).map_err(|e| e.to_string())?;
        let click = Click {
            team_id: text(&p["team"]["id"]),
            user_id: text(&p["user"]["id"]),
            button,
            notebook,
            response_url: text(&p["response_url"]),
            action_ts: text(&action["action_ts"]),
            message: p.get("message").cloned(),
        };
        if !slack_id(&click.team_id) || !slack_id(&click.user_id) {
            return Err("the interaction has no valid team or user id".into());
        }
        if click.action_ts.is_empty() || click.action_ts.len() > 32 {
            return Err("the interaction has no action_ts".into());
        }
        Ok(click)
    }

    /// Whom this user acts as (see [`owner`]).
    pub fn owner(&self, slack: &crate::config::Slack) -> Principal {
        owner(&self.team_id, &self.user_id, slack)
    }

    /// Whether this team and user may use nbfleet from Slack (see [`allowed`]).
    pub fn allowed(&self, teams: &[String], users: &[String]) -> bool {
        allowed(&self.team_id, &self.user_id, teams, users)
    }

    /// The key that marks this click as taken.
    pub fn key(&self) -> String {
        format!(
            "slack-click#{}#{}#{}",
            self.user_id,
            self.button.action_id(),
            self.action_ts
        )
    }
}

/// A reply only the caller sees (`response_type: ephemeral`), as Slack takes it in a
/// slash command's answer and on its `response_url`.
pub fn ephemeral(text: &str) -> serde_json::Value {
    serde_json::json!({"response_type": "ephemeral", "text": crate::text::slack_escape(text)})
}

/// One `/notebook` command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlashCommand {
    Launch {
        name: String,
        instance_type: Option<String>,
        idle_timeout_minutes: Option<u32>,
    },
    Start(String),
    /// `stop NAME [--no-hook]`: `hook` is whether the pre-stop hook runs first.
    Stop {
        name: String,
        hook: bool,
    },
    Status(String),
    List,
    /// `rm NAME`: answered with a button that asks again, then deletes (keeping a snapshot).
    Delete(String),
    /// The caller's snapshots.
    Snapshots,
    /// The caller's spend this month.
    Costs,
    Extend {
        name: String,
        minutes: u32,
    },
    /// `set NAME key=value…`: a change, as the fields of a `PATCH /notebooks/{name}` body
    /// (checked there, by `modify::parse`).
    Set {
        name: String,
        changes: serde_json::Map<String, serde_json::Value>,
    },
    Help,
}

/// `/notebook set`'s keys and the `PATCH` fields they set: numbers, but `type` (a name),
/// `connections` (true or false) and `schedule` (only `none`: a schedule is too long to type).
const SET_KEYS: [(&str, &str); 9] = [
    ("type", "instance_type"),
    ("volume", "volume_gb"),
    ("idle", "idle_timeout_minutes"),
    ("warning", "warning_minutes"),
    ("max-runtime", "max_runtime_minutes"),
    ("gpu", "gpu_threshold_pct"),
    ("cpu", "cpu_threshold_pct"),
    ("connections", "count_connections"),
    ("schedule", "schedule"),
];

pub const USAGE: &str = "\
*/notebook* runs GPU Jupyter notebooks.
• `/notebook up NAME [TYPE] [IDLE_MINUTES]`: launch one (you get its token, only you)
• `/notebook start NAME` · `/notebook stop NAME [--no-hook]`
• `/notebook status NAME` · `/notebook ls`
• `/notebook extend NAME MINUTES`: put off its idle stop
• `/notebook rm NAME`: delete it, keeping a snapshot of its disk (a button asks first)
• `/notebook snapshots` · `/notebook costs`: your kept disks; what you spent this month
• `/notebook set NAME idle=30 warning=5 max-runtime=480 gpu=10 cpu=20 connections=false volume=200 type=g6.xlarge schedule=none`: change it (any of these; `type` only while stopped)
• `/notebook help`
Passwords are never taken here: a Slack launch gets a token, shown only to you.";

impl SlashCommand {
    /// Parses the text after `/notebook`. The error is a sentence followed by the usage.
    pub fn parse(text: &str) -> Result<SlashCommand, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let fail = |why: String| Err(format!("{why}\n\n{USAGE}"));
        let name = |i: usize| -> Result<String, String> {
            let n = words
                .get(i)
                .ok_or_else(|| format!("`{}` needs a notebook name", words[0]))?;
            validate_name(n).map_err(|e| e.to_string())?;
            Ok(n.to_string())
        };
        let Some(verb) = words.first() else {
            return Ok(SlashCommand::Help);
        };
        if words.iter().any(|w| w.to_ascii_lowercase().contains("password")) {
            return fail(
                "passwords are never accepted through Slack: a launch gets a token, shown only to you".into(),
            );
        }
        let with_name = |want: usize, f: fn(String) -> SlashCommand| match name(1) {
            Ok(n) if words.len() == want => Ok(f(n)),
            Ok(_) => fail(format!("`{verb}` takes only a notebook name")),
            Err(e) => fail(e),
        };
        match verb.to_ascii_lowercase().as_str() {
            "help" => Ok(SlashCommand::Help),
            "list" | "ls" => Ok(SlashCommand::List),
            "start" => with_name(2, SlashCommand::Start),
            "stop" => match name(1) {
                Ok(name) => match words.get(2..).unwrap_or_default() {
                    [] => Ok(SlashCommand::Stop { name, hook: true }),
                    ["--no-hook"] => Ok(SlashCommand::Stop { name, hook: false }),
                    _ => fail(
                        "`stop` takes a notebook name and, to skip its pre-stop hook, `--no-hook`".into(),
                    ),
                },
                Err(e) => fail(e),
            },
            "rm" | "delete" => with_name(2, SlashCommand::Delete),
            "snapshots" if words.len() == 1 => Ok(SlashCommand::Snapshots),
            "costs" if words.len() == 1 => Ok(SlashCommand::Costs),
            "snapshots" | "costs" => fail(format!("`{verb}` takes nothing more")),
            "status" => with_name(2, SlashCommand::Status),
            "extend" => {
                let n = match name(1) {
                    Ok(n) => n,
                    Err(e) => return fail(e),
                };
                match (words.get(2).map(|m| m.parse::<u32>()), words.len()) {
                    (Some(Ok(minutes)), 3) if minutes > 0 => Ok(SlashCommand::Extend { name: n, minutes }),
                    _ => fail("`extend` takes a notebook name and a number of minutes".into()),
                }
            }
            "set" => {
                let n = match name(1) {
                    Ok(n) => n,
                    Err(e) => return fail(e),
                };
                let mut changes = serde_json::Map::new();
                for w in &words[2..] {
                    let Some((key, value)) = w.split_once('=') else {
                        return fail(format!("`{w}`: give key=value"));
                    };
                    let Some((_, field)) = SET_KEYS.iter().find(|(k, _)| *k == key) else {
                        return fail(format!("`set` does not know `{key}`"));
                    };
                    let v =
                        match key {
                            "type" => serde_json::json!(value),
                            "connections" => match value {
                                "true" | "yes" | "on" => serde_json::json!(true),
                                "false" | "no" | "off" => serde_json::json!(false),
                                _ => return fail(format!("`{w}`: connections= takes true or false")),
                            },
                            "schedule" if value == "none" => serde_json::Value::Null,
                            "schedule" => return fail(
                                "`schedule=none` removes the schedule; set one with `nbfleet set --schedule`"
                                    .into(),
                            ),
                            _ => match value.parse::<u32>() {
                                Ok(n) => serde_json::json!(n),
                                Err(_) => return fail(format!("`{w}`: {key}= takes a whole number")),
                            },
                        };
                    changes.insert(field.to_string(), v);
                }
                if changes.is_empty() {
                    return fail("`set` needs at least one key=value".into());
                }
                Ok(SlashCommand::Set { name: n, changes })
            }
            "launch" | "up" => {
                let n = match name(1) {
                    Ok(n) => n,
                    Err(e) => return fail(e),
                };
                let (mut instance_type, mut idle_timeout_minutes) = (None, None);
                for w in &words[2..] {
                    if let Some(m) = w
                        .strip_prefix("idle=")
                        .or_else(|| w.parse::<u32>().ok().map(|_| *w))
                    {
                        match m.parse::<u32>() {
                            Ok(m) if idle_timeout_minutes.is_none() => idle_timeout_minutes = Some(m),
                            _ => return fail(format!("`{w}`: give the idle timeout once, in minutes")),
                        }
                    } else if instance_type.is_none() && is_instance_type(w) {
                        instance_type = Some(w.to_string());
                    } else {
                        return fail(format!("`{verb}` does not understand `{w}`"));
                    }
                }
                Ok(SlashCommand::Launch {
                    name: n,
                    instance_type,
                    idle_timeout_minutes,
                })
            }
            _ => fail(format!("unknown command `{verb}`")),
        }
    }

    /// Whether it changes anything (so a replay of it must be refused).
    pub fn changes_something(&self) -> bool {
        !matches!(
            self,
            SlashCommand::Help
                | SlashCommand::List
                | SlashCommand::Status(_)
                | SlashCommand::Delete(_)
                | SlashCommand::Snapshots
                | SlashCommand::Costs
        )
    }

    /// Whether answering takes longer than Slack's 3 seconds may allow (it calls EC2), so the
    /// work goes through the asynchronous self-invocation.
    pub fn is_slow(&self) -> bool {
        matches!(
            self,
            SlashCommand::Launch { .. }
                | SlashCommand::Start(_)
                | SlashCommand::Stop { .. }
                | SlashCommand::Set { .. }
        )
    }
}

/// `g5.xlarge`-shaped; whether it is allowed is the launch's check.
fn is_instance_type(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    s.len() <= 32 && s.split_once('.').is_some_and(|(a, b)| ok(a) && ok(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Slack;
    use std::collections::BTreeMap;

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    // Slack's documented example request.
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const TS: &str = "1531420618";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(ts: i64) -> Timestamp {
        Timestamp::from_second(ts).unwrap()
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, at(1531420618 + 10)),
            Ok(())
        );
        assert_eq!(sign(SECRET, TS, BODY), SIG);
    }

    #[test]
    fn a_changed_body_secret_or_signature_is_refused() {
        let now = at(1531420618);
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), &body, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(b"other", Some(TS), Some(SIG), BODY, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some("v1=00"), BODY, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some("v0=zz"), BODY, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY, now),
            Err(Rejected::MissingHeader("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            verify(SECRET, Some(TS), None, BODY, now),
            Err(Rejected::MissingHeader("X-Slack-Signature"))
        );
        assert_eq!(
            verify(SECRET, Some("soon"), Some(SIG), BODY, now),
            Err(Rejected::BadTimestamp)
        );
    }

    #[test]
    fn the_window_is_five_minutes_each_way() {
        let ts = 1531420618;
        for (now, ok) in [
            (ts + 300, true),
            (ts - 300, true),
            (ts + 301, false),
            (ts - 301, false),
        ] {
            let got = verify(SECRET, Some(TS), Some(SIG), BODY, at(now));
            assert_eq!(got.is_ok(), ok, "now = ts {:+}", now - ts);
            if !ok {
                assert_eq!(got, Err(Rejected::OutsideWindow));
            }
        }
    }

    #[test]
    fn a_slack_launch_token_is_one_per_request_and_needs_the_secret() {
        let a = launch_token(SECRET, "v0=aaaa");
        assert_eq!(a.expose().len(), 48);
        assert!(a.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, launch_token(SECRET, "v0=aaaa"), "the job makes the same one");
        assert_ne!(a, launch_token(SECRET, "v0=bbbb"));
        assert_ne!(a, launch_token(b"another secret", "v0=aaaa"));
    }

    #[test]
    fn answers_go_to_slacks_hooks_host_only() {
        let extra = vec!["hooks.slack-gov.com".to_string()];
        for ok in [
            "https://hooks.slack.com/commands/T1/1/abc",
            "https://hooks.slack-gov.com/commands/T1/1/abc",
        ] {
            assert_eq!(check_response_url(ok, &extra), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.slack.com/commands/T1/1/abc",
            "https://hooks.slack.com.evil.example/x",
            "https://evil.example/hooks.slack.com",
            "https://user@hooks.slack.com/x",
            "https://hooks.slack.com:8443/x",
            "https://169.254.169.254/latest/meta-data",
            "",
        ] {
            assert!(check_response_url(bad, &extra).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_form_is_read_and_the_allow_list_applies() {
        let req = SlashRequest::parse(BODY).unwrap();
        assert_eq!(
            (req.team_id.as_str(), req.user_id.as_str()),
            ("T1DC2JH3J", "U2CERLKJA")
        );
        assert!(req.response_url.starts_with("https://hooks.slack.com/commands/"));
        let unmapped = req.owner(&Slack::default());
        assert_eq!(
            (unmapped.id.as_str(), unmapped.name.as_str()),
            ("slack:T1DC2JH3J:U2CERLKJA", "slack:T1DC2JH3J:U2CERLKJA")
        );
        // Mapped by the operator: the Slack user acts as the IAM owner they launch as from the CLI.
        let mut slack = Slack {
            owners: BTreeMap::from([("U2CERLKJA".to_string(), "AROAEXAMPLE:alice".to_string())]),
            ..Slack::default()
        };
        let mapped = req.owner(&slack);
        assert_eq!((mapped.id.as_str(), mapped.admin), ("AROAEXAMPLE:alice", false));
        // Listed by the operator as an admin: acts on any notebook, still as their own owner.
        slack.admins = vec!["U2CERLKJA".into()];
        let admin = req.owner(&slack);
        assert_eq!((admin.id.as_str(), admin.admin), ("AROAEXAMPLE:alice", true));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(req.allowed(&s(&["T1DC2JH3J"]), &[]));
        assert!(req.allowed(&s(&["T1DC2JH3J"]), &s(&["U2CERLKJA"])));
        assert!(!req.allowed(&s(&["T1DC2JH3J"]), &s(&["UOTHER"])));
        assert!(!req.allowed(&s(&["TOTHER"]), &[]));
        assert!(!req.allowed(&[], &[]), "no team listed lets nobody in");
    }

    #[test]
    fn a_form_without_ids_or_an_https_response_url_is_refused() {
        assert!(SlashRequest::parse(b"team_id=T1&response_url=https%3A%2F%2Fx").is_err());
        assert!(SlashRequest::parse(b"team_id=T1&user_id=U1&response_url=http%3A%2F%2Fx").is_err());
        assert!(SlashRequest::parse(b"team_id=T1%3Brm&user_id=U1&response_url=https%3A%2F%2Fx").is_err());
    }

    #[test]
    fn commands_parse() {
        let p = |t: &str| SlashCommand::parse(t).unwrap();
        assert_eq!(p(""), SlashCommand::Help);
        assert_eq!(p("help"), SlashCommand::Help);
        assert_eq!(p("list"), SlashCommand::List);
        assert_eq!(p("start exp-1"), SlashCommand::Start("exp-1".into()));
        let stop = |hook| SlashCommand::Stop {
            name: "exp-1".into(),
            hook,
        };
        assert_eq!(p("stop exp-1"), stop(true));
        assert_eq!(p("stop exp-1 --no-hook"), stop(false));
        assert_eq!(p("rm exp-1"), SlashCommand::Delete("exp-1".into()));
        assert_eq!(p("ls"), SlashCommand::List);
        assert_eq!(p("snapshots"), SlashCommand::Snapshots);
        assert_eq!(p("costs"), SlashCommand::Costs);
        assert_eq!(
            p("up exp-1 g5.xlarge 90"),
            SlashCommand::Launch {
                name: "exp-1".into(),
                instance_type: Some("g5.xlarge".into()),
                idle_timeout_minutes: Some(90)
            }
        );
        // Asking is no change: a delete happens only when its button is pressed.
        assert!(!p("rm exp-1").changes_something() && !p("rm exp-1").is_slow());
        assert!(p("stop exp-1 --no-hook").is_slow());
        assert_eq!(p("status exp-1"), SlashCommand::Status("exp-1".into()));
        assert_eq!(
            p("extend exp-1 30"),
            SlashCommand::Extend {
                name: "exp-1".into(),
                minutes: 30
            }
        );
        assert_eq!(
            p("launch exp-1 g6.xlarge idle=45"),
            SlashCommand::Launch {
                name: "exp-1".into(),
                instance_type: Some("g6.xlarge".into()),
                idle_timeout_minutes: Some(45)
            }
        );
        assert!(p("launch exp-1").is_slow() && !p("status exp-1").is_slow());
        let SlashCommand::Set { name, changes } =
            p("set exp-1 idle=30 type=g6.xlarge connections=off schedule=none volume=200")
        else {
            panic!("a set");
        };
        assert_eq!(name, "exp-1");
        assert_eq!(
            serde_json::Value::Object(changes),
            serde_json::json!({"idle_timeout_minutes": 30, "instance_type": "g6.xlarge",
                "count_connections": false, "schedule": null, "volume_gb": 200})
        );
        assert!(p("set exp-1 idle=30").is_slow() && p("set exp-1 idle=30").changes_something());
    }

    #[test]
    fn bad_commands_say_why_and_show_the_usage() {
        for (text, why) in [
            ("reboot exp-1", "unknown command `reboot`"),
            ("start", "needs a notebook name"),
            ("start Exp;rm -rf /", "name"),
            ("start exp-1 now", "takes only a notebook name"),
            ("extend exp-1", "minutes"),
            ("extend exp-1 0", "minutes"),
            ("launch exp-1 $(id)", "does not understand"),
            ("launch exp-1 idle=soon", "the idle timeout once, in minutes"),
            ("up exp-1 30 idle=40", "the idle timeout once, in minutes"),
            ("stop exp-1 --now", "`--no-hook`"),
            ("rm", "needs a notebook name"),
            ("rm exp-1 --force", "takes only a notebook name"),
            ("costs everyone", "takes nothing more"),
            ("launch exp-1 password=hunter2", "passwords are never accepted"),
            ("set exp-1", "at least one key=value"),
            ("set exp-1 idle", "give key=value"),
            ("set exp-1 colour=blue", "does not know `colour`"),
            ("set exp-1 idle=soon", "idle= takes a whole number"),
            ("set exp-1 schedule=mon-fri", "schedule=none"),
            ("set exp-1 connections=maybe", "true or false"),
        ] {
            let err = SlashCommand::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.ends_with(USAGE), "{text:?} shows no usage");
        }
    }
}
