#!/usr/bin/env bash
# Set up and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${CURATE_DATA:-../shared/data}
mkdir -p runs/quickstart
.venv/bin/curate sources pull medqa --path "$DATA/benchmarks/medqa/test.4_options.jsonl" -o runs/quickstart/questions.parquet
.venv/bin/curate inspect runs/quickstart/questions.parquet
