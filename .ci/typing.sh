#!/usr/bin/env bash
# Honest types, in CI: a small user program passes `mypy --strict`, and a misspelled option of
# syncws.connect() is rejected with the expected error. Runs in the active virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -q mypy
config=tests/typing/mypy.ini
python -m mypy --config-file "$config" tests/typing/ok_program.py
if output=$(python -m mypy --config-file "$config" tests/typing/bad_option.py); then
  echo "tests/typing/bad_option.py passed mypy --strict; it must not" >&2
  exit 1
fi
if ! grep -q 'Unexpected keyword argument "timout" for "connect"' <<<"$output"; then
  echo "tests/typing/bad_option.py failed mypy for another reason:" >&2
  echo "$output" >&2
  exit 1
fi
echo "typing: ok_program.py passes mypy --strict; bad_option.py is rejected as expected"
