#!/usr/bin/env bash
# The main job: set up, run the whole pipeline, write the report.
#   bash scripts/quickstart.sh                 the demo: 231 real questions, their recorded real teacher answers
#   bash scripts/quickstart.sh CONFIG.toml     your own run config
# With a teacher configured the demo's questions go to it instead of the recording:
#   CURATE_TEACHER=NAME with OPENAI_BASE_URL=URL (any OpenAI-compatible server), or CURATE_TEACHER=a model in your
#   local Hugging Face cache (or a local folder), run here with transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh main
CONFIG=${1:-examples/demo.toml}
if [ -n "${CURATE_TEACHER:-}" ] || [ -n "${OPENAI_BASE_URL:-}" ]; then
  export CURATE_REPLAY=""   # a real teacher: no recording
fi
.venv/bin/curate run "$CONFIG"
RUN_DIR=$(.venv/bin/python -c "import sys; from curate.pipeline import load_config; print(load_config(sys.argv[1]).run.dir)" "$CONFIG")
.venv/bin/curate report "$RUN_DIR"
echo "published folder: $RUN_DIR/publish    report: $RUN_DIR/report.html"
