//! Change a notebook after its launch (`PATCH /notebooks/{name}`, `nbfleet set`): its idle
//! policy, schedule and hooks in any state from Launching to Failed, its disk (grow only), and
//! its instance type while Stopped. `nbfleet_core::modify` decides; this carries it out.
//!
//! EC2 is asked first and the record written second, the other way round from start and stop:
//! EC2 is what refuses a type change for an instance that is not stopped, and both EC2 changes
//! are safe to repeat (a disk already that large is left alone), so a write that loses a race,
//! or a Lambda killed in between, is made good by asking again. The instance type EC2 reports
//! is recorded again at every Ready.

use crate::lifecycle::{Changed, owned};
use nbfleet_core::identity::Principal;
use nbfleet_core::modify::{self, Changes};
use nbfleet_core::ports::Deps;
use nbfleet_core::transitions::Effect;
use nbfleet_core::{Error, Result};

/// How many times a change is planned and written again after losing to another write.
const TRIES: u32 = 3;

/// Applies `changes` (parsed by `modify::parse` at the edge) to `name`, for its owner or an
/// admin. Answers the record as it now stands; a change that changes nothing writes nothing.
pub async fn modify(deps: &Deps, caller: &Principal, name: &str, changes: &Changes) -> Result<Changed> {
    let now = deps.clock.now();
    let mut tries = 1;
    loop {
        let nb = owned(deps, caller, name).await?;
        let plan = modify::plan(&nb, changes, now)?;
        if plan.changed.is_empty() {
            return Ok(Changed {
                notebook: nb,
                effect: Effect::NoOp,
            });
        }
        let instance_id = nb.instance_id.as_deref().unwrap_or_default();
        if let Some(gb) = plan.grow_to_gb {
            let volume = deps
                .compute
                .describe(instance_id)
                .await?
                .filter(|i| !i.state.is_gone())
                .and_then(|i| i.root_volume_id)
                .ok_or_else(|| Error::Conflict(format!("notebook {name:?} has no disk to grow")))?;
            deps.compute.grow_volume(&volume, gb).await?;
        }
        if let Some(instance_type) = &plan.set_type {
            deps.compute.set_instance_type(instance_id, instance_type).await?;
        }
        match deps.store.put(&plan.record, nb.expect()).await {
            Ok(()) => {
                let entry = plan.history(&caller.name);
                if let Err(e) = deps.store.append_history(name, now, &entry).await {
                    tracing::warn!(notebook = %name, error = %e, "the change is not in the history");
                }
                tracing::info!(notebook = %name, changes = %serde_json::Value::Object(plan.changed), "changed");
                return Ok(Changed {
                    notebook: plan.record,
                    effect: Effect::Apply,
                });
            }
            Err(Error::Conflict(_)) if tries < TRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}
