//! Validation of `POST /notebooks`: raw JSON in, a [`LaunchSpec`] out, or a 400 that names the
//! field. Everything a launch may carry into a shell script, a tag or an AWS call is checked
//! here against a strict pattern; nothing downstream re-validates.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::password::{self, Secret};
use crate::record::{IdlePolicy, SecretKind};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Security groups allow 60 rules per direction; leave room.
pub const MAX_CIDRS: usize = 20;

/// How users reach Jupyter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    /// No inbound port; Jupyter binds 127.0.0.1 and users tunnel over SSM.
    #[default]
    Ssm,
    /// Port 8888 open to the listed networks only.
    Cidr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Access {
    pub mode: AccessMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<IpNet>,
}

/// The credential a launch asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password in clear, to be hashed before it is stored.
    Password(Secret),
    /// A ready-made Jupyter hash (`argon2:…` or the tutorial's `sha1:…`).
    PasswordHash(Secret),
    /// Nothing given: a random token is made and shown once.
    Token,
    /// A token made before the launch, already shown to its owner (a Slack launch shows it in
    /// the immediate reply; `slack::launch_token`). Never from a request body.
    MadeToken(Secret),
}

/// A validated launch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub name: String,
    pub instance_type: String,
    pub idle_timeout_minutes: u32,
    pub access: Access,
    pub credential: Credential,
    pub volume_gb: u32,
    pub count_connections: bool,
    /// GPU utilisation (percent) that counts as activity.
    pub gpu_threshold_pct: u32,
    /// CPU outside Jupyter (percent of one core) that counts as activity; 0 is off.
    pub cpu_threshold_pct: u32,
    pub schedule: Option<crate::schedule::Schedule>,
    /// The on-instance idle fallback, in minutes; 0 is off (the default).
    pub instance_fallback_minutes: u32,
    pub hooks: crate::record::Hooks,
    /// Make the disk from a snapshot (`restore_from`).
    pub restore_from: Option<RestoreFrom>,
}

/// What a restore starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreFrom {
    /// A snapshot id (`snap-…`).
    Snapshot(String),
    /// A notebook's name: its latest snapshot.
    Notebook(String),
}

/// Checks a snapshot id: `snap-` and 8 or 17 hex digits. Used for path parameters too.
pub fn validate_snapshot_id(id: &str, field: &str) -> Result<()> {
    let hex = id.strip_prefix("snap-").unwrap_or_default();
    match matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(()),
        false => Err(Error::bad_request(
            field,
            format!("{id:?} is not a snapshot id (snap- and 8 or 17 hex digits)"),
        )),
    }
}

impl LaunchSpec {
    pub fn secret_kind(&self) -> SecretKind {
        match self.credential {
            Credential::Token | Credential::MadeToken(_) => SecretKind::Token,
            _ => SecretKind::Password,
        }
    }
}

/// The idle policy of a new notebook: the request's timeout, the operator's other defaults.
pub fn idle_policy(spec: &LaunchSpec, cfg: &Config) -> IdlePolicy {
    IdlePolicy {
        idle_timeout_minutes: spec.idle_timeout_minutes,
        count_connections: spec.count_connections,
        gpu_threshold_pct: spec.gpu_threshold_pct,
        cpu_threshold_pct: spec.cpu_threshold_pct,
        max_runtime_minutes: cfg.max_runtime_minutes,
        runtime_ceiling_minutes: cfg.runtime_ceiling_minutes,
        warning_minutes: cfg.warning_minutes,
        schedule: spec.schedule.clone(),
        instance_fallback_minutes: spec.instance_fallback_minutes,
    }
}

/// Checks a notebook name: `^[a-z][a-z0-9-]{1,38}$`. Used for path parameters too.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = (2..=39).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "name",
            "must be 2 to 39 characters of a-z, 0-9 and '-', starting with a letter",
        ))
    }
}

/// Checks how long an `extend` snoozes: a whole number of minutes from 1 to
/// [`MAX_EXTEND_MINUTES`](crate::idle::MAX_EXTEND_MINUTES).
pub fn extend_minutes(minutes: u64) -> Result<u32> {
    let max = crate::idle::MAX_EXTEND_MINUTES;
    u32::try_from(minutes)
        .ok()
        .filter(|m| (1..=max).contains(m))
        .ok_or_else(|| {
            Error::bad_request(
                "minutes",
                format!("must be a whole number of minutes from 1 to {max}"),
            )
        })
}

/// Parses a `POST /notebooks/{name}/extend` body, `{"minutes": N}`.
pub fn parse_extend(body: &[u8]) -> Result<u32> {
    let minutes = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("minutes").and_then(Value::as_u64))
        .unwrap_or(0);
    extend_minutes(minutes)
}

/// The credential `fields` ask for: `password`, `password_hash`, or neither (a token).
fn credential(fields: &Map<String, Value>) -> Result<Credential> {
    let password: Option<String> = field(fields, "password")?;
    let hash: Option<String> = field(fields, "password_hash")?;
    Ok(match (password, hash) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request(
                "password_hash",
                "give password or password_hash, not both",
            ));
        }
        (Some(pw), None) => {
            let chars = pw.chars().count();
            if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
                return Err(Error::bad_request(
                    "password",
                    format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
                ));
            }
            if pw.chars().any(char::is_control) {
                return Err(Error::bad_request(
                    "password",
                    "must not contain control characters",
                ));
            }
            Credential::Password(Secret::new(pw))
        }
        (None, Some(h)) => {
            password::check_hash(&h).map_err(|why| Error::bad_request("password_hash", why))?;
            Credential::PasswordHash(Secret::new(h))
        }
        (None, None) => Credential::Token,
    })
}

/// Parses a `POST /notebooks/{name}/credential` body for a notebook guarded by `kind`: `{}` (or
/// no body) for a new token, `{"password": …}` or `{"password_hash": …}` for a new password.
/// The kind stays the one the launch chose: the probe and the login depend on it.
pub fn parse_credential(body: &[u8], kind: SecretKind) -> Result<Credential> {
    let fields = if body.len() <= MAX_BODY_BYTES && body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        object(body)?
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "password" | "password_hash"))
    {
        return Err(Error::bad_request(
            key,
            "unknown field (give password, password_hash or nothing)",
        ));
    }
    let credential = credential(&fields)?;
    match (kind, &credential) {
        (SecretKind::Token, Credential::Password(_) | Credential::PasswordHash(_)) => {
            Err(Error::bad_request(
                "password",
                "this notebook uses a token: send {} for a new one (the kind is chosen at launch)",
            ))
        }
        (SecretKind::Password, Credential::Token) => Err(Error::bad_request(
            "password",
            "is required: this notebook uses a password (the kind is chosen at launch)",
        )),
        _ => Ok(credential),
    }
}

/// Parses and validates a `POST /notebooks` body.
pub fn parse_launch(body: &[u8], cfg: &Config) -> Result<LaunchSpec> {
    launch_spec(&object(body)?, cfg)
}

/// A request body that must be one JSON object, of at most [`MAX_BODY_BYTES`].
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Error::bad_request("body", "must be a JSON object")),
        Err(e) => Err(Error::bad_request("body", format!("not valid JSON: {e}"))),
    }
}

/// Validates a launch's fields, named as in a `POST /notebooks` body (Slack's launch gives the
/// same fields, so the same rules hold whichever way a launch comes).
pub fn launch_spec(fields: &Map<String, Value>, cfg: &Config) -> Result<LaunchSpec> {
    for key in fields.keys() {
        match key.as_str() {
            "name"
            | "instance_type"
            | "idle_timeout_minutes"
            | "access"
            | "password"
            | "password_hash"
            | "volume_gb"
            | "count_connections"
            | "gpu_threshold_pct"
            | "cpu_threshold_pct"
            | "schedule"
            | "instance_fallback_minutes"
            | "hooks"
            | "restore_from" => {}
            "ami" | "ami_id" | "image_id" | "image" => {
                return Err(Error::bad_request(
                    key,
                    "the AMI is set by the operator's configuration and cannot be chosen per request",
                ));
            }
            _ => return Err(Error::bad_request(key, "unknown field")),
        }
    }

    let name: String = field(fields, "name")?.ok_or_else(|| Error::bad_request("name", "is required"))?;
    validate_name(&name)?;

    let instance_type: String =
        field(fields, "instance_type")?.unwrap_or_else(|| cfg.instance_types[0].clone());
    if !cfg.instance_types.contains(&instance_type) {
        return Err(Error::bad_request(
            "instance_type",
            format!(
                "{instance_type:?} is not allowed; choose one of {}",
                cfg.instance_types.join(", ")
            ),
        ));
    }

    let idle_timeout_minutes = bounded(fields, "idle_timeout_minutes", cfg.idle_timeout_minutes)?;
    let volume_gb = bounded(fields, "volume_gb", cfg.volume_gb)?;
    let count_connections = field(fields, "count_connections")?.unwrap_or(false);
    let gpu_threshold_pct = bounded(fields, "gpu_threshold_pct", crate::config::GPU_THRESHOLD_PCT)?;
    let cpu_threshold_pct = bounded(fields, "cpu_threshold_pct", crate::config::CPU_THRESHOLD_PCT)?;
    let access = parse_access(fields.get("access"), cfg.allow_world)?;

    let credential = credential(fields)?;

    let schedule = match fields.get("schedule") {
        None | Some(Value::Null) => None,
        Some(v) => Some(crate::schedule::Schedule::parse(v)?),
    };

    let instance_fallback_minutes = instance_fallback(fields, idle_timeout_minutes, cfg)?;
    let hooks = parse_hooks(fields.get("hooks"))?;
    let restore_from = match field::<String>(fields, "restore_from")? {
        None => None,
        // A notebook may be named like a snapshot id (`snap-0a1b2c3d`): the id wins.
        Some(id) if validate_snapshot_id(&id, "restore_from").is_ok() => Some(RestoreFrom::Snapshot(id)),
        Some(name) => {
            validate_name(&name).map_err(|_| {
                Error::bad_request(
                    "restore_from",
                    format!("{name:?} is neither a snapshot id (snap-…) nor a notebook name"),
                )
            })?;
            Some(RestoreFrom::Notebook(name))
        }
    };

    Ok(LaunchSpec {
        name,
        instance_type,
        idle_timeout_minutes,
        access,
        credential,
        volume_gb,
        count_connections,
        gpu_threshold_pct,
        cpu_threshold_pct,
        schedule,
        instance_fallback_minutes,
        hooks,
        restore_from,
    })
}

/// The on-instance fallback must leave the sweep its turn: it may fire only after the idle
/// timeout plus the warning, so a working control plane always warns first.
fn instance_fallback(fields: &Map<String, Value>, idle_timeout: u32, cfg: &Config) -> Result<u32> {
    let minutes: u32 = field(fields, "instance_fallback_minutes")?.unwrap_or(0);
    let least = idle_timeout + cfg.warning_minutes;
    if minutes != 0 && !(least..=24 * 60).contains(&minutes) {
        return Err(Error::bad_request(
            "instance_fallback_minutes",
            format!(
                "must be 0 (off) or {least} to 1440: at least the idle timeout plus the {}-minute warning",
                cfg.warning_minutes
            ),
        ));
    }
    Ok(minutes)
}

/// Reads an optional field as `T`, with a 400 naming it if it has the wrong type.
pub(crate) fn field<T: DeserializeOwned>(fields: &Map<String, Value>, name: &str) -> Result<Option<T>> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|_| Error::bad_request(name, format!("has the wrong type ({})", json_type(v)))),
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn bounded(fields: &Map<String, Value>, name: &str, range: crate::config::Bounded) -> Result<u32> {
    let v: u32 = field(fields, name)?.unwrap_or(range.default);
    if range.contains(v) {
        Ok(v)
    } else {
        Err(Error::bad_request(
            name,
            format!("must be between {} and {}", range.min, range.max),
        ))
    }
}

/// `hooks`: `{"pre_stop": "…", "pre_stop_timeout_seconds": N, "on_start": "…"}`, each hook a
/// shell script of at most 4 KB, the timeout 1 to 600 s (120 by default).
pub(crate) fn parse_hooks(value: Option<&Value>) -> Result<crate::record::Hooks> {
    use crate::record::{
        DEFAULT_PRE_STOP_TIMEOUT_SECONDS, Hooks, MAX_HOOK_BYTES, MAX_PRE_STOP_TIMEOUT_SECONDS,
    };
    let fields = match value {
        None | Some(Value::Null) => return Ok(Hooks::default()),
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(Error::bad_request(
                "hooks",
                format!("has the wrong type ({})", json_type(v)),
            ));
        }
    };
    if let Some(k) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "pre_stop" | "pre_stop_timeout_seconds" | "on_start"))
    {
        return Err(Error::bad_request(format!("hooks.{k}"), "unknown field"));
    }
    let script = |name: &str| -> Result<Option<String>> {
        let key = format!("hooks.{name}");
        let text: Option<String> =
            field(fields, name).map_err(|_| Error::bad_request(&key, "must be a string"))?;
        match text {
            None => Ok(None),
            Some(t) if t.trim().is_empty() => Err(Error::bad_request(&key, "is empty")),
            Some(t) if t.len() > MAX_HOOK_BYTES => Err(Error::bad_request(
                &key,
                format!("is {} bytes; a hook holds at most {MAX_HOOK_BYTES}", t.len()),
            )),
            Some(t) if t.contains('\0') => Err(Error::bad_request(&key, "must not contain NUL")),
            Some(t) => Ok(Some(t)),
        }
    };
    let timeout: u32 = field(fields, "pre_stop_timeout_seconds")
        .map_err(|_| {
            Error::bad_request(
                "hooks.pre_stop_timeout_seconds",
                "must be a whole number of seconds",
            )
        })?
        .unwrap_or(DEFAULT_PRE_STOP_TIMEOUT_SECONDS);
    if !(1..=MAX_PRE_STOP_TIMEOUT_SECONDS).contains(&timeout) {
        return Err(Error::bad_request(
            "hooks.pre_stop_timeout_seconds",
            format!("must be 1 to {MAX_PRE_STOP_TIMEOUT_SECONDS} seconds"),
        ));
    }
    Ok(Hooks {
        pre_stop: script("pre_stop")?,
        pre_stop_timeout_seconds: timeout,
        on_start: script("on_start")?,
    })
}

fn parse_access(value: Option<&Value>, allow_world: bool) -> Result<Access> {
    let fields = match value {
        None | Some(Value::Null) => return Ok(Access::default()),
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(Error::bad_request(
                "access",
                format!("has the wrong type ({})", json_type(v)),
            ));
        }
    };
    if let Some(k) = fields.keys().find(|k| *k != "mode" && *k != "cidrs") {
        return Err(Error::bad_request(format!("access.{k}"), "unknown field"));
    }
    let mode = match field::<String>(fields, "mode")
        .map_err(|_| mode_error())?
        .as_deref()
    {
        None | Some("ssm") => AccessMode::Ssm,
        Some("cidr") => AccessMode::Cidr,
        Some(_) => return Err(mode_error()),
    };
    let raw: Vec<String> = field(fields, "cidrs")
        .map_err(|_| {
            Error::bad_request(
                "access.cidrs",
                "must be a list of networks such as \"203.0.113.0/24\"",
            )
        })?
        .unwrap_or_default();
    match mode {
        AccessMode::Ssm if !raw.is_empty() => {
            return Err(Error::bad_request(
                "access.cidrs",
                "only apply to mode \"cidr\"; ssm mode opens no port",
            ));
        }
        AccessMode::Cidr if raw.is_empty() => {
            return Err(Error::bad_request(
                "access.cidrs",
                "mode \"cidr\" needs at least one network",
            ));
        }
        _ => {}
    }
    if raw.len() > MAX_CIDRS {
        return Err(Error::bad_request(
            "access.cidrs",
            format!("at most {MAX_CIDRS} networks"),
        ));
    }
    let cidrs = raw
        .iter()
        .map(|c| parse_cidr(c, allow_world))
        .collect::<Result<Vec<_>>>()?;
    if !allow_world {
        refuse_too_wide(&cidrs)?;
    }
    Ok(Access { mode, cidrs })
}

/// The most of the internet a list may open without the operator allowing the world: one /8
/// of IPv4 and one /32 of IPv6, counted over the union (so `0.0.0.0/1` plus `128.0.0.0/1`, or
/// `2000::/3`, is the world in pieces and refused).
const WIDEST_V4_PREFIX: u8 = 8;
const WIDEST_V6_PREFIX: u8 = 32;

fn refuse_too_wide(cidrs: &[IpNet]) -> Result<()> {
    // Addresses covered, per family, after merging overlaps (in units of the limit's block:
    // a /8 counts 1, a /7 counts 2, anything narrower less than 1).
    let (mut v4, mut v6) = (0f64, 0f64);
    for net in IpNet::aggregate(&cidrs.to_vec()) {
        match net {
            IpNet::V4(n) => v4 += 2f64.powi(i32::from(WIDEST_V4_PREFIX) - i32::from(n.prefix_len())),
            IpNet::V6(n) => v6 += 2f64.powi(i32::from(WIDEST_V6_PREFIX) - i32::from(n.prefix_len())),
        }
    }
    let wide = match (v4 > 1.0, v6 > 1.0) {
        (true, _) => format!("more than a /{WIDEST_V4_PREFIX} of IPv4"),
        (_, true) => format!("more than a /{WIDEST_V6_PREFIX} of IPv6"),
        _ => return Ok(()),
    };
    Err(Error::bad_request(
        "access.cidrs",
        format!(
            "these networks together open Jupyter to {wide}, too much of the internet; the \
             operator does not allow it (list narrower networks, or use ssm mode)"
        ),
    ))
}

fn mode_error() -> Error {
    Error::bad_request("access.mode", "must be \"ssm\" or \"cidr\"")
}

/// A network such as `203.0.113.0/24` or `2001:db8::/32`; a bare address means just that host.
fn parse_cidr(raw: &str, allow_world: bool) -> Result<IpNet> {
    let net = match raw.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => raw.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            Error::bad_request(
                "access.cidrs",
                format!("{raw:?} is not a network such as \"203.0.113.0/24\""),
            )
        })?,
    };
    if net.trunc() != net {
        return Err(Error::bad_request(
            "access.cidrs",
            format!("{raw:?} has host bits set; did you mean {}?", net.trunc()),
        ));
    }
    if net.prefix_len() == 0 && !allow_world {
        return Err(Error::bad_request(
            "access.cidrs",
            format!(
                "{raw:?} opens Jupyter to the whole internet; the operator does not allow it (use ssm mode)"
            ),
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::test_config;
    use serde_json::json;

    fn parse(body: Value) -> Result<LaunchSpec> {
        parse_launch(body.to_string().as_bytes(), &test_config())
    }

    fn refused_field(body: Value) -> String {
        match parse(body) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn restore_from_is_a_snapshot_id_when_it_is_one_and_a_notebook_name_otherwise() {
        let from = |v: &str| parse(json!({"name": "nb", "restore_from": v})).map(|s| s.restore_from);
        assert_eq!(
            from("snap-0123456789abcdef0").unwrap(),
            Some(RestoreFrom::Snapshot("snap-0123456789abcdef0".into()))
        );
        assert_eq!(
            from("snap-0a1b2c3d").unwrap(),
            Some(RestoreFrom::Snapshot("snap-0a1b2c3d".into()))
        );
        // A notebook named like the start of one.
        assert_eq!(
            from("snap-src").unwrap(),
            Some(RestoreFrom::Notebook("snap-src".into()))
        );
        assert_eq!(
            from("exp-1").unwrap(),
            Some(RestoreFrom::Notebook("exp-1".into()))
        );
        for bad in ["", "Exp 1", "-x", "../x"] {
            assert_eq!(
                refused_field(json!({"name": "nb", "restore_from": bad})),
                "restore_from",
                "{bad:?}"
            );
        }
        assert_eq!(
            refused_field(json!({"name": "nb", "restore_from": 7})),
            "restore_from"
        );
        assert_eq!(parse(json!({"name": "nb"})).unwrap().restore_from, None);
    }

    #[test]
    fn a_minimal_request_gets_the_defaults() {
        let spec = parse(json!({"name": "my-nb"})).unwrap();
        assert_eq!(spec.instance_type, "g5.xlarge");
        assert_eq!(spec.idle_timeout_minutes, 60);
        assert_eq!(spec.volume_gb, 100);
        assert_eq!(
            spec.access,
            Access {
                mode: AccessMode::Ssm,
                cidrs: vec![]
            }
        );
        assert_eq!(spec.credential, Credential::Token);
    }

    #[test]
    fn a_full_request_is_accepted() {
        let spec = parse(json!({
            "name": "exp-42", "instance_type": "g6.xlarge", "idle_timeout_minutes": 30,
            "access": {"mode": "cidr", "cidrs": ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]},
            "password": "correct horse", "volume_gb": 200, "count_connections": true
        }))
        .unwrap();
        assert_eq!(spec.access.mode, AccessMode::Cidr);
        assert_eq!(spec.access.cidrs[2].to_string(), "198.51.100.7/32");
        assert_eq!(
            spec.credential,
            Credential::Password(Secret::new("correct horse"))
        );
        assert!(spec.count_connections);
    }

    #[test]
    fn a_missing_name_is_refused() {
        assert_eq!(refused_field(json!({})), "name");
    }

    #[test]
    fn names_that_break_the_pattern_are_refused() {
        for bad in [
            "a",
            "1abc",
            "Abc",
            "ab_c",
            "ab c",
            "ab'c",
            "a$(id)",
            "a\nb",
            &"a".repeat(40),
            "ab`x`",
        ] {
            assert_eq!(refused_field(json!({ "name": bad })), "name", "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(39)).is_ok());
        assert!(validate_name("ab").is_ok());
    }

    #[test]
    fn an_instance_type_outside_the_allow_list_is_refused() {
        for bad in ["p2.xlarge", "g2.2xlarge", "p3.2xlarge", "g5.xlarge; rm -rf /"] {
            assert_eq!(
                refused_field(json!({"name": "nb", "instance_type": bad})),
                "instance_type"
            );
        }
    }

    #[test]
    fn an_idle_timeout_outside_the_range_is_refused() {
        for bad in [json!(9), json!(1441), json!(-5), json!("60"), json!(1.5)] {
            assert_eq!(
                refused_field(json!({"name": "nb", "idle_timeout_minutes": bad})),
                "idle_timeout_minutes"
            );
        }
    }

    #[test]
    fn a_volume_outside_the_range_is_refused() {
        assert_eq!(refused_field(json!({"name": "nb", "volume_gb": 10})), "volume_gb");
        assert_eq!(
            refused_field(json!({"name": "nb", "volume_gb": 100000})),
            "volume_gb"
        );
    }

    #[test]
    fn cidrs_that_are_not_networks_are_refused() {
        for bad in ["10.0.0.0/33", "banana", "10.0.0.5/24", "", "10.0.0.0/8; echo"] {
            let body = json!({"name": "nb", "access": {"mode": "cidr", "cidrs": [bad]}});
            assert_eq!(refused_field(body), "access.cidrs", "{bad:?}");
        }
    }

    #[test]
    fn the_world_is_refused_unless_allowed() {
        for world in ["0.0.0.0/0", "::/0"] {
            let body = json!({"name": "nb", "access": {"mode": "cidr", "cidrs": [world]}});
            assert_eq!(refused_field(body.clone()), "access.cidrs");
            let mut cfg = test_config();
            cfg.allow_world = true;
            assert!(parse_launch(body.to_string().as_bytes(), &cfg).is_ok());
        }
    }

    #[test]
    fn the_world_in_pieces_or_too_wide_a_network_is_refused_unless_allowed() {
        for cidrs in [
            vec!["0.0.0.0/1", "128.0.0.0/1"],
            vec!["2000::/3"],
            vec!["10.0.0.0/7"],
            vec!["10.0.0.0/8", "11.0.0.0/9"],
            vec!["2001:db8::/31"],
        ] {
            let body = json!({"name": "nb", "access": {"mode": "cidr", "cidrs": cidrs}});
            assert_eq!(refused_field(body.clone()), "access.cidrs", "{cidrs:?}");
            let mut cfg = test_config();
            cfg.allow_world = true;
            assert!(
                parse_launch(body.to_string().as_bytes(), &cfg).is_ok(),
                "{cidrs:?}"
            );
        }
        // Up to a /8 and a /32, overlaps counted once, pass.
        for cidrs in [
            vec!["10.0.0.0/8"],
            vec!["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"],
            vec!["203.0.113.0/24", "198.51.100.7"],
        ] {
            let body = json!({"name": "nb", "access": {"mode": "cidr", "cidrs": cidrs}});
            assert!(
                parse_launch(body.to_string().as_bytes(), &test_config()).is_ok(),
                "{cidrs:?}"
            );
        }
    }

    #[test]
    fn cidr_mode_needs_networks_and_ssm_mode_takes_none() {
        assert_eq!(
            refused_field(json!({"name": "nb", "access": {"mode": "cidr"}})),
            "access.cidrs"
        );
        let body = json!({"name": "nb", "access": {"mode": "ssm", "cidrs": ["10.0.0.0/8"]}});
        assert_eq!(refused_field(body), "access.cidrs");
        let many: Vec<String> = (0..21).map(|i| format!("10.{i}.0.0/16")).collect();
        assert_eq!(
            refused_field(json!({"name": "nb", "access": {"mode": "cidr", "cidrs": many}})),
            "access.cidrs"
        );
    }

    #[test]
    fn an_unknown_access_mode_or_field_is_refused() {
        assert_eq!(
            refused_field(json!({"name": "nb", "access": {"mode": "open"}})),
            "access.mode"
        );
        assert_eq!(
            refused_field(json!({"name": "nb", "access": {"mode": "ssm", "port": 22}})),
            "access.port"
        );
        assert_eq!(refused_field(json!({"name": "nb", "access": "ssm"})), "access");
    }

    #[test]
    fn a_password_outside_its_length_bounds_is_refused() {
        assert_eq!(
            refused_field(json!({"name": "nb", "password": "short"})),
            "password"
        );
        assert_eq!(
            refused_field(json!({"name": "nb", "password": "x".repeat(129)})),
            "password"
        );
        assert!(parse(json!({"name": "nb", "password": "x".repeat(128)})).is_ok());
    }

    #[test]
    fn a_password_with_control_characters_is_refused() {
        assert_eq!(
            refused_field(json!({"name": "nb", "password": "line one\nline two"})),
            "password"
        );
    }

    #[test]
    fn a_password_with_shell_characters_is_accepted_because_it_is_only_ever_hashed() {
        let spec = parse(json!({"name": "nb", "password": "a'b\"c$(id)`x`"})).unwrap();
        assert!(matches!(spec.credential, Credential::Password(_)));
    }

    #[test]
    fn a_ready_made_hash_is_accepted_and_a_malformed_one_refused() {
        let ok = "sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a";
        let spec = parse(json!({"name": "nb", "password_hash": ok})).unwrap();
        assert_eq!(spec.credential, Credential::PasswordHash(Secret::new(ok)));
        assert_eq!(
            refused_field(json!({"name": "nb", "password_hash": "sha1:nope"})),
            "password_hash"
        );
        let both = json!({"name": "nb", "password_hash": ok, "password": "correct horse"});
        assert_eq!(refused_field(both), "password_hash");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        assert_eq!(
            refused_field(json!({"name": "nb", "key_name": "my-key"})),
            "key_name"
        );
    }

    #[test]
    fn an_ami_field_is_refused() {
        for key in ["ami", "ami_id", "image_id"] {
            let body = json!({"name": "nb", key: "ami-12345678"});
            assert_eq!(refused_field(body), key);
        }
        let msg = parse(json!({"name": "nb", "ami": "ami-1"}))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("operator"), "{msg}");
    }

    #[test]
    fn the_instance_fallback_is_off_by_default_and_must_leave_the_sweep_its_warning() {
        assert_eq!(parse(json!({"name": "nb"})).unwrap().instance_fallback_minutes, 0);
        let spec = parse(json!({"name": "nb", "idle_timeout_minutes": 30, "instance_fallback_minutes": 40}));
        assert_eq!(spec.unwrap().instance_fallback_minutes, 40);
        for too_soon_or_late in [39, 1441] {
            let body = json!({"name": "nb", "idle_timeout_minutes": 30, "instance_fallback_minutes": too_soon_or_late});
            assert_eq!(refused_field(body), "instance_fallback_minutes");
        }
        let msg = parse(json!({"name": "nb", "idle_timeout_minutes": 30, "instance_fallback_minutes": 5}))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("40 to 1440"), "{msg}");
    }

    #[test]
    fn a_schedule_is_parsed_and_a_bad_one_refused_by_field() {
        let ok = json!({"name": "nb", "schedule": {"tz": "Europe/Paris",
            "windows": [{"days": "Mon-Fri", "from": "08:00", "to": "20:00"}]}});
        assert_eq!(parse(ok).unwrap().schedule.unwrap().tz, "Europe/Paris");
        assert_eq!(
            refused_field(json!({"name": "nb", "schedule": "weekdays"})),
            "schedule"
        );
        let bad_zone = json!({"name": "nb", "schedule": {"tz": "Paris",
            "windows": [{"days": "Mon-Fri", "from": "08:00", "to": "20:00"}]}});
        assert_eq!(refused_field(bad_zone), "schedule.tz");
    }

    #[test]
    fn wrong_types_are_refused_by_name() {
        assert_eq!(refused_field(json!({"name": 7})), "name");
        assert_eq!(
            refused_field(json!({"name": "nb", "count_connections": "yes"})),
            "count_connections"
        );
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused() {
        let cfg = test_config();
        for body in [&b"not json"[..], b"[1,2]", b"\"nb\"", b""] {
            match parse_launch(body, &cfg) {
                Err(Error::BadRequest { field, .. }) => assert_eq!(field, "body"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_launch(&body, &test_config()).unwrap_err().status(), 413);
    }

    #[test]
    fn a_new_credential_keeps_the_kind_the_launch_chose() {
        assert_eq!(
            parse_credential(b"", SecretKind::Token).unwrap(),
            Credential::Token
        );
        assert_eq!(
            parse_credential(b"{}", SecretKind::Token).unwrap(),
            Credential::Token
        );
        assert_eq!(
            parse_credential(br#"{"password":"correct horse"}"#, SecretKind::Password).unwrap(),
            Credential::Password(Secret::new("correct horse"))
        );
        let hash = crate::password::hash_sha1("pw", &[1; 6]);
        let body = json!({ "password_hash": hash.expose() }).to_string();
        assert_eq!(
            parse_credential(body.as_bytes(), SecretKind::Password).unwrap(),
            Credential::PasswordHash(hash)
        );
        let to_password =
            parse_credential(br#"{"password":"correct horse"}"#, SecretKind::Token).unwrap_err();
        assert!(to_password.to_string().contains("uses a token"), "{to_password}");
        let to_token = parse_credential(b"{}", SecretKind::Password).unwrap_err();
        assert!(to_token.to_string().contains("uses a password"), "{to_token}");
    }

    #[test]
    fn a_bad_new_credential_is_refused_by_name() {
        let field = |body: &[u8]| match parse_credential(body, SecretKind::Password) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(br#"{"password":"short"}"#), "password");
        assert_eq!(field(br#"{"password":"new\nline password"}"#), "password");
        assert_eq!(field(br#"{"password_hash":"md5:abc"}"#), "password_hash");
        assert_eq!(
            field(br#"{"password":"correct horse","password_hash":"x"}"#),
            "password_hash"
        );
        assert_eq!(field(br#"{"token":"mine"}"#), "token");
        assert_eq!(field(b"[1]"), "body");
        assert_eq!(field(b"{nope"), "body");
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse_credential(&big, SecretKind::Token).unwrap_err().status(),
            413
        );
    }

    #[test]
    fn the_idle_thresholds_are_set_at_launch_within_their_bounds() {
        let cfg = test_config();
        let spec = parse_launch(
            br#"{"name":"nb","gpu_threshold_pct":50,"cpu_threshold_pct":0}"#,
            &cfg,
        )
        .unwrap();
        let policy = idle_policy(&spec, &cfg);
        assert_eq!((policy.gpu_threshold_pct, policy.cpu_threshold_pct), (50, 0));
        let defaults = idle_policy(&parse_launch(br#"{"name":"nb"}"#, &cfg).unwrap(), &cfg);
        assert_eq!((defaults.gpu_threshold_pct, defaults.cpu_threshold_pct), (10, 20));
        for (field, value) in [
            ("gpu_threshold_pct", json!(0)),
            ("gpu_threshold_pct", json!(101)),
            ("cpu_threshold_pct", json!(6401)),
            ("cpu_threshold_pct", json!(-1)),
            ("cpu_threshold_pct", json!("high")),
        ] {
            let mut body = json!({"name": "nb"});
            body[field] = value;
            assert_eq!(refused_field(body), field);
        }
    }

    #[test]
    fn hooks_are_set_at_launch_and_bad_ones_are_refused_by_name() {
        let cfg = test_config();
        let body = json!({"name": "nb", "hooks": {"pre_stop": "aws s3 sync ~/work s3://b/work", "on_start": "pip install -r ~/req.txt"}});
        let spec = parse_launch(body.to_string().as_bytes(), &cfg).unwrap();
        assert_eq!(
            spec.hooks.pre_stop.as_deref(),
            Some("aws s3 sync ~/work s3://b/work")
        );
        assert_eq!(spec.hooks.pre_stop_timeout_seconds, 120);
        assert_eq!(spec.hooks.on_start.as_deref(), Some("pip install -r ~/req.txt"));
        for (hooks, field) in [
            (json!({"pre_stop": "x".repeat(4097)}), "hooks.pre_stop"),
            (json!({"pre_stop": "  "}), "hooks.pre_stop"),
            (json!({"on_start": 7}), "hooks.on_start"),
            (json!({"on_start": "a\u{0}b"}), "hooks.on_start"),
            (
                json!({"pre_stop_timeout_seconds": 601}),
                "hooks.pre_stop_timeout_seconds",
            ),
            (
                json!({"pre_stop_timeout_seconds": 0}),
                "hooks.pre_stop_timeout_seconds",
            ),
            (json!({"post_stop": "x"}), "hooks.post_stop"),
            (json!("echo hi"), "hooks"),
        ] {
            assert_eq!(
                refused_field(json!({"name": "nb", "hooks": hooks})),
                field,
                "{hooks}"
            );
        }
    }
}
