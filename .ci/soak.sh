#!/usr/bin/env bash
# The 1-minute chaos soak (bench/soak.py): 100 connections through the fault-injecting proxy.
# Fails CI on any lost, duplicated, corrupted or stray message, or a thread/fd/memory leak.
# Uses the venv of .ci/run (syncws installed with its test extra), activated here if need be.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
python -m pip install -q trustme
echo "=== chaos soak: 100 connections, 60 s (bench/soak.py) ==="
python bench/soak.py --duration 60
