//! What notebooks cost and what nbfleet's automatic stops saved (`GET /costs`, `nbfleet
//! costs`): spend per owner or per notebook since a day, day by day, with the rule the saved
//! figure follows. Each figure comes from the records (`Notebook::spend`); anyone sees their
//! own notebooks, an admin every one.
//!
//! Budgets: an owner with a monthly budget (`NBFLEET_BUDGETS`) is told once at 80 % and once at
//! 100 % each month (at a launch or start, and by the sweep at most once an hour), and past 100 %
//! their launches and starts are refused (`budget_exceeded`; admins exempt). Running notebooks
//! are never stopped by a budget.

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

/// Where an owner stands against their monthly budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub spent_usd: f64,
    pub budget_usd: f64,
}

/// Midnight UTC on the first of `now`'s month, and of the next.
fn month_bounds(now: Timestamp) -> Result<(Timestamp, Timestamp, String)> {
    let utc = jiff::tz::TimeZone::UTC;
    let first = now.to_zoned_datetime(utc.clone()).date().first_of_month();
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(|e| nbfleet_core::Error::internal(e.to_string()))?;
    let at = |d: jiff::civil::Date| {
        d.to_zoned_datetime(utc.clone())
            .map(|z| z.timestamp())
            .map_err(|e| nbfleet_core::Error::internal(e.to_string()))
    };
    Ok((at(first)?, at(next)?, first.strftime("%Y-%m").to_string()))
}

/// What `notebooks` cost this month: every part with a price (an unpriced part has no figure
/// to hold against a budget).
fn spent_this_month(deps: &Deps, notebooks: &[&Notebook], now: Timestamp) -> Result<f64> {
    let (since, _, _) = month_bounds(now)?;
    Ok(notebooks
        .iter()
        .map(|nb| {
            let s = nb.spend(&deps.cfg.prices, since, now);
            [s.compute_usd, s.disk_usd, s.snapshot_usd]
                .iter()
                .flatten()
                .sum::<f64>()
        })
        .sum())
}

/// Tells `owner` once per month and level (80 %, 100 %) where they stand.
/// How long a launch or start waits for its budget notice to go out: Slack's rate limit may
/// ask for seconds more than an API request has. Past it the notice is dropped (logged).
const NOTICE_WAIT_ON_REQUEST: std::time::Duration = std::time::Duration::from_secs(3);

async fn tell_once(
    deps: &Deps,
    owner: &str,
    standing: Standing,
    now: Timestamp,
    wait: Option<std::time::Duration>,
) -> Result<()> {
    let level = match standing.spent_usd / standing.budget_usd {
        r if r >= 1.0 => 100,
        r if r >= 0.8 => 80,
        _ => return Ok(()),
    };
    let (_, next, month) = month_bounds(now)?;
    let key = format!("budget/{owner}/{month}/{level}");
    if deps
        .store
        .first_time(&key, next + SignedDuration::from_hours(24 * 31))
        .await?
    {
        let cents = |usd: f64| (usd * 100.0).round().max(0.0) as u64;
        let notice = nbfleet_core::ports::Notice::Budget {
            owner: owner.to_string(),
            spent_cents: cents(standing.spent_usd),
            budget_cents: cents(standing.budget_usd),
        };
        let told = nbfleet_core::ports::tell(deps, notice);
        match wait {
            None => told.await,
            Some(wait) => {
                if tokio::time::timeout(wait, told).await.is_err() {
                    tracing::warn!(%owner, wait_s = wait.as_secs(), "budget notice dropped: Slack took too long");
                }
            }
        }
    }
    Ok(())
}

/// Before a launch or start by `caller` of a notebook `owner` owns: past the owner's budget it
/// is refused (an admin is exempt); at 80 % or more the owner is told, once a month.
pub async fn check_budget(deps: &Deps, caller: &Principal, owner: &Principal) -> Result<()> {
    let Some(&budget_usd) = deps.cfg.budgets.get(&owner.id) else {
        return Ok(());
    };
    if caller.admin {
        return Ok(());
    }
    let now = deps.clock.now();
    let all = visible(deps, owner).await?;
    let theirs: Vec<&Notebook> = all.iter().collect();
    let standing = Standing {
        spent_usd: spent_this_month(deps, &theirs, now)?,
        budget_usd,
    };
    tell_once(deps, &owner.id, standing, now, Some(NOTICE_WAIT_ON_REQUEST)).await?;
    if standing.spent_usd >= budget_usd {
        let (_, next, _) = month_bounds(now)?;
        return Err(nbfleet_core::Error::BudgetExceeded(format!(
            "{} spent ${:.2} of a ${budget_usd:.2} monthly budget: launches and starts are refused \
             until {} (running notebooks keep running; an admin may still start one)",
            owner.name,
            standing.spent_usd,
            next.strftime("%Y-%m-%d")
        )));
    }
    Ok(())
}

/// The sweep's look at budgets, at most once an hour: each owner with a budget is told when
/// their spend this month crossed 80 % or 100 % (once a month each).
pub async fn budget_round(deps: &Deps, now: Timestamp) -> Result<()> {
    if deps.cfg.budgets.is_empty() {
        return Ok(());
    }
    let hour = now.strftime("budget-round/%Y-%m-%dT%H").to_string();
    if !deps
        .store
        .first_time(&hour, now + SignedDuration::from_hours(2))
        .await?
    {
        return Ok(());
    }
    let mut all = deps.store.list_live().await?;
    all.extend(deps.store.list_by_state(State::Terminated).await?);
    for (owner, &budget_usd) in &deps.cfg.budgets {
        let theirs: Vec<&Notebook> = all
            .iter()
            .filter(|nb| nb.owner_id.as_deref().unwrap_or(&nb.owner) == owner)
            .collect();
        let standing = Standing {
            spent_usd: spent_this_month(deps, &theirs, now)?,
            budget_usd,
        };
        tell_once(deps, owner, standing, now, None).await?;
    }
    Ok(())
}
