//! The EventBridge events nbfleet reacts to, parsed from their JSON envelopes. EC2 and SSM
//! events carry no tags: handlers look the instance up and ignore instances that are not ours.

use crate::error::{Error, Result};
use crate::ports::{CommandStatus, InstanceState};
use jiff::Timestamp;
use serde_json::Value;

pub const EC2_STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub const SSM_INVOCATION_CHANGE: &str = "EC2 Command Invocation Status-change Notification";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An instance changed state (`aws.ec2`).
    InstanceState {
        instance_id: String,
        state: InstanceState,
        /// When EC2 saw it (the envelope's `time`, to the second): a late "running" is told
        /// from a new one by it.
        at: Option<Timestamp>,
    },
    /// A Run Command invocation on one instance changed status (`aws.ssm`).
    CommandInvocation {
        command_id: String,
        instance_id: String,
        status: CommandStatus,
    },
}

impl Event {
    pub fn parse(event: &Value) -> Result<Event> {
        let detail_type = event["detail-type"].as_str().unwrap_or_default();
        let detail = &event["detail"];
        let field = |name: &str| {
            detail[name].as_str().map(String::from).ok_or_else(|| {
                Error::bad_request(
                    format!("detail.{name}"),
                    format!("missing from a {detail_type:?} event"),
                )
            })
        };
        match detail_type {
            EC2_STATE_CHANGE => {
                let state = field("state")?;
                let at =
                    match event["time"].as_str() {
                        Some(t) => Some(t.parse::<Timestamp>().map_err(|e| {
                            Error::bad_request("time", format!("not a timestamp ({t:?}): {e}"))
                        })?),
                        None => None,
                    };
                Ok(Event::InstanceState {
                    at,
                    instance_id: field("instance-id")?,
                    state: InstanceState::parse(&state).ok_or_else(|| {
                        Error::bad_request("detail.state", format!("unknown state {state:?}"))
                    })?,
                })
            }
            SSM_INVOCATION_CHANGE => {
                let status = field("status")?;
                Ok(Event::CommandInvocation {
                    command_id: field("command-id")?,
                    instance_id: field("instance-id")?,
                    status: CommandStatus::parse(&status).ok_or_else(|| {
                        Error::bad_request("detail.status", format!("unknown status {status:?}"))
                    })?,
                })
            }
            other => Err(Error::bad_request(
                "detail-type",
                format!("not an event nbfleet handles: {other:?}"),
            )),
        }
    }
}

/// A real-shaped EC2 state-change event, as EventBridge delivers it (the local stack emits these).
pub fn ec2_state_change(instance_id: &str, state: &str, account: &str, region: &str, time: &str) -> Value {
    serde_json::json!({
        "version": "0",
        "id": format!("nbfleet-{instance_id}-{state}-{time}"),
        "detail-type": EC2_STATE_CHANGE,
        "source": "aws.ec2",
        "account": account,
        "time": time,
        "region": region,
        "resources": [format!("arn:aws:ec2:{region}:{account}:instance/{instance_id}")],
        "detail": { "instance-id": instance_id, "state": state }
    })
}

/// A real-shaped SSM invocation status-change event.
pub fn ssm_invocation_change(
    command_id: &str,
    instance_id: &str,
    status: &str,
    account: &str,
    region: &str,
    time: &str,
) -> Value {
    serde_json::json!({
        "version": "0",
        "id": format!("nbfleet-{command_id}-{status}"),
        "detail-type": SSM_INVOCATION_CHANGE,
        "source": "aws.ssm",
        "account": account,
        "time": time,
        "region": region,
        "resources": [format!("arn:aws:ec2:{region}:{account}:instance/{instance_id}")],
        "detail": {
            "command-id": command_id,
            "document-name": "AWS-RunShellScript",
            "instance-id": instance_id,
            "requested-date-time": time,
            "status": status
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_events_parse() {
        let ec2: Value = serde_json::from_str(include_str!("../../../events/ec2-running.json")).unwrap();
        assert_eq!(
            Event::parse(&ec2).unwrap(),
            Event::InstanceState {
                instance_id: "i-0b22a22eec53b9321".into(),
                state: InstanceState::Running,
                at: Some(ec2["time"].as_str().unwrap().parse().unwrap()),
            }
        );
        let ssm: Value =
            serde_json::from_str(include_str!("../../../events/ssm-command-success.json")).unwrap();
        assert_eq!(
            Event::parse(&ssm).unwrap(),
            Event::CommandInvocation {
                command_id: "2f7ab3d1-5c6e-4f8a-9b0c-1d2e3f4a5b6c".into(),
                instance_id: "i-0b22a22eec53b9321".into(),
                status: CommandStatus::Success
            }
        );
        let failed: Value =
            serde_json::from_str(include_str!("../../../events/ssm-command-failed.json")).unwrap();
        assert_eq!(
            Event::parse(&failed).unwrap(),
            Event::CommandInvocation {
                command_id: "2f7ab3d1-5c6e-4f8a-9b0c-1d2e3f4a5b6c".into(),
                instance_id: "i-0b22a22eec53b9321".into(),
                status: CommandStatus::Failed
            }
        );
    }

    /// Every sample the template check matches against the event rules (events/, one per
    /// state and status the rules list) is an event the handlers act on: an EC2 state, or a
    /// final command status.
    #[test]
    fn every_sample_event_is_one_the_handlers_act_on() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.starts_with("ec2-") || name.starts_with("ssm-command-")) {
                continue;
            }
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            match Event::parse(&event) {
                Ok(Event::InstanceState { .. }) => assert!(name.starts_with("ec2-"), "{name}"),
                Ok(Event::CommandInvocation { status, .. }) => {
                    assert!(status.is_final(), "{name}: {status:?} is not final")
                }
                Err(e) => panic!("{name}: {e}"),
            }
            seen += 1;
        }
        assert_eq!(seen, 6 + 8, "six EC2 states and eight final command statuses");
    }

    #[test]
    fn the_emitted_events_parse_back() {
        let e = ec2_state_change(
            "i-1",
            "stopped",
            "123456789012",
            "us-east-1",
            "2026-11-26T10:00:00Z",
        );
        assert!(matches!(
            Event::parse(&e).unwrap(),
            Event::InstanceState {
                state: InstanceState::Stopped,
                ..
            }
        ));
        let s = ssm_invocation_change(
            "c-1",
            "i-1",
            "Failed",
            "123456789012",
            "us-east-1",
            "2026-11-26T10:00:00Z",
        );
        assert!(matches!(
            Event::parse(&s).unwrap(),
            Event::CommandInvocation {
                status: CommandStatus::Failed,
                ..
            }
        ));
    }

    #[test]
    fn other_events_are_refused_by_name() {
        let err =
            Event::parse(&serde_json::json!({"detail-type": "Scheduled Event", "detail": {}})).unwrap_err();
        assert!(err.to_string().contains("Scheduled Event"));
        let bad = serde_json::json!({"detail-type": EC2_STATE_CHANGE, "detail": {"instance-id": "i-1", "state": "melting"}});
        assert!(Event::parse(&bad).is_err());
        let bad_time = serde_json::json!({"detail-type": EC2_STATE_CHANGE, "time": "yesterday",
            "detail": {"instance-id": "i-1", "state": "running"}});
        let err = Event::parse(&bad_time).unwrap_err().to_string();
        assert!(err.contains("time") && err.contains("yesterday"), "{err}");
    }
}
