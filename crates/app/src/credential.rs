//! Change a notebook's token or password (`POST /notebooks/{name}/credential`, `nbfleet
//! credential`): for a leaked token, a forgotten password, or a routine rotation. Its owner (or
//! an admin) may; the kind (token or password) stays the one the launch chose.
//!
//! The record notes the change first (a conditional write, so of two changes at once one wins
//! and the other is a 409), then the secret is replaced in Parameter Store. On a Ready notebook
//! the health check goes out over Run Command: it fetches the secret again and Jupyter's login
//! re-reads it, with no restart; the command's status-change event settles the change
//! ([`crate::instance_events`]). On a notebook that is not running, the next start's health
//! check takes it. A token is answered once, here, whatever happens after.

use crate::launch::stored_secret;
use crate::lifecycle::owned;
use jiff::Timestamp;
use nbfleet_core::identity::Principal;
use nbfleet_core::password::Secret;
use nbfleet_core::ports::{Deps, Reach};
use nbfleet_core::record::{CredentialChange, CredentialStatus};
use nbfleet_core::scripts;
use nbfleet_core::transitions::{self, Op};
use nbfleet_core::validate::{Credential, parse_credential};
use nbfleet_core::{Error, Notebook, Result, State};

/// A change of credential under way: the record as it now stands and, for a new token, the
/// token (shown once).
#[derive(Debug)]
pub struct Changed {
    pub notebook: Notebook,
    pub token: Option<Secret>,
}

/// How many times the change is read and written again after losing to an in-place update
/// (the sweep recording its verdict).
const TRIES: u32 = 3;

/// Changes `name`'s credential as `body` asks (`validate::parse_credential`, against the
/// notebook's kind).
pub async fn change(deps: &Deps, caller: &Principal, name: &str, body: &[u8]) -> Result<Changed> {
    let now = deps.clock.now();
    let (nb, credential, before) = claim(deps, caller, name, body, now).await?;
    let (value, token) = stored_secret(&credential);
    let stored = deps
        .secrets
        .put(&deps.cfg.secret_parameter(name), value.expose(), name)
        .await;
    if let Err(e) = stored {
        // Nothing changed: take the claim back, so that asking again is not refused as a change
        // still applying, and no start takes a change that never was.
        let mut back = nb.touched(now);
        back.credential_change = before;
        if let Err(undo) = deps.store.put(&back, nb.expect()).await {
            tracing::warn!(notebook = %name, error = %undo, "could not take back the credential change");
        }
        return Err(e);
    }
    let notebook = if nb.state == State::Ready {
        send(deps, nb, now).await?
    } else {
        nb
    };
    history(deps, &notebook, now).await;
    tracing::info!(notebook = %name, status = ?notebook.credential_change.as_ref().map(|c| c.status), "credential changed");
    Ok(Changed { notebook, token })
}

/// Reads `name`, checks the caller, the state and the body, and writes the change as
/// applying (Ready) or waiting for the next start. Returns the record written, the credential,
/// and the change it replaced.
async fn claim(
    deps: &Deps,
    caller: &Principal,
    name: &str,
    body: &[u8],
    now: Timestamp,
) -> Result<(Notebook, Credential, Option<CredentialChange>)> {
    let mut tries = 1;
    loop {
        let nb = owned(deps, caller, name).await?;
        transitions::check(name, nb.state, Op::Credential)?;
        let credential = parse_credential(body, nb.secret_kind)?;
        if nb.credential_change.as_ref().is_some_and(|c| c.in_flight(now)) {
            return Err(Error::Conflict(format!(
                "a credential change of {name:?} is still being applied; retry in a minute"
            )));
        }
        let (status, detail) = match nb.state {
            State::Ready => (
                CredentialStatus::Applying,
                "stored; the running Jupyter takes it within a minute",
            ),
            _ => (
                CredentialStatus::AtNextStart,
                "stored; the notebook is not running, and its next start takes it",
            ),
        };
        let mut next = nb.touched(now);
        next.credential_change = Some(CredentialChange {
            requested_at: now,
            status,
            detail: detail.into(),
            command_id: None,
            settled_at: None,
        });
        match deps.store.put(&next, nb.expect()).await {
            Ok(()) => return Ok((next, credential, nb.credential_change)),
            Err(Error::Conflict(_)) if tries < TRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Sends the health check that carries the new secret to the running Jupyter, and records its
/// command id for the status-change event. A send that fails settles the change as failed: the
/// secret is stored, and the next start takes it.
async fn send(deps: &Deps, nb: Notebook, now: Timestamp) -> Result<Notebook> {
    let instance_id = nb.instance_id.clone().unwrap_or_default();
    let script = scripts::health_check(&nb, &deps.cfg, &deps.cfg.region)?;
    let sent = deps.commands.send(&instance_id, &script, Reach::Once).await;
    if let Err(e) = &sent {
        tracing::warn!(notebook = %nb.name, error = %e, "the credential's health check was not sent");
    }
    let mut current = nb;
    let mut tries = 1;
    loop {
        let mut next = current.touched(now);
        let change = next
            .credential_change
            .take()
            .ok_or_else(|| Error::internal("claimed change lost"))?;
        next.credential_change = Some(match &sent {
            Ok(id) => CredentialChange {
                command_id: Some(id.clone()),
                ..change
            },
            Err(e) => change.settled(Err(format!("the command could not be sent: {e}")), now),
        });
        match deps.store.put(&next, current.expect()).await {
            Ok(()) => return Ok(next),
            Err(Error::Conflict(_)) if tries < TRIES => {
                // The sweep wrote in between: write onto what it wrote, unless another change
                // has replaced this one.
                tries += 1;
                let fresh = deps.store.require(&current.name).await?;
                if fresh.credential_change.as_ref().map(|c| c.requested_at) != Some(now) {
                    return Err(Error::Conflict(format!(
                        "another credential change of {:?} came in meanwhile",
                        current.name
                    )));
                }
                current = fresh;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One history entry for the change as it stands.
pub(crate) async fn history(deps: &Deps, nb: &Notebook, now: Timestamp) {
    let Some(change) = &nb.credential_change else {
        return;
    };
    let entry = serde_json::json!({"action": "credential", "status": change.status, "reason": change.detail});
    if let Err(e) = deps.store.append_history(&nb.name, now, &entry).await {
        tracing::warn!(notebook = %nb.name, error = %e, "the credential change is not in the history");
    }
}
