#!/usr/bin/env bash
# The C accelerator is built once, against the stable ABI of CPython 3.9: the wheel must be
# tagged cp39-abi3, contain the compiled module, and pass the accelerator tests (compiled vs
# pure-Python helpers) on both the oldest and the newest Python here.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  ls -d "$root"/versions/"$1".* 2>/dev/null | sort -V | tail -n 1 | sed 's|$|/bin/python|'
}
oldest=$(pick_python 3.9)
newest=$(pick_python 3.13)
if [ -z "$newest" ] || [ ! -x "$newest" ]; then newest=$(command -v python3); fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$newest" -m venv "$work/build"
"$work/build/bin/python" -m pip install -q build
"$work/build/bin/python" -m build --wheel --outdir "$work/dist" . >/dev/null
wheel=$(ls "$work"/dist/*.whl)
case "$(basename "$wheel")" in
  *-cp39-abi3-*.whl) echo "abi3 wheel: $(basename "$wheel")" ;;
  *) echo "the wheel is not tagged cp39-abi3: $(basename "$wheel")"; exit 1 ;;
esac
"$work/build/bin/python" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if "syncws/_speedups.abi3.so" not in names:
    sys.exit("the wheel has no syncws/_speedups.abi3.so: %s" % [n for n in names if "speedups" in n])
PY

for python in "$oldest" "$newest"; do
  if [ -z "$python" ] || [ ! -x "$python" ]; then continue; fi
  echo "=== the abi3 wheel on $("$python" --version) ==="
  rm -rf "$work/venv" "$work/tests"
  "$python" -m venv "$work/venv"
  "$work/venv/bin/python" -m pip install -q "$wheel" pytest
  mkdir "$work/tests"
  cp tests/protocol/test_accel.py tests/protocol/test_mask.py "$work/tests/"
  # Run from outside the source tree so that the installed wheel is what gets imported.
  (cd "$work/tests" && SYNCWS_REQUIRE_EXTENSIONS=1 "$work/venv/bin/python" -m pytest -q \
     -p no:cacheprovider test_accel.py test_mask.py)
done
