//! The launch handler, `POST /notebooks`: validate, claim the name with a conditional write,
//! store the secret, make the security group, run the instance (falling back over the
//! configured (type, subnet) pairs on a capacity error), and answer 202 with the record and,
//! once, the token.
//!
//! Idempotent without relying on EC2's ClientToken (moto ignores it): a retried launch of a
//! notebook still Pending — say after a crash between RunInstances and the record update —
//! adopts the instance tagged with the notebook's name and generation instead of starting a
//! second one.

use nbfleet_core::password::{self, Secret};
use nbfleet_core::ports::{Deps, Instance, RunRequest};
use nbfleet_core::record::LaunchAttempt;
use nbfleet_core::validate::{Credential, LaunchSpec, idle_policy, parse_launch};
use nbfleet_core::{Error, Expect, Notebook, Result, State};
use serde_json::{Value, json};

/// What a launch answers with.
#[derive(Debug)]
pub struct Launched {
    pub notebook: Notebook,
    /// The token, when none was given: shown once, here, and never again.
    pub token: Option<Secret>,
}

impl Launched {
    pub fn body(&self) -> Value {
        let mut body = json!({ "notebook": self.notebook });
        if let Some(token) = &self.token {
            body["token"] = json!(token.expose());
            body["token_note"] =
                json!("shown once: nbfleet keeps only the encrypted copy on the instance's secret");
        }
        body
    }
}

/// The Lambda's answer to an HTTP API request: the caller is the IAM principal API Gateway
/// verified.
pub async fn handle_http(deps: &Deps, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    let result = match nbfleet_http::iam_principal(&req) {
        Ok(owner) => handle(deps, &owner, nbfleet_http::body_bytes(&req)).await,
        Err(e) => Err(e),
    };
    nbfleet_http::respond(result)
}

/// The answer for a launch by `owner` with `body`: 202 and the launched notebook.
pub async fn handle(deps: &Deps, owner: &str, body: &[u8]) -> Result<(u16, Value)> {
    let launched = launch(deps, owner, body).await?;
    Ok((202, launched.body()))
}

/// Launches a notebook. Bad input is refused before any AWS call.
pub async fn launch(deps: &Deps, owner: &str, body: &[u8]) -> Result<Launched> {
    let spec = parse_launch(body, &deps.cfg)?;
    let now = deps.clock.now();
    let claimed = claim(deps, &spec, owner).await?;
    let name = &spec.name;

    let (secret_value, token) = match &spec.credential {
        Credential::Password(pw) => (password::hash_argon2(pw.expose(), &rand::random()), None),
        Credential::PasswordHash(hash) => (hash.clone(), None),
        Credential::Token => {
            let token = password::token(&rand::random());
            (token.clone(), Some(token))
        }
    };
    deps.secrets
        .put(&deps.cfg.secret_parameter(name), secret_value.expose(), name)
        .await?;

    let ami = deps.compute.resolve_ami(&deps.cfg.ami_parameter).await?;
    let sg = deps
        .compute
        .ensure_security_group(name, claimed.generation, &spec.access, deps.cfg.vpc_id.as_deref())
        .await?;

    let mut record = claimed.touched(now);
    record.ami_id = Some(ami.id.clone());
    record.security_group_id = Some(sg.clone());

    let adopted = deps
        .compute
        .find_instances(name, claimed.generation)
        .await?
        .into_iter()
        .next();
    let instance = match adopted {
        Some(instance) => {
            tracing::info!(notebook = %name, instance = %instance.id, "adopting the instance of an earlier attempt");
            record.launch_attempts.push(LaunchAttempt {
                instance_type: instance.instance_type.clone(),
                subnet_id: instance.subnet_id.clone().unwrap_or_default(),
                outcome: format!("adopted {} from an earlier attempt", instance.id),
            });
            instance
        }
        None => {
            let base = RunRequest {
                notebook: name.clone(),
                owner: owner.to_string(),
                generation: claimed.generation,
                ami,
                instance_type: String::new(),
                subnet_id: String::new(),
                security_group_id: sg,
                volume_gb: spec.volume_gb,
                instance_profile: deps.cfg.instance_profile.clone(),
                client_token: String::new(),
            };
            match run_with_fallback(deps, &base, &spec.instance_type, &mut record.launch_attempts).await {
                Ok(instance) => instance,
                Err(err @ (Error::Capacity(_) | Error::Quota(_))) => {
                    fail(deps, &claimed, record, &err).await?;
                    return Err(err);
                }
                // Throttling or an outage: the record stays Pending and a retry resumes it.
                Err(err) => return Err(err),
            }
        }
    };

    // Before the record says Launching (and so before the bootstrap can run): the instance may
    // read its own secret, and no other instance may.
    match deps.cfg.instance_arn(&instance.id) {
        Some(arn) => {
            let secret = deps.cfg.secret_parameter(name);
            deps.secrets.grant_to_instance(&secret, &arn).await?;
        }
        None => {
            tracing::warn!(notebook = %name, "NBFLEET_ACCOUNT_ID unset: secret not granted by instance tag")
        }
    }
    record.instance_id = Some(instance.id.clone());
    record.instance_type = instance.instance_type.clone();
    record.subnet_id = instance.subnet_id.clone();
    let launching = record.moved_to(State::Launching, now)?;
    deps.store.put(&launching, claimed.expect()).await?;
    tracing::info!(notebook = %name, instance = %instance.id, "launching");
    Ok(Launched {
        notebook: launching,
        token,
    })
}

/// Writes the Pending record that claims the name, before any EC2 side effect.
///
/// A new name gets generation 1; a Terminated one the next generation; a Pending one of the
/// same owner is a retry and is resumed. Anything else is a 409.
async fn claim(deps: &Deps, spec: &LaunchSpec, owner: &str) -> Result<Notebook> {
    let now = deps.clock.now();
    let fresh = |generation| Notebook::new(spec, owner, generation, idle_policy(spec, &deps.cfg), now);
    let (record, expect) = match deps.store.get(&spec.name).await? {
        None => (fresh(1), Expect::Absent),
        Some(old) if old.state == State::Terminated => {
            let mut next = fresh(old.generation + 1);
            next.version = old.version + 1;
            next.created_at = old.created_at;
            (next, old.expect())
        }
        Some(old) if old.state == State::Pending && old.owner == owner => {
            let mut resumed = fresh(old.generation);
            resumed.version = old.version + 1;
            resumed.created_at = old.created_at;
            resumed.launch_attempts = old.launch_attempts.clone();
            (resumed, old.expect())
        }
        Some(old) => {
            return Err(Error::Conflict(format!(
                "notebook {:?} already exists ({}); delete it first or pick another name",
                spec.name, old.state
            )));
        }
    };
    deps.store.put(&record, expect).await?;
    Ok(record)
}

/// Tries each (type, subnet) pair in order until one launches. Capacity errors move on to the
/// next pair; a quota error stops at once (retrying elsewhere will not help); anything else
/// is returned as it is. Every attempt is recorded.
async fn run_with_fallback(
    deps: &Deps,
    base: &RunRequest,
    instance_type: &str,
    attempts: &mut Vec<LaunchAttempt>,
) -> Result<Instance> {
    let placements = deps.cfg.placements(instance_type);
    let mut last = None;
    for (i, p) in placements.iter().enumerate() {
        let req = RunRequest {
            instance_type: p.instance_type.clone(),
            subnet_id: p.subnet_id.clone(),
            // Stable per attempt, so real EC2 dedupes a retried request, distinct across attempts.
            client_token: format!("nbfleet-{}-g{}-a{i}", base.notebook, base.generation),
            ..base.clone()
        };
        let result = deps.compute.run_instance(&req).await;
        attempts.push(LaunchAttempt {
            instance_type: p.instance_type.clone(),
            subnet_id: p.subnet_id.clone(),
            outcome: match &result {
                Ok(instance) => format!("launched {}", instance.id),
                Err(e) => format!("{}: {e}", e.code()),
            },
        });
        match result {
            Ok(instance) => return Ok(instance),
            Err(e @ Error::Capacity(_)) => {
                tracing::warn!(notebook = %base.notebook, instance_type = %p.instance_type, subnet = %p.subnet_id, "no capacity; trying the next pair");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    let tried: Vec<String> = placements
        .iter()
        .map(|p| {
            if p.subnet_id.is_empty() {
                p.instance_type.clone()
            } else {
                format!("{} in {}", p.instance_type, p.subnet_id)
            }
        })
        .collect();
    Err(match last {
        Some(_) => Error::Capacity(format!(
            "EC2 has no capacity for any of: {}; try again later",
            tried.join(", ")
        )),
        None => Error::internal("no (type, subnet) pair to try"),
    })
}

/// Records a launch that cannot succeed as Failed, with every attempt. Nothing runs.
async fn fail(deps: &Deps, claimed: &Notebook, mut record: Notebook, err: &Error) -> Result<()> {
    record.failure = Some(nbfleet_core::record::Failure {
        reason: err.to_string(),
        exit_code: None,
        stderr_tail: None,
    });
    let failed = record.moved_to(State::Failed, deps.clock.now())?;
    deps.store.put(&failed, claimed.expect()).await
}
