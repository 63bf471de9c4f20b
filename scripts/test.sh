#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, then the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m pytest "$@"
.venv/bin/ruff check .
