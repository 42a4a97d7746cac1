//! The notebook record: everything nbfleet knows about one notebook, as stored in DynamoDB.
//!
//! EC2 is the truth for what runs; this record holds intent and history. Every change goes
//! through [`Notebook::moved_to`] (a legal state move, version + 1) and is written with a
//! conditional write on the previous state and version, so a lost race is a 409.

use crate::error::{Error, Result};
use crate::identity::Principal;
use crate::state::State;
use crate::validate::{Access, LaunchSpec};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a notebook decides it is idle. Filled from the request and the operator's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdlePolicy {
    /// Minutes without activity before the stop (named as in requests, answers, the CLI and
    /// Slack; records written before the restructure say `timeout_minutes`).
    #[serde(alias = "timeout_minutes")]
    pub idle_timeout_minutes: u32,
    /// Count open connections (browser tabs) as activity. Off by default: a forgotten tab
    /// polls every 10 s and would keep the GPU running all night.
    pub count_connections: bool,
    /// GPU utilisation at or above this percentage is activity.
    pub gpu_threshold_pct: u32,
    /// CPU used outside the Jupyter server at or above this percentage of one core is
    /// activity; 0 turns the signal off. Records from before it existed get the default, 20.
    #[serde(default = "default_cpu_threshold")]
    pub cpu_threshold_pct: u32,
    /// The runtime cap of one run, in minutes; 0 means none. `extend` can put it off, never
    /// past `runtime_ceiling_minutes`.
    pub max_runtime_minutes: u32,
    /// The most one run may last, whatever `extend` asks and whatever the probes say; 0 means
    /// none. Records from before it existed get the default, 24 h.
    #[serde(default = "default_runtime_ceiling")]
    pub runtime_ceiling_minutes: u32,
    pub warning_minutes: u32,
    /// Weekly windows outside which the notebook is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::Schedule>,
    /// Jupyter shuts itself down, and the OS powers off, after this many minutes without
    /// activity even if nbfleet's control plane is down; 0 is off. See docs/idle.md for its limits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub instance_fallback_minutes: u32,
}

fn default_cpu_threshold() -> u32 {
    crate::config::DEFAULT_CPU_THRESHOLD_PCT
}

fn default_runtime_ceiling() -> u32 {
    24 * 60
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Which kind of credential guards the notebook's Jupyter. The value itself lives only in
/// Parameter Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    Password,
    Token,
}

/// One (type, subnet) attempt of a launch, and what EC2 answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchAttempt {
    pub instance_type: String,
    pub subnet_id: String,
    /// `launched <instance id>`, or the error code and message EC2 gave.
    pub outcome: String,
}

/// What the bootstrap learned about the GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// e.g. "NVIDIA H100 80GB HBM3", or "none".
    pub name: String,
    pub memory_mib: u64,
    pub count: u32,
    pub torch_cuda: bool,
}

/// The idle policy's last verdict on a running notebook, as the sweep recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdleStatus {
    pub verdict: crate::idle::Verdict,
    /// One sentence: why it keeps running, or why and when it stops.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_stop: Option<Timestamp>,
    /// The stop time announced by a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned_stop_at: Option<Timestamp>,
    /// Probes in a row that gave no answer, as of this record's last write (while the probe
    /// keeps failing, the record is written at most once an hour, so rounds in between are
    /// not counted here).
    #[serde(default)]
    pub unknowns: u32,
    /// The warning is written but nobody was told yet (the sweep was stopped in between): the
    /// next round tells, once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning_untold: bool,
    /// The round that wrote this status. The sweep writes at most once per 30 minutes while
    /// the verdict holds, so the reason is at most that old (`idle::REFRESH_EVERY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
    /// The last time a round saw the notebook active (as of `checked_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_at: Option<Timestamp>,
    /// Something was happening right now at `checked_at` (a busy kernel, GPU, CPU, a hold).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active_now: bool,
    /// When the sweep last sent the health check to a Jupyter that did not answer (at most
    /// once per 15 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jupyter_restarted_at: Option<Timestamp>,
    /// The sweep stopped it on its own (idle, schedule, runtime cap): the run it ends counts
    /// toward what automatic stops saved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_automatically: bool,
}

/// A snapshot a deleted generation left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSnapshot {
    pub snapshot_id: String,
    pub generation: u32,
}

/// How to reach a notebook's Jupyter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    /// Where to point the browser (after the tunnel, in ssm mode).
    pub url: String,
    /// In ssm mode, the port-forward to run first (`nbfleet open` runs it for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    /// In ssm mode, the session document the port-forward uses: the stack's own, which forwards
    /// to Jupyter's port and no other (`NBFLEET_TUNNEL_DOCUMENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// A Run Command the record waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCommand {
    pub command_id: String,
    pub kind: crate::scripts::ScriptKind,
    /// For a pre-stop hook of an automatic stop: the reason the `Stopped` notice gives when
    /// the hook ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tell: Option<String>,
}

/// The most a hook may hold, in bytes.
pub const MAX_HOOK_BYTES: usize = 4096;
/// How long a pre-stop hook may run by default, and at most, in seconds.
pub const DEFAULT_PRE_STOP_TIMEOUT_SECONDS: u32 = 120;
pub const MAX_PRE_STOP_TIMEOUT_SECONDS: u32 = 600;
/// How long an on-start hook may run (`pip install` can take a while), within Run Command's
/// 30-minute execution limit.
pub const ON_START_TIMEOUT_SECONDS: u32 = 25 * 60;

/// Scripts the owner set at launch, run on the instance as the notebook user (never root).
/// Anyone who may read the notebook may read them: they are no place for a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Run before every stop (idle, schedule, runtime cap, and a user's unless they skip it):
    /// `aws s3 sync ~/work s3://bucket/work`, a git commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<String>,
    /// How long the pre-stop hook may run before it is cut and the stop goes on.
    #[serde(default = "default_pre_stop_timeout")]
    pub pre_stop_timeout_seconds: u32,
    /// Run after every Ready (first boot and every start): `pip install -r ~/requirements.txt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_start: Option<String>,
}

fn default_pre_stop_timeout() -> u32 {
    DEFAULT_PRE_STOP_TIMEOUT_SECONDS
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            pre_stop: None,
            pre_stop_timeout_seconds: DEFAULT_PRE_STOP_TIMEOUT_SECONDS,
            on_start: None,
        }
    }
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.pre_stop.is_none() && self.on_start.is_none()
    }
}

/// How a hook's run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStatus {
    Running,
    Succeeded,
    /// Ended with a non-zero exit code, or could not be run.
    Failed,
    /// Cut at its time limit.
    TimedOut,
}

/// One run of a hook: when, its command, and (once it ended) how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    pub status: HookStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last lines of its output (stdout and stderr together), as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

impl HookRun {
    pub fn started(command_id: &str, now: Timestamp) -> HookRun {
        HookRun {
            started_at: now,
            command_id: Some(command_id.to_string()),
            status: HookStatus::Running,
            exit_code: None,
            tail: None,
            ended_at: None,
        }
    }

    /// A run that never started: the hook could not be sent (or its result never came), and why.
    pub fn not_run(why: String, now: Timestamp) -> HookRun {
        HookRun {
            started_at: now,
            command_id: None,
            status: HookStatus::Failed,
            exit_code: None,
            tail: Some(why),
            ended_at: Some(now),
        }
    }

    /// This run, ended at `now` as `report` says (or, without one, failed because of `why`).
    pub fn ended(
        &self,
        report: std::result::Result<crate::report::HookReport, String>,
        now: Timestamp,
    ) -> HookRun {
        let (status, exit_code, tail) = match report {
            Ok(r) if r.timed_out => (HookStatus::TimedOut, Some(r.exit), r.tail),
            Ok(r) if r.exit == 0 => (HookStatus::Succeeded, Some(0), r.tail),
            Ok(r) => (HookStatus::Failed, Some(r.exit), r.tail),
            Err(why) => (HookStatus::Failed, None, why),
        };
        HookRun {
            status,
            exit_code,
            tail: Some(tail),
            ended_at: Some(now),
            ..self.clone()
        }
    }

    /// One line for people: "succeeded", "failed (exit 3): <last line>", "cut after its time
    /// limit".
    pub fn summary(&self) -> String {
        let last = self
            .tail
            .as_deref()
            .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()))
            .map_or(String::new(), |l| format!(": {l}"));
        match (self.status, self.exit_code) {
            (HookStatus::Running, _) => "running".into(),
            (HookStatus::Succeeded, _) => format!("succeeded{last}"),
            (HookStatus::TimedOut, _) => format!("cut at its time limit{last}"),
            (HookStatus::Failed, Some(code)) => format!("failed (exit {code}){last}"),
            (HookStatus::Failed, None) => format!("did not run{last}"),
        }
    }
}

/// Where a change of credential (`POST /notebooks/{name}/credential`) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    /// Stored; the health check taking it to the running Jupyter is on its way.
    Applying,
    /// Stored; the notebook is not running, and the next start takes it.
    AtNextStart,
    /// The running Jupyter takes the new credential, and no longer the old one.
    Applied,
    /// Stored, but the running Jupyter did not take it (see `detail`): the old one still works
    /// until the next start, which takes the new one.
    Failed,
}

/// The last change of credential: when it was asked for and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialChange {
    pub requested_at: Timestamp,
    pub status: CredentialStatus,
    /// One sentence for people: what happened, or what happens next.
    pub detail: String,
    /// The health check that carries it to the running Jupyter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
}

impl CredentialChange {
    /// Whether a change asked for at `requested_at` may still be on its way at `now`: a second
    /// change meanwhile could leave Parameter Store holding the first one's secret while the
    /// second's caller holds theirs. Past five minutes the first is taken as dead (a request
    /// lasts 30 s at most).
    pub fn in_flight(&self, now: Timestamp) -> bool {
        self.status == CredentialStatus::Applying
            && now.duration_since(self.requested_at) < jiff::SignedDuration::from_mins(5)
    }

    /// Settled at `now`: `applied`, or `failed` because of `why`.
    pub fn settled(&self, result: std::result::Result<(), String>, now: Timestamp) -> CredentialChange {
        let (status, detail) = match result {
            Ok(()) => (
                CredentialStatus::Applied,
                "Jupyter takes the new credential; the old one no longer works".to_string(),
            ),
            Err(why) => (
                CredentialStatus::Failed,
                format!(
                    "the running Jupyter did not take the new credential ({why}); the old one works until \
                     the next start, which takes the new one"
                ),
            ),
        };
        CredentialChange {
            status,
            detail,
            settled_at: Some(now),
            ..self.clone()
        }
    }
}

/// Why a notebook is Failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last lines of the script's stderr (never contains the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notebook {
    pub name: String,
    /// Bumped when a Terminated name is launched again; tags the instance so a retried launch
    /// adopts its own instance and never another generation's.
    pub generation: u32,
    /// Who owns it, for people: an ARN, or `slack:TEAM:USER` (`identity::Principal::name`).
    pub owner: String,
    /// What ownership compares (`identity::Principal::id`): IAM's unique id. Records written
    /// before it existed have none, and are compared by `owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    pub state: State,
    /// Bumped on every write; conditional writes check it.
    pub version: u64,
    pub instance_type: String,
    pub volume_gb: u32,
    pub access: Access,
    pub secret_kind: SecretKind,
    pub idle: IdlePolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launch_attempts: Vec<LaunchAttempt>,
    /// How to reach Jupyter, as of the last start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Connect>,
    /// The bootstrap or health check in flight, whose status-change event moves the record on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_command: Option<PendingCommand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
    /// Scripts the owner set to run before every stop and after every start.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// The last run of the on-start hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_start_hook: Option<HookRun>,
    /// The last run of the pre-stop hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop_hook: Option<HookRun>,
    /// The last change of credential, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_change: Option<CredentialChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jupyter_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The snapshot its disk was made from, for a restored notebook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// The snapshots earlier generations of this name left, oldest first: relaunching a name
    /// never loses one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_snapshots: Vec<KeptSnapshot>,
    /// A delete asked for a snapshot that is not taken yet: until it is, nothing terminates
    /// the instance (its root volume goes with it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub snapshot_owed: bool,
    /// `extend` snoozes automatic stops until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed_until: Option<Timestamp>,
    /// The idle policy's last word on this run: verdict, reason, planned stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_status: Option<IdleStatus>,
    /// Seconds the instance has run, over all finished runs.
    #[serde(default)]
    pub running_seconds: u64,
    /// The newest finished runs (`cost::RUNS_KEPT`), oldest first: costs in a window and what
    /// automatic stops saved come from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<crate::cost::Run>,
    /// Since when its root volume exists (its instance was launched), and until when (it was
    /// terminated): the disk costs in between, running or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_deleted_at: Option<Timestamp>,
    /// When its owner was last told it has been stopped a long while (weekly, from
    /// `StoppedNoticeDays`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_notice_at: Option<Timestamp>,
    /// When the snapshot in `snapshot_id` was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_taken_at: Option<Timestamp>,
    /// Since when EC2 says the instance runs (the current run, not yet in `running_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub state_since: Timestamp,
}

impl Notebook {
    /// Whether `p` owns it: the same unique id (or, for a record from before ids, the same
    /// name).
    pub fn is_owned_by(&self, p: &Principal) -> bool {
        match &self.owner_id {
            Some(id) => *id == p.id,
            None => self.owner == p.name,
        }
    }

    /// Its owner, for what nbfleet does on their behalf (a scheduled start).
    pub fn owner_principal(&self) -> Principal {
        Principal {
            id: self.owner_id.clone().unwrap_or_else(|| self.owner.clone()),
            name: self.owner.clone(),
            admin: false,
        }
    }

    /// Whether it is Stopping while its pre-stop hook runs (the stop follows the hook).
    pub fn awaits_pre_stop_hook(&self) -> bool {
        self.state == State::Stopping
            && self
                .pending_command
                .as_ref()
                .is_some_and(|p| p.kind == crate::scripts::ScriptKind::PreStop)
    }

    /// Whether `p` may act on it: its owner, or an admin.
    pub fn may_be_changed_by(&self, p: &Principal) -> bool {
        p.admin || self.is_owned_by(p)
    }

    /// A fresh Pending record for a validated launch.
    pub fn new(
        spec: &LaunchSpec,
        owner: &Principal,
        generation: u32,
        idle: IdlePolicy,
        now: Timestamp,
    ) -> Self {
        Notebook {
            name: spec.name.clone(),
            generation,
            owner: owner.name.clone(),
            owner_id: Some(owner.id.clone()),
            state: State::Pending,
            version: 1,
            instance_type: spec.instance_type.clone(),
            volume_gb: spec.volume_gb,
            access: spec.access.clone(),
            secret_kind: spec.secret_kind(),
            idle,
            instance_id: None,
            ami_id: None,
            subnet_id: None,
            security_group_id: None,
            launch_attempts: Vec::new(),
            connect: None,
            pending_command: None,
            cert_fingerprint: None,
            hooks: spec.hooks.clone(),
            on_start_hook: None,
            pre_stop_hook: None,
            credential_change: None,
            gpu: None,
            jupyter_version: None,
            failure: None,
            snapshot_id: None,
            restored_from: None,
            snapshot_owed: false,
            earlier_snapshots: Vec::new(),
            snoozed_until: None,
            idle_status: None,
            running_seconds: 0,
            runs: Vec::new(),
            disk_created_at: None,
            disk_deleted_at: None,
            snapshot_taken_at: None,
            stopped_notice_at: None,
            running_since: None,
            created_at: now,
            updated_at: now,
            state_since: now,
        }
    }

    /// A copy in state `to`, with the version bumped. Refuses moves the state machine forbids.
    pub fn moved_to(&self, to: State, now: Timestamp) -> Result<Notebook> {
        if !self.state.can_move_to(to) {
            return Err(Error::Conflict(format!(
                "notebook {:?} cannot go from {} to {to}",
                self.name, self.state
            )));
        }
        let mut next = self.touched(now);
        next.state = to;
        next.state_since = now;
        Ok(next)
    }

    /// A copy with the version bumped and no state change, for in-place updates.
    pub fn touched(&self, now: Timestamp) -> Notebook {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }

    /// This record as it was before `claim` (a copy moved on from it), written over the claim:
    /// how a handler hands back a move whose AWS side failed.
    pub fn handed_back(&self, claim: &Notebook, now: Timestamp) -> Notebook {
        let mut back = self.touched(now);
        back.version = claim.version + 1;
        back
    }

    /// The state and version a conditional write of the next version must find.
    pub fn expect(&self) -> Expect {
        Expect::Version {
            state: self.state,
            version: self.version,
        }
    }
}

/// What a conditional write expects to find in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No record with this name.
    Absent,
    /// A record in exactly this state and version.
    Version { state: State, version: u64 },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::tests::test_config;
    use crate::validate::parse_launch;

    pub(crate) fn sample(now: Timestamp) -> Notebook {
        let cfg = test_config();
        let spec = parse_launch(br#"{"name":"nb-1"}"#, &cfg).unwrap();
        Notebook::new(
            &spec,
            &Principal::named("alice"),
            1,
            crate::validate::idle_policy(&spec, &cfg),
            now,
        )
    }

    #[test]
    fn a_new_record_is_pending_at_version_one() {
        let nb = sample(Timestamp::UNIX_EPOCH);
        assert_eq!((nb.state, nb.version, nb.generation), (State::Pending, 1, 1));
        assert_eq!(nb.secret_kind, SecretKind::Token);
    }

    #[test]
    fn a_legal_move_bumps_the_version_and_the_state_clock() {
        let t0 = Timestamp::UNIX_EPOCH;
        let t1 = Timestamp::from_second(60).unwrap();
        let nb = sample(t0);
        let next = nb.moved_to(State::Launching, t1).unwrap();
        assert_eq!((next.state, next.version), (State::Launching, 2));
        assert_eq!((next.state_since, next.created_at), (t1, t0));
        assert_eq!(
            nb.expect(),
            Expect::Version {
                state: State::Pending,
                version: 1
            }
        );
    }

    #[test]
    fn an_illegal_move_is_a_conflict() {
        let nb = sample(Timestamp::UNIX_EPOCH);
        let err = nb.moved_to(State::Ready, Timestamp::UNIX_EPOCH).unwrap_err();
        assert_eq!(err.status(), 409);
    }

    #[test]
    fn the_record_round_trips_through_json_without_empty_fields() {
        let nb = sample(Timestamp::UNIX_EPOCH);
        let json = serde_json::to_value(&nb).unwrap();
        assert!(json.get("instance_id").is_none(), "{json}");
        let back: Notebook = serde_json::from_value(json).unwrap();
        assert_eq!(back, nb);
    }
}

/// How users reach a notebook's Jupyter on `port` of `instance_id`: through an SSM port-forward
/// in ssm mode, directly at `address` in cidr mode.
pub fn connect_for(
    mode: crate::validate::AccessMode,
    instance_id: &str,
    address: Option<&str>,
    port: u16,
    region: &str,
    document: &str,
) -> Connect {
    match mode {
        crate::validate::AccessMode::Ssm => Connect {
            url: format!("https://localhost:{port}"),
            tunnel: Some(format!(
                "aws ssm start-session --region {region} --target {instance_id} \
                 --document-name {document} \
                 --parameters '{{\"portNumber\":[\"{port}\"],\"localPortNumber\":[\"{port}\"]}}'"
            )),
            document: Some(document.to_string()),
        },
        crate::validate::AccessMode::Cidr => Connect {
            url: format!("https://{}:{port}", address.unwrap_or("<no address yet>")),
            tunnel: None,
            document: None,
        },
    }
}

#[cfg(test)]
mod connect_tests {
    use super::*;
    use crate::record::tests::sample;
    use crate::validate::AccessMode;

    #[test]
    fn ssm_mode_connects_through_a_port_forward() {
        let c = connect_for(
            AccessMode::Ssm,
            "i-0abc",
            Some("203.0.113.9"),
            8888,
            "eu-west-1",
            "nbfleet-JupyterTunnel-x",
        );
        assert_eq!(c.url, "https://localhost:8888");
        assert_eq!(c.document.as_deref(), Some("nbfleet-JupyterTunnel-x"));
        let tunnel = c.tunnel.unwrap();
        assert!(
            tunnel.contains("--target i-0abc") && tunnel.contains("--document-name nbfleet-JupyterTunnel-x")
        );
        assert!(
            tunnel.contains(r#"{"portNumber":["8888"],"localPortNumber":["8888"]}"#),
            "{tunnel}"
        );
        assert!(!tunnel.contains("203.0.113.9"), "no public address in ssm mode");
    }

    #[test]
    fn cidr_mode_connects_to_the_current_address() {
        let c = connect_for(
            AccessMode::Cidr,
            "i-0abc",
            Some("ec2-203-0-113-9.compute-1.amazonaws.com"),
            8888,
            "us-east-1",
            "nbfleet-JupyterTunnel-x",
        );
        assert_eq!(c.url, "https://ec2-203-0-113-9.compute-1.amazonaws.com:8888");
        assert_eq!(c.tunnel, None);
    }

    #[test]
    fn a_record_written_before_the_idle_field_was_renamed_still_reads() {
        let nb = sample(Timestamp::UNIX_EPOCH);
        let mut json = serde_json::to_value(&nb).unwrap();
        let idle = json["idle"].as_object_mut().unwrap();
        let minutes = idle.remove("idle_timeout_minutes").unwrap();
        idle.insert("timeout_minutes".into(), minutes);
        let back: Notebook = serde_json::from_value(json).unwrap();
        assert_eq!(back.idle.idle_timeout_minutes, nb.idle.idle_timeout_minutes);
    }
}
