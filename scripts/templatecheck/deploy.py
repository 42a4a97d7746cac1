"""What CloudFormation checks only when someone deploys, checked here before anyone does.

- Every Ref, GetAtt, Sub variable and Fn::If condition resolves, in the SAM source and in the
  translation; every parameter is used.
- Parameter constraints (AllowedPattern as a whole-string match, AllowedValues, Min/MaxValue,
  Min/MaxLength) hold for the defaults and for the values of samconfig.example.toml, the deploy
  the README walks through; the example names only real parameters and gives every parameter
  that has no default, and is a configuration `sam deploy` reads.
- No default VPC is needed: the VPC and subnets are parameters without defaults.
- Every route behind IAM auth is in the user policy (API Gateway refuses the others).
- Every name the template sets from the stack's name fits its service's limit for a stack name
  as long as the README says it may be.
- slack/manifest.yaml points at the routes Slack may call, with the scopes nbfleet uses.
- `sam validate --lint` accepts the template, where the SAM CLI is installed (`make build`).
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

from .template import ROOT, TEMPLATE, Resolver

PSEUDO = {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix",
          "AWS::NoValue", "AWS::StackId", "AWS::NotificationARNs"}
EXAMPLE = ROOT / "samconfig.example.toml"
README = ROOT / "README.md"
# Name limits of the services whose names the template derives from the stack's name.
NAME_LIMITS = {
    ("AWS::Serverless::Function", "FunctionName"): 64,
    ("AWS::Lambda::Function", "FunctionName"): 64,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("ScheduleV2", "Name"): 64,
    ("AWS::Scheduler::Schedule", "Name"): 64,
}
# CloudFormation's own rule for a stack name.
STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def references(node, where=""):
    """(kind, target, where) of every Ref, GetAtt, Sub variable and Fn::If condition."""
    if isinstance(node, dict):
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" and isinstance(arg, str):
                yield "Ref", arg, where
            elif key == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else arg.split(".", 1)[0]
                yield "GetAtt", target, where
            elif key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for var in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    if var in local:
                        continue
                    if "." in var:
                        yield "GetAtt", var.split(".", 1)[0], where
                    elif ":" not in var or var.startswith("AWS::"):
                        yield "Ref", var, where
            elif key == "Fn::If":
                yield "Condition", arg[0], where
        for key, value in node.items():
            yield from references(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from references(value, f"{where}[{i}]")


def dangling(template: dict, label: str, generated: set[str] = frozenset()) -> list[str]:
    """`generated`: resources SAM adds (a function's role, its rules), which the source may name."""
    resources = set(template.get("Resources", {})) | set(generated)
    parameters = set(template.get("Parameters", {}))
    conditions = set(template.get("Conditions", {}))
    found = []
    for kind, target, where in references({k: v for k, v in template.items() if k != "Parameters"}):
        ok = {"Ref": target in resources | parameters | PSEUDO,
              "GetAtt": target in resources,
              "Condition": target in conditions}[kind]
        if not ok:
            found.append(f"{label}{where}: {kind} {target} resolves to nothing")
    return found


def unused_parameters(sam: dict) -> list[str]:
    used = {t for kind, t, _ in references({k: v for k, v in sam.items() if k != "Parameters"}) if kind == "Ref"}
    return [f"parameter {p} is never used" for p in sam.get("Parameters", {}) if p not in used]


def violations(name: str, spec: dict, value) -> list[str]:
    """Why `value` breaks parameter `name`'s constraints (empty: it holds)."""
    found = []
    items = value if isinstance(value, list) else [value]
    if spec["Type"] in ("CommaDelimitedList",) or spec["Type"].startswith("List<"):
        items = [v.strip() for v in (",".join(value) if isinstance(value, list) else str(value)).split(",")]
    for item in items:
        text = str(item)
        if "AllowedValues" in spec and text not in [str(v) for v in spec["AllowedValues"]]:
            found.append(f"{name}={text!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
            found.append(f"{name}={text!r} does not match {spec['AllowedPattern']}")
        if spec["Type"] == "Number":
            try:
                number = float(text)
            except ValueError:
                found.append(f"{name}={text!r} is not a number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                found.append(f"{name}={text} is below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                found.append(f"{name}={text} is above MaxValue {spec['MaxValue']}")
        if "MinLength" in spec and len(text) < int(spec["MinLength"]):
            found.append(f"{name}={text!r} is shorter than MinLength {spec['MinLength']}")
        if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
            found.append(f"{name}={text!r} is longer than MaxLength {spec['MaxLength']}")
    return found


def defaults_hold(sam: dict) -> list[str]:
    found = []
    for name, spec in sam["Parameters"].items():
        if "Default" in spec:
            found += [f"default: {v}" for v in violations(name, spec, spec["Default"])]
    return found


def no_default_vpc(sam: dict) -> list[str]:
    params = sam["Parameters"]
    return [f"{p} must be a parameter without a default (no default VPC is assumed)"
            for p in ("VpcId", "SubnetIds") if p not in params or "Default" in params[p]]


def overrides(text) -> dict[str, str]:
    """samconfig's parameter_overrides: a list of "Key=Value", or one string of them."""
    pairs = text if isinstance(text, list) else re.findall(r'(\S+?=(?:"[^"]*"|\S+))', text)
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = value.strip('"')
    return out


def example(sam: dict, path=EXAMPLE) -> list[str]:
    if not path.exists():
        return [f"{path.name} is missing (the README's deploy starts from it)"]
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        return [f"{path.name} does not parse: {e}"]
    deploy = config.get("default", {}).get("deploy", {}).get("parameters", {})
    found = []
    if config.get("version") != 0.1:
        found.append(f"{path.name}: `version = 0.1` is what the SAM CLI reads")
    for key in ("stack_name", "region", "capabilities", "parameter_overrides"):
        if key not in deploy:
            found.append(f"{path.name}: [default.deploy.parameters] lacks {key}")
    if "CAPABILITY_IAM" not in str(deploy.get("capabilities", "")):
        found.append(f"{path.name}: the stack makes IAM roles and policies: capabilities needs CAPABILITY_IAM")
    if not (deploy.get("resolve_s3") or deploy.get("s3_bucket")):
        found.append(f"{path.name}: sam deploy needs resolve_s3 = true or an s3_bucket for the code")
    stack = str(deploy.get("stack_name", ""))
    if not STACK_NAME.fullmatch(stack) or len(stack) > max_stack_name(sam):
        found.append(f"{path.name}: stack_name {stack!r} is not a valid stack name of at most {max_stack_name(sam)} characters")
    given = overrides(deploy.get("parameter_overrides", []))
    params = sam["Parameters"]
    for name, value in given.items():
        if name not in params:
            found.append(f"{path.name}: parameter_overrides names {name}, which the template does not have")
        else:
            found += [f"{path.name}: {v}" for v in violations(name, params[name], value)]
    for name, spec in params.items():
        if "Default" not in spec and name not in given:
            found.append(f"{path.name}: parameter_overrides lacks {name}, which has no default")
    return found


def derived_names(sam: dict, stack: str) -> list[tuple[str, str, int]]:
    """(where, name, limit) of each name set from the stack's name."""
    r = Resolver(sam, stack=stack)
    out = []
    for logical, res in sam["Resources"].items():
        props = res.get("Properties", {})
        candidates = [(res["Type"], key, props.get(key)) for key in ("FunctionName", "LogGroupName", "Name")]
        for event in props.get("Events", {}).values():
            candidates.append((event.get("Type"), "Name", event.get("Properties", {}).get("Name")))
        for kind, key, value in candidates:
            if value is not None and (kind, key) in NAME_LIMITS and "AWS::StackName" in str(value):
                out.append((f"{logical}.{key}", str(r.value(value)), NAME_LIMITS[(kind, key)]))
    return out


def max_stack_name(sam: dict) -> int:
    """The longest stack name (up to CloudFormation's 128) every derived name fits with."""
    n = 128
    for _, name, limit in derived_names(sam, "s"):
        n = min(n, limit - (len(name) - 1))
    return n


def names_fit(sam: dict) -> list[str]:
    n = max_stack_name(sam)
    found = [f"{where}: {name!r} is longer than {limit} characters"
             for where, name, limit in derived_names(sam, "s" * n) if len(name) > limit]
    said = re.search(r"stack name of at most (\d+) characters", README.read_text())
    if not said or int(said.group(1)) != n:
        found.append(f"README.md should say a stack name of at most {n} characters"
                     f" (it says {said.group(1) if said else 'nothing'})")
    return found


def glob(pattern: str, text: str) -> bool:
    """IAM's ARN matching: `*` any run of characters, `?` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text) is not None


def users_reach_every_route(sam: dict) -> list[str]:
    """Each route behind IAM auth is one the user policy lets its holders invoke: API Gateway
    refuses the rest with 403 before any function runs."""
    r = Resolver(sam)
    api = r.ref("NotebookApi")
    allowed = [res for st in r.value(sam["Resources"]["NotebookUserPolicy"]["Properties"]["PolicyDocument"]["Statement"])
               if st.get("Effect") == "Allow" and "execute-api:Invoke" in st.get("Action", [])
               for res in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])]
    found = []
    for logical, res in sam["Resources"].items():
        for event in res.get("Properties", {}).get("Events", {}).values():
            props = event.get("Properties", {})
            if event.get("Type") != "HttpApi" or props.get("Auth", {}).get("Authorizer") == "NONE":
                continue
            path = re.sub(r"\{[^}]+\}", "sample", props["Path"])
            arn = f"arn:aws:execute-api:{r.ref('AWS::Region')}:{r.ref('AWS::AccountId')}:{api}/$default/{props['Method'].upper()}{path}"
            if not any(glob(pattern, arn) for pattern in allowed):
                found.append(f"{logical}: {props['Method'].upper()} {props['Path']} is not in NotebookUserPolicy's execute-api:Invoke resources")
    return found


# The functions whose code may send a notice (`nbfleet_core::ports::tell`): launch, lifecycle and
# slack (a budget crossed at a launch or start), events and sweep (every other notice).
NOTIFIERS = ["LaunchFunction", "LifecycleFunction", "EventsFunction", "SweepFunction", "SlackFunction"]
SLACK_PARAMETERS = ["SlackSigningSecretParameter", "SlackWebhookParameter", "SlackBotTokenParameter"]


def _statements(r: Resolver, policies) -> list[dict]:
    """The statements of a role's policies (`PolicyName` and `PolicyDocument`) or a SAM
    function's (documents themselves)."""
    docs = [p.get("PolicyDocument", p) for p in r.value(policies) if isinstance(p, dict)]
    return [st for doc in docs for st in doc.get("Statement", [])]


def _grants(statements: list[dict], effect: str, action: str, arn: str) -> bool:
    listed = lambda v: v if isinstance(v, list) else [v]
    return any(st.get("Effect") == effect and not st.get("Condition")
               and any(glob(a, action) for a in listed(st.get("Action", [])))
               and any(glob(res, arn) for res in listed(st.get("Resource", [])))
               for st in statements)


def slack_secrets_reach(sam: dict) -> list[str]:
    """Every function that may send a notice may read the webhook and the bot token (a notice
    it cannot send is only logged, and a budget's is marked told all the same); the notebook
    instances may read none of the Slack parameters, whatever else their role is given."""
    r = Resolver(sam)
    arn = lambda param: f"arn:aws:ssm:{r.ref('AWS::Region')}:{r.ref('AWS::AccountId')}:parameter{r.ref(param)}"
    found = []
    for fn in NOTIFIERS:
        statements = _statements(r, sam["Resources"][fn]["Properties"].get("Policies", []))
        for param in ["SlackWebhookParameter", "SlackBotTokenParameter"]:
            if not _grants(statements, "Allow", "ssm:GetParameter", arn(param)):
                found.append(f"{fn}: may send notices but not read {param} (ssm:GetParameter)")
    instance = _statements(r, sam["Resources"]["NotebookInstanceRole"]["Properties"]["Policies"])
    for param in SLACK_PARAMETERS:
        for action in ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory"]:
            if not _grants(instance, "Deny", action, arn(param)):
                found.append(f"NotebookInstanceRole: does not deny {action} on {param}")
    return found


MANIFEST = ROOT / "slack" / "manifest.yaml"
SLACK_SCOPES = {"commands", "chat:write", "im:write", "incoming-webhook"}


def slack_manifest(sam: dict) -> list[str]:
    """slack/manifest.yaml, pasted into Slack, points at the routes the template serves without
    IAM auth (Slack's own), and asks for the scopes nbfleet uses."""
    import yaml

    try:
        m = yaml.safe_load(MANIFEST.read_text())
    except (OSError, yaml.YAMLError) as e:
        return [f"slack/manifest.yaml: {e}"]
    open_routes = {props["Path"] for res in sam["Resources"].values()
                   for event in res.get("Properties", {}).get("Events", {}).values()
                   if event.get("Type") == "HttpApi"
                   for props in [event.get("Properties", {})]
                   if props.get("Auth", {}).get("Authorizer") == "NONE"}
    urls = [c.get("url", "") for c in m.get("features", {}).get("slash_commands", [])]
    urls.append(m.get("settings", {}).get("interactivity", {}).get("request_url", ""))
    found = [f"slack/manifest.yaml: {u!r} is not API_URL and a route Slack may call ({sorted(open_routes)})"
             for u in urls if not (u.startswith("API_URL/") and u[len("API_URL"):] in open_routes)]
    if {u[len("API_URL"):] for u in urls} != open_routes:
        found.append(f"slack/manifest.yaml: names {sorted(urls)}, the template serves Slack {sorted(open_routes)}")
    scopes = set(m.get("oauth_config", {}).get("scopes", {}).get("bot", []))
    if scopes != SLACK_SCOPES:
        found.append(f"slack/manifest.yaml: bot scopes {sorted(scopes)}, nbfleet uses {sorted(SLACK_SCOPES)}")
    if not m.get("settings", {}).get("interactivity", {}).get("is_enabled"):
        found.append("slack/manifest.yaml: interactivity is off, so no button would work")
    return found


def sam_validate() -> list[str]:
    sam = ROOT / ".venv" / "bin" / "sam"
    if not sam.exists():
        return []
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline"}
    run = subprocess.run([str(sam), "validate", "--lint", "--template-file", str(TEMPLATE)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    if run.returncode != 0:
        return [f"sam validate --lint: {(run.stdout + run.stderr).strip()[-2000:]}"]
    return []


def check(sam: dict, cfn: dict) -> list[str]:
    return (dangling(sam, "template.yaml", set(cfn["Resources"])) + dangling(cfn, "translated") + unused_parameters(sam)
            + defaults_hold(sam) + no_default_vpc(sam) + users_reach_every_route(sam) + slack_secrets_reach(sam) + example(sam) + names_fit(sam) + slack_manifest(sam) + sam_validate())


