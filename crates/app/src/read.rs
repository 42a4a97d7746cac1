//! Reading notebooks: one (with its recent history) or all, each with its cost to date.
//! Records hold no secret, so any authorised caller may read them.

use nbfleet_core::cost::Cost;
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
    let mut history = deps.store.history(name).await?;
    history.drain(..history.len().saturating_sub(HISTORY_SHOWN));
    let cost = notebook.cost(&deps.cfg.prices, now);
    Ok(View {
        notebook,
        cost,
        history: Some(history),
    })
}

/// Every notebook, sorted by name.
pub async fn list(deps: &Deps) -> Result<Vec<View>> {
    let now = deps.clock.now();
    Ok(deps
        .store
        .list()
        .await?
        .into_iter()
        .map(|notebook| View {
            cost: notebook.cost(&deps.cfg.prices, now),
            notebook,
            history: None,
        })
        .collect())
}
