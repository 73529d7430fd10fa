"""Per-connection cost of syncws: N idle connections in one process (default 1,000).

Starts ``python -m syncws serve`` in a child process, opens N sockets with the default
executor, and reports threads and resident memory per connection, then closes them all and
checks every thread ended. Run: ``python bench/idle_connections.py [N]``.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time

import syncws


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count * 2 + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count * 2 + 100), hard))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "syncws", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"ws://127.0.0.1:{port}/"
        deadline = time.monotonic() + 15
        while True:
            try:
                syncws.connect(url, proxy=None, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(0.3)
        base_rss, base_threads = rss_kib(), threading.active_count()
        started = time.perf_counter()
        sockets = [syncws.connect(url, proxy=None, timeout=30) for _ in range(count)]
        opened = time.perf_counter() - started
        time.sleep(1.0)
        threads = threading.active_count() - base_threads
        per_conn = (rss_kib() - base_rss) / count
        sockets[count // 2].send("still alive?")
        assert sockets[count // 2].recv(10) == "still alive?"
        started = time.perf_counter()
        for ws in sockets:
            ws.close()
        assert all(ws.wait(30) for ws in sockets)
        closed = time.perf_counter() - started
        time.sleep(0.5)
        left = [t.name for t in threading.enumerate() if t.name.startswith("syncws-")]
        print(f"syncws {syncws.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print(f"{count} idle connections opened in {opened:.1f} s, closed in {closed:.1f} s")
        print(f"threads per connection: {threads / count:.1f}")
        print(f"resident memory per idle connection: {per_conn:.0f} KiB")
        print(f"thread stack: {threading.stack_size() or 'platform default'} "
              "(virtual; only touched pages count as resident)")
        print(f"syncws threads left after closing: {len(left)}")
        return 0 if not left else 1
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
