#!/bin/bash
# SSM's AWS-RunShellScript runs the commands with sh (dash on Ubuntu) and ignores the shebang:
# re-run this file under bash before any bash-only line is read.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
# nbfleet bootstrap: turns a Deep Learning AMI into a Jupyter server with TLS and a password or
# token, run once over SSM Run Command (as root) on first boot, and safe to run again.
#
# Rendered by nbfleet-core (scripts.rs): the values below are validated and single-quoted.
# The secret is NOT among them: the script fetches it from Parameter Store itself.
# NBFLEET_* environment variables override where things go; a real instance sets none of them
# (the local runner uses them to run this same script in a sandbox).
# @@NBFLEET_VALUES@@
set -euo pipefail
umask 077

NB_HOME="${NBFLEET_HOME:-/home/ubuntu}"
NB_USER="${NBFLEET_USER:-ubuntu}"
NB_PORT="${NBFLEET_PORT:-8888}"
UNIT_DIR="${NBFLEET_UNIT_DIR:-/etc/systemd/system}"
UNIT=nbfleet-jupyter
JUPYTER_DIR="$NB_HOME/.jupyter"
STATE_DIR="$NB_HOME/.nbfleet"
CERT="$STATE_DIR/cert.pem"
IDLE_MARKER="$STATE_DIR/idle-exit"
KEY="$STATE_DIR/key.pem"
STAGE=starting

die() {
  echo "nbfleet-bootstrap: $STAGE: $*" >&2
  exit 1
}
trap 'die "command failed (line $LINENO, exit $?)"' ERR

STAGE="waiting for another bootstrap"
# Two deliveries of the same "running" can each send this script: the second waits its turn.
mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/bootstrap.lock"
flock -w 900 9 || die "another bootstrap held the lock for 15 minutes"

case "$ACCESS_MODE" in
  ssm) BIND_IP=127.0.0.1 ;;
  cidr) BIND_IP='*' ;;
  *) die "unknown access mode" ;;
esac

STAGE="finding Python"
# The PyTorch DLAMI keeps torch in a venv (newer) or a conda env (older).
PY=""
for candidate in ${NBFLEET_PYTHON:-} /opt/pytorch/bin/python3 /opt/conda/envs/pytorch/bin/python3 /opt/conda/bin/python3 /usr/bin/python3; do
  [ -x "$candidate" ] || continue
  [ -n "$PY" ] || PY="$candidate"
  if timeout 120 "$candidate" -c 'import torch' >/dev/null 2>&1; then
    PY="$candidate"
    break
  fi
done
[ -n "$PY" ] || die "no python3 found"

STAGE="installing JupyterLab"
# nbfleet writes jupyter_server 2's configuration keys; an older server ignores them and would
# run without TLS or a password. An AMI whose Jupyter is missing or older gets a current one.
JUPYTER_OK='import sys, jupyter_server, jupyterlab; sys.exit(int(jupyter_server.__version__.split(".")[0]) < 2)'
if ! "$PY" -c "$JUPYTER_OK" >/dev/null 2>&1; then
  "$PY" -m pip install --quiet --upgrade 'jupyter_server>=2' jupyterlab >/dev/null 2>&1 \
    || die "pip install jupyter_server>=2 jupyterlab failed"
  "$PY" -c "$JUPYTER_OK" >/dev/null 2>&1 || die "jupyter_server 2 or newer is still not importable"
fi

STAGE="fetching the secret"
mkdir -p "$JUPYTER_DIR" "$STATE_DIR"
# @@NBFLEET_INCLUDE fetch-secret.sh@@
fetch_secret

# The idle probe reads Jupyter's API as root on the instance. In password mode it needs a token
# of its own: random, made once, never leaving the instance.
if [ ! -s "$STATE_DIR/probe-token" ]; then
  openssl rand -hex 24 | tr -d '\n' >"$STATE_DIR/probe-token"
fi

STAGE="making the TLS certificate"
# Made once and reused, so the fingerprint users verified stays valid across re-runs.
if ! openssl x509 -noout -in "$CERT" >/dev/null 2>&1 || ! openssl pkey -noout -in "$KEY" >/dev/null 2>&1; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
    -subj "/CN=nbfleet-$NB_NAME" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$KEY" -out "$CERT" >/dev/null 2>&1 || die "openssl could not make a certificate"
fi

STAGE="writing the Jupyter configuration"
"$PY" - "$STATE_DIR/server.json" "$BIND_IP" "$NB_PORT" "$CERT" "$KEY" "$SECRET_KIND" "$NB_HOME" "$FALLBACK_SECONDS" <<'PY'
import json, sys
path, ip, port, cert, key, kind, root, fallback = sys.argv[1:]
with open(path, "w") as f:
    json.dump({"ip": ip, "port": int(port), "certfile": cert, "keyfile": key,
               "secret_kind": kind, "root_dir": root, "fallback_seconds": int(fallback)}, f)
PY
# Static on purpose (quoted heredoc): values come from server.json, the secret from its own file.
cat >"$JUPYTER_DIR/jupyter_server_config.py" <<'CONFIG'
# Written by nbfleet. Modern jupyter_server keys; the tutorial's NotebookApp.* keys are ignored
# by jupyter_server 2.x and would leave the server without TLS or password.
import hashlib, json, os

from jupyter_server.auth.identity import PasswordIdentityProvider

_state = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".nbfleet")
with open(os.path.join(_state, "server.json")) as _f:
    _s = json.load(_f)
with open(os.path.join(_state, "secret")) as _f:
    _secret = _f.read().strip()


class NbfleetIdentityProvider(PasswordIdentityProvider):
    """Jupyter's own login, with the credential in nbfleet's secret file re-read when nbfleet
    replaces it (`nbfleet credential`): the running server takes the new token or password at
    its next request, without a restart, and kernels keep running. The login cookie's name
    carries a digest of the credential, so a browser logged in with the old one logs in again.
    Each (re)load leaves the digest in secret-loaded, for the health check to compare."""

    _loaded = None
    _digest = ""

    def _refresh(self):
        path = os.path.join(_state, "secret")
        st = os.stat(path)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._loaded:
            return
        with open(path) as f:
            secret = f.read().strip()
        if _s["secret_kind"] == "password":
            self.hashed_password = secret
        else:
            self.token = secret
        self._digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        self._loaded = key
        marker = os.path.join(_state, "secret-loaded")
        with open(marker + ".tmp", "w") as f:
            f.write(self._digest)
        os.replace(marker + ".tmp", marker)

    def get_user(self, handler):
        self._refresh()
        return super().get_user(handler)

    def process_login_form(self, handler):
        self._refresh()
        return super().process_login_form(handler)

    def get_cookie_name(self, handler):
        self._refresh()
        return f"{super().get_cookie_name(handler)}-{self._digest[:8]}"


c.ServerApp.identity_provider_class = NbfleetIdentityProvider

c.ServerApp.ip = _s["ip"]
# NBFLEET_PORT is set only by the local runner, which moves the port the way a restart moves the IP.
c.ServerApp.port = int(os.environ.get("NBFLEET_PORT") or _s["port"])
c.ServerApp.port_retries = 0
c.ServerApp.certfile = _s["certfile"]
c.ServerApp.keyfile = _s["keyfile"]
c.ServerApp.open_browser = False
c.ServerApp.root_dir = _s["root_dir"]
c.PasswordIdentityProvider.allow_password_change = False
if _s["secret_kind"] == "password":
    c.PasswordIdentityProvider.hashed_password = _secret
    # Only nbfleet's idle probe, on the instance itself, uses this token.
    with open(os.path.join(_state, "probe-token")) as _f:
        c.IdentityProvider.token = _f.read().strip()
else:
    c.PasswordIdentityProvider.hashed_password = ""
    c.IdentityProvider.token = _secret

# The on-instance idle fallback (off unless asked for at launch): Jupyter culls idle kernels and
# terminals, then exits by itself once nothing is left and no request came for the timeout; the
# unit then powers the machine off. Busy kernels are never culled. An open Lab tab polls the
# server and so keeps it alive: this is a safety net for a control plane that is down, not the
# idle policy.
_fallback = int(_s.get("fallback_seconds", 0))
if _fallback > 0:
    c.MappingKernelManager.cull_idle_timeout = _fallback
    c.MappingKernelManager.cull_interval = 60
    c.MappingKernelManager.cull_busy = False
    c.MappingKernelManager.cull_connected = True
    c.TerminalManager.cull_inactive_timeout = _fallback
    c.TerminalManager.cull_interval = 60
    c.ServerApp.shutdown_no_activity_timeout = _fallback
CONFIG
chown -R "$NB_USER:" "$JUPYTER_DIR" "$STATE_DIR"

STAGE="installing nbfleet-busy"
# The explicit hold the idle probe reads (docs/idle.md): on every user's PATH.
BIN_DIR="${NBFLEET_BIN_DIR:-/usr/local/bin}"
cat >"$BIN_DIR/nbfleet-busy.new" <<'BUSY'
# @@NBFLEET_INCLUDE nbfleet-busy@@
BUSY
chmod 755 "$BIN_DIR/nbfleet-busy.new"
mv -f "$BIN_DIR/nbfleet-busy.new" "$BIN_DIR/nbfleet-busy"

STAGE="installing the service"
# Jupyter runs under a small wrapper that tells an idle exit (Jupyter stopped by itself, exit 0)
# from a stop by systemd (SIGTERM): only the first leaves the marker that powers the machine off.
cat >"$STATE_DIR/run-jupyter.sh" <<'WRAPPER'
#!/bin/bash
marker="$1"
shift
rm -f "$marker"
stopping=0
trap 'stopping=1; kill -TERM "$child" 2>/dev/null' TERM INT
"$@" &
child=$!
while :; do
  rc=0
  wait "$child" || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
if [ "$stopping" = 0 ] && [ "$rc" = 0 ]; then
  echo "Jupyter exited after its no-activity timeout" >"$marker"
fi
exit "$rc"
WRAPPER
chmod 755 "$STATE_DIR/run-jupyter.sh"
chown "$NB_USER:" "$STATE_DIR/run-jupyter.sh"
poweroff_line=""
if [ "$FALLBACK_SECONDS" -gt 0 ]; then
  # `+`: runs as root, although the service runs as the notebook user.
  poweroff_line="ExecStopPost=+/bin/sh -c 'if [ -e $IDLE_MARKER ]; then rm -f $IDLE_MARKER; systemctl poweroff; fi'"
fi
cat >"$UNIT_DIR/$UNIT.service" <<UNITFILE
[Unit]
Description=Jupyter server managed by nbfleet
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$NB_USER
WorkingDirectory=$NB_HOME
Environment=HOME=$NB_HOME
Environment=JUPYTER_CONFIG_DIR=$JUPYTER_DIR
ExecStart=/bin/bash $STATE_DIR/run-jupyter.sh $IDLE_MARKER $PY -m jupyterlab
$poweroff_line
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNITFILE
chmod 644 "$UNIT_DIR/$UNIT.service"
systemctl daemon-reload
systemctl enable "$UNIT" >/dev/null 2>&1
# The lock's descriptor stays here: a service started from this script must not hold it.
systemctl restart "$UNIT" 9>&-

STAGE="waiting for Jupyter over HTTPS"
# A real HTTPS request: with a bad key file Jupyter still logs "running at https://…".
code=000
for _ in $(seq 1 120); do
  code=$(curl -sk --max-time 3 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$NB_PORT/api/status" || true)
  case "$code" in 200 | 401 | 403) break ;; esac
  sleep 1
done
case "$code" in 200 | 401 | 403) ;; *) die "Jupyter did not answer over HTTPS on port $NB_PORT within 120 s" ;; esac

STAGE="reporting"
gpu_csv=""
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_csv=$(timeout 30 nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,memory.used,utilization.gpu,utilization.memory,temperature.gpu,power.draw --format=csv,noheader,nounits 2>/dev/null || true)
fi
torch_cuda=$(timeout 120 "$PY" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null || echo absent)
GPU_CSV="$gpu_csv" TORCH_CUDA="$torch_cuda" "$PY" - "$NB_PORT" "$CERT" <<'PY'
import hashlib, json, os, ssl, sys
import jupyter_server, jupyterlab
port, cert = int(sys.argv[1]), sys.argv[2]
served = ssl.get_server_certificate(("127.0.0.1", port))
on_disk = open(cert).read()
fp = lambda pem: hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
if fp(served) != fp(on_disk):
    sys.exit("nbfleet-bootstrap: reporting: Jupyter serves a different certificate than " + cert)
print(json.dumps({
    "nbfleet": "bootstrap",
    "fingerprint": fp(served),
    "gpu_csv": os.environ["GPU_CSV"],
    "torch_cuda": os.environ["TORCH_CUDA"],
    "jupyter_server": jupyter_server.__version__,
    "jupyterlab": jupyterlab.__version__,
    "port": port,
}, separators=(",", ":")))
PY
