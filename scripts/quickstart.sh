#!/usr/bin/env bash
# Set up and run the main job: the whole pipeline on the example config, then the HTML report.
# CURATE_DATA (default ../shared/data) holds benchmarks/; CURATE_TEACHER names the teacher (Hub id or directory).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CONFIG=${1:-examples/pipeline.toml}
.venv/bin/curate run "$CONFIG"
RUN_DIR=$(.venv/bin/python -c "import sys; from curate.pipeline import load_config; print(load_config(sys.argv[1]).run.dir)" "$CONFIG")
.venv/bin/curate report "$RUN_DIR"
echo "published folder: $RUN_DIR/publish    report: $RUN_DIR/report.html"
