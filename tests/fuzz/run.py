"""Run one fuzz target under atheris: ``python tests/fuzz/run.py TARGET [libFuzzer options] [CORPUS...]``.

TARGET is ``frames``, ``http_response``, ``url`` or ``proxy`` (the ``fuzz_<TARGET>.py``
modules beside this file, which define ``test_one_input``). Only syncws's own modules are
instrumented for coverage feedback: the standard library's parsers are C code or not ours to
fuzz, and instrumenting them would slow every run. See README.md for the options the recorded
runs used.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

TARGETS = ("frames", "http_response", "url", "proxy")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dirs]")
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed (python -m pip install atheris)")
    target = sys.argv[1]
    with atheris.instrument_imports(include=["syncws"]):
        import syncws  # noqa: F401  (and every syncws module it imports)
        import syncws.proxy  # noqa: F401
    sys.path.insert(0, str(Path(__file__).parent))
    harness = importlib.import_module(f"fuzz_{target}")
    atheris.Setup([sys.argv[0]] + sys.argv[2:], harness.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
