#!/usr/bin/env bash
# The main job end to end on the bundled real dataset, offline: prepare → train → generate → score.
# Installs what it needs into .venv first. Outputs go to demo/ (or $PEPLER_DEMO_DIR); the training options come
# from examples/configs/demo.yaml (or $PEPLER_DEMO_CONFIG).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PEPLER=.venv/bin/pepler
OUT=${PEPLER_DEMO_DIR:-demo}
CONFIG=${PEPLER_DEMO_CONFIG:-examples/configs/demo.yaml}

$PEPLER prepare examples/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz \
  --name amazon-musical-instruments --out "$OUT/data" --overwrite
$PEPLER train --config "$CONFIG" --data "$OUT/data" --out "$OUT/runs/pepler" --overwrite
$PEPLER generate "$OUT/runs/pepler" --out "$OUT/preds.jsonl" --overwrite
$PEPLER score "$OUT/preds.jsonl" --data "$OUT/data"
