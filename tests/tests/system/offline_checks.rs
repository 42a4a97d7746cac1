//! The offline checks of `make test` (scripts/check-template.py) catch what a first deploy would
//! meet: each test breaks a copy of template.yaml one way and expects the named check to fail
//! with a finding that says what broke. The unbroken template passes every check in `make test`
//! itself (`make template-check`).

use nbfleet_tests::root;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `check` on template.yaml changed by `replace` (each pair must match once), and returns
/// whether it passed, with its findings.
fn checked(check: &str, replace: &[(&str, &str)]) -> (bool, String) {
    let mut text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for (old, new) in replace {
        assert_eq!(
            text.matches(old).count(),
            1,
            "the mutation must match once: {old}"
        );
        text = text.replacen(old, new, 1);
    }
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nbfleet-check-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/check-template.py"))
        .args(["--only", check])
        .arg(&path)
        .output()
        .expect("run scripts/check-template.py (make venv first)");
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

fn fails_with(check: &str, replace: &[(&str, &str)], finding: &str) {
    let (passed, said) = checked(check, replace);
    assert!(!passed, "the {check} check passed a broken template:\n{said}");
    assert!(said.contains(finding), "expected {finding:?} among:\n{said}");
}

#[test]
fn an_unknown_iam_action_fails_the_iam_lint() {
    fails_with(
        "iam",
        &[(
            "                - ec2:StopInstances\n              Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*\n              Condition:\n                \"Null\":\n                  aws:ResourceTag/nbfleet:notebook: \"false\"\n            - Sid: DeleteNotebookGroups",
            "                - ec2:StopInstance\n              Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*\n              Condition:\n                \"Null\":\n                  aws:ResourceTag/nbfleet:notebook: \"false\"\n            - Sid: DeleteNotebookGroups",
        )],
        "UNKNOWN_ACTION",
    );
}

#[test]
fn a_condition_key_the_action_does_not_take_fails_the_iam_lint() {
    // kms:ViaService on the SSM read of the instance's own secret: GetParameter has no such key.
    // (Under Null, which parliament itself does not look at.)
    fails_with(
        "iam",
        &[(
            "                  \"Null\":\n                    ec2:SourceInstanceARN: \"false\"\n              - Sid: DecryptThroughSsmOnly",
            "                  \"Null\":\n                    ec2:SourceInstanceARN: \"false\"\n                    kms:ViaService: \"false\"\n              - Sid: DecryptThroughSsmOnly",
        )],
        "Unknown condition kms:ViaService for action ssm:GetParameter",
    );
}

#[test]
fn a_resource_no_action_of_its_statement_takes_fails_the_iam_lint() {
    // StopInstances on a volume: IAM would never match it, so the function could not stop.
    fails_with(
        "iam",
        &[(
            "                - ec2:StopInstances\n              Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*\n              Condition:\n                \"Null\":\n                  aws:ResourceTag/nbfleet:notebook: \"false\"\n            - Sid: DeleteNotebookGroups",
            "                - ec2:StopInstances\n              Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:volume/*\n              Condition:\n                \"Null\":\n                  aws:ResourceTag/nbfleet:notebook: \"false\"\n            - Sid: DeleteNotebookGroups",
        )],
        "is no resource type of ['ec2:StopInstances']",
    );
}

#[test]
fn an_event_rule_that_leaves_out_a_state_the_handlers_act_on_fails() {
    fails_with(
        "events",
        &[(
            "state: [pending, running, stopping, stopped, shutting-down, terminated]",
            "state: [pending, running, stopping, shutting-down, terminated]",
        )],
        "events/ec2-stopped.json: should match EventsFunctionEc2StateChange alone, matched nothing",
    );
}

#[test]
fn an_event_rule_that_matches_a_near_miss_fails() {
    // Without the document filter, a PowerShell command's result would reach the handler.
    fails_with(
        "events",
        &[("                document-name: [AWS-RunShellScript]\n", "")],
        "events/near-misses/ssm-another-document.json: a near-miss matched",
    );
}

#[test]
fn a_default_that_breaks_its_constraint_fails() {
    fails_with(
        "deploy",
        &[(
            "    Default: 60\n    MinValue: 10\n",
            "    Default: 5\n    MinValue: 10\n",
        )],
        "default: IdleTimeoutMinutes=5 is below MinValue 10",
    );
}

#[test]
fn a_ref_to_nothing_and_an_unused_parameter_fail() {
    fails_with(
        "deploy",
        &[(
            "NBFLEET_OWNER_MODE: !Ref OwnerMode",
            "NBFLEET_OWNER_MODE: !Ref OwnersMode",
        )],
        "Ref OwnersMode resolves to nothing",
    );
    fails_with(
        "deploy",
        &[(
            "NBFLEET_ALLOW_WORLD: !Ref AllowWorld",
            "NBFLEET_ALLOW_WORLD: \"false\"",
        )],
        "parameter AllowWorld is never used",
    );
}

#[test]
fn a_longer_function_name_than_the_readme_allows_for_the_stack_name_fails() {
    fails_with(
        "deploy",
        &[(
            "FunctionName: !Sub ${AWS::StackName}-lifecycle",
            "FunctionName: !Sub ${AWS::StackName}-lifecycle-of-notebooks",
        )],
        "README.md should say a stack name of at most 41 characters",
    );
}

#[test]
fn an_instance_role_that_does_not_deny_the_bot_token_fails() {
    fails_with(
        "deploy",
        &[(
            "                  - !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SlackBotTokenParameter}\n\n  NotebookInstanceProfile:",
            "\n  NotebookInstanceProfile:",
        )],
        "NotebookInstanceRole: does not deny ssm:GetParameter on SlackBotTokenParameter",
    );
}
