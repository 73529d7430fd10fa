"""A small user program that must pass ``mypy --strict`` (run by tests/project/test_typing.py).

It is what the README shows: callbacks, the blocking helpers, executors (a thread pool, a
post function, Tk's ``executor(lambda: ...)``), headers, cookies, TLS, proxies and compression
options. It is type-checked only; nothing here runs in the test.
"""

from __future__ import annotations

import http.cookiejar
import ssl
import tkinter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List

import syncws
from syncws.executors import InlineExecutor, TkExecutor
from syncws.protocol.deflate import DeflateOptions


def on_message(event: syncws.MessageEvent) -> None:
    data = event.data
    if isinstance(data, syncws.Blob):
        print("binary", data.bytes()[:16])
    else:
        print("received", data)
    event.target.close(1000, "thanks")


def callbacks(url: str) -> bool:
    ws = syncws.WebSocket(
        url,
        ["chat.v2", "chat.v1"],
        onopen=lambda e: e.target.send("hello"),
        onmessage=on_message,
        onerror=lambda e: print("error:", e.error),
        onclose=lambda e: print("closed", e.code, e.reason, e.was_clean),
        headers={"X-Token": "abc"},
        compression={"client_max_window_bits": 10, "server_max_window_bits": 10, "mem_level": 5},
        executor=InlineExecutor(),
    )
    return ws.wait(10)


def script(url: str, context: ssl.SSLContext) -> List[str]:
    jar = http.cookiejar.CookieJar()
    received: List[str] = []
    with syncws.connect(
        url,
        timeout=5,
        ssl=context,
        cookies=jar,
        proxy=None,
        headers=[("X-Trace", "1"), ("X-Trace", "2")],
        compression=DeflateOptions(server_max_window_bits=12, compress_level=6),
        ping_interval=None,
        max_message_size=None,
    ) as ws:
        ws.send("subscribe")
        first = ws.recv(timeout=5)
        received.append(first if isinstance(first, str) else first.decode())
        for data in ws:
            received.append(str(data))
    return received


def pool_and_post(url: str) -> None:
    pool = ThreadPoolExecutor(8)
    syncws.WebSocket(url, executor=pool, compression=False)
    posted: List[Callable[[], object]] = []
    syncws.WebSocket(url, executor=posted.append)  # any callable post(fn) works


def gui(url: str) -> None:
    root = tkinter.Tk()
    label = tkinter.Label(root, text="waiting")
    executor = TkExecutor(root)

    def from_a_worker(result: str) -> None:
        executor(lambda: label.config(text=result))  # runs on the Tk thread

    ws = syncws.WebSocket(
        url, executor=executor, onmessage=lambda e: label.config(text=str(e.data))
    )
    from_a_worker(ws.url)
    root.mainloop()


if __name__ == "__main__":
    callbacks("ws://127.0.0.1:8765/")
