"""permessage-deflate (RFC 7692): negotiation in both roles, the codec, limits, interop.

Conformance groups 12 (compressed messages, context takeover) and 13 (negotiation).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import tracemalloc
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from syncws.errors import HandshakeError, MessageTooBig, ProtocolError
from syncws.protocol.deflate import (
    DeflateOptions,
    DeflateParameters,
    PerMessageDeflate,
    client_accept,
    client_offer,
    options_from_user,
    parse_extensions,
    server_negotiate,
    server_response,
)

WINDOWS = range(8, 16)
PD = "permessage-deflate"


# --- data ---


def json_text(size: int, seed: int) -> bytes:
    """JSON-like chat events, the kind of text WebSocket apps send."""
    rng = random.Random(seed)
    parts = []
    total = 0
    i = seed
    while total < size:
        event = {
            "event": rng.choice(["message", "presence", "typing"]),
            "user": {"id": 1000 + i % 37, "name": rng.choice(["alice", "bob", "carol", "dave"])},
            "text": rng.choice(["hello there", "ok", "see you tomorrow", "lol", "thanks!"]),
            "price": round(rng.uniform(1, 60000), 2),
            "seq": i,
        }
        part = json.dumps(event) + ","
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)[:size].encode()


def binary_like(size: int, seed: int) -> bytes:
    """Random bytes with some repeats: partly compressible, with matches at varied distances."""
    rng = random.Random(seed)
    block = rng.randbytes(rng.choice([100, 300, 1000, 5000]))
    out = bytearray()
    while len(out) < size:
        out += block if rng.random() < 0.5 else os.urandom(rng.randint(1, 400))
    return bytes(out[:size])


def messages(seed: int = 0) -> List[bytes]:
    """200 messages from 16 B to 128 KiB, text and binary mixed, most of them small.

    Log-uniform sizes: 178 from 16 B to 4 KiB and 20 from 4 KiB to 128 KiB, plus both ends,
    shuffled: the spread of real traffic, at about 1 MB per pass so 324 passes stay quick.
    """
    rng = random.Random(seed)
    sizes = [16, 128 * 1024]
    sizes += [int(2 ** rng.uniform(4, 12)) for _ in range(178)]
    sizes += [int(2 ** rng.uniform(12, 17)) for _ in range(20)]
    rng.shuffle(sizes)
    return [(json_text if i % 3 else binary_like)(size, seed * 10_000 + i) for i, size in enumerate(sizes)]


MESSAGES = messages()


def frames_of(payload: bytes, rng: random.Random, max_frame: int) -> Iterator[Tuple[bytes, bool, bool]]:
    """Split a wire payload into (chunk, first, fin) frames of random sizes (some empty)."""
    pos = 0
    first = True
    while True:
        size = rng.randint(0, max_frame)
        chunk = payload[pos : pos + size]
        pos += size
        fin = pos >= len(payload)
        yield chunk, first, fin
        first = False
        if fin:
            return


def transfer(
    sender: PerMessageDeflate,
    receiver: PerMessageDeflate,
    payload: bytes,
    *,
    rng: Optional[random.Random] = None,
    max_frame: int = 4096,
    max_size: Optional[int] = None,
) -> Tuple[bytes, bool, bytes]:
    """Encode one message, carry it in frames, decode it: (decoded, rsv1, wire payload)."""
    wire, rsv1 = sender.encode(payload)
    wire = bytes(wire)
    if rng is None:
        pieces = [(wire, True, True)]
    else:
        pieces = list(frames_of(wire, rng, max_frame))
    out = []
    received = 0
    for chunk, first, fin in pieces:
        allowance = None if max_size is None else max_size - received
        data = receiver.decode_frame(chunk, first=first, fin=fin, compressed=rsv1, max_size=allowance)
        received += len(data)
        out.append(data)
    return b"".join(out), rsv1, wire


def pair(params: Dict[str, Any], offer: Optional[DeflateOptions] = None, **codec: Any) -> Tuple[PerMessageDeflate, PerMessageDeflate]:
    """A client and a server codec agreeing on exactly ``params``, through the real header."""
    options = offer or DeflateOptions(**codec)
    text, server = server_response(params, DeflateOptions(**codec))
    client = client_accept([text], options)
    assert client is not None
    assert client.agreed == server.agreed
    assert client.response_text == server.response_text == text
    return client, server


# --- options ---


def test_options_defaults_and_offer() -> None:
    options = DeflateOptions()
    assert options.client_max_window_bits is True
    assert options.threshold == 64 and options.compress_level == 3 and options.mem_level == 8
    assert client_offer(options) == "permessage-deflate; client_max_window_bits"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"server_no_context_takeover": 1}, TypeError),
        ({"client_no_context_takeover": "yes"}, TypeError),
        ({"server_max_window_bits": 7}, ValueError),
        ({"server_max_window_bits": 16}, ValueError),
        ({"server_max_window_bits": True}, TypeError),
        ({"server_max_window_bits": "10"}, TypeError),
        ({"client_max_window_bits": 16}, ValueError),
        ({"client_max_window_bits": 7.5}, TypeError),
        ({"threshold": -1}, ValueError),
        ({"threshold": 1.5}, TypeError),
        ({"compress_level": 10}, ValueError),
        ({"mem_level": 0}, ValueError),
    ],
)
def test_options_validation(kwargs: Dict[str, object], error: type) -> None:
    with pytest.raises(error):
        DeflateOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options, offer",
    [
        (DeflateOptions(client_max_window_bits=None), "permessage-deflate"),
        (DeflateOptions(client_max_window_bits=False), "permessage-deflate"),
        (DeflateOptions(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=10"),
        (
            DeflateOptions(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=12,
                client_max_window_bits=9,
            ),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=12; client_max_window_bits=9, "
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=9",
        ),
    ],
)
def test_client_offer(options: DeflateOptions, offer: str) -> None:
    assert client_offer(options) == offer


def test_options_from_user() -> None:
    assert options_from_user(True) == DeflateOptions()
    assert options_from_user(False) is None
    assert options_from_user(None) is None
    options = DeflateOptions(server_max_window_bits=10)
    assert options_from_user(options) is options
    assert options_from_user({"server_max_window_bits": 10, "threshold": 0}) == DeflateOptions(
        server_max_window_bits=10, threshold=0
    )
    assert options_from_user({}) == DeflateOptions()
    for bad in ("yes", 1, 0, [("threshold", 1)], {"level": 3}):
        with pytest.raises(TypeError):
            options_from_user(bad)
    with pytest.raises(ValueError):
        options_from_user({"client_max_window_bits": 20})


# --- header syntax ---


def test_parse_extensions_syntax() -> None:
    assert parse_extensions([]) == []
    assert parse_extensions(["", " , ,"]) == []
    assert parse_extensions(
        ['foo, permessage-deflate ;server_max_window_bits = "1\\0" ; client_no_context_takeover', "bar;x=y"]
    ) == [
        ("foo", []),
        (PD, [("server_max_window_bits", "10"), ("client_no_context_takeover", None)]),
        ("bar", [("x", "y")]),
    ]
    for bad in ["permessage-deflate;", "permessage-deflate; a=", "a b", '"x"', "a; b=\"unterminated", "a;b=c d", "é"]:
        with pytest.raises(ValueError):
            parse_extensions([bad])


# --- client side: valid answers, every combination (group 13) ---

COMBINATIONS = list(
    itertools.product([False, True], [False, True], [None, *WINDOWS], [None, *WINDOWS])
)


def response_params(snct: bool, cnct: bool, smwb: Optional[int], cmwb: Optional[int]) -> Dict[str, Any]:
    return {
        "server_no_context_takeover": snct,
        "client_no_context_takeover": cnct,
        "server_max_window_bits": smwb,
        "client_max_window_bits": cmwb,
    }


def test_every_valid_answer_negotiates() -> None:
    """All 324 answers to the browsers' offer are accepted and agreed on identically."""
    for snct, cnct, smwb, cmwb in COMBINATIONS:
        client, server = pair(response_params(snct, cnct, smwb, cmwb))
        assert client.agreed == DeflateParameters(snct, cnct, smwb or 15, cmwb or 15)
        assert client.role == "client" and server.role == "server"
        assert client.name == PD


def test_response_text_is_what_the_server_sent() -> None:
    client = client_accept(["permessage-deflate;server_max_window_bits=\"10\""], DeflateOptions())
    assert client is not None
    assert client.response_text == "permessage-deflate;server_max_window_bits=\"10\""
    assert client_accept([], DeflateOptions()) is None
    assert client_accept([""], DeflateOptions()) is None
    assert client_accept([], None) is None


def test_what_we_offered_is_honoured() -> None:
    # client_no_context_takeover offered: kept even when the server does not echo it.
    client = client_accept([PD], DeflateOptions(client_no_context_takeover=True))
    assert client is not None and client.agreed.client_no_context_takeover
    # client_max_window_bits=10 offered, absent in the answer: we still keep to 10.
    client = client_accept([PD], DeflateOptions(client_max_window_bits=10))
    assert client is not None and client.agreed.client_max_window_bits == 10
    # A smaller value than offered is fine.
    client = client_accept([PD + "; client_max_window_bits=9"], DeflateOptions(client_max_window_bits=10))
    assert client is not None and client.agreed.client_max_window_bits == 9
    client = client_accept(
        [PD + "; server_max_window_bits=9; server_no_context_takeover"],
        DeflateOptions(server_max_window_bits=12, server_no_context_takeover=True),
    )
    assert client is not None
    assert client.agreed == DeflateParameters(True, False, 9, 15)


@pytest.mark.parametrize(
    "options, offer",
    [
        (DeflateOptions(), PD + "; client_max_window_bits"),
        (DeflateOptions(client_max_window_bits=10, client_no_context_takeover=True),
         PD + "; client_no_context_takeover; client_max_window_bits=10"),
        (DeflateOptions(server_max_window_bits=10, client_max_window_bits=10),
         PD + "; server_max_window_bits=10; client_max_window_bits=10, "
         + PD + "; client_max_window_bits=10"),
        (DeflateOptions(server_no_context_takeover=True),
         PD + "; server_no_context_takeover; client_max_window_bits, " + PD + "; client_max_window_bits"),
    ],
)
def test_a_tuned_offer_asking_the_server_for_something_carries_a_fallback(
    options: DeflateOptions, offer: str
) -> None:
    assert client_offer(options) == offer


@pytest.mark.parametrize(
    "values, options, agreed",
    [
        # gorilla/websocket's answer to every offer: the tuned one did not get its window.
        ([PD + "; server_no_context_takeover; client_no_context_takeover"],
         DeflateOptions(server_max_window_bits=10, client_max_window_bits=10, mem_level=5),
         DeflateParameters(True, True, 15, 10)),
        ([PD], DeflateOptions(server_no_context_takeover=True), DeflateParameters(False, False, 15, 15)),
        ([PD], DeflateOptions(server_max_window_bits=10), DeflateParameters(False, False, 15, 15)),
        ([PD + "; server_max_window_bits=11"], DeflateOptions(server_max_window_bits=10),
         DeflateParameters(False, False, 11, 15)),
    ],
)
def test_answers_to_the_fallback_offer_are_accepted(
    values: List[str], options: DeflateOptions, agreed: DeflateParameters
) -> None:
    client = client_accept(values, options)
    assert client is not None and client.agreed == agreed


@pytest.mark.parametrize(
    "values, options",
    [
        (["x-webkit-deflate-frame"], DeflateOptions()),
        (["permessage-deflate, foo"], DeflateOptions()),
        (["Permessage-Deflate"], DeflateOptions()),
        ([PD], None),
        (["permessage-deflate, permessage-deflate"], DeflateOptions()),
        ([PD, PD], DeflateOptions()),
        ([PD + "; foo"], DeflateOptions()),
        ([PD + "; foo=1"], DeflateOptions()),
        ([PD + "; server_no_context_takeover; server_no_context_takeover"], DeflateOptions()),
        ([PD + "; server_max_window_bits=10; server_max_window_bits=10"], DeflateOptions()),
        ([PD + "; client_max_window_bits=10; client_max_window_bits=11"], DeflateOptions()),
        ([PD + "; server_no_context_takeover=1"], DeflateOptions()),
        ([PD + '; client_no_context_takeover=""'], DeflateOptions()),
        ([PD + "; client_no_context_takeover=true"], DeflateOptions()),
        ([PD + "; server_max_window_bits"], DeflateOptions()),
        ([PD + "; client_max_window_bits"], DeflateOptions()),
        ([PD + "; server_max_window_bits=7"], DeflateOptions()),
        ([PD + "; server_max_window_bits=16"], DeflateOptions()),
        ([PD + "; server_max_window_bits=09"], DeflateOptions()),
        ([PD + "; server_max_window_bits=010"], DeflateOptions()),
        ([PD + "; server_max_window_bits=+9"], DeflateOptions()),
        ([PD + "; server_max_window_bits=1e1"], DeflateOptions()),
        ([PD + '; server_max_window_bits=" 10"'], DeflateOptions()),
        ([PD + '; server_max_window_bits=""'], DeflateOptions()),
        ([PD + "; client_max_window_bits=0"], DeflateOptions()),
        ([PD + "; client_max_window_bits=15"], DeflateOptions(client_max_window_bits=None)),
        ([PD + "; client_max_window_bits=11"], DeflateOptions(client_max_window_bits=10)),
        # Fits neither the tuned offer nor its fallback (which keeps the client's promises).
        ([PD + "; client_max_window_bits=11"], DeflateOptions(server_max_window_bits=9, client_max_window_bits=10)),
        ([PD + "; client_max_window_bits"], DeflateOptions(server_no_context_takeover=True, client_max_window_bits=None)),
        ([PD + ";"], DeflateOptions()),
        ([PD + " server_no_context_takeover"], DeflateOptions()),
    ],
)
def test_invalid_answers_fail_the_handshake(values: List[str], options: Optional[DeflateOptions]) -> None:
    with pytest.raises(HandshakeError):
        client_accept(values, options)


# --- round trips (group 12) ---


@pytest.mark.parametrize("snct, cnct, smwb, cmwb", COMBINATIONS)
def test_round_trip_every_combination(snct: bool, cnct: bool, smwb: Optional[int], cmwb: Optional[int]) -> None:
    """200 messages of 16 B..128 KiB each way, in frames of random sizes, for each answer."""
    client, server = pair(response_params(snct, cnct, smwb, cmwb))
    rng = random.Random(f"{snct}{cnct}{smwb}{cmwb}")
    for sender, receiver in ((client, server), (server, client)):
        for payload in MESSAGES:
            decoded, rsv1, _ = transfer(sender, receiver, payload, rng=rng)
            assert decoded == payload
            if len(payload) < 64:
                assert not rsv1  # below the threshold
            elif not sender._local_no_context:
                assert rsv1  # with context takeover, even noise is sent compressed


@pytest.mark.parametrize("no_context", [False, True])
@pytest.mark.parametrize("role", ["client", "server"])
def test_context_takeover_shrinks_repeats(role: str, no_context: bool) -> None:
    flag = f"{role}_no_context_takeover"
    client, server = pair({flag: no_context})
    sender, receiver = (client, server) if role == "client" else (server, client)
    payload = json_text(2000, 1)
    wires = []
    for _ in range(3):
        decoded, rsv1, wire = transfer(sender, receiver, payload)
        assert decoded == payload and rsv1
        wires.append(wire)
    if no_context:
        assert wires[0] == wires[1] == wires[2]
    else:
        assert len(wires[1]) < len(wires[0]) // 5
    # Without context takeover each message decodes on its own, with a fresh inflater.
    bits = getattr(sender.agreed, f"{role}_max_window_bits")
    for wire in wires[1:]:
        try:
            alone = zlib.decompressobj(-bits).decompress(wire + b"\x00\x00\xff\xff")
        except zlib.error:
            alone = None
        assert (alone == payload) == no_context


@pytest.mark.parametrize("bits", [8, 9, 10, 15])
def test_no_context_takeover_messages_are_independent(bits: int) -> None:
    client, server = pair({"client_no_context_takeover": True, "client_max_window_bits": bits})
    for payload in MESSAGES[:60]:
        wire, rsv1 = client.encode(payload)
        if rsv1:
            fresh = zlib.decompressobj(-bits)
            assert b"".join(fresh.decompress(wire[i : i + 7]) for i in range(0, len(wire), 7)) + fresh.decompress(
                b"\x00\x00\xff\xff"
            ) == payload


def test_one_byte_frames() -> None:
    client, server = pair({"server_max_window_bits": 10})
    for payload in [json_text(5000, 3), binary_like(3000, 4), json_text(100, 5)]:
        for sender, receiver in ((client, server), (server, client)):
            wire, rsv1 = sender.encode(payload)
            assert rsv1
            out = []
            for i in range(len(wire)):
                out.append(
                    receiver.decode_frame(
                        wire[i : i + 1], first=i == 0, fin=i == len(wire) - 1, compressed=True, max_size=None
                    )
                )
            assert b"".join(out) == payload


def test_fragmented_with_empty_frames_and_interleaved_uncompressed() -> None:
    client, server = pair({})
    rng = random.Random(7)
    for i, payload in enumerate(MESSAGES[:80]):
        decoded, _, _ = transfer(client, server, payload, rng=rng, max_frame=rng.choice([1, 5, 100, 70000]))
        assert decoded == payload
        # An uncompressed message between compressed ones passes through untouched.
        plain = b"plain %d" % i
        assert server.decode_frame(plain, first=True, fin=True, compressed=False, max_size=None) == plain


def test_threshold_and_incompressible_data() -> None:
    client, server = pair({}, threshold=10)
    assert client.encode(b"short") == (b"short", False)
    assert client.encode(b"0123456789")[1] is True
    noise = os.urandom(5000)
    # With context takeover an incompressible message is still sent compressed...
    decoded, rsv1, _ = transfer(client, server, noise)
    assert rsv1 and decoded == noise
    # ...without it, it goes out as it is.
    client, server = pair({"client_no_context_takeover": True}, threshold=10)
    assert client.encode(noise) == (noise, False)


def test_empty_message_compressed() -> None:
    client, server = pair({}, threshold=0)
    wire, rsv1 = client.encode(b"")
    assert rsv1 and wire == b"\x00"
    for payload in (b"", b"abc" * 50, b"", b"abc" * 50):
        decoded, rsv1, _ = transfer(client, server, payload)
        assert decoded == payload and rsv1
    # A peer that sends an empty compressed payload: an empty message, stream still in step.
    assert server.decode_frame(b"", first=True, fin=True, compressed=True, max_size=None) == b""
    decoded, _, _ = transfer(client, server, b"xyz" * 40)
    assert decoded == b"xyz" * 40


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_rfc_7692_examples() -> None:
    """The payloads of RFC 7692 7.2.3, each meaning "Hello"."""
    client, _ = pair({})
    decode = client.decode_frame
    assert decode(h("f248cdc9c90700"), first=True, fin=True, compressed=True, max_size=None) == b"Hello"
    # 7.2.3.2: the same message again, with context takeover: back-references only.
    assert decode(h("f200110000"), first=True, fin=True, compressed=True, max_size=None) == b"Hello"
    # 7.2.3.3: a stored (uncompressed) block.
    assert decode(h("000500faff48656c6c6f00"), first=True, fin=True, compressed=True, max_size=None) == b"Hello"
    # 7.2.3.4: a BFINAL block followed by 0x00.
    assert decode(h("f348cdc9c9070000"), first=True, fin=True, compressed=True, max_size=None) == b"Hello"
    # 7.2.3.5: two blocks in one message.
    assert decode(h("f24805000000ffffcac9c90700"), first=True, fin=True, compressed=True, max_size=None) == b"Hello"
    # 7.2.3.6: a flushed fragment (tail kept: not the end), then an empty last one (0x00).
    assert decode(h("f248cdc9c907000000ffff"), first=True, fin=False, compressed=True, max_size=None) == b"Hello"
    assert decode(h("00"), first=False, fin=True, compressed=True, max_size=None) == b""
    # 7.2.3.1 the other way round: what we send.
    client, _ = pair({}, threshold=0)
    assert client.encode(b"Hello") == (h("f248cdc9c90700"), True)
    assert client.encode(b"Hello") == (h("f200110000"), True)


def test_final_block_from_peer() -> None:
    """A sender may end a message with a BFINAL block; we go on with a fresh stream."""
    client, server = pair({})
    for i in range(3):
        payload = json_text(3000, i)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        wire = compressor.compress(payload) + compressor.flush(zlib.Z_FINISH)
        assert client.decode_frame(wire, first=True, fin=True, compressed=True, max_size=None) == payload
        # RFC 7692 7.2.3.4's form: the final block, then 0x00 so that the tail is a whole block.
        assert client.decode_frame(wire + b"\x00", first=True, fin=True, compressed=True, max_size=None) == payload
        # BFINAL in the middle of a message: two streams back to back.
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        second = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        out = client.decode_frame(wire + second[:-4], first=True, fin=True, compressed=True, max_size=None)
        assert out == payload + payload


def test_corrupt_data_is_a_protocol_error() -> None:
    client, server = pair({})
    with pytest.raises(ProtocolError) as info:
        client.decode_frame(b"\xff\xff\xff\xff", first=True, fin=True, compressed=True, max_size=None)
    assert info.value.close_code == 1002
    assert not isinstance(info.value, MessageTooBig)
    # A distance reaching before anything was sent.
    client, server = pair({})
    bad = bytes([0b00000011, 0b11111000]) + b"\x00" * 8  # fixed Huffman, then garbage codes
    with pytest.raises(ProtocolError):
        for i in range(len(bad)):
            client.decode_frame(bad[i : i + 1], first=i == 0, fin=i == len(bad) - 1, compressed=True, max_size=None)


# --- limits ---


def zero_bomb(total: int, chunk: int = 1 << 20) -> bytes:
    """A raw DEFLATE stream of ``total`` zero bytes, built from one repeated full-flush block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(b"\x00" * chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (total // chunk)


def test_limit_is_exact() -> None:
    client, server = pair({})
    payload = json_text(10_000, 9)
    decoded, _, _ = transfer(server, client, payload, max_size=10_000)
    assert decoded == payload
    client, server = pair({})
    with pytest.raises(MessageTooBig) as info:
        transfer(server, client, payload, max_size=9_999)
    assert info.value.close_code == 1009
    # The same across frames, with the allowance running down.
    client, server = pair({})
    with pytest.raises(MessageTooBig):
        transfer(server, client, payload, rng=random.Random(1), max_frame=50, max_size=9_999)
    # Uncompressed messages are held to the same limit.
    with pytest.raises(MessageTooBig):
        client.decode_frame(b"x" * 11, first=True, fin=True, compressed=False, max_size=10)


@pytest.mark.parametrize("frame_size", [None, 64 * 1024])
def test_decompression_bomb(frame_size: Optional[int]) -> None:
    bomb = zero_bomb(1 << 30)
    assert len(bomb) < 2 << 20
    client, _ = pair({})
    limit = 1 << 20
    frames = [bomb] if frame_size is None else [bomb[i : i + frame_size] for i in range(0, len(bomb), frame_size)]
    tracemalloc.start()
    started = time.perf_counter()
    received = 0
    try:
        with pytest.raises(MessageTooBig):
            for i, frame in enumerate(frames):
                data = client.decode_frame(
                    frame, first=i == 0, fin=i == len(frames) - 1, compressed=True, max_size=limit - received
                )
                received += len(data)
                del data
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB"


# --- the 8-bit window ---


def inflate_bytewise(data: bytes, bits: int) -> bytes:
    """Inflate one byte at a time, so back-references reach into zlib's window and get checked."""
    decoder = zlib.decompressobj(-bits)
    return b"".join(decoder.decompress(data[i : i + 1]) for i in range(len(data)))


def test_bytewise_inflate_detects_too_far_distances() -> None:
    """The check below is only meaningful if an 8-bit inflater rejects a 300-byte distance."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -10)
    wire = compressor.compress(os.urandom(300) * 3) + compressor.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(zlib.error, match="too far back"):
        inflate_bytewise(wire, 8)


@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_8_bit_window_output_fits_an_8_bit_inflater(level: int) -> None:
    """Agreed 8 bits: we compress with 9, and no distance ever exceeds 256 (zlib's MAX_DIST)."""
    client, server = pair({"client_max_window_bits": 8, "server_max_window_bits": 8}, compress_level=level, threshold=0)
    rng = random.Random(level)
    for sender in (client, server):
        stream = []
        for _ in range(60):
            block = os.urandom(rng.choice([200, 249, 250, 251, 255, 256, 257, 300, 400, 500]))
            payload = block * rng.randint(1, 4) + os.urandom(rng.randint(0, 60))
            wire, rsv1 = sender.encode(payload)
            assert rsv1
            stream.append(wire + b"\x00\x00\xff\xff")
        # Whole stream (context takeover across messages) through a strict 8-bit inflater.
        inflate_bytewise(b"".join(stream), 8)


# --- server role ---


def test_server_negotiate() -> None:
    assert server_negotiate([]) is None
    assert server_negotiate(["foo, bar"]) is None
    assert server_negotiate(["this is not a header;;"]) is None
    text, codec = server_negotiate(["permessage-deflate; client_max_window_bits"])  # type: ignore[misc]
    assert text == PD and codec.role == "server"
    assert codec.agreed == DeflateParameters()
    # The first acceptable offer wins; invalid ones are declined.
    result = server_negotiate(
        [
            "foo, permessage-deflate; bogus, permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover, permessage-deflate",
        ]
    )
    assert result is not None
    assert result[0] == "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
    # Server preferences: flags always sent, windows capped.
    options = DeflateOptions(server_no_context_takeover=True, server_max_window_bits=12, client_max_window_bits=9)
    result = server_negotiate(["permessage-deflate; server_max_window_bits=14; client_max_window_bits=11"], options)
    assert result is not None
    assert result[0] == "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9"
    result = server_negotiate(["permessage-deflate; client_max_window_bits=8"], options)
    assert result is not None and result[1].agreed.client_max_window_bits == 8
    # A server that needs a small client window declines an offer that cannot honour it.
    assert server_negotiate([PD], options) is None
    assert server_negotiate([PD + ", " + PD + "; client_max_window_bits"], options) is not None


@pytest.mark.parametrize(
    "client_options, server_options",
    [
        (DeflateOptions(), DeflateOptions()),
        (DeflateOptions(client_max_window_bits=None), DeflateOptions()),
        (DeflateOptions(server_no_context_takeover=True, server_max_window_bits=9), DeflateOptions()),
        (DeflateOptions(client_no_context_takeover=True, client_max_window_bits=10), DeflateOptions(client_max_window_bits=12)),
        (DeflateOptions(server_max_window_bits=8, client_max_window_bits=8), DeflateOptions(server_max_window_bits=9)),
        (DeflateOptions(), DeflateOptions(client_no_context_takeover=True, client_max_window_bits=8)),
    ],
)
def test_client_and_server_agree(client_options: DeflateOptions, server_options: DeflateOptions) -> None:
    result = server_negotiate([client_offer(client_options)], server_options)
    assert result is not None
    text, server = result
    client = client_accept([text], client_options)
    assert client is not None
    # The client may have promised more than the server answered (its own no-takeover, its
    # offered window): that only narrows what the server receives, never widens it.
    assert client.agreed.server_no_context_takeover == server.agreed.server_no_context_takeover
    assert client.agreed.server_max_window_bits == server.agreed.server_max_window_bits
    assert client.agreed.client_max_window_bits <= server.agreed.client_max_window_bits
    rng = random.Random(3)
    for payload in MESSAGES[:40]:
        for sender, receiver in ((client, server), (server, client)):
            assert transfer(sender, receiver, payload, rng=rng)[0] == payload


def test_server_response_validation() -> None:
    with pytest.raises(ValueError):
        server_response({"bogus": True})
    with pytest.raises(ValueError):
        server_response({"server_max_window_bits": 16})
    with pytest.raises(TypeError):
        server_response({"server_no_context_takeover": 1})
    text, codec = server_response({"server_max_window_bits": 8, "client_no_context_takeover": True})
    assert text == "permessage-deflate; server_max_window_bits=8; client_no_context_takeover"
    assert codec.agreed == DeflateParameters(False, True, 8, 15)
    with pytest.raises(ValueError):
        PerMessageDeflate("peer", DeflateParameters())


# --- interop with the websockets package's own implementation ---


@pytest.mark.parametrize("snct, cnct", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("smwb, cmwb", [(15, 15), (9, 12), (12, 9), (10, 10), (8, 9), (9, 8)])
def test_interop_with_websockets(snct: bool, cnct: bool, smwb: int, cmwb: int) -> None:
    """Our client codec against websockets' server-side codec, both directions."""
    pmd = pytest.importorskip("websockets.extensions.permessage_deflate")
    frames = pytest.importorskip("websockets.frames")
    client, _ = pair(response_params(snct, cnct, smwb, cmwb), offer=DeflateOptions(threshold=0))
    # websockets cannot compress with an 8-bit window (it refuses to agree to it), so its
    # sending side is 9 there, which our 8-bit inflater must still read (zlib's MAX_DIST).
    theirs = pmd.PerMessageDeflate(
        remote_no_context_takeover=cnct,
        local_no_context_takeover=snct,
        remote_max_window_bits=cmwb,
        local_max_window_bits=max(smwb, 9),
    )
    for payload in MESSAGES[:60]:
        wire, rsv1 = client.encode(payload)
        frame = frames.Frame(frames.Opcode.BINARY, wire, rsv1=rsv1)
        assert theirs.decode(frame).data == payload
        frame = theirs.encode(frames.Frame(frames.Opcode.BINARY, payload))
        out = client.decode_frame(bytes(frame.data), first=True, fin=True, compressed=frame.rsv1, max_size=None)
        assert out == payload


# --- throughput (run with SYNCWS_BENCH=1 -s) ---


@pytest.mark.skipif(not os.environ.get("SYNCWS_BENCH"), reason="set SYNCWS_BENCH=1 to measure")
@pytest.mark.parametrize("size", [1024, 64 * 1024])
@pytest.mark.parametrize("compress", [True, False])
def test_throughput(size: int, compress: bool) -> None:
    client, server = pair({}, threshold=64 if compress else 1 << 30)
    payloads = [json_text(size, i) for i in range(max(20, (8 << 20) // size))]
    started = time.perf_counter()
    wire_bytes = 0
    for payload in payloads:
        wire, rsv1 = client.encode(payload)
        wire_bytes += len(wire)
        server.decode_frame(wire, first=True, fin=True, compressed=rsv1, max_size=None)
    elapsed = time.perf_counter() - started
    total = sum(map(len, payloads))
    print(
        f"\n{size} B messages, compression {'on' if compress else 'off'}: "
        f"{total / elapsed / 1e6:.0f} MB/s compress+decompress, "
        f"{elapsed / len(payloads) * 1e6:.1f} us/message, ratio {wire_bytes / total:.3f}"
    )


# --- corners the property tests and coverage pointed at ---


def test_server_response_leaves_out_false_windows():
    text, codec = server_response({"client_max_window_bits": False, "server_no_context_takeover": True})
    assert text == "permessage-deflate; server_no_context_takeover"
    assert codec.agreed.client_max_window_bits == 15
    assert repr(codec) == f"<PerMessageDeflate server {text!r}>"


@pytest.mark.parametrize("payload, inflated", [(b"\xb2", b"8"), (b"\x6a", b"\x80")])
def test_tail_is_inflated_with_the_data(payload: bytes, inflated: bytes):
    """RFC 7692 7.2.2: the receiver appends 00 00 ff ff and inflates. A sender whose data
    stops inside a Huffman block (no flush) gets the tail decoded as symbols of that block:
    their output belongs to the message, and counts against max_size."""
    codec = PerMessageDeflate("client", DeflateParameters())
    assert codec.decode_frame(payload, first=True, fin=True, compressed=True, max_size=None) == inflated
    codec = PerMessageDeflate("client", DeflateParameters())
    with pytest.raises(MessageTooBig):
        codec.decode_frame(b"\xb2", first=True, fin=True, compressed=True, max_size=0)
