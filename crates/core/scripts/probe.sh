#!/bin/bash
# SSM's AWS-RunShellScript runs the commands with sh (dash on Ubuntu) and ignores the shebang:
# re-run this file under bash before any bash-only line is read.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
# nbfleet idle probe, sent to every running notebook on each sweep. Prints ONE compact JSON line
# (well under 2,000 characters: ListCommandInvocations keeps 2,500 per instance) summarising what
# counts as activity. Reading Jupyter's API here must not count as activity itself, so it asks
# with ?no_track_activity=1 and reads /api/status, which never moves last_activity.
# @@NBFLEET_VALUES@@
set -euo pipefail

NB_HOME="${NBFLEET_HOME:-/home/ubuntu}"
NB_PORT="${NBFLEET_PORT:-8888}"
STATE_DIR="$NB_HOME/.nbfleet"

gpu_csv=""
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_csv=$(timeout 10 nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null || true)
fi

GPU_CSV="$gpu_csv" timeout 20 python3 - "$NB_PORT" "$STATE_DIR" <<'PY'
import json, os, ssl, sys, urllib.request

port, state = int(sys.argv[1]), sys.argv[2]
out = {"nbfleet": "probe"}
try:
    # Password mode: the probe's own token. Token mode: the notebook's token.
    kind = json.load(open(os.path.join(state, "server.json")))["secret_kind"]
    token = open(os.path.join(state, "probe-token" if kind == "password" else "secret")).read().strip()
    # Our own server on loopback, verified against its own certificate (SAN IP:127.0.0.1).
    ctx = ssl.create_default_context(cafile=os.path.join(state, "cert.pem"))

    def get(path):
        req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return json.load(r)

    kernels = get("/api/kernels?no_track_activity=1")
    terminals = get("/api/terminals?no_track_activity=1")
    status = get("/api/status")
    out["k"] = len(kernels)
    out["kb"] = sum(1 for k in kernels if k.get("execution_state") == "busy")
    out["ka"] = max((k["last_activity"] for k in kernels if k.get("last_activity")), default=None)
    out["ta"] = max((t["last_activity"] for t in terminals if t.get("last_activity")), default=None)
    out["c"] = status.get("connections", 0)
    out["sa"] = status.get("last_activity")
except Exception as e:  # noqa: BLE001 - any failure is reported, and read as unknown
    out["err"] = f"{type(e).__name__}: {e}"[:300]
out["g"] = [int(float(x)) for x in os.environ.get("GPU_CSV", "").split() if x.strip().replace(".", "", 1).isdigit()]
print(json.dumps(out, separators=(",", ":")))
PY
