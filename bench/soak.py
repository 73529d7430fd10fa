"""Chaos soak: many syncws connections through a fault-injecting proxy, every message checked.

    python bench/soak.py --duration 1800               # the long run: 100 connections, 30 min
    python bench/soak.py                               # 10 minutes
    python bench/soak.py --duration 60 --write-readme  # CI's run; also writes bench/README.md

What runs, all on 127.0.0.1:

- syncws's own echo server (``syncws.server``, permessage-deflate accepted) in a child
  process, on a ws port and a wss port (a CA and a certificate made by ``trustme`` at start);
- ``bench/chaos_proxy.py`` in a child process in front of both ports: latency and jitter,
  bandwidth caps, stalls (some long enough to trip keepalive), half-closes, resets and refused
  connections, from a seeded random generator, counted per kind;
- in this process, ``--connections`` logical clients (ws and wss, compression on and off,
  ``blob`` and ``arraybuffer``, default executor and a shared pool, three keepalive settings),
  each sending text and binary messages of a few bytes to about 1 MiB, at a few messages a
  second, each one a ``syncws.ReconnectingWebSocket`` that reconnects after every lost
  connection.

Every message carries its client's number, a sequence number and a BLAKE2b digest of its body
(which covers the ids too). The echo of a message is checked against the record of what was
sent. The ledger, per message:

- **delivered**: its echo arrived, intact, exactly once, on the connection it was last sent on;
- **interrupted**: the connection it was sent on delivered its ``close`` event (preceded by
  ``error`` when it failed) before the echo. It is accounted for by that event and is sent
  again, with the same ids, on the next connection; it must then be delivered exactly once;
- **lost**: its echo never came although no ``close`` event accounts for it: a later message
  of the same connection was echoed first (the echo server answers in order, so an earlier one
  was dropped), or it was still waiting when the drain at the end ran out;
- **duplicated**: a second echo of a message already delivered (across connections too);
- **corrupted**: an echo that does not parse, has the wrong type, length or digest, or names a
  message that was never sent;
- **stray**: an echo that arrived while no connection was open, or on a connection its message
  was not (last) sent on: an event delivered out of its connection's life cycle.

At the end the proxy calms down (no more disruptive faults), clients stop sending new messages
and resend what was interrupted until nothing is outstanding (``--drain`` seconds at most),
then close with 1000. A short warm-up run first (the same soak, ``--warmup`` seconds) lets
thread pools, TLS, zlib and the allocator reach their working size; then the threads, file
descriptors and resident memory are measured (the baseline), the soak runs, and they are
measured again once every connection has closed. Threads and descriptors must come back to the
baseline exactly; resident memory within ``--rss-tolerance`` MiB (``malloc_trim`` is called
before each measurement where glibc has it, so freed heap returns to the system).

The exit status is 1 on any lost, duplicated, corrupted or stray message, any life-cycle
violation, a drain that did not finish, or a leak; 0 otherwise. ``--write-readme`` puts the
summary table into ``bench/README.md`` (between the ``soak`` markers, replacing the previous one).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import ctypes.util
import gc
import hashlib
import inspect
import json
import math
import os
import platform
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple, Union

import syncws

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1024 * 1024
Data = Union[str, bytes]

# (share, smallest, largest) body sizes in bytes, log-uniform within each class.
SIZE_CLASSES = ((0.55, 1, 256), (0.30, 256, 64 * 1024), (0.12, 64 * 1024, 512 * 1024), (0.03, 512 * 1024, MiB))
# Keepalive settings (ping_interval, ping_timeout) the clients cycle through: the short ones die
# in a long stall (the proxy's long stalls last 8-15 s), the default one rides it out.
KEEPALIVES = ((2.0, 3.0), (5.0, 5.0), (20.0, 20.0))
BINARY_MAGIC = b"SOAK"
BINARY_HEADER = struct.Struct(">4sIQ8s")  # magic, client, sequence, digest


# -- payloads and the message format ---------------------------------------------------------


class Payloads:
    """Pools that message bodies are cut from: random bytes, compressible bytes, Unicode text.

    A body is named by ``(kind, offset, size)``, so a message can be rebuilt for a resend
    without keeping it.
    """

    def __init__(self, rng: random.Random) -> None:
        size = MiB + 64 * 1024
        self.random = bytes(rng.getrandbits(8) for _ in range(4096)) * (size // 4096 + 1)
        self.random = hashlib.shake_256(self.random).digest(size)  # not periodic
        words = ["alpha", "beta", "gamma", '"id":', "{", "}", "[1,2,3]", "value", "syncws", "\n"]
        self.compressible = "".join(rng.choice(words) for _ in range(size // 4)).encode()[:size]
        alphabet = "abcdefghij klmnop ÄÖÜ éèê ß ∑∂ 漢字 カタカナ 😀🚀 \u0301\u200d\U0001f468"
        self.text = "".join(rng.choice(alphabet) for _ in range(size))

    def body(self, kind: str, offset: int, size: int) -> Data:
        if kind == "text":
            return self.text[offset : offset + size]
        pool = self.random if kind == "random" else self.compressible
        return pool[offset : offset + size]

    def draw(self, rng: random.Random) -> Tuple[str, int, int]:
        """A random ``(kind, offset, size)``."""
        pick = rng.random()
        for share, low, high in SIZE_CLASSES:
            if pick < share:
                break
            pick -= share
        size = int(low * (high / low) ** rng.random())
        kind = rng.choice(("text", "random", "compressible"))
        return kind, rng.randrange(0, 64 * 1024), size


def digest(client: int, seq: int, body: bytes) -> bytes:
    """The checksum a message carries: BLAKE2b-64 over the ids and the body."""
    return hashlib.blake2b(struct.pack(">IQ", client, seq) + body, digest_size=8).digest()


def encode_message(client: int, seq: int, body: Data) -> Tuple[Data, bytes]:
    """The message to send and its digest. Text: ``client:seq:digest|body``; binary: a header."""
    if isinstance(body, str):
        check = digest(client, seq, body.encode("utf-8"))
        return f"{client:x}:{seq:x}:{check.hex()}|{body}", check
    check = digest(client, seq, body)
    return BINARY_HEADER.pack(BINARY_MAGIC, client, seq, check) + body, check


def decode_message(data: Data) -> Tuple[int, int, bytes, bytes, bool]:
    """``(client, seq, digest carried, digest computed, is_text)``; ``ValueError`` if malformed."""
    if isinstance(data, str):
        head, sep, body = data.partition("|")
        fields = head.split(":")
        if not sep or len(fields) != 3:
            raise ValueError("text message without a valid header")
        client, seq, carried = int(fields[0], 16), int(fields[1], 16), bytes.fromhex(fields[2])
        return client, seq, carried, digest(client, seq, body.encode("utf-8")), True
    if len(data) < BINARY_HEADER.size:
        raise ValueError("binary message shorter than its header")
    magic, client, seq, carried = BINARY_HEADER.unpack_from(data)
    if magic != BINARY_MAGIC:
        raise ValueError("binary message without the magic")
    return client, seq, carried, digest(client, seq, bytes(data[BINARY_HEADER.size :])), False


# -- measurements ----------------------------------------------------------------------------


class LatencyHistogram:
    """Round-trip times in logarithmic buckets (about 2 % wide): constant memory for any run."""

    BASE = 1e-5  # 10 µs
    STEPS = 50  # buckets per factor of e

    def __init__(self) -> None:
        self.counts: Dict[int, int] = collections.Counter()
        self.total = 0
        self.maximum = 0.0

    def add(self, seconds: float) -> None:
        bucket = int(math.log(max(seconds, self.BASE) / self.BASE) * self.STEPS)
        self.counts[bucket] += 1
        self.total += 1
        self.maximum = max(self.maximum, seconds)

    def merge(self, other: "LatencyHistogram") -> None:
        for bucket, count in other.counts.items():
            self.counts[bucket] += count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)

    def quantile(self, q: float) -> Optional[float]:
        if not self.total:
            return None
        rank = q * self.total
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return self.BASE * math.exp((bucket + 0.5) / self.STEPS)
        return self.maximum


class SeqSet:
    """The sequence numbers delivered so far, compactly: everything below ``floor`` plus a set."""

    def __init__(self) -> None:
        self.floor = 0
        self.above: set = set()

    def __contains__(self, seq: int) -> bool:
        return seq < self.floor or seq in self.above

    def add(self, seq: int) -> None:
        self.above.add(seq)
        while self.floor in self.above:
            self.above.remove(self.floor)
            self.floor += 1


def _libc_trim() -> Callable[[], None]:
    """``malloc_trim(0)`` where glibc has it, so that freed heap goes back to the system."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None
    return lambda: trim(0) and None


def _rss_bytes() -> Optional[int]:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _fd_count() -> Optional[int]:
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(path)) - 1  # listdir's own descriptor
        except OSError:
            continue
    return None


# syncws objects that may outlive connections by design: parsed URLs, immutable values kept
# in syncws.url's bounded parse cache (256 entries) for programs that reconnect.
_CACHED_TYPES = frozenset({"WebSocketURL"})


class Snapshot:
    """Threads, file descriptors and resident memory at one moment (after gc + trim)."""

    trim = staticmethod(_libc_trim())

    def __init__(self) -> None:
        gc.collect()
        self.trim()
        self.threads = sorted(t.name for t in threading.enumerate())
        self.fds = _fd_count()
        self.rss = _rss_bytes()
        self.objects = collections.Counter(
            type(o).__qualname__ for o in gc.get_objects()
            if type(o).__module__.startswith("syncws") and type(o).__qualname__ not in _CACHED_TYPES
        )

    def leaks(self, baseline: "Snapshot", rss_tolerance: int) -> List[str]:
        found = []
        extra = collections.Counter(_thread_kind(n) for n in self.threads)
        extra.subtract(collections.Counter(_thread_kind(n) for n in baseline.threads))
        if len(self.threads) != len(baseline.threads):
            kinds = ", ".join(f"{k} {v:+d}" for k, v in sorted(extra.items()) if v)
            found.append(f"threads {len(baseline.threads)} -> {len(self.threads)} ({kinds})")
        if self.fds is not None and baseline.fds is not None and self.fds != baseline.fds:
            found.append(f"file descriptors {baseline.fds} -> {self.fds}")
        grown = {name: count - baseline.objects[name] for name, count in self.objects.items()
                 if count > baseline.objects[name]}
        if grown:
            found.append(_describe_grown(grown))
        if self.rss is not None and baseline.rss is not None and self.rss > baseline.rss + rss_tolerance:
            found.append(f"RSS {baseline.rss / MiB:.1f} -> {self.rss / MiB:.1f} MiB")
        return found


def describe_retention(type_name: str, depth: int = 6) -> List[str]:
    """What keeps one leftover object of ``type_name`` alive: its referrers, level by level.

    A stack frame is named with the thread running it, or said to run nowhere (then a
    traceback or a suspended generator keeps it), and the chain stops there.
    """
    objects = [o for o in gc.get_objects() if type(o).__qualname__ == type_name]
    if not objects:
        return [f"no {type_name} left by now"]
    here = inspect.currentframe()
    lines, target, mine = [], objects[0], [objects]
    for level in range(depth):
        referrers = _running_frames_holding(target, here) or [
            r for r in gc.get_referrers(target) if r is not here and not any(r is m for m in mine)]
        mine.append(referrers)
        if not referrers:
            break
        lines.append("  " * level + "held by " + ", ".join(_short(r) for r in referrers[:4]))
        target = referrers[0]
        if inspect.isframe(target):
            break
    del here
    return lines


def print_retention(now: "Snapshot", before: "Snapshot") -> None:
    """On stderr, what keeps a WebSocket alive, if more are alive ``now`` than ``before``."""
    if now.objects["WebSocket"] > before.objects["WebSocket"]:
        print("what keeps a leftover WebSocket alive:", file=sys.stderr)
        for line in describe_retention("WebSocket"):
            print("  " + line, file=sys.stderr)


def _short(obj: Any) -> str:
    if isinstance(obj, dict):
        return "dict(" + ", ".join(map(str, list(obj)[:4])) + ")"
    if inspect.isframe(obj):
        code = obj.f_code
        return (f"frame {code.co_name} ({os.path.basename(code.co_filename)}:{obj.f_lineno}) "
                f"{_frame_owner(obj)}")
    if type(obj).__name__ in ("cell", "function", "method"):
        return f"{type(obj).__name__} {getattr(obj, '__qualname__', '')}"
    return type(obj).__qualname__


def _stack_frames() -> Iterator[Tuple[int, Any]]:
    """(thread id, frame) for every frame on every thread's stack, innermost first."""
    for ident, frame in sys._current_frames().items():
        while frame is not None:
            yield ident, frame
            frame = frame.f_back


def _running_frames_holding(target: Any, skip: Any) -> List[Any]:
    """Frames on a thread's stack with ``target`` among their locals: the collector does not
    see what a running frame refers to (CPython 3.11 and later)."""
    found = []
    for _, frame in _stack_frames():
        if frame is skip or frame.f_code is _running_frames_holding.__code__:
            continue
        for value in frame.f_locals.values():
            if value is target:
                found.append(frame)
                break
    return found


def _frame_owner(frame: Any) -> str:
    """Which thread is running ``frame`` (it is on that thread's stack), if any."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, running in _stack_frames():
        if running is frame:
            return f"on thread {names.get(ident, ident)}"
    return "on no thread (a traceback or a suspended generator keeps it)"


def _describe_grown(grown: Dict[str, int]) -> str:
    """Leftover syncws objects, briefly: the sockets first, then how many other kinds."""
    sockets = grown.get("WebSocket", 0)
    others = sorted(name for name in grown if name != "WebSocket")
    if sockets:
        return (f"{sockets} WebSocket objects outlived their connections (with {len(others)} other "
                f"syncws types: {', '.join(others[:4])}, ...)")
    return "syncws objects left: " + ", ".join(f"{name} +{grown[name]}" for name in others[:8])


def _count_sockets() -> int:
    """The ``syncws.WebSocket`` objects alive (each connection of a reconnecting socket is one)."""
    return sum(1 for o in gc.get_objects() if type(o) is syncws.WebSocket)


def _thread_kind(name: str) -> str:
    return re.sub(r"[-_]?(\d+|[0-9a-f]{6,})$", "", name)


# -- one logical client ----------------------------------------------------------------------


class Record:
    """A message sent and not yet delivered."""

    __slots__ = ("kind", "offset", "size", "check", "conn", "sent_at", "state")

    def __init__(self, kind: str, offset: int, size: int) -> None:
        self.kind, self.offset, self.size = kind, offset, size
        self.check = b""
        self.conn = 0
        self.sent_at = 0.0
        self.state = "new"  # "inflight", "interrupted"


class Tally:
    """Counters of one client (merged for the summary)."""

    FIELDS = (
        "messages", "attempts", "resent", "delivered", "interrupted", "lost", "duplicated",
        "corrupted", "stray", "lifecycle", "opens", "failed_attempts", "bytes_out", "bytes_in",
    )

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, 0)
        self.close_codes: Dict[str, int] = collections.Counter()
        self.errors: Dict[str, int] = collections.Counter()
        self.samples: List[str] = []  # the first few anomalies, described
        self.latency = LatencyHistogram()

    def note(self, what: str, description: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        if len(self.samples) < 5:
            self.samples.append(f"{what}: {description}")

    def merge(self, other: "Tally") -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.close_codes.update(other.close_codes)
        self.errors.update(other.errors)
        self.samples.extend(other.samples[: max(0, 20 - len(self.samples))])
        self.latency.merge(other.latency)


class SoakClient:
    """A logical client: a series of connections, one ledger of messages across them."""

    def __init__(self, index: int, url: str, options: Dict[str, Any], payloads: Payloads,
                 rng: random.Random, rate: float, window: int) -> None:
        self.index = index
        self.url = url
        self.options = options
        self.payloads = payloads
        self.rng = rng
        self.rate = rate
        self.window = window
        self.tally = Tally()
        self.lock = threading.Lock()
        self.ws: Any = None
        self.conn = 0  # number of the connection open now (counts open events)
        self.open = False
        self.draining = False  # no new messages, only resends
        self.finished = False  # close() was called for good
        self.next_seq = 0
        self.next_new_at = 0.0
        self.outstanding: Dict[int, Record] = {}
        self.inflight: Deque[int] = collections.deque()  # this connection's messages, send order
        self.resend: Deque[int] = collections.deque()
        self.delivered = SeqSet()
        self.closed_targets: "weakref.WeakSet[Any]" = weakref.WeakSet()  # final close delivered

    def handlers(self) -> Dict[str, Callable[[Any], None]]:
        return {"onopen": self.on_open, "onmessage": self.on_message,
                "onerror": self.on_error, "onclose": self.on_close}

    # -- events --

    def _check_alive(self, event: Any, what: str) -> bool:
        if event.target in self.closed_targets:
            self.tally.note("lifecycle", f"client {self.index}: {what} event after close")
            return False
        return True

    def on_open(self, event: Any) -> None:
        with self.lock:
            if not self._check_alive(event, "open"):
                return
            if self.open:
                self.tally.note("lifecycle", f"client {self.index}: open event without a close before it")
            self.conn += 1
            self.open = True
            self.tally.opens += 1
        self.pump(time.monotonic())

    def on_message(self, event: Any) -> None:
        data = event.data
        if isinstance(data, syncws.Blob):
            data = bytes(data)
        now = time.monotonic()
        with self.lock:
            if self._check_alive(event, "message"):
                self._check_echo(data, now)

    def _check_echo(self, data: Data, now: float) -> None:
        tally = self.tally
        try:
            client, seq, carried, computed, is_text = decode_message(data)
        except (ValueError, UnicodeError) as exc:
            tally.note("corrupted", f"client {self.index}: {exc} ({len(data)} units)")
            return
        where = f"client {self.index} seq {seq} conn {self.conn}"
        record = self.outstanding.get(seq)
        if client != self.index or (record is None and seq not in self.delivered):
            tally.note("corrupted", f"{where}: names client {client}, never sent here")
        elif seq in self.delivered:
            tally.note("duplicated", f"{where}: echoed again")
        elif not self.open or record.state != "inflight" or record.conn != self.conn:
            tally.note("stray", f"{where}: echo of a message sent on conn {record.conn} ({record.state})")
        elif carried != record.check or computed != record.check or is_text != (record.kind == "text"):
            tally.note("corrupted", f"{where}: digest/type mismatch")
        else:
            self._deliver(seq, record, data, now)

    def _deliver(self, seq: int, record: Record, data: Data, now: float) -> None:
        tally = self.tally
        while self.inflight and self.inflight[0] != seq:  # echoes come in order: skipped = lost
            skipped = self.inflight.popleft()
            lost = self.outstanding.pop(skipped)
            tally.note("lost", f"client {self.index} seq {skipped} conn {lost.conn}: a later echo came first")
        if self.inflight:
            self.inflight.popleft()
        del self.outstanding[seq]
        self.delivered.add(seq)
        tally.delivered += 1
        tally.bytes_in += len(data)
        tally.latency.add(now - record.sent_at)

    def on_error(self, event: Any) -> None:
        with self.lock:
            if self._check_alive(event, "error"):
                self.tally.errors[type(event.error).__name__] += 1

    def on_close(self, event: Any) -> None:
        with self.lock:
            if not self._check_alive(event, "close"):
                return
            if not getattr(event, "reconnecting", False):
                self.closed_targets.add(event.target)
            self.tally.close_codes[str(event.code)] += 1
            was_open = self.open
            if not was_open:
                self.tally.failed_attempts += 1
            self.open = False
            for seq in self.inflight:  # accounted for by this close event: send again later
                self.outstanding[seq].state = "interrupted"
                self.resend.append(seq)
                self.tally.interrupted += 1
            self.inflight.clear()
        self.after_close(event, was_open)

    def after_close(self, event: Any, was_open: bool) -> None:
        """What a subclass does after a close event (reconnecting or not)."""

    # -- sending --

    def pump(self, now: float) -> None:
        """Send what is due: interrupted messages first, then new ones at the client's rate."""
        with self.lock:
            while self.open and self.ws is not None and len(self.inflight) < self.window:
                if self.resend:
                    seq = self.resend[0]
                    record = self.outstanding[seq]
                elif not self.draining and now >= self.next_new_at:
                    seq = self.next_seq
                    record = Record(*self.payloads.draw(self.rng))
                else:
                    return
                body = self.payloads.body(record.kind, record.offset, record.size)
                message, record.check = encode_message(self.index, seq, body)
                try:
                    self.ws.send(message)
                except syncws.InvalidStateError:
                    return  # between connections (ReconnectingWebSocket): after the next open
                self._sent(seq, record, len(message), now)

    def _sent(self, seq: int, record: Record, size: int, now: float) -> None:
        tally = self.tally
        if record.state == "new":
            self.next_seq += 1
            self.outstanding[seq] = record
            self.next_new_at = max(self.next_new_at, now - 1.0) + self.rng.expovariate(self.rate)
            tally.messages += 1
        else:
            self.resend.popleft()
            tally.resent += 1
        record.state, record.conn, record.sent_at = "inflight", self.conn, now
        self.inflight.append(seq)
        tally.attempts += 1
        tally.bytes_out += size

    def poll(self, now: float) -> None:
        """Called by the driver thread: send what is due."""
        self.pump(now)

    def outstanding_count(self) -> int:
        with self.lock:
            return len(self.outstanding)

    def finish(self, timeout: float) -> bool:
        """Close for good (1000) and wait for the final close event."""
        with self.lock:
            self.finished = True
            ws = self.ws
        if ws is None:
            return True
        ws.close(1000, "soak over")
        return bool(ws.wait(timeout))

    def end_of_run(self) -> None:
        """Classify what is still outstanding after the drain: inflight = lost."""
        with self.lock:
            for seq in self.inflight:
                self.tally.note("lost", f"client {self.index} seq {seq}: no echo and no close event by the end")
                self.outstanding.pop(seq, None)
            self.inflight.clear()


class ReconnectingClient(SoakClient):
    """Reconnection by ``syncws.ReconnectingWebSocket``: one object for the whole run."""

    def start(self) -> None:
        backoff = syncws.Backoff(initial=0.05, factor=2.0, max_delay=2.0, reset_after=1.0)
        self.ws = syncws.ReconnectingWebSocket(self.url, backoff=backoff, **self.options, **self.handlers())

    def after_close(self, event: Any, was_open: bool) -> None:
        if not getattr(event, "reconnecting", False) and not self.finished:
            with self.lock:
                self.tally.note("lifecycle", f"client {self.index}: gave up reconnecting ({event.code})")


# -- the processes around the clients ----------------------------------------------------------


def serve(cert: Optional[str], key: Optional[str]) -> int:
    """Child process: syncws's echo server on a ws and a wss port until stdin ends."""
    import ssl

    from syncws.protocol.deflate import server_negotiate
    from syncws.server import WebSocketServer

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    plain = WebSocketServer(extensions=[server_negotiate]).start()
    secure = WebSocketServer(extensions=[server_negotiate], ssl_context=context).start()
    print(json.dumps({"ws": plain.port, "wss": secure.port}), flush=True)
    sys.stdin.read()
    plain.stop()
    secure.stop()
    errors = plain.errors + secure.errors
    print(json.dumps({"server_errors": [repr(e) for e in errors[:10]], "count": len(errors)}), flush=True)
    return 0


class Child:
    """A child process that prints JSON lines and reads commands on stdin."""

    def __init__(self, args: List[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def read(self) -> Dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.process.args[1]} ended (status {self.process.wait()})")
        return json.loads(line)

    def command(self, text: str) -> Dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return self.read()

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def stop(self) -> Dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            result = self.read()
        finally:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return result


# -- the run ---------------------------------------------------------------------------------


def client_options(index: int, context: Any, pool: ThreadPoolExecutor) -> Tuple[str, Dict[str, Any]]:
    """The mix: scheme, compression, binary_type, executor and keepalive vary with ``index``."""
    scheme = "wss" if index % 2 else "ws"
    ping_interval, ping_timeout = KEEPALIVES[index % len(KEEPALIVES)]
    options: Dict[str, Any] = {
        "compression": (index // 2) % 2 == 0,
        "binary_type": "blob" if (index // 4) % 2 else "arraybuffer",
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "open_timeout": 5.0,
        "close_timeout": 5.0,
        "max_message_size": 4 * MiB,
        "proxy": None,
    }
    if scheme == "wss":
        options["ssl"] = context
    if index % 5 == 4:
        options["executor"] = pool
    return scheme, options


class Phase:
    """One soak run of all clients: start, drive for ``duration``, drain, close."""

    def __init__(self, args: argparse.Namespace, urls: Dict[str, str], context: Any,
                 pool: ThreadPoolExecutor, payloads: Payloads, seed: int) -> None:
        rng = random.Random(seed)
        self.clients: List[SoakClient] = []
        for index in range(args.connections):
            scheme, options = client_options(index, context, pool)
            self.clients.append(ReconnectingClient(index, urls[scheme], options, payloads,
                                    random.Random(rng.getrandbits(64)), args.rate, args.window))
        self.stop = threading.Event()
        self.driver = threading.Thread(target=self.drive, name="soak-driver", daemon=True)

    def drive(self) -> None:
        while not self.stop.wait(0.01):
            now = time.monotonic()
            for client in self.clients:
                client.poll(now)

    def run(self, duration: float, drain: float, proxy: Child, progress: Callable[[str], None]) -> Dict[str, Any]:
        started = time.monotonic()
        for client in self.clients:
            client.start()  # type: ignore[attr-defined]
        self.driver.start()
        report_at = started + 30
        while time.monotonic() < started + duration:
            time.sleep(min(1.0, max(0.0, started + duration - time.monotonic())))
            if time.monotonic() >= report_at:
                report_at += 30
                progress(self.progress_line(started))
        proxy.send("calm")
        for client in self.clients:
            client.draining = True
        drain_deadline = time.monotonic() + drain
        while time.monotonic() < drain_deadline and any(c.outstanding_count() for c in self.clients):
            time.sleep(0.2)
        stuck = [c.index for c in self.clients if c.outstanding_count()]
        drained_in = time.monotonic() - (drain_deadline - drain)
        self.stop.set()
        self.driver.join()
        for client in self.clients:
            client.end_of_run()
        unclosed = [c.index for c in self.clients if not c.finish(15.0)]
        return {"elapsed": time.monotonic() - started, "stuck": stuck, "drain": drained_in,
                "unclosed": unclosed}

    def progress_line(self, started: float) -> str:
        tally = Tally()
        for client in self.clients:
            with client.lock:
                tally.merge(client.tally)
        return (f"{time.monotonic() - started:6.0f} s: {tally.delivered} delivered, {tally.interrupted} "
                f"interrupted, {tally.opens} opens, {tally.failed_attempts} failed attempts, "
                f"{tally.lost + tally.duplicated + tally.corrupted + tally.stray} anomalies, "
                f"{threading.active_count()} threads, {_count_sockets()} WebSocket objects alive, RSS {_mib(_rss_bytes())}"
                + (f", Python heap {_mib(tracemalloc.get_traced_memory()[0])}" if tracemalloc.is_tracing() else ""))

    def tally(self) -> Tally:
        total = Tally()
        for client in self.clients:
            total.merge(client.tally)
        return total


def make_certificates(directory: str) -> Tuple[Any, str, str]:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    cert.private_key_and_cert_chain_pem.write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context, cert_path, key_path


def prewarm(pool: ThreadPoolExecutor, workers: int) -> None:
    """Start every worker of the shared pool now, so that none appears during the measurement."""
    barrier = threading.Barrier(workers + 1)
    for _ in range(workers):
        pool.submit(barrier.wait)
    barrier.wait()


def run(args: argparse.Namespace) -> Dict[str, Any]:
    progress = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    directory = tempfile.mkdtemp(prefix="syncws-soak-")
    try:
        context, cert, key = make_certificates(directory)
        server = Child([os.path.abspath(__file__), "--serve", cert, key])
        ports = server.read()
        proxy = Child([os.path.join(HERE, "chaos_proxy.py"), "--seed", str(args.seed),
                       "--fault-interval", str(args.fault_interval),
                       "--target", f"127.0.0.1:{ports['ws']}", "--target", f"127.0.0.1:{ports['wss']}"])
        proxy_ports = proxy.read()["ports"]
        urls = {"ws": f"ws://127.0.0.1:{proxy_ports[0]}/", "wss": f"wss://127.0.0.1:{proxy_ports[1]}/"}
        pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="soak-pool")
        prewarm(pool, 8)
        payloads = Payloads(random.Random(args.seed))
        start = Snapshot()
        progress(f"warm-up: {args.connections} connections for {args.warmup:.0f} s")
        warm = Phase(args, urls, context, pool, payloads, args.seed + 1)
        warm_result = warm.run(args.warmup, args.drain, proxy, progress)
        tally = warm.tally()
        del warm.clients[:]
        proxy.send("faults")
        baseline = settle(start, sys.maxsize)
        print_retention(baseline, start)
        if args.trace_memory:
            tracemalloc.start(25)
            traced = tracemalloc.take_snapshot()
        progress(f"soak: {args.connections} connections for {args.duration:.0f} s")
        main_phase = Phase(args, urls, context, pool, payloads, args.seed + 2)
        main_result = main_phase.run(args.duration, args.drain, proxy, progress)
        tally.merge(main_phase.tally())
        del main_phase.clients[:]
        end = settle(baseline, args.rss_tolerance * MiB)
        if args.trace_memory:
            report_memory(traced, tracemalloc.take_snapshot())
        print_retention(end, baseline)
        faults = proxy.command("stats")["stats"]
        proxy.stop()
        server_report = server.stop()
        pool.shutdown()
        return {
            "args": vars(args), "tally": tally, "faults": faults, "server": server_report,
            "warm": warm_result, "main": main_result, "start": start, "baseline": baseline, "end": end,
            "leaks": end.leaks(baseline, args.rss_tolerance * MiB) + warm_leaks(start, baseline),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report_memory(before: "tracemalloc.Snapshot", after: "tracemalloc.Snapshot") -> None:
    """``--trace-memory``: where the Python heap grew between the baseline and the end."""
    for stat in after.compare_to(before, "traceback")[:8]:
        print(f"{stat.size_diff / 1024:+.0f} KiB in {stat.count_diff:+d} blocks", file=sys.stderr)
        for line in stat.traceback.format()[-12:]:
            print("    " + line, file=sys.stderr)


def warm_leaks(start: Snapshot, baseline: Snapshot) -> List[str]:
    """Threads and descriptors must also be back where they were before the warm-up."""
    return [f"after warm-up: {leak}" for leak in baseline.leaks(start, sys.maxsize) if not leak.startswith("RSS")]


def settle(baseline: Snapshot, rss_tolerance: int, patience: float = 15.0) -> Snapshot:
    """Measure until nothing leaks or ``patience`` seconds passed (threads end asynchronously)."""
    deadline = time.monotonic() + patience
    while True:
        snapshot = Snapshot()
        if not snapshot.leaks(baseline, rss_tolerance) or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.5)


# -- the summary -----------------------------------------------------------------------------


def _fmt_ms(seconds: Optional[float]) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


def _mib(value: Optional[int]) -> str:
    return "–" if value is None else f"{value / MiB:.1f} MiB"


def failures(result: Dict[str, Any]) -> List[str]:
    tally: Tally = result["tally"]
    found = [f"{getattr(tally, name)} {name}" for name in ("lost", "duplicated", "corrupted", "stray", "lifecycle")
             if getattr(tally, name)]
    for phase in ("warm", "main"):
        if result[phase]["stuck"]:
            found.append(f"{phase}: drain did not finish for clients {result[phase]['stuck'][:10]}")
        if result[phase]["unclosed"]:
            found.append(f"{phase}: no final close event for clients {result[phase]['unclosed'][:10]}")
    if result["server"].get("count"):
        found.append(f"echo server errors: {result['server']['server_errors']}")
    return found + result["leaks"]


def summary_rows(result: Dict[str, Any]) -> List[Tuple[str, str]]:
    tally: Tally = result["tally"]
    args = result["args"]
    faults = result["faults"]
    fault_text = ", ".join(f"{k[6:].replace('_', ' ')} {v}" for k, v in faults.items() if k.startswith("fault_"))
    base, end = result["baseline"], result["end"]
    elapsed = result["warm"]["elapsed"] + result["main"]["elapsed"]
    total_faults = sum(v for k, v in faults.items() if k.startswith("fault_"))
    opens = tally.opens
    return [
        ("duration", f"{args['duration']:.0f} s soak + {args['warmup']:.0f} s warm-up ({elapsed:.0f} s with drains)"),
        ("connections", f"{args['connections']} logical clients (ws/wss × compression on/off × blob/arraybuffer; "
                        "syncws.ReconnectingWebSocket)"),
        ("connections opened", f"{opens} ({opens - 2 * args['connections']} reconnects), "
                               f"{tally.failed_attempts} failed attempts"),
        ("messages", f"{tally.messages} sent, {tally.delivered} delivered, {tally.interrupted} interrupted "
                     f"(accounted for by close events) and {tally.resent} resent"),
        ("bytes", f"{tally.bytes_out / MiB:.0f} MiB sent, {tally.bytes_in / MiB:.0f} MiB echoed; proxy "
                  f"relayed {faults.get('bytes_c2s', 0) / MiB:.0f} + {faults.get('bytes_s2c', 0) / MiB:.0f} MiB"),
        ("faults injected", f"{total_faults}: {fault_text}; {faults.get('capped_connections', 0)} of "
                            f"{faults.get('accepted', 0)} connections bandwidth-capped"),
        ("close events", ", ".join(f"{k} × {v}" for k, v in sorted(tally.close_codes.items()))),
        ("error events", ", ".join(f"{k} × {v}" for k, v in sorted(tally.errors.items())) or "none"),
        ("round trip", f"p50 {_fmt_ms(tally.latency.quantile(0.5))}, p99 {_fmt_ms(tally.latency.quantile(0.99))}, "
                       f"max {_fmt_ms(tally.latency.maximum)}"),
        ("lost / duplicated / corrupted / stray", f"{tally.lost} / {tally.duplicated} / {tally.corrupted} / {tally.stray}"),
        ("threads", f"{len(result['start'].threads)} before, {len(base.threads)} baseline, {len(end.threads)} after"),
        ("file descriptors", f"{result['start'].fds} before, {base.fds} baseline, {end.fds} after"),
        ("RSS", f"{_mib(result['start'].rss)} before, {_mib(base.rss)} baseline, {_mib(end.rss)} after "
                f"(tolerance {args['rss_tolerance']} MiB)"),
        ("leaks", "; ".join(result["leaks"]) or "none"),
        ("verdict", "FAIL: " + "; ".join(failures(result)) if failures(result) else "pass"),
    ]


def markdown(result: Dict[str, Any]) -> str:
    args = result["args"]
    lines = [
        f"`python bench/soak.py --duration {args['duration']:.0f}` (seed {args['seed']}, "
        f"{args['rate']:g} messages/s per connection, window {args['window']}), "
        f"syncws {syncws.__version__}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}:",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value} |" for name, value in summary_rows(result)]
    return "\n".join(lines) + "\n"


def write_readme(text: str, path: str) -> None:
    begin, end = "<!-- soak:begin -->", "<!-- soak:end -->"
    block = f"{begin}\n{text}{end}"
    with open(path, encoding="utf-8") as f:
        readme = f.read()
    if begin in readme and end in readme:
        readme = readme[: readme.index(begin)] + block + readme[readme.index(end) + len(end) :]
    else:
        readme = readme.rstrip("\n") + "\n\n## Chaos soak: latest run\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(readme)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of soak (default 600)")
    parser.add_argument("--connections", type=int, default=100, help="logical clients (default 100)")
    parser.add_argument("--rate", type=float, default=1.0, help="new messages per second per client (default 1)")
    parser.add_argument("--window", type=int, default=4, help="messages in flight per client at most (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    parser.add_argument("--fault-interval", type=float, default=20.0,
                        help="mean seconds between disruptive faults per connection (default 20)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (default: 10%% of "
                        "--duration, between 20 and 60)")
    parser.add_argument("--drain", type=float, default=90.0, help="seconds the final drain may take (default 90)")
    parser.add_argument("--rss-tolerance", type=float, default=64.0,
                        help="MiB the resident memory may end above the baseline (default 64)")
    parser.add_argument("--write-readme", action="store_true", help="put the table into bench/README.md")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--trace-memory", action="store_true",
                        help="trace Python allocations from the baseline on and show where they grew")
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(60.0, max(20.0, args.duration / 10))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(*args.serve)
    result = run(args)
    table = markdown(result)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({name: value for name, value in summary_rows(result)}
                      | {"samples": result["tally"].samples, "faults": result["faults"]}, f, indent=2)
    if args.write_readme:
        write_readme(table, os.path.join(HERE, "README.md"))
    problems = failures(result)
    for sample in result["tally"].samples:
        print("  " + sample, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
