"""Write the seed corpus of the fuzz targets into ``tests/fuzz/corpus/<target>/``.

The seeds are small valid (and a few typically invalid) inputs from which the fuzzer mutates
its way into the parsers: server frame streams with and without permessage-deflate, 101 and
refusal answers, WebSocket URLs, proxy answers, proxy URLs and ``NO_PROXY`` lists. Rerun after
changing an input layout: ``python tests/fuzz/make_corpus.py``. Files whose name starts with
``crash-`` are inputs that once failed a target; they are kept and never rewritten here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, List

from syncws.protocol.connection import close_payload
from syncws.protocol.deflate import DeflateParameters, PerMessageDeflate
from syncws.protocol.frames import Opcode, serialize_frame
from syncws.protocol.handshake import accept_key

HERE = Path(__file__).parent
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def frame(opcode: int, payload: bytes = b"", **flags: bool) -> bytes:
    return b"".join(serialize_frame(opcode, payload, mask=False, **flags))


def _compressed(messages: List[bytes], agreed: DeflateParameters) -> bytes:
    server = PerMessageDeflate("server", agreed)
    server.threshold = 0
    out = b""
    for message in messages:
        payload, rsv1 = server.encode(message)
        out += frame(Opcode.TEXT, payload, rsv1=rsv1)
    return out


def frame_seeds() -> Dict[str, bytes]:
    plain = bytes([0, 0, 0])
    chunked = bytes([0, 0, 0x5A])
    deflate = bytes([1, 7, 0])
    small_limit = bytes([0x10 | 8, 0x60, 3])
    text = "héllo wörld 🎉".encode("utf-8")
    seeds = {
        "text": plain + frame(Opcode.TEXT, text),
        "binary_chunked": chunked + frame(Opcode.BINARY, bytes(range(200))),
        "fragments_ping": plain
        + frame(Opcode.TEXT, text[:5], fin=False)
        + frame(Opcode.PING, b"p")
        + frame(Opcode.CONT, text[5:]),
        "pong_close": chunked + frame(Opcode.PONG, b"x") + frame(Opcode.CLOSE, close_payload(1000, "bye")),
        "empty_messages": plain + frame(Opcode.TEXT) + frame(Opcode.BINARY) + frame(Opcode.CLOSE),
        "bad_utf8": chunked + frame(Opcode.TEXT, b"ok \xed\xa0\x80 not"),
        "length_16": plain + frame(Opcode.BINARY, b"a" * 300),
        "too_big": small_limit + frame(Opcode.BINARY, b"b" * 100),
        "direct": bytes([8, 0, 7]) + frame(Opcode.TEXT, b"d" * 200),
        "deflate": deflate + _compressed([b"hello hello hello", b"", b"hello again"], DeflateParameters()),
        "deflate_no_context": bytes([3, 0, 0x21])
        + _compressed([b"abcabcabc" * 5, b"xyz"], DeflateParameters(server_no_context_takeover=True, server_max_window_bits=8)),
        "deflate_fragmented": deflate
        + frame(Opcode.TEXT, _compressed([b"fragmented message " * 4], DeflateParameters())[2:20], fin=False, rsv1=True)
        + frame(Opcode.CONT, _compressed([b"fragmented message " * 4], DeflateParameters())[20:]),
        "deflate_limit": bytes([0x11, 0x50, 9]) + _compressed([b"z" * 4000], DeflateParameters()),
    }
    return seeds


def http_seeds() -> Dict[str, bytes]:
    ok = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(KEY)}\r\n"
    )
    return {
        "101": bytes([0, 0]) + (ok + "\r\n").encode() + b"\x81\x02hi",
        "101_protocol_deflate": bytes([0x60 | 7, 3])
        + (ok + "Sec-WebSocket-Protocol: chat\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
           'client_max_window_bits="10"\r\n\r\n').encode(),
        "404": bytes([3, 1]) + b"HTTP/1.0 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!",
        "bad_header": bytes([0, 0]) + b"HTTP/1.1 101 OK\r\n folded: x\r\n\r\n",
        "big_limit": bytes([0x80, 0]) + b"HTTP/1.1 503\r\nRetry-After: 1\r\n\r\n",
    }


def url_seeds() -> Dict[str, bytes]:
    urls = [
        "ws://example.com/chat?room=1",
        "wss://user:pa%20ss@EXAMPLE.com:8443/a/../b/./c",
        "http://[::1]:80/",
        "https://0x7f.1/%zz",
        "ws://münchen.example/ä?ö",
        "  ws:\\\\host\t:0999\\path ",
        "ws://192.168.0.257/",
        "wss://a..b/#frag",
    ]
    return {f"url_{index}": url.encode("utf-8") for index, url in enumerate(urls)}


def proxy_seeds() -> Dict[str, bytes]:
    return {
        "connect_ok": bytes([0, 7]) + b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
        "connect_407": bytes([0, 0])
        + b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n',
        "connect_eof": bytes([0, 255]) + b"HTTP/1.1 200 OK\r\n",
        "url_http": bytes([1]) + b"http://user:p%40ss@proxy.example:3128",
        "url_socks": bytes([1]) + b"socks5h://[::1]:1080",
        "url_idna": bytes([1]) + "https://bücher.example".encode("utf-8"),
        "no_proxy": bytes([2, 80]) + b"localhost, .example.com,10.0.0.0/8,[::1]:8080\x00www.example.com",
        "no_proxy_ip": bytes([2, 0x90]) + b"*.internal:8080, 192.168.1.1\x0010.1.2.3",
    }


def write(target: str, seeds: Dict[str, bytes]) -> None:
    directory = HERE / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / f"seed-{name}").write_bytes(data)


def main() -> None:
    write("frames", frame_seeds())
    write("http_response", http_seeds())
    write("url", url_seeds())
    write("proxy", proxy_seeds())
    total = sum(1 for _ in (HERE / "corpus").rglob("seed-*"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((HERE / "corpus").rglob("seed-*"))))
    print(f"{total} seeds written (sha256 {digest.hexdigest()[:12]})")


if __name__ == "__main__":
    main()
