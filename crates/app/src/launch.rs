//! Launch a notebook (`POST /notebooks`, `/notebook launch`, `nbfleet up`): claim the name
//! with a conditional write (`transitions::claim_name` decides how), store the secret, make the
//! security group, run the instance (falling back over the configured (type, subnet) pairs on
//! a capacity error), and return the Launching record and, once, the token.
//!
//! Idempotent without relying on EC2's ClientToken (moto ignores it): a retried launch of a
//! notebook still Pending — say after a crash between RunInstances and the record update —
//! adopts the instance tagged with the notebook's name and generation instead of starting a
//! second one.

use jiff::Timestamp;
use nbfleet_core::identity::Principal;
use nbfleet_core::password::{self, Secret};
use nbfleet_core::ports::{Deps, Instance, LaunchedWith, RestoreImage, RunRequest};
use nbfleet_core::record::{Failure, LaunchAttempt};
use nbfleet_core::transitions::claim_name;
use nbfleet_core::validate::{Credential, LaunchSpec, idle_policy};
use nbfleet_core::{Error, Notebook, Result, State};

/// A launched notebook.
#[derive(Debug)]
pub struct Launched {
    pub notebook: Notebook,
    /// The token, when none was given: shown once, here, and never again.
    pub token: Option<Secret>,
}

/// Launches the notebook `spec` describes (validated by `validate::parse_launch` at the edge),
/// owned by `owner`.
pub async fn launch(deps: &Deps, owner: &Principal, spec: &LaunchSpec) -> Result<Launched> {
    let now = deps.clock.now();
    crate::costs::check_budget(deps, owner, owner).await?;
    // A restore is checked before anything is claimed: someone else's snapshot, or none, is a
    // refusal that leaves nothing behind. Its disk is at least the snapshot's size.
    let restore = match &spec.restore_from {
        Some(from) => Some(crate::snapshots::restorable(deps, owner, from).await?),
        None => None,
    };
    let spec = &LaunchSpec {
        volume_gb: restore
            .as_ref()
            .map_or(spec.volume_gb, |s| spec.volume_gb.max(s.size_gb)),
        ..spec.clone()
    };
    let existing = deps.store.get(&spec.name).await?;
    let (mut claimed, expect) =
        claim_name(existing.as_ref(), spec, owner, idle_policy(spec, &deps.cfg), now)?;
    claimed.restored_from = restore.as_ref().map(|s| s.id.clone());
    deps.store.put(&claimed, expect).await?;
    let name = &spec.name;

    let (secret_value, token) = stored_secret(&spec.credential);
    deps.secrets
        .put(&deps.cfg.secret_parameter(name), secret_value.expose(), name)
        .await?;

    let mut ami = deps.compute.resolve_ami(&deps.cfg.ami_parameter).await?;
    if let Some(snapshot) = &restore {
        // EC2 takes no other snapshot for an image's root device: launch from an image of it.
        let image = RestoreImage {
            name: format!("nbfleet-restore-{name}-g{}", claimed.generation),
            snapshot_id: snapshot.id.clone(),
            base: ami,
        };
        ami = deps.compute.image_from_snapshot(&image).await?;
    }
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
            let subnets: Vec<String> = deps
                .cfg
                .placements(&spec.instance_type)
                .into_iter()
                .map(|p| p.subnet_id)
                .filter(|s| !s.is_empty())
                .collect();
            let want = LaunchedWith {
                ami_id: &ami.id,
                security_group_id: &sg,
                subnets,
                instance_profile: deps.cfg.instance_profile.as_deref(),
            };
            if let Err(differs) = instance.launched_as(&want) {
                tracing::error!(notebook = %name, instance = %instance.id, %differs, "an instance tagged for this launch is not one nbfleet ran; refused");
                return Err(Error::Conflict(format!(
                    "instance {} is tagged as notebook {name:?}'s, but nbfleet did not launch it ({differs}); \
                     it was left alone and nothing was handed to it: ask your operator to look at it",
                    instance.id
                )));
            }
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
                owner: owner.name.clone(),
                owner_id: owner.id.clone(),
                generation: claimed.generation,
                ami: ami.clone(),
                instance_type: String::new(),
                subnet_id: String::new(),
                security_group_id: sg,
                volume_gb: spec.volume_gb,
                instance_profile: deps.cfg.instance_profile.clone(),
                client_token: String::new(),
                restored_from: claimed.restored_from.clone(),
            };
            match run_with_fallback(deps, &base, &spec.instance_type, &mut record.launch_attempts).await {
                Ok(instance) => instance,
                Err(err @ (Error::Capacity(_) | Error::Quota(_))) => {
                    fail(deps, &claimed, record, &err, now).await?;
                    if restore.is_some() {
                        // Nothing will launch from it: it would only hold the snapshot.
                        if let Err(e) = deps.compute.deregister_image(&ami.id).await {
                            tracing::warn!(notebook = %name, image = %ami.id, error = %e, "the restore image is left registered");
                        }
                    }
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
    record.disk_created_at = Some(now);
    record.instance_type = instance.instance_type.clone();
    record.subnet_id = instance.subnet_id.clone();
    let launching = record.moved_to(State::Launching, now)?;
    deps.store.put(&launching, claimed.expect()).await?;
    tracing::info!(notebook = %name, instance = %instance.id, "launching");
    if let Some(snapshot) = &restore {
        // Only now: a retried launch adopts its instance by the image it was launched from.
        // A leftover (this Lambda killed first) goes when its snapshot is deleted.
        if let Err(e) = deps.compute.deregister_image(&ami.id).await {
            tracing::warn!(notebook = %name, image = %ami.id, error = %e, "the restore image is left registered");
        }
        let entry = serde_json::json!({
            "action": "restore", "snapshot_id": snapshot.id,
            "from_notebook": snapshot.notebook, "from_generation": snapshot.generation,
        });
        if let Err(e) = deps.store.append_history(name, now, &entry).await {
            tracing::warn!(notebook = %name, error = %e, "the restore is not in the history");
        }
    }
    Ok(Launched {
        notebook: launching,
        token,
    })
}

/// What Parameter Store keeps for `credential` (a password only hashed, with a fresh salt), and
/// the token to show its owner once, when nbfleet made it here.
pub(crate) fn stored_secret(credential: &Credential) -> (Secret, Option<Secret>) {
    match credential {
        Credential::Password(pw) => (password::hash_argon2(pw.expose(), &rand::random()), None),
        Credential::PasswordHash(hash) => (hash.clone(), None),
        Credential::Token => {
            let token = password::token(&rand::random());
            (token.clone(), Some(token))
        }
        Credential::MadeToken(token) => (token.clone(), None),
    }
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
async fn fail(
    deps: &Deps,
    claimed: &Notebook,
    mut record: Notebook,
    err: &Error,
    now: Timestamp,
) -> Result<()> {
    record.failure = Some(Failure {
        reason: err.to_string(),
        exit_code: None,
        stderr_tail: None,
    });
    let failed = record.moved_to(State::Failed, now)?;
    deps.store.put(&failed, claimed.expect()).await
}
