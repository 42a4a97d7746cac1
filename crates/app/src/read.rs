//! Reading notebooks: one (with its recent history) or all, each with its cost to date.
//! Records hold no secret, so any authorised caller may read them. And the orphans: instances
//! tagged for a notebook that no live record owns (each caller sees their own; admins all).
//! And the instance types a launch may ask for, with their prices.

use nbfleet_core::cost::Cost;
use nbfleet_core::identity::Principal;
use nbfleet_core::ports::Deps;
use nbfleet_core::validate::validate_name;
use nbfleet_core::{Notebook, Result};
use serde::Serialize;

/// How many history entries one notebook's view carries (the newest).
pub const HISTORY_SHOWN: usize = 20;

/// A notebook as users see it: the record, its cost so far and, for one notebook, its history.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub notebook: Notebook,
    pub cost: Cost,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<serde_json::Value>>,
}

/// The notebook `name`, with its newest history entries.
pub async fn get(deps: &Deps, name: &str) -> Result<View> {
    validate_name(name)?;
    let now = deps.clock.now();
    let notebook = deps.store.require(name).await?;
    let history = deps.store.recent_history(name, HISTORY_SHOWN).await?;
    let cost = notebook.cost(&deps.cfg.prices, now);
    Ok(View {
        notebook,
        cost,
        history: Some(history),
    })
}

/// Every notebook, sorted by name: the live ones and the Terminated ones, each read through
/// an index, so history items (in neither) are never read.
pub async fn list(deps: &Deps) -> Result<Vec<View>> {
    let now = deps.clock.now();
    let mut all = deps.store.list_live().await?;
    all.extend(deps.store.list_by_state(nbfleet_core::State::Terminated).await?);
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all
        .into_iter()
        .map(|notebook| View {
            cost: notebook.cost(&deps.cfg.prices, now),
            notebook,
            history: None,
        })
        .collect())
}

/// An instance type a launch may ask for, with its on-demand price here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    pub instance_type: String,
    /// USD an hour; `None`: no price for it (set the Prices parameter).
    pub usd_per_hour: Option<f64>,
    /// The type a launch without one gets.
    pub default: bool,
}

/// The operator's allowed instance types, the default first, each with its price.
pub fn offers(deps: &Deps) -> Vec<Offer> {
    let types = &deps.cfg.instance_types;
    types
        .iter()
        .enumerate()
        .map(|(i, t)| Offer {
            instance_type: t.clone(),
            usd_per_hour: deps.cfg.prices.usd_per_hour.get(t).copied(),
            default: i == 0,
        })
        .collect()
}

/// An instance tagged for a notebook that no live record owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub instance_id: String,
    pub notebook: Option<String>,
    pub owner: Option<String>,
    pub state: &'static str,
    pub launched_at: Option<jiff::Timestamp>,
}

/// The orphans `caller` may see: those tagged as theirs (by owner id; by name for instances
/// from before the id tag), or all for an admin.
pub async fn orphans(deps: &Deps, caller: &Principal) -> Result<Vec<Orphan>> {
    let live = crate::reconcile::live(deps).await?;
    let tagged = deps.compute.list_tagged().await?;
    let theirs = |i: &nbfleet_core::ports::Instance| match &i.owner_id {
        Some(id) => *id == caller.id,
        None => i.owner.as_deref() == Some(caller.name.as_str()),
    };
    Ok(nbfleet_core::reconcile::orphans(&tagged, &live)
        .into_iter()
        .filter(|i| caller.admin || theirs(i))
        .map(|i| Orphan {
            instance_id: i.id.clone(),
            notebook: i.notebook.clone(),
            owner: i.owner.clone(),
            state: i.state.as_str(),
            launched_at: i.launched_at,
        })
        .collect())
}
