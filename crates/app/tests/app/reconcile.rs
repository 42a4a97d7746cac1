//! Reconcile and deadlines against moto: changes made behind nbfleet's back are adopted,
//! orphans are reported, and a record stuck in flight ends Failed with its instance stopped.

use nbfleet_app::budget::Budget;
use nbfleet_app::deadlines::{Deadlines, enforce};
use nbfleet_app::instance_events::Source;
use nbfleet_app::reconcile::{Reconciled, live, reconcile};
use nbfleet_core::State;
use nbfleet_core::ports::Clock;
use nbfleet_testkit::Env;
use std::time::Duration;

/// An EC2 event without a time.
const EVENT: Source = Source::Event { at: None };

/// A reconcile pass over every live record, now.
async fn reconcile_now(e: &Env) -> Reconciled {
    let live = live(&e.deps).await.unwrap();
    reconcile(&e.deps, &live, e.clock.now(), Budget::of(Duration::from_secs(30)))
        .await
        .unwrap()
}

/// A deadline pass over every live record, now.
async fn deadlines_now(e: &Env) -> Deadlines {
    let live = live(&e.deps).await.unwrap();
    enforce(&e.deps, &live, e.clock.now(), Budget::of(Duration::from_secs(30))).await
}

#[tokio::test]
async fn an_instance_terminated_behind_our_back_ends_terminated() {
    let e = Env::in_memory().await;
    let nb = e.launch("gone").await;
    e.force_state("gone", State::Ready).await;
    e.terminate_in_ec2(nb.instance_id.as_deref().unwrap()).await;
    let report = reconcile_now(&e).await;
    assert_eq!(report.adopted, ["gone: EC2 says Terminated"]);
    assert_eq!(e.record("gone").await.state, State::Terminated);
}

#[tokio::test]
async fn an_instance_stopped_behind_our_back_ends_stopped_and_its_cost_stops() {
    let e = Env::in_memory().await;
    let nb = e.launch("halted").await;
    let mut ready = e.force_state("halted", State::Ready).await;
    ready.running_since = Some(e.deps.clock.now());
    let stored = e.record("halted").await;
    e.deps
        .store
        .put(&ready.touched(e.deps.clock.now()), stored.expect())
        .await
        .unwrap();
    e.advance(90);
    e.stop_in_ec2(nb.instance_id.as_deref().unwrap()).await;

    reconcile_now(&e).await;
    let after = e.record("halted").await;
    assert_eq!(after.state, State::Stopped);
    assert_eq!((after.running_since, after.running_seconds), (None, 90 * 60));
    e.advance(60);
    assert_eq!(
        e.record("halted").await.running_seconds_at(e.deps.clock.now()),
        90 * 60,
        "the clock stopped"
    );
}

#[tokio::test]
async fn an_instance_started_by_hand_is_configured_again() {
    let e = Env::in_memory().await;
    let nb = e.launch("manual").await;
    e.force_state("manual", State::Stopped).await;
    // The instance runs in moto (it never stopped): as if someone started it in the console.
    let report = reconcile_now(&e).await;
    assert_eq!(report.adopted, ["manual: EC2 says Running"]);
    let after = e.record("manual").await;
    assert_eq!(after.state, State::Configuring);
    assert!(after.pending_command.is_some());
    assert_eq!(e.ec2_state(nb.instance_id.as_deref().unwrap()).await, "running");
}

#[tokio::test]
async fn a_tagged_instance_without_a_record_is_an_orphan() {
    let e = Env::in_memory().await;
    e.launch("known").await;
    e.force_state("known", State::Ready).await;
    let ghost_id = nbfleet_local::setup::run_seeded(&e.aws.ec2, 1, Some("ghost"))
        .await
        .unwrap()
        .remove(0);
    let report = reconcile_now(&e).await;
    assert_eq!(report.orphans.len(), 1, "{report:?}");
    assert!(report.orphans[0].starts_with(&ghost_id) && report.orphans[0].contains("ghost"));
    assert!(report.adopted.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_record_stuck_configuring_past_its_deadline_fails_with_its_instance_stopped() {
    let e = Env::in_memory().await;
    let nb = e.launch("stuck").await;
    e.force_state("stuck", State::Configuring).await;
    e.advance(39);
    assert!(deadlines_now(&e).await.done.is_empty(), "not yet");
    e.advance(2);
    let done = deadlines_now(&e).await.done;
    assert_eq!(done, ["stuck: Configuring for 41 min"]);
    let after = e.record("stuck").await;
    assert_eq!(after.state, State::Failed);
    assert!(after.failure.unwrap().reason.contains("stuck in Configuring"));
    assert_eq!(e.ec2_state(nb.instance_id.as_deref().unwrap()).await, "stopped");
    // A second sweep changes nothing.
    assert!(deadlines_now(&e).await.done.is_empty());
}

#[tokio::test]
async fn ec2_events_on_the_way_down_update_the_record() {
    use nbfleet_app::instance_events::on_instance_state;
    use nbfleet_core::ports::InstanceState;
    let e = Env::in_memory().await;
    let nb = e.launch("downhill").await;
    let id = nb.instance_id.clone().unwrap();
    e.force_state("downhill", State::Ready).await;
    on_instance_state(&e.deps, &id, InstanceState::Stopping, EVENT, e.clock.now())
        .await
        .unwrap();
    assert_eq!(e.record("downhill").await.state, State::Stopping);
    // Delivered twice, and then the stop itself: the owner is told once, with a Start button.
    for state in [
        InstanceState::Stopping,
        InstanceState::Stopped,
        InstanceState::Stopped,
    ] {
        on_instance_state(&e.deps, &id, state, EVENT, e.clock.now())
            .await
            .unwrap();
    }
    assert_eq!(e.record("downhill").await.state, State::Stopped);
    match e.heard.notices().as_slice() {
        [notice @ nbfleet_core::ports::Notice::Stopped { .. }] => {
            assert!(
                notice
                    .text()
                    .contains("was stopped outside nbfleet: from the EC2 console"),
                "{}",
                notice.text()
            );
            let buttons = nbfleet_core::blocks::buttons(notice);
            assert_eq!(buttons, [nbfleet_core::blocks::Button::Start]);
        }
        other => panic!("one Stopped notice: {other:?}"),
    }
    on_instance_state(&e.deps, &id, InstanceState::ShuttingDown, EVENT, e.clock.now())
        .await
        .unwrap();
    assert_eq!(e.record("downhill").await.state, State::Terminating);
    on_instance_state(&e.deps, &id, InstanceState::Terminated, EVENT, e.clock.now())
        .await
        .unwrap();
    assert_eq!(e.record("downhill").await.state, State::Terminated);
    // The same event again changes nothing.
    let again = on_instance_state(&e.deps, &id, InstanceState::Terminated, EVENT, e.clock.now())
        .await
        .unwrap();
    assert!(
        matches!(again, nbfleet_app::instance_events::Outcome::NoOp(_)),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_running_event_that_beats_the_launchs_record_write_is_retried_not_ignored() {
    use nbfleet_app::instance_events::on_instance_state;
    use nbfleet_core::ports::InstanceState;
    let e = Env::in_memory().await;
    let nb = e.launch("early").await;
    let id = nb.instance_id.clone().unwrap();
    // As if EC2's event came between RunInstances and the record naming the instance.
    let mut before_write = e.record("early").await.touched(e.deps.clock.now());
    before_write.instance_id = None;
    e.deps.store.put(&before_write, nb.expect()).await.unwrap();
    let id_for_writer = id.clone();
    let err = on_instance_state(&e.deps, &id, InstanceState::Running, EVENT, e.clock.now())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // The write lands while the event waits for it: the bootstrap is sent.
    let store = e.deps.store.clone();
    let written = before_write.clone().touched(e.deps.clock.now());
    let expected = before_write.expect();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut named = written;
        named.instance_id = Some(id_for_writer);
        store.put(&named, expected).await.unwrap();
    });
    let outcome = on_instance_state(&e.deps, &id, InstanceState::Running, EVENT, e.clock.now())
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(
        matches!(outcome, nbfleet_app::instance_events::Outcome::Sent { .. }),
        "{outcome:?}"
    );

    // An instance without nbfleet's tag is someone else's: ignored.
    let foreign = nbfleet_local::setup::run_seeded(&e.aws.ec2, 1, None)
        .await
        .unwrap();
    let foreign_id = &foreign[0];
    let outcome = on_instance_state(&e.deps, foreign_id, InstanceState::Running, EVENT, e.clock.now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, nbfleet_app::instance_events::Outcome::Ignored(_)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn one_record_the_deadline_pass_cannot_act_on_does_not_stop_it_for_the_others() {
    let e = Env::in_memory().await;
    let jammed = e.launch("jammed").await.instance_id.unwrap();
    e.launch("freed").await;
    e.force_state("jammed", State::Configuring).await;
    e.force_state("freed", State::Configuring).await;
    // EC2 keeps refusing to stop one instance.
    let refused_id = jammed.clone();
    e.compute.hooks.before("stop", move |s| {
        let refused = matches!(&s, nbfleet_testkit::hooks::Subject::Named(id) if *id == refused_id);
        async move {
            match refused {
                true => Err(nbfleet_core::Error::Throttled("RequestLimitExceeded".into())),
                false => Ok(()),
            }
        }
    });
    e.advance(41);
    let pass = deadlines_now(&e).await;
    assert_eq!(pass.done, ["freed: Configuring for 41 min"]);
    assert_eq!(pass.failed.len(), 1, "{pass:?}");
    assert!(pass.failed[0].starts_with("jammed: "), "{pass:?}");
    assert_eq!(e.record("freed").await.state, State::Failed);
    assert_eq!(e.ec2_state(&jammed).await, "running");
    assert_eq!(
        e.record("jammed").await.state,
        State::Failed,
        "the claim is written before the stop, never after"
    );
    // EC2 takes stops again: the next round's reconcile stops what a Failed record left running.
    e.compute.hooks.before("stop", |_| async { Ok(()) });
    let next = reconcile_now(&e).await;
    assert_eq!(next.adopted, ["jammed: Failed, but its instance ran: stopped"]);
    assert_eq!(e.ec2_state(&jammed).await, "stopped");
}

#[tokio::test]
async fn a_failed_notebook_started_in_the_console_is_stopped_by_reconcile() {
    let e = Env::in_memory().await;
    let id = e.launch("revived").await.instance_id.unwrap();
    e.force_state("revived", State::Failed).await;
    // The instance runs in moto, as if started again by hand: Failed means nothing runs.
    let report = reconcile_now(&e).await;
    assert_eq!(report.adopted, ["revived: Failed, but its instance ran: stopped"]);
    assert_eq!(e.ec2_state(&id).await, "stopped");
    assert_eq!(e.record("revived").await.state, State::Failed);
}

#[tokio::test]
async fn a_launch_that_died_before_recording_its_instance_has_it_found_by_tags_and_stopped() {
    let e = Env::in_memory().await;
    let id = e.launch("lost").await.instance_id.unwrap();
    // As if the launch died between RunInstances and writing the instance id.
    e.force("lost", |nb| {
        (nb.state, nb.instance_id) = (State::Pending, None);
    })
    .await;
    e.advance(11);
    let pass = deadlines_now(&e).await;
    assert_eq!(pass.done, ["lost: Pending for 11 min"], "{pass:?}");
    assert_eq!(e.ec2_state(&id).await, "stopped", "no GPU runs untracked");
    let failed = e.record("lost").await;
    assert_eq!(failed.state, State::Failed);
    assert_eq!(
        failed.instance_id.as_deref(),
        Some(id.as_str()),
        "the record learns its instance"
    );
}

#[tokio::test]
async fn an_instance_missing_from_the_tag_listing_is_asked_by_id_before_it_counts_as_terminated() {
    let e = Env::in_memory().await;
    let id = e.launch("untagged").await.instance_id.unwrap();
    e.force_state("untagged", State::Ready).await;
    // Its tag removed (or the listing lagging RunInstances): not in the listing, but there.
    e.aws
        .ec2
        .delete_tags()
        .resources(&id)
        .tags(aws_sdk_ec2::types::Tag::builder().key("nbfleet:notebook").build())
        .send()
        .await
        .unwrap();
    e.advance(30);
    let report = reconcile_now(&e).await;
    assert!(report.adopted.is_empty(), "{report:?}");
    assert_eq!(e.record("untagged").await.state, State::Ready);
    assert!(
        e.deps
            .secrets
            .get(&e.deps.cfg.secret_parameter("untagged"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_instance_ec2_does_not_know_yet_is_terminated_only_after_five_minutes() {
    let e = Env::in_memory().await;
    e.launch("fresh").await;
    // DescribeInstances is eventually consistent: right after RunInstances it may answer
    // NotFound even by id.
    e.force("fresh", |nb| nb.instance_id = Some("i-0123456789abcdef0".into()))
        .await;
    e.force_state("fresh", State::Launching).await;
    e.advance(4);
    let early = reconcile_now(&e).await;
    assert!(early.adopted.is_empty(), "{early:?}");
    assert_eq!(e.record("fresh").await.state, State::Launching);
    e.advance(2);
    let late = reconcile_now(&e).await;
    assert_eq!(late.adopted, ["fresh: EC2 says Terminated"]);
    assert_eq!(e.record("fresh").await.state, State::Terminated);
}

#[tokio::test]
async fn a_start_whose_health_check_could_not_be_sent_is_driven_again() {
    let e = Env::in_memory().await;
    e.launch("restarted").await;
    // Started, running in moto, but the configure's send failed and handed the claim back.
    e.force("restarted", |nb| nb.cert_fingerprint = Some("AB:CD".into()))
        .await;
    e.force_state("restarted", State::Starting).await;
    let report = reconcile_now(&e).await;
    assert_eq!(report.adopted, ["restarted: EC2 says Running"]);
    let after = e.record("restarted").await;
    assert_eq!(after.state, State::Configuring);
    assert_eq!(
        after.pending_command.map(|p| p.kind),
        Some(nbfleet_core::scripts::ScriptKind::Health)
    );
}

#[tokio::test]
async fn a_late_running_event_never_sends_a_health_check_to_a_stopping_instance() {
    use nbfleet_app::instance_events::{Outcome, on_instance_state};
    use nbfleet_core::ports::InstanceState;
    let e = Env::in_memory().await;
    let id = e.launch("winding").await.instance_id.unwrap();
    e.force("winding", |nb| nb.cert_fingerprint = Some("AB:CD".into()))
        .await;
    let before_stop = e.clock.now();
    e.advance(60);
    e.force_state("winding", State::Stopping).await;
    e.stop_in_ec2(&id).await;
    e.calls.clear();
    // The running event of an hour ago, delivered late.
    let late = Source::Event {
        at: Some(before_stop),
    };
    let outcome = on_instance_state(&e.deps, &id, InstanceState::Running, late, e.clock.now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::NoOp(ref why) if why.contains("late")),
        "{outcome:?}"
    );
    // A duplicate without a time: EC2 is asked, and says the instance is not running.
    let outcome = on_instance_state(&e.deps, &id, InstanceState::Running, EVENT, e.clock.now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::NoOp(ref why) if why.contains("now")),
        "{outcome:?}"
    );
    assert_eq!(
        e.calls.counts().get("ssm:SendCommand"),
        None,
        "{:?}",
        e.calls.counts()
    );
    assert_eq!(e.record("winding").await.state, State::Stopping);
}

#[tokio::test]
async fn a_reconcile_that_cannot_list_ec2_still_lets_the_round_probe_warn_and_stop() {
    use nbfleet_app::sweep::{Timing, sweep};
    let e = Env::in_memory().await;
    e.launch("probed").await;
    e.force_state("probed", State::Ready).await;
    e.compute.hooks.before("list_tagged", |_| async {
        Err(nbfleet_core::Error::Throttled("RequestLimitExceeded".into()))
    });
    let timing = Timing {
        collect_for: std::time::Duration::from_millis(50),
        poll_every: std::time::Duration::from_millis(10),
        ..Timing::default()
    };
    let round = sweep(&e.deps, timing).await.expect("the round goes on");
    assert_eq!(round.probed, 1, "{round:?}");
    assert!(
        round.failed.iter().any(|f| f.starts_with("reconcile: ")),
        "{round:?}"
    );
}

#[tokio::test]
async fn an_orphan_past_its_grace_is_stopped_never_terminated_and_people_are_told_once() {
    let e = Env::in_memory().await;
    let ghost = nbfleet_local::setup::run_seeded(&e.aws.ec2, 1, Some("ghost"))
        .await
        .unwrap()
        .remove(0);
    let early = reconcile_now(&e).await;
    assert_eq!(early.orphans.len(), 1, "{early:?}");
    assert!(
        !early.orphans[0].ends_with(": stopped"),
        "within its grace: {early:?}"
    );
    assert_eq!(e.ec2_state(&ghost).await, "running");

    // moto stamps the launch with its own clock, a moment after the test clock was read: a
    // minute past the grace is past it whatever that moment was.
    e.advance((e.deps.cfg.orphan_grace_minutes + 1).into());
    let late = reconcile_now(&e).await;
    assert!(late.orphans[0].ends_with(": stopped"), "{late:?}");
    assert_eq!(e.ec2_state(&ghost).await, "stopped", "stopped, never terminated");
    e.advance(60);
    reconcile_now(&e).await;
    let told: Vec<_> = e
        .heard
        .notices()
        .into_iter()
        .filter(|n| matches!(n, nbfleet_core::ports::Notice::Orphan { .. }))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].text().contains(&ghost), "{}", told[0].text());
}

#[tokio::test]
async fn an_orphans_notice_carries_nothing_of_the_live_notebook_that_shares_its_name() {
    let e = Env::in_memory().await;
    e.launch("twin").await;
    let orphan = nbfleet_core::ports::Notice::Orphan {
        name: "twin".into(),
        instance_id: "i-0lostrace".into(),
    };
    nbfleet_core::ports::tell(&e.deps, orphan).await;
    let facts = e.heard.facts();
    assert_eq!(
        facts,
        [nbfleet_core::blocks::Facts::default()],
        "not the live twin's owner or cost"
    );
}

#[tokio::test]
async fn each_caller_sees_their_own_orphans_and_an_admin_sees_all() {
    use nbfleet_app::read::orphans;
    const ADMIN: &str = "arn:aws:iam::123456789012:user/the-admin";
    let e = Env::with_vars([("NBFLEET_ADMINS", ADMIN)]).await;
    let who = |caller: &str| nbfleet_testkit::api::principal(&e.deps, caller).unwrap();
    let mine = e.launch("left-behind").await.instance_id.unwrap();
    // The record deleted by hand, the instance still there: alice's orphan.
    e.force_state("left-behind", State::Terminated).await;
    let untagged_owner = nbfleet_local::setup::run_seeded(&e.aws.ec2, 1, Some("ghost"))
        .await
        .unwrap()
        .remove(0);
    let ids = |list: Vec<nbfleet_app::read::Orphan>| {
        let mut ids: Vec<String> = list.into_iter().map(|o| o.instance_id).collect();
        ids.sort();
        ids
    };
    let alice = orphans(&e.deps, &who(nbfleet_testkit::OWNER)).await.unwrap();
    assert_eq!(alice[0].notebook.as_deref(), Some("left-behind"));
    assert_eq!(alice[0].state, "running");
    assert_eq!(ids(alice), std::slice::from_ref(&mine));
    assert!(orphans(&e.deps, &who("bob")).await.unwrap().is_empty());
    let mut all = vec![mine, untagged_owner];
    all.sort();
    assert_eq!(ids(orphans(&e.deps, &who(ADMIN)).await.unwrap()), all);
}

#[tokio::test]
async fn a_security_group_a_termination_left_behind_is_removed_by_a_later_sweep() {
    let e = Env::in_memory().await;
    let access = nbfleet_core::validate::Access::default();
    // A deleted notebook whose group EC2 still held when it was terminated.
    let left = e
        .deps
        .compute
        .ensure_security_group("departed", 1, &access, None)
        .await
        .unwrap();
    // A live notebook's group, and one whose launch is under way: both kept.
    e.launch("staying").await;
    let report = reconcile_now(&e).await;
    assert_eq!(
        report.groups_removed,
        [format!("{left} (departed)")],
        "{report:?}"
    );
    let groups = e.deps.compute.list_tagged_groups().await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].1, "staying");
    assert!(reconcile_now(&e).await.groups_removed.is_empty());
}

#[tokio::test]
async fn another_stacks_instances_are_never_taken_for_orphans() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let e = Env::in_memory().await;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    // A second nbfleet deployment in the same account: its notebook, its stack tag.
    let theirs = e
        .aws
        .ec2
        .run_instances()
        .image_id(nbfleet_local::setup::SEEDED_AMI)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag("nbfleet:notebook", "their-nb"))
                .tags(tag("nbfleet:stack", "nbfleet-prod"))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    e.advance(120);
    let report = reconcile_now(&e).await;
    assert!(report.orphans.is_empty(), "{report:?}");
    assert_eq!(e.ec2_state(&theirs).await, "running");
}
