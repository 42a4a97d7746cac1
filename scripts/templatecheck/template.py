"""Loading and resolving template.yaml, as CloudFormation would deploy it.

Offline: no AWS credentials, no network. The region and account are pinned, so results do not
depend on the developer's AWS configuration.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The translator asks boto3 for "the current region" to pick a partition; offline there is none.
os.environ["AWS_DEFAULT_REGION"] = REGION

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE = ROOT / "template.yaml"
DUMMY_CODE_URI = "s3://nbfleet-template-check/code.zip"


class NoManagedPolicies:
    """The managed-policy loader the translator asks for policy names: offline, it knows none."""

    def load(self) -> dict:
        return {}


def load(path: Path = TEMPLATE) -> dict:
    """The template as plain JSON values; cfn-lint's decoder understands the short-form tags and
    refuses duplicate keys, which a plain YAML load would silently merge."""
    template, problems = decode(str(path))
    if problems or template is None:
        for p in problems or []:
            print(f"{path.name}: {p}", file=sys.stderr)
        sys.exit(f"{path.name}: cannot be parsed")
    return json.loads(json.dumps(template))


def translate(sam: dict) -> dict:
    """SAM to CloudFormation, as `sam deploy` has CloudFormation do, with every CodeUri replaced
    by a dummy s3:// location (the artefacts need not exist)."""
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


# Values for parameters without a default, shaped as CloudFormation would pass them.
SAMPLES = {
    "AWS::EC2::VPC::Id": "vpc-0123456789abcdef0",
    "List<AWS::EC2::Subnet::Id>": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "String": "sample",
}

# What `!Ref` gives for a resource, by type (CloudFormation's resource reference, "Return
# values"); types not listed give their physical name.
def _ref_forms(name: str) -> dict:
    a, g = ACCOUNT, REGION
    return {
        "AWS::SQS::Queue": f"https://sqs.{g}.amazonaws.com/{a}/{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{g}:{a}:{name}",
        "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{a}:policy/{name}",
        "AWS::KMS::Key": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "AWS::ApiGatewayV2::Api": "a1b2c3d4e5",
    }


def _arn_forms(name: str, key_id: str) -> dict:
    a, g = ACCOUNT, REGION
    return {
        "AWS::SQS::Queue": f"arn:aws:sqs:{g}:{a}:{name}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{g}:{a}:function:{name}",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{g}:{a}:table/{name}",
        "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{name}",
        "AWS::IAM::InstanceProfile": f"arn:aws:iam::{a}:instance-profile/{name}",
        "AWS::KMS::Key": f"arn:aws:kms:{g}:{a}:key/{key_id}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{g}:{a}:log-group:{name}:*",
        "AWS::Events::Rule": f"arn:aws:events:{g}:{a}:rule/{name}",
        "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{g}:{a}:schedule/default/{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{g}:{a}:{name}",
        "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{g}:{a}:alarm:{name}",
    }


# Properties that name a resource (its physical name) where the template sets one.
NAME_PROPERTIES = ("FunctionName", "TableName", "QueueName", "RoleName", "TopicName", "LogGroupName",
                   "InstanceProfileName", "ManagedPolicyName", "AlarmName", "Name")


class Resolver:
    """Intrinsic functions resolved as a stack named `stack` would see them, parameters at
    their defaults unless `overrides` gives them, Fn::If chosen by the conditions."""

    def __init__(self, template: dict, stack: str = "nbfleet", overrides: dict | None = None):
        self.t = template
        self.stack = stack
        self.overrides = overrides or {}
        self.pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::Region": REGION,
                       "AWS::StackName": stack, "AWS::URLSuffix": "amazonaws.com",
                       "AWS::NoValue": None}

    def parameter(self, name: str):
        p = self.t.get("Parameters", {})[name]
        if name in self.overrides:
            value = self.overrides[name]
        elif "Default" in p:
            value = p["Default"]
        else:
            value = SAMPLES.get(p["Type"], "sample")
        if p["Type"].startswith("List<") or p["Type"] == "CommaDelimitedList":
            return value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        return str(value)

    def kind(self, logical: str) -> str:
        """A resource's type; in the SAM source, the function roles SAM adds are not listed."""
        if logical in self.t["Resources"]:
            return self.t["Resources"][logical]["Type"]
        if logical.endswith("Role"):
            return "AWS::IAM::Role"
        raise KeyError(f"no resource {logical}")

    def physical_name(self, logical: str) -> str:
        """The name a template sets, else the logical id (CloudFormation would add the stack's
        name and a suffix, and shorten them to fit)."""
        props = self.t["Resources"].get(logical, {}).get("Properties", {})
        for key in NAME_PROPERTIES:
            if isinstance(props.get(key), (str, dict)):
                return str(self.value(props[key]))
        return logical

    def ref(self, name: str):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.t.get("Parameters", {}):
            return self.parameter(name)
        kind = self.kind(name)
        physical = self.physical_name(name)
        return _ref_forms(physical).get(kind, physical)

    def getatt(self, name: str, attr: str):
        kind = self.kind(name)
        physical = self.physical_name(name)
        if attr == "Arn" and kind in _arn_forms("", ""):
            return _arn_forms(physical, _ref_forms(physical)["AWS::KMS::Key"])[kind]
        if attr == "QueueName":
            return physical
        return f"{physical}-{attr.lower()}"

    def condition(self, name: str) -> bool:
        a, b = self.t["Conditions"][name]["Fn::Equals"]
        return str(self.value(a)) == str(self.value(b))

    def sub(self, spec):
        text, local = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])

        def one(m):
            var = m.group(1)
            if var.startswith("!"):
                return "${" + var[1:] + "}"
            if var in local:
                return str(self.value(local[var]))
            if "." in var and var.split(".")[0] in self.t.get("Resources", {}):
                return str(self.getatt(*var.split(".", 1)))
            if ":" in var and var not in self.pseudo:
                return "${" + var + "}"  # an IAM policy variable, left as it is
            return str(self.ref(var))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node):
        """`node` with every intrinsic function resolved; policy variables in plain strings
        (${aws:userid}) stay as they are."""
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(name, attr)
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                items = self.value(items)
                return sep.join(str(self.value(i)) for i in (items if isinstance(items, list) else [items]))
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.value(then if self.condition(name) else otherwise)
            if key == "Fn::Select":
                index, items = arg
                return self.value(items)[int(self.value(index))]
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        return node


def facts(sam: dict) -> dict:
    """What the Rust tests (tests/tests/system/template.rs) compare with the code: per function
    (by binary name) its HTTP routes, its environment resolved at the parameters' defaults and
    the IAM actions its policy allows; the instance role's, key's and users' policies."""
    r = Resolver(sam)
    globals_env = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    functions = {}
    for name, res in sam.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        binary = props["CodeUri"].rstrip("/").split("/")[-1]
        env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
        routes = [
            f"{e['Properties']['Method'].upper()} {e['Properties']['Path']}"
            for e in props.get("Events", {}).values()
            if e.get("Type") == "HttpApi"
        ]
        actions = set()
        for _, stmt in statements({"Policies": props.get("Policies", [])}):
            if stmt.get("Effect") == "Allow":
                a = stmt.get("Action", [])
                actions.update(a if isinstance(a, list) else [a])
        resolved = {}
        for k, v in env.items():
            v = r.value(v)
            resolved[k] = ",".join(v) if isinstance(v, list) else str(v)
        functions[binary] = {"resource": name, "routes": sorted(routes), "env": resolved,
                             "actions": sorted(actions)}
    role = sam["Resources"]["NotebookInstanceRole"]["Properties"]
    table = sam["Resources"]["NotebookTable"]["Properties"]

    def policy(resource: str) -> list:
        return r.value(sam["Resources"][resource]["Properties"]["PolicyDocument"]["Statement"])

    return {
        "functions": functions,
        "instance_role": [r.value(s) for _, s in statements({"Policies": role.get("Policies", [])})],
        "secrets_key_policy": r.value(sam["Resources"]["NotebookSecretsKey"]["Properties"]["KeyPolicy"]["Statement"]),
        "user_policy": policy("NotebookUserPolicy"),
        "admin_policy": policy("NotebookAdminPolicy"),
        "tunnel_document": sam["Resources"]["JupyterTunnelDocument"]["Properties"]["Content"],
        "table": {k: table[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")},
    }
