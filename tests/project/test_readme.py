"""The README's tour runs as printed, against syncws's echo server (``python -m syncws serve``)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any, Iterator, List

import pytest

import syncws

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOUR_URL = "ws://127.0.0.1:8765/"  # where `python -m syncws serve` listens


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The examples use proxy="auto"; the test server is reached directly."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    yield


def tour() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        text = readme.read()
    return text[text.index("## A tour"): text.index("## Using syncws from a GUI")]


def python_blocks(text: str) -> List[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def run(code: str, url: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace(TOUR_URL, url), "README.md", "exec"), {"syncws": syncws})
    return out.getvalue()


def test_the_tour_talks_to_the_local_echo_server() -> None:
    text = tour()
    assert "python -m syncws serve" in text
    assert "echo.example.com" not in text
    runnable = [code for code in python_blocks(text) if TOUR_URL in code]
    assert len(runnable) == 2  # callbacks, and the blocking helpers


def test_the_callbacks_example_runs(ws_server: Any) -> None:
    code = next(code for code in python_blocks(tour()) if "onmessage=on_message" in code)
    output = run(code, ws_server.url).splitlines()
    assert output == ["received hello", "closed 1000 thanks True"]


def test_the_blocking_example_runs(ws_server: Any) -> None:
    code = next(code for code in python_blocks(tour()) if "syncws.connect(" in code)
    assert run(code, ws_server.url).splitlines() == ["subscribe", "one", "two", "three"]


def test_the_tour_says_how_to_get_bytes_from_a_blob() -> None:
    assert "blob.bytes()" in tour()


def test_the_tour_lists_the_browser_strict_rules() -> None:
    text = tour()
    section = text[text.index("### Browser-strict"):]
    assert "picks none of them" in section
    assert "close(1001)" in section
    assert "follow_redirects=True" in section
