"""One benchmark run: one client, one scenario, in its own process. Started by bench/run.py.

    python bench/worker.py CLIENT SCENARIO PARAMS_JSON

Prints one line ``BENCH_RESULT {json}`` on stdout: the scenario's metrics. Anything else on
stdout/stderr is ignored unless the run fails. Imports, connection set-up and warm-up happen
before the timed part; only ``connect`` times the handshakes themselves.

Every scenario checks what it received (counts, sizes, echoed contents) so a client cannot
"win" by dropping data.
"""

import json
import os
import resource
import selectors
import socket
import ssl
import sys
import threading
import time

perf = time.perf_counter
WAIT = 60.0  # seconds any single wait inside a run may take before the run is declared failed


class BenchError(Exception):
    pass


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def rtt_result(latencies, elapsed):
    latencies.sort()
    return {
        "rtt_per_s": len(latencies) / elapsed,
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
    }


def current_rss_kib():
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024.0
    except (OSError, ValueError, IndexError):
        return peak_rss_kib()


def peak_rss_kib():
    """Peak resident set size of this process, in KiB.

    On Linux this is VmHWM from /proc/self/status: getrusage()'s ru_maxrss is inherited from
    the parent across fork+exec, so a worker started by run.py (which has imported trustme
    and cryptography) would report the parent's peak whenever it is the larger."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform == "darwin" else float(rss)


def os_threads():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


class FaninMonitor:
    """Thread and memory accounting for fanin: call start() before opening the sockets,
    sample() whenever the sockets are all open, result() at the end."""

    def __init__(self, sockets):
        self.sockets = sockets

    def start(self):
        self.base_threads = threading.active_count()
        self.base_os_threads = os_threads()
        self.base_rss = current_rss_kib()
        self.peak_threads = self.base_threads
        self.peak_os_threads = self.base_os_threads

    def sample(self):
        self.peak_threads = max(self.peak_threads, threading.active_count())
        self.peak_os_threads = max(self.peak_os_threads, os_threads())

    def wait(self, event, timeout=WAIT):
        deadline = perf() + timeout
        while not event.wait(0.1):
            self.sample()
            if perf() > deadline:
                raise BenchError("timed out waiting for fan-in messages")
        self.sample()

    def result(self, messages, elapsed):
        peak = peak_rss_kib()
        return {
            "msgs_per_s": messages / elapsed,
            "peak_rss_mib": peak / 1024.0,
            "rss_per_socket_kib": max(0.0, peak - self.base_rss) / self.sockets,
            "threads_per_socket": (self.peak_threads - self.base_threads) / self.sockets,
            "os_threads_per_socket": (self.peak_os_threads - self.base_os_threads) / self.sockets,
        }


class Countdown:
    """Set ``event`` once ``n`` parties have called done()."""

    def __init__(self, n):
        self.left = n
        self.lock = threading.Lock()
        self.event = threading.Event()
        if n <= 0:
            self.event.set()

    def done(self):
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.event.set()


def wait_or_fail(event, what, timeout=WAIT):
    if not event.wait(timeout):
        raise BenchError("timed out waiting for " + what)


# --------------------------------------------------------------------------------------------
# Clients. Each implements the scenarios it supports as methods taking the parameters dict.
# --------------------------------------------------------------------------------------------


class Client:
    def __init__(self, p):
        self.p = p
        self.ctx = None
        if p.get("ca"):
            self.ctx = ssl.create_default_context(cafile=p["ca"])

    def url(self, path, secure=False):
        return (self.p["wss"] if secure else self.p["ws"]) + path

    def ssl_for(self, secure):
        return self.ctx if secure else None

    def send_big(self, ws, data):
        """send() of an upload's large messages (where a client may need to wait first)."""
        self.send(ws, data)

    # Generic blocking implementations on top of open/send/recv/close.
    def rtt(self, p):
        ws = self.open(self.url("/echo"))
        msg = "x" * p["rtt_size"]
        for _ in range(p["rtt_warmup"]):
            self.send(ws, msg)
            if self.recv(ws) != msg:
                raise BenchError("bad echo")
        n = p["rtt_count"]
        lat = []
        append = lat.append
        send, recv = self.send, self.recv
        t0 = perf()
        for _ in range(n):
            t = perf()
            send(ws, msg)
            data = recv(ws)
            append(perf() - t)
            if data != msg:
                raise BenchError("bad echo")
        elapsed = perf() - t0
        self.close(ws)
        return rtt_result(lat, elapsed)

    def small(self, p):
        ws = self.open(self.url("/echo"))
        msg = os.urandom(p["small_size"])
        for _ in range(p["small_warmup"]):
            self.send(ws, msg)
        for _ in range(p["small_warmup"]):
            self.recv(ws)
        n = p["small_count"]
        send, recv = self.send, self.recv
        t0 = perf()
        for _ in range(n):
            send(ws, msg)
        nbytes = 0
        for _ in range(n):
            nbytes += len(recv(ws))
        elapsed = perf() - t0
        if nbytes != n * len(msg):
            raise BenchError("received %d bytes, expected %d" % (nbytes, n * len(msg)))
        self.close(ws)
        return {"msgs_per_s": n / elapsed}

    def upload(self, p):
        ws = self.open(self.url("/count"))
        data = os.urandom(p["big_size"])

        def batch(count):
            for _ in range(count):
                self.send_big(ws, data)
            self.send(ws, "summary")
            summary = json.loads(self.recv(ws))
            if summary != {"messages": count, "bytes": count * len(data)}:
                raise BenchError("server counted %r" % (summary,))

        batch(p["big_warmup"])
        t0 = perf()
        batch(p["upload_count"])
        elapsed = perf() - t0
        self.close(ws)
        return {"MB_per_s": p["upload_count"] * len(data) / elapsed / 1e6}

    def download(self, p):
        ws = self.open(self.url("/download"))
        size = p["big_size"]

        def batch(count):
            self.send(ws, "%d %d" % (count, size))
            for _ in range(count):
                if len(self.recv(ws)) != size:
                    raise BenchError("bad message size")

        batch(p["big_warmup"])
        t0 = perf()
        batch(p["download_count"])
        elapsed = perf() - t0
        self.close(ws)
        return {"MB_per_s": p["download_count"] * size / elapsed / 1e6}

    def connect(self, p):
        result = {}
        for key, secure in (("ws_per_s", False), ("wss_per_s", True)):
            if secure and self.ctx is None:
                continue
            url = self.url("/echo", secure)
            self.close(self.open(url))  # warm-up: imports, TLS context, ...
            n = p["connect_count"]
            t0 = perf()
            for _ in range(n):
                self.close(self.open(url))
            result[key] = n / (perf() - t0)
        return result


# ---------------------------------------------------------------------------- websocket-client


class WebsocketClient(Client):
    def __init__(self, p):
        super().__init__(p)
        import websocket

        self.websocket = websocket

    def sslopt(self, url):
        return {"context": self.ctx} if url.startswith("wss:") and self.ctx else None

    def open(self, url):
        return self.websocket.create_connection(url, sslopt=self.sslopt(url), timeout=WAIT)

    def send(self, ws, data):
        if isinstance(data, str):
            ws.send(data)
        else:
            ws.send_binary(data)

    def recv(self, ws):
        return ws.recv()

    def close(self, ws):
        ws.close()

    def fanin(self, p):
        websocket = self.websocket
        n_sockets, n_msgs, size = p["fanin_sockets"], p["fanin_count"], p["fanin_size"]
        mon = FaninMonitor(n_sockets)
        mon.start()
        opened = Countdown(n_sockets)
        finished = Countdown(n_sockets)
        counts = [0] * n_sockets
        errors = []
        url = self.url("/download?n=%d&size=%d" % (n_msgs, size))

        def make(i):
            def on_message(app, message):
                if len(message) != size:
                    errors.append("bad size")
                counts[i] += 1
                if counts[i] == n_msgs:
                    finished.done()

            def on_error(app, error):
                errors.append(repr(error))

            return websocket.WebSocketApp(
                url, on_open=lambda app: opened.done(), on_message=on_message, on_error=on_error
            )

        apps = [make(i) for i in range(n_sockets)]
        threads = [threading.Thread(target=app.run_forever, daemon=True) for app in apps]
        for t in threads:
            t.start()
        wait_or_fail(opened.event, "connections to open")
        mon.sample()
        t0 = perf()
        for app in apps:
            app.send("go")
        mon.wait(finished.event)
        elapsed = perf() - t0
        if errors:
            raise BenchError(errors[0])
        result = mon.result(n_sockets * n_msgs, elapsed)
        # Tear-down is not measured; don't let a slow one (WebSocketApp.close() waits for the
        # run_forever loop) stretch the whole benchmark: the process exits right after.
        deadline = perf() + 2.0
        for app in apps:
            app.keep_running = False
            try:
                app.sock.send_close()
            except Exception:  # noqa: BLE001
                pass
        for t in threads:
            t.join(max(0.0, deadline - perf()))
        return result


class _OnThread:
    """A websocket-client connection run by a thread of its own (WebsocketClientThread)."""

    def __init__(self):
        self.ws = None
        self.opened = threading.Event()
        self.closed = threading.Event()


class WebsocketClientThread(WebsocketClient):
    """websocket-client doing the least an event API must do (connect scenario only).

    A thread of the connection's own connects and then reads, as an event API's reader thread
    does; the caller is told when the connection is open and when the server's Close came (two
    hand-offs between threads), and sends its Close from its own thread. No event objects, no
    dispatch, no keepalive: websocket-client's own code for everything else. What this column
    costs over websocket-client's is what any client pays for running a reader thread.
    """

    def open(self, url):
        conn = _OnThread()
        opcode_close = self.websocket.ABNF.OPCODE_CLOSE

        def read():
            conn.ws = ws = WebsocketClient.open(self, url)
            conn.opened.set()
            while ws.recv_frame().opcode != opcode_close:
                pass
            ws.shutdown()
            conn.closed.set()

        threading.Thread(target=read, daemon=True).start()
        wait_or_fail(conn.opened, "open")
        return conn

    def close(self, conn):
        conn.ws.send_close()
        wait_or_fail(conn.closed, "the server's Close")


# ------------------------------------------------------------------------------ websockets.sync


class WebsocketsSync(Client):
    def __init__(self, p):
        super().__init__(p)
        from websockets.sync.client import connect

        self._connect = connect

    def open(self, url):
        return self._connect(
            url,
            ssl=self.ctx if url.startswith("wss:") else None,
            compression=None,
            max_size=None,
            open_timeout=WAIT,
        )

    def send(self, ws, data):
        ws.send(data)

    def recv(self, ws):
        return ws.recv(WAIT)

    def close(self, ws):
        ws.close()

    def fanin(self, p):
        n_sockets, n_msgs, size = p["fanin_sockets"], p["fanin_count"], p["fanin_size"]
        mon = FaninMonitor(n_sockets)
        mon.start()
        finished = Countdown(n_sockets)
        errors = []
        url = self.url("/download?n=%d&size=%d" % (n_msgs, size))
        conns = [self.open(url) for _ in range(n_sockets)]

        def reader(ws):
            try:
                for _ in range(n_msgs):
                    if len(ws.recv(WAIT)) != size:
                        errors.append("bad size")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
            finished.done()

        threads = [threading.Thread(target=reader, args=(ws,), daemon=True) for ws in conns]
        for t in threads:
            t.start()
        mon.sample()
        t0 = perf()
        for ws in conns:
            ws.send("go")
        mon.wait(finished.event)
        elapsed = perf() - t0
        if errors:
            raise BenchError(errors[0])
        result = mon.result(n_sockets * n_msgs, elapsed)
        for ws in conns:
            ws.close()
        return result


# ----------------------------------------------------------------------------------------- syncws


# Same work as the other clients: no compression, binary messages as bytes (not Blob), no proxy
# from the environment. Everything else (limits, keepalive, max_queue) stays at its default.
SYNCWS_OPTIONS = dict(compression=False, binary_type="arraybuffer", proxy=None)
SYNCWS_MAX_BUFFERED = 64 << 20  # syncws's default max_buffered_amount


def send_within_limit(ws, data):
    """send() as a careful syncws user writes it: a socket whose buffered_amount exceeds
    max_buffered_amount fails the connection, so wait for the writer before going past it.
    run.py's upload batches are 64 MiB, the limit itself, so it rarely waits there;
    bench/profile.py's scaled-up batches need it."""
    if ws.buffered_amount + len(data) > SYNCWS_MAX_BUFFERED:
        ws.flush()
    ws.send(data)


class _Sock:
    """State of one syncws socket driven by handlers."""

    __slots__ = ("ws", "opened", "closed", "error", "on_data")

    def __init__(self):
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.error = None
        self.on_data = None


class Syncws(Client):
    """syncws, callback style: handlers via onmessage, no recv()."""

    executor_name = None

    def __init__(self, p):
        super().__init__(p)
        import syncws

        self.syncws = syncws
        self.options = SYNCWS_OPTIONS

    def executor(self):
        return None

    def make(self, url, on_data, **extra):
        """A WebSocket whose messages go to on_data(data); returns once it is open."""
        s = _Sock()

        def onopen(ev):
            s.opened.set()

        def onmessage(ev):
            s.on_data(ev.data)

        def onerror(ev):
            s.error = getattr(ev, "error", None) or getattr(ev, "message", "error")

        def onclose(ev):
            if not s.opened.is_set() and s.error is None:
                s.error = "closed before open: %s" % (getattr(ev, "code", "?"),)
            s.closed.set()
            s.opened.set()

        s.on_data = on_data
        options = dict(self.options)
        options.update(extra)
        s.ws = self.syncws.WebSocket(
            url,
            executor=self.executor(),
            ssl=self.ssl_for(url.startswith("wss:")),
            onopen=onopen,
            onmessage=onmessage,
            onerror=onerror,
            onclose=onclose,
            **options
        )
        return s

    def wait_open(self, s, timeout=WAIT):
        wait_or_fail(s.opened, "open", timeout)
        if s.closed.is_set():
            raise BenchError("connection failed: %s" % (s.error,))

    def finish(self, s):
        s.ws.close()
        s.ws.wait(10)

    def rtt(self, p):
        msg = "x" * p["rtt_size"]
        warm, n = p["rtt_warmup"], p["rtt_count"]
        total = warm + n
        lat = []
        state = {"i": 0, "t": 0.0, "t0": 0.0, "bad": False}
        done = threading.Event()

        def on_data(data):
            now = perf()
            if data != msg:
                state["bad"] = True
            i = state["i"]
            if i >= warm:
                lat.append(now - state["t"])
            i += 1
            state["i"] = i
            if i >= total:
                state["t1"] = now
                done.set()
                return
            if i == warm:
                state["t0"] = perf()
            state["t"] = perf()
            s.ws.send(msg)

        s = self.make(self.url("/echo"), on_data)
        self.wait_open(s)
        if warm == 0:
            state["t0"] = perf()
        state["t"] = perf()
        s.ws.send(msg)
        wait_or_fail(done, "round trips")
        if state["bad"]:
            raise BenchError("bad echo")
        elapsed = state["t1"] - state["t0"]
        self.finish(s)
        return rtt_result(lat, elapsed)

    def small(self, p):
        msg = os.urandom(p["small_size"])
        warm, n = p["small_warmup"], p["small_count"]
        state = {"n": 0, "bytes": 0, "target": warm}
        done = threading.Event()

        def on_data(data):
            state["n"] += 1
            state["bytes"] += len(data)
            if state["n"] == state["target"]:
                done.set()

        s = self.make(self.url("/echo"), on_data)
        self.wait_open(s)
        send = s.ws.send
        if warm:
            for _ in range(warm):
                send(msg)
            wait_or_fail(done, "warm-up echoes")
        done.clear()
        state.update(n=0, bytes=0, target=n)
        t0 = perf()
        for _ in range(n):
            send(msg)
        wait_or_fail(done, "echoes")
        elapsed = perf() - t0
        if state["bytes"] != n * len(msg):
            raise BenchError("received %d bytes, expected %d" % (state["bytes"], n * len(msg)))
        self.finish(s)
        return {"msgs_per_s": n / elapsed}

    def upload(self, p):
        data = os.urandom(p["big_size"])
        box = {}
        got = threading.Event()

        def on_data(msg):
            box["summary"] = msg
            got.set()

        s = self.make(self.url("/count"), on_data)
        self.wait_open(s)

        def batch(count):
            got.clear()
            for _ in range(count):
                send_within_limit(s.ws, data)
            s.ws.send("summary")
            wait_or_fail(got, "the server's summary")
            summary = json.loads(box["summary"])
            if summary != {"messages": count, "bytes": count * len(data)}:
                raise BenchError("server counted %r" % (summary,))

        batch(p["big_warmup"])
        t0 = perf()
        batch(p["upload_count"])
        elapsed = perf() - t0
        self.finish(s)
        return {"MB_per_s": p["upload_count"] * len(data) / elapsed / 1e6}

    def download(self, p):
        size = p["big_size"]
        state = {"n": 0, "target": 0, "bad": False}
        done = threading.Event()

        def on_data(data):
            if len(data) != size:
                state["bad"] = True
            state["n"] += 1
            if state["n"] == state["target"]:
                done.set()

        s = self.make(self.url("/download"), on_data)
        self.wait_open(s)

        def batch(count):
            done.clear()
            state.update(n=0, target=count)
            s.ws.send("%d %d" % (count, size))
            wait_or_fail(done, "downloaded messages")
            if state["bad"]:
                raise BenchError("bad message size")

        batch(p["big_warmup"])
        t0 = perf()
        batch(p["download_count"])
        elapsed = perf() - t0
        self.finish(s)
        return {"MB_per_s": p["download_count"] * size / elapsed / 1e6}

    def connect(self, p):
        result = {}
        for key, secure in (("ws_per_s", False), ("wss_per_s", True)):
            if secure and self.ctx is None:
                continue
            url = self.url("/echo", secure)

            def once():
                s = self.make(url, lambda data: None)
                self.wait_open(s)
                s.ws.close()
                if not s.ws.wait(10):
                    raise BenchError("close did not complete")

            once()
            n = p["connect_count"]
            t0 = perf()
            for _ in range(n):
                once()
            result[key] = n / (perf() - t0)
        return result

    def fanin(self, p):
        n_sockets, n_msgs, size = p["fanin_sockets"], p["fanin_count"], p["fanin_size"]
        mon = FaninMonitor(n_sockets)
        mon.start()
        finished = Countdown(n_sockets)
        counts = [0] * n_sockets
        errors = []
        url = self.url("/download?n=%d&size=%d" % (n_msgs, size))

        def make(i):
            def on_data(data):
                if len(data) != size:
                    errors.append("bad size")
                counts[i] += 1
                if counts[i] == n_msgs:
                    finished.done()

            return self.make(url, on_data)

        socks = [make(i) for i in range(n_sockets)]
        for s in socks:
            self.wait_open(s)
        mon.sample()
        t0 = perf()
        for s in socks:
            s.ws.send("go")
        mon.wait(finished.event)
        elapsed = perf() - t0
        if errors:
            raise BenchError(errors[0])
        result = mon.result(n_sockets * n_msgs, elapsed)
        for s in socks:
            s.ws.close()
        for s in socks:
            s.ws.wait(10)
        return result


class SyncwsInline(Syncws):
    """syncws with handlers run on the reader thread (InlineExecutor)."""

    def executor(self):
        return self.syncws.executors.InlineExecutor()


class SyncwsRecv(Client):
    """syncws, blocking style: syncws.connect() + send() + recv()."""

    def __init__(self, p):
        super().__init__(p)
        import syncws

        self.syncws = syncws
        self.options = SYNCWS_OPTIONS

    def open(self, url):
        return self.syncws.connect(
            url, timeout=WAIT, ssl=self.ssl_for(url.startswith("wss:")), **self.options
        )

    def send(self, ws, data):
        ws.send(data)

    def send_big(self, ws, data):
        send_within_limit(ws, data)

    def recv(self, ws):
        return ws.recv(timeout=WAIT)

    def close(self, ws):
        ws.close()
        if not ws.wait(10):
            raise BenchError("close did not complete")


# -------------------------------------------------------------------------------- websocket-rs


class WebsocketRs(Client):
    """websocket-rs's sync client (Rust tungstenite under PyO3), the way its README uses it.

    Its connection is one Rust object borrowed mutably by each call, so a send() while another
    thread sits in recv() fails; like websocket-client it therefore sends everything, then
    reads (`small`), and in fan-in each socket's thread sends its own "go", then reads.
    It takes no SSL context: it trusts the system store plus ``SSL_CERT_FILE``, which run.py
    points at the benchmark's CA."""

    def __init__(self, p):
        super().__init__(p)
        from websocket_rs.sync.client import connect

        self._connect = connect

    def open(self, url):
        return self._connect(url, connect_timeout=WAIT, receive_timeout=WAIT, tcp_nodelay=True)

    def send(self, ws, data):
        ws.send(data)

    def recv(self, ws):
        return ws.recv()

    def close(self, ws):
        ws.close()

    def fanin(self, p):
        n_sockets, n_msgs, size = p["fanin_sockets"], p["fanin_count"], p["fanin_size"]
        mon = FaninMonitor(n_sockets)
        mon.start()
        finished = Countdown(n_sockets)
        errors = []
        url = self.url("/download?n=%d&size=%d" % (n_msgs, size))
        conns = [self.open(url) for _ in range(n_sockets)]

        go = threading.Event()

        def reader(ws):
            try:
                go.wait()
                ws.send("go")  # from this thread: the connection is not shared while in recv()
                for _ in range(n_msgs):
                    if len(ws.recv()) != size:
                        errors.append("bad size")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
            finished.done()

        threads = [threading.Thread(target=reader, args=(ws,), daemon=True) for ws in conns]
        for t in threads:
            t.start()
        mon.sample()
        t0 = perf()
        go.set()
        mon.wait(finished.event)
        elapsed = perf() - t0
        if errors:
            raise BenchError(errors[0])
        result = mon.result(n_sockets * n_msgs, elapsed)
        for ws in conns:
            ws.close()
        return result


# -------------------------------------------------------------------------------------- picows


class _PicowsHandler:
    """The listener body for picows: counts whole messages, hands each payload to on_data.

    Payloads are taken as ``str`` (text) or ``bytes`` (binary): every other client hands the
    user such an object per message, so picows does the same work (its zero-copy memoryview
    is valid only inside the callback)."""

    def __init__(self, on_data):
        self.on_data = on_data
        self.parts = []
        self.text = False
        self.writable = None  # asyncio.Event, set while the transport accepts writes


def _picows_listener_class():
    import asyncio

    from picows import WSListener, WSMsgType

    class Listener(WSListener):
        def __init__(self, handler):
            super().__init__()
            self.handler = handler
            handler.writable = asyncio.Event()
            handler.writable.set()

        def on_ws_frame(self, transport, frame):
            kind = frame.msg_type
            if kind == WSMsgType.CLOSE:
                transport.disconnect()
                return
            if kind not in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                return
            h = self.handler
            if frame.fin and not h.parts:
                if kind == WSMsgType.TEXT:
                    h.on_data(frame.get_payload_as_utf8_text())
                else:
                    h.on_data(frame.get_payload_as_bytes())
                return
            if not h.parts:
                h.text = kind == WSMsgType.TEXT
            h.parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                data, h.parts = b"".join(h.parts), []
                h.on_data(data.decode() if h.text else data)

        # Flow control, as picows documents it: stop writing while the transport is paused.
        def pause_writing(self):
            self.handler.writable.clear()

        def resume_writing(self):
            self.handler.writable.set()

    return Listener


class Picows(Client):
    """picows (Cython, asyncio): callbacks on the event loop, uvloop when it is installed.

    picows's own benchmarks run on uvloop, so run.py installs it next to picows; picows also
    uses aiofastnet (a dependency) for its transports by default."""

    def __init__(self, p):
        super().__init__(p)
        import asyncio

        import picows

        self.asyncio = asyncio
        self.picows = picows
        self.Listener = _picows_listener_class()
        try:
            import uvloop
        except ImportError:
            uvloop = None
        self.uvloop = uvloop

    def run(self, coro):
        if self.uvloop is not None:
            return self.uvloop.run(coro)
        return self.asyncio.run(coro)

    async def open(self, url, on_data):
        handler = _PicowsHandler(on_data)
        transport, _ = await self.picows.ws_connect(
            lambda: self.Listener(handler), url,
            ssl_context=self.ctx if url.startswith("wss:") else None,
            websocket_handshake_timeout=WAIT, max_frame_size=1 << 30,
        )
        return transport, handler

    async def close(self, transport):
        transport.send_close(self.picows.WSCloseCode.OK)
        await self.asyncio.wait_for(transport.wait_disconnected(), WAIT)

    async def until(self, future, what):
        try:
            return await self.asyncio.wait_for(future, WAIT)
        except self.asyncio.TimeoutError:
            raise BenchError("timed out waiting for " + what) from None

    def send(self, transport, data):
        kind = self.picows.WSMsgType.TEXT if isinstance(data, str) else self.picows.WSMsgType.BINARY
        transport.send(kind, data.encode() if isinstance(data, str) else data)

    def rtt(self, p):
        return self.run(self._rtt(p))

    async def _rtt(self, p):
        msg = "x" * p["rtt_size"]
        wire = msg.encode()
        warm, n = p["rtt_warmup"], p["rtt_count"]
        total = warm + n
        lat = []
        state = {"i": 0, "t": 0.0, "t0": 0.0, "bad": False}
        done = self.asyncio.get_running_loop().create_future()
        TEXT = self.picows.WSMsgType.TEXT

        def on_data(data):
            now = perf()
            if data != msg:
                state["bad"] = True
            i = state["i"]
            if i >= warm:
                lat.append(now - state["t"])
            i += 1
            state["i"] = i
            if i >= total:
                state["t1"] = now
                done.set_result(None)
                return
            if i == warm:
                state["t0"] = perf()
            state["t"] = perf()
            transport.send(TEXT, wire)

        transport, _ = await self.open(self.url("/echo"), on_data)
        if warm == 0:
            state["t0"] = perf()
        state["t"] = perf()
        transport.send(TEXT, wire)
        await self.until(done, "round trips")
        if state["bad"]:
            raise BenchError("bad echo")
        await self.close(transport)
        return rtt_result(lat, state["t1"] - state["t0"])

    def small(self, p):
        return self.run(self._small(p))

    async def _small(self, p):
        loop = self.asyncio.get_running_loop()
        msg = os.urandom(p["small_size"])
        warm, n = p["small_warmup"], p["small_count"]
        state = {"n": 0, "bytes": 0, "target": warm, "done": loop.create_future()}

        def on_data(data):
            state["n"] += 1
            state["bytes"] += len(data)
            if state["n"] == state["target"]:
                state["done"].set_result(None)

        transport, handler = await self.open(self.url("/echo"), on_data)
        BINARY = self.picows.WSMsgType.BINARY

        async def batch(count):
            state.update(n=0, bytes=0, target=count, done=loop.create_future())
            send = transport.send
            for _ in range(count):
                if not handler.writable.is_set():
                    await handler.writable.wait()
                send(BINARY, msg)
            await self.until(state["done"], "echoes")

        await batch(warm)
        t0 = perf()
        await batch(n)
        elapsed = perf() - t0
        if state["bytes"] != n * len(msg):
            raise BenchError("received %d bytes, expected %d" % (state["bytes"], n * len(msg)))
        await self.close(transport)
        return {"msgs_per_s": n / elapsed}

    def upload(self, p):
        return self.run(self._upload(p))

    async def _upload(self, p):
        loop = self.asyncio.get_running_loop()
        data = os.urandom(p["big_size"])
        box = {"got": None}

        def on_data(msg):
            box["got"].set_result(msg)

        transport, handler = await self.open(self.url("/count"), on_data)
        BINARY = self.picows.WSMsgType.BINARY

        async def batch(count):
            box["got"] = loop.create_future()
            for _ in range(count):
                if not handler.writable.is_set():
                    await handler.writable.wait()
                transport.send(BINARY, data)
            self.send(transport, "summary")
            summary = json.loads(await self.until(box["got"], "the server's summary"))
            if summary != {"messages": count, "bytes": count * len(data)}:
                raise BenchError("server counted %r" % (summary,))

        await batch(p["big_warmup"])
        t0 = perf()
        await batch(p["upload_count"])
        elapsed = perf() - t0
        await self.close(transport)
        return {"MB_per_s": p["upload_count"] * len(data) / elapsed / 1e6}

    def download(self, p):
        return self.run(self._download(p))

    async def _download(self, p):
        loop = self.asyncio.get_running_loop()
        size = p["big_size"]
        state = {"n": 0, "target": 0, "bad": False, "done": None}

        def on_data(data):
            if len(data) != size:
                state["bad"] = True
            state["n"] += 1
            if state["n"] == state["target"]:
                state["done"].set_result(None)

        transport, _ = await self.open(self.url("/download"), on_data)

        async def batch(count):
            state.update(n=0, target=count, done=loop.create_future())
            self.send(transport, "%d %d" % (count, size))
            await self.until(state["done"], "downloaded messages")
            if state["bad"]:
                raise BenchError("bad message size")

        await batch(p["big_warmup"])
        t0 = perf()
        await batch(p["download_count"])
        elapsed = perf() - t0
        await self.close(transport)
        return {"MB_per_s": p["download_count"] * size / elapsed / 1e6}

    def connect(self, p):
        return self.run(self._connect(p))

    async def _connect(self, p):
        result = {}
        for key, secure in (("ws_per_s", False), ("wss_per_s", True)):
            if secure and self.ctx is None:
                continue
            url = self.url("/echo", secure)

            async def once():
                transport, _ = await self.open(url, lambda data: None)
                await self.close(transport)

            await once()
            n = p["connect_count"]
            t0 = perf()
            for _ in range(n):
                await once()
            result[key] = n / (perf() - t0)
        return result

    def fanin(self, p):
        return self.run(self._fanin(p))

    async def _fanin(self, p):
        n_sockets, n_msgs, size = p["fanin_sockets"], p["fanin_count"], p["fanin_size"]
        loop = self.asyncio.get_running_loop()
        mon = FaninMonitor(n_sockets)
        mon.start()
        counts = [0] * n_sockets
        left = {"sockets": n_sockets}
        finished = loop.create_future()
        errors = []
        url = self.url("/download?n=%d&size=%d" % (n_msgs, size))

        def make(i):
            def on_data(data):
                if len(data) != size:
                    errors.append("bad size")
                counts[i] += 1
                if counts[i] == n_msgs:
                    left["sockets"] -= 1
                    if left["sockets"] == 0:
                        finished.set_result(None)

            return self.open(url, on_data)

        opened = await self.asyncio.gather(*(make(i) for i in range(n_sockets)))
        mon.sample()
        t0 = perf()
        for transport, _ in opened:
            self.send(transport, "go")
        await self.until(finished, "fan-in messages")
        elapsed = perf() - t0
        mon.sample()
        if errors:
            raise BenchError(errors[0])
        result = mon.result(n_sockets * n_msgs, elapsed)
        for transport, _ in opened:
            transport.disconnect()
        return result


# ---------------------------------------------------------------------------------------- raw TCP


class RawTcp(Client):
    """The ceiling: plain sockets through the same server, same payload bytes, no framing."""

    def __init__(self, p):
        super().__init__(p)
        self.buf = bytearray(1 << 20)

    def sock(self, secure=False):
        s = socket.create_connection(("127.0.0.1", self.p["tls" if secure else "tcp"]), timeout=WAIT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            s = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        return s

    def read_exact(self, s, n):
        """Read and discard exactly n bytes; returns n."""
        view = memoryview(self.buf)
        left = n
        while left:
            got = s.recv_into(view, min(left, len(self.buf)))
            if not got:
                raise BenchError("connection closed early")
            left -= got
        return n

    def read_line(self, s):
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                raise BenchError("connection closed early")
            line += c
        return line

    def rtt(self, p):
        s = self.sock()
        s.sendall(b"echo\n")
        msg = b"x" * p["rtt_size"]
        size = len(msg)
        buf = bytearray(size)
        view = memoryview(buf)

        def once():
            s.sendall(msg)
            got = 0
            while got < size:
                k = s.recv_into(view[got:])
                if not k:
                    raise BenchError("connection closed early")
                got += k

        for _ in range(p["rtt_warmup"]):
            once()
        lat = []
        n = p["rtt_count"]
        t0 = perf()
        for _ in range(n):
            t = perf()
            once()
            lat.append(perf() - t)
        elapsed = perf() - t0
        if bytes(buf) != msg:
            raise BenchError("bad echo")
        s.close()
        return rtt_result(lat, elapsed)

    def small(self, p):
        s = self.sock()
        s.sendall(b"echo\n")
        msg = os.urandom(p["small_size"])
        warm, n = p["small_warmup"], p["small_count"]
        for _ in range(warm):
            s.sendall(msg)
        self.read_exact(s, warm * len(msg))
        sendall = s.sendall
        t0 = perf()
        for _ in range(n):
            sendall(msg)
        self.read_exact(s, n * len(msg))
        elapsed = perf() - t0
        s.close()
        return {"msgs_per_s": n / elapsed}

    def upload(self, p):
        s = self.sock()
        data = os.urandom(p["big_size"])

        def batch(count):
            s.sendall(b"count %d\n" % (count * len(data)))
            for _ in range(count):
                s.sendall(data)
            line = self.read_line(s)
            if line != b"OK %d\n" % (count * len(data)):
                raise BenchError("server counted %r" % (line,))

        batch(p["big_warmup"])
        t0 = perf()
        batch(p["upload_count"])
        elapsed = perf() - t0
        s.close()
        return {"MB_per_s": p["upload_count"] * len(data) / elapsed / 1e6}

    def download(self, p):
        s = self.sock()
        size = p["big_size"]

        def batch(count):
            s.sendall(b"download %d %d\n" % (count * size, size))
            self.read_exact(s, count * size)

        batch(p["big_warmup"])
        t0 = perf()
        batch(p["download_count"])
        elapsed = perf() - t0
        s.close()
        return {"MB_per_s": p["download_count"] * size / elapsed / 1e6}

    def connect(self, p):
        result = {}
        for key, secure in (("ws_per_s", False), ("wss_per_s", True)):
            if secure and self.ctx is None:
                continue
            self.sock(secure).close()
            n = p["connect_count"]
            t0 = perf()
            for _ in range(n):
                self.sock(secure).close()
            result[key] = n / (perf() - t0)
        return result

    def fanin(self, p):
        """One thread and a selector for all sockets: the ceiling, not a thread-per-socket model."""
        n_sockets, n_msgs, size = p["fanin_sockets"], p["fanin_count"], p["fanin_size"]
        mon = FaninMonitor(n_sockets)
        mon.start()
        socks = [self.sock() for _ in range(n_sockets)]
        sel = selectors.DefaultSelector()
        left = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            left[s] = n_msgs * size
        view = memoryview(self.buf)
        cmd = b"download %d %d\n" % (n_msgs * size, size)
        mon.sample()
        t0 = perf()
        for s in socks:
            s.send(cmd)
        remaining = n_sockets
        deadline = t0 + WAIT
        while remaining:
            for key, _ in sel.select(1.0):
                s = key.fileobj
                k = s.recv_into(view)
                if not k:
                    raise BenchError("connection closed early")
                left[s] -= k
                if left[s] <= 0:
                    sel.unregister(s)
                    remaining -= 1
            if perf() > deadline:
                raise BenchError("timed out")
        elapsed = perf() - t0
        mon.sample()
        result = mon.result(n_sockets * n_msgs, elapsed)
        for s in socks:
            s.close()
        return result


CLIENTS = {
    "syncws": Syncws,
    "syncws-recv": SyncwsRecv,
    "syncws-inline": SyncwsInline,
    "websocket-client": WebsocketClient,
    "websocket-client-thread": WebsocketClientThread,
    "websockets": WebsocketsSync,
    "websocket-rs": WebsocketRs,
    "picows": Picows,
    "raw-tcp": RawTcp,
}


def main(argv):
    client_name, scenario, params = argv[1], argv[2], json.loads(argv[3])
    client = CLIENTS[client_name](params)
    method = getattr(client, scenario, None)
    if method is None:
        raise SystemExit("%s does not implement %s" % (client_name, scenario))
    result = method(params)
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    # Leftover non-daemon threads of a client must not keep a finished run alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
