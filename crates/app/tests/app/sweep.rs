//! The sweep against moto's EC2 (records in memory), with the Run Command calls moto lacks
//! filled by the test kit's `RunCommand` (moto's SendCommand never fails for a bad instance and
//! it has no ListCommandInvocations at all). The mocks answer with what a probe prints.

use aws_smithy_mocks::Rule;
use nbfleet_app::sweep::{Timing, sweep};
use nbfleet_core::ports::Deps;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Expect, Notebook, State};
use nbfleet_local::setup;
use nbfleet_testkit::{Env, RunCommand};
use std::sync::Arc;
use std::time::Duration;

const IDLE: &str = r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#;
const BUSY: &str =
    r#"{"nbfleet":"probe","k":1,"kb":1,"ka":"2026-11-26T10:00:00Z","ta":null,"c":0,"sa":null,"g":[]}"#;

struct Fleet {
    deps: Deps,
    send: Rule,
    list: Rule,
    env: Env,
}

/// `n` Ready notebooks on real moto instances (records in memory); Run Command mocked,
/// refusing any batch holding `bad`, and every probe printing `output`.
async fn fleet(n: usize, bad: Option<usize>, output: &'static str) -> Fleet {
    let env = Env::in_memory().await;
    let cfg = env.deps.cfg.clone();
    let ids = setup::run_seeded(&env.aws.ec2, n as i32, Some("fleet"))
        .await
        .unwrap();
    let now = env.now();
    for (i, id) in ids.iter().enumerate() {
        let spec = parse_launch(format!(r#"{{"name":"nb-{i:03}"}}"#).as_bytes(), &cfg).unwrap();
        let mut nb = Notebook::new(
            &spec,
            &nbfleet_core::identity::Principal::named("alice"),
            1,
            idle_policy(&spec, &cfg),
            now,
        );
        nb.state = State::Ready;
        nb.instance_id = Some(id.clone());
        nb.running_since = Some(now);
        env.deps.store.put(&nb, Expect::Absent).await.unwrap();
    }
    let mut run = RunCommand::succeeding(move |_| output.to_string());
    if let Some(b) = bad {
        run = run.refusing(&ids[b]);
    }
    let (commands, rules) = run.build();
    let mut deps = env.deps.clone();
    deps.commands = Arc::new(commands);
    Fleet {
        deps,
        send: rules.send,
        list: rules.list,
        env,
    }
}

fn timing() -> Timing {
    Timing {
        collect_for: Duration::from_secs(5),
        poll_every: Duration::from_millis(10),
        ..Timing::default()
    }
}

#[tokio::test]
async fn one_hundred_twenty_notebooks_take_three_send_commands() {
    let f = fleet(120, None, BUSY).await;
    let report = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(report.probed, 120);
    assert_eq!(f.send.num_calls(), 3, "50 + 50 + 20");
    assert_eq!(report.commands_sent, 3);
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
    assert!(
        report.stopped.is_empty() && report.warned.is_empty(),
        "busy kernels keep them running"
    );
    let nb = f.deps.store.get("nb-000").await.unwrap().unwrap();
    let status = nb.idle_status.unwrap();
    assert!(
        status.reason.contains("1 of 1 kernels are busy"),
        "{}",
        status.reason
    );
    assert_eq!(f.list.num_calls(), 3, "each command's results read once");
}

#[tokio::test]
async fn one_failing_instance_does_not_block_the_other_119() {
    let f = fleet(120, Some(77), BUSY).await;
    let report = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(report.unknown.len(), 1, "{:?}", report.unknown);
    assert!(
        report.unknown[0].starts_with("nb-077: the probe could not be sent"),
        "{:?}",
        report.unknown
    );
    let probed_ok = f.deps.store.list_by_state(State::Ready).await.unwrap();
    let active = probed_ok
        .iter()
        .filter(|nb| {
            nb.idle_status
                .as_ref()
                .is_some_and(|s| s.verdict == nbfleet_core::idle::Verdict::Active)
        })
        .count();
    assert_eq!(active, 119);
    let bad = f
        .deps
        .store
        .get("nb-077")
        .await
        .unwrap()
        .unwrap()
        .idle_status
        .unwrap();
    assert_eq!(
        (bad.verdict, bad.unknowns),
        (nbfleet_core::idle::Verdict::Unknown, 1)
    );
}

#[tokio::test]
async fn a_duplicate_schedule_event_changes_nothing() {
    let f = fleet(60, None, BUSY).await;
    sweep(&f.deps, timing()).await.unwrap();
    let versions = || async {
        let all = f.deps.store.list().await.unwrap();
        all.iter().map(|nb| nb.version).collect::<Vec<u64>>()
    };
    let before = versions().await;
    sweep(&f.deps, timing()).await.unwrap();
    let after = versions().await;
    assert_eq!(
        before, after,
        "a second round with the same answers wrote records"
    );
}

#[tokio::test]
async fn a_window_opening_starts_only_the_notebooks_stopped_before_it() {
    let f = fleet(2, None, BUSY).await;
    let now = jiff::Timestamp::now();
    let mut names = Vec::new();
    for (i, mut nb) in f.deps.store.list().await.unwrap().into_iter().enumerate() {
        let expect = nb.expect();
        f.deps
            .compute
            .stop(nb.instance_id.as_deref().unwrap())
            .await
            .unwrap();
        nb.state = State::Stopped;
        nb.version += 1;
        // The first stopped two days ago, before today's window opened; the second just now,
        // inside it (by hand, say), so it stays stopped.
        nb.state_since = if i == 0 {
            now - jiff::SignedDuration::from_hours(48)
        } else {
            now
        };
        nb.idle.schedule = Some(
            nbfleet_core::schedule::Schedule::parse(&serde_json::json!({"tz": "UTC", "start_at_open": true,
                "windows": [{"days": "daily", "from": "00:00", "to": "24:00"}]}))
            .unwrap(),
        );
        f.deps.store.put(&nb, expect).await.unwrap();
        names.push(nb.name);
    }
    let report = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(report.started, vec![names[0].clone()]);
    let first = f.deps.store.require(&names[0]).await.unwrap();
    assert_eq!(first.state, State::Starting);
    let history = f.deps.store.history(&names[0]).await.unwrap();
    assert!(
        history.iter().any(|h| h
            .to_string()
            .contains("its schedule (daily 00:00-24:00 UTC) opened")),
        "{history:?}"
    );
    assert_eq!(
        f.deps.store.require(&names[1]).await.unwrap().state,
        State::Stopped
    );
    let again = sweep(&f.deps, timing()).await.unwrap();
    assert!(
        again.started.is_empty(),
        "a second round started {:?}",
        again.started
    );
}

/// Nobody hears it, but the stop goes through.
struct DeadWebhook;

#[async_trait::async_trait]
impl nbfleet_core::ports::Notifier for DeadWebhook {
    async fn notify(
        &self,
        _: &nbfleet_core::ports::Notice,
        _: &nbfleet_core::blocks::Facts,
    ) -> nbfleet_core::Result<()> {
        Err(nbfleet_core::Error::Unavailable(
            "Slack webhook answered 500".into(),
        ))
    }
}

#[tokio::test]
async fn a_failing_webhook_never_blocks_an_idle_stop() {
    let mut f = fleet(1, None, IDLE).await;
    f.deps.notifier = Arc::new(DeadWebhook);
    let mut nb = f.deps.store.list().await.unwrap().remove(0);
    let expect = nb.expect();
    let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3);
    nb.running_since = Some(long_ago);
    nb.version += 1;
    f.deps.store.put(&nb, expect).await.unwrap();
    // First round warns (the notice fails), a round after the warning's lead stops.
    let first = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(first.warned, vec![nb.name.clone()]);
    let mut warned = f.deps.store.require(&nb.name).await.unwrap();
    let expect = warned.expect();
    let status = warned.idle_status.as_mut().unwrap();
    status.warned_stop_at = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1));
    warned.version += 1;
    f.deps.store.put(&warned, expect).await.unwrap();
    let second = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(second.stopped, vec![nb.name.clone()]);
    assert_eq!(
        f.deps.store.require(&nb.name).await.unwrap().state,
        State::Stopping
    );
}

#[tokio::test]
async fn an_idle_stop_runs_the_pre_stop_hook_first_and_leaves_the_instance_running_for_it() {
    let f = fleet(1, None, IDLE).await;
    let mut nb = f.deps.store.list().await.unwrap().remove(0);
    let expect = nb.expect();
    nb.running_since = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3));
    nb.hooks.pre_stop = Some("git -C ~/work commit -am wip".into());
    nb.version += 1;
    f.deps.store.put(&nb, expect).await.unwrap();
    let first = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(first.warned, vec![nb.name.clone()]);
    // GET says when it was checked and last active, as the CLI and Slack show it.
    let view = serde_json::to_value(nbfleet_app::read::get(&f.deps, &nb.name).await.unwrap()).unwrap();
    let status = &view["notebook"]["idle_status"];
    assert!(status["checked_at"].is_string(), "{view}");
    assert!(status["last_active_at"].is_string(), "{view}");
    let mut warned = f.deps.store.require(&nb.name).await.unwrap();
    let expect = warned.expect();
    warned.idle_status.as_mut().unwrap().warned_stop_at =
        Some(jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1));
    warned.version += 1;
    f.deps.store.put(&warned, expect).await.unwrap();
    let second = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(second.stopped, vec![nb.name.clone()]);
    let stopping = f.deps.store.require(&nb.name).await.unwrap();
    assert!(stopping.awaits_pre_stop_hook(), "{stopping:?}");
    let id = stopping.instance_id.as_deref().unwrap();
    assert_eq!(f.env.ec2_state(id).await, "running", "the stop follows the hook");
}

#[tokio::test]
async fn one_stuck_launch_and_one_unstoppable_instance_never_stop_idle_enforcement_for_the_fleet() {
    // 50 idle Ready notebooks (ten of them warned before, their stop time past), one more whose
    // StopInstances fails, and a Launching record whose agent never registers.
    let f = fleet(52, Some(51), IDLE).await;
    let now = f.env.now();
    let long_ago = now - jiff::SignedDuration::from_hours(3);
    let records = f.deps.store.list().await.unwrap();
    let id_of = |name: &str| {
        let nb = records.iter().find(|nb| nb.name == name).unwrap();
        nb.instance_id.clone().unwrap()
    };
    let unstoppable = id_of("nb-050");
    for (i, nb) in records.iter().enumerate() {
        let mut next = nb.touched(now);
        next.running_since = Some(long_ago);
        if nb.name == "nb-051" {
            (next.state, next.state_since) = (State::Launching, now);
        } else if i < 10 || nb.name == "nb-050" {
            next.idle_status = Some(nbfleet_core::record::IdleStatus {
                verdict: nbfleet_core::idle::Verdict::Idle,
                reason: "idle".into(),
                planned_stop: None,
                warned_stop_at: Some(now - jiff::SignedDuration::from_mins(1)),
                ..Default::default()
            });
        }
        f.deps.store.put(&next, nb.expect()).await.unwrap();
    }
    f.env.compute.hooks.before("stop", move |s| {
        let refused = matches!(&s, nbfleet_testkit::hooks::Subject::Named(id) if *id == unstoppable);
        async move {
            match refused {
                true => Err(nbfleet_core::Error::Throttled("RequestLimitExceeded".into())),
                false => Ok(()),
            }
        }
    });
    let timing = Timing {
        reconcile_for: Duration::from_secs(5),
        deadlines_for: Duration::from_secs(5),
        collect_for: Duration::from_secs(5),
        poll_every: Duration::from_millis(10),
        act_for: Duration::from_secs(10),
    };
    let started = std::time::Instant::now();
    let report = sweep(&f.deps, timing).await.unwrap();
    let took = started.elapsed();
    assert!(took < timing.total(), "the round took {took:?}");

    let mut acted: Vec<String> = [report.warned.clone(), report.stopped.clone()].concat();
    acted.sort();
    let expected: Vec<String> = (0..50).map(|i| format!("nb-{i:03}")).collect();
    assert_eq!(
        acted, expected,
        "every other idle notebook is warned or stopped: {report:?}"
    );
    assert_eq!(report.stopped.len(), 10, "{report:?}");
    let failed = report.failed.join("\n");
    assert_eq!(report.failed.len(), 2, "{failed}");
    assert!(
        failed.contains("nb-050: ") && failed.contains("RequestLimitExceeded"),
        "{failed}"
    );
    assert!(
        failed.contains("nb-051: ") && failed.contains("is not online"),
        "the sweep tried the agent once and did not wait for it: {failed}"
    );
    // Two probe batches (50 + 1) and one try at the stuck launch's bootstrap.
    assert_eq!(f.send.num_calls(), 3);
    // The claim was written before the stop: the unstoppable one is left Stopping, for its
    // deadline to ask EC2 again; the stuck launch is left to its deadline.
    assert_eq!(
        f.deps.store.require("nb-050").await.unwrap().state,
        State::Stopping
    );
    assert_eq!(
        f.deps.store.require("nb-051").await.unwrap().state,
        State::Launching
    );
}

#[tokio::test]
async fn a_warning_written_but_never_told_is_told_by_the_next_round_once() {
    let f = fleet(1, None, IDLE).await;
    let nb = f.deps.store.list().await.unwrap().remove(0);
    let now = f.env.now();
    let stop_at = now + jiff::SignedDuration::from_mins(8);
    // As the round that warned left it when it was stopped between its write and its notice.
    let mut warned = nb.touched(now);
    warned.running_since = Some(now - jiff::SignedDuration::from_hours(3));
    warned.idle_status = Some(nbfleet_core::record::IdleStatus {
        verdict: nbfleet_core::idle::Verdict::Idle,
        reason: "idle for 170 minutes".into(),
        planned_stop: Some(stop_at),
        warned_stop_at: Some(stop_at),
        warning_untold: true,
        ..Default::default()
    });
    f.deps.store.put(&warned, nb.expect()).await.unwrap();
    let told = || {
        f.env
            .heard
            .notices()
            .into_iter()
            .filter(|n| matches!(n, nbfleet_core::ports::Notice::StoppingSoon { .. }))
            .count()
    };
    let first = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(told(), 1, "{first:?}");
    let after = f.deps.store.require(&nb.name).await.unwrap();
    let status = after.idle_status.unwrap();
    assert_eq!(
        (status.warned_stop_at, status.warning_untold),
        (Some(stop_at), false)
    );
    sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(told(), 1, "told once");
}

#[tokio::test]
async fn a_round_that_warns_tells_and_records_that_it_told() {
    let f = fleet(1, None, IDLE).await;
    let nb = f.deps.store.list().await.unwrap().remove(0);
    let mut old = nb.touched(f.env.now());
    old.running_since = Some(f.env.now() - jiff::SignedDuration::from_hours(3));
    f.deps.store.put(&old, nb.expect()).await.unwrap();
    let round = sweep(&f.deps, timing()).await.unwrap();
    assert_eq!(round.warned, vec![nb.name.clone()]);
    assert_eq!(f.env.heard.notices().len(), 1);
    let status = f.deps.store.require(&nb.name).await.unwrap().idle_status.unwrap();
    assert!(
        status.warned_stop_at.is_some() && !status.warning_untold,
        "{status:?}"
    );
}

#[tokio::test]
async fn a_probe_that_finishes_on_a_later_poll_is_read_not_unknown() {
    let env = Env::in_memory().await;
    let cfg = env.deps.cfg.clone();
    let ids = setup::run_seeded(&env.aws.ec2, 3, Some("slow")).await.unwrap();
    let now = env.now();
    for (i, id) in ids.iter().enumerate() {
        let spec = parse_launch(format!(r#"{{"name":"slow-{i}"}}"#).as_bytes(), &cfg).unwrap();
        let mut nb = Notebook::new(
            &spec,
            &nbfleet_core::identity::Principal::named("alice"),
            1,
            idle_policy(&spec, &cfg),
            now,
        );
        (nb.state, nb.instance_id, nb.running_since) = (State::Ready, Some(id.clone()), Some(now));
        env.deps.store.put(&nb, Expect::Absent).await.unwrap();
    }
    // SSM says InProgress twice before the probes are done, as it does while they run.
    let (commands, rules) = RunCommand::succeeding(|_| BUSY.to_string())
        .finishing_after(2)
        .build();
    let mut deps = env.deps.clone();
    deps.commands = Arc::new(commands);
    let report = sweep(&deps, timing()).await.unwrap();
    assert!(report.unknown.is_empty(), "{report:?}");
    assert_eq!(rules.commands.num_calls(), 3, "listed until the probes ended");
    assert_eq!(rules.list.num_calls(), 1, "the results read once, when ended");
    let nb = deps.store.require("slow-0").await.unwrap();
    assert_eq!(
        nb.idle_status.unwrap().verdict,
        nbfleet_core::idle::Verdict::Active
    );
}

#[tokio::test]
async fn a_first_round_over_many_notebooks_acts_on_them_at_once_within_its_budget() {
    let f = fleet(48, None, IDLE).await;
    let long_ago = f.env.now() - jiff::SignedDuration::from_hours(3);
    for nb in f.deps.store.list().await.unwrap() {
        let mut old = nb.touched(f.env.now());
        old.running_since = Some(long_ago);
        f.deps.store.put(&old, nb.expect()).await.unwrap();
    }
    // Every record write takes 50 ms (a slow DynamoDB): one notebook at a time, 48 warnings of
    // three writes each would take 7 s.
    f.env.store.hooks.before("put", |_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(())
    });
    let timing = Timing {
        act_for: Duration::from_secs(3),
        ..timing()
    };
    let report = sweep(&f.deps, timing).await.unwrap();
    assert_eq!(report.warned.len(), 48, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
}
