#!/usr/bin/env bash
# Starts or stops a long-lived moto server for `make local` and `make demo KEEP=1`.
#
#   scripts/moto.sh start   # on NBFLEET_MOTO_PORT (5000) unless one already answers there
#   scripts/moto.sh stop
#
# `make test` does not use this: it runs its own moto through scripts/with-moto.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${NBFLEET_MOTO_PORT:-5000}
pidfile="$root/.local/moto.pid"
mkdir -p "$root/.local"

case "${1:-}" in
  start)
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
      echo "moto: already running on port $port"
      exit 0
    fi
    MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true \
    MOTO_ENABLE_AMI_VALIDATION=true \
    MOTO_EC2_LOAD_DEFAULT_AMIS=false \
    MOTO_AMIS_PATH="$root/tests/fixtures/amis.json" \
      nohup "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$root/.local/moto.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && { echo "moto: running on port $port"; exit 0; }
      sleep 0.1
    done
    echo "moto: did not start; see .local/moto.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
      echo "moto: stopped"
    fi
    ;;
  *)
    echo "usage: scripts/moto.sh start|stop" >&2
    exit 2
    ;;
esac
