//! `/notebook` against moto: verification and the allow-list before any AWS call, quick
//! commands answered at once, slow ones acknowledged and done by the job, which answers on
//! `response_url`. The Jobs and Responder ports are recorded here (the self-invocation and
//! Slack's side are what moto cannot be).

use base64::Engine as _;
use nbfleet_app::slack::{JOB_KEY, Job, Signed as SlackHttp, run_job};
use nbfleet_core::ports::{Jobs, Responder};
use nbfleet_core::slack::{USAGE, sign};
use nbfleet_core::{Result, State};
use nbfleet_local::setup::{self, SLACK_SIGNING_SECRET as SECRET};
use nbfleet_testkit::Env;
use nbfleet_testkit::api::slash;
use serde_json::{Value, json};
use std::sync::Mutex;

#[derive(Default)]
struct Recorded {
    jobs: Mutex<Vec<Value>>,
    answers: Mutex<Vec<(String, Value)>>,
}

#[async_trait::async_trait]
impl Jobs for Recorded {
    async fn submit(&self, job: &Value) -> Result<()> {
        self.jobs.lock().unwrap().push(job.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl Responder for Recorded {
    async fn respond(&self, url: &str, message: &Value) -> Result<()> {
        self.answers
            .lock()
            .unwrap()
            .push((url.to_string(), message.clone()));
        Ok(())
    }
}

/// A moto account ([`Env`]) and what the Jobs and Responder ports were given.
struct Slack {
    env: Env,
    seen: Recorded,
}

impl std::ops::Deref for Slack {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

async fn env() -> Slack {
    Slack {
        env: Env::new().await,
        seen: Recorded::default(),
    }
}

const RESPONSE_URL: &str = nbfleet_testkit::api::SLACK_RESPONSE_URL;

/// A request from `team`/`user` with `text`, signed with `secret` at `ts`.
fn request(secret: &str, ts: i64, team: &str, user: &str, text: &str) -> SlackHttp {
    nbfleet_testkit::api::slack_request(secret, ts, team, user, text)
}

impl Slack {
    /// Now, as Slack writes its request timestamps.
    fn ts(&self) -> i64 {
        self.now().as_second()
    }

    async fn say(&self, user: &str, text: &str) -> (u16, Value) {
        let req = request(SECRET, self.ts(), setup::SLACK_TEAM, user, text);
        slash(&self.deps, &self.seen, SECRET.as_bytes(), &req).await
    }

    /// Runs the jobs queued so far, as the self-invocation would.
    async fn run_jobs(&self) {
        let jobs: Vec<Value> = self.seen.jobs.lock().unwrap().drain(..).collect();
        for job in jobs {
            let job: Job = serde_json::from_value(job[JOB_KEY].clone()).unwrap();
            run_job(&self.deps, &self.seen, SECRET.as_bytes(), &job)
                .await
                .unwrap();
        }
    }

    fn last_answer(&self) -> Value {
        let answers = self.seen.answers.lock().unwrap();
        let (url, message) = answers.last().expect("an answer on response_url").clone();
        assert_eq!(url, RESPONSE_URL);
        message
    }
}

fn text(v: &Value) -> &str {
    v["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_slack_launch_is_acknowledged_with_its_token_then_done_by_the_job() {
    let e = env().await;
    let (status, ack) = e.say("U1", "launch exp-1 idle=30").await;
    assert_eq!(status, 200);
    assert_eq!(ack["response_type"], "ephemeral");
    assert!(text(&ack).contains("Working on"), "{ack}");
    // The token is in the immediate reply, which only this user sees: never lost with a late
    // answer.
    let token = text(&ack)
        .split("only to you): `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the token in the acknowledgement")
        .to_string();
    assert_eq!(token.len(), 48, "{ack}");
    // The acknowledgement's only call remembers the request, against replays.
    let calls = e.calls.counts();
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        ["dynamodb:PutItem"],
        "{calls:?}"
    );
    assert_eq!(calls["dynamodb:PutItem"], 1);
    e.run_jobs().await;
    let answer = e.last_answer();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(text(&answer).contains("is launching"), "{answer}");
    assert!(
        !text(&answer).contains(&token),
        "the token is shown once: {answer}"
    );
    let nb = e.deps.store.require("exp-1").await.unwrap();
    assert_eq!(nb.owner, "slack:TLOCAL:U1");
    assert_eq!(nb.idle.idle_timeout_minutes, 30);
    assert_eq!(nb.state, State::Launching);
    // The notebook's secret is the token the user was shown.
    let stored = e
        .deps
        .secrets
        .get("/nbfleet/notebooks/exp-1/secret")
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(token.as_str()));
}

#[tokio::test]
async fn a_job_delivered_twice_is_done_once() {
    let e = env().await;
    e.say("U1", "launch exp-twice").await;
    let job = e.seen.jobs.lock().unwrap()[0].clone();
    e.seen.jobs.lock().unwrap().push(job);
    e.run_jobs().await;
    let answers = e.seen.answers.lock().unwrap().len();
    assert_eq!(answers, 1, "the second delivery answered again");
    assert!(
        text(&e.last_answer()).contains("is launching"),
        "{}",
        e.last_answer()
    );
    assert_eq!(e.calls.counts().get("ec2:RunInstances"), Some(&1));
}

#[tokio::test]
async fn quick_commands_are_answered_at_once() {
    let e = env().await;
    let (_, list) = e.say("U1", "list").await;
    assert!(text(&list).contains("No notebooks yet"), "{list}");
    e.say("U1", "launch exp-2").await;
    e.run_jobs().await;
    let (_, list) = e.say("U1", "list").await;
    assert!(text(&list).contains("*exp-2*: Launching"), "{list}");
    let (_, status) = e.say("U1", "status exp-2").await;
    assert!(text(&status).starts_with("*exp-2*: Launching"), "{status}");
    assert!(
        e.seen.jobs.lock().unwrap().is_empty(),
        "a quick command queued a job"
    );
    let (_, help) = e.say("U1", "help").await;
    assert_eq!(text(&help), USAGE);
}

#[tokio::test]
async fn a_slack_set_changes_my_notebook_and_a_bad_value_or_another_user_is_refused() {
    let e = env().await;
    e.say("U1", "launch exp-set").await;
    e.run_jobs().await;
    e.say("U1", "set exp-set idle=45 gpu=20").await;
    e.run_jobs().await;
    assert!(
        text(&e.last_answer()).contains("set idle_timeout_minutes, gpu_threshold_pct"),
        "{}",
        e.last_answer()
    );
    let nb = e.deps.store.require("exp-set").await.unwrap();
    assert_eq!(
        (nb.idle.idle_timeout_minutes, nb.idle.gpu_threshold_pct),
        (45, 20)
    );
    e.say("U1", "set exp-set idle=0").await;
    e.run_jobs().await;
    assert!(
        text(&e.last_answer()).contains("idle_timeout_minutes"),
        "{}",
        e.last_answer()
    );
    e.say("U2", "set exp-set idle=90").await;
    e.run_jobs().await;
    assert!(
        text(&e.last_answer()).starts_with("Refused:"),
        "{}",
        e.last_answer()
    );
    assert_eq!(
        e.deps
            .store
            .require("exp-set")
            .await
            .unwrap()
            .idle
            .idle_timeout_minutes,
        45
    );
}

#[tokio::test]
async fn another_slack_user_cannot_stop_my_notebook() {
    let e = env().await;
    e.say("U1", "launch exp-3").await;
    e.run_jobs().await;
    e.say("U2", "stop exp-3").await;
    e.run_jobs().await;
    assert!(
        text(&e.last_answer()).starts_with("Refused:"),
        "{}",
        e.last_answer()
    );
    assert_eq!(
        e.deps.store.require("exp-3").await.unwrap().state,
        State::Launching
    );
}

#[tokio::test]
async fn a_slack_user_mapped_to_an_owner_stops_their_cli_notebook_and_an_unmapped_one_cannot() {
    let mut e = env().await;
    const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/DataScientist/alice";
    let alice = nbfleet_testkit::api::principal(&e.deps, ALICE).unwrap();
    e.env.deps.cfg.slack.owners.insert("U1".into(), alice.id.clone());
    nbfleet_testkit::api::launch(&e.deps, ALICE, br#"{"name":"from-cli"}"#)
        .await
        .unwrap();
    e.force_state("from-cli", State::Ready).await;
    e.say("U2", "stop from-cli").await;
    e.run_jobs().await;
    assert!(
        text(&e.last_answer()).starts_with("Refused:"),
        "{}",
        e.last_answer()
    );
    e.say("U1", "stop from-cli").await;
    e.run_jobs().await;
    assert!(text(&e.last_answer()).contains("stopping"), "{}", e.last_answer());
    assert_eq!(
        e.deps.store.require("from-cli").await.unwrap().state,
        State::Stopping
    );
}

#[tokio::test]
async fn a_bad_signature_an_old_request_or_a_stranger_gets_nothing_and_costs_no_aws_call() {
    let e = env().await;
    let now = e.ts();
    let forged = request("not-the-secret", now, setup::SLACK_TEAM, "U1", "list");
    let (status, body) = slash(&e.deps, &e.seen, SECRET.as_bytes(), &forged).await;
    assert_eq!(status, 401, "{body}");
    let old = request(SECRET, now - 301, setup::SLACK_TEAM, "U1", "list");
    assert_eq!(slash(&e.deps, &e.seen, SECRET.as_bytes(), &old).await.0, 401);
    let good = || request(SECRET, now, setup::SLACK_TEAM, "U1", "launch exp-4");
    let refused: [(&str, SlackHttp); 7] = [
        (
            "future-dated",
            request(SECRET, now + 301, setup::SLACK_TEAM, "U1", "list"),
        ),
        (
            "no signature",
            SlackHttp {
                signature: None,
                ..good()
            },
        ),
        (
            "no timestamp",
            SlackHttp {
                timestamp: None,
                ..good()
            },
        ),
        (
            "a timestamp that is not a number",
            SlackHttp {
                timestamp: Some("soon".into()),
                ..good()
            },
        ),
        (
            "a signature without v0=",
            SlackHttp {
                signature: good().signature.map(|s| s[3..].to_string()),
                ..good()
            },
        ),
        (
            "a body changed after signing",
            SlackHttp {
                body: good()
                    .body
                    .iter()
                    .map(|b| if *b == b'4' { b'5' } else { *b })
                    .collect(),
                ..good()
            },
        ),
        (
            "the body dropped",
            SlackHttp {
                body: Vec::new(),
                ..good()
            },
        ),
    ];
    for (case, req) in refused {
        let (status, body) = slash(&e.deps, &e.seen, SECRET.as_bytes(), &req).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert!(body["error"]["message"].is_string(), "{case}: {body}");
    }
    let stranger = request(SECRET, now, "TOTHER", "U1", "launch exp-4");
    let (status, body) = slash(&e.deps, &e.seen, SECRET.as_bytes(), &stranger).await;
    assert_eq!(status, 200);
    assert!(text(&body).contains("not allowed"), "{body}");
    assert_eq!(e.calls.total(), 0, "{:?}", e.calls.counts());
    assert!(e.seen.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn passwords_and_unknown_commands_get_the_usage_and_no_job() {
    let e = env().await;
    for text_ in [
        "launch exp-5 password=hunter2",
        "reboot exp-5",
        "launch exp-5 $(curl evil)",
    ] {
        let (status, body) = e.say("U1", text_).await;
        assert_eq!(status, 200);
        assert!(text(&body).ends_with(USAGE), "{text_}: {body}");
    }
    assert!(e.seen.jobs.lock().unwrap().is_empty());
    assert_eq!(e.calls.total(), 0);
}

#[tokio::test]
async fn an_api_gateway_base64_body_is_decoded_before_it_is_verified() {
    let e = env().await;
    let req = request(SECRET, e.ts(), setup::SLACK_TEAM, "U1", "help");
    let event = json!({
        "rawPath": "/slack/commands",
        "requestContext": {"http": {"method": "POST"}},
        "headers": {
            "X-Slack-Request-Timestamp": req.timestamp,
            "x-slack-signature": req.signature,
        },
        "isBase64Encoded": true,
        "body": base64::engine::general_purpose::STANDARD.encode(&req.body),
    });
    let decoded = nbfleet_http::lambda::request_from_event(&event).unwrap();
    assert_eq!(decoded.body, req.body);
    let api = nbfleet_http::Api::new(e.deps.clone()).with_jobs(std::sync::Arc::new(Recorded::default()));
    let answer = nbfleet_http::dispatch(&api, &decoded).await;
    assert_eq!((answer.status, text(&answer.body)), (200, USAGE));
}

#[tokio::test]
async fn a_replayed_request_that_changes_something_is_refused() {
    let e = env().await;
    let req = request(SECRET, e.ts(), setup::SLACK_TEAM, "U1", "launch exp-6");
    assert_eq!(slash(&e.deps, &e.seen, SECRET.as_bytes(), &req).await.0, 200);
    let (status, body) = slash(&e.deps, &e.seen, SECRET.as_bytes(), &req).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("already received"), "{body}");
    assert_eq!(
        e.seen.jobs.lock().unwrap().len(),
        1,
        "the replay queued a second job"
    );
    // Reading is harmless: the same `list` twice is answered twice.
    let list = request(SECRET, e.ts(), setup::SLACK_TEAM, "U1", "list");
    for _ in 0..2 {
        assert_eq!(slash(&e.deps, &e.seen, SECRET.as_bytes(), &list).await.0, 200);
    }
}

#[tokio::test]
async fn a_job_nobody_signed_is_refused_and_changes_nothing() {
    let e = env().await;
    let signed = request(SECRET, e.ts(), setup::SLACK_TEAM, "U1", "launch exp-mine");
    // Someone who may invoke the Slack function edits a real job: another command, as
    // another user, answered elsewhere.
    let mut forged = nbfleet_testkit::api::slack_job(&signed);
    forged.body = forged.body.replace("exp-mine", "exp-theirs").replace("U1", "U2");
    let err = run_job(&e.deps, &e.seen, SECRET.as_bytes(), &forged)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401, "{err}");
    // Or makes one up with a signature of their own.
    let made_up = nbfleet_testkit::api::slack_job(&request(
        "not-the-secret",
        e.ts(),
        setup::SLACK_TEAM,
        "U1",
        "launch exp-x",
    ));
    assert_eq!(
        run_job(&e.deps, &e.seen, SECRET.as_bytes(), &made_up)
            .await
            .unwrap_err()
            .status(),
        401
    );
    assert!(e.deps.store.get("exp-theirs").await.unwrap().is_none());
    assert!(e.deps.store.get("exp-x").await.unwrap().is_none());
    assert_eq!(e.calls.counts().get("ec2:RunInstances"), None);
    assert!(e.seen.answers.lock().unwrap().is_empty());
    // The real job, even delivered long after the 5-minute window, runs.
    e.advance(30);
    run_job(
        &e.deps,
        &e.seen,
        SECRET.as_bytes(),
        &nbfleet_testkit::api::slack_job(&signed),
    )
    .await
    .unwrap();
    assert_eq!(
        e.deps.store.require("exp-mine").await.unwrap().state,
        State::Launching
    );
}

#[tokio::test]
async fn a_captured_job_sent_again_after_its_replay_mark_expired_is_refused() {
    let e = env().await;
    let signed = request(SECRET, e.ts(), setup::SLACK_TEAM, "U1", "launch exp-old");
    let job = nbfleet_testkit::api::slack_job(&signed);
    // A day and more on, the mark that the job ran is gone; its age still refuses it.
    e.advance(25 * 60);
    let err = run_job(&e.deps, &e.seen, SECRET.as_bytes(), &job)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401, "{err}");
    assert!(err.to_string().contains("outside the hour"), "{err}");
    assert!(e.deps.store.get("exp-old").await.unwrap().is_none());
    // So is a click's job.
    let click = nbfleet_testkit::api::slack_click(
        SECRET,
        e.ts() - 2 * 3600,
        (setup::SLACK_TEAM, "U1"),
        "nbfleet_stop_now",
        "exp-old",
        "1733480123.9",
    );
    let late = nbfleet_testkit::api::slack_job(&click);
    assert_eq!(
        run_job(&e.deps, &e.seen, SECRET.as_bytes(), &late)
            .await
            .unwrap_err()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_response_url_off_slacks_hooks_host_is_refused_before_anything_runs() {
    let e = env().await;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("team_id", setup::SLACK_TEAM)
        .append_pair("user_id", "U1")
        .append_pair("text", "launch exp-ssrf")
        .append_pair("response_url", "https://169.254.169.254/latest/meta-data/")
        .finish();
    let ts = e.ts().to_string();
    let req = SlackHttp {
        signature: Some(sign(SECRET.as_bytes(), &ts, body.as_bytes())),
        timestamp: Some(ts),
        body: body.into_bytes(),
    };
    let (status, _) = slash(&e.deps, &e.seen, SECRET.as_bytes(), &req).await;
    assert_eq!(status, 401);
    assert!(e.seen.jobs.lock().unwrap().is_empty());
    assert_eq!(e.calls.total(), 0, "{:?}", e.calls.counts());
}

/// Slack's `response_url` is down: the answer is lost, the work is not.
struct DeadResponseUrl;

#[async_trait::async_trait]
impl Responder for DeadResponseUrl {
    async fn respond(&self, _: &str, _: &Value) -> Result<()> {
        Err(nbfleet_core::Error::Unavailable(
            "Slack response_url answered 500".into(),
        ))
    }
}

#[tokio::test]
async fn a_failing_response_url_loses_the_answer_not_the_launch() {
    let e = env().await;
    let job =
        nbfleet_testkit::api::slack_job(&request(SECRET, e.ts(), setup::SLACK_TEAM, "U1", "launch exp-7"));
    let err = run_job(&e.deps, &DeadResponseUrl, SECRET.as_bytes(), &job)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(
        e.deps.store.require("exp-7").await.unwrap().state,
        State::Launching
    );
}

// ---------------------------------------------------------------------------------------------
// Buttons: `POST /slack/interactions` (block_actions), acknowledged at once, done by the job.
// ---------------------------------------------------------------------------------------------

impl Slack {
    /// `user` presses `action` for `notebook`; Slack names the click `action_ts` and signs the
    /// request at `ts`.
    async fn click_at(
        &self,
        ts: i64,
        user: &str,
        action: &str,
        notebook: &str,
        action_ts: &str,
    ) -> Result<(u16, Value)> {
        let req = nbfleet_testkit::api::slack_click(
            SECRET,
            ts,
            (setup::SLACK_TEAM, user),
            action,
            notebook,
            action_ts,
        );
        nbfleet_testkit::api::interaction(&self.deps, &self.seen, SECRET.as_bytes(), &req).await
    }

    async fn click(&self, user: &str, action: &str, notebook: &str) -> Result<(u16, Value)> {
        self.click_at(self.ts(), user, action, notebook, "1733480123.456789")
            .await
    }

    /// `user` presses **Stop now** on `name`: it stops, and the answer (returned) says who asked.
    async fn stops_with_a_click(&self, user: &str, name: &str) -> Value {
        self.click(user, "nbfleet_stop_now", name).await.unwrap();
        self.run_jobs().await;
        let nb = self.deps.store.require(name).await.unwrap();
        assert!(
            matches!(nb.state, State::Stopping | State::Stopped),
            "{:?}",
            nb.state
        );
        let answer = self.last_answer();
        assert!(
            text(&answer).contains(&format!("stop asked by <@{user}>")),
            "{answer}"
        );
        answer
    }

    /// A notebook U1 launched from Slack, now Ready.
    async fn ready_from_slack(&self, name: &str) {
        let (status, _) = self.say("U1", &format!("launch {name}")).await;
        assert_eq!(status, 200);
        self.run_jobs().await;
        self.force(name, |nb| {
            nb.state = State::Ready;
            nb.running_since = Some(self.now());
        })
        .await;
    }
}

#[tokio::test]
async fn keep_running_extends_the_owners_notebook_once_even_when_slack_delivers_the_click_twice() {
    let e = env().await;
    e.ready_from_slack("exp-b").await;
    e.calls.clear();
    // Slack delivers the click twice (signed anew each time): one job, one extension.
    let ts = e.ts();
    assert_eq!(
        e.click_at(ts, "U1", "nbfleet_extend_60", "exp-b", "1733480123.1")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        e.click_at(ts + 1, "U1", "nbfleet_extend_60", "exp-b", "1733480123.1")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        e.seen.jobs.lock().unwrap().len(),
        1,
        "a click delivered twice is done once"
    );
    // The acknowledgement's only call marks the click as taken (one write each).
    let calls = e.calls.counts();
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        ["dynamodb:PutItem"],
        "{calls:?}"
    );
    assert_eq!(calls["dynamodb:PutItem"], 2);
    let job: Job = serde_json::from_value(e.seen.jobs.lock().unwrap()[0][JOB_KEY].clone()).unwrap();
    e.run_jobs().await;
    let nb = e.deps.store.require("exp-b").await.unwrap();
    let until = nb.snoozed_until.expect("extended");
    assert!(until >= e.now() + jiff::SignedDuration::from_mins(59), "{until}");
    // The job delivered again (Lambda, or someone who may invoke the function, minutes on):
    // done once.
    let answers = e.seen.answers.lock().unwrap().len();
    e.advance(10);
    run_job(&e.deps, &e.seen, SECRET.as_bytes(), &job).await.unwrap();
    assert_eq!(
        e.deps.store.require("exp-b").await.unwrap().snoozed_until,
        Some(until)
    );
    assert_eq!(e.seen.answers.lock().unwrap().len(), answers, "no second answer");
    // The message loses its buttons and says what happened, and who did it.
    let answer = e.last_answer();
    assert_eq!(answer["replace_original"], true, "{answer}");
    let blocks = answer["blocks"].as_array().unwrap();
    assert!(blocks.iter().all(|b| b["type"] != "actions"), "{answer}");
    let said = blocks.last().unwrap()["elements"][0]["text"].as_str().unwrap();
    assert!(
        said.contains("kept running to ") && said.ends_with("by <@U1>"),
        "{said}"
    );
    nbfleet_core::blocks::check(&answer).unwrap();
}

#[tokio::test]
async fn a_strangers_click_is_refused_with_not_yours_only_to_them_and_changes_nothing() {
    let e = env().await;
    e.ready_from_slack("exp-c").await;
    for action in ["nbfleet_extend_240", "nbfleet_stop_now", "nbfleet_delete"] {
        e.click("U2", action, "exp-c").await.unwrap();
        e.run_jobs().await;
        let answer = e.last_answer();
        assert_eq!(answer["response_type"], "ephemeral", "{answer}");
        assert_eq!(answer["replace_original"], false, "{answer}");
        assert!(text(&answer).contains("exp-c is not yours"), "{answer}");
    }
    let nb = e.deps.store.require("exp-c").await.unwrap();
    assert_eq!(nb.state, State::Ready);
    assert_eq!(nb.snoozed_until, None);
}

#[tokio::test]
async fn a_slack_admin_the_operator_listed_may_press_anyones_buttons_and_nobody_else_is_one() {
    let mut e = env().await;
    e.env.deps.cfg.slack.admins = vec!["U9".into()];
    e.ready_from_slack("exp-adm").await;
    e.click("U2", "nbfleet_stop_now", "exp-adm").await.unwrap();
    e.run_jobs().await;
    assert!(text(&e.last_answer()).contains("exp-adm is not yours"));
    e.stops_with_a_click("U9", "exp-adm").await;
}

#[tokio::test]
async fn stop_now_stops_the_notebook_and_says_so_in_place_of_the_buttons() {
    let e = env().await;
    e.ready_from_slack("exp-d").await;
    let answer = e.stops_with_a_click("U1", "exp-d").await;
    assert_eq!(answer["replace_original"], true);
}

#[tokio::test]
async fn forged_stale_and_replayed_clicks_are_refused_before_any_aws_call() {
    let e = env().await;
    e.ready_from_slack("exp-e").await;
    e.calls.clear();
    let forged = nbfleet_testkit::api::slack_click(
        "not-the-secret",
        e.ts(),
        (setup::SLACK_TEAM, "U1"),
        "nbfleet_delete",
        "exp-e",
        "1.1",
    );
    let refused = nbfleet_testkit::api::interaction(&e.deps, &e.seen, SECRET.as_bytes(), &forged).await;
    assert!(
        matches!(refused, Err(nbfleet_core::Error::Unauthorized(_))),
        "{refused:?}"
    );
    let stale = e
        .click_at(e.ts() - 600, "U1", "nbfleet_delete", "exp-e", "1.2")
        .await;
    assert!(
        matches!(stale, Err(nbfleet_core::Error::Unauthorized(_))),
        "{stale:?}"
    );
    assert!(e.calls.counts().is_empty(), "no AWS call: {:?}", e.calls.counts());
    // The same signed request twice (a replay inside the window): done once.
    let req = nbfleet_testkit::api::slack_click(
        SECRET,
        e.ts(),
        (setup::SLACK_TEAM, "U1"),
        "nbfleet_extend_60",
        "exp-e",
        "1.3",
    );
    for _ in 0..2 {
        nbfleet_testkit::api::interaction(&e.deps, &e.seen, SECRET.as_bytes(), &req)
            .await
            .unwrap();
    }
    assert_eq!(e.seen.jobs.lock().unwrap().len(), 1);
    // Not nbfleet's button, or not a button: acknowledged, nothing done.
    e.click("U1", "nbfleet_reboot", "exp-e").await.unwrap();
    assert_eq!(e.seen.jobs.lock().unwrap().len(), 1);
    assert_eq!(e.deps.store.require("exp-e").await.unwrap().state, State::Ready);
}

#[tokio::test]
async fn rm_asks_with_a_delete_button_and_deletes_only_when_it_is_pressed() {
    let e = env().await;
    e.ready_from_slack("exp-f").await;
    let (status, ask) = e.say("U1", "rm exp-f").await;
    assert_eq!(status, 200);
    assert_eq!(ask["response_type"], "ephemeral");
    let button = &ask["blocks"][1]["elements"][0];
    assert_eq!(button["action_id"], "nbfleet_delete", "{ask}");
    assert_eq!(button["value"], "exp-f");
    assert!(button["confirm"].is_object(), "the button asks once more: {ask}");
    nbfleet_core::blocks::check(&ask).unwrap();
    assert_eq!(e.deps.store.require("exp-f").await.unwrap().state, State::Ready);
    e.click("U1", "nbfleet_delete", "exp-f").await.unwrap();
    e.run_jobs().await;
    let nb = e.deps.store.require("exp-f").await.unwrap();
    assert!(
        matches!(nb.state, State::Terminating | State::Terminated),
        "{:?}",
        nb.state
    );
    assert!(
        text(&e.last_answer()).contains("kept as a snapshot"),
        "{}",
        e.last_answer()
    );
}

#[tokio::test]
async fn snapshots_and_costs_answer_at_once() {
    let e = env().await;
    let (_, none) = e.say("U1", "snapshots").await;
    assert!(text(&none).contains("no snapshots"), "{none}");
    e.ready_from_slack("exp-g").await;
    let (_, costs) = e.say("U1", "costs").await;
    assert!(text(&costs).starts_with("This month: $"), "{costs}");
    assert!(text(&costs).contains("*exp-g*"), "{costs}");
}
