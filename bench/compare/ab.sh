#!/usr/bin/env bash
# Two builds of ours, alternated process by process (the machine's speed drifts):
#
#   bench/compare/ab.sh in|sub BEFORE.whl AFTER.whl [ROUNDS]
#
# Each wheel is unpacked into its own folder and put first on PYTHONPATH; the
# bench venv (scripts/bench-compare makes it) runs runs.py, which prints the
# median µs of `1+1` and of a function-tool call.
set -euo pipefail
kind=$1 before=$2 after=$3 rounds=${4:-6}
python="${PY_CODE_MODE_BENCH_VENV:-$HOME/.cache/py-code-mode/bench-venv}/bin/python"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for side in before after; do
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$work/$side" "${!side}"
done
echo "side: median µs of 1+1, of tools.add(a=1, b=2)"
for _ in $(seq "$rounds"); do
  for side in before after; do
    echo "$side: $(PYTHONPATH="$work/$side" "$python" "$here/runs.py" "$kind")"
  done
done
