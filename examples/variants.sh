#!/usr/bin/env bash
# Every paper variant of examples/configs/ on the bundled dataset, offline with gpt2-tiny and few epochs,
# then one comparison table in each format. Outputs go to variants/ (or $PEPLER_VARIANTS_DIR).
# Reuses demo/data when examples/demo.sh made it; otherwise prepares the dataset first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PEPLER=.venv/bin/pepler
OUT=${PEPLER_VARIANTS_DIR:-variants}
EPOCHS=${PEPLER_VARIANT_EPOCHS:-1}
DATA=${PEPLER_DATA:-demo/data}
if [ ! -f "$DATA/manifest.yaml" ]; then
  $PEPLER prepare examples/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz \
    --name amazon-musical-instruments --out "$DATA"
fi
runs=()
for variant in pepler pepler-d pepler-mf pepler-mlp prompt-only joint; do
  $PEPLER train --config "examples/configs/$variant.yaml" --backbone gpt2-tiny --epochs "$EPOCHS" \
    --data "$DATA" --out "$OUT/runs/$variant" --overwrite
  $PEPLER generate "$OUT/runs/$variant" --out "$OUT/$variant.jsonl" --overwrite
  $PEPLER score "$OUT/$variant.jsonl" --data "$DATA" > /dev/null
  runs+=("$OUT/runs/$variant")
done
for format in table markdown csv json; do
  $PEPLER compare "${runs[@]}" --format "$format"
done
