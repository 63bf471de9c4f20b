#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with curate and every extra this machine can run.
# torch goes first (pinned CPU wheel) so nothing pulls a CUDA build from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all]"
# Extra system pieces some stages need (a browser for UI tests, argilla-server's own venv, ...): one script each.
for step in .ci/setup.d/*.sh; do
  [ -e "$step" ] || continue
  echo "setup: $step"
  bash "$step"
done
