//! Forgotten things, at most once an hour (the sweep calls [`round`]): a notebook stopped for
//! long gets a weekly notice with what its disk costs a month, and, where the operator turned it
//! on, is deleted with a snapshot at least a week after its first notice; an nbfleet snapshot
//! older than the retention is marked (`nbfleet:delete-after`, a week on), its owner told, and
//! deleted once that date has passed. Every rule tells before it acts.

use crate::lifecycle;
use jiff::{SignedDuration, Timestamp};
use nbfleet_core::identity::Principal;
use nbfleet_core::ports::{Deps, Notice, tell};
use nbfleet_core::{Notebook, Result, State};

/// The time between a notice and the act it announces, and between two notices.
pub const NOTICE_AHEAD: SignedDuration = SignedDuration::from_hours(24 * 7);

fn days(n: u32) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(n))
}

/// Who the cleanup acts as: the operator's rules, with an admin's reach.
fn cleanup() -> Principal {
    Principal {
        id: "nbfleet-cleanup".into(),
        name: "nbfleet (cleanup rules)".into(),
        admin: true,
    }
}

/// One pass over `stopped` (the Stopped records) and nbfleet's snapshots, at most once an hour;
/// answers what it did, one line each.
pub async fn round(deps: &Deps, stopped: &[Notebook], now: Timestamp) -> Result<Vec<String>> {
    let c = deps.cfg.cleanup;
    // Nothing that could be due: not even the hour's mark is written (the usual round).
    let long_stopped_now = c.stopped_notice_days > 0
        && stopped
            .iter()
            .any(|nb| now.duration_since(nb.state_since) >= days(c.stopped_notice_days));
    if !long_stopped_now && c.snapshot_retention_days == 0 {
        return Ok(Vec::new());
    }
    let hour = now.strftime("cleanup-round/%Y-%m-%dT%H").to_string();
    if !deps
        .store
        .first_time(&hour, now + SignedDuration::from_hours(2))
        .await?
    {
        return Ok(Vec::new());
    }
    let mut done = Vec::new();
    if c.stopped_notice_days > 0 {
        for nb in stopped.iter().filter(|nb| nb.state == State::Stopped) {
            match long_stopped(deps, nb, now).await {
                Ok(Some(what)) => done.push(what),
                Ok(None) => {}
                Err(e) => done.push(format!("{}: {e}", nb.name)),
            }
        }
    }
    if c.snapshot_retention_days > 0 {
        done.extend(old_snapshots(deps, now).await?);
    }
    Ok(done)
}

/// A notebook stopped since `state_since`: noticed weekly from `StoppedNoticeDays`, deleted
/// from `DeleteStoppedAfterDays` once its first notice is a week old.
async fn long_stopped(deps: &Deps, nb: &Notebook, now: Timestamp) -> Result<Option<String>> {
    let c = deps.cfg.cleanup;
    let stopped_for = now.duration_since(nb.state_since);
    if stopped_for < days(c.stopped_notice_days) {
        return Ok(None);
    }
    // A notice from an earlier stop says nothing about this one.
    let noticed = nb.stopped_notice_at.filter(|at| *at >= nb.state_since);
    let delete_at = (c.delete_stopped_after_days > 0).then(|| {
        let due = nb.state_since + days(c.delete_stopped_after_days);
        due.max(noticed.map_or(now + NOTICE_AHEAD, |n| n + NOTICE_AHEAD))
    });
    if let (Some(at), Some(_)) = (delete_at, noticed)
        && at <= now
    {
        lifecycle::delete(deps, &cleanup(), &nb.name, true).await?;
        let days_stopped = stopped_for.as_hours() / 24;
        let entry =
            serde_json::json!({"action": "cleanup_delete", "reason": format!("stopped {days_stopped} days")});
        if let Err(e) = deps.store.append_history(&nb.name, now, &entry).await {
            tracing::warn!(notebook = %nb.name, error = %e, "the cleanup is not in the history");
        }
        let detail = format!(
            "was deleted after {days_stopped} days stopped (the operator's rule); its disk is kept as a snapshot: \
             `nbfleet up {} --restore` brings it back",
            nb.name
        );
        tell(
            deps,
            Notice::LongStopped {
                name: nb.name.clone(),
                detail,
            },
        )
        .await;
        return Ok(Some(format!(
            "{}: deleted after {days_stopped} days stopped",
            nb.name
        )));
    }
    if noticed.is_some_and(|n| now.duration_since(n) < NOTICE_AHEAD) {
        return Ok(None);
    }
    let monthly = deps.cfg.prices.gp3_usd_per_gb_month.map_or_else(
        || "an unknown amount (no price)".into(),
        |p| format!("${:.2}", p * f64::from(nb.volume_gb)),
    );
    let mut detail = format!(
        "has been stopped for {} days; its {} GB disk costs {monthly} a month while it is kept. Start it, or \
         delete it (`nbfleet rm {}` keeps a snapshot, at a lower price)",
        stopped_for.as_hours() / 24,
        nb.volume_gb,
        nb.name
    );
    if let Some(at) = delete_at {
        detail.push_str(&format!(
            "; nbfleet deletes it, with a snapshot, from {} unless it is started",
            at.strftime("%Y-%m-%d")
        ));
    }
    let mut next = nb.touched(now);
    next.stopped_notice_at = Some(now);
    deps.store.put(&next, nb.expect()).await?;
    tell(
        deps,
        Notice::LongStopped {
            name: nb.name.clone(),
            detail,
        },
    )
    .await;
    Ok(Some(format!("{}: told it is stopped for long", nb.name)))
}

/// nbfleet snapshots past the retention: marked and told first, deleted a week later.
async fn old_snapshots(deps: &Deps, now: Timestamp) -> Result<Vec<String>> {
    let keep = days(deps.cfg.cleanup.snapshot_retention_days);
    let mut done = Vec::new();
    for s in deps.compute.list_snapshots().await? {
        let (Some(created), true) = (s.created, s.nbfleet) else {
            continue;
        };
        if now.duration_since(created) < keep {
            continue;
        }
        let name = s.notebook.clone().unwrap_or_default();
        match s.delete_after {
            None => {
                let at = now + NOTICE_AHEAD;
                deps.compute.mark_snapshot(&s.id, at).await?;
                let detail = format!(
                    "{} (taken {}) is older than the {}-day retention: nbfleet deletes it from {}. \
                     `nbfleet up NAME --restore {}` before then keeps its files in a new notebook",
                    s.id,
                    created.strftime("%Y-%m-%d"),
                    deps.cfg.cleanup.snapshot_retention_days,
                    at.strftime("%Y-%m-%d"),
                    s.id
                );
                tell(
                    deps,
                    Notice::SnapshotRetention {
                        name: name.clone(),
                        detail,
                    },
                )
                .await;
                done.push(format!("{}: marked for deletion", s.id));
            }
            Some(at) if at <= now => {
                deps.compute.delete_snapshot(&s.id).await?;
                crate::snapshots::forget(deps, &name, &s.id).await;
                let detail = format!("{} was deleted: it was older than the retention", s.id);
                tell(deps, Notice::SnapshotRetention { name, detail }).await;
                done.push(format!("{}: deleted", s.id));
            }
            Some(_) => {}
        }
    }
    Ok(done)
}
