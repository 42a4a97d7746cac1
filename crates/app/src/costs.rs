//! What notebooks cost and what nbfleet's automatic stops saved (`GET /costs`, `nbfleet
//! costs`): spend per owner or per notebook since a day, day by day, with the rule the saved
//! figure follows. Each figure comes from the records (`Notebook::spend`); anyone sees their
//! own notebooks, an admin every one.

use jiff::{SignedDuration, Timestamp};
use nbfleet_core::cost::{By, MAX_DAYS, SAVED_RULE, Spend};
use nbfleet_core::identity::Principal;
use nbfleet_core::ports::Deps;
use nbfleet_core::{Notebook, Result, State};
use serde::Serialize;
use std::collections::BTreeMap;

/// One owner's or one notebook's spend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The owner (by owner) or the notebook's name (by notebook).
    pub key: String,
    #[serde(flatten)]
    pub spend: Spend,
    /// Compute, disk and snapshot; `None` where a part has no price.
    pub total_usd: Option<f64>,
}

/// One day's spend, for the plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub day: jiff::civil::Date,
    pub total_usd: Option<f64>,
    pub saved_usd: Option<f64>,
}

/// The answer of `GET /costs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Costs {
    pub since: Timestamp,
    pub until: Timestamp,
    pub by: By,
    pub groups: Vec<Group>,
    pub total: Group,
    /// Day by day (UTC), for a window of at most `MAX_DAYS` days.
    pub days: Vec<Day>,
    pub saved_rule: &'static str,
    pub price_source: String,
}

fn group(key: String, spend: Spend) -> Group {
    let spend = spend.rounded();
    Group {
        key,
        total_usd: spend.total_usd(),
        spend,
    }
}

/// The notebooks `caller` may see the cost of: their own, or every one for an admin.
pub(crate) async fn visible(deps: &Deps, caller: &Principal) -> Result<Vec<Notebook>> {
    let mut all = deps.store.list_live().await?;
    all.extend(deps.store.list_by_state(State::Terminated).await?);
    Ok(all
        .into_iter()
        .filter(|nb| caller.admin || nb.is_owned_by(caller))
        .collect())
}

/// `GET /costs?since=…&by=…`.
pub async fn report(deps: &Deps, caller: &Principal, since: Timestamp, by: By) -> Result<Costs> {
    let until = deps.clock.now();
    let notebooks = visible(deps, caller).await?;
    let prices = &deps.cfg.prices;
    let mut groups: BTreeMap<String, Spend> = BTreeMap::new();
    for nb in &notebooks {
        let key = match by {
            By::Owner => nb.owner.clone(),
            By::Notebook => nb.name.clone(),
        };
        let spend = nb.spend(prices, since, until);
        let sum = groups.entry(key).or_default();
        *sum = sum.plus(spend);
    }
    let total = groups.values().fold(Spend::default(), |a, b| a.plus(*b));
    let mut days = Vec::new();
    if until.duration_since(since) <= SignedDuration::from_hours(24 * MAX_DAYS) {
        let utc = jiff::tz::TimeZone::UTC;
        let midnight = |d: jiff::civil::Date| {
            d.to_zoned_datetime(utc.clone())
                .map(|z| z.timestamp())
                .map_err(|e| nbfleet_core::Error::internal(e.to_string()))
        };
        let mut day = since.to_zoned_datetime(utc.clone()).date();
        loop {
            let start = midnight(day)?.max(since);
            if start >= until {
                break;
            }
            let next = day
                .tomorrow()
                .map_err(|e| nbfleet_core::Error::internal(e.to_string()))?;
            let end = midnight(next)?.min(until);
            let spent = notebooks
                .iter()
                .fold(Spend::default(), |a, nb| a.plus(nb.spend(prices, start, end)))
                .rounded();
            days.push(Day {
                day,
                total_usd: spent.total_usd(),
                saved_usd: spent.saved_usd,
            });
            day = next;
        }
    }
    Ok(Costs {
        since,
        until,
        by,
        groups: groups.into_iter().map(|(k, s)| group(k, s)).collect(),
        total: group("total".into(), total),
        days,
        saved_rule: SAVED_RULE,
        price_source: prices.source.clone(),
    })
}
