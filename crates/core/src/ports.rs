//! The ports: narrow traits through which handlers reach the outside world. Adapters in
//! `nbfleet-aws` implement them on AWS; tests implement them with fakes. Adapters own
//! pagination, retries, item mapping and SDK error codes, and answer with core [`Error`]s.

use crate::error::Result;
use crate::record::{Expect, Notebook};
use crate::state::State;
use async_trait::async_trait;
use jiff::Timestamp;

/// The notebook records (DynamoDB).
#[async_trait]
pub trait Store: Send + Sync {
    /// Writes `nb` if the stored record is as `expect` says; otherwise `Error::Conflict`.
    async fn put(&self, nb: &Notebook, expect: Expect) -> Result<()>;
    async fn get(&self, name: &str) -> Result<Option<Notebook>>;
    /// The record `name`, or a 404 that names it.
    async fn require(&self, name: &str) -> Result<Notebook> {
        self.get(name)
            .await?
            .ok_or_else(|| crate::Error::NotFound(format!("no notebook named {name:?}")))
    }
    /// The record whose instance is `instance_id` (EC2 and SSM events carry only that).
    async fn by_instance(&self, instance_id: &str) -> Result<Option<Notebook>>;
    /// Every record in `state`, all pages.
    async fn list_by_state(&self, state: State) -> Result<Vec<Notebook>>;
    /// Every record that is not Terminated, sorted by name; never history. One paged read
    /// where the store has an index for it (the sweep reads it every round).
    async fn list_live(&self) -> Result<Vec<Notebook>> {
        let mut all = Vec::new();
        for state in State::ALL.into_iter().filter(|s| *s != State::Terminated) {
            all.extend(self.list_by_state(state).await?);
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }
    /// Every record, all pages.
    async fn list(&self) -> Result<Vec<Notebook>>;
    /// Appends a history item to `notebook` (kept for a while, then expired by TTL).
    async fn append_history(&self, notebook: &str, at: Timestamp, entry: &serde_json::Value) -> Result<()>;
    /// The notebook's history, oldest first; an entry that is a JSON object comes back with the
    /// time it was appended at, as `at`.
    async fn history(&self, notebook: &str) -> Result<Vec<serde_json::Value>>;
    /// The newest `limit` history entries, oldest first: one short read however long the
    /// history is.
    async fn recent_history(&self, notebook: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        let mut all = self.history(notebook).await?;
        all.drain(..all.len().saturating_sub(limit));
        Ok(all)
    }
    /// Records `key` until `until` and answers true, or answers false if it is already there:
    /// a request seen once is refused the second time (Slack replays).
    async fn first_time(&self, key: &str, until: Timestamp) -> Result<bool>;
}

/// Per-notebook secrets (Parameter Store SecureString): the Jupyter password hash or token.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// Creates or replaces the secret `name`, tagged with its notebook for attribute-based access.
    async fn put(&self, name: &str, value: &str, notebook: &str) -> Result<()>;
    async fn get(&self, name: &str) -> Result<Option<String>>;
    /// Deletes `name`; deleting a missing secret is not an error.
    async fn delete(&self, name: &str) -> Result<()>;
    /// Names the one instance that may read `name`: the instance role's policy lets an instance
    /// read a secret only where this tag equals its own ARN (`ec2:SourceInstanceARN`).
    async fn grant_to_instance(&self, name: &str, instance_arn: &str) -> Result<()>;
}

/// The time, injected so that decisions and tests control it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// EC2's view of an instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// EC2's spelling (`shutting-down`), as in API answers and state-change events.
    pub fn parse(s: &str) -> Option<InstanceState> {
        Some(match s {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => return None,
        })
    }

    /// EC2's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// Gone for good, or on its way there.
    pub fn is_gone(self) -> bool {
        matches!(self, InstanceState::ShuttingDown | InstanceState::Terminated)
    }
}

/// What nbfleet needs to know of an EC2 instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The notebook its `nbfleet:notebook` tag names, if it has one.
    pub notebook: Option<String>,
    /// The owner its `nbfleet:owner` tag names, if it has one.
    pub owner: Option<String>,
    /// The owner's unique id, from its `nbfleet:owner-id` tag (instances launched before the
    /// tag existed have none).
    pub owner_id: Option<String>,
    /// When EC2 last launched or started it.
    pub launched_at: Option<Timestamp>,
    pub state: InstanceState,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub public_dns: Option<String>,
    pub root_volume_id: Option<String>,
    /// What it was launched with, for telling nbfleet's own instance from one only tagged like
    /// it ([`Instance::launched_as`]).
    pub image_id: Option<String>,
    pub security_group_ids: Vec<String>,
    /// The instance profile's name (the last part of its ARN).
    pub instance_profile: Option<String>,
}

/// What a launch would have run an instance with: a retried launch adopts only an instance
/// launched so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchedWith<'a> {
    pub ami_id: &'a str,
    pub security_group_id: &'a str,
    /// The subnets the launch may use; none: the default VPC's, any of them.
    pub subnets: Vec<String>,
    pub instance_profile: Option<&'a str>,
}

impl Instance {
    /// Whether this instance is one nbfleet's launch ran, not merely one tagged like it: anyone
    /// who may tag instances could otherwise plant one (another AMI, another role, a group that
    /// lets the world in) for a retried launch to adopt and hand the notebook's secret to.
    /// `Err` says what differs.
    pub fn launched_as(&self, want: &LaunchedWith) -> std::result::Result<(), String> {
        let mut differs = Vec::new();
        if self.image_id.as_deref() != Some(want.ami_id) {
            differs.push(format!(
                "its AMI is {:?}, not {}",
                self.image_id.as_deref().unwrap_or("unknown"),
                want.ami_id
            ));
        }
        if self.security_group_ids != [want.security_group_id] {
            differs.push(format!(
                "its security groups are {:?}, not just {}",
                self.security_group_ids, want.security_group_id
            ));
        }
        let subnet = self.subnet_id.as_deref().unwrap_or_default();
        if !want.subnets.is_empty() && !want.subnets.iter().any(|s| s == subnet) {
            differs.push(format!("its subnet {subnet:?} is not one the launch uses"));
        }
        if self.instance_profile.as_deref() != want.instance_profile {
            differs.push(format!(
                "its instance profile is {:?}, not {:?}",
                self.instance_profile, want.instance_profile
            ));
        }
        match differs.is_empty() {
            true => Ok(()),
            false => Err(differs.join("; ")),
        }
    }
}

/// An AMI to launch from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ami {
    pub id: String,
    /// The root device name (`/dev/sda1` on Ubuntu), where the encrypted gp3 volume goes.
    pub root_device: String,
}

/// Everything RunInstances needs for one notebook, one (type, subnet) attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub notebook: String,
    pub owner: String,
    pub owner_id: String,
    pub generation: u32,
    pub ami: Ami,
    pub instance_type: String,
    /// Empty: the default VPC picks.
    pub subnet_id: String,
    pub security_group_id: String,
    pub volume_gb: u32,
    pub instance_profile: Option<String>,
    /// Idempotency token for real EC2; distinct per attempt.
    pub client_token: String,
    /// The snapshot a restore's image was made from, tagged on the instance
    /// (`nbfleet:restored-from`); `ami` is then that image.
    pub restored_from: Option<String>,
}

/// An image (AMI) whose root volume is a notebook's snapshot, for a restore: EC2 refuses
/// another snapshot for the root device at RunInstances ("snapshotId cannot be modified on
/// root device"), so a restore launches from an image of the snapshot, registered for the
/// launch and deregistered once the instance has its disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreImage {
    /// Unique per launch attempt (`nbfleet-restore-NAME-gN`): a retried launch finds the image
    /// an earlier try registered instead of registering a second.
    pub name: String,
    pub snapshot_id: String,
    /// The configured AMI, whose architecture, boot mode and root device the image copies.
    pub base: Ami,
}

/// A snapshot of one notebook's root volume, tagged with whose it is (`nbfleet:notebook`,
/// `nbfleet:owner`, `nbfleet:owner-id`, `nbfleet:generation`, `nbfleet:created`), so it can be found, listed and
/// restored long after the record moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub volume_id: String,
    pub notebook: String,
    pub owner: String,
    pub owner_id: String,
    pub generation: u32,
    pub created: Timestamp,
}

/// An EBS snapshot as nbfleet sees it: whose it is, from the tags its snapshot step gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    /// Taken by this nbfleet deployment (it carries this stack's tag and a notebook's): only
    /// those are listed, restored or deleted.
    pub nbfleet: bool,
    pub notebook: Option<String>,
    pub owner: Option<String>,
    pub owner_id: Option<String>,
    pub generation: Option<u32>,
    pub size_gb: u32,
    pub created: Option<Timestamp>,
    /// EC2's state: `pending`, `completed`, `error`.
    pub state: String,
    /// When the retention rule may delete it (`nbfleet:delete-after`, set when its owner was
    /// told).
    pub delete_after: Option<Timestamp>,
}

/// EC2 (and the AMI parameter it launches from).
#[async_trait]
pub trait Compute: Send + Sync {
    /// The AMI the SSM parameter `parameter` names.
    async fn resolve_ami(&self, parameter: &str) -> Result<Ami>;
    /// The notebook's security group for this generation, made if missing: no ingress in ssm
    /// mode, 8888 from the listed networks in cidr mode. When a launch is retried, the group it
    /// made is checked (it must carry the notebook's tag and let in no more than asked) and
    /// completed (rules a failed first try left out are added). Returns its id.
    async fn ensure_security_group(
        &self,
        notebook: &str,
        generation: u32,
        access: &crate::validate::Access,
        vpc_id: Option<&str>,
    ) -> Result<String>;
    async fn delete_security_group(&self, group_id: &str) -> Result<()>;
    /// Every security group tagged as a notebook's: `(group id, notebook)`, every page.
    async fn list_tagged_groups(&self) -> Result<Vec<(String, String)>>;
    /// Launches one instance. Capacity, quota and throttling come back as their core errors.
    async fn run_instance(&self, req: &RunRequest) -> Result<Instance>;
    /// Instances tagged with this notebook and generation that are not terminated.
    async fn find_instances(&self, notebook: &str, generation: u32) -> Result<Vec<Instance>>;
    /// Every instance tagged as an nbfleet notebook, with its notebook's name, every page.
    async fn list_tagged(&self) -> Result<Vec<(String, Instance)>>;
    async fn describe(&self, instance_id: &str) -> Result<Option<Instance>>;
    async fn start(&self, instance_id: &str) -> Result<()>;
    async fn stop(&self, instance_id: &str) -> Result<()>;
    async fn terminate(&self, instance_id: &str) -> Result<()>;
    /// Snapshots a notebook's root volume, tagged as its; returns the snapshot id.
    async fn snapshot(&self, req: &SnapshotRequest) -> Result<String>;
    /// Every snapshot this deployment took, every page.
    async fn list_snapshots(&self) -> Result<Vec<Snapshot>>;
    /// The snapshot `id` (any, nbfleet's or not), or `None` if EC2 knows no such snapshot.
    async fn describe_snapshot(&self, id: &str) -> Result<Option<Snapshot>>;
    /// Marks a snapshot for deletion at `at` (its `nbfleet:delete-after` tag).
    async fn mark_snapshot(&self, id: &str, at: Timestamp) -> Result<()>;
    /// Deletes a snapshot, first deregistering any restore image of nbfleet's still made from
    /// it; deleting a missing one is not an error.
    async fn delete_snapshot(&self, id: &str) -> Result<()>;
    /// Registers (or, registered by an earlier try, finds) the image a restore launches from.
    async fn image_from_snapshot(&self, req: &RestoreImage) -> Result<Ami>;
    /// Deregisters an image; a missing one is not an error.
    async fn deregister_image(&self, id: &str) -> Result<()>;
    /// Changes a stopped instance's type (EC2 refuses it for a running one: a conflict).
    async fn set_instance_type(&self, instance_id: &str, instance_type: &str) -> Result<()>;
    /// Grows a volume to `gb`; one already that large is left alone (a retried change).
    async fn grow_volume(&self, volume_id: &str, gb: u32) -> Result<()>;
}

/// Where a Run Command invocation is, as SSM reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStatus {
    Pending,
    InProgress,
    Delayed,
    Success,
    Failed,
    TimedOut,
    Cancelled,
    Cancelling,
}

impl CommandStatus {
    /// SSM's spelling, in API answers and status-change events.
    pub fn parse(s: &str) -> Option<CommandStatus> {
        Some(match s {
            "Pending" => CommandStatus::Pending,
            "InProgress" => CommandStatus::InProgress,
            "Delayed" => CommandStatus::Delayed,
            "Success" => CommandStatus::Success,
            "Failed" => CommandStatus::Failed,
            "TimedOut" | "DeliveryTimedOut" | "ExecutionTimedOut" => CommandStatus::TimedOut,
            "Cancelled" | "Terminated" | "Undeliverable" => CommandStatus::Cancelled,
            "Cancelling" => CommandStatus::Cancelling,
            _ => return None,
        })
    }

    /// Finished, one way or another.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommandStatus::Success
                | CommandStatus::Failed
                | CommandStatus::TimedOut
                | CommandStatus::Cancelled
        )
    }
}

/// One instance's run of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command_id: String,
    pub instance_id: String,
    pub status: CommandStatus,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Whether a send waits for an instance's SSM agent to register (SendCommand answers
/// `InvalidInstanceId` for tens of seconds after boot, and forever for an agent that never
/// comes online).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Retry within the adapter's bound (about two minutes): the EC2 event right after boot.
    WaitForAgent,
    /// One try: the sweep, which never waits for an agent; a record it cannot reach is left to
    /// its deadline.
    Once,
}

/// SSM Run Command.
#[async_trait]
pub trait Commands: Send + Sync {
    /// Sends `script` to one instance (AWS-RunShellScript), waiting for its agent as `reach`
    /// says. Returns the command id.
    async fn send(&self, instance_id: &str, script: &crate::scripts::Script, reach: Reach) -> Result<String>;
    /// The invocation of `command_id` on `instance_id`; a command not yet visible is Pending.
    async fn invocation(&self, command_id: &str, instance_id: &str) -> Result<Invocation>;
    /// Sends `script` to up to 50 instances in one command, without waiting for agents: one
    /// bad instance fails the whole call (the sweep bisects). Returns the command id.
    async fn send_batch(&self, instance_ids: &[String], script: &crate::scripts::Script) -> Result<String>;
    /// Every instance's invocation of `command_id`, with its output, all pages.
    async fn invocations(&self, command_id: &str) -> Result<Vec<Invocation>>;
    /// Which of `command_ids` (sent at or after `since`) have not ended on every instance yet.
    /// Here by reading each command's invocations; SSM lists the commands themselves instead,
    /// one call per 50, however many instances each ran on.
    async fn still_running(
        &self,
        command_ids: &[String],
        since: Timestamp,
    ) -> Result<std::collections::HashSet<String>> {
        let _ = since;
        let mut running = std::collections::HashSet::new();
        for id in command_ids {
            let invocations = self.invocations(id).await?;
            if invocations.is_empty() || invocations.iter().any(|i| !i.status.is_final()) {
                running.insert(id.clone());
            }
        }
        Ok(running)
    }
}

/// What people are told, through the Notifier: each says what happened and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Jupyter answers: how to connect.
    Ready {
        name: String,
        connect: Option<crate::record::Connect>,
        fingerprint: Option<String>,
    },
    /// An automatic stop is coming: when, why, and how to put it off.
    StoppingSoon {
        name: String,
        stop_at: Timestamp,
        reason: String,
    },
    /// Stopped by nbfleet, and why.
    Stopped { name: String, reason: String },
    /// Started by nbfleet (a schedule's window opened), and why.
    Started { name: String, reason: String },
    /// Configuration failed (the instance is stopped), and the error.
    Failed { name: String, error: String },
    /// An instance tagged for a notebook that no live record owns ran past its grace period
    /// and was stopped (never terminated: its disk may hold someone's work).
    Orphan { name: String, instance_id: String },
    /// A delete is held: the snapshot it promised cannot be taken, so the instance (and its
    /// disk) is kept, and costs, until it can.
    DeleteHeld { name: String, error: String },
    /// A new credential was stored but the running Jupyter did not take it.
    CredentialNotApplied { name: String, error: String },
    /// Jupyter did not answer the probe, and nbfleet restarted it.
    JupyterRestarted { name: String, why: String },
    /// The on-start hook failed (the notebook is Ready all the same).
    OnStartHookFailed { name: String, detail: String },
    /// A notebook stopped for a long while: what its disk costs, and what happens next.
    LongStopped { name: String, detail: String },
    /// A snapshot the retention rule will delete, or deleted.
    SnapshotRetention { name: String, detail: String },
    /// An owner's spend this month reached 80 % (or all) of their budget.
    Budget {
        owner: String,
        spent_cents: u64,
        budget_cents: u64,
    },
}

impl Notice {
    pub fn name(&self) -> &str {
        match self {
            Notice::Ready { name, .. }
            | Notice::StoppingSoon { name, .. }
            | Notice::Stopped { name, .. }
            | Notice::Started { name, .. }
            | Notice::Failed { name, .. }
            | Notice::DeleteHeld { name, .. }
            | Notice::CredentialNotApplied { name, .. }
            | Notice::JupyterRestarted { name, .. }
            | Notice::OnStartHookFailed { name, .. }
            | Notice::LongStopped { name, .. }
            | Notice::SnapshotRetention { name, .. }
            | Notice::Orphan { name, .. } => name,
            Notice::Budget { owner, .. } => owner,
        }
    }

    /// The message, in Slack's mrkdwn (which reads as plain text too).
    pub fn text(&self) -> String {
        match self {
            Notice::LongStopped { name, detail } => format!("*{name}* {detail}"),
            Notice::SnapshotRetention { name, detail } => format!("A snapshot of *{name}*: {detail}"),
            Notice::Budget {
                owner,
                spent_cents,
                budget_cents,
            } => {
                let (spent_usd, budget_usd) = (*spent_cents as f64 / 100.0, *budget_cents as f64 / 100.0);
                let pct = spent_cents * 100 / (*budget_cents).max(1);
                let after = match spent_cents >= budget_cents {
                    true => {
                        "launches and starts are refused until the month ends (running notebooks keep running)"
                    }
                    false => "at 100 % launches and starts are refused",
                };
                format!(
                    "*{owner}* spent ${spent_usd:.2} of a ${budget_usd:.2} monthly budget ({pct} %): {after}. `nbfleet costs` shows where it went."
                )
            }
            Notice::Ready {
                name,
                connect,
                fingerprint,
            } => {
                let mut t = format!("*{name}* is ready.");
                if let Some(c) = connect {
                    match &c.tunnel {
                        Some(tunnel) => t.push_str(&format!(
                            " Open it with `nbfleet open {name}` (or `{tunnel}`), then {}",
                            c.url
                        )),
                        None => t.push_str(&format!(" Open {}", c.url)),
                    }
                }
                if let Some(fp) = fingerprint {
                    t.push_str(&format!(
                        "\nCertificate SHA-256: `{fp}`: your browser shows it; check it before you log in."
                    ));
                }
                t
            }
            Notice::StoppingSoon {
                name,
                stop_at,
                reason,
            } => format!(
                "*{name}* stops at {}: {reason}\nTo keep it: `/notebook extend {name} 60` or `nbfleet extend {name} 60`.",
                stop_at.strftime("%H:%M UTC")
            ),
            // The policy's reasons for a stop start with "stopped: "; a stop from outside says
            // "stopped outside nbfleet: …".
            Notice::Stopped { name, reason } => match reason.strip_prefix("stopped: ") {
                Some(why) => format!("*{name}* was stopped: {why}"),
                None if reason.starts_with("stopped ") => format!("*{name}* was {reason}"),
                None => format!("*{name}* was stopped: {reason}"),
            },
            Notice::Started { name, reason } => format!("*{name}* was {reason}"),
            Notice::Failed { name, error } => format!(
                "*{name}* failed: {error}\nIts instance is stopped. `nbfleet status {name}` shows the script's last lines."
            ),
            Notice::Orphan { name, instance_id } => format!(
                "Instance `{instance_id}` is tagged for notebook *{name}*, but no live notebook owns it: \
                 it was stopped, not terminated (its disk is kept, and costs). \
                 `nbfleet orphans` lists such instances; terminate it in EC2 once nothing on it is needed."
            ),
            Notice::DeleteHeld { name, error } => format!(
                "*{name}* is not deleted yet: the snapshot of its disk could not be taken ({error}). \
                 Its instance is kept, and costs, until it can be; nbfleet keeps trying. \
                 To delete it without a snapshot: `nbfleet rm {name} --no-snapshot`."
            ),
            Notice::CredentialNotApplied { name, error } => format!(
                "*{name}*: the new credential is stored, but the running Jupyter did not take it ({error}). \
                 The old one works until the notebook's next start, which takes the new one; \
                 or try again: `nbfleet credential {name}`."
            ),
            Notice::OnStartHookFailed { name, detail } => format!(
                "*{name}* is ready, but its on-start hook {detail}. `nbfleet status {name}` shows its last lines."
            ),
            Notice::JupyterRestarted { name, why } => format!(
                "*{name}*: Jupyter did not answer ({why}), so nbfleet restarted it. Files are kept; \
                 kernels that were running are gone. Other work on the machine still counts as activity."
            ),
        }
    }
}

/// Tells people what happened. A failing notifier is logged by its caller and never blocks a
/// transition.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends `notice`, with what its notebook's record said as it went out (`facts`).
    async fn notify(&self, notice: &Notice, facts: &crate::blocks::Facts) -> Result<()>;
}

/// A notifier that writes to the log (when no Slack webhook is configured).
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, notice: &Notice, _: &crate::blocks::Facts) -> Result<()> {
        tracing::info!(notebook = notice.name(), message = %notice.text(), "notification");
        Ok(())
    }
}

/// Work handed to another invocation of the same function, so that an answer can go out first
/// (Slack wants one within 3 s). In a Lambda, an asynchronous self-invocation: a task spawned
/// in-process would die when Lambda freezes the process after the answer.
#[async_trait]
pub trait Jobs: Send + Sync {
    async fn submit(&self, job: &serde_json::Value) -> Result<()>;
}

/// Posts a reply to a Slack `response_url` (the answer to slow slash-command work), as an
/// ephemeral message only the caller sees.
#[async_trait]
pub trait Responder: Send + Sync {
    /// Posts `message` (Slack's JSON: an ephemeral reply, or a replacement of the message a
    /// button was on) to `response_url`.
    async fn respond(&self, response_url: &str, message: &serde_json::Value) -> Result<()>;
}

/// Sends `notice`, logging (never returning) a failure: notifications never block a transition.
pub async fn tell(deps: &Deps, notice: Notice) {
    let facts = facts_of(deps, &notice).await;
    if let Err(e) = deps.notifier.notify(&notice, &facts).await {
        tracing::warn!(notebook = notice.name(), error = %e, "notification not delivered");
    }
}

/// What the record of `notice`'s notebook says now (nothing, for a budget notice or a record
/// that cannot be read: a notice goes out all the same).
async fn facts_of(deps: &Deps, notice: &Notice) -> crate::blocks::Facts {
    match notice {
        Notice::Budget { owner, .. } => {
            return crate::blocks::Facts {
                owner_id: Some(owner.clone()),
                ..Default::default()
            };
        }
        // The operator's: the live record of that name (if any) is not the orphan's.
        Notice::Orphan { .. } => return crate::blocks::Facts::default(),
        _ => {}
    }
    match deps.store.get(notice.name()).await {
        Ok(Some(nb)) => crate::blocks::Facts {
            owner_id: Some(nb.owner_principal().id),
            state: Some(nb.state.to_string()),
            instance_type: Some(nb.instance_type.clone()),
            cost_usd: nb.cost(&deps.cfg.prices, deps.clock.now()).cost_usd,
            run: matches!(notice, Notice::Stopped { .. })
                .then(|| nb.last_run(&deps.cfg.prices, deps.clock.now()))
                .flatten(),
        },
        _ => crate::blocks::Facts::default(),
    }
}

/// The ports a handler works through, built once at start (real adapters in a Lambda, moto-backed
/// adapters in the local stack, fakes in tests).
#[derive(Clone)]
pub struct Deps {
    pub cfg: crate::Config,
    pub store: std::sync::Arc<dyn Store>,
    pub secrets: std::sync::Arc<dyn Secrets>,
    pub compute: std::sync::Arc<dyn Compute>,
    pub commands: std::sync::Arc<dyn Commands>,
    pub notifier: std::sync::Arc<dyn Notifier>,
    pub clock: std::sync::Arc<dyn Clock>,
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use crate::record::connect_for;
    use crate::validate::AccessMode;

    #[test]
    fn ready_says_how_to_connect_and_which_certificate_to_expect() {
        let n = Notice::Ready {
            name: "exp-1".into(),
            connect: Some(connect_for(
                AccessMode::Ssm,
                "i-0abc",
                None,
                8888,
                "eu-west-1",
                "AWS-StartPortForwardingSession",
            )),
            fingerprint: Some("ab12".into()),
        };
        let t = n.text();
        assert!(
            t.contains("`nbfleet open exp-1`") && t.contains("https://localhost:8888"),
            "{t}"
        );
        assert!(t.contains("--target i-0abc") && t.contains("`ab12`"), "{t}");
        let cidr = Notice::Ready {
            name: "exp-1".into(),
            connect: Some(connect_for(
                AccessMode::Cidr,
                "i-0abc",
                Some("203.0.113.9"),
                8888,
                "eu-west-1",
                "AWS-StartPortForwardingSession",
            )),
            fingerprint: None,
        };
        assert_eq!(cidr.text(), "*exp-1* is ready. Open https://203.0.113.9:8888");
    }

    #[test]
    fn warnings_say_how_to_extend_and_failures_say_the_instance_is_stopped() {
        let soon = Notice::StoppingSoon {
            name: "exp-1".into(),
            stop_at: "2026-11-26T15:00:00Z".parse().unwrap(),
            reason: "no kernel activity for 50 minutes".into(),
        };
        assert!(
            soon.text().contains("`/notebook extend exp-1 60`"),
            "{}",
            soon.text()
        );
        let failed = Notice::Failed {
            name: "exp-1".into(),
            error: "the bootstrap failed: pip install jupyterlab failed".into(),
        };
        assert!(
            failed.text().contains("Its instance is stopped"),
            "{}",
            failed.text()
        );
        assert_eq!(failed.name(), "exp-1");
    }
}

#[cfg(test)]
mod adoption_tests {
    use super::*;

    fn ours() -> Instance {
        Instance {
            id: "i-0abc".into(),
            notebook: Some("exp-1".into()),
            owner: Some("alice".into()),
            owner_id: Some("AIDAALICE".into()),
            launched_at: None,
            state: InstanceState::Pending,
            instance_type: "g5.xlarge".into(),
            subnet_id: Some("subnet-a".into()),
            private_ip: None,
            public_ip: None,
            public_dns: None,
            root_volume_id: None,
            image_id: Some("ami-dlami".into()),
            security_group_ids: vec!["sg-nb".into()],
            instance_profile: Some("nbfleet-notebook".into()),
        }
    }

    fn want() -> LaunchedWith<'static> {
        LaunchedWith {
            ami_id: "ami-dlami",
            security_group_id: "sg-nb",
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            instance_profile: Some("nbfleet-notebook"),
        }
    }

    /// Each thing a planted instance could differ in refuses it on its own, and says which.
    #[test]
    fn an_instance_is_adopted_only_when_ami_groups_subnet_and_profile_are_the_launchs() {
        assert_eq!(ours().launched_as(&want()), Ok(()));
        type Plant = fn(&mut Instance);
        let planted: [(&str, Plant); 6] = [
            ("AMI", |i| i.image_id = Some("ami-evil".into())),
            ("AMI", |i| i.image_id = None),
            ("security groups", |i| i.security_group_ids.push("sg-open".into())),
            ("security groups", |i| {
                i.security_group_ids = vec!["sg-open".into()]
            }),
            ("subnet", |i| i.subnet_id = Some("subnet-elsewhere".into())),
            ("instance profile", |i| i.instance_profile = Some("admin".into())),
        ];
        for (what, plant) in planted {
            let mut i = ours();
            plant(&mut i);
            let why = i.launched_as(&want()).unwrap_err();
            assert!(why.contains(what), "{what}: {why}");
        }
    }
}
