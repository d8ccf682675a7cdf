#!/usr/bin/env bash
# The main job end to end on the bundled real dataset, offline: prepare → train → generate → score.
# Installs what it needs into .venv first. Outputs go to demo/ (or $PEPLER_DEMO_DIR); the training options come
# from examples/configs/demo.yaml (or $PEPLER_DEMO_CONFIG), the generation options from
# examples/configs/demo.generate.yaml (or $PEPLER_DEMO_GENERATE_CONFIG; empty: generate's defaults, the paper's
# greedy decoding). Last, demo/results.json records the scores, sample explanations beside their references and
# each step's wall time (benchmarks/demo_record.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PEPLER=.venv/bin/pepler
OUT=${PEPLER_DEMO_DIR:-demo}
CONFIG=${PEPLER_DEMO_CONFIG:-examples/configs/demo.yaml}
GENERATE_CONFIG=${PEPLER_DEMO_GENERATE_CONFIG-examples/configs/demo.generate.yaml}
TIMES=""

step() {  # step NAME COMMAND...: run it and keep when it started and ended, for the results file
  local name=$1 start=$EPOCHREALTIME
  shift
  "$@"
  TIMES="$TIMES\"$name\": [$start, $EPOCHREALTIME], "
}

step prepare $PEPLER prepare examples/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz \
  --name amazon-musical-instruments --out "$OUT/data" --overwrite
step train $PEPLER train --config "$CONFIG" --data "$OUT/data" --out "$OUT/runs/pepler" --overwrite
step generate $PEPLER generate "$OUT/runs/pepler" --out "$OUT/preds.jsonl" --overwrite \
  ${GENERATE_CONFIG:+--config "$GENERATE_CONFIG"}
step score $PEPLER score "$OUT/preds.jsonl" --data "$OUT/data"
.venv/bin/python benchmarks/demo_record.py "$OUT" --config "$CONFIG" --seconds "{${TIMES%, }}" \
  --out "$OUT/results.json"
