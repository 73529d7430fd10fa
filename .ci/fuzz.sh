#!/usr/bin/env bash
# Fuzz smoke run: each atheris target of tests/fuzz for about 30 s, from the checked-in corpus.
# A crash, a hang (-timeout) or runaway memory (-rss_limit_mb) fails CI and leaves the input
# in build/fuzz/. atheris is optional: where it cannot be installed the run is skipped with a
# message. Long runs and their figures: tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SYNCWS_FUZZ_SECONDS:-30}
targets=(frames http_response url proxy)

# atheris ships wheels for CPython 3.9-3.13 on Linux x86-64; prefer a Python in the middle.
pick_python() {
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  ls -d "$root"/versions/"$1".* 2>/dev/null | sort -V | tail -n 1 | sed 's|$|/bin/python|'
}
python=""
for version in 3.11 3.12 3.13 3.10 3.9; do
  candidate=$(pick_python "$version")
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then python=$candidate; break; fi
done
if [ -z "$python" ]; then python=$(command -v python3); fi

work=build/fuzz
rm -rf "$work" && mkdir -p "$work"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
"$venv_python" -m pip install -q .
if ! "$venv_python" -m pip install -q atheris; then
  echo "SKIPPED: atheris could not be installed for $("$python" --version); no fuzz smoke run"
  exit 0
fi

echo "fuzzing with $("$venv_python" --version), ${seconds} s per target"
for target in "${targets[@]}"; do
  mkdir -p "$work/$target/corpus"
  # New inputs go to the first directory; the checked-in corpus is only read.
  (cd "$work/$target" && "../venv/bin/python" ../../../tests/fuzz/run.py "$target" \
      -max_total_time="$seconds" -max_len=8192 -timeout=25 -rss_limit_mb=1024 \
      -print_final_stats=1 -artifact_prefix="./" \
      corpus "../../../tests/fuzz/corpus/$target" > log 2>&1) || {
    echo "FAILED: fuzz target $target (input and log in $work/$target):"
    grep -v -E "^#[0-9]+\s+(NEW|REDUCE|pulse)" "$work/$target/log" | tail -n 40
    exit 1
  }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target/log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$target/log")
  coverage=$(grep -E "^#[0-9]+\s+DONE" "$work/$target/log" | sed -n 's/.* cov: \([0-9]*\).*/\1/p' || true)
  echo "fuzz target $target: ${runs:-?} inputs, ${speed:-?}/s, ${coverage:-?} edges, no crash"
done
