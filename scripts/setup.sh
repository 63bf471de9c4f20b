#!/usr/bin/env bash
# Set up a virtual environment in .venv with curate and the extras a job needs. Idempotent: a second run with the
# same pyproject.toml, lock file and extras installs nothing (a stamp in .venv records what was installed).
#   bash scripts/setup.sh            the main job (curate + the PHI engine; torch when a local teacher is named)
#   bash scripts/setup.sh all        everything the tests need (train, review, dev extras), then .ci/setup.d/*.sh
# Every install is constrained by requirements/main.txt (the versions the tests last passed with; refresh it with
# bash scripts/lock.sh), so a fresh clone installs exactly what was tested.
# torch goes first (pinned CPU wheel) so nothing pulls a CUDA build from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHAT=${1:-main}
LOCK=requirements/main.txt
case "$WHAT" in
  main) EXTRAS="phi"; [ -n "${CURATE_TEACHER:-}" ] && [ -z "${OPENAI_BASE_URL:-}" ] && EXTRAS="phi,train" ;;
  all) EXTRAS="all" ;;
  *) echo "usage: scripts/setup.sh [main|all]" >&2; exit 2 ;;
esac
[ -x .venv/bin/python ] || "$PY" -m venv .venv
STAMP=.venv/.curate-setup
WANT="$(cat pyproject.toml "$LOCK" | sha256sum | cut -c1-16) $EXTRAS"
if [ ! -f "$STAMP" ] || ! grep -qxF "$WANT" "$STAMP"; then
  echo "setup: installing curate[$EXTRAS] into .venv (pinned by $LOCK)"
  .venv/bin/python -m pip install -q --upgrade pip
  case "$EXTRAS" in *train*|all) .venv/bin/python -m pip install -q -c "$LOCK" "torch==2.13.0" ;; esac
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -c "$LOCK" -e ".[$EXTRAS]"
  echo "$WANT" >> "$STAMP"
fi
if [ "$WHAT" = all ]; then
  # Pieces only the tests (and `curate review`) need: a browser for UI tests, argilla-server's and vLLM's own venvs.
  for step in .ci/setup.d/*.sh; do
    [ -e "$step" ] || continue
    bash "$step"
  done
fi
