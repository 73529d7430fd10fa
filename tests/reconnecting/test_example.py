"""examples/reconnecting.py, run as a user runs it: the ticker survives its server being
stopped and restarted twice on the same port, prints the reconnect events, and exits cleanly
(status 0, no traceback) on Ctrl-C; its demo mode does the same on its own."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

from .test_reconnecting import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "reconnecting.py"


def environment() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Lines:
    """The example's stdout, line by line, as it prints them."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.seen: List[str] = []
        self._queue: "queue.Queue[str]" = queue.Queue()
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        """Skip lines until one starting with ``prefix`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no line starting with {prefix!r}; got {self.seen}"
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def rest(self) -> List[str]:
        self._thread.join(10)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return self.seen


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_survives_two_server_restarts_and_exits_cleanly_on_ctrl_c(ws_server_factory) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/"
    server = ws_server_factory(port=port)
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), url, "--interval", "0.2", "--max-delay", "1"],
        cwd=ROOT, env=environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )
    try:
        lines = Lines(proc)
        lines.expect("open: " + url)
        lines.expect("echo: tick 2")
        for _ in range(2):
            server.stop()
            lines.expect("lost: code 1006; reconnecting in")
            lines.expect("lost: code 1006; reconnecting in")  # refused while the server is down
            server = ws_server_factory(port=port)
            lines.expect("open: " + url)
            tick = int(lines.expect("echo: tick ").split()[-1])
            lines.expect(f"echo: tick {tick + 2}")  # ticking again
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        output = lines.rest()
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in stderr, stderr
    assert output.count("Ctrl-C: closing") == 1
    assert output[-1].startswith("closed: code 1000") and "not reconnecting" in output[-1]
    assert sum(line.startswith("open: ") for line in output) == 3
    ticks = [int(line.split()[-1]) for line in output if line.startswith("echo: tick ")]
    assert ticks == sorted(ticks)  # in order, across three connections


def test_demo_mode_restarts_its_own_server_twice() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--interval", "0.2", "--max-delay", "1"],
        cwd=ROOT, env=environment(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        encoding="utf-8", timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("open: ") for line in lines) == 3
    assert sum(line == "-- demo: server is back" for line in lines) == 2
    assert any(line.startswith("lost: code 1006; reconnecting in") for line in lines)
    assert lines[-1].startswith("closed: code 1000") and "Traceback" not in result.stderr
