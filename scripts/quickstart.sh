#!/usr/bin/env bash
# The main job: set up, run the whole pipeline, write the report.
#   bash scripts/quickstart.sh                 the demo: 231 real questions, their recorded real teacher answers
#   bash scripts/quickstart.sh CONFIG.toml     your own run config
# With a teacher configured the demo's questions go to it instead of the recording:
#   CURATE_TEACHER=NAME with OPENAI_BASE_URL=URL (any OpenAI-compatible server), or CURATE_TEACHER=a model in your
#   local Hugging Face cache (or a local folder), run here with transformers.
# When a stage fails the report is still written (it shows the failure, and which stages are stale), and the script
# exits with the run's non-zero code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh main
CONFIG=${1:-examples/demo.toml}
if [ -n "${CURATE_TEACHER:-}" ] || [ -n "${OPENAI_BASE_URL:-}" ]; then
  export CURATE_REPLAY=""   # a real teacher: no recording
fi
RUN_DIR=$(.venv/bin/python -c "import sys; from curate.pipeline import load_config; print(load_config(sys.argv[1]).run.dir)" "$CONFIG")
status=0
.venv/bin/curate run "$CONFIG" || status=$?
if [ -f "$RUN_DIR/manifest.json" ]; then
  report=0
  .venv/bin/curate report "$RUN_DIR" || report=$?
  [ "$status" -ne 0 ] || status=$report
fi
# the published folder only when this run's publish is done (a stale one is an earlier run's)
PUBLISHED=$(.venv/bin/python -c "import sys; from curate.pipeline.rundir import RunDir; r = RunDir.open(sys.argv[1]); \
print(r.file('publish') or '' if r.done('publish') else '')" "$RUN_DIR" 2>/dev/null || true)
if [ "$status" -ne 0 ]; then
  echo "the run failed (exit $status): see the error above and $RUN_DIR/report.html; stages after the failed one are stale" >&2
elif [ -n "$PUBLISHED" ]; then
  echo "published folder: $PUBLISHED    report: $RUN_DIR/report.html"
else
  echo "report: $RUN_DIR/report.html (nothing published in this run: see the report)"
fi
exit "$status"
