#!/usr/bin/env python3
"""syncws benchmark: syncws against websocket-client, websockets.sync, websocket-rs, picows
and raw TCP.

    python bench/run.py                      # full run (5 runs per figure, median)
    python bench/run.py --quick              # smoke test: fewer messages, 1 run
    python bench/run.py --markdown           # print the table as Markdown (for bench/README.md)
    python bench/run.py --load bench/results/latest.json --markdown   # re-print saved results

One reference server (Node's `ws`, installed on first use into bench/.cache/node; the
`websockets` package's asyncio server when Node/npm are missing) serves every client; each
client runs each scenario in its own subprocess (bench/worker.py). websocket-rs needs
Python >= 3.12: its worker runs under the first such interpreter found (this one, `--rs-python`,
python3.1x on PATH, pyenv's versions), in a venv of its own under bench/.cache. See
bench/README.md.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
NODE_DIR = os.path.join(CACHE, "node")
RESULTS = os.path.join(HERE, "results")

SCENARIOS = ["rtt", "small", "upload", "download", "connect", "fanin"]
CLIENTS = ["syncws", "syncws-recv", "syncws-inline", "websocket-client", "websockets",
           "websocket-rs", "picows", "raw-tcp"]
# Run only when named in --clients: websocket-client with a reader thread, for connect (the
# least a client with a reader thread per connection pays; see bench/README.md).
EXTRA_CLIENTS = ["websocket-client-thread"]
SYNCWS_CLIENTS = ("syncws", "syncws-recv", "syncws-inline")
BASELINES = ("websocket-client", "websockets")  # ratios are to the better of these two
FASTEST = ("websocket-rs", "picows")  # the fastest Python clients: the second summary target
OTHERS = BASELINES + FASTEST  # "the best Python client" is the best of these on each row
RS_MIN_PYTHON = (3, 12)  # websocket-rs ships wheels for CPython >= 3.12 only
NOT_RUN = {("syncws-recv", "fanin")}  # a blocking recv() per socket is websockets' model; skipped
NOT_RUN |= {("websocket-client-thread", s) for s in SCENARIOS if s != "connect"}

# (scenario, metric key, label, higher is better)
METRICS = [
    ("rtt", "rtt_per_s", "round trips/s", True),
    ("rtt", "p50_us", "p50 latency (µs)", False),
    ("rtt", "p99_us", "p99 latency (µs)", False),
    ("small", "msgs_per_s", "messages/s", True),
    ("upload", "MB_per_s", "MB/s", True),
    ("download", "MB_per_s", "MB/s", True),
    ("connect", "ws_per_s", "ws handshakes/s", True),
    ("connect", "wss_per_s", "wss handshakes/s", True),
    ("fanin", "msgs_per_s", "messages/s", True),
    ("fanin", "peak_rss_mib", "peak RSS (MiB)", False),
    ("fanin", "rss_per_socket_kib", "RSS/socket (KiB)", False),
    ("fanin", "threads_per_socket", "threads/socket", False),
]
# Metrics whose ratio to raw TCP is shown.
RAW_PERCENT = {("download", "MB_per_s"), ("upload", "MB_per_s"), ("small", "msgs_per_s"), ("rtt", "rtt_per_s")}

FULL = dict(
    rtt_size=32, rtt_count=5000, rtt_warmup=200,
    small_size=64, small_count=20000, small_warmup=500,
    big_size=1 << 20, upload_count=64, download_count=64, big_warmup=4,
    connect_count=100,
    fanin_sockets=200, fanin_count=1000, fanin_size=64,
)
QUICK = dict(
    FULL,
    rtt_count=1000, rtt_warmup=50, small_count=4000, small_warmup=100,
    upload_count=16, download_count=16, big_warmup=1,
    connect_count=20, fanin_sockets=50, fanin_count=200,
)


def log(msg=""):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------------- environment


def probe(code, env=None, python=None):
    """Run a snippet in a fresh interpreter; return (ok, last line of output)."""
    try:
        r = subprocess.run(
            [python or sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
            env=env, cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    out = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, (out[-1] if out else "")


def pip_install(packages, why, python=None):
    python = python or sys.executable
    log("installing %s into %s (%s): %s -m pip install %s"
        % (", ".join(packages), "this Python" if python == sys.executable else python, why,
           python, " ".join(packages)))
    r = subprocess.run([python, "-m", "pip", "install", "--quiet"] + packages)
    return r.returncode == 0


COMPARISON_PROBES = {
    "websocket-client": ("import websocket; websocket.create_connection; websocket.WebSocketApp; "
                         "print(websocket.__version__)", "websocket-client"),
    "websockets": ("import websockets, websockets.sync.client; print(websockets.__version__)",
                   "websockets>=13"),
    # picows's published benchmarks run on uvloop: install it too (the worker uses it if present).
    "picows": ("import picows, uvloop; print(picows.__version__ + ' on uvloop ' + uvloop.__version__)",
               "picows uvloop"),
}
COMPARISON_PROBES["websocket-client-thread"] = COMPARISON_PROBES["websocket-client"]  # same package
RS_PROBE = ("import sys, websocket_rs.sync.client; print(websocket_rs.__version__ + ' (Python %d.%d.%d)' "
            "% sys.version_info[:3])")


def ensure_comparison_clients(clients, install):
    """Make websocket-client / websockets importable (pip-installing them if allowed)."""
    versions = {}
    for name in [c for c in clients if c in COMPARISON_PROBES]:
        code, requirement = COMPARISON_PROBES[name]
        ok, out = probe(code)
        if not ok and install:
            pip_install(requirement.split(), "needed for the '%s' column" % name)
            ok, out = probe(code)
        if ok:
            versions[name] = out
        else:
            log("!! skipping client %s: not importable (%s)%s" % (
                name, out, "" if install else "; install it with: %s -m pip install '%s'" % (
                    sys.executable, requirement)))
    return versions


def python_version(python):
    """(major, minor) of an interpreter, or None if it does not run."""
    ok, out = probe("import sys; print('%d.%d' % sys.version_info[:2])", python=python)
    if not ok:
        return None
    try:
        return tuple(int(x) for x in out.split("."))
    except ValueError:
        return None


def rs_python_candidates(explicit):
    """Interpreters that may run websocket-rs, most preferred first."""
    if explicit:
        return [explicit]
    found = [sys.executable]
    for minor in range(20, RS_MIN_PYTHON[1] - 1, -1):
        path = shutil.which("python3.%d" % minor)
        if path:
            found.append(path)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.*", "bin", "python3")), reverse=True)
    return found


def ensure_websocket_rs(install, explicit_python):
    """Find a Python >= 3.12 with websocket-rs importable, installing it into a venv under
    bench/.cache if allowed. Returns (python, version text) or (None, reason)."""
    pythons = []
    for python in rs_python_candidates(explicit_python):
        version = python_version(python)
        if version and version >= RS_MIN_PYTHON:
            pythons.append((python, version))
    if not pythons:
        if explicit_python:
            return None, "needs Python >= %d.%d; --rs-python %s is not one" % (RS_MIN_PYTHON + (explicit_python,))
        return None, "needs Python >= %d.%d and none was found (pass --rs-python)" % RS_MIN_PYTHON
    python, version = pythons[0]
    venv_python = os.path.join(CACHE, "venv-websocket-rs-py%d.%d" % version, "bin", "python")
    for candidate in (python, venv_python):
        if os.path.exists(candidate):
            ok, out = probe(RS_PROBE, python=candidate)
            if ok:
                return candidate, out
    if not install:
        return None, "not importable from %s; install it with: %s -m pip install websocket-rs" % (python, python)
    if not os.path.exists(venv_python):
        venv_dir = os.path.dirname(os.path.dirname(venv_python))
        log("creating a venv for websocket-rs (Python %d.%d) in %s" % (version + (os.path.relpath(venv_dir),)))
        if subprocess.run([python, "-m", "venv", venv_dir]).returncode != 0:
            return None, "could not create a venv with %s" % python
    pip_install(["websocket-rs"], "needed for the 'websocket-rs' column", python=venv_python)
    ok, out = probe(RS_PROBE, python=venv_python)
    return (venv_python, out) if ok else (None, "not importable after installing: %s" % out)


def locate_syncws():
    """Return (env for the workers, description) or (None, reason) if syncws is unusable.

    The installed syncws is preferred (it is what users get, with any compiled accelerator);
    if none is installed, the repository's working tree is used."""
    code = ("import syncws, os; syncws.WebSocket; syncws.executors.InlineExecutor; syncws.connect; "
            "print(getattr(syncws, '__version__', '?') + ' from ' + os.path.dirname(syncws.__file__))")
    env = worker_env()
    ok, out = probe(code, env)
    if ok:
        return env, out
    env_tree = dict(env, PYTHONPATH=os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p))
    ok2, out2 = probe(code, env_tree)
    if ok2:
        return env_tree, out2 + " (not installed: using the working tree)"
    return None, out2 or out


def worker_env():
    env = dict(os.environ)
    # Everything stays on 127.0.0.1: no proxy from the environment for any client.
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"):
            del env[k]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def make_certs(directory):
    """Create a CA and a server certificate for 127.0.0.1; return (ca, cert, key) or None."""
    ca_path = os.path.join(directory, "ca.pem")
    cert_path = os.path.join(directory, "server.pem")
    key_path = os.path.join(directory, "server.key")
    for attempt in range(2):
        try:
            import trustme
        except ImportError:
            trustme = None
        if trustme is not None:
            ca = trustme.CA()
            server = ca.issue_cert("127.0.0.1", "localhost")
            ca.cert_pem.write_to_path(ca_path)
            server.private_key_pem.write_to_path(key_path)
            with open(cert_path, "wb") as f:
                for blob in server.cert_chain_pems:
                    f.write(blob.bytes())
            return ca_path, cert_path, key_path, "trustme"
        if attempt == 0 and shutil.which("openssl"):
            cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                   "-keyout", key_path, "-out", cert_path, "-subj", "/CN=127.0.0.1",
                   "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                   "-addext", "basicConstraints=critical,CA:TRUE"]
            r = subprocess.run(cmd, capture_output=True)
            if r.returncode == 0:
                shutil.copy(cert_path, ca_path)  # self-signed: the certificate is its own CA
                return ca_path, cert_path, key_path, "openssl (self-signed)"
        if attempt == 0 and not pip_install(["trustme"], "to make a certificate for the wss server"):
            break
    return None


# ------------------------------------------------------------------------------------ server


class Server:
    def __init__(self, kind, certs):
        self.kind = kind
        self.proc = None
        self.info = None
        self.note = ""
        self.certs = certs

    def start(self):
        cert_args = ["--cert", self.certs[1], "--key", self.certs[2]] if self.certs else []
        if self.kind == "node":
            env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
            cmd = ["node", os.path.join(HERE, "server.js")] + cert_args
        else:
            env = worker_env()
            cmd = [sys.executable, os.path.join(HERE, "server_py.py")] + cert_args
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=HERE,
            start_new_session=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the %s server did not start" % self.kind)
        self.info = json.loads(line)
        return self.info

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(3)
        except Exception:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        self.proc = None


def ensure_node_ws():
    """Install the `ws` package into bench/.cache/node on first use. Returns an error or None."""
    if not (shutil.which("node") and shutil.which("npm")):
        return "node/npm not found on PATH"
    if os.path.isfile(os.path.join(NODE_DIR, "node_modules", "ws", "package.json")):
        return None
    os.makedirs(NODE_DIR, exist_ok=True)
    base = ["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--loglevel=error"]
    log("installing Node's ws package into %s (first run only)" % os.path.relpath(NODE_DIR))
    # bufferutil (native unmasking, prebuilt binaries inside the npm package) makes the server
    # faster at reading uploads; it is optional, so retry without it if it cannot be installed.
    for packages in (["ws@8", "bufferutil@4"], ["ws@8"]):
        try:
            r = subprocess.run(base + packages, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return "npm install timed out"
        if r.returncode == 0:
            return None
        err = (r.stderr or r.stdout).strip().splitlines()
    return "npm install ws failed: %s" % (err[-1] if err else "?")


def start_server(kind, certs):
    """Start the node server (or the Python fallback); returns a started Server."""
    if kind in ("auto", "node"):
        problem = ensure_node_ws()
        if problem is None:
            server = Server("node", certs)
            try:
                server.start()
                return server
            except Exception as exc:  # noqa: BLE001
                problem = "node server failed to start: %s" % exc
        if kind == "node":
            raise SystemExit("cannot use the Node server: %s" % problem)
        log("!! %s: falling back to the Python `websockets` server." % problem)
        log("!! The fallback server is itself written in Python and will likely be the bottleneck;")
        log("!! install Node.js and npm for meaningful figures.")
    ok, out = probe(COMPARISON_PROBES["websockets"][0])
    if not ok and not pip_install(["websockets>=13"], "for the fallback server"):
        raise SystemExit("no server available: neither node/npm nor the websockets package")
    server = Server("python", certs)
    server.start()
    server.note = "FALLBACK SERVER (Python websockets): figures are bounded by the server"
    return server


# ------------------------------------------------------------------------------------ running


def run_one(client, scenario, params, env, timeout, python):
    """Run one worker; return (metrics dict, None) or (None, error string)."""
    cmd = [python, os.path.join(HERE, "worker.py"), client, scenario, json.dumps(params)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        start_new_session=True, text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        return None, "timed out after %gs (killed)" % timeout
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):]), None
    lines = [l for l in (err or out).strip().splitlines() if l.strip()]
    return None, "exit %s: %s" % (proc.returncode, lines[-1] if lines else "no output")


def median_metrics(runs):
    keys = sorted({k for r in runs for k in r})
    return {k: statistics.median([r[k] for r in runs if k in r]) for k in keys}


def run_all(args, clients, scenarios, params, envs, pythons, server):
    results = {s: {c: {"runs": [], "failures": []} for c in clients} for s in scenarios}
    plan = [(s, c) for s in scenarios for c in clients if (c, s) not in NOT_RUN]
    total = len(plan) * args.runs
    done = 0
    t_start = time.time()
    # Interleave: every client runs every scenario once per round, so drift on the machine
    # (other load, thermal, page cache) hits all clients alike.
    for rnd in range(args.runs):
        for scenario, client in plan:
            done += 1
            if not server.alive():
                raise SystemExit("the reference server died")
            t = time.time()
            metrics, error = run_one(client, scenario, params, envs[client], args.timeout,
                                     pythons.get(client, sys.executable))
            cell = results[scenario][client]
            if metrics is not None:
                cell["runs"].append(metrics)
                summary = ", ".join("%s=%.4g" % kv for kv in sorted(metrics.items()))
            else:
                cell["failures"].append(error)
                summary = "FAILED: " + error
            log("[%3d/%d] run %d  %-8s %-16s %5.1fs  %s" % (
                done, total, rnd + 1, scenario, client, time.time() - t, summary))
    for scenario in scenarios:
        for client in clients:
            cell = results[scenario][client]
            if (client, scenario) in NOT_RUN:
                cell["not_run"] = True
            cell["median"] = median_metrics(cell["runs"]) if cell["runs"] else None
    return results, time.time() - t_start


# ------------------------------------------------------------------------------------- report


def fmt(value):
    if value is None:
        return "–"
    if value >= 10000:
        return "{:,.0f}".format(value)
    if value >= 100:
        return "%.0f" % value
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def build_rows(data):
    """Rows of cells (strings) plus the header, from a results document."""
    clients = data["clients"]
    res = data["results"]
    ratio_clients = [c for c in SYNCWS_CLIENTS if c in clients]
    has_base = any(b in clients for b in BASELINES)
    header = ["scenario", "metric"] + clients
    if has_base:
        header += ["%s ×" % c.replace("syncws-", "") if c != "syncws" else "syncws ×" for c in ratio_clients]
    rows = []
    for scenario, key, label, higher in METRICS:
        if scenario not in res:
            continue
        values = {}
        row = [scenario, label]
        for c in clients:
            cell = res[scenario].get(c) or {}
            m = cell.get("median")
            values[c] = m.get(key) if m else None
            row.append(cell_text(cell, values[c]))
        if all(values[c] is None for c in clients):
            continue
        if has_base:
            row += ratio_cells(values, higher, ratio_clients)
        rows.append(row)
    return header, rows


def cell_text(cell, value):
    """How one client's median shows in the table (with its failure marks)."""
    if value is not None:
        return fmt(value) + ("*" if cell.get("failures") else "")
    if cell.get("not_run"):
        return "n/a"
    return "FAIL" if cell.get("failures") else "–"


def ratio_cells(values, higher, ratio_clients):
    """Each syncws variant against the better of the two baselines (>1 = syncws better)."""
    base = [values[b] for b in BASELINES if values.get(b) is not None]
    best = (max(base) if higher else min(base)) if base else None
    cells = []
    for c in ratio_clients:
        v = values[c]
        if v is None or best is None or v == 0:
            cells.append("–")
        else:
            cells.append("%.2f" % ((v / best) if higher else (best / v)))
    return cells


def row_values(data, scenario, key):
    """{client: median value} for one row, leaving out clients without a value."""
    out = {}
    for c in data["clients"]:
        m = (data["results"].get(scenario, {}).get(c) or {}).get("median")
        if m and m.get(key) is not None:
            out[c] = m[key]
    return out


def build_raw_rows(data):
    """Header and rows of the "% of raw TCP" table: one column per client, throughput rows."""
    clients = [c for c in data["clients"] if c != "raw-tcp"]
    header = ["scenario", "metric"] + clients
    rows = []
    for scenario, key, label, higher in METRICS:
        if (scenario, key) not in RAW_PERCENT or scenario not in data["results"]:
            continue
        values = row_values(data, scenario, key)
        raw = values.get("raw-tcp")
        if not raw:
            continue
        rows.append([scenario, label] + [
            "%.0f%%" % (100.0 * values[c] / raw) if c in values else "–" for c in clients])
    return header, rows


def best_of(values, names):
    """(name, value) of the highest value among names, or (None, None)."""
    present = [(values[n], n) for n in names if n in values]
    if not present:
        return None, None
    value, name = max(present)
    return name, value


def summary_lines(data):
    """Per throughput row: syncws's best style against the best other Python client, and the
    default executor against the better of websocket-client and websockets.sync."""
    lines = []
    for scenario, key, label, higher in METRICS:
        if not higher or scenario not in data["results"]:
            continue
        values = row_values(data, scenario, key)
        ours, ours_v = best_of(values, SYNCWS_CLIENTS)
        if ours is None:
            continue
        parts = []
        other, other_v = best_of(values, OTHERS)
        if other is not None:
            parts.append("best syncws (%s) %s vs best Python client (%s) %s = %.2f×" % (
                ours, fmt(ours_v), other, fmt(other_v), ours_v / other_v))
        fast, fast_v = best_of(values, FASTEST)
        if fast is not None and fast != other:
            parts.append("vs %s %s = %.2f×" % (fast, fmt(fast_v), ours_v / fast_v))
        base, base_v = best_of(values, BASELINES)
        if base is not None and "syncws" in values:
            parts.append("default executor %s vs %s %s = %.2f×" % (
                fmt(values["syncws"]), base, fmt(base_v), values["syncws"] / base_v))
        if parts:
            lines.append("%s %s: %s" % (scenario, label, "; ".join(parts)))
    return lines


def render_text(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate([header] + rows):
        cells = [str(x).ljust(widths[i]) if i < 2 else str(x).rjust(widths[i]) for i, x in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":--", ":--"] + ["--:"] * (len(header) - 2)) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def describe(data):
    m = data["machine"]
    load = data.get("load")
    lines = [
        "server: %s" % data["server"],
        "machine: %s, %s CPUs, %s; Python %s" % (m.get("cpu"), m.get("cpus"), m.get("platform"), m.get("python")),
        "load average (1 min) before/after: %s" % (
            " / ".join("%.2f" % x for x in load) if load else "?"),
        "clients: %s" % "; ".join("%s %s" % kv for kv in data["versions"].items()),
        "runs per figure: %d (median)%s; elapsed %.0f s" % (
            data["runs"], " [QUICK: reduced counts]" if data["quick"] else "", data["elapsed_s"]),
    ]
    if data.get("note"):
        lines.insert(0, "NOTE: " + data["note"])
    lines.append("ratios (×): syncws variant vs the better of websocket-client and websockets "
                 "(>1 = syncws better; latency, RSS and threads inverted so >1 is still better)")
    lines.append("* = at least one run failed (median of the others); FAIL = every run failed")
    return "\n".join(lines)


def failures_text(data):
    out = []
    for scenario, by_client in data["results"].items():
        for client, cell in by_client.items():
            for f in cell.get("failures", []):
                out.append("  %s / %s: %s" % (scenario, client, f))
    return ("failures:\n" + "\n".join(out)) if out else ""


def loadavg():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu or platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, help="runs per client and scenario (default 5; 1 with --quick)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, from: " + ",".join(SCENARIOS))
    ap.add_argument("--clients", default=",".join(CLIENTS),
                    help="comma-separated, from: " + ",".join(CLIENTS + EXTRA_CLIENTS))
    ap.add_argument("--quick", action="store_true", help="smoke test: fewer messages, 1 run")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before a client run is killed (default 120)")
    ap.add_argument("--server", choices=["auto", "node", "python"], default="auto",
                    help="reference server: auto (node, else python), node, python (fallback)")
    ap.add_argument("--no-install", action="store_true", help="never pip-install missing comparison clients")
    ap.add_argument("--rs-python", metavar="PYTHON",
                    help="interpreter (>= 3.12) for the websocket-rs column (default: found automatically)")
    ap.add_argument("--output", default=os.path.join(RESULTS, "latest.json"), help="where to write the JSON results")
    ap.add_argument("--load", metavar="JSON", help="do not run: print the table of a saved results file")
    args = ap.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    return args


def pick(value, allowed, what):
    names = [x.strip() for x in value.split(",") if x.strip()]
    # "websockets.sync" and "websocket_client" are accepted as aliases
    alias = {"websockets.sync": "websockets", "websocket_client": "websocket-client", "raw": "raw-tcp",
             "inline": "syncws-inline", "recv": "syncws-recv", "websocket_rs": "websocket-rs"}
    names = [alias.get(n, n) for n in names]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SystemExit("unknown %s: %s (choose from %s)" % (what, ", ".join(bad), ", ".join(allowed)))
    return [n for n in allowed if n in names]  # canonical order


def print_report(data, markdown):
    header, rows = build_rows(data)
    text = describe(data)
    if markdown:
        text = "\n".join("- " + line for line in text.splitlines())
    render = render_markdown if markdown else render_text
    print(text)
    print()
    print(render(header, rows))
    raw_header, raw_rows = build_raw_rows(data)
    if raw_rows:
        print()
        print("% of raw TCP (same scenario, same run):")
        print()
        print(render(raw_header, raw_rows))
    summary = summary_lines(data)
    if summary:
        print()
        print("summary (best syncws style vs the best other Python client; default executor vs the "
              "better of websocket-client and websockets.sync):")
        print()
        print("\n".join(("- " if markdown else "  ") + line for line in summary))
    f = failures_text(data)
    if f:
        print()
        print(f)


def prepare_clients(args, clients):
    """Make every requested client runnable (installing what is allowed) and drop the others.

    Returns (clients, {client: version text}, {client: worker env}, {client: interpreter} for
    the clients that do not run under this Python)."""
    versions = ensure_comparison_clients(clients, not args.no_install)
    pythons = {}
    if "websocket-rs" in clients:
        rs_python, rs_where = ensure_websocket_rs(not args.no_install, args.rs_python)
        if rs_python is None:
            log("!! skipping client websocket-rs: %s" % rs_where)
        else:
            pythons["websocket-rs"] = rs_python
            versions["websocket-rs"] = rs_where
    envs = {c: worker_env() for c in clients}
    if any(c in SYNCWS_CLIENTS for c in clients):
        env, where = locate_syncws()
        if env is None:
            log("!! skipping syncws clients: syncws is not usable yet (%s)" % where)
            clients = [c for c in clients if c not in SYNCWS_CLIENTS]
        else:
            versions["syncws"] = where
            for c in SYNCWS_CLIENTS:
                envs[c] = env
    clients = [c for c in clients if c in SYNCWS_CLIENTS or c == "raw-tcp" or c in versions]
    if not clients:
        raise SystemExit("no client left to run")
    return clients, versions, envs, pythons


def main(argv=None):
    args = parse_args(argv)
    if args.load:
        with open(args.load) as f:
            print_report(json.load(f), args.markdown)
        return 0

    scenarios = pick(args.scenarios, SCENARIOS, "scenario")
    clients = pick(args.clients, CLIENTS + EXTRA_CLIENTS, "client")
    params = dict(QUICK if args.quick else FULL)

    clients, versions, envs, pythons = prepare_clients(args, clients)

    os.makedirs(CACHE, exist_ok=True)
    certdir = tempfile.mkdtemp(prefix="certs-", dir=CACHE)
    server = None
    try:
        certs = make_certs(certdir)
        if certs is None:
            log("!! no certificate could be made (no trustme, no openssl): wss figures are skipped")
        else:
            params["ca"] = certs[0]
        server = start_server(args.server, certs)
        info = server.info
        params["ws"] = "ws://127.0.0.1:%d" % info["ws"]
        params["tcp"] = info["tcp"]
        if info.get("wss") and certs:
            params["wss"] = "wss://127.0.0.1:%d" % info["wss"]
            params["tls"] = info["tls"]
        else:
            params.pop("ca", None)
        log("server: %s on 127.0.0.1 (ws %s, wss %s, tcp %s, tls %s)%s" % (
            info["impl"], info["ws"], info.get("wss"), info["tcp"], info.get("tls"),
            "; certificate by " + certs[3] if certs else ""))
        if server.note:
            log("!! " + server.note)
        load_before = loadavg()
        if load_before is not None and load_before > 0.5 * (os.cpu_count() or 1):
            log("!! the machine is busy (load average %.2f on %d CPUs): figures will be noisy"
                % (load_before, os.cpu_count() or 1))
        log("clients: %s; scenarios: %s; %d run(s) each; timeout %gs per run" % (
            ", ".join(clients), ", ".join(scenarios), args.runs, args.timeout))
        if "websocket-rs" in envs and certs:
            # websocket-rs takes no SSL context; it trusts SSL_CERT_FILE on top of the system store.
            envs["websocket-rs"]["SSL_CERT_FILE"] = certs[0]
        results, elapsed = run_all(args, clients, scenarios, params, envs, pythons, server)
        load_after = loadavg()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(certdir, ignore_errors=True)

    data = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "server": info["impl"],
        "note": server.note,
        "machine": machine(),
        "versions": versions,
        "clients": clients,
        "scenarios": scenarios,
        "runs": args.runs,
        "quick": args.quick,
        "params": {k: v for k, v in params.items() if k not in ("ca", "ws", "wss", "tcp", "tls")},
        "elapsed_s": elapsed,
        "load": [load_before, load_after] if load_before is not None else None,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(data, f, indent=1)
    log("results written to %s" % os.path.relpath(args.output))
    log("")
    print_report(data, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
