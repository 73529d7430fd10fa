"""Real proxies and echo servers on 127.0.0.1 for tests, as context managers.

* :func:`http_proxy` — Debian's ``tinyproxy`` (HTTP CONNECT), optionally with Basic auth.
* :func:`https_proxy` — the same tinyproxy behind nginx's ``stream`` module terminating TLS
  (tinyproxy cannot speak TLS itself), with a certificate from a fresh ``trustme`` CA.
* :func:`socks5_proxy` — Dante (``danted``) without auth; ``microsocks`` with username/password
  auth (Dante's ``username`` method checks the system's password database, so it would need a
  real system user; microsocks takes the credentials on its command line). ``server=`` picks
  one explicitly, e.g. to read microsocks' log of the destinations it was asked for.
* :func:`socks4_proxy` — Dante, which speaks SOCKS4 and SOCKS5 on the same port (no SOCKS4a).
* :func:`echo_server` — a threaded TCP (or TLS) echo server recording what it received.

Each yields a :class:`RunningProxy` / :class:`EchoServer` and stops its processes (the whole
process group: Dante forks helpers) on exit. A missing binary skips the test with the apt
package to install. CI needs: ``apt-get install tinyproxy dante-server microsocks nginx
libnginx-mod-stream`` and ``pip install python-socks trustme``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple
from urllib.parse import quote

import pytest

HOST = "127.0.0.1"
_START_TIMEOUT = 10.0
_SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

Auth = Optional[Tuple[str, str]]
_OWN = object()  # "the proxy's own credentials" default of RunningProxy.url



#: Credentials for the proxies that take them (tinyproxy accepts only [-._A-Za-z0-9] in
#: BasicAuth; the SOCKS pair needs percent-encoding in a URL, which microsocks accepts).
PROXY_AUTH = ("alice", "s3cret-pw")
SOCKS_AUTH = ("bob@corp", "p@ss:w/rd %")

@dataclass(frozen=True)
class RunningProxy:
    """A proxy listening on ``host:port``; ``url()`` builds URLs for it."""

    scheme: str
    host: str
    port: int
    auth: Auth = None  #: credentials the proxy requires
    log_path: Optional[Path] = None  #: where the proxy writes its log
    #: for ``https`` proxies: a client context trusting the proxy's certificate
    tls_context: Optional[ssl.SSLContext] = field(default=None, compare=False)

    def url(self, auth: object = _OWN, *, scheme: Optional[str] = None) -> str:
        """``scheme://[user:password@]host:port``, percent-encoding the credentials.

        ``auth`` defaults to the proxy's own credentials; pass ``None`` for none or another
        ``(user, password)`` pair to try wrong ones.
        """
        creds = self.auth if auth is _OWN else auth
        userinfo = ""
        if creds is not None:
            user, password = creds  # type: ignore[misc]
            userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return f"{scheme or self.scheme}://{userinfo}{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _binary(name: str, package: str) -> str:
    path = shutil.which(name, path=_SBIN)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return path


@contextmanager
def _daemon(argv: Sequence[str], port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    """Run ``argv`` in the foreground in its own process group until ``port`` accepts."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_listening(proc, port, log_path)
        yield proc
    finally:
        _stop(proc)


def _wait_listening(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args[0]} exited with {proc.returncode}:\n{log_path.read_text()}"
            )
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.args[0]} did not listen on port {port}")
            time.sleep(0.02)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (leader and forked helpers), then SIGKILL what lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# -- HTTP CONNECT: tinyproxy ----------------------------------------------------------------


@contextmanager
def http_proxy(*, auth: Auth = None) -> Iterator[RunningProxy]:
    """tinyproxy on 127.0.0.1 accepting CONNECT to any port; Basic auth when ``auth`` is set.

    tinyproxy's BasicAuth only accepts user names and passwords made of letters, digits,
    ``-``, ``.`` and ``_``. No ``ConnectPort`` line means CONNECT to every port (Debian's stock
    /etc/tinyproxy/tinyproxy.conf allows only 443 and 563, so it is not used here).
    """
    exe = _binary("tinyproxy", "tinyproxy")
    with tempfile.TemporaryDirectory(prefix="syncws-tinyproxy-") as tmp:
        port = free_port()
        lines = [
            f"Port {port}",
            f"Listen {HOST}",
            f"Allow {HOST}",
            "Timeout 30",
            "MaxClients 64",
            "LogLevel Connect",
            "DisableViaHeader Yes",
        ]
        if auth is not None:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        conf = Path(tmp, "tinyproxy.conf")
        conf.write_text("\n".join(lines) + "\n")
        log = Path(tmp, "tinyproxy.log")
        with _daemon([exe, "-d", "-c", str(conf)], port, log):
            yield RunningProxy("http", HOST, port, auth, log)


@contextmanager
def https_proxy(*, auth: Auth = None) -> Iterator[RunningProxy]:
    """tinyproxy behind nginx (``stream`` + ``ssl``): an ``https://`` proxy on 127.0.0.1.

    The certificate, for ``127.0.0.1`` and ``localhost``, comes from a trustme CA made here;
    ``tls_context`` of the result trusts it.
    """
    exe = _binary("nginx", "nginx libnginx-mod-stream")
    trustme = pytest.importorskip("trustme")
    module = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
    with http_proxy(auth=auth) as inner, tempfile.TemporaryDirectory(
        prefix="syncws-nginx-"
    ) as tmp:
        ca = trustme.CA()
        pem = Path(tmp, "proxy.pem")
        ca.issue_cert(HOST, "localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
        port = free_port()
        conf = Path(tmp, "nginx.conf")
        conf.write_text(
            (f"load_module {module};\n" if module.exists() else "")
            + f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log stderr info;
events {{ worker_connections 64; }}
stream {{
    server {{
        listen {HOST}:{port} ssl;
        ssl_certificate {pem};
        ssl_certificate_key {pem};
        proxy_pass {HOST}:{inner.port};
    }}
}}
"""
        )
        log = Path(tmp, "nginx.log")
        with _daemon([exe, "-p", tmp, "-c", str(conf), "-e", "stderr"], port, log):
            context = ssl.create_default_context()
            ca.configure_trust(context)
            yield RunningProxy("https", HOST, port, auth, inner.log_path, context)


# -- SOCKS: Dante and microsocks ------------------------------------------------------------


@contextmanager
def _dante() -> Iterator[RunningProxy]:
    exe = _binary("danted", "dante-server")
    with tempfile.TemporaryDirectory(prefix="syncws-dante-") as tmp:
        port = free_port()
        lines = [
            "logoutput: stderr",
            f"internal: {HOST} port = {port}",
            "external: lo",  # Dante wants an interface (or address) for outgoing connections
            "clientmethod: none",
            "socksmethod: none",
        ]
        if os.geteuid() == 0:
            lines.append("user.unprivileged: nobody")  # Dante drops root for its helpers
        lines += [
            "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
            "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
        ]
        conf = Path(tmp, "danted.conf")
        conf.write_text("\n".join(lines) + "\n")
        log = Path(tmp, "danted.log")
        argv = [exe, "-f", str(conf), "-p", str(Path(tmp, "danted.pid"))]
        with _daemon(argv, port, log):
            yield RunningProxy("socks5", HOST, port, None, log)


@contextmanager
def _microsocks(auth: Auth) -> Iterator[RunningProxy]:
    exe = _binary("microsocks", "microsocks")
    with tempfile.TemporaryDirectory(prefix="syncws-microsocks-") as tmp:
        port = free_port()
        argv = [exe, "-i", HOST, "-p", str(port)]
        if auth is not None:
            argv += ["-u", auth[0], "-P", auth[1]]
        log = Path(tmp, "microsocks.log")
        # microsocks logs "client[N] 127.0.0.1: connected to HOST:PORT" with the destination
        # as the client sent it: a name for socks5h, an address for socks5.
        with _daemon(argv, port, log):
            yield RunningProxy("socks5", HOST, port, auth, log)


@contextmanager
def socks5_proxy(*, auth: Auth = None, server: Optional[str] = None) -> Iterator[RunningProxy]:
    """A SOCKS5 server on 127.0.0.1: Dante without auth, microsocks with it (or ``server=``)."""
    server = server or ("dante" if auth is None else "microsocks")
    if server == "dante":
        if auth is not None:
            raise ValueError("the Dante fixture has no username auth; use server='microsocks'")
        with _dante() as proxy:
            yield proxy
    elif server == "microsocks":
        with _microsocks(auth) as proxy:
            yield proxy
    else:
        raise ValueError(f"unknown SOCKS server {server!r}")


@contextmanager
def socks4_proxy() -> Iterator[RunningProxy]:
    """Dante on 127.0.0.1 as a ``socks4://`` proxy (the same daemon also speaks SOCKS5)."""
    with _dante() as proxy:
        yield RunningProxy("socks4", proxy.host, proxy.port, None, proxy.log_path)


# -- targets --------------------------------------------------------------------------------


class EchoServer:
    """Echoes every connection's bytes back; ``received`` keeps all it got, per connection."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self._tls = tls
        self._listener = socket.create_server((HOST, 0))
        self.host = HOST
        self.port: int = self._listener.getsockname()[1]
        self.received: List[bytearray] = []
        self._conns: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._spawn(self._accept_loop)

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns.append(conn)
                record = bytearray()
                self.received.append(record)
            self._spawn(self._echo, conn, record)

    def _echo(self, conn: socket.socket, record: bytearray) -> None:
        sock = conn
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(conn, server_side=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                record += data
                sock.sendall(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            sock.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, threads = list(self._conns), list(self._threads)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux; close() may not
        except OSError:
            pass
        self._listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout=5)

    def all_received(self) -> bytes:
        with self._lock:
            return b"".join(bytes(r) for r in self.received)


@contextmanager
def echo_server(tls: Optional[ssl.SSLContext] = None) -> Iterator[EchoServer]:
    """An :class:`EchoServer` on 127.0.0.1 (TLS with ``tls``, a server-side context)."""
    server = EchoServer(tls)
    try:
        yield server
    finally:
        server.close()
