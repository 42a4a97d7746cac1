//! Bad input on the HTTP API, through the local stack's router as a client sends it: malformed
//! and mistyped JSON, names with shell metacharacters, unicode or path traversal, garbage
//! CIDRs, absurd numbers, unknown instance types, an AMI in the request, oversized bodies, and
//! unknown routes and methods. Each gets a clear 4xx with the error body, makes no AWS call, and
//! loses nothing: a notebook launched before is unchanged after.

use nbfleet_local::harness::http_client;
use nbfleet_local::moto::{self, CallLog};
use nbfleet_local::stack;
use nbfleet_testkit::stack::{InProcess, Options, in_process};
use serde_json::{Value, json};

/// `(method, path, body, status)`: bodies are raw text, so malformed JSON can be sent.
fn cases() -> Vec<(&'static str, String, String, u16)> {
    let launch = |body: Value| ("POST", "/notebooks".to_string(), body.to_string(), 400);
    let mut cases = vec![
        // Malformed JSON, wrong types, unknown or missing fields.
        ("POST", "/notebooks".into(), "{\"name\": ".into(), 400),
        ("POST", "/notebooks".into(), "[\"kept\"]".into(), 400),
        ("POST", "/notebooks".into(), String::new(), 400),
        launch(json!({})),
        launch(json!({"name": 42})),
        launch(json!({"name": "nb", "idle_timeout_minutes": "ten"})),
        launch(json!({"name": "nb", "access": "wide open"})),
        launch(json!({"name": "nb", "surprise": true})),
        // Absurd numbers: negative, zero, huge, overflowing, fractional.
        launch(json!({"name": "nb", "idle_timeout_minutes": -5})),
        launch(json!({"name": "nb", "idle_timeout_minutes": 0})),
        launch(json!({"name": "nb", "idle_timeout_minutes": 1e30})),
        launch(json!({"name": "nb", "idle_timeout_minutes": 12.5})),
        (
            "POST",
            "/notebooks".into(),
            r#"{"name":"nb","volume_gb":18446744073709551616}"#.into(),
            400,
        ),
        launch(json!({"name": "nb", "volume_gb": 0})),
        launch(json!({"name": "nb", "volume_gb": 1_000_000})),
        launch(json!({"name": "nb", "count_connections": "yes"})),
        launch(json!({"name": "nb", "schedule": {"days": "someday"}})),
        launch(json!({"name": "nb", "instance_fallback_minutes": 99_999_999})),
        // Unknown instance types; an AMI id in the request.
        launch(json!({"name": "nb", "instance_type": "g99.mega"})),
        launch(json!({"name": "nb", "instance_type": "g5.xlarge; reboot"})),
        launch(json!({"name": "nb", "ami": "ami-0123456789abcdef0"})),
        // Garbage CIDRs; the world without allow-world.
        launch(json!({"name": "nb", "access": {"mode": "cidr", "cidrs": ["300.1.1.1/8"]}})),
        launch(json!({"name": "nb", "access": {"mode": "cidr", "cidrs": ["10.0.0.0/33"]}})),
        launch(json!({"name": "nb", "access": {"mode": "cidr", "cidrs": []}})),
        launch(json!({"name": "nb", "access": {"mode": "cidr", "cidrs": ["0.0.0.0/0"]}})),
        launch(json!({"name": "nb", "access": {"mode": "cidr", "cidrs": ["::/0"]}})),
        launch(json!({"name": "nb", "access": {"mode": "teleport"}})),
        // Extend: the number of minutes.
        (
            "POST",
            "/notebooks/kept/extend".into(),
            r#"{"minutes": -1}"#.into(),
            400,
        ),
        (
            "POST",
            "/notebooks/kept/extend".into(),
            r#"{"minutes": 1e12}"#.into(),
            400,
        ),
        (
            "POST",
            "/notebooks/kept/extend".into(),
            r#"{"minutes": "soon"}"#.into(),
            400,
        ),
        // Changes that cannot be: no body, a disk under the floor, unknown fields, a bad zone.
        ("PATCH", "/notebooks/kept".into(), String::new(), 400),
        (
            "PATCH",
            "/notebooks/kept".into(),
            r#"{"volume_gb": 1}"#.into(),
            400,
        ),
        (
            "PATCH",
            "/notebooks/kept".into(),
            r#"{"owner": "mallory"}"#.into(),
            400,
        ),
        (
            "PATCH",
            "/notebooks/kept".into(),
            r#"{"schedule": {"tz": "Mars/Base"}}"#.into(),
            400,
        ),
        ("DELETE", "/snapshots/vol-0123".into(), String::new(), 400),
        ("GET", "/costs?since=tomorrow".into(), String::new(), 400),
        // Oversized bodies.
        (
            "POST",
            "/notebooks".into(),
            format!(r#"{{"name":"nb","pad":"{}"}}"#, "x".repeat(2 << 20)),
            413,
        ),
        // Unknown routes and methods.
        ("GET", "/admin".into(), String::new(), 404),
        ("PUT", "/notebooks".into(), String::new(), 404),
        ("PATCH", "/notebooks".into(), String::new(), 404),
        ("POST", "/notebooks/kept/reboot".into(), String::new(), 404),
        ("GET", "/notebooks/kept/start".into(), String::new(), 404),
        ("GET", "/notebooks/kept/check".into(), String::new(), 404),
        ("POST", "/types".into(), String::new(), 404),
        ("DELETE", "/notebooks".into(), String::new(), 404),
    ];
    // Names with shell metacharacters, unicode, path traversal, or empty or too long: in a
    // launch body and in the path of every route that takes one.
    for name in [
        "kept;reboot",
        "$(reboot)",
        "kept`id`",
        "kept|sh",
        "naïve",
        "名前",
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "Kept",
        "-kept",
        "k",
        &"k".repeat(40),
    ] {
        cases.push(launch(json!({ "name": name })));
        if name == ".." {
            continue; // a client resolves `..` in a URL path before sending it
        }
        cases.push(("GET", format!("/notebooks/{name}"), String::new(), 400));
        cases.push(("POST", format!("/notebooks/{name}/start"), String::new(), 400));
        cases.push(("POST", format!("/notebooks/{name}/stop"), String::new(), 400));
        cases.push(("POST", format!("/notebooks/{name}/check"), String::new(), 400));
        cases.push(("DELETE", format!("/notebooks/{name}"), String::new(), 400));
        cases.push((
            "PATCH",
            format!("/notebooks/{name}"),
            r#"{"idle_timeout_minutes": 30}"#.into(),
            400,
        ));
    }
    cases.push(launch(json!({ "name": "" })));
    cases
}

#[tokio::test]
async fn every_bad_request_is_a_clear_4xx_that_makes_no_aws_call_and_loses_nothing() {
    let InProcess {
        stack,
        listener,
        settings,
        base,
    } = in_process(Options {
        // No EC2 event is wanted here: the watcher polls once an hour.
        watch_interval_ms: 3_600_000,
        transition_ms: 100,
        ..Options::new("bad-input")
    })
    .await;
    let calls = CallLog::default();
    let (endpoint, account) = (&settings.moto_endpoint, &settings.account);
    let deps = moto::clients_logged(endpoint, account, calls.clone()).deps(stack.deps.cfg.clone());
    tokio::spawn(stack::serve(deps, listener));
    let client = http_client();

    let launched = client
        .post(format!("{base}/notebooks"))
        .json(&json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 202);
    let get_kept = || async {
        client
            .get(format!("{base}/notebooks/kept"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = get_kept().await;
    let calls_before = calls.total();

    let cases = cases();
    for (method, path, body, status) in &cases {
        let resp = client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let got = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        let shown = format!("{method} {path} {:.120}", body);
        assert_eq!(got, *status, "{shown}: {answer}");
        let error = &answer["error"];
        assert!(error["code"].is_string(), "{shown}: no error code in {answer}");
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{shown}: no message in {answer}"
        );
        if *status == 400 {
            assert!(error["field"].is_string(), "{shown}: no field in {answer}");
        }
    }
    assert_eq!(
        calls.total(),
        calls_before,
        "bad requests made AWS calls: {:?}",
        calls.counts()
    );
    // A caller whose role session name the SDK made up (it changes on every run) is refused
    // before anything is read, and told how to name the session.
    for (method, path) in [("POST", "/notebooks/kept/stop"), ("DELETE", "/notebooks/kept")] {
        let resp = client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header(
                "x-nbfleet-user",
                "arn:aws:sts::123456789012:assumed-role/Team/botocore-session-1733400000",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
        let answer: Value = resp.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("role_session_name"), "{answer}");
    }
    assert_eq!(calls.total(), calls_before, "{:?}", calls.counts());
    // The GET above is the only read: the notebook is as it was.
    let after = get_kept().await;
    assert_eq!(after["notebook"]["version"], before["notebook"]["version"]);
    println!("{} bad requests refused", cases.len());
}
