//! The disks nbfleet kept: `GET /snapshots`, `DELETE /snapshots/{id}`, and what a restore
//! (`POST /notebooks` with `restore_from`) may start from. Only snapshots this deployment took
//! (its stack's tag and a notebook's) are listed, restored or deleted, and only by their owner
//! (admins see every one in the list).

use jiff::Timestamp;
use nbfleet_core::identity::Principal;
use nbfleet_core::ports::{Deps, Snapshot};
use nbfleet_core::validate::{RestoreFrom, validate_snapshot_id};
use nbfleet_core::{Error, Result};
use serde::Serialize;

/// One snapshot as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotView {
    pub snapshot_id: String,
    pub notebook: Option<String>,
    pub generation: Option<u32>,
    pub owner: Option<String>,
    pub size_gb: u32,
    pub created: Option<Timestamp>,
    pub state: String,
    /// At most this a month: priced at the full disk size (EBS bills the blocks a snapshot
    /// holds, often fewer). `None` where the region has no price.
    pub monthly_usd: Option<f64>,
}

/// The caller's snapshots (every one, for an admin), newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshots {
    pub snapshots: Vec<SnapshotView>,
    pub price_source: String,
}

fn owned_by(s: &Snapshot, p: &Principal) -> bool {
    match &s.owner_id {
        Some(id) => *id == p.id,
        None => s.owner.as_deref() == Some(p.name.as_str()),
    }
}

fn view(deps: &Deps, s: Snapshot) -> SnapshotView {
    SnapshotView {
        monthly_usd: deps.cfg.prices.snapshot_monthly(s.size_gb),
        snapshot_id: s.id,
        notebook: s.notebook,
        generation: s.generation,
        owner: s.owner,
        size_gb: s.size_gb,
        created: s.created,
        state: s.state,
    }
}

/// `GET /snapshots`.
pub async fn list(deps: &Deps, caller: &Principal) -> Result<Snapshots> {
    let mut mine: Vec<Snapshot> = deps
        .compute
        .list_snapshots()
        .await?
        .into_iter()
        .filter(|s| s.nbfleet && (caller.admin || owned_by(s, caller)))
        .collect();
    mine.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(Snapshots {
        snapshots: mine.into_iter().map(|s| view(deps, s)).collect(),
        price_source: deps.cfg.prices.source.clone(),
    })
}

/// The snapshot `id`, if the caller may use it: 404 when EC2 knows none, 403 when it is not
/// nbfleet's or not the caller's.
async fn theirs(deps: &Deps, caller: &Principal, id: &str, field: &str) -> Result<Snapshot> {
    validate_snapshot_id(id, field)?;
    let s = deps
        .compute
        .describe_snapshot(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no snapshot {id}")))?;
    if !s.nbfleet {
        return Err(Error::Forbidden(format!(
            "snapshot {id} was not taken by this nbfleet: it can be neither restored nor deleted here"
        )));
    }
    if !owned_by(&s, caller) {
        return Err(Error::Forbidden(format!("snapshot {id} is not yours")));
    }
    Ok(s)
}

/// `DELETE /snapshots/{id}`: the owner's nbfleet snapshot, and the record's note of it.
pub async fn delete(deps: &Deps, caller: &Principal, id: &str) -> Result<SnapshotView> {
    let s = theirs(deps, caller, id, "snapshot_id").await?;
    deps.compute.delete_snapshot(id).await?;
    tracing::info!(snapshot = id, notebook = ?s.notebook, "snapshot deleted");
    if let Some(name) = &s.notebook {
        forget(deps, name, id).await;
    }
    Ok(view(deps, s))
}

/// Takes a deleted snapshot off its notebook's record, so that nothing offers it for a restore.
/// A record that moved on (or a lost race) keeps the id: a restore of it is then a 404.
pub(crate) async fn forget(deps: &Deps, name: &str, id: &str) {
    let Ok(Some(nb)) = deps.store.get(name).await else {
        return;
    };
    let named =
        nb.snapshot_id.as_deref() == Some(id) || nb.earlier_snapshots.iter().any(|k| k.snapshot_id == id);
    if !named {
        return;
    }
    let mut next = nb.touched(deps.clock.now());
    next.snapshot_id.take_if(|s| s == id);
    next.earlier_snapshots.retain(|k| k.snapshot_id != id);
    if let Err(e) = deps.store.put(&next, nb.expect()).await {
        tracing::warn!(notebook = %name, snapshot = id, error = %e, "the record still names the deleted snapshot");
    }
}

/// What a restore for `caller` starts from: the snapshot named, or the latest one of the
/// notebook named; completed, nbfleet's and the caller's.
pub async fn restorable(deps: &Deps, caller: &Principal, from: &RestoreFrom) -> Result<Snapshot> {
    let id = match from {
        RestoreFrom::Snapshot(id) => id.clone(),
        RestoreFrom::Notebook(name) => {
            let nb = deps.store.require(name).await?;
            nb.snapshot_id
                .clone()
                .or_else(|| nb.earlier_snapshots.last().map(|k| k.snapshot_id.clone()))
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "notebook {name:?} has no snapshot to restore (`nbfleet snapshots` lists yours)"
                    ))
                })?
        }
    };
    let s = theirs(deps, caller, &id, "restore_from").await?;
    if s.state != "completed" {
        return Err(Error::Conflict(format!(
            "snapshot {id} is {} (EBS is still copying it); retry in a few minutes",
            s.state
        )));
    }
    Ok(s)
}
