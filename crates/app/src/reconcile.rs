//! Reconcile, the sweep's first pass: records are compared with EC2 (which is the truth for
//! what runs), and drift is fed through the same code as the EC2 event that was missed
//! ([`crate::instance_events::on_instance_state`]). The decision of what counts as drift is
//! `nbfleet_core::reconcile::drift`'s.

use crate::instance_events::on_instance_state;
use jiff::Timestamp;
use nbfleet_core::ports::Deps;
use nbfleet_core::reconcile::drift;
use nbfleet_core::{Notebook, Result, State};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a reconcile pass found and did, one line per notebook or instance.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Records brought in line with EC2: `name: EC2 says <state>`.
    pub adopted: Vec<String>,
    /// Instances tagged as nbfleet notebooks that no record owns.
    pub orphans: Vec<String>,
    /// The names of the records this pass moved, found moved meanwhile, or could not bring in
    /// line: their `live` copy is stale or in doubt, so the rest of the round leaves them.
    pub moved: BTreeSet<String>,
    /// Records that could not be brought in line this round, and why: `name: <error>`.
    pub failed: Vec<String>,
}

/// Every record that is not Terminated, read through the by-state index (one query per state,
/// paged): history items are not in that index, so they are never read here.
pub async fn live(deps: &Deps) -> Result<Vec<Notebook>> {
    let mut all = Vec::new();
    for state in State::ALL.into_iter().filter(|s| *s != State::Terminated) {
        all.extend(deps.store.list_by_state(state).await?);
    }
    Ok(all)
}

/// Compares the `live` records with EC2 (DescribeInstances by the nbfleet tag, paged) and adopts
/// changes made outside nbfleet.
pub async fn reconcile(deps: &Deps, live: &[Notebook], now: Timestamp) -> Result<Reconciled> {
    let tagged = deps.compute.list_tagged().await?;
    let by_id: HashMap<&str, _> = tagged.iter().map(|(_, i)| (i.id.as_str(), i)).collect();
    let mut report = Reconciled::default();
    let mut owned = HashSet::new();
    for nb in live {
        let Some(id) = nb.instance_id.as_deref() else {
            continue;
        };
        owned.insert(id.to_string());
        let ec2 = by_id.get(id).map(|i| i.state);
        if let Some(event) = drift(nb, ec2) {
            tracing::info!(notebook = %nb.name, instance = id, ?event, "reconcile: EC2 disagrees with the record");
            match on_instance_state(deps, id, event, now).await {
                Ok(_) => {
                    report.adopted.push(format!("{}: EC2 says {event:?}", nb.name));
                    report.moved.insert(nb.name.clone());
                }
                // The EC2 event got there first: nothing left to adopt. One record never
                // stops the round.
                Err(nbfleet_core::Error::Conflict(why)) => {
                    tracing::info!(notebook = %nb.name, %why, "reconcile: the record moved meanwhile");
                    report.moved.insert(nb.name.clone());
                }
                Err(e) => {
                    tracing::warn!(notebook = %nb.name, error = %e, "reconcile: could not adopt EC2's state");
                    report.failed.push(format!("{}: {e}", nb.name));
                    report.moved.insert(nb.name.clone());
                }
            }
        }
    }
    for (notebook, i) in &tagged {
        if !owned.contains(&i.id) && !i.state.is_gone() {
            tracing::warn!(instance = %i.id, %notebook, "reconcile: orphan instance");
            report
                .orphans
                .push(format!("{} (tagged {notebook}, {:?})", i.id, i.state));
        }
    }
    Ok(report)
}
