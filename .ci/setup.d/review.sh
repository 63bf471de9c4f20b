#!/usr/bin/env bash
# review: a headless browser for the Argilla UI test, and argilla-server's own venv (its pins clash with ours).
# Idempotent and quiet: does nothing when both are already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi

# Cached under $CURATE_ARGILLA_VENV (default ~/.cache/curate/argilla-server-venv); rebuilt only when its pins change.
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" -m review.testing.server build
