"""Honest types: a user program passes ``mypy --strict``, a misspelled option does not.

The mypy part skips when mypy is not installed (it is in the ``test`` extra); ``.ci/typing.sh``
runs the same check in CI. The signature part needs nothing.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from typing import Dict, List

import pytest

import syncws

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
TYPING = os.path.join(TESTS, "typing")


def test_connect_spells_out_every_option_of_the_constructor() -> None:
    """connect() lists WebSocket's keyword options again: same names, types and defaults."""
    own = dict(inspect.signature(syncws.WebSocket.__init__).parameters)
    blocking = dict(inspect.signature(syncws.connect).parameters)
    assert not any(p.kind is p.VAR_KEYWORD for p in blocking.values())  # no **options
    del own["self"], own["connect"]  # connect() always connects
    assert blocking.pop("timeout").default == 10.0
    assert list(blocking) == list(own)
    for name, param in own.items():
        other = blocking[name]
        assert (other.kind, other.annotation) == (param.kind, param.annotation), name
        if name != "open_timeout":  # connect()'s follows timeout unless given
            assert other.default == param.default, name
    assert repr(blocking["open_timeout"].default) == "<same as timeout>"


@pytest.fixture(scope="module")
def mypy_output() -> Dict[str, List[str]]:
    """One ``mypy --strict`` run over both programs: its error lines, per program."""
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the test extra)")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", os.path.join(TYPING, "mypy.ini"),
         os.path.join("tests", "typing", "ok_program.py"),
         os.path.join("tests", "typing", "bad_option.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr + result.stdout
    lines = result.stdout.splitlines()
    return {
        name: [line for line in lines if line.startswith(os.path.join("tests", "typing", name))]
        for name in ("ok_program.py", "bad_option.py")
    }


def test_a_typical_user_program_passes_mypy_strict(mypy_output: Dict[str, List[str]]) -> None:
    assert mypy_output["ok_program.py"] == []


def test_a_misspelled_option_fails_mypy_strict(mypy_output: Dict[str, List[str]]) -> None:
    errors = [line for line in mypy_output["bad_option.py"] if ": error: " in line]
    assert len(errors) == 1, errors
    assert 'Unexpected keyword argument "timout" for "connect"' in errors[0]
    assert 'did you mean "timeout"' in errors[0]
