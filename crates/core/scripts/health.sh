#!/bin/bash
# SSM's AWS-RunShellScript runs the commands with sh (dash on Ubuntu) and ignores the shebang:
# re-run this file under bash before any bash-only line is read.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
# nbfleet health check, run over SSM Run Command after an instance restarts: makes sure the
# Jupyter service is up and answers over HTTPS, and prints the certificate fingerprint it serves.
# Exits non-zero with a one-line reason otherwise.
# @@NBFLEET_VALUES@@
set -euo pipefail

NB_HOME="${NBFLEET_HOME:-/home/ubuntu}"
NB_PORT="${NBFLEET_PORT:-8888}"
UNIT=nbfleet-jupyter
CERT="$NB_HOME/.nbfleet/cert.pem"

die() {
  echo "nbfleet-health ($NB_NAME): $*" >&2
  exit 1
}

[ -f "$CERT" ] || die "no certificate at $CERT; the bootstrap has not run on this instance"
# Starts on boot, but a unit that gave up (or a sandbox without systemd) needs a nudge.
systemctl start "$UNIT" || die "systemctl start $UNIT failed"

code=000
for _ in $(seq 1 90); do
  code=$(curl -sk --max-time 3 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$NB_PORT/api/status" || true)
  case "$code" in 200 | 401 | 403) break ;; esac
  sleep 1
done
case "$code" in 200 | 401 | 403) ;; *) die "Jupyter did not answer over HTTPS on port $NB_PORT within 90 s" ;; esac

python3 - "$NB_PORT" "$CERT" <<'PY'
import hashlib, json, ssl, sys
port, cert = int(sys.argv[1]), sys.argv[2]
fp = lambda pem: hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
served = ssl.get_server_certificate(("127.0.0.1", port))
if fp(served) != fp(open(cert).read()):
    sys.exit("nbfleet-health: Jupyter serves a different certificate than " + cert)
print(json.dumps({"nbfleet": "health", "fingerprint": fp(served), "port": port}, separators=(",", ":")))
PY
