"""A fault-injecting TCP proxy for loopback soak tests.

Every connection accepted on a listening port is relayed to that port's target, through a
single selector thread, with faults drawn from a seeded random generator:

- **latency and jitter**: each chunk read is held for ``latency + U(0, jitter)`` seconds, never
  overtaking the chunk before it (TCP keeps order);
- **bandwidth**: some connections are capped at a random rate (bytes per second, each way);
- **stall**: both directions freeze (nothing read, nothing written) for a while; some stalls
  are long enough to trip a client's keepalive;
- **half-close**: one direction is cut: what it still holds is dropped and its receiver gets
  FIN, while the other direction goes on;
- **reset**: both ends get RST (``SO_LINGER`` 0, then close), whatever was in flight;
- **refuse**: a new connection is reset at once, before anything reaches the target.

The disruptive faults (stall, half-close, reset) strike each connection after exponentially
distributed intervals. The proxy counts what it injected, per kind, and what the two ends did
(FIN, RST) on their own.

Control, one command per line on standard input: ``calm`` (no more disruptive faults or
refusals, ongoing stalls end; latency and bandwidth caps stay), ``faults`` (back to injecting
them; new connections only), ``stats`` (print the counters as
one JSON line), ``quit`` (print the counters, reset every connection, exit; end of input does
the same). On start it prints ``{"ports": [...]}``: the listening ports, in ``--target`` order.

    python bench/chaos_proxy.py --target 127.0.0.1:8765 --seed 7

It listens on 127.0.0.1 only and connects only to the targets given, which must be loopback
addresses.
"""

from __future__ import annotations

import argparse
import collections
import heapq
import ipaddress
import itertools
import json
import os
import random
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Tuple

_READ_SIZE = 64 * 1024
_HIGH_WATER = 512 * 1024  # bytes held per direction before the proxy stops reading its source
_LINGER_RESET = struct.pack("ii", 1, 0)
_HALF_CLOSED_LIFETIME = 30.0  # a connection half-closed this long without ending is reset


@dataclass
class FaultPlan:
    """How hostile the proxy is; every rate and range is per connection."""

    latency: Tuple[float, float] = (0.0, 0.030)  #: base latency range (s), drawn per connection
    jitter: Tuple[float, float] = (0.0, 0.020)  #: jitter range (s), drawn per connection
    capped_share: float = 0.5  #: share of connections with a bandwidth cap
    rate: Tuple[float, float] = (256e3, 16e6)  #: cap range (bytes/s), log-uniform
    fault_interval: float = 20.0  #: mean seconds between disruptive faults on one connection
    weights: Dict[str, float] = field(
        default_factory=lambda: {"stall": 0.5, "half_close": 0.2, "reset": 0.3}
    )
    stall: Tuple[float, float] = (0.2, 3.0)  #: ordinary stall length (s)
    long_stall: Tuple[float, float] = (8.0, 15.0)  #: long stall length (s)
    long_stall_share: float = 0.15  #: share of stalls that are long
    refuse_share: float = 0.03  #: share of new connections reset at once


class Counters:
    """What the proxy did and saw; ``as_dict()`` is the JSON the control channel prints."""

    def __init__(self) -> None:
        self.values: Dict[str, int] = collections.Counter()

    def add(self, name: str, amount: int = 1) -> None:
        self.values[name] += amount

    def as_dict(self) -> Dict[str, int]:
        return dict(sorted(self.values.items()))


class Direction:
    """One direction of a relayed connection: bytes read from ``src`` wait, then go to ``dst``."""

    def __init__(self, link: "Link", src: socket.socket, dst: socket.socket, name: str) -> None:
        self.link = link
        self.src = src
        self.dst = dst
        self.name = name  # "c2s" or "s2c"
        self.chunks: Deque[Tuple[float, memoryview]] = collections.deque()
        self.held = 0
        self.release_floor = 0.0  # no chunk may be released before the previous one
        self.src_eof = False
        self.fin_sent = False
        self.cut = False  # half-closed by a fault: input is read and dropped
        self.blocked = False  # dst's send buffer is full: wait for writability

    def wants_read(self, now: float) -> bool:
        return not self.src_eof and not self.link.stalled(now) and self.held < _HIGH_WATER

    def next_release(self) -> Optional[float]:
        if self.blocked or not self.chunks:
            return None
        return max(self.chunks[0][0], self.link.stalled_until)

    def take(self, data: bytes, now: float) -> None:
        """Queue ``data`` read from ``src`` with its release time (latency, jitter, cap)."""
        link = self.link
        if self.cut:
            return
        release = max(now + link.latency + link.rng.random() * link.jitter, self.release_floor)
        if link.rate:
            release = max(release, self.release_floor + len(data) / link.rate)
        self.release_floor = release
        self.chunks.append((release, memoryview(data)))
        self.held += len(data)

    def flush(self, now: float) -> None:
        """Write every chunk that is due; propagate FIN once the source ended and all is out."""
        while self.chunks and self.chunks[0][0] <= now and not self.link.stalled(now):
            release, data = self.chunks[0]
            try:
                sent = self.dst.send(data)
            except (BlockingIOError, InterruptedError):
                self.blocked = True
                return
            except OSError:
                self.link.fail("write")
                return
            self.link.proxy.counters.add(f"bytes_{self.name}", sent)
            self.held -= sent
            if sent < len(data):
                self.chunks[0] = (release, data[sent:])
                self.blocked = True
                return
            self.chunks.popleft()
        self.blocked = False
        if self.src_eof and not self.chunks and not self.fin_sent:
            self.send_fin()

    def send_fin(self) -> None:
        self.fin_sent = True
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut_now(self) -> None:
        """Half-close: drop what is held, send FIN, read and drop whatever comes later."""
        self.cut = True
        self.chunks.clear()
        self.held = 0
        self.blocked = False
        if not self.fin_sent:
            self.send_fin()


class Link:
    """A relayed connection: the client's socket, the target's, and the two directions."""

    def __init__(self, proxy: "ChaosProxy", number: int, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.number = number
        self.client = client
        self.upstream = upstream
        plan = proxy.plan
        self.rng = random.Random(proxy.rng.getrandbits(64))
        self.latency = self.rng.uniform(*plan.latency)
        self.jitter = self.rng.uniform(*plan.jitter)
        self.rate = 0.0
        if self.rng.random() < plan.capped_share:
            low, high = plan.rate
            self.rate = low * (high / low) ** self.rng.random()
        self.stalled_until = 0.0
        self.closed = False
        self.c2s = Direction(self, client, upstream, "c2s")
        self.s2c = Direction(self, upstream, client, "s2c")
        self.masks: Dict[socket.socket, int] = {client: 0, upstream: 0}

    def stalled(self, now: float) -> bool:
        return now < self.stalled_until

    def directions(self) -> Tuple[Direction, Direction]:
        return self.c2s, self.s2c

    def update_interest(self, now: float) -> None:
        """Register each socket for what its directions need (read its input, write when blocked)."""
        if self.closed:
            return
        wanted = {self.client: 0, self.upstream: 0}
        for direction in self.directions():
            if direction.wants_read(now):
                wanted[direction.src] |= selectors.EVENT_READ
            if direction.blocked:
                wanted[direction.dst] |= selectors.EVENT_WRITE
        selector = self.proxy.selector
        for sock, mask in wanted.items():
            old = self.masks[sock]
            if mask == old:
                continue
            if old == 0:
                selector.register(sock, mask, self)
            elif mask == 0:
                selector.unregister(sock)
            else:
                selector.modify(sock, mask, self)
            self.masks[sock] = mask

    def on_event(self, sock: socket.socket, mask: int, now: float) -> None:
        if mask & selectors.EVENT_WRITE:
            for direction in self.directions():
                if direction.dst is sock:
                    direction.blocked = False
                    direction.flush(now)
        if mask & selectors.EVENT_READ and not self.closed:
            direction = self.c2s if sock is self.client else self.s2c
            self.read(direction, now)
        self.after_change(now)

    def read(self, direction: Direction, now: float) -> None:
        try:
            data = direction.src.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.fail("peer_reset")
            return
        if not data:
            direction.src_eof = True
            self.proxy.counters.add(f"peer_fin_{direction.name}")
            return
        direction.take(data, now)

    def after_change(self, now: float) -> None:
        if self.closed:
            return
        for direction in self.directions():
            if direction.chunks and not direction.blocked:
                direction.flush(now)
            elif direction.src_eof and not direction.chunks and not direction.fin_sent:
                direction.send_fin()
            if self.closed:
                return
        if all(d.src_eof and d.fin_sent for d in self.directions()):
            self.close(reset=False)
            return
        self.update_interest(now)
        self.proxy.track(self)

    def next_wakeup(self) -> Optional[float]:
        times = [t for t in (d.next_release() for d in self.directions()) if t is not None]
        if self.stalled_until > time.monotonic():
            times.append(self.stalled_until)
        return min(times) if times else None

    def fail(self, why: str) -> None:
        """An end reset or a write failed: reset the other end too (what a real path does)."""
        self.proxy.counters.add(f"relayed_{why}")
        self.close(reset=True)

    def close(self, *, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            if self.masks[sock]:
                self.proxy.selector.unregister(sock)
                self.masks[sock] = 0
            if reset:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                except OSError:
                    pass
            sock.close()
        self.proxy.links.pop(self.number, None)
        self.proxy.pending.pop(self.number, None)


class ChaosProxy:
    """The selector loop: listeners, links, timers (fault times, stall ends, releases)."""

    def __init__(self, targets: List[Tuple[str, int]], plan: FaultPlan, seed: int) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.counters = Counters()
        self.selector = selectors.DefaultSelector()
        self.links: Dict[int, Link] = {}
        self.listeners: List[Tuple[socket.socket, Tuple[str, int]]] = []
        self.timers: List[Tuple[float, int, int, str]] = []  # (when, tiebreak, link number, what)
        self.pending: Dict[int, Link] = {}  # links with held data or a stall to end
        self.calm = False
        self.running = True
        self._numbers = itertools.count(1)
        self._ties = itertools.count()
        for host, port in targets:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(512)
            listener.setblocking(False)
            self.selector.register(listener, selectors.EVENT_READ, ("listen", (host, port)))
            self.listeners.append((listener, (host, port)))

    @property
    def ports(self) -> List[int]:
        return [listener.getsockname()[1] for listener, _ in self.listeners]

    def track(self, link: Link) -> None:
        if link.next_wakeup() is not None:
            self.pending[link.number] = link
        else:
            self.pending.pop(link.number, None)

    def schedule(self, when: float, link: Link, what: str) -> None:
        heapq.heappush(self.timers, (when, next(self._ties), link.number, what))

    def schedule_fault(self, link: Link, now: float) -> None:
        self.schedule(now + link.rng.expovariate(1.0 / self.plan.fault_interval), link, "fault")

    # -- accepting ---------------------------------------------------------------------------

    def accept(self, listener: socket.socket, target: Tuple[str, int], now: float) -> None:
        try:
            client, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self.counters.add("accepted")
        if not self.calm and self.rng.random() < self.plan.refuse_share:
            self.counters.add("fault_refuse")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            client.close()
            return
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            self.counters.add("upstream_failed")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = Link(self, next(self._numbers), client, upstream)
        self.links[link.number] = link
        if link.rate:
            self.counters.add("capped_connections")
        self.schedule_fault(link, now)
        link.update_interest(now)

    # -- faults ------------------------------------------------------------------------------

    def on_timer(self, link: Link, what: str, now: float) -> None:
        if what == "fault" and not self.calm:
            self.inject(link, now)
        elif what == "half_closed_too_long" and not link.closed:
            self.counters.add("half_closed_reset")
            link.close(reset=True)
            return
        link.after_change(now)

    def inject(self, link: Link, now: float) -> None:
        plan = self.plan
        kinds = list(plan.weights)
        kind = link.rng.choices(kinds, weights=[plan.weights[k] for k in kinds])[0]
        if kind == "stall":
            long_stall = link.rng.random() < plan.long_stall_share
            low, high = plan.long_stall if long_stall else plan.stall
            length = link.rng.uniform(low, high)
            link.stalled_until = now + length
            self.counters.add("fault_long_stall" if long_stall else "fault_stall")
            self.schedule(link.stalled_until, link, "stall_end")
            self.schedule(link.stalled_until + link.rng.expovariate(1.0 / plan.fault_interval), link, "fault")
        elif kind == "half_close":
            direction = link.rng.choice(link.directions())
            self.counters.add(f"fault_half_close_{direction.name}")
            direction.cut_now()
            self.schedule(now + _HALF_CLOSED_LIFETIME, link, "half_closed_too_long")
        elif kind == "reset":
            self.counters.add("fault_reset")
            link.close(reset=True)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")

    def calm_down(self) -> None:
        """No more disruptive faults; stalls end now; latency and caps stay."""
        self.calm = True
        for link in self.links.values():
            link.stalled_until = 0.0

    # -- the loop ----------------------------------------------------------------------------

    def timeout(self, now: float) -> float:
        soonest = now + 0.5
        if self.timers:
            soonest = min(soonest, self.timers[0][0])
        for link in list(self.pending.values()):
            wakeup = link.next_wakeup()
            if wakeup is None:
                self.pending.pop(link.number, None)
            else:
                soonest = min(soonest, wakeup)
        return max(0.0, soonest - now)

    def run_due(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, _, number, what = heapq.heappop(self.timers)
            link = self.links.get(number)
            if link is not None and not link.closed:
                self.on_timer(link, what, now)
        for link in list(self.pending.values()):
            wakeup = link.next_wakeup()
            if wakeup is not None and wakeup <= now and not link.closed:
                link.after_change(now)

    def run(self, control: Optional[int] = None) -> None:
        """Serve until ``quit`` (or end of input) on the ``control`` file descriptor."""
        buffer = b""
        if control is not None:
            os.set_blocking(control, False)
            self.selector.register(control, selectors.EVENT_READ, ("control", None))
        while self.running:
            now = time.monotonic()
            events = self.selector.select(self.timeout(now))
            now = time.monotonic()
            for key, mask in events:
                data = key.data
                if isinstance(data, Link):
                    if not data.closed:
                        data.on_event(key.fileobj, mask, now)  # type: ignore[arg-type]
                elif data[0] == "listen":
                    self.accept(key.fileobj, data[1], now)  # type: ignore[arg-type]
                else:
                    buffer = self.read_control(control, buffer)
            self.run_due(time.monotonic())
        self.shutdown()

    def read_control(self, control: Optional[int], buffer: bytes) -> bytes:
        assert control is not None
        try:
            chunk = os.read(control, 4096)
        except BlockingIOError:
            return buffer
        if not chunk:
            self.running = False
            return b""
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            self.command(line.decode().strip())
        return buffer

    def command(self, text: str) -> None:
        if text == "calm":
            self.calm_down()
        elif text == "faults":
            self.calm = False
        elif text == "stats":
            self.report()
        elif text == "quit":
            self.running = False
        elif text:
            print(json.dumps({"error": f"unknown command {text!r}"}), flush=True)

    def report(self) -> None:
        stats = self.counters.as_dict()
        stats["open_links"] = len(self.links)
        print(json.dumps({"stats": stats}), flush=True)

    def shutdown(self) -> None:
        self.report()
        for link in list(self.links.values()):
            link.close(reset=True)
        for listener, _ in self.listeners:
            listener.close()
        self.selector.close()


def _loopback_target(text: str) -> Tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address")
    return host, int(port)


def _range(text: str) -> Tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", type=_loopback_target, required=True,
                        help="HOST:PORT to relay to (loopback only); repeat for more listeners")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--fault-interval", type=float, default=FaultPlan.fault_interval,
                        help="mean seconds between disruptive faults per connection")
    parser.add_argument("--latency", type=_range, default=FaultPlan.latency, help="LOW,HIGH seconds")
    parser.add_argument("--jitter", type=_range, default=FaultPlan.jitter, help="LOW,HIGH seconds")
    parser.add_argument("--refuse-share", type=float, default=FaultPlan.refuse_share)
    parser.add_argument("--no-faults", action="store_true", help="start calm (latency and caps only)")
    args = parser.parse_args(argv)
    plan = FaultPlan(
        latency=args.latency, jitter=args.jitter,
        fault_interval=args.fault_interval, refuse_share=args.refuse_share,
    )
    proxy = ChaosProxy(args.target, plan, args.seed)
    if args.no_faults:
        proxy.calm_down()
    print(json.dumps({"ports": proxy.ports}), flush=True)
    proxy.run(control=sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
