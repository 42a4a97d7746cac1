#!/usr/bin/env bash
# Runs a command with a moto server beside it, then stops the server.
#
#   scripts/with-moto.sh CMD [ARGS...]
#
# Uses NBFLEET_MOTO_PORT if set, else a free port. Exports MOTO_ENDPOINT and NBFLEET_MOTO_PORT
# to the command. moto is seeded with a Deep Learning AMI (tests/fixtures/amis.json) and
# validates instance types and AMIs, as real EC2 does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
[ -x "$venv/bin/moto_server" ] || { echo "with-moto: $venv has no moto_server; run 'make venv'" >&2; exit 1; }

port=${NBFLEET_MOTO_PORT:-$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
log="$root/target/moto-$port.log"
mkdir -p "$root/target"

MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true \
MOTO_ENABLE_AMI_VALIDATION=true \
MOTO_EC2_LOAD_DEFAULT_AMIS=false \
MOTO_AMIS_PATH="$root/tests/fixtures/amis.json" \
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  kill -0 "$moto_pid" 2>/dev/null || { echo "with-moto: moto exited; see $log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "with-moto: moto not ready on port $port; see $log" >&2; exit 1; }

export MOTO_ENDPOINT="http://127.0.0.1:$port" NBFLEET_MOTO_PORT="$port"
echo "with-moto: moto on $MOTO_ENDPOINT (log: $log)" >&2
"$@"
