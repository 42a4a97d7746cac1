//! The money side: how long a notebook's instance has run, and what that cost.
//!
//! Running time is a ledger on the record: `running_since` is set when EC2 says the instance
//! runs, and on every move out of running the elapsed seconds are added to `running_seconds`.
//! Prices are on-demand USD per hour, per instance type, from a table the operator can override.

use crate::record::Notebook;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where the default prices come from.
pub const DEFAULT_PRICES_SOURCE: &str =
    "AWS EC2 on-demand Linux list prices, us-east-1, as of 2025-06 (override with NBFLEET_PRICES)";

/// Default on-demand prices (USD per hour), us-east-1.
pub const DEFAULT_PRICES: &str = "g4dn.xlarge=0.526,g5.xlarge=1.006,g6.xlarge=0.8048,g6e.xlarge=1.861";

/// USD per hour, per instance type.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    pub usd_per_hour: BTreeMap<String, f64>,
    /// Where the prices come from (shown with every cost).
    pub source: String,
}

impl PriceTable {
    /// Parses `type=usd,type=usd`.
    pub fn parse(spec: &str, source: &str) -> Result<PriceTable, String> {
        let mut usd_per_hour = BTreeMap::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (t, p) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not TYPE=USD_PER_HOUR"))?;
            let price: f64 = p.trim().parse().map_err(|_| format!("{p:?} is not a price"))?;
            if !(price.is_finite() && price >= 0.0) {
                return Err(format!("{p:?} is not a price"));
            }
            usd_per_hour.insert(t.trim().to_string(), price);
        }
        Ok(PriceTable {
            usd_per_hour,
            source: source.to_string(),
        })
    }
}

/// What a notebook has cost so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub running_hours: f64,
    /// `None` where the price table has no entry for the type.
    pub usd_per_hour: Option<f64>,
    pub cost_usd: Option<f64>,
    pub price_source: String,
}

impl Notebook {
    /// Records that EC2 says the instance runs from `now` (no-op if already counted).
    pub fn started_running(&mut self, now: Timestamp) {
        self.running_since.get_or_insert(now);
    }

    /// Records that the instance stopped running at `now`: the run joins the ledger.
    pub fn stopped_running(&mut self, now: Timestamp) {
        if let Some(since) = self.running_since.take() {
            self.running_seconds += now.duration_since(since).as_secs().max(0) as u64;
        }
    }

    /// Seconds run so far, the current run included.
    pub fn running_seconds_at(&self, now: Timestamp) -> u64 {
        let current = self
            .running_since
            .map_or(0, |s| now.duration_since(s).as_secs().max(0) as u64);
        self.running_seconds + current
    }

    pub fn cost(&self, prices: &PriceTable, now: Timestamp) -> Cost {
        let hours = self.running_seconds_at(now) as f64 / 3600.0;
        let price = prices.usd_per_hour.get(&self.instance_type).copied();
        Cost {
            running_hours: (hours * 1000.0).round() / 1000.0,
            usd_per_hour: price,
            cost_usd: price.map(|p| (p * hours * 100.0).round() / 100.0),
            price_source: prices.source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn runs_accumulate_and_the_current_run_counts() {
        let mut nb = sample(at(0));
        nb.started_running(at(100));
        nb.started_running(at(150)); // a duplicate event does not restart the clock
        nb.stopped_running(at(1900));
        assert_eq!(nb.running_seconds, 1800);
        nb.stopped_running(at(5000)); // already stopped: nothing more
        assert_eq!(nb.running_seconds, 1800);
        nb.started_running(at(10_000));
        assert_eq!(nb.running_seconds_at(at(11_800)), 3600);
    }

    #[test]
    fn cost_is_hours_times_the_types_price() {
        let prices = PriceTable::parse(DEFAULT_PRICES, DEFAULT_PRICES_SOURCE).unwrap();
        let mut nb = sample(at(0));
        nb.instance_type = "g5.xlarge".into();
        nb.running_seconds = 7200;
        let c = nb.cost(&prices, at(0));
        assert_eq!(
            (c.running_hours, c.usd_per_hour, c.cost_usd),
            (2.0, Some(1.006), Some(2.01))
        );
        nb.instance_type = "x9.mega".into();
        assert_eq!(nb.cost(&prices, at(0)).cost_usd, None);
    }

    #[test]
    fn a_bad_price_table_is_refused() {
        assert!(PriceTable::parse("g5.xlarge", "x").is_err());
        assert!(PriceTable::parse("g5.xlarge=cheap", "x").is_err());
        assert!(PriceTable::parse("g5.xlarge=-1", "x").is_err());
    }
}
