#!/usr/bin/env python3
"""Checks template.yaml offline (no AWS credentials, no network), as CloudFormation, EventBridge
and IAM would judge it; each check is a module of scripts/templatecheck/:

  lint    SAM translated to CloudFormation, then cfn-lint; no wildcard IAM actions
  events  the event rules, matched by moto's EventBridge against events/ and near-misses
  iam     every policy linted by parliament against AWS's service authorization reference
  deploy  references resolve, parameters are used, constraints hold for the defaults and the
          README's samconfig example, names fit the longest documented stack name

Usage: scripts/check-template.py [--only CHECK[,CHECK…]] [TEMPLATE]
Exit status 0 when clean; 1 with every finding listed otherwise.

`scripts/check-template.py --facts` prints, as JSON, what the Rust tests compare with the code
(tests/tests/system/template.rs; see templatecheck.template.facts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from templatecheck import deploy, events, iam, lint  # noqa: E402
from templatecheck.template import TEMPLATE, facts, load, translate  # noqa: E402

CHECKS = {"lint": lint.check, "events": events.check, "iam": iam.check, "deploy": deploy.check}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template", nargs="?", type=Path, default=TEMPLATE)
    parser.add_argument("--only", default=",".join(CHECKS), help="checks to run, comma-separated")
    parser.add_argument("--facts", action="store_true", help="print the facts the Rust tests read")
    args = parser.parse_args()
    sam = load(args.template)
    if args.facts:
        print(json.dumps(facts(sam), indent=1, default=str))
        return 0
    try:
        cfn = translate(sam)
    except Exception as e:  # the translator reports invalid SAM through its own exception types
        print(f"{args.template.name}: SAM translation failed: {e}", file=sys.stderr)
        return 1
    failed = 0
    for name in args.only.split(","):
        if name not in CHECKS:
            parser.error(f"no check {name!r}: {', '.join(CHECKS)}")
        findings = CHECKS[name](sam, cfn)
        for f in findings:
            print(f"{args.template.name}: {name}: {f}", file=sys.stderr)
        print(f"{name}: {'clean' if not findings else f'{len(findings)} problem(s)'}")
        failed += len(findings)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
