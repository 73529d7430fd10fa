"""The manual's code: every Python block compiles, and the testing guide's tests pass.

The runnable examples of the manual are checked by ``sphinx-build -b doctest`` (``.ci/docs.sh``,
``tox -e docs``) against syncws's echo server. The blocks that cannot run there (GUI loops,
proxies, files that do not exist) are at least compiled here, and the pytest examples of
``docs/guide/testing.rst`` are run with pytest, as a user would run them, with the fixtures
that installing syncws registers.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. (?P<name>code-block|testcode|testsetup|testcleanup)::(?P<arg>.*)$")
_OPTION = re.compile(r"^ *:(?P<name>[\w-]+):(?P<value>.*)$")

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="the manual's sources are not here")


class Block(NamedTuple):
    path: Path
    line: int
    directive: str
    language: str
    options: Dict[str, str]
    code: str


def _blocks(path: Path) -> Iterator[Block]:
    """The code blocks of one reStructuredText file, dedented, with their options."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        index += 1
        if not match:
            continue
        start, indent = index, len(match["indent"])
        options = {}
        while index < len(lines) and _OPTION.match(lines[index]):
            option = _OPTION.match(lines[index])
            assert option is not None
            options[option["name"]] = option["value"].strip()
            index += 1
        body: List[str] = []
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            body.append(lines[index])
            index += 1
        language = match["arg"].strip() if match["name"] == "code-block" else "python"
        yield Block(path, start, match["name"], language, options,
                    textwrap.dedent("\n".join(body)).strip() + "\n")


def _all_blocks() -> List[Block]:
    if not DOCS.is_dir():
        return []
    return [block for path in sorted(DOCS.rglob("*.rst")) for block in _blocks(path)]


PYTHON_BLOCKS = [block for block in _all_blocks() if block.language == "python"]
TEST_FILES = [block for block in PYTHON_BLOCKS if block.options.get("caption", "").startswith("test_")]


def _where(block: Block) -> str:
    return f"{block.path.relative_to(DOCS)}:{block.line}"


def test_the_manual_has_code_and_runnable_examples() -> None:
    directives = [block.directive for block in PYTHON_BLOCKS]
    assert directives.count("testcode") >= 15, "the manual's examples are no longer doctests"
    assert len(TEST_FILES) >= 3


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=_where)
def test_python_block_compiles(block: Block) -> None:
    ast.parse(block.code, filename=_where(block))


def test_testing_guide_examples_pass_under_pytest(tmp_path: Path) -> None:
    for block in TEST_FILES:
        (tmp_path / block.options["caption"]).write_text(block.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-W", "error::pytest.PytestUnraisableExceptionWarning", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    counts = re.search(r"(\d+) passed", result.stdout)
    tests = sum(block.code.count("\ndef test_") + block.code.startswith("def test_")
                for block in TEST_FILES)
    assert counts is not None and int(counts[1]) == tests, result.stdout
