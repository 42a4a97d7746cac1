//! The local deployment's names, in one place: what `setup` makes in moto and the local stack
//! is configured with, and what `make bench` (lambda-bench, and through it the Python baseline's
//! `bench/python/helper.py`, which gets them in its environment) uses. SDK-free, so that
//! lambda-bench can include it without building the SDK.

/// The notebook table.
pub const TABLE: &str = "nbfleet-local";
/// The Deep Learning AMI that `tests/fixtures/amis.json` seeds into moto.
pub const SEEDED_AMI: &str = "ami-0d1a2b3c4d5e6f708";
/// Where local mode finds that AMI (moto reserves `/aws/service/...`).
pub const AMI_PARAMETER: &str = "/nbfleet/local/dlami/ami-id";
/// The instance profile notebooks launch with.
pub const INSTANCE_PROFILE: &str = "nbfleet-local-instance";
/// The local Slack app: its workspace and its signing secret (a moto-only value, not a secret).
pub const SLACK_TEAM: &str = "TLOCAL";
pub const SLACK_SIGNING_SECRET_PARAMETER: &str = "/nbfleet/local/slack/signing-secret";
pub const SLACK_SIGNING_SECRET: &str = "nbfleet-local-slack-signing-secret";
pub const SLACK_WEBHOOK_PARAMETER: &str = "/nbfleet/local/slack/webhook-url";

/// The names above as environment variables, for `bench/python/helper.py`.
pub const HELPER_ENV: [(&str, &str); 7] = [
    ("NBFLEET_LOCAL_TABLE", TABLE),
    ("NBFLEET_LOCAL_SEEDED_AMI", SEEDED_AMI),
    ("NBFLEET_LOCAL_AMI_PARAMETER", AMI_PARAMETER),
    ("NBFLEET_LOCAL_INSTANCE_PROFILE", INSTANCE_PROFILE),
    (
        "NBFLEET_LOCAL_SLACK_SIGNING_SECRET_PARAMETER",
        SLACK_SIGNING_SECRET_PARAMETER,
    ),
    ("NBFLEET_LOCAL_SLACK_SIGNING_SECRET", SLACK_SIGNING_SECRET),
    ("NBFLEET_LOCAL_SLACK_WEBHOOK_PARAMETER", SLACK_WEBHOOK_PARAMETER),
];
