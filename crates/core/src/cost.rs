//! The money side: how long a notebook's instance has run, and what that cost.
//!
//! Running time is a ledger on the record: `running_since` is set when EC2 says the instance
//! runs, and on every move out of running the elapsed seconds are added to `running_seconds`.
//! Prices are on-demand USD per hour per instance type, and USD per GB-month for gp3 disks and
//! snapshots, per region: a bundled table ([`BUNDLED`]) the operator can override. A region or
//! type the table does not name has no price ("no price"), never another region's.

use crate::record::Notebook;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where the bundled prices come from.
pub const BUNDLED_SOURCE: &str =
    "AWS public on-demand list prices (EC2 Linux, EBS gp3, EBS standard snapshots), as of 2025-06";

/// The bundled prices of one region: `type=usd/hour`, plus `gp3=` and `snapshot=` in USD per
/// GB-month (the keys [`PriceTable::parse`] reads, as the operator's override writes them).
pub const BUNDLED: [(&str, &str); 4] = [
    (
        "us-east-1",
        "g4dn.xlarge=0.526,g5.xlarge=1.006,g6.xlarge=0.8048,g6e.xlarge=1.861,gp3=0.08,snapshot=0.05",
    ),
    (
        "us-east-2",
        "g4dn.xlarge=0.526,g5.xlarge=1.006,g6.xlarge=0.8048,g6e.xlarge=1.861,gp3=0.08,snapshot=0.05",
    ),
    (
        "us-west-2",
        "g4dn.xlarge=0.526,g5.xlarge=1.006,g6.xlarge=0.8048,g6e.xlarge=1.861,gp3=0.08,snapshot=0.05",
    ),
    (
        "eu-west-1",
        "g4dn.xlarge=0.587,g5.xlarge=1.123,gp3=0.088,snapshot=0.05",
    ),
];

/// The prices of one region.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// USD per hour, per instance type.
    pub usd_per_hour: BTreeMap<String, f64>,
    /// USD per GB-month of a gp3 volume (a notebook's disk, running or stopped).
    pub gp3_usd_per_gb_month: Option<f64>,
    /// USD per GB-month of a snapshot (counted at the full disk size: an upper bound).
    pub snapshot_usd_per_gb_month: Option<f64>,
    /// Where the prices come from (shown with every cost).
    pub source: String,
}

impl PriceTable {
    /// Parses `type=usd,type=usd,gp3=usd,snapshot=usd` (hourly per type; per GB-month for
    /// `gp3` and `snapshot`).
    pub fn parse(spec: &str, source: &str) -> Result<PriceTable, String> {
        let mut table = PriceTable {
            usd_per_hour: BTreeMap::new(),
            gp3_usd_per_gb_month: None,
            snapshot_usd_per_gb_month: None,
            source: source.to_string(),
        };
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (t, p) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not TYPE=USD_PER_HOUR"))?;
            let price: f64 = p.trim().parse().map_err(|_| format!("{p:?} is not a price"))?;
            if !(price.is_finite() && price >= 0.0) {
                return Err(format!("{p:?} is not a price"));
            }
            match t.trim() {
                "gp3" => table.gp3_usd_per_gb_month = Some(price),
                "snapshot" => table.snapshot_usd_per_gb_month = Some(price),
                t => {
                    table.usd_per_hour.insert(t.to_string(), price);
                }
            }
        }
        Ok(table)
    }

    /// The bundled prices of `region` (empty, "no price", for a region the table lacks).
    pub fn bundled(region: &str) -> PriceTable {
        let spec = BUNDLED
            .iter()
            .find(|(r, _)| *r == region)
            .map_or("", |(_, spec)| spec);
        let source = match spec {
            "" => format!("no bundled prices for {region}: set the Prices parameter"),
            _ => format!("{BUNDLED_SOURCE}, {region}"),
        };
        PriceTable::parse(spec, &source).expect("the bundled prices parse")
    }

    /// `over`'s prices on top of these.
    pub fn overridden_by(mut self, over: PriceTable) -> PriceTable {
        self.usd_per_hour.extend(over.usd_per_hour);
        self.gp3_usd_per_gb_month = over.gp3_usd_per_gb_month.or(self.gp3_usd_per_gb_month);
        self.snapshot_usd_per_gb_month = over.snapshot_usd_per_gb_month.or(self.snapshot_usd_per_gb_month);
        self.source = over.source;
        self
    }

    /// What `gb` of snapshot costs a month, if there is a price.
    pub fn snapshot_monthly(&self, gb: u32) -> Option<f64> {
        self.snapshot_usd_per_gb_month
            .map(|p| (p * f64::from(gb) * 100.0).round() / 100.0)
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
        let prices = PriceTable::bundled("us-east-1");
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
    fn a_region_the_table_lacks_has_no_price_never_another_regions() {
        let none = PriceTable::bundled("ap-south-2");
        assert!(none.usd_per_hour.is_empty());
        assert_eq!(none.snapshot_monthly(100), None);
        assert!(none.source.contains("no bundled prices for ap-south-2"));
        let mut nb = sample(at(0));
        nb.running_seconds = 3600;
        assert_eq!(nb.cost(&none, at(0)).cost_usd, None);
        let ireland = PriceTable::bundled("eu-west-1");
        assert_eq!(ireland.usd_per_hour.get("g4dn.xlarge"), Some(&0.587));
        assert_eq!(
            ireland.usd_per_hour.get("g6e.xlarge"),
            None,
            "not priced there: no price"
        );
        assert_eq!(ireland.snapshot_monthly(100), Some(5.0));
    }

    #[test]
    fn the_operators_prices_go_over_the_bundled_ones() {
        let over = PriceTable::parse("g5.xlarge=2,snapshot=0.06", "ours").unwrap();
        let t = PriceTable::bundled("us-east-1").overridden_by(over);
        assert_eq!(t.usd_per_hour["g5.xlarge"], 2.0);
        assert_eq!(t.usd_per_hour["g4dn.xlarge"], 0.526);
        assert_eq!(
            (t.gp3_usd_per_gb_month, t.snapshot_usd_per_gb_month),
            (Some(0.08), Some(0.06))
        );
        assert_eq!(t.source, "ours");
    }

    #[test]
    fn a_bad_price_table_is_refused() {
        assert!(PriceTable::parse("g5.xlarge", "x").is_err());
        assert!(PriceTable::parse("g5.xlarge=cheap", "x").is_err());
        assert!(PriceTable::parse("g5.xlarge=-1", "x").is_err());
    }
}
