"""Autobahn|Testsuite driver for syncws: the echo client the fuzzing server tests.

Run from the repository root, with ``wstest -m fuzzingserver`` listening (see README.md)::

    python tests/autobahn/client.py                     # every case the server has
    python tests/autobahn/client.py --cases '12.*,13.1.*'   # only matching case ids
    python tests/autobahn/client.py --summary-only      # just print the last report

Each case is one connection to ``/runCase?case=N&agent=AGENT`` that echoes every message back
(text as text, binary as binary) until the server closes it, through the public callback API,
as a browser test page would. Then ``/updateReports`` makes the server write its reports, and
this script prints a per-group summary of ``index.json`` from the report directory and exits
non-zero if any case FAILED (or, with ``--strict``, ended NON-STRICT or timed out here).
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the working tree's syncws

import syncws  # noqa: E402
from syncws.executors import InlineExecutor  # noqa: E402

DEFAULT_CONFIG = os.path.join(HERE, "fuzzingserver.json")
#: The order the server's report uses; anything else is counted after these.
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

# Options for every connection: direct (never through an environment proxy), no keepalive pings
# of our own in the server's wire log, no inbound limit (group 9 sends 16 MiB messages).
COMMON: Dict[str, Any] = dict(proxy=None, ping_interval=None, max_message_size=None, open_timeout=10.0)


def _url(base: str, path: str, **params: object) -> str:
    query = urllib.parse.urlencode(params)
    return f"{base.rstrip('/')}{path}" + (f"?{query}" if query else "")


def _query(base: str, path: str, **params: object) -> str:
    """One text message from a command endpoint (/getCaseCount, /getCaseInfo)."""
    ws = syncws.connect(_url(base, path, **params), timeout=10.0, compression=False, **COMMON)
    try:
        return str(ws.recv(timeout=10.0))
    finally:
        ws.close()
        ws.wait(10.0)


def case_count(base: str) -> int:
    return int(json.loads(_query(base, "/getCaseCount")))


def case_id(base: str, number: int) -> str:
    return json.loads(_query(base, "/getCaseInfo", case=number))["id"]


def run_case(
    base: str, number: int, agent: str, timeout: float, executor: object = None
) -> Tuple[str, float]:
    """Run case ``number``; return how it ended here (for the log) and its duration."""
    closes: List[syncws.CloseEvent] = []
    errors: List[syncws.ErrorEvent] = []

    def echo(event: syncws.MessageEvent) -> None:
        event.target.send(event.data)

    started = time.monotonic()
    ws = syncws.WebSocket(
        _url(base, "/runCase", case=number, agent=agent),
        onmessage=echo,
        onclose=closes.append,
        onerror=errors.append,
        executor=executor,
        binary_type="arraybuffer",
        compression=True,
        close_timeout=10.0,
        **COMMON,
    )
    if not ws.wait(timeout):
        ws.close()  # starts the closing handshake; close_timeout bounds it
        ws.wait(15.0)
        return "TIMEOUT", time.monotonic() - started
    close = closes[0]
    note = f"close {close.code}{'' if close.was_clean else ' (not clean)'}"
    if errors:
        note += f"; error: {errors[0].error!r}"
    return note, time.monotonic() - started


def update_reports(base: str, agent: str) -> None:
    ws = syncws.WebSocket(_url(base, "/updateReports", agent=agent), compression=False, **COMMON)
    # Writing the HTML and JSON reports of 517 cases takes the server a while.
    if not ws.wait(300.0):
        ws.close()
        ws.wait(15.0)
        raise SystemExit("the server did not finish /updateReports in time")


def start_server(wstest: str, url: str, log_path: str) -> subprocess.Popen:
    """Start ``wstest -m fuzzingserver`` with the config beside this file; wait for its port."""
    parsed = urllib.parse.urlsplit(url)
    log = open(log_path, "wb")
    # --webport 0: no report web server on port 8080 (the reports are files in outdir).
    server = subprocess.Popen(
        [wstest, "-m", "fuzzingserver", "-s", DEFAULT_CONFIG, "--webport", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"wstest exited with {server.returncode}; see {log_path}")
        try:
            socket.create_connection((parsed.hostname, parsed.port), timeout=1.0).close()
            return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit(f"wstest did not listen on port {parsed.port} within 60 s; see {log_path}")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(10.0)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def summarize(outdir: str, agent: str) -> Tuple[collections.Counter, int]:
    """Print behaviours per group from ``index.json``; return the overall counts and how many
    cases have a bad closing behaviour (anything but OK or INFORMATIONAL, e.g. WRONG CODE)."""
    with open(os.path.join(outdir, "index.json"), encoding="utf-8") as f:
        results = json.load(f)[agent]
    groups: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    durations: Dict[str, float] = collections.defaultdict(float)
    notable: List[str] = []
    for case in sorted(results, key=lambda case: tuple(int(part) for part in case.split("."))):
        result = results[case]
        counts = groups[case.split(".")[0]]
        counts[result["behavior"]] += 1
        bad_close = result["behaviorClose"] not in ("OK", "INFORMATIONAL")
        counts["close not OK"] += bad_close
        durations[case.split(".")[0]] += result.get("duration", 0) / 1000.0  # reported in ms
        if result["behavior"] not in ("OK", "INFORMATIONAL") or bad_close:
            notable.append(
                f"  {case}: {result['behavior']} (close: {result['behaviorClose']}), "
                f"report {os.path.join(outdir, result['reportfile'])}"
            )
    total: collections.Counter = sum(groups.values(), collections.Counter())
    names = list(BEHAVIORS) + sorted(set(total) - set(BEHAVIORS) - {"close not OK"}) + ["close not OK"]
    rows = [(group, groups[group], durations[group]) for group in sorted(groups, key=int)]
    rows.append(("all", total, sum(durations.values())))
    print(f"{'group':>5} " + " ".join(f"{n:>13}" for n in names) + f" {'seconds':>9}")
    for label, counts, seconds in rows:
        print(f"{label:>5} " + " ".join(f"{counts[n]:>13}" for n in names) + f" {seconds:>9.2f}")
    if notable:
        print("Cases neither OK nor INFORMATIONAL:")
        print("\n".join(notable))
    return total, total["close not OK"]


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        config = json.load(f)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=config["url"], help="fuzzing server (default: %(default)s)")
    parser.add_argument("--agent", default="syncws", help="name in the reports (default: %(default)s)")
    parser.add_argument(
        "--cases",
        default="*",
        help="comma-separated case-id patterns to run, e.g. '9.*,12.1.*' (default: all)",
    )
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=120.0,
        help="seconds before a case is abandoned (default: %(default)s)",
    )
    parser.add_argument(
        "--executor",
        choices=("thread", "inline"),
        default="thread",
        help="where handlers run: syncws's dispatcher thread or InlineExecutor (default: %(default)s)",
    )
    parser.add_argument(
        "--outdir", default=config["outdir"], help="the server's report directory (default: %(default)s)"
    )
    parser.add_argument(
        "--wstest",
        metavar="PATH",
        help="start this wstest as the fuzzing server (with fuzzingserver.json) and stop it at the end",
    )
    parser.add_argument(
        "--server-log",
        default=os.path.join(tempfile.gettempdir(), "autobahn-fuzzingserver.log"),
        help="where --wstest's output goes (default: %(default)s)",
    )
    parser.add_argument(
        "--summary-only", action="store_true", help="only print the summary of the last reports"
    )
    parser.add_argument("--strict", action="store_true", help="also fail on NON-STRICT and local timeouts")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    timeouts: List[str] = []
    server = None
    if args.wstest and not args.summary_only:
        server = start_server(args.wstest, args.url, args.server_log)
    try:
        if not args.summary_only:
            run_all(args, timeouts)
    finally:
        if server is not None:
            stop_server(server)
    total, bad_closes = summarize(args.outdir, args.agent)
    bad = total["FAILED"] + bad_closes + (total["NON-STRICT"] + len(timeouts) if args.strict else 0)
    return 1 if bad else 0


def run_all(args: argparse.Namespace, timeouts: List[str]) -> None:
    """Run the selected cases, then have the server write its reports."""
    count = case_count(args.url)
    patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
    ids = {n: case_id(args.url, n) for n in range(1, count + 1)}
    numbers = [n for n in ids if any(fnmatch.fnmatchcase(ids[n], p) for p in patterns)]
    print(f"running {len(numbers)} of {count} cases against {args.url} as {args.agent!r}")
    executor = InlineExecutor() if args.executor == "inline" else None
    started = time.monotonic()
    for number in numbers:
        note, seconds = run_case(args.url, number, args.agent, args.case_timeout, executor)
        print(f"case {ids[number]:<9} ({number:>3}/{count}) {seconds:7.3f}s  {note}", flush=True)
        if note == "TIMEOUT":
            timeouts.append(ids[number])
    update_reports(args.url, args.agent)
    print(f"ran {len(numbers)} cases in {time.monotonic() - started:.1f}s")
    if timeouts:
        print(f"timed out here: {', '.join(timeouts)}")


if __name__ == "__main__":
    sys.exit(main())
