#!/usr/bin/env python3
"""Where a benchmark scenario's time goes, by layer of syncws: one worker under py-spy.

    python bench/profile.py small                    # the default executor
    python bench/profile.py rtt --client syncws-inline
    python bench/profile.py connect --wall           # every thread, waiting included

Runs ``bench/worker.py CLIENT SCENARIO`` against the same reference server as ``bench/run.py``
(the message counts multiplied by ``--scale`` so that set-up is a small part of the samples)
under ``py-spy record --threads``, and prints each layer's share of the samples and the
functions that take the most.

- By default py-spy samples only the thread holding the GIL (``--gil``): the shares are
  shares of the Python CPU time, which bounds a throughput scenario, and the first line says
  which fraction of the run the GIL was held at all (the rest is every thread waiting: for the
  network, the server, or a thread wake-up).
- ``--wall`` samples every thread, waiting or not, one line per thread kind: what each one
  spends its wall time on, which is what a latency scenario (``rtt``, ``connect``) is made of.

A sample is counted for the innermost frame that is syncws's, the benchmark's or the standard
library's ``threading`` (a call into C, such as ``socket.recv_into``, is counted for the Python
line that made it). py-spy is installed on first use, like the comparison clients; it needs
permission to trace its child process (as on any Linux by default).
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import run

# (layer, path fragment of the innermost matching frame), first match wins.
LAYERS = [
    ("protocol core (frames, masking, deflate, UTF-8)", "syncws/protocol/"),
    ("reader loop", "syncws/engine/reader.py"),
    ("writer", "syncws/engine/writer.py"),
    ("opening handshake (I/O side)", "syncws/engine/opening.py"),
    ("engine (lock, reading role, ending)", "syncws/engine/"),
    ("socket and TLS calls", "syncws/streams.py"),
    ("socket and TLS calls", "syncws/tcp.py"),
    ("socket and TLS calls", "syncws/transport.py"),
    ("dispatch and executors", "syncws/dispatch.py"),
    ("dispatch and executors", "syncws/executors.py"),
    ("API, events and state", "syncws/"),
    ("thread waits and starts (threading)", "/threading.py"),
    ("the benchmark's own code", "bench/worker.py"),
]
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=run.SCENARIOS)
    ap.add_argument("--client", default="syncws", choices=run.SYNCWS_CLIENTS)
    ap.add_argument("--wall", action="store_true", help="sample every thread, idle ones too")
    ap.add_argument("--rate", type=int, default=1000, help="samples per second (default 1000)")
    ap.add_argument("--scale", type=int, default=5, help="multiply the message counts (default 5)")
    ap.add_argument("--top", type=int, default=12, help="functions listed (default 12)")
    return ap.parse_args(argv)


def ensure_py_spy():
    path = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if os.path.exists(path):
        return path
    if run.pip_install(["py-spy"], "to sample the worker") and os.path.exists(path):
        return path
    raise SystemExit("py-spy is not available: %s -m pip install py-spy" % sys.executable)


def scaled_params(scale):
    params = dict(run.FULL)
    for key in ("rtt_count", "small_count", "upload_count", "download_count", "connect_count",
                "fanin_count"):
        params[key] *= scale
    return params


def record(py_spy, args, params, env, out):
    cmd = [py_spy, "record", "--rate", str(args.rate), "--threads", "--format", "raw",
           "--output", out, "--nonblocking"]
    cmd += ["--idle"] if args.wall else ["--gil"]
    cmd += ["--", sys.executable, os.path.join(run.HERE, "worker.py"), args.client,
            args.scenario, json.dumps(params)]
    proc = subprocess.run(cmd, env=env, cwd=run.ROOT, capture_output=True, text=True)
    result = [l for l in proc.stdout.splitlines() if l.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not result:
        raise SystemExit("the worker failed:\n" + (proc.stderr or proc.stdout)[-2000:])
    return json.loads(result[0][len("BENCH_RESULT "):])


def frames_of(stack):
    """(thread kind, [(function, file)] outermost first) of one raw py-spy stack.

    A thread's kind is the function it was started with (``Engine._run`` for a reader, say),
    since names of short-lived threads are not always readable and their numbers differ."""
    parts = stack.split(";")
    if parts and parts[0].startswith("thread ("):
        parts.pop(0)
    frames = []
    for part in parts:
        m = FRAME.match(part)
        if m:
            frames.append((m.group("func"), m.group("file")))
    kind = "main thread"
    for (func, path), (target, _) in zip(frames, frames[1:]):
        if func == "Thread.run" and path.endswith("threading.py"):
            kind = "thread running " + target
            break
    return kind, frames


def attribute(frames):
    """(layer, function) that a sample is counted for: the innermost frame a layer claims."""
    for func, path in reversed(frames):
        for layer, fragment in LAYERS:
            if fragment in path:
                return layer, "%s (%s)" % (func, path.split("/")[-1])
    return "other (standard library, interpreter)", frames[-1][0] if frames else "?"


def load(path, wall):
    by_kind = collections.defaultdict(collections.Counter)
    functions = collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            kind, frames = frames_of(stack)
            layer, function = attribute(frames)
            by_kind[kind if wall else "all threads"][layer] += int(count)
            functions[function] += int(count)
    return by_kind, functions


def report(args, metrics, by_kind, functions, seconds):
    print("%s, %s, %s: %s" % (args.scenario, args.client, "wall time of every thread" if args.wall
                              else "GIL-holding samples", ", ".join(
                                  "%s=%.4g" % kv for kv in sorted(metrics.items()))))
    total = sum(functions.values())
    if not args.wall:
        print("GIL held %.0f%% of the run (%d samples in %.1f s at %d/s)"
              % (100.0 * total / max(1.0, seconds * args.rate), total, seconds, args.rate))
    for kind, layers in sorted(by_kind.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(layers.values())
        print("\n| %s (%d samples) | share |\n|:--|--:|" % (kind, n))
        for layer, count in layers.most_common():
            print("| %s | %.1f%% |" % (layer, 100.0 * count / n))
    print("\n| function (innermost counted frame) | share |\n|:--|--:|")
    for function, count in functions.most_common(args.top):
        print("| %s | %.1f%% |" % (function, 100.0 * count / total))


def main(argv=None):
    args = parse_args(argv)
    py_spy = ensure_py_spy()
    env, where = run.locate_syncws()
    if env is None:
        raise SystemExit("syncws is not usable: %s" % where)
    params = scaled_params(args.scale)
    os.makedirs(run.CACHE, exist_ok=True)
    certdir = tempfile.mkdtemp(prefix="certs-", dir=run.CACHE)
    certs = run.make_certs(certdir)
    server = run.start_server("auto", certs)
    try:
        params["ws"] = "ws://127.0.0.1:%d" % server.info["ws"]
        params["tcp"] = server.info["tcp"]
        if certs and server.info.get("wss"):
            params.update(ca=certs[0], wss="wss://127.0.0.1:%d" % server.info["wss"],
                          tls=server.info["tls"])
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "profile.txt")
            t0 = time.time()
            metrics = record(py_spy, args, params, env, out)
            seconds = time.time() - t0
            by_kind, functions = load(out, args.wall)
    finally:
        server.stop()
        shutil.rmtree(certdir, ignore_errors=True)
    report(args, metrics, by_kind, functions, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
