"""The event rules, matched by an EventBridge that is not ours: moto's, through its API.

moto's TestEventPattern answers with no result, so each rule is put on moto's default bus with
an SQS queue as its target, every event is sent with PutEvents, and each queue says what its
rule matched. Expected:
- each sample in events/ (one per EC2 state and SSM status the handlers act on) matches the
  rule named by its file name's prefix, and no other;
- every state or status a rule lists has its sample;
- each near-miss in events/near-misses/ (another detail-type, another source, a status or a
  document the rule leaves out) matches no rule.
The sweep's schedule sends no input, and its rate expression is valid for every allowed rate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .template import REGION, ROOT, Resolver

EVENTS = ROOT / "events"
# Sample file name prefix → the logical id of the rule it must match.
RULE_OF_PREFIX = {"ec2-": "EventsFunctionEc2StateChange", "ssm-command-": "EventsFunctionCommandStatusChange"}
# Where each rule's list of acted-on values sits in its pattern.
LISTED = {"EventsFunctionEc2StateChange": "state", "EventsFunctionCommandStatusChange": "status"}


def samples(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if "detail-type" in json.loads(p.read_text())}


def matches(rules: dict[str, dict], events: dict[str, dict]) -> dict[str, set[str]]:
    """Which rules each event matches, by file name, as moto's EventBridge routes them."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        bridge = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queues = {}
        for name, pattern in rules.items():
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            bridge.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
            bridge.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
            queues[name] = url
        matched: dict[str, set[str]] = {}
        for file, e in events.items():
            answer = bridge.put_events(Entries=[{
                "Source": e["source"], "DetailType": e["detail-type"], "Detail": json.dumps(e["detail"]),
                "Resources": e.get("resources", [])}])
            if answer["FailedEntryCount"]:
                raise RuntimeError(f"{file}: PutEvents refused it: {answer['Entries']}")
            matched[file] = set()
            for name, url in queues.items():
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                for m in got:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                if got:
                    matched[file].add(name)
        return matched


def rule_of(file: str) -> str | None:
    return next((rule for prefix, rule in RULE_OF_PREFIX.items() if file.startswith(prefix)), None)


def check(sam: dict, cfn: dict) -> list[str]:
    rules = {name: r["Properties"]["EventPattern"] for name, r in cfn["Resources"].items()
             if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]}
    found = [f"{rule}: no such event rule in the template" for rule in RULE_OF_PREFIX.values() if rule not in rules]
    if found:
        return found
    good, near = samples(EVENTS), samples(EVENTS / "near-misses")
    matched = matches(rules, {**good, **{f"near-misses/{f}": e for f, e in near.items()}})
    for file, e in good.items():
        want = rule_of(file)
        if want is None:
            found.append(f"events/{file}: its name says no rule (prefixes: {', '.join(RULE_OF_PREFIX)})")
        elif matched[file] != {want}:
            found.append(f"events/{file}: should match {want} alone, matched {sorted(matched[file]) or 'nothing'}")
    for file in near:
        if matched[f"near-misses/{file}"]:
            found.append(f"events/near-misses/{file}: a near-miss matched {sorted(matched['near-misses/' + file])}")
    for rule, key in LISTED.items():
        listed = set(rules[rule]["detail"][key])
        sampled = {e["detail"][key] for f, e in good.items() if rule_of(f) == rule}
        for value in sorted(listed - sampled):
            found.append(f"{rule}: no sample in events/ for {key} {value!r}")
    return found + schedules(sam, cfn)


def schedules(sam: dict, cfn: dict) -> list[str]:
    """Each schedule's target sends no input (the sweep reads none), and its rate is valid at
    the rate parameter's bounds: EventBridge wants `rate(1 minute)` singular, plural above."""
    found = []
    for name, r in cfn["Resources"].items():
        if r["Type"] != "AWS::Scheduler::Schedule":
            continue
        if "Input" in r["Properties"].get("Target", {}):
            found.append(f"{name}: the schedule sends an input the sweep does not read")
        bounds = sam["Parameters"]["SweepRateMinutes"]
        for minutes in (bounds["MinValue"], bounds["Default"], bounds["MaxValue"]):
            expr = Resolver(cfn, overrides={"SweepRateMinutes": minutes}).value(r["Properties"]["ScheduleExpression"])
            m = re.fullmatch(r"rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)", expr)
            if not m or (m.group(1) == "1") != (not m.group(2).endswith("s")):
                found.append(f"{name}: {expr!r} (SweepRateMinutes={minutes}) is not a valid rate expression")
    return found
