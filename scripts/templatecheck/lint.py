"""cfn-lint on the translated template, and no wildcard IAM actions anywhere.

cfn-lint runs on the translation because `sam validate --lint` or cfn-lint on the SAM source
alone miss dangling !Refs and bad runtimes that show only after translation. Errors (E) and
warnings (W) fail; informational findings (I) are not reported by default.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file

from .template import REGION, statements


def cfn_lint(cfn: dict) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "translated.json"
        out.write_text(json.dumps(cfn, indent=1))
        found = []
        for m in lint_file(out, config=ManualArgs(regions=[REGION])):
            message = m.message if len(m.message) <= 400 else m.message[:400] + " ..."
            found.append(f"cfn-lint {m.rule.id} ({m.rule.severity}) at {'/'.join(map(str, m.path))}: {message}")
        return found


def wildcard_actions(template: dict, label: str) -> list[str]:
    found = []
    for where, stmt in statements(template.get("Resources", {}), label):
        for key in ("Action", "NotAction"):
            actions = stmt.get(key, [])
            for action in actions if isinstance(actions, list) else [actions]:
                if not isinstance(action, str):
                    found.append(f"{where}: {key} {action!r} is not a plain service:Operation string")
                elif "*" in action:
                    found.append(f"{where}: {key} {action!r} is a wildcard action")
    return found


def check(sam: dict, cfn: dict) -> list[str]:
    return cfn_lint(cfn) + wildcard_actions(sam, "template.yaml") + wildcard_actions(cfn, "translated")
