//! The money side: what a notebook has cost, what it cost in a window, and what its automatic
//! stops saved.
//!
//! Running time is a ledger on the record: `running_since` is set when EC2 says the instance
//! runs, and on every move out of running the elapsed seconds are added to `running_seconds`
//! and the run joins `runs` (the newest [`RUNS_KEPT`], with its type and whether nbfleet stopped
//! it on its own). The disk costs from `disk_created_at` to `disk_deleted_at` (running or
//! stopped), at its size now; the snapshot a delete kept, from `snapshot_taken_at`, at the disk's
//! size (an upper bound: EBS bills the blocks it holds).
//! Prices are on-demand USD per hour per instance type, and USD per GB-month for gp3 disks and
//! snapshots, per region: a bundled table ([`BUNDLED`]) the operator can override. A region or
//! type the table does not name has no price ("no price"), never another region's.

use crate::record::Notebook;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The hours of the month AWS bills GB-months by.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// The finished runs a record keeps, newest: weeks of several runs a day.
pub const RUNS_KEPT: usize = 120;
/// The most one automatic stop is credited with.
pub const SAVED_CAP: SignedDuration = SignedDuration::from_hours(24);
/// How the saved figure is estimated, stated with every answer that gives it.
pub const SAVED_RULE: &str = "an estimate: for each automatic stop (idle, schedule, runtime cap), the hours until the \
     notebook next started (or until now), at most 24 h per stop, at its type's on-demand price";

/// One finished run of a notebook's instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub start: Timestamp,
    pub end: Timestamp,
    pub instance_type: String,
    /// nbfleet stopped it on its own (idle, schedule, runtime cap).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic_stop: bool,
}

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
    /// Its runs, each at its type's price.
    pub compute_usd: Option<f64>,
    /// Its disk while it exists, running or stopped, at gp3's price.
    pub disk_usd: Option<f64>,
    /// The snapshot a delete kept, since it was taken (at most: priced at the full disk size).
    pub snapshot_usd: Option<f64>,
    /// All of it; `None` ("no price") when a part has none.
    pub cost_usd: Option<f64>,
    pub price_source: String,
}

/// What a notebook cost within a window, and what its automatic stops saved there. A part is
/// `None` ("no price") when something in it has no price: never a figure that leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spend {
    pub compute_usd: Option<f64>,
    pub disk_usd: Option<f64>,
    pub snapshot_usd: Option<f64>,
    pub saved_usd: Option<f64>,
}

impl Default for Spend {
    fn default() -> Self {
        Spend {
            compute_usd: Some(0.0),
            disk_usd: Some(0.0),
            snapshot_usd: Some(0.0),
            saved_usd: Some(0.0),
        }
    }
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? + b?)
}

impl Spend {
    /// Compute, disk and snapshot together, to the cent.
    pub fn total_usd(&self) -> Option<f64> {
        add(add(self.compute_usd, self.disk_usd), self.snapshot_usd).map(|t| (t * 100.0).round() / 100.0)
    }

    /// This and `other` together.
    pub fn plus(self, other: Spend) -> Spend {
        Spend {
            compute_usd: add(self.compute_usd, other.compute_usd),
            disk_usd: add(self.disk_usd, other.disk_usd),
            snapshot_usd: add(self.snapshot_usd, other.snapshot_usd),
            saved_usd: add(self.saved_usd, other.saved_usd),
        }
    }

    /// Rounded to cents, as answers show it.
    pub fn rounded(self) -> Spend {
        let r = |x: Option<f64>| x.map(|x| (x * 100.0).round() / 100.0);
        Spend {
            compute_usd: r(self.compute_usd),
            disk_usd: r(self.disk_usd),
            snapshot_usd: r(self.snapshot_usd),
            saved_usd: r(self.saved_usd),
        }
    }
}

/// How `GET /costs` groups spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Owner,
    Notebook,
}

/// The longest window `GET /costs` gives day by day.
pub const MAX_DAYS: i64 = 92;

/// Parses `GET /costs`'s query: `since` (`YYYY-MM-DD`, UTC midnight, or an RFC 3339 time;
/// default the first of this month, UTC) and `by` (`owner` or `notebook`, the default).
pub fn parse_costs_query(query: Option<&str>, now: Timestamp) -> crate::Result<(Timestamp, By)> {
    use crate::Error;
    let month_start = now
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_err(|e| Error::internal(e.to_string()))?
        .timestamp();
    let (mut since, mut by) = (month_start, By::Notebook);
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "since" => {
                since = v
                    .parse::<Timestamp>()
                    .ok()
                    .or_else(|| {
                        let day: jiff::civil::Date = v.parse().ok()?;
                        Some(day.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok()?.timestamp())
                    })
                    .ok_or_else(|| {
                        Error::bad_request("since", format!("{v:?} is not a date (2026-11-01) or a time"))
                    })?;
                if since > now {
                    return Err(Error::bad_request("since", "is in the future"));
                }
            }
            "by" => {
                by = match v {
                    "owner" => By::Owner,
                    "notebook" => By::Notebook,
                    _ => return Err(Error::bad_request("by", "must be owner or notebook")),
                }
            }
            other => return Err(Error::bad_request(other, "unknown parameter (give since, by)")),
        }
    }
    Ok((since, by))
}

/// Hours of `[from, to]` inside `[since, until]`.
fn overlap_hours(from: Timestamp, to: Timestamp, since: Timestamp, until: Timestamp) -> f64 {
    let (a, b) = (from.max(since), to.min(until));
    if b <= a {
        return 0.0;
    }
    b.duration_since(a).as_secs_f64() / 3600.0
}

impl Notebook {
    /// Records that EC2 says the instance runs from `now` (no-op if already counted).
    pub fn started_running(&mut self, now: Timestamp) {
        self.running_since.get_or_insert(now);
        // Whatever stops this run says anew whether it was automatic.
        if let Some(status) = &mut self.idle_status {
            status.stopped_automatically = false;
        }
    }

    /// Records that the instance stopped running at `now`: the run joins the ledger, with
    /// whether nbfleet stopped it on its own.
    pub fn stopped_running(&mut self, now: Timestamp) {
        if let Some(since) = self.running_since.take() {
            self.running_seconds += now.duration_since(since).as_secs().max(0) as u64;
            self.runs.push(Run {
                start: since,
                end: now,
                instance_type: self.instance_type.clone(),
                automatic_stop: self.idle_status.as_ref().is_some_and(|s| s.stopped_automatically),
            });
            self.runs.drain(..self.runs.len().saturating_sub(RUNS_KEPT));
        }
    }

    /// The runs, the current one included (ending `now`), each with its type.
    fn runs_to(&self, now: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp, &str)> {
        let current = self
            .running_since
            .map(|since| (since, now, self.instance_type.as_str()));
        self.runs
            .iter()
            .map(|r| (r.start, r.end, r.instance_type.as_str()))
            .chain(current)
    }

    /// What this notebook cost within `[since, until]`, and what its automatic stops saved
    /// there ([`SAVED_RULE`]).
    pub fn spend(&self, prices: &PriceTable, since: Timestamp, until: Timestamp) -> Spend {
        let mut s = Spend::default();
        let hourly = |t: &str| prices.usd_per_hour.get(t).copied();
        let charge = |part: &mut Option<f64>, quantity: f64, price: Option<f64>| {
            if quantity > 0.0 {
                *part = add(*part, price.map(|p| p * quantity));
            }
        };
        for (from, to, t) in self.runs_to(until) {
            charge(
                &mut s.compute_usd,
                overlap_hours(from, to, since, until),
                hourly(t),
            );
        }
        for (i, run) in self.runs.iter().enumerate().filter(|(_, r)| r.automatic_stop) {
            let next = self
                .runs
                .get(i + 1)
                .map(|r| r.start)
                .or(self.running_since)
                .unwrap_or(until);
            let credited = overlap_hours(run.end, next.min(run.end + SAVED_CAP), since, until);
            charge(&mut s.saved_usd, credited, hourly(&run.instance_type));
        }
        let gb_months = |from: Option<Timestamp>, to: Option<Timestamp>| {
            from.map_or(0.0, |f| {
                f64::from(self.volume_gb) * overlap_hours(f, to.unwrap_or(until), since, until)
                    / HOURS_PER_MONTH
            })
        };
        let disk = gb_months(self.disk_created_at, self.disk_deleted_at);
        charge(&mut s.disk_usd, disk, prices.gp3_usd_per_gb_month);
        if self.snapshot_id.is_some() {
            let kept = gb_months(self.snapshot_taken_at, None);
            charge(&mut s.snapshot_usd, kept, prices.snapshot_usd_per_gb_month);
        }
        s
    }

    /// The latest run (the current one, ending `now`, or the last that ended): its hours, and
    /// what they cost at its type's price (`None`: no price).
    pub fn last_run(&self, prices: &PriceTable, now: Timestamp) -> Option<(f64, Option<f64>)> {
        let (from, to, t) = self.runs_to(now).last()?;
        let hours = to.duration_since(from).as_secs_f64().max(0.0) / 3600.0;
        Some((hours, prices.usd_per_hour.get(t).map(|p| p * hours)))
    }

    /// Seconds run so far, the current run included.
    pub fn running_seconds_at(&self, now: Timestamp) -> u64 {
        let current = self
            .running_since
            .map_or(0, |s| now.duration_since(s).as_secs().max(0) as u64);
        self.running_seconds + current
    }

    /// What it has cost so far: its runs (those older than the kept ledger at today's type),
    /// its disk and its snapshot.
    pub fn cost(&self, prices: &PriceTable, now: Timestamp) -> Cost {
        let hours = self.running_seconds_at(now) as f64 / 3600.0;
        let price = prices.usd_per_hour.get(&self.instance_type).copied();
        let mut to_date = self.spend(prices, Timestamp::UNIX_EPOCH, now);
        let ledger: f64 = self
            .runs_to(now)
            .map(|(a, b, _)| b.duration_since(a).as_secs_f64() / 3600.0)
            .sum();
        let older = hours - ledger;
        if older > 1e-9 {
            to_date.compute_usd = add(to_date.compute_usd, price.map(|p| p * older));
        }
        let to_date = to_date.rounded();
        Cost {
            running_hours: (hours * 1000.0).round() / 1000.0,
            usd_per_hour: price,
            cost_usd: to_date.total_usd(),
            compute_usd: to_date.compute_usd,
            disk_usd: to_date.disk_usd,
            snapshot_usd: to_date.snapshot_usd,
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
    fn the_last_run_is_the_current_one_or_the_last_that_ended() {
        let prices = PriceTable::parse("g5.xlarge=2", "test").unwrap();
        let mut nb = sample(at(0));
        assert_eq!(nb.last_run(&prices, at(10)), None, "never ran");
        nb.instance_type = "g5.xlarge".into();
        nb.started_running(at(0));
        nb.stopped_running(at(3600));
        nb.started_running(at(7200));
        nb.stopped_running(at(7200 + 5400));
        assert_eq!(nb.last_run(&prices, at(99_999)), Some((1.5, Some(3.0))));
        nb.started_running(at(20_000));
        assert_eq!(nb.last_run(&prices, at(20_000 + 1800)), Some((0.5, Some(1.0))));
        nb.instance_type = "x9.huge".into();
        nb.stopped_running(at(20_000 + 3600));
        assert_eq!(nb.last_run(&prices, at(30_000)), Some((1.0, None)), "no price");
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

    fn hours(h: i64) -> Timestamp {
        at(h * 3600)
    }

    /// A g5.xlarge of 100 GB launched at hour 0 that ran 0–3, was stopped for idleness,
    /// started again at hour 5 and runs since.
    fn idle_stopped_then_started() -> Notebook {
        let mut nb = sample(at(0));
        nb.instance_type = "g5.xlarge".into();
        nb.volume_gb = 100;
        nb.disk_created_at = Some(hours(0));
        nb.started_running(hours(0));
        nb.idle_status = Some(crate::record::IdleStatus {
            stopped_automatically: true,
            ..Default::default()
        });
        nb.stopped_running(hours(3));
        nb.started_running(hours(5));
        nb
    }

    #[test]
    fn an_idle_stop_followed_by_a_start_two_hours_later_saved_two_hours() {
        let prices = PriceTable::bundled("us-east-1");
        let nb = idle_stopped_then_started();
        assert_eq!(nb.runs.len(), 1);
        assert!(nb.runs[0].automatic_stop);
        assert!(
            !nb.idle_status.as_ref().unwrap().stopped_automatically,
            "the start clears it"
        );
        let s = nb.spend(&prices, hours(0), hours(6)).rounded();
        assert_eq!(s.compute_usd, Some(4.02), "4 hours at $1.006");
        assert_eq!(s.saved_usd, Some(2.01), "2 hours at $1.006");
        // 100 GB for 6 hours of a 730-hour month at $0.08.
        assert_eq!(s.disk_usd, Some(0.07));
        assert_eq!(s.total_usd(), Some(4.09));
        // A window after the stop sees none of what it saved.
        assert_eq!(nb.spend(&prices, hours(5), hours(6)).saved_usd, Some(0.0));
    }

    #[test]
    fn a_stop_never_started_again_saves_at_most_a_day_and_a_stop_by_hand_saves_nothing() {
        let prices = PriceTable::bundled("us-east-1");
        let mut nb = idle_stopped_then_started();
        nb.idle_status = None;
        nb.stopped_running(hours(6)); // by hand
        let s = nb.spend(&prices, hours(0), hours(100)).rounded();
        assert_eq!(s.saved_usd, Some(2.01), "the hand stop adds nothing");
        let mut nb = idle_stopped_then_started();
        nb.running_since = None;
        nb.runs.truncate(1);
        let s = nb.spend(&prices, hours(0), hours(100)).rounded();
        assert_eq!(s.saved_usd, Some(24.14), "24 hours at $1.006, not 97");
    }

    #[test]
    fn a_stopped_disk_and_a_kept_snapshot_cost_by_the_gb_month() {
        let prices = PriceTable::bundled("us-east-1");
        let mut nb = sample(at(0));
        nb.volume_gb = 730;
        nb.disk_created_at = Some(hours(0));
        // Stopped all along: 730 GB for 10 hours is 10 GB-months.
        let c = nb.cost(&prices, hours(10));
        assert_eq!(
            (c.compute_usd, c.disk_usd, c.snapshot_usd),
            (Some(0.0), Some(0.8), Some(0.0))
        );
        assert_eq!(c.cost_usd, Some(0.8));
        // Deleted at hour 10 with a snapshot: the disk stops costing, the snapshot starts.
        nb.disk_deleted_at = Some(hours(10));
        nb.snapshot_id = Some("snap-0a1b2c3d".into());
        nb.snapshot_taken_at = Some(hours(10));
        let c = nb.cost(&prices, hours(30));
        assert_eq!(
            (c.disk_usd, c.snapshot_usd, c.cost_usd),
            (Some(0.8), Some(1.0), Some(1.8))
        );
    }

    #[test]
    fn a_part_without_a_price_is_no_price_never_a_smaller_total() {
        let mut nb = idle_stopped_then_started();
        let none = PriceTable::bundled("ap-south-2");
        let c = nb.cost(&none, hours(6));
        assert_eq!((c.compute_usd, c.disk_usd, c.cost_usd), (None, None, None));
        // Priced compute, unpriced storage: the total is no price too.
        let compute_only = PriceTable::parse("g5.xlarge=1.006", "x").unwrap();
        let c = nb.cost(&compute_only, hours(6));
        assert_eq!((c.compute_usd, c.disk_usd, c.cost_usd), (Some(4.02), None, None));
        // A run on a type without a price.
        nb.runs[0].instance_type = "x9.mega".into();
        assert_eq!(
            nb.spend(&PriceTable::bundled("us-east-1"), hours(0), hours(6))
                .compute_usd,
            None
        );
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
