//! template.yaml against the code, offline: the facts come from `scripts/check-template.py
//! --facts` (the template parsed by cfn-lint's decoder, every !Ref resolved to the parameter's
//! default), and are compared with what the code actually serves, reads and allows.

use nbfleet_tests::template_facts as facts;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn functions(facts: &Value) -> &serde_json::Map<String, Value> {
    facts["functions"].as_object().unwrap()
}

#[test]
fn the_api_routes_in_the_template_are_the_routes_the_local_stack_serves() {
    let facts = facts();
    let in_template: BTreeSet<String> = functions(&facts)
        .values()
        .flat_map(|f| f["routes"].as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let served: BTreeSet<String> = nbfleet_http::router::routes().into_iter().collect();
    assert_eq!(in_template, served);
    // And each API function is sent exactly the routes it serves (it links no others).
    for (function, facts) in functions(&facts) {
        if function == "nbfleet-slack" {
            continue;
        }
        let in_template: BTreeSet<String> = facts["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let served: BTreeSet<String> = nbfleet_http::router::routes_of(function).into_iter().collect();
        assert_eq!(in_template, served, "{function}");
    }
}

/// A function's environment as Lambda gives it: the template's variables plus AWS_REGION.
fn environment(function: &Value) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = function["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect();
    env.insert("AWS_REGION".into(), "us-east-1".into());
    env
}

/// Read by every function with a default that holds where the template leaves them out: bounds
/// the template keeps at the code's, and Slack settings only some functions get (the notice
/// settings go to every function; the request's settings and the admins to the slack function).
const OPTIONAL_KNOBS: [&str; 14] = [
    "NBFLEET_IDLE_TIMEOUT_MINUTES_MIN",
    "NBFLEET_IDLE_TIMEOUT_MINUTES_MAX",
    "NBFLEET_VOLUME_GB_MIN",
    "NBFLEET_SLACK_SIGNING_SECRET_PARAMETER",
    "NBFLEET_SLACK_WEBHOOK_PARAMETER",
    "NBFLEET_SLACK_BOT_TOKEN_PARAMETER",
    "NBFLEET_SLACK_CHANNEL",
    "NBFLEET_SLACK_DELIVER",
    "NBFLEET_SLACK_TEAMS",
    "NBFLEET_SLACK_USERS",
    "NBFLEET_SLACK_OWNERS",
    "NBFLEET_SLACK_RESPONSE_HOSTS",
    "NBFLEET_SLACK_OPERATOR_CHANNEL",
    "NBFLEET_SLACK_ADMINS",
];

#[test]
fn each_function_loads_its_configuration_from_exactly_what_the_template_sets() {
    for (name, f) in functions(&facts()) {
        let env = environment(f);
        if let Err(e) = nbfleet_core::config::from_vars(env.clone()) {
            panic!("{name}: the template's environment does not load: {e}");
        }
        let read = nbfleet_core::config::variables_read(env.clone());
        let set: BTreeSet<String> = env.keys().cloned().collect();
        let unread: Vec<&String> = set.difference(&read).collect();
        assert!(
            unread.is_empty(),
            "{name}: the template sets variables no code reads: {unread:?}"
        );
        let unset: Vec<&String> = read
            .difference(&set)
            .filter(|v| !OPTIONAL_KNOBS.contains(&v.as_str()) && *v != "NBFLEET_PRICES_SOURCE")
            .collect();
        assert!(
            unset.is_empty(),
            "{name}: the code reads variables the template does not set: {unset:?}"
        );
    }
}

/// One request as IAM or KMS sees it, for [`policy_allows`].
struct Request<'a> {
    action: &'a str,
    resource: &'a str,
    /// The caller's role, checked against a key policy's `Principal`; identity policies have
    /// none.
    principal: Option<&'a str>,
    /// The request's condition keys.
    context: &'a dyn Fn(&str) -> Option<String>,
    /// Policy variables and their values (`("${aws:userid}", "AROA…:alice")`).
    variables: &'a [(&'a str, &'a str)],
}

const ACCOUNT_ROOT: &str = "arn:aws:iam::123456789012:root";

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

fn glob(pattern: &str, s: &str) -> bool {
    let re = format!("^{}$", regex_lite::escape(pattern).replace("\\*", ".*"));
    regex_lite::Regex::new(&re).unwrap().is_match(s)
}

/// The answer of one policy's statements: allowed where an Allow matches and no Deny does. A
/// key policy's grant to the account root is taken at its worst (it delegates to IAM, and some
/// IAM policy allows everything), so it matches every principal of the account. Knows the
/// condition operators nbfleet's policies use, and refuses to guess at others.
fn policy_allows(statements: &[Value], req: &Request) -> bool {
    let matches = |st: &Value| {
        let principal_ok = match (st.get("Principal"), req.principal) {
            (None, _) => true,
            (Some(p), Some(caller)) => list(&p["AWS"]).iter().any(|p| p == caller || p == ACCOUNT_ROOT),
            (Some(_), None) => false,
        };
        let conditions_ok = st["Condition"].as_object().is_none_or(|conds| {
            conds.iter().all(|(op, kv)| {
                kv.as_object().unwrap().iter().all(|(key, want)| {
                    let have = (req.context)(key);
                    let wants: Vec<String> = list(want)
                        .iter()
                        .map(|w| {
                            req.variables
                                .iter()
                                .fold(w.clone(), |w, (var, value)| w.replace(var, value))
                        })
                        .collect();
                    match op.as_str() {
                        "StringEquals" => have.is_some_and(|h| wants.contains(&h)),
                        "StringNotEquals" => have.is_none_or(|h| !wants.contains(&h)),
                        "StringLike" => have.is_some_and(|h| wants.iter().any(|w| glob(w, &h))),
                        "BoolIfExists" => have.is_none_or(|h| wants.contains(&h)),
                        "Null" => have.is_none() == (wants[0] == "true"),
                        other => panic!("the evaluator does not know {other}"),
                    }
                })
            })
        });
        principal_ok
            && list(&st["Action"]).iter().any(|a| a == req.action)
            && list(&st["Resource"]).iter().any(|r| glob(r, req.resource))
            && conditions_ok
    };
    let denied = statements.iter().any(|st| st["Effect"] == "Deny" && matches(st));
    let allowed = statements.iter().any(|st| st["Effect"] == "Allow" && matches(st));
    allowed && !denied
}

/// IAM's answer for one GetParameter by an instance, from the role's statements.
fn instance_may_read(
    role: &Value,
    parameter_arn: &str,
    instance_arn: &str,
    tagged_for: Option<&str>,
) -> bool {
    let context = |key: &str| match key {
        "ec2:SourceInstanceARN" => Some(instance_arn.to_string()),
        "ssm:resourceTag/nbfleet:instance" => tagged_for.map(str::to_string),
        _ => None,
    };
    let req = Request {
        action: "ssm:GetParameter",
        resource: parameter_arn,
        principal: None,
        context: &context,
        variables: &[("${ec2:SourceInstanceARN}", instance_arn)],
    };
    policy_allows(role.as_array().unwrap(), &req)
}

#[test]
fn the_instance_role_reads_its_own_secret_and_no_other() {
    let facts = facts();
    let role = &facts["instance_role"];
    let secret =
        |nb: &str| format!("arn:aws:ssm:us-east-1:123456789012:parameter/nbfleet/notebooks/{nb}/secret");
    let a = "arn:aws:ec2:us-east-1:123456789012:instance/i-0aaaaaaaaaaaaaaaa";
    let b = "arn:aws:ec2:us-east-1:123456789012:instance/i-0bbbbbbbbbbbbbbbb";
    assert!(
        instance_may_read(role, &secret("alpha"), a, Some(a)),
        "its own secret"
    );
    assert!(
        !instance_may_read(role, &secret("beta"), a, Some(b)),
        "another notebook's secret"
    );
    assert!(
        !instance_may_read(role, &secret("gamma"), a, None),
        "a secret not yet granted"
    );
    let slack = "arn:aws:ssm:us-east-1:123456789012:parameter/nbfleet/slack/signing-secret";
    assert!(
        !instance_may_read(role, slack, a, Some(a)),
        "the Slack signing secret"
    );
}

/// One request to the notebook-secrets key, as KMS sees it.
struct KmsRequest<'a> {
    /// The caller's role (an assumed-role session of it).
    role: &'a str,
    action: &'a str,
    /// `kms:ViaService`: set when SSM calls KMS for the caller.
    via: Option<&'a str>,
    /// `kms:EncryptionContext:PARAMETER_ARN`, which SSM sets to the parameter's ARN.
    parameter: Option<&'a str>,
}

const VIA_SSM: Option<&str> = Some("ssm.us-east-1.amazonaws.com");

/// KMS's answer from the key policy alone.
fn key_allows(policy: &[Value], req: &KmsRequest) -> bool {
    let context = |key: &str| match key {
        "kms:ViaService" => req.via.map(str::to_string),
        "kms:EncryptionContext:PARAMETER_ARN" => req.parameter.map(str::to_string),
        other => panic!("the evaluator does not know the condition key {other}"),
    };
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let req = Request {
        action: req.action,
        resource: key,
        principal: Some(req.role),
        context: &context,
        variables: &[],
    };
    policy_allows(policy, &req)
}

/// What the key policy must say, checked on `policy`: the failures, empty when it holds.
fn key_policy_failures(policy: &[Value]) -> Vec<&'static str> {
    let role = |name: &str| format!("arn:aws:iam::123456789012:role/{name}");
    let (instance, launch, lifecycle, slack, events, stranger) = (
        role("NotebookInstanceRole"),
        role("LaunchFunctionRole"),
        role("LifecycleFunctionRole"),
        role("SlackFunctionRole"),
        role("EventsFunctionRole"),
        role("ReadOnlyEverything"),
    );
    let notebook = "arn:aws:ssm:us-east-1:123456789012:parameter/nbfleet/notebooks/alpha/secret";
    let slack_secret = "arn:aws:ssm:us-east-1:123456789012:parameter/nbfleet/slack/signing-secret";
    let ask = |role: &str, action: &str, via: Option<&str>, parameter: Option<&str>| {
        key_allows(
            policy,
            &KmsRequest {
                role,
                action,
                via,
                parameter,
            },
        )
    };
    let mut failures = Vec::new();
    let mut expect = |ok: bool, what: &'static str| {
        if !ok {
            failures.push(what);
        }
    };
    expect(
        ask(&instance, "kms:Decrypt", VIA_SSM, Some(notebook)),
        "an instance decrypts a notebook secret through SSM",
    );
    expect(
        !ask(&instance, "kms:Decrypt", None, Some(notebook)),
        "an instance cannot decrypt outside SSM",
    );
    expect(
        !ask(&instance, "kms:Decrypt", VIA_SSM, Some(slack_secret)),
        "an instance cannot decrypt another parameter",
    );
    expect(
        !ask(&stranger, "kms:Decrypt", VIA_SSM, Some(notebook)),
        "nobody else decrypts, whatever their IAM policy",
    );
    expect(
        !ask(&launch, "kms:Decrypt", VIA_SSM, Some(notebook)),
        "launch cannot decrypt",
    );
    for writer in [&launch, &lifecycle, &slack] {
        expect(
            ask(writer, "kms:Encrypt", VIA_SSM, Some(notebook)),
            "launch, lifecycle (a new credential) and slack encrypt through SSM",
        );
        expect(
            !ask(writer, "kms:Encrypt", None, Some(notebook)),
            "launch, lifecycle and slack encrypt only through SSM",
        );
    }
    expect(
        !ask(&events, "kms:Encrypt", VIA_SSM, Some(notebook)),
        "no other function encrypts",
    );
    for action in [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:ReEncryptFrom",
        "kms:CreateGrant",
    ] {
        expect(
            !ask(&stranger, action, VIA_SSM, Some(notebook)),
            "the account root is given no use of the key",
        );
    }
    failures
}

/// What `check` finds wrong with `policy` once `edit` has changed its statement `sid`: a
/// loosening the policy test must catch.
fn failures_when_loosened(
    policy: &[Value],
    check: fn(&[Value]) -> Vec<&'static str>,
    sid: &str,
    edit: impl Fn(&mut Value),
) -> Vec<&'static str> {
    let mut p = policy.to_vec();
    let i = p.iter().position(|s| s["Sid"] == sid).unwrap();
    edit(&mut p[i]);
    check(&p)
}

#[test]
fn the_secrets_key_lets_only_a_notebooks_instance_decrypt_through_ssm_and_a_loosened_policy_fails() {
    let facts = facts();
    let policy = facts["secrets_key_policy"].as_array().unwrap();
    assert_eq!(key_policy_failures(policy), Vec::<&str>::new());
    // Each loosening a careless edit could make is caught.
    let loosened =
        |sid: &str, edit: &dyn Fn(&mut Value)| failures_when_loosened(policy, key_policy_failures, sid, edit);
    assert!(
        !loosened("AccountAdministersButDoesNotUse", &|st| {
            st["Action"].as_array_mut().unwrap().push("kms:Decrypt".into());
        })
        .is_empty()
    );
    assert!(
        !loosened("InstancesDecryptThroughSsm", &|st| {
            st["Condition"].as_object_mut().unwrap().remove("StringEquals");
        })
        .is_empty()
    );
    assert!(
        !loosened("InstancesDecryptThroughSsm", &|st| {
            st["Principal"]["AWS"] = ACCOUNT_ROOT.into();
        })
        .is_empty()
    );
    assert!(
        !loosened("WritersEncryptThroughSsm", &|st| {
            st["Action"].as_array_mut().unwrap().push("kms:Decrypt".into());
        })
        .is_empty()
    );
    // Every function that writes secrets is configured with the key.
    for (name, f) in functions(&facts) {
        assert_eq!(
            f["env"]["NBFLEET_SECRETS_KEY"],
            "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "{name}"
        );
    }
}

/// One `ssm:StartSession` as IAM sees it: the caller's unique id, the instance's tags and the
/// session document.
struct SessionRequest<'a> {
    caller_id: &'a str,
    instance_tags: &'a [(&'a str, &'a str)],
    document: &'a str,
}

/// IAM's answer for a StartSession from a managed policy's statements: the instance and the
/// document are each a resource of the request, and each must be allowed (with
/// `ssm:SessionDocumentAccessCheck`, as the CLI sends it).
fn session_allowed(policy: &[Value], req: &SessionRequest) -> bool {
    let instance = "arn:aws:ec2:us-east-1:123456789012:instance/i-0aaaaaaaaaaaaaaaa";
    // AWS's own documents have no account in their ARN.
    let owner = match req.document.starts_with("AWS-") || req.document.starts_with("SSM-") {
        true => "",
        false => "123456789012",
    };
    let document = format!("arn:aws:ssm:us-east-1:{owner}:document/{}", req.document);
    let allows = |resource: &str, on_instance: bool| {
        let context = |key: &str| -> Option<String> {
            if key == "ssm:SessionDocumentAccessCheck" {
                return Some("true".into());
            }
            let tag = key.strip_prefix("ssm:resourceTag/")?;
            on_instance
                .then(|| {
                    req.instance_tags
                        .iter()
                        .find(|(k, _)| *k == tag)
                        .map(|(_, v)| v.to_string())
                })
                .flatten()
        };
        let request = Request {
            action: "ssm:StartSession",
            resource,
            principal: None,
            context: &context,
            variables: &[("${aws:userid}", req.caller_id)],
        };
        policy_allows(policy, &request)
    };
    allows(instance, true) && allows(&document, false)
}

const ALICE_ID: &str = "AROAEXAMPLEROLEID:alice";
const TUNNEL: &str = "JupyterTunnelDocument";

/// What the user policy must say about tunnels, checked on `policy`: the failures.
fn user_policy_failures(policy: &[Value]) -> Vec<&'static str> {
    let hers: &[(&str, &str)] = &[("nbfleet:notebook", "nb-a"), ("nbfleet:owner-id", ALICE_ID)];
    let his: &[(&str, &str)] = &[
        ("nbfleet:notebook", "nb-b"),
        ("nbfleet:owner-id", "AROAEXAMPLEROLEID:bob"),
    ];
    let someone_elses: &[(&str, &str)] = &[("Name", "training-box"), ("nbfleet:owner-id", ALICE_ID)];
    let ask = |instance_tags, document| {
        session_allowed(
            policy,
            &SessionRequest {
                caller_id: ALICE_ID,
                instance_tags,
                document,
            },
        )
    };
    let mut failures = Vec::new();
    let mut expect = |ok: bool, what: &'static str| {
        if !ok {
            failures.push(what);
        }
    };
    expect(ask(hers, TUNNEL), "a tunnel to her own notebook's Jupyter");
    expect(!ask(his, TUNNEL), "no tunnel to a colleague's notebook");
    expect(
        !ask(someone_elses, TUNNEL),
        "no tunnel to an instance that is not nbfleet's",
    );
    for other in [
        "AWS-StartPortForwardingSession",
        "AWS-StartPortForwardingSessionToRemoteHost",
        "AWS-StartInteractiveCommand",
        "SSM-SessionManagerRunShell",
    ] {
        expect(
            !ask(hers, other),
            "no other session document (another port, a shell)",
        );
    }
    failures
}

#[test]
fn a_tunnel_goes_only_to_your_own_notebooks_jupyter_and_a_loosened_policy_fails() {
    let facts = facts();
    let policy = facts["user_policy"].as_array().unwrap();
    assert_eq!(user_policy_failures(policy), Vec::<&str>::new());
    let loosened = |sid: &str, edit: &dyn Fn(&mut Value)| {
        failures_when_loosened(policy, user_policy_failures, sid, edit)
    };
    assert!(
        !loosened("PortForwardToOwnNotebooks", &|st| {
            st["Condition"].as_object_mut().unwrap().remove("StringEquals");
        })
        .is_empty()
    );
    assert!(
        !loosened("WithTheJupyterTunnelDocumentOnly", &|st| {
            st["Resource"] = serde_json::json!([
                "arn:aws:ssm:us-east-1::document/AWS-StartPortForwardingSession",
                format!("arn:aws:ssm:us-east-1:123456789012:document/{TUNNEL}"),
            ]);
        })
        .is_empty()
    );
    // Admins (their own policy) reach any nbfleet notebook, still through the document only.
    let admin = facts["admin_policy"].as_array().unwrap();
    let his: &[(&str, &str)] = &[
        ("nbfleet:notebook", "nb-b"),
        ("nbfleet:owner-id", "AROAEXAMPLEROLEID:bob"),
    ];
    let as_admin = |document| {
        session_allowed(
            admin,
            &SessionRequest {
                caller_id: ALICE_ID,
                instance_tags: his,
                document,
            },
        )
    };
    assert!(as_admin(TUNNEL));
    assert!(!as_admin("AWS-StartPortForwardingSession"));
    // The document forwards to Jupyter's port and no other.
    let port = &facts["tunnel_document"]["parameters"]["portNumber"];
    assert_eq!(
        port["allowedValues"],
        serde_json::json!([nbfleet_aws::ec2_compute::JUPYTER_PORT.to_string()])
    );
    assert_eq!(facts["tunnel_document"]["sessionType"], "Port");
    assert_eq!(
        facts["tunnel_document"]["properties"]["type"],
        "LocalPortForwarding"
    );
    // Every function tells the CLI which document to use.
    for (name, f) in functions(&facts) {
        assert_eq!(f["env"]["NBFLEET_TUNNEL_DOCUMENT"], TUNNEL, "{name}");
    }
}

/// `{index or "table": [(attribute, key type)]}`, from DescribeTable's or the template's shape.
fn key_schemas(table: &[Value], indexes: &[Value]) -> BTreeMap<String, Vec<(String, String)>> {
    let keys = |schema: &Value| {
        schema
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let field = |name: &str| k[name].as_str().unwrap().to_string();
                (field("AttributeName"), field("KeyType"))
            })
            .collect::<Vec<_>>()
    };
    let mut all = BTreeMap::from([("table".to_string(), keys(&Value::Array(table.to_vec())))]);
    for index in indexes {
        all.insert(
            index["IndexName"].as_str().unwrap().to_string(),
            keys(&index["KeySchema"]),
        );
    }
    all
}

#[tokio::test]
async fn the_table_the_tests_and_the_local_stack_make_is_the_templates() {
    let facts = facts();
    let declared = key_schemas(
        facts["table"]["KeySchema"].as_array().unwrap(),
        facts["table"]["GlobalSecondaryIndexes"].as_array().unwrap(),
    );
    let clients = nbfleet_local::moto::clients(
        &nbfleet_local::moto::endpoint_from_env(),
        &nbfleet_local::moto::fresh_account(),
    );
    nbfleet_aws::dynamo_store::create_table(&clients.dynamodb, "from-code")
        .await
        .unwrap();
    let made = clients
        .dynamodb
        .describe_table()
        .table_name("from-code")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let json = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        Value::Array(
            schema
                .iter()
                .map(|k| serde_json::json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()}))
                .collect(),
        )
    };
    let indexes: Vec<Value> = made
        .global_secondary_indexes()
        .iter()
        .map(|i| serde_json::json!({"IndexName": i.index_name(), "KeySchema": json(i.key_schema())}))
        .collect();
    let made = key_schemas(json(made.key_schema()).as_array().unwrap(), &indexes);
    assert_eq!(
        made, declared,
        "dynamo_store::create_table and template.yaml disagree"
    );
}
