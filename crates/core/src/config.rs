//! Operator configuration, parsed once from environment variables into a validated type.
//!
//! Every function reads the same variables (set by `template.yaml`, or by the local stack).
//! A missing or bad variable is an error that names it, so a misdeployed function fails at
//! start with a sentence instead of misbehaving later.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// The default AMI parameter: AWS's PyTorch Deep Learning AMI (OSS NVIDIA driver) on
/// Ubuntu 22.04, whose Python has torch. Framework-specific paths get retired, so operators
/// override it with `NBFLEET_AMI_PARAMETER`.
pub const DEFAULT_AMI_PARAMETER: &str =
    "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id";

/// GPU types that are current (p2, g2 and g3 are retired; p3 is being retired).
pub const DEFAULT_INSTANCE_TYPES: &str = "g5.xlarge,g6.xlarge,g4dn.xlarge";

/// One (instance type, subnet) pair to try on a launch, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub instance_type: String,
    pub subnet_id: String,
}

/// An inclusive range with a default inside it.
/// GPU utilisation that counts as activity, unless a launch sets `gpu_threshold_pct`.
pub const GPU_THRESHOLD_PCT: Bounded = Bounded {
    default: 10,
    min: 1,
    max: 100,
};
/// CPU outside Jupyter (percent of one core) that counts as activity, unless a launch sets
/// `cpu_threshold_pct` (0 turns the signal off).
pub const CPU_THRESHOLD_PCT: Bounded = Bounded {
    default: DEFAULT_CPU_THRESHOLD_PCT,
    min: 0,
    max: 6400,
};
pub const DEFAULT_CPU_THRESHOLD_PCT: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded {
    pub default: u32,
    pub min: u32,
    pub max: u32,
}

impl Bounded {
    pub fn contains(&self, v: u32) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// DynamoDB table holding the notebook records (`NBFLEET_TABLE`, required).
    pub table: String,
    /// Instance types a launch may ask for; the first is the default.
    pub instance_types: Vec<String>,
    /// Subnets to launch into, tried in order on a capacity error (`NBFLEET_SUBNETS`).
    /// Empty means the account's default VPC.
    pub subnets: Vec<String>,
    /// Extra (type, subnet) pairs to fall back to after the requested type
    /// (`NBFLEET_FALLBACK`, `type@subnet,…`).
    pub fallback: Vec<Placement>,
    pub vpc_id: Option<String>,
    /// Instance profile for notebooks: SSM core plus read of its own secret.
    pub instance_profile: Option<String>,
    /// SSM parameter naming the AMI to launch.
    pub ami_parameter: String,
    /// Prefix of the notebooks' SecureString parameters (`/nbfleet`).
    pub secret_prefix: String,
    /// The KMS key they are encrypted with (`NBFLEET_SECRETS_KEY`: the stack's own, whose
    /// policy lets only notebook instances decrypt, through SSM); none: the account's `aws/ssm`.
    pub secrets_key: Option<String>,
    /// The session document port-forwards use (`NBFLEET_TUNNEL_DOCUMENT`: the stack's own, to
    /// Jupyter's port only; default AWS's `AWS-StartPortForwardingSession`, for the local stack).
    pub tunnel_document: String,
    pub idle_timeout_minutes: Bounded,
    pub volume_gb: Bounded,
    /// The runtime cap of one run, in minutes (0 turns it off); `extend` can put it off.
    pub max_runtime_minutes: u32,
    /// The most one run may last whatever `extend` asks (`NBFLEET_RUNTIME_CEILING_MINUTES`,
    /// default 24 h; 0 turns it off); at least `max_runtime_minutes`.
    pub runtime_ceiling_minutes: u32,
    /// How long before an automatic stop the warning goes out.
    pub warning_minutes: u32,
    /// How long an orphan (an instance tagged for a notebook that no live record owns) may run
    /// before the sweep stops it (`NBFLEET_ORPHAN_GRACE_MINUTES`, default 30). A launch in
    /// flight has its instance before its record names it, so this is never zero.
    pub orphan_grace_minutes: u32,
    /// Whether `cidr` access may include the whole internet (0.0.0.0/0, ::/0).
    pub allow_world: bool,
    /// Principals who may act on any notebook (`NBFLEET_ADMINS`: roles, role sessions, users),
    /// each checked when the configuration loads.
    pub admins: Vec<crate::identity::Admin>,
    /// Whom a notebook belongs to (`NBFLEET_OWNER_MODE`: `person`, the default, or `role`).
    pub owner_mode: crate::identity::OwnerMode,
    /// The region notebooks run in (`AWS_REGION`, which Lambda sets).
    pub region: String,
    /// The account and partition notebooks run in (`NBFLEET_ACCOUNT_ID`, `NBFLEET_PARTITION`,
    /// from the template), for instance ARNs. Without an account, secrets are not granted to
    /// their instance by tag (the local stack, which has no IAM to enforce it).
    pub account_id: Option<String>,
    pub partition: String,
    /// On-demand prices per type (`NBFLEET_PRICES`, `type=usd,…`, over the defaults).
    pub prices: crate::cost::PriceTable,
    /// Forgotten things (`crates/app/src/cleanup.rs`).
    pub cleanup: Cleanup,
    /// Monthly budgets in USD by owner id (`NBFLEET_BUDGETS`, `OWNER_ID=USD,…`).
    pub budgets: std::collections::BTreeMap<String, f64>,
    pub slack: Slack,
}

/// What the sweep does about forgotten notebooks and snapshots; 0 turns a rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// A notebook Stopped this many days is noticed, with what its disk costs a month, and
    /// again every week (`NBFLEET_STOPPED_NOTICE_DAYS`, default 14).
    pub stopped_notice_days: u32,
    /// A notebook Stopped this many days is deleted, with a snapshot
    /// (`NBFLEET_DELETE_STOPPED_AFTER_DAYS`, default off); more than the notice's days.
    pub delete_stopped_after_days: u32,
    /// nbfleet snapshots older than this are deleted, a week after a notice
    /// (`NBFLEET_SNAPSHOT_RETENTION_DAYS`, default off).
    pub snapshot_retention_days: u32,
}

/// Slack: where its secrets live (Parameter Store names, never values) and who may use it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slack {
    /// `NBFLEET_SLACK_SIGNING_SECRET_PARAMETER`: the slash commands' signing secret.
    pub signing_secret_parameter: Option<String>,
    /// `NBFLEET_SLACK_WEBHOOK_PARAMETER`: the incoming webhook notifications go to.
    pub webhook_parameter: Option<String>,
    /// `NBFLEET_SLACK_TEAMS`: the workspaces allowed; none means nobody.
    pub teams: Vec<String>,
    /// `NBFLEET_SLACK_USERS`: the users allowed; none means every user of an allowed team.
    pub users: Vec<String>,
    /// `NBFLEET_SLACK_OWNERS` (`USER=OWNER,…`): the owner a Slack user acts as, given as the
    /// owner id nbfleet shows (`aws sts get-caller-identity`'s UserId in person mode, the
    /// role's unique id in role mode), so that a notebook launched from the CLI can be stopped
    /// from Slack by the same person. A user not in it owns only what they launch from Slack.
    pub owners: std::collections::BTreeMap<String, String>,
    /// `NBFLEET_SLACK_RESPONSE_HOSTS`: hosts besides `hooks.slack.com` that a `response_url`
    /// may name (a Slack of one's own, GovSlack).
    pub response_hosts: Vec<String>,
    /// `NBFLEET_SLACK_BOT_TOKEN_PARAMETER`: the app's bot token (`xoxb-…`), which lets notices go
    /// to their owner as a direct message. Without the parameter, notices take the webhook.
    pub bot_token_parameter: Option<String>,
    /// `NBFLEET_SLACK_CHANNEL`: the channel (`C…`) the bot posts to: notices whose owner has no
    /// Slack user, or every notice, as `deliver` says.
    pub channel: Option<String>,
    /// `NBFLEET_SLACK_DELIVER`: where the bot sends a notice.
    pub deliver: Deliver,
    /// `NBFLEET_SLACK_OPERATOR_CHANNEL`: the channel (`C…`) for the operator's notices (an
    /// orphaned instance), which belong to no owner. Without it they go where `deliver` says.
    pub operator_channel: Option<String>,
    /// `NBFLEET_SLACK_ADMINS`: Slack users who act as admins from Slack (any notebook's buttons
    /// and commands). None by default: Slack's login is the workspace's, not IAM's.
    pub admins: Vec<String>,
}

/// Where a notice goes when there is a bot token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deliver {
    /// To the owner's Slack user (`NBFLEET_SLACK_OWNERS`), else to the channel.
    #[default]
    Owner,
    /// To the channel only.
    Channel,
    /// To the owner and to the channel.
    Both,
}

impl Slack {
    /// The Slack user an owner id is mapped to (`NBFLEET_SLACK_OWNERS`, read backwards).
    pub fn user_of(&self, owner_id: &str) -> Option<&str> {
        self.owners
            .iter()
            .find(|(_, o)| *o == owner_id)
            .map(|(u, _)| u.as_str())
    }
}

/// Reads a configuration from a set of variables (`std::env::vars()` in a Lambda `main`).
pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    build(&Env::new(vars))
}

/// The names `from_vars` looks up, given `vars`: the template test compares them with what each
/// function's environment sets.
pub fn variables_read(
    vars: impl IntoIterator<Item = (String, String)>,
) -> std::collections::BTreeSet<String> {
    let env = Env::new(vars);
    let _ = build(&env);
    env.read.into_inner()
}

fn build(env: &Env) -> Result<Config, ConfigError> {
    let instance_types = env.list("NBFLEET_INSTANCE_TYPES", DEFAULT_INSTANCE_TYPES);
    if instance_types.is_empty() {
        return Err(ConfigError::new(
            "NBFLEET_INSTANCE_TYPES",
            "must list at least one instance type",
        ));
    }
    let fallback = env
        .list("NBFLEET_FALLBACK", "")
        .into_iter()
        .map(|pair| match pair.split_once('@') {
            Some((t, s)) if !t.is_empty() && !s.is_empty() => Ok(Placement {
                instance_type: t.to_string(),
                subnet_id: s.to_string(),
            }),
            _ => Err(ConfigError::new(
                "NBFLEET_FALLBACK",
                format!("{pair:?} is not TYPE@SUBNET"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = fallback
        .iter()
        .find(|p| !instance_types.contains(&p.instance_type))
    {
        return Err(ConfigError::new(
            "NBFLEET_FALLBACK",
            format!("{} is not in NBFLEET_INSTANCE_TYPES", p.instance_type),
        ));
    }
    let region = env.optional("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
    Ok(Config {
        table: env.required("NBFLEET_TABLE")?,
        instance_types,
        subnets: env.list("NBFLEET_SUBNETS", ""),
        fallback,
        vpc_id: env.optional("NBFLEET_VPC_ID"),
        instance_profile: env.optional("NBFLEET_INSTANCE_PROFILE"),
        ami_parameter: env
            .optional("NBFLEET_AMI_PARAMETER")
            .unwrap_or_else(|| DEFAULT_AMI_PARAMETER.into()),
        secret_prefix: env
            .optional("NBFLEET_SECRET_PREFIX")
            .unwrap_or_else(|| "/nbfleet".into())
            .trim_end_matches('/')
            .to_string(),
        secrets_key: env.optional("NBFLEET_SECRETS_KEY"),
        tunnel_document: env
            .optional("NBFLEET_TUNNEL_DOCUMENT")
            .unwrap_or_else(|| "AWS-StartPortForwardingSession".into()),
        idle_timeout_minutes: env.bounded(
            "NBFLEET_IDLE_TIMEOUT_MINUTES",
            Bounded {
                default: 60,
                min: 10,
                max: 1440,
            },
        )?,
        volume_gb: env.bounded(
            "NBFLEET_VOLUME_GB",
            Bounded {
                default: 100,
                min: 75,
                max: 2000,
            },
        )?,
        max_runtime_minutes: env.parsed("NBFLEET_MAX_RUNTIME_MINUTES", 720)?,
        runtime_ceiling_minutes: runtime_ceiling(env)?,
        warning_minutes: env.parsed("NBFLEET_WARNING_MINUTES", 10)?,
        orphan_grace_minutes: match env.parsed("NBFLEET_ORPHAN_GRACE_MINUTES", 30)? {
            m if (10..=1440).contains(&m) => m,
            m => {
                return Err(ConfigError::new(
                    "NBFLEET_ORPHAN_GRACE_MINUTES",
                    format!("{m} is outside 10 to 1440 minutes (a launch in flight needs 10)"),
                ));
            }
        },
        allow_world: env.parsed("NBFLEET_ALLOW_WORLD", false)?,
        admins: env
            .list("NBFLEET_ADMINS", "")
            .iter()
            .map(|a| a.parse().map_err(|m| ConfigError::new("NBFLEET_ADMINS", m)))
            .collect::<Result<_, _>>()?,
        owner_mode: env.parsed("NBFLEET_OWNER_MODE", crate::identity::OwnerMode::Person)?,
        region: region.clone(),
        account_id: env.optional("NBFLEET_ACCOUNT_ID"),
        partition: env.optional("NBFLEET_PARTITION").unwrap_or_else(|| "aws".into()),
        prices: prices(env, &region)?,
        budgets: budgets(env)?,
        cleanup: cleanup(env)?,
        slack: Slack {
            signing_secret_parameter: env.optional("NBFLEET_SLACK_SIGNING_SECRET_PARAMETER"),
            webhook_parameter: env.optional("NBFLEET_SLACK_WEBHOOK_PARAMETER"),
            teams: env.list("NBFLEET_SLACK_TEAMS", ""),
            users: env.list("NBFLEET_SLACK_USERS", ""),
            owners: slack_owners(env)?,
            response_hosts: env.list("NBFLEET_SLACK_RESPONSE_HOSTS", ""),
            bot_token_parameter: env.optional("NBFLEET_SLACK_BOT_TOKEN_PARAMETER"),
            channel: slack_channel(env, "NBFLEET_SLACK_CHANNEL")?,
            operator_channel: slack_channel(env, "NBFLEET_SLACK_OPERATOR_CHANNEL")?,
            admins: slack_users(env, "NBFLEET_SLACK_ADMINS")?,
            deliver: match env.optional("NBFLEET_SLACK_DELIVER").as_deref() {
                None | Some("owner") => Deliver::Owner,
                Some("channel") => Deliver::Channel,
                Some("both") => Deliver::Both,
                Some(other) => {
                    return Err(ConfigError::new(
                        "NBFLEET_SLACK_DELIVER",
                        format!("{other:?} is not owner, channel or both"),
                    ));
                }
            },
        },
    })
}

fn runtime_ceiling(env: &Env) -> Result<u32, ConfigError> {
    let var = "NBFLEET_RUNTIME_CEILING_MINUTES";
    let ceiling: u32 = env.parsed(var, 24 * 60)?;
    let cap: u32 = env.parsed("NBFLEET_MAX_RUNTIME_MINUTES", 720)?;
    if ceiling > 0 && ceiling < cap {
        return Err(ConfigError::new(
            var,
            format!("{ceiling} is below NBFLEET_MAX_RUNTIME_MINUTES ({cap}): the ceiling bounds the cap"),
        ));
    }
    Ok(ceiling)
}

fn slack_channel(env: &Env, var: &'static str) -> Result<Option<String>, ConfigError> {
    let channel = env.optional(var);
    match &channel {
        Some(c)
            if !(c.len() <= 32
                && c.starts_with(['C', 'G'])
                && c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())) =>
        {
            Err(ConfigError::new(
                var,
                format!("{c:?} is not a channel id (C0123ABCD)"),
            ))
        }
        _ => Ok(channel),
    }
}

/// Whether `s` is shaped like a Slack user id (`U0123ABCD`).
fn slack_user(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn slack_users(env: &Env, var: &'static str) -> Result<Vec<String>, ConfigError> {
    let users = env.list(var, "");
    match users.iter().find(|u| !slack_user(u)) {
        Some(bad) => Err(ConfigError::new(
            var,
            format!("{bad:?} is not a Slack user id (U0123ABCD)"),
        )),
        None => Ok(users),
    }
}

fn slack_owners(env: &Env) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let var = "NBFLEET_SLACK_OWNERS";
    env.list(var, "")
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((user, owner))
                if slack_user(user) && !owner.is_empty() && !owner.contains(char::is_whitespace) =>
            {
                Ok((user.to_string(), owner.to_string()))
            }
            _ => Err(ConfigError::new(
                var,
                format!("{pair:?} is not SLACKUSER=OWNERID (U0123ABCD=AROAEXAMPLE:alice)"),
            )),
        })
        .collect()
}

fn cleanup(env: &Env) -> Result<Cleanup, ConfigError> {
    let c = Cleanup {
        stopped_notice_days: env.parsed("NBFLEET_STOPPED_NOTICE_DAYS", 14)?,
        delete_stopped_after_days: env.parsed("NBFLEET_DELETE_STOPPED_AFTER_DAYS", 0)?,
        snapshot_retention_days: env.parsed("NBFLEET_SNAPSHOT_RETENTION_DAYS", 0)?,
    };
    if c.delete_stopped_after_days != 0
        && (c.stopped_notice_days == 0 || c.delete_stopped_after_days <= c.stopped_notice_days)
    {
        return Err(ConfigError::new(
            "NBFLEET_DELETE_STOPPED_AFTER_DAYS",
            "must be more than NBFLEET_STOPPED_NOTICE_DAYS (not 0): an owner is told before the delete",
        ));
    }
    Ok(c)
}

/// `NBFLEET_BUDGETS`: `OWNER_ID=USD,…`, each a positive amount.
fn budgets(env: &Env) -> Result<std::collections::BTreeMap<String, f64>, ConfigError> {
    let var = "NBFLEET_BUDGETS";
    env.list(var, "")
        .into_iter()
        .map(|pair| {
            let (owner, usd) = pair
                .rsplit_once('=')
                .ok_or_else(|| ConfigError::new(var, format!("{pair:?} is not OWNER_ID=USD")))?;
            match usd.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && !owner.trim().is_empty() => {
                    Ok((owner.trim().to_string(), v))
                }
                _ => Err(ConfigError::new(
                    var,
                    format!("{pair:?} is not OWNER_ID=USD with USD above 0"),
                )),
            }
        })
        .collect()
}

/// The bundled prices of the region, under the operator's `NBFLEET_PRICES`.
fn prices(env: &Env, region: &str) -> Result<crate::cost::PriceTable, ConfigError> {
    use crate::cost::PriceTable;
    let bundled = PriceTable::bundled(region);
    let Some(spec) = env.optional("NBFLEET_PRICES") else {
        return Ok(bundled);
    };
    let source = env
        .optional("NBFLEET_PRICES_SOURCE")
        .unwrap_or_else(|| format!("the operator's NBFLEET_PRICES over: {}", bundled.source));
    let over = PriceTable::parse(&spec, &source).map_err(|m| ConfigError::new("NBFLEET_PRICES", m))?;
    Ok(bundled.overridden_by(over))
}

impl Config {
    /// An instance's ARN, where the account is known.
    pub fn instance_arn(&self, instance_id: &str) -> Option<String> {
        let account = self.account_id.as_deref()?;
        Some(format!(
            "arn:{}:ec2:{}:{account}:instance/{instance_id}",
            self.partition, self.region
        ))
    }

    /// The SecureString parameter that holds a notebook's password hash or token.
    pub fn secret_parameter(&self, notebook: &str) -> String {
        format!("{}/notebooks/{notebook}/secret", self.secret_prefix)
    }

    /// The (type, subnet) pairs a launch of `instance_type` tries, in order: the requested type
    /// in each subnet, then the operator's fallback pairs. No subnets means one attempt in the
    /// default VPC (subnet `""`).
    pub fn placements(&self, instance_type: &str) -> Vec<Placement> {
        let subnets: Vec<String> = if self.subnets.is_empty() {
            vec![String::new()]
        } else {
            self.subnets.clone()
        };
        let mut out: Vec<Placement> = subnets
            .into_iter()
            .map(|subnet_id| Placement {
                instance_type: instance_type.to_string(),
                subnet_id,
            })
            .collect();
        for p in &self.fallback {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

impl ConfigError {
    fn new(var: &str, message: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_string(),
            message: message.into(),
        }
    }
}

/// The variables, and the names looked up so far.
struct Env {
    vars: HashMap<String, String>,
    read: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Env {
    fn new(vars: impl IntoIterator<Item = (String, String)>) -> Env {
        Env {
            vars: vars.into_iter().collect(),
            read: Default::default(),
        }
    }

    fn optional(&self, var: &str) -> Option<String> {
        self.read.borrow_mut().insert(var.to_string());
        self.vars
            .get(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.optional(var)
            .ok_or_else(|| ConfigError::new(var, "is missing"))
    }

    fn list(&self, var: &str, default: &str) -> Vec<String> {
        let raw = self.optional(var).unwrap_or_else(|| default.to_string());
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn parsed<T: FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        match self.optional(var) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| ConfigError::new(var, format!("{v:?} is not valid: {e}"))),
        }
    }

    /// `VAR` is the default; `VAR_MIN` and `VAR_MAX` bound what a request may ask for.
    fn bounded(&self, var: &str, default: Bounded) -> Result<Bounded, ConfigError> {
        let (min_var, max_var) = (format!("{var}_MIN"), format!("{var}_MAX"));
        let b = Bounded {
            default: self.parsed(var, default.default)?,
            min: self.parsed(&min_var, default.min)?,
            max: self.parsed(&max_var, default.max)?,
        };
        if b.min > b.max {
            return Err(ConfigError::new(
                &max_var,
                format!("{} is below {min_var} ({})", b.max, b.min),
            ));
        }
        if !b.contains(b.default) {
            return Err(ConfigError::new(
                var,
                format!("{} is outside {}..={}", b.default, b.min, b.max),
            ));
        }
        Ok(b)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A configuration as the tests of other modules use it.
    pub(crate) fn test_config() -> Config {
        from_vars(vars(&[("NBFLEET_TABLE", "nbfleet")])).unwrap()
    }

    #[test]
    fn budgets_and_cleanup_rules_are_checked_when_the_configuration_loads() {
        let c = from_vars(vars(&[
            ("NBFLEET_TABLE", "t"),
            ("NBFLEET_BUDGETS", "AIDAEXAMPLE=100,AROAEXAMPLE:ana=250.5"),
            ("NBFLEET_DELETE_STOPPED_AFTER_DAYS", "30"),
        ]))
        .unwrap();
        assert_eq!(c.budgets["AROAEXAMPLE:ana"], 250.5);
        assert_eq!(
            (c.cleanup.stopped_notice_days, c.cleanup.delete_stopped_after_days),
            (14, 30)
        );
        for (var, value) in [
            ("NBFLEET_BUDGETS", "AIDAEXAMPLE"),
            ("NBFLEET_BUDGETS", "AIDAEXAMPLE=0"),
            ("NBFLEET_BUDGETS", "=5"),
            ("NBFLEET_DELETE_STOPPED_AFTER_DAYS", "7"),
        ] {
            let err = from_vars(vars(&[("NBFLEET_TABLE", "t"), (var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn defaults_fill_everything_but_the_table() {
        let cfg = test_config();
        assert_eq!(cfg.instance_types, ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"]);
        assert_eq!(cfg.ami_parameter, DEFAULT_AMI_PARAMETER);
        assert_eq!(
            cfg.idle_timeout_minutes,
            Bounded {
                default: 60,
                min: 10,
                max: 1440
            }
        );
        assert!(!cfg.allow_world);
        assert_eq!(cfg.max_runtime_minutes, 720);
        assert_eq!(cfg.secret_parameter("nb"), "/nbfleet/notebooks/nb/secret");
    }

    #[test]
    fn a_missing_table_is_named() {
        let err = from_vars(vars(&[])).unwrap_err();
        assert_eq!(err.var, "NBFLEET_TABLE");
        assert_eq!(
            err.to_string(),
            "configuration variable NBFLEET_TABLE: is missing"
        );
    }

    #[test]
    fn a_bad_number_is_named() {
        let err = from_vars(vars(&[
            ("NBFLEET_TABLE", "t"),
            ("NBFLEET_WARNING_MINUTES", "ten"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "NBFLEET_WARNING_MINUTES");
        assert!(err.message.contains("\"ten\""), "{err}");
    }

    #[test]
    fn admins_owner_mode_and_slack_owners_are_checked_when_the_configuration_loads() {
        let ok = from_vars(vars(&[
            ("NBFLEET_TABLE", "t"),
            (
                "NBFLEET_ADMINS",
                "arn:aws:iam::123456789012:role/Platform, arn:aws:iam::123456789012:user/dave",
            ),
            ("NBFLEET_OWNER_MODE", "role"),
            (
                "NBFLEET_SLACK_OWNERS",
                "U0ALICE=AROAEXAMPLE:alice,U0BOB=AIDAEXAMPLEBOB",
            ),
            ("NBFLEET_SLACK_ADMINS", "U0DAVE"),
            ("NBFLEET_SLACK_OPERATOR_CHANNEL", "C0OPS"),
        ]))
        .unwrap();
        assert_eq!(ok.admins.len(), 2);
        assert_eq!(ok.slack.admins, ["U0DAVE"]);
        assert_eq!(ok.slack.operator_channel.as_deref(), Some("C0OPS"));
        assert_eq!(ok.owner_mode, crate::identity::OwnerMode::Role);
        assert_eq!(ok.slack.owners["U0ALICE"], "AROAEXAMPLE:alice");
        for (var, value) in [
            ("NBFLEET_ADMINS", "alice"),
            ("NBFLEET_ADMINS", "arn:aws:iam::123456789012:group/admins"),
            ("NBFLEET_OWNER_MODE", "team"),
            ("NBFLEET_SLACK_OWNERS", "U0ALICE"),
            ("NBFLEET_SLACK_OWNERS", "alice=AROAEXAMPLE:alice"),
            ("NBFLEET_SLACK_OWNERS", "U0ALICE=AROA EXAMPLE"),
            ("NBFLEET_SLACK_ADMINS", "dave"),
            ("NBFLEET_SLACK_ADMINS", "arn:aws:iam::123456789012:user/dave"),
            ("NBFLEET_SLACK_OPERATOR_CHANNEL", "#ops"),
        ] {
            let err = from_vars(vars(&[("NBFLEET_TABLE", "t"), (var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}: {err}");
        }
    }

    #[test]
    fn a_bad_boolean_is_named() {
        let err = from_vars(vars(&[("NBFLEET_TABLE", "t"), ("NBFLEET_ALLOW_WORLD", "yes")])).unwrap_err();
        assert_eq!(err.var, "NBFLEET_ALLOW_WORLD");
    }

    #[test]
    fn a_default_outside_its_bounds_is_refused() {
        let err = from_vars(vars(&[
            ("NBFLEET_TABLE", "t"),
            ("NBFLEET_IDLE_TIMEOUT_MINUTES", "5"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "NBFLEET_IDLE_TIMEOUT_MINUTES");
        let err = from_vars(vars(&[("NBFLEET_TABLE", "t"), ("NBFLEET_VOLUME_GB_MAX", "50")])).unwrap_err();
        assert_eq!(err.var, "NBFLEET_VOLUME_GB_MAX");
    }

    #[test]
    fn fallback_pairs_must_be_type_at_subnet_and_allowed() {
        let err = from_vars(vars(&[("NBFLEET_TABLE", "t"), ("NBFLEET_FALLBACK", "g5.xlarge")])).unwrap_err();
        assert_eq!(err.var, "NBFLEET_FALLBACK");
        let err = from_vars(vars(&[
            ("NBFLEET_TABLE", "t"),
            ("NBFLEET_FALLBACK", "p3.2xlarge@subnet-1"),
        ]))
        .unwrap_err();
        assert!(err.message.contains("p3.2xlarge"), "{err}");
    }

    #[test]
    fn placements_try_the_requested_type_in_each_subnet_then_the_fallbacks() {
        let cfg = from_vars(vars(&[
            ("NBFLEET_TABLE", "t"),
            ("NBFLEET_SUBNETS", "subnet-a, subnet-b"),
            ("NBFLEET_FALLBACK", "g5.xlarge@subnet-a,g6.xlarge@subnet-a"),
        ]))
        .unwrap();
        let got: Vec<String> = cfg
            .placements("g5.xlarge")
            .into_iter()
            .map(|p| format!("{}@{}", p.instance_type, p.subnet_id))
            .collect();
        assert_eq!(
            got,
            ["g5.xlarge@subnet-a", "g5.xlarge@subnet-b", "g6.xlarge@subnet-a"]
        );
        assert_eq!(test_config().placements("g6.xlarge")[0].subnet_id, "");
    }
}
