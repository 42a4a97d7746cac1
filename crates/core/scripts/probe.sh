#!/bin/bash
# SSM's AWS-RunShellScript runs the commands with sh (dash on Ubuntu) and ignores the shebang:
# re-run this file under bash before any bash-only line is read.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
# nbfleet idle probe, sent to every running notebook on each sweep. Prints ONE compact JSON line
# (under 2,000 characters: ListCommandInvocations keeps 2,500 per instance) with every signal
# the idle policy weighs (docs/idle.md). Reading them must not count as activity itself: Jupyter
# is asked with ?no_track_activity=1 and /api/status, which never move last_activity; the scan
# of the notebook root only reads; the probe runs as root, so its own CPU is not the user's.
#
# Keys: k/kb/ka/ta/c/sa Jupyter's kernels, busy kernels, kernel and terminal activity,
# connections, server activity; jd why Jupyter did not answer (the rest still counts); e/ep/en/ec
# the newest edit under the notebook root, its path, entries scanned, cut short; cpu the user's
# CPU outside the Jupyter server since the previous probe (% of one core); h/hw/hx a live
# nbfleet-busy hold (until, or null while its command runs), what, the end of the latest expired
# one; g/gp/ge per-GPU utilisation (null where nvidia-smi says [N/A]), compute processes where
# it does, why nvidia-smi could not be read.
# @@NBFLEET_VALUES@@
set -euo pipefail

NB_HOME="${NBFLEET_HOME:-/home/ubuntu}"
NB_USER="${NBFLEET_USER:-ubuntu}"
NB_PORT="${NBFLEET_PORT:-8888}"
STATE_DIR="$NB_HOME/.nbfleet"
# Root's own state (the CPU reading between probes): never in a directory the user can write.
ROOT_STATE="${NBFLEET_RUN_DIR:-/var/lib/nbfleet}"
mkdir -p "$ROOT_STATE"
chmod 700 "$ROOT_STATE"

timeout 20 python3 - "$NB_PORT" "$STATE_DIR" "$NB_HOME" "$NB_USER" "$ROOT_STATE" <<'PY'
import datetime, json, os, pwd, shutil, ssl, stat, subprocess, sys, time, urllib.request

port, state, home, user, root_state = int(sys.argv[1]), *sys.argv[2:]
out = {"nbfleet": "probe"}
now = time.time()


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def short(text, n):
    return "".join(ch for ch in str(text) if ch.isprintable())[:n]


def jupyter():
    # Password mode: the probe's own token. Token mode: the notebook's token.
    kind = json.load(open(os.path.join(state, "server.json")))["secret_kind"]
    token = open(os.path.join(state, "probe-token" if kind == "password" else "secret")).read().strip()
    # Our own server on loopback, verified against its own certificate (SAN IP:127.0.0.1).
    ctx = ssl.create_default_context(cafile=os.path.join(state, "cert.pem"))

    def get(path):
        req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=4) as r:
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


SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "venv", "env", "wandb"}


def edits(limit=20000, budget=1.0):
    # The newest modification under the notebook root (JupyterLab autosaves a dirty notebook
    # every two minutes). Hidden folders and virtual environments are skipped; bounded.
    started, scanned, newest, newest_path, cut = time.monotonic(), 0, None, None, False
    stack = [home]
    while stack and not cut:
        top = stack.pop()
        try:
            entries = os.scandir(top)
        except OSError:
            continue
        with entries:
            for entry in entries:
                scanned += 1
                if scanned >= limit or time.monotonic() - started > budget:
                    cut = True
                    break
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS and not os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
                            stack.append(entry.path)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except OSError:
                    continue
                if mtime <= now + 60 and (newest is None or mtime > newest):
                    newest, newest_path = mtime, entry.path
    out["e"] = iso(newest) if newest is not None else None
    out["ep"] = short(os.path.relpath(newest_path, home), 120) if newest_path else None
    out["en"] = scanned
    out["ec"] = int(cut)


def ours(pid, uid, own_session):
    # The notebook user's processes; on the local runner, where everything runs as one user,
    # those of this sandbox (their environment names its home).
    try:
        if os.getsid(pid) == own_session:
            return False
        if os.environ.get("NBFLEET_HOME"):
            with open(f"/proc/{pid}/environ", "rb") as f:
                return f"NBFLEET_HOME={home}".encode() in f.read().split(b"\0")
        return os.stat(f"/proc/{pid}").st_uid == uid
    except OSError:
        return False


def cpu():
    # CPU time of the user's processes other than the Jupyter server itself, as a share of one
    # core since the previous probe (kept in root's state, never the user's).
    uid = pwd.getpwnam(user).pw_uid
    servers = set()
    runtime = os.path.join(home, ".local/share/jupyter/runtime")
    for name in os.listdir(runtime) if os.path.isdir(runtime) else []:
        if name.startswith("jpserver-") and name.endswith(".json"):
            try:
                servers.add(int(name[len("jpserver-"):-len(".json")]))
            except ValueError:
                pass
    own_session = os.getsid(0)
    seen = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in servers or not ours(int(name), uid, own_session):
            continue
        try:
            fields = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()
            seen[name] = [int(fields[19]), int(fields[11]) + int(fields[12])]
        except (OSError, IndexError, ValueError):
            continue
    uptime = float(open("/proc/uptime").read().split()[0])
    path = os.path.join(root_state, "probe-cpu.json")
    try:
        before = json.load(open(path))
    except (OSError, ValueError):
        before = None
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"t": uptime, "p": seen}, f)
    os.replace(tmp, path)
    if not before or not uptime > before["t"]:
        return None
    ticks = 0
    for pid, (start, used) in seen.items():
        old = before["p"].get(pid)
        ticks += used - old[1] if old and old[0] == start else used
    return round(100 * ticks / os.sysconf("SC_CLK_TCK") / (uptime - before["t"]))


def holds():
    # Live `nbfleet-busy` holds, read without following links, from regular files of the user's.
    folder = os.path.join(state, "holds")
    uid = pwd.getpwnam(user).pw_uid
    live, expired = [], None
    for name in sorted(os.listdir(folder))[:50] if os.path.isdir(folder) else []:
        try:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd) as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_size > 1024:
                continue
            lines = f.read(1024).splitlines()
        if len(lines) < 2:
            continue
        head, what = lines[0].split(), short(lines[1], 60)
        try:
            if head[0] == "until":
                until = int(head[1])
                if until > now:
                    live.append((until, what))
                else:
                    expired = max(expired or 0, until)
            elif head[0] == "cmd":
                pid, start = int(head[1]), int(head[2])
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                if int(fields[19]) == start:
                    live.append((None, what))
        except (OSError, IndexError, ValueError):
            continue
    if live:
        # A running command holds for as long as it runs: it outranks any time.
        until, what = max(live, key=lambda h: float("inf") if h[0] is None else h[0])
        out["h"] = iso(until) if until else None
        out["hw"] = what
    if expired:
        out["hx"] = iso(expired)


def gpus():
    if not shutil.which("nvidia-smi"):
        out["g"] = []
        return
    query = ["nvidia-smi", "--query-gpu=index,uuid,utilization.gpu", "--format=csv,noheader,nounits"]
    r = subprocess.run(query, capture_output=True, text=True, timeout=8)
    if r.returncode != 0:
        raise RuntimeError(((r.stderr or r.stdout).strip().splitlines() or [f"exit {r.returncode}"])[-1])
    util = []
    for row in r.stdout.strip().splitlines():
        value = row.split(",")[2].strip()
        util.append(int(float(value)) if value.replace(".", "", 1).isdigit() else None)
    out["g"] = util
    if None in util:
        # MIG or vGPU: no utilisation; the compute processes say whether it is in use.
        apps = ["nvidia-smi", "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"]
        r = subprocess.run(apps, capture_output=True, text=True, timeout=8)
        if r.returncode != 0:
            raise RuntimeError("the compute process list could not be read")
        out["gp"] = sum(1 for line in r.stdout.splitlines() if line.strip())


for key, signal in (("jd", jupyter), ("ee", edits), ("cpe", cpu), ("he", holds), ("ge", gpus)):
    try:
        value = signal()
        if key == "cpe":
            out["cpu"] = value
    except Exception as e:  # noqa: BLE001 - each failure is reported, and read by the policy
        out[key] = short(f"{type(e).__name__}: {e}", 200)
print(json.dumps(out, separators=(",", ":")))
PY
