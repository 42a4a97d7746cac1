//! A new token or password (`POST /notebooks/{name}/credential`) through the use case and the
//! command's status-change event: records in memory, Parameter Store on moto, Run Command on
//! the aws-smithy-mocks stand-in (moto's commands never run or report output).

use aws_sdk_ssm::types::CommandInvocationStatus;
use nbfleet_app::instance_events::Outcome;
use nbfleet_core::events::ssm_invocation_change;
use nbfleet_core::ports::Notice;
use nbfleet_core::record::CredentialStatus;
use nbfleet_core::{Notebook, State};
use nbfleet_testkit::run_command::{Rules, RunCommand};
use nbfleet_testkit::{Env, OWNER, api};
use std::sync::Arc;

const FINGERPRINT: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";

fn health_report(_: &str) -> String {
    format!(r#"{{"nbfleet":"health","fingerprint":"{FINGERPRINT}","port":8888}}"#)
}

/// An environment whose Run Command runs as `run` says, and a notebook `name` in `state`.
async fn with_notebook(run: RunCommand, name: &str, state: State) -> (Env, Rules, Notebook) {
    let mut e = Env::in_memory().await;
    let (commands, rules) = run.build();
    e.deps.commands = Arc::new(commands);
    e.launch(name).await;
    let nb = e
        .force(name, |nb| {
            nb.state = state;
            nb.cert_fingerprint = Some(FINGERPRINT.into());
        })
        .await;
    (e, rules, nb)
}

async fn stored_secret(e: &Env, name: &str) -> String {
    let out = e
        .aws
        .ssm
        .get_parameter()
        .name(e.deps.cfg.secret_parameter(name))
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    out.parameter.unwrap().value.unwrap()
}

async fn command_finished(e: &Env, nb: &Notebook, command_id: &str, status: &str) -> Outcome {
    let id = nb.instance_id.as_deref().unwrap();
    let event = ssm_invocation_change(command_id, id, status, &e.account, "us-east-1", "t");
    api::event(&e.deps, &event).await.unwrap()
}

#[tokio::test]
async fn a_new_token_on_a_ready_notebook_is_stored_sent_and_settled_by_its_commands_event() {
    let (e, rules, nb) =
        with_notebook(RunCommand::succeeding(health_report), "cred-ready", State::Ready).await;
    let before = stored_secret(&e, "cred-ready").await;
    let (status, body) = api::credential(&e.deps, OWNER, "cred-ready", b"{}")
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_ne!(token, before);
    assert_eq!(stored_secret(&e, "cred-ready").await, token);
    assert_eq!(rules.send.num_calls(), 1, "one health check sent");
    let change = e.record("cred-ready").await.credential_change.unwrap();
    assert_eq!(change.status, CredentialStatus::Applying);
    let command_id = change.command_id.unwrap();

    e.advance(1);
    let outcome = command_finished(&e, &nb, &command_id, "Success").await;
    assert_eq!(
        outcome,
        Outcome::Credential {
            notebook: "cred-ready".into(),
            status: CredentialStatus::Applied
        }
    );
    let after = e.record("cred-ready").await;
    assert_eq!(after.state, State::Ready);
    let change = after.credential_change.unwrap();
    assert_eq!(change.status, CredentialStatus::Applied);
    assert!(change.settled_at.is_some());
    let history = e.deps.store.history("cred-ready").await.unwrap();
    let statuses: Vec<_> = history
        .iter()
        .filter(|h| h["action"] == "credential")
        .map(|h| h["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["applying", "applied"]);

    // The same event again (EventBridge delivers at least once) changes nothing.
    let again = command_finished(&e, &nb, &command_id, "Success").await;
    assert!(matches!(again, Outcome::NoOp(_)), "{again:?}");
    assert_eq!(e.record("cred-ready").await.version, after.version);
}

#[tokio::test]
async fn a_health_check_that_fails_settles_the_change_as_failed_tells_the_owner_and_the_next_start_applies_it()
 {
    let run = RunCommand::succeeding(|_| String::new()).ending(
        CommandInvocationStatus::Failed,
        1,
        "nbfleet-health (cred-fail): Jupyter has not taken the notebook's current credential\n",
    );
    let (e, _, nb) = with_notebook(run, "cred-fail", State::Ready).await;
    let (status, body) = api::credential(&e.deps, OWNER, "cred-fail", b"{}").await.unwrap();
    assert_eq!(status, 202);
    assert!(
        body["token"].is_string(),
        "the token is answered whatever happens after"
    );
    let command_id = e
        .record("cred-fail")
        .await
        .credential_change
        .unwrap()
        .command_id
        .unwrap();
    command_finished(&e, &nb, &command_id, "Failed").await;

    let change = e.record("cred-fail").await.credential_change.unwrap();
    assert_eq!(change.status, CredentialStatus::Failed);
    assert!(
        change.detail.contains("has not taken") && change.detail.contains("next start"),
        "{}",
        change.detail
    );
    let told = e.heard.notices();
    assert!(
        told.iter()
            .any(|n| matches!(n, Notice::CredentialNotApplied { name, .. } if name == "cred-fail")),
        "{told:?}"
    );

    // The next start's health check fetches the secret again: its success settles the change.
    let health = nbfleet_core::scripts::health_check(&nb, &e.deps.cfg, &e.deps.cfg.region).unwrap();
    let id = nb.instance_id.clone().unwrap();
    let started = e
        .deps
        .commands
        .send(&id, &health, nbfleet_core::ports::Reach::Once)
        .await
        .unwrap();
    e.force("cred-fail", |nb| {
        nb.state = State::Configuring;
        nb.pending_command = Some(nbfleet_core::record::PendingCommand {
            command_id: started.clone(),
            kind: nbfleet_core::scripts::ScriptKind::Health,
            tell: None,
        });
    })
    .await;
    let ok = RunCommand::succeeding(health_report).build().0;
    let mut deps = e.deps.clone();
    deps.commands = Arc::new(ok);
    let event = ssm_invocation_change(&started, &id, "Success", &e.account, "us-east-1", "t");
    api::event(&deps, &event).await.unwrap();
    let ready = e.record("cred-fail").await;
    assert_eq!(ready.state, State::Ready);
    assert_eq!(ready.credential_change.unwrap().status, CredentialStatus::Applied);
}

#[tokio::test]
async fn on_a_stopped_notebook_the_change_waits_for_the_next_start_and_sends_nothing() {
    let (e, rules, _) = with_notebook(
        RunCommand::succeeding(health_report),
        "cred-stopped",
        State::Stopped,
    )
    .await;
    let (status, body) = api::credential(&e.deps, OWNER, "cred-stopped", b"{}")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored_secret(&e, "cred-stopped").await,
        body["token"].as_str().unwrap()
    );
    assert_eq!(rules.send.num_calls(), 0);
    let change = e.record("cred-stopped").await.credential_change.unwrap();
    assert_eq!(change.status, CredentialStatus::AtNextStart);
}

#[tokio::test]
async fn an_agent_that_cannot_be_reached_still_hands_back_the_token_and_says_the_next_start_takes_it() {
    let mut e = Env::in_memory().await;
    let nb = e.launch("cred-offline").await;
    let id = nb.instance_id.clone().unwrap();
    e.deps.commands = Arc::new(RunCommand::succeeding(health_report).refusing(&id).build().0);
    e.force_state("cred-offline", State::Ready).await;
    let (status, body) = api::credential(&e.deps, OWNER, "cred-offline", b"{}")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored_secret(&e, "cred-offline").await,
        body["token"].as_str().unwrap()
    );
    let change = e.record("cred-offline").await.credential_change.unwrap();
    assert_eq!(change.status, CredentialStatus::Failed);
    assert!(change.detail.contains("could not be sent"), "{}", change.detail);
}

#[tokio::test]
async fn a_second_change_while_the_first_is_applying_is_refused_and_the_stored_secret_stays_the_first() {
    let (e, _, _) = with_notebook(RunCommand::succeeding(health_report), "cred-twice", State::Ready).await;
    let (_, first) = api::credential(&e.deps, OWNER, "cred-twice", b"{}")
        .await
        .unwrap();
    let err = api::credential(&e.deps, OWNER, "cred-twice", b"{}")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
    assert_eq!(
        stored_secret(&e, "cred-twice").await,
        first["token"].as_str().unwrap()
    );
    // A first change whose Lambda died mid-way does not block the notebook for ever.
    e.advance(6);
    let (status, second) = api::credential(&e.deps, OWNER, "cred-twice", b"{}")
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(
        stored_secret(&e, "cred-twice").await,
        second["token"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_wrong_kind_another_user_or_a_busy_state_is_refused_and_nothing_is_stored() {
    let (e, rules, _) =
        with_notebook(RunCommand::succeeding(health_report), "cred-guard", State::Ready).await;
    let before = (
        stored_secret(&e, "cred-guard").await,
        e.record("cred-guard").await.version,
    );
    let refused = [
        (OWNER, &br#"{"password":"correct horse"}"#[..], 400),
        (OWNER, br#"{"token":"chosen-by-me"}"#, 400),
        (OWNER, b"not json", 400),
        ("mallory", b"{}", 403),
    ];
    for (caller, body, status) in refused {
        let err = api::credential(&e.deps, caller, "cred-guard", body)
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            status,
            "{caller} {}: {err}",
            String::from_utf8_lossy(body)
        );
    }
    for state in [
        State::Pending,
        State::Launching,
        State::Configuring,
        State::Starting,
        State::Terminated,
    ] {
        e.force_state("cred-guard", state).await;
        let err = api::credential(&e.deps, OWNER, "cred-guard", b"{}")
            .await
            .unwrap_err();
        assert_eq!(err.status(), 409, "{state}: {err}");
    }
    assert_eq!(stored_secret(&e, "cred-guard").await, before.0);
    assert_eq!(rules.send.num_calls(), 0);
    let err = api::credential(&e.deps, OWNER, "no-such", b"{}")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
}

#[tokio::test]
async fn a_password_notebook_takes_a_new_password_hashed_never_in_clear() {
    let mut e = Env::in_memory().await;
    let (commands, _) = RunCommand::succeeding(health_report).build();
    e.deps.commands = Arc::new(commands);
    api::launch(
        &e.deps,
        OWNER,
        br#"{"name":"cred-pw","password":"correct horse"}"#,
    )
    .await
    .unwrap();
    e.force_state("cred-pw", State::Ready).await;
    let err = api::credential(&e.deps, OWNER, "cred-pw", b"{}")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("uses a password"), "{err}");
    let (status, body) = api::credential(&e.deps, OWNER, "cred-pw", br#"{"password":"battery staple"}"#)
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert!(body.get("token").is_none(), "{body}");
    let stored = stored_secret(&e, "cred-pw").await;
    assert!(stored.starts_with("argon2:$argon2id$"), "{stored}");
    assert!(!stored.contains("battery"));
}

/// Parameter Store refusing every write (throttled): the gap no moto setting opens on demand.
struct Throttled(Arc<dyn nbfleet_core::ports::Secrets>);

#[async_trait::async_trait]
impl nbfleet_core::ports::Secrets for Throttled {
    async fn put(&self, _: &str, _: &str, _: &str) -> nbfleet_core::Result<()> {
        Err(nbfleet_core::Error::Throttled(
            "PutParameter: rate exceeded".into(),
        ))
    }
    async fn get(&self, name: &str) -> nbfleet_core::Result<Option<String>> {
        self.0.get(name).await
    }
    async fn delete(&self, name: &str) -> nbfleet_core::Result<()> {
        self.0.delete(name).await
    }
    async fn grant_to_instance(&self, name: &str, arn: &str) -> nbfleet_core::Result<()> {
        self.0.grant_to_instance(name, arn).await
    }
}

#[tokio::test]
async fn a_secret_that_cannot_be_stored_changes_nothing_and_a_retry_is_not_refused() {
    let (mut e, rules, _) = with_notebook(
        RunCommand::succeeding(health_report),
        "cred-throttled",
        State::Ready,
    )
    .await;
    let before = stored_secret(&e, "cred-throttled").await;
    let real = e.deps.secrets.clone();
    e.deps.secrets = Arc::new(Throttled(real.clone()));
    let err = api::credential(&e.deps, OWNER, "cred-throttled", b"{}")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    assert_eq!(e.record("cred-throttled").await.credential_change, None);
    assert_eq!(stored_secret(&e, "cred-throttled").await, before);
    assert_eq!(rules.send.num_calls(), 0);
    e.deps.secrets = real;
    let (status, _) = api::credential(&e.deps, OWNER, "cred-throttled", b"{}")
        .await
        .unwrap();
    assert_eq!(
        status, 202,
        "asking again is not refused as a change still applying"
    );
}
