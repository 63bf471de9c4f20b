#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite (fast, slow and integration tests), then the linter: what CI runs.
# `pytest` alone runs the fast set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m pytest -m "" "$@"
.venv/bin/ruff check .
