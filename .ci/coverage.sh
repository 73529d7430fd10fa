#!/usr/bin/env bash
# Branch coverage gate. Run inside a virtualenv where syncws is installed with ".[test]"
# (.ci/run does it for the newest Python, in place of that Python's plain test run):
#
#   1. the whole suite with the C accelerator (SYNCWS_REQUIRE_EXTENSIONS=1): it is this
#      Python's test run, measured (subprocesses too: the CLI and the examples);
#   2. the core suites again with the pure-Python masking (SYNCWS_NO_EXTENSIONS=1);
#   3. each run's figures, then the gate on both runs combined: the sans-I/O core
#      (syncws/protocol) at 100% of lines and branches, the package at 95% or more.
#
# Settings (branch, sources, subprocess patching, data directory): [tool.coverage] in
# pyproject.toml. What is excluded and why: the "# pragma: no cover" lines in syncws, each
# with its reason beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

core_fail_under=100
package_fail_under=95

python -m pip install -q "coverage[toml]>=7.10"
data=build/coverage
rm -rf "$data" && mkdir -p "$data/accelerated" "$data/pure-python"

echo "=== test suite under branch coverage, with the C accelerator ==="
COVERAGE_FILE="$data/accelerated/.coverage" SYNCWS_REQUIRE_EXTENSIONS=1 \
  python -m coverage run -m pytest -p no:cacheprovider "$@"

echo "=== core suites under branch coverage, without the C accelerator ==="
COVERAGE_FILE="$data/pure-python/.coverage" SYNCWS_NO_EXTENSIONS=1 \
  python -m coverage run -m pytest -p no:cacheprovider -q \
    tests/protocol tests/conformance

# Each run's parallel data files into its own .coverage, then both into build/coverage/.coverage.
for run in accelerated pure-python; do
  python -m coverage combine -q --data-file="$data/$run/.coverage" "$data/$run"
done
python -m coverage combine -q --keep --data-file="$data/.coverage" \
  "$data/accelerated/.coverage" "$data/pure-python/.coverage"

echo "=== branch coverage with the C accelerator (whole suite) ==="
python -m coverage report --data-file="$data/accelerated/.coverage" | grep '^TOTAL'
echo "=== branch coverage of syncws/protocol without the C accelerator (core suites) ==="
python -m coverage report --data-file="$data/pure-python/.coverage" --include='syncws/protocol/*' \
  | grep '^TOTAL'
echo "=== both runs: the sans-I/O core (gate: ${core_fail_under}%) ==="
python -m coverage report --data-file="$data/.coverage" --include='syncws/protocol/*' \
  --no-skip-covered --fail-under="$core_fail_under"
echo "=== both runs: the package (gate: ${package_fail_under}%) ==="
python -m coverage report --data-file="$data/.coverage" --fail-under="$package_fail_under"
