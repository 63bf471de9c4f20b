#!/usr/bin/env bash
# review: argilla-server's own venv (its pins clash with ours); chromium.sh installs the browser for the UI test.
# Idempotent and quiet: does nothing when the venv is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Cached under $CURATE_ARGILLA_VENV (default ~/.cache/curate/argilla-server-venv); rebuilt only when its pins change.
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" -m tests.support.argilla.server build
