//! `POST /notebooks/{name}/check`: the idle probe on demand, judged by the sweep's policy, on
//! moto's EC2 (records in memory) with the Run Command calls moto lacks from the test kit's
//! `RunCommand`. A check only tells: it writes nothing and stops nothing.

use nbfleet_app::check::check;
use nbfleet_core::identity::Principal;
use nbfleet_core::idle::{Action, Verdict};
use nbfleet_core::ports::Deps;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Error, Expect, Notebook, State};
use nbfleet_local::setup;
use nbfleet_testkit::{Env, RunCommand};
use std::sync::Arc;
use std::time::Duration;

const IDLE: &str = r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#;
const BUSY: &str =
    r#"{"nbfleet":"probe","k":1,"kb":1,"ka":"2026-11-26T10:00:00Z","ta":null,"c":0,"sa":null,"g":[]}"#;
const WAIT: Duration = Duration::from_secs(5);

/// A notebook of alice's in `state` that has run for `ran_minutes`, on a real moto instance,
/// and Run Command as `run` says.
async fn notebook(state: State, ran_minutes: i64, run: RunCommand) -> (Deps, Notebook) {
    let env = Env::in_memory().await;
    let ids = setup::run_seeded(&env.aws.ec2, 1, Some("check")).await.unwrap();
    let spec = parse_launch(br#"{"name":"nb-check"}"#, &env.deps.cfg).unwrap();
    let now = env.now();
    let policy = idle_policy(&spec, &env.deps.cfg);
    let mut nb = Notebook::new(&spec, &Principal::named("alice"), 1, policy, now);
    nb.state = state;
    nb.instance_id = Some(ids[0].clone());
    nb.running_since = Some(now - jiff::SignedDuration::from_mins(ran_minutes));
    env.deps.store.put(&nb, Expect::Absent).await.unwrap();
    let mut deps = env.deps.clone();
    deps.commands = Arc::new(run.build().0);
    let nb = deps.store.require("nb-check").await.unwrap();
    (deps, nb)
}

#[tokio::test]
async fn a_busy_kernel_is_active_and_the_check_writes_nothing() {
    let (deps, before) = notebook(State::Ready, 5, RunCommand::succeeding(|_| BUSY.into())).await;
    let d = check(&deps, &Principal::named("alice"), "nb-check", WAIT)
        .await
        .unwrap();
    assert_eq!(d.verdict, Verdict::Active, "{d:?}");
    assert_eq!(d.action, Action::None);
    assert!(d.reason.contains("kernel"), "{}", d.reason);
    assert_eq!(deps.store.require("nb-check").await.unwrap(), before);
}

#[tokio::test]
async fn an_idle_notebook_past_its_timeout_would_be_warned_but_the_check_only_tells() {
    let (deps, before) = notebook(State::Ready, 180, RunCommand::succeeding(|_| IDLE.into())).await;
    let d = check(&deps, &Principal::named("alice"), "nb-check", WAIT)
        .await
        .unwrap();
    assert_eq!(d.verdict, Verdict::Idle, "{d:?}");
    assert!(matches!(d.action, Action::Warn { .. }), "{:?}", d.action);
    let after = deps.store.require("nb-check").await.unwrap();
    assert_eq!(after, before, "a check neither warns nor stops");
    assert!(deps.store.recent_history("nb-check", 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_probe_that_does_not_end_in_time_is_unknown_never_idle() {
    let slow = RunCommand::succeeding(|_| IDLE.into()).finishing_after(1_000);
    let (deps, _) = notebook(State::Ready, 180, slow).await;
    let d = check(
        &deps,
        &Principal::named("alice"),
        "nb-check",
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(d.verdict, Verdict::Unknown, "{d:?}");
    assert_eq!(d.action, Action::None);
    assert!(d.reason.contains("did not answer in time"), "{}", d.reason);
}

#[tokio::test]
async fn only_a_ready_notebook_can_be_checked_and_only_by_its_owner() {
    let (deps, _) = notebook(State::Stopped, 0, RunCommand::succeeding(|_| IDLE.into())).await;
    let e = check(&deps, &Principal::named("alice"), "nb-check", WAIT)
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Conflict(m) if m.contains("Stopped")), "{e}");

    let (deps, _) = notebook(State::Ready, 0, RunCommand::succeeding(|_| IDLE.into())).await;
    let e = check(&deps, &Principal::named("mallory"), "nb-check", WAIT)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e}");
    let e = check(&deps, &Principal::named("alice"), "Not A Name", WAIT)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadRequest { .. }), "{e}");
}
