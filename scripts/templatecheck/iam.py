"""Every IAM policy in the template, linted by parliament against AWS's service authorization
reference (bundled; offline): unknown actions, malformed ARNs, condition keys an action does not
take, a resource that fits no resource type of its actions.

Function roles (as SAM generates them), the instance role, the managed user and admin policies,
the KMS key policy and the queue policy are linted, each as deployed at the parameters' defaults
and with each allowed value of a parameter a condition reads.
Trust policies are left out (no Resource). Two refinements of parliament's own checks:
- RESOURCE_MISMATCH is judged per policy, not per statement: a statement for RunInstances on
  `instance/*` and another on `subnet/*` together cover what RunInstances needs, as IAM sees it.
- A resource must fit a resource type of at least one of its statement's actions (parliament
  only asks that each action has one).
A finding fails the check unless ALLOWED names it with the reason; an entry that no longer
matches anything fails too, so the list stays short and true.
"""

from __future__ import annotations

import json
import re

from parliament import analyze_policy_string, is_arn_strictly_valid
from parliament.statement import get_arn_format, get_privilege_info, is_condition_key_match

from .template import Resolver

# (where, issue, detail fragment) → why it is not a defect.
ALLOWED = {
    ("NotebookInstanceRole/own-secret-only", "UNKNOWN_CONDITION_FOR_ACTION", "ssm:resourceTag/nbfleet:instance"):
        "the reference writes the parameter's tag key as the literal `ssm:resourceTag/tag-key`; SSM's guide "
        "to tag-based parameter access conditions ssm:GetParameter on `ssm:resourceTag/<key>`",
    ("NotebookInstanceRole/ssm-agent", "RESOURCE_STAR", "ssm:"):
        "the SSM agent's own calls, granted on * as AWS's AmazonSSMManagedInstanceCore grants them",
    ("NotebookSecretsKey", "RESOURCE_STAR", "kms:"):
        "a key policy's Resource * means the key itself",
    ("NotebookAdminPolicy", "UNKNOWN_CONDITION_FOR_ACTION", "ssm:SessionDocumentAccessCheck"):
        "Session Manager documents ssm:SessionDocumentAccessCheck for StartSession; the bundled reference lacks it",
    ("NotebookUserPolicy", "UNKNOWN_CONDITION_FOR_ACTION", "ssm:SessionDocumentAccessCheck"):
        "Session Manager documents ssm:SessionDocumentAccessCheck for StartSession; the bundled reference lacks it",
    ("Role/.*OnFailureSQSPolicy", "NO_VERSION", ""):
        "SAM writes the dead-letter destination's policy without a Version",
    ("Role/.*SweepSQSPolicy", "NO_VERSION", ""):
        "SAM writes the schedule's dead-letter policy without a Version",
    ("Role/.*SweepLambdaPolicy", "NO_VERSION", ""):
        "SAM writes the schedule's invoke policy without a Version",
}


def policies(cfn: dict):
    """(where, document) for every policy of the translated template."""
    for name, r in cfn["Resources"].items():
        t, p = r["Type"], r.get("Properties", {})
        if t == "AWS::IAM::Role":
            for pol in p.get("Policies", []):
                yield f"{name}/{pol['PolicyName']}", pol["PolicyDocument"]
        elif t == "AWS::IAM::ManagedPolicy":
            yield name, p["PolicyDocument"]
        elif t == "AWS::KMS::Key":
            yield name, p["KeyPolicy"]
        elif t in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield name, p["PolicyDocument"]


def listed(stmt: dict, key: str) -> list[str]:
    v = stmt.get(key, [])
    return v if isinstance(v, list) else [v]


def resource_types(action: str) -> list[tuple[str, str | None, list[str]]]:
    """(resource type, ARN format, condition keys) the action takes; the type "" (no ARN) holds
    the action's own condition keys."""
    service, name = action.split(":", 1)
    try:
        info = get_privilege_info(service, name)
    except Exception:  # an unknown action: parliament reports it on its own
        return []
    out = []
    for rt in info["resource_types"]:
        kind = rt["resource_type"].rstrip("*")
        fmt = get_arn_format(kind, info["service_resources"]) if kind else None
        out.append((kind, fmt, rt["condition_keys"]))
    return out


def fits(action: str, resource: str) -> bool:
    if resource == "*":
        return True
    return any(fmt and is_arn_strictly_valid(kind, fmt, resource) for kind, fmt, _ in resource_types(action))


# Keys in every request's context, whatever the action (IAM's global condition keys that do not
# depend on the resource). `ec2:SourceInstanceARN` is set for every call made with an
# instance's role credentials. Tag keys (aws:ResourceTag/…, aws:RequestTag/…) are not here: an
# action has them only where the reference lists them.
REQUEST_KEYS = re.compile(
    r"aws:(PrincipalArn|PrincipalAccount|PrincipalOrgID|PrincipalOrgPaths|PrincipalTag/.+|PrincipalType|"
    r"PrincipalIsAWSService|PrincipalServiceName|PrincipalServiceNamesList|userid|username|SourceIp|SourceVpc|"
    r"SourceVpce|VpcSourceIp|SecureTransport|CurrentTime|EpochTime|MultiFactorAuthAge|MultiFactorAuthPresent|"
    r"RequestedRegion|ViaAWSService|CalledVia|CalledViaFirst|CalledViaLast|SourceArn|SourceAccount|SourceOrgID|"
    r"SourceOrgPaths|SourceIdentity|TokenIssueTime|ResourceAccount|ResourceOrgID|ResourceOrgPaths|"
    r"FederatedProvider|Ec2InstanceSourceVpc|Ec2InstanceSourcePrivateIPv4|UserAgent|Referer)"
    r"|ec2:SourceInstanceARN",
    re.IGNORECASE)


def condition_keys(stmt: dict) -> list[str]:
    return [key for block in stmt.get("Condition", {}).values() for key in block]


def unknown_conditions(stmt: dict) -> list[tuple[str, str]]:
    """Condition keys (under every operator, Null and …IfExists too) that an action of the
    statement does not take for the statement's resources: IAM would find them absent, so a
    Null "false" never holds and an Allow never applies. parliament skips Null, and takes any
    key it calls global (aws:ResourceTag/… included) for every action."""
    out = []
    for action in listed(stmt, "Action"):
        types = resource_types(action)
        if not types:
            continue
        resources = listed(stmt, "Resource") or ["*"]
        keys = [k for kind, fmt, ks in types
                if not kind or any(r == "*" or is_arn_strictly_valid(kind, fmt, r) for r in resources)
                for k in ks]
        for key in condition_keys(stmt):
            if REQUEST_KEYS.fullmatch(key) or any(is_condition_key_match(k, key) for k in keys):
                continue
            out.append(("UNKNOWN_CONDITION_FOR_ACTION", f"Unknown condition {key} for action {action}"))
    return out


def findings(doc: dict) -> list[tuple[str, str]]:
    """(issue, detail) of one policy."""
    pol = analyze_policy_string(json.dumps(doc), include_community_auditors=False)
    allows = [s for s in listed(doc, "Statement") if s.get("Effect") == "Allow"]
    out = []
    for f in pol.findings:
        if f.issue == "RESOURCE_MISMATCH":
            missing = [d for d in f.detail
                       if not any(d["action"] in listed(s, "Action") and any(
                           r != "*" and is_arn_strictly_valid("", d["required_format"], r)
                           for r in listed(s, "Resource")) for s in allows)]
            if missing:
                out.append((f.issue, json.dumps(missing)))
        else:
            out.append((f.issue, json.dumps(f.detail) if not isinstance(f.detail, str) else f.detail))
    for i, s in enumerate(listed(doc, "Statement")):
        out += unknown_conditions(s)
        for r in listed(s, "Resource"):
            if isinstance(r, str) and not any(fits(a, r) for a in listed(s, "Action")):
                out.append(("RESOURCE_FITS_NO_ACTION",
                            f"statement {s.get('Sid', i)}: {r} is no resource type of {listed(s, 'Action')}"))
    return list(dict.fromkeys(out))


def settings(cfn: dict) -> list[dict]:
    """The parameter settings to lint at: the defaults, and each allowed value of a parameter
    a condition reads (a policy chosen by Fn::If is linted both ways)."""
    out = [{}]
    for cond in cfn.get("Conditions", {}).values():
        for side in cond.get("Fn::Equals", []):
            if isinstance(side, dict) and side.get("Ref") in cfn.get("Parameters", {}):
                name = side["Ref"]
                out += [{name: v} for v in cfn["Parameters"][name].get("AllowedValues", [])]
    return out


def check(sam: dict, cfn: dict) -> list[str]:
    used = set()
    found = []
    for overrides in settings(cfn):
        r = Resolver(cfn, overrides=overrides)
        for where, doc in policies(cfn):
            for issue, detail in findings(r.value(doc)):
                key = next((k for k in ALLOWED if re.search(k[0], where) and k[1] == issue and k[2] in detail), None)
                if key:
                    used.add(key)
                else:
                    at = f" (with {overrides})" if overrides else ""
                    found.append(f"{where}{at}: {issue} {detail}")
    found += [f"allow-list entry {k} matches no finding any more: remove it" for k in ALLOWED if k not in used]
    return list(dict.fromkeys(found))
