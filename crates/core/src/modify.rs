//! Changing a notebook after its launch (`PATCH /notebooks/{name}`, `nbfleet set`): what a
//! change may ask ([`parse`], checked as at launch, each refusal naming its field), and what it
//! does to one record ([`plan`]): the record to write, the EC2 changes to make first, and the
//! history entry. Which states take a change is the request table's (`transitions`): settings
//! in any state from Launching to Failed, the instance type only while Stopped.

use crate::config::{CPU_THRESHOLD_PCT, Config, GPU_THRESHOLD_PCT};
use crate::error::{Error, Result};
use crate::record::{Hooks, Notebook};
use crate::schedule::Schedule;
use crate::transitions::{self, Op};
use crate::validate::{bounded, field, object, parse_hooks};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The longest warning before an automatic stop, in minutes.
pub const MAX_WARNING_MINUTES: u32 = 120;
/// The longest runtime cap where the operator set no ceiling: a week.
pub const MAX_RUNTIME_MINUTES: u32 = 7 * 24 * 60;

/// What a change asks for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub instance_type: Option<String>,
    pub volume_gb: Option<u32>,
    pub idle_timeout_minutes: Option<u32>,
    pub warning_minutes: Option<u32>,
    pub max_runtime_minutes: Option<u32>,
    pub gpu_threshold_pct: Option<u32>,
    pub cpu_threshold_pct: Option<u32>,
    pub count_connections: Option<bool>,
    /// `Some(None)`: remove the schedule (`"schedule": null`).
    pub schedule: Option<Option<Schedule>>,
    /// `Some(Hooks::default())`: remove every hook (`"hooks": null`).
    pub hooks: Option<Hooks>,
}

/// The fields a change may carry, for the refusal of any other.
const FIELDS: &str = "instance_type, volume_gb, idle_timeout_minutes, warning_minutes, max_runtime_minutes, \
     gpu_threshold_pct, cpu_threshold_pct, count_connections, schedule, hooks";

/// Parses a `PATCH /notebooks/{name}` body: a JSON object of the fields to change. Values are
/// checked as a launch checks them; what depends on the notebook (its state, its disk, the
/// operator's runtime ceiling it was launched under) is [`plan`]'s.
pub fn parse(body: &[u8], cfg: &Config) -> Result<Changes> {
    let fields = object(body)?;
    for key in fields.keys() {
        let why = match key.as_str() {
            "instance_type"
            | "volume_gb"
            | "idle_timeout_minutes"
            | "warning_minutes"
            | "max_runtime_minutes"
            | "gpu_threshold_pct"
            | "cpu_threshold_pct"
            | "count_connections"
            | "schedule"
            | "hooks" => continue,
            "name" => "cannot be changed: launch a notebook under the new name (--restore keeps the disk)",
            "password" | "password_hash" => {
                "is changed with POST /notebooks/{name}/credential (`nbfleet credential`)"
            }
            "access" => "is chosen at launch: it sets the notebook's network rules",
            "instance_fallback_minutes" => {
                "is chosen at launch: it is written into the instance's own configuration"
            }
            "ami" | "ami_id" | "image_id" | "image" => {
                "the AMI is set by the operator's configuration and cannot be chosen per request"
            }
            _ => {
                return Err(Error::bad_request(
                    key,
                    format!("unknown field (a change may carry {FIELDS})"),
                ));
            }
        };
        return Err(Error::bad_request(key, why));
    }
    if fields.is_empty() {
        return Err(Error::bad_request(
            "body",
            format!("nothing to change: give any of {FIELDS}"),
        ));
    }
    let instance_type: Option<String> = field(&fields, "instance_type")?;
    if let Some(t) = &instance_type
        && !cfg.instance_types.contains(t)
    {
        return Err(Error::bad_request(
            "instance_type",
            format!(
                "{t:?} is not allowed; choose one of {}",
                cfg.instance_types.join(", ")
            ),
        ));
    }
    let given = |name: &str| fields.get(name).is_some_and(|v| !v.is_null());
    let within = |name: &str, range| -> Result<Option<u32>> {
        match given(name) {
            true => bounded(&fields, name, range).map(Some),
            false => Ok(None),
        }
    };
    let warning_minutes = within(
        "warning_minutes",
        crate::config::Bounded {
            default: cfg.warning_minutes,
            min: 1,
            max: MAX_WARNING_MINUTES,
        },
    )?;
    let max_runtime_minutes: Option<u32> = field(&fields, "max_runtime_minutes")
        .map_err(|_| Error::bad_request("max_runtime_minutes", "must be a whole number of minutes"))?;
    let schedule = match fields.get("schedule") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(Schedule::parse(v)?)),
    };
    let hooks = match fields.get("hooks") {
        None => None,
        Some(v) => Some(parse_hooks(Some(v))?),
    };
    Ok(Changes {
        instance_type,
        volume_gb: within("volume_gb", cfg.volume_gb)?,
        idle_timeout_minutes: within("idle_timeout_minutes", cfg.idle_timeout_minutes)?,
        warning_minutes,
        max_runtime_minutes,
        gpu_threshold_pct: within("gpu_threshold_pct", GPU_THRESHOLD_PCT)?,
        cpu_threshold_pct: within("cpu_threshold_pct", CPU_THRESHOLD_PCT)?,
        count_connections: field(&fields, "count_connections")?,
        schedule,
        hooks,
    })
}

/// What a change does to one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The record to write (touched at `now`), once EC2 has taken its part.
    pub record: Notebook,
    /// ModifyInstanceAttribute first: the instance's new type.
    pub set_type: Option<String>,
    /// ModifyVolume first: the root volume's new size, in GB.
    pub grow_to_gb: Option<u32>,
    /// Each field that changes: `{"from": …, "to": …}`, for the history.
    pub changed: Map<String, Value>,
}

impl Plan {
    /// The history entry of this change, made by `by`.
    pub fn history(&self, by: &str) -> Value {
        json!({"action": "modify", "by": by, "changes": self.changed})
    }
}

/// What `changes` does to `nb` at `now`, or why it may not: the state (the request table's
/// `change` and `type` columns), a disk that would shrink, a runtime cap past the ceiling the
/// notebook was launched under, an idle timeout the on-instance fallback would no longer
/// leave room for. A field set to what it already is changes nothing.
pub fn plan(nb: &Notebook, changes: &Changes, now: Timestamp) -> Result<Plan> {
    transitions::check(&nb.name, nb.state, Op::Change)?;
    let mut next = nb.touched(now);
    let mut changed = Map::new();
    let mut note = |name: &str, from: Value, to: Value| {
        if from != to {
            changed.insert(name.into(), json!({"from": from, "to": to}));
        }
    };

    let set_type = changes.instance_type.clone().filter(|t| *t != nb.instance_type);
    if let Some(t) = &set_type {
        transitions::check(&nb.name, nb.state, Op::Retype)?;
        note("instance_type", json!(nb.instance_type), json!(t));
        next.instance_type = t.clone();
    }

    let grow_to_gb = match changes.volume_gb {
        Some(gb) if gb < nb.volume_gb => {
            return Err(Error::bad_request(
                "volume_gb",
                format!(
                    "a disk can only grow: {:?}'s is {} GB (a smaller one means a new notebook)",
                    nb.name, nb.volume_gb
                ),
            ));
        }
        Some(gb) if gb > nb.volume_gb => Some(gb),
        _ => None,
    };
    if let Some(gb) = grow_to_gb {
        if nb.instance_id.is_none() {
            return Err(Error::Conflict(format!(
                "notebook {:?} has no disk yet; retry when it is Launching",
                nb.name
            )));
        }
        note("volume_gb", json!(nb.volume_gb), json!(gb));
        next.volume_gb = gb;
    }

    let idle = &mut next.idle;
    if let Some(m) = changes.max_runtime_minutes {
        let ceiling = match idle.runtime_ceiling_minutes {
            0 => MAX_RUNTIME_MINUTES,
            c => c,
        };
        if m > ceiling {
            return Err(Error::bad_request(
                "max_runtime_minutes",
                format!("must be 0 (no cap) to {ceiling}: the operator's ceiling on one run"),
            ));
        }
    }
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = changes.$field.clone() {
                note(stringify!($field), json!(idle.$field), json!(v));
                idle.$field = v;
            }
        };
    }
    set!(idle_timeout_minutes);
    set!(warning_minutes);
    set!(max_runtime_minutes);
    set!(gpu_threshold_pct);
    set!(cpu_threshold_pct);
    set!(count_connections);
    set!(schedule);
    let fallback = idle.instance_fallback_minutes;
    let least = idle.idle_timeout_minutes + idle.warning_minutes;
    if fallback != 0 && fallback < least {
        return Err(Error::bad_request(
            "idle_timeout_minutes",
            format!(
                "with the {}-minute warning, must leave room for the on-instance fallback set at \
                 launch ({fallback} minutes): at most {} minutes",
                idle.warning_minutes,
                fallback.saturating_sub(idle.warning_minutes)
            ),
        ));
    }
    if let Some(hooks) = &changes.hooks {
        note("hooks", hooks_summary(&nb.hooks), hooks_summary(hooks));
        next.hooks = hooks.clone();
    }
    Ok(Plan {
        record: next,
        set_type,
        grow_to_gb,
        changed,
    })
}

/// A hook setting as the history keeps it: which hooks are set and how long, not the scripts
/// (the record holds those).
fn hooks_summary(h: &Hooks) -> Value {
    let size = |s: &Option<String>| s.as_ref().map(|s| format!("{} bytes", s.len()));
    json!({
        "pre_stop": size(&h.pre_stop),
        "pre_stop_timeout_seconds": h.pre_stop_timeout_seconds,
        "on_start": size(&h.on_start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::State;
    use crate::record::tests::sample;

    fn cfg() -> Config {
        crate::config::tests::test_config()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn parsed(body: Value) -> Result<Changes> {
        parse(body.to_string().as_bytes(), &cfg())
    }

    fn refused_field(body: Value) -> String {
        match parsed(body) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn each_bad_value_is_a_400_that_names_its_field() {
        for (body, field) in [
            (json!({"instance_type": "p5.48xlarge"}), "instance_type"),
            (json!({"volume_gb": 1}), "volume_gb"),
            (json!({"volume_gb": "big"}), "volume_gb"),
            (json!({"idle_timeout_minutes": 0}), "idle_timeout_minutes"),
            (json!({"warning_minutes": 0}), "warning_minutes"),
            (json!({"warning_minutes": 121}), "warning_minutes"),
            (json!({"max_runtime_minutes": -5}), "max_runtime_minutes"),
            (json!({"gpu_threshold_pct": 101}), "gpu_threshold_pct"),
            (json!({"cpu_threshold_pct": 6401}), "cpu_threshold_pct"),
            (json!({"count_connections": "yes"}), "count_connections"),
            (json!({"hooks": {"pre_stop": ""}}), "hooks.pre_stop"),
            (json!({"hooks": {"later": "x"}}), "hooks.later"),
            (json!({"name": "other"}), "name"),
            (json!({"password": "hunter22hunter22"}), "password"),
            (json!({"access": {"mode": "cidr"}}), "access"),
            (
                json!({"instance_fallback_minutes": 90}),
                "instance_fallback_minutes",
            ),
            (json!({"ami_id": "ami-1"}), "ami_id"),
            (json!({"colour": "blue"}), "colour"),
            (json!({}), "body"),
        ] {
            assert_eq!(refused_field(body.clone()), field, "{body}");
        }
        assert!(matches!(parse(b"[1]", &cfg()), Err(Error::BadRequest { .. })));
        assert!(matches!(
            parse(&vec![b' '; 20_000], &cfg()),
            Err(Error::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn a_schedule_or_hooks_set_to_null_are_removed_and_absent_ones_are_kept() {
        let c = parsed(json!({"schedule": null, "hooks": null})).unwrap();
        assert_eq!(c.schedule, Some(None));
        assert_eq!(c.hooks, Some(Hooks::default()));
        let c = parsed(json!({"idle_timeout_minutes": 45})).unwrap();
        assert_eq!(
            (c.schedule, c.hooks, c.idle_timeout_minutes),
            (None, None, Some(45))
        );
    }

    #[test]
    fn settings_change_in_any_state_from_launching_to_failed_and_the_type_only_while_stopped() {
        let change = parsed(json!({"idle_timeout_minutes": 45})).unwrap();
        let retype = parsed(json!({"instance_type": "g6.xlarge"})).unwrap();
        for state in State::ALL {
            let mut nb = sample(at(0));
            nb.state = state;
            nb.instance_type = "g5.xlarge".into();
            let settings_ok = !matches!(state, State::Pending | State::Terminating | State::Terminated);
            assert_eq!(plan(&nb, &change, at(60)).is_ok(), settings_ok, "{state}");
            match plan(&nb, &retype, at(60)) {
                Ok(p) => {
                    assert_eq!(state, State::Stopped);
                    assert_eq!(p.set_type.as_deref(), Some("g6.xlarge"));
                    assert_eq!(p.record.instance_type, "g6.xlarge");
                }
                Err(e) => {
                    assert_ne!(state, State::Stopped);
                    assert_eq!(e.status(), 409, "{state}");
                }
            }
        }
        let mut ready = sample(at(0));
        ready.state = State::Ready;
        let err = plan(&ready, &retype, at(60)).unwrap_err().to_string();
        assert!(err.contains("stop it first"), "{err}");
        // The type it already has is no change, in any state that takes settings.
        let same = parsed(json!({"instance_type": ready.instance_type})).unwrap();
        let p = plan(&ready, &same, at(60)).unwrap();
        assert_eq!((p.set_type, p.changed.len()), (None, 0));
    }

    #[test]
    fn a_disk_only_grows_and_only_once_there_is_one() {
        let mut nb = sample(at(0));
        nb.state = State::Ready;
        nb.volume_gb = 100;
        nb.instance_id = Some("i-1".into());
        let grow = |gb: u32| Changes {
            volume_gb: Some(gb),
            ..Changes::default()
        };
        let p = plan(&nb, &grow(150), at(60)).unwrap();
        assert_eq!((p.grow_to_gb, p.record.volume_gb), (Some(150), 150));
        assert_eq!(p.changed["volume_gb"], json!({"from": 100, "to": 150}));
        assert_eq!(plan(&nb, &grow(100), at(60)).unwrap().grow_to_gb, None);
        let err = plan(&nb, &grow(80), at(60)).unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest { field, .. } if field == "volume_gb"),
            "{err}"
        );
        nb.state = State::Launching;
        nb.instance_id = None;
        assert_eq!(plan(&nb, &grow(150), at(60)).unwrap_err().status(), 409);
    }

    #[test]
    fn the_runtime_cap_stays_within_the_ceiling_and_the_fallback_keeps_its_room() {
        let mut nb = sample(at(0));
        nb.state = State::Ready;
        nb.idle.runtime_ceiling_minutes = 600;
        let cap = |m| Changes {
            max_runtime_minutes: Some(m),
            ..Changes::default()
        };
        assert!(plan(&nb, &cap(600), at(60)).is_ok());
        assert!(plan(&nb, &cap(0), at(60)).is_ok());
        let err = plan(&nb, &cap(601), at(60)).unwrap_err();
        assert!(matches!(&err, Error::BadRequest { field, .. } if field == "max_runtime_minutes"));

        nb.idle.instance_fallback_minutes = 90;
        nb.idle.warning_minutes = 10;
        let idle = |m| Changes {
            idle_timeout_minutes: Some(m),
            ..Changes::default()
        };
        assert!(plan(&nb, &idle(80), at(60)).is_ok());
        let err = plan(&nb, &idle(81), at(60)).unwrap_err();
        assert!(matches!(&err, Error::BadRequest { field, .. } if field == "idle_timeout_minutes"));
    }

    #[test]
    fn the_history_names_each_changed_field_with_its_old_and_new_value_and_not_hook_scripts() {
        let mut nb = sample(at(0));
        nb.state = State::Stopped;
        nb.idle.idle_timeout_minutes = 60;
        let c = parsed(json!({
            "idle_timeout_minutes": 30, "gpu_threshold_pct": nb.idle.gpu_threshold_pct,
            "hooks": {"pre_stop": "git commit -am wip"}, "schedule": {"tz": "UTC",
            "windows": [{"days": "Mon-Fri", "from": "09:00", "to": "18:00"}]}
        }))
        .unwrap();
        let p = plan(&nb, &c, at(60)).unwrap();
        let mut keys: Vec<&str> = p.changed.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["hooks", "idle_timeout_minutes", "schedule"]);
        assert_eq!(p.record.idle.idle_timeout_minutes, 30);
        assert_eq!(p.record.hooks.pre_stop.as_deref(), Some("git commit -am wip"));
        let entry = p.history("arn:aws:iam::1:user/ana").to_string();
        assert!(!entry.contains("git commit"), "{entry}");
        assert!(entry.contains("18 bytes"), "{entry}");
        assert_eq!(p.record.version, nb.version + 1);
    }
}
