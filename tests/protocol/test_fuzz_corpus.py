"""The fuzz targets of ``tests/fuzz`` replayed on their checked-in corpus, without atheris.

Every seed and every input that once crashed a target (``crash-*``, kept as regression tests)
must pass its target's checks: the documented exceptions only, bounded buffers, identical
results however the bytes are chunked. The harnesses are plain Python; atheris only drives
them (``tests/fuzz/run.py``).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import List, Tuple

import pytest

FUZZ = Path(__file__).parents[1] / "fuzz"
TARGETS = ("frames", "http_response", "url", "proxy")


@functools.lru_cache(maxsize=None)
def load(target: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fuzz_{target}", FUZZ / f"fuzz_{target}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus() -> List[Tuple[str, Path]]:
    return [(t, p) for t in TARGETS for p in sorted((FUZZ / "corpus" / t).iterdir())]


def test_every_target_has_seeds_and_a_harness() -> None:
    for target in TARGETS:
        assert any(p.name.startswith("seed-") for p in (FUZZ / "corpus" / target).iterdir())
        assert callable(load(target).test_one_input)


@pytest.mark.parametrize("target, path", corpus(), ids=lambda v: getattr(v, "name", v))
def test_corpus_input(target: str, path: Path) -> None:
    load(target).test_one_input(path.read_bytes())
