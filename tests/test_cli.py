"""The command line: ``python -m syncws demo | serve | URL``, run as a user would run it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

import syncws
from syncws.server import WebSocketServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "syncws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_demo_shows_open_echoes_and_a_clean_close():
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^open +ready_state=OPEN .*extensions='permessage-deflate", out, re.M)
    assert out.count("\nmessage ") == 3
    assert "message  'Hello, syncws!'" in out
    assert re.search(r"^close +code=1000 .*was_clean=True$", out, re.M)
    assert out.rstrip().endswith("done.")


def test_interactive_client_sends_lines_and_prints_messages(ws_server):
    result = run_cli(ws_server.url, "--no-compression", stdin="first line\nsecond\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< 'first line'", "< 'second'"]
    assert "* connected to " + ws_server.url in result.stderr
    assert "* closed: code=1000" in result.stderr and "clean=True" in result.stderr


def test_interactive_client_offers_protocols_and_headers(ws_server_factory):
    server = ws_server_factory(subprotocols=["chat"])
    result = run_cli(
        server.url, "--protocol", "chat", "--header", "X-Token: abc", stdin="hi\n"
    )
    assert result.returncode == 0, result.stderr
    assert "protocol='chat'" in result.stderr
    request = server.accepted(5).request
    assert request.header("X-Token") == "abc"
    assert request.header("Sec-WebSocket-Protocol") == "chat"


def test_interactive_client_reports_a_failed_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    result = run_cli(f"ws://127.0.0.1:{port}/", stdin="")
    assert result.returncode == 1
    assert "* error:" in result.stderr
    assert "code=1006" in result.stderr


def test_bad_header_argument_is_a_usage_error(ws_server):
    result = run_cli(ws_server.url, "--header", "no colon here")
    assert result.returncode == 2
    assert "Name: value" in result.stderr


def test_serve_runs_an_echo_server_until_interrupted():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncws", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                ws = syncws.connect(f"ws://127.0.0.1:{port}/", timeout=5, proxy=None)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        with ws:
            ws.send("ping?")
            assert ws.recv(5) == "ping?"
            assert ws.extensions.startswith("permessage-deflate")
    finally:
        proc.send_signal(2)  # Ctrl-C
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("serve did not stop on Ctrl-C")
    assert f"ws://127.0.0.1:{port}/" in proc.stdout.read()
