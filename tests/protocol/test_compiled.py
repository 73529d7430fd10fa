"""syncws.protocol.compiled: the accelerator is used only when it was built from this version's
C source; a build left by another version gives the pure-Python helpers and a warning."""

from __future__ import annotations

import sys
import types

import pytest

import syncws
from syncws.protocol import compiled

try:
    from syncws import _speedups  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _speedups = None


def install_fake(monkeypatch: pytest.MonkeyPatch, **attributes: object) -> types.ModuleType:
    fake = types.ModuleType("syncws._speedups")
    for name, value in attributes.items():
        setattr(fake, name, value)
    monkeypatch.delenv("SYNCWS_NO_EXTENSIONS", raising=False)
    monkeypatch.setitem(sys.modules, "syncws._speedups", fake)
    monkeypatch.setattr(syncws, "_speedups", fake, raising=False)
    return fake


@pytest.mark.parametrize("version", [None, compiled.API_VERSION + 1])
def test_a_build_of_another_version_is_not_used_and_a_warning_names_it(
    monkeypatch: pytest.MonkeyPatch, version: object
) -> None:
    attributes = {"__file__": "/site/syncws/_speedups.abi3.so"}
    if version is not None:  # a build from before the version existed has none
        attributes["API_VERSION"] = version
    install_fake(monkeypatch, **attributes)
    with pytest.warns(RuntimeWarning, match=r"/site/syncws/_speedups.abi3.so was built from "
                      rf"another version of syncws \(interface {version}, expected "):
        assert compiled.load() is None


def test_a_build_of_this_version_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_fake(monkeypatch, API_VERSION=compiled.API_VERSION)
    assert compiled.load() is fake


def test_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(monkeypatch, API_VERSION=compiled.API_VERSION)
    monkeypatch.setenv("SYNCWS_NO_EXTENSIONS", "1")
    assert compiled.load() is None


def test_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCWS_NO_EXTENSIONS", raising=False)
    monkeypatch.setitem(sys.modules, "syncws._speedups", None)  # ImportError
    monkeypatch.delattr(syncws, "_speedups", raising=False)
    assert compiled.load() is None


@pytest.mark.skipif(_speedups is None, reason="syncws._speedups is not built")
def test_the_c_source_and_this_code_agree_on_the_version() -> None:
    assert _speedups.API_VERSION == compiled.API_VERSION
