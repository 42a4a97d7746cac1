#!/bin/bash
# SSM's AWS-RunShellScript runs the commands with sh (dash on Ubuntu) and ignores the shebang:
# re-run this file under bash before any bash-only line is read.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
# nbfleet health check, run over SSM Run Command after an instance restarts and after the owner
# replaced the credential (`nbfleet credential`): takes the secret from Parameter Store again,
# makes sure the Jupyter service is up, answers over HTTPS and has taken that secret, and prints
# the certificate fingerprint it serves. Exits non-zero with a one-line reason otherwise.
# @@NBFLEET_VALUES@@
set -euo pipefail
umask 077

NB_HOME="${NBFLEET_HOME:-/home/ubuntu}"
NB_USER="${NBFLEET_USER:-ubuntu}"
NB_PORT="${NBFLEET_PORT:-8888}"
UNIT=nbfleet-jupyter
STATE_DIR="$NB_HOME/.nbfleet"
CERT="$STATE_DIR/cert.pem"

die() {
  echo "nbfleet-health ($NB_NAME): $*" >&2
  exit 1
}

[ -f "$CERT" ] || die "no certificate at $CERT; the bootstrap has not run on this instance"
# @@NBFLEET_INCLUDE fetch-secret.sh@@
RELOADS=0
grep -qs NbfleetIdentityProvider "$NB_HOME/.jupyter/jupyter_server_config.py" && RELOADS=1
fetch_secret
if [ "$SECRET_REPLACED" = 1 ] && [ "$RELOADS" = 0 ]; then
  # Configured by an nbfleet from before credentials changed in place: it reads one at start.
  systemctl restart "$UNIT" || die "systemctl restart $UNIT failed"
fi

answers() {
  local code
  code=$(curl -sk --max-time 3 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$NB_PORT/api/status" || true)
  case "$code" in 200 | 401 | 403) return 0 ;; *) return 1 ;; esac
}
# Waits up to $1 seconds (of the clock: a hung server makes each try last 3 s) for Jupyter to
# answer over HTTPS.
answers_within() {
  local until=$((SECONDS + $1))
  while [ "$SECONDS" -lt "$until" ]; do
    answers && return 0
    sleep 1
  done
  return 1
}

# A disk grown by `nbfleet set --volume-gb`: the root partition and filesystem take the new
# size (nothing to do, the usual case, changes nothing). NBFLEET_GROW_ROOT=0 skips it where
# the root filesystem is not the notebook's own (the local stack's sandboxes).
grow_root() {
  local src disk part fstype
  src=$(findmnt -n -o SOURCE /) || return 0
  fstype=$(findmnt -n -o FSTYPE /) || return 0
  disk=$(lsblk -no PKNAME "$src" 2>/dev/null | head -n1) || true
  part=$(cat "/sys/class/block/${src##*/}/partition" 2>/dev/null || true)
  if [ -n "$disk" ] && [ -n "$part" ] && command -v growpart >/dev/null; then
    growpart "/dev/$disk" "$part" >/dev/null 2>&1 || true # NOCHANGE exits 1
  fi
  case "$fstype" in
    ext4) resize2fs "$src" >/dev/null 2>&1 || true ;;
    xfs) xfs_growfs / >/dev/null 2>&1 || true ;;
  esac
}
[ "${NBFLEET_GROW_ROOT:-1}" = 0 ] || grow_root

# Starts on boot, but a unit that gave up (or a sandbox without systemd) needs a nudge; a
# Jupyter that runs but does not answer (hung) gets one restart.
systemctl start "$UNIT" || die "systemctl start $UNIT failed"
if ! answers_within 60; then
  systemctl restart "$UNIT" || die "systemctl restart $UNIT failed"
  answers_within 90 || die "Jupyter did not answer over HTTPS on port $NB_PORT, even after a restart"
fi

python3 - "$NB_PORT" "$STATE_DIR" "$RELOADS" <<'PY'
import hashlib, json, os, ssl, sys, time, urllib.request
port, state, reloads = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
cert = os.path.join(state, "cert.pem")
fp = lambda pem: hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
served = ssl.get_server_certificate(("127.0.0.1", port))
if fp(served) != fp(open(cert).read()):
    sys.exit("nbfleet-health: Jupyter serves a different certificate than " + cert)
# Any request makes nbfleet's identity provider look at the secret file; it then leaves the
# digest of what it serves with in secret-loaded. Jupyter must serve with the secret just fetched.
want = hashlib.sha256(open(os.path.join(state, "secret")).read().strip().encode()).hexdigest()[:16]
ctx = ssl.create_default_context(cafile=cert)
loaded = ""
for _ in range(10 if reloads else 0):
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/api/status", context=ctx, timeout=5).close()
    except Exception:  # noqa: BLE001 - a 403 is expected: only the side effect matters
        pass
    try:
        loaded = open(os.path.join(state, "secret-loaded")).read().strip()
    except OSError:
        loaded = ""
    if loaded == want:
        break
    time.sleep(0.5)
if reloads and loaded != want:
    sys.exit("nbfleet-health: Jupyter has not taken the notebook's current credential")
print(json.dumps({"nbfleet": "health", "fingerprint": fp(served), "port": port}, separators=(",", ":")))
PY
