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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    assert re.search(r"^close +code=1000 reason='demo finished' was_clean=True$", out, re.M)
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


def start_cli(*args: str) -> subprocess.Popen:
    """The CLI with a stdin pipe the test keeps open, as a user at a terminal would."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "syncws", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen, timeout: float = 15) -> "tuple[int, str, str]":
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the CLI kept waiting for input after the connection ended: {err}")
    finally:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
    return proc.returncode, out, err


def test_interactive_client_exits_when_the_connection_is_refused_while_input_is_open():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = start_cli(f"ws://127.0.0.1:{port}/")
    # communicate() would close stdin; wait with it still open, as a terminal keeps it.
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        pass
    returncode, _, err = finish(proc, timeout=1)
    assert returncode == 1
    assert "* error:" in err and "code=1006" in err
    assert "the connection has ended; exiting" in err


def test_interactive_client_exits_when_the_server_goes_away(ws_server_factory):
    def script(conn):
        conn.send("reply: " + conn.recv(5))
        conn.close(1001, "going away")
        conn.expect_close()

    server = ws_server_factory(script)
    proc = start_cli(server.url)
    assert proc.stdin is not None
    proc.stdin.write("hello\n")
    proc.stdin.flush()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        pass
    returncode, out, err = finish(proc, timeout=1)
    assert returncode == 1
    assert out.splitlines() == ["< 'reply: hello'"]
    assert "* closed: code=1001 reason='going away'" in err
    assert "the connection has ended; exiting" in err


def test_demo_help_shows_help_instead_of_running_the_demo():
    result = run_cli("demo", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m syncws demo")
    assert "echo server listening" not in result.stdout


def test_serve_on_a_port_in_use_is_a_clean_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), timeout=15)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in result.stderr
    assert "in use" in result.stderr
