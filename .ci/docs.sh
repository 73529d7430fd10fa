#!/usr/bin/env bash
# The manual: build it with warnings as errors (`sphinx-build -W`), then run its examples
# (`-b doctest`) against syncws's own echo server. Usage: .ci/docs.sh [PYTHON]
# Intersphinx reads Python's inventory from Debian's python3-doc: CI has no route to
# docs.python.org, and a missing inventory is a warning, i.e. an error under -W.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}

if command -v apt-get >/dev/null 2>&1 && ! ls /usr/share/doc/python3*/html/objects.inv >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends python3-doc >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-doc >/dev/null; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install -q ".[docs]"
sphinx-build -W --keep-going -q -b html docs "$work/html"
echo "manual built: $(find "$work/html" -name '*.html' | wc -l) pages, no warnings"
sphinx-build -W --keep-going -q -b doctest docs "$work/doctest"
sed -n '/^Doctest summary/,$p' "$work/doctest/output.txt"
