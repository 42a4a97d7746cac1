#!/usr/bin/env bash
# `make smoke`: proves a deployed nbfleet stack end to end with the `nbfleet` CLI alone, as a
# user would: launch the cheapest allowed type (or SMOKE_TYPE), wait for Ready, check the
# certificate's fingerprint and log in over HTTPS through `nbfleet open`'s pinned proxy, run
# the idle probe and show its verdict, stop, start, delete without a snapshot, print the cost.
# `LOCAL=1` runs the very same steps against the local stack (`make test` does, in
# tests/tests/system/smoke.rs). The notebook is deleted whatever happens, Ctrl-C included.
#
# Environment: NBFLEET (the CLI; default `nbfleet` on PATH), LOCAL=1, SMOKE_NAME (default
# smoke-$USER), SMOKE_TYPE, SMOKE_READY_MINUTES (20), SMOKE_STEP_MINUTES (10, for each stop,
# start and delete). Needs curl and python3.
set -euo pipefail

NBFLEET=${NBFLEET:-nbfleet}
user=$(id -un | tr 'A-Z_.' 'a-z--' | tr -cd 'a-z0-9-')
NAME=${SMOKE_NAME:-smoke-${user:-user}}
READY_MINUTES=${SMOKE_READY_MINUTES:-20}
STEP_MINUTES=${SMOKE_STEP_MINUTES:-10}
cli=("$NBFLEET")
if [[ ${LOCAL:-0} == 1 ]]; then
  cli+=(--local)
fi

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'smoke: %s\n' "$*" >&2
  exit 1
}
nb() { "${cli[@]}" "$@"; }
# `field PATH` prints a field of the JSON on stdin (a.b.0.c), empty if absent.
field() {
  python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1"
}

for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
command -v "$NBFLEET" >/dev/null || die "no nbfleet CLI at '$NBFLEET' (set NBFLEET)"

# A notebook of that name, unless deleted, is someone's: never touch it.
if state=$(nb --json status "$NAME" 2>/dev/null | field notebook.state) && [[ -n $state && $state != Terminated ]]; then
  die "a notebook named $NAME exists ($state): delete it or set SMOKE_NAME"
fi

proxy_pid=""
launched=0
started_at=$(date +%s)
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
  fi
  if [[ $launched == 1 ]]; then
    say "cleaning up: deleting $NAME (no snapshot)"
    local deadline=$((SECONDS + STEP_MINUTES * 60)) code
    while :; do
      code=0
      nb --quiet rm "$NAME" --no-snapshot --wait || code=$?
      # 3: already gone; 4: a state that refuses a delete right now (it moves on by itself).
      if [[ $code == 0 || $code == 3 ]]; then
        break
      fi
      if ((SECONDS >= deadline)); then
        printf 'smoke: could not delete %s: delete it by hand (nbfleet rm %s --no-snapshot)\n' "$NAME" "$NAME" >&2
        break
      fi
      sleep 10
    done
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The type: SMOKE_TYPE, or the cheapest the operator allows.
TYPE=${SMOKE_TYPE:-$(nb --json types | python3 -c '
import json, sys
offers = json.load(sys.stdin)
priced = sorted((o["usd_per_hour"], o["instance_type"]) for o in offers if o["usd_per_hour"] is not None)
print(priced[0][1] if priced else offers[0]["instance_type"])')}
say "launching $NAME ($TYPE); Ready within $READY_MINUTES minutes"
launched=1
up=$(timeout "${READY_MINUTES}m" "${cli[@]}" --json up "$NAME" --type "$TYPE") || die "$NAME did not become Ready (see above)"
token=$(field token <<<"$up")
[[ $(field notebook.state <<<"$up") == Ready ]] || die "$NAME is $(field notebook.state <<<"$up"), not Ready"
[[ -n $token ]] || die "the launch gave no token"
say "$NAME is Ready"

say "checking the certificate and logging in through nbfleet open's pinned proxy"
opened=$(mktemp)
"${cli[@]}" --json open "$NAME" --no-browser --port 0 >"$opened" &
proxy_pid=$!
for _ in $(seq 1 120); do
  [[ -s $opened ]] && break
  kill -0 "$proxy_pid" 2>/dev/null || die "nbfleet open ended without serving"
  sleep 0.5
done
[[ $(field verified <"$opened") == True ]] || die "nbfleet open did not verify the certificate"
[[ $(field fingerprint <"$opened") == "$(field notebook.cert_fingerprint <<<"$up")" ]] ||
  die "nbfleet open pinned another certificate than the one the launch recorded"
url=$(field url <"$opened")
printf '%s serves %s, certificate sha256 %s\n' "$NAME" "$url" "$(field fingerprint <"$opened")"
rm -f "$opened"
refused=$(curl -s -o /dev/null -w '%{http_code}' "${url}api/status")
[[ $refused == 403 ]] || die "Jupyter answered $refused, not 403, without the token"
curl -fsS -H "Authorization: token $token" "${url}api/status" | field started >/dev/null ||
  die "Jupyter did not take the token through the proxy"
printf 'logged in over HTTPS through the pinned proxy\n'
kill "$proxy_pid"
wait "$proxy_pid" 2>/dev/null || true
proxy_pid=""

say "running the idle probe"
nb check "$NAME"

say "stopping $NAME"
timeout "${STEP_MINUTES}m" "${cli[@]}" --quiet stop "$NAME" --wait
say "starting $NAME"
timeout "${STEP_MINUTES}m" "${cli[@]}" --quiet start "$NAME" --wait
say "deleting $NAME (no snapshot)"
timeout "${STEP_MINUTES}m" "${cli[@]}" --quiet rm "$NAME" --no-snapshot --wait
launched=0

# shellcheck disable=SC2016 # Python's text, not the shell's
nb --json status "$NAME" | python3 -c '
import json, sys
c = json.load(sys.stdin)["cost"]
def usd(v):
    return "no price" if v is None else "$%.2f" % v
print("smoke passed in %s s; the run cost %s (compute %s, disk %s; prices: %s)" % (
    sys.argv[1], usd(c["cost_usd"]), usd(c["compute_usd"]), usd(c["disk_usd"]), c["price_source"]))
' "$(($(date +%s) - started_at))"
