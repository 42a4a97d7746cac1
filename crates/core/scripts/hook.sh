#!/bin/bash
# SSM's AWS-RunShellScript runs the commands with sh (dash on Ubuntu) and ignores the shebang:
# re-run this file under bash before any bash-only line is read.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
# nbfleet hook runner: runs the notebook's pre-stop or on-start hook (a script its owner set at
# launch) as the notebook user, never root, in the user's home, under a time limit that takes
# down everything the hook started. Prints one JSON line: the hook's exit code, whether it timed
# out, and the last lines of its output. Exits 0 whenever it could run the hook: the hook's own
# failure is in the report, and never keeps a GPU running.
#
# Rendered by nbfleet-core (scripts.rs): the hook travels hex-encoded (HOOK_HEX), so nothing in
# it is shell syntax here; it is decoded into a file and run by bash as the user.
# @@NBFLEET_VALUES@@
set -euo pipefail

NB_HOME="${NBFLEET_HOME:-/home/ubuntu}"
NB_USER="${NBFLEET_USER:-ubuntu}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$HOOK_HEX" >"$work/hook.sh"
chmod 644 "$work/hook.sh"

rc=0
cd "$NB_HOME"
# timeout runs as the user, in its own process group, and signals the whole group: a hook's
# children go with it. KILL follows TERM after 10 s.
runuser -u "$NB_USER" -- env HOME="$NB_HOME" \
  timeout --kill-after=10 "$HOOK_TIMEOUT" bash "$work/hook.sh" >"$work/out" 2>&1 </dev/null || rc=$?

python3 - "$HOOK_NAME" "$rc" "$work/out" <<'PY'
import json, sys
name, rc, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path, "rb").read().decode("utf-8", "replace").splitlines()
tail = "\n".join(lines[-20:])[-1500:]
print(json.dumps({"nbfleet": "hook", "hook": name, "exit": rc, "timed_out": rc in (124, 137), "tail": tail},
                 separators=(",", ":")))
PY
