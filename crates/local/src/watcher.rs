//! Emits EC2 state-change events by watching moto, which emits none, and plays the machine's
//! part of each change: a stopped or terminated instance's Jupyter dies with it, and a
//! restarted instance comes back on a new port (the local stand-in for a new IP). A machine that
//! powers itself off (the on-instance idle fallback) is stopped in moto, as EC2 stops an
//! instance whose OS shuts down. moto's snapshots hold no contents: the watcher keeps a copy of
//! the home a snapshot was taken of, and puts it in the home of an instance restored from it
//! (tagged `nbfleet:restored-from`) before that instance's first event.

use crate::runner::Runner;
use nbfleet_aws::ec2_compute::RESTORED_FROM_TAG;
use nbfleet_aws::parameter_secrets::NOTEBOOK_TAG;
use nbfleet_core::events::ec2_state_change;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub struct Watcher {
    pub ec2: aws_sdk_ec2::Client,
    pub runner: Runner,
    pub account: String,
    pub region: String,
    pub events: UnboundedSender<Value>,
    pub interval: Duration,
    /// How long an emulated stop or start takes: moto changes state at once, so the watcher
    /// emits `stopping` (or `pending`) first and the final state this long after.
    pub transition: Duration,
}

impl Watcher {
    /// Polls forever.
    pub async fn run(self) {
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut disks = Disks::default();
        loop {
            match self.states().await {
                Ok(now) => {
                    disks.note(&now);
                    // Snapshots first: a delete's snapshot is kept before its termination is told.
                    if let Err(e) = self.keep_snapshots(&mut disks).await {
                        tracing::warn!(error = %e, "watcher: cannot keep snapshot contents");
                    }
                    for seen_now in now {
                        let (id, state) = (seen_now.id, seen_now.state);
                        if !seen.contains_key(&id)
                            && let Some(snapshot) = &seen_now.restored_from
                        {
                            match self.runner.restore_disk(&id, snapshot) {
                                Ok(true) => {
                                    tracing::info!(instance = %id, %snapshot, "restored disk contents")
                                }
                                Ok(false) => {
                                    tracing::warn!(instance = %id, %snapshot, "no contents kept for the snapshot")
                                }
                                Err(e) => {
                                    tracing::warn!(instance = %id, error = %e, "cannot restore disk contents")
                                }
                            }
                        }
                        if state == "running" && self.runner.sandbox(&id).is_ok_and(|sb| sb.take_poweroff()) {
                            tracing::info!(instance = %id, "the machine powered itself off");
                            if let Err(e) = self.ec2.stop_instances().instance_ids(&id).send().await {
                                tracing::warn!(instance = %id, error = ?e, "watcher: cannot stop");
                            }
                        }
                        let before = seen.insert(id.clone(), state.clone());
                        if before.as_deref() != Some(state.as_str()) {
                            self.changed(&id, before.as_deref(), &state);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watcher: cannot describe instances"),
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Keeps the contents of each snapshot not seen yet, from the home of the instance whose
    /// volume it was taken of.
    async fn keep_snapshots(&self, disks: &mut Disks) -> Result<(), String> {
        let out = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        for s in out.snapshots() {
            let (Some(id), Some(volume)) = (s.snapshot_id(), s.volume_id()) else {
                continue;
            };
            if !disks.kept.insert(id.to_string()) {
                continue;
            }
            match disks.instance_of.get(volume) {
                Some(instance) => match self.runner.keep_disk(instance, id) {
                    Ok(()) => tracing::info!(snapshot = id, %instance, "kept the snapshot's contents"),
                    Err(e) => {
                        tracing::warn!(snapshot = id, error = %e, "cannot keep the snapshot's contents")
                    }
                },
                None => tracing::debug!(snapshot = id, "a snapshot of no known instance's volume"),
            }
        }
        Ok(())
    }

    async fn states(&self) -> Result<Vec<Seen>, String> {
        let reservations = self
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag-key")
                    .values(NOTEBOOK_TAG)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .reservations
            .unwrap_or_default();
        Ok(reservations
            .into_iter()
            .flat_map(|r| r.instances.unwrap_or_default())
            .filter_map(|i| {
                let tag = |key: &str| {
                    i.tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                        .map(str::to_string)
                };
                Some(Seen {
                    restored_from: tag(RESTORED_FROM_TAG),
                    volumes: i
                        .block_device_mappings()
                        .iter()
                        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
                        .collect(),
                    id: i.instance_id.clone()?,
                    state: i.state.as_ref()?.name.as_ref()?.as_str().to_string(),
                })
            })
            .collect())
    }

    fn changed(&self, id: &str, before: Option<&str>, state: &str) {
        tracing::info!(instance = id, from = ?before, to = state, "EC2 state change in moto");
        let sandbox = self.runner.sandbox(id).ok();
        let (now, later) = match (before, state) {
            (Some("pending" | "running"), "stopped") => (Some("stopping"), Some("stopped")),
            (Some("stopped" | "stopping"), "running") => (Some("pending"), Some("running")),
            _ => (Some(state), None),
        };
        if matches!(state, "stopping" | "stopped" | "shutting-down" | "terminated") {
            // The machine goes down: its Jupyter goes with it.
            if let Some(sb) = &sandbox {
                sb.stop_jupyter();
            }
        }
        if state == "running" && matches!(before, Some("stopped" | "stopping")) {
            // A restarted instance comes back at a new address.
            if let Some(sb) = &sandbox {
                let _ = sb.new_port();
            }
        }
        let changed_at = jiff::Timestamp::now();
        if let Some(s) = now {
            self.emit(id, s, changed_at);
        }
        if let Some(s) = later {
            let (watcher, id, s) = (self.emitter(), id.to_string(), s.to_string());
            let delay = self.transition;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // Stamped with when moto changed, as EventBridge stamps an event with the
                // change: a stop told after the next start must read as the earlier event it is.
                watcher.emit(&id, &s, changed_at);
            });
        }
    }

    fn emitter(&self) -> Emitter {
        Emitter {
            account: self.account.clone(),
            region: self.region.clone(),
            events: self.events.clone(),
        }
    }

    fn emit(&self, id: &str, state: &str, at: jiff::Timestamp) {
        self.emitter().emit(id, state, at);
    }
}

/// One instance as a poll found it.
struct Seen {
    id: String,
    state: String,
    restored_from: Option<String>,
    volumes: Vec<String>,
}

/// What the watcher knows of disks: whose each volume is (a deleted instance's volumes are
/// gone from moto by the time its snapshot is seen), and which snapshots are kept.
#[derive(Default)]
struct Disks {
    instance_of: HashMap<String, String>,
    kept: std::collections::HashSet<String>,
}

impl Disks {
    fn note(&mut self, seen: &[Seen]) {
        for s in seen {
            for v in &s.volumes {
                self.instance_of.insert(v.clone(), s.id.clone());
            }
        }
    }
}

/// Sends EC2 state-change events, as EventBridge would deliver them.
struct Emitter {
    account: String,
    region: String,
    events: UnboundedSender<Value>,
}

impl Emitter {
    fn emit(&self, id: &str, state: &str, at: jiff::Timestamp) {
        tracing::debug!(instance = id, state, "EC2 event emitted");
        let _ = self.events.send(ec2_state_change(
            id,
            state,
            &self.account,
            &self.region,
            &at.to_string(),
        ));
    }
}
