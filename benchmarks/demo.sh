#!/usr/bin/env bash
# Both demos as a new user runs them (bash examples/demo.sh), each results file kept for the README's demo table:
# benchmarks/results/demo.json (examples/configs/demo.yaml, smollm2-135m) and demo-quick.json (gpt2-tiny).
# Run it on an otherwise idle machine: the files record wall times. --only demo|quick runs one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=${2:-}
[ "${1:-}" = "--only" ] || ONLY=""
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$ONLY" ] || [ "$ONLY" = demo ]; then
  PEPLER_DEMO_DIR="$work/demo" bash examples/demo.sh
  cp "$work/demo/results.json" benchmarks/results/demo.json
fi
if [ -z "$ONLY" ] || [ "$ONLY" = quick ]; then
  PEPLER_DEMO_DIR="$work/quick" PEPLER_DEMO_CONFIG=examples/configs/demo-quick.yaml PEPLER_DEMO_GENERATE_CONFIG= \
    bash examples/demo.sh
  cp "$work/quick/results.json" benchmarks/results/demo-quick.json
fi
