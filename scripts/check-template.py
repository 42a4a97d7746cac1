#!/usr/bin/env python3
"""Checks template.yaml offline: no AWS credentials, no network.

1. Parse template.yaml with cfn-lint's decoder (it understands the short-form tags !Ref, !Sub,
   !GetAtt, ... and refuses duplicate keys, which a plain YAML load would silently merge).
2. Translate SAM to CloudFormation with the aws-sam-translator library, as `sam deploy` would
   have CloudFormation do, with a managed-policy loader that knows no policies and every CodeUri
   replaced by a dummy s3:// location (the artefacts need not exist).
3. Run cfn-lint on the translated template: any error or warning fails the check. Informational
   findings (cfn-lint's I-rules) are not reported by default and are ignored.
   `sam validate --lint` or cfn-lint on the SAM source alone miss dangling !Refs and bad runtimes
   that show only after translation.
4. Fail if any IAM policy statement, in the source or in the translation, has an Action or
   NotAction containing `*`.

Usage: scripts/check-template.py [TEMPLATE]   (default: template.yaml beside scripts/)
Exit status 0 when clean; 1 with every finding listed otherwise.

`scripts/check-template.py --facts` prints, as JSON, what the Rust tests compare with the code
(tests/tests/template.rs): per function (by binary name) its HTTP routes, its environment with
every !Ref resolved to the parameter's default (or a sample value where it has none), and the
IAM actions its policy allows; and the instance role's policy statements.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

# The translator asks boto3 for "the current region" to pick a partition; offline there is none.
# Pinned, so that the result does not depend on the developer's AWS configuration.
REGION = "us-east-1"
os.environ["AWS_DEFAULT_REGION"] = REGION

ROOT = Path(__file__).resolve().parent.parent
DUMMY_CODE_URI = "s3://nbfleet-template-check/code.zip"


class NoManagedPolicies:
    """The managed-policy loader the translator asks for policy names: offline, it knows none."""

    def load(self) -> dict:
        return {}


def plain(node):
    """cfn-lint's decoded nodes (dict/str subclasses with positions) as plain JSON values."""
    return json.loads(json.dumps(node))


def load(path: Path) -> dict:
    template, problems = decode(str(path))
    if problems or template is None:
        for p in problems or []:
            print(f"{path.name}: {p}", file=sys.stderr)
        sys.exit(f"{path.name}: cannot be parsed")
    return plain(template)


def translate(sam: dict) -> dict:
    sam = json.loads(json.dumps(sam))
    for name, resource in sam.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            if "CodeUri" not in props and "InlineCode" not in props:
                sys.exit(f"{name}: a function without CodeUri")
            props["CodeUri"] = DUMMY_CODE_URI
    return transform(sam, {}, NoManagedPolicies())


def statements(node, where: str = ""):
    """Every IAM policy statement under `node`, with where it was found."""
    if isinstance(node, dict):
        if "Statement" in node:
            stmts = node["Statement"]
            for i, s in enumerate(stmts if isinstance(stmts, list) else [stmts]):
                if isinstance(s, dict):
                    yield f"{where}/Statement[{i}]", s
        for key, value in node.items():
            yield from statements(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from statements(value, f"{where}[{i}]")


def wildcard_actions(template: dict, label: str) -> tuple[list[str], int]:
    found, count = [], 0
    for where, stmt in statements(template.get("Resources", {}), label):
        count += 1
        for key in ("Action", "NotAction"):
            actions = stmt.get(key, [])
            for action in actions if isinstance(actions, list) else [actions]:
                if not isinstance(action, str):
                    found.append(f"{where}: {key} {action!r} is not a plain service:Operation string")
                elif "*" in action:
                    found.append(f"{where}: {key} {action!r} is a wildcard action")
    return found, count


# Values for parameters without a default, shaped as CloudFormation would pass them.
SAMPLES = {
    "AWS::EC2::VPC::Id": "vpc-0123456789abcdef0",
    "List<AWS::EC2::Subnet::Id>": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "String": "sample",
}
PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Partition": "aws", "AWS::Region": REGION,
          "AWS::StackName": "nbfleet", "AWS::URLSuffix": "amazonaws.com"}


def resolve(value, sam: dict):
    """A template value as a deployed function would see it (strings; lists joined by Join)."""
    params = sam.get("Parameters", {})
    if isinstance(value, dict) and "Ref" in value:
        ref = value["Ref"]
        if ref in PSEUDO:
            return PSEUDO[ref]
        if ref in params:
            p = params[ref]
            return p["Default"] if "Default" in p else SAMPLES.get(p["Type"], "sample")
        return f"{ref.lower()}-name"
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, items = value["Fn::Join"]
        items = resolve(items, sam)
        return sep.join(str(resolve(i, sam)) for i in (items if isinstance(items, list) else [items]))
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        name, attr = target if isinstance(target, list) else target.split(".", 1)
        if attr == "Arn" and name.endswith("Role"):
            return f"arn:aws:iam::{PSEUDO['AWS::AccountId']}:role/{name}"
        return f"{name.lower()}-{attr.lower()}"
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        import re
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)}, sam)), text)
    return str(value) if not isinstance(value, list) else value


def facts(sam: dict) -> dict:
    globals_env = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    functions = {}
    for name, r in sam.get("Resources", {}).items():
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        props = r["Properties"]
        binary = props["CodeUri"].rstrip("/").split("/")[-1]
        env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
        routes = [
            f"{e['Properties']['Method'].upper()} {e['Properties']['Path']}"
            for e in props.get("Events", {}).values()
            if e.get("Type") == "HttpApi"
        ]
        actions = set()
        for where, stmt in statements({"Policies": props.get("Policies", [])}):
            if stmt.get("Effect") == "Allow":
                a = stmt.get("Action", [])
                actions.update(a if isinstance(a, list) else [a])
        functions[binary] = {
            "resource": name,
            "routes": sorted(routes),
            "env": {k: resolve(v, sam) for k, v in env.items()},
            "actions": sorted(actions),
        }
    role = sam["Resources"]["NotebookInstanceRole"]["Properties"]
    role_statements = [resolve_deep(s, sam) for _, s in statements({"Policies": role.get("Policies", [])})]
    table = sam["Resources"]["NotebookTable"]["Properties"]
    keys = {k: table[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")}
    key_policy = sam["Resources"]["NotebookSecretsKey"]["Properties"]["KeyPolicy"]["Statement"]
    return {
        "functions": functions,
        "instance_role": role_statements,
        "secrets_key_policy": [resolve_deep(s, sam) for s in key_policy],
        "user_policy": policy_statements("NotebookUserPolicy", sam),
        "admin_policy": policy_statements("NotebookAdminPolicy", sam),
        "tunnel_document": sam["Resources"]["JupyterTunnelDocument"]["Properties"]["Content"],
        "table": keys,
    }


def policy_statements(resource: str, sam: dict) -> list:
    """A managed policy's statements as deployed at the parameters' defaults."""
    statements = sam["Resources"][resource]["Properties"]["PolicyDocument"]["Statement"]
    return [resolve_deep(s, sam) for s in statements]


def condition(name: str, sam: dict) -> bool:
    """A template condition at the parameters' defaults (Fn::Equals of values and Refs)."""
    a, b = sam["Conditions"][name]["Fn::Equals"]
    return str(resolve(a, sam)) == str(resolve(b, sam))


def resolve_deep(node, sam: dict):
    """`resolve` applied through lists and maps, Fn::If chosen at the parameters' defaults;
    policy variables like ${ec2:SourceInstanceARN} in plain strings stay as they are."""
    if isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ("Ref", "Fn::Sub", "Fn::Join", "Fn::GetAtt"):
        return resolve(node, sam)
    if isinstance(node, dict) and len(node) == 1 and "Fn::If" in node:
        name, then, otherwise = node["Fn::If"]
        return resolve_deep(then if condition(name, sam) else otherwise, sam)
    if isinstance(node, dict):
        return {k: resolve_deep(v, sam) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_deep(v, sam) for v in node]
    return node


def main() -> int:
    if sys.argv[1:] == ["--facts"]:
        print(json.dumps(facts(load(ROOT / "template.yaml")), indent=1, default=str))
        return 0
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    sam = load(path)
    try:
        cfn = translate(sam)
    except Exception as e:  # the translator reports invalid SAM through its own exception types
        print(f"{path.name}: SAM translation failed: {e}", file=sys.stderr)
        return 1

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "translated.json"
        out.write_text(json.dumps(cfn, indent=1))
        # Errors (E) and warnings (W) only; the region only matters for the resource specs.
        matches = lint_file(out, config=ManualArgs(regions=[REGION]))
        for m in matches:
            message = m.message if len(m.message) <= 400 else m.message[:400] + " ..."
            failures.append(f"cfn-lint {m.rule.id} ({m.rule.severity}) at {'/'.join(map(str, m.path))}: {message}")

    wild_src, n_src = wildcard_actions(sam, "template.yaml")
    wild_cfn, n_cfn = wildcard_actions(cfn, "translated")
    failures += wild_src + wild_cfn

    if failures:
        for f in failures:
            print(f, file=sys.stderr)
        print(f"{path.name}: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"{path.name}: {len(sam.get('Resources', {}))} SAM resources translate to "
        f"{len(cfn.get('Resources', {}))} CloudFormation resources; cfn-lint clean (errors and "
        f"warnings); no wildcard IAM actions in {n_src} source / {n_cfn} translated statements"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
