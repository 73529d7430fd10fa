#!/usr/bin/env bash
# The package as users get it: build the sdist and the wheel, check their metadata with
# twine, check that the LICENSE is in both, then install the unpacked sdist with its test
# extra and run a representative part of the test suite from it (collecting all of it, so a
# missing support module fails). Usage: .ci/package.sh [PYTHON]
set -euo pipefail  # (grep -q would end a pipe early: pipefail then fails it)
cd "$(dirname "$0")/.."
python=${1:-python3}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install -q build twine

if ! python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1; then
  cat "$work/build.log"
  exit 1
fi
twine check --strict "$work"/dist/*
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
name=$(basename "$sdist" .tar.gz)
tar -tzf "$sdist" | grep -x "$name/LICENSE" >/dev/null || { echo "LICENSE missing from $sdist"; exit 1; }
python -m zipfile -l "$wheel" | grep "dist-info/licenses/LICENSE" >/dev/null ||
  { echo "LICENSE missing from $wheel"; exit 1; }
# Once setup.cfg asks for the stable ABI ([bdist_wheel] py_limited_api), the wheel must be abi3.
case "$(basename "$wheel")" in
  *-abi3-*) echo "stable-ABI wheel: $(basename "$wheel")" ;;
  *) if grep -q '^py_limited_api' setup.cfg; then
       echo "setup.cfg asks for py_limited_api, but the wheel is $(basename "$wheel")"; exit 1
     fi
     echo "wheel: $(basename "$wheel") (not abi3)" ;;
esac

tar -xzf "$sdist" -C "$work"
cd "$work/$name"
python -m pip install -q ".[test]"
# `pytest` (not `python -m pytest`): the tests import the installed syncws, built from the sdist.
pytest -p no:cacheprovider -q --collect-only tests | tail -n 1
pytest -p no:cacheprovider -q -x \
  tests/project/test_docstrings.py tests/project/test_docs.py tests/project/test_examples.py tests/api/test_cli.py \
  tests/api/test_websocket.py tests/network/test_url.py tests/api/test_blob.py tests/protocol/test_frames.py \
  tests/conformance/test_closing.py
