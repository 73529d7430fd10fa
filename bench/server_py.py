"""Fallback reference server for bench/run.py, used when Node.js or npm is missing.

Same endpoints and behaviour as bench/server.js (see there), built on the ``websockets``
package's asyncio server, with permessage-deflate off. It is written in Python, so it is much
slower than the Node server and is likely to be the bottleneck: its figures are only good for
checking that the harness works, not for comparing clients.

    python bench/server_py.py [--cert CERT.pem --key KEY.pem]
"""

import argparse
import asyncio
import json
import os
import re
import ssl
import sys
import threading

import websockets

try:  # websockets >= 13
    from websockets.asyncio.server import serve as _serve

    NEW_API = True
except ImportError:  # pragma: no cover - websockets 12
    _serve = websockets.serve
    NEW_API = False

HOST = "127.0.0.1"
_payloads = {}


def payload(size):
    buf = _payloads.get(size)
    if buf is None:
        buf = _payloads[size] = os.urandom(size)
    return buf


def _int(value, default):
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    return n if n >= 0 else default


def _query(path):
    path, _, query = path.partition("?")
    params = {}
    for part in query.split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            params[k] = v
    return path, params


async def handle(ws, path=None):
    if path is None:
        path = ws.request.path if NEW_API else ws.path
    route, params = _query(path)
    try:
        if route == "/echo":
            async for msg in ws:
                await ws.send(msg)
        elif route == "/count":
            limit = _int(params.get("n"), 0)
            messages = nbytes = 0
            async for msg in ws:
                if msg == "summary":
                    await ws.send(json.dumps({"messages": messages, "bytes": nbytes}))
                    messages = nbytes = 0
                    continue
                messages += 1
                nbytes += len(msg.encode() if isinstance(msg, str) else msg)
                if limit and messages >= limit:
                    await ws.send(json.dumps({"messages": messages, "bytes": nbytes}))
                    messages = nbytes = 0
        elif route == "/download":
            dn = _int(params.get("n"), 64)
            ds = _int(params.get("size"), 1 << 20)
            async for msg in ws:
                n, size = dn, ds
                if isinstance(msg, str):
                    m = re.fullmatch(r"(\d+) (\d+)", msg)
                    if m:
                        n, size = int(m.group(1)), int(m.group(2))
                buf = payload(size)
                for _ in range(n):
                    await ws.send(buf)
        else:
            await ws.close(4404, "unknown path")
    except websockets.ConnectionClosed:
        pass


async def handle_raw(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            words = line.decode("ascii", "replace").split()
            if not words:
                continue
            if words[0] == "echo":
                while True:
                    data = await reader.read(1 << 16)
                    if not data:
                        return
                    writer.write(data)
                    await writer.drain()
            elif words[0] == "count":
                total = remaining = _int(words[1] if len(words) > 1 else 0, 0)
                while remaining:
                    data = await reader.read(min(remaining, 1 << 20))
                    if not data:
                        return
                    remaining -= len(data)
                writer.write(b"OK %d\n" % total)
                await writer.drain()
            elif words[0] == "download":
                total = _int(words[1] if len(words) > 1 else 0, 0)
                chunk = max(1, _int(words[2] if len(words) > 2 else 65536, 65536))
                buf = payload(min(chunk, total) or 1)
                while total > 0:
                    n = min(total, len(buf))
                    writer.write(buf if n == len(buf) else buf[:n])
                    total -= n
                    await writer.drain()
            else:
                break
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(args):
    options = dict(compression=None, max_size=None, ping_interval=None, write_limit=1 << 22)
    servers = []
    ports = {"ws": None, "wss": None, "tcp": None, "tls": None}
    ctx = None
    if args.cert and args.key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)

    async def start_ws(ssl_ctx):
        server = await _serve(handle, HOST, 0, ssl=ssl_ctx, **options)
        servers.append(server)
        return server.sockets[0].getsockname()[1] if NEW_API else list(server.sockets)[0].getsockname()[1]

    async def start_raw(ssl_ctx):
        server = await asyncio.start_server(handle_raw, HOST, 0, ssl=ssl_ctx)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    ports["ws"] = await start_ws(None)
    ports["tcp"] = await start_raw(None)
    if ctx is not None:
        ports["wss"] = await start_ws(ctx)
        ports["tls"] = await start_raw(ctx)
    ports["impl"] = "python %s, websockets %s (fallback)" % (
        sys.version.split()[0],
        websockets.__version__,
    )
    print(json.dumps(ports), flush=True)

    # Exit when the parent closes our standard input.
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(1 << 10):
                pass
        except Exception:
            pass
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
