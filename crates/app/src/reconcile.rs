//! Reconcile, the sweep's first pass: records are compared with EC2 (which is the truth for
//! what runs), and drift is fed through the same code as the EC2 event that was missed
//! ([`crate::instance_events::on_instance_state`]), trying the agent once: the sweep never waits
//! for one. The decision of what counts as drift is `nbfleet_core::reconcile::drift`'s; a
//! Failed record whose instance runs has it stopped (Failed means nothing runs). An orphan, an
//! instance tagged for a notebook that no live record owns, is stopped once past its grace
//! period (`orphan_grace_minutes`), never terminated, and people are told. Security groups a
//! termination left behind are removed.

use crate::budget::Budget;
use crate::instance_events::{Source, on_instance_state};
use jiff::{SignedDuration, Timestamp};
use nbfleet_core::ports::{Deps, Instance, InstanceState, Notice, tell};
use nbfleet_core::reconcile::{drift, orphan_to_stop, orphans, runs_when_failed};
use nbfleet_core::{Notebook, Result};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a reconcile pass found and did, one line per notebook or instance.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Records brought in line with EC2: `name: EC2 says <state>`.
    pub adopted: Vec<String>,
    /// Instances tagged as nbfleet notebooks that no live record owns: `id (tagged <name>,
    /// <state>)`, with `: stopped` when this pass stopped one past its grace period.
    pub orphans: Vec<String>,
    /// The names of the records this pass moved, found moved meanwhile, or could not bring in
    /// line: their `live` copy is stale or in doubt, so the rest of the round leaves them.
    pub moved: BTreeSet<String>,
    /// Records that could not be brought in line this round, and why: `name: <error>`.
    pub failed: Vec<String>,
    /// Security groups a termination left behind, removed: `group (notebook)`.
    pub groups_removed: Vec<String>,
}

/// Every record that is not Terminated (`Store::list_live`: one paged query of the by-live
/// index; history items are not in it).
pub async fn live(deps: &Deps) -> Result<Vec<Notebook>> {
    deps.store.list_live().await
}

/// Compares the `live` records with EC2 (DescribeInstances by the nbfleet tag, paged) and adopts
/// changes made outside nbfleet, one record at a time within `budget`.
pub async fn reconcile(deps: &Deps, live: &[Notebook], now: Timestamp, budget: Budget) -> Result<Reconciled> {
    let tagged = deps.compute.list_tagged().await?;
    let by_id: HashMap<&str, _> = tagged.iter().map(|(_, i)| (i.id.as_str(), i)).collect();
    let mut report = Reconciled::default();
    for nb in live {
        let Some(id) = nb.instance_id.as_deref() else {
            continue;
        };
        match budget
            .run(reconcile_one(deps, nb, id, by_id.get(id).map(|i| i.state), now))
            .await
        {
            Ok(None) => {}
            Ok(Some(done)) => {
                report.adopted.push(format!("{}: {done}", nb.name));
                report.moved.insert(nb.name.clone());
            }
            // The EC2 event got there first: nothing left to adopt.
            Err(nbfleet_core::Error::Conflict(why)) => {
                tracing::info!(notebook = %nb.name, %why, "reconcile: the record moved meanwhile");
                report.moved.insert(nb.name.clone());
            }
            // One record never stops the round.
            Err(e) => {
                tracing::warn!(notebook = %nb.name, error = %e, "reconcile: could not bring the record in line with EC2");
                report.failed.push(format!("{}: {e}", nb.name));
                report.moved.insert(nb.name.clone());
            }
        }
    }
    let grace = SignedDuration::from_mins(deps.cfg.orphan_grace_minutes.into());
    for orphan in orphans(&tagged, live) {
        let notebook = orphan.notebook.as_deref().unwrap_or_default();
        tracing::warn!(instance = %orphan.id, %notebook, state = ?orphan.state, "reconcile: orphan instance");
        let mut line = format!("{} (tagged {notebook}, {:?})", orphan.id, orphan.state);
        if orphan_to_stop(orphan, grace, now) {
            match budget.run(stop_orphan(deps, orphan, now)).await {
                Ok(()) => line.push_str(": stopped"),
                Err(e) => report.failed.push(format!("orphan {}: {e}", orphan.id)),
            }
        }
        report.orphans.push(line);
    }
    remove_leftover_groups(deps, live, &tagged, budget, &mut report).await;
    Ok(report)
}

/// Removes the security groups that a termination could not delete (EC2 holds a group for a
/// while after its instance is gone): tagged for a notebook that has no live record (so no
/// launch is under way for it) and no orphan instance (which would still hold it).
async fn remove_leftover_groups(
    deps: &Deps,
    live: &[Notebook],
    tagged: &[(String, Instance)],
    budget: Budget,
    report: &mut Reconciled,
) {
    let groups = match budget.run(deps.compute.list_tagged_groups()).await {
        Ok(groups) => groups,
        Err(e) => {
            report.failed.push(format!("security groups: {e}"));
            return;
        }
    };
    let in_use: HashSet<&str> = live
        .iter()
        .map(|nb| nb.name.as_str())
        .chain(
            tagged
                .iter()
                .filter(|(_, i)| !i.state.is_gone())
                .map(|(n, _)| n.as_str()),
        )
        .collect();
    for (group, notebook) in groups.iter().filter(|(_, n)| !in_use.contains(n.as_str())) {
        match budget.run(deps.compute.delete_security_group(group)).await {
            Ok(()) => report.groups_removed.push(format!("{group} ({notebook})")),
            // Still held for a moment: the next round tries again.
            Err(e) => {
                tracing::info!(%group, %notebook, error = %e, "leftover security group not removed yet")
            }
        }
    }
}

/// Stops an orphan past its grace period and tells people, once per instance.
async fn stop_orphan(deps: &Deps, orphan: &Instance, now: Timestamp) -> Result<()> {
    deps.compute.stop(&orphan.id).await?;
    let key = format!("orphan#{}", orphan.id);
    if deps
        .store
        .first_time(&key, now + SignedDuration::from_hours(24 * 7))
        .await
        .unwrap_or(true)
    {
        let name = orphan.notebook.clone().unwrap_or_default();
        let instance_id = orphan.id.clone();
        tell(deps, Notice::Orphan { name, instance_id }).await;
    }
    Ok(())
}

/// Brings one record in line with `listed`, EC2's state for its instance in the tag listing;
/// what it did, if anything.
async fn reconcile_one(
    deps: &Deps,
    nb: &Notebook,
    id: &str,
    listed: Option<InstanceState>,
    now: Timestamp,
) -> Result<Option<String>> {
    // Missing from the listing: new (the listing lags RunInstances) or its tag removed. Ask
    // by id before anything counts as terminated.
    let ec2 = match listed {
        Some(state) => Some(state),
        None => deps.compute.describe(id).await?.map(|i| i.state),
    };
    if runs_when_failed(nb, ec2) {
        tracing::warn!(notebook = %nb.name, instance = id, "reconcile: a Failed notebook's instance runs; stopping it");
        deps.compute.stop(id).await?;
        return Ok(Some("Failed, but its instance ran: stopped".into()));
    }
    let Some(event) = drift(nb, ec2, now) else {
        return Ok(None);
    };
    tracing::info!(notebook = %nb.name, instance = id, ?event, "reconcile: EC2 disagrees with the record");
    on_instance_state(deps, id, event, Source::Reconcile, now).await?;
    Ok(Some(format!("EC2 says {event:?}")))
}
