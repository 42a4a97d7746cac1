//! Who may act on a notebook, through the whole Lambda edge with request contexts shaped as API
//! Gateway sends them (events/launch.json): ownership compares IAM's unique id, a shared role's
//! sessions are separate owners in person mode and one owner in role mode, and admins are
//! checked when the configuration loads.

use lambda_http::Request;
use nbfleet_core::State;
use nbfleet_testkit::Env;
use serde_json::Value;

const ALICE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/DataScientist/alice";
const ALICE_ID: &str = "AROAEXAMPLEROLEID:alice";

/// A signed request as API Gateway hands it over: `method path` with `body`, by `arn` whose
/// unique id is `user_id`.
fn request(method: &str, path: &str, arn: &str, user_id: &str, body: &str) -> Request {
    let sample =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/launch.json")).unwrap();
    let mut event: Value = serde_json::from_str(&sample).unwrap();
    event["routeKey"] = format!("{method} {path}").into();
    event["rawPath"] = path.into();
    event["requestContext"]["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    let iam = &mut event["requestContext"]["authorizer"]["iam"];
    iam["userArn"] = arn.into();
    iam["userId"] = user_id.into();
    iam["callerId"] = user_id.into();
    event["body"] = body.into();
    event["headers"]["content-length"] = body.len().to_string().into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// Launches `name` as Alice and makes it Ready.
async fn alices_notebook(e: &Env, name: &str) {
    let body = format!(r#"{{"name":"{name}"}}"#);
    let resp =
        nbfleet_testkit::api::serve(&e.deps, request("POST", "/notebooks", ALICE_ARN, ALICE_ID, &body)).await;
    assert_eq!(resp.status(), 202, "{:?}", resp.body());
    e.force_state(name, State::Ready).await;
}

/// `POST /notebooks/{name}/stop` as `arn` with `user_id`: the status.
async fn stop(e: &Env, name: &str, arn: &str, user_id: &str) -> u16 {
    let path = format!("/notebooks/{name}/stop");
    nbfleet_testkit::api::serve(&e.deps, request("POST", &path, arn, user_id, ""))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_owner_is_iams_unique_id_so_a_shared_roles_other_session_or_a_remade_role_owns_nothing() {
    let e = Env::in_memory().await;
    alices_notebook(&e, "hers").await;
    let nb = e.record("hers").await;
    assert_eq!(
        (nb.owner.as_str(), nb.owner_id.as_deref()),
        (ALICE_ARN, Some(ALICE_ID))
    );
    // Bob, on the same role under his own session name.
    let bob = "arn:aws:sts::123456789012:assumed-role/DataScientist/bob";
    assert_eq!(stop(&e, "hers", bob, "AROAEXAMPLEROLEID:bob").await, 403);
    // The role deleted and made again under the same name: a new unique id, not Alice.
    assert_eq!(stop(&e, "hers", ALICE_ARN, "AROAREMADEROLEID:alice").await, 403);
    // A context whose ARN and unique id disagree is refused before anything is read.
    assert_eq!(stop(&e, "hers", ALICE_ARN, "AROAEXAMPLEROLEID:bob").await, 401);
    assert_eq!(e.record("hers").await.state, State::Ready);
    assert_eq!(stop(&e, "hers", ALICE_ARN, ALICE_ID).await, 202);
}

#[tokio::test]
async fn in_role_mode_every_session_of_the_role_owns_the_teams_notebooks_and_no_other_role_does() {
    let e = Env::with_vars([("NBFLEET_OWNER_MODE", "role")]).await;
    alices_notebook(&e, "team-nb").await;
    let nb = e.record("team-nb").await;
    assert_eq!(nb.owner, "arn:aws:iam::123456789012:role/DataScientist");
    assert_eq!(nb.owner_id.as_deref(), Some("AROAEXAMPLEROLEID"));
    // Someone on another role who calls their session "alice" owns nothing of the team's.
    let other = "arn:aws:sts::123456789012:assumed-role/Contractor/alice";
    assert_eq!(stop(&e, "team-nb", other, "AROACONTRACTOR:alice").await, 403);
    // Bob, on the team's role, even with the session name an SDK made up.
    let bob = "arn:aws:sts::123456789012:assumed-role/DataScientist/botocore-session-1733400000";
    assert_eq!(
        stop(
            &e,
            "team-nb",
            bob,
            "AROAEXAMPLEROLEID:botocore-session-1733400000"
        )
        .await,
        202
    );
}

#[tokio::test]
async fn in_person_mode_a_session_name_an_sdk_made_up_is_refused_with_how_to_set_one() {
    let e = Env::in_memory().await;
    let made_up = "arn:aws:sts::123456789012:assumed-role/DataScientist/botocore-session-1733400000";
    let resp = nbfleet_testkit::api::serve(
        &e.deps,
        request(
            "POST",
            "/notebooks",
            made_up,
            "AROAEXAMPLEROLEID:botocore-session-1733400000",
            r#"{"name":"nb-1"}"#,
        ),
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert!(String::from_utf8_lossy(resp.body()).contains("role_session_name"));
    assert!(e.deps.store.get("nb-1").await.unwrap().is_none());
}

#[tokio::test]
async fn an_admin_role_acts_through_any_of_its_sessions_and_nobody_else_is_an_admin() {
    let e = Env::with_vars([("NBFLEET_ADMINS", "arn:aws:iam::123456789012:role/ops/Platform")]).await;
    alices_notebook(&e, "watched").await;
    // A role named like the admin role in another account is not it.
    let stranger = "arn:aws:sts::210987654321:assumed-role/Platform/oncall";
    assert_eq!(stop(&e, "watched", stranger, "AROASTRANGER:oncall").await, 403);
    let oncall = "arn:aws:sts::123456789012:assumed-role/Platform/oncall";
    assert_eq!(stop(&e, "watched", oncall, "AROAPLATFORM:oncall").await, 202);
}
