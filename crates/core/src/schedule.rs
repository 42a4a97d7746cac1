//! Weekly schedules: a notebook may run only inside its windows, e.g. Mon–Fri 08:00–20:00 in
//! Europe/Paris. Outside them the sweep stops it (after the usual warning).
//!
//! Zones come from jiff's bundled tz database, always: Lambda's provided.al2023 may have no
//! `/usr/share/zoneinfo`, and a schedule must not change meaning with the machine. Local times
//! are resolved DST-correctly, as RFC 5545 does: a window that ends in the skipped hour is moved
//! forward by the jump (02:30 becomes 03:30), and one that ends in the repeated hour ends at its
//! first occurrence.
//!
//! With `start_at_open`, a notebook stopped before a window opened is started by the sweep
//! once it is inside the window. One stopped by hand inside the window stays stopped.

use crate::error::{Error, Result};
use jiff::civil::{Time, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

static ZONES: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// As the API takes it and the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// IANA zone, e.g. `Europe/Paris`.
    pub tz: String,
    pub windows: Vec<Window>,
    /// Start the notebook when a window opens (the sweep does it on its next round).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_at_open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// `Mon-Fri`, `Sat,Sun`, `Mon,Wed,Fri` or `daily`.
    pub days: String,
    /// `HH:MM`, local time.
    pub from: String,
    /// `HH:MM` after `from` (`24:00` for the end of the day).
    pub to: String,
}

const DAYS: [(&str, Weekday); 7] = [
    ("Mon", Weekday::Monday),
    ("Tue", Weekday::Tuesday),
    ("Wed", Weekday::Wednesday),
    ("Thu", Weekday::Thursday),
    ("Fri", Weekday::Friday),
    ("Sat", Weekday::Saturday),
    ("Sun", Weekday::Sunday),
];

fn day(s: &str) -> Option<usize> {
    DAYS.iter().position(|(n, _)| n.eq_ignore_ascii_case(s.trim()))
}

/// The weekdays a `days` field names, Monday first.
fn parse_days(spec: &str) -> Option<[bool; 7]> {
    let mut on = [false; 7];
    if spec.eq_ignore_ascii_case("daily") {
        return Some([true; 7]);
    }
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return None;
                }
                on[a..=b].iter_mut().for_each(|d| *d = true);
            }
            None => on[day(part)?] = true,
        }
    }
    Some(on)
}

/// Minutes since local midnight for `HH:MM` (24:00 allowed).
fn parse_minutes(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let ok = h.to_string().len() <= 2 && m < 60 && (h < 24 || (h == 24 && m == 0));
    ok.then_some(h * 60 + m)
}

struct Compiled {
    tz: TimeZone,
    windows: Vec<([bool; 7], i64, i64)>,
}

impl Schedule {
    /// Parses the `schedule` field of a launch request; every refusal names the field.
    pub fn parse(value: &serde_json::Value) -> Result<Schedule> {
        let s: Schedule = serde_json::from_value(value.clone()).map_err(|e| {
            Error::bad_request(
                "schedule",
                format!("must be {{\"tz\", \"windows\": [{{\"days\", \"from\", \"to\"}}]}}: {e}"),
            )
        })?;
        s.compile()?;
        Ok(s)
    }

    fn compile(&self) -> Result<Compiled> {
        let tz = ZONES.get(&self.tz).map_err(|_| {
            Error::bad_request("schedule.tz", format!("{:?} is not an IANA time zone", self.tz))
        })?;
        if self.windows.is_empty() || self.windows.len() > 14 {
            return Err(Error::bad_request("schedule.windows", "give 1 to 14 windows"));
        }
        let mut windows = Vec::new();
        for (i, w) in self.windows.iter().enumerate() {
            let field = |f: &str| format!("schedule.windows[{i}].{f}");
            let days = parse_days(&w.days).ok_or_else(|| {
                Error::bad_request(field("days"), "like \"Mon-Fri\", \"Sat,Sun\" or \"daily\"")
            })?;
            let from =
                parse_minutes(&w.from).ok_or_else(|| Error::bad_request(field("from"), "must be HH:MM"))?;
            let to = parse_minutes(&w.to).ok_or_else(|| Error::bad_request(field("to"), "must be HH:MM"))?;
            if to <= from {
                return Err(Error::bad_request(
                    field("to"),
                    "must be after `from` (split overnight windows in two)",
                ));
            }
            windows.push((days, from, to));
        }
        Ok(Compiled { tz, windows })
    }

    /// If `at` falls inside a window: when that window closes. `None`: outside every window.
    pub fn closes_at(&self, at: Timestamp) -> Option<Timestamp> {
        self.containing(at).into_iter().map(|(_, to)| to).max()
    }

    /// If `at` falls inside a window: when that window opened. `None`: outside every window.
    pub fn opened_at(&self, at: Timestamp) -> Option<Timestamp> {
        self.containing(at).into_iter().map(|(from, _)| from).min()
    }

    /// The (opening, closing) instants of the windows that contain `at`.
    fn containing(&self, at: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let Ok(c) = self.compile() else {
            return Vec::new();
        };
        let local = at.to_zoned_datetime(c.tz.clone());
        let weekday = local.weekday().to_monday_zero_offset() as usize;
        let now = i64::from(local.hour()) * 60 + i64::from(local.minute());
        let midnight = local.date().to_datetime(Time::midnight());
        // In a gap or a fold, resolved as RFC 5545 does ("compatible").
        let instant = |m: i64| {
            c.tz.to_ambiguous_zoned_datetime(midnight + SignedDuration::from_mins(m))
                .compatible()
                .ok()
                .map(|z| z.timestamp())
        };
        c.windows
            .iter()
            .filter(|(days, from, to)| days[weekday] && (*from..*to).contains(&now))
            .filter_map(|(_, from, to)| Some((instant(*from)?, instant(*to)?)))
            .collect()
    }

    /// A short description for reasons: `Mon-Fri 08:00-20:00 Europe/Paris`.
    pub fn describe(&self) -> String {
        let w: Vec<String> = self
            .windows
            .iter()
            .map(|w| format!("{} {}-{}", w.days, w.from, w.to))
            .collect();
        format!("{} {}", w.join(", "), self.tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paris(days: &str, from: &str, to: &str) -> Schedule {
        Schedule::parse(&json!({"tz": "Europe/Paris", "windows": [{"days": days, "from": from, "to": to}]}))
            .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn office_hours_close_at_20_00_paris_time_on_both_sides_of_each_dst_change() {
        let s = paris("Mon-Fri", "08:00", "20:00");
        // Friday before spring forward (UTC+1), Monday after (UTC+2).
        assert_eq!(
            s.closes_at(ts("2026-03-27T07:30:00Z")),
            Some(ts("2026-03-27T19:00:00Z"))
        );
        assert_eq!(
            s.closes_at(ts("2026-03-30T06:30:00Z")),
            Some(ts("2026-03-30T18:00:00Z"))
        );
        // Friday before fall back (UTC+2), Monday after (UTC+1).
        assert_eq!(
            s.closes_at(ts("2026-10-23T06:30:00Z")),
            Some(ts("2026-10-23T18:00:00Z"))
        );
        assert_eq!(
            s.closes_at(ts("2026-10-26T07:30:00Z")),
            Some(ts("2026-10-26T19:00:00Z"))
        );
        // 07:30 local on Monday is before the window; Saturday is outside it.
        assert_eq!(s.closes_at(ts("2026-03-30T05:30:00Z")), None);
        assert_eq!(s.closes_at(ts("2026-03-28T12:00:00Z")), None);
    }

    #[test]
    fn a_window_ending_in_the_skipped_hour_moves_forward_by_the_jump() {
        // 2026-03-29: 02:00 local jumps to 03:00. 01:30Z is 03:30+02:00.
        let s = paris("Sun", "00:00", "02:30");
        assert_eq!(
            s.closes_at(ts("2026-03-29T00:30:00Z")),
            Some(ts("2026-03-29T01:30:00Z"))
        );
    }

    #[test]
    fn a_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence() {
        // 2026-10-25: 02:30 local happens at 00:30Z (+02:00) and again at 01:30Z (+01:00).
        let s = paris("Sun", "00:00", "02:30");
        assert_eq!(
            s.closes_at(ts("2026-10-25T00:10:00Z")),
            Some(ts("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn a_window_knows_when_it_opened_across_dst() {
        let s = paris("Mon-Fri", "08:00", "20:00");
        // Monday after spring forward: 08:00 local is 06:00Z.
        assert_eq!(
            s.opened_at(ts("2026-03-30T06:30:00Z")),
            Some(ts("2026-03-30T06:00:00Z"))
        );
        assert_eq!(s.opened_at(ts("2026-03-30T05:59:00Z")), None);
        assert_eq!(s.opened_at(ts("2026-03-28T12:00:00Z")), None);
    }

    #[test]
    fn start_at_open_is_off_unless_asked_and_round_trips() {
        assert!(!paris("daily", "08:00", "09:00").start_at_open);
        let s = Schedule::parse(&json!({"tz": "UTC", "start_at_open": true,
            "windows": [{"days": "daily", "from": "08:00", "to": "09:00"}]}))
        .unwrap();
        assert!(s.start_at_open);
        let back: Schedule = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn zones_resolve_through_the_bundled_database() {
        assert!(TimeZoneDatabase::bundled().get("Europe/Paris").is_ok());
        let s = Schedule::parse(
            &json!({"tz": "Asia/Kolkata", "windows": [{"days": "daily", "from": "09:00", "to": "24:00"}]}),
        );
        assert_eq!(
            s.unwrap().closes_at(ts("2026-06-01T10:00:00Z")),
            Some(ts("2026-06-01T18:30:00Z"))
        );
    }

    #[test]
    fn bad_schedules_are_refused_by_field() {
        let field = |v: serde_json::Value| match Schedule::parse(&v) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let w = |days: &str, from: &str, to: &str| json!({"tz": "Europe/Paris", "windows": [{"days": days, "from": from, "to": to}]});
        assert_eq!(
            field(
                json!({"tz": "Mars/Olympus", "windows": [{"days": "daily", "from": "08:00", "to": "09:00"}]})
            ),
            "schedule.tz"
        );
        assert_eq!(
            field(w("Mon-Funday", "08:00", "09:00")),
            "schedule.windows[0].days"
        );
        assert_eq!(field(w("Fri-Mon", "08:00", "09:00")), "schedule.windows[0].days");
        assert_eq!(field(w("Mon", "8am", "09:00")), "schedule.windows[0].from");
        assert_eq!(field(w("Mon", "22:00", "06:00")), "schedule.windows[0].to");
        assert_eq!(
            field(json!({"tz": "Europe/Paris", "windows": []})),
            "schedule.windows"
        );
        assert_eq!(field(json!("weekdays")), "schedule");
    }

    #[test]
    fn a_schedule_describes_itself() {
        assert_eq!(
            paris("Mon-Fri", "08:00", "20:00").describe(),
            "Mon-Fri 08:00-20:00 Europe/Paris"
        );
    }
}
