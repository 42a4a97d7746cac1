"""Offline checks of template.yaml, each a module; `scripts/check-template.py` runs them all.

- `template`: parse (cfn-lint's decoder), translate SAM to CloudFormation, resolve intrinsic
  functions as a deployed stack would see them, and the facts the Rust tests compare with code.
- `lint`: cfn-lint on the translation, and no wildcard IAM actions.
- `events`: the event rules matched by moto's EventBridge against events/ and near-misses.
- `iam`: every policy linted with parliament (AWS's service authorization reference).
- `deploy`: references resolve, parameters are used and their constraints hold, names fit any
  stack name up to the documented length, samconfig examples parse, `sam validate --lint`.
"""
